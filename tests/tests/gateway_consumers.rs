//! The gateway's consumers over real sockets, with two workers: a consumer's own bucket is
//! the process's (what its requests get through is the burst plus the rate over the time,
//! not twice that), a route's bucket keyed by a header limits each value alone, failures
//! and consumers are counted, and a sidecar refuses the gateway's keys. The per-protocol
//! behaviours (401s, headers, query keys, gRPC) are rows of the behaviour table. Every test
//! is bounded: fixed numbers of clients, a deadline, and `WAIT` on each read.

#![allow(clippy::unwrap_used)] // test helpers, like #[test] bodies

use std::time::{Duration, Instant};

use ringside_engine::metrics::WorkerReport;
use ringside_tests::*;

/// `GET path` with these extra header lines.
fn get_with(path: &str, headers: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n{headers}\r\n").into_bytes()
}

/// A gateway with two workers in front of `origin`: listener `in` gets `listener` lines,
/// route `all` gets `route` lines, and `tail` is appended (consumers).
fn gateway(d: Driver, origin: &Origin, listener: &str, route: &str, tail: &str) -> Proxy {
    let cluster = format!("{tail}\n");
    Proxy::start(
        d,
        &basic_config(
            &[origin.addr()],
            Extra {
                proxy: "workers = 2\nrole = \"gateway\"",
                listener,
                route,
                // After the cluster's own lines: new top-level tables.
                cluster: &cluster,
            },
        ),
    )
}

/// Requests each worker answered, whatever their status.
fn per_worker(reports: &[WorkerReport]) -> Vec<u64> {
    reports
        .iter()
        .map(|r| r.requests.iter().map(|c| c.count).sum())
        .collect()
}

both_drivers!(
    fn a_consumer_bucket_is_shared_by_both_workers(d) {
        let o = Origin::text("hi");
        let (rate, burst) = (20.0, 20.0);
        let p = gateway(
            d,
            &o,
            "",
            "authn = { api_key = {} }",
            "[[consumers]]\nname = \"app\"\napi_keys = [ { key = \"k1\" } ]\n\
             rate_limit = { requests_per_second = 20, burst = 20 }\n",
        );
        let addr = p.addr("in");
        let started = Instant::now();
        let until = started + Duration::from_millis(1000);
        let (passed, limited) = hammer(addr, 16, until, &get_with("/x", "x-api-key: k1\r\n"), |r| {
            assert_eq!(r.header("ratelimit-limit"), Some("20"));
            assert_eq!(r.header("retry-after"), Some("1"));
        });
        let t = started.elapsed().as_secs_f64();
        // The burst plus the rate over the time (one token of slack); a bucket per worker
        // would let about twice that through.
        let most = (burst + rate * t).ceil() as u64 + 1;
        assert!(passed >= burst as u64, "{passed} passed");
        assert!(passed <= most, "{passed} passed in {t:.2} s, at most {most} expected");
        assert!(limited > 0);
        let reports = p.handle.metrics();
        let served = per_worker(&reports);
        assert!(
            served.len() == 2 && served.iter().all(|n| *n > 0),
            "both workers served: {served:?}"
        );
        // Counted by consumer: every authenticated request, and the refused ones.
        let (mut requests, mut refused) = (0, 0);
        for (name, c) in reports.iter().flat_map(|r| &r.listeners).flat_map(|l| &l.consumers) {
            assert_eq!(name, "app");
            requests += c.requests;
            refused += c.rate_limited;
        }
        assert_eq!((requests, refused), (passed, limited));
        // Not a route's refusals.
        let route_refusals: u64 = reports
            .iter()
            .flat_map(|r| &r.listeners)
            .flat_map(|l| &l.rate_limited)
            .map(|(_, n)| n)
            .sum();
        assert_eq!(route_refusals, 0);
    }
);

