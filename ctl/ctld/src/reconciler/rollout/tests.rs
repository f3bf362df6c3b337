//! The rollout driven by hand: the test plays the proxies (acks, counters) and the clock.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Receiver;
use ringside_wire::{Labels, ProxyStatus, Reply, RolloutSpec, RolloutStatus, Traffic};

use crate::desired::tests::config;
use crate::error::CtldError;
use crate::reconciler::tests::World;
use crate::reconciler::{ApiCall, Change, Event, Pick, RolloutCall};
use crate::sessions::registry::tests::proxy_status;
use crate::sessions::registry::SessionCmd;

const INTERVAL: Duration = Duration::from_secs(60);

/// A fleet of proxies the test answers for: per node, its session's queue and the traffic
/// its counters show.
struct Fleet {
    w: World,
    nodes: BTreeMap<String, Proxy>,
}

struct Proxy {
    session: u64,
    rx: Receiver<SessionCmd>,
    traffic: Traffic,
    labels: Labels,
}

fn labels(s: &str) -> Labels {
    ringside_config::labels::parse_selector(s).unwrap()
}

impl Fleet {
    /// `web-1..web-n` labelled app=web, and `api-1` labelled app=api, all serving "v1".
    fn new(n: usize) -> Fleet {
        let mut f = Fleet {
            w: World::new(),
            nodes: BTreeMap::new(),
        };
        let mut ids: Vec<(String, &str)> =
            (1..=n).map(|i| (format!("web-{i}"), "app=web")).collect();
        ids.push(("api-1".into(), "app=api"));
        for (i, (id, l)) in ids.into_iter().enumerate() {
            let session = i as u64 + 1;
            let rx = f.w.connect_labelled(session, &id, 0, labels(l));
            let p = Proxy {
                session,
                rx,
                traffic: Traffic::default(),
                labels: labels(l),
            };
            f.nodes.insert(id, p);
        }
        f.w.apply(None, "v1");
        f.settle();
        f
    }

    /// Plays the disk and every proxy until nothing is pending: acks every push, answers
    /// every stats request with the node's traffic.
    fn settle(&mut self) {
        for _ in 0..20 {
            self.w.persist();
            let mut replies = Vec::new();
            for p in self.nodes.values() {
                for cmd in p.rx.try_iter() {
                    let reply = match cmd {
                        SessionCmd::Push { id, generation, .. } => (id, Reply::ack(generation)),
                        SessionCmd::Stats { id } => (id, Reply::ProxyStatus(stats(p))),
                        SessionCmd::Close => continue,
                    };
                    replies.push((p.session, reply));
                }
            }
            if replies.is_empty() {
                return;
            }
            for (session, (id, reply)) in replies {
                self.w.event(Event::Reply { session, id, reply });
            }
        }
    }

    /// Adds traffic to a node's counters.
    fn serve(&mut self, node: &str, requests: u64, errors: u64) {
        let t = &mut self.nodes.get_mut(node).unwrap().traffic;
        t.requests += requests;
        t.responses_5xx += errors;
    }

    fn call(&mut self, call: RolloutCall) -> Result<Option<RolloutStatus>, CtldError> {
        let (reply, rx) = crossbeam_channel::bounded(1);
        self.w.event(Event::Api(ApiCall::Rollout { call, reply }));
        rx.try_recv().unwrap()
    }

    fn rollout(&mut self) -> RolloutStatus {
        self.call(RolloutCall::Status).unwrap().unwrap()
    }

    /// The content each web node's current generation has: "v1" or "v2".
    fn serves(&mut self, node: &str) -> &'static str {
        let text = self.w.r.nodes[node].desired.text.clone().unwrap();
        if text.contains("\"v2\"") {
            "v2"
        } else {
            "v1"
        }
    }

    /// One window: each node serves `requests`, the canaries with `canary_errors`.
    fn window(&mut self, requests: u64, canary_errors: u64) {
        let r = self.rollout();
        for n in &r.nodes {
            let errors = if n.after.is_some() { canary_errors } else { 0 };
            self.serve(&n.node, requests, errors);
        }
        self.w.step(INTERVAL);
        self.settle();
    }
}

fn stats(p: &Proxy) -> ProxyStatus {
    ProxyStatus {
        labels: p.labels.clone(),
        traffic: Some(p.traffic),
        ..proxy_status(1000 + p.session as u32)
    }
}

fn spec(steps: &[u32]) -> RolloutSpec {
    RolloutSpec {
        config: config("v2"),
        selector: labels("app=web"),
        steps: steps.to_vec(),
        interval_ms: INTERVAL.as_millis() as u64,
        max_error_increase: 1.0,
        min_requests: 100,
    }
}

