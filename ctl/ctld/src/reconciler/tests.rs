//! The reconciler driven by hand: events in, the time chosen by the test, the persist
//! thread and the proxies played by the test through the channels.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Receiver;
use ringside_wire::{NodeStatus, PushOutcome, Reply};

use super::*;
use crate::desired::tests::config;
use crate::persist::Done;
use crate::sources::files::DirFile;

pub(super) const ACK: Duration = Duration::from_secs(1);

pub(super) struct World {
    pub(super) r: Reconciler,
    ops: Receiver<Op>,
    pub(super) now: Now,
    /// The last rollout record written.
    pub(super) rollout_saved: Option<Arc<crate::persist::RolloutRecord>>,
}

impl World {
    pub(super) fn new() -> World {
        let (tx, ops) = crossbeam_channel::unbounded();
        let settings = Settings {
            timing: Timing::new(ACK),
            keep: 50,
            forget_after: Duration::from_secs(60),
        };
        let now = Now::system();
        World {
            r: Reconciler::new(BTreeMap::new(), None, tx, settings, now),
            ops,
            now,
            rollout_saved: None,
        }
    }

    pub(super) fn step(&mut self, d: Duration) {
        self.now = self.now.after(d);
        self.r.tick(self.now);
    }

    pub(super) fn event(&mut self, e: Event) {
        self.r.handle(e, self.now);
        self.r.tick(self.now);
    }

    /// Plays the persist thread: everything queued is now on disk.
    pub(super) fn persist(&mut self) {
        let batch: Vec<Op> = self.ops.try_iter().collect();
        let mut done = Done {
            ops: batch.len(),
            ..Done::default()
        };
        for op in batch {
            match op {
                Op::Record(r) => {
                    let d = done.durable.entry(r.node_id.clone()).or_default();
                    *d = (*d).max(r.current);
                }
                Op::Rollout(r) => self.rollout_saved = Some(r),
                _ => {}
            }
        }
        self.event(Event::Persisted(done));
    }

    fn connect(&mut self, session: SessionId, node: &str, generation: u64) -> Receiver<SessionCmd> {
        self.connect_labelled(session, node, generation, Labels::new())
    }

    pub(super) fn connect_labelled(
        &mut self,
        session: SessionId,
        node: &str,
        generation: u64,
        labels: Labels,
    ) -> Receiver<SessionCmd> {
        let (tx, rx) = crossbeam_channel::bounded(4);
        self.event(Event::Connected {
            session,
            node: node.into(),
            role: "sidecar".into(),
            generation,
            labels,
            tx,
        });
        rx
    }

    fn ack(&mut self, session: SessionId, push: (u64, u64)) {
        let (id, generation) = push;
        self.event(Event::Reply {
            session,
            id,
            reply: Reply::ack(generation),
        });
    }

    pub(super) fn change(&mut self, node: Option<&str>, change: Change) -> Receiver<Reply> {
        let (reply, rx) = crossbeam_channel::bounded(1);
        self.event(Event::Api(ApiCall::Change {
            pick: Pick {
                node: node.map(str::to_owned),
                selector: None,
            },
            change,
            wait: true,
            reply,
        }));
        rx
    }

    pub(super) fn apply(&mut self, node: Option<&str>, body: &str) -> Receiver<Reply> {
        self.change(node, Change::Apply(Arc::from(config(body))))
    }

    pub(super) fn status(&mut self, node: &str) -> NodeStatus {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.event(Event::Api(ApiCall::Status(tx)));
        let s = rx.try_recv().unwrap();
        s.nodes.into_iter().find(|n| n.node_id == node).unwrap()
    }

    pub(super) fn scan(&mut self, name: &str, text: &str) {
        let file = DirFile {
            name: format!("{name}.toml"),
            text: Arc::from(text),
            hash: crate::persist::store::fnv64(text),
            errors: Vec::new(),
        };
        let mut scan = Scan::default();
        scan.nodes.insert(name.into(), file);
        self.event(Event::Scan(scan));
    }
}

/// The pushes waiting in a session's queue: (request id, generation).
fn pushes(rx: &Receiver<SessionCmd>) -> Vec<(u64, u64)> {
    rx.try_iter()
        .filter_map(|c| match c {
            SessionCmd::Push { id, generation, .. } => Some((id, generation)),
            SessionCmd::Stats { .. } | SessionCmd::Close => None,
        })
        .collect()
}

