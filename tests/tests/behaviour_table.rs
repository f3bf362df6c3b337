//! The behaviour table: every behaviour of the proxy (one row each) over every downstream
//! protocol (HTTP/1.1, h2c, HTTP/1.1 over TLS, h2 over TLS) and both upstream protocols (an
//! HTTP/1.1 origin and an HTTP/2 origin), on both I/O drivers. The expected answers are those
//! of docs/life-of-a-request.md ("What the proxy answers itself", "Headers") and
//! docs/config.md. One run shows the whole matrix; every failing cell is reported as
//! `row × downstream × upstream × driver` before the test fails.
//!
//! Set-up per driver: four origins (`a` and `b`, each as HTTP/1.1 and HTTP/2) answering by
//! path ([`script`]), and two proxies:
//! - **core** ([`CORE_LISTENER`], [`CORE_ROUTES`], [`CORE_CLUSTERS`]): four listeners, a
//!   plaintext one (HTTP/1.1 and h2c) and a TLS one (`mtls = "permissive"`: ALPN h2 or
//!   http/1.1, a client certificate optional) for each upstream protocol; the same routes on
//!   each, whose clusters are `NAME-h1` or `NAME-h2` (`protocol = "http2"`) after the
//!   listener's upstream. They are `transparent` (nothing redirects to them: an
//!   `original_dst` cluster has nowhere to go).
//! - **edits** ([`EDITS_LISTENER`]): the same four listeners with the header-edit keys
//!   (`request_headers_to_add`, ...), and a route without a `name`. A proxy that does not
//!   know these keys refuses the configuration: then only the rows on it fail.
//! - **consumers** ([`CONSUMERS_LISTENER`], [`CONSUMERS`]): a gateway
//!   (`role = "gateway"`) with the same four listeners, `[[consumers]]`, a JWT provider,
//!   routes with `authn = { api_key = ... }` or `{ jwt = [...], api_key = {} }`, a
//!   `rate_limit` keyed by a header, and a global one kept in a real `redis-server`
//!   (`[[redis]]`); the edits proxy's clusters.
//! - **gateway** ([`GATEWAY_LISTENER`]): `role = "gateway"`, the same four listeners with
//!   the gateway's route keys (CORS, rewrites, a redirect, address filters, a route body
//!   limit).
//!
//! Identity: the TLS listeners verify client certificates against the mesh CA; a request
//! that presents one (on the TLS columns) has the identity `spiffe://ringside.test/client`.
//! Plaintext columns have no identity, which the identity rows expect explicitly.
//!
//! Differences by protocol are written in the rows: a different form of the request
//! (`send_by_proto`), or `Form::NotApplicable` with the reason (the matrix prints it).
//!
//! Rows whose answer depends on what came before send that first, under a cell id of its
//! own: `after` (a request answered first: the rate-limit rows empty their route's bucket,
//! so the row's own request is refused whichever cells ran before) and `during` (a request
//! kept in flight: the circuit-breaker rows hold the cluster's one place with a request the
//! origin stalls, and the cell ends once it is answered, so cells never share a place).

use std::time::{Duration, Instant};

use ringside_tests::certs::TestPki;
use ringside_tests::jwt::Tokens;
use ringside_tests::table::{
    absent, by_tls, is, is_lit, lit, row, run, Check, Expect, Form, Got, Pick, Req, Row, Script,
    Setup, TlsClients, Up, Which, World, AUTHORITY, V,
};
use ringside_tests::*;

/// The identity of the client certificate the TLS columns present when a row asks.
const CLIENT_ID: &str = "spiffe://ringside.test/client";

/// Every listener of the core proxy (`$L` its name, `$TLS` its TLS line): the limits and the
/// authorization rules the rows exercise.
const CORE_LISTENER: &str = r#"
[[listeners]]
name = "$L"
bind = "127.0.0.1:0"
$TLS
max_request_body_bytes = 100
max_uri_bytes = 512
max_header_bytes = 4096
max_headers = 40
request_head_timeout_ms = 1000
transparent = true

[[authz]]
listener = "$L"
action = "deny"
paths = ["/authz/deny"]

[[authz]]
listener = "$L"
action = "allow"
paths = ["/authz/allow"]
methods = ["GET"]

[[authz]]
listener = "$L"
action = "deny"
paths = ["/authz/"]
"#;

/// The routes of every core listener; `$up` is the listener's upstream (`h1` or `h2`).
const CORE_ROUTES: &str = r#"
[[routes]]
listener = "$L"
name = "host"
match = { host = "b.test", path_prefix = "/route/host" }
cluster = "b-$up"

[[routes]]
listener = "$L"
name = "path"
match = { path_exact = "/route/path/b" }
cluster = "b-$up"

[[routes]]
listener = "$L"
name = "method"
match = { path_prefix = "/route/method", method = "PUT" }
cluster = "b-$up"

[[routes]]
listener = "$L"
name = "header"
match = { path_prefix = "/route/header", headers = { "x-pick" = "b" } }
cluster = "b-$up"

[[routes]]
listener = "$L"
name = "identity"
match = { path_prefix = "/route/identity", principals = ["spiffe://ringside.test/client"] }
cluster = "b-$up"

[[routes]]
listener = "$L"
name = "route-fallback"
match = { path_prefix = "/route/" }
cluster = "a-$up"

[[routes]]
listener = "$L"
name = "split"
match = { path_prefix = "/split/" }
weighted = [ { cluster = "a-$up", weight = 50 }, { cluster = "b-$up", weight = 50 } ]

[[routes]]
listener = "$L"
name = "direct-200"
match = { path_exact = "/direct/200" }
direct_response = { status = 200, body = "hello" }

[[routes]]
listener = "$L"
name = "direct-204"
match = { path_exact = "/direct/204" }
direct_response = { status = 204, body = "x" }

[[routes]]
listener = "$L"
name = "direct-304"
match = { path_exact = "/direct/304" }
direct_response = { status = 304, body = "x" }

[[routes]]
listener = "$L"
name = "slow"
match = { path_prefix = "/slow/" }
cluster = "a-$up"
timeout_ms = 300

[[routes]]
listener = "$L"
name = "dead"
match = { path_prefix = "/dead/" }
cluster = "dead-$up"

[[routes]]
listener = "$L"
name = "original-dst"
match = { path_prefix = "/original-dst/" }
cluster = "original-dst-$up"

[[routes]]
listener = "$L"
name = "empty"
match = { path_prefix = "/empty/" }
cluster = "empty-$up"

[[routes]]
listener = "$L"
name = "retry"
match = { path_prefix = "/retry/" }
cluster = "a-$up"
[routes.retry]
attempts = 2
per_try_timeout_ms = 300
on = ["gateway-error", "reset", "retriable-status-codes", "unavailable"]
status_codes = [409]
response_headers = { "x-retryable" = "regex:^(yes|true)$" }
backoff = { base_ms = 5, max_ms = 20 }
max_body_bytes = 64

[[routes]]
listener = "$L"
name = "retry-grpc"
match = { path_prefix = "/retry-grpc/" }
cluster = "a-$up"
[routes.retry]
on = ["unavailable"]
methods = ["POST"]
backoff = { base_ms = 5 }

[[routes]]
listener = "$L"
name = "mirror"
match = { path_prefix = "/mirror/" }
cluster = "a-$up"
mirror = { cluster = "b-$up", host_suffix = "-shadow" }

[[routes]]
listener = "$L"
name = "mirror-dead"
match = { path_prefix = "/mirror-dead/" }
cluster = "a-$up"
mirror = { cluster = "dead-$up" }

[[routes]]
listener = "$L"
name = "checked"
match = { path_prefix = "/checked/" }
cluster = "checked-$up"

[[routes]]
listener = "$L"
name = "nopanic"
match = { path_prefix = "/nopanic/" }
cluster = "nopanic-$up"

[[routes]]
listener = "$L"
name = "zoned"
match = { path_prefix = "/zoned/" }
cluster = "zoned-$up"

[[routes]]
listener = "$L"
name = "spilled"
match = { path_prefix = "/spilled/" }
cluster = "spilled-$up"

[[routes]]
listener = "$L"
name = "levels"
match = { path_prefix = "/levels/" }
cluster = "levels-$up"

[[routes]]
listener = "$L"
name = "sticky"
match = { path_prefix = "/sticky/" }
cluster = "sticky-$up"

[[routes]]
listener = "$L"
name = "weighed"
match = { path_prefix = "/weighed/" }
cluster = "weighed-$up"

[[routes]]
listener = "$L"
name = "down"
match = { path_prefix = "/down/" }
cluster = "down-$up"

[[routes]]
listener = "$L"
name = "failover"
match = { path_prefix = "/failover/" }
cluster = "failover-$up"

[[routes]]
listener = "$L"
name = "echo"
match = { path_prefix = "/echo/" }
cluster = "a-$up"

[[routes]]
listener = "$L"
name = "authz"
match = { path_prefix = "/authz/" }
cluster = "a-$up"

[[routes]]
listener = "$L"
name = "fault-abort"
match = { path_prefix = "/fault/abort/" }
cluster = "a-$up"
fault = { abort = { status = 503, grpc_status = 10, percent = 100.0 } }

[[routes]]
listener = "$L"
name = "fault-delay"
match = { path_prefix = "/fault/delay/" }
cluster = "a-$up"
fault = { delay = { fixed_ms = 300, percent = 100.0 } }

[[routes]]
listener = "$L"
name = "fault-delay-timeout"
match = { path_prefix = "/fault/late/" }
cluster = "a-$up"
timeout_ms = 200
fault = { delay = { fixed_ms = 1000, percent = 100.0 } }

[[routes]]
listener = "$L"
name = "fault-header"
match = { path_prefix = "/fault/header/" }
cluster = "a-$up"
fault = { header_control = true, abort = { percent = 100.0 }, delay = { percent = 100.0 } }

[[routes]]
listener = "$L"
name = "rate-limited"
match = { path_prefix = "/ratelimit/" }
cluster = "a-$up"
rate_limit = { requests_per_second = 1, burst = 1 }

[[routes]]
listener = "$L"
name = "breaker"
match = { path_prefix = "/breaker/" }
cluster = "limited-$up"
"#;

/// The clusters of the core proxy: `a` and `b` per upstream protocol, one whose only endpoint
/// refuses connections, one without endpoints, one with a dead endpoint beside `a` that an
/// active health check keeps out of rotation, and one whose only (dead, checked) endpoint is
/// out of rotation with panic mode off. Pooled HTTP/1.1 connections are dropped
/// after 5 s idle, before the harness origin closes them (10 s): a request on a connection
/// the origin has just closed is no behaviour of a row.
const CORE_CLUSTERS: &str = r#"
[[clusters]]
name = "a-h1"
endpoints = ["$a_h1"]
idle_timeout_ms = 5000

[[clusters]]
name = "b-h1"
endpoints = ["$b_h1"]
idle_timeout_ms = 5000

[[clusters]]
name = "a-h2"
protocol = "http2"
endpoints = ["$a_h2"]

[[clusters]]
name = "b-h2"
protocol = "http2"
endpoints = ["$b_h2"]

