//! The CLI's changes: resolve the target nodes, plan every one (all or nothing: one invalid
//! node and nothing is committed), commit, and — for the caller that waits — follow each
//! node's outcome until it is known or the deadline passes. A node's outcome is committed,
//! acked, not connected, refused, timed out or failed; the reply lists one per node.

use std::sync::Arc;

use crossbeam_channel::Sender;
use ringside_wire::{Labels, PushOutcome, Reply};

use super::waiters::{Entry, State, Waiter, DEADLINE_GRACE};
use super::{ApiCall, Reconciler};
use crate::clock::Now;
use crate::desired::{NodeDesired, Proposal};
use crate::error::CtldError;
use crate::sources::cli;

/// A change the operator asked for.
#[derive(Debug, Clone)]
pub enum Change {
    /// A whole configuration, validated once by the caller.
    Apply(Arc<str>),
    /// An `endpoints` or `weights` edit, made on each target's current configuration.
    Edit(EditSpec),
    /// Per node, a proposal the caller prepared (`rollback`), with its history source.
    PerNode(Vec<(String, Proposal, String)>),
    ClearOverrides(Option<String>),
}

pub use crate::sources::cli::EditSpec;

/// The nodes a request is for: the one named (created if new), else every known node whose
/// labels match the selector, else every known node.
#[derive(Debug, Clone, Default)]
pub struct Pick {
    pub node: Option<String>,
    pub selector: Option<Labels>,
}

/// A node's id, current generation and text (None while it has none).
pub type Current = (String, u64, Option<Arc<str>>);

/// A generation to read: node, generation, and its text when the reconciler has it (else it
/// is read from the state directory by the caller).
pub type Found = (String, u64, Option<Arc<str>>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `get config`: one node (the only one when none is named); the current generation
    /// unless one is named.
    Get,
    /// `rollback`: every target; the generation named, else the one before the current.
    Rollback,
}

impl Reconciler {
    pub(super) fn api(&mut self, call: ApiCall, now: Now) {
        match call {
            ApiCall::Status(reply) => {
                let _ = reply.send(self.status());
            }
            ApiCall::Change {
                pick,
                change,
                wait,
                reply,
            } => match self.change(&pick, change, wait, reply.clone(), now) {
                Ok(()) => {}
                Err(e) => {
                    let _ = reply.send(e.into_reply());
                }
            },
            ApiCall::Current { pick, reply } => {
                let r = self.targets(&pick).map(|ids| {
                    ids.into_iter()
                        .map(|id| {
                            let n = self.nodes.get(&id).map(|n| &n.desired);
                            let g = n.map_or(0, NodeDesired::current);
                            (id, g, n.and_then(|n| n.text.clone()))
                        })
                        .collect()
                });
                let _ = reply.send(r);
            }
            ApiCall::Lookup {
                pick,
                generation,
                purpose,
                reply,
            } => {
                let _ = reply.send(self.lookup(&pick, generation, purpose));
            }
            ApiCall::Metrics(reply) => {
                let _ = reply.send(self.metrics());
            }
            ApiCall::Rollout { call, reply } => {
                let _ = reply.send(self.rollout_call(call, now));
            }
        }
    }

    /// The nodes a request targets (see [`Pick`]).
    pub(super) fn targets(&self, pick: &Pick) -> Result<Vec<String>, CtldError> {
        match (&pick.node, &pick.selector) {
            (Some(id), _) => {
                ringside_wire::validate_node_id(id).map_err(CtldError::BadNodeId)?;
                Ok(vec![id.to_owned()])
            }
            (None, _) if self.nodes.is_empty() => Err(CtldError::NoNodeKnown),
            (None, Some(selector)) => {
                let ids: Vec<String> = self.selected(selector);
                if ids.is_empty() {
                    let s = ringside_config::labels::format_labels(selector);
                    return Err(CtldError::NoMatch(s));
                }
                Ok(ids)
            }
            (None, None) => Ok(self.nodes.keys().cloned().collect()),
        }
    }

