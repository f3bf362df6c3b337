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
        usable: &impl Fn(usize) -> bool,
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
}
