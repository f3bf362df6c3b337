//! Whole-file tests: text in, `Config` or the full list of errors out.

use std::net::SocketAddr;
use std::time::Duration;

use crate::model::{
    Cluster, Config, DriverChoice, HashKey, Lb, Listener, ListenerKind, PathMatch, Role,
    RouteAction,
};
use crate::{parse, DEFAULT_CONFIG};

/// The sample of docs/config.md (and of the issue that specified the format).
const SAMPLE: &str = r#"
[proxy]
role = "sidecar"
workers = 2
driver = "auto"
drain_timeout_ms = 10000

[[listeners]]
name = "inbound"
bind = "127.0.0.1:15006"
protocol = "http"

[[listeners]]
name = "db"
bind = "127.0.0.1:15432"
protocol = "tcp"
cluster = "db"

[[routes]]
listener = "inbound"
name = "api-canary"
match = { host = "api.local", path_prefix = "/v1/", method = "GET", headers = { "x-canary" = "1" } }
cluster = "api-v2"
timeout_ms = 15000

[[routes]]
listener = "inbound"
name = "api"
match = { path_prefix = "/v1/" }
weighted = [ { cluster = "api-v1", weight = 90 }, { cluster = "api-v2", weight = 10 } ]

[[routes]]
listener = "inbound"
name = "ping"
match = { path_exact = "/ping" }
direct_response = { status = 200, body = "pong" }

[[clusters]]
name = "api-v1"
lb = "round_robin"
endpoints = [ "127.0.0.1:9001", { address = "127.0.0.1:9002", weight = 2 } ]
connect_timeout_ms = 1000

[[clusters]]
name = "api-v2"
lb = "ring_hash"
hash_key = "header:X-User-Id"
endpoints = [ "127.0.0.1:9011" ]

[[clusters]]
name = "db"
lb = "least_request"
endpoints = [ "[::1]:5432" ]
"#;

/// `text`, with [`LISTENER`] after it when it has no listener of its own (a configuration
/// needs at least one; the text is about something else).
pub(super) fn with_listener(text: &str) -> String {
    if text.contains("[[listeners]]") {
        text.to_owned()
    } else {
        format!("{text}\n{LISTENER}")
    }
}

pub(super) fn ok(text: &str) -> Config {
    parse(&with_listener(text)).unwrap_or_else(|e| panic!("expected a valid config, got:\n{e}"))
}

/// Every error, rendered `path: message` (of `text` with a listener, when it has none).
pub(super) fn errors(text: &str) -> Vec<String> {
    match parse(&with_listener(text)) {
        Ok(_) => panic!("expected errors, the config is valid:\n{text}"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

fn http(listener: &Listener) -> &crate::HttpListener {
    match &listener.kind {
        ListenerKind::Http(h) => h,
        ListenerKind::Tcp { .. } => panic!("{} is not http", listener.name),
    }
}

fn cluster<'c>(config: &'c Config, name: &str) -> &'c Cluster {
    let id = config.cluster_by_name(name).expect("cluster exists");
    config.cluster(id)
}

const LISTENER: &str = "[[listeners]]\nname = \"l\"\nbind = \"127.0.0.1:0\"\n";

#[test]
fn the_sample_validates_into_the_expected_model() {
    let c = ok(SAMPLE);
    assert_eq!(c.proxy.role, Role::Sidecar);
    assert_eq!(c.proxy.workers, 2);
    assert_eq!(c.proxy.driver, DriverChoice::Auto);
    assert_eq!(c.proxy.drain_timeout, Duration::from_secs(10));

    assert_eq!(c.listeners.len(), 2);
    let inbound = c.listener("inbound").expect("inbound");
    assert_eq!(inbound.bind, addr("127.0.0.1:15006"));
    let routes = &http(inbound).routes;
    let names: Vec<&str> = routes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["api-canary", "api", "ping"], "file order is kept");

    let canary = &routes[0];
    assert_eq!(canary.matcher.host.as_deref(), Some("api.local"));
    assert!(matches!(&canary.matcher.path, PathMatch::Prefix(p) if p == "/v1/"));
    assert_eq!(canary.matcher.method.as_deref(), Some("GET"));
    assert_eq!(
        canary.matcher.headers,
        [("x-canary".to_owned(), b"1".to_vec())]
    );
    assert_eq!(canary.timeout, Some(Duration::from_millis(15000)));
    let v2 = c.cluster_by_name("api-v2").expect("api-v2");
    assert!(matches!(canary.action, RouteAction::Cluster(id) if id == v2));

    let v1 = c.cluster_by_name("api-v1").expect("api-v1");
    match &routes[1].action {
        RouteAction::Weighted { targets, total } => {
            assert_eq!(targets, &[(v1, 90), (v2, 10)]);
            assert_eq!(*total, 100);
        }
        other => panic!("expected weighted, got {other:?}"),
    }
    assert_eq!(routes[1].timeout, None);

    match &routes[2].action {
        RouteAction::Direct(d) => {
            assert_eq!(d.status, 200);
            assert_eq!(&d.body[..], b"pong");
            assert_eq!(d.content_type, "text/plain; charset=utf-8");
        }
        other => panic!("expected direct, got {other:?}"),
    }

    let db = c.listener("db").expect("db");
    let db_cluster = c.cluster_by_name("db").expect("db cluster");
    assert!(matches!(db.kind, ListenerKind::Tcp { cluster } if cluster == db_cluster));

    let api_v1 = cluster(&c, "api-v1");
    assert_eq!(api_v1.lb, Lb::RoundRobin);
    let eps: Vec<(SocketAddr, u32)> = api_v1
        .endpoints
        .iter()
        .map(|e| (e.address, e.weight))
        .collect();
    assert_eq!(
        eps,
        [(addr("127.0.0.1:9001"), 1), (addr("127.0.0.1:9002"), 2)]
    );
    assert_eq!(api_v1.hash_key, None);
    let api_v2 = cluster(&c, "api-v2");
    assert_eq!(api_v2.lb, Lb::RingHash);
    assert_eq!(api_v2.hash_key, Some(HashKey::Header("x-user-id".into())));
    assert_eq!(cluster(&c, "db").endpoints[0].address, addr("[::1]:5432"));
}

