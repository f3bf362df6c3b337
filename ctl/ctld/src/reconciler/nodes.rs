//! The reconciler's other inputs: proxies' sessions and their replies, the config
//! directory, the persist thread's reports; and its outputs that are not replies to a
//! change: status, forgetting.

use crossbeam_channel::Sender;
use ringside_wire::{CtldStatus, FileErrors, Labels, NodeStatus, PushOutcome, Reply};

use super::{Node, Reconciler};
use crate::clock::Now;
use crate::desired::{NodeDesired, Proposal};
use crate::persist::store::fnv64;
use crate::persist::{AckRecord, Done, FileSeen, Op};
use crate::sessions::registry::{Outcome, Report, SessionCmd, SessionId};
use crate::sources::files::{dir_errors, log_scan_changes, Scan};
use crate::sources::xds;

impl Reconciler {
    pub(super) fn on_connected(
        &mut self,
        session: SessionId,
        id: &str,
        (role, labels): (&str, Labels),
        generation: u64,
        tx: Sender<SessionCmd>,
        now: Now,
    ) {
        let is_new = !self.nodes.contains_key(id);
        let node = self.node_mut(id, now);
        node.seen = now.mono;
        node.live.seen_at = now.unix;
        let mut ops = Vec::new();
        let record = &mut node.desired.record;
        if record.role.as_deref() != Some(role) || record.labels != labels {
            record.role = Some(role.to_owned());
            record.labels = labels;
            ops.push(Op::Record(record.clone()));
        }
        if generation == 0 {
            // A process that serves nothing from ctld yet (a restart, the new process of an
            // upgrade): its next ack says what waits for a restart, if anything.
            node.pending_restart.clear();
        }
        let current = node.desired.current();
        if generation != 0 && generation == current {
            node.live.acked = Some(AckRecord {
                generation,
                at: now.unix,
            });
        }
        ops.push(Op::Live {
            node: id.to_owned(),
            live: node.live,
        });
        self.write(ops);
        if is_new {
            // A node seen for the first time gets its file (its own or default.toml).
            self.apply_file(id, now);
        }
        self.sessions.add(session, id, generation, tx, now.mono);
        tracing::info!(
            node = id,
            role,
            generation,
            session,
            desired = current,
            "proxy connected"
        );
        self.pump(id, now);
    }

    pub(super) fn on_disconnected(&mut self, session: SessionId, now: Now) {
        let Some(s) = self.sessions.remove(session) else {
            return;
        };
        tracing::info!(node = %s.node, session, "proxy disconnected");
        if let Some(n) = self.nodes.get_mut(&s.node) {
            n.seen = now.mono;
            n.live.seen_at = now.unix;
            let op = Op::Live {
                node: s.node.clone(),
                live: n.live,
            };
            self.write(vec![op]);
        }
        let gone = PushOutcome::Failed {
            message: "the node disconnected before acknowledging".into(),
        };
        self.waiters_outcome(&s.node, Some(session), 0, &gone);
        self.settle(now);
    }

    pub(super) fn on_reply(&mut self, session: SessionId, id: u64, reply: Reply, now: Now) {
        let Some(report) = self.sessions.on_reply(session, id, reply, now.mono) else {
            return;
        };
        let Some(node) = self.sessions.node_of(session) else {
            return;
        };
        if report.is_none() {
            self.labels_from_stats(session, &node);
        }
        if let Some(r) = report {
            self.on_report(r, now);
        }
        // The session is free again: push the node's target as it is now.
        self.pump(&node, now);
    }

    /// A process's status carries its labels and role: a pushed `proxy.labels` or
    /// `proxy.role` changes them, and a proxy that started from ctld said hello before it
    /// had a role (`unconfigured`).
    fn labels_from_stats(&mut self, session: SessionId, id: &str) {
        let Some((role, labels)) = self
            .sessions
            .session(session)
            .and_then(|s| s.stats.as_ref())
            .map(|st| (st.role.clone(), st.labels.clone()))
        else {
            return;
        };
        let Some(n) = self.nodes.get_mut(id) else {
            return;
        };
        let record = &mut n.desired.record;
        if record.labels == labels && record.role.as_deref() == Some(role.as_str()) {
            return;
        }
        if record.labels != labels {
            let shown = ringside_config::labels::format_labels(&labels);
            tracing::info!(node = id, labels = %shown, "labels changed");
        }
        record.labels = labels;
        record.role = Some(role);
        let op = Op::Record(record.clone());
        self.write(vec![op]);
    }

