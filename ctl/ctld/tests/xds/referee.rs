//! The resources both ringside (through ctld) and Envoy are fed in the referee test, the
//! deterministic requests sent to both, and what an answer shows: its status, and the
//! origin and path it reached (`Origin::echo`), the location of a redirect, or the body of
//! a direct response.

use std::net::SocketAddr;

use serde_json::{json, Value};

use super::{eds_cluster, exchange, load_assignment, Origin};

const HCM: &str =
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const ROUTER: &str = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
/// The EDS cluster's name, as Istio names one.
pub const A: &str = "outbound|80||a.test.svc.cluster.local";

/// EDS clusters with priority levels: level 0 on `a` (in rotation), level 1 on `b`; level 0
/// on `a` marked UNHEALTHY by EDS, level 1 on `b`; level 0 on `a` and an UNHEALTHY endpoint
/// (half of it in rotation: 70% with Envoy's overprovisioning factor), level 1 on `b`.
pub const LEVELS: &str = "outbound|80||levels.test.svc.cluster.local";
pub const FAILOVER: &str = "outbound|80||failover.test.svc.cluster.local";
pub const SPILL: &str = "outbound|80||spill.test.svc.cluster.local";
/// An EDS cluster that weighs its localities (`locality_weighted_lb_config`, as Istio's
/// locality load balancing and Envoy Gateway send): zone `z1` (weight 80) on `a`, `z2`
/// (20) on `b`.
pub const WEIGHED: &str = "outbound|80||weighed.test.svc.cluster.local";
/// A RING_HASH EDS cluster on `a` and `b`, hashed by `x-user` (Istio's `consistentHash`
/// with `httpHeaderName`).
pub const STICKY: &str = "outbound|80||sticky.test.svc.cluster.local";
/// The same, hashed by the cookie `session`, made for a client without it (Istio's
/// `consistentHash.httpCookie` with a `ttl`).
pub const STICKY_COOKIE: &str = "outbound|80||sticky-cookie.test.svc.cluster.local";

/// The `server_name` of the referee's HCM.
pub const SERVER_NAME: &str = "referee-edge";
/// Its `common_http_protocol_options.max_headers_count` and `max_request_headers_kb`.
pub const MAX_HEADERS: usize = 50;
pub const MAX_HEADERS_KB: usize = 32;