#[test]
fn the_default_config_serves_a_welcome_page_on_8080() {
    let c = ok(DEFAULT_CONFIG);
    assert_eq!(c.listeners.len(), 1);
    let l = &c.listeners[0];
    assert_eq!(l.bind, addr("127.0.0.1:8080"));
    let routes = &http(l).routes;
    assert_eq!(routes.len(), 1);
    assert!(matches!(&routes[0].matcher.path, PathMatch::Prefix(p) if p == "/"));
    match &routes[0].action {
        RouteAction::Direct(d) => {
            assert_eq!(d.status, 200);
            assert_eq!(d.content_type, "text/html; charset=utf-8");
            assert!(d.body.starts_with(b"<!DOCTYPE html>"));
        }
        other => panic!("expected direct, got {other:?}"),
    }
    assert!(c.clusters.is_empty());
}

#[test]
fn an_empty_file_is_refused_it_would_serve_nothing() {
    for text in [
        "",
        "[proxy]\nworkers = 2\n",
        "# truncated\n[[clusters]]\nname = \"c\"\nendpoints = [ \"127.0.0.1:1\" ]\n",
    ] {
        let got: Vec<String> = match parse(text) {
            Ok(_) => panic!("valid without listeners:\n{text}"),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        };
        assert_eq!(got, ["listeners: at least one is required"], "{text}");
    }
}

#[test]
fn the_defaults_of_a_file_with_one_listener() {
    let c = ok("");
    assert_eq!(c.listeners.len(), 1);
    assert!(c.clusters.is_empty());
    assert_eq!(c.proxy.role, Role::Sidecar);
    assert_eq!(c.proxy.workers, 1);
    assert_eq!(c.proxy.driver, DriverChoice::Auto);
    assert_eq!(c.proxy.drain_timeout, Duration::from_millis(10_000));
}

#[test]
fn defaults_are_resolved() {
    let c = ok(&format!(
        "{LISTENER}[[listeners]]\nname = \"t\"\nbind = \"127.0.0.1:0\"\nprotocol = \"tcp\"\ncluster = \"c\"\n\
         [[routes]]\nlistener = \"l\"\nname = \"r\"\ncluster = \"c\"\n\
         [[clusters]]\nname = \"c\"\n"
    ));
    let l = c.listener("l").expect("l");
    assert_eq!(l.max_connections, 10_000);
    assert_eq!(l.idle_timeout, Duration::from_millis(60_000));
    let h = http(l);
    assert_eq!(h.limits.max_header_bytes, 65_536);
    assert_eq!(h.limits.max_headers, 100);
    assert_eq!(h.limits.max_uri_bytes, 8_192);
    assert_eq!(h.limits.request_head_timeout, Duration::from_millis(10_000));
    assert_eq!(h.limits.max_request_body_bytes, None);
    let r = &h.routes[0];
    assert!(matches!(r.matcher.path, PathMatch::Any));
    assert_eq!((&r.matcher.host, &r.matcher.method), (&None, &None));
    assert!(r.matcher.headers.is_empty());
    assert_eq!(r.timeout, None);

    let t = c.listener("t").expect("t");
    assert_eq!(t.max_connections, 10_000);
    assert_eq!(t.idle_timeout, Duration::from_millis(60_000));

    let cl = cluster(&c, "c");
    assert_eq!(cl.lb, Lb::RoundRobin);
    assert!(
        cl.endpoints.is_empty(),
        "a cluster without endpoints is valid"
    );
    assert_eq!(cl.connect_timeout, Duration::from_millis(1_000));
    assert_eq!(cl.hash_key, None);
    assert_eq!(cl.max_idle_per_endpoint, 64);
    assert_eq!(cl.idle_timeout, Duration::from_millis(60_000));
    assert_eq!(cl.fail_timeout, Duration::from_millis(10_000));
}

