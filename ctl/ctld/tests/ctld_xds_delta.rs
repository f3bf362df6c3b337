//! ringside-ctld as an incremental xDS client (`--xds --xds-delta`), end to end against the
//! real ADS server (`tests/xds/ads_server.py`, DeltaAggregatedResources): the same routing
//! and the same change under load as the state-of-the-world test (`ctld_xds.rs`), then what
//! only the incremental protocol carries: a resource removed by name, a response with one
//! changed resource while the others stay as they were, and a new stream that resumes from
//! the versions the node has.

#![allow(clippy::unwrap_used)]

mod common;
mod xds;

use common::*;
use serde_json::json;
use xds::*;

#[test]
fn delta_xds_routes_follows_changes_and_removals() {
    for driver in DRIVERS {
        let mut m = Mesh::start_with(driver, &["--xds-delta"]);
        let port = m.port;
        assert_eq!(body(port, "/ping").as_deref(), Some("pong"), "{driver}");
        assert_eq!(body(port, "/split").as_deref(), Some("a1"), "{driver}");
        assert_eq!(
            get(port, "/x", &[("x-canary", "1")])
                .map(|r| r.1)
                .as_deref(),
            Some("b"),
            "{driver}"
        );
        wait_acked(&mut m.ads, "v1");
        assert_eq!(m.ads.state()["streams"][0]["delta"], true, "{driver}");

        shift_under_load(&mut m, driver);
        wait_acked(&mut m.ads, "v2");

        // v3: cluster b and the routes to it (the header route, the split) are gone (CDS
        // says "removed: b"), a's endpoint is back on a1. Only what changed is sent.
        let a = "outbound|80||a.test.svc.cluster.local";
        let only_a: Vec<_> = routes(100, 0, false)
            .into_iter()
            .filter(|r| r["name"] != "canary" && r["name"] != "split")
            .collect();
        let v3 = json!({
            "cds": [eds_cluster(a)],
            "eds": [load_assignment(a, &[(m.a1.addr, 1, "z1")])],
            "lds": [listener("0.0.0.0_80", port, "r1")],
            "rds": [route_config("r1", only_a)],
        });
        m.ads.set("v3", v3);
        wait_for("v3 served", WAIT, || {
            (get(port, "/x", &[("x-canary", "1")]).map(|r| r.0) == Some(404)).then_some(())
        });
        assert_eq!(body(port, "/a/x").as_deref(), Some("a1"), "{driver}");
        for gone in ["/split", "/new/7"] {
            assert_eq!(
                get(port, gone, &[]).map(|r| r.0),
                Some(404),
                "{driver}: {gone}"
            );
        }
        wait_acked(&mut m.ads, "v3");
        let config = m.ctld().node("n1").unwrap();
        assert!(
            config.source.as_deref().unwrap().starts_with("xds v3"),
            "{driver}: {:?}",
            config.source
        );
        assert!(m.ads.nacks().is_empty(), "{driver}: {:?}", m.ads.nacks());

        // The server ends the stream; ctld opens a new one saying which versions it has, the
        // server sends nothing it already has, and the proxy serves throughout.
        m.ads.reset();
        wait_for("a second stream", WAIT, || {
            let state = m.ads.state();
            (state["opened"].as_array()?.len() == 2 && state["streams"].as_array()?.len() == 1)
                .then_some(())
        });
        assert_eq!(body(port, "/a/x").as_deref(), Some("a1"), "{driver}");
        let a2 = json!({
            "cds": [eds_cluster(a)],
            "eds": [load_assignment(a, &[(m.a2.addr, 1, "z1")])],
            "lds": [listener("0.0.0.0_80", port, "r1")],
            "rds": [route_config("r1", routes(100, 0, false).into_iter().filter(|r| r["name"] == "a").collect())],
        });
        m.ads.set("v4", a2);
        wait_for("v4 served after the reconnect", WAIT, || {
            (body(port, "/a/x").as_deref() == Some("a2")).then_some(())
        });
        wait_acked(&mut m.ads, "v4");
        assert!(m.ads.nacks().is_empty(), "{driver}: {:?}", m.ads.nacks());
        drop(m);
    }
}