    /// A push's outcome: the node's status, the waiters.
    pub(super) fn on_report(&mut self, r: Report, now: Now) {
        let outcome = match r.outcome {
            Outcome::Acked => PushOutcome::Acked,
            Outcome::Refused(message) => PushOutcome::Refused { message },
            Outcome::TimedOut(message) => PushOutcome::TimedOut { message },
            Outcome::Failed(message) => PushOutcome::Failed { message },
        };
        let name = match &outcome {
            PushOutcome::Acked => "acked",
            PushOutcome::Refused { .. } => "refused",
            PushOutcome::TimedOut { .. } => "timed_out",
            _ => "failed",
        };
        *self.counters.pushes.entry(name).or_insert(0) += 1;
        if let Some(n) = self.nodes.get_mut(&r.node) {
            match &outcome {
                PushOutcome::Acked => {
                    tracing::info!(node = %r.node, generation = r.generation, "acknowledged");
                    n.live.acked = Some(AckRecord {
                        generation: r.generation,
                        at: now.unix,
                    });
                    n.last_error = None;
                    if !r.pending_restart.is_empty() {
                        let keys = r.pending_restart.join(", ");
                        tracing::warn!(node = %r.node, generation = r.generation, keys = %keys, "applied; these keys wait for the node's restart");
                    }
                    n.pending_restart = r.pending_restart.clone();
                    let op = Op::Live {
                        node: r.node.clone(),
                        live: n.live,
                    };
                    self.write(vec![op]);
                }
                PushOutcome::Refused { message }
                | PushOutcome::TimedOut { message }
                | PushOutcome::Failed { message } => {
                    tracing::warn!(node = %r.node, generation = r.generation, error = %message, "push failed");
                    n.last_error = Some(format!("generation {}: {message}", r.generation));
                }
                PushOutcome::Committed | PushOutcome::NotConnected => {}
            }
        }
        self.waiters_outcome(&r.node, Some(r.session), r.generation, &outcome);
        self.settle(now);
    }

    pub(super) fn on_persisted(&mut self, done: Done, now: Now) {
        self.pending_writes = self.pending_writes.saturating_sub(done.ops);
        for (id, g, e) in done.failed {
            tracing::error!(node = %id, generation = g, error = %e, "cannot persist a generation");
            if let Some(n) = self.nodes.get_mut(&id) {
                n.last_error = Some(format!(
                    "generation {g}: cannot write the state directory: {e}"
                ));
            }
            let outcome = PushOutcome::Failed {
                message: format!("cannot write the state directory: {e}"),
            };
            self.waiters_outcome(&id, None, g, &outcome);
        }
        for (id, durable) in done.durable {
            let Some(n) = self.nodes.get_mut(&id) else {
                continue;
            };
            // The target moves to the current generation once it is on disk.
            let current = n.desired.current();
            let behind = n.target.as_ref().is_none_or(|(g, _)| *g < current);
            if durable >= current && behind {
                n.target = n.desired.text.clone().map(|t| (current, t));
            }
            self.waiters_durable(&id, durable);
            self.pump(&id, now);
        }
        self.settle(now);
    }

    pub(super) fn on_scan(&mut self, scan: Scan, now: Now) {
        log_scan_changes(&self.scan, &scan);
        let own: Vec<String> = scan.nodes.keys().cloned().collect();
        self.scan = scan;
        for id in own {
            self.node_mut(&id, now);
        }
        let ids: Vec<String> = self.nodes.keys().cloned().collect();
        for id in ids {
            self.apply_file(&id, now);
        }
    }

