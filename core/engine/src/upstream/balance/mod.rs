//! Load balancing: which endpoint of a cluster serves one request.
//!
//! Where it sits: the Balance stage runs after routing has chosen a cluster and before the pool
//! hands out a connection. It asks that cluster's [`Balancer`] for an endpoint index, telling it
//! which endpoints to avoid (passively ejected after a failed connect, or already tried by this
//! request's retries), then asks the pool for a connection to that endpoint.
//!
//! Config read: `Cluster::lb`, `Cluster::endpoints` (address and weight) and, for ring hash,
//! `Cluster::hash_key` (through [`request_hash`]). Metrics: none here (the stage counts picks and
//! failures). Errors: none; `pick` returns `None` when no endpoint is usable and the stage turns
//! that into its "no healthy upstream" error.
//!
//! | `lb`            | algorithm                                                    | file               |
//! |-----------------|--------------------------------------------------------------|--------------------|
//! | `round_robin`   | nginx's smooth weighted round robin, one cycle precomputed   | `round_robin.rs`   |
//! | `random`        | weighted random (cumulative weights, binary search)          | `random.rs`        |
//! | `least_request` | power of two choices, fewer active requests per weight wins  | `least_request.rs` |
//! | `ring_hash`     | consistent-hash ring, 100 points per unit of weight (Envoy)   | `ring_hash.rs`     |
//!
//! `hash.rs` holds the stable hash (XXH64) and [`request_hash`]; `rng.rs` the per-balancer PRNG;
//! `groups.rs` picks within one group of a cluster's endpoints (a zone-aware cluster's side,
//! a priority level).
//!
//! Shape: one `Balancer` per worker per cluster. State lives in `Cell`s: workers are
//! thread-per-core, so there are no atomics and no locks. Everything that allocates happens in
//! [`Balancer::new`], at snapshot time; a pick allocates nothing, never panics, and costs O(1)
//! (round robin) or O(log n) (the others) while the endpoint it lands on is usable. Skipping
//! unusable endpoints costs one step per skipped slot, and each endpoint's `usable` is asked at
//! most once per pick (exactly so for the first 128 endpoints of a cluster).

mod groups;
mod hash;
mod least_request;
mod random;
mod ring_hash;
mod rng;
mod round_robin;

use std::net::SocketAddr;

use ringside_config::{Cluster, Lb};

pub(crate) use groups::Groups;
pub use hash::{made_cookie, request_hash};

use least_request::LeastRequest;
use random::WeightedRandom;
use ring_hash::RingHash;
use rng::Rng;
use round_robin::RoundRobin;

/// Picks endpoints of one cluster, for one worker.
#[derive(Debug)]
pub struct Balancer {
    algorithm: Algorithm,
    rng: Rng,
    /// The endpoints' addresses, indexed like the cluster's endpoints.
    addresses: Vec<SocketAddr>,
}

#[derive(Debug)]
enum Algorithm {
    RoundRobin(RoundRobin),
    Random(WeightedRandom),
    LeastRequest(LeastRequest),
    /// The ring for requests that carry a hash key; weighted random for those that do not.
    RingHash(RingHash, WeightedRandom),
}

impl Balancer {
    pub fn new(cluster: &ringside_config::Cluster) -> Balancer {
        Balancer::from_parts(cluster.lb, &endpoint_parts(cluster), rng::seed())
    }

    /// Builds from `(address, weight)` pairs (a subset of a cluster's endpoints).
    pub(crate) fn with_parts(lb: Lb, endpoints: &[(SocketAddr, u32)]) -> Balancer {
        Balancer::from_parts(lb, endpoints, rng::seed())
    }

    /// Builds from `(address, weight)` pairs with a given PRNG seed (tests pin the seed).
    /// A weight of 0 (which validation rejects) counts as 1.
    fn from_parts(lb: Lb, endpoints: &[(SocketAddr, u32)], seed: u64) -> Balancer {
        let rng = Rng::new(seed);
        let endpoints: Vec<(SocketAddr, u32)> =
            endpoints.iter().map(|&(a, w)| (a, w.max(1))).collect();
        let weights: Vec<u32> = endpoints.iter().map(|&(_, w)| w).collect();
        let algorithm = match lb {
            Lb::RoundRobin => Algorithm::RoundRobin(RoundRobin::new(&weights, rng.next_u64())),
            Lb::Random => Algorithm::Random(WeightedRandom::new(&weights)),
            Lb::LeastRequest => Algorithm::LeastRequest(LeastRequest::new(&weights)),
            Lb::RingHash => {
                Algorithm::RingHash(RingHash::new(&endpoints), WeightedRandom::new(&weights))
            }
        };
        let addresses = endpoints.iter().map(|&(a, _)| a).collect();
        Balancer {
            algorithm,
            rng,
            addresses,
        }
    }

