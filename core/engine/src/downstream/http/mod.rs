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

use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use monoio::io::{AsyncReadRent, AsyncWriteRent};
use monoio::time::Instant;
use ringside_codec::{parse_request, RequestHead};
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
/// A connection waiting for its next request keeps its read buffer in the pending read this
/// long: a busy client's next request is read with one operation. After that it is idle and
/// waits in [`cold_wait`], holding no buffer.
const HOT: Duration = Duration::from_millis(100);

/// The HTTP/2 connection preface (RFC 9113 §3.4): a plaintext connection that starts with it
/// is h2c with prior knowledge.
pub(crate) const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub(crate) use crate::cx::ClientConn;

/// The connection-level state every request of an HTTP/1 connection shares.
pub(crate) struct Conn {
    worker: Rc<Worker>,
    listener: Rc<str>,
    r: ConnRead,
    w: ConnWrite,
    buf: ReadBuf,
    conn: Rc<ClientConn>,
    stats: Rc<ListenerStats>,
    log_path: access::PathCache,
}

impl Conn {
    pub(crate) fn new(
        worker: Rc<Worker>,
        listener: Rc<str>,
        r: ConnRead,
        w: ConnWrite,
        conn: Rc<ClientConn>,
        stats: Rc<ListenerStats>,
    ) -> Conn {
        Conn {
            worker,
            listener,
            r,
            w,
            buf: ReadBuf::with_capacity(INITIAL_BUF),
            conn,
            stats,
            log_path: access::PathCache::default(),
        }
    }

    /// Bytes already read from the connection (sniffing), served before the socket's.
    pub(crate) fn buffer(&mut self, bytes: &[u8]) {
        self.buf.extend(bytes);
    }
}

/// Serves HTTP/1.1 on a connection, and hands it to HTTP/2 if the client opens with the h2c
/// preface.
///
/// This future is what a keep-alive connection holds while it waits: the connection's state
/// and the wait for the next head, nothing else. Each request's work ([`next`]) and the
/// HTTP/2 server are boxed, so their much larger state machines exist only while they run;
/// an idle connection waits in [`cold_wait`], without a buffer.
// Not an `async fn`: the block mutates `c` where it was captured, instead of keeping a
// second copy of it in its state (144 bytes per idle connection).
#[allow(clippy::manual_async_fn)]
pub(crate) fn serve(mut c: Conn) -> impl std::future::Future<Output = ()> {
    async move {
        // The accept time while the first request is awaited (its head timeout counts from it).
        let mut first = Some(Instant::now());
        loop {
            match Box::pin(next(&mut c, first)).await {
                Next::Served(After::KeepAlive) => first = None,
                Next::Served(After::Close) | Next::Closed => break,
                Next::Idle(end) => match cold_wait(&mut c, end).await {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => {
                        tracing::debug!(peer = %c.conn.peer, error = %e, "idle connection failed");
                        break;
                    }
                },
                Next::H2c => return Box::pin(h2c(c)).await,
            }
        }
    }
}

/// Hands a plaintext connection that opened with the HTTP/2 preface to the HTTP/2 server,
/// with the bytes read so far.
async fn h2c(c: Conn) {
    let Conn {
        worker,
        listener,
        r,
        w,
        buf,
        conn,
        stats,
        ..
    } = c;
    // h2 over TLS is chosen by ALPN, not by a preface.
    let (ConnRead::Plain(r), ConnWrite::Plain(w)) = (r, w) else {
        return;
    };
    let Ok(stream) = r.reunite(w) else {
        return;
    };
    match crate::cx::conn::into_poll(stream) {
        Ok(poll) => {
            let io = crate::cx::conn::Prefixed::new(buf.data().to_vec(), poll);
            crate::downstream::h2::serve(worker, listener, io, conn, stats).await;
        }
        Err(e) => {
            tracing::debug!(peer = %conn.peer, error = %e, "h2c: cannot switch the socket to poll mode")
        }
    }
}

/// What happened to the connection's next request.
enum Next {
    Served(After),
    /// The connection went idle ([`Read::Idle`]).
    Idle(Instant),
    /// The client opened with the HTTP/2 preface.
    H2c,
    Closed,
}

