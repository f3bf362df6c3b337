//! Outlier ejection and active health checks (issue 11): an endpoint answering 5xx is ejected
//! and let back after its ejection time; resets count as gateway failures (and eject nothing
//! without `outlier_detection`); panic mode when every endpoint is out, or below
//! `panic_threshold_percent`, and none with a threshold of 0; at most
//! `max_ejection_percent` ejected; an endpoint whose `/healthz` flips leaves rotation and
//! comes back; a TCP check finds a closed port; a TLS cluster is checked over TLS; two workers
//! see the same marks; marks survive reloads and the prober follows them; `/clusters` shows
//! them. Times are short (ejections of a few hundred ms, checks every 100 ms).

#![allow(clippy::unwrap_used)] // test helpers, like #[test] bodies

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;

use ringside_engine::{Checked, ClusterHealth};
use ringside_tests::*;

/// An origin answering `name`, with status 503 while `failing` is set.
fn flaky(name: &'static str, failing: &Arc<AtomicBool>) -> Origin {
    let failing = Arc::clone(failing);
    Origin::start(move |_| {
        if failing.load(SeqCst) {
            Reply::Send(http_response(503, &[], name.as_bytes()))
        } else {
            ok(name)
        }
    })
}

fn flag(v: bool) -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(v))
}

/// Sends `GET /` on a new connection: (status, body).
fn once(p: &Proxy) -> (u16, String) {
    let r = Client::connect(p.addr("in")).request(&get("/"));
    (r.status, r.text())
}

fn cluster(p: &Proxy) -> ClusterHealth {
    p.handle
        .health()
        .into_iter()
        .find(|c| c.cluster == "app")
        .unwrap()
}

/// Exchanges the workers have recorded (an exchange is recorded once its response went out:
/// a client may see the response first).
fn recorded(p: &Proxy) -> u64 {
    let reports = p.handle.metrics();
    let endpoints = reports
        .iter()
        .flat_map(|w| &w.clusters)
        .flat_map(|c| &c.endpoints);
    endpoints
        .map(|e| e.responses.iter().map(|(_, n)| n).sum::<u64>() + e.errors)
        .sum()
}

const OUTLIER: &str = "[clusters.outlier_detection]\nconsecutive_5xx = 3\nconsecutive_gateway_failure = 0\n\
                       interval_ms = 100\nbase_ejection_ms = 500\nmax_ejection_ms = 2000\nmax_ejection_percent = 50\n";

both_drivers!(
    fn an_endpoint_answering_5xx_is_ejected_then_let_back(d) {
        let failing = flag(true);
        let (a, b) = (flaky("a", &failing), Origin::text("b"));
        let extra = Extra { cluster: OUTLIER, ..Extra::default() };
        let p = Proxy::start(d, &basic_config(&[a.addr(), b.addr()], extra));
        // Round robin: a answers 503 every other request until its third in a row.
        let mut from_a = 0;
        for sent in 1..=10 {
            if once(&p) == (503, "a".into()) {
                from_a += 1;
            }
            assert!(eventually(WAIT, || recorded(&p) == sent));
            if cluster(&p).ejections == 1 {
                break;
            }
        }
        assert_eq!(from_a, 3, "ejected after 3 consecutive 5xx");
        let h = cluster(&p);
        assert!(h.endpoints[0].ejected_ms > 0 && !h.endpoints[0].in_rotation(), "{h:?}");
        assert_eq!(h.endpoints[0].times_ejected, 1);
        failing.store(false, SeqCst);
        // While ejected, b takes everything.
        for _ in 0..4 {
            assert_eq!(once(&p), (200, "b".into()));
        }
        // Let back once the ejection time has passed.
        assert!(eventually(WAIT, || once(&p) == (200, "a".into())), "a never came back");
        assert_eq!(cluster(&p).endpoints[0].ejected_ms, 0);
        assert_eq!(cluster(&p).panic_requests, 0);
    }
);

