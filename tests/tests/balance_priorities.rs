//! Priority levels (`endpoints[].priority`): level 0 takes every request while enough of it
//! is in rotation; as active health checks take its endpoints out, the next level takes the
//! share level 0 cannot (Envoy's arithmetic: a level's share in rotation × 1.4), and the one
//! after that what level 1 cannot; below a whole, with `panic_threshold_percent`, a level
//! short of endpoints sends to all of them. Every balancing policy, both drivers.

#![allow(clippy::unwrap_used)] // test helpers, like #[test] bodies

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;

use ringside_engine::Checked;
use ringside_tests::*;

const NAMES: [&str; 7] = ["p1", "p2", "p3", "p4", "q1", "q2", "r"];
const LEVEL0: [&str; 4] = ["p1", "p2", "p3", "p4"];
const LEVEL1: [&str; 2] = ["q1", "q2"];
const N: usize = 1000;

fn count(seen: &HashMap<String, usize>, who: &[&str]) -> usize {
    who.iter().map(|w| seen.get(*w).copied().unwrap_or(0)).sum()
}

/// Four endpoints at priority 0, two at 1, one at 2; `extra`: more cluster keys.
fn config(lb: &str, origins: &[Origin], extra: &str) -> String {
    let priority = [0, 0, 0, 0, 1, 1, 2];
    let endpoints: Vec<String> = origins
        .iter()
        .zip(priority)
        .map(|(o, p)| format!("{{ address = \"{}\", priority = {p} }}", o.addr()))
        .collect();
    let hash = if lb == "ring_hash" {
        "hash_key = \"header:x-user\"\n"
    } else {
        ""
    };
    let cluster = format!("lb = \"{lb}\"\n{hash}{extra}{HEALTH_CHECK}");
    let extra = Extra {
        proxy: "workers = 1",
        cluster: &cluster,
        ..Extra::default()
    };
    endpoints_config(&endpoints, extra)
}

struct Setup {
    flags: Vec<Arc<AtomicBool>>,
    p: Proxy,
    _origins: Vec<Origin>,
}

impl Setup {
    fn start(d: Driver, lb: &str, extra: &str) -> Setup {
        let flags: Vec<Arc<AtomicBool>> = NAMES
            .iter()
            .map(|_| Arc::new(AtomicBool::new(true)))
            .collect();
        let origins: Vec<Origin> = NAMES
            .iter()
            .zip(&flags)
            .map(|(n, f)| Origin::health_checked(n, f))
            .collect();
        let p = Proxy::start(d, &config(lb, &origins, extra));
        let s = Setup {
            flags,
            p,
            _origins: origins,
        };
        s.set(&[]);
        s
    }

    /// Takes the endpoints `down` out (by their health checks), the others back in, and
    /// waits until the proxy has seen it.
    fn set(&self, down: &[usize]) {
        for (i, f) in self.flags.iter().enumerate() {
            f.store(!down.contains(&i), SeqCst);
        }
        for i in 0..NAMES.len() {
            let want = if down.contains(&i) {
                Checked::Unhealthy
            } else {
                Checked::Healthy
            };
            assert!(
                eventually(WAIT, || self.p.checked("app", i) == Some(want)),
                "endpoint {i} {want:?}"
            );
        }
    }

    /// Who answered `n` requests (each with its own `x-user`, for ring hash).
    fn spread(&self, n: usize) -> HashMap<String, usize> {
        spread(&self.p, n, |i| {
            format!("GET / HTTP/1.1\r\nHost: t\r\nx-user: u{i}\r\n\r\n").into_bytes()
        })
    }
}

