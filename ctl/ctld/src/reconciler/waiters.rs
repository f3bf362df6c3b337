//! Waiting for a change's outcome per node: first for the state directory (a generation is
//! pushed only once durable), then for every session of the node to acknowledge it — or for
//! the deadline. The waiter replies once every node has an outcome.

use std::collections::BTreeSet;
use std::time::Instant;

use crossbeam_channel::Sender;
use ringside_wire::{NodeApplied, PushOutcome, Reply};

use super::Reconciler;
use crate::clock::Now;
use crate::sessions::registry::{secs, SessionId};

/// How much later than the ack timeout a waiting change gives up.
pub(super) const DEADLINE_GRACE: std::time::Duration = std::time::Duration::from_millis(100);

pub(super) struct Waiter {
    pub(super) reply: Sender<Reply>,
    pub(super) deadline: Instant,
    pub(super) wait: bool,
    pub(super) entries: Vec<Entry>,
}

pub(super) struct Entry {
    pub(super) node: String,
    pub(super) generation: u64,
    pub(super) changed: bool,
    pub(super) state: State,
}

pub(super) enum State {
    /// Committed; waiting for the state directory.
    Durable,
    /// Pushed; waiting for these sessions' acknowledgements.
    Acks(BTreeSet<SessionId>),
    Done(PushOutcome),
}

impl Reconciler {
    /// The sessions of `node` that must acknowledge `generation`: acked already when none
    /// is behind, not connected when there is none.
    pub(super) fn start_acks(&self, node: &str, generation: u64) -> State {
        let mut any = false;
        let pending: BTreeSet<SessionId> = self
            .sessions
            .of_node(node)
            .inspect(|_| any = true)
            .filter(|(_, s)| s.served != generation)
            .map(|(id, _)| id)
            .collect();
        match (any, pending.is_empty()) {
            (false, _) => State::Done(PushOutcome::NotConnected),
            (true, true) => State::Done(PushOutcome::Acked),
            (true, false) => State::Acks(pending),
        }
    }

    /// A generation of `node` up to `durable` is on disk.
    pub(super) fn waiters_durable(&mut self, node: &str, durable: u64) {
        let mut starts = Vec::new();
        for (wi, w) in self.waiters.iter().enumerate() {
            for (ei, e) in w.entries.iter().enumerate() {
                if e.node == node && e.generation <= durable && matches!(e.state, State::Durable) {
                    starts.push((wi, ei, w.wait));
                }
            }
        }
        for (wi, ei, wait) in starts {
            let state = match self.waiters[wi].entries.get(ei) {
                Some(e) if wait => self.start_acks(&e.node, e.generation),
                Some(_) => State::Done(PushOutcome::Committed),
                None => continue,
            };
            if let Some(e) = self.waiters[wi].entries.get_mut(ei) {
                e.state = state;
            }
        }
    }

    /// What became of a push (or a write) of `node`, for the waiters.
    pub(super) fn waiters_outcome(
        &mut self,
        node: &str,
        session: Option<SessionId>,
        generation: u64,
        outcome: &PushOutcome,
    ) {
        for e in self.waiters.iter_mut().flat_map(|w| w.entries.iter_mut()) {
            if e.node != node {
                continue;
            }
            let done = match (&mut e.state, session) {
                (State::Acks(pending), Some(s)) if pending.contains(&s) => match outcome {
                    PushOutcome::Acked if generation >= e.generation => {
                        pending.remove(&s);
                        pending.is_empty().then_some(PushOutcome::Acked)
                    }
                    PushOutcome::Acked => None,
                    other
                        if generation == e.generation
                            || matches!(other, PushOutcome::Failed { .. }) =>
                    {
                        Some(other.clone())
                    }
                    _ => None,
                },
                (State::Durable, None) if generation == e.generation => Some(outcome.clone()),
                _ => None,
            };
            if let Some(o) = done {
                e.state = State::Done(o);
            }
        }
    }

    /// Deadlines: what has not happened in time has timed out.
    pub(super) fn expire_waiters(&mut self, now: Now) {
        let timeout = self.settings.timing.ack_timeout;
        let nodes = &mut self.nodes;
        for w in self.waiters.iter_mut().filter(|w| now.mono >= w.deadline) {
            for e in w.entries.iter_mut() {
                let outcome = match e.state {
                    State::Done(_) => continue,
                    State::Durable => PushOutcome::Failed {
                        message: "not written to the state directory in time".into(),
                    },
                    State::Acks(_) => {
                        let message = format!("no acknowledgement within {}", secs(timeout));
                        if let Some(n) = nodes.get_mut(&e.node) {
                            n.last_error.get_or_insert_with(|| {
                                format!("generation {}: {message}", e.generation)
                            });
                        }
                        PushOutcome::TimedOut { message }
                    }
                };
                e.state = State::Done(outcome);
            }
        }
        self.settle(now);
    }

    /// Replies to every waiter whose nodes all have an outcome.
    pub(super) fn settle(&mut self, _now: Now) {
        let (done, open): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut self.waiters)
            .into_iter()
            .partition(|w| w.entries.iter().all(|e| matches!(e.state, State::Done(_))));
        self.waiters = open;
        for w in done {
            let nodes = w
                .entries
                .into_iter()
                .map(|e| NodeApplied {
                    node: e.node,
                    generation: e.generation,
                    changed: e.changed,
                    outcome: match e.state {
                        State::Done(o) => o,
                        _ => PushOutcome::Committed,
                    },
                })
                .collect();
            let _ = w.reply.send(Reply::Applied { nodes });
        }
    }
}