both_drivers!(
    fn panic_mode_sends_to_every_endpoint_when_all_are_ejected(d) {
        let failing = flag(true);
        let (a, b) = (flaky("a", &failing), flaky("b", &failing));
        let extra = Extra {
            cluster: "[clusters.outlier_detection]\nconsecutive_5xx = 1\nbase_ejection_ms = 60000\nmax_ejection_percent = 100\n",
            ..Extra::default()
        };
        let p = Proxy::start(d, &basic_config(&[a.addr(), b.addr()], extra));
        for _ in 0..2 {
            assert_eq!(once(&p).0, 503);
        }
        assert!(eventually(WAIT, || recorded(&p) == 2));
        let h = cluster(&p);
        assert!(h.endpoints.iter().all(|e| !e.in_rotation()));
        // Both out: requests still reach the endpoints (their own 503 and body), not a local
        // "no healthy endpoint".
        failing.store(false, SeqCst);
        let mut seen = Vec::new();
        for _ in 0..4 {
            let (status, body) = once(&p);
            assert_eq!(status, 200);
            seen.push(body);
        }
        assert!(seen.contains(&"a".to_string()) && seen.contains(&"b".to_string()), "{seen:?}");
        assert_eq!(cluster(&p).panic_requests, 4);
    }
);

both_drivers!(
    fn panic_threshold_0_answers_503_when_all_are_ejected(d) {
        let failing = flag(true);
        let (a, b) = (flaky("a", &failing), flaky("b", &failing));
        let extra = Extra {
            cluster: "panic_threshold_percent = 0\n[clusters.outlier_detection]\nconsecutive_5xx = 1\nbase_ejection_ms = 60000\nmax_ejection_percent = 100\n",
            ..Extra::default()
        };
        let p = Proxy::start(d, &basic_config(&[a.addr(), b.addr()], extra));
        for _ in 0..2 {
            assert_eq!(once(&p).0, 503);
        }
        assert!(eventually(WAIT, || recorded(&p) == 2));
        assert!(cluster(&p).endpoints.iter().all(|e| !e.in_rotation()));
        failing.store(false, SeqCst);
        // Both out and no panic mode: the proxy's own 503, never the (now healthy) origins.
        for _ in 0..4 {
            let (status, body) = once(&p);
            assert_eq!(status, 503);
            assert!(body != "a" && body != "b", "{body:?}");
        }
        assert_eq!(recorded(&p), 2, "nothing more reached an endpoint");
        assert_eq!(cluster(&p).panic_requests, 0);
    }
);

both_drivers!(
    fn below_panic_threshold_percent_every_endpoint_takes_requests(d) {
        let failing = flag(true);
        let (a, b) = (flaky("a", &failing), Origin::text("b"));
        // a is ejected after one 503 and stays out; half the weight is then in rotation,
        // under the threshold of 60: panic mode sends to a and b alike.
        let extra = Extra {
            cluster: "panic_threshold_percent = 60\n[clusters.outlier_detection]\nconsecutive_5xx = 1\nbase_ejection_ms = 60000\nmax_ejection_percent = 50\n",
            ..Extra::default()
        };
        let p = Proxy::start(d, &basic_config(&[a.addr(), b.addr()], extra));
        let mut sent = 0;
        while cluster(&p).ejections == 0 {
            once(&p);
            sent += 1;
            assert!(eventually(WAIT, || recorded(&p) == sent));
            assert!(sent < 10, "a was never ejected");
        }
        assert!(!cluster(&p).endpoints[0].in_rotation());
        failing.store(false, SeqCst);
        let before = cluster(&p).panic_requests;
        let mut seen = Vec::new();
        for _ in 0..6 {
            let (status, body) = once(&p);
            assert_eq!(status, 200);
            seen.push(body);
        }
        assert!(seen.contains(&"a".to_string()) && seen.contains(&"b".to_string()), "{seen:?}");
        assert_eq!(cluster(&p).panic_requests - before, 6);
    }
);

both_drivers!(
    fn a_reload_that_adds_the_first_health_check_starts_the_prober(d) {
        let a = Origin::text("a");
        let dead = closed_port();
        let p = Proxy::start(d, &basic_config(&[a.addr(), dead], Extra::default()));
        assert_eq!(cluster(&p).endpoints[1].checked, None, "nothing is checked yet");
        let extra = Extra {
            cluster: "[clusters.health_check]\ntcp = true\ninterval_ms = 100\n",
            ..Extra::default()
        };
        p.reload(&basic_config(&[a.addr(), dead], extra));
        assert!(
            eventually(WAIT, || p.checked("app", 1) == Some(Checked::Unhealthy)),
            "the prober never checked the closed port"
        );
        assert!(eventually(WAIT, || p.checked("app", 0) == Some(Checked::Healthy)));
    }
);

