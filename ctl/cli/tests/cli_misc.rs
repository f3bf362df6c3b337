//! ringsidectl on a proxy's control socket (status, drain, upgrade), failures, completions.

#![allow(clippy::unwrap_used)] // test helpers, like #[test] bodies

mod common;

use common::*;
use ringside_wire::Request;

#[test]
fn status_drain_upgrade_talk_to_the_proxy_socket() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = FakeControl::start(tmp.path().join("ringside/proxy.sock"));
    let path = fake.path.to_string_lossy().into_owned();

    let run = ctl_in(tmp.path(), &["status", "--proxy", &path]).ok();
    assert!(
        run.stdout.contains("node:           web-1\n"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("generation:     7\n"));
    assert!(run.stdout.contains("uptime:         2m05s\n"));
    assert!(
        run.stdout.contains("inbound   http      127.0.0.1:15006"),
        "{}",
        run.stdout
    );
    let j = ctl_in(tmp.path(), &["--proxy", &path, "--json", "status"])
        .ok()
        .json();
    assert_eq!(j["type"], "proxy_status");
    assert_eq!(j["listeners"][0]["address"], "127.0.0.1:15006");

    // drain and upgrade default to $XDG_RUNTIME_DIR/ringside/proxy.sock.
    assert_eq!(ctl_in(tmp.path(), &["drain"]).ok().stdout, "draining\n");
    let run = ctl_in(
        tmp.path(),
        &[
            "upgrade", "--binary", "/bin/sh", "--", "run", "-c", "x.toml",
        ],
    )
    .ok();
    assert_eq!(
        run.stdout,
        "upgraded: pid 100 handed its listeners to pid 200 and is draining\n"
    );
    let j = ctl_in(
        tmp.path(),
        &["upgrade", "--proxy", &path, "--binary", "/bin/sh", "--json"],
    )
    .ok()
    .json();
    assert_eq!(j["new_pid"], 200);

    let reqs = fake.requests.lock().unwrap().clone();
    assert_eq!(reqs[2], Request::Drain);
    let sh = std::fs::canonicalize("/bin/sh")
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert_eq!(
        reqs[3],
        Request::Upgrade {
            binary: sh.clone(),
            args: vec!["run".into(), "-c".into(), "x.toml".into()]
        }
    );
    assert_eq!(
        reqs[4],
        Request::Upgrade {
            binary: sh,
            args: vec![]
        }
    );
}

#[test]
fn unreachable_daemon_is_one_line_and_exit_1() {
    let tmp = tempfile::tempdir().unwrap();
    let run = ctl_in(tmp.path(), &["status"]);
    assert_eq!(run.code, 1);
    // Nothing at the XDG path: the system path is tried when a socket exists there.
    let dir = if std::path::Path::new("/run/ringside/ctld.sock").exists() {
        "/run/ringside".to_string()
    } else {
        format!("{}/ringside", tmp.path().display())
    };
    let prefix = format!("ringsidectl: cannot connect to ringside-ctld: {dir}/ctld.sock: ");
    assert!(run.stderr.starts_with(&prefix), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1);
    let run = ctl_in(tmp.path(), &["drain", "--proxy", "/nonexistent/p.sock"]);
    assert_eq!(run.code, 1);
    assert_eq!(run.stderr.lines().count(), 1);
}

#[test]
fn proxy_option_on_a_daemon_command_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let run = ctl_in(tmp.path(), &["rollback", "--proxy", "/x"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        "ringsidectl: rollback is a ringside-ctld command; --proxy is for status, drain, upgrade, endpoints show, get config and log-level\n"
    );
}

#[test]
fn completions_for_each_shell() {
    let tmp = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let run = ctl_in(tmp.path(), &["completions", shell]).ok();
        assert!(run.stdout.contains("ringsidectl"), "{shell}");
        assert!(run.stdout.contains("endpoints"), "{shell}");
    }
    assert_eq!(ctl_in(tmp.path(), &["completions", "tcsh"]).code, 2);
}

#[test]
fn usage_errors_exit_non_zero() {
    let tmp = tempfile::tempdir().unwrap();
    assert_ne!(ctl_in(tmp.path(), &[]).code, 0);
    assert_ne!(ctl_in(tmp.path(), &["apply"]).code, 0);
    assert_ne!(
        ctl_in(tmp.path(), &["endpoints", "grow", "c", "1.2.3.4:5"]).code,
        0
    );
    let run = ctl_in(tmp.path(), &["endpoints", "add", "c"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        "ringsidectl: name at least one address (IP:port)\n"
    );
}
