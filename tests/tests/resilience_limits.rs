//! Process-wide limits under load, with two workers: a circuit breaker tripping under a burst
//! of 200 concurrent clients (the origin never sees more requests in flight than the limit,
//! whichever worker took them), a connection limit, and a listener's token bucket shared by
//! both workers (what passes is the burst plus the rate over the time, not twice that).
//! Every test is bounded: fixed numbers of clients and requests, and `WAIT` on each read.

#![allow(clippy::unwrap_used)] // test helpers, like #[test] bodies

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use ringside_engine::metrics::WorkerReport;
use ringside_tests::*;

/// An origin that holds each request `stall` before answering 200, and records the most
/// requests it held at once.
fn stalling_origin(stall: Duration) -> (Origin, Arc<AtomicUsize>) {
    let inside = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (i, p) = (Arc::clone(&inside), Arc::clone(&peak));
    let origin = Origin::start(move |_| {
        let now = i.fetch_add(1, Ordering::SeqCst) + 1;
        p.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(stall);
        i.fetch_sub(1, Ordering::SeqCst);
        ok("done")
    });
    (origin, peak)
}

/// A proxy with two workers in front of `origin`; `extra` adds keys as [`basic_config`] does.
fn two_workers(d: Driver, origin: &Origin, extra: Extra<'_>) -> Proxy {
    let extra = Extra {
        proxy: "workers = 2",
        ..extra
    };
    Proxy::start(d, &basic_config(&[origin.addr()], extra))
}

/// Breaker overflows of `cluster` and `limit` summed over the workers.
fn overflows(reports: &[WorkerReport], cluster: &str, limit: &str) -> u64 {
    reports
        .iter()
        .flat_map(|r| &r.clusters)
        .filter(|c| c.cluster == cluster)
        .flat_map(|c| &c.overflows)
        .filter(|(l, _)| *l == limit)
        .map(|(_, n)| n)
        .sum()
}

/// Requests each worker answered on listener `in`, whatever their status.
fn per_worker(reports: &[WorkerReport]) -> Vec<u64> {
    reports
        .iter()
        .map(|r| r.requests.iter().map(|c| c.count).sum())
        .collect()
}

/// What `n` clients, started together, each got for one `GET path` on its own connection:
/// (status, overloaded header, how long the answer took).
fn burst(addr: std::net::SocketAddr, n: usize, path: &'static str) -> Vec<(u16, bool, Duration)> {
    let start = Arc::new(Barrier::new(n));
    let clients: Vec<_> = (0..n)
        .map(|_| {
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                start.wait();
                let sent = Instant::now();
                let r = c.request(&get(path));
                let overloaded = r.header("x-ringside-overloaded") == Some("true");
                (r.status, overloaded, sent.elapsed())
            })
        })
        .collect();
    clients.into_iter().map(|c| c.join().unwrap()).collect()
}

both_drivers!(
    fn a_breaker_trips_under_a_burst_of_200_clients(d) {
        let stall = Duration::from_millis(300);
        let (o, peak) = stalling_origin(stall);
        let p = two_workers(
            d,
            &o,
            Extra {
                cluster: "circuit_breaker = { max_requests = 10 }",
                ..Extra::default()
            },
        );
        let answers = burst(p.addr("in"), 200, "/x");
        let passed = answers.iter().filter(|a| a.0 == 200).count();
        let refused: Vec<_> = answers.iter().filter(|a| a.0 == 503 && a.1).collect();
        assert_eq!(
            passed + refused.len(),
            200,
            "every answer is a 200 or a 503 overloaded: {answers:?}"
        );
        assert!(passed >= 10, "the first ten pass: {passed}");
        assert!(refused.len() >= 50, "most of the burst is refused: {}", refused.len());
        // The limit is the process's, not each worker's: never more than 10 at the origin.
        let peak = peak.load(Ordering::SeqCst);
        assert!((1..=10).contains(&peak), "at most 10 in flight at the origin, saw {peak}");
        // Refused at once, without waiting for a place.
        let slowest = refused.iter().map(|a| a.2).max().unwrap();
        assert!(slowest < stall, "a refusal took {slowest:?}");
        let reports = p.handle.metrics();
        let served = per_worker(&reports);
        assert!(served.len() == 2 && served.iter().all(|n| *n > 0), "both workers served: {served:?}");
        assert_eq!(
            overflows(&reports, "app", "max_requests"),
            refused.len() as u64,
            "every refusal is counted"
        );
        // Once the burst is over, requests pass again.
        assert_eq!(Client::connect(p.addr("in")).request(&get("/after")).status, 200);
    }
);

both_drivers!(
    fn max_connections_bounds_the_connections_to_the_cluster(d) {
        let (o, peak) = stalling_origin(Duration::from_millis(200));
        let p = two_workers(
            d,
            &o,
            Extra {
                cluster: "circuit_breaker = { max_connections = 3 }",
                ..Extra::default()
            },
        );
        let answers = burst(p.addr("in"), 30, "/x");
        let passed = answers.iter().filter(|a| a.0 == 200).count();
        let refused = answers.iter().filter(|a| a.0 == 503 && a.1).count();
        assert_eq!(passed + refused, 30, "{answers:?}");
        assert!(passed >= 3 && refused >= 1, "{passed} passed, {refused} refused");
        assert!(peak.load(Ordering::SeqCst) <= 3);
        // Pooled connections keep their places: the origin never saw more than three.
        assert!(o.connections() <= 3, "{} connections", o.connections());
        assert_eq!(
            overflows(&p.handle.metrics(), "app", "max_connections"),
            refused as u64
        );
    }
);

