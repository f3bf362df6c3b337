//! HTTP/2: the server side of a client connection.
//!
//! ```text
//! detect (h2c preface | ALPN h2) ─▶ serve: SETTINGS, accept streams ─▶ stream::handle (a task
//!                per stream) ─▶ pipeline ─▶ answer | upstream::call (h1 or h2 client)
//! ```
//! Runs the maintained `h2` crate (its protections against Rapid Reset, CONTINUATION floods
//! and unbounded pending resets are on) over a poll-style socket (`conn`). Limits come from
//! the listener's `http2` settings: concurrent streams, windows, frame size; the header list
//! is bounded by the listener's `max_header_bytes`. On top of the crate's own limits, a
//! client that resets more than `max_resets_per_second` streams is sent GOAWAY
//! (ENHANCE_YOUR_CALM) and cut off; other connections are not affected.
//!
//! Draining sends GOAWAY and lets streams in flight finish; an idle connection (no streams
//! for the listener's idle timeout) is closed the same way.

mod stream;

use std::cell::Cell;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringside_config::ListenerKind;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::cx::metrics::ListenerStats;
use crate::cx::ClientConn;
use crate::downstream::Worker;

/// Streams reset by the client may be at most this many at once awaiting our accept
/// (h2's Rapid Reset guard; the crate's default is 20).
const MAX_PENDING_ACCEPT_RESETS: usize = 50;
/// Streams we reset because of a client's protocol errors before the connection is cut.
const MAX_LOCAL_ERROR_RESETS: usize = 256;
/// Outgoing bytes buffered per stream.
const MAX_SEND_BUFFER: usize = 256 * 1024;

/// Counts streams the client reset, per second; past the limit the connection is cut off.
pub(crate) struct Resets {
    limit: u32,
    window: Cell<Instant>,
    count: Cell<u32>,
    tripped: Rc<crate::cx::event::Event>,
}

impl Resets {
    fn new(limit: u32) -> Resets {
        Resets {
            limit,
            window: Cell::new(Instant::now()),
            count: Cell::new(0),
            tripped: crate::cx::event::Event::new(),
        }
    }

    pub(crate) fn record(&self) {
        let now = Instant::now();
        if now.duration_since(self.window.get()) >= Duration::from_secs(1) {
            self.window.set(now);
            self.count.set(0);
        }
        self.count.set(self.count.get() + 1);
        if self.count.get() > self.limit {
            self.tripped.fire();
        }
    }
}