/// Reads the next request head (while the connection is hot) and serves the request, or
/// answers a bad head. Boxed by [`serve`]: this is the large state machine.
async fn next(c: &mut Conn, first: Option<Instant>) -> Next {
    let view = c.worker.views.current();
    let Some(l) = view.listener(&c.listener) else {
        return Next::Closed;
    };
    let ListenerKind::Http(http) = &l.kind else {
        return Next::Closed;
    };
    match read_head(&c.worker, &mut c.r, &mut c.buf, l, http, first).await {
        Ok(Some(Read::Head(head))) => {
            drop(view);
            Next::Served(exchange(c, head).await)
        }
        Ok(Some(Read::H2Preface)) => Next::H2c,
        Ok(Some(Read::Idle(end))) => Next::Idle(end),
        Ok(None) => Next::Closed,
        Err(e) => {
            let idle_timeout = l.idle_timeout;
            drop(view);
            bad_head(c, e, idle_timeout).await;
            Next::Closed
        }
    }
}

/// What the connection does after a request.
enum After {
    KeepAlive,
    Close,
}

/// Answers a request head that could not be read (400, 408, 413, 414, 431...) when the error
/// has an answer, then closes politely.
async fn bad_head(c: &mut Conn, e: ProxyError, idle_timeout: Duration) {
    tracing::debug!(peer = %c.conn.peer, error = %e, "bad request head");
    if !e.answerable() {
        return;
    }
    c.stats.request_done("", e.status(), Duration::ZERO);
    let mut out = Vec::with_capacity(256);
    crate::pipeline::answer::Answer::error(&e, false, None).h1(
        &mut out,
        true,
        false,
        &ringside_codec::Edits::NONE,
    );
    if write_vec_timeout(&mut c.w, out, idle_timeout).await.is_ok() {
        linger(&mut c.r, &mut c.w).await;
    }
}

/// One request whose head has been read: the pipeline and the exchange (`route::handle`),
/// then the metrics, the access log and the trace span.
async fn exchange(c: &mut Conn, head: RequestHead) -> After {
    // Route with the configuration current *now*: the wait for this request may have
    // spanned a reload (the limits the head was read with were the ones in force then).
    let worker = &c.worker;
    let view = worker.views.current();
    let Some((l, http, compiled)) = view.http(&c.listener) else {
        return After::Close;
    };
    let mut ds = route::Downstream {
        r: &mut c.r,
        w: &mut c.w,
        buf: &mut c.buf,
    };
    let started = std::time::Instant::now();
    let snap = &view.snap.config.proxy;
    let trace = TraceContext::continue_or_start(
        |n| head.header(n),
        || worker.cx.random(),
        snap.trace_sample_rate,
    );
    let stats = &c.stats;
    stats.in_flight.set(stats.in_flight.get() + 1);
    let incoming = route::Incoming {
        head: &head,
        peer: c.conn.peer,
        trace: &trace,
        conn: &c.conn,
        stats,
        started,
    };
    let outcome = route::handle(worker, &view, l, http, compiled, &incoming, &mut ds).await;
    stats.in_flight.set(stats.in_flight.get().saturating_sub(1));
    let took = started.elapsed();
    stats.request_done(outcome.route, outcome.status, took);
    // The wall-clock start, for the log line and the span only: one clock read less per
    // request when neither is on.
    let started_at = || {
        std::time::SystemTime::now()
            .checked_sub(took)
            .unwrap_or(std::time::UNIX_EPOCH)
    };
    if let Some(log) = &http.access_log {
        let line = access::line(
            log.format,
            &access::Entry {
                time: started_at(),
                took,
                listener: &c.listener,
                head: &head,
                peer: c.conn.peer,
                identity: c.conn.identity.as_deref(),
                original_dst: c.conn.original_dst.map(|d| d.addr),
                h2: false,
                trace: &trace,
                outcome: &outcome,
            },
        );
        worker.cx.telemetry.log(&c.log_path.get(&log.path), line);
    }
    if trace.sampled && snap.otlp_endpoint.is_some() {
        worker.cx.telemetry.span(access::span(
            started_at(),
            &c.listener,
            &head,
            c.conn.peer,
            &trace,
            &outcome,
        ));
    }
    match outcome.after {
        route::After::KeepAlive => After::KeepAlive,
        route::After::Close => After::Close,
        route::After::Linger => {
            linger(&mut c.r, &mut c.w).await;
            After::Close
        }
    }
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
                original_dst: f.conn.original_dst.map(|d| d.addr),
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
    /// Nothing arrived within [`HOT`]: the connection is idle until this deadline (the idle
    /// timeout, or the first request's head timeout). The caller waits in [`cold_wait`].
    Idle(Instant),
}

