//! This worker's state for one cluster: its balancer, the passive-health marks of its
//! endpoints, and the process's circuit breaker and retry budget of the cluster (shared by
//! every worker). Built when a worker's view of a snapshot is built, and carried over to the
//! next view when the cluster's fingerprint and budget are unchanged (`pipeline/view.rs`).

use std::cell::Cell;
use std::sync::Arc;
use std::time::Instant;

use ringside_config::Cluster;

use super::balance::Balancer;
use super::breaker::Breaker;
use super::retry::Budget;

/// This worker's state for one cluster.
pub(crate) struct ClusterState {
    pub(crate) fingerprint: u64,
    pub(crate) balancer: Balancer,
    /// Passive health: endpoint `i` is skipped until this instant after a failed connect.
    ejected_until: Vec<Cell<Option<Instant>>>,
    /// The cluster's retry budget, shared by every worker (`retry.rs`); only for a cluster
    /// that a route with a retry policy calls.
    pub(crate) retry_budget: Option<Arc<Budget>>,
    /// The cluster's `circuit_breaker`, the same one in every worker; `None`: no limits.
    pub(crate) breaker: Option<Arc<Breaker>>,
}

impl ClusterState {
    /// `retried`: a route with a retry policy calls this cluster.
    pub(crate) fn new(
        c: &Cluster,
        registry: &crate::cx::shared::Registry,
        retried: bool,
    ) -> ClusterState {
        ClusterState {
            retry_budget: retried
                .then(|| registry.get(&Budget::key(c), || Budget::new(c.retry_budget))),
            fingerprint: c.fingerprint,
            balancer: Balancer::new(c),
            ejected_until: c.endpoints.iter().map(|_| Cell::new(None)).collect(),
            breaker: Breaker::of(c, registry),
        }
    }

    /// Whether this state can serve `c` in a new view (`retried` as for [`ClusterState::new`]).
    pub(crate) fn fits(&self, c: &Cluster, retried: bool) -> bool {
        self.fingerprint == c.fingerprint
            && self.retry_budget.as_ref().map(|b| b.settings()) == retried.then_some(c.retry_budget)
    }

    pub(crate) fn is_ejected(&self, i: usize, now: Instant) -> bool {
        self.ejected_until
            .get(i)
            .and_then(Cell::get)
            .is_some_and(|t| t > now)
    }

    pub(crate) fn eject(&self, i: usize, until: Instant) {
        if let Some(c) = self.ejected_until.get(i) {
            c.set(Some(until));
        }
    }

    pub(crate) fn restore(&self, i: usize) {
        if let Some(c) = self.ejected_until.get(i) {
            c.set(None);
        }
    }
}
