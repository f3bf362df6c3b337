//! `lb = "round_robin"`: nginx's smooth weighted round robin.
//!
//! Where it sits: the Balance stage (after routing, before the pool) picks with it for
//! round-robin clusters.
//!
//! How: nginx's algorithm (`ngx_http_upstream_get_peer`): on each pick every endpoint's
//! `current` grows by its weight, the largest `current` wins (the first one on a tie), and the
//! winner's `current` drops by the total weight. Weights 5,1,1 give `a a b a c a a`: each
//! endpoint gets exactly its share over a cycle of `total` picks, spread out rather than in
//! bursts. The sequence depends only on the weights, so it is computed once, at build time, for
//! one cycle (weights divided by their gcd first: 90,10 is the cycle of 9,1), and a pick is a
//! cursor step: O(1). A cycle longer than [`MAX_CYCLE`] is computed from weights scaled down to
//! fit (every endpoint keeps at least one slot), so extreme weights cost bounded memory at the
//! price of rounding. Each balancer starts at a random point of the cycle, so workers do not
//! send their first requests to the same endpoint.
//!
//! Unusable endpoints: the cursor steps over their slots. Each usable endpoint still gets its
//! slots of every cycle, so shares among the usable ones stay exact.
//!
//! Config read: `Cluster::endpoints[].weight`. Metrics: none. Errors: none (`None`: no usable
//! endpoint).

use std::cell::Cell;

use super::Refused;

/// Longest precomputed cycle (when the endpoints are fewer than this).
const MAX_CYCLE: u64 = 4096;

#[derive(Debug)]
pub(super) struct RoundRobin {
    /// One full cycle of picks: endpoint indices.
    cycle: Vec<usize>,
    /// Position in `cycle` of the next pick; always `< cycle.len()` when the cycle is non-empty.
    next: Cell<usize>,
    endpoints: usize,
}

impl RoundRobin {
    /// `start`: where in the cycle to begin (taken modulo its length).
    pub(super) fn new(weights: &[u32], start: u64) -> RoundRobin {
        let cycle = smooth_cycle(&cycle_weights(weights));
        let start = match u64::try_from(cycle.len()) {
            Ok(len) if len > 0 => usize::try_from(start % len).unwrap_or(0),
            _ => 0,
        };
        RoundRobin {
            cycle,
            next: Cell::new(start),
            endpoints: weights.len(),
        }
    }

    pub(super) fn pick(&self, usable: &impl Fn(usize) -> bool) -> Option<usize> {
        let len = self.cycle.len();
        let mut refused = Refused::new(self.endpoints);
        let mut pos = self.next.get();
        for _ in 0..len {
            let i = *self.cycle.get(pos)?;
            pos += 1;
            if pos == len {
                pos = 0;
            }
            if refused.allows(i, usable) {
                self.next.set(pos);
                return Some(i);
            }
            if refused.all() {
                return None;
            }
        }
        None
    }
}

