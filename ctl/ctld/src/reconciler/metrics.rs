//! What ctld counts, as one snapshot for its `/metrics` endpoint (`api/metrics.rs` renders
//! it): each node's connection and generations, push outcomes, and the rollout's state,
//! step, error rates and decisions.

use std::collections::BTreeMap;

use super::Reconciler;

/// Counters the reconciler keeps since the process started.
#[derive(Debug, Default)]
pub struct Counters {
    /// Push outcomes: `acked`, `refused`, `timed_out`, `failed`.
    pub pushes: BTreeMap<&'static str, u64>,
    /// Rollout decisions, by action.
    pub decisions: BTreeMap<&'static str, u64>,
}

/// One node's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFigures {
    pub node: String,
    pub connected: bool,
    pub desired: u64,
    pub acked: Option<u64>,
    /// The last push failed (refused, timed out) and nothing was acknowledged since.
    pub failing: bool,
}

/// The rollout's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutFigures {
    pub id: u64,
    pub state: &'static str,
    pub step: u32,
    /// Canary and baseline error rates (percent) of the last window judged.
    pub rates: Vec<(&'static str, f64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    pub nodes: Vec<NodeFigures>,
    pub pushes: Vec<(&'static str, u64)>,
    pub rollout: Option<RolloutFigures>,
    pub decisions: Vec<(&'static str, u64)>,
}

/// Every push outcome and decision is exported from the start, at 0 until it happens.
pub const PUSH_OUTCOMES: [&str; 4] = ["acked", "refused", "timed_out", "failed"];
pub const DECISIONS: [&str; 7] = [
    "start", "promote", "complete", "rollback", "pause", "resume", "abort",
];

impl Reconciler {
    pub(super) fn metrics(&self) -> Metrics {
        let nodes = self
            .nodes
            .iter()
            .map(|(id, n)| NodeFigures {
                node: id.clone(),
                connected: self.sessions.of_node(id).next().is_some(),
                desired: n.desired.current(),
                acked: n.live.acked.map(|a| a.generation),
                failing: n.last_error.is_some(),
            })
            .collect();
        let count = |m: &BTreeMap<_, u64>, k| m.get(k).copied().unwrap_or(0);
        let pushes = PUSH_OUTCOMES
            .iter()
            .map(|o| (*o, count(&self.counters.pushes, *o)))
            .collect();
        let decisions = DECISIONS
            .iter()
            .map(|d| (*d, count(&self.counters.decisions, *d)))
            .collect();
        let rollout = self.rollout.as_ref().map(|l| {
            let mut rates = Vec::new();
            if let Some(j) = &l.rec.last_judgement {
                rates.push(("canary", j.canary.rate_pct));
                if let Some(b) = &j.baseline {
                    rates.push(("baseline", b.rate_pct));
                }
            }
            RolloutFigures {
                id: l.rec.id,
                state: l.rec.state.name(),
                step: l.rec.step,
                rates,
            }
        });
        Metrics {
            nodes,
            pushes,
            rollout,
            decisions,
        }
    }
}