[[clusters]]
name = "dead-h1"
endpoints = ["$dead"]

[[clusters]]
name = "dead-h2"
protocol = "http2"
endpoints = ["$dead"]

[[clusters]]
name = "empty-h1"

[[clusters]]
name = "empty-h2"
protocol = "http2"

[[clusters]]
name = "original-dst-h1"
kind = "original_dst"

[[clusters]]
name = "original-dst-h2"
protocol = "http2"
kind = "original_dst"

[[clusters]]
name = "limited-h1"
endpoints = ["$a_h1"]
idle_timeout_ms = 5000
circuit_breaker = { max_requests = 1 }

[[clusters]]
name = "limited-h2"
protocol = "http2"
endpoints = ["$a_h2"]
circuit_breaker = { max_requests = 1 }

[[clusters]]
name = "zoned-h1"
zone_aware = true
endpoints = [{ address = "$a_h1", zone = "z1" }, { address = "$b_h1", zone = "z2" }]
idle_timeout_ms = 5000

[[clusters]]
name = "zoned-h2"
protocol = "http2"
zone_aware = true
endpoints = [{ address = "$a_h2", zone = "z1" }, { address = "$b_h2", zone = "z2" }]

[[clusters]]
name = "spilled-h1"
zone_aware = true
endpoints = [{ address = "$dead", zone = "z1" }, { address = "$b_h1", zone = "z2" }]
idle_timeout_ms = 5000
[clusters.health_check]
tcp = true
interval_ms = 100

[[clusters]]
name = "spilled-h2"
protocol = "http2"
zone_aware = true
endpoints = [{ address = "$dead", zone = "z1" }, { address = "$b_h2", zone = "z2" }]
[clusters.health_check]
tcp = true
interval_ms = 100

[[clusters]]
name = "levels-h1"
endpoints = [{ address = "$a_h1", priority = 0 }, { address = "$b_h1", priority = 1 }]
idle_timeout_ms = 5000

[[clusters]]
name = "levels-h2"
protocol = "http2"
endpoints = [{ address = "$a_h2", priority = 0 }, { address = "$b_h2", priority = 1 }]

[[clusters]]
name = "sticky-h1"
lb = "ring_hash"
hash_key = "cookie:sticky"
hash_cookie = { ttl_s = 60, path = "/" }
endpoints = ["$a_h1", "$b_h1"]
idle_timeout_ms = 5000

[[clusters]]
name = "sticky-h2"
protocol = "http2"
lb = "ring_hash"
hash_key = "cookie:sticky"
hash_cookie = { ttl_s = 60, path = "/" }
endpoints = ["$a_h2", "$b_h2"]

[[clusters]]
name = "weighed-h1"
zone_weights = { z1 = 1 }
endpoints = [{ address = "$a_h1", zone = "z1" }, { address = "$b_h1", zone = "z2" }]
idle_timeout_ms = 5000

[[clusters]]
name = "weighed-h2"
protocol = "http2"
zone_weights = { z1 = 1 }
endpoints = [{ address = "$a_h2", zone = "z1" }, { address = "$b_h2", zone = "z2" }]

[[clusters]]
name = "down-h1"
endpoints = [{ address = "$a_h1", down = true }, "$b_h1"]
idle_timeout_ms = 5000

[[clusters]]
name = "down-h2"
protocol = "http2"
endpoints = [{ address = "$a_h2", down = true }, "$b_h2"]

[[clusters]]
name = "failover-h1"
endpoints = [{ address = "$dead", priority = 0 }, { address = "$b_h1", priority = 1 }]
idle_timeout_ms = 5000
[clusters.health_check]
tcp = true
interval_ms = 100

[[clusters]]
name = "failover-h2"
protocol = "http2"
endpoints = [{ address = "$dead", priority = 0 }, { address = "$b_h2", priority = 1 }]
[clusters.health_check]
tcp = true
interval_ms = 100

[[clusters]]
name = "checked-h1"
endpoints = ["$dead", "$a_h1"]
idle_timeout_ms = 5000
[clusters.health_check]
tcp = true
interval_ms = 100

[[clusters]]
name = "checked-h2"
protocol = "http2"
endpoints = ["$dead", "$a_h2"]
[clusters.health_check]
tcp = true
interval_ms = 100

[[clusters]]
name = "nopanic-h1"
endpoints = ["$dead"]
panic_threshold_percent = 0
[clusters.health_check]
tcp = true
interval_ms = 100

[[clusters]]
name = "nopanic-h2"
protocol = "http2"
endpoints = ["$dead"]
panic_threshold_percent = 0
[clusters.health_check]
tcp = true
interval_ms = 100
"#;

/// Every listener of the edits proxy and its route: the header-edit contract. The route has
/// no `name` (optional with the same change). Listener edits apply first, then the route's.
const EDITS_LISTENER: &str = r#"
[[listeners]]
name = "$L"
bind = "127.0.0.1:0"
$TLS
request_headers_to_add = [ { name = "x-l", value = "listener" }, { name = "x-seq", value = "listener" } ]
normalize_path = true
merge_slashes = true
escaped_slashes = "reject"
forward_client_cert = "append_forward"

[[authz]]
listener = "$L"
action = "deny"
paths = ["/norm/admin"]

[[routes]]
listener = "$L"
name = "norm"
match = { path_prefix = "/norm/" }
cluster = "a-$up"

[[routes]]
listener = "$L"
match = { path_prefix = "/edit/" }
cluster = "a-$up"
request_headers_to_add = [ { name = "x-env", value = "prod", action = "overwrite" }, { name = "x-add", value = "a" }, { name = "x-once", value = "r", action = "add_if_absent" }, { name = "x-peer", value = "%DOWNSTREAM_REMOTE_ADDRESS%" }, { name = "x-copy", value = "%REQ(x-src)%" }, { name = "x-rid", value = "%REQUEST_ID%" }, { name = "x-seq", value = "route" } ]
request_headers_to_remove = [ "x-debug" ]
response_headers_to_add = [ { name = "x-served-by", value = "ringside" } ]
response_headers_to_remove = [ "x-powered-by" ]
"#;

/// Every listener of the gateway proxy (`role = "gateway"`) and its routes: the gateway's
/// request shaping (issue 12). Clusters as the edits proxy's.
const GATEWAY_LISTENER: &str = r#"
[[listeners]]
name = "$L"
bind = "127.0.0.1:0"
$TLS
forward_client_cert = "forward_only"

[[routes]]
listener = "$L"
name = "cors"
match = { path_prefix = "/gw/cors/" }
cluster = "a-$up"

[routes.cors]
allow_origins = [ "https://app.example.com", "regex:^https://[a-z]+\\.example\\.org$" ]
allow_methods = [ "GET", "POST" ]
allow_headers = [ "authorization", "content-type" ]
expose_headers = [ "x-request-id" ]
max_age_s = 600
allow_credentials = true

[[routes]]
listener = "$L"
name = "prefix"
match = { path_prefix = "/gw/api/orders/" }
rewrite = { prefix = "/orders/" }
cluster = "a-$up"

[[routes]]
listener = "$L"
name = "regex"
match = { path_prefix = "/gw/regex/" }
rewrite = { regex = { pattern = "^/gw/regex/([a-z]+)/(.*)$", substitution = "/\\2/\\1" } }
cluster = "a-$up"

[[routes]]
listener = "$L"
name = "host"
match = { path_prefix = "/gw/host/" }
rewrite = { host = "backend.internal:8080" }
cluster = "a-$up"

[[routes]]
listener = "$L"
name = "moved"
match = { path_prefix = "/gw/old/" }
redirect = { scheme = "https", host = "new.example", prefix = "/gw/new/", status = 301 }

[[routes]]
listener = "$L"
name = "deny"
match = { path_prefix = "/gw/deny/" }
ip_deny = [ "127.0.0.1/32" ]
cluster = "a-$up"

[[routes]]
listener = "$L"
name = "allow"
match = { path_prefix = "/gw/allow/" }
ip_allow = [ "127.0.0.0/8", "::1" ]
ip_deny = [ "10.0.0.0/8" ]
cluster = "a-$up"

[[routes]]
listener = "$L"
name = "body"
match = { path_prefix = "/gw/body/" }
max_request_body_bytes = 4
cluster = "a-$up"
"#;

const EDITS_CLUSTERS: &str = r#"
[[clusters]]
name = "a-h1"
endpoints = ["$a_h1"]
idle_timeout_ms = 5000

[[clusters]]
name = "a-h2"
protocol = "http2"
endpoints = ["$a_h2"]

[[clusters]]
name = "b-h1"
endpoints = ["$b_h1"]
idle_timeout_ms = 5000

[[clusters]]
name = "b-h2"
protocol = "http2"
endpoints = ["$b_h2"]
"#;

/// Every listener of the consumers proxy (a gateway) and its routes: API-key
/// authentication from a header (the default `x-api-key`) or also the query string, a
/// consumer with its own bucket, a route keyed by a header, a route only the consumer
/// `mobile` matches (to `b`) before one for everyone else (to `a`), and an open route.
const CONSUMERS_LISTENER: &str = r#"
[[listeners]]
name = "$L"
bind = "127.0.0.1:0"
$TLS

[[routes]]
listener = "$L"
name = "consumers-header"
match = { path_prefix = "/consumers/header/" }
cluster = "a-$up"
authn = { api_key = {} }

[[routes]]
listener = "$L"
name = "consumers-query"
match = { path_prefix = "/consumers/query/" }
cluster = "a-$up"
authn = { api_key = { header = "x-api-key", query = "apikey" } }

[[routes]]
listener = "$L"
name = "consumers-keyed"
match = { path_prefix = "/consumers/keyed/" }
cluster = "a-$up"
rate_limit = { key = "header:x-tenant", requests_per_second = 1, burst = 1 }

[[routes]]
listener = "$L"
name = "consumers-jwt"
match = { path_prefix = "/consumers/jwt/" }
cluster = "a-$up"
authn = { jwt = [ "corp" ], api_key = {} }

[[authz]]
listener = "$L"
action = "deny"
consumers = [ "blocked" ]

[[routes]]
listener = "$L"
name = "consumers-premium"
match = { path_prefix = "/consumers/routed/", consumers = [ "mobile" ] }
cluster = "b-$up"
authn = { jwt = [ "corp" ], api_key = {} }

[[routes]]
listener = "$L"
name = "consumers-routed"
match = { path_prefix = "/consumers/routed/" }
cluster = "a-$up"
authn = { jwt = [ "corp" ], api_key = {} }

[[routes]]
listener = "$L"
name = "consumers-global"
match = { path_prefix = "/consumers/global/" }
cluster = "a-$up"
rate_limit = { key = "header:x-tenant", requests_per_minute = 1, redis = "limits" }

[[routes]]
listener = "$L"
name = "consumers-open"
match = { path_prefix = "/consumers/" }
cluster = "a-$up"
"#;

