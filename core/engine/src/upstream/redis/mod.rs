//! Global rate limits' client of a `[[redis]]`: one per worker and server, made when a worker
//! first compiles a route that names the server, its connection opened by the first request.
//!
//! A request never waits for Redis. The stage (`stage/global_limit.rs`) asks [`Client::admit`],
//! which decides from this worker's counts alone ([`windows`]: the window's global count as
//! of the last reply, plus what this worker admitted since). The worker's **sync task**
//! sends what was admitted — `INCRBY` + `EXPIRE` per window key, every window in one
//! pipelined write ([`conn`]) — at most every [`INTERVAL`], or at once when a window has
//! taken 1/64 of its limit since the last sync, and learns each window's global count from
//! the replies. An idle worker sends nothing.
//!
//! When a connect or a batch fails or takes longer than the server's `timeout_ms`, the
//! connection is dropped, the failure is counted (`ringside_ratelimit_redis_failures_total`)
//! and the client is *down*: requests pass uncounted (or are refused, with `fail_closed`)
//! until a new connection is made, tried again with a backoff from 50 ms to 1 s. Limiting
//! then resumes by itself.
//!
//! The counters every worker shares for the admin endpoint ([`RedisStats`]) are atomics in
//! the process's `Registry`, touched per connection and per batch, never per request.

pub(crate) mod conn;
pub(crate) mod windows;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ringside_config::{Config, RedisServer};

use crate::cx::event::Event;
use crate::cx::io::{either, precise_sleep, sleep, within};
use crate::cx::shared::Registry;
use conn::Conn;
pub(crate) use windows::Admit;
use windows::Windows;

/// The longest a request's count waits in a worker before it is sent.
pub(crate) const INTERVAL: Duration = Duration::from_millis(5);
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// One server's counters for the whole process (registry key `redis/<name>/<address>`).
#[derive(Debug, Default)]
pub(crate) struct RedisStats {
    /// Connects and batches that failed or timed out.
    failures: AtomicU64,
    /// Workers connected now.
    connected: AtomicU64,
    /// Batches answered.
    syncs: AtomicU64,
}

/// What the admin endpoint shows of one `[[redis]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisHealth {
    pub name: String,
    /// Connects and batches that failed or took longer than `timeout_ms`.
    pub failures: u64,
    /// Workers with a connection to it now.
    pub connected_workers: u64,
    /// Batches of counts it answered.
    pub syncs: u64,
}

fn stats_key(server: &RedisServer) -> String {
    format!("redis/{}/{}", server.name, server.address)
}

/// Every `[[redis]]` of `config` with its counters (zeros before any worker used it).
pub(crate) fn report(config: &Config, registry: &Registry) -> Vec<RedisHealth> {
    config
        .redis
        .iter()
        .map(|server| {
            let s = registry.find::<RedisStats>(&stats_key(server));
            let get = |f: fn(&RedisStats) -> &AtomicU64| {
                s.as_ref().map_or(0, |s| f(s).load(Ordering::Relaxed))
            };
            RedisHealth {
                name: server.name.clone(),
                failures: get(|s| &s.failures),
                connected_workers: get(|s| &s.connected),
                syncs: get(|s| &s.syncs),
            }
        })
        .collect()
}

/// What a request of a global limit is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Admit(Admit),
    /// Redis is unreachable: the limit cannot be kept.
    Down,
}

/// One worker's client of one Redis server.
pub(crate) struct Client {
    server: RedisServer,
    windows: RefCell<Windows>,
    down: Cell<bool>,
    started: Cell<bool>,
    /// A window asked for a sync before the interval.
    eager: Cell<bool>,
    /// Wakes the sync task; fired when the client goes.
    wake: Rc<Event>,
    /// Where a request's window key is built (no allocation per request).
    pub(crate) key: RefCell<Vec<u8>>,
    /// A monotonic instant and the wall clock then (unix nanoseconds), refreshed by the
    /// sync task: windows are wall-clock seconds, the same in every process.
    clock: Cell<(Instant, u128)>,
    stats: Arc<RedisStats>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.server)
            .field("down", &self.down.get())
            .finish_non_exhaustive()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.wake.fire();
    }
}

thread_local! {
    /// This worker's clients, by server (one per worker thread).
    static CLIENTS: RefCell<HashMap<RedisServer, Weak<Client>>> = RefCell::new(HashMap::new());
}

/// This worker's client of `server`, made on first use.
pub(crate) fn client(server: &RedisServer, registry: &Registry) -> Rc<Client> {
    CLIENTS.with_borrow_mut(|clients| {
        if let Some(c) = clients.get(server).and_then(Weak::upgrade) {
            return c;
        }
        clients.retain(|_, w| w.strong_count() > 0);
        let c = Rc::new(Client {
            server: server.clone(),
            windows: RefCell::new(Windows::default()),
            down: Cell::new(false),
            started: Cell::new(false),
            eager: Cell::new(false),
            wake: Event::new(),
            key: RefCell::new(Vec::with_capacity(128)),
            clock: Cell::new(wall_clock()),
            stats: registry.get(&stats_key(server), RedisStats::default),
        });
        clients.insert(server.clone(), Rc::downgrade(&c));
        c
    })
}

