//! A progressive rollout's shapes on the wire (ctld ⇄ CLI), and the traffic counters a proxy
//! reports in its status, by which ctld judges a rollout. Semantics: `docs/ctld-rollout.md`.

use serde::{Deserialize, Serialize};

use crate::message::Labels;

/// A proxy's request counters since it started, all listeners and workers together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Traffic {
    /// Requests answered to clients, whatever the status.
    pub requests: u64,
    /// Of those, answers with a 5xx status: the proxy's own (502, 503, 504: no endpoint, an
    /// upstream failure, a timeout, a direct response) and upstream 5xx responses passed
    /// on. Each request counts once, whatever its retries.
    pub responses_5xx: u64,
    /// Exchanges with upstream endpoints (tries, retries included) that got a response or
    /// failed on the connection.
    pub upstream_requests: u64,
    /// Of those, responses with a 5xx status.
    pub upstream_5xx: u64,
}

/// `rollout_start`: what to roll out, to which nodes, and how to judge it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutSpec {
    /// The whole configuration every selected node gets, step by step.
    pub config: String,
    /// The nodes (every known node whose labels match; all known nodes when empty).
    #[serde(default)]
    pub selector: Labels,
    /// Cumulative shares of the selected nodes, in percent, increasing, the last 100
    /// (e.g. `[10, 50, 100]`). Each step has at least one node more than the one before.
    pub steps: Vec<u32>,
    /// How long each step is watched before it is judged, in milliseconds.
    pub interval_ms: u64,
    /// Roll back when the canary nodes' error rate exceeds the baseline's by more than
    /// this, in percentage points.
    pub max_error_increase: f64,
    /// Requests each group (canary, baseline) must have served in the window to be judged;
    /// fewer and the rollout pauses.
    pub min_requests: u64,
}

/// One group's traffic over a judged window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupRate {
    pub nodes: u32,
    pub requests: u64,
    /// 5xx answers (the proxy's own and upstream ones passed on).
    pub errors: u64,
    /// `errors / requests`, in percent (0 when there were no requests).
    pub rate_pct: f64,
}

/// The numbers one decision was made on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Judgement {
    /// The step judged (1-based).
    pub step: u32,
    /// The window's length in milliseconds.
    pub window_ms: u64,
    /// The nodes on the new generation.
    pub canary: GroupRate,
    /// The nodes still on the old one (absent at the last step: there are none).
    #[serde(default)]
    pub baseline: Option<GroupRate>,
}

/// One logged decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutDecision {
    /// Seconds since the Unix epoch.
    pub at: u64,
    /// `start`, `promote`, `complete`, `rollback`, `pause`, `resume`, `abort`.
    pub action: String,
    /// One line: why.
    pub reason: String,
}

/// One node of a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutNode {
    pub node: String,
    /// Its generation when the rollout started (0: it had none).
    pub before: u64,
    /// Its generation with the rolled-out configuration, once it got it.
    #[serde(default)]
    pub after: Option<u64>,
    /// Its generation after the rollback or abort gave it back its configuration.
    #[serde(default)]
    pub restored: Option<u64>,
    /// The generation it last acknowledged.
    #[serde(default)]
    pub acked: Option<u64>,
}

/// `rollout_status`: a rollout as ctld holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutStatus {
    /// Numbers rollouts, from 1.
    pub id: u64,
    /// `pushing` (the step's nodes are being given the configuration), `watching` (the
    /// window is open), `paused`, and the ends: `completed`, `rolled_back`, `aborted`.
    pub state: String,
    /// Why it is paused, rolled back or aborted.
    #[serde(default)]
    pub reason: Option<String>,
    /// The current step (1-based).
    pub step: u32,
    pub steps: Vec<u32>,
    pub selector: Labels,
    pub interval_ms: u64,
    pub max_error_increase: f64,
    pub min_requests: u64,
    /// Seconds since the Unix epoch.
    pub started_at: u64,
    /// Milliseconds left in the window being watched.
    #[serde(default)]
    pub window_left_ms: Option<u64>,
    pub nodes: Vec<RolloutNode>,
    /// The last window judged (or the one that paused or rolled back the rollout).
    #[serde(default)]
    pub last_judgement: Option<Judgement>,
    /// Every decision, oldest first.
    pub decisions: Vec<RolloutDecision>,
}
