//! Zone-aware balancing (`clusters[].zone_aware`): which side of the proxy's zone a request's
//! endpoint comes from, and the names the per-zone request counters use.
//!
//! Where it sits: inside a worker's `ClusterState` (`cluster.rs`); its pick runs in the
//! Balance loop (`try_endpoints`) before the cluster's balancer is asked.
//!
//! How: the local zone's healthy share is the weight of its endpoints in rotation over the
//! weight of all of them. At or above `zone_min_healthy_percent`, every request stays local.
//! Below, the local zone takes `share ÷ min` of the requests (a zone with half its weight
//! healthy and a minimum of 70 keeps 71%), and the rest go to the other zones, where the
//! balancer spreads them by weight: the spill is in proportion to the other zones' weights.
//! Round robin keeps one cursor per side, so that neither side's picks move the other's
//! cursor and each keeps its exact shares (`balance/groups.rs`); the other policies pick with
//! the cluster's balancer restricted to the side.
//! This is Envoy's locality arithmetic with its overprovisioning factor of 1.4 (= 1 ÷ 0.7)
//! made a setting. A side with no endpoint the request may use gives way to the other
//! (a local try that failed to connect is retried anywhere). Panic mode, when no endpoint at
//! all is in rotation, ignores zones.
//!
//! Cost: a cluster without `zone_aware` has no `Zones` and pays nothing. One with it reads
//! the health marks of its local endpoints on each pick (a few atomic loads) and draws one
//! random number when the local zone is short of healthy endpoints.
//!
//! Config read: `Cluster::zones`, `Cluster::zone_aware`, `Endpoint::zone`. Metrics: requests
//! by endpoint zone (`ringside_upstream_zone_requests_total`), counted by `Active::start` for
//! every endpoint with a zone, zone-aware cluster or not. Errors: none.

use std::cell::RefCell;
use std::rc::Rc;

use ringside_config::Cluster;

use super::balance::{Balancer, Groups};

/// Shares are counted in parts per ten thousand.
pub(crate) const WHOLE: u64 = 10_000;

/// The group of the local zone's endpoints; the others are group 1.
const LOCAL: usize = 0;

/// A zone-aware cluster's local zone, for one worker.
pub(crate) struct Zones {
    /// Per endpoint: its weight when it is in the proxy's zone, else `None`.
    local: Vec<Option<u32>>,
    /// The weight of all local endpoints.
    local_weight: u64,
    min_healthy_percent: u64,
    /// The two sides: [`LOCAL`] and the others.
    sides: Groups,
}

impl Zones {
    /// `None` unless the cluster is zone-aware.
    pub(crate) fn of(c: &Cluster) -> Option<Zones> {
        let aware = c.zone_aware?;
        let local: Vec<Option<u32>> = c
            .endpoints
            .iter()
            .map(|e| (aware.local.is_some() && e.zone == aware.local).then_some(e.weight.max(1)))
            .collect();
        let side = local.iter().map(|w| if w.is_some() { LOCAL } else { 1 });
        Some(Zones {
            local_weight: local.iter().flatten().map(|&w| u64::from(w)).sum(),
            sides: Groups::new(c, side.collect(), 2),
            local,
            min_healthy_percent: u64::from(aware.min_healthy_percent),
        })
    }

    /// Picks an endpoint of one side (`local`, or the other zones) that `usable` allows, or
    /// `None`; `all` is the cluster's balancer.
    pub(crate) fn pick_side(
        &self,
        local: bool,
        all: &Balancer,
        hash: Option<u64>,
        usable: &dyn Fn(usize) -> bool,
    ) -> Option<usize> {
        let side = if local { LOCAL } else { 1 };
        self.sides.pick(side, all, hash, usable)
    }

    /// Whether endpoint `i` is in the proxy's zone.
    #[cfg(test)]
    fn is_local(&self, i: usize) -> bool {
        matches!(self.local.get(i), Some(Some(_)))
    }

    /// The share of requests (in parts of [`WHOLE`]) that stay in the local zone, given
    /// which endpoints are in rotation.
    pub(crate) fn local_share(&self, in_rotation: impl Fn(usize) -> bool) -> u64 {
        if self.local_weight == 0 {
            return 0;
        }
        let healthy: u64 = self
            .local
            .iter()
            .enumerate()
            .filter_map(|(i, w)| w.filter(|_| in_rotation(i)))
            .map(u64::from)
            .sum();
        if healthy == 0 {
            return 0;
        }
        if self.min_healthy_percent == 0 {
            return WHOLE;
        }
        // healthy / local_weight ÷ (min / 100), in parts of WHOLE.
        let share = healthy * WHOLE * 100 / (self.local_weight * self.min_healthy_percent);
        share.min(WHOLE)
    }
}

