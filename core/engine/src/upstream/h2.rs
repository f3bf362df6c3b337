//! The HTTP/2 upstream client: one stream on this worker's multiplexed connection to an
//! endpoint (`h2_pool.rs`), for an HTTP/1.1 or an HTTP/2 client.
//!
//! The request head loses its hop-by-hop fields and gains `:scheme`/`:authority`, with the
//! proxy's fields and the stages' edits; an extended CONNECT (RFC 8441) keeps its
//! `:protocol`. The request body streams as DATA frames under flow control: de-framed from an
//! HTTP/1.1 client's length or chunked framing (its chunked trailers become HTTP/2
//! trailers), or relayed frame by frame from an HTTP/2 client. The response head goes
//! through the stages' response hooks, then to the client: as HTTP/2, or as HTTP/1.1 with its
//! `content-length` when it has one, else chunked (HTTP/1.1 clients) or delimited by closing
//! the connection (HTTP/1.0); response trailers (gRPC's `grpc-status`...) go into the chunked
//! trailer section when the HTTP/1.1 client said `TE: trailers`, the only case in which it
//! reads them. An HTTP/1.1 upgrade to an HTTP/2 cluster is refused with 501.

use std::cell::Cell;

use bytes::Bytes;
use h2::{RecvStream, SendStream};
use ringside_codec::Version;
use ringside_config::Cluster;

use super::{Active, Client, Down, Ended, Exchange, Progress, Sink, Source, UPSTREAM_READ_TIMEOUT};
use crate::cx::error::ProxyError;
use crate::cx::io::{write_vec_timeout, Fill};
use crate::cx::Cx;
use crate::upstream::body::{trailer_map, BodyState, BODY_CHUNK};
use crate::upstream::cluster::ClusterState;
use crate::upstream::convert;
use crate::upstream::relay::{h2_to_h2, next_data, send_all, trailers, RelayError};

/// One exchange on a stream. A stream the upstream never processed — above the last stream
/// ID of its GOAWAY, or opened on a connection it had already sent GOAWAY on — is tried once
/// more on another connection (RFC 9113 §6.8: it is safe whatever the method), when its
/// request can be sent again: no body, or a body kept in memory, and nothing of the response
/// went to the client. The GOAWAY'd connection takes no new stream; the streams it did
/// process finish on it.
pub(crate) async fn call(
    client: Client<'_>,
    cluster: &Cluster,
    state: &ClusterState,
    x: &Exchange<'_>,
    down: &mut Down<'_>,
    progress: &Progress,
) -> Result<Ended, ProxyError> {
    let resendable = x.attempt.replay.is_some() || no_body(x, down);
    let mut tried = false;
    loop {
        match call_once(client, cluster, state, x, down, progress).await {
            Err(e) if e.unprocessed() && resendable && !tried && !progress.head_sent.get() => {
                tracing::debug!(cluster = %cluster.name, error = %e, "upstream h2 stream not processed (GOAWAY); trying a new connection");
                tried = true;
            }
            r => return r,
        }
    }
}

/// The client's request has nothing to send after its head (a kept body aside).
fn no_body(x: &Exchange<'_>, down: &Down<'_>) -> bool {
    match down {
        Down::H1(_) => BodyState::new(x.head.body()).is_done(),
        Down::H2(d) => d.body.is_end_stream() && d.pending.is_empty(),
        Down::Discard => true,
    }
}

