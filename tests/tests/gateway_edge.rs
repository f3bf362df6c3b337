//! The gateway's request shaping (issue 12) beyond the behaviour table: CORS as a browser
//! sends it (with curl), a streamed body cut at a route's limit, an HTTP/1.0 request kept
//! HTTP/1.0 through a rewrite, the counters of the gateway stages, and the configuration
//! refusing the gateway's keys on a sidecar. Every wait is bounded (curl's `--max-time`, the
//! client's read timeouts).

#![allow(clippy::unwrap_used)] // test helpers, like #[test] bodies

use std::time::Duration;

use ringside_engine::metrics::WorkerReport;
use ringside_tests::tools::curl;
use ringside_tests::*;

/// The longest wait for a counter to show what happened.
const WAIT: Duration = Duration::from_secs(5);

/// A gateway in front of `origin`: a CORS route, a rewrite route with a small body limit,
/// and a redirect.
fn gateway(d: Driver, origin: &Origin) -> Proxy {
    let text = toml(
        r#"
role = "gateway"
workers = 1

[[listeners]]
name = "in"
bind = "127.0.0.1:0"

[[routes]]
listener = "in"
name = "api"
match = { path_prefix = "/api/orders/" }
rewrite = { prefix = "/orders/" }
max_request_body_bytes = 8
cluster = "app"

[routes.cors]
allow_origins = [ "https://app.example.com" ]
allow_methods = [ "GET", "PUT" ]
allow_headers = [ "content-type", "x-token" ]
max_age_s = 60

[[routes]]
listener = "in"
name = "to-https"
redirect = { scheme = "https", status = 308 }

[[clusters]]
name = "app"
endpoints = [ "$origin" ]
"#,
        &[("origin", &origin.addr())],
    );
    Proxy::start(d, &text)
}