#[test]
fn explicit_values_override_defaults() {
    let c = ok(r#"
[proxy]
role = "gateway"
workers = 3
driver = "epoll"
drain_timeout_ms = 500

[[listeners]]
name = "l"
bind = "0.0.0.0:8080"
max_connections = 7
idle_timeout_ms = 1
request_head_timeout_ms = 2
max_header_bytes = 3
max_headers = 4
max_uri_bytes = 5
max_request_body_bytes = 0

[[clusters]]
name = "c"
lb = "random"
connect_timeout_ms = 6
max_idle_per_endpoint = 0
idle_timeout_ms = 8
fail_timeout_ms = 9
"#);
    assert_eq!(c.proxy.role, Role::Gateway);
    assert_eq!(c.proxy.workers, 3);
    assert_eq!(c.proxy.driver, DriverChoice::Epoll);
    assert_eq!(c.proxy.drain_timeout, Duration::from_millis(500));
    let l = &c.listeners[0];
    assert_eq!(
        (l.max_connections, l.idle_timeout),
        (7, Duration::from_millis(1))
    );
    let h = &http(l).limits;
    assert_eq!(h.request_head_timeout, Duration::from_millis(2));
    assert_eq!(
        (h.max_header_bytes, h.max_headers, h.max_uri_bytes),
        (3, 4, 5)
    );
    assert_eq!(h.max_request_body_bytes, Some(0));
    let cl = &c.clusters[0];
    assert_eq!(cl.lb, Lb::Random);
    assert_eq!(cl.connect_timeout, Duration::from_millis(6));
    assert_eq!(cl.max_idle_per_endpoint, 0);
    assert_eq!(cl.idle_timeout, Duration::from_millis(8));
    assert_eq!(cl.fail_timeout, Duration::from_millis(9));
}

#[test]
fn gateway_workers_default_to_the_cores() {
    let c = ok("[proxy]\nrole = \"gateway\"\n");
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    assert_eq!(c.proxy.workers, cores.min(1024));
    assert_eq!(ok("[proxy]\nrole = \"sidecar\"\n").proxy.workers, 1);
}

#[test]
fn several_mistakes_are_all_reported_with_their_paths() {
    let text = r#"
[proxy]
workers = 0

[[listeners]]
name = "inbound"
bind = "localhost:80"

[[routes]]
listener = "inbound"
name = "a"
match = { path_regex = "/users/(" }
cluster = "nope"

[[routes]]
listener = "outbound"
name = "b"
weighted = [ { cluster = "missing", weight = 1 } ]

[[clusters]]
name = "c"
endpoints = [ "10.0.0.1", { address = "10.0.0.2:80", weight = 0 } ]

[[clusters]]
name = "d"
lb = "ring_hash"
"#;
    let errors = errors(text);
    assert_eq!(
        errors,
        [
            "proxy.workers: must be from 1 to 1024, got 0",
            "listeners[0].bind: invalid socket address \"localhost:80\"",
            "routes[0].match.path_regex: invalid regex \"/users/(\": unclosed group",
            "routes[0].cluster: unknown cluster \"nope\"",
            "routes[1].listener: unknown listener \"outbound\"",
            "routes[1].weighted[0].cluster: unknown cluster \"missing\"",
            "clusters[0].endpoints[0]: invalid socket address \"10.0.0.1\"",
            "clusters[0].endpoints[1].weight: must be from 1 to 10000, got 0",
            "clusters[1]: missing field \"hash_key\", required when lb = \"ring_hash\"",
        ]
    );
}

#[test]
fn one_broken_element_does_not_hide_the_others() {
    let text = r#"
[[listeners]]
name = "a"
bnid = "127.0.0.1:1"

[[listeners]]
name = "b"
bind = "127.0.0.1"

[[clusters]]
name = "c"
endpoints = [ { adress = "127.0.0.1:1" } ]

[[clusters]]
name = "d"
endpoints = [ "nope" ]
"#;
    let errors = errors(text);
    assert_eq!(errors.len(), 4, "{errors:#?}");
    assert!(errors[0].starts_with("listeners[0].bnid: unknown field \"bnid\", expected one of"));
    assert_eq!(
        errors[1],
        "listeners[1].bind: invalid socket address \"127.0.0.1\""
    );
    assert!(errors[2].starts_with("clusters[0].endpoints[0].adress: unknown field \"adress\""));
    assert_eq!(
        errors[3],
        "clusters[1].endpoints[0]: invalid socket address \"nope\""
    );
}

#[test]
fn unknown_keys_are_errors_everywhere() {
    let cases = [
        ("[[listener]]\nname = \"l\"\n", "listener: unknown field \"listener\", expected one of \"proxy\", \"mesh\", \"listeners\", \"routes\", \"authz\", \"clusters\", \"consumers\", \"jwt_providers\", \"redis\""),
        ("[proxy]\nworkres = 2\n", "proxy.workres: unknown field \"workres\""),
        (
            "[[listeners]]\nname = \"l\"\nbind = \"127.0.0.1:1\"\nbnid = \"x\"\n",
            "listeners[0].bnid: unknown field \"bnid\"",
        ),
        (
            &format!("{LISTENER}[[routes]]\nlistener = \"l\"\nname = \"r\"\nmatch = {{ paht = \"/\" }}\ndirect_response = {{ status = 200 }}\n"),
            "routes[0].match.paht: unknown field \"paht\"",
        ),
        (
            &format!("{LISTENER}[[routes]]\nlistener = \"l\"\nname = \"r\"\ndirect_response = {{ status = 200, bdy = \"x\" }}\n"),
            "routes[0].direct_response.bdy: unknown field \"bdy\"",
        ),
        (
            "[[clusters]]\nname = \"c\"\nendpoints = [ \"127.0.0.1:1\", { address = \"127.0.0.1:2\", wieght = 2 } ]\n",
            "clusters[0].endpoints[1].wieght: unknown field \"wieght\"",
        ),
        (
            "[[clusters]]\nname = \"c\"\nlb_policy = \"random\"\n",
            "clusters[0].lb_policy: unknown field \"lb_policy\"",
        ),
    ];
    for (text, expected) in cases {
        let errors = errors(text);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(
            errors[0].starts_with(expected),
            "{:?} does not start with {expected:?}",
            errors[0]
        );
    }
}

#[test]
fn type_errors_carry_their_path() {
    assert_eq!(
        errors("[proxy]\nworkers = \"two\"\n"),
        ["proxy.workers: invalid type: string \"two\", expected a non-negative integer"]
    );
    assert_eq!(
        errors("[proxy]\nrole = \"ingress\"\n"),
        ["proxy.role: unknown variant \"ingress\", expected \"sidecar\" or \"gateway\""]
    );
    assert_eq!(
        errors("[[listeners]]\nname = \"l\"\nbind = 8080\n"),
        ["listeners[0].bind: invalid type: integer 8080, expected a string"]
    );
    assert_eq!(
        errors("[[listeners]]\nbind = \"127.0.0.1:1\"\n"),
        ["listeners[0]: missing field \"name\""]
    );
    assert_eq!(
        errors("proxy = 1\n"),
        ["proxy: invalid type: integer 1, expected a table"]
    );
    assert_eq!(
        errors("[[clusters]]\nname = \"c\"\nendpoints = [ 8080 ]\n"),
        ["clusters[0].endpoints[0]: invalid type: integer 8080, expected an address \"IP:port\" or a table { address = \"IP:port\", weight = N }"]
    );
}

#[test]
fn a_syntax_error_is_one_error_with_a_position() {
    let errors = errors("[proxy]\nworkers = \n");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("TOML syntax error at line 2, column "),
        "{errors:?}"
    );
}

