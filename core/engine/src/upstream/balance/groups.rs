//! A cluster's endpoints split into groups that are picked from one at a time: a zone-aware
//! cluster's two sides (`zones.rs`), a cluster's priority levels (`priority.rs`).
//!
//! Round robin keeps a balancer per group, so that the picks of one group do not move
//! another's cursor and each group keeps its exact shares; the other policies pick with the
//! cluster's balancer restricted to the group (their picks keep no cursor, and
//! least_request's counts stay the cluster balancer's).
//!
//! Cost: built with the worker's view of a snapshot; a pick allocates nothing.

use ringside_config::{Cluster, Lb};

use super::Balancer;

/// The groups of one cluster's endpoints, for one worker.
pub(crate) struct Groups {
    /// Per endpoint (indexed like the cluster's endpoints): its group.
    of: Vec<usize>,
    /// Round robin only: per group, its balancer and the cluster index of each of the
    /// balancer's endpoints.
    own: Option<Vec<(Balancer, Vec<usize>)>>,
}

impl Groups {
    /// `of[i]`: endpoint `i`'s group, below `count`.
    pub(crate) fn new(c: &Cluster, of: Vec<usize>, count: usize) -> Groups {
        let own = (c.lb == Lb::RoundRobin).then(|| {
            (0..count)
                .map(|g| {
                    let members: Vec<usize> =
                        (0..of.len()).filter(|&i| of.get(i) == Some(&g)).collect();
                    let parts: Vec<_> = members
                        .iter()
                        .filter_map(|&i| c.endpoints.get(i))
                        .map(|e| (e.address, e.weight))
                        .collect();
                    (Balancer::with_parts(Lb::RoundRobin, &parts), members)
                })
                .collect()
        });
        Groups { of, own }
    }

    /// Whether endpoint `i` is in group `g`.
    pub(crate) fn holds(&self, g: usize, i: usize) -> bool {
        self.of.get(i) == Some(&g)
    }

    /// Picks an endpoint of group `g` that `usable` allows, or `None`; `all` is the
    /// cluster's balancer, used when the group has none of its own.
    pub(crate) fn pick(
        &self,
        g: usize,
        all: &Balancer,
        hash: Option<u64>,
        usable: &dyn Fn(usize) -> bool,
    ) -> Option<usize> {
        match &self.own {
            Some(own) => {
                let (balancer, members) = own.get(g)?;
                let pick = balancer.pick(hash, |j| members.get(j).is_some_and(|&i| usable(i)))?;
                members.get(pick).copied()
            }
            None => all.pick(hash, |i| self.holds(g, i) && usable(i)),
        }
    }
}
