//! HTTP/1.1 listeners: the connection loop.
//!
//! ```text
//! accept ─▶ read head (limits, slowloris timeout) ─▶ route ─▶ direct response | forward
//!        ◀─ keep-alive: next request (pipelined bytes already buffered are served in order)
//! ```
//! Reads the listener's `HttpListener` (routes, limits) from the *current* snapshot before
//! every request, so a reload reaches open keep-alive connections. While waiting for a
//! request the connection also watches the worker's drain event: an idle connection closes
//! at once when draining starts, one with a request in flight finishes it and answers with
//! `Connection: close`.

mod access;
mod body;
mod forward;
mod respond;
mod route;

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use monoio::io::{AsyncReadRent, AsyncWriteRent, OwnedReadHalf, OwnedWriteHalf, Splitable};
use monoio::net::TcpStream;
use monoio::time::Instant;
use ringside_codec::{parse_request, Limits, RequestHead};
use ringside_config::{HttpListener, Listener, ListenerKind};

use crate::error::ProxyError;
use crate::io::{either, write_vec_timeout, Fill, ReadBuf};
use crate::metrics::ListenerStats;
use crate::trace::TraceContext;
use crate::worker::Worker;

/// Initial read buffer per connection; it grows for large heads and bodies and shrinks back
/// when the connection goes idle.
const INITIAL_BUF: usize = 4096;
/// After an error response, how long to keep reading (and discarding) what the client still
/// sends, so that closing does not reset the connection before it has read the response.
const LINGER: Duration = Duration::from_secs(2);
/// See [`drain_grace`].
const DRAIN_IDLE_GRACE: Duration = Duration::from_secs(1);

pub(crate) async fn serve(
    worker: Rc<Worker>,
    listener: Rc<str>,
    stream: TcpStream,
    peer: SocketAddr,
    stats: Rc<ListenerStats>,
) {
    let _ = stream.set_nodelay(true);
    let (mut r, mut w) = stream.into_split();
    let mut buf = ReadBuf::with_capacity(INITIAL_BUF);
    let mut first = true;
    let mut log_path = access::PathCache::default();
    loop {
        let view = worker.views.current();
        let Some(l) = view.listener(&listener) else {
            break;
        };
        let ListenerKind::Http(http) = &l.kind else {
            break;
        };
        let head = match read_head(&worker, &mut r, &mut buf, l, http, first).await {
            Ok(Some(head)) => head,
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "bad request head");
                if e.answerable() {
                    stats.request_done("", e.status(), std::time::Duration::ZERO);
                    let mut out = Vec::with_capacity(256);
                    respond::error(&mut out, &e, true, false, None);
                    if write_vec_timeout(&mut w, out, l.idle_timeout).await.is_ok() {
                        linger(&mut r, &mut w).await;
                    }
                }
                break;
            }
        };
        first = false;
        // Route with the configuration current *now*: the wait for this request may have
        // spanned a reload (the limits above were the ones in force while it was read).
        let view = worker.views.current();
        let Some(l) = view.listener(&listener) else {
            break;
        };
        let ListenerKind::Http(http) = &l.kind else {
            break;
        };
        let mut ds = forward::Downstream {
            r: &mut r,
            w: &mut w,
            buf: &mut buf,
        };
        let started = std::time::Instant::now();
        let started_at = std::time::SystemTime::now();
        let snap = &view.snap.config.proxy;
        let trace = TraceContext::continue_or_start(
            |n| head.header(n),
            || worker.random(),
            snap.trace_sample_rate,
        );
        stats.in_flight.set(stats.in_flight.get() + 1);
        let incoming = route::Incoming {
            head: &head,
            peer,
            trace: &trace,
        };
        // Boxed: the exchange's state machine (forwarding, body relays, tunnels) is large,
        // and an idle keep-alive connection should not carry it while it waits.
        let outcome = Box::pin(route::handle(&worker, &view, l, http, &incoming, &mut ds)).await;
        stats.in_flight.set(stats.in_flight.get().saturating_sub(1));
        let took = started.elapsed();
        stats.request_done(outcome.route, outcome.status, took);
        if let Some(log) = &http.access_log {
            let line = access::line(
                log.format,
                &access::Entry {
                    time: started_at,
                    took,
                    listener: &listener,
                    head: &head,
                    peer,
                    trace: &trace,
                    outcome: &outcome,
                },
            );
            worker.telemetry.log(&log_path.get(&log.path), line);
        }
        if trace.sampled && snap.otlp_endpoint.is_some() {
            worker.telemetry.span(access::span(
                started_at, &listener, &head, peer, &trace, &outcome,
            ));
        }
        let after = outcome.after;
        match after {
            route::After::KeepAlive => continue,
            route::After::Close => break,
            route::After::Linger => {
                linger(&mut r, &mut w).await;
                break;
            }
        }
    }
}