#[test]
fn bad_addresses() {
    for bad in ["10.0.0.1", "localhost:80", "::1:80", "1.2.3.4:99999", ""] {
        let text = format!("[[listeners]]\nname = \"l\"\nbind = {bad:?}\n");
        assert_eq!(
            errors(&text),
            [format!("listeners[0].bind: invalid socket address {bad:?}")]
        );
    }
    assert_eq!(
        errors("[[clusters]]\nname = \"c\"\nendpoints = [ { address = \"host:x\" } ]\n"),
        ["clusters[0].endpoints[0].address: invalid socket address \"host:x\""]
    );
    assert_eq!(
        errors("[[clusters]]\nname = \"c\"\nendpoints = [ \"127.0.0.1:0\" ]\n"),
        ["clusters[0].endpoints[0]: invalid endpoint \"127.0.0.1:0\": port 0 cannot be connected to"]
    );
    let v6 = ok("[[listeners]]\nname = \"l\"\nbind = \"[::1]:80\"\n");
    assert_eq!(v6.listeners[0].bind, addr("[::1]:80"));
}

#[test]
fn duplicate_names_are_errors() {
    let text = r#"
[[listeners]]
name = "l"
bind = "127.0.0.1:1"
[[listeners]]
name = "l"
bind = "127.0.0.1:2"
[[listeners]]
name = "m"
bind = "127.0.0.1:3"

[[routes]]
listener = "l"
name = "r"
cluster = "c"
[[routes]]
listener = "l"
name = "r"
cluster = "c"
[[routes]]
listener = "m"
name = "r"
cluster = "c"

[[clusters]]
name = "c"
[[clusters]]
name = "c"
endpoints = [ "127.0.0.1:9", "127.0.0.1:9" ]
"#;
    assert_eq!(
        errors(text),
        [
            "listeners[1].name: duplicate listener name \"l\" (also listeners[0].name)",
            "routes[1].name: duplicate route name \"r\" on listener \"l\" (also routes[0].name)",
            "clusters[1].name: duplicate cluster name \"c\" (also clusters[0].name)",
            "clusters[1].endpoints[1]: duplicate endpoint 127.0.0.1:9 (also endpoints[0])",
        ]
    );
}

