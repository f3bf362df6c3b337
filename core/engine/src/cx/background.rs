//! What the process's background threads share (the health prober, `upstream/health.rs`,
//! and the JWKS fetcher, `cx/jwks/`): a thread that follows the published snapshot, woken
//! after a reload and stopped at shutdown, and one HTTP/1 exchange over blocking std I/O
//! within a deadline. Never used on a worker: a worker never blocks.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use std::sync::Arc;

use arc_swap::ArcSwap;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use ringside_config::Snapshot;

/// A running background thread: [`Background::wake`] after a reload, [`Background::stop`]
/// then [`Background::join`] at shutdown.
pub(crate) struct Background {
    signal: Sender<Signal>,
    thread: JoinHandle<()>,
}

enum Signal {
    /// A new snapshot is published: look at it now.
    Reload,
    Stop,
}

/// The thread's side: what it waits on between two rounds.
pub(crate) struct Signals(Receiver<Signal>);

impl Signals {
    /// Waits `wait` at most, or until a reload: `false` once the thread is to stop.
    pub(crate) fn wait(&self, wait: Duration) -> bool {
        match self.0.recv_timeout(wait) {
            Ok(Signal::Reload) | Err(RecvTimeoutError::Timeout) => true,
            Ok(Signal::Stop) | Err(RecvTimeoutError::Disconnected) => false,
        }
    }
}

impl Background {
    /// Starts thread `name` running `body`, which returns once [`Signals::wait`] says stop.
    pub(crate) fn spawn(
        name: &str,
        body: impl FnOnce(Signals) + Send + 'static,
    ) -> io::Result<Background> {
        let (signal, signals) = crossbeam_channel::bounded::<Signal>(4);
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || body(Signals(signals)))?;
        Ok(Background { signal, thread })
    }

    /// Has the thread look at the published snapshot now.
    pub(crate) fn wake(&self) {
        let _ = self.signal.try_send(Signal::Reload);
    }

    /// Tells the thread to stop (after the work under way, each piece bounded by its timeout).
    pub(crate) fn stop(&self) {
        let _ = self.signal.send(Signal::Stop);
    }

    /// Waits for the thread to stop.
    pub(crate) fn join(self) {
        let _ = self.thread.join();
    }
}

/// The snapshot a background thread last looked at.
#[derive(Default)]
pub(crate) struct Seen(Option<Arc<Snapshot>>);

impl Seen {
    /// The published snapshot, when it is not the one seen last (it is from then on).
    pub(crate) fn changed(&mut self, shared: &ArcSwap<Snapshot>) -> Option<Arc<Snapshot>> {
        let snap = shared.load_full();
        if self.0.as_ref().is_some_and(|s| Arc::ptr_eq(s, &snap)) {
            return None;
        }
        self.0 = Some(Arc::clone(&snap));
        Some(snap)
    }
}

/// Most bytes of a response head.
const MAX_HEAD: usize = 16 * 1024;

/// A response of [`exchange`].
pub(crate) struct Response {
    pub(crate) status: u16,
    /// Empty unless the body was asked for.
    pub(crate) body: Vec<u8>,
}

/// Writes `request` and reads the response before `deadline` (`clock` is the socket under
/// `stream`, to bound each read and write by the time left): its head only when `body` is
/// `None`, else its body too, all of the response within `body` bytes. The request should be
/// HTTP/1.0 when the body is read, so that it is never chunked.
pub(crate) fn exchange(
    mut stream: impl Read + Write,
    clock: &TcpStream,
    request: &[u8],
    deadline: Instant,
    body: Option<usize>,
) -> Result<Response, String> {
    let left = || {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err("timed out".to_string())
        } else {
            Ok(left)
        }
    };
    clock
        .set_write_timeout(Some(left()?))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(request)
        .and_then(|()| stream.flush())
        .map_err(|e| format!("write: {e}"))?;
    let limit = body.unwrap_or(MAX_HEAD);
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    // Status, body length when known, where the body starts.
    let mut head: Option<(u16, Option<u64>, usize)> = None;
    loop {
        match head {
            Some((status, _, _)) if body.is_none() => {
                return Ok(Response {
                    status,
                    body: Vec::new(),
                })
            }
            Some((_, Some(len), start)) if got.len().saturating_sub(start) as u64 >= len => break,
            _ => {}
        }
        clock
            .set_read_timeout(Some(left()?))
            .map_err(|e| e.to_string())?;
        let n = match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // A server that closes without TLS close_notify: the body ends there.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && head.is_some() => break,
            Err(e) => return Err(format!("read: {e}")),
        };
        got.extend_from_slice(buf.get(..n).unwrap_or_default());
        if got.len() > limit {
            return Err(format!("response longer than {limit} bytes"));
        }
        if head.is_none() {
            match ringside_codec::parse_response(&got, MAX_HEAD, "GET") {
                Ok(Some((h, start))) => {
                    let len = match h.body() {
                        ringside_codec::BodyKind::Length(n) => Some(n),
                        ringside_codec::BodyKind::Empty => Some(0),
                        _ => None,
                    };
                    head = Some((h.status(), len, start));
                }
                Ok(None) => {}
                Err(e) => return Err(format!("invalid response: {e}")),
            }
        }
    }
    let Some((status, len, start)) = head else {
        return Err("closed before a response".into());
    };
    let mut body = got.split_off(start.min(got.len()));
    if let Some(len) = len {
        if (body.len() as u64) < len {
            return Err("response body cut short".into());
        }
        body.truncate(usize::try_from(len).unwrap_or(usize::MAX));
    }
    Ok(Response { status, body })
}
