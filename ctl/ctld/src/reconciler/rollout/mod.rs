//! The progressive rollout (docs/ctld-rollout.md): one configuration given to a share of the
//! selected nodes at a time. Each step's nodes are committed the new generation and pushed
//! like any change; once they all acknowledged it, a window opens: every node's counters are
//! read fresh at its start and its end, and the canary nodes' error rate is compared with
//! the others' over that same window (`judge.rs`). Then ctld promotes (the next step), rolls
//! the canaries back to their generation from before (as new generations), or pauses when
//! it cannot judge — it never promotes blind.
//!
//! While a rollout is under way it owns its nodes: the CLI's changes to them are refused and
//! their config-dir files are held until it ends. Every decision is logged, counted in the
//! status and written with the record (`persist/rollout.rs`), so a restarted ctld resumes
//! the step it was at with a fresh window.
//!
//! Here: the operator's calls, the steps' commits, restores and decisions; `window.rs` the
//! moves on each tick (acks, samples, windows); `judge.rs` the arithmetic.

mod judge;
#[cfg(test)]
mod tests;
mod window;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ringside_wire::{Judgement, RolloutDecision, RolloutNode, RolloutSpec, RolloutStatus};

use super::{Reconciler, RolloutCall};
use crate::clock::Now;
use crate::desired::Proposal;
use crate::error::CtldError;
use crate::persist::store::fnv64;
use crate::persist::{Op, RolloutNodeRecord, RolloutRecord, RolloutState};
use judge::Sample;

/// A restarted ctld gives the proxies this long to reconnect before it waits for acks.
const RECONNECT_GRACE: Duration = Duration::from_secs(10);

/// The rollout as the reconciler holds it: the durable record and where it is in a step.
pub(super) struct Live {
    pub(super) rec: RolloutRecord,
    phase: Phase,
}

#[derive(Debug)]
enum Phase {
    /// Waiting for the step's nodes to acknowledge the new generation.
    Acks { deadline: Instant },
    /// Fresh counters asked of every node at `asked`; `start` is the window's opening
    /// sample when this one closes it.
    Sampling {
        asked: Instant,
        deadline: Instant,
        start: Option<(Instant, Sample)>,
    },
    /// The window is open until `until`.
    Window {
        opened: Instant,
        start: Sample,
        until: Instant,
    },
    /// Paused or ended: nothing to do.
    Idle,
}

impl Reconciler {
    /// Whether `node` belongs to a rollout under way.
    pub(super) fn in_rollout(&self, node: &str) -> bool {
        self.rollout_side(node).is_some()
    }