#[test]
fn invalid_names_are_errors() {
    assert_eq!(
        errors("[[listeners]]\nname = \"in bound\"\nbind = \"127.0.0.1:1\"\n"),
        ["listeners[0].name: invalid name \"in bound\": use 1 to 128 characters among A-Z a-z 0-9 - _ ."]
    );
}

#[test]
fn overlapping_binds_are_errors() {
    let text = r#"
[[listeners]]
name = "a"
bind = "127.0.0.1:80"
[[listeners]]
name = "b"
bind = "127.0.0.1:80"
[[listeners]]
name = "c"
bind = "0.0.0.0:80"
[[listeners]]
name = "d"
bind = "[::1]:80"
[[listeners]]
name = "e"
bind = "127.0.0.1:0"
[[listeners]]
name = "f"
bind = "127.0.0.1:0"
"#;
    assert_eq!(
        errors(text),
        [
            "listeners[1].bind: duplicate bind address 127.0.0.1:80 (also listeners[0].bind)",
            "listeners[2].bind: bind address 0.0.0.0:80 overlaps 127.0.0.1:80 (listeners[0].bind)",
        ]
    );
}

#[test]
fn ring_hash_needs_a_hash_key_and_only_ring_hash_takes_one() {
    assert_eq!(
        errors("[[clusters]]\nname = \"c\"\nlb = \"ring_hash\"\n"),
        ["clusters[0]: missing field \"hash_key\", required when lb = \"ring_hash\""]
    );
    assert_eq!(
        errors("[[clusters]]\nname = \"c\"\nhash_key = \"source_ip\"\n"),
        ["clusters[0].hash_key: only valid with lb = \"ring_hash\""]
    );
    assert_eq!(
        errors("[[clusters]]\nname = \"c\"\nlb = \"ring_hash\"\nhash_key = \"query:id\"\n"),
        ["clusters[0].hash_key: invalid hash key \"query:id\": expected \"header:NAME\", \"cookie:NAME\" or \"source_ip\""]
    );
    for (key, parsed) in [
        ("source_ip", HashKey::SourceIp),
        ("cookie:session", HashKey::Cookie("session".into())),
        ("header:X-User", HashKey::Header("x-user".into())),
    ] {
        let c = ok(&format!(
            "[[clusters]]\nname = \"c\"\nlb = \"ring_hash\"\nhash_key = {key:?}\n"
        ));
        assert_eq!(c.clusters[0].hash_key, Some(parsed));
    }
}

#[test]
fn tcp_listeners() {
    assert_eq!(
        errors("[[listeners]]\nname = \"t\"\nbind = \"127.0.0.1:1\"\nprotocol = \"tcp\"\n"),
        ["listeners[0]: missing field \"cluster\", required when protocol = \"tcp\""]
    );
    let text = r#"
[[listeners]]
name = "t"
bind = "127.0.0.1:1"
protocol = "tcp"
cluster = "c"
max_headers = 10
max_request_body_bytes = 10

[[listeners]]
name = "h"
bind = "127.0.0.1:2"
cluster = "c"

[[listeners]]
name = "u"
bind = "127.0.0.1:3"
protocol = "tcp"
cluster = "nope"

[[routes]]
listener = "t"
name = "r"
cluster = "c"

[[clusters]]
name = "c"
"#;
    assert_eq!(
        errors(text),
        [
            "listeners[0].max_headers: only valid on protocol = \"http\" listeners",
            "listeners[0].max_request_body_bytes: only valid on protocol = \"http\" listeners",
            "listeners[1].cluster: only valid on protocol = \"tcp\" listeners (an http listener's routes name clusters)",
            "listeners[2].cluster: unknown cluster \"nope\"",
            "routes[0].listener: listener \"t\" is a tcp listener; routes apply to http listeners only",
        ]
    );
}

