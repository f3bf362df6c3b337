//! The watched config directory: `<node>.toml`, else `default.toml`; changes pushed within a
//! second; invalid files rejected, reported, and nodes unchanged.

#![allow(clippy::unwrap_used)] // test helpers, like #[test] bodies

mod common;

use std::time::{Duration, Instant};

use common::*;

#[test]
fn a_connecting_node_gets_default_toml() {
    let dirs = Dirs::new();
    dirs.write_config("default.toml", &config("default"));
    let ctld = Ctld::start(&dirs);
    let p = FakeProxy::connect(&ctld.socket, "web-1", 0);
    assert_eq!(p.wait_push(1).0, config("default"));
}

#[test]
fn a_node_file_wins_over_default_and_a_change_is_pushed_within_a_second() {
    let dirs = Dirs::new();
    dirs.write_config("default.toml", &config("default"));
    dirs.write_config("web-1.toml", &config("mine"));
    let ctld = Ctld::start(&dirs);
    let p = FakeProxy::connect(&ctld.socket, "web-1", 0);
    assert_eq!(p.wait_push(1).0, config("mine"));

    let written = Instant::now();
    dirs.write_config("web-1.toml", &config("changed"));
    let (text, arrived) = p.wait_push(2);
    assert_eq!(text, config("changed"));
    let took = arrived.duration_since(written);
    assert!(took < Duration::from_secs(1), "took {took:?}");

    // An in-place edit (no rename) is seen too.
    let written = Instant::now();
    std::fs::write(dirs.config().join("web-1.toml"), config("in place")).unwrap();
    let (text, arrived) = p.wait_push(3);
    assert_eq!(text, config("in place"));
    assert!(arrived.duration_since(written) < Duration::from_secs(1));
}

#[test]
fn default_toml_changes_reach_every_node_without_its_own_file() {
    let dirs = Dirs::new();
    dirs.write_config("default.toml", &config("d1"));
    dirs.write_config("own.toml", &config("own"));
    let ctld = Ctld::start(&dirs);
    let a = FakeProxy::connect(&ctld.socket, "a", 0);
    let own = FakeProxy::connect(&ctld.socket, "own", 0);
    a.wait_push(1);
    own.wait_push(1);
    dirs.write_config("default.toml", &config("d2"));
    assert_eq!(a.wait_push(2).0, config("d2"));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(own.generations(), [1]);
}

#[test]
fn an_invalid_file_is_reported_and_nodes_keep_their_configuration() {
    let dirs = Dirs::new();
    dirs.write_config("web-1.toml", &config("good"));
    let ctld = Ctld::start(&dirs);
    let p = FakeProxy::connect(&ctld.socket, "web-1", 0);
    p.wait_push(1);

    dirs.write_config("web-1.toml", INVALID);
    let status = wait_for("the error reported", WAIT, || {
        let s = ctld.status();
        (!s.config_dir_errors.is_empty()).then_some(s)
    });
    assert_eq!(status.config_dir_errors.len(), 1);
    assert_eq!(status.config_dir_errors[0].file, "web-1.toml");
    assert_eq!(
        status.config_dir_errors[0].errors,
        ["proxy.workers: must be from 1 to 1024, got 0"]
    );
    let n = status.nodes.iter().find(|n| n.node_id == "web-1").unwrap();
    assert_eq!(n.generation_desired, 1);
    assert_eq!(p.generations(), [1]);
    assert!(
        ctld.log().contains("config file rejected"),
        "{}",
        ctld.log()
    );

    // Fixing the file clears the error and applies it.
    dirs.write_config("web-1.toml", &config("fixed"));
    assert_eq!(p.wait_push(2).0, config("fixed"));
    wait_for("error cleared", WAIT, || {
        ctld.status().config_dir_errors.is_empty().then_some(())
    });
}

#[test]
fn an_invalid_file_at_start_changes_nothing() {
    let dirs = Dirs::new();
    dirs.write_config("default.toml", INVALID);
    let ctld = Ctld::start(&dirs);
    let p = FakeProxy::connect(&ctld.socket, "a", 0);
    wait_for("connected", WAIT, || ctld.node("a").filter(|n| n.connected));
    let s = ctld.status();
    assert_eq!(s.config_dir_errors[0].file, "default.toml");
    assert_eq!(s.nodes[0].generation_desired, 0);
    assert!(p.generations().is_empty());
}

#[test]
fn cli_edits_stand_until_the_file_changes_again() {
    let dirs = Dirs::new();
    dirs.write_config("a.toml", &config("file"));
    let ctld = Ctld::start(&dirs);
    let p = FakeProxy::connect(&ctld.socket, "a", 0);
    p.wait_push(1);
    applied(apply(&ctld, Some("a"), &config("cli")));
    p.wait_push(2);
    // A restart (which rescans) with the file unchanged does not undo the CLI's edit.
    drop(ctld);
    let ctld = Ctld::start(&dirs);
    assert_eq!(ctld.node("a").unwrap().generation_desired, 2);
    dirs.write_config("a.toml", &config("file again"));
    wait_for("generation 3 from the file", WAIT, || {
        ctld.node("a").filter(|n| n.generation_desired == 3)
    });
}