both_drivers!(
    fn no_more_than_max_ejection_percent_is_ejected(d) {
        let failing = flag(true);
        let (a, b, c) = (flaky("a", &failing), flaky("b", &failing), flaky("c", &failing));
        let extra = Extra {
            cluster: "[clusters.outlier_detection]\nconsecutive_5xx = 1\nbase_ejection_ms = 60000\nmax_ejection_percent = 50\n",
            ..Extra::default()
        };
        let p = Proxy::start(d, &basic_config(&[a.addr(), b.addr(), c.addr()], extra));
        for _ in 0..9 {
            assert_eq!(once(&p).0, 503);
        }
        // One of three may always go; a second would be 67% > 50%.
        assert!(eventually(WAIT, || recorded(&p) == 9));
        let h = cluster(&p);
        assert_eq!(h.ejections, 1, "{h:?}");
        assert_eq!(h.endpoints.iter().filter(|e| !e.in_rotation()).count(), 1);
        assert_eq!(h.panic_requests, 0);
    }
);

const HEALTH_CHECK: &str = "[clusters.health_check]\nhttp_path = \"/healthz\"\ninterval_ms = 100\n\
                            timeout_ms = 80\nunhealthy_threshold = 2\nhealthy_threshold = 2\n";

both_drivers!(
    fn a_failing_health_check_takes_an_endpoint_out_and_back(d) {
        let healthy = flag(true);
        let (a, b) = (Origin::health_checked("a", &healthy), Origin::health_checked("b", &flag(true)));
        let extra = Extra { cluster: HEALTH_CHECK, ..Extra::default() };
        let p = Proxy::start(d, &basic_config(&[a.addr(), b.addr()], extra));
        assert!(eventually(WAIT, || p.checked("app", 0) == Some(Checked::Healthy)));
        let probe = a.requests().into_iter().find(|r| r.target == "/healthz").unwrap();
        assert_eq!(probe.method, "GET");
        assert_eq!(probe.header("user-agent"), Some("ringside-health"));
        assert_eq!(probe.header("host"), Some(a.addr().to_string().as_str()));

        healthy.store(false, SeqCst);
        assert!(eventually(WAIT, || p.checked("app", 0) == Some(Checked::Unhealthy)));
        for _ in 0..6 {
            assert_eq!(once(&p), (200, "b".into()), "an unhealthy endpoint is out of rotation");
        }
        healthy.store(true, SeqCst);
        assert!(eventually(WAIT, || p.checked("app", 0) == Some(Checked::Healthy)));
        assert!(eventually(WAIT, || once(&p) == (200, "a".into())), "a never came back");
        let h = cluster(&p);
        assert_eq!((h.became_unhealthy, h.became_healthy), (1, 1), "{h:?}");
        assert!(h.check_failures >= 2, "{h:?}");
        assert_eq!(h.panic_requests, 0);
    }
);

both_drivers!(
    fn a_tcp_check_finds_a_closed_port(d) {
        let dead = closed_port();
        let b = Origin::text("b");
        let extra = Extra {
            cluster: "[clusters.health_check]\ntcp = true\ninterval_ms = 100\n",
            ..Extra::default()
        };
        let p = Proxy::start(d, &basic_config(&[dead, b.addr()], extra));
        assert!(eventually(WAIT, || p.checked("app", 0) == Some(Checked::Unhealthy)));
        assert!(eventually(WAIT, || p.checked("app", 1) == Some(Checked::Healthy)));
        for _ in 0..6 {
            assert_eq!(once(&p), (200, "b".into()));
        }
        // The dead endpoint was never tried: the check kept it out.
        let tried: u64 = p
            .handle
            .metrics()
            .iter()
            .flat_map(|w| &w.clusters)
            .flat_map(|c| &c.endpoints)
            .filter(|e| e.address == dead)
            .map(|e| e.connect_failures)
            .sum();
        assert_eq!(tried, 0);
        // A TCP check sends nothing: b saw connections but no request other than ours.
        assert!(b.requests().iter().all(|r| r.target == "/"));
    }
);