/// A cluster's `zone_weights`, for one worker: each zone taken by its weight times its
/// health (Envoy's locality-weighted balancing: the zone's share of endpoints in rotation ×
/// the overprovisioning factor, at most a whole), then an endpoint within it by the
/// cluster's `lb`. Endpoints of a zone without a weight take nothing.
pub(crate) struct ZoneWeights {
    /// Group per zone (its `ZoneId`); endpoints without a weighted zone in the last group.
    groups: Groups,
    /// Per zone, its weight (0: none) and its endpoints.
    zones: Vec<(u64, Vec<usize>)>,
    /// In percent.
    overprovisioning: u64,
    /// Each zone's weight times its health for the pick being made (allocated once).
    effective: RefCell<Vec<u64>>,
}

impl ZoneWeights {
    /// `None` unless the cluster has `zone_weights`. `member(i)`: endpoint `i` is among
    /// those weighed (a priority level's; the others are never picked).
    pub(crate) fn of(c: &Cluster, member: impl Fn(usize) -> bool) -> Option<ZoneWeights> {
        let weights = c.zone_weights.as_ref()?;
        let none = weights.len();
        let group = |(i, e): (usize, &ringside_config::Endpoint)| {
            e.zone
                .map(|z| usize::from(z.0))
                .filter(|&z| member(i) && weights.get(z).is_some_and(|&w| w > 0))
                .unwrap_or(none)
        };
        let of: Vec<usize> = c.endpoints.iter().enumerate().map(group).collect();
        let zones = weights
            .iter()
            .enumerate()
            .map(|(z, &w)| {
                let members = (0..of.len()).filter(|&i| of.get(i) == Some(&z)).collect();
                (u64::from(w), members)
            })
            .collect();
        Some(ZoneWeights {
            groups: Groups::new(c, of, none + 1),
            zones,
            overprovisioning: u64::from(c.overprovisioning_percent),
            effective: RefCell::new(vec![0; none]),
        })
    }

    /// Picks an endpoint that `usable` allows, from a zone drawn by weight and health
    /// (`draw(n)`: a number in `0..n`); a zone with nothing to use gives way to the others,
    /// heaviest first. `None` when no weighted zone has an endpoint in rotation.
    pub(crate) fn pick(
        &self,
        all: &Balancer,
        hash: Option<u64>,
        in_rotation: &dyn Fn(usize) -> bool,
        usable: &dyn Fn(usize) -> bool,
        draw: &dyn Fn(u64) -> u64,
    ) -> Option<usize> {
        let mut effective = self.effective.borrow_mut();
        let mut total = 0;
        for ((w, members), slot) in self.zones.iter().zip(effective.iter_mut()) {
            let all_of = members.len() as u64;
            let up = members.iter().filter(|&&i| in_rotation(i)).count() as u64;
            let health = if all_of == 0 {
                0
            } else {
                (up * self.overprovisioning * WHOLE / (all_of * 100)).min(WHOLE)
            };
            *slot = w * health;
            total += *slot;
        }
        if total == 0 {
            return None;
        }
        let mut at = draw(total);
        let chosen = effective.iter().position(|&e| {
            if at < e {
                return true;
            }
            at -= e;
            false
        })?;
        if let Some(i) = self.groups.pick(chosen, all, hash, usable) {
            return Some(i);
        }
        let mut others: Vec<usize> = (0..effective.len()).filter(|&z| z != chosen).collect();
        others.sort_by_key(|&z| std::cmp::Reverse(effective.get(z).copied().unwrap_or(0)));
        others
            .into_iter()
            .filter(|&z| self.zones.get(z).is_some_and(|(w, _)| *w > 0))
            .find_map(|z| self.groups.pick(z, all, hash, usable))
    }
}

