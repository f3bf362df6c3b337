//! An HTTP/1.1 request forwarded to an HTTP/2 upstream (`protocol = "http2"`).
//!
//! The head loses its hop-by-hop fields and gains `:scheme`/`:authority`; the body is
//! de-framed from the client's length or chunked framing into DATA frames. The response head
//! goes back as HTTP/1.1: with its `content-length` when it has one, else chunked (HTTP/1.1
//! clients) or delimited by closing the connection (HTTP/1.0). Response trailers (gRPC's
//! `grpc-status`...) go into the chunked trailer section when the client said
//! `TE: trailers`, the only case in which it reads them.

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;

use bytes::Bytes;
use ringside_codec::Version;
use ringside_config::Cluster;

use super::convert;
use super::relay::{next_data, send_all, trailers, RelayError};
use crate::error::ProxyError;
use crate::http::body::BodyState;
use crate::http::route::After;
use crate::io::{write_vec_timeout, Fill};
use crate::state::ClusterState;
use crate::worker::Worker;

/// Read-buffer limit while a request body streams.
const BODY_CHUNK: usize = 64 * 1024;

/// Everything about the exchange that the HTTP/1 side provides.
pub(crate) struct FromH1<'a, 'd> {
    pub(crate) req: &'a crate::http::forward::Request<'a>,
    pub(crate) ds: &'a mut crate::http::forward::Downstream<'d>,
    pub(crate) progress: &'a crate::http::forward::Progress,
}