both_drivers!(
    fn two_workers_see_the_same_marks(d) {
        let failing = flag(true);
        let (a, b) = (flaky("a", &failing), Origin::text("b"));
        let extra = Extra {
            proxy: "workers = 2",
            cluster: "[clusters.outlier_detection]\nconsecutive_5xx = 2\nbase_ejection_ms = 60000\nmax_ejection_percent = 50\n",
            ..Extra::default()
        };
        let p = Proxy::start(d, &basic_config(&[a.addr(), b.addr()], extra));
        assert!(eventually(WAIT, || {
            once(&p);
            cluster(&p).ejections == 1
        }));
        // New connections land on both workers; none of them sends to a any more.
        for _ in 0..20 {
            assert_eq!(once(&p), (200, "b".into()));
        }
        let per_worker: Vec<u64> = p
            .handle
            .metrics()
            .iter()
            .map(|w| w.requests.iter().map(|r| r.count).sum())
            .collect();
        assert_eq!(per_worker.len(), 2);
        assert!(per_worker.iter().all(|n| *n > 0), "both workers served: {per_worker:?}");
    }
);

both_drivers!(
    fn clusters_json_shows_ejections_and_checks(d) {
        let a = Origin::health_checked("a", &flag(false));
        // b passes its checks but answers 503 to requests.
        let b = Origin::start(|r| match r.target.as_str() {
            "/healthz" => ok("up"),
            _ => Reply::Send(http_response(503, &[], b"b")),
        });
        let extra = Extra { cluster: &format!("{OUTLIER}{HEALTH_CHECK}"), ..Extra::default() };
        let p = Proxy::start(d, &basic_config(&[a.addr(), b.addr()], extra));
        assert!(eventually(WAIT, || p.checked("app", 0) == Some(Checked::Unhealthy)));
        // a is out: b takes every request, and its three 503s eject it (panic mode follows).
        assert!(eventually(WAIT, || p.checked("app", 1) == Some(Checked::Healthy)));
        for _ in 0..3 {
            assert_eq!(once(&p), (503, "b".into()));
        }
        assert!(eventually(WAIT, || recorded(&p) == 3));
        let totals = ringside_proxy::admin::totals::Totals::merge(&p.handle.metrics());
        let v = ringside_proxy::admin::json::clusters(&p.handle.snapshot(), &totals, &p.handle.health());
        let c = &v["clusters"][0];
        assert_eq!(c["ejections"], 1, "{c}");
        assert_eq!(c["healthy_endpoints"], 0, "{c}");
        assert_eq!(c["health_check"]["http_path"], "/healthz", "{c}");
        assert_eq!(c["outlier_detection"]["consecutive_5xx"], 3, "{c}");
        let (ea, eb) = (&c["endpoints"][0], &c["endpoints"][1]);
        assert_eq!(ea["health"], "unhealthy", "{ea}");
        assert_eq!(ea["health_check"], "unhealthy", "{ea}");
        assert_eq!(eb["health"], "ejected", "{eb}");
        assert_eq!(eb["times_ejected"], 1, "{eb}");
        assert!(eb["ejected_ms"].as_u64().unwrap() > 0, "{eb}");
    }
);