both_drivers!(
    /// Each value of the header has a bucket of its own; a request without the header is
    /// keyed by its client address. (Two keys may share a slot of the route's table, 1 in
    /// 4096 for each pair: then the second tenant would be refused early, and this test
    /// fail once in a few thousand runs.)
    fn a_route_bucket_keyed_by_a_header(d) {
        let o = Origin::text("hi");
        let p = gateway(
            d,
            &o,
            "",
            "rate_limit = { key = \"header:x-tenant\", requests_per_second = 1, burst = 2 }",
            "",
        );
        let status = |headers: &str| {
            Client::connect(p.addr("in"))
                .request(&get_with("/x", headers))
                .status
        };
        for tenant in ["x-tenant: t1\r\n", "x-tenant: t2\r\n", ""] {
            assert_eq!(status(tenant), 200, "{tenant:?}");
            assert_eq!(status(tenant), 200, "{tenant:?}");
            assert_eq!(status(tenant), 429, "{tenant:?}");
        }
        let refused: u64 = p
            .handle
            .metrics()
            .iter()
            .flat_map(|r| &r.listeners)
            .flat_map(|l| &l.rate_limited)
            .filter(|(route, _)| route == "all")
            .map(|(_, n)| n)
            .sum();
        assert_eq!(refused, 3, "counted as the route's refusals");
        assert_eq!(o.requests().len(), 6);
    }
);

both_drivers!(
    /// Missing and unknown keys are counted by route and reason; the upstream sees the
    /// consumer and never the key; the access log names the consumer.
    fn failures_and_consumers_are_counted(d) {
        let o = Origin::text("hi");
        let log = std::env::temp_dir().join(format!(
            "ringside-consumers-{}-{}.log",
            std::process::id(),
            d.toml()
        ));
        let _ = std::fs::remove_file(&log);
        let p = gateway(
            d,
            &o,
            &format!("access_log = {{ path = \"{}\", format = \"json\" }}", log.display()),
            "authn = { api_key = { query = \"apikey\" } }",
            "[[consumers]]\nname = \"app\"\napi_keys = [ { key = \"k1\" } ]\n",
        );
        let status = |path: &str, headers: &str| {
            Client::connect(p.addr("in"))
                .request(&get_with(path, headers))
                .status
        };
        assert_eq!(status("/x", ""), 401);
        assert_eq!(status("/x", "x-api-key: nope\r\n"), 401);
        assert_eq!(status("/x?apikey=nope", ""), 401);
        assert_eq!(status("/x?apikey=k1&y=2", "x-consumer-name: root\r\n"), 200);
        let seen = o.requests();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].target, "/x?y=2");
        assert_eq!(seen[0].header_all("x-consumer-name"), ["app"]);
        let mut failures: Vec<(String, &str, u64)> = Vec::new();
        for r in p.handle.metrics() {
            for l in &r.listeners {
                for (route, reason, n) in &l.authn_failures {
                    match failures.iter_mut().find(|f| f.0 == *route && f.1 == *reason) {
                        Some(f) => f.2 += n,
                        None => failures.push((route.clone(), reason, *n)),
                    }
                }
            }
        }
        failures.sort();
        assert_eq!(
            failures,
            [("all".to_string(), "missing", 1), ("all".to_string(), "unknown", 2)]
        );
        // The access log names the consumer of the authenticated request only.
        let mut lines = Vec::new();
        assert!(eventually(WAIT, || {
            lines = std::fs::read_to_string(&log)
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect();
            lines.len() >= 4
        }));
        // (Two workers write their lines in whichever order they finish.)
        let named = lines.iter().filter(|l| l.contains(r#""consumer":"app""#)).count();
        let nobody = lines.iter().filter(|l| l.contains(r#""consumer":null"#)).count();
        assert_eq!((named, nobody), (1, 3), "{lines:#?}");
        let _ = std::fs::remove_file(&log);
    }
);

/// A sidecar would ignore the gateway's keys and leave the route open: the configuration is
/// refused, with the path of each key and the reason.
#[test]
fn a_sidecar_refuses_the_gateway_keys() {
    let text = basic_config(
        &["127.0.0.1:9".parse().unwrap()],
        Extra {
            route: "authn = { api_key = {} }",
            cluster: "[[consumers]]\nname = \"app\"\napi_keys = [ { key = \"k1\" } ]\n",
            ..Extra::default()
        },
    );
    let errors = ringside_config::parse(&text).unwrap_err().to_string();
    for path in ["routes[0].authn: ", "consumers[0]: "] {
        assert!(
            errors.contains(&format!(
                "{path}needs [proxy] role = \"gateway\": the sidecar's pipeline has no stage that reads it"
            )),
            "{path} in {errors}"
        );
    }
    // The same file as a gateway is valid.
    let gateway = format!("[proxy]\nrole = \"gateway\"\n{text}");
    assert!(ringside_config::parse(&gateway).is_ok());
}