/// Returns whether the client connection can serve another request.
pub(crate) async fn forward(
    worker: &Rc<Worker>,
    c: &Cluster,
    cluster_idx: usize,
    state: &ClusterState,
    x: FromH1<'_, '_>,
) -> Result<After, ProxyError> {
    let FromH1 { req, ds, progress } = x;
    let head = req.head;
    if head.upgrade().is_some() {
        return Err(ProxyError::NotImplemented);
    }
    let scheme = if c.tls.is_some() || c.mtls.is_some() {
        "https"
    } else {
        "http"
    };
    let h2req = convert::request_from_h1(head, scheme, req.set, &req.piped.req.edits)?;
    let (lease, ep, addr) = super::client::acquire(worker, c, cluster_idx, state, req.hash).await?;
    let stats = worker.stats.cluster(&c.name);
    let mut active = crate::http::Active::start(state, ep, &stats, addr);
    progress.upstream.set(Some(addr));
    let mut body = BodyState::new(head.body());
    let eos = body.is_done();
    let mut sender = lease
        .sender()
        .ready()
        .await
        .map_err(ProxyError::UpstreamStream)?;
    let (resp_fut, mut up_send) = sender
        .send_request(h2req, eos)
        .map_err(ProxyError::UpstreamStream)?;
    let idle = req.idle;
    let limit = req.piped.req.body_limit;
    let crate::http::forward::Downstream {
        r: cr,
        w: cw,
        buf: cbuf,
    } = ds;
    let sent = Cell::new(0u64);
    let mut upload_result: Option<Result<(), ProxyError>> = eos.then_some(Ok(()));
    let mut upload = pin!(async {
        let mut trailer_lines = Vec::new();
        while !body.is_done() {
            if cbuf.is_empty() {
                match cbuf.fill(*cr, BODY_CHUNK, crate::io::sleep(idle)).await {
                    Ok(Fill::Data) | Ok(Fill::Full) => {}
                    Ok(Fill::Eof) => return Err(ProxyError::ClientGone),
                    Ok(Fill::Stopped) => {
                        return Err(ProxyError::BadRequest("request body timeout".into()))
                    }
                    Err(e) => return Err(ProxyError::ClientIo(e)),
                }
            }
            let mut ranges = Vec::new();
            let n = body
                .take_with_trailers(cbuf.data(), |r| ranges.push(r), &mut trailer_lines)
                .map_err(|e| ProxyError::BadRequest(e.to_string()))?;
            for range in ranges {
                let chunk = Bytes::copy_from_slice(cbuf.data().get(range).unwrap_or_default());
                sent.set(sent.get() + chunk.len() as u64);
                if limit.is_some_and(|l| sent.get() > l) {
                    return Err(ProxyError::BodyTooLarge);
                }
                // The upstream stopped reading (it answered early): drain quietly.
                let _ = send_all(&mut up_send, chunk).await;
            }
            cbuf.consume(n);
        }
        let _ = match crate::http::body::trailer_map(&trailer_lines) {
            Some(t) => up_send.send_trailers(t),
            None => up_send.send_data(Bytes::new(), true),
        };
        Ok(())
    });
    let client_keep = req.client_keep;
    let http10 = head.version() == Version::Http10;
    let wants_trailers = head.header("te").is_some_and(|v| {
        String::from_utf8_lossy(v)
            .to_ascii_lowercase()
            .contains("trailers")
    });
    let head_only = head.method() == "HEAD";
    let mut download = pin!(async {
        let resp = resp_fut.await.map_err(ProxyError::UpstreamStream)?;
        let (parts, mut up_body) = resp.into_parts();
        let status = parts.status.as_u16();
        progress.status.set(status);
        let no_body = head_only || status == 204 || status == 304 || (100..200).contains(&status);
        let has_length = parts.headers.contains_key("content-length");
        let chunked = !no_body && !has_length && !http10;
        let close = !client_keep || worker.draining() || (!no_body && !has_length && http10);
        let mut out = Vec::with_capacity(1024);
        let edits = req.piped.response_edits(&|n| parts.headers.contains_key(n));
        convert::write_h1_response_head(&mut out, &parts, &edits, chunked, close);
        progress.head_sent.set(true);
        if no_body {
            write_vec_timeout(*cw, out, idle)
                .await
                .map_err(ProxyError::ClientIo)?;
            return Ok(close);
        }
        let mut pending = out;
        loop {
            match next_data(&mut up_body, crate::http::UPSTREAM_READ_TIMEOUT).await {
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
                    write_vec_timeout(*cw, std::mem::take(&mut pending), idle)
                        .await
                        .map_err(ProxyError::ClientIo)?;
                    let _ = up_body.flow_control().release_capacity(n);
                }
                Ok(None) => break,
                Err(RelayError::From(Some(e))) => return Err(ProxyError::UpstreamStream(e)),
                Err(_) => return Err(ProxyError::Timeout),
            }
        }
        let t = trailers(&mut up_body, crate::http::UPSTREAM_READ_TIMEOUT)
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
            write_vec_timeout(*cw, pending, idle)
                .await
                .map_err(ProxyError::ClientIo)?;
        }
        Ok::<bool, ProxyError>(close)
    });
    let mut download_result: Option<bool> = None;
    let outcome = poll_fn(|cx| {
        if upload_result.is_none() {
            if let Poll::Ready(r) = upload.as_mut().poll(cx) {
                if let Err(e) = &r {
                    if !progress.head_sent.get() || download_result.is_none() {
                        let e = match e {
                            ProxyError::BodyTooLarge => ProxyError::BodyTooLarge,
                            ProxyError::ClientGone => ProxyError::ClientGone,
                            other => ProxyError::BadRequest(other.to_string()),
                        };
                        return Poll::Ready(Err(e));
                    }
                }
                upload_result = Some(r);
            }
        }
        if download_result.is_none() {
            match download.as_mut().poll(cx) {
                Poll::Ready(Ok(close)) => download_result = Some(close),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
        }
        match (&upload_result, download_result) {
            (Some(_), Some(_)) => Poll::Ready(Ok(())),
            // The response is complete but the client has not finished its body: the
            // connection cannot be reused, end here.
            (None, Some(_)) => Poll::Ready(Ok(())),
            _ => Poll::Pending,
        }
    })
    .await;
    progress.bytes_in.set(sent.get());
    progress.upstream_time.set(Some(active.started.elapsed()));
    if progress.head_sent.get() {
        active.status = Some(progress.status.get());
    }
    drop(active);
    drop(lease);
    outcome?;
    let body_complete = matches!(upload_result, Some(Ok(())));
    let close = download_result.unwrap_or(true);
    Ok(if close || !body_complete {
        After::Close
    } else {
        After::KeepAlive
    })
}
