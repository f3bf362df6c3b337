//! The gateway's stages through the pipeline: a gateway stack (as `gateway/src/stack.rs`
//! builds it on the sidecar's) compiled against a small configuration, `decide` run on
//! parsed heads, and the decision, the upstream head and the response fields checked.

use ringside_codec::Edits;
use ringside_config::ListenerKind;

use super::{Compiled, ListenerStep, Local, Req, RouteStep, Stack};
use crate::cx::metrics::ListenerStats;
use crate::cx::ClientConn;
use crate::pipeline::{decide, Decision, Piped};

const CONFIG: &str = r#"
    [proxy]
    role = "gateway"

    [[listeners]]
    name = "in"
    bind = "127.0.0.1:1"
    max_request_body_bytes = 1000
    ip_deny = [ "192.0.2.0/24" ]

    [[routes]]
    listener = "in"
    name = "orders"
    match = { path_prefix = "/api/orders/" }
    rewrite = { prefix = "/orders/", host = "orders.internal:8080" }
    max_request_body_bytes = 10
    cluster = "app"

    [routes.cors]
    allow_origins = [ "https://app.example.com", "regex:https://[a-z]+\\.example\\.org" ]
    allow_methods = [ "GET", "POST" ]
    allow_headers = [ "Authorization" ]
    expose_headers = [ "x-request-id" ]
    max_age_s = 600
    allow_credentials = true

    [[routes]]
    listener = "in"
    name = "regex"
    match = { path_prefix = "/v1/" }
    rewrite = { regex = { pattern = "^/v1/([a-z]+)/(.*)$", substitution = "/\\2/\\1" } }
    cluster = "app"

    [[routes]]
    listener = "in"
    name = "private"
    match = { path_prefix = "/private" }
    ip_allow = [ "10.0.0.0/8" ]
    ip_deny = [ "10.0.0.0/24" ]
    cluster = "app"

    [[routes]]
    listener = "in"
    name = "moved"
    match = { path_prefix = "/old/" }
    redirect = { scheme = "https", prefix = "/new/", status = 308 }

    [[clusters]]
    name = "app"
    endpoints = [ "127.0.0.1:2" ]
"#;

/// The sidecar's stack with the gateway's steps where `gateway/src/stack.rs` puts them.
fn stack() -> Stack {
    super::test_sidecar()
        .listener_after(ListenerStep::Limits, ListenerStep::IpFilter)
        .route_after(RouteStep::RateLimit, RouteStep::IpFilter)
        .route_after(RouteStep::IpFilter, RouteStep::Cors)
        .route_after(RouteStep::Cors, RouteStep::BodyLimit)
        .route_after(RouteStep::BodyLimit, RouteStep::Rewrite)
        .route_after(RouteStep::Direct, RouteStep::Redirect)
}

/// What `decide` made of a request.
struct Seen {
    said: String,
    /// The upstream head's target and authority (forwarded requests).
    upstream: Option<(String, Option<String>)>,
    edits: Edits,
    body_limit: Option<u64>,
    /// The fields the answer or the response gets from the stages' hooks.
    response: Vec<(String, String)>,
}

fn run(text: &str, peer: &str) -> Seen {
    let config = ringside_config::parse(CONFIG).unwrap();
    let ListenerKind::Http(http) = &config.listeners[0].kind else {
        panic!("http listener")
    };
    let registry = crate::cx::shared::Registry::default();
    let compiled = Compiled::build(&stack(), &config.listeners[0], http, &registry);
    let head = super::test_head(text);
    let conn = ClientConn {
        peer: peer.parse().unwrap(),
        tls: false,
        identity: None,
        xfcc: None,
        original_dst: None,
    };
    let stats = ListenerStats::default();
    let random = || 4;
    let mut req = Req::new(&head, &conn, &stats, false, false, &random);
    let (said, stages) = match decide(&compiled, http, &mut req) {
        Decision::Reply {
            route,
            local,
            stages,
        } => (
            match local {
                Local::Error(e) => format!("{route}:{}", e.status()),
                Local::Direct(d) => format!("{route}:direct {}", d.status),
                Local::Redirect { status, location } => format!("{route}:{status} {location}"),
            },
            stages,
        ),
        Decision::Forward { route, stages, .. } => (format!("{}:forward", route.name), stages),
        Decision::Tunnel { route, stages, .. } => (format!("{}:tunnel", route.name), stages),
    };
    let upstream = said.ends_with(":forward").then(|| {
        let up = req.upstream_head();
        (
            up.path_and_query().to_owned(),
            up.authority().map(str::to_owned),
        )
    });
    // The origin's response carries its own `Date`: only the stages' edits are left.
    let response = Piped::new(&req, stages)
        .response_edits(&|n| n == "date")
        .add
        .iter()
        .map(|(n, v)| {
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            (text(n), text(v))
        })
        .collect();
    Seen {
        said,
        upstream,
        edits: req.edits.clone(),
        body_limit: req.body_limit,
        response,
    }
}