both_drivers!(
    fn a_listener_bucket_is_shared_by_both_workers(d) {
        let o = Origin::text("hi");
        let (rate, burst_size) = (20.0, 20.0);
        let p = two_workers(
            d,
            &o,
            Extra {
                listener: "rate_limit = { requests_per_second = 20, burst = 20 }",
                ..Extra::default()
            },
        );
        let addr = p.addr("in");
        // Sixteen connections (spread over both workers by SO_REUSEPORT), asking as fast
        // as they are answered for about a second.
        let started = Instant::now();
        let until = started + Duration::from_millis(1000);
        let (passed, limited) = hammer(addr, 16, until, &get("/x"), |r| {
            assert_eq!(r.header("ratelimit-limit"), Some("20"));
            assert_eq!(r.header("ratelimit-remaining"), Some("0"));
            assert_eq!(r.header("retry-after"), Some("1"));
            assert_eq!(r.header("ratelimit-reset"), Some("1"));
        });
        let t = started.elapsed().as_secs_f64();
        // The burst, plus the rate over the time (and one token of slack either way); a
        // bucket per worker would let about twice that through.
        let most = (burst_size + rate * t).ceil() as u64 + 1;
        assert!(passed >= burst_size as u64, "{passed} passed");
        assert!(passed <= most, "{passed} passed in {t:.2} s, at most {most} expected");
        assert!(limited > 0);
        // One bucket for the process, whatever the number of workers.
        assert_eq!(p.handle.shared_state("ratelimit/"), 1);
        let reports = p.handle.metrics();
        let served = per_worker(&reports);
        assert!(served.len() == 2 && served.iter().all(|n| *n > 0), "both workers served: {served:?}");
        let counted: u64 = reports
            .iter()
            .flat_map(|r| &r.listeners)
            .flat_map(|l| &l.rate_limited)
            .filter(|(route, _)| route.is_empty())
            .map(|(_, n)| n)
            .sum();
        assert_eq!(counted, limited, "every refusal is counted, as the listener's");
    }
);

both_drivers!(
    /// A real gRPC client (Python grpcio) sees a fault abort's `grpc_status`, and a clean
    /// call on a route without faults. (RESOURCE_EXHAUSTED from a rate limit is a row of the
    /// behaviour table: a bucket that refills once a second is no match for a client that
    /// takes a process start per call.)
    fn a_grpc_client_gets_the_fault_abort_status(d) {
        use ringside_tests::python::{grpc_client, PyServer};
        let server = PyServer::grpc();
        let p = Proxy::start(
            d,
            &toml(
                "[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n\
                 [[routes]]\nlistener = \"in\"\nname = \"faulty\"\nmatch = { headers = { \"x-fault\" = \"yes\" } }\n\
                 cluster = \"grpc\"\nfault = { abort = { status = 503, grpc_status = 10, percent = 100.0 } }\n\
                 [[routes]]\nlistener = \"in\"\nname = \"clean\"\ncluster = \"grpc\"\n\
                 [[clusters]]\nname = \"grpc\"\nprotocol = \"http2\"\nendpoints = [\"$s\"]\n",
                &[("s", &server.addr())],
            ),
        );
        let target = p.addr("in").to_string();
        let r = grpc_client(&target, "unary", &["hello", "--metadata", "x-fault=yes"]);
        assert_eq!(r["code"], "ABORTED", "{r}");
        let r = grpc_client(&target, "unary", &["hello"]);
        assert_eq!(r["code"], "OK", "{r}");
        assert_eq!(r["responses"][0], "hello");
    }
);

both_drivers!(
    /// A reload that keeps a bucket's listener, route and settings keeps its tokens (an
    /// emptied bucket stays empty); one that changes its settings starts a full one.
    fn a_reload_keeps_a_bucket_it_does_not_change(d) {
        let o = Origin::text("hi");
        let config = |burst: u32, extra_route: &str| {
            basic_config(
                &[o.addr()],
                Extra {
                    route: &format!("rate_limit = {{ requests_per_second = 1, burst = {burst} }}\n{extra_route}"),
                    ..Extra::default()
                },
            )
        };
        let p = Proxy::start(d, &config(1, ""));
        let status = || Client::connect(p.addr("in")).request(&get("/x")).status;
        assert_eq!(status(), 200);
        assert_eq!(status(), 429);
        // Another route added: the bucket of route `all` is the same one, still empty.
        p.reload(&config(
            1,
            "[[routes]]\nlistener = \"in\"\nname = \"other\"\nmatch = { path_prefix = \"/other\" }\ncluster = \"app\"\n",
        ));
        assert_eq!(status(), 429);
        // A new burst is a new bucket, full.
        p.reload(&config(2, ""));
        assert_eq!(status(), 200);
        assert_eq!(status(), 200);
        assert_eq!(status(), 429);
    }
);
