//! Priority levels (`endpoints[].priority`): which level of a cluster's endpoints serves a
//! request, as Envoy chooses a priority.
//!
//! Where it sits: inside a worker's `ClusterState` (`cluster.rs`); its choice runs in the
//! Balance loop (`try_endpoints`) before the cluster's balancer picks within the level.
//!
//! How (Envoy's arithmetic, on endpoint counts as Envoy's, not weights): a level's health is
//! the share of its endpoints in rotation times `overprovisioning_percent`, at most 100%.
//! Levels take the load in order, each as much of what is left as its health: level 0
//! healthy enough takes everything; one at 70% leaves 30% to the next, and so on. When the
//! healths of all levels add up to less than 100%, each level's load is scaled up by the same
//! factor so that they add up to 100% (Envoy's normalized total health). Then, and only then,
//! a level whose share in rotation is below `panic_threshold_percent` is in panic mode: its
//! requests may go to any of its endpoints. With no endpoint in rotation anywhere, level 0
//! takes everything, in panic mode unless `panic_threshold_percent = 0`.
//! Within the chosen level the cluster's `lb` picks (round robin with a cursor per level,
//! `balance/groups.rs`); a level with no endpoint the request may use (all tried, say) gives
//! way to the other levels in order.
//!
//! Cost: a cluster whose endpoints are all of one level has no `Levels` and pays nothing. One
//! with levels reads the health marks of level 0's endpoints on each pick until it has seen
//! enough of them in rotation (a few atomic loads), the other levels' only while level 0 is
//! short, and then draws one random number.
//!
//! Config read: `Endpoint::priority`, `Cluster::overprovisioning_percent`,
//! `Cluster::panic_threshold_percent`. Metrics: panic-mode picks count in
//! `ringside_upstream_panic_requests_total` (`ClusterState::panicked`). Errors: none.

use std::cell::RefCell;

use ringside_config::Cluster;

use super::balance::{Balancer, Groups};
use super::zones::{ZoneWeights, WHOLE};

/// A cluster's priority levels, for one worker.
pub(crate) struct Levels {
    /// The levels present, lowest priority number first; each level's endpoints (cluster
    /// indices).
    members: Vec<Vec<usize>>,
    groups: Groups,
    /// `zone_weights`: per level, its zones by weight and health (Envoy weighs the
    /// localities of the chosen priority).
    weights: Option<Vec<ZoneWeights>>,
    /// In percent (100 to 1000).
    overprovisioning: u64,
    /// Each level's health of the pick being made, in parts of [`WHOLE`] (kept to allocate
    /// once).
    health: RefCell<Vec<u64>>,
}

/// Which level serves a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Choice {
    /// An index into the levels present.
    pub(crate) level: usize,
    /// Its endpoints take requests whether in rotation or not.
    pub(crate) panic: bool,
}

impl Levels {
    /// `None` unless the cluster's endpoints are of more than one level.
    pub(crate) fn of(c: &Cluster) -> Option<Levels> {
        let mut present: Vec<u8> = c.endpoints.iter().map(|e| e.priority).collect();
        present.sort_unstable();
        present.dedup();
        if present.len() < 2 {
            return None;
        }
        let of: Vec<usize> = c
            .endpoints
            .iter()
            .map(|e| present.binary_search(&e.priority).unwrap_or(0))
            .collect();
        let members: Vec<Vec<usize>> = (0..present.len())
            .map(|g| (0..of.len()).filter(|&i| of.get(i) == Some(&g)).collect())
            .collect();
        let weights = members
            .iter()
            .map(|m| ZoneWeights::of(c, |i| m.contains(&i)))
            .collect();
        Some(Levels {
            weights,
            members,
            groups: Groups::new(c, of, present.len()),
            overprovisioning: u64::from(c.overprovisioning_percent),
            health: RefCell::new(vec![0; present.len()]),
        })
    }

    /// Chooses the level of one request. `in_rotation(i)`: endpoint `i` takes requests;
    /// `draw(n)`: a random number in `0..n`, asked only when more than one level takes load;
    /// `threshold`: the cluster's `panic_threshold_percent`.
    pub(crate) fn choose(
        &self,
        in_rotation: &dyn Fn(usize) -> bool,
        draw: &dyn Fn(u64) -> u64,
        threshold: Option<u8>,
    ) -> Choice {
        let mut health = self.health.borrow_mut();
        // Each level's health until they add up to a whole: the levels after it take nothing.
        let mut total = 0;
        let mut seen = 0;
        for (level, members) in self.members.iter().enumerate() {
            let h = self.level_health(members, &in_rotation);
            if let Some(slot) = health.get_mut(level) {
                *slot = h;
            }
            total += h;
            seen = level + 1;
            if total >= WHOLE {
                break;
            }
        }
        if total == 0 {
            // Nothing in rotation anywhere: level 0, in panic mode unless panic is off.
            return Choice {
                level: 0,
                panic: threshold != Some(0),
            };
        }
        let first = health.first().copied().unwrap_or(0);
        let level = if first >= WHOLE {
            0
        } else {
            // Cumulative loads scaled by the normalized total health (`total`, at most a
            // whole): the level whose stretch holds the draw.
            let normalized = total.min(WHOLE);
            let at = draw(WHOLE) * normalized / WHOLE;
            let mut sum = 0;
            health
                .iter()
                .take(seen)
                .position(|&h| {
                    sum += h;
                    at < sum
                })
                .unwrap_or(seen.saturating_sub(1))
        };
        let panic = total < WHOLE
            && match threshold {
                Some(min) if min > 0 => self.members.get(level).is_some_and(|m| {
                    let up = m.iter().filter(|&&i| in_rotation(i)).count() as u64;
                    up * 100 < m.len() as u64 * u64::from(min)
                }),
                _ => false,
            };
        Choice { level, panic }
    }