/// The consumers proxy's consumers (its clusters are the edits proxy's): `mobile` (its key
/// given as a SHA-256: `printf %s mobile-key | sha256sum`; also the JWT subject
/// `client:mobile`), `web` (a plain key), `blocked` (a plain key, denied by the listeners' `[[authz]]`) and `limited` (a plain key, one request a second); the JWT provider
/// `corp`, whose keys (`$jwks`) are made by PyJWT for each run ([`jwt_tokens`]); and the
/// `[[redis]]` of its global rate limit (a real redis-server; `timeout_ms` roomy, since a
/// batch that times out on a busy machine would fail open).
const CONSUMERS: &str = r#"
[[jwt_providers]]
name = "corp"
issuer = "https://id.example.com"
audiences = [ "orders-api" ]
jwks = '$jwks'
claims_to_headers = { sub = "x-user-id" }

[[consumers]]
name = "mobile"
api_keys = [ { sha256 = "57d419be43e536f6ecfa7f54599e9050db0eca72598b456400601ae346403973" } ]
jwt_subjects = [ "client:mobile" ]

[[consumers]]
name = "web"
api_keys = [ { key = "web-key" } ]

[[consumers]]
name = "blocked"
api_keys = [ { key = "blocked-key" } ]

[[consumers]]
name = "limited"
api_keys = [ { key = "limited-key" } ]
jwt_subjects = [ "client:limited" ]
rate_limit = { requests_per_second = 1, burst = 1 }

[[redis]]
name = "limits"
address = "$redis"
timeout_ms = 1000
"#;

/// The JWT rows' keys (Ed25519, P-256) and tokens, made fresh by PyJWT for each run:
/// `ok` (the consumer `mobile`), `limited` (the consumer `limited`), `expired`, `audience`
/// (another audience's).
fn jwt_tokens() -> Tokens {
    let claims = |exp: &str, aud: &str| serde_json::json!({ "iss": "https://id.example.com", "aud": aud, "sub": "client:mobile", "exp": exp });
    let mut limited = claims("now+3600", "orders-api");
    limited["sub"] = "client:limited".into();
    Tokens::make(
        &[("ed1", "OKP"), ("ec1", "EC")],
        serde_json::json!({
            "ok": { "key": "ed1", "alg": "EdDSA", "claims": claims("now+3600", "orders-api") },
            "limited": { "key": "ed1", "alg": "EdDSA", "claims": limited },
            "expired": { "key": "ec1", "alg": "ES256", "claims": claims("now-600", "orders-api") },
            "audience": { "key": "ec1", "alg": "ES256", "claims": claims("now+3600", "billing") },
        }),
    )
}

/// What the origins answer, by path: `200` with their name as the body and `x-origin: NAME`,
/// except for the paths below.
/// How many times each origin has seen each `/retry/` path (the cell id is in the path).
static TRIES: std::sync::Mutex<Vec<(String, u32)>> = std::sync::Mutex::new(Vec::new());

/// The try this is of `origin`'s requests for `path`, from 1.
fn try_number(origin: &str, path: &str) -> u32 {
    let key = format!("{origin} {path}");
    let mut tries = TRIES.lock().unwrap_or_else(|p| p.into_inner());
    match tries.iter_mut().find(|(k, _)| *k == key) {
        Some((_, n)) => {
            *n += 1;
            *n
        }
        None => {
            tries.push((key, 1));
            1
        }
    }
}

/// The `Date` the origin sends on `/echo/dated` (RFC 9110's own example).
const ORIGIN_DATE: &str = "Sun, 06 Nov 1994 08:49:37 GMT";

fn script(origin: &str, target: &str) -> Script {
    let mut s = Script {
        status: 200,
        headers: vec![("x-origin".into(), origin.into())],
        body: origin.as_bytes().to_vec(),
        ..Script::default()
    };
    let h = |n: &str, v: &str| (n.to_string(), v.to_string());
    let path = target.split('?').next().unwrap_or("");
    match path {
        p if p.starts_with("/slow/") => s.delay = Duration::from_millis(1500),
        // Long enough for the next request to arrive on a loaded machine (a new TLS
        // connection, a debug build, two cores shared with the test).
        "/breaker/stall" => s.delay = Duration::from_millis(1200),
        p if p.starts_with("/echo/reset") => s.reset = true,
        "/echo/trailers" => {
            s.body = b"ok".to_vec();
            s.trailers = vec![h("x-resp-trailer", "abc")];
        }
        "/echo/head" => s.body = b"hello".to_vec(),
        "/echo/304" => {
            s.status = 304;
            s.headers.push(h("etag", "\"v1\""));
        }
        "/echo/hop" => {
            s.headers.push(h("x-keep", "yes"));
            s.h1_only = vec![
                h("Connection", "x-resp-hop"),
                h("X-Resp-Hop", "1"),
                h("Keep-Alive", "timeout=5"),
            ];
        }
        p if p.starts_with("/edit/") => s.headers.push(h("x-powered-by", "php")),
        "/echo/dated" => s.headers.push(h("date", ORIGIN_DATE)),
        // A misbehaving origin, `/retry/MODE/CELL`: the first try (or every try for
        // `always503`) fails as MODE says; the next ones are answered normally.
        p if p.starts_with("/retry/") || p.starts_with("/retry-grpc/") => {
            let mode = p.split('/').nth(2).unwrap_or("");
            let first = mode == "always503" || try_number(origin, p) == 1;
            match mode {
                _ if !first => {}
                "503" | "always503" => s.status = 503,
                "409" => s.status = 409,
                "header" => s.headers.push(h("x-retryable", "yes")),
                "reset" => s.reset = true,
                "stall" => s.delay = Duration::from_millis(1000),
                "grpc14" => {
                    s.headers = vec![
                        h("content-type", "application/grpc"),
                        h("grpc-status", "14"),
                    ];
                    s.body.clear();
                }
                _ => {}
            }
            if mode.starts_with("grpc") && !first {
                s.headers.push(h("content-type", "application/grpc"));
                s.trailers = vec![h("grpc-status", "0")];
            }
        }
        _ => {}
    }
    s
}

/// What try `n` of a retried request looks like at origin a.
fn attempt(n: u32) -> Got {
    Got::a().headers(vec![is_lit("x-ringside-attempt", &n.to_string())])
}

/// The reason every gRPC row gives on the HTTP/1.1 columns.
const GRPC_IS_H2: &str =
    "gRPC runs over HTTP/2 only (the same failure over HTTP/1.1 is its HTTP row)";