fn actions(r: &RolloutStatus) -> Vec<&str> {
    r.decisions.iter().map(|d| d.action.as_str()).collect()
}

#[test]
fn a_good_change_reaches_every_selected_node_step_by_step() {
    let mut f = Fleet::new(4);
    let r = f
        .call(RolloutCall::Start(spec(&[25, 50, 100])))
        .unwrap()
        .unwrap();
    assert_eq!((r.state.as_str(), r.step), ("pushing", 1));
    f.settle();
    let r = f.rollout();
    assert_eq!(r.state, "watching", "{r:?}");
    assert_eq!(r.window_left_ms, Some(60_000));
    let on: Vec<&str> = ["web-1", "web-2", "web-3", "web-4"]
        .map(|n| f.serves(n))
        .to_vec();
    assert_eq!(on, ["v2", "v1", "v1", "v1"]);
    assert_eq!(f.w.status("web-1").rollout.as_deref(), Some("new"));
    assert_eq!(f.w.status("web-2").rollout.as_deref(), Some("old"));

    // Nothing is judged before the window ends.
    f.w.step(INTERVAL - Duration::from_secs(1));
    f.settle();
    assert_eq!(f.rollout().step, 1);
    f.w.step(Duration::from_secs(1));
    f.settle();
    // The window's end sample is taken; the canary served too little: paused.
    let r = f.rollout();
    assert_eq!(r.state, "paused", "{r:?}");
    assert!(r.reason.unwrap().contains("fewer than 100"));
    f.call(RolloutCall::Resume).unwrap();
    f.settle();
    assert_eq!(f.rollout().state, "watching");

    f.window(200, 1);
    let r = f.rollout();
    assert_eq!((r.state.as_str(), r.step), ("watching", 2), "{r:?}");
    let j = r.last_judgement.unwrap();
    assert_eq!((j.canary.requests, j.canary.errors), (200, 1));
    assert_eq!(j.baseline.unwrap().requests, 600);
    f.window(200, 0);
    let r = f.rollout();
    assert_eq!(r.state, "completed", "{r:?}");
    assert_eq!(
        actions(&r),
        ["start", "pause", "resume", "promote", "promote", "complete"]
    );
    for n in ["web-1", "web-2", "web-3", "web-4"] {
        assert_eq!(f.serves(n), "v2", "{n}");
        let s = f.w.status(n);
        assert_eq!(s.generation_acked, Some(s.generation_desired), "{n}");
        assert_eq!(s.rollout, None);
    }
    assert_eq!(f.serves("api-1"), "v1", "not selected");
    let saved = f.w.rollout_saved.clone().unwrap();
    assert_eq!(saved.decisions.len(), 6, "persisted with every decision");
}

#[test]
fn a_bad_change_rolls_back_the_canaries_with_the_numbers() {
    let mut f = Fleet::new(4);
    f.call(RolloutCall::Start(spec(&[25, 50, 100]))).unwrap();
    f.settle();
    let before = f.w.status("web-1").generation_desired;
    f.window(200, 100);
    let r = f.rollout();
    assert_eq!(r.state, "rolled_back", "{r:?}");
    let reason = r.reason.clone().unwrap();
    assert!(
        reason.starts_with(
            "step 1: canary 50.00% (100 of 200 on 1 node) vs baseline 0.00% (0 of 600 on 3 nodes)"
        ),
        "{reason}"
    );
    let web1 = &r.nodes[0];
    assert_eq!((web1.before, web1.after), (before - 1, Some(before)));
    assert_eq!(web1.restored, Some(before + 1));
    assert_eq!(web1.acked, Some(before + 1));
    assert!(
        r.nodes[1..].iter().all(|n| n.after.is_none()),
        "only the canary got it"
    );
    for n in ["web-1", "web-2", "web-3", "web-4"] {
        assert_eq!(f.serves(n), "v1", "{n}");
    }
    assert_eq!(actions(&r), ["start", "rollback"]);
    let m = f.w.r.metrics();
    assert!(m.decisions.contains(&("rollback", 1)) && m.decisions.contains(&("promote", 0)));
    let fig = m.rollout.unwrap();
    assert_eq!((fig.state, fig.rates.len()), ("rolled_back", 2));
    assert!(
        m.pushes.iter().any(|(o, n)| *o == "acked" && *n >= 7),
        "{:?}",
        m.pushes
    );
    // Ended: the nodes take changes again.
    let reply = f.w.apply(Some("web-2"), "v3");
    f.settle();
    assert!(matches!(reply.try_recv(), Ok(Reply::Applied { .. })));
}

