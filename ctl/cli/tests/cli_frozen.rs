//! The real `ringside` proxies, the real `ringside-ctld`, the real `ringsidectl`: one proxy
//! frozen (SIGSTOP) in the middle of a push must not stall ctld — status answers, changes to
//! the other nodes complete, changes to the frozen one are coalesced — and it catches up on
//! SIGCONT.

#![allow(clippy::unwrap_used)] // test helpers, like #[test] bodies

mod common;

use std::time::{Duration, Instant};

use common::*;
use ringside_ctl_testkit::{Ctld, Dirs, Proxy};

/// ctld's acknowledgement timeout in these tests.
const ACK_MS: u64 = 1000;

struct Fleet {
    dirs: Dirs,
    ctld: Ctld,
    proxies: Vec<(String, Proxy)>,
}

impl Fleet {
    fn start(nodes: &[&str]) -> Fleet {
        let dirs = Dirs::new();
        let socket = dirs.tmp.path().join("ringside/ctld.sock");
        let ack = ACK_MS.to_string();
        let ctld = Ctld::start_at(&dirs, &socket, &["--ack-timeout-ms", &ack]);
        let local = dirs.write("local.toml", &config("local"));
        let proxies = nodes
            .iter()
            .map(|n| {
                let p = Proxy::start(&socket, n, &local, dirs.tmp.path());
                (n.to_string(), p)
            })
            .collect();
        let fleet = Fleet {
            dirs,
            ctld,
            proxies,
        };
        for n in nodes {
            wait_for(&format!("{n} connected"), WAIT, || {
                fleet.ctld.node(n).filter(|s| s.connected)
            });
        }
        fleet
    }

    /// ringsidectl with this fleet's socket.
    fn ctl(&self, args: &[&str]) -> Run {
        let socket = self.ctld.socket.to_string_lossy().into_owned();
        let mut all = vec!["--socket", socket.as_str()];
        all.extend_from_slice(args);
        ctl_in(self.dirs.tmp.path(), &all)
    }

    fn file(&self, name: &str, body: &str) -> String {
        let p = self.dirs.write(name, &config(body));
        p.to_string_lossy().into_owned()
    }

    fn proxy(&self, node: &str) -> &Proxy {
        &self.proxies.iter().find(|(n, _)| n == node).unwrap().1
    }

    /// Pushes ctld logged to `node` so far.
    fn pushes_to(&self, node: &str) -> usize {
        let needle = format!("push node={node} ");
        self.ctld
            .log()
            .lines()
            .filter(|l| l.contains(&needle))
            .count()
    }
}

/// (outcome type) per node of an `applied` JSON reply.
fn outcomes(j: &serde_json::Value) -> Vec<(String, String)> {
    j["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let node = n["node"].as_str().unwrap().to_owned();
            (node, n["outcome"]["type"].as_str().unwrap().to_owned())
        })
        .collect()
}

