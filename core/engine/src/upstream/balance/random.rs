//! `lb = "random"`: weighted random choice of an endpoint.
//!
//! Where it sits: the Balance stage (after routing, before the pool) picks with it for random
//! clusters; least_request draws its two candidates with it, and ring_hash uses it for requests
//! that carry no hash key.
//!
//! How: cumulative weights and a binary search, so a draw costs O(log n) and lands on endpoint
//! `i` with probability `weight_i / total`. An unusable draw is redrawn (which keeps the
//! proportions among the usable endpoints exact); after a few misses, when most of the weight
//! is unusable, one pass over the endpoints picks among the usable ones directly.
//!
//! Config read: `Cluster::endpoints[].weight`. Metrics: none. Errors: none (`None`: no usable
//! endpoint).

use super::rng::Rng;
use super::Refused;

/// Draws before giving up on redrawing and scanning instead: with half the weight unusable,
/// 8 draws all miss 1 time in 256.
const REDRAWS: usize = 8;

#[derive(Debug)]
pub(super) struct WeightedRandom {
    /// `cumulative[i]` = weight of endpoints `0..=i`; the last entry is the total.
    cumulative: Vec<u64>,
}

impl WeightedRandom {
    pub(super) fn new(weights: &[u32]) -> WeightedRandom {
        let cumulative = weights
            .iter()
            .scan(0u64, |sum, &w| {
                *sum += u64::from(w);
                Some(*sum)
            })
            .collect();
        WeightedRandom { cumulative }
    }

    pub(super) fn pick(&self, rng: &Rng, usable: &impl Fn(usize) -> bool) -> Option<usize> {
        let total = self.cumulative.last().copied().filter(|&t| t > 0)?;
        let mut refused = Refused::new(self.cumulative.len());
        for _ in 0..REDRAWS {
            let r = rng.below(total);
            let i = self.cumulative.partition_point(|&c| c <= r);
            if refused.allows(i, usable) {
                return Some(i);
            }
            if refused.all() {
                return None;
            }
        }
        self.pick_by_scan(rng, &mut refused, usable)
    }

    /// One pass, keeping each usable endpoint with probability `weight / weight seen so far`
    /// (a weighted reservoir of one): exact, O(n), and asks `usable` once per endpoint.
    fn pick_by_scan(
        &self,
        rng: &Rng,
        refused: &mut Refused,
        usable: &impl Fn(usize) -> bool,
    ) -> Option<usize> {
        let mut seen = 0u64;
        let mut chosen = None;
        let mut previous = 0u64;
        for (i, &cumulative) in self.cumulative.iter().enumerate() {
            let weight = cumulative - previous;
            previous = cumulative;
            if weight == 0 || !refused.allows(i, usable) {
                continue;
            }
            seen += weight;
            if rng.below(seen) < weight {
                chosen = Some(i);
            }
        }
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(weights: &[u32], picks: usize, usable: impl Fn(usize) -> bool) -> Vec<usize> {
        let random = WeightedRandom::new(weights);
        let rng = Rng::new(0x5eed);
        let mut counts = vec![0; weights.len()];
        for _ in 0..picks {
            let i = random.pick(&rng, &usable).unwrap();
            counts[i] += 1;
        }
        counts
    }

    /// `count` is within `tolerance` (a fraction of `picks`) of `share` of `picks`.
    fn near(count: usize, share: f64, picks: usize, tolerance: f64) -> bool {
        (count as f64 / picks as f64 - share).abs() < tolerance
    }

    #[test]
    fn picks_in_proportion_to_weight() {
        let n = 100_000;
        let c = counts(&[1, 2, 7], n, |_| true);
        assert!(near(c[0], 0.1, n, 0.01), "{c:?}");
        assert!(near(c[1], 0.2, n, 0.01), "{c:?}");
        assert!(near(c[2], 0.7, n, 0.01), "{c:?}");

        let c = counts(&[90, 10], n, |_| true);
        assert!(near(c[0], 0.9, n, 0.01), "{c:?}");
    }

    #[test]
    fn equal_weights_spread_evenly() {
        let n = 100_000;
        let c = counts(&[5; 4], n, |_| true);
        assert!(c.iter().all(|&k| near(k, 0.25, n, 0.01)), "{c:?}");
    }

    #[test]
    fn skips_unusable_and_keeps_the_proportions_of_the_rest() {
        let n = 100_000;
        let c = counts(&[1, 5, 3], n, |i| i != 1);
        assert_eq!(c[1], 0);
        assert!(near(c[0], 0.25, n, 0.01), "{c:?}");
        assert!(near(c[2], 0.75, n, 0.01), "{c:?}");
    }

    #[test]
    fn the_scan_fallback_is_exact_when_nearly_all_weight_is_unusable() {
        let n = 20_000;
        let c = counts(&[10_000, 1, 3], n, |i| i != 0);
        assert_eq!(c[0], 0);
        assert!(near(c[1], 0.25, n, 0.02), "{c:?}");
        assert!(near(c[2], 0.75, n, 0.02), "{c:?}");
    }

    #[test]
    fn none_without_endpoints_or_usable_ones() {
        let rng = Rng::new(1);
        assert_eq!(WeightedRandom::new(&[]).pick(&rng, &|_| true), None);
        assert_eq!(WeightedRandom::new(&[0, 0]).pick(&rng, &|_| true), None);
        assert_eq!(WeightedRandom::new(&[1, 2]).pick(&rng, &|_| false), None);
        let wide = WeightedRandom::new(&[1; 300]);
        assert_eq!(wide.pick(&rng, &|_| false), None);
        assert_eq!(wide.pick(&rng, &|i| i == 299), Some(299));
    }
}