    /// `"new"` or `"old"` for a node of a rollout under way.
    pub(super) fn rollout_side(&self, node: &str) -> Option<&'static str> {
        let live = self.rollout.as_ref().filter(|l| !l.rec.state.ended())?;
        let n = live.rec.nodes.iter().find(|n| n.node == node)?;
        Some(if n.after.is_some() { "new" } else { "old" })
    }

    pub(super) fn not_in_rollout(&self, node: &str) -> Result<(), CtldError> {
        match &self.rollout {
            Some(l) if self.in_rollout(node) => Err(CtldError::InRollout {
                node: node.to_owned(),
                id: l.rec.id,
            }),
            _ => Ok(()),
        }
    }

    pub(super) fn rollout_wake(&self) -> Option<Instant> {
        match self.rollout.as_ref()?.phase {
            Phase::Acks { deadline } | Phase::Sampling { deadline, .. } => Some(deadline),
            Phase::Window { until, .. } => Some(until),
            Phase::Idle => None,
        }
    }

    /// The record loaded at start: a rollout under way resumes its step with a fresh window.
    pub(super) fn rollout_loaded(&mut self, mut rec: RolloutRecord, now: Now) {
        self.catch_up(&mut rec);
        let moving = !rec.state.ended() && rec.state != RolloutState::Paused;
        let deadline = now.mono + self.ack_wait() + RECONNECT_GRACE;
        self.rollout = Some(Live {
            rec,
            phase: Phase::Idle,
        });
        if moving {
            if let Some(l) = self.rollout.as_mut() {
                l.rec.state = RolloutState::Pushing;
                l.phase = Phase::Acks { deadline };
            }
            let step = self.rollout.as_ref().map_or(0, |l| l.rec.step);
            let why = format!("ringside-ctld restarted: step {step} starts a fresh window");
            self.decide("resume", why, now);
        }
    }

    /// The record is written after the generations it names: a crash between the two leaves
    /// nodes whose current generation the rollout made but the record does not say. Their
    /// history does (its source), so the record catches up.
    fn catch_up(&self, rec: &mut RolloutRecord) {
        let (step, back) = (
            format!("rollout {} step ", rec.id),
            format!("rollout {} ", rec.id),
        );
        for n in &mut rec.nodes {
            let Some(d) = self.nodes.get(&n.node).map(|x| &x.desired) else {
                continue;
            };
            let current = d.current();
            let made = |prefix: &str| {
                d.record
                    .history
                    .iter()
                    .any(|g| g.generation == current && g.source.starts_with(prefix))
            };
            if n.after.is_none() && current > n.before && made(&step) {
                tracing::info!(node = %n.node, generation = current, "rollout record catches up");
                n.after = Some(current);
            } else if n.after.is_some_and(|a| current > a) && n.restored.is_none() && made(&back) {
                tracing::info!(node = %n.node, generation = current, "rollout record catches up");
                n.restored = Some(current);
            }
        }
    }

    pub(super) fn rollout_call(
        &mut self,
        call: RolloutCall,
        now: Now,
    ) -> Result<Option<RolloutStatus>, CtldError> {
        match call {
            RolloutCall::Start(spec) => self.rollout_start(spec, now)?,
            RolloutCall::Status => {}
            RolloutCall::Pause => {
                self.active()?;
                if let Some(l) = self
                    .rollout
                    .as_mut()
                    .filter(|l| l.rec.state != RolloutState::Paused)
                {
                    l.rec.state = RolloutState::Paused;
                    l.rec.reason = Some("paused by the operator".into());
                    l.phase = Phase::Idle;
                    self.decide("pause", "paused by the operator".into(), now);
                }
            }
            RolloutCall::Resume => {
                self.active()?;
                let deadline = now.mono + self.ack_wait();
                if let Some(l) = self
                    .rollout
                    .as_mut()
                    .filter(|l| l.rec.state == RolloutState::Paused)
                {
                    l.rec.state = RolloutState::Pushing;
                    l.rec.reason = None;
                    l.phase = Phase::Acks { deadline };
                    let why = format!(
                        "step {} resumed by the operator, with a fresh window",
                        l.rec.step
                    );
                    self.decide("resume", why, now);
                }
            }
            RolloutCall::Abort => {
                self.active()?;
                self.restore("aborted by the operator", now);
                self.finish(
                    RolloutState::Aborted,
                    "abort",
                    "aborted by the operator".into(),
                    now,
                );
            }
        }
        Ok(self.rollout_status(now))
    }

    fn active(&self) -> Result<(), CtldError> {
        match &self.rollout {
            Some(l) if !l.rec.state.ended() => Ok(()),
            Some(l) => Err(CtldError::Rollout(format!(
                "no rollout under way (rollout {} {})",
                l.rec.id,
                l.rec.state.name()
            ))),
            None => Err(CtldError::Rollout("no rollout under way".into())),
        }
    }

    fn rollout_start(&mut self, spec: RolloutSpec, now: Now) -> Result<(), CtldError> {
        if let Some(l) = self.rollout.as_ref().filter(|l| !l.rec.state.ended()) {
            return Err(CtldError::Rollout(format!(
                "rollout {} is under way ({}): abort it first",
                l.rec.id,
                l.rec.state.name()
            )));
        }
        judge::check_spec(&spec).map_err(CtldError::Rollout)?;
        self.writes_ok()?;
        let pick = super::Pick {
            node: None,
            selector: Some(spec.selector.clone()),
        };
        let ids = self.targets(&pick)?;
        let mut rec = RolloutRecord {
            id: self.rollout.as_ref().map_or(1, |l| l.rec.id + 1),
            spec,
            state: RolloutState::Pushing,
            reason: None,
            step: 1,
            started_at: now.unix,
            nodes: Vec::new(),
            texts: Default::default(),
            last_judgement: None,
            decisions: Vec::new(),
        };
        for id in ids {
            let d = self.nodes.get(&id).map(|n| &n.desired);
            let text = d
                .and_then(|d| d.text.clone())
                .ok_or_else(|| CtldError::NoConfiguration(id.clone()))?;
            let key = fnv64(&text);
            rec.texts
                .entry(key.clone())
                .or_insert_with(|| text.to_string());
            rec.nodes.push(RolloutNodeRecord {
                node: id,
                before: d.map_or(0, |d| d.current()),
                before_text: key,
                after: None,
                restored: None,
            });
        }
        let steps: Vec<String> = rec.spec.steps.iter().map(|s| format!("{s}%")).collect();
        let why = format!("{} nodes in steps of {}", rec.nodes.len(), steps.join(", "));
        self.rollout = Some(Live {
            rec,
            phase: Phase::Idle,
        });
        self.decide("start", why, now);
        self.enter_step(1, now);
        Ok(())
    }

    /// Commits the new configuration to the nodes step `step` covers, then waits for acks.
    fn enter_step(&mut self, step: u32, now: Now) {
        let deadline = now.mono + self.ack_wait();
        let Some(l) = self.rollout.as_mut() else {
            return;
        };
        l.rec.step = step;
        l.rec.state = RolloutState::Pushing;
        l.phase = Phase::Acks { deadline };
        let n = judge::covered(&l.rec.spec.steps, step, l.rec.nodes.len());
        let text: Arc<str> = Arc::from(l.rec.spec.config.as_str());
        let source = format!("rollout {} step {step}", l.rec.id);
        let todo: Vec<String> = l
            .rec
            .nodes
            .iter()
            .take(n)
            .filter(|n| n.after.is_none())
            .map(|n| n.node.clone())
            .collect();
        for id in todo {
            let g = self.commit_base(&id, text.clone(), &source, now);
            if let Some(n) = self.rollout_node(&id) {
                n.after = g;
            }
        }
        self.save_rollout();
    }

    /// Commits `text` as the node's base (as `apply` does); its generation.
    fn commit_base(&mut self, id: &str, text: Arc<str>, source: &str, now: Now) -> Option<u64> {
        let p = Proposal::Base {
            text,
            source: source.to_owned(),
            file: None,
            validated: true,
        };
        let plan = self.nodes.get(id)?.desired.plan(p, source);
        match plan {
            Ok(plan) => Some(self.commit(id, plan, now).generation),
            Err(e) => {
                tracing::error!(node = id, error = %e, "rollout: cannot commit");
                None
            }
        }
    }

    fn rollout_node(&mut self, id: &str) -> Option<&mut RolloutNodeRecord> {
        let l = self.rollout.as_mut()?;
        l.rec.nodes.iter_mut().find(|n| n.node == id)
    }

    /// Gives every node that got the new generation its text from before, as a new
    /// generation.
    fn restore(&mut self, why: &str, now: Now) {
        let Some(l) = self.rollout.as_ref() else {
            return;
        };
        let id = l.rec.id;
        let todo: Vec<(String, u64, Option<String>)> = l
            .rec
            .nodes
            .iter()
            .filter(|n| n.after.is_some() && n.restored.is_none())
            .map(|n| {
                (
                    n.node.clone(),
                    n.before,
                    l.rec.texts.get(&n.before_text).cloned(),
                )
            })
            .collect();
        for (node, before, text) in todo {
            let Some(text) = text else {
                tracing::error!(
                    node,
                    rollout = id,
                    "rollout: the text from before is missing"
                );
                continue;
            };
            let source = format!("rollout {id} {why}: back to {before}");
            let g = self.commit_base(&node, Arc::from(text), &source, now);
            if let Some(n) = self.rollout_node(&node) {
                n.restored = g;
            }
        }
    }

    /// Ends the rollout; the config files held meanwhile apply now.
    fn finish(&mut self, state: RolloutState, action: &'static str, why: String, now: Now) {
        let Some(l) = self.rollout.as_mut() else {
            return;
        };
        l.rec.state = state;
        l.rec.reason = (state != RolloutState::Completed).then(|| why.clone());
        l.phase = Phase::Idle;
        let nodes: Vec<String> = l.rec.nodes.iter().map(|n| n.node.clone()).collect();
        self.decide(action, why, now);
        for id in nodes {
            self.apply_file(&id, now);
        }
    }

    fn pause(&mut self, why: String, judgement: Option<Judgement>, now: Now) {
        if let Some(l) = self.rollout.as_mut() {
            l.rec.state = RolloutState::Paused;
            l.rec.reason = Some(why.clone());
            l.phase = Phase::Idle;
            if judgement.is_some() {
                l.rec.last_judgement = judgement;
            }
        }
        self.decide("pause", why, now);
    }

    /// Logs, records and persists one decision.
    fn decide(&mut self, action: &'static str, reason: String, now: Now) {
        let Some(l) = self.rollout.as_mut() else {
            return;
        };
        tracing::info!(rollout = l.rec.id, step = l.rec.step, action, %reason, "rollout decision");
        *self.counters.decisions.entry(action).or_insert(0) += 1;
        l.rec.decisions.push(RolloutDecision {
            at: now.unix,
            action: action.to_owned(),
            reason,
        });
        self.save_rollout();
    }

    fn save_rollout(&mut self) {
        if let Some(l) = &self.rollout {
            let op = Op::Rollout(Arc::new(l.rec.clone()));
            self.write(vec![op]);
        }
    }

    /// How long the step's nodes may take to acknowledge (pushes are retried meanwhile).
    fn ack_wait(&self) -> Duration {
        self.settings.timing.ack_timeout * 3
    }

    /// The rollout for `rollout_status`.
    pub(super) fn rollout_status(&self, now: Now) -> Option<RolloutStatus> {
        let l = self.rollout.as_ref()?;
        let r = &l.rec;
        let window_left_ms = match &l.phase {
            Phase::Window { until, .. } => {
                let left = until.saturating_duration_since(now.mono);
                Some(u64::try_from(left.as_millis()).unwrap_or(u64::MAX))
            }
            _ => None,
        };
        Some(RolloutStatus {
            id: r.id,
            state: r.state.name().into(),
            reason: r.reason.clone(),
            step: r.step,
            steps: r.spec.steps.clone(),
            selector: r.spec.selector.clone(),
            interval_ms: r.spec.interval_ms,
            max_error_increase: r.spec.max_error_increase,
            min_requests: r.spec.min_requests,
            started_at: r.started_at,
            window_left_ms,
            nodes: r
                .nodes
                .iter()
                .map(|n| RolloutNode {
                    node: n.node.clone(),
                    before: n.before,
                    after: n.after,
                    restored: n.restored,
                    acked: self.acked(&n.node),
                })
                .collect(),
            last_judgement: r.last_judgement.clone(),
            decisions: r.decisions.clone(),
        })
    }
}