const CLIENT: &str = "10.1.0.1:5000";

fn field<'a>(seen: &'a Seen, name: &str) -> Option<&'a str> {
    seen.response
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn a_preflight_from_an_allowed_origin_is_answered_here() {
    let seen = run(
        "OPTIONS /api/orders/1 HTTP/1.1\r\nHost: h\r\nOrigin: https://shop.example.org\r\nAccess-Control-Request-Method: POST\r\n\r\n",
        CLIENT,
    );
    assert_eq!(seen.said, "orders:direct 204");
    assert_eq!(
        field(&seen, "access-control-allow-origin"),
        Some("https://shop.example.org")
    );
    assert_eq!(
        field(&seen, "access-control-allow-methods"),
        Some("GET, POST")
    );
    assert_eq!(
        field(&seen, "access-control-allow-headers"),
        Some("authorization")
    );
    assert_eq!(field(&seen, "access-control-max-age"), Some("600"));
    assert_eq!(
        field(&seen, "access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(field(&seen, "vary"), Some("origin"));
    assert_eq!(field(&seen, "access-control-expose-headers"), None);
    // From an origin not allowed: 403, and no CORS field.
    let seen = run(
        "OPTIONS /api/orders/1 HTTP/1.1\r\nHost: h\r\nOrigin: https://evil.example\r\nAccess-Control-Request-Method: POST\r\n\r\n",
        CLIENT,
    );
    assert_eq!(seen.said, "orders:403");
}

#[test]
fn actual_requests_get_the_origin_echoed_only_when_allowed() {
    let seen = run(
        "GET /api/orders/1 HTTP/1.1\r\nHost: h\r\nOrigin: https://app.example.com\r\n\r\n",
        CLIENT,
    );
    assert_eq!(seen.said, "orders:forward");
    assert_eq!(
        field(&seen, "access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(
        field(&seen, "access-control-expose-headers"),
        Some("x-request-id")
    );
    assert_eq!(field(&seen, "vary"), Some("origin"));
    assert_eq!(field(&seen, "access-control-allow-methods"), None);
    let seen = run(
        "GET /api/orders/1 HTTP/1.1\r\nHost: h\r\nOrigin: https://app.example.com.evil\r\n\r\n",
        CLIENT,
    );
    assert_eq!(seen.said, "orders:forward");
    assert!(seen.response.is_empty(), "{:?}", seen.response);
}

#[test]
fn rewrites_change_the_upstream_head_only() {
    let seen = run(
        "GET /api/orders/7?x=1 HTTP/1.1\r\nHost: public.example\r\nX-Original-Path: forged\r\n\r\n",
        CLIENT,
    );
    assert_eq!(seen.said, "orders:forward");
    assert_eq!(
        seen.upstream,
        Some(("/orders/7?x=1".into(), Some("orders.internal:8080".into())))
    );
    assert!(seen.edits.removes(b"x-original-path"));
    assert_eq!(
        seen.edits.add,
        vec![(
            bytes::Bytes::from_static(b"x-original-path"),
            bytes::Bytes::from_static(b"/api/orders/7?x=1")
        )]
    );
    let seen = run("GET /v1/users/42?q HTTP/1.1\r\nHost: h\r\n\r\n", CLIENT);
    assert_eq!(
        seen.upstream,
        Some(("/42/users?q".into(), Some("h".into())))
    );
}

#[test]
fn the_route_body_limit_lowers_the_listeners() {
    let over = run(
        "POST /api/orders/1 HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n",
        CLIENT,
    );
    assert_eq!(over.said, "orders:413");
    let under = run(
        "POST /api/orders/1 HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n",
        CLIENT,
    );
    assert_eq!(
        (under.said.as_str(), under.body_limit),
        ("orders:forward", Some(10))
    );
    let elsewhere = run(
        "POST /v1/a/b HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n",
        CLIENT,
    );
    assert_eq!(elsewhere.body_limit, Some(1000));
}

#[test]
fn addresses_are_filtered_deny_first() {
    let path = "GET /private HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_eq!(run(path, "10.1.0.1:1").said, "private:forward");
    assert_eq!(run(path, "10.0.0.9:1").said, "private:403");
    assert_eq!(run(path, "192.168.1.1:1").said, "private:403");
    // The listener's filter refuses before any route matched.
    assert_eq!(run(path, "192.0.2.7:1").said, ":403");
    assert_eq!(
        run("GET /v1/a/b HTTP/1.1\r\nHost: h\r\n\r\n", "192.0.2.7:1").said,
        ":403"
    );
}

#[test]
fn redirects_are_built_from_the_request() {
    let seen = run(
        "GET /old/a?b=1 HTTP/1.1\r\nHost: example.com:80\r\n\r\n",
        CLIENT,
    );
    assert_eq!(seen.said, "moved:308 https://example.com/new/a?b=1");
}