async fn call_once(
    client: Client<'_>,
    cluster: &Cluster,
    state: &ClusterState,
    x: &Exchange<'_>,
    down: &mut Down<'_>,
    progress: &Progress,
) -> Result<Ended, ProxyError> {
    let head = x.head;
    let scheme = if cluster.tls.is_some() || cluster.mtls.is_some() {
        "https"
    } else {
        "http"
    };
    let edits = x.edits;
    let req = match down {
        Down::H1(_) | Down::Discard => {
            if head.upgrade().is_some() {
                return Err(ProxyError::NotImplemented);
            }
            convert::request_from_h1(head, scheme, x.set, edits)?
        }
        Down::H2(d) => convert::request_h2_to_h2(d.parts, head, scheme, x.set, edits)?,
    };
    let (lease, ep, addr) =
        super::h2_pool::acquire(client, cluster, state, x.hash, x.attempt.avoid).await?;
    let stats = client.cx.stats.cluster(&cluster.name);
    let active = Active::start(state, ep, &stats, addr, progress);
    let replay = x.attempt.replay;
    // A kept body is sent from memory; the client's own body was read already.
    let mut h1_body = match replay {
        Some(_) => BodyState::Done,
        None => BodyState::new(head.body()),
    };
    let eos = match replay {
        Some(r) => r.is_empty(),
        None => no_body(x, down),
    };
    let opened = match lease.sender().ready().await {
        Ok(mut sender) => sender.send_request(req, eos),
        Err(e) => Err(e),
    };
    let (resp_fut, mut up_send) =
        opened.map_err(|e| lease.failed(ProxyError::UpstreamStream(e)))?;
    let limit = x.body_limit;
    let idle = x.idle;
    let sent = Cell::new(0u64);
    let (mut source, mut sink) = down.split(&mut h1_body);
    let upload = async {
        match replay {
            _ if eos => Ok(()),
            Some(r) => upload_kept(r, &mut up_send, &sent).await,
            None => upload(&mut source, &mut up_send, limit, &sent, idle).await,
        }
    };
    let download = async {
        let resp = resp_fut.await.map_err(ProxyError::UpstreamStream)?;
        let (parts, up_body) = resp.into_parts();
        if let Some(gate) = x.attempt.gate {
            let header = |n: &str| parts.headers.get(n).map(http::HeaderValue::as_bytes);
            if gate.retries(parts.status.as_u16(), &header, progress) {
                return Err(ProxyError::Retried);
            }
        }
        progress.status.set(parts.status.as_u16());
        let edits = x.response.edits(&|n| parts.headers.contains_key(n));
        respond(&mut sink, client.cx, x, parts, up_body, &edits, progress).await
    };
    // Once the response is complete, a client that has not finished its body gets its
    // connection (or stream) closed rather than waited for.
    let outcome = super::upload_and_download(
        upload,
        eos,
        download,
        |e| matches!(e, ProxyError::UpstreamStream(_)),
        || false,
    )
    .await;
    progress.bytes_in.set(sent.get());
    if let Err(e) = &outcome {
        active.failed(e, false);
    }
    drop(active);
    let (close, upload_result) = outcome.map_err(|e| lease.failed(e))?;
    drop(lease);
    let body_complete = matches!(upload_result, Some(Ok(())));
    Ok(Ended {
        keep: !close && body_complete,
    })
}

/// Sends the rest of the body, then its trailers or the end of the stream.
/// `Err(UpstreamStream)`: the upstream stopped reading; any other error is the client's.
async fn upload(
    source: &mut Source<'_>,
    up: &mut SendStream<Bytes>,
    limit: Option<u64>,
    sent: &Cell<u64>,
    idle: std::time::Duration,
) -> Result<(), ProxyError> {
    {
        match source {
            Source::H1 { r, buf, state } => {
                let mut trailer_lines = Vec::new();
                while !state.is_done() {
                    if buf.is_empty() {
                        match buf.fill(*r, BODY_CHUNK, crate::cx::io::sleep(idle)).await {
                            Ok(Fill::Data) | Ok(Fill::Full) => {}
                            Ok(Fill::Eof) => return Err(ProxyError::ClientGone),
                            Ok(Fill::Stopped) => {
                                return Err(ProxyError::BadRequest("request body timeout".into()))
                            }
                            Err(e) => return Err(ProxyError::ClientIo(e)),
                        }
                    }
                    let mut ranges = Vec::new();
                    let n = state
                        .take_with_trailers(buf.data(), |r| ranges.push(r), &mut trailer_lines)
                        .map_err(|e| ProxyError::BadRequest(e.to_string()))?;
                    for range in ranges {
                        let chunk =
                            Bytes::copy_from_slice(buf.data().get(range).unwrap_or_default());
                        sent.set(sent.get() + chunk.len() as u64);
                        if limit.is_some_and(|l| sent.get() > l) {
                            return Err(ProxyError::BodyTooLarge);
                        }
                        // The upstream stopped reading (it answered early): drain quietly.
                        let _ = send_all(up, chunk).await;
                    }
                    buf.consume(n);
                }
                let _ = match trailer_map(&trailer_lines) {
                    Some(t) => up.send_trailers(t),
                    None => up.send_data(Bytes::new(), true),
                };
                Ok(())
            }
            Source::Kept => Ok(()),
            Source::H2 { body, pending } => {
                for chunk in std::mem::take(*pending) {
                    sent.set(sent.get() + chunk.len() as u64);
                    send_all(up, chunk)
                        .await
                        .map_err(ProxyError::UpstreamStream)?;
                }
                h2_to_h2(body, up, idle, sent, limit)
                    .await
                    .map_err(|e| match e {
                        RelayError::From(Some(e)) => ProxyError::ClientStream(e),
                        RelayError::From(None) => {
                            ProxyError::BadRequest("request body timeout".into())
                        }
                        RelayError::TooLarge => ProxyError::BodyTooLarge,
                        RelayError::To(e) => ProxyError::UpstreamStream(
                            e.unwrap_or_else(|| h2::Error::from(h2::Reason::CANCEL)),
                        ),
                    })
            }
        }
    }
}

