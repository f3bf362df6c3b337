//! Retention and forgetting, from the outside: the state directory keeps the last 50
//! generations of a node; a node that went away is listed as disconnected, then forgotten.

#![allow(clippy::unwrap_used)] // test helpers, like #[test] bodies

mod common;

use common::*;
use ringside_wire::{Reply, Request};

fn generation_files(dirs: &Dirs, node: &str) -> Vec<u64> {
    let mut out: Vec<u64> = std::fs::read_dir(dirs.state().join("nodes").join(node))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".toml")?.parse().ok()
        })
        .collect();
    out.sort_unstable();
    out
}

#[test]
fn after_300_applies_the_state_dir_keeps_50_generations() {
    let dirs = Dirs::new();
    let ctld = Ctld::start(&dirs);
    let p = FakeProxy::connect(&ctld.socket, "a", 0);
    for i in 1..=300 {
        let nodes = applied(apply(&ctld, Some("a"), &config(&i.to_string())));
        assert_eq!(nodes[0].generation, i);
    }
    assert_eq!(p.last().unwrap().0, 300);
    let files = wait_for("pruning", WAIT, || {
        let f = generation_files(&dirs, "a");
        (f.len() <= 50).then_some(f)
    });
    assert_eq!(files, (251..=300).collect::<Vec<u64>>());
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dirs.state().join("nodes/a/node.json")).unwrap())
            .unwrap();
    assert_eq!(record["history"].as_array().unwrap().len(), 50);
    let get = |generation| {
        ctld.call(Request::GetConfig {
            node: Some("a".into()),
            generation: Some(generation),
        })
    };
    assert_eq!(
        get(250),
        Reply::error("node a has no generation 250 (it has 251 to 300)")
    );
    assert!(matches!(get(251), Reply::Config { .. }));

    // A restart keeps the numbering; --keep-generations is honoured.
    drop(p);
    assert!(ctld.stop().success());
    let ctld = Ctld::start_with(&dirs, &["--keep-generations", "5"]);
    let nodes = applied(apply(&ctld, Some("a"), &config("after")));
    assert_eq!(nodes[0].generation, 301);
    wait_for("pruned to 5", WAIT, || {
        (generation_files(&dirs, "a") == [297, 298, 299, 300, 301]).then_some(())
    });
}

#[test]
fn a_node_that_went_away_is_disconnected_then_forgotten() {
    let dirs = Dirs::new();
    dirs.write_config("default.toml", &config("default"));
    dirs.write_config("kept.toml", &config("kept"));
    let ctld = Ctld::start_with(&dirs, &["--forget-after", "1500ms"]);
    let pod = FakeProxy::connect(&ctld.socket, "pod-1", 0);
    pod.wait_push(1);
    wait_for("pod-1 acked", WAIT, || {
        ctld.node("pod-1").filter(|n| n.generation_acked == Some(1))
    });
    pod.close();
    let n = wait_for("pod-1 disconnected", WAIT, || {
        ctld.node("pod-1").filter(|n| !n.connected)
    });
    assert_eq!(n.generation_desired, 1);
    assert!(dirs.state().join("nodes/pod-1").exists());
    wait_for("pod-1 forgotten", WAIT, || {
        ctld.node("pod-1").is_none().then_some(())
    });
    wait_for("its state removed", WAIT, || {
        (!dirs.state().join("nodes/pod-1").exists()).then_some(())
    });
    // A node with a file of its own is never forgotten (it has been unseen since the start,
    // longer than pod-1).
    let ids: Vec<String> = ctld.status().nodes.into_iter().map(|n| n.node_id).collect();
    assert_eq!(ids, ["kept"]);
}
