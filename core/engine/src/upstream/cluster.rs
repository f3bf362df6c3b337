//! This worker's state for one cluster: its balancer, and its handles on the process-wide
//! state of the cluster: the health marks of its endpoints (`outlier.rs`: ejections,
//! health-check results), its circuit breaker (`breaker.rs`) and its retry budget
//! (`retry.rs`). Built when a worker's view of a snapshot is built (the only time the
//! registry is asked), and carried over to the next view when the cluster's fingerprint and
//! budget are unchanged (`pipeline/view.rs`).

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use ringside_config::{Cluster, OutlierDetection};

use super::balance::Balancer;
use super::breaker::Breaker;
use super::outlier::{self, Checked, ClusterMarks, EndpointMarks, Outcome};
use super::priority::Levels;
use super::retry::Budget;
use super::zones::{self, ZoneWeights, Zones};
use crate::cx::shared::Registry;

/// This worker's state for one cluster.
pub(crate) struct ClusterState {
    pub(crate) fingerprint: u64,
    pub(crate) balancer: Balancer,
    name: Box<str>,
    outlier: OutlierDetection,
    /// Health-check results decide rotation (the cluster has a `health_check`).
    checked: bool,
    /// Indexed like the cluster's endpoints.
    marks: Vec<Arc<EndpointMarks>>,
    /// Per endpoint, out of rotation by configuration (`endpoints[].down`); `None` when
    /// none is.
    down: Option<Box<[bool]>>,
    counters: Arc<ClusterMarks>,
    /// The cluster's retry budget, shared by every worker (`retry.rs`); only for a cluster
    /// that a route with a retry policy calls.
    pub(crate) retry_budget: Option<Arc<Budget>>,
    /// The cluster's `circuit_breaker`, the same one in every worker; `None`: no limits.
    pub(crate) breaker: Option<Arc<Breaker>>,
    /// A request found the cluster's host names unresolved (logged once per state).
    unresolved_logged: std::cell::Cell<bool>,
    /// `zone_aware`: the local zone (`zones.rs`).
    zones: Option<Zones>,
    /// Endpoints of more than one priority: the levels (`priority.rs`).
    levels: Option<Levels>,
    /// `zone_weights` (`zones.rs`).
    zone_weights: Option<ZoneWeights>,
    /// Each endpoint's zone name, when any endpoint has one (per-zone counters).
    zone_names: Option<Vec<Option<Rc<str>>>>,
}

impl ClusterState {
    /// `retried`: a route with a retry policy calls this cluster.
    pub(crate) fn new(c: &Cluster, registry: &Registry, retried: bool) -> ClusterState {
        ClusterState {
            retry_budget: retried
                .then(|| registry.get(&Budget::key(c), || Budget::new(c.retry_budget))),
            breaker: Breaker::of(c, registry),
            fingerprint: c.fingerprint,
            balancer: Balancer::new(c),
            name: c.name.as_str().into(),
            outlier: c.outlier,
            checked: c.health_check.is_some(),
            marks: c
                .endpoints
                .iter()
                .map(|e| registry.get(&outlier::endpoint_key(&c.name, e.address), Default::default))
                .collect(),
            counters: registry.get(&outlier::cluster_key(&c.name), Default::default),
            down: c
                .endpoints
                .iter()
                .any(|e| e.down)
                .then(|| c.endpoints.iter().map(|e| e.down).collect()),
            unresolved_logged: std::cell::Cell::new(false),
            zones: Zones::of(c),
            levels: Levels::of(c),
            // With priority levels, each level weighs its own zones (`priority.rs`).
            zone_weights: ZoneWeights::of(c, |_| true).filter(|_| !c.has_priorities()),
            zone_names: zones::names(c),
        }
    }

    /// Counts a request answered 503 because none of the cluster's host names has resolved
    /// yet (and it has no `IP:port` endpoint); logs it the first time.
    pub(crate) fn unresolved(&self, stats: &crate::cx::metrics::ClusterStats) {
        stats.unresolved();
        if !self.unresolved_logged.replace(true) {
            tracing::warn!(cluster = %self.name, "no endpoint name of the cluster has resolved yet: answering 503 (see ringside_dns_lookup_failures_total)");
        }
    }

    /// Picks an endpoint for one request among those `allowed` lets it use (not tried yet)
    /// and in rotation (any, in `panic` mode): from a priority level (`priority.rs`, which
    /// may put the level in panic mode by `threshold`, the cluster's
    /// `panic_threshold_percent`), from a zone drawn by its weight and health
    /// (`zone_weights`), from the proxy's zone or the others as a zone-aware cluster's
    /// healthy share decides (`zones.rs`), else by the balancer alone.
    pub(crate) fn pick(
        &self,
        hash: Option<u64>,
        allowed: impl Fn(usize) -> bool,
        panic: bool,
        threshold: Option<u8>,
        now: &dyn Fn() -> u64,
    ) -> Option<usize> {
        let usable = |i: usize| allowed(i) && (panic || self.in_rotation(i, now));
        if let Some(levels) = &self.levels {
            return self.pick_level(levels, hash, &allowed, &usable, panic, threshold, now);
        }
        if let Some(weights) = &self.zone_weights {
            let in_rotation = |i: usize| panic || self.in_rotation(i, now);
            let draw = |n: u64| self.balancer.below(n);
            return weights.pick(&self.balancer, hash, &in_rotation, &usable, &draw);
        }
        let Some(zones) = &self.zones else {
            return self.balancer.pick(hash, usable);
        };
        let share = zones.local_share(|i| self.in_rotation(i, now));
        let local =
            share >= zones::WHOLE || (share > 0 && self.balancer.below(zones::WHOLE) < share);
        zones
            .pick_side(local, &self.balancer, hash, &usable)
            .or_else(|| zones.pick_side(!local, &self.balancer, hash, &usable))
    }

