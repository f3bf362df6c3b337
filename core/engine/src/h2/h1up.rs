//! An HTTP/2 request forwarded to an HTTP/1.1 upstream (the HTTP/1 pool).
//!
//! The request head was already translated (`convert::request_to_h1`): a body without a
//! length goes chunked, and request trailers become the chunked trailer section. The
//! response head becomes HTTP/2 without its hop-by-hop fields; its body is de-framed
//! (length, chunked or until close) into DATA frames. An extended CONNECT (RFC 8441) becomes
//! an HTTP/1.1 WebSocket upgrade; after the upstream's `101` the client gets `200` and the
//! stream carries the WebSocket bytes both ways.

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use h2::server::SendResponse;
use h2::{RecvStream, SendStream};
use ringside_codec::{parse_response, write_request_head, BodyKind, RequestHead};
use ringside_config::Cluster;

use super::convert;
use super::relay::{next_data, send_all, trailers, RelayError};
use super::stream::Sent;
use crate::error::ProxyError;
use crate::http::body::BodyState;
use crate::http::{Active, UPSTREAM_READ_TIMEOUT};
use crate::io::{write_vec_timeout, Fill, ReadBuf};
use crate::pipeline::Piped;
use crate::pool::Upstream;
use crate::state::ClusterState;
use crate::upstream::acquire;
use crate::worker::Worker;

/// Largest response head accepted from an upstream.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// Read-buffer limit while a response body streams.
const BODY_CHUNK: usize = 64 * 1024;

