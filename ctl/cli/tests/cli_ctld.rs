//! ringsidectl against a real ringside-ctld and fake proxies: apply, status, diff, get,
//! rollback, endpoints, weights — text and --json, global options anywhere.

#![allow(clippy::unwrap_used)] // test helpers, like #[test] bodies

mod common;

use common::*;

#[test]
fn apply_then_status_in_text_and_json() {
    let env = Env::start();
    let _p = FakeProxy::connect(&env.socket(), "web-1", 0);
    let file = env.write("web.toml", &config("one"));
    let run = env.ctl(&["apply", "-f", &file, "--node", "web-1"]).ok();
    assert_eq!(run.stdout, "web-1: generation 1, acknowledged\n");

    let run = env.ctl(&["status"]).ok();
    let mut lines = run.stdout.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("NODE   LABELS  ROLE     CONNECTED  GENERATION  ACKED  ACKED AT"),
        "{}",
        run.stdout
    );
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        &row[..6],
        ["web-1", "-", "sidecar", "yes", "1", "1"],
        "{}",
        run.stdout
    );
    assert_eq!(row.last(), Some(&"-"), "no last error");

    let json = env.ctl(&["status", "--json"]).ok().json();
    assert_eq!(json["type"], "ctld_status");
    assert_eq!(json["nodes"][0]["node_id"], "web-1");
    assert_eq!(json["nodes"][0]["generation_desired"], 1);
    assert_eq!(json["nodes"][0]["generation_acked"], 1);
    assert_eq!(json["nodes"][0]["connected"], true);

    let json = env
        .ctl(&["--json", "apply", "--node", "web-1", "-f", &file])
        .ok()
        .json();
    assert_eq!(json["type"], "applied");
    assert_eq!(json["nodes"][0]["changed"], false);
    assert_eq!(json["nodes"][0]["outcome"]["type"], "acked");
}

#[test]
fn global_options_go_before_or_after_the_subcommand() {
    let env = Env::start();
    let other = tempfile::tempdir().unwrap();
    let sock = env.socket_arg();
    // From another runtime dir, the default socket is wrong: --socket must be honoured
    // wherever it is written.
    for args in [
        vec!["--socket", &sock, "status"],
        vec!["status", "--socket", &sock],
        vec!["--json", "status", "--socket", &sock],
        vec!["--socket", &sock, "status", "--json"],
    ] {
        let run = ctl_in(other.path(), &args);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        if args.contains(&"--json") {
            assert_eq!(run.json()["type"], "ctld_status");
        } else {
            assert_eq!(run.stdout, "no node is known yet\n");
        }
    }
    let file = env.write("c.toml", &config("x"));
    let run = ctl_in(
        other.path(),
        &["get", "config", "--socket", &sock, "--node", "n", "--json"],
    );
    assert_eq!(run.code, 1);
    assert_eq!(run.json()["message"], "unknown node \"n\"");
    ctl_in(
        other.path(),
        &["apply", "--node", "n", "-f", &file, "--socket", &sock],
    )
    .ok();
}

#[test]
fn an_invalid_file_is_refused_locally_with_every_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("bad.toml");
    std::fs::write(
        &file,
        "[proxy]\nworkers = 0\n\n[[listeners]]\nname = \"l\"\nbind = \"x\"\n",
    )
    .unwrap();
    let f = file.to_string_lossy();
    // No daemon anywhere: the refusal must come before any connection attempt.
    let run = ctl_in(tmp.path(), &["apply", "-f", &f, "--node", "a"]);
    assert_eq!(run.code, 1);
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr,
        format!(
            "ringsidectl: {f}: configuration refused (2 errors), nothing changed\n  proxy.workers: must be from 1 to 1024, got 0\n  listeners[0].bind: invalid socket address \"x\"\n"
        )
    );
    let run = ctl_in(tmp.path(), &["--json", "diff", "-f", &f]);
    assert_eq!(run.code, 1);
    let j = run.json();
    assert_eq!(j["type"], "error");
    assert_eq!(j["errors"].as_array().unwrap().len(), 2);
}

