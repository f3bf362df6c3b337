//! Route selection: host, path (prefix, exact, regex), method and headers; first match wins;
//! weighted splits; direct responses; 404 when nothing matches; absolute-form targets.

use ringside_tests::*;

fn named(name: &'static str) -> Origin {
    Origin::text(name)
}

fn fetch(c: &mut Client, host: &str, path: &str) -> Response {
    c.request(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
}

/// Body of the response, or `"404"` when no route matched.
fn who(c: &mut Client, host: &str, path: &str) -> String {
    let r = fetch(c, host, path);
    match r.status {
        200 => r.text(),
        404 => "404".into(),
        s => panic!("unexpected status {s} for {host}{path}: {}", r.text()),
    }
}

both_drivers!(
    fn routes_by_host(d) {
        let (a, b) = (named("a"), named("b"));
        let p = Proxy::start(
            d,
            &toml(
                r#"
[[listeners]]
name = "in"
bind = "127.0.0.1:0"
[[routes]]
listener = "in"
name = "a"
match = { host = "a.local" }
cluster = "a"
[[routes]]
listener = "in"
name = "b"
match = { host = "*.b.local" }
cluster = "b"
[[clusters]]
name = "a"
endpoints = ["$a"]
[[clusters]]
name = "b"
endpoints = ["$b"]
"#,
                &[("a", &a.addr()), ("b", &b.addr())],
            ),
        );
        let mut c = Client::connect(p.addr("in"));
        assert_eq!(who(&mut c, "a.local", "/"), "a");
        assert_eq!(who(&mut c, "A.Local:8080", "/x"), "a", "host is case-insensitive, port ignored");
        assert_eq!(who(&mut c, "x.b.local", "/"), "b");
        assert_eq!(who(&mut c, "y.x.b.local", "/"), "b");
        assert_eq!(who(&mut c, "b.local", "/"), "404", "*.b.local does not match b.local");
        assert_eq!(who(&mut c, "c.local", "/"), "404");
        assert_eq!(a.request(0).header("host"), Some("a.local"), "Host is forwarded as sent");
    }
);

both_drivers!(
    fn routes_by_path_prefix_exact_and_regex(d) {
        let (a, b, c_) = (named("exact"), named("prefix"), named("regex"));
        let p = Proxy::start(
            d,
            &toml(
                r#"
[[listeners]]
name = "in"
bind = "127.0.0.1:0"
[[routes]]
listener = "in"
name = "exact"
match = { path_exact = "/exact" }
cluster = "a"
[[routes]]
listener = "in"
name = "prefix"
match = { path_prefix = "/pre/" }
cluster = "b"
[[routes]]
listener = "in"
name = "regex"
match = { path_regex = "/v[0-9]+/items" }
cluster = "c"
[[clusters]]
name = "a"
endpoints = ["$a"]
[[clusters]]
name = "b"
endpoints = ["$b"]
[[clusters]]
name = "c"
endpoints = ["$c"]
"#,
                &[("a", &a.addr()), ("b", &b.addr()), ("c", &c_.addr())],
            ),
        );
        let mut c = Client::connect(p.addr("in"));
        assert_eq!(who(&mut c, "t", "/exact"), "exact");
        assert_eq!(who(&mut c, "t", "/exact?q=1"), "exact", "the query is not part of the path");
        assert_eq!(who(&mut c, "t", "/exact/more"), "404");
        assert_eq!(who(&mut c, "t", "/pre/x/y"), "prefix");
        assert_eq!(who(&mut c, "t", "/pre/"), "prefix");
        assert_eq!(who(&mut c, "t", "/pre"), "404");
        assert_eq!(who(&mut c, "t", "/v12/items"), "regex");
        assert_eq!(who(&mut c, "t", "/v12/items?x"), "regex");
        assert_eq!(who(&mut c, "t", "/v12/items/3"), "404", "the regex is anchored at the end");
        assert_eq!(who(&mut c, "t", "/api/v1/items"), "404", "the regex is anchored at the start");
        assert_eq!(b.request(0).target, "/pre/x/y", "the path is forwarded unchanged");
        assert_eq!(a.request(1).target, "/exact?q=1", "the query is forwarded");
    }
);

both_drivers!(
    fn routes_by_method_and_headers(d) {
        let (canary, gets) = (named("canary"), named("get"));
        let p = Proxy::start(
            d,
            &toml(
                r#"
[[listeners]]
name = "in"
bind = "127.0.0.1:0"
[[routes]]
listener = "in"
name = "canary"
match = { method = "POST", headers = { "X-Canary" = "1" } }
cluster = "canary"
[[routes]]
listener = "in"
name = "get"
match = { method = "GET" }
cluster = "get"
[[clusters]]
name = "canary"
endpoints = ["$canary"]
[[clusters]]
name = "get"
endpoints = ["$get"]
"#,
                &[("canary", &canary.addr()), ("get", &gets.addr())],
            ),
        );
        let mut c = Client::connect(p.addr("in"));
        let post = |headers: &str| format!("POST / HTTP/1.1\r\nHost: t\r\n{headers}Content-Length: 0\r\n\r\n");
        assert_eq!(c.request(post("x-canary: 1\r\n").as_bytes()).text(), "canary", "header names are case-insensitive");
        assert_eq!(c.request(post("").as_bytes()).status, 404, "missing header");
        assert_eq!(c.request(post("X-Canary: 2\r\n").as_bytes()).status, 404, "wrong value");
        assert_eq!(c.request(post("X-Canary: 1 \r\n").as_bytes()).text(), "canary", "OWS is not part of the value");
        assert_eq!(who(&mut c, "t", "/"), "get");
        let put = c.request(b"PUT / HTTP/1.1\r\nHost: t\r\nX-Canary: 1\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(put.status, 404, "method does not match");
        assert_eq!(canary.requests().len(), 2);
    }
);

both_drivers!(
    fn first_matching_route_wins(d) {
        let (specific, general) = (named("specific"), named("general"));
        let p = Proxy::start(
            d,
            &toml(
                r#"
[[listeners]]
name = "specific-first"
bind = "127.0.0.1:0"
[[listeners]]
name = "general-first"
bind = "127.0.0.1:0"
[[routes]]
listener = "specific-first"
name = "specific"
match = { path_exact = "/x" }
cluster = "specific"
[[routes]]
listener = "specific-first"
name = "general"
match = { path_prefix = "/" }
cluster = "general"
[[routes]]
listener = "general-first"
name = "general"
cluster = "general"
[[routes]]
listener = "general-first"
name = "specific"
match = { path_exact = "/x" }
cluster = "specific"
[[clusters]]
name = "specific"
endpoints = ["$s"]
[[clusters]]
name = "general"
endpoints = ["$g"]
"#,
                &[("s", &specific.addr()), ("g", &general.addr())],
            ),
        );
        let mut c = Client::connect(p.addr("specific-first"));
        assert_eq!(who(&mut c, "t", "/x"), "specific");
        assert_eq!(who(&mut c, "t", "/y"), "general");
        let mut c = Client::connect(p.addr("general-first"));
        assert_eq!(who(&mut c, "t", "/x"), "general");
    }
);

both_drivers!(
    fn weighted_split_is_roughly_proportional(d) {
        let (a, b, z) = (named("a"), named("b"), named("zero"));
        let p = Proxy::start(
            d,
            &toml(
                r#"
[[listeners]]
name = "in"
bind = "127.0.0.1:0"
[[routes]]
listener = "in"
name = "split"
weighted = [ { cluster = "a", weight = 75 }, { cluster = "b", weight = 25 }, { cluster = "z", weight = 0 } ]
[[clusters]]
name = "a"
endpoints = ["$a"]
[[clusters]]
name = "b"
endpoints = ["$b"]
[[clusters]]
name = "z"
endpoints = ["$z"]
"#,
                &[("a", &a.addr()), ("b", &b.addr()), ("z", &z.addr())],
            ),
        );
        let mut c = Client::connect(p.addr("in"));
        let n = 400;
        let mut to_a = 0;
        for _ in 0..n {
            match who(&mut c, "t", "/").as_str() {
                "a" => to_a += 1,
                "b" => {}
                other => panic!("weight 0 or unknown target got a request: {other}"),
            }
        }
        // Expect 300 (sd ~8.7): 240..=360 is ~7 sd wide each way.
        assert!((240..=360).contains(&to_a), "{to_a} of {n} went to the weight-75 cluster");
        assert_eq!(z.connections(), 0, "a weight-0 cluster gets nothing");
    }
);

both_drivers!(
    fn direct_response_is_served_without_upstream(d) {
        let p = Proxy::start(
            d,
            r#"
[[listeners]]
name = "in"
bind = "127.0.0.1:0"
[[routes]]
listener = "in"
name = "ping"
match = { path_exact = "/ping" }
direct_response = { status = 200, body = "pong" }
[[routes]]
listener = "in"
name = "down"
match = { path_prefix = "/down" }
direct_response = { status = 503, body = "{\"down\":true}", content_type = "application/json" }
"#,
        );
        let mut c = Client::connect(p.addr("in"));
        let r = c.request(&get("/ping"));
        assert_eq!((r.status, r.text().as_str()), (200, "pong"));
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
        assert_eq!(r.header("content-length"), Some("4"));
        let r = c.request(&get("/down/now"));
        assert_eq!((r.status, r.text().as_str()), (503, "{\"down\":true}"));
        assert_eq!(r.header("content-type"), Some("application/json"));
        c.send(b"HEAD /ping HTTP/1.1\r\nHost: t\r\n\r\n");
        let r = c.read_response_to("HEAD");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-length"), Some("4"), "HEAD announces the GET length");
        let r = c.request(&get("/ping"));
        assert_eq!(r.text(), "pong", "HEAD sent no body: the connection is still in sync");
    }
);

both_drivers!(
    fn no_matching_route_is_404(d) {
        let p = Proxy::start(
            d,
            r#"
[[listeners]]
name = "in"
bind = "127.0.0.1:0"
[[routes]]
listener = "in"
name = "only"
match = { path_exact = "/only" }
direct_response = { status = 200, body = "only" }
"#,
        );
        let mut c = Client::connect(p.addr("in"));
        let r = c.request(&get("/other"));
        assert_eq!(r.status, 404);
        assert!(!r.body.is_empty() && r.body.len() < 512, "a short body: {:?}", r.text());
        assert_eq!(c.request(&get("/only")).text(), "only", "a 404 keeps the connection");
    }
);

both_drivers!(
    fn absolute_form_is_routed_by_its_host_and_forwarded_in_origin_form(d) {
        let (orders, other) = (named("orders"), named("other"));
        let p = Proxy::start(
            d,
            &toml(
                r#"
[[listeners]]
name = "in"
bind = "127.0.0.1:0"
[[routes]]
listener = "in"
name = "orders"
match = { host = "orders", path_prefix = "/api" }
cluster = "orders"
[[routes]]
listener = "in"
name = "other"
cluster = "other"
[[clusters]]
name = "orders"
endpoints = ["$o"]
[[clusters]]
name = "other"
endpoints = ["$x"]
"#,
                &[("o", &orders.addr()), ("x", &other.addr())],
            ),
        );
        let mut c = Client::connect(p.addr("in"));
        let r = c.request(b"GET http://orders/api/list?page=2 HTTP/1.1\r\nHost: orders\r\n\r\n");
        assert_eq!((r.status, r.text().as_str()), (200, "orders"));
        let seen = orders.request(0);
        assert_eq!(seen.target, "/api/list?page=2", "forwarded in origin form");
        assert_eq!(seen.header("host"), Some("orders"));
    }
);

both_drivers!(
    fn absolute_form_authority_overrides_the_host_header(d) {
        let (orders, other) = (named("orders"), named("other"));
        let p = Proxy::start(
            d,
            &toml(
                r#"
[[listeners]]
name = "in"
bind = "127.0.0.1:0"
[[routes]]
listener = "in"
name = "orders"
match = { host = "orders" }
cluster = "orders"
[[routes]]
listener = "in"
name = "other"
cluster = "other"
[[clusters]]
name = "orders"
endpoints = ["$o"]
[[clusters]]
name = "other"
endpoints = ["$x"]
"#,
                &[("o", &orders.addr()), ("x", &other.addr())],
            ),
        );
        let mut c = Client::connect(p.addr("in"));
        // RFC 9112 §3.2.2: the target's authority wins, and a proxy sends a Host made from it.
        let r = c.request(b"GET http://orders:8080/api HTTP/1.1\r\nHost: elsewhere\r\n\r\n");
        assert_eq!((r.status, r.text().as_str()), (200, "orders"));
        let seen = orders.request(0);
        assert_eq!(seen.target, "/api");
        assert_eq!(seen.header_all("host"), vec!["orders:8080"], "Host regenerated from the target");
    }
);
