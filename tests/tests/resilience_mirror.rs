//! Mirroring on both drivers: a mirror origin receives copies while the main path's answers
//! and their latency are unaffected, copies in flight are bounded (the rest dropped and
//! counted), a body over the replay buffer is not copied, and `percent` copies a share.
//! The protocol matrix (HTTP/1.1, h2c, TLS; HTTP/1.1 and HTTP/2 origins) is in the behaviour
//! table's "mirror" rows.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use ringside_tests::*;

/// A config with route `all` to `main`, mirrored to `shadow` with `mirror` (inline table
/// keys).
fn mirrored(main: &Origin, shadow: &Origin, mirror: &str, proxy: &str) -> String {
    toml(
        r#"
$proxy
[[listeners]]
name = "in"
bind = "127.0.0.1:0"
[[routes]]
listener = "in"
name = "all"
cluster = "main"
mirror = { cluster = "shadow", $mirror }
[[clusters]]
name = "main"
endpoints = [ "$main" ]
[[clusters]]
name = "shadow"
endpoints = [ "$shadow" ]
"#,
        &[
            ("proxy", &proxy),
            ("mirror", &mirror),
            ("main", &main.addr()),
            ("shadow", &shadow.addr()),
        ],
    )
}

/// The mirror counters of cluster `shadow`, summed over the workers.
fn mirror_count(p: &Proxy, result: &str) -> u64 {
    p.handle
        .metrics()
        .iter()
        .flat_map(|r| r.clusters.iter().filter(|c| c.cluster == "shadow"))
        .flat_map(|c| c.mirrors.iter().filter(|(k, _)| *k == result))
        .map(|(_, n)| n)
        .sum()
}

both_drivers!(
    fn a_slow_mirror_changes_neither_answers_nor_latency(d) {
        let main = Origin::text("main");
        let shadow = Origin::start(|r| {
            std::thread::sleep(Duration::from_millis(300));
            ok(&format!("shadow saw {}", r.body.len()))
        });
        let p = Proxy::start(d, &mirrored(&main, &shadow, "host_suffix = \"-shadow\"", ""));
        let mut c = Client::connect(p.addr("in"));
        let started = Instant::now();
        for i in 0..5 {
            let r = c.request(b"PUT /x HTTP/1.1\r\nHost: orders:8080\r\nContent-Length: 3\r\n\r\nabc");
            assert_eq!((r.status, r.text()), (200, "main".to_string()), "request {i}");
        }
        // Five answers in well under one slow copy's time.
        assert!(started.elapsed() < Duration::from_millis(300), "{:?}", started.elapsed());
        assert!(eventually(Duration::from_secs(5), || shadow.requests().len() == 5));
        for r in shadow.requests() {
            assert_eq!(r.header("host"), Some("orders-shadow:8080"));
            assert_eq!(r.body, b"abc");
            assert!(r.has_header("x-request-id") && r.has_header("x-forwarded-for"));
        }
        assert_eq!(main.requests()[0].header("host"), Some("orders:8080"));
        assert!(eventually(Duration::from_secs(5), || mirror_count(&p, "answered") == 5));
    }
);

both_drivers!(
    fn copies_in_flight_are_bounded(d) {
        let main = Origin::text("main");
        let shadow = Origin::start(|_| {
            std::thread::sleep(Duration::from_millis(500));
            ok("shadow")
        });
        let p = Proxy::start(d, &mirrored(&main, &shadow, "max_in_flight = 2", ""));
        let mut c = Client::connect(p.addr("in"));
        for _ in 0..10 {
            assert_eq!(c.request(&get("/")).status, 200);
        }
        assert!(eventually(Duration::from_secs(5), || mirror_count(&p, "answered") == 2));
        assert_eq!(shadow.requests().len(), 2);
        assert_eq!(mirror_count(&p, "dropped-busy"), 8);
        assert_eq!(main.requests().len(), 10);
    }
);

both_drivers!(
    fn a_body_over_the_replay_buffer_is_not_copied(d) {
        let main = Origin::start(|r| ok(&r.body.len().to_string()));
        let shadow = Origin::text("shadow");
        let p = Proxy::start(d, &mirrored(&main, &shadow, "percent = 100.0", ""));
        let mut c = Client::connect(p.addr("in"));
        let body = pattern(0, 100_000);
        let mut req = format!("POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        req.extend_from_slice(&body);
        let r = c.request(&req);
        assert_eq!((r.status, r.text()), (200, "100000".to_string()));
        assert_eq!(main.request(0).body, body);
        assert_eq!(mirror_count(&p, "dropped-body-too-large"), 1);
        // 64 KiB is kept, and copied.
        let body = pattern(0, 65_536);
        let mut req = format!("POST /fits HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        req.extend_from_slice(&body);
        assert_eq!(c.request(&req).status, 200);
        assert!(eventually(Duration::from_secs(5), || shadow.requests().len() == 1));
        assert_eq!(shadow.request(0).body, body);
    }
);

both_drivers!(
    fn percent_copies_a_share_across_workers(d) {
        let main = Origin::text("main");
        let shadow = Origin::text("shadow");
        let p = Proxy::start(d, &mirrored(&main, &shadow, "percent = 25.0", "workers = 2"));
        let addr = p.addr("in");
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || {
                    let mut c = Client::connect(addr);
                    (0..100).all(|_| c.request(&get("/")).status == 200)
                })
            })
            .collect();
        assert!(threads.into_iter().all(|t| t.join().unwrap()));
        assert!(eventually(Duration::from_secs(5), || mirror_count(&p, "answered") as usize == shadow.requests().len()));
        // 100 expected of 400; 60 and 140 are more than 4.5 standard deviations away.
        let copied = shadow.requests().len();
        assert!((60..=140).contains(&copied), "{copied} of 400 copied");
    }
);