#[test]
fn a_frozen_proxy_stalls_nothing_and_catches_up_on_sigcont() {
    let fleet = Fleet::start(&["n1", "n2", "n3"]);
    let v0 = fleet.file("v0.toml", "v0");
    let j = fleet.ctl(&["apply", "-f", &v0, "--json"]).ok().json();
    assert!(outcomes(&j).iter().all(|(_, o)| o == "acked"), "{j}");

    // n1 freezes; a change to it is pushed and left unanswered.
    fleet.proxy("n1").freeze();
    let pushes_before = fleet.pushes_to("n1");
    let v1 = fleet.file("v1.toml", "v1");
    let started = Instant::now();
    let run = fleet.ctl(&["apply", "-f", &v1, "--node", "n1"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!(
        run.stdout,
        "n1: generation 2, TIMED OUT: no acknowledgement within 1s\n"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // The push is still in flight: status answers at once, and says what it knows.
    let started = Instant::now();
    let j = fleet.ctl(&["status", "--json"]).ok().json();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let n1 = &j["nodes"][0];
    assert_eq!(
        (
            n1["generation_desired"].as_u64(),
            n1["generation_acked"].as_u64()
        ),
        (Some(2), Some(1))
    );
    assert!(
        n1["last_error"]
            .as_str()
            .unwrap()
            .contains("no acknowledgement"),
        "{j}"
    );

    // A change to another node completes.
    let n2 = fleet.file("n2.toml", "n2 only");
    let run = fleet.ctl(&["apply", "-f", &n2, "--node", "n2"]).ok();
    assert_eq!(run.stdout, "n2: generation 2, acknowledged\n");

    // Twenty more changes to the frozen node: committed, not pushed.
    for i in 0..20 {
        let f = fleet.file(&format!("c{i}.toml"), &format!("change {i}"));
        let run = fleet
            .ctl(&["apply", "-f", &f, "--node", "n1", "--no-wait"])
            .ok();
        assert_eq!(
            run.stdout,
            format!("n1: generation {}, committed (not waited for)\n", 3 + i)
        );
    }
    // A change to all three returns within its deadline: n1 timed out, the others acked.
    let all = fleet.file("all.toml", "all");
    let started = Instant::now();
    let run = fleet.ctl(&["apply", "-f", &all, "--json"]);
    assert_eq!(run.code, 1);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let got = outcomes(&run.json());
    let want = [("n1", "timed_out"), ("n2", "acked"), ("n3", "acked")];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(n, o)| (n.to_string(), o.to_string()))
        .collect();
    assert_eq!(got, want);
    // So does an edit of every known node.
    let started = Instant::now();
    let run = fleet.ctl(&["weights", "api", "v1=50", "v2=50", "--json"]);
    assert_eq!(run.code, 1);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(outcomes(&run.json()), want);
    let latest = fleet.ctld.node("n1").unwrap().generation_desired;
    assert_eq!(latest, 24);
    assert_eq!(
        fleet.pushes_to("n1") - pushes_before,
        1,
        "one push in flight, the rest coalesced"
    );

    // SIGCONT: the late ack counts, then the latest generation, acknowledged.
    fleet.proxy("n1").thaw();
    let n1 = wait_for("n1 on the latest generation", WAIT, || {
        fleet
            .ctld
            .node("n1")
            .filter(|n| n.generation_acked == Some(latest))
    });
    assert_eq!(n1.last_error, None);
    let pushes = fleet.pushes_to("n1") - pushes_before;
    assert!(pushes <= 3, "{pushes} pushes after the thaw");
    let control = fleet.proxy("n1").control.to_string_lossy().into_owned();
    let j = fleet
        .ctl(&["status", "--proxy", &control, "--json"])
        .ok()
        .json();
    assert_eq!(j["generation"].as_u64(), Some(latest));
    let run = fleet.ctl(&["status"]).ok();
    let row = run
        .stdout
        .lines()
        .find(|l| l.starts_with("n1 "))
        .unwrap()
        .to_owned();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        &cells[..6],
        ["n1", "-", "sidecar", "yes", "24", "24"],
        "{}",
        run.stdout
    );
    assert!(row.contains("apply + weights inbound/api"), "{row}");
}

#[test]
fn status_shows_each_process_stats_polled_beside_the_pushes() {
    let dirs = Dirs::new();
    let socket = dirs.tmp.path().join("ringside/ctld.sock");
    let ctld = Ctld::start_at(&dirs, &socket, &["--stats-interval", "100ms"]);
    let local = dirs.write("local.toml", &config("local"));
    let proxy = Proxy::start(&socket, "s1", &local, dirs.tmp.path());
    let pid = u64::from(proxy.pid());
    let f = dirs.write("v.toml", &config("v"));
    let sock = socket.to_string_lossy().into_owned();
    let path = f.to_string_lossy().into_owned();
    wait_for("s1 connected", WAIT, || {
        ctld.node("s1").filter(|n| n.connected)
    });
    let run = ctl_in(dirs.tmp.path(), &["--socket", &sock, "apply", "-f", &path]).ok();
    assert_eq!(run.stdout, "s1: generation 1, acknowledged\n");
    let j = wait_for("stats of s1 serving generation 1", WAIT, || {
        let j = ctl_in(dirs.tmp.path(), &["--socket", &sock, "status", "--json"])
            .ok()
            .json();
        let p = &j["nodes"][0]["processes"][0];
        (p["pid"].as_u64() == Some(pid) && p["generation"] == 1).then_some(j)
    });
    assert_eq!(j["nodes"][0]["processes"][0]["node_id"], "s1");
    let text = ctl_in(dirs.tmp.path(), &["--socket", &sock, "status"])
        .ok()
        .stdout;
    let row = text.lines().find(|l| l.contains(&pid.to_string())).unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cells[..3], ["s1", pid.to_string().as_str(), "1"], "{text}");
    // Changes still go through with stats requests in between.
    for i in 0..5 {
        let f = dirs.write("w.toml", &config(&format!("w{i}")));
        let path = f.to_string_lossy().into_owned();
        ctl_in(dirs.tmp.path(), &["--socket", &sock, "apply", "-f", &path]).ok();
    }
    drop(proxy);
    drop(ctld);
}
