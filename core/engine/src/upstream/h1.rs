//! The HTTP/1.1 upstream client: one request on a pooled (or fresh) connection, for an
//! HTTP/1.1 or an HTTP/2 client.
//!
//! The request head is written in HTTP/1.1 form with the proxy's fields and the stages'
//! edits; an HTTP/2 request body without a length goes chunked, and its trailers become the
//! chunked trailer section. Request body upload and response download run *concurrently*: an
//! upstream that answers early (413, 401) or streams its response while reading (echo,
//! proxies) never deadlocks, and `Expect: 100-continue` works because the upstream's
//! `100 Continue` is relayed while an HTTP/1.1 client waits. The response head goes through
//! the stages' response hooks, then to the client: as HTTP/1.1 (framing kept, de-chunked
//! for an HTTP/1.0 client) or as HTTP/2 (hop-by-hop fields removed, the body de-framed into
//! DATA frames, chunked trailers as HTTP/2 trailers). `101 Switching Protocols` turns the
//! exchange into a tunnel (an HTTP/2 client's RFC 8441 WebSocket gets `200` and the stream
//! carries the bytes).
//!
//! Retry rule: a request that found its *pooled* connection closed by the upstream before
//! any response byte arrived (the keep-alive race) is retried once on a fresh connection when
//! it is idempotent and has no body — nothing was lost, so nothing can be duplicated.

use std::cell::Cell;

use bytes::Bytes;
use h2::SendStream;
use ringside_codec::{
    parse_response, write_request_head, write_response_head, BodyKind, Edits, ResponseHead, Version,
};
use ringside_config::Cluster;

use super::{acquire, Active, Client, Down, Ended, Exchange, Progress, Reuse, Sink, Source};
use super::{UPSTREAM_READ_TIMEOUT as READ_TIMEOUT, UPSTREAM_READ_TIMEOUT};
use crate::cx::conn::{ConnRead, ConnWrite};
use crate::cx::error::{ProxyError, Retry};
use crate::cx::io::{write_vec_timeout, Fill, ReadBuf};
use crate::cx::Cx;
use crate::upstream::body::{
    relay_response_body, send_request_body, trailer_map, BodyState, RelayError as BodyRelayError,
    SendError, BODY_CHUNK,
};
use crate::upstream::cluster::ClusterState;
use crate::upstream::convert;
use crate::upstream::pool::Upstream;
use crate::upstream::relay::{next_data, send_all, trailers, RelayError};
use crate::upstream::tunnel::{h2_tunnel, tunnel, End};

/// Largest response head accepted from an upstream.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// How one attempt ended.
enum Attempt {
    Final {
        keep_client: bool,
        reuse: bool,
    },
    /// `101`: the connection is a tunnel now (for an HTTP/2 client, over this stream).
    Upgraded(Option<SendStream<Bytes>>),
}