/// A listener on 127.0.0.1:`port` whose HCM takes route configuration `r1` from RDS, with
/// the router only (Envoy refuses Istio's own filters, which it does not have), and the
/// connection settings a control plane sends (limits, timeouts, `server_name`).
pub fn referee_listener(port: u16) -> Value {
    json!({"name": "http", "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
            "typed_config": {"@type": HCM, "stat_prefix": "referee",
                "server_name": SERVER_NAME,
                "use_remote_address": true,
                "common_http_protocol_options": {"idle_timeout": "300s", "max_headers_count": MAX_HEADERS},
                "max_request_headers_kb": MAX_HEADERS_KB,
                "request_headers_timeout": "5s",
                "http2_protocol_options": {"max_concurrent_streams": 64,
                    "connection_keepalive": {"interval": "30s", "timeout": "5s"}},
                "rds": {"config_source": {"ads": {}}, "route_config_name": "r1"},
                "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER}}]}}]}]})
}

/// A gateway's TLS port on 127.0.0.1:`port` (no `original_dst`: not transparent): a filter
/// chain per server name, each with its certificate (inline) and an HCM with inline routes,
/// `api.test` to cluster `A` and `shop.test` to `b`; no chain for other names (Envoy closes
/// those connections). `certs`: `(name, cert PEM, key PEM)`.
pub fn gateway_listener(port: u16, certs: &[(&str, &str, &str)]) -> Value {
    let chain = |(name, cert, key): &(&str, &str, &str), cluster: &str| {
        json!({"filter_chain_match": {"server_names": [name]},
            "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                "common_tls_context": {"tls_certificates": [{"certificate_chain": {"inline_string": cert},
                    "private_key": {"inline_string": key}}]}}},
            "filters": [{"name": "envoy.filters.network.http_connection_manager",
                "typed_config": {"@type": HCM, "stat_prefix": "gateway",
                    "route_config": {"name": format!("gateway-{name}"), "virtual_hosts": [{"name": "all",
                        "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "route": {"cluster": cluster}}]}]},
                    "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER}}]}}]})
    };
    let clusters = [A, "b"];
    let chains: Vec<Value> = certs
        .iter()
        .zip(clusters)
        .map(|(c, cl)| chain(c, cl))
        .collect();
    json!({"name": "gateway", "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "listener_filters": [{"name": "envoy.filters.listener.tls_inspector",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"}}],
        "filter_chains": chains})
}

/// Every resource but the listener: cluster `A` (EDS) on origin `a`, `b` (STATIC) on `b`,
/// and route configuration `r1`.
pub fn referee_resources(a: &Origin, b: &Origin, dead: SocketAddr) -> Value {
    let split = |name: &str, path: &str, wa: u32, wb: u32| {
        json!({"name": name, "match": {"path": path}, "route": {"weighted_clusters": {"clusters": [
            {"name": A, "weight": wa}, {"name": "b", "weight": wb}]}}})
    };
    let to = |cluster: &str| json!({"cluster": cluster});
    let mut sticky = eds_cluster(STICKY);
    sticky["lb_policy"] = json!("RING_HASH");
    let mut weighed = eds_cluster(WEIGHED);
    weighed["common_lb_config"] = json!({"locality_weighted_lb_config": {}});
    let mut sticky_cookie = eds_cluster(STICKY_COOKIE);
    sticky_cookie["lb_policy"] = json!("RING_HASH");
    let routes = vec![
        json!({"name": "canary", "match": {"prefix": "/", "headers": [{"name": "x-canary", "string_match": {"exact": "1"}}]}, "route": to("b")}),
        json!({"name": "exact", "match": {"path": "/exact"}, "route": to("b")}),
        json!({"name": "prefix", "match": {"prefix": "/a/"}, "route": to(A)}),
        json!({"name": "bare-prefix", "match": {"prefix": "/pre"}, "route": to("b")}),
        json!({"name": "regex", "match": {"safe_regex": {"regex": "/re/[0-9]+"}}, "route": to("b")}),
        split("split100", "/split100", 100, 0),
        split("split0", "/split0", 0, 100),
        split("split70", "/split70", 70, 30),
        json!({"name": "levels", "match": {"prefix": "/levels/"}, "route": to(LEVELS)}),
        json!({"name": "failover", "match": {"prefix": "/failover/"}, "route": to(FAILOVER)}),
        json!({"name": "spill", "match": {"path": "/levels70"}, "route": to(SPILL)}),
        json!({"name": "weighed", "match": {"path": "/zones80"}, "route": to(WEIGHED)}),
        json!({"name": "sticky", "match": {"path": "/sticky"}, "route": {"cluster": STICKY,
            "hash_policy": [{"header": {"header_name": "x-user"}}]}}),
        json!({"name": "sticky-cookie", "match": {"path": "/sticky-cookie"}, "route": {"cluster": STICKY_COOKIE,
            "hash_policy": [{"cookie": {"name": "session", "ttl": "3600s", "path": "/"}}]}}),
        json!({"name": "rewrite", "match": {"prefix": "/rw/"}, "route": {"cluster": A, "prefix_rewrite": "/v2/"}}),
        json!({"name": "strip", "match": {"prefix": "/strip/"}, "route": {"cluster": "b", "prefix_rewrite": "/"}}),
        json!({"name": "regex-rewrite", "match": {"prefix": "/rx/"}, "route": {"cluster": A,
            "regex_rewrite": {"pattern": {"regex": "^/rx/([a-z]+)/(.*)$"}, "substitution": "/\\2/\\1"}}}),
        json!({"name": "ping", "match": {"path": "/ping"}, "direct_response": {"status": 200, "body": {"inline_string": "pong"}}}),
        json!({"name": "gone", "match": {"path": "/gone"}, "direct_response": {"status": 410, "body": {"inline_string": "gone"}}}),
        json!({"name": "old", "match": {"path": "/old"}, "redirect": {"path_redirect": "/new"}}),
        json!({"name": "secure", "match": {"prefix": "/secure/"}, "redirect": {"https_redirect": true, "response_code": "FOUND"}}),
        json!({"name": "moved", "match": {"path": "/moved"}, "redirect": {"host_redirect": "other.test",
            "port_redirect": 8080, "strip_query": true, "response_code": "TEMPORARY_REDIRECT"}}),
        json!({"name": "docs", "match": {"prefix": "/docs/"}, "redirect": {"prefix_rewrite": "/manual/", "response_code": "PERMANENT_REDIRECT"}}),
    ];
    json!({
        "cds": [eds_cluster(A), eds_cluster(LEVELS), eds_cluster(FAILOVER), eds_cluster(SPILL),
            sticky, sticky_cookie, weighed,
            {"name": "b", "type": "STATIC", "connect_timeout": "1s",
            "load_assignment": load_assignment("b", &[(b.addr, 1, "z1")])}],
        "eds": [load_assignment(A, &[(a.addr, 1, "z1")]),
            levels(LEVELS, &[&[(a.addr, "HEALTHY")], &[(b.addr, "HEALTHY")]]),
            levels(FAILOVER, &[&[(a.addr, "UNHEALTHY")], &[(b.addr, "HEALTHY")]]),
            levels(SPILL, &[&[(a.addr, "HEALTHY"), (dead, "UNHEALTHY")], &[(b.addr, "HEALTHY")]]),
            load_assignment(STICKY, &[(a.addr, 1, "z1"), (b.addr, 1, "z1")]),
            load_assignment(STICKY_COOKIE, &[(a.addr, 1, "z1"), (b.addr, 1, "z1")]),
            {"cluster_name": WEIGHED, "endpoints": [
                {"locality": {"region": "r", "zone": "z1"}, "load_balancing_weight": 80,
                 "lb_endpoints": [{"endpoint": {"address": {"socket_address": {
                    "address": a.addr.ip().to_string(), "port_value": a.addr.port()}}}}]},
                {"locality": {"region": "r", "zone": "z2"}, "load_balancing_weight": 20,
                 "lb_endpoints": [{"endpoint": {"address": {"socket_address": {
                    "address": b.addr.ip().to_string(), "port_value": b.addr.port()}}}}]}]}],
        "rds": [{"name": "r1", "virtual_hosts": [
            {"name": "exact", "domains": ["exact.test"], "routes": [json!({"match": {"prefix": "/"}, "route": to(A)})]},
            {"name": "wild", "domains": ["*.wild.test"], "routes": [json!({"match": {"prefix": "/"}, "route": to("b")})]},
            {"name": "all", "domains": ["*"], "routes": routes}]}],
    })
}

/// A load assignment by priority level, in order: each level's `(address, health status)`
/// endpoints, its locality a zone of its own (as Istio's locality failover lays them out).
fn levels(cluster: &str, levels: &[&[(SocketAddr, &str)]]) -> Value {
    let groups: Vec<Value> = levels
        .iter()
        .enumerate()
        .map(|(priority, eps)| {
            let eps: Vec<Value> = eps
                .iter()
                .map(|(a, status)| {
                    json!({"endpoint": {"address": {"socket_address": {
                        "address": a.ip().to_string(), "port_value": a.port()}}},
                    "health_status": status})
                })
                .collect();
            json!({"locality": {"region": "r", "zone": format!("z{priority}")}, "priority": priority,
                "lb_endpoints": eps})
        })
        .collect();
    json!({"cluster_name": cluster, "endpoints": groups})
}

/// A deterministic case: `(what, request target, headers)`.
pub type Case = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// The deterministic cases.
pub const CASES: &[Case] = &[
    ("prefix route", "/a/x", &[]),
    ("exact path route", "/exact", &[]),
    ("exact path, longer path", "/exact/more", &[]),
    ("exact path, with a query", "/exact?x=1", &[]),
    ("string prefix, not a segment", "/prefix", &[]),
    ("header route", "/x", &[("x-canary", "1")]),
    ("header route, header absent", "/x", &[]),
    ("header route, name in capitals", "/x", &[("X-Canary", "1")]),
    ("header route, other value", "/x", &[("x-canary", "2")]),
    ("regex route", "/re/42", &[]),
    ("regex route, no whole match", "/re/4x", &[]),
    ("priority levels: level 0 in rotation", "/levels/x", &[]),
    (
        "priority levels: level 0 unhealthy (EDS)",
        "/failover/x",
        &[],
    ),
    ("100/0 split", "/split100", &[]),
    ("0/100 split", "/split0", &[]),
    (
        "virtual host, exact domain",
        "/x",
        &[("host", "exact.test")],
    ),
    (
        "virtual host, wildcard domain",
        "/x",
        &[("host", "api.wild.test")],
    ),
    (
        "virtual host, wildcard needs a label",
        "/x",
        &[("host", "wild.test")],
    ),
    ("prefix rewrite", "/rw/x?q=1", &[]),
    ("prefix rewrite to /", "/strip/x/y", &[]),
    ("regex rewrite", "/rx/abc/def", &[]),
    ("direct response 200", "/ping", &[]),
    ("direct response 410", "/gone", &[]),
    ("path redirect", "/old?x=1", &[]),
    ("https redirect, 302", "/secure/p?x=1", &[]),
    (
        "host and port redirect, strip query, 307",
        "/moved?x=1",
        &[],
    ),
    ("prefix redirect, 308", "/docs/a/b", &[]),
];

/// What an answer shows: `(status, origin, path)`. The origin is the echo origin's name,
/// `redirect` (the path is the `location`), `direct` (the path is the body of one of the
/// direct responses), or `-` for the proxy's own answers (a 404: their bodies differ).
pub type Seen = (u16, String, String);

/// What `GET target` with `headers` to `127.0.0.1:port` shows (`exchange`).
pub fn fetch(port: u16, target: &str, headers: &[(&str, &str)]) -> Option<Seen> {
    let (status, head, body) = exchange(port, target, headers)?;
    let body = body.as_str();
    let location = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("location")
            .then(|| v.trim().to_owned())
    });
    let seen = if let Some(rest) = body.strip_prefix("origin=") {
        let (name, path) = rest.split_once(" path=")?;
        (status, name.to_owned(), path.to_owned())
    } else if let Some(loc) = location {
        (status, "redirect".into(), loc)
    } else if ["pong", "gone"].contains(&body) {
        (status, "direct".into(), body.to_owned())
    } else {
        (status, "-".into(), "-".into())
    };
    Some(seen)
}
