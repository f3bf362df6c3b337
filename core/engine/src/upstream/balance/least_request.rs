//! `lb = "least_request"`: the power of two choices.
//!
//! Where it sits: the Balance stage (after routing, before the pool) picks with it for
//! least-request clusters, and reports each request's start and end through
//! `Balancer::request_started` / `request_finished`, which keep the active counts here.
//!
//! How: draw two distinct usable endpoints at random, in proportion to weight, and take the one
//! with fewer active requests per unit of weight (`active / weight`, compared exactly by cross
//! multiplication); on a tie, the first drawn. Two random candidates instead of a full scan
//! keep a pick O(log n), and avoid every worker herding onto the single least-loaded endpoint
//! (Mitzenmacher; Envoy's and nginx's `random two least_conn` work the same way). With one
//! usable endpoint, that one. Counts are per worker, like everything else per worker.
//!
//! Config read: `Cluster::endpoints[].weight`. Metrics: none. Errors: none (`None`: no usable
//! endpoint).

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;

use super::random::WeightedRandom;
use super::rng::Rng;

#[derive(Debug)]
pub(super) struct LeastRequest {
    candidates: WeightedRandom,
    weights: Vec<u32>,
    /// Requests in flight per endpoint, on this worker (shared with the balancer this one
    /// replaced, for the endpoints both have: see [`LeastRequest::carry`]).
    active: Vec<Rc<Cell<u32>>>,
}

impl LeastRequest {
    pub(super) fn new(weights: &[u32]) -> LeastRequest {
        LeastRequest {
            candidates: WeightedRandom::new(weights),
            weights: weights.to_vec(),
            active: weights.iter().map(|_| Rc::default()).collect(),
        }
    }

    /// Shares `old`'s active counts for the endpoints both have (by address: `mine` and
    /// `theirs` are the endpoints' addresses): requests still in flight on `old` end on the
    /// counts this one reads.
    pub(super) fn carry(&mut self, mine: &[SocketAddr], old: &LeastRequest, theirs: &[SocketAddr]) {
        for (slot, address) in self.active.iter_mut().zip(mine) {
            if let Some(i) = theirs.iter().position(|a| a == address) {
                if let Some(count) = old.active.get(i) {
                    *slot = Rc::clone(count);
                }
            }
        }
    }

    pub(super) fn pick(&self, rng: &Rng, usable: &impl Fn(usize) -> bool) -> Option<usize> {
        let first = self.candidates.pick(rng, usable)?;
        let other = |i: usize| i != first && usable(i);
        match self.candidates.pick(rng, &other) {
            Some(second) if self.less_loaded(second, first) => Some(second),
            _ => Some(first),
        }
    }

    /// Whether `a` carries strictly fewer active requests per unit of weight than `b`.
    fn less_loaded(&self, a: usize, b: usize) -> bool {
        let (active_a, weight_a) = self.load(a);
        let (active_b, weight_b) = self.load(b);
        active_a * weight_b < active_b * weight_a
    }

    fn load(&self, i: usize) -> (u64, u64) {
        let active = self.active.get(i).map_or(0, |a| a.get());
        let weight = self.weights.get(i).copied().unwrap_or(1);
        (u64::from(active), u64::from(weight))
    }

    pub(super) fn started(&self, i: usize) {
        if let Some(active) = self.active.get(i) {
            active.set(active.get().saturating_add(1));
        }
    }

    pub(super) fn finished(&self, i: usize) {
        if let Some(active) = self.active.get(i) {
            active.set(active.get().saturating_sub(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_load(weights: &[u32], active: &[u32]) -> LeastRequest {
        let lr = LeastRequest::new(weights);
        for (i, &n) in active.iter().enumerate() {
            for _ in 0..n {
                lr.started(i);
            }
        }
        lr
    }

    #[test]
    fn of_two_endpoints_the_less_loaded_always_wins() {
        let lr = with_load(&[1, 1], &[10, 0]);
        let rng = Rng::new(1);
        for _ in 0..1000 {
            assert_eq!(lr.pick(&rng, &|_| true), Some(1));
        }
    }

    #[test]
    fn the_most_loaded_of_three_is_never_picked_and_the_idle_one_most() {
        let lr = with_load(&[1, 1, 1], &[9, 3, 0]);
        let rng = Rng::new(2);
        let mut counts = [0; 3];
        for _ in 0..3000 {
            counts[lr.pick(&rng, &|_| true).unwrap()] += 1;
        }
        assert_eq!(counts[0], 0, "{counts:?}");
        assert!(counts[2] > counts[1] * 3 / 2, "{counts:?}");
    }

    #[test]
    fn load_is_compared_per_unit_of_weight() {
        // 3 active on weight 4 (0.75 each) beats 1 active on weight 1.
        let lr = with_load(&[4, 1], &[3, 1]);
        let rng = Rng::new(3);
        for _ in 0..500 {
            assert_eq!(lr.pick(&rng, &|_| true), Some(0));
        }
        // 5 active on weight 4 (1.25 each) loses to 1 on weight 1.
        let lr = with_load(&[4, 1], &[5, 1]);
        for _ in 0..500 {
            assert_eq!(lr.pick(&rng, &|_| true), Some(1));
        }
    }

    #[test]
    fn requests_that_never_finish_spread_by_weight() {
        let lr = LeastRequest::new(&[3, 1]);
        let rng = Rng::new(4);
        for _ in 0..4000 {
            let i = lr.pick(&rng, &|_| true).unwrap();
            lr.started(i);
        }
        let (a, b) = (lr.load(0).0, lr.load(1).0);
        assert!((2990..=3010).contains(&a) && a + b == 4000, "{a} {b}");
    }

    #[test]
    fn finished_requests_free_capacity() {
        let lr = with_load(&[1, 1], &[2, 1]);
        let rng = Rng::new(5);
        assert_eq!(lr.pick(&rng, &|_| true), Some(1));
        lr.finished(0);
        lr.finished(0);
        assert_eq!(lr.pick(&rng, &|_| true), Some(0));
        lr.finished(0);
        assert_eq!(lr.load(0).0, 0, "saturates at zero");
        lr.started(7);
        lr.finished(7);
    }

    #[test]
    fn one_endpoint_is_picked_however_loaded() {
        let lr = with_load(&[1], &[1000]);
        assert_eq!(lr.pick(&Rng::new(6), &|_| true), Some(0));
        let lr = with_load(&[1, 1, 1], &[1000, 0, 0]);
        assert_eq!(lr.pick(&Rng::new(6), &|i| i == 0), Some(0));
    }

    #[test]
    fn skips_unusable_even_when_idle() {
        let lr = with_load(&[1, 1, 1], &[5, 0, 5]);
        let rng = Rng::new(7);
        for _ in 0..500 {
            assert_ne!(lr.pick(&rng, &|i| i != 1), Some(1));
        }
        assert_eq!(lr.pick(&rng, &|_| false), None);
        assert_eq!(LeastRequest::new(&[]).pick(&rng, &|_| true), None);
    }
}
