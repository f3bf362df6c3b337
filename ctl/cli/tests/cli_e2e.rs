//! End to end: the real `ringside` proxy connected to the real `ringside-ctld`, operated with
//! the real `ringsidectl`; every change checked with an HTTP request through the proxy.

#![allow(clippy::unwrap_used)] // test helpers, like #[test] bodies

mod common;

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// `ringside run --config FILE --control-socket CONTROL EXTRA...`, output discarded.
fn run_proxy(file: &str, control: &Path, extra: &[&OsStr]) -> Child {
    Command::new(ringside_binary())
        .args(["run", "--config", file, "--control-socket"])
        .arg(control)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn a_proxy_follows_ctld_through_apply_rollback_and_drains() {
    let env = Env::start();
    let port = free_port();
    let file = env.write("local.toml", &site(port, "from file"));
    let control = env.tmp.path().join("ringside/proxy.sock");
    let ctld = env.socket();
    let mut proxy = run_proxy(
        &file,
        &control,
        &[
            "--node-id".as_ref(),
            "n1".as_ref(),
            "--ctld".as_ref(),
            ctld.as_os_str(),
        ],
    );

    // It serves its file and connects to ctld (which has nothing for it yet).
    wait_for("the proxy serving its file", WAIT, || {
        hello(port).filter(|b| b == "from file")
    });
    wait_for("n1 connected to ctld", WAIT, || {
        let j = env.ctl(&["status", "--json"]).ok().json();
        (j["nodes"][0]["node_id"] == "n1" && j["nodes"][0]["connected"] == true).then_some(())
    });

    let v1 = env.write("v1.toml", &site(port, "v1"));
    let v2 = env.write("v2.toml", &site(port, "v2"));
    let run = env.ctl(&["apply", "-f", &v1, "--node", "n1"]).ok();
    assert_eq!(run.stdout, "n1: generation 1, acknowledged\n");
    assert_eq!(
        hello(port).as_deref(),
        Some("v1"),
        "acknowledged means served"
    );
    env.ctl(&["apply", "-f", &v2]).ok();
    assert_eq!(hello(port).as_deref(), Some("v2"));
    let run = env.ctl(&["rollback"]).ok();
    assert_eq!(run.stdout, "n1: generation 3, acknowledged\n");
    assert_eq!(hello(port).as_deref(), Some("v1"));

    // The proxy's own view, over its control socket (the default path in this runtime dir).
    let j = env
        .ctl(&["status", "--proxy", &control.to_string_lossy(), "--json"])
        .ok()
        .json();
    assert_eq!(j["generation"], 3);
    assert_eq!(j["node_id"], "n1");
    assert_eq!(j["ctld_connected"], true);
    let j = env.ctl(&["status", "--json"]).ok().json();
    assert_eq!(j["nodes"][0]["generation_acked"], 3);

    // A configuration the proxy cannot serve never reaches it: refused locally.
    let bad = env.write(
        "bad.toml",
        "[[listeners]]\nname = \"x\"\nbind = \"nowhere\"\n",
    );
    assert_eq!(env.ctl(&["apply", "-f", &bad]).code, 1);
    assert_eq!(hello(port).as_deref(), Some("v1"));

    // Drain (default --proxy path: $XDG_RUNTIME_DIR/ringside/proxy.sock): exits 0.
    assert_eq!(env.ctl(&["drain"]).ok().stdout, "draining\n");
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(s) = proxy.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the proxy did not exit after drain"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn endpoints_show_reports_health_checks_and_ejections() {
    let env = Env::start();
    let port = free_port();
    let live = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let live_addr = live.local_addr().unwrap();
    let dead = format!("127.0.0.1:{}", free_port());
    let file = env.write(
        "health.toml",
        &format!(
            "{}\n[[clusters]]\nname = \"app\"\nendpoints = [ \"{live_addr}\", \"{dead}\" ]\n\
             [clusters.health_check]\ntcp = true\ninterval_ms = 100\n",
            site(port, "ok")
        ),
    );
    let control = env.tmp.path().join("health.sock");
    let control_arg = control.to_string_lossy().into_owned();
    let mut proxy = run_proxy(&file, &control, &[]);
    let show = |json: bool| {
        let mut args = vec!["endpoints", "show", "app", "--proxy", &control_arg];
        if json {
            args.push("--json");
        }
        env.ctl(&args)
    };
    let j = wait_for("the dead endpoint found unhealthy", WAIT, || {
        let run = show(true);
        (run.code == 0).then(|| run.json()).filter(|j| {
            j["clusters"][0]["endpoints"][1]["health"] == "unhealthy"
                && j["clusters"][0]["endpoints"][0]["check"] == "healthy"
        })
    });
    assert_eq!(j["type"], "health");
    assert_eq!(j["clusters"][0]["name"], "app");
    assert_eq!(j["clusters"][0]["endpoints"][1]["address"], dead);
    let text = show(false).ok().stdout;
    assert!(text.starts_with("ENDPOINT"), "{text}");
    let dead_row = text.lines().find(|l| l.starts_with(&dead)).unwrap();
    assert!(dead_row.contains("unhealthy"), "{text}");
    assert!(text.contains("cluster app: 0 ejections"), "{text}");
    // An unknown cluster is an error.
    let run = env.ctl(&["endpoints", "show", "nope", "--proxy", &control_arg]);
    assert_eq!(run.code, 1);
    proxy.kill().unwrap();
    proxy.wait().unwrap();
}

/// A configuration whose route sends a credential upstream and whose consumer has an API key.
/// Its listener takes port 0: a port from `free_port` could be another test's dead endpoint.
fn with_secrets() -> String {
    r#"[proxy]
role = "gateway"
workers = 1

[[listeners]]
name = "inbound"
bind = "127.0.0.1:0"

[[routes]]
listener = "inbound"
name = "hello"
request_headers_to_add = [ { name = "authorization", value = "Bearer tok-9d2f" } ]
direct_response = { status = 200, body = "hi" }

[[consumers]]
name = "app"
api_keys = [ { key = "sk-live-5e1b" } ]
"#
    .to_string()
}

#[test]
fn get_config_shows_secrets_only_when_asked() {
    let env = Env::start();
    let text = with_secrets();
    let file = env.write("secret.toml", &text);
    let _fake = FakeProxy::connect(&env.socket(), "n1", 0);
    env.ctl(&["apply", "-f", &file, "--node", "n1"]).ok();
    let redacted = |out: &str| {
        assert!(
            !out.contains("tok-9d2f") && !out.contains("sk-live-5e1b"),
            "{out}"
        );
        assert_eq!(out.matches("[redacted]").count(), 2, "{out}");
    };
    // From ctld: redacted in text and JSON, as it is with --show-secrets.
    redacted(&env.ctl(&["get", "config"]).ok().stdout);
    let j = env.ctl(&["get", "config", "--json"]).ok().json();
    redacted(j["config"].as_str().unwrap());
    assert_eq!(
        env.ctl(&["get", "config", "--show-secrets"]).ok().stdout,
        text
    );

    // From the proxy itself, over its control socket.
    let control = env.tmp.path().join("p.sock");
    let mut proxy = run_proxy(&file, &control, &[]);
    let sock = control.to_string_lossy().into_owned();
    let out = wait_for("the proxy's control socket", WAIT, || {
        let run = env.ctl(&["get", "config", "--proxy", &sock]);
        (run.code == 0).then_some(run.stdout)
    });
    redacted(&out);
    let shown = env
        .ctl(&["get", "config", "--proxy", &sock, "--show-secrets"])
        .ok();
    assert_eq!(shown.stdout, text);
    let run = env.ctl(&["get", "config", "--proxy", &sock, "--generation", "7"]);
    assert_eq!(run.code, 1, "{}", run.stderr);

    // The log level, as the admin endpoint's /log-level does it, but over the socket.
    assert_eq!(
        env.ctl(&["log-level", "--proxy", &sock]).ok().stdout,
        "info\n"
    );
    let set = env.ctl(&["log-level", "warn,ringside_engine=debug", "--proxy", &sock]);
    assert_eq!(
        set.ok().stdout,
        "ringside_engine=debug,warn\n",
        "as the filter spells it"
    );
    assert_eq!(
        env.ctl(&["log-level", "--proxy", &sock]).ok().stdout,
        "ringside_engine=debug,warn\n"
    );
    let bad = env.ctl(&["log-level", "loud", "--proxy", &sock]);
    assert_eq!(bad.code, 1, "{}", bad.stderr);
    let _ = proxy.kill();
    let _ = proxy.wait();
}
