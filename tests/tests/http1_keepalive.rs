//! Keep-alive on both sides: client connections serve many requests, upstream connections
//! are pooled and reused, a pooled connection the upstream closed is retried for idempotent
//! requests, pipelined requests are answered in order, idle connections time out.

use std::time::{Duration, Instant};

use ringside_tests::*;

both_drivers!(
    fn many_requests_over_one_client_connection_reuse_one_upstream_connection(d) {
        let o = Origin::start(|r| ok(&r.target));
        let p = Proxy::start(d, &basic_config(&[o.addr()], Extra::default()));
        let mut c = Client::connect(p.addr("in"));
        for i in 0..20 {
            let r = c.request(&get(&format!("/r{i}")));
            assert_eq!((r.status, r.text()), (200, format!("/r{i}")));
            assert!(!r.closes(), "request {i} closed the client connection");
        }
        assert_eq!(o.connections(), 1, "one upstream connection for 20 sequential requests");
        assert!(o.requests().iter().all(|r| r.conn == 0));
    }
);

both_drivers!(
    fn pooled_upstream_connection_outlives_client_connections(d) {
        let o = Origin::text("hi");
        let p = Proxy::start(d, &basic_config(&[o.addr()], Extra::default()));
        for _ in 0..5 {
            let mut c = Client::connect(p.addr("in"));
            assert_eq!(c.request(&get("/")).status, 200);
        }
        assert_eq!(o.connections(), 1, "the worker's pool reused its upstream connection");
    }
);

both_drivers!(
    fn pooled_connection_closed_by_upstream_is_retried_for_get(d) {
        // Answers the first request of each connection; on the second it closes without a
        // word: the proxy finds out only after sending the request on a pooled connection.
        let o = Origin::start(|r| if r.seq == 0 { ok("fresh") } else { Reply::Close });
        let p = Proxy::start(d, &basic_config(&[o.addr()], Extra::default()));
        let mut c = Client::connect(p.addr("in"));
        for i in 0..5 {
            let r = c.request(&get("/"));
            assert_eq!((r.status, r.text().as_str()), (200, "fresh"), "request {i}");
        }
        assert!(o.requests().iter().any(|r| r.seq == 1), "the stale-connection path was exercised");
        assert_eq!(o.connections(), 5, "each request after the first needed a fresh connection");
    }
);

both_drivers!(
    fn upstream_closing_after_each_response_without_saying_so(d) {
        let o = Origin::start(|_| Reply::SendClose(http_response(200, &[], b"once")));
        let p = Proxy::start(d, &basic_config(&[o.addr()], Extra::default()));
        let mut c = Client::connect(p.addr("in"));
        for i in 0..5 {
            let r = c.request(&get("/"));
            assert_eq!((r.status, r.text().as_str()), (200, "once"), "request {i}");
        }
        assert_eq!(o.connections(), 5);
    }
);

both_drivers!(
    fn non_idempotent_request_is_not_retried(d) {
        let o = Origin::start(|r| if r.seq == 0 { ok("fresh") } else { Reply::Close });
        let p = Proxy::start(d, &basic_config(&[o.addr()], Extra::default()));
        let mut c = Client::connect(p.addr("in"));
        assert_eq!(c.request(&get("/")).status, 200);
        // Now the pooled connection is the stale one.
        let r = c.request(b"POST /order HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbuy!");
        assert_eq!(r.status, 502, "a POST that may have been processed is not replayed");
        let posts = o.requests().iter().filter(|r| r.method == "POST").count();
        assert_eq!(posts, 1, "the origin saw the POST exactly once");
    }
);