fn rows(jwt: &Tokens) -> Vec<Row> {
    let bearer = |name: &str| format!("Bearer {}", jwt.get(name));
    let x = |n: usize| vec![b'x'; n];
    let many: Vec<(String, String)> = (0..50)
        .map(|i| (format!("x-h{i}"), i.to_string()))
        .collect();
    let with_many = |mut r: Req| {
        r.headers.extend(many.clone());
        r
    };
    let ms = Duration::from_millis;
    vec![
        // --- Proxied requests: the control rows.
        row("proxied GET", r#"route echo: match = { path_prefix = "/echo/" }, cluster = "a-$up""#)
            .send(Req::get("/echo/get?q=1"))
            .expect(Expect::status(200).body("a").reusable().got(
                Got::a().method("GET").target("/echo/get?q=1").headers(vec![is_lit("host", AUTHORITY)]),
            )),
        row("proxied POST with a body", "route echo")
            .send(Req::post("/echo/post").sized("ping"))
            .expect(Expect::status(200).body("a").got(Got::a().method("POST").body("ping"))),

        // --- Retries (route "retry": 2 retries on gateway errors, resets, 409, an
        // `x-retryable` header and gRPC UNAVAILABLE; per try 300 ms; bodies up to 64 bytes
        // kept; route "retry-grpc": POSTs retried on UNAVAILABLE).
        row("retry: 503 then 200", "route retry: attempts = 2, on gateway-error")
            .send(Req::get("/retry/503/$CELL"))
            .expect(Expect::status(200).body("a").tries(vec![attempt(1), attempt(2)])),
        row("retry: tries run out, the last answer as it came", "route retry: attempts = 2")
            .send(Req::get("/retry/always503/$CELL"))
            .expect(Expect::status(503).body("a").headers(vec![is_lit("x-origin", "a")]).tries(vec![attempt(1), attempt(2), attempt(3)])),
        row("retry: a listed status code", "route retry: status_codes = [409]")
            .send(Req::get("/retry/409/$CELL"))
            .expect(Expect::status(200).tries(vec![attempt(1), attempt(2)])),
        row("retry: a response header asks for it", r#"route retry: response_headers = { "x-retryable" = "regex:^(yes|true)$" }"#)
            .send(Req::get("/retry/header/$CELL"))
            .expect(Expect::status(200).headers(vec![absent("x-retryable")]).tries(vec![attempt(1), attempt(2)])),
        // Both tries may say attempt 1: a reset on a pooled HTTP/1.1 connection is first the
        // keep-alive race, repeated once on a new connection below the retry policy.
        row("retry: the origin resets before answering", r#"route retry: on = [..., "reset"]"#)
            .send(Req::get("/retry/reset/$CELL"))
            .expect(Expect::status(200).body("a").tries(vec![attempt(1), Got::a()])),
        row("retry: a try past per_try_timeout_ms", "route retry: per_try_timeout_ms = 300")
            .send(Req::get("/retry/stall/$CELL"))
            .expect(Expect::status(200).body("a").tries(vec![attempt(1), attempt(2)])),
        row("retry: a kept body is sent again", "route retry: max_body_bytes = 1024")
            .send(Req::new("PUT", "/retry/503/$CELL").sized("payload"))
            .expect(Expect::status(200).tries(vec![attempt(1).body("payload"), attempt(2).body("payload")])),
        row("retry: a streamed body is kept too", "route retry: max_body_bytes = 64")
            .send(Req::new("PUT", "/retry/503/$CELL").streamed(x(60)).trailer("x-t", "1"))
            .expect(Expect::status(200).tries(vec![attempt(1).body(x(60)), attempt(2).body(x(60)).trailers(vec![is_lit("x-t", "1")])])),
        row("retry: no retry for a body over max_body_bytes", "route retry: max_body_bytes = 64")
            .send(Req::new("PUT", "/retry/503/$CELL").sized(x(65)))
            .expect(Expect::status(503).tries(vec![attempt(1).body(x(65))])),
        row("retry: no retry for a streamed body over max_body_bytes", "route retry: max_body_bytes = 64")
            .send(Req::new("PUT", "/retry/503/$CELL").streamed(x(90)))
            .expect(Expect::status(503).tries(vec![attempt(1).body(x(90))])),
        row("retry: no retry for a POST", "route retry: methods not given (idempotent only)")
            .send(Req::post("/retry/503/$CELL").sized("pay"))
            .expect(Expect::status(503).tries(vec![attempt(1).method("POST").body("pay")])),
        row("retry: gRPC UNAVAILABLE (trailers-only)", r#"route retry-grpc: on = ["unavailable"], methods = ["POST"]"#)
            .send_by_proto(Form::NotApplicable(GRPC_IS_H2), Req::grpc("/retry-grpc/grpc14/$CELL").sized(tools::grpc_frame(b"hi")))
            .expect(Expect::grpc(0).tries(vec![attempt(1), attempt(2)])),

        // --- Mirroring (route "mirror": a copy of every request to b, host suffixed).
        row("mirror: b gets a copy, the client a's answer", r#"route mirror: mirror = { cluster = "b-$up", host_suffix = "-shadow" }"#)
            .send(Req::get("/mirror/get?q=1"))
            .expect(Expect::status(200).body("a").tries(vec![
                Got::a().target("/mirror/get?q=1").headers(vec![is_lit("host", AUTHORITY)]),
                Got::b().target("/mirror/get?q=1").headers(vec![is_lit("host", "ringside.test-shadow")]),
            ])),
        row("mirror: the body is copied too", "route mirror")
            .send(Req::post("/mirror/post").sized("ping"))
            .expect(Expect::status(200).body("a").tries(vec![
                Got::a().method("POST").body("ping"),
                Got::b().method("POST").body("ping"),
            ])),
        row("mirror: a dead mirror changes nothing", r#"route mirror-dead: mirror = { cluster = "dead-$up" }"#)
            .send(Req::get("/mirror-dead/x"))
            .expect(Expect::status(200).body("a").reusable()),

        // --- What the proxy answers itself.
        row("400 malformed request", "(none: the parser's rules)")
            .send_by_proto(
                // Content-Length with Transfer-Encoding: a smuggling attempt.
                Form::Raw("POST /echo/bad HTTP/1.1\r\nHost: ringside.test\r\nx-cell: $CELL\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".into()),
                // What the h2 layer passes but HTTP forbids: no `:authority` and no `host`
                // (RFC 9113 §8.3.1), which the proxy's HTTP/1.1 form cannot carry either.
                Req::get("/echo/bad").no_authority(),
            )
            .expect(Expect::own(400)),
        row("404 no route", "no route matches /nowhere")
            .send(Req::get("/nowhere"))
            .expect(Expect::own(404)),
        row("403 CONNECT no route allows", "(none: no route has match.connect)")
            .send(Req::new("CONNECT", "example.com:443").authority("example.com:443"))
            .expect(Expect::own(403)),
        row("400 CONNECT without a port", "(none: the parsers' rules)")
            .send(Req::new("CONNECT", "example.com").authority("example.com"))
            .expect(Expect::own(400)),
        row("408 request head timeout", "listener: request_head_timeout_ms = 1000")
            .send_by_proto(
                Form::Stall("GET /echo/slowloris HTTP/1.1\r\nHost: ringside.test\r\nx-cell: $CELL\r\n".into()),
                Form::NotApplicable("a HEADERS frame arrives whole: there is no partial head to time out"),
            )
            .expect(Expect::own(408).closes().not_before(ms(800))),
        // Fails at aa67458 over HTTP/2: no limit is applied, the origin gets the body, 200.
        row("413 declared Content-Length over the limit", "listener: max_request_body_bytes = 100")
            .send(Req::post("/echo/413").sized(x(5000)))
            .expect(Expect::own(413)),
        // Fails at aa67458 over HTTP/2, as above.
        row("413 streamed body over the limit", "listener: max_request_body_bytes = 100")
            .send(Req::post("/echo/413").streamed(x(5000)))
            .expect(Expect::status(413).short_text().no_complete_request()),
        row("414 request target too long", "listener: max_uri_bytes = 512")
            .send(Req::get(format!("/echo/{}", "u".repeat(600))))
            .expect(Expect::own(414)),
        // Over HTTP/2 the h2 layer answers this one itself (SETTINGS_MAX_HEADER_LIST_SIZE is
        // max_header_bytes), without a body: so no body check.
        row("431 header section too large", "listener: max_header_bytes = 4096")
            .send(Req::get("/echo/431").header("x-big", &"v".repeat(5000)))
            .expect(Expect::status(431).untouched()),
        row("431 too many header fields", "listener: max_headers = 40")
            .send(with_many(Req::get("/echo/431")))
            .expect(Expect::own(431)),
        row("501 Transfer-Encoding other than chunked", "(none: the parser's rules)")
            .send_by_proto(
                Form::Raw("POST /echo/501 HTTP/1.1\r\nHost: ringside.test\r\nx-cell: $CELL\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n".into()),
                Form::NotApplicable("HTTP/2 has no Transfer-Encoding (RFC 9113 §8.2.2)"),
            )
            .expect(Expect::own(501)),
        row("505 HTTP version not supported", "(none)")
            .send_by_proto(
                Form::Raw("GET /echo/505 HTTP/3.0\r\nHost: ringside.test\r\nx-cell: $CELL\r\n\r\n".into()),
                Form::NotApplicable("the version is the connection's own: an h2 stream is HTTP/2"),
            )
            .expect(Expect::own(505)),
        row("502 upstream refuses connections", r#"route dead: cluster "dead-$up" (a closed port)"#)
            .send(Req::get("/dead/x"))
            .expect(Expect::own(502)),
        // A POST with a body, so no retry on a fresh connection may repeat it.
        row("502 upstream resets", "route echo; the origin closes (h1) or resets the stream (h2)")
            .send(Req::post("/echo/reset").sized("x"))
            .expect(Expect::status(502).short_text().got(Got::a().method("POST"))),
        // The listener is `transparent`, but nothing redirected the connection: its original
        // destination, if the kernel tracks one, is the listener itself (a loop).
        row("502 original_dst without a redirect", r#"route original-dst: cluster "original-dst-$up" (kind = "original_dst")"#)
            .send(Req::get("/original-dst/x"))
            .expect(Expect::own(502)),
        row("503 no endpoint", r#"route empty: cluster "empty-$up" has no endpoints"#)
            .send(Req::get("/empty/x"))
            .expect(Expect::own(503)),
        row("health-checked cluster with a dead endpoint serves", r#"route checked: cluster "checked-$up" = [a closed port, a], health_check tcp"#)
            .send(Req::get("/checked/x"))
            .expect(Expect::status(200).body("a").got(Got::a().method("GET").target("/checked/x"))),
        // By this row the health check (every 100 ms since the proxy started) has found the
        // closed port; panic mode would try it anyway (502).
        row("503 no endpoint in rotation, panic_threshold_percent = 0", r#"route nopanic: cluster "nopanic-$up" = [a closed port], health_check tcp"#)
            .send(Req::get("/nopanic/x"))
            .expect(Expect::own(503)),
        row("zone-aware: the proxy's zone takes every request (100 requests)", r#"route zoned: cluster "zoned-$up", zone_aware = true, [a in z1 (the proxy's zone), b in z2]"#)
            .repeat(Req::get("/zoned/x"), 100)
            .expect(Expect::status(200).counts(100, 0)),
        row("zone-aware: no local endpoint in rotation spills to the other zone (100 requests)", r#"route spilled: cluster "spilled-$up", zone_aware = true, [a closed port in z1, b in z2], health_check tcp"#)
            .repeat(Req::get("/spilled/x"), 100)
            .expect(Expect::status(200).counts(0, 100)),
        row("priority levels: level 0 takes every request (100 requests)", r#"route levels: cluster "levels-$up" = [a priority 0, b priority 1]"#)
            .repeat(Req::get("/levels/x"), 100)
            .expect(Expect::status(200).counts(100, 0)),
        row("ring hash gives a client without its cookie one (hash_cookie)", r#"route sticky: cluster "sticky-$up", ring_hash on cookie:sticky, hash_cookie = { ttl_s = 60, path = "/" }"#)
            .send(Req::get("/sticky/x"))
            .expect(Expect::status(200).headers(vec![Check::Shape("set-cookie", "sticky=################; Max-Age=60; Path=/; HttpOnly")])),
        row("ring hash: a client with its cookie is not given another", r#"route sticky: cluster "sticky-$up", ring_hash on cookie:sticky, hash_cookie"#)
            .send(Req::get("/sticky/x").header("cookie", "sticky=00000000000000aa"))
            .expect(Expect::status(200).headers(vec![Check::Absent("set-cookie")])),
        row("zone weights: a zone without a weight takes no request (100 requests)", r#"route weighed: cluster "weighed-$up", zone_weights = { z1 = 1 }, [a in z1, b in z2]"#)
            .repeat(Req::get("/weighed/x"), 100)
            .expect(Expect::status(200).counts(100, 0)),
        row("an endpoint down by configuration takes no request (100 requests)", r#"route down: cluster "down-$up" = [a down = true, b]"#)
            .repeat(Req::get("/down/x"), 100)
            .expect(Expect::status(200).counts(0, 100)),
        row("priority levels: level 0 out of rotation fails over to level 1 (100 requests)", r#"route failover: cluster "failover-$up" = [a closed port priority 0, b priority 1], health_check tcp"#)
            .repeat(Req::get("/failover/x"), 100)
            .expect(Expect::status(200).counts(0, 100)),
        row("504 route timeout", "route slow: timeout_ms = 300; the origin answers after 1.5 s")
            .send(Req::get("/slow/x"))
            .expect(Expect::status(504).short_text().not_before(ms(250)).got(Got::a())),

        // --- The same failures for gRPC clients: HTTP 200, trailers-only, grpc-status.
        row("gRPC no route: 12 UNIMPLEMENTED", "no route matches")
            .send_by_proto(Form::NotApplicable(GRPC_IS_H2), Req::grpc("/nowhere.Svc/Call"))
            .expect(Expect::grpc(12).untouched()),
        row("gRPC connect refused: 14 UNAVAILABLE", "route dead")
            .send_by_proto(Form::NotApplicable(GRPC_IS_H2), Req::grpc("/dead/grpc.Svc/Call"))
            .expect(Expect::grpc(14).untouched()),
        row("gRPC no endpoint: 14 UNAVAILABLE", "route empty")
            .send_by_proto(Form::NotApplicable(GRPC_IS_H2), Req::grpc("/empty/grpc.Svc/Call"))
            .expect(Expect::grpc(14).untouched()),
        row("gRPC upstream resets: 14 UNAVAILABLE", "route echo")
            .send_by_proto(Form::NotApplicable(GRPC_IS_H2), Req::grpc("/echo/reset"))
            .expect(Expect::grpc(14).got(Got::a())),
        row("gRPC route timeout: 4 DEADLINE_EXCEEDED", "route slow: timeout_ms = 300")
            .send_by_proto(Form::NotApplicable(GRPC_IS_H2), Req::grpc("/slow/grpc.Svc/Call"))
            .expect(Expect::grpc(4).got(Got::a())),
        row("gRPC authz deny: 7 PERMISSION_DENIED", r#"authz: deny paths = ["/authz/deny"]"#)
            .send_by_proto(Form::NotApplicable(GRPC_IS_H2), Req::grpc("/authz/deny/grpc.Svc/Call"))
            .expect(Expect::grpc(7).untouched()),
        // Fails at aa67458, as the HTTP/2 413 rows.
        row("gRPC body over the limit: 8 RESOURCE_EXHAUSTED", "listener: max_request_body_bytes = 100")
            .send_by_proto(
                Form::NotApplicable(GRPC_IS_H2),
                Req::grpc("/echo/grpc").sized(tools::grpc_frame(&x(4995))),
            )
            .expect(Expect::grpc(8).untouched()),
        row("gRPC too many header fields: 8 RESOURCE_EXHAUSTED", "listener: max_headers = 40")
            .send_by_proto(Form::NotApplicable(GRPC_IS_H2), with_many(Req::grpc("/echo/grpc")))
            .expect(Expect::grpc(8).untouched()),

        // --- Limits: what is within them passes.
        row("body of exactly the limit passes", "listener: max_request_body_bytes = 100")
            .send(Req::post("/echo/100").sized(x(100)))
            .expect(Expect::status(200).got(Got::a().body(x(100)))),
        row("streamed body of exactly the limit passes", "listener: max_request_body_bytes = 100")
            .send(Req::post("/echo/100").streamed(x(100)))
            .expect(Expect::status(200).got(Got::a().body(x(100)))),

        // --- Direct responses, HEAD and 304.
        row("direct response", r#"direct_response = { status = 200, body = "hello" }"#)
            .send(Req::get("/direct/200"))
            .expect(Expect::status(200).body("hello").headers(vec![is_lit("content-length", "5")]).untouched().reusable()),
        // RFC 9110 §8.6 and §15.3.5: a 204 has no content and no Content-Length. Fails at
        // aa67458: HTTP/1.1 sends `Content-Length: 0`; HTTP/2 sends `content-length: 1` and a
        // DATA frame "x" (which strict clients, nghttp2/curl, reset as PROTOCOL_ERROR).
        row("direct 204 with a configured body", r#"direct_response = { status = 204, body = "x" }"#)
            .send(Req::get("/direct/204"))
            .expect(Expect::status(204).no_body().headers(vec![absent("content-length")]).untouched().reusable()),
        // Fails at aa67458 over HTTP/2: `content-length: 1` and a DATA frame "x" on a 304.
        row("direct 304 with a configured body", r#"direct_response = { status = 304, body = "x" }"#)
            .send(Req::get("/direct/304"))
            .expect(Expect::status(304).no_body().untouched().reusable()),
        row("HEAD on a direct response", r#"direct_response = { status = 200, body = "hello" }"#)
            .send(Req::new("HEAD", "/direct/200"))
            .expect(Expect::status(200).no_body().headers(vec![is_lit("content-length", "5")]).untouched().reusable()),
        row("HEAD proxied", "route echo; the origin declares Content-Length: 5")
            .send(Req::new("HEAD", "/echo/head"))
            .expect(Expect::status(200).no_body().headers(vec![is_lit("content-length", "5")]).reusable().got(Got::a().method("HEAD"))),
        row("304 proxied", "route echo; the origin answers 304 with an ETag")
            .send(Req::get("/echo/304").header("if-none-match", "\"v1\""))
            .expect(Expect::status(304).no_body().headers(vec![is_lit("etag", "\"v1\"")]).reusable().got(Got::a())),

        // --- Authorization.
        row("authz allow", r#"authz: allow paths = ["/authz/allow"], methods = ["GET"]"#)
            .send(Req::get("/authz/allow/x"))
            .expect(Expect::status(200).body("a").got(Got::a())),
        row("authz deny by path", r#"authz: deny paths = ["/authz/deny"]"#)
            .send(Req::get("/authz/deny/x"))
            .expect(Expect::own(403)),
        row("authz deny: method outside the allow rule", r#"authz: allow GET /authz/allow, then deny paths = ["/authz/"]"#)
            .send(Req::post("/authz/allow/x"))
            .expect(Expect::own(403)),

        // --- Routing.
        row("route by host", r#"match = { host = "b.test", path_prefix = "/route/host" }"#)
            .send(Req::get("/route/host").authority("b.test"))
            .expect(Expect::status(200).body("b").got(Got::b().headers(vec![is_lit("host", "b.test")]))),
        row("route by host: another host falls through", "route host, then route-fallback")
            .send(Req::get("/route/host").authority("c.test"))
            .expect(Expect::status(200).body("a").got(Got::a())),
        row("route by path", r#"match = { path_exact = "/route/path/b" }"#)
            .send(Req::get("/route/path/b?x=1"))
            .expect(Expect::status(200).body("b").got(Got::b().target("/route/path/b?x=1"))),
        row("route by path: another path falls through", "route path, then route-fallback")
            .send(Req::get("/route/path/bb"))
            .expect(Expect::status(200).body("a").got(Got::a())),
        row("route by method", r#"match = { path_prefix = "/route/method", method = "PUT" }"#)
            .send(Req::new("PUT", "/route/method").sized("p"))
            .expect(Expect::status(200).body("b").got(Got::b().method("PUT").body("p"))),
        row("route by method: GET falls through", "route method, then route-fallback")
            .send(Req::get("/route/method"))
            .expect(Expect::status(200).body("a").got(Got::a())),
        row("route by header", r#"match = { path_prefix = "/route/header", headers = { "x-pick" = "b" } }"#)
            .send(Req::get("/route/header").header("x-pick", "b"))
            .expect(Expect::status(200).body("b").got(Got::b())),
        row("route by header: another value falls through", "route header, then route-fallback")
            .send(Req::get("/route/header").header("x-pick", "c"))
            .expect(Expect::status(200).body("a").got(Got::a())),
        // mTLS identity exists only on the TLS columns: a plaintext request has none and must
        // fall through (docs/config.md, match.principals).
        row("route by identity (client certificate on TLS)", r#"match = { principals = ["spiffe://ringside.test/client"] }"#)
            .send(Req::get("/route/identity").client_cert())
            .expect(Expect::status(200).got(Got::by(Pick::ByTls(Which::A, Which::B)).headers(vec![by_tls(
                absent("x-forwarded-client-cert"),
                is("x-forwarded-client-cert", &[lit(&format!("URI={CLIENT_ID}"))]),
            )]))),
        row("route by identity: no certificate falls through", "route identity, then route-fallback")
            .send(Req::get("/route/identity"))
            .expect(Expect::status(200).body("a").got(Got::a().headers(vec![absent("x-forwarded-client-cert")]))),
        row("weighted split 50/50 (200 requests)", r#"weighted = [ { cluster = "a-$up", weight = 50 }, { cluster = "b-$up", weight = 50 } ]"#)
            .repeat(Req::get("/split/x"), 200)
            .expect(Expect::status(200).split(50, 150)),
        // An HTTP/1.1 connection that waits longer than its hot window (100 ms) gives its read
        // buffer back and waits for readiness (downstream/http, `cold_wait`); the next request
        // must be read whole from there. HTTP/2 connections are idle in the h2 crate.
        row("a connection idle past its hot window serves its next requests", "route-fallback")
            .repeat(Req::get("/route/idle"), 3)
            .pace(Duration::from_millis(250))
            .expect(Expect::status(200)),

        // --- Headers the proxy removes and sets.
        // Fails at aa67458 towards HTTP/2 origins: Proxy-* fields are forwarded (the HTTP/2
        // conversions strip only connection-specific fields).
        row("hop-by-hop request fields are removed", "(none)")
            .send_by_proto(
                Req::get("/echo/hop-req")
                    .header("Connection", "x-hop-a, keep-alive")
                    .header("X-Hop-A", "1")
                    .header("Keep-Alive", "timeout=5")
                    .header("TE", "gzip")
                    .header("Upgrade", "websocket")
                    .header("Proxy-Connection", "keep-alive")
                    .header("Proxy-Authorization", "Basic c2VjcmV0")
                    .header("Proxy-Foo", "1")
                    .header("X-Keep", "yes"),
                // HTTP/2 has no connection-specific fields (RFC 9113 §8.2.2): only Proxy-*.
                Req::get("/echo/hop-req")
                    .header("proxy-authorization", "Basic c2VjcmV0")
                    .header("proxy-foo", "1")
                    .header("x-keep", "yes"),
            )
            .expect(Expect::status(200).got(Got::a().headers(vec![
                Check::Without("connection", "x-hop-a"),
                absent("x-hop-a"),
                absent("keep-alive"),
                absent("te"),
                absent("upgrade"),
                absent("proxy-connection"),
                absent("proxy-authorization"),
                absent("proxy-foo"),
                is_lit("x-keep", "yes"),
            ]))),
        row("hop-by-hop response fields are removed", "(none)")
            .only_up(Up::H1, "an HTTP/2 origin cannot send connection-specific fields")
            .send(Req::get("/echo/hop"))
            .expect(Expect::status(200).headers(vec![
                Check::Without("connection", "x-resp-hop"),
                absent("x-resp-hop"),
                absent("keep-alive"),
                is_lit("x-keep", "yes"),
            ])),
        row("X-Forwarded-For is appended to", "(none)")
            .send(Req::get("/echo/xff").header("x-forwarded-for", "10.0.0.1"))
            .expect(Expect::status(200).got(Got::a().headers(vec![is("x-forwarded-for", &[lit("10.0.0.1"), V::ClientIp])]))),
        row("X-Forwarded-For is set", "(none)")
            .send(Req::get("/echo/xff"))
            .expect(Expect::status(200).got(Got::a().headers(vec![is("x-forwarded-for", &[V::ClientIp])]))),
        row("X-Forwarded-Proto is the client's scheme", "(none)")
            .send(Req::get("/echo/xfp"))
            .expect(Expect::status(200).got(Got::a().headers(vec![is("x-forwarded-proto", &[V::Scheme])]))),
        row("X-Forwarded-Proto sent by the client is kept", "(none)")
            .send(Req::get("/echo/xfp").header("x-forwarded-proto", "https"))
            .expect(Expect::status(200).got(Got::a().headers(vec![is_lit("x-forwarded-proto", "https")]))),
        // Only the proxy vouches for a client's identity: without a verified client
        // certificate, the client's own X-Forwarded-Client-Cert is removed (Envoy's SANITIZE).
        row("X-Forwarded-Client-Cert sent by the client is removed", "(none)")
            .send(Req::get("/echo/xfcc").header("x-forwarded-client-cert", "URI=spiffe://evil.test/admin"))
            .expect(Expect::status(200).got(Got::a().headers(vec![absent("x-forwarded-client-cert")]))),
        row("X-Request-Id sent by the client is kept", "(none)")
            .send(Req::get("/echo/rid").header("x-request-id", "rid-123"))
            .expect(Expect::status(200).got(Got::a().headers(vec![is_lit("x-request-id", "rid-123")]))),
        row("X-Request-Id is generated", "(none)")
            .send(Req::get("/echo/rid"))
            .expect(Expect::status(200).got(Got::a().headers(vec![Check::Uuid("x-request-id")]))),
        // HTTP/1.1: chunked trailers with `TE: trailers`; HTTP/2: trailing HEADERS.
        row("trailers both ways", "route echo; the origin answers with a trailer")
            .send(Req::post("/echo/trailers").header("te", "trailers").streamed("abc").trailer("x-req-trailer", "1"))
            .expect(Expect::status(200).body("ok").trailers(vec![is_lit("x-resp-trailer", "abc")])
                .got(Got::a().body("abc").trailers(vec![is_lit("x-req-trailer", "1")]))),

        // --- Resilience: fault injection, local rate limits, circuit breakers.
        row("fault abort", r#"fault = { abort = { status = 503, grpc_status = 10, percent = 100.0 } }"#)
            .send(Req::get("/fault/abort/x"))
            .expect(Expect::own(503)),
        row("gRPC fault abort: its grpc_status", r#"fault = { abort = { status = 503, grpc_status = 10, percent = 100.0 } }"#)
            .send_by_proto(Form::NotApplicable(GRPC_IS_H2), Req::grpc("/fault/abort/grpc.Svc/Call"))
            .expect(Expect::grpc(10).untouched()),
        row("fault delay, then forwarded", r#"fault = { delay = { fixed_ms = 300, percent = 100.0 } }"#)
            .send(Req::get("/fault/delay/x"))
            .expect(Expect::status(200).body("a").not_before(ms(300)).got(Got::a())),
        row("fault delay counts against the route timeout", r#"timeout_ms = 200, fault = { delay = { fixed_ms = 1000, percent = 100.0 } }"#)
            .send(Req::get("/fault/late/x"))
            .expect(Expect::own(504).not_before(ms(150))),
        row("fault abort asked by a header", r#"fault = { header_control = true, abort = { percent = 100.0 }, ... }"#)
            .send(Req::get("/fault/header/x").header("x-ringside-fault-abort-request", "418"))
            .expect(Expect::own(418)),
        row("fault delay asked by a header", r#"fault = { header_control = true, delay = { percent = 100.0 }, ... }"#)
            .send(Req::get("/fault/header/x").header("x-ringside-fault-delay-request", "250"))
            .expect(Expect::status(200).body("a").not_before(ms(250)).got(Got::a())),
        row("fault header control: nothing asked, nothing injected", r#"fault = { header_control = true, ... } (no status, no fixed_ms)"#)
            .send(Req::get("/fault/header/x"))
            .expect(Expect::status(200).body("a").got(Got::a())),
        row("gRPC fault abort asked by a header", r#"fault = { header_control = true, abort = { percent = 100.0 }, ... }"#)
            .send_by_proto(
                Form::NotApplicable(GRPC_IS_H2),
                Req::grpc("/fault/header/grpc.Svc/Call").header("x-ringside-fault-abort-grpc-request", "9"),
            )
            .expect(Expect::grpc(9).untouched()),
        row("rate limit: 429 once the bucket is empty", "rate_limit = { requests_per_second = 1, burst = 1 }; one request before")
            .after(Req::get("/ratelimit/first"))
            .send(Req::get("/ratelimit/x"))
            .expect(Expect::own(429).headers(vec![
                is_lit("retry-after", "1"),
                is_lit("ratelimit-limit", "1"),
                is_lit("ratelimit-remaining", "0"),
                is_lit("ratelimit-reset", "1"),
            ])),
        row("gRPC rate limit: 8 RESOURCE_EXHAUSTED", "rate_limit = { requests_per_second = 1, burst = 1 }; one request before")
            .after(Req::get("/ratelimit/first"))
            .send_by_proto(Form::NotApplicable(GRPC_IS_H2), Req::grpc("/ratelimit/grpc.Svc/Call"))
            .expect(Expect::grpc(8).untouched().headers(vec![is_lit("ratelimit-remaining", "0")])),
        row("circuit breaker: 503 overloaded past max_requests", r#"circuit_breaker = { max_requests = 1 }; one request in flight"#)
            .during(Req::get("/breaker/stall"))
            .send(Req::get("/breaker/x"))
            .expect(Expect::own(503).headers(vec![is_lit("x-ringside-overloaded", "true")])),
        row("gRPC circuit breaker: 14 UNAVAILABLE", r#"circuit_breaker = { max_requests = 1 }; one request in flight"#)
            .during(Req::get("/breaker/stall"))
            .send_by_proto(Form::NotApplicable(GRPC_IS_H2), Req::grpc("/breaker/grpc.Svc/Call"))
            .expect(Expect::grpc(14).untouched().headers(vec![is_lit("x-ringside-overloaded", "true")])),

        // --- Header edits (the edits proxy). Fail at aa67458: the keys are not parsed yet.
        row("header edits on the request", "request_headers_to_add / _to_remove on the listener and the route")
            .on(Setup::Edits)
            .send(
                Req::get("/edit/req")
                    .header("x-env", "dev")
                    .header("x-add", "c")
                    .header("x-once", "c")
                    .header("x-debug", "1")
                    .header("x-src", "copied"),
            )
            .expect(Expect::status(200).got(Got::a().headers(vec![
                is_lit("x-l", "listener"),
                is("x-seq", &[lit("listener"), lit("route")]),
                is_lit("x-env", "prod"),
                is("x-add", &[lit("c"), lit("a")]),
                is_lit("x-once", "c"),
                is("x-peer", &[V::ClientAddr]),
                is_lit("x-copy", "copied"),
                Check::SameAs("x-rid", "x-request-id"),
                absent("x-debug"),
            ]))),
        row("header edits: add_if_absent adds, an empty value is not added", r#"{ name = "x-once", value = "r", action = "add_if_absent" }, { name = "x-copy", value = "%REQ(x-src)%" }"#)
            .on(Setup::Edits)
            .send(Req::get("/edit/absent"))
            .expect(Expect::status(200).got(Got::a().headers(vec![
                is_lit("x-once", "r"),
                absent("x-copy"),
                is_lit("x-add", "a"),
                is_lit("x-env", "prod"),
                is_lit("x-l", "listener"),
            ]))),
        row("header edits on the response", "response_headers_to_add / _to_remove on the route")
            .on(Setup::Edits)
            .send(Req::get("/edit/resp"))
            .expect(Expect::status(200).body("a").headers(vec![is_lit("x-served-by", "ringside"), absent("x-powered-by")]).got(Got::a())),

        // --- Path rules (the edits proxy's listeners: normalize_path, merge_slashes,
        // escaped_slashes = "reject"): routing, [[authz]] and the origin see one path.
        row("normalize_path: dot segments removed before routing and upstream", "normalize_path = true")
            .on(Setup::Edits)
            .send(Req::get("/norm/x/../y/./z"))
            .expect(Expect::status(200).body("a").got(Got::a().target("/norm/y/z"))),
        row("normalize_path: /public/../admin meets the /admin authz rule", r#"normalize_path = true; [[authz]] deny paths = ["/norm/admin"]"#)
            .on(Setup::Edits)
            .send(Req::get("/norm/public/../admin"))
            .expect(Expect::own(403)),
        row("normalize_path: unreserved escapes decoded, others upper-cased, query untouched", "normalize_path = true")
            .on(Setup::Edits)
            .send(Req::get("/norm/%7Eu%2d/%e2%82%ac/%2e%2E/v?q=/../%41"))
            .expect(Expect::status(200).body("a").got(Got::a().target("/norm/~u-/v?q=/../%41"))),
        row("normalize_path: a broken escape is 400, never forwarded", "normalize_path = true")
            .on(Setup::Edits)
            .send(Req::get("/norm/%zz"))
            .expect(Expect::own(400)),
        row("merge_slashes: runs of / become one", "merge_slashes = true")
            .on(Setup::Edits)
            .send(Req::get("/norm//a///b/"))
            .expect(Expect::status(200).body("a").got(Got::a().target("/norm/a/b/"))),
        row("escaped_slashes = \"reject\": %2F is 400, never forwarded", r#"escaped_slashes = "reject""#)
            .on(Setup::Edits)
            .send(Req::get("/norm/a%2fb"))
            .expect(Expect::own(400)),

        // --- forward_client_cert other than the default (Envoy's forward_client_cert_details):
        // only a client whose certificate ringside verified (the TLS columns, with one)
        // gets its X-Forwarded-Client-Cert through.
        row("forward_client_cert = append_forward: a verified client's kept, ringside's appended", r#"forward_client_cert = "append_forward""#)
            .on(Setup::Edits)
            .send(Req::get("/norm/xfcc").client_cert().header("x-forwarded-client-cert", "By=spiffe://front.test;URI=spiffe://user.test"))
            .expect(Expect::status(200).body("a").got(Got::a().headers(vec![by_tls(
                absent("x-forwarded-client-cert"),
                is("x-forwarded-client-cert", &[lit("By=spiffe://front.test;URI=spiffe://user.test"), lit(&format!("URI={CLIENT_ID}"))]),
            )]))),
        row("forward_client_cert = append_forward: without the client's, ringside's alone", r#"forward_client_cert = "append_forward""#)
            .on(Setup::Edits)
            .send(Req::get("/norm/xfcc").client_cert())
            .expect(Expect::status(200).body("a").got(Got::a().headers(vec![by_tls(
                absent("x-forwarded-client-cert"),
                is_lit("x-forwarded-client-cert", &format!("URI={CLIENT_ID}")),
            )]))),
        row("forward_client_cert = append_forward: an unverified client's removed", r#"forward_client_cert = "append_forward""#)
            .on(Setup::Edits)
            .send(Req::get("/norm/xfcc").header("x-forwarded-client-cert", "URI=spiffe://evil.test/admin"))
            .expect(Expect::status(200).body("a").got(Got::a().headers(vec![absent("x-forwarded-client-cert")]))),
        row("forward_client_cert = forward_only: a verified client's as sent, nothing added", r#"forward_client_cert = "forward_only""#)
            .on(Setup::Gateway)
            .send(Req::get("/gw/body/xfcc").client_cert().header("x-forwarded-client-cert", "By=spiffe://front.test;URI=spiffe://user.test"))
            .expect(Expect::status(200).body("a").got(Got::a().headers(vec![by_tls(
                absent("x-forwarded-client-cert"),
                is_lit("x-forwarded-client-cert", "By=spiffe://front.test;URI=spiffe://user.test"),
            )]))),

        // --- Date (RFC 9110 §6.6.1): an origin with a clock sends it in its 2xx-4xx answers,
        // and a recipient forwarding a response without one appends one. nginx does both.
        row("Date: added to a forwarded response without one", "route echo; the origin sends no Date")
            .send(Req::get("/echo/undated"))
            .expect(Expect::status(200).body("a").headers(vec![Check::Date("date", None)]).got(Got::a())),
        row("Date: the origin's is kept", "route echo; the origin sends its own Date")
            .send(Req::get("/echo/dated"))
            .expect(Expect::status(200).body("a").headers(vec![Check::Date("date", Some(ORIGIN_DATE))]).got(Got::a())),
        row("Date: on ringside's own answers", "no route matches /nowhere: the 404 is ringside's")
            .send(Req::get("/nowhere/date"))
            .expect(Expect::own(404).headers(vec![Check::Date("date", None)])),
        row("Date: on a direct response", r#"direct_response = { status = 200, body = "hello" }"#)
            .send(Req::get("/direct/200"))
            .expect(Expect::status(200).body("hello").headers(vec![Check::Date("date", None)]).untouched()),

        // --- Consumers and API keys (the consumers proxy, a gateway).
        row("api key: none is 401 with WWW-Authenticate", "authn = { api_key = {} }")
            .on(Setup::Consumers)
            .send(Req::get("/consumers/header/x"))
            .expect(Expect::own(401).headers(vec![is_lit("www-authenticate", r#"ApiKey realm="consumers-header""#)])),
        row("api key: an unknown key is 401", "authn = { api_key = {} }; x-api-key: nope")
            .on(Setup::Consumers)
            .send(Req::get("/consumers/header/x").header("x-api-key", "nope"))
            .expect(Expect::own(401).headers(vec![is_lit("www-authenticate", r#"ApiKey realm="consumers-header""#)])),
        row("api key: a consumer's key passes, x-consumer-name set, the key removed", r#"[[consumers]] api_keys = [ { sha256 = "..." } ]"#)
            .on(Setup::Consumers)
            .send(Req::get("/consumers/header/x").header("x-api-key", "mobile-key"))
            .expect(Expect::status(200).body("a").got(Got::a().target("/consumers/header/x").headers(vec![
                is_lit("x-consumer-name", "mobile"),
                absent("x-api-key"),
            ]))),
        row("api key: a client's own x-consumer-name is replaced", "authn = { api_key = {} }; x-consumer-name: admin")
            .on(Setup::Consumers)
            .send(Req::get("/consumers/header/x").header("x-consumer-name", "admin").header("x-api-key", "mobile-key"))
            .expect(Expect::status(200).got(Got::a().headers(vec![is_lit("x-consumer-name", "mobile")]))),
        row("gateway: a client's own x-consumer-name is removed on an open route", "a route without authn")
            .on(Setup::Consumers)
            .send(Req::get("/consumers/open/x").header("x-consumer-name", "admin"))
            .expect(Expect::status(200).got(Got::a().headers(vec![absent("x-consumer-name")]))),
        row("api key in the query where configured: accepted, removed from the target", r#"authn = { api_key = { header = "x-api-key", query = "apikey" } }"#)
            .on(Setup::Consumers)
            .send(Req::get("/consumers/query/x?a=1&apikey=mobile-key&b=2"))
            .expect(Expect::status(200).got(Got::a().target("/consumers/query/x?a=1&b=2").headers(vec![is_lit("x-consumer-name", "mobile")]))),
        row("api key in the query where only the header is looked at: 401", "authn = { api_key = {} }; ?apikey=...")
            .on(Setup::Consumers)
            .send(Req::get("/consumers/header/x?apikey=mobile-key"))
            .expect(Expect::own(401)),
        row("gRPC without an api key: 16 UNAUTHENTICATED", "authn = { api_key = {} }")
            .on(Setup::Consumers)
            .send_by_proto(Form::NotApplicable(GRPC_IS_H2), Req::grpc("/consumers/header/grpc.Svc/Call"))
            .expect(Expect::grpc(16).untouched()),
        row("authz naming a consumer: its requests are denied 403 after authn", r#"[[authz]] action = "deny", consumers = [ "blocked" ]"#)
            .on(Setup::Consumers)
            .send(Req::get("/consumers/header/x").header("x-api-key", "blocked-key"))
            .expect(Expect::own(403)),
        row("authz naming a consumer: gRPC gets 7 PERMISSION_DENIED", r#"consumers = [ "blocked" ]"#)
            .on(Setup::Consumers)
            .send_by_proto(
                Form::NotApplicable(GRPC_IS_H2),
                Req::grpc("/consumers/header/grpc.Svc/Call").header("x-api-key", "blocked-key"),
            )
            .expect(Expect::grpc(7).untouched()),
        // --- Routing by consumer (`match.consumers`): `mobile` to b, everyone else to a.
        row("match.consumers: the named consumer's key takes its route", r#"match = { consumers = [ "mobile" ] }; x-api-key of mobile"#)
            .on(Setup::Consumers)
            .send(Req::get("/consumers/routed/x").header("x-api-key", "mobile-key"))
            .expect(Expect::status(200).body("b").got(Got::b().headers(vec![
                is_lit("x-consumer-name", "mobile"),
                absent("x-api-key"),
            ]))),
        row("match.consumers: the named consumer's token takes its route", r#"match = { consumers = [ "mobile" ] }; token with sub client:mobile"#)
            .on(Setup::Consumers)
            .send(Req::get("/consumers/routed/x").header("authorization", &bearer("ok")))
            .expect(Expect::status(200).body("b").got(Got::b().headers(vec![
                is_lit("x-consumer-name", "mobile"),
                is_lit("x-user-id", "client:mobile"),
                absent("authorization"),
            ]))),
        row("match.consumers: another consumer goes on to the next route", r#"match = { consumers = [ "mobile" ] }; x-api-key of web"#)
            .on(Setup::Consumers)
            .send(Req::get("/consumers/routed/x").header("x-api-key", "web-key").header("x-consumer-name", "mobile"))
            .expect(Expect::status(200).body("a").got(Got::a().headers(vec![
                is_lit("x-consumer-name", "web"),
                absent("x-api-key"),
            ]))),
        row("match.consumers: no credential goes on to the next route, which answers 401", r#"match = { consumers = [ "mobile" ] }"#)
            .on(Setup::Consumers)
            .send(Req::get("/consumers/routed/x"))
            .expect(Expect::own(401).headers(vec![is(
                "www-authenticate",
                &[lit(r#"Bearer realm="consumers-routed""#), lit(r#"ApiKey realm="consumers-routed""#)],
            )])),
        // --- JWT (the consumers proxy's `consumers-jwt` route: a JWT or an API key).
        row("jwt: a valid token passes; consumer and claim headers set, the token removed", r#"authn = { jwt = [ "corp" ], api_key = {} }; EdDSA token, sub = "client:mobile""#)
            .on(Setup::Consumers)
            .send(Req::get("/consumers/jwt/x").header("authorization", &bearer("ok")).header("x-user-id", "forged"))
            .expect(Expect::status(200).body("a").got(Got::a().headers(vec![
                is_lit("x-consumer-name", "mobile"),
                is_lit("x-user-id", "client:mobile"),
                absent("authorization"),
            ]))),
        row("jwt or api key: no credential is 401 with both challenges", r#"authn = { jwt = [ "corp" ], api_key = {} }"#)
            .on(Setup::Consumers)
            .send(Req::get("/consumers/jwt/x"))
            // One field, two challenges (the table reads a field as a comma-separated list).
            .expect(Expect::own(401).headers(vec![is(
                "www-authenticate",
                &[lit(r#"Bearer realm="consumers-jwt""#), lit(r#"ApiKey realm="consumers-jwt""#)],
            )])),
        row("jwt or api key: the api key admits too", r#"authn = { jwt = [ "corp" ], api_key = {} }; x-api-key"#)
            .on(Setup::Consumers)
            .send(Req::get("/consumers/jwt/x").header("x-api-key", "mobile-key"))
            .expect(Expect::status(200).got(Got::a().headers(vec![is_lit("x-consumer-name", "mobile")]))),
        row("jwt: an expired token is 401 invalid_token", "ES256 token, exp 10 minutes ago")
            .on(Setup::Consumers)
            .send(Req::get("/consumers/jwt/x").header("authorization", &bearer("expired")))
            .expect(Expect::own(401).headers(vec![is(
                "www-authenticate",
                &[lit(r#"Bearer realm="consumers-jwt""#), lit(r#"error="invalid_token""#)],
            )])),
        row("jwt: another audience's token is 403", r#"audiences = [ "orders-api" ]; aud = "billing""#)
            .on(Setup::Consumers)
            .send(Req::get("/consumers/jwt/x").header("authorization", &bearer("audience")))
            .expect(Expect::own(403)),
        row("jwt: the token's consumer has its own bucket (429 once empty)", r#"jwt_subjects = [ "client:limited" ]; one request before"#)
            .on(Setup::Consumers)
            .after(Req::get("/consumers/jwt/first").header("authorization", &bearer("limited")))
            .send(Req::get("/consumers/jwt/x").header("authorization", &bearer("limited")))
            .expect(Expect::own(429).headers(vec![is_lit("ratelimit-limit", "1")])),
        row("gRPC with an invalid token: 16 UNAUTHENTICATED", "an expired token")
            .on(Setup::Consumers)
            .send_by_proto(
                Form::NotApplicable(GRPC_IS_H2),
                Req::grpc("/consumers/jwt/grpc.Svc/Call").header("authorization", &bearer("expired")),
            )
            .expect(Expect::grpc(16).untouched()),
        row("gRPC with another audience's token: 7 PERMISSION_DENIED", r#"aud = "billing""#)
            .on(Setup::Consumers)
            .send_by_proto(
                Form::NotApplicable(GRPC_IS_H2),
                Req::grpc("/consumers/jwt/grpc.Svc/Call").header("authorization", &bearer("audience")),
            )
            .expect(Expect::grpc(7).untouched()),
        row("consumer rate limit: 429 once the consumer's bucket is empty", "[[consumers]] rate_limit = { requests_per_second = 1, burst = 1 }; one request before")
            .on(Setup::Consumers)
            .after(Req::get("/consumers/header/first").header("x-api-key", "limited-key"))
            .send(Req::get("/consumers/header/x").header("x-api-key", "limited-key"))
            .expect(Expect::own(429).headers(vec![
                is_lit("retry-after", "1"),
                is_lit("ratelimit-limit", "1"),
                is_lit("ratelimit-remaining", "0"),
                is_lit("ratelimit-reset", "1"),
            ])),
        row("gRPC consumer rate limit: 8 RESOURCE_EXHAUSTED", "[[consumers]] rate_limit = { requests_per_second = 1, burst = 1 }; one request before")
            .on(Setup::Consumers)
            .after(Req::get("/consumers/header/first").header("x-api-key", "limited-key"))
            .send_by_proto(
                Form::NotApplicable(GRPC_IS_H2),
                Req::grpc("/consumers/header/grpc.Svc/Call").header("x-api-key", "limited-key"),
            )
            .expect(Expect::grpc(8).untouched()),
        row("rate limit keyed by a header: 429 for the same value", r#"rate_limit = { key = "header:x-tenant", requests_per_second = 1, burst = 1 }; one request before"#)
            .on(Setup::Consumers)
            .after(Req::get("/consumers/keyed/first").header("x-tenant", "t1"))
            .send(Req::get("/consumers/keyed/x").header("x-tenant", "t1"))
            .expect(Expect::own(429).headers(vec![is_lit("ratelimit-limit", "1")])),
        // The consumers proxy has one worker: the request before and the row's are counted
        // by the same worker, whose own count refuses the second at once (what other
        // workers and proxies let through is gateway_global_limits.rs's). Every cell uses
        // the one window of x-tenant: global; a minute that ends between a cell's two
        // requests (about 1 in 60 000) would let its second through.
        row("global rate limit (Redis): 429 once the window is full", r#"rate_limit = { key = "header:x-tenant", requests_per_minute = 1, redis = "limits" }; one request before"#)
            .on(Setup::Consumers)
            .after(Req::get("/consumers/global/first").header("x-tenant", "global"))
            .send(Req::get("/consumers/global/x").header("x-tenant", "global"))
            .expect(Expect::own(429).headers(vec![
                is_lit("ratelimit-limit", "1"),
                is_lit("ratelimit-remaining", "0"),
                Check::SameAs("retry-after", "ratelimit-reset"),
            ])),
        row("gRPC global rate limit (Redis): 8 RESOURCE_EXHAUSTED", r#"rate_limit = { key = "header:x-tenant", requests_per_minute = 1, redis = "limits" }; one request before"#)
            .on(Setup::Consumers)
            .after(Req::get("/consumers/global/first").header("x-tenant", "global-grpc"))
            .send_by_proto(
                Form::NotApplicable(GRPC_IS_H2),
                Req::grpc("/consumers/global/grpc.Svc/Call").header("x-tenant", "global-grpc"),
            )
            .expect(Expect::grpc(8).untouched()),
        // --- The gateway's request shaping (the gateway proxy, role = "gateway").
        row("CORS preflight from an allowed origin: 204 by the proxy", "[routes.cors] allow_origins, allow_methods, allow_headers, max_age_s, allow_credentials")
            .on(Setup::Gateway)
            .send(
                Req::new("OPTIONS", "/gw/cors/x")
                    .header("origin", "https://app.example.com")
                    .header("access-control-request-method", "POST")
                    .header("access-control-request-headers", "content-type"),
            )
            .expect(Expect::status(204).no_body().untouched().headers(vec![
                is_lit("access-control-allow-origin", "https://app.example.com"),
                is("access-control-allow-methods", &[lit("GET"), lit("POST")]),
                is("access-control-allow-headers", &[lit("authorization"), lit("content-type")]),
                is_lit("access-control-max-age", "600"),
                is_lit("access-control-allow-credentials", "true"),
                is_lit("vary", "origin"),
                absent("access-control-expose-headers"),
                absent("content-type"),
            ])),
        row("CORS preflight from another origin: 403, no CORS fields", r#"allow_origins = [ "https://app.example.com", "regex:…" ]"#)
            .on(Setup::Gateway)
            .send(
                Req::new("OPTIONS", "/gw/cors/x")
                    .header("origin", "https://evil.example")
                    .header("access-control-request-method", "POST"),
            )
            .expect(Expect::own(403).headers(vec![absent("access-control-allow-origin"), absent("vary")])),
        row("CORS request from an allowed origin (regex): origin echoed, vary", r#""regex:^https://[a-z]+\\.example\\.org$", expose_headers, allow_credentials"#)
            .on(Setup::Gateway)
            .send(Req::get("/gw/cors/x").header("origin", "https://shop.example.org"))
            .expect(Expect::status(200).body("a").got(Got::a()).headers(vec![
                is_lit("access-control-allow-origin", "https://shop.example.org"),
                is_lit("access-control-expose-headers", "x-request-id"),
                is_lit("access-control-allow-credentials", "true"),
                is_lit("vary", "origin"),
                absent("access-control-allow-methods"),
            ])),
        row("CORS request from another origin: forwarded, no CORS fields", "[routes.cors]")
            .on(Setup::Gateway)
            .send(Req::get("/gw/cors/x").header("origin", "https://shop.example.org.evil"))
            .expect(Expect::status(200).body("a").got(Got::a()).headers(vec![
                absent("access-control-allow-origin"),
                absent("vary"),
            ])),
        row("rewrite prefix: the upstream path, query kept, x-original-path", r#"match = { path_prefix = "/gw/api/orders/" }, rewrite = { prefix = "/orders/" }"#)
            .on(Setup::Gateway)
            .send(Req::get("/gw/api/orders/7?x=1&y=2"))
            .expect(Expect::status(200).body("a").got(Got::a().target("/orders/7?x=1&y=2").headers(vec![
                is_lit("x-original-path", "/gw/api/orders/7?x=1&y=2"),
                is_lit("host", AUTHORITY),
            ]))),
        row("rewrite regex: groups substituted, query kept", r#"rewrite = { regex = { pattern = "^/gw/regex/([a-z]+)/(.*)$", substitution = "/\\2/\\1" } }"#)
            .on(Setup::Gateway)
            .send(Req::get("/gw/regex/users/42?q=1"))
            .expect(Expect::status(200).body("a").got(Got::a().target("/42/users?q=1").headers(vec![
                is_lit("x-original-path", "/gw/regex/users/42?q=1"),
            ]))),
        row("rewrite host: Host / :authority replaced, path kept", r#"rewrite = { host = "backend.internal:8080" }"#)
            .on(Setup::Gateway)
            .send(Req::get("/gw/host/x?q=1"))
            .expect(Expect::status(200).body("a").got(Got::a().target("/gw/host/x?q=1").headers(vec![
                is_lit("host", "backend.internal:8080"),
                absent("x-original-path"),
            ]))),
        row("redirect: 301 with a Location built from the request", r#"redirect = { scheme = "https", host = "new.example", prefix = "/gw/new/", status = 301 }"#)
            .on(Setup::Gateway)
            .send(Req::get("/gw/old/x?q=1"))
            .expect(Expect::status(301).untouched().headers(vec![
                is_lit("location", "https://new.example/gw/new/x?q=1"),
            ])),
        row("ip_deny: the client's address refused, 403", r#"ip_deny = [ "127.0.0.1/32" ]"#)
            .on(Setup::Gateway)
            .send(Req::get("/gw/deny/x"))
            .expect(Expect::own(403)),
        row("gRPC ip_deny: 7 PERMISSION_DENIED", r#"ip_deny = [ "127.0.0.1/32" ]"#)
            .on(Setup::Gateway)
            .send_by_proto(Form::NotApplicable(GRPC_IS_H2), Req::grpc("/gw/deny/grpc.Svc/Call"))
            .expect(Expect::grpc(7).untouched()),
        row("ip_allow: an address in the blocks passes", r#"ip_allow = [ "127.0.0.0/8", "::1" ], ip_deny = [ "10.0.0.0/8" ]"#)
            .on(Setup::Gateway)
            .send(Req::get("/gw/allow/x"))
            .expect(Expect::status(200).body("a").got(Got::a())),
        row("route max_request_body_bytes: a declared body over it, 413", "max_request_body_bytes = 4 on the route")
            .on(Setup::Gateway)
            .send(Req::post("/gw/body/x").sized(&b"hello"[..]))
            .expect(Expect::own(413)),
        row("route max_request_body_bytes: a streamed body over it, 413", "max_request_body_bytes = 4 on the route")
            .on(Setup::Gateway)
            .send(Req::post("/gw/body/x").streamed(x(5000)))
            .expect(Expect::status(413).short_text().no_complete_request()),
        row("route max_request_body_bytes: a body within it passes", "max_request_body_bytes = 4 on the route")
            .on(Setup::Gateway)
            .send(Req::post("/gw/body/x").sized(&b"hey"[..]))
            .expect(Expect::status(200).body("a").got(Got::a().body(&b"hey"[..]))),
    ]
}

/// The configuration text of one proxy: `listener` (with `$L`, `$TLS`, `$up`) for each of
/// the four listeners, then `clusters`, after the mesh identity.
fn config(
    pki: &TestPki,
    listener: &str,
    clusters: &str,
    vars: &[(&str, &dyn std::fmt::Display)],
) -> String {
    let (cert, key) = (pki.dir().join("proxy.crt"), pki.dir().join("proxy.key"));
    let mut text = format!(
        "[mesh]\nidentity = {{ cert = \"{}\", key = \"{}\", trust_bundle = \"{}\" }}\n",
        cert.display(),
        key.display(),
        pki.ca_path().display()
    );
    for tls in [false, true] {
        for up in Up::ALL {
            let name = format!("{}-{}", if tls { "tls" } else { "plain" }, up.suffix());
            let tls_line = if tls { "mtls = \"permissive\"" } else { "" };
            text.push_str(
                &listener
                    .replace("$L", &name)
                    .replace("$TLS", tls_line)
                    .replace("$up", up.suffix()),
            );
        }
    }
    text.push_str(&toml(clusters, vars));
    text
}

fn run_table(d: Driver) {
    let started = Instant::now();
    let pki = TestPki::new();
    // The proxy's certificate: a mesh identity that also names `localhost` for the clients.
    pki.leaf("proxy", &["localhost"], &["spiffe://ringside.test/proxy"]);
    let (client_cert, client_key) = pki.leaf("client", &[], &[CLIENT_ID]);
    let (a_h1, b_h1, a_h2, b_h2) = World::origins(script);
    let dead = closed_port();
    let jwt = jwt_tokens();
    let jwks = jwt.jwks(&["ed1", "ec1"]);
    // The consumers proxy's global rate limit counts here.
    let redis = ringside_tests::redis::Redis::start();
    let vars: &[(&str, &dyn std::fmt::Display)] = &[
        ("jwks", &jwks),
        ("redis", &redis.addr),
        ("a_h1", &a_h1.addr()),
        ("b_h1", &b_h1.addr()),
        ("a_h2", &a_h2.addr()),
        ("b_h2", &b_h2.addr()),
        ("dead", &dead),
    ];
    // `[proxy]` keys come first (the harness opens the file with `[proxy]`): the zone of the
    // zone-aware rows.
    let core = format!(
        "zone = \"z1\"\n{}",
        config(
            &pki,
            &format!("{CORE_LISTENER}{CORE_ROUTES}"),
            CORE_CLUSTERS,
            vars,
        )
    );
    let edits = config(&pki, EDITS_LISTENER, EDITS_CLUSTERS, vars);
    // `[proxy]` keys come first (the harness opens the file with `[proxy]`). One worker, as
    // the other proxies have: two workers sharing buckets is gateway_consumers.rs's test.
    let consumers = format!(
        "role = \"gateway\"\nworkers = 1\n{}",
        config(
            &pki,
            CONSUMERS_LISTENER,
            &format!("{CONSUMERS}{EDITS_CLUSTERS}"),
            vars
        )
    );
    // `full_config` opens `[proxy]`: the role goes right after it.
    let gateway = format!(
        "role = \"gateway\"\nworkers = 1\n{}",
        config(&pki, GATEWAY_LISTENER, EDITS_CLUSTERS, vars)
    );
    let world = World {
        driver: d,
        proxies: vec![
            (Setup::Core, World::start_proxy(d, &core)),
            (Setup::Edits, World::start_proxy(d, &edits)),
            (Setup::Consumers, World::start_proxy(d, &consumers)),
            (Setup::Gateway, World::start_proxy(d, &gateway)),
        ],
        a_h1,
        b_h1,
        a_h2,
        b_h2,
        tls: TlsClients::new(&pki.ca_path(), (&client_cert, &client_key), "localhost"),
    };
    if let (_, Err(e)) = &world.proxies[0] {
        panic!("the core configuration must start:\n{e}\n--- config ---\n{core}");
    }
    let failures = run(&world, &rows(&jwt));
    eprintln!(
        "{} table run in {:.1?} (set-up included)",
        d.toml(),
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} failing cells on {}:\n{}",
        failures.len(),
        d.toml(),
        failures.join("\n")
    );
}

both_drivers!(
    fn behaviour_table(d) {
        run_table(d);
    }
);
