//! `lb = "ring_hash"`: consistent hashing on a ring, so that a key keeps its endpoint.
//!
//! Where it sits: the Balance stage (after routing, before the pool) computes the request's key
//! with `request_hash` and picks with it for ring-hash clusters; a request without the key is
//! sent to a weighted random endpoint instead (by `Balancer`, not here).
//!
//! How (Envoy's ring, ketama-style): each endpoint owns [`POINTS_PER_WEIGHT`] × weight points
//! on a 64-bit ring, point `k` of endpoint `addr` sitting at `xxh64("{addr}_{k}")`. A key is
//! served by the owner of the first point at or after it, wrapping past the top: a binary
//! search, O(log points). Points depend only on the endpoint's address and weight, never on its
//! position in the list or on the process, so the same key reaches the same endpoint on every
//! worker, every run and every host; adding an endpoint takes over only the keys that now land
//! on its points (about 1/N of them) and removing one moves only its own keys.
//!
//! Unusable endpoints: the lookup walks on to the next point owned by a usable endpoint, which
//! sends a key exactly where it would go if the unusable endpoints were removed from the ring,
//! and brings it back when they return.
//!
//! A ring above [`MAX_POINTS`] (total weight above 655) is built with proportionally fewer
//! points per endpoint (at least one each), bounding its memory at about 1 MiB per worker.
//!
//! Config read: `Cluster::endpoints` (address and weight). Metrics: none. Errors: none
//! (`None`: no usable endpoint).

use std::fmt::Write as _;
use std::net::SocketAddr;

use super::hash::xxh64;
use super::Refused;

/// Ring points per unit of weight.
const POINTS_PER_WEIGHT: u64 = 100;
/// Largest ring built (more only when there are more endpoints than this).
const MAX_POINTS: u64 = 1 << 16;

#[derive(Debug)]
pub(super) struct RingHash {
    /// Point positions, ascending.
    hashes: Vec<u64>,
    /// `owners[p]`: the endpoint index owning point `hashes[p]`.
    owners: Vec<usize>,
    endpoints: usize,
}

impl RingHash {
    pub(super) fn new(endpoints: &[(SocketAddr, u32)]) -> RingHash {
        let total: u64 = endpoints
            .iter()
            .map(|&(_, w)| u64::from(w) * POINTS_PER_WEIGHT)
            .sum();
        let mut points: Vec<(u64, usize)> = Vec::new();
        let mut label = String::new();
        for (i, &(address, weight)) in endpoints.iter().enumerate() {
            let wanted = u64::from(weight) * POINTS_PER_WEIGHT;
            let count = if total > MAX_POINTS {
                (wanted * MAX_POINTS / total).max(1)
            } else {
                wanted
            };
            for k in 0..count {
                label.clear();
                // Writing into a String cannot fail.
                let _ = write!(label, "{address}_{k}");
                points.push((xxh64(label.as_bytes(), 0), i));
            }
        }
        points.sort_unstable();
        RingHash {
            hashes: points.iter().map(|&(h, _)| h).collect(),
            owners: points.iter().map(|&(_, i)| i).collect(),
            endpoints: endpoints.len(),
        }
    }

