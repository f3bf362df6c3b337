//! `RateLimit`: a local token bucket per listener or per route, for the whole process.
//!
//! Sits among the listener's stages after `Authz` (a denied request takes no token, so a
//! flood of refused requests cannot starve allowed clients) and first among a route's
//! stages (before fault injection: a faulted request is a request served, and takes its
//! token). Reads `rate_limit = { requests_per_second, burst }` of the listener or route. A
//! request that finds the bucket empty is answered 429 with `retry-after`,
//! `ratelimit-limit`, `ratelimit-remaining: 0` and `ratelimit-reset` (gRPC:
//! RESOURCE_EXHAUSTED), and counted in `ringside_rate_limited_total` by listener and route.
//!
//! A route's `rate_limit.key` (gateway role) keeps a bucket per consumer, client address or
//! header value instead ([`KeyedBuckets`]: a fixed table of 4096 buckets per route, indexed
//! by a seeded hash of the key; keys that collide share a bucket).
//!
//! The bucket is one [`Bucket`] in the process's `Registry` (`cx/shared.rs`), keyed by the
//! listener, the route and the settings, so every worker takes from the same one and a
//! reload that keeps them keeps its tokens. A request costs one relaxed load and one
//! compare-and-swap on a single `AtomicU64` (no lock): the bucket is kept as a *theoretical
//! arrival time* (GCRA, the generic cell rate algorithm), which is a token bucket written as
//! one number. With `T = 1 s / requests_per_second`, the bucket is full when the time is
//! `burst × T` past `tat`; each request moves `tat` on by `T` (from now, if it lies in the
//! past), and is refused when that would put `tat` more than `burst × T` ahead of now.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use ringside_config::RateLimitKey;

use super::{Flow, Local, Req};
use crate::cx::error::{ProxyError, RateLimited};
use crate::cx::shared::Registry;

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// A token bucket shared by every worker.
#[derive(Debug)]
pub(crate) struct Bucket {
    /// Nanoseconds between two tokens (`T`), at least 1.
    interval: u64,
    /// `burst × T`: how far ahead of now `tat` may run.
    tolerance: u64,
    burst: u32,
    /// The theoretical arrival time, in nanoseconds since `epoch`.
    tat: AtomicU64,
    epoch: Instant,
}

