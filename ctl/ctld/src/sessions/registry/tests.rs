//! The push state machine, with the time passed in.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use ringside_wire::Reply;

use super::*;

const ACK: Duration = Duration::from_secs(1);

fn registry() -> Registry {
    Registry::new(Timing::new(ACK))
}

fn session(
    r: &mut Registry,
    id: SessionId,
    node: &str,
    served: u64,
    now: Instant,
) -> Receiver<SessionCmd> {
    let (tx, rx) = crossbeam_channel::bounded(4);
    r.add(id, node, served, tx, now);
    rx
}

/// The pushes a session's writer received: (request id, generation).
fn pushes(rx: &Receiver<SessionCmd>) -> Vec<(u64, u64)> {
    rx.try_iter()
        .filter_map(|c| match c {
            SessionCmd::Push { id, generation, .. } => Some((id, generation)),
            SessionCmd::Stats { .. } | SessionCmd::Close => None,
        })
        .collect()
}

fn text() -> Arc<str> {
    Arc::from("x")
}

#[test]
fn a_late_ack_is_taken() {
    let mut r = registry();
    let t0 = Instant::now();
    let rx = session(&mut r, 1, "a", 0, t0);
    r.pump("a", Some((5, &text())), t0);
    let [(id, 5)] = pushes(&rx)[..] else { panic!() };
    let (reports, _) = r.tick(t0 + ACK);
    assert_eq!(
        reports[0].outcome,
        Outcome::TimedOut("no acknowledgement within 1s".into())
    );
    assert_eq!(r.session(1).unwrap().served, 0);
    // The answer comes after the timeout: it still counts.
    let late = r
        .on_reply(1, id, Reply::ack(5), t0 + ACK * 3)
        .unwrap()
        .unwrap();
    assert_eq!((late.generation, late.outcome), (5, Outcome::Acked));
    assert_eq!(r.session(1).unwrap().served, 5);
    assert_eq!(r.session(1).unwrap().in_flight(), None);
}

#[test]
fn changes_during_a_push_are_coalesced_to_the_latest() {
    let mut r = registry();
    let t0 = Instant::now();
    let rx = session(&mut r, 1, "a", 0, t0);
    r.pump("a", Some((1, &text())), t0);
    let [(id, 1)] = pushes(&rx)[..] else { panic!() };
    // Twenty changes while generation 1 is in flight: nothing is sent.
    for g in 2..=21 {
        assert!(r.pump("a", Some((g, &text())), t0).is_empty());
    }
    assert!(pushes(&rx).is_empty());
    r.on_reply(1, id, Reply::ack(1), t0).unwrap();
    // The session is free: it gets the target as it is now, once.
    r.pump("a", Some((21, &text())), t0);
    r.pump("a", Some((21, &text())), t0);
    assert_eq!(pushes(&rx).iter().map(|p| p.1).collect::<Vec<_>>(), [21]);
    assert_eq!(r.session(1).unwrap().pushes, 2);
}

#[test]
fn a_refused_push_is_retried_with_backoff() {
    let mut r = registry();
    let t0 = Instant::now();
    let rx = session(&mut r, 1, "a", 0, t0);
    let cfg = text();
    r.pump("a", Some((1, &cfg)), t0);
    let [(id, 1)] = pushes(&rx)[..] else { panic!() };
    let refused = Reply::Error {
        message: "generation 1 not applied".into(),
        errors: vec!["listeners[0].bind: address in use".into()],
    };
    let rep = r.on_reply(1, id, refused.clone(), t0).unwrap().unwrap();
    assert_eq!(
        rep.outcome,
        Outcome::Refused("generation 1 not applied: listeners[0].bind: address in use".into())
    );
    // Not before the backoff (500 ms)...
    r.pump("a", Some((1, &cfg)), t0 + Duration::from_millis(400));
    assert!(pushes(&rx).is_empty());
    assert_eq!(
        r.tick(t0 + Duration::from_millis(400)).1,
        Vec::<String>::new()
    );
    assert_eq!(r.next_wake(), Some(t0 + Duration::from_millis(500)));
    // ...then again; a second refusal doubles the wait.
    let t1 = t0 + Duration::from_millis(500);
    assert_eq!(r.tick(t1).1, ["a"]);
    r.pump("a", Some((1, &cfg)), t1);
    let [(id, 1)] = pushes(&rx)[..] else { panic!() };
    r.on_reply(1, id, refused, t1).unwrap();
    assert_eq!(r.next_wake(), Some(t1 + Duration::from_secs(1)));
    // A new target does not wait for the backoff.
    r.pump("a", Some((2, &cfg)), t1);
    let [(id, 2)] = pushes(&rx)[..] else { panic!() };
    r.on_reply(1, id, Reply::ack(2), t1).unwrap();
    assert_eq!(r.session(1).unwrap().served, 2);
    // Nothing left to retry: the next thing is the stats.
    assert_eq!(r.next_wake(), Some(t0 + Duration::from_secs(10)));
}

