//! Header handling: hop-by-hop headers stay on their hop, end-to-end headers pass, and the
//! proxy sets X-Forwarded-For (appended), X-Forwarded-Proto and X-Request-Id.

use ringside_tests::*;

both_drivers!(
    fn hop_by_hop_request_headers_are_not_forwarded(d) {
        let o = Origin::text("ok");
        let p = Proxy::start(d, &basic_config(&[o.addr()], Extra::default()));
        let mut c = Client::connect(p.addr("in"));
        let r = c.request(
            b"GET / HTTP/1.1\r\nHost: t\r\n\
              Connection: keep-alive, X-Private, x-other-private\r\n\
              X-Private: secret\r\nX-Other-Private: secret2\r\n\
              Keep-Alive: timeout=5\r\nTE: trailers\r\nUpgrade: h2c\r\n\
              Proxy-Authorization: Basic Zm9vOmJhcg==\r\nProxy-Connection: keep-alive\r\n\
              X-End-To-End: kept\r\nAuthorization: Bearer kept\r\n\r\n",
        );
        assert_eq!(r.status, 200);
        let seen = o.request(0);
        for name in ["x-private", "x-other-private", "keep-alive", "te", "upgrade", "proxy-authorization", "proxy-connection"] {
            assert!(!seen.has_header(name), "{name} was forwarded:\n{}", seen.head);
        }
        for v in seen.header_all("connection") {
            let v = v.to_ascii_lowercase();
            assert!(!v.contains("private") && !v.contains("upgrade"), "Connection forwarded as {v:?}");
        }
        assert_eq!(seen.header("x-end-to-end"), Some("kept"));
        assert_eq!(seen.header("authorization"), Some("Bearer kept"));
        assert_eq!(c.request(&get("/")).status, 200, "the client connection stays usable");
    }
);

both_drivers!(
    fn hop_by_hop_response_headers_are_not_forwarded(d) {
        let o = Origin::start(|_| {
            Reply::Send(http_response(
                200,
                &[("Connection", "X-Resp-Private"), ("X-Resp-Private", "1"), ("Keep-Alive", "timeout=1"), ("X-Resp-Public", "1")],
                b"body",
            ))
        });
        let p = Proxy::start(d, &basic_config(&[o.addr()], Extra::default()));
        let mut c = Client::connect(p.addr("in"));
        let r = c.request(&get("/"));
        assert_eq!((r.status, r.text().as_str()), (200, "body"));
        assert_eq!(r.header("x-resp-private"), None, "{}", r.head);
        assert_eq!(r.header("keep-alive"), None, "{}", r.head);
        assert_eq!(r.header("x-resp-public"), Some("1"));
    }
);

both_drivers!(
    fn x_forwarded_for_is_set_or_appended_and_proto_is_set(d) {
        let o = Origin::text("ok");
        let p = Proxy::start(d, &basic_config(&[o.addr()], Extra::default()));
        let mut c = Client::connect(p.addr("in"));
        c.request(&get("/"));
        c.request(b"GET / HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 203.0.113.7\r\n\r\n");
        let first = o.request(0);
        assert_eq!(first.header_all("x-forwarded-for"), vec!["127.0.0.1"]);
        assert_eq!(first.header_all("x-forwarded-proto"), vec!["http"]);
        let second = o.request(1);
        assert_eq!(second.header_all("x-forwarded-for"), vec!["203.0.113.7, 127.0.0.1"]);
    }
);

both_drivers!(
    fn x_request_id_is_generated_when_absent_and_kept_when_present(d) {
        let o = Origin::text("ok");
        let p = Proxy::start(d, &basic_config(&[o.addr()], Extra::default()));
        let mut c = Client::connect(p.addr("in"));
        c.request(&get("/"));
        c.request(&get("/"));
        c.request(b"GET / HTTP/1.1\r\nHost: t\r\nX-Request-Id: abc-123\r\n\r\n");
        let ids: Vec<Vec<String>> = (0..3)
            .map(|i| o.request(i).header_all("x-request-id").into_iter().map(str::to_string).collect())
            .collect();
        assert_eq!(ids[0].len(), 1, "exactly one generated id: {ids:?}");
        assert_eq!(ids[1].len(), 1);
        assert!(ids[0][0].len() >= 16, "a generated id is not trivially short: {:?}", ids[0][0]);
        assert_ne!(ids[0], ids[1], "each request gets its own id");
        assert_eq!(ids[2], vec!["abc-123".to_string()], "a client's id is kept, not duplicated");
    }
);

both_drivers!(
    fn host_and_end_to_end_headers_are_forwarded_as_sent(d) {
        let o = Origin::text("ok");
        let p = Proxy::start(d, &basic_config(&[o.addr()], Extra::default()));
        let mut c = Client::connect(p.addr("in"));
        c.request(b"GET /p?q=1 HTTP/1.1\r\nHost: App.Example:8080\r\nAccept: */*\r\nX-Multi: 1\r\nX-Multi: 2\r\n\r\n");
        let seen = o.request(0);
        assert_eq!((seen.method.as_str(), seen.target.as_str(), seen.version.as_str()), ("GET", "/p?q=1", "HTTP/1.1"));
        assert_eq!(seen.header("host"), Some("App.Example:8080"));
        assert_eq!(seen.header("accept"), Some("*/*"));
        assert_eq!(seen.header_all("x-multi").join(", "), "1, 2", "repeated headers keep their order");
    }
);