#[test]
fn route_actions() {
    let route = |body: &str| {
        format!("{LISTENER}[[routes]]\nlistener = \"l\"\nname = \"r\"\n{body}\n[[clusters]]\nname = \"c\"\n[[clusters]]\nname = \"d\"\n")
    };
    assert_eq!(
        errors(&route("")),
        ["routes[0]: needs one of cluster, weighted, direct_response, redirect"]
    );
    assert_eq!(
        errors(&route("cluster = \"c\"\ndirect_response = { status = 200 }")),
        ["routes[0]: only one of cluster, weighted, direct_response, redirect may be given, found cluster, direct_response"]
    );
    assert_eq!(
        errors(&route(
            "weighted = [ { cluster = \"c\", weight = 0 }, { cluster = \"d\", weight = 0 } ]"
        )),
        ["routes[0].weighted: weights sum to 0: at least one must be greater than 0"]
    );
    assert_eq!(
        errors(&route("weighted = []")),
        ["routes[0].weighted: must list at least one cluster"]
    );
    assert_eq!(
        errors(&route(
            "weighted = [ { cluster = \"c\", weight = 1 }, { cluster = \"c\", weight = 1 } ]"
        )),
        ["routes[0].weighted[1].cluster: cluster \"c\" listed twice (also weighted[0])"]
    );
    // A zero weight next to a positive one is fine: that cluster gets nothing.
    let c = ok(&route(
        "weighted = [ { cluster = \"c\", weight = 0 }, { cluster = \"d\", weight = 3 } ]",
    ));
    assert!(matches!(
        &http(&c.listeners[0]).routes[0].action,
        RouteAction::Weighted { total: 3, .. }
    ));

    assert_eq!(
        errors(&route("direct_response = { status = 101 }")),
        ["routes[0].direct_response.status: must be from 200 to 599, got 101 (a 1xx status is not a final response)"]
    );
    assert_eq!(
        errors(&route("direct_response = { status = 600 }")),
        ["routes[0].direct_response.status: must be from 200 to 599, got 600"]
    );
    assert_eq!(
        errors(&route(
            "direct_response = { status = 200, content_type = \"a\\r\\nx: y\" }"
        )),
        ["routes[0].direct_response.content_type: invalid header value \"a\\r\\nx: y\""]
    );
    assert_eq!(
        errors(&route("direct_response = { status = 204 }\ntimeout_ms = 5")),
        ["routes[0].timeout_ms: not valid on a direct_response route (no upstream to wait for)"]
    );
    assert_eq!(
        errors(&route("cluster = \"c\"\ntimeout_ms = 0")),
        ["routes[0].timeout_ms: must be greater than 0"]
    );

    let c = ok(&route("direct_response = { status = 503 }"));
    match &http(&c.listeners[0]).routes[0].action {
        RouteAction::Direct(d) => assert_eq!((d.status, d.body.len()), (503, 0)),
        other => panic!("expected direct, got {other:?}"),
    }
}