#[test]
fn two_sessions_of_one_node_are_pushed_and_answer_on_their_own() {
    let mut r = registry();
    let t0 = Instant::now();
    let old = session(&mut r, 1, "a", 3, t0);
    let new = session(&mut r, 2, "a", 0, t0);
    r.pump("a", Some((3, &text())), t0);
    // The old process serves 3 already; the new one is pushed.
    assert!(pushes(&old).is_empty());
    let [(id, 3)] = pushes(&new)[..] else {
        panic!()
    };
    r.pump("a", Some((4, &text())), t0);
    let [(old_id, 4)] = pushes(&old)[..] else {
        panic!()
    };
    assert!(pushes(&new).is_empty(), "one push in flight per session");
    r.on_reply(2, id, Reply::ack(3), t0).unwrap();
    r.on_reply(1, old_id, Reply::ack(4), t0).unwrap();
    r.pump("a", Some((4, &text())), t0);
    assert_eq!(pushes(&new).iter().map(|p| p.1).collect::<Vec<_>>(), [4]);
    assert_eq!(r.of_node("a").count(), 2);
    // A reply with another session's request id is no answer.
    assert!(r.on_reply(1, 99, Reply::ack(4), t0).is_none());
}

#[test]
fn a_session_silent_past_the_stall_timeout_is_closed() {
    let mut r = registry();
    let t0 = Instant::now();
    let rx = session(&mut r, 1, "a", 0, t0);
    r.pump("a", Some((1, &text())), t0);
    assert_eq!(pushes(&rx).len(), 1);
    r.tick(t0 + ACK);
    r.tick(t0 + ACK * 10);
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [SessionCmd::Close]);
    r.tick(t0 + ACK * 20);
    assert!(rx.try_recv().is_err(), "closed once");
}

#[test]
fn stats_are_asked_when_no_push_is_due_and_never_before_one() {
    let mut r = registry();
    let t0 = Instant::now();
    let rx = session(&mut r, 1, "a", 0, t0);
    let every = Duration::from_secs(10);
    assert_eq!(r.next_wake(), Some(t0 + every));
    // Due, but a push is due too: the push goes first.
    r.pump("a", Some((1, &text())), t0 + every);
    let cmds: Vec<SessionCmd> = rx.try_iter().collect();
    let [SessionCmd::Push { id, .. }] = cmds[..] else {
        panic!("{cmds:?}")
    };
    r.on_reply(1, id, Reply::ack(1), t0 + every);
    // Nothing to push: the stats.
    assert_eq!(r.tick(t0 + every).1, ["a"]);
    r.pump("a", Some((1, &text())), t0 + every);
    let cmds: Vec<SessionCmd> = rx.try_iter().collect();
    let [SessionCmd::Stats { id }] = cmds[..] else {
        panic!("{cmds:?}")
    };
    // A push waits for the stats request in flight, like for any request.
    assert!(r.pump("a", Some((2, &text())), t0 + every).is_empty());
    assert!(rx.try_recv().is_err());
    let status = ringside_wire::Reply::ProxyStatus(proxy_status(42));
    assert_eq!(r.on_reply(1, id, status, t0 + every), Some(None));
    assert_eq!(r.session(1).unwrap().stats.as_ref().unwrap().pid, 42);
    r.pump("a", Some((2, &text())), t0 + every);
    assert_eq!(pushes(&rx).iter().map(|p| p.1).collect::<Vec<_>>(), [2]);
    assert_eq!(
        r.session(1).unwrap().pushes,
        2,
        "stats requests are not pushes"
    );
}

/// A process's status as a proxy answers `status` (the reconciler's tests use it too).
pub(crate) fn proxy_status(pid: u32) -> ringside_wire::ProxyStatus {
    ringside_wire::ProxyStatus {
        node_id: None,
        labels: Default::default(),
        traffic: None,
        role: "sidecar".into(),
        generation: 1,
        config_hash: "0".repeat(16),
        driver: "epoll".into(),
        workers: 1,
        listeners: Vec::new(),
        connections: 0,
        draining: false,
        ctld_connected: true,
        uptime_s: 1,
        pid,
    }
}