    /// The known nodes whose labels match `selector`, sorted.
    pub(super) fn selected(&self, selector: &Labels) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(_, n)| ringside_config::labels::matches(selector, &n.desired.record.labels))
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn change(
        &mut self,
        pick: &Pick,
        change: Change,
        wait: bool,
        reply: Sender<Reply>,
        now: Now,
    ) -> Result<(), CtldError> {
        self.writes_ok()?;
        let proposals: Vec<(String, Proposal, String)> = match change {
            Change::PerNode(list) => list,
            Change::Apply(text) => self
                .targets(pick)?
                .into_iter()
                .map(|id| {
                    let p = Proposal::Base {
                        text: text.clone(),
                        source: "apply".into(),
                        file: None,
                        validated: true,
                    };
                    (id, p, "apply".to_owned())
                })
                .collect(),
            Change::Edit(spec) => {
                let ids = self.targets(pick)?;
                let multi = ids.len() > 1;
                let mut out = Vec::new();
                for id in ids {
                    let current = self.nodes.get(&id).and_then(|n| n.desired.text.clone());
                    let current = current.ok_or_else(|| CtldError::NoConfiguration(id.clone()))?;
                    let p = cli::propose(&spec, &current).map_err(|e| e.for_node(&id, multi))?;
                    out.push((id, p, spec.describe()));
                }
                out
            }
            Change::ClearOverrides(key) => {
                let source = match &key {
                    Some(k) => format!("clear override {k}"),
                    None => "clear overrides".into(),
                };
                self.targets(pick)?
                    .into_iter()
                    .map(|id| {
                        (
                            id,
                            Proposal::ClearOverrides { key: key.clone() },
                            source.clone(),
                        )
                    })
                    .collect()
            }
        };
        // A rollout owns its nodes' configuration until it ends.
        for (id, _, _) in &proposals {
            self.not_in_rollout(id)?;
        }
        // Plan every node first: one refusal and nothing is committed.
        let multi = proposals.len() > 1;
        let mut plans = Vec::new();
        for (id, p, source) in proposals {
            let fresh;
            let d = match self.nodes.get(&id) {
                Some(n) => &n.desired,
                None => {
                    fresh = NodeDesired::new(&id);
                    &fresh
                }
            };
            plans.push((
                id.clone(),
                d.plan(p, &source).map_err(|e| e.for_node(&id, multi))?,
            ));
        }
        let mut entries = Vec::new();
        for (id, plan) in plans {
            for (key, why) in &plan.dropped {
                tracing::warn!(node = %id, key, reason = %why, "override dropped");
            }
            let c = self.commit(&id, plan, now);
            let state = if c.changed {
                State::Durable
            } else {
                State::Done(PushOutcome::Committed)
            };
            entries.push(Entry {
                node: id,
                generation: c.generation,
                changed: c.changed,
                state,
            });
        }
        let mut w = Waiter {
            reply,
            // A little past the push's own timeout (the push starts once the commit is on
            // disk), so that the session's timeout is the one reported.
            deadline: now.mono + self.settings.timing.ack_timeout + DEADLINE_GRACE,
            wait,
            entries,
        };
        if wait {
            // Unchanged nodes: their sessions may already serve it, or may be catching up.
            for e in w.entries.iter_mut().filter(|e| !e.changed) {
                e.state = self.start_acks(&e.node, e.generation);
            }
        }
        self.waiters.push(w);
        self.settle(now);
        Ok(())
    }

    /// Commits a plan to node `id` (created if new) and queues its writes.
    pub(super) fn commit(
        &mut self,
        id: &str,
        plan: crate::desired::Plan,
        now: Now,
    ) -> crate::desired::Committed {
        let keep = self.settings.keep;
        let node = self.node_mut(id, now);
        node.seen = now.mono;
        let source = plan.source.clone();
        let (c, ops) = node.desired.commit(plan, now.unix, keep);
        if c.changed {
            tracing::info!(node = id, generation = c.generation, %source, "new generation");
        }
        self.write(ops);
        c
    }

    fn lookup(
        &self,
        pick: &Pick,
        generation: Option<u64>,
        purpose: Purpose,
    ) -> Result<Vec<Found>, CtldError> {
        let ids = match (purpose, pick.node.as_deref()) {
            (Purpose::Get, Some(id)) => vec![id.to_owned()],
            (Purpose::Get, None) => match self.nodes.len() {
                0 => return Err(CtldError::NoNodeYet),
                1 => self.nodes.keys().cloned().collect(),
                n => {
                    let names: Vec<&str> = self.nodes.keys().map(String::as_str).collect();
                    return Err(CtldError::Ambiguous {
                        count: n,
                        names: names.join(", "),
                    });
                }
            },
            (Purpose::Rollback, _) => self.targets(pick)?,
        };
        let mut out = Vec::new();
        for id in ids {
            let Some(n) = self.nodes.get(&id) else {
                return Err(match purpose {
                    Purpose::Get => CtldError::UnknownNode(id),
                    Purpose::Rollback => CtldError::NoConfiguration(id),
                });
            };
            let d = &n.desired;
            let g = match (purpose, generation) {
                (_, Some(g)) => g,
                (Purpose::Get, None) => d.current(),
                (Purpose::Rollback, None) => d.previous()?,
            };
            if d.current() == 0 {
                return Err(CtldError::NoConfiguration(id));
            }
            if !d.has(g) && g != d.current() {
                return Err(CtldError::NoGeneration {
                    node: id,
                    generation: g,
                    range: d.range(),
                });
            }
            let text = (g == d.current()).then(|| d.text.clone()).flatten();
            out.push((id, g, text));
        }
        Ok(out)
    }
}