#[test]
fn match_mistakes() {
    let with_match = |m: &str| {
        format!("{LISTENER}[[routes]]\nlistener = \"l\"\nname = \"r\"\nmatch = {m}\ndirect_response = {{ status = 200 }}\n")
    };
    let cases = [
        (r#"{ path_prefix = "v1/" }"#, r#"routes[0].match.path_prefix: must start with "/", got "v1/""#),
        (r#"{ path_exact = "" }"#, r#"routes[0].match.path_exact: must start with "/", got """#),
        (
            r#"{ path_prefix = "/a", path_exact = "/a" }"#,
            "routes[0].match: at most one of path_prefix, path_exact, path_regex may be given, found path_prefix, path_exact",
        ),
        // Valid only once wrapped: must be rejected, or it would escape the anchors.
        (r#"{ path_regex = "a)|(b" }"#, r#"routes[0].match.path_regex: invalid regex "a)|(b": unopened group"#),
        (r#"{ method = "GE T" }"#, r#"routes[0].match.method: invalid method "GE T": must be an HTTP token such as "GET""#),
        (r#"{ host = "api local" }"#, r#"routes[0].match.host: invalid host "api local""#),
        (r#"{ headers = { "x canary" = "1" } }"#, r#"routes[0].match.headers."x canary": invalid header name "x canary""#),
        (
            r#"{ headers = { "X-A" = "1", "x-a" = "1" } }"#,
            r#"routes[0].match.headers.x-a: duplicate header "x-a" (header names are case-insensitive)"#,
        ),
        (
            r#"{ headers = { "x-a" = "1\n" } }"#,
            r#"routes[0].match.headers.x-a: invalid header value "1\n": control characters are not allowed"#,
        ),
        (
            r#"{ headers = { "x-a" = " 1" } }"#,
            r#"routes[0].match.headers.x-a: header value " 1" has leading or trailing whitespace, which a request's header value never has"#,
        ),
    ];
    for (m, expected) in cases {
        assert_eq!(errors(&with_match(m)), [expected], "for match = {m}");
    }

    let c = ok(&with_match(
        r#"{ host = "*.Example.COM:443", method = "purge", headers = { "X-Team" = "Blue" } }"#,
    ));
    let m = &http(&c.listeners[0]).routes[0].matcher;
    assert_eq!(m.host.as_deref(), Some("*.example.com"));
    assert_eq!(
        m.method.as_deref(),
        Some("purge"),
        "methods are stored as written"
    );
    assert_eq!(m.headers, [("x-team".to_owned(), b"Blue".to_vec())]);
}

#[test]
fn out_of_range_numbers() {
    assert_eq!(
        errors("[proxy]\nworkers = 1025\n"),
        ["proxy.workers: must be from 1 to 1024, got 1025"]
    );
    assert_eq!(
        errors("[proxy]\ndrain_timeout_ms = 0\n"),
        ["proxy.drain_timeout_ms: must be greater than 0"]
    );
    assert_eq!(
        errors("[proxy]\ndrain_timeout_ms = 31536000001\n"),
        ["proxy.drain_timeout_ms: must be at most 31536000000 (one year), got 31536000001"]
    );
    assert_eq!(
        errors("[[listeners]]\nname = \"l\"\nbind = \"127.0.0.1:1\"\nmax_connections = 0\nmax_headers = 0\n"),
        [
            "listeners[0].max_connections: must be greater than 0",
            "listeners[0].max_headers: must be greater than 0",
        ]
    );
    assert_eq!(
        errors("[[clusters]]\nname = \"c\"\nconnect_timeout_ms = 0\nfail_timeout_ms = -1\n"),
        ["clusters[0].fail_timeout_ms: invalid value: integer -1, expected a non-negative integer"]
    );
    assert_eq!(
        errors("[[clusters]]\nname = \"c\"\nconnect_timeout_ms = 0\n"),
        ["clusters[0].connect_timeout_ms: must be greater than 0"]
    );
}

#[test]
fn a_broken_element_still_lends_its_name() {
    // The cluster and the listener fail to deserialize; the route naming them must not add
    // "unknown cluster" / "unknown listener" on top.
    let text = r#"
[[listeners]]
name = "l"
bind = "127.0.0.1:1"
typo = 1

[[routes]]
listener = "l"
name = "r"
cluster = "c"

[[clusters]]
name = "c"
lb = "fastest"
"#;
    let errors = errors(text);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors[0].starts_with("listeners[0].typo: unknown field"));
    assert!(errors[1].starts_with("clusters[0].lb: unknown variant \"fastest\""));
}

#[test]
fn errors_are_sorted_like_the_file() {
    // Clusters are validated before listeners, yet reported after them.
    let text = "foo = 1\n[[clusters]]\nname = \"c\"\nendpoints = [\"x\"]\n[[listeners]]\nname = \"l\"\nbind = \"y\"\n[proxy]\nworkers = 0\n";
    let errors = errors(text);
    let paths: Vec<&str> = errors
        .iter()
        .map(|e| e.split(':').next().unwrap_or(""))
        .collect();
    assert_eq!(
        paths,
        [
            "foo",
            "proxy.workers",
            "listeners[0].bind",
            "clusters[0].endpoints[0]"
        ]
    );
}

#[test]
fn content_hash_follows_the_text() {
    let a = ok(SAMPLE).content_hash;
    assert_eq!(a, ok(SAMPLE).content_hash);
    assert_eq!(a, crate::hash::fnv1a64(SAMPLE.as_bytes()));
    assert_ne!(a, ok(&format!("{SAMPLE}\n# comment\n")).content_hash);
}

#[test]
fn cluster_fingerprints_compare_content() {
    let c = ok(SAMPLE);
    let again = ok(&format!("# reordered file, same cluster\n{SAMPLE}"));
    assert_eq!(
        cluster(&c, "api-v1").fingerprint,
        cluster(&again, "api-v1").fingerprint
    );
    assert_ne!(
        cluster(&c, "api-v1").fingerprint,
        cluster(&c, "api-v2").fingerprint
    );

    let fp = |cluster_toml: &str| ok(cluster_toml).clusters[0].fingerprint;
    let base = "[[clusters]]\nname = \"c\"\nendpoints = [ \"127.0.0.1:1\", { address = \"127.0.0.1:2\", weight = 2 } ]\n";
    assert_eq!(fp(base), fp(base));
    // Same cluster written differently: weight 1 is the default.
    assert_eq!(
        fp(base),
        fp("[[clusters]]\nname = \"c\"\nlb = \"round_robin\"\nendpoints = [ { address = \"127.0.0.1:1\", weight = 1 }, { address = \"127.0.0.1:2\", weight = 2 } ]\nconnect_timeout_ms = 1000\n")
    );
    let changed = [
        base.replace("weight = 2", "weight = 3"),
        base.replace("127.0.0.1:2", "127.0.0.1:3"),
        base.replace("name = \"c\"", "name = \"d\""),
        format!("{base}lb = \"random\"\n"),
        format!("{base}connect_timeout_ms = 2000\n"),
        format!("{base}max_idle_per_endpoint = 1\n"),
        format!("{base}idle_timeout_ms = 1\n"),
        format!("{base}fail_timeout_ms = 1\n"),
    ];
    for text in &changed {
        assert_ne!(fp(base), fp(text), "fingerprint unchanged for:\n{text}");
    }
    assert_ne!(
        fp("[[clusters]]\nname = \"c\"\nlb = \"ring_hash\"\nhash_key = \"header:a\"\n"),
        fp("[[clusters]]\nname = \"c\"\nlb = \"ring_hash\"\nhash_key = \"cookie:a\"\n")
    );
}

#[test]
fn truncated_files_never_panic() {
    // Every prefix of the sample: syntax errors, missing fields, dangling references.
    for (end, _) in SAMPLE.char_indices() {
        let _ = parse(&SAMPLE[..end]);
    }
}

/// docs/config.md must say exactly what the code does: every ```toml block in it is valid,
/// except those starting with `# invalid`, whose errors must be exactly the lines of the
/// ```text block that follows.
#[test]
fn the_examples_of_docs_config_md_are_true() {
    const DOC: &str = include_str!("../../../../docs/config.md");
    let pki = super::tls_tests::pki();
    let mut blocks: Vec<(&str, &str)> = Vec::new(); // (language, body)
    let mut rest = DOC;
    while let Some(start) = rest.find("\n```") {
        let after = &rest[start + 4..];
        let (lang, body_and_more) = after.split_once('\n').expect("fence line");
        let end = body_and_more.find("\n```").expect("closing fence");
        blocks.push((lang, &body_and_more[..end + 1]));
        rest = &body_and_more[end + 4..];
    }
    let mut valid = 0;
    let mut invalid = 0;
    for (i, (lang, body)) in blocks.iter().enumerate() {
        if *lang != "toml" {
            continue;
        }
        if body.starts_with("# invalid") {
            let expected: Vec<&str> = match blocks.get(i + 1) {
                Some(("text", text)) => text.lines().collect(),
                _ => panic!("an invalid example must be followed by a ```text block"),
            };
            assert_eq!(
                errors(body),
                expected,
                "errors of the docs example:\n{body}"
            );
            invalid += 1;
        } else {
            // Certificate files named by the examples exist in the fixture directory.
            if let Err(e) = crate::parse_in(&with_listener(body), pki.path()) {
                panic!("docs example is invalid:\n{e}\n{body}");
            }
            valid += 1;
        }
    }
    assert!(
        valid >= 3 && invalid >= 1,
        "examples not found: {valid} valid, {invalid} invalid"
    );
}

#[test]
fn control_plane_keys_are_read_and_checked() {
    let c = ok("[proxy]\nctld = \"/run/ringside/ctld.sock\"\nnode_id = \"cart-1\"\ncontrol_socket = \"/tmp/r.sock\"\n");
    assert_eq!(
        c.proxy.ctld.as_deref(),
        Some(std::path::Path::new("/run/ringside/ctld.sock"))
    );
    assert_eq!(c.proxy.node_id.as_deref(), Some("cart-1"));
    assert_eq!(
        c.proxy.control_socket.as_deref(),
        Some(std::path::Path::new("/tmp/r.sock"))
    );
    let e = errors("[proxy]\nctld = \"\"\nnode_id = \"bad id\"\n");
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(e[0].starts_with("proxy.ctld: invalid socket path"), "{e:?}");
    assert!(e[1].starts_with("proxy.node_id: "), "{e:?}");
}

#[test]
fn node_labels_are_read_and_checked() {
    let c = ok("[proxy]\nlabels = { app = \"web\", zone = \"eu-1a\" }\n");
    let got: Vec<(&str, &str)> = c
        .proxy
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(got, [("app", "web"), ("zone", "eu-1a")]);
    let e = errors("[proxy]\nlabels = { \"bad key\" = \"x\", app = \"a b\" }\n");
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(e[0].starts_with("proxy.labels.app: invalid value"), "{e:?}");
    assert!(
        e[1].starts_with("proxy.labels.bad key: invalid label key"),
        "{e:?}"
    );
}