/// The issue's failover, with one balancing policy.
fn failover(d: Driver, lb: &str) {
    let s = Setup::start(d, lb, "");

    // All healthy: level 0 takes every request, spread over its four.
    let seen = s.spread(N);
    assert_eq!(count(&seen, &LEVEL0), N, "{lb}: {seen:?}");
    for e in LEVEL0 {
        assert!(count(&seen, &[e]) >= 120, "{lb}: {seen:?}");
    }

    // One of four out: 75% × 1.4 is still a whole level.
    s.set(&[0]);
    let seen = s.spread(N);
    assert_eq!(count(&seen, &["p2", "p3", "p4"]), N, "{lb}: {seen:?}");

    // Two of four out: 50% × 1.4 = 70% stays (700 of 1,000, sd 14.5), level 1 takes 30%,
    // level 2 nothing.
    s.set(&[0, 1]);
    let seen = s.spread(N);
    let (zero, one) = (count(&seen, &LEVEL0), count(&seen, &LEVEL1));
    assert_eq!(zero + one, N, "{lb}: {seen:?}");
    assert_eq!(count(&seen, &["p1", "p2"]), 0, "{lb}: {seen:?}");
    assert!(
        (640..=760).contains(&zero),
        "{lb}: {zero} on level 0: {seen:?}"
    );

    // Level 0 all out, one of level 1's two: level 1 is 70%, level 2 takes 30%.
    s.set(&[0, 1, 2, 3, 4]);
    let seen = s.spread(N);
    let (one, two) = (count(&seen, &["q2"]), count(&seen, &["r"]));
    assert_eq!(one + two, N, "{lb}: {seen:?}");
    assert!(
        (640..=760).contains(&one),
        "{lb}: {one} on level 1: {seen:?}"
    );

    // Back to healthy: back to level 0.
    s.set(&[]);
    let seen = s.spread(100);
    assert_eq!(count(&seen, &LEVEL0), 100, "{lb}: {seen:?}");
}

both_drivers!(
    fn round_robin_fails_over_level_by_level(d) {
        failover(d, "round_robin");
    }
);

both_drivers!(
    fn random_fails_over_level_by_level(d) {
        failover(d, "random");
    }
);

both_drivers!(
    fn least_request_fails_over_level_by_level(d) {
        failover(d, "least_request");
    }
);

both_drivers!(
    fn ring_hash_fails_over_level_by_level(d) {
        failover(d, "ring_hash");
    }
);

both_drivers!(
    fn a_level_short_of_endpoints_panics_only_below_a_whole(d) {
        let s = Setup::start(d, "round_robin", "panic_threshold_percent = 50\n");
        // Level 0: one of four (35%), level 1 and 2 out: 35% in all, below a whole. Level 0
        // takes everything (normalized), and at 25% in rotation it is in panic mode: its
        // four endpoints take requests, in rotation or not (they answer; only /healthz
        // says they are down).
        s.set(&[1, 2, 3, 4, 5, 6]);
        let seen = s.spread(400);
        assert_eq!(count(&seen, &LEVEL0), 400, "{seen:?}");
        for e in LEVEL0 {
            assert!(count(&seen, &[e]) >= 60, "panic mode spreads over level 0: {seen:?}");
        }
        // Level 2 back: the levels add up to a whole, no panic: level 0 keeps its 35% on
        // p1, level 2 takes the rest.
        s.set(&[1, 2, 3, 4, 5]);
        let seen = s.spread(N);
        let (p1, r) = (count(&seen, &["p1"]), count(&seen, &["r"]));
        assert_eq!(p1 + r, N, "{seen:?}");
        assert!((290..=410).contains(&p1), "{p1} on p1: {seen:?}");
        let panics: u64 = s.p.handle.health().iter().map(|c| c.panic_requests).sum();
        assert!(panics >= 400, "the panic-mode picks are counted: {panics}");
    }
);

both_drivers!(
    fn an_endpoint_down_by_configuration_counts_in_its_level(d) {
        // p1 and p2 down by configuration, p3 and p4 in rotation: level 0 at 2 of 4 keeps
        // 70%, as with two unhealthy endpoints (EDS's UNHEALTHY, translated by ctld).
        let origins: Vec<Origin> = NAMES
            .iter()
            .map(|n| Origin::health_checked(n, &Arc::new(AtomicBool::new(true))))
            .collect();
        let text = config("round_robin", &origins, "").replacen(", priority = 0 }", ", priority = 0, down = true }", 2);
        let p = Proxy::start(d, &text);
        let health = p.handle.health();
        let app = health.iter().find(|c| c.cluster == "app").unwrap();
        let said: Vec<&str> = app.endpoints.iter().map(|e| e.health()).collect();
        assert_eq!(said[..3], ["down", "down", "healthy"]);
        let seen = spread(&p, N, |_| get("/"));
        let zero = count(&seen, &["p3", "p4"]);
        assert_eq!(count(&seen, &["p1", "p2"]), 0, "{seen:?}");
        assert_eq!(zero + count(&seen, &LEVEL1), N, "{seen:?}");
        assert!((640..=760).contains(&zero), "{zero} on level 0: {seen:?}");
    }
);