/// Each endpoint's zone name, for the per-zone request counters; `None` when no endpoint of
/// the cluster names a zone.
pub(crate) fn names(c: &Cluster) -> Option<Vec<Option<Rc<str>>>> {
    if c.zones.is_empty() {
        return None;
    }
    let zones: Vec<Rc<str>> = c.zones.iter().map(|z| Rc::from(z.as_str())).collect();
    Some(
        c.endpoints
            .iter()
            .map(|e| e.zone.and_then(|z| zones.get(usize::from(z.0)).cloned()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(min: u8, zones: &[&str]) -> Cluster {
        let endpoints: Vec<String> = zones
            .iter()
            .enumerate()
            .map(|(i, z)| format!("{{ address = \"127.0.0.1:{}\", zone = \"{z}\" }}", 1000 + i))
            .collect();
        let text = format!(
            "[proxy]\nzone = \"z1\"\n[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n\
             [[clusters]]\nname = \"app\"\nzone_aware = true\n\
             zone_min_healthy_percent = {min}\nendpoints = [ {} ]\n",
            endpoints.join(", ")
        );
        let mut config = ringside_config::parse(&text).unwrap_or_else(|e| panic!("{e}"));
        config.clusters.remove(0)
    }

    #[test]
    fn the_local_zone_keeps_everything_while_healthy_enough() {
        let z = Zones::of(&cluster(70, &["z1", "z1", "z1", "z2", "z3"])).unwrap();
        assert!(z.is_local(0) && z.is_local(2) && !z.is_local(3) && !z.is_local(9));
        assert_eq!(z.local_share(|_| true), WHOLE);
        // Two of three local endpoints healthy: 66.7% ÷ 70% = 95.2%.
        assert_eq!(z.local_share(|i| i != 0), 9523);
        // One of three: 33.3% ÷ 70% = 47.6%.
        assert_eq!(z.local_share(|i| i >= 2), 4761);
        assert_eq!(z.local_share(|i| i > 2), 0);
    }

    #[test]
    fn a_minimum_of_zero_stays_local_while_any_local_endpoint_is_healthy() {
        let z = Zones::of(&cluster(0, &["z1", "z1", "z2"])).unwrap();
        assert_eq!(z.local_share(|i| i == 1), WHOLE);
        assert_eq!(z.local_share(|i| i == 2), 0);
    }

    #[test]
    fn no_local_endpoint_sends_everything_elsewhere() {
        let z = Zones::of(&cluster(70, &["z2", "z3"])).unwrap();
        assert_eq!(z.local_share(|_| true), 0);
        assert!(!z.is_local(0));
    }

    #[test]
    fn names_follow_the_endpoints() {
        let names = names(&cluster(70, &["z2", "z1", "z2"])).unwrap();
        let names: Vec<&str> = names.iter().map(|n| n.as_deref().unwrap()).collect();
        assert_eq!(names, ["z2", "z1", "z2"]);
    }

    fn weighted(over: u16, zones: &[&str], weights: &str) -> (Cluster, ZoneWeights) {
        let endpoints: Vec<String> = zones
            .iter()
            .enumerate()
            .map(|(i, z)| format!("{{ address = \"127.0.0.1:{}\", zone = \"{z}\" }}", 1000 + i))
            .collect();
        let text = format!(
            "[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n[[clusters]]\nname = \"app\"\n\
             overprovisioning_percent = {over}\nzone_weights = {weights}\nendpoints = [ {} ]\n",
            endpoints.join(", ")
        );
        let mut config = ringside_config::parse(&text).unwrap_or_else(|e| panic!("{e}"));
        let c = config.clusters.remove(0);
        let w = ZoneWeights::of(&c, |_| true).unwrap();
        (c, w)
    }

    /// Which endpoint each draw in `0..total` picks (`usable`: all), counted by endpoint.
    fn shares(c: &Cluster, w: &ZoneWeights, up: impl Fn(usize) -> bool + Copy) -> Vec<u64> {
        let all = Balancer::new(c);
        let mut counts = vec![0; c.endpoints.len()];
        // The total is the sum of weight × health; draw each value once.
        let total: u64 = {
            w.pick(&all, None, &up, &|_| true, &|n| n - 1);
            w.effective.borrow().iter().sum()
        };
        for d in 0..total {
            if let Some(i) = w.pick(&all, None, &up, &|_| true, &|_| d) {
                counts[i] += 1;
            }
        }
        counts
    }

    #[test]
    fn zones_take_requests_by_weight_times_health() {
        // z1: two endpoints, weight 80; z2: one, weight 20; z3: unlisted, never.
        let (c, w) = weighted(140, &["z1", "z1", "z2", "z3"], "{ z1 = 80, z2 = 20 }");
        let by_zone = |s: Vec<u64>| {
            let total: u64 = s.iter().sum();
            [(s[0] + s[1]) * 100 / total, s[2] * 100 / total, s[3]]
        };
        assert_eq!(by_zone(shares(&c, &w, |_| true)), [80, 20, 0]);
        // One of z1's two down: 50% × 1.4 = 70% health, 80 × 0.7 = 56 against 20.
        assert_eq!(by_zone(shares(&c, &w, |i| i != 0)), [73, 26, 0]);
        // z2 down: everything to z1.
        assert_eq!(by_zone(shares(&c, &w, |i| i != 2)), [100, 0, 0]);
        // Nothing in rotation in a weighted zone: nothing to pick.
        let all = Balancer::new(&c);
        assert_eq!(w.pick(&all, None, &|i| i == 3, &|_| true, &|_| 0), None);
    }

    #[test]
    fn a_zone_with_nothing_left_to_use_gives_way_to_the_others() {
        let (c, w) = weighted(140, &["z1", "z2", "z3"], "{ z1 = 80, z2 = 20 }");
        let all = Balancer::new(&c);
        // z1 drawn (0 < 80 × whole), but its endpoint was tried: z2's; never z3's.
        assert_eq!(w.pick(&all, None, &|_| true, &|i| i != 0, &|_| 0), Some(1));
        assert_eq!(w.pick(&all, None, &|_| true, &|i| i == 2, &|_| 0), None);
    }
}