    /// Takes over what `old` (the balancer of the same cluster before its endpoints changed:
    /// a reload, a DNS answer) knows of the endpoints both have, by address: least_request's
    /// active counts, shared from then on. Round robin's rotation and ring hash's ring are
    /// made anew from the new endpoints (a ring keeps the points of the endpoints that stay).
    pub fn carry(&mut self, old: &Balancer) {
        if let (Algorithm::LeastRequest(new), Algorithm::LeastRequest(previous)) =
            (&mut self.algorithm, &old.algorithm)
        {
            new.carry(&self.addresses, previous, &old.addresses);
        }
    }

    /// Picks an endpoint index (into cluster.endpoints) for one request.
    /// `hash`: the request's hash key (ring_hash only; None → fall back to a random pick).
    /// `usable(i)`: false for endpoints to avoid (passively ejected, or already tried for this request).
    /// Returns None when no endpoint is usable (or there are none).
    pub fn pick(&self, hash: Option<u64>, usable: impl Fn(usize) -> bool) -> Option<usize> {
        match &self.algorithm {
            Algorithm::RoundRobin(rr) => rr.pick(&usable),
            Algorithm::Random(random) => random.pick(&self.rng, &usable),
            Algorithm::LeastRequest(lr) => lr.pick(&self.rng, &usable),
            Algorithm::RingHash(ring, fallback) => match hash {
                Some(hash) => ring.pick(hash, &usable),
                None => fallback.pick(&self.rng, &usable),
            },
        }
    }

    /// A number in `0..n` from this balancer's generator (zone-aware picks draw with it).
    pub(crate) fn below(&self, n: u64) -> u64 {
        self.rng.below(n)
    }

    /// Request accounting for least_request (cheap no-ops for the others).
    pub fn request_started(&self, idx: usize) {
        if let Algorithm::LeastRequest(lr) = &self.algorithm {
            lr.started(idx);
        }
    }

    /// Request accounting for least_request (cheap no-ops for the others).
    pub fn request_finished(&self, idx: usize) {
        if let Algorithm::LeastRequest(lr) = &self.algorithm {
            lr.finished(idx);
        }
    }
}

fn endpoint_parts(cluster: &Cluster) -> Vec<(SocketAddr, u32)> {
    cluster
        .endpoints
        .iter()
        .map(|e| (e.address, e.weight))
        .collect()
}

/// The endpoints `usable` refused during one pick. Each endpoint is asked at most once (exactly
/// so for indices below 128; beyond, an endpoint may be asked again), and a walk can stop as
/// soon as every endpoint has refused instead of running to its bound.
struct Refused {
    bits: u128,
    count: usize,
    endpoints: usize,
}

impl Refused {
    const TRACKED: usize = 128;

    fn new(endpoints: usize) -> Refused {
        Refused {
            bits: 0,
            count: 0,
            endpoints,
        }
    }

    /// Whether endpoint `i` may serve this request.
    fn allows(&mut self, i: usize, usable: &impl Fn(usize) -> bool) -> bool {
        let bit = u32::try_from(i).ok().and_then(|s| 1u128.checked_shl(s));
        if let Some(bit) = bit {
            if self.bits & bit != 0 {
                return false;
            }
        }
        if usable(i) {
            return true;
        }
        if let Some(bit) = bit {
            self.bits |= bit;
            self.count += 1;
        }
        false
    }

    /// True once every endpoint is known to be unusable (only knowable up to 128 endpoints).
    fn all(&self) -> bool {
        self.endpoints <= Self::TRACKED && self.count >= self.endpoints
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Lb; 4] = [Lb::RoundRobin, Lb::Random, Lb::LeastRequest, Lb::RingHash];

