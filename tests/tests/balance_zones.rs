//! Zone-aware balancing (issue 14, §5): with `[proxy] zone = "z1"` and `zone_aware = true`,
//! 1,000 requests stay on the local endpoints while they are healthy; when health checks take
//! local endpoints out, the local zone keeps `healthy share ÷ zone_min_healthy_percent` of the
//! requests and the rest spill to the other zones in proportion to their weights; with no
//! local endpoint left, everything spills. The per-zone counters count every exchange.

#![allow(clippy::unwrap_used)] // test helpers, like #[test] bodies

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;

use ringside_engine::Checked;
use ringside_tests::*;

fn count(seen: &HashMap<String, usize>, who: &[&str]) -> usize {
    who.iter().map(|w| seen.get(*w).copied().unwrap_or(0)).sum()
}

/// Exchanges counted per zone, summed over the workers.
fn zone_counts(p: &Proxy) -> HashMap<String, u64> {
    let mut zones = HashMap::new();
    for w in p.handle.metrics() {
        for c in w.clusters.iter().filter(|c| c.cluster == "app") {
            for (zone, n) in &c.zones {
                *zones.entry(zone.clone()).or_insert(0) += n;
            }
        }
    }
    zones
}

const LOCAL: [&str; 3] = ["a1", "a2", "a3"];
const N: usize = 1000;

fn config(lb: &str, origins: &[&Origin]) -> String {
    let zones = ["z1", "z1", "z1", "z2", "z3"];
    let endpoints: Vec<String> = origins
        .iter()
        .zip(zones)
        .map(|(o, z)| format!("{{ address = \"{}\", zone = \"{z}\" }}", o.addr()))
        .collect();
    let cluster = format!("lb = \"{lb}\"\nzone_aware = true\n{HEALTH_CHECK}");
    let extra = Extra {
        proxy: "zone = \"z1\"\nworkers = 1",
        cluster: &cluster,
        ..Extra::default()
    };
    endpoints_config(&endpoints, extra)
}

/// Runs the scenario with one balancing policy.
fn scenario(d: Driver, lb: &str) {
    let flags: Vec<Arc<AtomicBool>> = (0..5).map(|_| Arc::new(AtomicBool::new(true))).collect();
    let names = ["a1", "a2", "a3", "b", "c"];
    let origins: Vec<Origin> = names
        .iter()
        .zip(&flags)
        .map(|(n, f)| Origin::health_checked(n, f))
        .collect();
    let p = Proxy::start(d, &config(lb, &origins.iter().collect::<Vec<_>>()));
    for i in 0..5 {
        assert!(
            eventually(WAIT, || p.checked("app", i) == Some(Checked::Healthy)),
            "endpoint {i}"
        );
    }

    // All local endpoints healthy: every request stays in z1, spread over the three.
    let seen = spread(&p, N, |_| get("/"));
    assert_eq!(count(&seen, &LOCAL), N, "{lb}: {seen:?}");
    for a in LOCAL {
        assert!(count(&seen, &[a]) >= 250, "{lb}: {seen:?}");
    }

    // One of three local endpoints out: 66.7% healthy ÷ 70% keeps 95.2% local (952 of
    // 1,000; sd 6.8), the rest split between z2 and z3.
    flags[0].store(false, SeqCst);
    assert!(eventually(WAIT, || p.checked("app", 0) == Some(Checked::Unhealthy)));
    let seen = spread(&p, N, |_| get("/"));
    let local = count(&seen, &LOCAL);
    assert_eq!(count(&seen, &["a1"]), 0, "{lb}: {seen:?}");
    assert!(
        (900..=990).contains(&local),
        "{lb}: {local} local of {N}: {seen:?}"
    );
    assert!(
        count(&seen, &["b"]) >= 5 && count(&seen, &["c"]) >= 5,
        "{lb}: {seen:?}"
    );

    // Two out: 33.3% ÷ 70% keeps 47.6% local (476; sd 15.8); z2 and z3 take the rest
    // about equally (262 each; sd 13.9).
    flags[1].store(false, SeqCst);
    assert!(eventually(WAIT, || p.checked("app", 1) == Some(Checked::Unhealthy)));
    let seen = spread(&p, N, |_| get("/"));
    let local = count(&seen, &LOCAL);
    assert_eq!(count(&seen, &["a1", "a2"]), 0, "{lb}: {seen:?}");
    assert!(
        (400..=560).contains(&local),
        "{lb}: {local} local of {N}: {seen:?}"
    );
    for other in ["b", "c"] {
        assert!(
            (190..=340).contains(&count(&seen, &[other])),
            "{lb}: {seen:?}"
        );
    }

    // No local endpoint left: everything spills, in proportion.
    flags[2].store(false, SeqCst);
    assert!(eventually(WAIT, || p.checked("app", 2) == Some(Checked::Unhealthy)));
    let seen = spread(&p, N, |_| get("/"));
    assert_eq!(count(&seen, &LOCAL), 0, "{lb}: {seen:?}");
    for other in ["b", "c"] {
        assert!(
            (400..=600).contains(&count(&seen, &[other])),
            "{lb}: {seen:?}"
        );
    }

    // Back to healthy: back home.
    for f in &flags[..3] {
        f.store(true, SeqCst);
    }
    for i in 0..3 {
        assert!(
            eventually(WAIT, || p.checked("app", i) == Some(Checked::Healthy)),
            "endpoint {i}"
        );
    }
    let seen = spread(&p, 100, |_| get("/"));
    assert_eq!(count(&seen, &LOCAL), 100, "{lb}: {seen:?}");

    // Every exchange was counted under its endpoint's zone.
    let zones = zone_counts(&p);
    let total: u64 = zones.values().sum();
    assert_eq!(total, 4 * N as u64 + 100, "{zones:?}");
    assert!(zones["z2"] > 0 && zones["z3"] > 0, "{zones:?}");
}

