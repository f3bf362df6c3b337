//! A proxy that boots from ringside-ctld (`ringside run --ctld S --node-id N`, no
//! `--config`): the real proxy, the real daemon and the real `ringsidectl`. Before the first
//! push it binds nothing; after it, it serves the pushed listener, control socket and admin
//! endpoint; a later push that changes a process setting says so in `ringsidectl status`.

#![allow(clippy::unwrap_used)] // test helpers, like #[test] bodies

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// `ringside run --ctld CTLD --node-id NODE EXTRA...` with `XDG_RUNTIME_DIR=runtime` (so its
/// default control socket would be `runtime/ringside/proxy.sock`), stderr to `log`.
fn boot(ctld: &Path, node: &str, runtime: &Path, log: &Path, extra: &[&str]) -> Child {
    Command::new(ringside_binary())
        .arg("run")
        .arg("--ctld")
        .arg(ctld)
        .args(["--node-id", node])
        .args(extra)
        .env("XDG_RUNTIME_DIR", runtime)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

fn wait_exit(child: &mut Child) -> ExitStatus {
    wait_for("the proxy to exit", WAIT, || child.try_wait().unwrap())
}

/// The inodes of the sockets process `pid` holds.
fn socket_inodes(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect()
}

/// The listening sockets (TCP over IPv4 and IPv6, Unix) that process `pid` holds.
fn listening_sockets(pid: u32) -> usize {
    let ours = socket_inodes(pid);
    let mut listening = Vec::new();
    for (table, state_col, inode_col, listen) in [
        ("/proc/net/tcp", 3, 9, "0A"),
        ("/proc/net/tcp6", 3, 9, "0A"),
        // Unix: Flags (column 3) has __SO_ACCEPTCON (0x10000) on a listening socket.
        ("/proc/net/unix", 3, 6, "00010000"),
    ] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.get(state_col) == Some(&listen) {
                if let Some(inode) = cols.get(inode_col) {
                    listening.push(inode.to_string());
                }
            }
        }
    }
    ours.iter().filter(|i| listening.contains(i)).count()
}

/// GET `path` on the admin endpoint: the status code.
fn admin_status(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(WAIT)).ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.get(9..12)?.parse().ok()
}

/// What ctld pushes to web-1: its workers, driver, listener, admin endpoint and control
/// socket.
fn pushed(port: u16, admin: u16, control: &Path, workers: usize, body: &str) -> String {
    format!(
        "[proxy]\nworkers = {workers}\ndriver = \"epoll\"\nadmin = \"127.0.0.1:{admin}\"\ncontrol_socket = \"{}\"\n\n{}",
        control.display(),
        site(port, body)
    )
}

