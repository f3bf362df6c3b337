//! A cluster's circuit breaker (`circuit_breaker`): limits on the connections, the pending
//! requests and the requests in flight of one cluster, for the whole process.
//!
//! Enforced without a lock: one [`Breaker`] per cluster and set of limits lives in the
//! process's `Registry` (`cx/shared.rs`), and every worker's `ClusterState` holds the same
//! one. Taking a place is one `fetch_add` on the limit's counter; whoever finds the counter
//! already at the limit takes its increment back and is refused. So the count of places
//! held never exceeds the limit, whatever the workers do at the same time (two workers
//! racing for the last place may both be refused, never both admitted). A place is given
//! back when its guard drops: a request's when it ends (or is dropped by its deadline), a
//! connection's when the connection closes (pooled connections hold theirs while idle).
//!
//! Where each limit is taken (`upstream/mod.rs`): `max_requests` at the start of
//! [`super::call`], for the whole exchange; `max_pending_requests` around the Balance loop
//! ([`super::try_endpoints`]: choosing an endpoint, taking a pooled connection or
//! connecting); `max_connections` just before a new connection is made ([`super::acquire`],
//! `h2_pool::connect`). A refused request is answered 503 with `x-ringside-overloaded:
//! true` (gRPC UNAVAILABLE) at once, and counted per cluster and limit
//! (`ringside_circuit_breaker_overflows_total`). A cluster without `circuit_breaker` has no
//! `Breaker` and pays nothing.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use ringside_config::{CircuitBreaker, Cluster};

use crate::cx::error::{BreakerLimit, ProxyError};
use crate::cx::metrics::ClusterStats;
use crate::cx::shared::Registry;

/// The counters of one cluster's limits, shared by every worker.
#[derive(Debug)]
pub(crate) struct Breaker {
    connections: Counter,
    pending: Counter,
    requests: Counter,
}

#[derive(Debug)]
struct Counter {
    /// `None`: this limit is not configured, and not counted.
    max: Option<u32>,
    held: AtomicU32,
}

impl Counter {
    fn new(max: Option<u32>) -> Counter {
        Counter {
            max,
            held: AtomicU32::new(0),
        }
    }