/// Reads until one request head is complete. `Ok(None)`: the connection ended cleanly (EOF,
/// idle timeout, or drain while idle).
async fn read_head(
    worker: &Worker,
    r: &mut OwnedReadHalf<TcpStream>,
    buf: &mut ReadBuf,
    l: &Listener,
    http: &HttpListener,
    first: bool,
) -> Result<Option<RequestHead>, ProxyError> {
    let limits = Limits {
        max_header_bytes: http.limits.max_header_bytes,
        max_headers: http.limits.max_headers,
        max_uri_bytes: http.limits.max_uri_bytes,
    };
    let cap = http.limits.max_header_bytes.saturating_add(4096);
    let head_timeout = http.limits.request_head_timeout;
    // The first request of a connection must arrive within the head timeout (slowloris);
    // later ones may wait the idle timeout before their first byte.
    let mut deadline = (first || !buf.is_empty()).then(|| Instant::now() + head_timeout);
    loop {
        if !buf.is_empty() {
            if let Some((head, n)) = parse_request(buf.data(), &limits)? {
                buf.consume(n);
                return Ok(Some(head));
            }
        }
        let idle = buf.is_empty();
        if idle {
            buf.shrink_idle(INITIAL_BUF);
        }
        let fill = match (idle, deadline) {
            (true, None) => {
                buf.fill(
                    r,
                    cap,
                    either(crate::io::sleep(l.idle_timeout), drain_grace(worker)),
                )
                .await
            }
            (true, Some(d)) => {
                buf.fill(
                    r,
                    cap,
                    either(crate::io::sleep_until(d), drain_grace(worker)),
                )
                .await
            }
            (false, d) => {
                let d = d.unwrap_or_else(|| Instant::now() + head_timeout);
                buf.fill(r, cap, crate::io::sleep_until(d)).await
            }
        };
        match fill {
            Ok(Fill::Data) => {
                if deadline.is_none() {
                    deadline = Some(Instant::now() + head_timeout);
                }
            }
            Ok(Fill::Eof) if buf.is_empty() => return Ok(None),
            Ok(Fill::Eof) => return Err(ProxyError::ClientGone),
            Ok(Fill::Stopped) if buf.is_empty() => return Ok(None),
            Ok(Fill::Stopped) => return Err(ProxyError::HeadTimeout),
            Ok(Fill::Full) => return Err(ProxyError::HeadersTooLarge),
            Err(e) => return Err(ProxyError::ClientIo(e)),
        }
    }
}

/// While draining, an idle connection gets `DRAIN_IDLE_GRACE` to send one more request
/// (answered with `Connection: close`) before it is closed: a client that was about to reuse
/// it is told politely instead of finding it gone.
async fn drain_grace(worker: &Worker) {
    worker.drain.wait().await;
    crate::io::sleep(DRAIN_IDLE_GRACE).await;
}

/// Half-closes and discards what the client still sends for a short while, so the response
/// already written is read before the socket closes (nginx's lingering close).
async fn linger(r: &mut OwnedReadHalf<TcpStream>, w: &mut OwnedWriteHalf<TcpStream>) {
    let _ = w.shutdown().await;
    let deadline = Instant::now() + LINGER;
    let mut scratch = vec![0u8; 4096];
    loop {
        match monoio::time::timeout_at(deadline, r.read(scratch)).await {
            Ok((Ok(n), b)) if n > 0 => scratch = b,
            _ => return,
        }
    }
}