    /// A level's health in parts of [`WHOLE`]: its share in rotation times the
    /// overprovisioning factor, at most a whole. Stops reading health marks once the level
    /// is known to be whole.
    fn level_health(&self, members: &[usize], in_rotation: &dyn Fn(usize) -> bool) -> u64 {
        let all = members.len() as u64;
        if all == 0 {
            return 0;
        }
        // up × overprovisioning ≥ all × 100 makes a whole level.
        let enough = (all * 100).div_ceil(self.overprovisioning);
        let mut up = 0;
        for &i in members {
            if in_rotation(i) {
                up += 1;
                if up >= enough {
                    return WHOLE;
                }
            }
        }
        (up * self.overprovisioning * WHOLE / (all * 100)).min(WHOLE)
    }

    /// How many levels the cluster has.
    pub(crate) fn count(&self) -> usize {
        self.members.len()
    }

    /// Picks an endpoint of `level` that `usable` allows, or `None`; `all` is the cluster's
    /// balancer. With `zone_weights`, from a zone of the level drawn by weight and health
    /// (`in_rotation`, `draw`).
    pub(crate) fn pick(
        &self,
        level: usize,
        all: &Balancer,
        hash: Option<u64>,
        usable: &dyn Fn(usize) -> bool,
        in_rotation: &dyn Fn(usize) -> bool,
        draw: &dyn Fn(u64) -> u64,
    ) -> Option<usize> {
        match self.weights.as_ref().and_then(|w| w.get(level)) {
            Some(zones) => zones.pick(all, hash, in_rotation, usable, draw),
            None => self.groups.pick(level, all, hash, usable),
        }
    }

