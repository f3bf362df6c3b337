//! Errors the proxy answers itself, each with its status and a short body: 400, 408, 413,
//! 414, 431 (client side), 502, 503, 504 (upstream side).

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use ringside_tests::*;

/// Sends `bytes` on a fresh connection and returns the response.
fn send_fresh(p: &Proxy, bytes: &[u8]) -> Response {
    Client::connect(p.addr("in")).request(bytes)
}

fn assert_short_error(r: &Response, status: u16) {
    assert_eq!(r.status, status, "{}{}", r.head, r.text());
    assert!(
        !r.body.is_empty() && r.body.len() < 512,
        "a short body: {:?}",
        r.text()
    );
    assert_eq!(
        r.header("content-length"),
        Some(r.body.len().to_string().as_str())
    );
}

both_drivers!(
    fn malformed_requests_are_400(d) {
        let o = Origin::text("ok");
        let p = Proxy::start(d, &basic_config(&[o.addr()], Extra::default()));
        let cases: &[&[u8]] = &[
            b"GARBAGE\r\n\r\n",
            b"GET\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n", // HTTP/1.1 without Host
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: t\r\nBad Header Name: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: t\r\nNoColon\r\n\r\n",
            b"GET /a b HTTP/1.1\r\nHost: t\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: t\r\nX: a\x00b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n  folded\r\n\r\n",
        ];
        for case in cases {
            let r = send_fresh(&p, case);
            assert_eq!(r.status, 400, "for {:?}", String::from_utf8_lossy(case));
        }
        assert_short_error(&send_fresh(&p, b"GARBAGE\r\n\r\n"), 400);
        assert_eq!(o.bytes_received(), 0, "nothing malformed reached the origin");
        assert_eq!(send_fresh(&p, &get("/")).status, 200, "control: a valid request passes");
    }
);

