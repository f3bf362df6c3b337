//! Retries against misbehaving origins of our own, on both drivers: a retry goes to another
//! endpoint, the retry budget holds across two workers under load, a 1 MiB body is sent
//! once and not retried, the route timeout bounds every try and backoff, a gRPC call that
//! failed UNAVAILABLE is retried (grpcio on both ends), and the retry metrics say why.
//! Each behaviour over every protocol is also a row of the behaviour table.

#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringside_engine::metrics::WorkerReport;
use ringside_tests::python::{grpc_client, PyServer};
use ringside_tests::*;

/// An origin answering `status` with its name as the body.
fn answering(status: u16, name: &'static str) -> Origin {
    Origin::start(move |_| Reply::Send(http_response(status, &[], name.as_bytes())))
}

/// Counts by label.
type Counts = Vec<(&'static str, u64)>;

/// The retry counters of cluster `app` summed over the workers: by reason, by outcome.
fn retry_counts(reports: &[WorkerReport]) -> (Counts, Counts) {
    let mut retries: Counts = Vec::new();
    let mut outcomes: Counts = Vec::new();
    let add = |into: &mut Counts, (k, n): &(&'static str, u64)| match into
        .iter_mut()
        .find(|(have, _)| have == k)
    {
        Some((_, m)) => *m += n,
        None => into.push((k, *n)),
    };
    for r in reports {
        for c in r.clusters.iter().filter(|c| c.cluster == "app") {
            c.retries.iter().for_each(|x| add(&mut retries, x));
            c.retry_outcomes.iter().for_each(|x| add(&mut outcomes, x));
        }
    }
    (retries, outcomes)
}

fn count(of: &[(&'static str, u64)], key: &str) -> u64 {
    of.iter().find(|(k, _)| *k == key).map_or(0, |(_, n)| *n)
}

both_drivers!(
    fn a_retry_goes_to_another_endpoint(d) {
        let (a, b) = (answering(503, "a"), answering(200, "b"));
        let extra = Extra {
            route: "[routes.retry]\nattempts = 1\non = [\"gateway-error\"]\nbackoff = { base_ms = 1 }",
            ..Extra::default()
        };
        let p = Proxy::start(d, &basic_config(&[a.addr(), b.addr()], extra));
        let mut c = Client::connect(p.addr("in"));
        for i in 0..20 {
            let r = c.request(&get("/"));
            assert_eq!((r.status, r.text()), (200, "b".to_string()), "request {i}");
        }
        // Every request that met a first was retried on b, never on a again.
        let retried_at_b = b
            .requests()
            .iter()
            .filter(|r| r.header("x-ringside-attempt") == Some("2"))
            .count();
        assert!(a.requests().len() >= 10, "round robin sends a its share first");
        assert_eq!(retried_at_b, a.requests().len());
        assert!(a.requests().iter().all(|r| r.header("x-ringside-attempt") == Some("1")));
        let (retries, outcomes) = retry_counts(&p.handle.metrics());
        assert_eq!(count(&retries, "status"), a.requests().len() as u64);
        assert_eq!(count(&outcomes, "succeeded"), a.requests().len() as u64);
    }
);

both_drivers!(
    fn the_budget_caps_retries_across_workers_under_load(d) {
        let origin = answering(503, "down");
        // Nothing but the floor: 1 retry a second, 10 in the 10 s window, for the process.
        let extra = Extra {
            proxy: "workers = 2",
            route: "[routes.retry]\nattempts = 3\non = [\"gateway-error\"]\nbackoff = { base_ms = 1 }",
            cluster: "retry_budget = { ratio = 0.0, min_per_second = 1 }",
            ..Extra::default()
        };
        let p = Proxy::start(d, &basic_config(&[origin.addr()], extra));
        let addr = p.addr("in");
        let threads: Vec<_> = (0..8)
            .map(|_| {
                std::thread::spawn(move || {
                    let mut c = Client::connect(addr);
                    (0..15).filter(|_| c.request(&get("/")).status == 503).count()
                })
            })
            .collect();
        let answered: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(answered, 120, "every request gets the origin's 503 once the budget is spent");
        // 120 first tries and 10 retries; two workers racing for the last retry may both take it.
        let received = origin.requests().len();
        assert!((130..=131).contains(&received), "the origin received {received}");
        let (retries, outcomes) = retry_counts(&p.handle.metrics());
        let made = count(&retries, "status");
        assert_eq!(made as usize, received - 120);
        assert_eq!(count(&outcomes, "over-budget"), 120 - count(&outcomes, "exhausted"));
    }
);

both_drivers!(
    fn a_body_over_the_replay_buffer_is_sent_once(d) {
        let seen = Arc::new(AtomicUsize::new(0));
        let tries = seen.clone();
        // 503 to the first request, 200 afterwards.
        let origin = Origin::start(move |r| {
            let status = if tries.fetch_add(1, Ordering::SeqCst) == 0 { 503 } else { 200 };
            Reply::Send(http_response(status, &[], r.body.len().to_string().as_bytes()))
        });
        let extra = Extra {
            route: "[routes.retry]\nattempts = 2\non = [\"gateway-error\"]",
            ..Extra::default()
        };
        let p = Proxy::start(d, &basic_config(&[origin.addr()], extra));
        let mut c = Client::connect(p.addr("in"));
        let body = pattern(0, 1 << 20);
        let mut req = format!("PUT /big HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        req.extend_from_slice(&body);
        let r = c.request(&req);
        assert_eq!((r.status, r.text()), (503, (1 << 20).to_string()), "the 1 MiB PUT is not retried");
        assert_eq!(origin.requests().len(), 1);
        assert_eq!(origin.request(0).body, body);
        let (retries, outcomes) = retry_counts(&p.handle.metrics());
        assert_eq!(count(&retries, "status"), 0);
        assert_eq!(count(&outcomes, "body-too-large"), 1);
        // A small one is kept and sent again.
        seen.store(0, Ordering::SeqCst);
        let r = c.request(b"PUT /small HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
        assert_eq!((r.status, r.text()), (200, "5".to_string()));
        assert_eq!(origin.request(2).body, b"hello");
    }
);

both_drivers!(
    fn the_route_timeout_bounds_every_try_and_wait(d) {
        let origin = Origin::start(|_| {
            std::thread::sleep(Duration::from_millis(400));
            ok("late")
        });
        let extra = Extra {
            route: "timeout_ms = 500\n[routes.retry]\nattempts = 5\nper_try_timeout_ms = 150\non = [\"gateway-error\"]\nbackoff = { base_ms = 10, max_ms = 20 }",
            ..Extra::default()
        };
        let p = Proxy::start(d, &basic_config(&[origin.addr()], extra));
        let mut c = Client::connect(p.addr("in"));
        let started = Instant::now();
        let r = c.request(&get("/"));
        let took = started.elapsed();
        assert_eq!(r.status, 504);
        assert!(took >= Duration::from_millis(450) && took < Duration::from_millis(900), "{took:?}");
        // Three tries of 150 ms (and their waits) fit in 500 ms; a fourth was cut by the route.
        assert!(eventually(Duration::from_secs(2), || origin.requests().len() >= 3));
        assert!(origin.requests().len() <= 4, "{}", origin.requests().len());
        let (retries, _) = retry_counts(&p.handle.metrics());
        assert!(count(&retries, "per-try-timeout") >= 2, "{retries:?}");
    }
);

both_drivers!(
    fn grpc_unavailable_is_retried_for_a_real_client(d) {
        let server = PyServer::grpc();
        let extra = Extra {
            cluster: "protocol = \"http2\"",
            route: "[routes.retry]\non = [\"unavailable\"]\nmethods = [\"POST\"]\nbackoff = { base_ms = 5 }",
            ..Extra::default()
        };
        let p = Proxy::start(d, &basic_config(&[server.addr()], extra));
        let target = p.addr("in").to_string();
        let key = format!("{}-{}", d.toml(), std::process::id());
        let r = grpc_client(&target, "unary", &["hello", "--metadata", &format!("x-fail-first=UNAVAILABLE:{key}-a")]);
        assert_eq!(r["code"], "OK", "{r}");
        assert_eq!(r["responses"][0], "hello");
        assert_eq!(r["trailing_metadata"]["x-tries"], "2", "{r}");
        // A status the policy does not name reaches the client on the first try.
        let r = grpc_client(&target, "unary", &["hello", "--metadata", &format!("x-fail-first=INTERNAL:{key}-b")]);
        assert_eq!(r["code"], "INTERNAL", "{r}");
        assert_eq!(r["trailing_metadata"]["x-tries"], "1", "{r}");
        let (retries, _) = retry_counts(&p.handle.metrics());
        assert_eq!(count(&retries, "grpc-status"), 1);
    }
);
