//! ringside-ctld as an xDS client (`--xds`), end to end: the real ADS management server
//! (`tests/xds/ads_server.py`: grpcio, xds-protos), the real ctld, a real `ringside` proxy
//! on each I/O driver, real origins, all on 127.0.0.1. Requests route as the resources say;
//! changes made while load runs lose no request; what ringside cannot honour is NACKed by
//! field and the proxy keeps serving; a lost server is retried with backoff and a ctld
//! restart without it serves the persisted configuration.

#![allow(clippy::unwrap_used)]

mod common;
mod xds;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use xds::*;

#[test]
fn xds_resources_route_requests_and_changes_under_load_lose_nothing() {
    for driver in DRIVERS {
        let mut m = Mesh::start(driver);
        let port = m.port;
        assert_eq!(body(port, "/ping").as_deref(), Some("pong"), "{driver}");
        assert_eq!(body(port, "/split").as_deref(), Some("a1"), "{driver}");
        assert_eq!(
            get(port, "/x", &[("x-canary", "1")])
                .map(|r| r.1)
                .as_deref(),
            Some("b")
        );
        assert_eq!(
            get(port, "/new/1", &[]).map(|r| r.0),
            Some(404),
            "{driver}: no such route yet"
        );
        wait_acked(&mut m.ads, "v1");
        let state = m.ads.state();
        let stream = &state["streams"][0];
        assert_eq!(
            stream["node"],
            "sidecar~127.0.0.1~n1.test~test.svc.cluster.local"
        );
        assert_eq!(stream["cluster"], "ringside");
        assert_eq!(stream["metadata"]["NAMESPACE"], "test");
        assert_eq!(stream["metadata"]["RINGSIDE_NODE_ID"], "n1");
        let node = m.ctld().node("n1").unwrap();
        assert!(
            node.source.as_deref().unwrap().starts_with("xds v1"),
            "{:?}",
            node.source
        );

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
            .filter(
                |(_, r)| !matches!(r, Some((200, b)) if ["a1", "a2", "b"].contains(&b.as_str())),
            )
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
        wait_acked(&mut m.ads, "v2");
        let metrics = m.metrics();
        for line in [
            "ringside_ctld_xds_connected{node=\"n1\"} 1",
            "ringside_ctld_xds_ignored_total{what=\"http_filter:istio.stats\"}",
            "ringside_ctld_xds_ignored_total{what=\"http_filter:envoy.filters.http.fault\"}",
            "ringside_ctld_xds_ignored_total{what=\"field:track_remaining\"}",
            "ringside_ctld_xds_responses_total{type=\"rds\",outcome=\"ack\"}",
        ] {
            assert!(metrics.contains(line), "{driver}: {line} in\n{metrics}");
        }
        assert!(m.ads.nacks().is_empty(), "{:?}", m.ads.nacks());

        // A change of the node's file (the template) makes the configuration again.
        let before = m.ctld().node("n1").unwrap().generation_desired;
        let template =
            format!("[proxy]\ndriver = \"{driver}\"\nworkers = 1\nlabels = {{ app = \"web\" }}\n");
        m.dirs.write_config("default.toml", &template);
        wait_for("the template's labels served", WAIT, || {
            let n = m.ctld().node("n1")?;
            (n.labels.get("app").map(String::as_str) == Some("web")
                && n.generation_acked > Some(before))
            .then_some(())
        });
        assert_eq!(
            body(port, "/new/7").as_deref(),
            Some("b"),
            "{driver}: xDS routes kept"
        );
        drop(m);
    }
}