impl Bucket {
    pub(crate) fn new(requests_per_second: u32, burst: u32) -> Bucket {
        let interval = (NANOS_PER_SEC / u64::from(requests_per_second.max(1))).max(1);
        Bucket {
            interval,
            tolerance: interval.saturating_mul(u64::from(burst.max(1))),
            burst: burst.max(1),
            tat: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// Takes a token at `now` (nanoseconds since the bucket was made): `Ok(tokens left)`, or
    /// `Err(nanoseconds until one is there)`.
    pub(crate) fn take_at(&self, now: u64) -> Result<u32, u64> {
        self.take_in(&self.tat, now)
    }

    /// Takes a token from a bucket of this one's size and rate whose theoretical arrival
    /// time is `tat` (the keyed buckets: one `tat` per key, one shape for all).
    fn take_in(&self, tat_cell: &AtomicU64, now: u64) -> Result<u32, u64> {
        let mut tat = tat_cell.load(Ordering::Relaxed);
        loop {
            let next = tat.max(now).saturating_add(self.interval);
            let ahead = next - now;
            if ahead > self.tolerance {
                return Err(ahead - self.tolerance);
            }
            match tat_cell.compare_exchange_weak(tat, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => {
                    let left = (self.tolerance - ahead) / self.interval;
                    return Ok(u32::try_from(left).unwrap_or(u32::MAX));
                }
                Err(current) => tat = current,
            }
        }
    }

    /// `t` in nanoseconds since the bucket was made (0 for a time before that).
    pub(crate) fn since(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// The answer to a request this bucket refused, `wait` nanoseconds before a token.
    pub(crate) fn refusal(&self, wait: u64) -> Local<'static> {
        Local::Error(ProxyError::RateLimited(RateLimited {
            limit: self.burst,
            reset_secs: wait.div_ceil(NANOS_PER_SEC).max(1),
        }))
    }
}

/// The slots of a keyed limit: a fixed table, so that the memory a route's limit holds does
/// not grow with the keys clients send.
pub(crate) const KEYED_SLOTS: usize = 4096;

/// One bucket per key, for the whole process: a fixed table of [`KEYED_SLOTS`] theoretical
/// arrival times sharing one shape (`bucket`'s rate and burst; its own `tat` is unused),
/// indexed by a hash of the key seeded at random per table. Keys that land in the same slot
/// share a bucket: a limit is never looser than configured, and two clients that collide
/// are limited together (with 100 busy keys, about 1 in 40 shares its slot with another).
/// The seed keeps a client from choosing a key that lands in another's slot.
#[derive(Debug)]
pub(crate) struct KeyedBuckets {
    bucket: Bucket,
    slots: Box<[AtomicU64]>,
    seed: std::collections::hash_map::RandomState,
}

impl KeyedBuckets {
    fn new(requests_per_second: u32, burst: u32) -> KeyedBuckets {
        KeyedBuckets {
            bucket: Bucket::new(requests_per_second, burst),
            slots: (0..KEYED_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            seed: std::collections::hash_map::RandomState::new(),
        }
    }

    /// Takes a token from the bucket of `key` at `now` (as [`Bucket::take_at`]).
    pub(crate) fn take_at(&self, key: &[u8], now: u64) -> Result<u32, u64> {
        use std::hash::BuildHasher;
        let slot = usize::try_from(self.seed.hash_one(key) % KEYED_SLOTS as u64).unwrap_or(0);
        match self.slots.get(slot) {
            Some(tat) => self.bucket.take_in(tat, now),
            None => Ok(0),
        }
    }
}

/// Which bucket a request of a route takes from.
#[derive(Debug, Clone)]
enum Buckets {
    One(Arc<Bucket>),
    Keyed(Arc<KeyedBuckets>, RateLimitKey),
}

/// The stage: one listener's or one route's bucket, or a route's buckets by key.
#[derive(Debug, Clone)]
pub(crate) struct RateLimit {
    buckets: Buckets,
    /// The route's name, empty for a listener's bucket (metrics).
    route: Box<str>,
    settings: ringside_config::RateLimit,
}

impl PartialEq for RateLimit {
    fn eq(&self, other: &Self) -> bool {
        self.route == other.route && self.settings == other.settings
    }
}

impl RateLimit {
    /// The stage for `settings` of `listener`, and of `route` when it is a route's.
    pub(crate) fn compile(
        settings: ringside_config::RateLimit,
        listener: &str,
        route: Option<&str>,
        registry: &Registry,
    ) -> RateLimit {
        let key = format!(
            "ratelimit/{listener:?}/{:?}/{}/{}",
            route.unwrap_or(""),
            settings.requests_per_second,
            settings.burst
        );
        let bucket = registry.get(&key, || {
            Bucket::new(settings.requests_per_second, settings.burst)
        });
        RateLimit {
            buckets: Buckets::One(bucket),
            route: route.unwrap_or("").into(),
            settings,
        }
    }

    /// The stage for a route's `settings` and `key` (`RateLimitKey::Route`: one bucket).
    pub(crate) fn compile_keyed(
        settings: ringside_config::RateLimit,
        key: &RateLimitKey,
        listener: &str,
        route: &str,
        registry: &Registry,
    ) -> RateLimit {
        if *key == RateLimitKey::Route {
            return RateLimit::compile(settings, listener, Some(route), registry);
        }
        let name = format!(
            "ratelimit/{listener:?}/{route:?}/{}/{}/{key:?}",
            settings.requests_per_second, settings.burst
        );
        let table = registry.get(&name, || {
            KeyedBuckets::new(settings.requests_per_second, settings.burst)
        });
        RateLimit {
            buckets: Buckets::Keyed(table, key.clone()),
            route: route.into(),
            settings,
        }
    }

    pub(crate) fn request<'v>(&self, req: &mut Req<'_>) -> Flow<'v> {
        let (taken, shape) = match &self.buckets {
            Buckets::One(bucket) => (bucket.take_at(bucket.since(req.now())), &**bucket),
            Buckets::Keyed(table, key) => {
                let now = table.bucket.since(req.now());
                let ip;
                let by: &[u8] = match key_of(key, req) {
                    KeyOf::Consumer(name) => name.as_bytes(),
                    KeyOf::Header(value) => value,
                    KeyOf::Ip(addr) => {
                        ip = ip_bytes(addr);
                        &ip
                    }
                    KeyOf::Route => b"",
                };
                (table.take_at(by, now), &table.bucket)
            }
        };
        match taken {
            Ok(_) => Flow::Next,
            Err(wait) => {
                req.stats.rate_limited(&self.route);
                Flow::Reply(shape.refusal(wait))
            }
        }
    }
}

/// What a keyed limit counts a request by (`rate_limit.key`): the local buckets here and the
/// global windows (`global_limit.rs`) key requests the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyOf<'r> {
    /// One count for the route.
    Route,
    Consumer(&'r str),
    /// The value of the key's header.
    Header(&'r [u8]),
    /// The client's address: `key = "ip"`, and the consumer or header key of a request
    /// without a consumer or without the header.
    Ip(std::net::IpAddr),
}

/// The key a request of a limit keyed by `key` counts under.
pub(crate) fn key_of<'r>(key: &RateLimitKey, req: &'r Req<'_>) -> KeyOf<'r> {
    match (key, &req.consumer) {
        (RateLimitKey::Route, _) => KeyOf::Route,
        (RateLimitKey::Consumer, Some(c)) => KeyOf::Consumer(&c.name),
        (RateLimitKey::Header(h), _) => match req.head.header(h) {
            Some(value) => KeyOf::Header(value),
            None => KeyOf::Ip(req.conn.peer.ip()),
        },
        _ => KeyOf::Ip(req.conn.peer.ip()),
    }
}

/// An address as bytes, tagged so that a header value cannot pass for one.
fn ip_bytes(ip: std::net::IpAddr) -> Vec<u8> {
    let mut out = vec![0u8];
    match ip {
        std::net::IpAddr::V4(v4) => out.extend_from_slice(&v4.octets()),
        std::net::IpAddr::V6(v6) => out.extend_from_slice(&v6.octets()),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_full_bucket_lets_a_burst_through_then_refills_at_the_rate() {
        // 10 a second (one every 100 ms), 3 at once.
        let b = Bucket::new(10, 3);
        assert_eq!(b.take_at(0), Ok(2));
        assert_eq!(b.take_at(0), Ok(1));
        assert_eq!(b.take_at(0), Ok(0));
        // Empty: the next token is 100 ms away.
        assert_eq!(b.take_at(0), Err(100 * MS));
        assert_eq!(b.take_at(40 * MS), Err(60 * MS));
        // One token back after 100 ms, and no more.
        assert_eq!(b.take_at(100 * MS), Ok(0));
        assert_eq!(b.take_at(100 * MS), Err(100 * MS));
        // A long quiet spell fills the bucket, never beyond the burst.
        assert_eq!(b.take_at(10_000 * MS), Ok(2));
        assert_eq!(b.take_at(10_000 * MS), Ok(1));
        assert_eq!(b.take_at(10_000 * MS), Ok(0));
        assert!(b.take_at(10_000 * MS).is_err());
    }

    #[test]
    fn over_a_long_run_the_rate_holds() {
        // 1000 a second, burst 50, asked every 100 µs (10000 a second) for 2 s: the burst
        // plus 2000.
        let b = Bucket::new(1000, 50);
        let allowed = (0..20_000u64)
            .filter(|i| b.take_at(i * 100_000).is_ok())
            .count();
        assert!((2049..=2051).contains(&allowed), "{allowed}");
    }

    #[test]
    fn burst_one_and_the_slowest_rate() {
        let b = Bucket::new(1, 1);
        assert_eq!(b.take_at(5), Ok(0));
        assert_eq!(b.take_at(5), Err(NANOS_PER_SEC));
        assert_eq!(b.take_at(5 + NANOS_PER_SEC), Ok(0));
        // The largest settings do not overflow.
        let b = Bucket::new(1, u32::MAX);
        assert_eq!(b.take_at(0), Ok(u32::MAX - 1));
        let b = Bucket::new(1_000_000_000, 1);
        assert_eq!(b.take_at(u64::MAX - 10), Ok(0));
    }

    /// Two threads take from one bucket at the same instant: exactly the burst is let
    /// through, whatever the interleaving.
    #[test]
    fn two_threads_share_one_bucket() {
        for _ in 0..20 {
            let b = Arc::new(Bucket::new(1, 5000));
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let b = Arc::clone(&b);
                    std::thread::spawn(move || (0..10_000).filter(|_| b.take_at(7).is_ok()).count())
                })
                .collect();
            let allowed: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
            assert_eq!(allowed, 5000);
        }
    }

    #[test]
    fn the_registry_gives_every_worker_the_same_bucket() {
        let r = Registry::default();
        let s = ringside_config::RateLimit::new(1, 1);
        let a = RateLimit::compile(s, "in", Some("api"), &r);
        let b = RateLimit::compile(s, "in", Some("api"), &r);
        let one = |l: &RateLimit| match &l.buckets {
            Buckets::One(b) => Arc::clone(b),
            Buckets::Keyed(..) => panic!("one bucket"),
        };
        assert!(Arc::ptr_eq(&one(&a), &one(&b)));
        let other = RateLimit::compile(s, "in", None, &r);
        assert!(!Arc::ptr_eq(&one(&a), &one(&other)));
        let changed =
            RateLimit::compile(ringside_config::RateLimit::new(2, 1), "in", Some("api"), &r);
        assert!(!Arc::ptr_eq(&one(&a), &one(&changed)));
    }

    /// Each key has a bucket of its own (as long as keys do not collide); the table is
    /// shared by the workers like a single bucket.
    #[test]
    fn keyed_buckets_limit_each_key_alone() {
        let t = KeyedBuckets::new(1, 2);
        for key in [&b"a"[..], &b"b"[..], &b"c"[..]] {
            assert_eq!(t.take_at(key, 0), Ok(1));
            assert_eq!(t.take_at(key, 0), Ok(0));
        }
        // "a" is empty; the others were already; a new key still has its burst — unless it
        // shares a slot with a, b or c (rare: 3 in 4096; then it is empty too).
        assert!(t.take_at(b"a", 0).is_err());
        let fresh = (0..100u32)
            .filter(|i| t.take_at(&i.to_be_bytes(), 0).is_ok())
            .count();
        assert!(fresh >= 95, "{fresh} of 100 fresh keys passed");
        assert_eq!(t.take_at(b"a", NANOS_PER_SEC), Ok(0));

        let r = Registry::default();
        let s = ringside_config::RateLimit::new(1, 1);
        let keyed = |key: RateLimitKey| RateLimit::compile_keyed(s, &key, "in", "api", &r);
        let table = |l: &RateLimit| match &l.buckets {
            Buckets::Keyed(t, _) => Arc::clone(t),
            Buckets::One(_) => panic!("keyed"),
        };
        let ip = keyed(RateLimitKey::Ip);
        assert!(Arc::ptr_eq(&table(&ip), &table(&keyed(RateLimitKey::Ip))));
        assert!(!Arc::ptr_eq(
            &table(&ip),
            &table(&keyed(RateLimitKey::Consumer))
        ));
        assert!(matches!(
            keyed(RateLimitKey::Route).buckets,
            Buckets::One(_)
        ));
        assert_eq!(KEYED_SLOTS * std::mem::size_of::<AtomicU64>(), 32 * 1024);
    }
}
