//! Durability: a restart keeps every generation and the history, nothing renumbered;
//! rollback; the everyday edits.

#![allow(clippy::unwrap_used)] // test helpers, like #[test] bodies

mod common;

use common::*;
use ringside_wire::{EndpointOp, PushOutcome, Reply, Request, WeightSpec};

fn get(ctld: &Ctld, node: &str, generation: Option<u64>) -> String {
    match ctld.call(Request::GetConfig {
        node: Some(node.into()),
        generation,
    }) {
        Reply::Config { config, .. } => config,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_restart_keeps_generations_and_history() {
    let dirs = Dirs::new();
    let ctld = Ctld::start(&dirs);
    for body in ["one", "two", "three"] {
        applied(apply(&ctld, Some("a"), &config(body)));
    }
    let p = FakeProxy::connect(&ctld.socket, "a", 0);
    p.wait_push(3);
    wait_for("ack", WAIT, || {
        ctld.node("a").filter(|n| n.generation_acked == Some(3))
    });
    let before = ctld.node("a").unwrap();
    p.close();
    assert!(ctld.stop().success(), "SIGTERM exits 0");
    assert!(!dirs.socket().exists(), "the socket file is removed");

    let ctld = Ctld::start(&dirs);
    let after = ctld.node("a").unwrap();
    assert_eq!(after.generation_desired, 3);
    assert_eq!(after.generation_acked, Some(3));
    assert_eq!(after.acked_at, before.acked_at);
    assert!(!after.connected);
    assert_eq!(get(&ctld, "a", Some(1)), config("one"));
    assert_eq!(get(&ctld, "a", Some(2)), config("two"));
    assert_eq!(get(&ctld, "a", None), config("three"));
    // The proxy reconnecting with generation 3 is not pushed again; the next change is 4.
    let p = FakeProxy::connect(&ctld.socket, "a", 3);
    let nodes = applied(apply(&ctld, Some("a"), &config("four")));
    assert_eq!(nodes[0].generation, 4);
    assert_eq!(p.generations(), [4]);
}

#[test]
fn rollback_creates_a_new_generation_with_old_content() {
    let dirs = Dirs::new();
    let ctld = Ctld::start(&dirs);
    let p = FakeProxy::connect(&ctld.socket, "a", 0);
    applied(apply(&ctld, Some("a"), &config("one")));
    applied(apply(&ctld, Some("a"), &config("two")));
    let rollback = |to| {
        ctld.call(Request::Rollback {
            node: Some("a".into()),
            selector: None,
            to,
        })
    };
    let nodes = applied(rollback(None));
    assert_eq!(nodes[0].generation, 3);
    assert_eq!(nodes[0].outcome, PushOutcome::Acked);
    assert_eq!(p.last().unwrap(), (3, config("one")));
    let nodes = applied(rollback(Some(2)));
    assert_eq!(nodes[0].generation, 4);
    assert_eq!(p.last().unwrap(), (4, config("two")));
    assert_eq!(
        rollback(Some(9)),
        Reply::error("node a has no generation 9 (it has 1 to 4)")
    );
    assert_eq!(
        ctld.call(Request::Rollback {
            node: Some("new".into()),
            selector: None,
            to: None
        }),
        Reply::error("node new has no configuration yet")
    );
    // Rolling back to content equal to the current one is a no-op.
    let nodes = applied(rollback(Some(4)));
    assert_eq!((nodes[0].generation, nodes[0].changed), (4, false));
}

#[test]
fn endpoint_edits_keep_comments_and_make_generations() {
    let dirs = Dirs::new();
    let ctld = Ctld::start(&dirs);
    let p = FakeProxy::connect(&ctld.socket, "a", 0);
    applied(apply(&ctld, Some("a"), &config("x")));
    let edit = |op, addrs: &[&str]| {
        ctld.call(Request::Endpoints {
            op,
            cluster: "v1".into(),
            addresses: addrs.iter().map(|s| s.to_string()).collect(),
            node: Some("a".into()),
            selector: None,
        })
    };
    let nodes = applied(edit(EndpointOp::Add, &["127.0.0.1:9003"]));
    assert_eq!(nodes[0].generation, 2);
    let (g, text) = p.last().unwrap();
    assert_eq!(g, 2);
    assert!(
        text.contains(r#"endpoints = [ "127.0.0.1:9001", "127.0.0.1:9003" ]"#),
        "{text}"
    );
    assert!(text.contains("# served by a test") && text.contains("# the split"));
    applied(edit(EndpointOp::Remove, &["127.0.0.1:9001"]));
    applied(edit(EndpointOp::Set, &["127.0.0.1:9101", "127.0.0.1:9102"]));
    let text = get(&ctld, "a", None);
    assert!(
        text.contains(r#"endpoints = ["127.0.0.1:9101", "127.0.0.1:9102"]"#),
        "{text}"
    );
    assert_eq!(ctld.node("a").unwrap().generation_desired, 4);

    assert_eq!(
        edit(EndpointOp::Remove, &["127.0.0.1:1"]),
        Reply::error("cluster \"v1\" has no endpoint 127.0.0.1:1")
    );
    // An edit whose result does not validate is refused with the errors.
    match edit(EndpointOp::Add, &["127.0.0.1:0"]) {
        Reply::Error { message, errors } => {
            assert_eq!(message, "configuration refused (1 error)");
            assert_eq!(errors.len(), 1);
            assert!(
                errors[0].starts_with("clusters[0].endpoints[2]"),
                "{errors:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(ctld.node("a").unwrap().generation_desired, 4);
}

#[test]
fn weight_edits_shift_traffic() {
    let dirs = Dirs::new();
    let ctld = Ctld::start(&dirs);
    let p = FakeProxy::connect(&ctld.socket, "a", 0);
    applied(apply(&ctld, Some("a"), &config("x")));
    let weights = |route: &str, w: &[(&str, u32)]| {
        ctld.call(Request::Weights {
            route: route.into(),
            listener: None,
            weights: w
                .iter()
                .map(|(c, w)| WeightSpec {
                    cluster: c.to_string(),
                    weight: *w,
                })
                .collect(),
            node: Some("a".into()),
            selector: None,
        })
    };
    let nodes = applied(weights("api", &[("v1", 50), ("v2", 50)]));
    assert_eq!(nodes[0].generation, 2);
    let text = p.last().unwrap().1;
    assert!(
        text.contains(
            r#"weighted = [ { cluster = "v1", weight = 50 }, { cluster = "v2", weight = 50 } ]"#
        ),
        "{text}"
    );
    applied(weights("api", &[("v1", 0)]));
    assert!(get(&ctld, "a", None).contains(r#"{ cluster = "v1", weight = 0 }"#));
    match weights("api", &[("v2", 0)]) {
        Reply::Error { errors, .. } => {
            assert_eq!(errors.len(), 1);
            assert!(errors[0].starts_with("routes[0].weighted"), "{errors:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        weights("hello", &[("v1", 1)]),
        Reply::error("route \"hello\" answers with a direct_response: it has no clusters to weigh")
    );
    assert_eq!(ctld.node("a").unwrap().generation_desired, 3);
}

#[test]
fn edits_need_a_current_configuration() {
    let dirs = Dirs::new();
    let ctld = Ctld::start(&dirs);
    assert_eq!(
        ctld.call(Request::Endpoints {
            op: EndpointOp::Add,
            cluster: "v1".into(),
            addresses: vec!["127.0.0.1:1".into()],
            node: Some("nobody".into()),
            selector: None,
        }),
        Reply::error("node nobody has no configuration yet")
    );
}
