//! Counters are exact: after a known mix of requests (2xx from an upstream, a direct
//! response, 404 without a route, 502 from a refused upstream, 400 for a malformed head) a
//! scrape reports exactly those counts, by listener, route, status, cluster and endpoint.

#![allow(clippy::unwrap_used)] // test helpers, like #[test] bodies

use ringside_engine::metrics::WorkerReport;
use ringside_tests::*;

fn count(reports: &[WorkerReport], route: &str, status: u16) -> u64 {
    reports
        .iter()
        .flat_map(|r| &r.requests)
        .filter(|c| c.listener == "in" && c.route == route && c.status == status)
        .map(|c| c.count)
        .sum()
}

both_drivers!(
    fn a_known_mix_is_counted_exactly(d) {
        let o = Origin::text("hi");
        let dead = closed_port();
        let p = Proxy::start(
            d,
            &toml(
                "workers = 2\n\
                 [[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n\
                 [[routes]]\nlistener = \"in\"\nname = \"ping\"\nmatch = { path_exact = \"/ping\" }\n\
                 direct_response = { status = 200, body = \"pong\" }\n\
                 [[routes]]\nlistener = \"in\"\nname = \"app\"\nmatch = { path_prefix = \"/app\" }\ncluster = \"app\"\n\
                 [[routes]]\nlistener = \"in\"\nname = \"down\"\nmatch = { path_prefix = \"/down\" }\ncluster = \"down\"\n\
                 [[clusters]]\nname = \"app\"\nendpoints = [\"$o\"]\n\
                 [[clusters]]\nname = \"down\"\nendpoints = [\"$dead\"]\n",
                &[("o", &o.addr()), ("dead", &dead)],
            ),
        );
        let addr = p.addr("in");
        let mut c = Client::connect(addr);
        for _ in 0..7 {
            assert_eq!(c.request(&get("/app/x")).status, 200);
        }
        for _ in 0..3 {
            assert_eq!(c.request(&get("/ping")).status, 200);
        }
        for _ in 0..2 {
            assert_eq!(c.request(&get("/nowhere")).status, 404);
        }
        assert_eq!(Client::connect(addr).request(&get("/down")).status, 502);
        assert_eq!(Client::connect(addr).request(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").status, 400);

        let reports = p.handle.metrics();
        assert_eq!(reports.len(), 2, "both workers answer a scrape");
        assert_eq!(count(&reports, "app", 200), 7);
        assert_eq!(count(&reports, "ping", 200), 3);
        assert_eq!(count(&reports, "", 404), 2);
        assert_eq!(count(&reports, "down", 502), 1);
        assert_eq!(count(&reports, "", 400), 1);
        let total: u64 = reports.iter().flat_map(|r| &r.requests).map(|c| c.count).sum();
        assert_eq!(total, 14, "nothing else was counted");
        let durations: u64 = reports.iter().flat_map(|r| &r.listeners).map(|l| l.duration.count).sum();
        assert_eq!(durations, 14, "every request is in the histogram");
        let accepted: u64 = reports.iter().map(|r| r.accepted).sum();
        assert_eq!(accepted, 3);

        let endpoint = |cluster: &str| {
            reports
                .iter()
                .flat_map(|r| &r.clusters)
                .filter(|c| c.cluster == cluster)
                .flat_map(|c| &c.endpoints)
                .cloned()
                .collect::<Vec<_>>()
        };
        let app = endpoint("app");
        let ok: u64 = app.iter().flat_map(|e| &e.responses).filter(|(s, _)| *s == 200).map(|(_, n)| n).sum();
        assert_eq!(ok, 7);
        assert_eq!(app.iter().map(|e| e.idle).max(), Some(1), "the keep-alive upstream connection is pooled");
        let down = endpoint("down");
        assert_eq!(down.iter().map(|e| e.connect_failures).sum::<u64>(), 1);
        assert!(down.iter().all(|e| e.responses.is_empty()));
    }
);

both_drivers!(
    fn an_endpoint_removed_by_a_reload_leaves_the_scrape(d) {
        // Endpoints come and go (EDS, DNS, reloads): a removed endpoint's series end within
        // about a second of the new configuration, as Envoy's host stats end with the host,
        // so a long-lived proxy's counters and scrape do not grow with every endpoint it
        // ever had. The endpoint that stays keeps its counts.
        let (a, b) = (Origin::text("a"), Origin::text("b"));
        let text = |endpoints: &str| {
            toml(
                &format!(
                    "[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n\
                     [[routes]]\nlistener = \"in\"\nname = \"app\"\nmatch = {{ path_prefix = \"/\" }}\ncluster = \"app\"\n\
                     [[clusters]]\nname = \"app\"\nendpoints = [{endpoints}]\n"
                ),
                &[("a", &a.addr()), ("b", &b.addr())],
            )
        };
        let p = Proxy::start(d, &text("\"$a\", \"$b\""));
        let mut c = Client::connect(p.addr("in"));
        for _ in 0..4 {
            assert_eq!(c.request(&get("/x")).status, 200);
        }
        let endpoints = |p: &Proxy| {
            let mut e: Vec<(std::net::SocketAddr, u64)> = p
                .handle
                .metrics()
                .iter()
                .flat_map(|r| &r.clusters)
                .filter(|c| c.cluster == "app")
                .flat_map(|c| &c.endpoints)
                .map(|e| (e.address, e.responses.iter().map(|(_, n)| n).sum()))
                .collect();
            e.sort();
            e
        };
        let mut both = vec![(a.addr(), 2), (b.addr(), 2)];
        both.sort();
        assert_eq!(endpoints(&p), both, "round robin over both");
        p.reload(&text("\"$a\""));
        assert!(
            eventually(std::time::Duration::from_secs(5), || endpoints(&p) == [(a.addr(), 2)]),
            "b's counters are gone, a's kept: {:?}",
            endpoints(&p)
        );
    }
);
