//! ringside-ctld's xDS client against bad input and lost servers: each resource ringside
//! cannot honour is NACKed with the resource and the field (or ringside's validation's path
//! and reason) while the proxy keeps serving; a stream reset or a dead server is retried
//! with backoff; a ctld restart without the server serves the persisted configuration.

#![allow(clippy::unwrap_used)]

mod common;
mod xds;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use xds::*;

/// v1 with the route configuration replaced.
fn with_routes(m: &Mesh, routes: Vec<Value>) -> Value {
    let mut r = resources_v1(m.port, &m.a1, &m.b);
    r["rds"] = json!([route_config("r1", routes)]);
    r
}

/// Sets `resources` as `version` and waits for the NACK containing `expect`.
fn expect_nack(m: &mut Mesh, version: &str, resources: Value, expect: &str) {
    let before = m.ads.nacks().len();
    m.ads.set(version, resources);
    let got = wait_for(&format!("a NACK of {version}"), WAIT, || {
        let n = m.ads.nacks();
        (n.len() > before).then(|| n[before..].join("\n"))
    });
    assert!(
        got.contains(expect),
        "NACK of {version}: {got:?}, expected {expect:?}"
    );
    // The proxy keeps serving the last good configuration.
    assert_eq!(body(m.port, "/a/x").as_deref(), Some("a1"), "{version}");
    assert_eq!(body(m.port, "/split").as_deref(), Some("a1"), "{version}");
}

#[test]
fn xds_bad_resources_are_nacked_by_field_and_the_proxy_keeps_serving() {
    for driver in DRIVERS {
        let mut m = Mesh::start(driver);
        wait_acked(&mut m.ads, "v1");
        let generation = m.ctld().node("n1").unwrap().generation_desired;

        let mut bad = routes(100, 0, false);
        bad[1]["route"]["hash_policy"] = json!([{"query_parameter": {"name": "user"}}]);
        let r = with_routes(&m, bad);
        expect_nack(&mut m, "bad-field", r, "route_config \"r1\": virtual_hosts[0].routes[1].route.hash_policy[0].query_parameter: hashing by a query parameter is not supported by ringside");

        let first = m.ads.state()["nacks"][0].clone();
        assert_eq!(
            first["version"], "v1",
            "a NACK carries the last accepted version"
        );
        assert_ne!(
            first["nonce"], "",
            "and the nonce of the response it refuses"
        );

        let mut r = resources_v1(m.port, &m.a1, &m.b);
        let lua = json!({"name": "envoy.filters.http.lua"});
        r["lds"][0]["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"] =
            json!(http_filters(&[lua]));
        expect_nack(&mut m, "unknown-filter", r, "listener \"0.0.0.0_80\".filter_chains[0].filters[0].http_filters[3]: filter \"envoy.filters.http.lua\" is not supported by ringside");

        let mut missing = routes(100, 0, false);
        missing[1]["route"]["cluster"] = json!("nope");
        let r = with_routes(&m, missing);
        expect_nack(
            &mut m,
            "missing-cluster",
            r,
            "route_config \"r1\": cluster \"nope\" is not among the clusters (CDS)",
        );

        // Translated, then refused by ringside's own validation (attempts is 1 to 10).
        let mut too_many = routes(100, 0, false);
        too_many[1]["route"]["retry_policy"]["num_retries"] = json!(50);
        let r = with_routes(&m, too_many);
        expect_nack(
            &mut m,
            "invalid",
            r,
            "refused by ringside's validation: routes[1].retry.attempts",
        );

        let mut r = resources_v1(m.port, &m.a1, &m.b);
        r["cds"][1] = json!({"@bytes": "ffffffff"});
        expect_nack(&mut m, "malformed", r, "resources[1]: cannot decode");

        assert_eq!(
            m.ctld().node("n1").unwrap().generation_desired,
            generation,
            "{driver}: nothing refused was pushed"
        );
        let metrics = m.metrics();
        assert!(
            metrics.contains("ringside_ctld_xds_responses_total{type=\"rds\",outcome=\"nack\"} 3"),
            "{metrics}"
        );

        // A good one after the bad ones is served.
        let r = with_routes(&m, routes(0, 100, false));
        m.ads.set("good", r);
        wait_for("the split moved to b", WAIT, || {
            (body(m.port, "/split").as_deref() == Some("b")).then_some(())
        });
        wait_for("good acked", WAIT, || {
            (m.ads.state()["acks"]["rds"] == "good").then_some(())
        });
    }
}

#[test]
fn xds_lost_server_is_retried_with_backoff_and_a_ctld_restart_serves_what_it_had() {
    for driver in DRIVERS {
        let mut m = Mesh::start(driver);
        wait_acked(&mut m.ads, "v1");

        // The server resets the stream: ctld opens another at once (it had answers).
        m.ads.reset();
        wait_for("a second stream", WAIT, || {
            (m.ads.state()["opened"].as_array().unwrap().len() >= 2).then_some(())
        });
        assert_eq!(body(m.port, "/a/x").as_deref(), Some("a1"), "{driver}");

        // The server dies: ctld retries, each wait longer, and the proxy keeps serving.
        let ads_port = m.ads.port;
        let dead = Instant::now();
        m.ads.kill();
        for _ in 0..20 {
            assert_eq!(
                body(m.port, "/a/x").as_deref(),
                Some("a1"),
                "{driver}: served without the server"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let failures = |text: &str| -> u64 {
            text.lines()
                .find(|l| l.starts_with("ringside_ctld_xds_stream_failures_total{node=\"n1\"}"))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        let after_2s = failures(&m.metrics());
        // 250 ms, 500 ms, 1 s, 2 s... (each in the upper half of its ceiling): a handful in
        // 2 s, never one every few milliseconds.
        assert!(
            (3..=7).contains(&after_2s),
            "{driver}: {after_2s} failures in {:?}",
            dead.elapsed()
        );
        assert!(m
            .metrics()
            .contains("ringside_ctld_xds_connected{node=\"n1\"} 0"));

        // A server on the same port again: ctld reconnects within the backoff.
        m.ads = Ads::start_on(Some(ads_port));
        m.ads.set("v1", resources_v1(m.port, &m.a1, &m.b));
        wait_for(
            "a stream to the new server",
            Duration::from_secs(15),
            || m.ads.acked().map(|_| ()),
        );

        // ctld restarts while no server answers: the persisted xDS configuration is kept
        // (not the template file's), and the proxy keeps serving it.
        let generation = m.ctld().node("n1").unwrap().generation_desired;
        drop(m.ctld.take());
        m.ads.kill();
        let nobody = format!("http://127.0.0.1:{}", free_port());
        m.ctld = Some(start_ctld(&m.dirs, &ctld_args(&nobody, m.metrics)));
        wait_for("n1 back on ctld", WAIT, || {
            m.ctld()
                .node("n1")
                .filter(|n| n.connected && n.generation_acked == Some(generation))
                .map(|_| ())
        });
        std::thread::sleep(Duration::from_millis(500));
        let node = m.ctld().node("n1").unwrap();
        assert_eq!(node.generation_desired, generation, "{driver}: {node:?}");
        assert_eq!(body(m.port, "/a/x").as_deref(), Some("a1"), "{driver}");
    }
}
