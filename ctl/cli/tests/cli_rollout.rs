//! Progressive rollouts end to end: the real ringside-ctld, `ringsidectl rollout`, and real
//! ringside proxies, each in a network namespace of its own as in a pod (one file binds the
//! same port on every node; a Unix socket reaches ctld from every namespace), under a bounded
//! load per proxy (about 200 requests a second from a thread inside its namespace).
//!
//! Ten proxies per test, as the issue asks: nine `app=web` (the rollouts select them; steps of
//! 10%, 50% and 100% make 1, 5 and 9 nodes) and one `app=api` (never touched).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use ringside_ctl_testkit::{in_netns, Ctld, Dirs, NsProxy};
use ringside_wire::{Reply, Request, RolloutStatus};

/// Every node binds this port on its own loopback; the bad change's origin listens on
/// `ORIGIN` there.
const PORT: u16 = 8080;
const ORIGIN: u16 = 9500;
const LONG: Duration = Duration::from_secs(40);

/// The listener every node binds, and a `/hello` route doing `action`.
fn hello(action: &str) -> String {
    format!(
        r#"[[listeners]]
name = "inbound"
bind = "127.0.0.1:{PORT}"

[[routes]]
listener = "inbound"
name = "hello"
match = {{ path_exact = "/hello" }}
{action}
"#
    )
}