both_drivers!(
    fn pipelined_requests_are_answered_in_order(d) {
        let o = Origin::start(|r| {
            if r.target == "/slow" {
                std::thread::sleep(Duration::from_millis(100));
            }
            ok(&r.target)
        });
        let p = Proxy::start(d, &basic_config(&[o.addr()], Extra::default()));
        let mut c = Client::connect(p.addr("in"));
        let mut batch = Vec::new();
        for path in ["/slow", "/2", "/3", "/4"] {
            batch.extend_from_slice(&get(path));
        }
        batch.extend_from_slice(b"POST /5 HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
        batch.extend_from_slice(&get("/6"));
        c.send(&batch);
        for path in ["/slow", "/2", "/3", "/4", "/5", "/6"] {
            let r = c.read_response();
            assert_eq!((r.status, r.text().as_str()), (200, path));
        }
        assert_eq!(o.requests().iter().find(|r| r.target == "/5").unwrap().body, b"abc");
    }
);

both_drivers!(
    fn pipelined_requests_mixing_direct_and_proxied_stay_in_order(d) {
        let o = Origin::start(|r| ok(&r.target));
        let p = Proxy::start(
            d,
            &toml(
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
name = "all"
cluster = "app"
[[clusters]]
name = "app"
endpoints = ["$o"]
"#,
                &[("o", &o.addr())],
            ),
        );
        let mut c = Client::connect(p.addr("in"));
        let batch = [get("/a"), get("/ping"), get("/b"), get("/nowhere-but-app")].concat();
        c.send(&batch);
        for want in ["/a", "pong", "/b", "/nowhere-but-app"] {
            assert_eq!(c.read_response().text(), want);
        }
    }
);

both_drivers!(
    fn connection_close_from_the_client_is_honoured(d) {
        let o = Origin::text("bye");
        let p = Proxy::start(d, &basic_config(&[o.addr()], Extra::default()));
        let mut c = Client::connect(p.addr("in"));
        let r = c.request(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        assert_eq!((r.status, r.text().as_str()), (200, "bye"));
        assert!(r.closes(), "the response says Connection: close");
        assert!(c.closed_within(WAIT), "and the proxy closes the connection");
    }
);

both_drivers!(
    fn http10_client_without_keep_alive_is_closed_after_one_response(d) {
        let o = Origin::text("old");
        let p = Proxy::start(d, &basic_config(&[o.addr()], Extra::default()));
        let mut c = Client::connect(p.addr("in"));
        let r = c.request(b"GET / HTTP/1.0\r\nHost: t\r\n\r\n");
        assert_eq!((r.status, r.text().as_str()), (200, "old"));
        assert!(c.closed_within(WAIT));
    }
);

both_drivers!(
    fn idle_client_connection_is_closed_after_idle_timeout(d) {
        let o = Origin::text("hi");
        let extra = Extra { listener: "idle_timeout_ms = 300", ..Extra::default() };
        let p = Proxy::start(d, &basic_config(&[o.addr()], extra));
        let mut c = Client::connect(p.addr("in"));
        assert_eq!(c.request(&get("/")).status, 200);
        let t = Instant::now();
        assert!(c.closed_within(WAIT), "the idle connection is closed");
        assert!(t.elapsed() >= Duration::from_millis(200), "but not before the idle timeout: {:?}", t.elapsed());
    }
);

// A connection that waits longer than its hot window (100 ms) gives its read buffer back and
// waits for readiness (`downstream/http`, `cold_wait`). These check that the wait ends the
// same way a hot one does.

both_drivers!(
    fn an_idle_connection_reads_a_head_that_arrives_in_pieces(d) {
        let o = Origin::start(|r| ok(&r.target));
        let p = Proxy::start(d, &basic_config(&[o.addr()], Extra::default()));
        let mut c = Client::connect(p.addr("in"));
        assert_eq!(c.request(&get("/first")).status, 200);
        std::thread::sleep(Duration::from_millis(300));
        c.send(b"GET /sec");
        std::thread::sleep(Duration::from_millis(150));
        c.send(b"ond HTTP/1.1\r\nHost: t\r\n\r\nGET /third HTTP/1.1\r\nHost: t\r\n\r\n");
        let r = c.read_response();
        assert_eq!((r.status, r.text().as_str()), (200, "/second"));
        let r = c.read_response();
        assert_eq!((r.status, r.text().as_str()), (200, "/third"), "the pipelined request too");
    }
);

both_drivers!(
    fn a_long_idle_timeout_is_kept_to_within_a_tick(d) {
        // Past 3 s an idle connection's deadline is coarse (`cx::deadline`): it fires at the
        // worker's first one-second tick after its time.
        let o = Origin::text("hi");
        let extra = Extra { listener: "idle_timeout_ms = 3500", ..Extra::default() };
        let p = Proxy::start(d, &basic_config(&[o.addr()], extra));
        let mut c = Client::connect(p.addr("in"));
        assert_eq!(c.request(&get("/")).status, 200);
        let t = Instant::now();
        assert!(c.closed_within(WAIT), "the idle connection is closed");
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(3400), "not before the idle timeout: {took:?}");
        assert!(took < Duration::from_millis(5200), "within a tick of it: {took:?}");
    }
);

both_drivers!(
    fn the_first_head_timeout_counts_from_the_accept_even_after_an_idle_wait(d) {
        let o = Origin::text("ok");
        let extra = Extra { listener: "request_head_timeout_ms = 600", ..Extra::default() };
        let p = Proxy::start(d, &basic_config(&[o.addr()], extra));
        let t = Instant::now();
        let mut c = Client::connect(p.addr("in"));
        std::thread::sleep(Duration::from_millis(250));
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\n"); // ...and never the empty line
        let r = c.read_response();
        assert_eq!(r.status, 408);
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(550), "not before the timeout: {took:?}");
        assert!(took < Duration::from_millis(1000), "counted from the accept, not from the first byte: {took:?}");
        assert_eq!(o.bytes_received(), 0);
    }
);