/// The gateway events of route `route` summed over the workers: (event, count).
fn events(reports: &[WorkerReport], route: &str) -> Vec<(&'static str, u64)> {
    let mut out: Vec<(&'static str, u64)> = Vec::new();
    for (r, event, n) in reports
        .iter()
        .flat_map(|r| &r.listeners)
        .flat_map(|l| &l.gateway)
    {
        if r == route {
            match out.iter_mut().find(|(e, _)| e == event) {
                Some((_, total)) => *total += n,
                None => out.push((event, *n)),
            }
        }
    }
    out.sort_unstable();
    out
}

both_drivers!(
    fn cors_as_a_browser_sends_it(d) {
        let origin = Origin::text("orders");
        let p = gateway(d, &origin);
        let url = format!("http://{}/api/orders/1", p.addr("in"));
        // The preflight a browser sends before a PUT with a custom header.
        let pre = curl(&[
            "-i",
            "-X",
            "OPTIONS",
            "-H",
            "Origin: https://app.example.com",
            "-H",
            "Access-Control-Request-Method: PUT",
            "-H",
            "Access-Control-Request-Headers: content-type, x-token",
            &url,
        ]);
        assert_eq!(pre.status, Some(204), "{pre:?}");
        let head = pre.stdout.to_ascii_lowercase();
        for field in [
            "access-control-allow-origin: https://app.example.com\r\n",
            "access-control-allow-methods: get, put\r\n",
            "access-control-allow-headers: content-type, x-token\r\n",
            "access-control-max-age: 60\r\n",
            "vary: origin\r\n",
        ] {
            assert!(head.contains(field), "{field:?} in {head}");
        }
        assert!(!head.contains("access-control-allow-credentials"), "{head}");
        // The actual request, over HTTP/2 this time.
        let put = curl(&[
            "-i",
            "--http2-prior-knowledge",
            "-X",
            "PUT",
            "-H",
            "Origin: https://app.example.com",
            "-H",
            "x-token: t",
            "--data",
            "{}",
            &url,
        ]);
        assert_eq!((put.status, put.http_version.as_str()), (Some(200), "2"), "{put:?}");
        let head = put.stdout.to_ascii_lowercase();
        assert!(head.contains("access-control-allow-origin: https://app.example.com\r\n"), "{head}");
        assert!(head.contains("vary: origin\r\n"), "{head}");
        // The origin saw the PUT, never the preflight.
        let seen = origin.requests();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!((seen[0].method.as_str(), seen[0].target.as_str()), ("PUT", "/orders/1"));
        assert_eq!(seen[0].header("x-original-path"), Some("/api/orders/1"));
        // A preflight from elsewhere is refused and counted.
        let bad = curl(&[
            "-i",
            "-X",
            "OPTIONS",
            "-H",
            "Origin: https://evil.example",
            "-H",
            "Access-Control-Request-Method: PUT",
            &url,
        ]);
        assert_eq!(bad.status, Some(403), "{bad:?}");
        assert!(!bad.stdout.to_ascii_lowercase().contains("access-control-"), "{bad:?}");
        assert_eq!(origin.requests().len(), 1);
        assert!(eventually(WAIT, || {
            events(&p.handle.metrics(), "api")
                == vec![("cors_origin_rejected", 1), ("cors_preflight", 1)]
        }));
    }
);

both_drivers!(
    fn a_streamed_body_is_cut_at_the_routes_limit(d) {
        let origin = Origin::echo();
        let p = gateway(d, &origin);
        let mut c = Client::connect(p.addr("in"));
        // Chunked, so no length is declared: the relay counts and stops at 8 bytes.
        let resp = c.request(
            b"POST /api/orders/1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n",
        );
        assert_eq!(resp.status, 413, "{}", resp.head);
        assert!(origin.requests().iter().all(|r| r.body.len() <= 8));
        let mut c = Client::connect(p.addr("in"));
        let ok = c.request(
            b"POST /api/orders/1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        );
        assert_eq!(ok.status, 200, "{}", ok.head);
    }
);

both_drivers!(
    fn an_http10_request_stays_http10_through_a_rewrite(d) {
        let origin = Origin::start(|_| {
            Reply::Send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n".to_vec())
        });
        let p = gateway(d, &origin);
        let mut c = Client::connect(p.addr("in"));
        c.send(b"GET /api/orders/9?x=1 HTTP/1.0\r\nHost: h\r\n\r\n");
        let raw = String::from_utf8_lossy(&c.read_to_close()).into_owned();
        // A chunked answer to an HTTP/1.0 client is de-chunked and delimited by closing.
        assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
        assert!(!raw.to_ascii_lowercase().contains("transfer-encoding"), "{raw}");
        assert!(raw.ends_with("\r\n\r\nok"), "{raw}");
        assert_eq!(origin.request(0).target, "/orders/9?x=1");
    }
);

both_drivers!(
    fn a_redirect_keeps_the_query_and_is_counted(d) {
        let origin = Origin::text("never");
        let p = gateway(d, &origin);
        let mut c = Client::connect(p.addr("in"));
        let resp = c.request(b"GET /login?next=%2Fa HTTP/1.1\r\nHost: shop.example:8080\r\n\r\n");
        assert_eq!(resp.status, 308, "{}", resp.head);
        assert_eq!(resp.header("location"), Some("https://shop.example/login?next=%2Fa"));
        assert!(origin.requests().is_empty());
        assert!(eventually(WAIT, || {
            events(&p.handle.metrics(), "to-https") == vec![("redirect", 1)]
        }));
    }
);

#[test]
fn a_sidecar_refuses_the_gateways_keys() {
    let text = r#"
[[listeners]]
name = "in"
bind = "127.0.0.1:0"
ip_deny = [ "192.0.2.0/24" ]

[[routes]]
listener = "in"
match = { path_prefix = "/a/" }
rewrite = { prefix = "/b/" }
ip_allow = [ "10.0.0.0/8" ]
max_request_body_bytes = 10
cluster = "app"

[routes.cors]
allow_origins = [ "*" ]

[[routes]]
listener = "in"
redirect = { scheme = "https" }

[[clusters]]
name = "app"
endpoints = [ "127.0.0.1:1" ]
"#;
    let err = ringside_config::parse(text).unwrap_err().to_string();
    for line in [
        "listeners[0].ip_deny: only the gateway role runs ip_deny; set [proxy] role = \"gateway\"",
        "routes[0].rewrite: only the gateway role runs rewrite; set [proxy] role = \"gateway\"",
        "routes[0].ip_allow: only the gateway role runs ip_allow",
        "routes[0].max_request_body_bytes: only the gateway role runs max_request_body_bytes",
        "routes[0].cors: only the gateway role runs cors",
        "routes[1].redirect: only the gateway role runs redirect",
    ] {
        assert!(err.contains(line), "{line:?} in:\n{err}");
    }
    let gateway = format!("[proxy]\nrole = \"gateway\"\n{text}");
    assert!(ringside_config::parse(&gateway).is_ok());
}

both_drivers!(
    fn a_listeners_filter_refuses_before_routing(d) {
        let origin = Origin::text("never");
        let text = toml(
            r#"
role = "gateway"
workers = 1

[[listeners]]
name = "in"
bind = "127.0.0.1:0"
ip_allow = [ "10.0.0.0/8" ]

[[routes]]
listener = "in"
name = "all"
cluster = "app"

[[clusters]]
name = "app"
endpoints = [ "$origin" ]
"#,
            &[("origin", &origin.addr())],
        );
        let p = Proxy::start(d, &text);
        let url = format!("http://{}/x", p.addr("in"));
        for args in [vec![url.as_str()], vec!["--http2-prior-knowledge", url.as_str()]] {
            let out = curl(&args);
            assert_eq!(out.status, Some(403), "{out:?}");
        }
        assert!(origin.requests().is_empty());
        assert!(eventually(WAIT, || {
            events(&p.handle.metrics(), "") == vec![("ip_denied", 2)]
        }));
    }
);