pub(super) fn outcomes(rx: &Receiver<Reply>) -> Vec<(String, u64, PushOutcome)> {
    match rx.try_recv() {
        Ok(Reply::Applied { nodes }) => nodes
            .into_iter()
            .map(|n| (n.node, n.generation, n.outcome))
            .collect(),
        other => panic!("applied expected, got {other:?}"),
    }
}

#[test]
fn a_push_waits_for_the_disk_then_the_apply_waits_for_the_ack() {
    let mut w = World::new();
    let s1 = w.connect(1, "a", 0);
    let reply = w.apply(Some("a"), "one");
    assert!(pushes(&s1).is_empty(), "not pushed before it is durable");
    assert!(reply.try_recv().is_err());
    w.persist();
    let [p] = pushes(&s1)[..] else { panic!() };
    assert_eq!(p.1, 1);
    assert!(reply.try_recv().is_err(), "waits for the ack");
    w.ack(1, p);
    assert_eq!(outcomes(&reply), [("a".into(), 1, PushOutcome::Acked)]);
    assert_eq!(w.status("a").generation_acked, Some(1));
}

#[test]
fn the_keys_an_ack_says_wait_for_a_restart_stay_until_a_fresh_process_connects() {
    let mut w = World::new();
    let s1 = w.connect(1, "a", 0);
    w.apply(Some("a"), "one");
    w.persist();
    let [(id, generation)] = pushes(&s1)[..] else {
        panic!()
    };
    let pending_restart = vec!["proxy.workers".to_owned()];
    w.event(Event::Reply {
        session: 1,
        id,
        reply: Reply::Ack {
            generation,
            pending_restart: pending_restart.clone(),
        },
    });
    assert_eq!(w.status("a").pending_restart, pending_restart);
    // The same process reconnecting (it says what it serves) still waits for its restart.
    w.event(Event::Disconnected { session: 1 });
    let _s2 = w.connect(2, "a", generation);
    assert_eq!(w.status("a").pending_restart, pending_restart);
    // A restarted process (generation 0) starts on the configuration: nothing waits.
    w.event(Event::Disconnected { session: 2 });
    let s3 = w.connect(3, "a", 0);
    assert!(w.status("a").pending_restart.is_empty());
    let [p] = pushes(&s3)[..] else { panic!() };
    w.ack(3, p);
    assert!(w.status("a").pending_restart.is_empty());
}

#[test]
fn a_late_ack_updates_status_and_the_node_catches_up_on_the_latest() {
    let mut w = World::new();
    let frozen = w.connect(1, "f", 0);
    let other = w.connect(2, "o", 0);
    w.apply(Some("f"), "one");
    w.persist();
    let [first] = pushes(&frozen)[..] else {
        panic!()
    };
    // "f" is frozen: twenty more changes, and one apply to both nodes.
    for i in 0..20 {
        w.apply(Some("f"), &format!("change {i}"));
        w.persist();
    }
    let both = w.apply(None, "both");
    w.persist();
    let [p] = pushes(&other)[..] else { panic!() };
    w.ack(2, p);
    assert!(both.try_recv().is_err(), "still waiting for f");
    w.step(ACK + Duration::from_millis(100));
    let out = outcomes(&both);
    assert_eq!(out[0].0, "f");
    assert!(matches!(out[0].2, PushOutcome::TimedOut { .. }), "{out:?}");
    assert_eq!(out[1], ("o".into(), 1, PushOutcome::Acked));
    assert!(
        pushes(&frozen).is_empty(),
        "nothing more while one push is in flight"
    );
    let s = w.status("f");
    assert_eq!((s.generation_desired, s.generation_acked), (22, None));
    assert!(s.last_error.unwrap().contains("no acknowledgement"));

    // Thawed: the late ack counts, then one push of the latest.
    w.ack(1, first);
    assert_eq!(w.status("f").generation_acked, Some(1));
    let [last] = pushes(&frozen)[..] else {
        panic!()
    };
    assert_eq!(last.1, 22);
    w.ack(1, last);
    let s = w.status("f");
    assert_eq!((s.generation_acked, s.last_error), (Some(22), None));
}