pub(crate) async fn call(
    client: Client<'_>,
    cluster: &Cluster,
    state: &ClusterState,
    x: &Exchange<'_>,
    down: &mut Down<'_>,
    progress: &Progress,
) -> Result<Ended, ProxyError> {
    let bodyless = match (x.attempt.replay, &*down) {
        (Some(kept), _) => kept.is_empty(),
        (None, Down::H1(_)) => matches!(x.head.body(), BodyKind::Empty | BodyKind::Length(0)),
        (None, Down::H2(d)) => d.body.is_end_stream() && d.pending.is_empty(),
        (None, Down::Discard) => true,
    };
    // What a failure must allow for this request to go again (`ProxyError::retry`): a
    // bodyless idempotent request may be repeated, any other only if nothing of it was seen.
    let needed = if x.head.is_idempotent() && bodyless {
        Retry::IfIdempotent
    } else {
        Retry::Safe
    };
    let stats = client.cx.stats.cluster(&cluster.name);
    let mut attempt = 0;
    loop {
        let reuse = match (attempt, needed) {
            (0, Retry::IfIdempotent) => Reuse::Trusted,
            (0, _) => Reuse::Checked,
            _ => Reuse::No,
        };
        let (mut up, idx) = acquire(client, cluster, state, x.hash, x.attempt.avoid, reuse).await?;
        // A guard, not a call after the await: a route timeout drops this future mid-way
        // and the active-request count must still come down.
        let active = Active::start(state, idx, &stats, up.addr, progress);
        let res = once(client.cx, x, down, &mut up, progress).await;
        if let Err(e) = &res {
            let race = up.reused && matches!(e, ProxyError::UpstreamClosedEarly);
            active.failed(e, race);
        }
        drop(active);
        match res {
            Ok(Attempt::Final { keep_client, reuse }) => {
                if reuse && !client.cx.draining() {
                    client
                        .up
                        .pool
                        .put(up, cluster.max_idle_per_endpoint, cluster.idle_timeout);
                }
                return Ok(Ended { keep: keep_client });
            }
            Ok(Attempt::Upgraded(stream)) => {
                match (down, stream) {
                    (Down::H1(d), _) => {
                        let Upstream {
                            mut r,
                            mut w,
                            mut buf,
                            ..
                        } = up;
                        let client = End {
                            r: &mut *d.r,
                            w: &mut *d.w,
                            buf: &mut *d.buf,
                        };
                        let upstream = End {
                            r: &mut r,
                            w: &mut w,
                            buf: &mut buf,
                        };
                        let _ = tunnel(client, upstream, x.idle).await;
                    }
                    (Down::H2(d), Some(stream)) => {
                        h2_tunnel(d.body, stream, &mut up, x.idle, progress).await;
                    }
                    (Down::H2(_), None) | (Down::Discard, _) => {}
                }
                return Ok(Ended { keep: false });
            }
            // The keep-alive race: a pooled connection the upstream closed before answering.
            Err(e)
                if matches!(e, ProxyError::UpstreamClosedEarly)
                    && e.retry() >= needed
                    && up.reused
                    && !progress.head_sent.get()
                    && attempt == 0 =>
            {
                tracing::debug!(endpoint = %up.addr, "pooled connection was closed by the upstream; retrying");
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// One attempt on one connection.
async fn once(
    cx: &Cx,
    x: &Exchange<'_>,
    down: &mut Down<'_>,
    up: &mut Upstream,
    progress: &Progress,
) -> Result<Attempt, ProxyError> {
    let head = x.head;
    let limit = x.body_limit;
    let upgrade = match down {
        Down::H1(_) => head.upgrade().is_some() && matches!(head.body(), BodyKind::Empty),
        Down::H2(d) => d.websocket,
        Down::Discard => false,
    };
    let mut out = Vec::with_capacity(1024);
    write_request_head(&mut out, head, x.set, x.edits, upgrade);
    let replay = x.attempt.replay;
    // A kept body is sent from memory (the client's own was read already); else an
    // HTTP/1.1 client's body bytes that came with its head go out with ours.
    let mut h1_body = match replay {
        Some(_) => BodyState::Done,
        None => BodyState::new(head.body()),
    };
    let mut sent = 0u64;
    if let (Down::H1(d), None) = (&mut *down, replay) {
        let mut payload = 0u64;
        let n = h1_body
            .take(d.buf.data(), |r| payload += r.len() as u64)
            .map_err(|e| ProxyError::BadRequest(e.to_string()))?;
        sent += payload;
        if limit.is_some_and(|l| sent > l) {
            return Err(ProxyError::BodyTooLarge);
        }
        out.extend_from_slice(d.buf.data().get(..n).unwrap_or(&[]));
        d.buf.consume(n);
    }
    let reused = up.reused;
    if let Err(e) = write_vec_timeout(&mut up.w, out, UPSTREAM_READ_TIMEOUT).await {
        return Err(if reused {
            ProxyError::UpstreamClosedEarly
        } else {
            ProxyError::UpstreamIo(e)
        });
    }

    let Upstream {
        r: upr,
        w: upw,
        buf: upbuf,
        ..
    } = up;
    let sent = Cell::new(sent);
    let bodyless = match (replay, &*down) {
        (Some(kept), _) => kept.is_empty(),
        (None, Down::H1(_)) => h1_body.is_done(),
        (None, Down::H2(d)) => (d.body.is_end_stream() && d.pending.is_empty()) || d.websocket,
        (None, Down::Discard) => true,
    };
    // A body without a length goes chunked (an HTTP/2 request without `content-length`).
    let chunked = head.body() == BodyKind::Chunked;
    let (mut source, mut sink) = down.split(&mut h1_body);
    let h1_client = matches!(sink, Sink::H1 { .. });
    let upload = async {
        match replay {
            _ if bodyless => Ok(()),
            Some(kept) => upload_kept(kept, upw, chunked, &sent, x.idle).await,
            None => upload(&mut source, upw, chunked, limit, &sent, x.idle).await,
        }
    };
    let download = receive(cx, x, upr, upbuf, &mut sink, upgrade, progress);
    // Once the response is complete, an HTTP/1.1 client's body keeps flowing (an upstream
    // that answered early usually reads and discards the rest) and the exchange ends when
    // both directions have; an HTTP/2 stream need not be drained, and an
    // `Expect: 100-continue` client that got a final answer without `100 Continue` may never
    // send its body.
    let wait_for_body = || h1_client && (!head.expects_continue() || progress.continued.get());
    let outcome = super::upload_and_download(
        upload,
        bodyless,
        download,
        |e| matches!(e, ProxyError::UpstreamIo(_)),
        wait_for_body,
    )
    .await;
    progress.bytes_in.set(sent.get());
    let (attempt, upload_result) = outcome?;
    Ok(match attempt {
        Attempt::Final { keep_client, reuse } => {
            // A request body that did not finish leaves both connections in an unknown
            // state: close them.
            let body_complete = matches!(upload_result, Some(Ok(())));
            Attempt::Final {
                keep_client: keep_client && body_complete,
                reuse: reuse && body_complete,
            }
        }
        upgraded => upgraded,
    })
}

/// Copies the rest of the body to the upstream, HTTP/1.1-framed (`chunked`: a body without a
/// length). `Err(UpstreamIo)`: the upstream stopped reading (its response tells the rest);
/// any other error is the client's.
async fn upload(
    source: &mut Source<'_>,
    upw: &mut ConnWrite,
    chunked: bool,
    limit: Option<u64>,
    sent: &Cell<u64>,
    idle: std::time::Duration,
) -> Result<(), ProxyError> {
    match source {
        Source::H1 { r, buf, state } => {
            let mut n = sent.get();
            let r = send_request_body(*r, buf, upw, state, limit, &mut n, idle).await;
            sent.set(n);
            r.map_err(|e| match e {
                SendError::Client(e) => e,
                SendError::TooLarge => ProxyError::BodyTooLarge,
                SendError::Upstream => {
                    ProxyError::UpstreamIo(std::io::ErrorKind::BrokenPipe.into())
                }
            })
        }
        Source::Kept => Ok(()),
        Source::H2 { body, pending } => {
            for data in std::mem::take(*pending) {
                write_chunk(upw, &data, chunked, sent, idle).await?;
            }
            while let Some(data) = next_data(body, idle).await.map_err(from_client)? {
                let n = data.len();
                if limit.is_some_and(|l| sent.get() + n as u64 > l) {
                    return Err(ProxyError::BodyTooLarge);
                }
                write_chunk(upw, &data, chunked, sent, idle).await?;
                let _ = body.flow_control().release_capacity(n);
            }
            let t = trailers(body, idle).await.map_err(from_client)?;
            if chunked {
                let mut v = Vec::with_capacity(64);
                convert::write_h1_trailers(&mut v, t.as_ref());
                write_vec_timeout(upw, v, idle)
                    .await
                    .map_err(stopped_reading)?;
            }
            Ok(())
        }
    }
}

/// Writes one piece of body, HTTP/1.1-framed (`chunked`: as a chunk).
async fn write_chunk(
    upw: &mut ConnWrite,
    data: &[u8],
    chunked: bool,
    sent: &Cell<u64>,
    idle: std::time::Duration,
) -> Result<(), ProxyError> {
    let mut v = Vec::with_capacity(data.len() + 16);
    if chunked {
        convert::write_h1_chunk(&mut v, data);
    } else {
        v.extend_from_slice(data);
    }
    write_vec_timeout(upw, v, idle)
        .await
        .map_err(stopped_reading)?;
    sent.set(sent.get() + data.len() as u64);
    Ok(())
}

/// A write to the upstream failed: it stopped reading (its response tells the rest).
fn stopped_reading(_: std::io::Error) -> ProxyError {
    ProxyError::UpstreamIo(std::io::ErrorKind::BrokenPipe.into())
}

/// Sends a kept body (`retry.rs`), HTTP/1.1-framed, with its trailers when chunked.
async fn upload_kept(
    kept: &super::retry::Replay,
    upw: &mut ConnWrite,
    chunked: bool,
    sent: &Cell<u64>,
    idle: std::time::Duration,
) -> Result<(), ProxyError> {
    for data in &kept.chunks {
        write_chunk(upw, data, chunked, sent, idle).await?;
    }
    if chunked {
        let mut v = Vec::with_capacity(64);
        convert::write_h1_trailers(&mut v, kept.trailers.as_ref());
        write_vec_timeout(upw, v, idle)
            .await
            .map_err(stopped_reading)?;
    }
    Ok(())
}

/// An HTTP/2 client's body that stopped.
fn from_client(e: RelayError) -> ProxyError {
    match e {
        RelayError::From(Some(e)) => ProxyError::ClientStream(e),
        RelayError::From(None) => ProxyError::BadRequest("request body timeout".into()),
        RelayError::TooLarge => ProxyError::BodyTooLarge,
        RelayError::To(_) => ProxyError::UpstreamIo(std::io::ErrorKind::BrokenPipe.into()),
    }
}

/// Reads the response head (relaying interim 1xx responses to an HTTP/1.1 client), runs the
/// stages' response hooks, sends the head to the client and relays the body.
async fn receive(
    cx: &Cx,
    x: &Exchange<'_>,
    upr: &mut ConnRead,
    upbuf: &mut ReadBuf,
    sink: &mut Sink<'_>,
    upgrade: bool,
    progress: &Progress,
) -> Result<Attempt, ProxyError> {
    let head = x.head;
    let http10 = head.version() == Version::Http10;
    let mut got_bytes = false;
    loop {
        let (resp, n) = read_head(upr, upbuf, head.method(), &mut got_bytes).await?;
        upbuf.consume(n);
        let status = resp.status();
        if status == 101 {
            if !upgrade {
                return Err(ProxyError::UpstreamInvalid(
                    "101 without an upgrade request".into(),
                ));
            }
            return switch(sink, &resp, x, progress).await;
        }
        if resp.is_informational() {
            // 100 Continue, 103 Early Hints...: relayed to HTTP/1.1 clients, dropped for
            // HTTP/1.0 and HTTP/2 ones.
            if let Sink::H1 { w, .. } = sink {
                if !http10 {
                    let mut out = Vec::with_capacity(256);
                    write_response_head(&mut out, &resp, &[], &Edits::NONE, true);
                    write_vec_timeout(*w, out, x.idle)
                        .await
                        .map_err(ProxyError::ClientIo)?;
                    if status == 100 {
                        progress.continued.set(true);
                    }
                }
            }
            continue;
        }
        if let Some(gate) = x.attempt.gate {
            if gate.retries(status, &|n| resp.header(n), progress) {
                return Err(ProxyError::Retried);
            }
        }
        progress.status.set(status);
        let edits = x.response.edits(&|n| resp.header(n).is_some());
        let kind = resp.body();
        let mut state = BodyState::new(kind);
        let (keep_client, reuse) = match sink {
            Sink::H1 { w, client_keep } => {
                let dechunk = http10 && kind == BodyKind::Chunked;
                let keep_client =
                    *client_keep && !http10 && kind != BodyKind::UntilClose && !cx.draining();
                let mut out = Vec::with_capacity(1024);
                if dechunk {
                    ringside_codec::write_response_head_dechunked(&mut out, &resp, &[], &edits);
                } else {
                    write_response_head(&mut out, &resp, &[], &edits, keep_client);
                }
                progress.head_sent.set(true);
                relay_response_body(
                    upr,
                    upbuf,
                    *w,
                    &mut state,
                    dechunk,
                    out,
                    READ_TIMEOUT,
                    x.idle,
                    &progress.bytes_out,
                )
                .await
                .map_err(|e| match e {
                    BodyRelayError::Upstream(e) | BodyRelayError::Client(e) => e,
                })?;
                (keep_client, resp.keep_alive() && upbuf.is_empty())
            }
            Sink::H2 { respond } => {
                let h2head = convert::response_from_h1(&resp, &edits)?;
                let end = state.is_done();
                let mut down = respond
                    .borrow_mut()
                    .send_response(h2head, end)
                    .map_err(ProxyError::ClientStream)?;
                progress.head_sent.set(true);
                if !end {
                    relay_to_h2(upr, upbuf, &mut state, &mut down, x.idle, progress).await?;
                }
                let reuse = resp.keep_alive() && kind != BodyKind::UntilClose && upbuf.is_empty();
                (false, reuse)
            }
            Sink::Discard => {
                progress.head_sent.set(true);
                drain(upr, upbuf, &mut state).await?;
                (
                    false,
                    resp.keep_alive() && kind != BodyKind::UntilClose && upbuf.is_empty(),
                )
            }
        };
        return Ok(Attempt::Final { keep_client, reuse });
    }
}

/// Reads one response head from the upstream.
async fn read_head(
    upr: &mut ConnRead,
    upbuf: &mut ReadBuf,
    method: &str,
    got_bytes: &mut bool,
) -> Result<(ResponseHead, usize), ProxyError> {
    loop {
        if !upbuf.is_empty() {
            *got_bytes = true;
            match parse_response(upbuf.data(), MAX_RESPONSE_HEAD, method) {
                Ok(Some(parsed)) => return Ok(parsed),
                Ok(None) => {}
                Err(e) => return Err(ProxyError::UpstreamInvalid(e.to_string())),
            }
        }
        // Abandoned on timeout: the connection is then dropped, never pooled.
        match upbuf
            .fill_or_abandon(upr, MAX_RESPONSE_HEAD, crate::cx::io::sleep(READ_TIMEOUT))
            .await
        {
            Ok(Fill::Data) => {}
            Ok(Fill::Eof) if !*got_bytes => return Err(ProxyError::UpstreamClosedEarly),
            Ok(Fill::Eof) => {
                return Err(ProxyError::UpstreamInvalid(
                    "upstream closed the connection mid-head".into(),
                ))
            }
            Ok(Fill::Stopped) => return Err(ProxyError::Timeout),
            Ok(Fill::Full) => {
                return Err(ProxyError::UpstreamInvalid(
                    "response head too large".into(),
                ))
            }
            Err(e) if !*got_bytes && is_reset(&e) => return Err(ProxyError::UpstreamClosedEarly),
            Err(e) => return Err(ProxyError::UpstreamIo(e)),
        }
    }
}

/// `101 Switching Protocols`: an HTTP/1.1 client gets it as it is; an HTTP/2 client's
/// WebSocket stream gets `200` with the upstream's `sec-websocket-*` fields.
async fn switch(
    sink: &mut Sink<'_>,
    resp: &ResponseHead,
    x: &Exchange<'_>,
    progress: &Progress,
) -> Result<Attempt, ProxyError> {
    progress.head_sent.set(true);
    match sink {
        Sink::H1 { w, .. } => {
            let mut out = Vec::with_capacity(512);
            write_response_head(&mut out, resp, &[], &Edits::NONE, true);
            progress.status.set(101);
            write_vec_timeout(*w, out, x.idle)
                .await
                .map_err(ProxyError::ClientIo)?;
            Ok(Attempt::Upgraded(None))
        }
        Sink::H2 { respond } => {
            let mut ok = http::Response::new(());
            for (name, value) in resp.headers() {
                let lower = name.to_ascii_lowercase();
                if lower.starts_with("sec-websocket-") && lower != "sec-websocket-accept" {
                    if let (Ok(n), Ok(v)) = (
                        http::header::HeaderName::from_bytes(lower.as_bytes()),
                        http::HeaderValue::from_bytes(value),
                    ) {
                        ok.headers_mut().append(n, v);
                    }
                }
            }
            progress.status.set(200);
            let stream = respond
                .borrow_mut()
                .send_response(ok, false)
                .map_err(ProxyError::ClientStream)?;
            Ok(Attempt::Upgraded(Some(stream)))
        }
        // Upgrades are never mirrored.
        Sink::Discard => Err(ProxyError::UpstreamInvalid("101 to a copy".into())),
    }
}

/// Reads a response body to its end and drops it (a mirrored copy's answer).
async fn drain(
    r: &mut ConnRead,
    buf: &mut ReadBuf,
    state: &mut BodyState,
) -> Result<(), ProxyError> {
    loop {
        let n = state
            .take(buf.data(), |_| {})
            .map_err(|e| ProxyError::UpstreamInvalid(e.to_string()))?;
        buf.consume(n);
        if state.is_done() {
            return Ok(());
        }
        match buf
            .fill(r, BODY_CHUNK, crate::cx::io::sleep(READ_TIMEOUT))
            .await
        {
            Ok(Fill::Data) | Ok(Fill::Full) => {}
            Ok(Fill::Eof) if matches!(state, BodyState::UntilClose) => return Ok(()),
            Ok(Fill::Eof) => return Err(ProxyError::UpstreamClosedEarly),
            Ok(Fill::Stopped) => return Err(ProxyError::Timeout),
            Err(e) => return Err(ProxyError::UpstreamIo(e)),
        }
    }
}

/// An HTTP/1.1 response body de-framed into an HTTP/2 client's DATA frames; chunked
/// trailers become HTTP/2 trailers.
async fn relay_to_h2(
    r: &mut ConnRead,
    buf: &mut ReadBuf,
    state: &mut BodyState,
    down: &mut SendStream<Bytes>,
    idle: std::time::Duration,
    progress: &Progress,
) -> Result<(), ProxyError> {
    let mut trailer_lines = Vec::new();
    loop {
        if !buf.is_empty() {
            let mut ranges = Vec::new();
            let n = state
                .take_with_trailers(buf.data(), |r| ranges.push(r), &mut trailer_lines)
                .map_err(|e| ProxyError::UpstreamInvalid(e.to_string()))?;
            for range in ranges {
                let chunk = buf.data().get(range).unwrap_or_default();
                let len = chunk.len();
                send_all(down, Bytes::copy_from_slice(chunk))
                    .await
                    .map_err(ProxyError::ClientStream)?;
                progress
                    .bytes_out
                    .set(progress.bytes_out.get() + len as u64);
            }
            buf.consume(n);
        }
        if state.is_done() {
            break;
        }
        match buf.fill(r, BODY_CHUNK, crate::cx::io::sleep(idle)).await {
            Ok(Fill::Data) | Ok(Fill::Full) => {}
            Ok(Fill::Eof) if matches!(state, BodyState::UntilClose) => break,
            Ok(Fill::Eof) => {
                return Err(ProxyError::UpstreamInvalid(
                    "upstream closed the connection mid-body".into(),
                ))
            }
            Ok(Fill::Stopped) => return Err(ProxyError::Timeout),
            Err(e) => return Err(ProxyError::UpstreamIo(e)),
        }
    }
    match trailer_map(&trailer_lines) {
        Some(t) => down.send_trailers(t),
        None => down.send_data(Bytes::new(), true),
    }
    .map_err(ProxyError::ClientStream)
}

fn is_reset(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::BrokenPipe
    )
}