/// Sends a kept body (`retry.rs`), then its trailers or the end of the stream.
async fn upload_kept(
    kept: &super::retry::Replay,
    up: &mut SendStream<Bytes>,
    sent: &Cell<u64>,
) -> Result<(), ProxyError> {
    for chunk in &kept.chunks {
        sent.set(sent.get() + chunk.len() as u64);
        send_all(up, chunk.clone())
            .await
            .map_err(ProxyError::UpstreamStream)?;
    }
    match &kept.trailers {
        Some(t) => up.send_trailers(t.clone()),
        None => up.send_data(Bytes::new(), true),
    }
    .map_err(ProxyError::UpstreamStream)
}

/// Sends the response (head with `edits`, body, trailers) to the client. Returns whether an
/// HTTP/1.1 client's connection must close.
#[allow(clippy::too_many_arguments)]
async fn respond(
    sink: &mut Sink<'_>,
    cx: &Cx,
    x: &Exchange<'_>,
    parts: http::response::Parts,
    mut up_body: RecvStream,
    edits: &ringside_codec::Edits,
    progress: &Progress,
) -> Result<bool, ProxyError> {
    let idle = x.idle;
    match sink {
        Sink::Discard => {
            progress.head_sent.set(true);
            while let Some(data) = next_data(&mut up_body, UPSTREAM_READ_TIMEOUT)
                .await
                .map_err(|_| ProxyError::Timeout)?
            {
                let _ = up_body.flow_control().release_capacity(data.len());
            }
            Ok(true)
        }
        Sink::H2 { respond } => {
            let head = convert::response_h2_to_h2(&parts, edits);
            let end = up_body.is_end_stream();
            let mut down = respond
                .borrow_mut()
                .send_response(head, end)
                .map_err(ProxyError::ClientStream)?;
            progress.head_sent.set(true);
            if !end {
                h2_to_h2(&mut up_body, &mut down, idle, &progress.bytes_out, None)
                    .await
                    .map_err(|e| match e {
                        RelayError::From(Some(e)) => ProxyError::UpstreamStream(e),
                        RelayError::From(None) => ProxyError::Timeout,
                        RelayError::To(Some(e)) => ProxyError::ClientStream(e),
                        RelayError::To(None) | RelayError::TooLarge => ProxyError::ClientGone,
                    })?;
            }
            Ok(true)
        }
        Sink::H1 { w, client_keep } => {
            let head = x.head;
            let http10 = head.version() == Version::Http10;
            let wants_trailers = head.header("te").is_some_and(|v| {
                String::from_utf8_lossy(v)
                    .to_ascii_lowercase()
                    .contains("trailers")
            });
            let status = parts.status.as_u16();
            let no_body = head.method() == "HEAD"
                || status == 204
                || status == 304
                || (100..200).contains(&status);
            let has_length = parts.headers.contains_key("content-length");
            let chunked = !no_body && !has_length && !http10;
            let close = !*client_keep || cx.draining() || (!no_body && !has_length && http10);
            let mut out = Vec::with_capacity(1024);
            convert::write_h1_response_head(&mut out, &parts, edits, chunked, close);
            progress.head_sent.set(true);
            if no_body {
                write_vec_timeout(*w, out, idle)
                    .await
                    .map_err(ProxyError::ClientIo)?;
                return Ok(close);
            }
            let mut pending = out;
            loop {
                match next_data(&mut up_body, UPSTREAM_READ_TIMEOUT).await {
                    Ok(Some(data)) => {
                        let n = data.len();
                        if chunked {
                            convert::write_h1_chunk(&mut pending, &data);
                        } else {
                            pending.extend_from_slice(&data);
                        }
                        progress
                            .bytes_out
                            .set(progress.bytes_out.get() + pending.len() as u64);
                        write_vec_timeout(*w, std::mem::take(&mut pending), idle)
                            .await
                            .map_err(ProxyError::ClientIo)?;
                        let _ = up_body.flow_control().release_capacity(n);
                    }
                    Ok(None) => break,
                    Err(RelayError::From(Some(e))) => return Err(ProxyError::UpstreamStream(e)),
                    Err(_) => return Err(ProxyError::Timeout),
                }
            }
            let t = trailers(&mut up_body, UPSTREAM_READ_TIMEOUT)
                .await
                .map_err(|e| match e {
                    RelayError::From(Some(e)) => ProxyError::UpstreamStream(e),
                    _ => ProxyError::Timeout,
                })?;
            if chunked {
                convert::write_h1_trailers(&mut pending, t.as_ref().filter(|_| wants_trailers));
            }
            if !pending.is_empty() {
                progress
                    .bytes_out
                    .set(progress.bytes_out.get() + pending.len() as u64);
                write_vec_timeout(*w, pending, idle)
                    .await
                    .map_err(ProxyError::ClientIo)?;
            }
            Ok(close)
        }
    }
}