/// Reads until one request head is complete. `Ok(None)`: the connection ended cleanly (EOF,
/// idle timeout, or drain while idle). `accepted`: when the connection was accepted, for the
/// first request's head timeout.
async fn read_head(
    worker: &Worker,
    r: &mut ConnRead,
    buf: &mut ReadBuf,
    l: &Listener,
    http: &HttpListener,
    first: Option<Instant>,
) -> Result<Option<Read>, ProxyError> {
    let limits = http.limits.codec();
    let cap = http.limits.max_header_bytes.saturating_add(4096);
    let head_timeout = http.limits.request_head_timeout;
    // The first request of a connection must arrive within the head timeout of the accept
    // (slowloris); later ones may wait the idle timeout before their first byte, and then
    // have the head timeout to complete.
    let mut deadline = match first {
        Some(accepted) => Some(accepted + head_timeout),
        None => (!buf.is_empty()).then(|| Instant::now() + head_timeout),
    };
    loop {
        if !buf.is_empty() {
            let data = buf.data();
            let n = data.len().min(H2_PREFACE.len());
            if first.is_some() && data.get(..n) == H2_PREFACE.get(..n) {
                if n == H2_PREFACE.len() {
                    return Ok(Some(Read::H2Preface));
                }
            } else if let Some((head, n)) = parse_request(data, &limits)? {
                buf.consume(n);
                return Ok(Some(Read::Head(head)));
            }
        }
        let fill = if buf.is_empty() {
            // Waiting for a request: hot for a short while (the buffer stays in the read, no
            // extra operation for a busy connection), then idle (see `cold_wait`).
            buf.shrink_idle(INITIAL_BUF);
            let now = Instant::now();
            let end = deadline.unwrap_or(now + l.idle_timeout);
            let hot_end = end.min(now + HOT);
            // Coarse when the hot window is what ends first: it needs no precision (100 to
            // 200 ms), and a coarse deadline costs no timer.
            let timer = if hot_end < end {
                crate::cx::deadline::coarse_until(hot_end)
            } else {
                crate::cx::deadline::sleep_until(end)
            };
            let stop = either(timer, drain_grace(worker));
            match buf.fill(r, cap, stop).await {
                Ok(Fill::Stopped) if buf.is_empty() && Instant::now() < end => {
                    return Ok(Some(Read::Idle(end)));
                }
                fill => fill,
            }
        } else {
            let d = *deadline.get_or_insert_with(|| Instant::now() + head_timeout);
            buf.fill(r, cap, crate::cx::io::sleep_until(d)).await
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

/// Waits, holding no read buffer, for the next request on a connection that went idle,
/// until `end` (or the drain grace). `true`: bytes arrived (or the client closed, which the
/// next read finds).
///
/// An idle keep-alive connection then costs its task's state and a coarse deadline
/// (`cx::deadline`), not a buffer and a timer. When bytes arrive the buffer is allocated
/// again and the head is read as usual: one more operation, for an idle connection only.
async fn cold_wait(c: &mut Conn, end: Instant) -> Result<bool, ProxyError> {
    // Under a memory ceiling, the worker may shed the connection while it waits.
    let limited = c.worker.cx.memory.limited();
    let stop = pin!(either(
        either(
            crate::cx::deadline::sleep_until(end),
            drain_grace(&c.worker)
        ),
        crate::cx::idle::wait(limited)
    ));
    match c.r.wait_readable(&mut c.buf, INITIAL_BUF, stop).await {
        Ok(Fill::Stopped) => Ok(false),
        Ok(_) => Ok(true),
        Err(e) => Err(ProxyError::ClientIo(e)),
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
        let left = deadline.saturating_duration_since(Instant::now());
        match crate::cx::io::within(left, r.read(scratch)).await {
            Some((Ok(n), b)) if n > 0 => scratch = b,
            _ => return,
        }
    }
}
