//! Global rate limits: `[[redis]]` and a route's `rate_limit` with `redis` — the contract as
//! written, and every mistake with its path.

use std::time::Duration;

use super::tests::{errors, ok};
use crate::model::{GlobalRateLimit, ListenerKind, RateLimit, RedisServer};
use crate::RateLimitKey;

const BASE: &str = r#"
[[listeners]]
name = "public"
bind = "127.0.0.1:0"

[[clusters]]
name = "local-app"
endpoints = [ "127.0.0.1:9001" ]
"#;

#[test]
fn the_contract_as_written() {
    let text = format!(
        r#"{BASE}
[proxy]
role = "gateway"

[[redis]]
name = "limits"
address = "127.0.0.1:6379"
timeout_ms = 20

[[redis]]
name = "other"
address = "[::1]:6380"

[[consumers]]
name = "mobile-app"
api_keys = [ {{ key = "k1" }} ]

[[routes]]
listener = "public"
name = "orders-api"
authn = {{ api_key = {{ header = "x-api-key" }} }}
rate_limit = {{ key = "consumer", requests_per_minute = 600, redis = "limits" }}
cluster = "local-app"

[[routes]]
listener = "public"
name = "by-tenant"
rate_limit = {{ key = "header:x-tenant", requests_per_second = 50, redis = "other", fail_closed = true }}
cluster = "local-app"

[[routes]]
listener = "public"
name = "local"
rate_limit = {{ requests_per_second = 5 }}
cluster = "local-app"
"#
    );
    let c = ok(&text);
    let limits = RedisServer::new(
        "limits",
        "127.0.0.1:6379".parse().unwrap(),
        Duration::from_millis(20),
    );
    let other = RedisServer::new(
        "other",
        "[::1]:6380".parse().unwrap(),
        Duration::from_millis(20),
    );
    assert_eq!(c.redis, [limits.clone(), other.clone()]);
    let ListenerKind::Http(http) = &c.listeners[0].kind else {
        panic!("http listener");
    };
    let orders = &http.routes[0];
    assert_eq!(
        orders.global_rate_limit,
        Some(GlobalRateLimit::new(limits, 600, 60, false))
    );
    assert_eq!(
        orders.rate_limit, None,
        "a global limit is not also a local one"
    );
    assert_eq!(orders.rate_limit_key, RateLimitKey::Consumer);
    let tenant = &http.routes[1];
    assert_eq!(
        tenant.global_rate_limit,
        Some(GlobalRateLimit::new(other, 50, 1, true))
    );
    assert_eq!(
        tenant.rate_limit_key,
        RateLimitKey::Header("x-tenant".into())
    );
    assert_eq!(http.routes[2].global_rate_limit, None);
    assert_eq!(http.routes[2].rate_limit, Some(RateLimit::new(5, 5)));
}

#[test]
fn mistakes_have_a_path_and_a_reason() {
    let text = format!(
        r#"{BASE}
[proxy]
role = "gateway"

[[redis]]
name = "limits"
address = "localhost:6379"
timeout_ms = 0

[[redis]]
name = "limits"
address = "127.0.0.1:6379"

[[redis]]
name = "slow"
address = "127.0.0.1:6379"
timeout_ms = 10001

[[redis]]
name = "typo"
adress = "127.0.0.1:6379"

[[routes]]
listener = "public"
rate_limit = {{ requests_per_minute = 600, redis = "x" }}
cluster = "local-app"

[[routes]]
listener = "public"
rate_limit = {{ requests_per_minute = 600, requests_per_second = 10, redis = "limits" }}
cluster = "local-app"

[[routes]]
listener = "public"
rate_limit = {{ requests_per_second = 0, burst = 5, redis = "typo" }}
cluster = "local-app"

[[routes]]
listener = "public"
rate_limit = {{ requests_per_minute = 600, fail_closed = true }}
cluster = "local-app"

[[listeners]]
name = "other"
bind = "127.0.0.1:0"
rate_limit = {{ requests_per_second = 1, redis = "limits" }}
"#
    );
    assert_eq!(
        errors(&text),
        [
            "listeners[1].rate_limit.redis: only a route's rate_limit can be global (kept in Redis)",
            "routes[0].rate_limit.redis: no [[redis]] named \"x\"",
            "routes[1].rate_limit: a global limit needs exactly one of requests_per_second and requests_per_minute",
            // "typo" did not deserialize: the route naming it is not told it is unknown.
            "routes[2].rate_limit.burst: not with redis: a global limit counts fixed windows, which have no burst",
            "routes[2].rate_limit.requests_per_second: must be from 1 to 4294967295, got 0",
            "routes[3].rate_limit.requests_per_minute: only for a global limit (with redis = \"<name of a [[redis]]>\"); a local limit is requests_per_second and burst",
            "routes[3].rate_limit.fail_closed: only for a global limit (with redis = \"<name of a [[redis]]>\"); a local limit is requests_per_second and burst",
            "routes[3].rate_limit: missing field \"requests_per_second\"",
            "redis[0].address: invalid socket address \"localhost:6379\": write IP:port",
            "redis[0].timeout_ms: must be from 1 to 10000, got 0",
            "redis[1].name: duplicate redis name \"limits\" (also redis[0].name)",
            "redis[2].timeout_ms: must be from 1 to 10000, got 10001",
            "redis[3].adress: unknown field \"adress\", expected one of \"name\", \"address\", \"timeout_ms\"",
        ]
    );
}

#[test]
fn a_sidecar_refuses_global_limits() {
    let text = format!(
        r#"{BASE}
[[redis]]
name = "limits"
address = "127.0.0.1:6379"

[[routes]]
listener = "public"
rate_limit = {{ requests_per_second = 10, redis = "limits" }}
cluster = "local-app"
"#
    );
    assert_eq!(
        errors(&text),
        [
            "routes[0].rate_limit.redis: needs [proxy] role = \"gateway\": the sidecar's pipeline has no stage that reads it",
            "redis[0]: needs [proxy] role = \"gateway\": the sidecar's pipeline has no stage that reads it",
        ]
    );
}