/// The weights whose cycle we compute: divided by their gcd (same sequence, shorter cycle),
/// then scaled down if the cycle would still exceed [`MAX_CYCLE`].
fn cycle_weights(weights: &[u32]) -> Vec<u64> {
    let gcd = weights
        .iter()
        .fold(0u64, |g, &w| gcd(g, u64::from(w)))
        .max(1);
    let reduced: Vec<u64> = weights.iter().map(|&w| u64::from(w) / gcd).collect();
    let total: u64 = reduced.iter().sum();
    if total <= MAX_CYCLE {
        return reduced;
    }
    reduced
        .iter()
        .map(|&w| (w * MAX_CYCLE / total).max(1))
        .collect()
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// nginx's smooth weighted round robin, run for one cycle of `sum(weights)` picks starting from
/// all-zero `current`s (after which every `current` is zero again, so the cycle repeats).
fn smooth_cycle(weights: &[u64]) -> Vec<usize> {
    if weights.iter().all(|&w| w == 1) {
        return (0..weights.len()).collect();
    }
    let weights: Vec<i64> = weights
        .iter()
        .map(|&w| i64::try_from(w).unwrap_or(i64::MAX))
        .collect();
    let total: i64 = weights.iter().sum();
    let mut current = vec![0i64; weights.len()];
    let mut cycle = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for _ in 0..total {
        let mut best = 0;
        let mut best_current = i64::MIN;
        for (i, (c, &w)) in current.iter_mut().zip(&weights).enumerate() {
            *c += w;
            if *c > best_current {
                best = i;
                best_current = *c;
            }
        }
        if let Some(c) = current.get_mut(best) {
            *c -= total;
        }
        cycle.push(best);
    }
    cycle
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picks(rr: &RoundRobin, n: usize, usable: impl Fn(usize) -> bool) -> Vec<usize> {
        (0..n).map(|_| rr.pick(&usable).unwrap()).collect()
    }

    fn counts(seq: &[usize], endpoints: usize) -> Vec<usize> {
        let mut c = vec![0; endpoints];
        for &i in seq {
            c[i] += 1;
        }
        c
    }

    #[test]
    fn matches_nginx_reference_sequence() {
        // The example in nginx's ngx_http_upstream_round_robin.c: weights 5,1,1.
        let rr = RoundRobin::new(&[5, 1, 1], 0);
        assert_eq!(picks(&rr, 14, |_| true), [0, 0, 1, 0, 2, 0, 0].repeat(2));
    }

    #[test]
    fn weights_one_two_interleave_and_split_one_third_two_thirds() {
        let rr = RoundRobin::new(&[1, 2], 0);
        assert_eq!(picks(&rr, 3, |_| true), [1, 0, 1]);
        for start in 0..3 {
            let rr = RoundRobin::new(&[1, 2], start);
            assert_eq!(counts(&picks(&rr, 300, |_| true), 2), [100, 200]);
        }
    }

    #[test]
    fn ninety_ten_is_exactly_nine_to_one_and_spread_out() {
        let rr = RoundRobin::new(&[90, 10], 0);
        let seq = picks(&rr, 1000, |_| true);
        assert_eq!(counts(&seq, 2), [900, 100]);
        // Smooth: every window of 10 consecutive picks holds the light endpoint exactly once.
        for window in seq.windows(10) {
            assert_eq!(window.iter().filter(|&&i| i == 1).count(), 1, "{window:?}");
        }
    }

    #[test]
    fn exact_over_every_cycle_from_any_start() {
        let weights = [3, 2, 1, 6];
        for start in [0, 1, 5, 11, u64::MAX] {
            let rr = RoundRobin::new(&weights, start);
            for _ in 0..3 {
                assert_eq!(counts(&picks(&rr, 12, |_| true), 4), [3, 2, 1, 6]);
            }
        }
    }

    #[test]
    fn equal_weights_take_turns() {
        let rr = RoundRobin::new(&[7, 7, 7], 0);
        assert_eq!(picks(&rr, 6, |_| true), [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn skips_unusable_and_keeps_exact_shares_among_the_rest() {
        let rr = RoundRobin::new(&[1, 2, 3], 4);
        let seq = picks(&rr, 600, |i| i != 1);
        assert_eq!(counts(&seq, 3), [150, 0, 450]);

        let rr = RoundRobin::new(&[1, 1, 1], 0);
        assert_eq!(picks(&rr, 4, |i| i != 0), [1, 2, 1, 2]);
    }

    #[test]
    fn an_endpoint_tried_by_this_request_is_skipped_once_then_served_again() {
        let rr = RoundRobin::new(&[1, 1], 0);
        assert_eq!(rr.pick(&|_| true), Some(0));
        assert_eq!(rr.pick(&|i| i != 1), Some(0));
        assert_eq!(rr.pick(&|_| true), Some(1));
    }

    #[test]
    fn none_when_nothing_is_usable_or_there_is_nothing() {
        assert_eq!(RoundRobin::new(&[], 3).pick(&|_| true), None);
        assert_eq!(RoundRobin::new(&[4, 5], 3).pick(&|_| false), None);
        let wide = RoundRobin::new(&[1; 200], 3);
        assert_eq!(wide.pick(&|_| false), None);
        assert_eq!(wide.pick(&|i| i == 150), Some(150));
    }

    #[test]
    fn huge_weights_give_a_bounded_cycle_with_about_the_same_shares() {
        let rr = RoundRobin::new(&[u32::MAX, u32::MAX / 3, 1], 0);
        assert!(rr.cycle.len() as u64 <= MAX_CYCLE + 3, "{}", rr.cycle.len());
        let c = counts(&rr.cycle, 3);
        assert!(c[2] >= 1, "every endpoint keeps a slot: {c:?}");
        let ratio = c[0] as f64 / c[1] as f64;
        assert!((2.9..3.1).contains(&ratio), "{c:?}");
    }

    #[test]
    fn gcd_reduction_keeps_the_cycle_short() {
        assert_eq!(RoundRobin::new(&[90, 10], 0).cycle.len(), 10);
        assert_eq!(RoundRobin::new(&[1000, 3000], 0).cycle.len(), 4);
        assert_eq!(gcd(12, 18), 6);
        assert_eq!(gcd(0, 5), 5);
    }
}