    /// Applies the base of `id` if it changed since last applied: what xDS proposed for it
    /// (with `--xds`), else (without) its config-dir file if that is valid.
    pub(super) fn apply_file(&mut self, id: &str, now: Now) {
        let from_xds = self.xds.as_ref().map(|x| x.bases.get(id));
        let (seen, source, text) = match from_xds {
            Some(Some(u)) => {
                let seen = FileSeen {
                    name: xds::SOURCE_NAME.into(),
                    hash: fnv64(&u.text),
                };
                (seen, format!("xds {}", u.version), u.text.clone())
            }
            // With --xds a file is a template, never a configuration alone: the node keeps
            // what it has (after a restart, the persisted xDS base) until xDS sends one.
            Some(None) => return,
            None => {
                let Some(file) = self.scan.file_for(id) else {
                    return;
                };
                if !file.errors.is_empty() {
                    return;
                }
                let seen = FileSeen {
                    name: file.name.clone(),
                    hash: file.hash.clone(),
                };
                (seen, format!("file {}", file.name), file.text.clone())
            }
        };
        if self.in_rollout(id) {
            tracing::info!(node = id, source, "new base held until the rollout ends");
            return;
        }
        let Some(node) = self.nodes.get(id) else {
            return;
        };
        if node.desired.record.file.as_ref() == Some(&seen) {
            return;
        }
        let proposal = Proposal::Base {
            text,
            source: source.clone(),
            file: Some(seen),
            validated: true,
        };
        match node.desired.plan(proposal, &source) {
            Ok(plan) => {
                for (key, why) in &plan.dropped {
                    tracing::warn!(node = id, key, reason = %why, "override dropped: the new base has no such key");
                }
                self.commit(id, plan, now);
            }
            Err(e) => {
                tracing::error!(node = id, error = %e, "the new base with the operator's overrides is refused; the node keeps its configuration");
                if let Some(n) = self.nodes.get_mut(id) {
                    n.last_error = Some(format!("{source}: {e}"));
                }
            }
        }
    }

    /// Forgets nodes that have no file of their own, no session, and were not seen for
    /// `forget_after`.
    pub(super) fn forget_unseen(&mut self, now: Now) {
        let after = self.settings.forget_after;
        let gone: Vec<String> = self
            .nodes
            .iter()
            .filter(|(id, n)| {
                !self.scan.nodes.contains_key(*id)
                    && !self.in_rollout(id)
                    && self.sessions.of_node(id).next().is_none()
                    && now.mono.saturating_duration_since(n.seen) >= after
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            tracing::info!(node = %id, "forgotten: not seen for {:?}", after);
            self.nodes.remove(&id);
            self.write(vec![Op::Forget { node: id }]);
        }
    }

    pub(super) fn node_mut(&mut self, id: &str, now: Now) -> &mut Node {
        self.nodes.entry(id.to_owned()).or_insert_with(|| Node {
            desired: NodeDesired::new(id),
            target: None,
            live: Default::default(),
            seen: now.mono,
            last_error: None,
            pending_restart: Vec::new(),
        })
    }

    pub(super) fn status(&self) -> CtldStatus {
        let nodes = self
            .nodes
            .iter()
            .map(|(id, n)| {
                let r = &n.desired.record;
                let sessions = self.sessions.of_node(id).count();
                NodeStatus {
                    node_id: id.clone(),
                    role: r.role.clone(),
                    labels: r.labels.clone(),
                    rollout: self.rollout_side(id).map(str::to_owned),
                    connected: sessions > 0,
                    generation_desired: r.current,
                    generation_acked: n.live.acked.map(|a| a.generation),
                    acked_at: n.live.acked.map(|a| a.at),
                    last_error: n.last_error.clone(),
                    source: r.base_source.clone(),
                    overrides: r.overrides.iter().map(|o| o.target.key()).collect(),
                    pending_restart: n.pending_restart.clone(),
                    sessions: u32::try_from(sessions).unwrap_or(u32::MAX),
                    processes: self
                        .sessions
                        .of_node(id)
                        .filter_map(|(_, s)| s.stats.clone())
                        .collect(),
                }
            })
            .collect();
        let config_dir_errors: Vec<FileErrors> = dir_errors(&self.scan);
        CtldStatus {
            nodes,
            config_dir_errors,
        }
    }
}