#[test]
fn diff_get_rollback() {
    let env = Env::start();
    let _p = FakeProxy::connect(&env.socket(), "a", 0);
    let one = env.write("one.toml", &config("one"));
    let two = env.write("two.toml", &config("two"));
    env.ctl(&["apply", "-f", &one, "--node", "a"]).ok();

    assert_eq!(env.ctl(&["diff", "-f", &one]).ok().stdout, "no changes\n");
    let d = env.ctl(&["diff", "-f", &two, "--node", "a"]).ok().stdout;
    assert!(d.starts_with("--- a generation 1\n+++ a new\n"), "{d}");
    assert!(d.contains("-direct_response = { status = 200, body = \"one\" }\n+direct_response = { status = 200, body = \"two\" }\n"), "{d}");

    env.ctl(&["apply", "-f", &two]).ok();
    assert_eq!(env.ctl(&["get", "config"]).ok().stdout, config("two"));
    assert_eq!(
        env.ctl(&["get", "config", "--node", "a", "--generation", "1"])
            .ok()
            .stdout,
        config("one")
    );
    let j = env.ctl(&["get", "config", "--json"]).ok().json();
    assert_eq!(j["generation"], 2);
    assert_eq!(j["node"], "a");

    let run = env.ctl(&["rollback"]).ok();
    assert_eq!(run.stdout, "a: generation 3, acknowledged\n");
    assert_eq!(env.ctl(&["get", "config"]).ok().stdout, config("one"));
    let run = env.ctl(&["rollback", "--to", "9"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        "ringsidectl: node a has no generation 9 (it has 1 to 3)\n"
    );
}

#[test]
fn endpoints_and_weights() {
    let env = Env::start();
    let p = FakeProxy::connect(&env.socket(), "a", 0);
    let f = env.write("c.toml", &config("x"));
    env.ctl(&["apply", "-f", &f, "--node", "a"]).ok();

    let run = env
        .ctl(&[
            "endpoints",
            "add",
            "v1",
            "127.0.0.1:9003",
            "orders.internal:9004",
        ])
        .ok();
    assert_eq!(run.stdout, "a: generation 2, acknowledged\n");
    let text = env.ctl(&["get", "config"]).ok().stdout;
    assert!(
        text.contains(
            r#"endpoints = [ "127.0.0.1:9001", "127.0.0.1:9003", "orders.internal:9004" ]"#
        ),
        "{text}"
    );
    env.ctl(&["endpoints", "remove", "v1", "127.0.0.1:9001", "--node", "a"])
        .ok();
    env.ctl(&["endpoints", "set", "v2", "127.0.0.1:9100"]).ok();

    let run = env.ctl(&["weights", "api", "v1=50", "v2=50"]).ok();
    assert_eq!(run.stdout, "a: generation 5, acknowledged\n");
    env.ctl(&["weights", "inbound/api", "v2=0"]).ok();
    let text = env.ctl(&["get", "config"]).ok().stdout;
    assert!(
        text.contains(
            r#"weighted = [ { cluster = "v1", weight = 50 }, { cluster = "v2", weight = 0 } ]"#
        ),
        "{text}"
    );
    assert_eq!(p.generations(), [1, 2, 3, 4, 5, 6]);

    let run = env.ctl(&["weights", "api", "v1"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.starts_with("ringsidectl: invalid weight \"v1\""),
        "{}",
        run.stderr
    );
    let run = env.ctl(&["endpoints", "add", "v1", "localhost"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        "ringsidectl: invalid endpoint address \"localhost\" (expected IP:port or host:port)\n"
    );
    let run = env.ctl(&["weights", "api", "v1=0", "v2=0"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .starts_with("ringsidectl: configuration refused (1 error)\n  routes[0].weighted"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_failed_push_exits_non_zero() {
    let env = Env::start();
    // A proxy that never acknowledges: connect as a proxy and ignore every request.
    let mut conn = ringside_wire::Conn::connect(env.socket()).unwrap();
    ringside_wire::client_handshake(
        &mut conn,
        ringside_wire::Peer::Proxy {
            node_id: "mute".into(),
            role: "sidecar".into(),
            generation: 0,
            labels: Default::default(),
        },
    )
    .unwrap();
    let f = env.write("c.toml", &config("x"));
    let run = env.ctl(&["apply", "-f", &f, "--node", "mute"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stdout,
        "mute: generation 1, TIMED OUT: no acknowledgement within 2s\n"
    );
    assert_eq!(run.stderr, "ringsidectl: not acknowledged by mute\n");
    drop(conn);
}

#[test]
fn overrides_are_shown_with_their_source_and_cleared() {
    let env = Env::start();
    let _p = FakeProxy::connect(&env.socket(), "a", 0);
    let f = env.write("c.toml", &config("x"));
    env.ctl(&["apply", "-f", &f, "--node", "a"]).ok();
    env.ctl(&["endpoints", "set", "v1", "127.0.0.1:9100"]).ok();
    env.ctl(&["weights", "api", "v1=1", "v2=1"]).ok();

    let run = env.ctl(&["status"]).ok();
    assert!(
        run.stdout.lines().next().unwrap().contains("SOURCE"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("apply + endpoints v1 + weights inbound/api"),
        "{}",
        run.stdout
    );
    let j = env.ctl(&["status", "--json"]).ok().json();
    assert_eq!(j["nodes"][0]["source"], "apply");
    assert_eq!(j["nodes"][0]["overrides"][0], "endpoints v1");
    assert_eq!(j["nodes"][0]["sessions"], 1);

    let run = env.ctl(&["overrides", "clear", "endpoints v1"]).ok();
    assert_eq!(run.stdout, "a: generation 4, acknowledged\n");
    let text = env.ctl(&["get", "config"]).ok().stdout;
    assert!(
        text.contains("127.0.0.1:9001") && text.contains("weight = 1 }"),
        "{text}"
    );
    let run = env.ctl(&["overrides", "clear", "endpoints v1"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        "ringsidectl: node a has no override \"endpoints v1\"\n"
    );
    env.ctl(&["overrides", "clear"]).ok();
    assert_eq!(env.ctl(&["get", "config"]).ok().stdout, config("x"));
}

#[test]
fn apply_no_wait_returns_once_committed() {
    let env = Env::start();
    let f = env.write("c.toml", &config("x"));
    let run = env
        .ctl(&["apply", "-f", &f, "--node", "a", "--no-wait"])
        .ok();
    assert_eq!(run.stdout, "a: generation 1, committed (not waited for)\n");
    let j = env
        .ctl(&["apply", "-f", &f, "--node", "a", "--no-wait", "--json"])
        .ok()
        .json();
    assert_eq!(j["nodes"][0]["outcome"]["type"], "committed");
}