/// Serves HTTP/2 on a connection until it ends.
pub(crate) async fn serve<T>(
    worker: Rc<Worker>,
    listener: Rc<str>,
    io: T,
    conn: Rc<ClientConn>,
    stats: Rc<ListenerStats>,
) where
    T: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let view = worker.views.current();
    let Some(l) = view.listener(&listener) else {
        return;
    };
    let ListenerKind::Http(http) = &l.kind else {
        return;
    };
    let s = &http.http2;
    let header_list = u32::try_from(http.limits.max_header_bytes).unwrap_or(u32::MAX);
    let handshake_timeout = http.limits.request_head_timeout;
    let idle = l.idle_timeout;
    let keepalive = s.keepalive_interval;
    let pong_timeout = s.keepalive_timeout.or(keepalive);
    let handshake = h2::server::Builder::new()
        .max_concurrent_streams(s.max_concurrent_streams)
        .initial_window_size(s.initial_stream_window)
        .initial_connection_window_size(s.initial_connection_window)
        .max_frame_size(s.max_frame_size)
        .max_header_list_size(header_list)
        .max_send_buffer_size(MAX_SEND_BUFFER)
        .max_pending_accept_reset_streams(MAX_PENDING_ACCEPT_RESETS)
        .max_local_error_reset_streams(Some(MAX_LOCAL_ERROR_RESETS))
        .enable_connect_protocol()
        .handshake::<_, Bytes>(io);
    let resets = Rc::new(Resets::new(s.max_resets_per_second));
    drop(view);
    let mut h2c = match monoio::time::timeout(handshake_timeout, handshake).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            tracing::debug!(peer = %conn.peer, error = %e, "h2 handshake failed");
            return;
        }
        Err(_) => return,
    };
    let ctx = Rc::new(stream::StreamCtx {
        worker: Rc::clone(&worker),
        listener,
        conn,
        stats,
        resets: Rc::clone(&resets),
    });
    // Keepalive: a PING on a connection without streams every `keepalive`; no PONG within
    // `pong_timeout` (the interval unless configured) closes the connection (the client is
    // gone).
    let mut ping = keepalive.and_then(|_| h2c.ping_pong());
    let mut ping_sent: Option<Instant> = None;
    let mut last_ping = Instant::now();
    let mut going_away = false;
    let mut idle_since = Some(Instant::now());
    let mut tick = crate::cx::io::sleep(Duration::from_millis(250));
    let mut drain = worker.cx.drain.wait();
    let mut tripped = resets.tripped.wait();
    // Under a memory ceiling, a connection without streams may be shed (`cx/idle.rs`): it
    // then says GOAWAY like a drain.
    let limited = worker.cx.memory.limited();
    let mut shed: Option<crate::cx::idle::IdleWait> = None;
    loop {
        let next = poll_fn(|cx| {
            if let Poll::Ready(r) = h2c.poll_accept(cx) {
                return Poll::Ready(Next::Stream(r.map(|r| r.map(Box::new))));
            }
            if std::pin::Pin::new(&mut tripped).poll(cx).is_ready() {
                return Poll::Ready(Next::Flood);
            }
            if !going_away && std::pin::Pin::new(&mut drain).poll(cx).is_ready() {
                return Poll::Ready(Next::Drain);
            }
            if let (Some(pp), Some(_)) = (ping.as_mut(), ping_sent) {
                if let Poll::Ready(r) = pp.poll_pong(cx) {
                    return Poll::Ready(Next::Pong(r.is_ok()));
                }
            }
            if let Some(w) = shed.as_mut() {
                if std::pin::Pin::new(w).poll(cx).is_ready() {
                    return Poll::Ready(Next::Shed);
                }
            }
            if std::pin::Pin::new(&mut tick).poll(cx).is_ready() {
                return Poll::Ready(Next::Tick);
            }
            Poll::Pending
        })
        .await;
        match next {
            Next::Stream(Some(Ok(accepted))) => {
                let (req, respond) = *accepted;
                idle_since = None;
                shed = None;
                let ctx = Rc::clone(&ctx);
                let abort = worker.cx.abort.clone();
                let task = Box::pin(stream::handle(ctx, req, respond));
                monoio::spawn(async move {
                    crate::cx::io::either(task, abort.wait()).await;
                });
            }
            Next::Stream(Some(Err(e))) => {
                tracing::debug!(peer = %ctx.conn.peer, error = %e, "h2 connection error");
                break;
            }
            Next::Stream(None) => break,
            Next::Flood => {
                tracing::warn!(peer = %ctx.conn.peer, "h2: too many streams reset by the client; closing the connection");
                h2c.abrupt_shutdown(h2::Reason::ENHANCE_YOUR_CALM);
                // Let the GOAWAY go out, then stop.
                let _ = monoio::time::timeout(
                    Duration::from_millis(100),
                    poll_fn(|cx| h2c.poll_closed(cx)),
                )
                .await;
                break;
            }
            Next::Drain => {
                going_away = true;
                h2c.graceful_shutdown();
            }
            Next::Shed => {
                shed = None;
                if !going_away {
                    going_away = true;
                    h2c.graceful_shutdown();
                }
            }
            Next::Pong(ok) => {
                if !ok {
                    break;
                }
                ping_sent = None;
                last_ping = Instant::now();
            }
            Next::Tick => {
                tick = crate::cx::io::sleep(Duration::from_millis(250));
                if let (Some(interval), Some(pong_timeout), Some(pp)) =
                    (keepalive, pong_timeout, ping.as_mut())
                {
                    let missed = ping_sent.is_some_and(|t| t.elapsed() >= pong_timeout);
                    if missed {
                        tracing::debug!(peer = %ctx.conn.peer, "h2: no PONG to a keepalive PING; closing");
                        break;
                    }
                    let due = ping_sent.is_none()
                        && !h2c.has_streams()
                        && last_ping.elapsed() >= interval;
                    if due && pp.send_ping(h2::Ping::opaque()).is_ok() {
                        ping_sent = Some(Instant::now());
                    }
                }
                if h2c.has_streams() {
                    idle_since = None;
                    shed = None;
                } else {
                    if limited && !going_away && shed.is_none() {
                        shed = Some(crate::cx::idle::wait(true));
                    }
                    let since = *idle_since.get_or_insert_with(Instant::now);
                    if !going_away && since.elapsed() >= idle {
                        going_away = true;
                        h2c.graceful_shutdown();
                    }
                }
            }
        }
    }
}

/// A stream the client opened: its request and the handle to answer it.
type Accepted = (
    http::Request<h2::RecvStream>,
    h2::server::SendResponse<Bytes>,
);

enum Next {
    /// Boxed: a request head is large, and the other variants are empty.
    Stream(Option<Result<Box<Accepted>, h2::Error>>),
    Flood,
    Drain,
    /// The memory ceiling sheds this idle connection.
    Shed,
    Tick,
    /// A keepalive PONG arrived (`false`: the connection failed meanwhile).
    Pong(bool),
}

use std::future::Future;
