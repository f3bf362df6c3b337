//! apply → push → ack → status; identical content; invalid configurations; several nodes;
//! refusals and timeouts.

#![allow(clippy::unwrap_used)] // test helpers, like #[test] bodies

mod common;

use common::*;
use ringside_wire::{PushOutcome, Reply, Request};

#[test]
fn apply_pushes_waits_for_the_ack_and_status_shows_it() {
    let dirs = Dirs::new();
    let ctld = Ctld::start(&dirs);
    let proxy = FakeProxy::connect(&ctld.socket, "web-1", 0);
    wait_for("web-1 connected", WAIT, || {
        ctld.node("web-1").filter(|n| n.connected)
    });
    let n = ctld.node("web-1").unwrap();
    assert_eq!(n.generation_desired, 0, "no configuration for it yet");
    assert_eq!(n.role.as_deref(), Some("sidecar"));
    assert!(proxy.generations().is_empty());

    let nodes = applied(apply(&ctld, Some("web-1"), &config("one")));
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0].node, "web-1");
    assert_eq!(nodes[0].generation, 1);
    assert!(nodes[0].changed);
    assert_eq!(nodes[0].outcome, PushOutcome::Acked);
    // The reply came after the ack: the proxy has it.
    assert_eq!(proxy.last().unwrap(), (1, config("one")));

    let n = ctld.node("web-1").unwrap();
    assert_eq!(n.generation_desired, 1);
    assert_eq!(n.generation_acked, Some(1));
    assert!(n.acked_at.unwrap() > 1_700_000_000);
    assert_eq!(n.last_error, None);
}

#[test]
fn identical_content_is_a_no_op() {
    let dirs = Dirs::new();
    let ctld = Ctld::start(&dirs);
    let proxy = FakeProxy::connect(&ctld.socket, "a", 0);
    applied(apply(&ctld, Some("a"), &config("x")));
    let nodes = applied(apply(&ctld, Some("a"), &config("x")));
    assert_eq!(nodes[0].generation, 1);
    assert!(!nodes[0].changed);
    assert_eq!(nodes[0].outcome, PushOutcome::Acked);
    assert_eq!(proxy.generations(), [1]);
}