both_drivers!(
    fn body_over_the_limit_is_413(d) {
        let o = Origin::echo();
        let extra = Extra { listener: "max_request_body_bytes = 10", ..Extra::default() };
        let p = Proxy::start(d, &basic_config(&[o.addr()], extra));
        let r = send_fresh(&p, b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world");
        assert_short_error(&r, 413);
        assert_eq!(o.bytes_received(), 0, "a declared oversize body is refused before any upstream byte");
        let r = send_fresh(&p, b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
        assert_eq!(r.status, 413, "a chunked body is counted as it streams");
        let r = send_fresh(&p, b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n0123456789");
        assert_eq!((r.status, r.text().as_str()), (200, "0123456789"), "exactly the limit passes");
    }
);

both_drivers!(
    fn target_over_the_limit_is_414(d) {
        let o = Origin::text("ok");
        let extra = Extra { listener: "max_uri_bytes = 64", ..Extra::default() };
        let p = Proxy::start(d, &basic_config(&[o.addr()], extra));
        let long = format!("/{}", "a".repeat(100));
        assert_short_error(&send_fresh(&p, &get(&long)), 414);
        assert_eq!(o.bytes_received(), 0);
        let fits = format!("/{}", "a".repeat(60));
        assert_eq!(send_fresh(&p, &get(&fits)).status, 200);
    }
);

both_drivers!(
    fn headers_over_the_limits_are_431(d) {
        let o = Origin::text("ok");
        let extra = Extra { listener: "max_header_bytes = 1024\nmax_headers = 5", ..Extra::default() };
        let p = Proxy::start(d, &basic_config(&[o.addr()], extra));
        let big = format!("GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n", "v".repeat(2000));
        assert_short_error(&send_fresh(&p, big.as_bytes()), 431);
        let many: String = (0..10).map(|i| format!("X-H{i}: {i}\r\n")).collect();
        let r = send_fresh(&p, format!("GET / HTTP/1.1\r\nHost: t\r\n{many}\r\n").as_bytes());
        assert_short_error(&r, 431);
        assert_eq!(o.bytes_received(), 0);
        let r = send_fresh(&p, b"GET / HTTP/1.1\r\nHost: t\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n");
        assert_eq!(r.status, 200, "within both limits");
    }
);

both_drivers!(
    fn slow_request_head_is_408(d) {
        let o = Origin::text("ok");
        let extra = Extra { listener: "request_head_timeout_ms = 300", ..Extra::default() };
        let p = Proxy::start(d, &basic_config(&[o.addr()], extra));
        let mut c = Client::connect(p.addr("in"));
        let t = Instant::now();
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\n"); // ...and never the empty line
        let r = c.read_response();
        assert_short_error(&r, 408);
        assert!(t.elapsed() >= Duration::from_millis(250), "not before the timeout: {:?}", t.elapsed());
        assert!(c.closed_within(WAIT), "and the connection is closed");
        assert_eq!(o.bytes_received(), 0);
    }
);

both_drivers!(
    fn connection_that_sends_nothing_is_closed_after_the_head_timeout(d) {
        let extra = Extra { listener: "request_head_timeout_ms = 300", ..Extra::default() };
        let p = Proxy::start(d, &basic_config(&[closed_port()], extra));
        let mut c = Client::connect(p.addr("in"));
        assert!(c.closed_within(Duration::from_secs(5)), "a silent new connection is not kept forever");
    }
);

both_drivers!(
    fn upstream_refusing_connections_is_502(d) {
        let p = Proxy::start(d, &basic_config(&[closed_port()], Extra::default()));
        let mut c = Client::connect(p.addr("in"));
        assert_short_error(&c.request(&get("/")), 502);
        assert_eq!(c.request(&get("/")).status, 502, "a bodyless request keeps the client connection");
    }
);

both_drivers!(
    fn upstream_sending_garbage_is_502(d) {
        let o = Origin::raw(|mut s: TcpStream| {
            let mut buf = [0u8; 4096];
            let _ = read_retrying(&mut s, &mut buf);
            let _ = s.write_all(b"this is not http at all\r\n\r\n");
        });
        let p = Proxy::start(d, &basic_config(&[o.addr()], Extra::default()));
        assert_short_error(&send_fresh(&p, &get("/")), 502);
        let o2 = Origin::start(|_| Reply::Send(b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n".to_vec()));
        let p2 = Proxy::start(d, &basic_config(&[o2.addr()], Extra::default()));
        assert_eq!(send_fresh(&p2, &get("/")).status, 502, "invalid status code");
        let o3 = Origin::start(|_| {
            Reply::Send(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd".to_vec())
        });
        let p3 = Proxy::start(d, &basic_config(&[o3.addr()], Extra::default()));
        assert_eq!(send_fresh(&p3, &get("/")).status, 502, "conflicting Content-Length in a response");
    }
);

both_drivers!(
    fn upstream_closing_without_a_response_is_502(d) {
        let o = Origin::start(|_| Reply::Close);
        let p = Proxy::start(d, &basic_config(&[o.addr()], Extra::default()));
        assert_short_error(&send_fresh(&p, &get("/")), 502);
    }
);

both_drivers!(
    fn cluster_without_endpoints_is_503(d) {
        let p = Proxy::start(d, &basic_config(&[], Extra::default()));
        assert_short_error(&send_fresh(&p, &get("/")), 503);
    }
);

both_drivers!(
    fn route_timeout_with_a_slow_upstream_is_504(d) {
        let o = Origin::start(|_| {
            std::thread::sleep(Duration::from_secs(2));
            ok("too late")
        });
        let extra = Extra { route: "timeout_ms = 300", ..Extra::default() };
        let p = Proxy::start(d, &basic_config(&[o.addr()], extra));
        let t = Instant::now();
        let r = send_fresh(&p, &get("/"));
        assert_short_error(&r, 504);
        assert!(t.elapsed() < Duration::from_millis(1500), "answered at the deadline: {:?}", t.elapsed());
        assert!(t.elapsed() >= Duration::from_millis(250), "not before it: {:?}", t.elapsed());
    }
);

both_drivers!(
    fn connect_method_is_refused(d) {
        let o = Origin::text("ok");
        let p = Proxy::start(d, &basic_config(&[o.addr()], Extra::default()));
        let r = send_fresh(&p, b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
        assert_eq!(r.status, 403, "a CONNECT no `match.connect` route takes is refused");
        assert_eq!(o.bytes_received(), 0);
    }
);

both_drivers!(
    fn upstream_dying_mid_body_closes_the_client_connection(d) {
        // The head promises 100 bytes; 10 arrive, then the upstream is gone.
        let o = Origin::start(|_| Reply::SendClose(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789".to_vec()));
        let p = Proxy::start(d, &basic_config(&[o.addr()], Extra::default()));
        let mut c = Client::connect(p.addr("in"));
        c.send(&get("/"));
        let r = c.try_read_response("GET");
        assert!(r.is_err(), "a truncated body cannot be completed: {r:?}");
        let e = r.err().map(|e| e.kind());
        assert_ne!(e, Some(std::io::ErrorKind::WouldBlock), "the proxy left the client hanging");
        assert_ne!(e, Some(std::io::ErrorKind::TimedOut), "the proxy left the client hanging");
    }
);