    /// A pick from the level the cluster's health chooses, in that level's panic mode if it
    /// is in one; else, when the level has no endpoint left to use, from the other levels in
    /// order.
    #[allow(clippy::too_many_arguments)]
    fn pick_level(
        &self,
        levels: &Levels,
        hash: Option<u64>,
        allowed: &dyn Fn(usize) -> bool,
        usable: &dyn Fn(usize) -> bool,
        panic: bool,
        threshold: Option<u8>,
        now: &dyn Fn() -> u64,
    ) -> Option<usize> {
        let choice = if panic {
            // Every endpoint counts as in rotation: the first level.
            super::priority::Choice {
                level: 0,
                panic: false,
            }
        } else {
            levels.choose(
                &|i| self.in_rotation(i, now),
                &|n| self.balancer.below(n),
                threshold,
            )
        };
        let draw = |n: u64| self.balancer.below(n);
        let in_rotation = |i: usize| panic || self.in_rotation(i, now);
        if choice.panic {
            let any = |_: usize| true;
            if let Some(i) = levels.pick(choice.level, &self.balancer, hash, allowed, &any, &draw) {
                self.panicked();
                return Some(i);
            }
        }
        levels
            .pick(
                choice.level,
                &self.balancer,
                hash,
                usable,
                &in_rotation,
                &draw,
            )
            .or_else(|| {
                (0..levels.count())
                    .filter(|&l| l != choice.level)
                    .find_map(|l| levels.pick(l, &self.balancer, hash, usable, &in_rotation, &draw))
            })
    }

    /// Endpoint `i`'s zone, if it has one.
    pub(crate) fn zone(&self, i: usize) -> Option<&Rc<str>> {
        self.zone_names.as_ref()?.get(i)?.as_ref()
    }

    /// Whether this state can serve `c` in a new view (`retried` as for [`ClusterState::new`]).
    pub(crate) fn fits(&self, c: &Cluster, retried: bool) -> bool {
        self.fingerprint == c.fingerprint
            && self.retry_budget.as_ref().map(|b| b.settings()) == retried.then_some(c.retry_budget)
    }

    /// Whether endpoint `i` takes requests at `now()` (`outlier::now_ms`): not down by
    /// configuration, not ejected, and not failing its health checks.
    /// `now` is read only for an endpoint that has been ejected at some time: most requests
    /// read no clock here.
    pub(crate) fn in_rotation(&self, i: usize, now: &dyn Fn() -> u64) -> bool {
        if let Some(down) = &self.down {
            if down.get(i).copied().unwrap_or(true) {
                return false;
            }
        }
        self.marks.get(i).is_some_and(|m| {
            let failing = self.checked && m.checked() == Checked::Unhealthy;
            let ejected = m.ever_ejected() && m.is_ejected(now());
            !failing && !ejected
        })
    }

    /// Records what an exchange with endpoint `i` (at `address`) did, and ejects the endpoint
    /// when a run of failures reached its threshold and the cluster may lose one more.
    pub(crate) fn record(&self, i: usize, address: SocketAddr, outcome: Outcome) {
        let Some(m) = self.marks.get(i) else {
            return;
        };
        if !m.record(&self.outlier, outcome) {
            return;
        }
        let now = outlier::now_ms();
        let ejected = self.marks.iter().filter(|m| m.is_ejected(now)).count();
        let percent = self.outlier.max_ejection_percent;
        if !outlier::may_eject(ejected, self.marks.len(), percent) {
            tracing::debug!(cluster = %self.name, endpoint = %address, ejected, "not ejected: max_ejection_percent reached");
            return;
        }
        if let Some(length) = m.eject(&self.outlier, now) {
            self.counters.ejections.fetch_add(1, Relaxed);
            tracing::warn!(cluster = %self.name, endpoint = %address, ms = length.as_millis() as u64, "endpoint ejected");
        }
    }

    /// Whether the cluster's endpoints are of more than one priority level (their panic
    /// mode is a level's, `priority.rs`).
    pub(crate) fn has_levels(&self) -> bool {
        self.levels.is_some()
    }

    /// Counts a request sent in panic mode (no endpoint in rotation).
    pub(crate) fn panicked(&self) {
        self.counters.panic_requests.fetch_add(1, Relaxed);
    }
}