#[test]
fn an_invalid_configuration_is_refused_with_every_error_and_nothing_changes() {
    let dirs = Dirs::new();
    let ctld = Ctld::start(&dirs);
    let proxy = FakeProxy::connect(&ctld.socket, "a", 0);
    applied(apply(&ctld, Some("a"), &config("x")));
    let bad = "[proxy]\nworkers = 0\n\n[[listeners]]\nname = \"l\"\nbind = \"nowhere\"\n";
    match apply(&ctld, Some("a"), bad) {
        Reply::Error { message, errors } => {
            assert_eq!(message, "configuration refused (2 errors)");
            assert_eq!(
                errors,
                [
                    "proxy.workers: must be from 1 to 1024, got 0",
                    "listeners[0].bind: invalid socket address \"nowhere\""
                ]
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(ctld.node("a").unwrap().generation_desired, 1);
    assert_eq!(proxy.generations(), [1]);
}

#[test]
fn a_node_that_is_not_connected_gets_its_generation_when_it_connects() {
    let dirs = Dirs::new();
    let ctld = Ctld::start(&dirs);
    let nodes = applied(apply(&ctld, Some("later"), &config("x")));
    assert_eq!(nodes[0].outcome, PushOutcome::NotConnected);
    assert_eq!(nodes[0].generation, 1);
    let proxy = FakeProxy::connect(&ctld.socket, "later", 0);
    assert_eq!(proxy.wait_push(1).0, config("x"));
    wait_for("ack recorded", WAIT, || {
        ctld.node("later").filter(|n| n.generation_acked == Some(1))
    });
    // A proxy that already serves the current generation is not pushed again.
    proxy.close();
    let again = FakeProxy::connect(&ctld.socket, "later", 1);
    wait_for("reconnected", WAIT, || {
        ctld.node("later").filter(|n| n.connected)
    });
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(again.generations().is_empty());
}

#[test]
fn without_node_every_known_node_gets_its_own_generation() {
    let dirs = Dirs::new();
    let ctld = Ctld::start(&dirs);
    match apply(&ctld, None, &config("x")) {
        Reply::Error { message, .. } => {
            assert_eq!(message, "no node is known yet: name one with --node")
        }
        other => panic!("{other:?}"),
    }
    let a = FakeProxy::connect(&ctld.socket, "a", 0);
    let b = FakeProxy::connect(&ctld.socket, "b", 0);
    applied(apply(&ctld, Some("a"), &config("a-only")));
    wait_for("b connected", WAIT, || {
        ctld.node("b").filter(|n| n.connected)
    });
    let nodes = applied(apply(&ctld, None, &config("all")));
    let summary: Vec<(String, u64, bool)> = nodes
        .iter()
        .map(|n| (n.node.clone(), n.generation, n.changed))
        .collect();
    assert_eq!(
        summary,
        [("a".to_owned(), 2, true), ("b".to_owned(), 1, true)]
    );
    assert!(nodes.iter().all(|n| n.outcome == PushOutcome::Acked));
    assert_eq!(a.generations(), [1, 2]);
    assert_eq!(b.generations(), [1]);
}

#[test]
fn a_refused_push_is_reported_and_the_node_keeps_its_configuration() {
    let dirs = Dirs::new();
    let ctld = Ctld::start(&dirs);
    let _p = FakeProxy::connect_with(&ctld.socket, "r", 0, Behaviour::Refuse);
    wait_for("connected", WAIT, || ctld.node("r").filter(|n| n.connected));
    let nodes = applied(apply(&ctld, Some("r"), &config("x")));
    match &nodes[0].outcome {
        PushOutcome::Refused { message } => assert_eq!(
            message,
            "generation 1 not applied: listeners[0].bind: address in use"
        ),
        other => panic!("{other:?}"),
    }
    let n = ctld.node("r").unwrap();
    assert_eq!(n.generation_desired, 1);
    assert_eq!(n.generation_acked, None);
    assert!(n.last_error.unwrap().contains("address in use"));
}

#[test]
fn a_push_without_ack_fails_after_the_timeout() {
    let dirs = Dirs::new();
    let ctld = Ctld::start_with(&dirs, &["--ack-timeout-ms", "300"]);
    let _p = FakeProxy::connect_with(&ctld.socket, "mute", 0, Behaviour::Ignore);
    wait_for("connected", WAIT, || {
        ctld.node("mute").filter(|n| n.connected)
    });
    let started = std::time::Instant::now();
    let nodes = applied(apply(&ctld, Some("mute"), &config("x")));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(
        nodes[0].outcome,
        PushOutcome::TimedOut {
            message: "no acknowledgement within 300ms".into()
        }
    );
    assert!(ctld
        .node("mute")
        .unwrap()
        .last_error
        .unwrap()
        .contains("no acknowledgement"));
}

#[test]
fn get_config_serves_current_and_history() {
    let dirs = Dirs::new();
    let ctld = Ctld::start(&dirs);
    applied(apply(&ctld, Some("a"), &config("one")));
    applied(apply(&ctld, Some("a"), &config("two")));
    let get = |generation| {
        ctld.call(Request::GetConfig {
            node: None,
            generation,
        })
    };
    assert_eq!(
        get(None),
        Reply::Config {
            node: "a".into(),
            generation: 2,
            config: config("two")
        }
    );
    assert_eq!(
        get(Some(1)),
        Reply::Config {
            node: "a".into(),
            generation: 1,
            config: config("one")
        }
    );
    assert_eq!(
        get(Some(7)),
        Reply::error("node a has no generation 7 (it has 1 to 2)")
    );
    applied(apply(&ctld, Some("b"), &config("b")));
    assert_eq!(
        get(None),
        Reply::error("2 nodes are known (a, b): name one with --node")
    );
}

#[test]
fn diff_shows_what_would_change() {
    let dirs = Dirs::new();
    let ctld = Ctld::start(&dirs);
    applied(apply(&ctld, Some("a"), &config("one")));
    let diff = |text: &str| match ctld.call(Request::Diff {
        node: Some("a".into()),
        selector: None,
        config: text.into(),
        show_secrets: false,
    }) {
        Reply::Diff { text } => text,
        other => panic!("{other:?}"),
    };
    assert_eq!(diff(&config("one")), "");
    let d = diff(&config("two"));
    assert!(d.starts_with("--- a generation 1\n+++ a new\n@@ "), "{d}");
    assert!(
        d.contains("\n-direct_response = { status = 200, body = \"one\" }\n+direct_response = { status = 200, body = \"two\" }\n"),
        "{d}"
    );
    // Nothing was applied.
    assert_eq!(ctld.node("a").unwrap().generation_desired, 1);
}