both_drivers!(
    fn marks_survive_reloads_and_the_prober_follows_them(d) {
        let (a, b) = (flaky("a", &flag(true)), Origin::text("b"));
        let outlier = "[clusters.outlier_detection]\nconsecutive_5xx = 1\nbase_ejection_ms = 60000\nmax_ejection_percent = 50\n";
        let config = |endpoints: &[std::net::SocketAddr], route: &str, check: &str| {
            let cluster = format!("{outlier}{check}");
            basic_config(endpoints, Extra { route, cluster: &cluster, ..Extra::default() })
        };
        let p = Proxy::start(d, &config(&[a.addr(), b.addr()], "", ""));
        assert!(eventually(WAIT, || {
            once(&p);
            cluster(&p).ejections == 1
        }));
        assert!(cluster(&p).endpoints[0].ejected_ms > 0, "a is the one ejected");
        // A reload that changes the route only, then one that changes the cluster (a new
        // endpoint, a health check): a stays ejected through both.
        p.reload(&config(&[a.addr(), b.addr()], "timeout_ms = 5000", ""));
        assert!(cluster(&p).endpoints[0].ejected_ms > 0);
        let dead = closed_port();
        let check = "[clusters.health_check]\ntcp = true\ninterval_ms = 100\n";
        p.reload(&config(&[a.addr(), b.addr(), dead], "timeout_ms = 5000", check));
        assert!(eventually(WAIT, || p.checked("app", 2) == Some(Checked::Unhealthy)), "the new endpoint is checked");
        let h = cluster(&p);
        assert!(h.endpoints[0].ejected_ms > 0 && h.ejections == 1, "{h:?}");
        for _ in 0..4 {
            assert_eq!(once(&p), (200, "b".into()));
        }
        // Without the check, its verdicts no longer count.
        p.reload(&config(&[a.addr(), b.addr(), dead], "timeout_ms = 5000", ""));
        assert_eq!(p.checked("app", 2), None);
    }
);

both_drivers!(
    fn a_tls_cluster_is_checked_over_tls(d) {
        let pki = ringside_tests::certs::TestPki::new();
        let (cert, key) = pki.leaf("orders", &["orders.internal"], &[]);
        let healthy = flag(true);
        let o = Origin::health_checked("o", &healthy);
        // A TLS front for the origin: a plaintext check of it could never pass.
        let listener = format!(
            "tls = {{ certificates = [ {{ cert = \"{}\", key = \"{}\" }} ] }}",
            cert.display(),
            key.display()
        );
        let front = Proxy::start(d, &basic_config(&[o.addr()], Extra { listener: &listener, ..Extra::default() }));
        let cluster_lines = format!(
            "tls = {{ ca = \"{}\", sni = \"orders.internal\" }}\n{HEALTH_CHECK}",
            pki.ca_path().display()
        );
        let p = Proxy::start(d, &basic_config(&[front.addr("in")], Extra { cluster: &cluster_lines, ..Extra::default() }));
        assert!(eventually(WAIT, || p.checked("app", 0) == Some(Checked::Healthy)));
        let probe = o.requests().into_iter().find(|r| r.target == "/healthz").unwrap();
        assert_eq!(probe.header("host"), Some("orders.internal"), "Host is the cluster's sni");
        healthy.store(false, SeqCst);
        assert!(eventually(WAIT, || p.checked("app", 0) == Some(Checked::Unhealthy)));
    }
);

both_drivers!(
    fn resets_count_as_gateway_failures(d) {
        // a closes every connection without answering (502 to the client); b answers.
        let (a, b) = (Origin::start(|_| Reply::Close), Origin::text("b"));
        let extra = Extra {
            cluster: "[clusters.outlier_detection]\nconsecutive_5xx = 0\nconsecutive_gateway_failure = 2\nbase_ejection_ms = 60000\nmax_ejection_percent = 50\n",
            ..Extra::default()
        };
        let p = Proxy::start(d, &basic_config(&[a.addr(), b.addr()], extra));
        let mut resets = 0;
        for sent in 1..=10 {
            if once(&p).0 == 502 {
                resets += 1;
            }
            assert!(eventually(WAIT, || recorded(&p) == sent));
            if cluster(&p).ejections == 1 {
                break;
            }
        }
        assert_eq!(resets, 2, "ejected after 2 resets in a row");
        assert!(cluster(&p).endpoints[0].ejected_ms > 0);
        for _ in 0..4 {
            assert_eq!(once(&p), (200, "b".into()));
        }
    }
);

both_drivers!(
    fn without_outlier_detection_a_reset_ejects_nothing(d) {
        let (a, b) = (Origin::start(|_| Reply::Close), Origin::text("b"));
        let p = Proxy::start(d, &basic_config(&[a.addr(), b.addr()], Extra::default()));
        for _ in 0..6 {
            once(&p);
        }
        assert!(eventually(WAIT, || recorded(&p) == 6));
        assert_eq!(cluster(&p).ejections, 0, "the default counts failed connects only");
    }
);
