//! ringside-ctld as an xDS client (`--xds`), end to end: the real ADS management server
//! (`tests/xds/ads_server.py`: grpcio, xds-protos), the real ctld, a real `ringside` proxy
//! on each I/O driver, real origins, all on 127.0.0.1. Requests route as the resources say;
//! changes made while load runs lose no request; what ringside cannot honour is NACKed by
//! field and the proxy keeps serving; a lost server is retried with backoff and a ctld
//! restart without it serves the persisted configuration.

#![allow(clippy::unwrap_used)]

mod common;
mod xds;

use common::*;
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

        shift_under_load(&mut m, driver);
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
