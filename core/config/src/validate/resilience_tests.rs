//! Fault injection, rate limits and circuit breakers: what is accepted, and every mistake
//! with its path.

use std::time::Duration;

use super::tests::errors;
use crate::model::{CircuitBreaker, Config, ListenerKind, RateLimit};
use crate::parse;

fn ok(text: &str) -> Config {
    parse(&super::tests::with_listener(text))
        .unwrap_or_else(|e| panic!("expected a valid config, got:\n{e}"))
}

const BASE: &str = r#"
[[listeners]]
name = "outbound"
bind = "127.0.0.1:0"

[[clusters]]
name = "orders"
endpoints = [ "127.0.0.1:9001" ]
"#;

/// The issue's contract, as written.
#[test]
fn the_contract_keys_are_accepted() {
    let c = ok(&format!(
        r#"{BASE}
[[routes]]
listener = "outbound"
name = "orders"
match = {{ path_prefix = "/orders/" }}
cluster = "orders"
fault = {{ delay = {{ fixed_ms = 200, percent = 10.0 }}, abort = {{ status = 503, percent = 1.0 }} }}
rate_limit = {{ requests_per_second = 500, burst = 1000 }}

[[clusters]]
name = "limited"
circuit_breaker = {{ max_connections = 1024, max_pending_requests = 1024, max_requests = 1024 }}
"#
    ));
    let ListenerKind::Http(http) = &c.listeners[0].kind else {
        panic!("http")
    };
    let route = &http.routes[0];
    let fault = route.fault.as_ref().expect("fault");
    let delay = fault.delay.as_ref().expect("delay");
    assert_eq!(delay.fixed, Some(Duration::from_millis(200)));
    assert_eq!(delay.percent, 10.0);
    let abort = fault.abort.as_ref().expect("abort");
    assert_eq!(
        (abort.status, abort.grpc_status, abort.percent),
        (Some(503), None, 1.0)
    );
    assert!(!fault.header_control);
    assert_eq!(route.rate_limit, Some(RateLimit::new(500, 1000)));
    assert_eq!(http.rate_limit, None);
    let limited = c
        .clusters
        .iter()
        .find(|c| c.name == "limited")
        .expect("cluster");
    assert_eq!(
        limited.circuit_breaker,
        Some(CircuitBreaker::new(Some(1024), Some(1024), Some(1024)))
    );
    // Unset: no breaker at all (no limit, no cost), not Envoy's defaults.
    assert_eq!(c.clusters[0].circuit_breaker, None);
}

#[test]
fn defaults_of_the_optional_keys() {
    let c = ok(&format!(
        r#"{BASE}
[listeners.rate_limit]
requests_per_second = 20

[[routes]]
listener = "outbound"
cluster = "orders"
fault = {{ header_control = true, delay = {{ percent = 50.0 }}, abort = {{ percent = 100.0 }} }}

[[clusters]]
name = "limited"
circuit_breaker = {{ max_requests = 10 }}
"#
    ));
    let ListenerKind::Http(http) = &c.listeners[0].kind else {
        panic!("http")
    };
    // The burst defaults to one second's worth.
    assert_eq!(http.rate_limit, Some(RateLimit::new(20, 20)));
    let fault = http.routes[0].fault.as_ref().expect("fault");
    assert!(fault.header_control);
    assert_eq!(fault.delay.as_ref().and_then(|d| d.fixed), None);
    let limited = c
        .clusters
        .iter()
        .find(|c| c.name == "limited")
        .expect("cluster");
    assert_eq!(
        limited.circuit_breaker,
        Some(CircuitBreaker::new(None, None, Some(10)))
    );
}

#[test]
fn mistakes_carry_their_path_and_reason() {
    let e = errors(&format!(
        r#"{BASE}
[listeners.rate_limit]
requests_per_second = 0
burst = 0

[[routes]]
listener = "outbound"
cluster = "orders"
fault = {{ delay = {{ fixed_ms = 0, percent = 100.5 }}, abort = {{ status = 150, grpc_status = 17, percent = -1.0 }} }}
rate_limit = {{ requests_per_second = 1000000001, burst = 4294967296 }}

[[routes]]
listener = "outbound"
cluster = "orders"
fault = {{ delay = {{ percent = 1.0 }}, abort = {{ percent = 1.0 }} }}

[[routes]]
listener = "outbound"
fault = {{ }}
direct_response = {{ status = 200 }}

[[clusters]]
name = "limited"
circuit_breaker = {{ max_connections = 0, max_pending_requests = 4294967296, max_requests = 0 }}
"#
    ));
    assert_eq!(
        e,
        [
            "listeners[0].rate_limit.requests_per_second: must be from 1 to 1000000000, got 0",
            "listeners[0].rate_limit.burst: must be from 1 to 4294967295, got 0",
            "routes[0].fault.delay.fixed_ms: must be greater than 0",
            "routes[0].fault.delay.percent: must be a percentage from 0.0 to 100.0, got 100.5",
            "routes[0].fault.abort.status: must be from 200 to 599, got 150",
            "routes[0].fault.abort.grpc_status: must be a gRPC status code from 0 to 16, got 17",
            "routes[0].fault.abort.percent: must be a percentage from 0.0 to 100.0, got -1",
            "routes[0].rate_limit.requests_per_second: must be from 1 to 1000000000, got 1000000001",
            "routes[0].rate_limit.burst: must be from 1 to 4294967295, got 4294967296",
            "routes[1].fault.delay: missing field \"fixed_ms\", required unless header_control = true",
            "routes[1].fault.abort: needs status, grpc_status or both (or header_control = true)",
            "routes[2].fault: needs delay, abort or both",
            "routes[2].fault: not valid on a direct_response route (no request is forwarded)",
            "clusters[1].circuit_breaker.max_connections: must be from 1 to 4294967295, got 0",
            "clusters[1].circuit_breaker.max_pending_requests: must be from 1 to 4294967295, got 4294967296",
            "clusters[1].circuit_breaker.max_requests: must be from 1 to 4294967295, got 0",
        ]
    );
}

#[test]
fn unknown_keys_and_tcp_listeners_are_refused() {
    let e = errors(&format!(
        r#"{BASE}
[[listeners]]
name = "db"
bind = "127.0.0.1:0"
protocol = "tcp"
cluster = "orders"
rate_limit = {{ requests_per_second = 1 }}
"#
    ));
    assert_eq!(
        e,
        ["listeners[1].rate_limit: only valid on protocol = \"http\" listeners"]
    );
    let e = errors(&format!(
        "{BASE}\n[[routes]]\nlistener = \"outbound\"\ncluster = \"orders\"\nfault = {{ abort = {{ status = 503, percent = 1.0, typo = 1 }} }}\n"
    ));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("routes[0].fault.abort"), "{e:?}");
    assert!(e[0].contains("typo"), "{e:?}");
}

#[test]
fn breakers_are_in_the_cluster_fingerprint() {
    let with = |limits: &str| {
        let c = ok(&format!(
            "[[clusters]]\nname = \"c\"\ncircuit_breaker = {{ {limits} }}\n"
        ));
        c.clusters[0].fingerprint
    };
    assert_eq!(with("max_requests = 10"), with("max_requests = 10"));
    assert_ne!(with("max_requests = 10"), with("max_requests = 11"));
    assert_ne!(with("max_requests = 10"), with("max_connections = 10"));
}