    pub(super) fn pick(&self, hash: u64, usable: &impl Fn(usize) -> bool) -> Option<usize> {
        let len = self.owners.len();
        let mut pos = self.hashes.partition_point(|&h| h < hash);
        let mut refused = Refused::new(self.endpoints);
        for _ in 0..len {
            if pos >= len {
                pos = 0;
            }
            let owner = *self.owners.get(pos)?;
            if refused.allows(owner, usable) {
                return Some(owner);
            }
            if refused.all() {
                return None;
            }
            pos += 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    const A: &str = "10.0.0.1:8080";
    const B: &str = "10.0.0.2:8080";
    const C: &str = "10.0.0.3:8080";
    const D: &str = "10.0.0.4:8080";

    fn ring(names: &[&str]) -> (RingHash, Vec<SocketAddr>) {
        let endpoints: Vec<(SocketAddr, u32)> = names.iter().map(|n| (addr(n), 1)).collect();
        let addresses = endpoints.iter().map(|&(a, _)| a).collect();
        (RingHash::new(&endpoints), addresses)
    }

    fn keys() -> impl Iterator<Item = u64> {
        (0..10_000).map(|i: u32| xxh64(format!("user-{i}").as_bytes(), 0))
    }

    /// Key → address of the endpoint it reaches.
    fn map(names: &[&str], usable: impl Fn(usize) -> bool) -> HashMap<u64, SocketAddr> {
        let (ring, addresses) = ring(names);
        keys()
            .map(|k| (k, addresses[ring.pick(k, &usable).unwrap()]))
            .collect()
    }

    #[test]
    fn the_same_key_reaches_the_same_endpoint_whatever_the_list_order() {
        let first = map(&[A, B, C], |_| true);
        assert_eq!(first, map(&[A, B, C], |_| true));
        assert_eq!(first, map(&[C, A, B], |_| true));
    }

    #[test]
    fn keys_spread_about_evenly() {
        let mut per: HashMap<SocketAddr, usize> = HashMap::new();
        for (_, a) in map(&[A, B, C, D], |_| true) {
            *per.entry(a).or_default() += 1;
        }
        assert_eq!(per.len(), 4);
        assert!(per.values().all(|&n| (1800..3200).contains(&n)), "{per:?}");
    }

    #[test]
    fn adding_an_endpoint_moves_only_the_keys_it_takes() {
        let before = map(&[A, B, C], |_| true);
        let after = map(&[A, B, C, D], |_| true);
        let mut moved = 0;
        for (k, old) in &before {
            let new = after[k];
            if new != *old {
                assert_eq!(new, addr(D), "a key moved between old endpoints");
                moved += 1;
            }
        }
        assert!((1500..3500).contains(&moved), "{moved} of 10000 moved to D");
    }

    #[test]
    fn removing_an_endpoint_moves_only_its_own_keys() {
        let before = map(&[A, B, C], |_| true);
        let after = map(&[A, B], |_| true);
        let mut moved = 0;
        for (k, old) in &before {
            if *old == addr(C) {
                moved += 1;
            } else {
                assert_eq!(after[k], *old, "a key left a surviving endpoint");
            }
        }
        assert!((2000..4700).contains(&moved), "{moved}");
    }

    #[test]
    fn an_unusable_endpoint_behaves_as_if_removed() {
        let skipping = map(&[A, B, C], |i| i != 2);
        assert_eq!(skipping, map(&[A, B], |_| true));
    }

    #[test]
    fn weight_buys_a_proportional_share_of_keys() {
        let ring = RingHash::new(&[(addr(A), 3), (addr(B), 1)]);
        let on_a = keys()
            .filter(|&k| ring.pick(k, &|_| true) == Some(0))
            .count();
        assert!((6800..8200).contains(&on_a), "{on_a}");
    }

    #[test]
    fn lookups_wrap_around_the_top_of_the_ring() {
        let (ring, _) = ring(&[A, B, C]);
        let lowest = ring.owners[0];
        assert_eq!(ring.pick(u64::MAX, &|_| true), Some(lowest));
        assert_eq!(ring.pick(0, &|_| true), Some(lowest));
        let highest = *ring.hashes.last().unwrap();
        if highest < u64::MAX {
            assert_eq!(ring.pick(highest + 1, &|_| true), Some(lowest));
        }
    }

    #[test]
    fn none_when_nothing_is_usable_or_there_is_nothing() {
        let (ring3, _) = ring(&[A, B, C]);
        assert_eq!(ring3.pick(5, &|_| false), None);
        assert_eq!(RingHash::new(&[]).pick(5, &|_| true), None);
    }

    #[test]
    fn heavy_weights_build_a_bounded_ring() {
        let ring = RingHash::new(&[(addr(A), u32::MAX), (addr(B), 1), (addr(C), 1000)]);
        assert!(ring.hashes.len() as u64 <= MAX_POINTS + 3);
        assert!(ring.owners.contains(&1), "every endpoint keeps a point");
        assert_eq!(RingHash::new(&[(addr(A), 2)]).hashes.len(), 200);
    }

    /// The ring is part of ringside's observable behaviour: a change here moves clients to
    /// other endpoints after an upgrade. Change these values only on purpose.
    #[test]
    fn the_layout_is_stable_across_builds_and_versions() {
        let (ring, _) = ring(&[A, B, C]);
        let picks: Vec<usize> = (0..12u64)
            .map(|i| {
                ring.pick(i.wrapping_mul(0x1555_5555_5555_5555), &|_| true)
                    .unwrap()
            })
            .collect();
        assert_eq!(picks, PINNED);
        assert_eq!(ring.hashes[0], PINNED_FIRST_POINT);
    }

    const PINNED: [usize; 12] = [1, 2, 0, 2, 0, 0, 2, 2, 2, 0, 1, 0];
    const PINNED_FIRST_POINT: u64 = 0x00be_cf1f_c4ee_42d9;
}
