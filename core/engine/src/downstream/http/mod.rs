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
pub(crate) mod route;

use std::rc::Rc;
use std::time::Duration;

use monoio::io::{AsyncReadRent, AsyncWriteRent};
use monoio::net::TcpStream;
use monoio::time::Instant;
use ringside_codec::{parse_request, Limits, RequestHead};
use ringside_config::{HttpListener, Listener, ListenerKind};

use crate::cx::conn::{ConnRead, ConnWrite};
use crate::cx::error::ProxyError;
use crate::cx::io::{either, write_vec_timeout, Fill, ReadBuf};
use crate::cx::metrics::ListenerStats;
use crate::cx::trace::TraceContext;
use crate::downstream::Worker;

/// Initial read buffer per connection; it grows for large heads and bodies and shrinks back
/// when the connection goes idle.
const INITIAL_BUF: usize = 4096;
/// After an error response, how long to keep reading (and discarding) what the client still
/// sends, so that closing does not reset the connection before it has read the response.
const LINGER: Duration = Duration::from_secs(2);
/// See [`drain_grace`].
const DRAIN_IDLE_GRACE: Duration = Duration::from_secs(1);

/// The HTTP/2 connection preface (RFC 9113 §3.4): a plaintext connection that starts with it
/// is h2c with prior knowledge.
pub(crate) const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub(crate) use crate::cx::ClientConn;

/// How an HTTP/1 connection ended.
pub(crate) enum Ended {
    Closed,
    /// The client opened with the HTTP/2 preface: the socket and the bytes read so far.
    H2c(TcpStream, Vec<u8>),
}

/// Serves HTTP/1.1 on a connection; `initial` holds bytes already read from it (sniffing).
pub(crate) async fn serve(
    worker: Rc<Worker>,
    listener: Rc<str>,
    mut r: ConnRead,
    mut w: ConnWrite,
    initial: Vec<u8>,
    conn: Rc<ClientConn>,
    stats: Rc<ListenerStats>,
) -> Ended {
    let peer = conn.peer;
    let mut buf = ReadBuf::with_capacity(INITIAL_BUF);
    buf.extend(&initial);
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
            Ok(Some(Read::Head(head))) => head,
            Ok(Some(Read::H2Preface)) => {
                return match (r, w) {
                    (ConnRead::Plain(r), ConnWrite::Plain(w)) => match r.reunite(w) {
                        Ok(stream) => Ended::H2c(stream, buf.data().to_vec()),
                        Err(_) => Ended::Closed,
                    },
                    // h2 over TLS is chosen by ALPN, not by a preface.
                    _ => Ended::Closed,
                };
            }
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "bad request head");
                if e.answerable() {
                    stats.request_done("", e.status(), std::time::Duration::ZERO);
                    let mut out = Vec::with_capacity(256);
                    crate::pipeline::answer::Answer::error(&e, false, None).h1(
                        &mut out,
                        true,
                        false,
                        &ringside_codec::Edits::NONE,
                    );
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
        let Some((l, http, compiled)) = view.http(&listener) else {
            break;
        };
        let mut ds = route::Downstream {
            r: &mut r,
            w: &mut w,
            buf: &mut buf,
        };
        let started = std::time::Instant::now();
        let started_at = std::time::SystemTime::now();
        let snap = &view.snap.config.proxy;
        let trace = TraceContext::continue_or_start(
            |n| head.header(n),
            || worker.cx.random(),
            snap.trace_sample_rate,
        );
        stats.in_flight.set(stats.in_flight.get() + 1);
        let incoming = route::Incoming {
            head: &head,
            peer,
            trace: &trace,
            conn: &conn,
            stats: &stats,
        };
        // Boxed: the exchange's state machine (forwarding, body relays, tunnels) is large,
        // and an idle keep-alive connection should not carry it while it waits.
        let outcome = Box::pin(route::handle(
            &worker, &view, l, http, compiled, &incoming, &mut ds,
        ))
        .await;
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
                    identity: conn.identity.as_deref(),
                    h2: false,
                    trace: &trace,
                    outcome: &outcome,
                },
            );
            worker.cx.telemetry.log(&log_path.get(&log.path), line);
        }
        if trace.sampled && snap.otlp_endpoint.is_some() {
            worker.cx.telemetry.span(access::span(
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
    Ended::Closed
}

/// A finished request, for the access log and the trace exporter.
pub(crate) struct Finished<'a> {
    pub(crate) started_at: std::time::SystemTime,
    pub(crate) took: Duration,
    pub(crate) head: &'a RequestHead,
    pub(crate) conn: &'a ClientConn,
    pub(crate) trace: &'a TraceContext,
    pub(crate) outcome: &'a route::Outcome<'a>,
    pub(crate) h2: bool,
}

/// Logs a finished request (access log) and exports its span, as configured.
pub(crate) fn record(worker: &Worker, listener: &str, http: &HttpListener, f: &Finished<'_>) {
    if let Some(log) = &http.access_log {
        let line = access::line(
            log.format,
            &access::Entry {
                time: f.started_at,
                took: f.took,
                listener,
                head: f.head,
                peer: f.conn.peer,
                identity: f.conn.identity.as_deref(),
                h2: f.h2,
                trace: f.trace,
                outcome: f.outcome,
            },
        );
        worker
            .cx
            .telemetry
            .log(&crate::cx::telemetry::log_path(&log.path), line);
    }
    if f.trace.sampled
        && worker
            .views
            .current()
            .snap
            .config
            .proxy
            .otlp_endpoint
            .is_some()
    {
        worker.cx.telemetry.span(access::span(
            f.started_at,
            listener,
            f.head,
            f.conn.peer,
            f.trace,
            f.outcome,
        ));
    }
}

/// What [`read_head`] found.
enum Read {
    Head(RequestHead),
    H2Preface,
}

/// Reads until one request head is complete. `Ok(None)`: the connection ended cleanly (EOF,
/// idle timeout, or drain while idle).
async fn read_head(
    worker: &Worker,
    r: &mut ConnRead,
    buf: &mut ReadBuf,
    l: &Listener,
    http: &HttpListener,
    first: bool,
) -> Result<Option<Read>, ProxyError> {
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
            let data = buf.data();
            let n = data.len().min(H2_PREFACE.len());
            if first && data.get(..n) == H2_PREFACE.get(..n) {
                if n == H2_PREFACE.len() {
                    return Ok(Some(Read::H2Preface));
                }
            } else if let Some((head, n)) = parse_request(data, &limits)? {
                buf.consume(n);
                return Ok(Some(Read::Head(head)));
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
                    either(crate::cx::io::sleep(l.idle_timeout), drain_grace(worker)),
                )
                .await
            }
            (true, Some(d)) => {
                buf.fill(
                    r,
                    cap,
                    either(crate::cx::io::sleep_until(d), drain_grace(worker)),
                )
                .await
            }
            (false, d) => {
                let d = d.unwrap_or_else(|| Instant::now() + head_timeout);
                buf.fill(r, cap, crate::cx::io::sleep_until(d)).await
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
    worker.cx.drain.wait().await;
    crate::cx::io::sleep(DRAIN_IDLE_GRACE).await;
}

/// Half-closes and discards what the client still sends for a short while, so the response
/// already written is read before the socket closes (nginx's lingering close).
async fn linger(r: &mut ConnRead, w: &mut ConnWrite) {
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
