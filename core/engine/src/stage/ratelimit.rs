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
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let next = tat.max(now).saturating_add(self.interval);
            let ahead = next - now;
            if ahead > self.tolerance {
                return Err(ahead - self.tolerance);
            }
            match self
                .tat
                .compare_exchange_weak(tat, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    let left = (self.tolerance - ahead) / self.interval;
                    return Ok(u32::try_from(left).unwrap_or(u32::MAX));
                }
                Err(current) => tat = current,
            }
        }
    }

    fn take(&self) -> Result<u32, u64> {
        let now = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.take_at(now)
    }
}

/// The stage: one listener's or one route's bucket.
#[derive(Debug, Clone)]
pub(crate) struct RateLimit {
    bucket: Arc<Bucket>,
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
            bucket,
            route: route.unwrap_or("").into(),
            settings,
        }
    }

    pub(crate) fn request<'v>(&self, req: &mut Req<'_>) -> Flow<'v> {
        match self.bucket.take() {
            Ok(_) => Flow::Next,
            Err(wait) => {
                req.stats.rate_limited(&self.route);
                Flow::Reply(Local::Error(ProxyError::RateLimited(RateLimited {
                    limit: self.bucket.burst,
                    reset_secs: wait.div_ceil(NANOS_PER_SEC).max(1),
                })))
            }
        }
    }
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
        assert!(Arc::ptr_eq(&a.bucket, &b.bucket));
        let other = RateLimit::compile(s, "in", None, &r);
        assert!(!Arc::ptr_eq(&a.bucket, &other.bucket));
        let changed =
            RateLimit::compile(ringside_config::RateLimit::new(2, 1), "in", Some("api"), &r);
        assert!(!Arc::ptr_eq(&a.bucket, &changed.bucket));
    }
}