#[test]
fn a_proxy_started_from_ctld_binds_nothing_until_its_configuration_arrives() {
    let env = Env::start();
    let (port, admin) = (free_port(), free_port());
    let control = env.tmp.path().join("web-1.sock");
    let default_control = env.tmp.path().join("ringside/proxy.sock");
    let log = env.tmp.path().join("proxy.log");
    let mut proxy = boot(&env.socket(), "web-1", env.tmp.path(), &log, &[]);
    let pid = proxy.id();

    // Connected, waiting: nothing bound, no control socket, no admin, no welcome page.
    wait_for("web-1 connected to ctld", WAIT, || {
        let j = env.ctl(&["status", "--json"]).ok().json();
        (j["nodes"][0]["node_id"] == "web-1" && j["nodes"][0]["connected"] == true).then_some(())
    });
    let j = env.ctl(&["status", "--json"]).ok().json();
    assert_eq!(j["nodes"][0]["role"], "unconfigured");
    wait_for("the waiting log line", WAIT, || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains("waiting for the first configuration from ringside-ctld")
            .then_some(())
    });
    assert_eq!(
        listening_sockets(pid),
        0,
        "no listening socket before the push"
    );
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    assert!(TcpStream::connect(("127.0.0.1", admin)).is_err());
    assert!(!default_control.exists() && !control.exists());
    assert!(proxy.try_wait().unwrap().is_none(), "still waiting");

    // The first push: applied whole, process settings included.
    let v1 = env.write("v1.toml", &pushed(port, admin, &control, 1, "v1"));
    let run = env.ctl(&["apply", "-f", &v1, "--node", "web-1"]).ok();
    assert_eq!(run.stdout, "web-1: generation 1, acknowledged\n");
    assert_eq!(
        hello(port).as_deref(),
        Some("v1"),
        "acknowledged means served"
    );
    assert_eq!(admin_status(admin, "/ready"), Some(200));
    // The listener, the admin endpoint and the control socket (the count sees them).
    assert!(listening_sockets(pid) >= 3, "{}", listening_sockets(pid));
    assert!(
        !default_control.exists(),
        "the pushed control socket, not the default"
    );
    let proxy_json = |env: &Env| {
        env.ctl(&["status", "--proxy", &control.to_string_lossy(), "--json"])
            .ok()
            .json()
    };
    let j = proxy_json(&env);
    assert_eq!(
        (j["generation"].as_u64(), j["workers"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(j["ctld_connected"], true);
    assert_eq!(j["driver"], "epoll", "the pushed driver, not auto's choice");

    // A push that changes `workers`: the rest applies, the key waits for a restart.
    let v2 = env.write("v2.toml", &pushed(port, admin, &control, 2, "v2"));
    let run = env.ctl(&["apply", "-f", &v2]).ok();
    assert_eq!(run.stdout, "web-1: generation 2, acknowledged\n");
    assert_eq!(hello(port).as_deref(), Some("v2"));
    let j = env.ctl(&["status", "--json"]).ok().json();
    assert_eq!(
        j["nodes"][0]["pending_restart"],
        serde_json::json!(["proxy.workers"])
    );
    let text = env.ctl(&["status"]).ok().stdout;
    assert!(
        text.contains("keys waiting for a restart") && text.contains("  web-1: proxy.workers\n"),
        "{text}"
    );
    assert_eq!(
        proxy_json(&env)["workers"],
        1,
        "still the workers it started with"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("proxy.workers"), "and logged: {text}");

    // Back to what it runs: nothing waits any more.
    let v3 = env.write("v3.toml", &pushed(port, admin, &control, 1, "v3"));
    env.ctl(&["apply", "-f", &v3]).ok();
    let j = env.ctl(&["status", "--json"]).ok().json();
    assert!(j["nodes"][0]["pending_restart"].is_null(), "{j}");
    assert!(!env
        .ctl(&["status"])
        .ok()
        .stdout
        .contains("waiting for a restart"));

    // A configuration without listeners is refused; the running one keeps serving.
    let empty = env.write("empty.toml", "[proxy]\nworkers = 1\n");
    let run = env.ctl(&["apply", "-f", &empty]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("listeners: at least one is required"),
        "{}",
        run.stderr
    );
    assert_eq!(hello(port).as_deref(), Some("v3"));

    // ctld follows the role from the process's status (it said `unconfigured` at hello),
    // which it asks for every 10 s.
    wait_for(
        "the role from the proxy's status",
        Duration::from_secs(15),
        || {
            let j = env.ctl(&["status", "--json"]).ok().json();
            (j["nodes"][0]["role"] == "sidecar").then_some(())
        },
    );

    // A hot upgrade through the pushed control socket: the new process, started with the
    // same flags (no --config), takes the listening sockets and starts on ctld's push.
    let control_arg = control.to_string_lossy().into_owned();
    let binary = ringside_binary().to_string_lossy().into_owned();
    let run = env
        .ctl(&["upgrade", "--proxy", &control_arg, "--binary", &binary])
        .ok();
    let new_pid: u32 = run
        .stdout
        .split("to pid ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(wait_exit(&mut proxy).success(), "the old process drains");
    assert_eq!(hello(port).as_deref(), Some("v3"));
    let j = proxy_json(&env);
    assert_eq!(
        (j["pid"].as_u64(), j["generation"].as_u64()),
        (Some(u64::from(new_pid)), Some(3))
    );

    let run = env.ctl(&["drain", "--proxy", &control_arg]).ok();
    assert_eq!(run.stdout, "draining\n");
    // Not our child: gone once its /proc entry is (or it is a zombie of its new parent).
    wait_for("the new process to exit", WAIT, || {
        let stat = std::fs::read_to_string(format!("/proc/{new_pid}/stat")).unwrap_or_default();
        let state = stat.rsplit(") ").next().and_then(|r| r.chars().next());
        matches!(state, None | Some('Z')).then_some(())
    });
}

#[test]
fn without_a_configuration_in_time_it_exits_non_zero() {
    let env = Env::start();
    let tmp = env.tmp.path();
    // ctld runs but has nothing for this node; then no ctld at all.
    let absent: PathBuf = tmp.join("nobody/ctld.sock");
    for (ctld, state) in [
        (
            env.socket(),
            "connected; no configuration for this node yet",
        ),
        (absent.clone(), "unavailable"),
    ] {
        let log = tmp.join("timeout.log");
        let started = Instant::now();
        let mut proxy = boot(&ctld, "lonely", tmp, &log, &["--bootstrap-timeout", "1s"]);
        let status = wait_exit(&mut proxy);
        assert_eq!(status.code(), Some(1), "{status:?}");
        assert!(started.elapsed() >= Duration::from_secs(1));
        let err = std::fs::read_to_string(&log).unwrap();
        let want = format!(
            "ringside: no configuration from ringside-ctld at {} within 1s (--bootstrap-timeout; ctld: {state}",
            ctld.display()
        );
        assert!(err.contains(&want), "{err}");
    }

    // Without a timeout it waits, and SIGTERM ends the wait cleanly.
    let log = tmp.join("term.log");
    let mut proxy = boot(&absent, "lonely", tmp, &log, &[]);
    wait_for("the waiting log line", WAIT, || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains("waiting for the first configuration")
            .then_some(())
    });
    ringside_ctl_testkit::signal(proxy.id(), libc::SIGTERM);
    assert!(wait_exit(&mut proxy).success());
}