#[allow(clippy::too_many_arguments)]
pub(crate) async fn exchange(
    worker: &Worker,
    c: &Cluster,
    cluster_idx: usize,
    state: &ClusterState,
    head: &RequestHead,
    set: &[(&str, &[u8])],
    piped: &Piped<'_>,
    hash: Option<u64>,
    websocket: bool,
    idle: Duration,
    body: &mut RecvStream,
    respond: &RefCell<SendResponse<Bytes>>,
    sent: &Sent,
) -> Result<(), ProxyError> {
    let eos = body.is_end_stream();
    let retry_safe = head.is_idempotent() && eos;
    let mut attempt = 0;
    loop {
        let (mut up, idx) = acquire(worker, c, cluster_idx, state, hash, attempt == 0).await?;
        let stats = worker.stats.cluster(&c.name);
        let mut active = Active::start(state, idx, &stats, up.addr);
        sent.upstream.set(Some(up.addr));
        let res = once(
            &mut up, head, set, piped, websocket, idle, body, respond, sent,
        )
        .await;
        sent.upstream_time.set(Some(active.started.elapsed()));
        if sent.head.get() {
            active.status = Some(sent.status.get());
        }
        drop(active);
        match res {
            Ok(reuse) => {
                if reuse && !worker.draining() {
                    worker.pool.put(up, c.max_idle_per_endpoint, c.idle_timeout);
                }
                return Ok(());
            }
            Err(ProxyError::UpstreamClosedEarly)
                if up.reused && retry_safe && !sent.head.get() && attempt == 0 =>
            {
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// One attempt; `Ok(true)` when the upstream connection can be reused.
#[allow(clippy::too_many_arguments)]
async fn once(
    up: &mut Upstream,
    head: &RequestHead,
    set: &[(&str, &[u8])],
    piped: &Piped<'_>,
    websocket: bool,
    idle: Duration,
    body: &mut RecvStream,
    respond: &RefCell<SendResponse<Bytes>>,
    sent: &Sent,
) -> Result<bool, ProxyError> {
    let mut out = Vec::with_capacity(1024);
    write_request_head(&mut out, head, set, &piped.req.edits, websocket);
    let limit = piped.req.body_limit;
    let reused = up.reused;
    if let Err(e) = write_vec_timeout(&mut up.w, out, UPSTREAM_READ_TIMEOUT).await {
        return Err(if reused {
            ProxyError::UpstreamClosedEarly
        } else {
            ProxyError::UpstreamIo(e)
        });
    }
    let chunked = head.body() == BodyKind::Chunked;
    let eos = body.is_end_stream() || websocket;
    let bytes_in = Cell::new(0u64);
    let (result, upload_ok) = {
        let Upstream { r, w, buf, .. } = &mut *up;
        let mut upload_done = eos;
        let mut upload = pin!(async {
            if eos {
                return Ok(());
            }
            while let Some(data) = next_data(body, idle).await? {
                let n = data.len();
                if limit.is_some_and(|l| bytes_in.get() + n as u64 > l) {
                    return Err(RelayError::TooLarge);
                }
                let mut v = Vec::with_capacity(n + 16);
                if chunked {
                    convert::write_h1_chunk(&mut v, &data);
                } else {
                    v.extend_from_slice(&data);
                }
                write_vec_timeout(w, v, idle)
                    .await
                    .map_err(|_| RelayError::To(None))?;
                bytes_in.set(bytes_in.get() + n as u64);
                let _ = body.flow_control().release_capacity(n);
            }
            let t = trailers(body, idle).await?;
            if chunked {
                let mut v = Vec::with_capacity(64);
                convert::write_h1_trailers(&mut v, t.as_ref());
                write_vec_timeout(w, v, idle)
                    .await
                    .map_err(|_| RelayError::To(None))?;
            }
            Ok::<(), RelayError>(())
        });
        let mut upload_ok = eos;
        let mut download = pin!(receive(r, buf, head, piped, websocket, respond, sent, idle));
        let result = poll_fn(|cx| {
            if !upload_done {
                if let Poll::Ready(r) = upload.as_mut().poll(cx) {
                    upload_done = true;
                    match r {
                        Ok(()) => upload_ok = true,
                        Err(RelayError::From(Some(e))) => {
                            return Poll::Ready(Err(ProxyError::ClientStream(e)))
                        }
                        Err(RelayError::From(None)) => {
                            return Poll::Ready(Err(ProxyError::BadRequest(
                                "request body timeout".into(),
                            )))
                        }
                        Err(RelayError::TooLarge) => {
                            return Poll::Ready(Err(ProxyError::BodyTooLarge))
                        }
                        Err(RelayError::To(_)) => {}
                    }
                }
            }
            download.as_mut().poll(cx)
        })
        .await;
        (result, upload_ok)
    };
    sent.bytes_in.set(bytes_in.get());
    match result? {
        Received::Done { reuse } => Ok(reuse && upload_ok),
        Received::Upgraded(down) => {
            tunnel(body, down, up, idle, sent).await;
            Ok(false)
        }
    }
}

enum Received {
    Done { reuse: bool },
    Upgraded(SendStream<Bytes>),
}

#[allow(clippy::too_many_arguments)]
async fn receive(
    r: &mut crate::conn::ConnRead,
    buf: &mut ReadBuf,
    head: &RequestHead,
    piped: &Piped<'_>,
    websocket: bool,
    respond: &RefCell<SendResponse<Bytes>>,
    sent: &Sent,
    idle: Duration,
) -> Result<Received, ProxyError> {
    let mut got_bytes = false;
    let (resp, n) = loop {
        if !buf.is_empty() {
            got_bytes = true;
            match parse_response(buf.data(), MAX_RESPONSE_HEAD, head.method()) {
                Ok(Some((resp, n))) if resp.is_informational() && resp.status() != 101 => {
                    buf.consume(n);
                    continue;
                }
                Ok(Some(parsed)) => break parsed,
                Ok(None) => {}
                Err(e) => return Err(ProxyError::UpstreamInvalid(e.to_string())),
            }
        }
        match buf
            .fill(
                r,
                MAX_RESPONSE_HEAD,
                crate::io::sleep(UPSTREAM_READ_TIMEOUT),
            )
            .await
        {
            Ok(Fill::Data) => {}
            Ok(Fill::Eof) if !got_bytes => return Err(ProxyError::UpstreamClosedEarly),
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
            Err(e) if !got_bytes => {
                tracing::debug!(error = %e, "upstream read failed before the response");
                return Err(ProxyError::UpstreamClosedEarly);
            }
            Err(e) => return Err(ProxyError::UpstreamIo(e)),
        }
    };
    buf.consume(n);
    let status = resp.status();
    if websocket {
        if status != 101 {
            // Refused upgrade: relay the answer as an ordinary response.
            return relay_body(r, buf, resp, piped, respond, sent, idle).await;
        }
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
        sent.status.set(200);
        let down = respond
            .borrow_mut()
            .send_response(ok, false)
            .map_err(ProxyError::ClientStream)?;
        sent.head.set(true);
        return Ok(Received::Upgraded(down));
    }
    if status == 101 {
        return Err(ProxyError::UpstreamInvalid(
            "101 without an upgrade request".into(),
        ));
    }
    relay_body(r, buf, resp, piped, respond, sent, idle).await
}

async fn relay_body(
    r: &mut crate::conn::ConnRead,
    buf: &mut ReadBuf,
    resp: ringside_codec::ResponseHead,
    piped: &Piped<'_>,
    respond: &RefCell<SendResponse<Bytes>>,
    sent: &Sent,
    idle: Duration,
) -> Result<Received, ProxyError> {
    let kind = resp.body();
    let edits = piped.response_edits(&|n| resp.header(n).is_some());
    let head = convert::response_from_h1(&resp, &edits)?;
    sent.status.set(resp.status());
    let mut state = BodyState::new(kind);
    let end = state.is_done();
    let mut down = respond
        .borrow_mut()
        .send_response(head, end)
        .map_err(ProxyError::ClientStream)?;
    sent.head.set(true);
    if end {
        return Ok(Received::Done {
            reuse: resp.keep_alive() && buf.is_empty(),
        });
    }
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
                send_all(&mut down, Bytes::copy_from_slice(chunk))
                    .await
                    .map_err(ProxyError::ClientStream)?;
                sent.bytes_out.set(sent.bytes_out.get() + len as u64);
            }
            buf.consume(n);
        }
        if state.is_done() {
            break;
        }
        match buf.fill(r, BODY_CHUNK, crate::io::sleep(idle)).await {
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
    match crate::http::body::trailer_map(&trailer_lines) {
        Some(t) => down.send_trailers(t),
        None => down.send_data(Bytes::new(), true),
    }
    .map_err(ProxyError::ClientStream)?;
    let reuse = resp.keep_alive() && kind != BodyKind::UntilClose && buf.is_empty();
    Ok(Received::Done { reuse })
}

/// WebSocket bytes both ways between an HTTP/2 stream and an upgraded HTTP/1.1 connection.
async fn tunnel(
    body: &mut RecvStream,
    mut down: SendStream<Bytes>,
    up: &mut Upstream,
    idle: Duration,
    sent: &Sent,
) {
    let Upstream { r, w, buf, .. } = up;
    let mut to_up = pin!(async {
        while let Ok(Some(data)) = next_data(body, idle).await {
            let n = data.len();
            if write_vec_timeout(w, data.to_vec(), idle).await.is_err() {
                break;
            }
            let _ = body.flow_control().release_capacity(n);
        }
        let _ = monoio::io::AsyncWriteRent::shutdown(w).await;
    });
    let mut to_client = pin!(async {
        loop {
            if !buf.is_empty() {
                let chunk = Bytes::copy_from_slice(buf.data());
                let n = chunk.len();
                if send_all(&mut down, chunk).await.is_err() {
                    return;
                }
                sent.bytes_out.set(sent.bytes_out.get() + n as u64);
                buf.consume(n);
            }
            match buf.fill(r, BODY_CHUNK, crate::io::sleep(idle)).await {
                Ok(Fill::Data) | Ok(Fill::Full) => {}
                _ => break,
            }
        }
        let _ = down.send_data(Bytes::new(), true);
    });
    let (mut a, mut b) = (false, false);
    poll_fn(|cx| {
        if !a && to_up.as_mut().poll(cx).is_ready() {
            a = true;
        }
        if !b && to_client.as_mut().poll(cx).is_ready() {
            b = true;
        }
        if a && b {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
}