fn wall_clock() -> (Instant, u128) {
    let unix = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    (Instant::now(), unix)
}

impl Client {
    /// Unix seconds at `t` (a request's start), from the client's clock.
    pub(crate) fn unix_secs(&self, t: Instant) -> u64 {
        let (at, unix) = self.clock.get();
        let nanos = if t >= at {
            unix.saturating_add(t.duration_since(at).as_nanos())
        } else {
            unix.saturating_sub(at.duration_since(t).as_nanos())
        };
        u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX)
    }

    /// A request for the window `key` (built in [`Client::key`]) of `limit` requests per
    /// `window` seconds, ending at unix second `ends`; `now` in unix seconds.
    pub(crate) fn admit(
        self: &Rc<Self>,
        key: &[u8],
        limit: u32,
        window: u32,
        ends: u64,
        now: u64,
    ) -> Decision {
        if !self.started.replace(true) {
            monoio::spawn(sync(Rc::downgrade(self)));
        }
        if self.down.get() {
            return Decision::Down;
        }
        let mut windows = self.windows.borrow_mut();
        let was_dirty = windows.dirty();
        let admit = windows.admit(key, limit, window, ends, now);
        drop(windows);
        if let Admit::Yes { flush } = admit {
            let eager = flush && !self.eager.replace(true);
            if eager || !was_dirty {
                self.wake.notify_all();
            }
        }
        Decision::Admit(admit)
    }

    /// A connect or a batch failed: down until the next connection.
    fn failed(&self, error: &std::io::Error) {
        self.stats.failures.fetch_add(1, Ordering::Relaxed);
        self.windows.borrow_mut().forget_unflushed();
        if !self.down.replace(true) {
            tracing::warn!(redis = %self.server.name, address = %self.server.address, %error,
                "redis unreachable: global rate limits fail open (or closed) until it is back");
        }
    }
}

/// A worker's sync task for one client: connects (again, with backoff), sends what the
/// worker admitted, learns the global counts. Ends when the client goes.
async fn sync(client: Weak<Client>) {
    let Some(stats) = client.upgrade().map(|c| Arc::clone(&c.stats)) else {
        return;
    };
    let mut conn: Option<Conn> = None;
    let mut backoff = BACKOFF_MIN;
    let mut last_flush = Instant::now();
    let mut last_sweep = Instant::now();
    loop {
        let Some(c) = client.upgrade() else { break };
        c.clock.set(wall_clock());
        let timeout = c.server.timeout;
        if conn.is_none() {
            match within(timeout, Conn::connect(c.server.address)).await {
                Some(Ok(new)) => {
                    conn = Some(new);
                    backoff = BACKOFF_MIN;
                    c.stats.connected.fetch_add(1, Ordering::Relaxed);
                    if c.down.replace(false) {
                        tracing::info!(redis = %c.server.name, "redis is back: global rate limits resume");
                    }
                }
                other => {
                    let e = match other {
                        Some(Err(e)) => e,
                        _ => std::io::ErrorKind::TimedOut.into(),
                    };
                    c.failed(&e);
                    drop(c);
                    sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            }
        }
        if !c.windows.borrow().dirty() {
            let wake = Rc::clone(&c.wake);
            drop(c);
            wake.wait().await;
            continue;
        }
        let now = Instant::now();
        let due = last_flush + INTERVAL;
        if !c.eager.get() && now < due {
            let wake = Rc::clone(&c.wake);
            drop(c);
            either(precise_sleep(due - now), wake.wait()).await;
            continue;
        }
        c.eager.set(false);
        last_flush = now;
        let batch = c.windows.borrow_mut().take();
        let Some(open) = conn.as_mut() else { continue };
        match within(timeout, open.incr(&batch)).await {
            Some(Ok(totals)) if totals.len() == batch.len() => {
                c.windows.borrow_mut().learned(&batch, &totals);
                c.stats.syncs.fetch_add(1, Ordering::Relaxed);
            }
            other => {
                let e = match other {
                    Some(Err(e)) => e,
                    _ => std::io::ErrorKind::TimedOut.into(),
                };
                conn = None;
                c.stats.connected.fetch_sub(1, Ordering::Relaxed);
                c.windows.borrow_mut().lost(&batch);
                c.failed(&e);
            }
        }
        if last_sweep.elapsed() >= Duration::from_secs(1) {
            last_sweep = Instant::now();
            let now = c.unix_secs(last_sweep);
            c.windows.borrow_mut().sweep(now);
        }
    }
    if conn.is_some() {
        stats.connected.fetch_sub(1, Ordering::Relaxed);
    }
}