both_drivers!(
    fn round_robin_stays_in_the_zone_and_spills_in_proportion(d) {
        scenario(d, "round_robin");
    }
);

both_drivers!(
    fn random_stays_in_the_zone_and_spills_in_proportion(d) {
        scenario(d, "random");
    }
);

both_drivers!(
    fn least_request_stays_in_the_zone_and_spills_in_proportion(d) {
        scenario(d, "least_request");
    }
);

both_drivers!(
    fn zone_weights_share_requests_by_weight_times_health(d) {
        // z1 (weight 80): a1, a2; z2 (weight 20): b; z3 (no weight): c takes nothing.
        let flags: Vec<Arc<AtomicBool>> = (0..4).map(|_| Arc::new(AtomicBool::new(true))).collect();
        let names = ["a1", "a2", "b", "c"];
        let origins: Vec<Origin> = names
            .iter()
            .zip(&flags)
            .map(|(n, f)| Origin::health_checked(n, f))
            .collect();
        let zones = ["z1", "z1", "z2", "z3"];
        let endpoints: Vec<String> = origins
            .iter()
            .zip(zones)
            .map(|(o, z)| format!("{{ address = \"{}\", zone = \"{z}\" }}", o.addr()))
            .collect();
        let cluster = format!("zone_weights = {{ z1 = 80, z2 = 20 }}\n{HEALTH_CHECK}");
        let extra = Extra { proxy: "workers = 1", cluster: &cluster, ..Extra::default() };
        let p = Proxy::start(d, &endpoints_config(&endpoints, extra));
        for i in 0..4 {
            assert!(eventually(WAIT, || p.checked("app", i) == Some(Checked::Healthy)), "endpoint {i}");
        }
        // 80/20 (800 of 1,000 in z1, sd 12.6).
        let seen = spread(&p, N, |_| get("/"));
        assert_eq!(count(&seen, &["c"]), 0, "{seen:?}");
        let z1 = count(&seen, &["a1", "a2"]);
        assert!((740..=860).contains(&z1), "{z1} in z1: {seen:?}");
        // a1 out: z1 at 50% × 1.4 = 70% health, 56 against 20: 73.7% (sd 13.9).
        flags[0].store(false, SeqCst);
        assert!(eventually(WAIT, || p.checked("app", 0) == Some(Checked::Unhealthy)));
        let seen = spread(&p, N, |_| get("/"));
        let z1 = count(&seen, &["a2"]);
        assert_eq!(count(&seen, &["a1", "c"]), 0, "{seen:?}");
        assert!((670..=800).contains(&z1), "{z1} in z1: {seen:?}");
    }
);