    /// Whether endpoint `i` is of `level`.
    #[cfg(test)]
    fn holds(&self, level: usize, i: usize) -> bool {
        self.groups.holds(level, i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cluster with `levels[i]` endpoints at priority `i`, and its `Levels`.
    fn levels(levels: &[usize], over: u16) -> Levels {
        let mut endpoints = Vec::new();
        let mut port = 1000;
        for (priority, &n) in levels.iter().enumerate() {
            for _ in 0..n {
                port += 1;
                endpoints.push(format!(
                    "{{ address = \"127.0.0.1:{port}\", priority = {priority} }}"
                ));
            }
        }
        let text = format!(
            "[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n[[clusters]]\nname = \"app\"\n\
             overprovisioning_percent = {over}\nendpoints = [ {} ]\n",
            endpoints.join(", ")
        );
        let config = ringside_config::parse(&text).unwrap_or_else(|e| panic!("{e}"));
        Levels::of(&config.clusters[0]).unwrap()
    }

    /// The share of draws (out of [`WHOLE`], one per value) each level gets, with the
    /// endpoints `up` allows in rotation.
    fn loads(l: &Levels, up: impl Fn(usize) -> bool) -> Vec<u64> {
        let mut counts = vec![0; l.count()];
        for d in 0..WHOLE {
            counts[l.choose(&up, &|_| d, None).level] += 1;
        }
        counts
    }

    #[test]
    fn a_healthy_first_level_takes_everything_without_a_draw() {
        let l = levels(&[3, 2], 140);
        let c = l.choose(&|_| true, &|_| unreachable!("no draw"), None);
        assert_eq!(
            c,
            Choice {
                level: 0,
                panic: false
            }
        );
        // 3 endpoints at 140%: 3 × 100 / 140 rounds up to 3, so one down is already short
        // (2/3 × 1.4 = 93.3%); with 5, four in rotation (80% × 1.4) are a whole.
        let l5 = levels(&[5, 1], 140);
        let c = l5.choose(&|i| i != 0, &|_| unreachable!("no draw"), None);
        assert_eq!(c.level, 0);
    }

    #[test]
    fn a_short_level_leaves_the_rest_to_the_next() {
        // Level 0: 2 of 4 in rotation → 50% × 1.4 = 70%; level 1 takes 30%.
        let l = levels(&[4, 2], 140);
        assert_eq!(loads(&l, |i| i >= 2), [7000, 3000]);
        // Level 0 empty of rotation: all to level 1.
        assert_eq!(loads(&l, |i| i >= 4), [0, WHOLE]);
        // With a factor of 100, 3 of 4 → 75%.
        let l = levels(&[4, 2], 100);
        assert_eq!(loads(&l, |i| i != 0), [7500, 2500]);
    }

    #[test]
    fn loads_are_normalized_when_the_levels_do_not_add_up() {
        // Level 0: 1 of 4 → 35%; level 1: 1 of 4 → 35%; level 2: 0. Total 70%, each
        // scaled to half.
        let l = levels(&[4, 4, 2], 140);
        let up = |i: usize| i == 0 || i == 4;
        assert_eq!(loads(&l, up), [5000, 5000, 0]);
        // A third level picks up what the second cannot.
        let up = |i: usize| i == 0 || i == 4 || i == 8 || i == 9;
        assert_eq!(loads(&l, up), [3500, 3500, 3000]);
    }

    #[test]
    fn panic_comes_only_below_a_whole_and_below_the_threshold() {
        let l = levels(&[4, 4], 140);
        // Level 0: 1 of 4 (25%), level 1: 1 of 4: total 70%, below a whole.
        let up = |i: usize| i == 0 || i == 4;
        let c = l.choose(&up, &|_| 0, Some(50));
        assert_eq!(
            c,
            Choice {
                level: 0,
                panic: true
            }
        );
        assert!(
            !l.choose(&up, &|_| 0, Some(20)).panic,
            "25% is not below 20%"
        );
        assert!(!l.choose(&up, &|_| 0, None).panic, "no threshold");
        // Level 1 whole: total ≥ 100%, no panic even though level 0 is at 25%.
        let up = |i: usize| i == 0 || i >= 4;
        assert!(!l.choose(&up, &|_| 0, Some(50)).panic);
        // Nothing anywhere: level 0 in panic mode, unless panic is off.
        assert_eq!(
            l.choose(&|_| false, &|_| 0, None),
            Choice {
                level: 0,
                panic: true
            }
        );
        assert!(!l.choose(&|_| false, &|_| 0, Some(0)).panic);
    }

    #[test]
    fn level_numbers_need_not_be_consecutive() {
        let text = "[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n[[clusters]]\nname = \"a\"\n\
                    endpoints = [ { address = \"127.0.0.1:1\", priority = 7 }, { address = \"127.0.0.1:2\", priority = 2 } ]\n";
        let config = ringside_config::parse(text).unwrap();
        let l = Levels::of(&config.clusters[0]).unwrap();
        assert_eq!(l.count(), 2);
        // Priority 2 (endpoint 1) is the first level.
        assert!(l.holds(0, 1) && l.holds(1, 0));
        assert_eq!(l.choose(&|_| true, &|_| 0, None).level, 0);
        assert_eq!(loads(&l, |i| i == 0), [0, WHOLE]);
    }

    #[test]
    fn one_level_is_no_levels() {
        let text =
            "[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n[[clusters]]\nname = \"a\"\n\
                    endpoints = [ { address = \"127.0.0.1:1\", priority = 1 }, \"127.0.0.1:2\" ]\n";
        let mut config = ringside_config::parse(text).unwrap();
        assert!(Levels::of(&config.clusters[0]).is_some());
        config.clusters[0].endpoints.truncate(1);
        assert!(Levels::of(&config.clusters[0]).is_none());
    }

    #[test]
    fn the_chosen_level_weighs_its_own_zones() {
        // Level 0: z1 (weight 80) and z2 (20); level 1: z3. Istio's failover with
        // locality weights.
        let text = "[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n[[clusters]]\nname = \"a\"\n\
                    zone_weights = { z1 = 80, z2 = 20, z3 = 1 }\n\
                    endpoints = [ { address = \"127.0.0.1:1\", zone = \"z1\" }, { address = \"127.0.0.1:2\", zone = \"z2\" }, \
                    { address = \"127.0.0.1:3\", zone = \"z3\", priority = 1 } ]\n";
        let config = ringside_config::parse(text).unwrap();
        let c = &config.clusters[0];
        let l = Levels::of(c).unwrap();
        let all = Balancer::new(c);
        let mut counts = [0u64; 3];
        for d in 0..100u64 {
            // Weight × health in parts of a whole: 80 wholes of draws for z1, 20 for z2.
            let at = d * WHOLE;
            let i = l
                .pick(0, &all, None, &|_| true, &|_| true, &|_| at)
                .unwrap();
            counts[i] += 1;
        }
        assert_eq!(counts, [80, 20, 0]);
        assert_eq!(l.pick(1, &all, None, &|_| true, &|_| true, &|_| 0), Some(2));
    }
}