    pub(super) fn addrs(weights: &[u32]) -> Vec<(SocketAddr, u32)> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| (SocketAddr::from(([10, 0, 0, i as u8 + 1], 8080)), w))
            .collect()
    }

    #[test]
    fn least_request_counts_follow_the_addresses_that_stay() {
        let a = |i: u8| (SocketAddr::from(([10, 0, 0, i], 80)), 1);
        let old = Balancer::from_parts(Lb::LeastRequest, &[a(1), a(2)], 1);
        for _ in 0..5 {
            old.request_started(0); // 10.0.0.1 busy
        }
        // 10.0.0.2 leaves, 10.0.0.3 comes; 10.0.0.1 moves to index 1.
        let mut new = Balancer::from_parts(Lb::LeastRequest, &[a(3), a(1)], 1);
        new.carry(&old);
        for _ in 0..20 {
            assert_eq!(
                new.pick(None, |_| true),
                Some(0),
                "the busy endpoint is avoided"
            );
        }
        // Requests in flight on the old balancer end on the shared count.
        for _ in 0..5 {
            old.request_finished(0);
        }
        new.request_started(0);
        assert_eq!(new.pick(None, |_| true), Some(1));
    }

    #[test]
    fn no_endpoints_gives_none_for_every_algorithm() {
        for lb in ALL {
            let b = Balancer::from_parts(lb, &[], 1);
            assert_eq!(b.pick(None, |_| true), None, "{lb:?}");
            assert_eq!(b.pick(Some(42), |_| true), None, "{lb:?}");
            b.request_started(0);
            b.request_finished(0);
        }
    }

    #[test]
    fn all_unusable_gives_none_for_every_algorithm() {
        for lb in ALL {
            for n in [1, 2, 5, 130] {
                let b = Balancer::from_parts(lb, &addrs(&vec![3; n]), 7);
                assert_eq!(b.pick(None, |_| false), None, "{lb:?} n={n}");
                assert_eq!(b.pick(Some(99), |_| false), None, "{lb:?} n={n}");
            }
        }
    }

    #[test]
    fn never_picks_an_unusable_endpoint_and_always_finds_the_usable_one() {
        let weights = [1, 5, 2, 9, 1, 3];
        for lb in ALL {
            let b = Balancer::from_parts(lb, &addrs(&weights), 3);
            let rng = Rng::new(11);
            for round in 0..2000u64 {
                let mask = rng.next_u64() & 0b11_1111;
                let usable = |i: usize| mask & (1 << i) != 0;
                let hash = (round % 2 == 0).then(|| rng.next_u64());
                match b.pick(hash, usable) {
                    Some(i) => assert!(usable(i), "{lb:?} picked unusable {i}"),
                    None => assert_eq!(mask, 0, "{lb:?} found nothing in mask {mask:b}"),
                }
            }
        }
    }

    #[test]
    fn only_one_usable_endpoint_is_always_the_pick() {
        for lb in ALL {
            let b = Balancer::from_parts(lb, &addrs(&[50, 1, 50, 50]), 5);
            for k in 0..200u64 {
                assert_eq!(b.pick(Some(k), |i| i == 1), Some(1), "{lb:?}");
                assert_eq!(b.pick(None, |i| i == 1), Some(1), "{lb:?}");
            }
        }
    }

    #[test]
    fn accounting_out_of_range_and_underflow_do_not_panic() {
        for lb in ALL {
            let b = Balancer::from_parts(lb, &addrs(&[1, 1]), 5);
            b.request_finished(0);
            b.request_started(usize::MAX);
            b.request_finished(usize::MAX);
            assert!(b.pick(None, |_| true).is_some());
        }
    }

    #[test]
    fn zero_weight_counts_as_one() {
        for lb in ALL {
            let b = Balancer::from_parts(lb, &addrs(&[0, 0]), 5);
            assert!(b.pick(None, |_| true).is_some(), "{lb:?}");
            assert!(b.pick(Some(1), |_| true).is_some(), "{lb:?}");
        }
    }

    #[test]
    fn new_reads_the_validated_cluster() {
        let config = ringside_config::parse(
            r#"
[[listeners]]
name = "in"
bind = "127.0.0.1:0"

[[clusters]]
name = "weighted"
endpoints = [{ address = "127.0.0.1:1001", weight = 2 }, "127.0.0.1:1002"]

[[clusters]]
name = "sticky"
lb = "ring_hash"
hash_key = "header:x-user"
endpoints = ["127.0.0.1:1001", "127.0.0.1:1002", "127.0.0.1:1003"]
"#,
        )
        .unwrap();
        let rr = Balancer::new(&config.clusters[0]);
        let mut counts = [0; 2];
        for _ in 0..300 {
            counts[rr.pick(None, |_| true).unwrap()] += 1;
        }
        assert_eq!(counts, [200, 100]);

        let sticky = &config.clusters[1];
        let key = sticky.hash_key.as_ref().unwrap();
        let (one, two) = (Balancer::new(sticky), Balancer::new(sticky));
        for user in ["alice", "bob", "carol", "dave"] {
            let hash = request_hash(
                key,
                |h| (h == "x-user").then_some(user.as_bytes()),
                [127, 0, 0, 1].into(),
            );
            assert!(hash.is_some());
            let first = one.pick(hash, |_| true);
            assert!(first.is_some());
            assert_eq!(two.pick(hash, |_| true), first, "{user}");
            assert_eq!(one.pick(hash, |_| true), first, "{user}");
        }
    }

    #[test]
    fn refused_asks_each_endpoint_once() {
        let asked = std::cell::Cell::new(0);
        let usable = |_: usize| {
            asked.set(asked.get() + 1);
            false
        };
        let mut refused = Refused::new(3);
        for _ in 0..10 {
            for i in 0..3 {
                assert!(!refused.allows(i, &usable));
            }
        }
        assert_eq!(asked.get(), 3);
        assert!(refused.all());
        let big = Refused::new(200);
        assert!(!big.all());
    }
}