    /// Takes a place; `false` at the limit.
    fn take(&self) -> bool {
        let Some(max) = self.max else { return true };
        if self.held.fetch_add(1, Ordering::Relaxed) >= max {
            self.held.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    fn give_back(&self) {
        if self.max.is_some() {
            self.held.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Breaker {
    fn new(limits: &CircuitBreaker) -> Breaker {
        Breaker {
            connections: Counter::new(limits.max_connections),
            pending: Counter::new(limits.max_pending_requests),
            requests: Counter::new(limits.max_requests),
        }
    }

    /// The process's breaker for `cluster`, when it has one: the same one for every worker
    /// and every view whose cluster has the same name and limits.
    pub(crate) fn of(cluster: &Cluster, registry: &Registry) -> Option<Arc<Breaker>> {
        let limits = cluster.circuit_breaker.as_ref()?;
        let key = format!(
            "breaker/{}/{:?}/{:?}/{:?}",
            cluster.name, limits.max_connections, limits.max_pending_requests, limits.max_requests
        );
        Some(registry.get(&key, || Breaker::new(limits)))
    }

    fn counter(&self, limit: BreakerLimit) -> &Counter {
        match limit {
            BreakerLimit::Connections => &self.connections,
            BreakerLimit::PendingRequests => &self.pending,
            BreakerLimit::Requests => &self.requests,
        }
    }

    /// A place under `limit` for as long as the guard lives; at the limit, the overflow is
    /// counted and the request refused.
    /// `stats` is asked for only when the limit refuses (a map lookup a request need not pay).
    pub(crate) fn hold<S: std::ops::Deref<Target = ClusterStats>>(
        &self,
        limit: BreakerLimit,
        stats: impl FnOnce() -> S,
    ) -> Result<Held<'_>, ProxyError> {
        if self.counter(limit).take() {
            Ok(Held {
                breaker: self,
                limit,
            })
        } else {
            stats().overflow(limit);
            Err(ProxyError::Overloaded(limit))
        }
    }

    /// A place under `max_connections` for a new connection, held by the connection.
    pub(crate) fn hold_connection<S: std::ops::Deref<Target = ClusterStats>>(
        self: &Arc<Self>,
        stats: impl FnOnce() -> S,
    ) -> Result<ConnectionSlot, ProxyError> {
        self.hold(BreakerLimit::Connections, stats).map(|held| {
            std::mem::forget(held);
            ConnectionSlot(Arc::clone(self))
        })
    }

    /// Whether `max_connections` is set (connections then carry a slot).
    pub(crate) fn limits_connections(&self) -> bool {
        self.connections.max.is_some()
    }

    /// Places held under `limit` now (tests).
    #[cfg(test)]
    pub(crate) fn held(&self, limit: BreakerLimit) -> u32 {
        self.counter(limit).held.load(Ordering::Relaxed)
    }
}

/// A place under one limit, given back on drop.
pub(crate) struct Held<'a> {
    breaker: &'a Breaker,
    limit: BreakerLimit,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.breaker.counter(self.limit).give_back();
    }
}

/// A connection's place under `max_connections`, given back when the connection closes.
pub(crate) struct ConnectionSlot(Arc<Breaker>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.connections.give_back();
    }
}

/// Holds a place under `limit` when `breaker` is set (a cluster with a breaker).
pub(crate) fn hold<'b>(
    breaker: Option<&'b Breaker>,
    limit: BreakerLimit,
    stats: impl FnOnce() -> std::rc::Rc<ClusterStats>,
) -> Result<Option<Held<'b>>, ProxyError> {
    match breaker {
        None => Ok(None),
        Some(b) => b.hold(limit, stats).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(max_requests: u32) -> Breaker {
        Breaker::new(&CircuitBreaker::new(Some(2), None, Some(max_requests)))
    }

    #[test]
    fn places_are_held_until_dropped_and_overflows_counted() {
        let b = breaker(2);
        let stats = ClusterStats::default();
        let one = b.hold(BreakerLimit::Requests, || &stats).unwrap();
        let two = b.hold(BreakerLimit::Requests, || &stats).unwrap();
        assert!(matches!(
            b.hold(BreakerLimit::Requests, || &stats),
            Err(ProxyError::Overloaded(BreakerLimit::Requests))
        ));
        assert_eq!(stats.overflows(BreakerLimit::Requests), 1);
        drop(one);
        let three = b.hold(BreakerLimit::Requests, || &stats).unwrap();
        assert_eq!(b.held(BreakerLimit::Requests), 2);
        drop((two, three));
        assert_eq!(b.held(BreakerLimit::Requests), 0);
        // An unconfigured limit is not counted.
        let _p = b.hold(BreakerLimit::PendingRequests, || &stats).unwrap();
        assert_eq!(b.held(BreakerLimit::PendingRequests), 0);
    }

    #[test]
    fn connection_slots_live_with_their_connection() {
        let b = Arc::new(breaker(1));
        let stats = ClusterStats::default();
        let a = b.hold_connection(|| &stats).unwrap();
        let c = b.hold_connection(|| &stats).unwrap();
        assert!(b.hold_connection(|| &stats).is_err());
        assert_eq!(b.held(BreakerLimit::Connections), 2);
        drop((a, c));
        assert_eq!(b.held(BreakerLimit::Connections), 0);
    }

    /// Two threads, each wanting two places at once, race for three: never more than
    /// three are held together, and every place is given back.
    #[test]
    fn the_limit_holds_across_threads() {
        let b = Arc::new(breaker(3));
        let inside = Arc::new(AtomicU32::new(0));
        let peak = Arc::new(AtomicU32::new(0));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (b, inside, peak) = (Arc::clone(&b), Arc::clone(&inside), Arc::clone(&peak));
                std::thread::spawn(move || {
                    let stats = ClusterStats::default();
                    let mut admitted = 0u32;
                    for _ in 0..20_000 {
                        let held: Vec<_> = (0..2)
                            .filter_map(|_| b.hold(BreakerLimit::Requests, || &stats).ok())
                            .collect();
                        let n = held.len() as u32;
                        admitted += n;
                        let now = inside.fetch_add(n, Ordering::SeqCst) + n;
                        peak.fetch_max(now, Ordering::SeqCst);
                        inside.fetch_sub(n, Ordering::SeqCst);
                        drop(held);
                    }
                    admitted
                })
            })
            .collect();
        let admitted: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert!(admitted >= 40_000, "{admitted}");
        assert!(peak.load(Ordering::SeqCst) <= 3);
        assert_eq!(b.held(BreakerLimit::Requests), 0);
    }
}
