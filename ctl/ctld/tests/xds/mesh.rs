//! A ctld with `--xds`, a proxy of node `n1` started from it (on a given I/O driver), the
//! ADS server and three origins; the resources the tests start from.

use std::time::{Duration, Instant};

use ringside_ctl_testkit::*;
use serde_json::{json, Value};

use super::*;

pub const DRIVERS: [&str; 2] = ["io_uring", "epoll"];

/// A ctld with `--xds`, a proxy of node `n1` started from it, the server and three origins.
/// Fields drop in order: the proxy and ctld stop before the server and the directories go.
pub struct Mesh {
    pub proxy: Option<Proxy>,
    pub ctld: Option<Ctld>,
    pub ads: Ads,
    pub port: u16,
    pub metrics: u16,
    pub a1: Origin,
    pub a2: Origin,
    pub b: Origin,
    pub dirs: Dirs,
}

pub fn ctld_args(url: &str, metrics: u16) -> Vec<String> {
    [
        "--xds",
        url,
        "--xds-node-id",
        "sidecar~127.0.0.1~{node}.test~test.svc.cluster.local",
        "--xds-metadata",
        "NAMESPACE=test",
        "--stats-interval",
        "200ms",
        "--metrics",
        &format!("127.0.0.1:{metrics}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

pub fn start_ctld(dirs: &Dirs, args: &[String]) -> Ctld {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Ctld::start_with(dirs, &args)
}

impl Mesh {
    pub fn start(driver: &str) -> Mesh {
        Mesh::start_with(driver, &[])
    }

    /// [`Mesh::start`] with more arguments for ctld (`--xds-delta`).
    pub fn start_with(driver: &str, ctld_extra: &[&str]) -> Mesh {
        let mut ads = Ads::start();
        let (a1, a2, b) = (Origin::start("a1"), Origin::start("a2"), Origin::start("b"));
        let port = free_port();
        let metrics = free_port();
        let dirs = Dirs::new();
        // The node's file is the template of its process settings.
        dirs.write_config(
            "default.toml",
            &format!("[proxy]\ndriver = \"{driver}\"\nworkers = 1\n"),
        );
        ads.set("v1", resources_v1(port, &a1, &b));
        let mut args = ctld_args(&ads.url(), metrics);
        args.extend(ctld_extra.iter().map(|a| a.to_string()));
        let ctld = start_ctld(&dirs, &args);
        let proxy = Proxy::start_from_ctld(&ctld.socket, "n1", dirs.tmp.path());
        wait_for("the xDS routes served", WAIT, || {
            (body(port, "/a/x").as_deref() == Some("a1")).then_some(())
        });
        // The process settings came from the template (the node's file).
        wait_for("the proxy on the template's driver", WAIT, || {
            let n = ctld.node("n1")?;
            (n.processes.first()?.driver == driver).then_some(())
        });
        Mesh {
            proxy: Some(proxy),
            ctld: Some(ctld),
            ads,
            dirs,
            port,
            metrics,
            a1,
            a2,
            b,
        }
    }

    pub fn ctld(&self) -> &Ctld {
        self.ctld.as_ref().unwrap()
    }

    pub fn metrics(&self) -> String {
        get_metrics(self.metrics)
    }
}

pub fn get_metrics(port: u16) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nhost: m\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Clusters `a` (EDS, Istio's naming) and `b` (STATIC); routes `/a/`, `/split` (100/0),
/// header `x-canary: 1` → b, `/ping` answered directly.
pub fn resources_v1(port: u16, a1: &Origin, b: &Origin) -> Value {
    json!({
        "cds": [eds_cluster("outbound|80||a.test.svc.cluster.local"), static_cluster("b", b.addr)],
        "eds": [load_assignment("outbound|80||a.test.svc.cluster.local", &[(a1.addr, 1, "z1")])],
        "lds": [listener("0.0.0.0_80", port, "r1")],
        "rds": [route_config("r1", routes(100, 0, false))],
    })
}

pub fn routes(a: u32, b: u32, with_new: bool) -> Vec<Value> {
    let mut r = vec![
        json!({"name": "canary", "match": {"prefix": "/", "headers": [{"name": "x-canary", "string_match": {"exact": "1"}}]},
            "route": {"cluster": "b"}}),
        json!({"name": "a", "match": {"prefix": "/a/"},
            "route": {"cluster": "outbound|80||a.test.svc.cluster.local", "timeout": "5s",
                "retry_policy": {"retry_on": "connect-failure,refused-stream,reset", "num_retries": 2}},
            "response_headers_to_add": [{"header": {"key": "x-route", "value": "a"}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}]}),
        json!({"name": "split", "match": {"path": "/split"},
            "route": {"weighted_clusters": {"clusters": [
                {"name": "outbound|80||a.test.svc.cluster.local", "weight": a}, {"name": "b", "weight": b}]}}}),
        json!({"name": "ping", "match": {"path": "/ping"}, "direct_response": {"status": 200, "body": {"inline_string": "pong"}}}),
    ];
    if with_new {
        r.insert(1, json!({"name": "new", "match": {"safe_regex": {"regex": "/new/[0-9]+"}}, "route": {"cluster": "b"}}));
    }
    r
}

/// Load on `/split` and `/a/x` while the server sends v2: the split shifted to b, a new
/// route, a's only endpoint moved from a1 to a2. No request fails, and traffic follows.
pub fn shift_under_load(m: &mut Mesh, driver: &str) {
    let port = m.port;
    // Load while the server shifts the split to b, adds a route and moves a's only
    // endpoint from a1 to a2.
    let load = std::thread::spawn(move || {
        let mut out = Vec::new();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(4) && out.len() < 600 {
            for path in ["/split", "/a/x"] {
                out.push((path, get(port, path, &[])));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        out
    });
    std::thread::sleep(Duration::from_millis(800));
    let v2 = json!({
        "cds": [eds_cluster("outbound|80||a.test.svc.cluster.local"), static_cluster("b", m.b.addr)],
        "eds": [load_assignment("outbound|80||a.test.svc.cluster.local", &[(m.a2.addr, 1, "z1")])],
        "lds": [listener("0.0.0.0_80", port, "r1")],
        "rds": [route_config("r1", routes(0, 100, true))],
    });
    m.ads.set("v2", v2);
    let results = load.join().unwrap();
    assert!(results.len() >= 200, "{driver}: {} requests", results.len());
    let failed: Vec<_> = results
        .iter()
        .filter(|(_, r)| !matches!(r, Some((200, b)) if ["a1", "a2", "b"].contains(&b.as_str())))
        .collect();
    assert!(
        failed.is_empty(),
        "{driver}: {} failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    // Traffic followed: the last answers are the new ones.
    let last = |p: &str| {
        results
            .iter()
            .rev()
            .find(|(path, _)| *path == p)
            .unwrap()
            .1
            .clone()
            .unwrap()
            .1
    };
    assert_eq!(last("/split"), "b", "{driver}");
    assert_eq!(last("/a/x"), "a2", "{driver}");
    assert!(
        results
            .iter()
            .any(|(p, r)| *p == "/split" && r.as_ref().unwrap().1 == "a1"),
        "{driver}: the load started before the change"
    );
    assert_eq!(body(port, "/new/7").as_deref(), Some("b"), "{driver}");
    assert_eq!(
        get(port, "/new/x", &[]).map(|r| r.0),
        Some(404),
        "{driver}: regex is whole-path"
    );
}

pub fn wait_acked(ads: &mut Ads, version: &str) {
    wait_for(
        &format!("ctld to ACK {version} on every type"),
        WAIT,
        || {
            ads.acked()
                .filter(|v| v.iter().all(|x| x == version))
                .map(|_| ())
        },
    );
}