#[test]
fn a_rollout_owns_its_nodes_and_abort_restores_them() {
    let mut f = Fleet::new(2);
    f.call(RolloutCall::Start(spec(&[50, 100]))).unwrap();
    f.settle();
    let refused = f.w.apply(Some("web-2"), "v3");
    match refused.try_recv() {
        Ok(Reply::Error { message, .. }) => assert!(message.contains("in rollout 1"), "{message}"),
        other => panic!("{other:?}"),
    }
    // Another rollout cannot start; nodes outside it take changes.
    let again = f.call(RolloutCall::Start(spec(&[100])));
    assert!(matches!(again, Err(CtldError::Rollout(m)) if m.contains("under way")));
    let other = f.w.change(None, Change::Apply(Arc::from(config("v3"))));
    assert!(
        matches!(other.try_recv(), Ok(Reply::Error { .. })),
        "every node includes web-*"
    );
    let (reply, rx) = crossbeam_channel::bounded(1);
    f.w.event(Event::Api(ApiCall::Change {
        pick: Pick {
            node: None,
            selector: Some(labels("app=api")),
        },
        change: Change::Apply(Arc::from(config("v3"))),
        wait: false,
        reply,
    }));
    f.settle();
    assert!(matches!(rx.try_recv(), Ok(Reply::Applied { .. })));

    f.call(RolloutCall::Pause).unwrap();
    f.w.step(INTERVAL * 2);
    f.settle();
    assert_eq!(
        f.rollout().state,
        "paused",
        "a paused rollout does not move"
    );
    let r = f.call(RolloutCall::Abort).unwrap().unwrap();
    assert_eq!(r.state, "aborted");
    f.settle();
    assert_eq!((f.serves("web-1"), f.serves("web-2")), ("v1", "v1"));
    let r = f.rollout();
    assert_eq!(r.nodes[0].acked, r.nodes[0].restored);
    assert_eq!(actions(&r), ["start", "pause", "abort"]);
    assert!(matches!(
        f.call(RolloutCall::Abort),
        Err(CtldError::Rollout(_))
    ));
}

#[test]
fn it_pauses_when_a_node_gives_no_counters() {
    let mut f = Fleet::new(2);
    f.call(RolloutCall::Start(spec(&[50, 100]))).unwrap();
    f.settle();
    // web-2 stops answering: the window's end sample cannot be complete.
    let web2 = f.nodes.remove("web-2").unwrap();
    f.serve("web-1", 500, 0);
    f.w.step(INTERVAL);
    f.settle();
    assert_eq!(f.rollout().state, "watching", "still sampling");
    f.w.step(super::super::tests::ACK * 2);
    f.settle();
    let r = f.rollout();
    assert_eq!(r.state, "paused");
    assert!(r.reason.unwrap().contains("no fresh counters from web-2"));
    assert_eq!(f.serves("web-2"), "v1", "never promoted blind");
    drop(web2);
}

#[test]
fn bad_specs_and_selectors_are_refused() {
    let mut f = Fleet::new(1);
    let mut s = spec(&[100]);
    s.selector = labels("app=nothing");
    assert!(matches!(
        f.call(RolloutCall::Start(s)),
        Err(CtldError::NoMatch(_))
    ));
    assert!(matches!(
        f.call(RolloutCall::Start(spec(&[50, 10, 100]))),
        Err(CtldError::Rollout(_))
    ));
    assert!(f.call(RolloutCall::Status).unwrap().is_none());
    // One node: the first step covers it all; complete once acknowledged.
    f.call(RolloutCall::Start(spec(&[10, 100]))).unwrap();
    f.settle();
    let r = f.rollout();
    assert_eq!(r.state, "completed");
    assert_eq!(f.serves("web-1"), "v2");
}

#[test]
fn a_restart_resumes_the_step_and_the_record_catches_up_with_the_generations() {
    let mut f = Fleet::new(4);
    f.call(RolloutCall::Start(spec(&[25, 50, 100]))).unwrap();
    f.settle();
    f.window(200, 0);
    assert_eq!(f.rollout().step, 2);
    // What a crash between the step's commits and the record's write leaves on disk.
    let mut rec = (*f.w.rollout_saved.clone().unwrap()).clone();
    let web2 = rec.nodes.iter_mut().find(|n| n.node == "web-2").unwrap();
    let made = web2.after.take().unwrap();
    rec.state = crate::persist::RolloutState::Watching;
    f.w.r.rollout = None;
    f.w.r.rollout_loaded(rec, f.w.now);
    f.settle();
    let r = f.rollout();
    assert_eq!(r.nodes[1].after, Some(made), "caught up from the history");
    assert_eq!(
        (r.state.as_str(), r.step),
        ("watching", 2),
        "a fresh window"
    );
    assert_eq!(actions(&r), ["start", "promote", "resume"]);
    assert!(r.decisions[2].reason.contains("restarted"));
    f.window(200, 0);
    assert_eq!(f.rollout().state, "completed");
}