#[test]
fn two_sessions_of_one_node_must_both_acknowledge() {
    let mut w = World::new();
    let old = w.connect(1, "a", 0);
    let new = w.connect(2, "a", 0);
    let reply = w.apply(Some("a"), "x");
    w.persist();
    let [p_old] = pushes(&old)[..] else { panic!() };
    let [p_new] = pushes(&new)[..] else { panic!() };
    w.ack(1, p_old);
    assert!(reply.try_recv().is_err());
    assert_eq!(w.status("a").sessions, 2);
    w.ack(2, p_new);
    assert_eq!(outcomes(&reply)[0].2, PushOutcome::Acked);
    // One goes away mid-push: that change reports it.
    let reply = w.apply(Some("a"), "y");
    w.persist();
    w.ack(1, pushes(&old)[0]);
    w.event(Event::Disconnected { session: 2 });
    assert!(matches!(outcomes(&reply)[0].2, PushOutcome::Failed { .. }));
    assert_eq!(w.status("a").sessions, 1);
}

#[test]
fn an_apply_racing_a_file_change_ends_on_the_file_and_both_are_answered() {
    let mut w = World::new();
    let s = w.connect(1, "a", 0);
    let reply = w.apply(Some("a"), "cli");
    // The file changes before the apply's generation is even on disk.
    w.scan("a", &config("file"));
    w.persist();
    let [p] = pushes(&s)[..] else { panic!() };
    assert_eq!(p.1, 2, "coalesced: only the newest is pushed");
    w.ack(1, p);
    // The apply's generation was superseded by a newer one the node acknowledged.
    assert_eq!(outcomes(&reply), [("a".into(), 1, PushOutcome::Acked)]);
    let st = w.status("a");
    assert_eq!((st.generation_desired, st.generation_acked), (2, Some(2)));
    assert_eq!(st.source.as_deref(), Some("file a.toml"));
}

#[test]
fn a_refused_generation_is_retried_and_reported() {
    let mut w = World::new();
    let s = w.connect(1, "a", 0);
    let reply = w.apply(Some("a"), "x");
    w.persist();
    let [(id, 1)] = pushes(&s)[..] else { panic!() };
    let refusal = Reply::Error {
        message: "generation 1 not applied".into(),
        errors: vec![],
    };
    w.event(Event::Reply {
        session: 1,
        id,
        reply: refusal,
    });
    assert!(matches!(outcomes(&reply)[0].2, PushOutcome::Refused { .. }));
    assert!(pushes(&s).is_empty());
    w.step(Duration::from_millis(500));
    let [p] = pushes(&s)[..] else { panic!() };
    w.ack(1, p);
    assert_eq!(w.status("a").last_error, None);
}

#[test]
fn nodes_without_a_file_are_forgotten_when_unseen() {
    let mut w = World::new();
    w.scan("kept", &config("k"));
    w.connect(1, "pod-1", 0);
    w.event(Event::Disconnected { session: 1 });
    w.persist();
    w.step(Duration::from_secs(30));
    assert!(!w.status("pod-1").connected);
    w.step(Duration::from_secs(31));
    let (tx, rx) = crossbeam_channel::bounded(1);
    w.event(Event::Api(ApiCall::Status(tx)));
    let ids: Vec<String> = rx
        .try_recv()
        .unwrap()
        .nodes
        .into_iter()
        .map(|n| n.node_id)
        .collect();
    assert_eq!(ids, ["kept"]);
    assert!(w
        .ops
        .try_iter()
        .any(|o| matches!(o, Op::Forget { node } if node == "pod-1")));
}

#[test]
fn a_multi_node_edit_is_all_or_nothing() {
    let mut w = World::new();
    w.apply(Some("a"), "x");
    w.change(
        Some("b"),
        Change::Apply(Arc::from("[proxy]\nworkers = 1\n")),
    );
    w.persist();
    let spec = EditSpec::Endpoints {
        op: ringside_wire::EndpointOp::Add,
        cluster: "v1".into(),
        addresses: vec!["127.0.0.1:9009".into()],
    };
    let reply = w.change(None, Change::Edit(spec));
    match reply.try_recv().unwrap() {
        Reply::Error { message, .. } => assert_eq!(message, "node b: no cluster named \"v1\""),
        other => panic!("{other:?}"),
    }
    assert_eq!(w.status("a").generation_desired, 1);
    assert!(w.status("a").overrides.is_empty());
}
