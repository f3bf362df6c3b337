//! The rollout's durable record, `STATE/rollout.json`: the current rollout, or the last one
//! once it ended. It holds everything a restarted ctld needs to resume it: the spec (with the
//! configuration rolled out), each node's generation from before and the text to give it
//! back, the step, the state and every decision so far. Written atomically after every
//! change of the rollout, in the same ordered queue as the generations it commits.

use std::collections::BTreeMap;

use ringside_wire::{Judgement, RolloutDecision, RolloutSpec};
use serde::{Deserialize, Serialize};

/// Where a rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutState {
    /// The step's nodes are being given the configuration.
    Pushing,
    /// The step's window is open (or its counters are being read).
    Watching,
    /// Held by the operator, or because it could not judge; nothing moves until `resume`.
    Paused,
    Completed,
    RolledBack,
    Aborted,
}

impl RolloutState {
    pub const ALL: [RolloutState; 6] = [
        RolloutState::Pushing,
        RolloutState::Watching,
        RolloutState::Paused,
        RolloutState::Completed,
        RolloutState::RolledBack,
        RolloutState::Aborted,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RolloutState::Pushing => "pushing",
            RolloutState::Watching => "watching",
            RolloutState::Paused => "paused",
            RolloutState::Completed => "completed",
            RolloutState::RolledBack => "rolled_back",
            RolloutState::Aborted => "aborted",
        }
    }

    /// Completed, rolled back or aborted: it moves no more.
    pub fn ended(self) -> bool {
        matches!(
            self,
            RolloutState::Completed | RolloutState::RolledBack | RolloutState::Aborted
        )
    }
}

/// One node of a rollout, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutNodeRecord {
    pub node: String,
    /// Its generation when the rollout started.
    pub before: u64,
    /// The key in [`RolloutRecord::texts`] of that generation's text.
    pub before_text: String,
    /// Its generation with the rolled-out configuration, once committed.
    #[serde(default)]
    pub after: Option<u64>,
    /// Its generation once given back its configuration (rollback, abort).
    #[serde(default)]
    pub restored: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutRecord {
    pub id: u64,
    pub spec: RolloutSpec,
    pub state: RolloutState,
    #[serde(default)]
    pub reason: Option<String>,
    /// The current step, 1-based.
    pub step: u32,
    /// Seconds since the Unix epoch.
    pub started_at: u64,
    /// Sorted by node id: canaries are taken from the front.
    pub nodes: Vec<RolloutNodeRecord>,
    /// The nodes' texts from before the rollout, by FNV-1a 64 hash (nodes usually share one).
    pub texts: BTreeMap<String, String>,
    #[serde(default)]
    pub last_judgement: Option<Judgement>,
    pub decisions: Vec<RolloutDecision>,
}