fn v1() -> String {
    hello(r#"direct_response = { status = 200, body = "v1" }"#)
}

/// v1 plus a direct-response route.
fn good() -> String {
    format!(
        r#"{}
[[routes]]
listener = "inbound"
name = "new"
match = {{ path_exact = "/new" }}
direct_response = {{ status = 200, body = "new" }}
"#,
        v1()
    )
}

/// `/hello` goes to an origin that answers 500.
fn bad() -> String {
    format!(
        "{}\n[[clusters]]\nname = \"broken\"\nendpoints = [ \"127.0.0.1:{ORIGIN}\" ]\n",
        hello(r#"cluster = "broken""#)
    )
}

/// What one node's load thread and origin saw.
#[derive(Default)]
struct Seen {
    ok: AtomicU64,
    server_errors: AtomicU64,
    failures: AtomicU64,
    origin: AtomicU64,
}

struct Node {
    proxy: NsProxy,
    seen: Arc<Seen>,
}

struct Fleet {
    dirs: Dirs,
    socket: PathBuf,
    /// ctld's `--metrics` address.
    metrics: String,
    ctld: Option<Ctld>,
    nodes: Vec<Node>,
    stop: Arc<AtomicBool>,
}

impl Fleet {
    /// ctld with v1 as every node's file, and `web` web nodes plus `api` api nodes.
    fn start(web: usize, api: usize) -> Fleet {
        let dirs = Dirs::new();
        dirs.write_config("default.toml", &v1());
        let socket = dirs.tmp.path().join("ringside/ctld.sock");
        let metrics = format!("127.0.0.1:{}", free_port());
        let ctld = Ctld::start_at(&dirs, &socket, &["--metrics", &metrics]);
        let local = dirs.write("local.toml", &v1());
        let stop = Arc::new(AtomicBool::new(false));
        let names = (1..=web)
            .map(|i| (format!("web-{i}"), "app=web"))
            .chain((1..=api).map(|i| (format!("api-{i}"), "app=api")));
        let mut nodes = Vec::new();
        for (name, label) in names {
            let proxy = NsProxy::start(&socket, &name, &[label, "zone=a"], &local, dirs.tmp.path());
            let seen = Arc::new(Seen::default());
            origin(&proxy, seen.clone(), stop.clone());
            load(&proxy, seen.clone(), stop.clone());
            nodes.push(Node { proxy, seen });
        }
        let fleet = Fleet {
            dirs,
            socket,
            metrics,
            ctld: Some(ctld),
            nodes,
            stop,
        };
        fleet.wait_served(1);
        for n in &fleet.nodes {
            let seen = n.seen.clone();
            wait_for("load answered", LONG, || {
                (seen.ok.load(Ordering::Relaxed) > 20).then_some(())
            });
        }
        fleet
    }

    fn ctld(&self) -> &Ctld {
        self.ctld.as_ref().unwrap()
    }

    /// Waits until every node is connected and acknowledged at least generation `g`.
    fn wait_served(&self, g: u64) {
        wait_for("every node connected and serving", LONG, || {
            let s = self.ctld().status();
            let ok = s.nodes.len() == self.nodes.len()
                && s.nodes.iter().all(|n| {
                    n.connected
                        && n.generation_acked == Some(n.generation_desired)
                        && n.generation_desired >= g
                });
            ok.then_some(())
        });
    }

    fn ctl(&self, args: &[&str]) -> Run {
        let sock = self.socket.to_string_lossy().into_owned();
        let mut all = vec!["--socket", sock.as_str()];
        all.extend_from_slice(args);
        ctl_in(self.dirs.tmp.path(), &all)
    }

    fn start_rollout(&self, text: &str, selector: &str, interval: &str) -> RolloutStatus {
        let file = self.dirs.write("rollout.toml", text);
        let file = file.to_string_lossy().into_owned();
        let args = [
            "rollout",
            "start",
            "-f",
            &file,
            "--selector",
            selector,
            "--steps",
            "10,50,100",
            "--interval",
            interval,
            "--max-error-increase",
            "1.0",
            "--min-requests",
            "50",
            "--json",
        ];
        rollout_of(&self.ctl(&args).ok().json())
    }

    fn rollout(&self) -> RolloutStatus {
        match self.ctld().call(Request::RolloutStatus) {
            Reply::Rollout { rollout: Some(r) } => *r,
            other => panic!("{other:?}"),
        }
    }

    fn wait_rollout(&self, what: &str, f: impl Fn(&RolloutStatus) -> bool) -> RolloutStatus {
        wait_for(what, LONG, || Some(self.rollout()).filter(|r| f(r)))
    }

    /// ctld's `/metrics`.
    fn scrape(&self) -> String {
        let mut s = TcpStream::connect(&self.metrics).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        out
    }

    fn node(&self, name: &str) -> &Node {
        self.nodes.iter().find(|n| n.proxy.node == name).unwrap()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn rollout_of(j: &serde_json::Value) -> RolloutStatus {
    assert_eq!(j["type"], "rollout", "{j}");
    serde_json::from_value(j["rollout"].clone()).unwrap()
}

/// One request inside the node's namespace: (status, body).
fn get(node: &Node, path: &str) -> (u16, String) {
    let path = path.to_owned();
    in_netns(&node.proxy.netns(), move || request(&path))
        .join()
        .unwrap()
        .unwrap()
}

fn request(path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", PORT))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    Ok((status, body))
}

/// A bounded load on the node's `/hello`: a request every 5 ms, from inside its namespace.
fn load(proxy: &NsProxy, seen: Arc<Seen>, stop: Arc<AtomicBool>) {
    in_netns(&proxy.netns(), move || {
        while !stop.load(Ordering::Relaxed) {
            match request("/hello") {
                Ok((200, _)) => seen.ok.fetch_add(1, Ordering::Relaxed),
                Ok((s, _)) if s >= 500 => seen.server_errors.fetch_add(1, Ordering::Relaxed),
                _ => seen.failures.fetch_add(1, Ordering::Relaxed),
            };
            std::thread::sleep(Duration::from_millis(5));
        }
    });
}

/// The origin that answers 500 to everything, in the node's namespace; counts requests.
fn origin(proxy: &NsProxy, seen: Arc<Seen>, stop: Arc<AtomicBool>) {
    let ready = in_netns(&proxy.netns(), move || {
        let l = TcpListener::bind(("127.0.0.1", ORIGIN)).unwrap();
        l.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut buf = [0u8; 4096];
                        let _ = s.read(&mut buf);
                        seen.origin.fetch_add(1, Ordering::Relaxed);
                        let _ = s.write_all(
                            b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
    });
    // The spawned thread inherits the namespace; the listener is bound once this returns.
    ready.join().unwrap();
}

fn actions(r: &RolloutStatus) -> Vec<&str> {
    r.decisions.iter().map(|d| d.action.as_str()).collect()
}

#[test]
fn a_good_change_reaches_every_selected_node_in_three_steps() {
    let fleet = Fleet::start(9, 1);
    let status = fleet.ctl(&["status", "--selector", "app=web"]).ok().stdout;
    assert!(status.contains("web-1  app=web,zone=a"), "{status}");
    assert!(!status.contains("api-1"), "{status}");

    let r = fleet.start_rollout(&good(), "app=web", "2s");
    assert_eq!((r.step, r.nodes.len()), (1, 9), "{r:?}");
    let r = fleet.wait_rollout("completed", |r| r.state == "completed");
    assert_eq!(
        actions(&r),
        ["start", "promote", "promote", "complete"],
        "{r:?}"
    );
    let j = r.last_judgement.as_ref().unwrap();
    assert_eq!((j.step, j.canary.nodes), (2, 5));
    assert!(j.canary.requests >= 50 && j.canary.errors == 0, "{j:?}");
    for n in fleet
        .nodes
        .iter()
        .filter(|n| n.proxy.node.starts_with("web-"))
    {
        wait_for("the new route", LONG, || {
            (get(n, "/new") == (200, "new".into())).then_some(())
        });
    }
    let api = fleet.node("api-1");
    assert_eq!(
        get(api, "/new").0,
        404,
        "--selector app=web leaves api-1 alone"
    );
    let api_status = fleet.ctld().node("api-1").unwrap();
    assert_eq!(api_status.generation_desired, 1);
    assert_eq!(
        api_status.labels.get("app").map(String::as_str),
        Some("api")
    );
    for n in &fleet.nodes {
        assert_eq!(
            n.seen.server_errors.load(Ordering::Relaxed),
            0,
            "{}",
            n.proxy.node
        );
    }
    let text = fleet.ctl(&["rollout", "status"]).ok().stdout;
    assert!(text.contains("state        completed"), "{text}");
    assert!(text.contains("canary    5"), "{text}");

    // --selector on an everyday change: api-1 only.
    let webs: Vec<u64> = (1..=9)
        .map(|i| {
            fleet
                .ctld()
                .node(&format!("web-{i}"))
                .unwrap()
                .generation_desired
        })
        .collect();
    let file = fleet.dirs.write("api.toml", &good());
    let file = file.to_string_lossy().into_owned();
    let run = fleet
        .ctl(&["apply", "-f", &file, "--selector", "app=api"])
        .ok();
    assert_eq!(run.stdout, "api-1: generation 2, acknowledged\n");
    wait_for("api-1's new route", LONG, || {
        (get(api, "/new").0 == 200).then_some(())
    });
    for (i, g) in webs.iter().enumerate() {
        let n = fleet.ctld().node(&format!("web-{}", i + 1)).unwrap();
        assert_eq!(n.generation_desired, *g);
    }
    let both = fleet.ctl(&[
        "apply",
        "-f",
        &file,
        "--node",
        "web-1",
        "--selector",
        "app=web",
    ]);
    assert_eq!(both.code, 2, "--node or --selector: {}", both.stderr);
    let none = fleet.ctl(&["apply", "-f", &file, "--selector", "app=db"]);
    assert_eq!(none.code, 1);
    assert!(
        none.stderr
            .contains("no known node matches the selector app=db"),
        "{}",
        none.stderr
    );
}

#[test]
fn a_bad_change_rolls_back_after_its_first_step_and_only_canaries_served_it() {
    let fleet = Fleet::start(9, 1);
    fleet.start_rollout(&bad(), "app=web", "2s");
    let r = fleet.wait_rollout("rolled back", |r| r.state.as_str() == "rolled_back");
    assert_eq!(actions(&r), ["start", "rollback"], "{r:?}");
    let j = r.last_judgement.clone().unwrap();
    assert_eq!((j.step, j.canary.nodes), (1, 1), "{j:?}");
    assert!(
        j.canary.errors >= 50,
        "the errors between push and rollback: {j:?}"
    );
    assert_eq!(j.baseline.unwrap().errors, 0);
    assert!(
        r.reason.as_ref().unwrap().starts_with("step 1: canary "),
        "{r:?}"
    );
    let canary = &r.nodes[0];
    assert_eq!(canary.node, "web-1");
    let restored = canary.restored.unwrap();
    wait_for(
        "web-1 acknowledges its old configuration back",
        LONG,
        || {
            let n = fleet.ctld().node("web-1").unwrap();
            (n.generation_acked == Some(restored) && n.generation_desired == restored).then_some(())
        },
    );
    wait_for("web-1 back on v1", LONG, || {
        (get(fleet.node("web-1"), "/hello") == (200, "v1".into())).then_some(())
    });
    for n in &fleet.nodes {
        let (origin, errors) = (
            n.seen.origin.load(Ordering::Relaxed),
            n.seen.server_errors.load(Ordering::Relaxed),
        );
        if n.proxy.node == "web-1" {
            assert!(origin > 0 && errors > 0, "the canary served it");
        } else {
            assert_eq!((origin, errors), (0, 0), "{} never served it", n.proxy.node);
        }
    }
    assert!(r.nodes[1..].iter().all(|n| n.after.is_none()));
    let metrics = fleet.scrape();
    for line in [
        r#"ringside_ctld_rollout_decisions_total{action="rollback"} 1"#,
        r#"ringside_ctld_rollout_decisions_total{action="promote"} 0"#,
        r#"ringside_ctld_rollout_state{rollout="1",state="rolled_back"} 1"#,
        r#"ringside_ctld_rollout_state{rollout="1",state="watching"} 0"#,
        r#"ringside_ctld_node_connected{node="web-4"} 1"#,
        r#"ringside_ctld_rollout_error_rate_percent{rollout="1",group="baseline"} 0"#,
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
}

#[test]
fn a_restarted_ctld_resumes_the_rollout_and_abort_restores_every_node() {
    let mut fleet = Fleet::start(9, 1);
    let generations = |fleet: &Fleet| -> std::collections::BTreeMap<String, u64> {
        let nodes = fleet.ctld().status().nodes;
        nodes
            .into_iter()
            .map(|n| (n.node_id, n.generation_desired))
            .collect()
    };
    let before = generations(&fleet);
    let first = fleet.start_rollout(&good(), "app=web", "4s");
    fleet.wait_rollout("step 2", |r| r.step == 2 && r.state == "watching");

    let old = fleet.ctld.take().unwrap();
    assert!(old.stop().success());
    fleet.ctld = Some(Ctld::start_at(&fleet.dirs, &fleet.socket, &[]));
    let r = fleet.wait_rollout("resumed at step 2", |r| r.state == "watching");
    assert_eq!((r.id, r.step), (first.id, 2));
    assert_eq!(actions(&r), ["start", "promote", "resume"], "{r:?}");
    assert!(r.decisions[2].reason.contains("restarted"), "{r:?}");

    let aborted = rollout_of(&fleet.ctl(&["rollout", "abort", "--json"]).ok().json());
    assert_eq!(aborted.state, "aborted");
    let touched: Vec<&str> = aborted
        .nodes
        .iter()
        .filter(|n| n.after.is_some())
        .map(|n| n.node.as_str())
        .collect();
    assert_eq!(touched, ["web-1", "web-2", "web-3", "web-4", "web-5"]);
    assert!(aborted
        .nodes
        .iter()
        .all(|n| n.after.is_some() == n.restored.is_some()));
    fleet.wait_served(1);
    let after = generations(&fleet);
    for n in &fleet.nodes {
        wait_for("the previous generation's content", LONG, || {
            (get(n, "/new").0 == 404).then_some(())
        });
        let name = n.proxy.node.as_str();
        let moved = after[name] != before[name];
        assert_eq!(
            moved,
            touched.contains(&name),
            "{name}: {} → {}",
            before[name],
            after[name]
        );
    }
    let again = fleet.ctl(&["rollout", "abort"]);
    assert_eq!(again.code, 1);
    assert!(
        again.stderr.contains("no rollout under way"),
        "{}",
        again.stderr
    );
}
