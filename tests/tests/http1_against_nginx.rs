//! HTTP/1.1 against nginx's (issue 15 §4; docs/hardening.md, "HTTP/1.1 against nginx"): the
//! same odd but legal requests go through ringside and through a real nginx configured as a
//! production reverse proxy (`ringside_tests::nginx::NGINX_CONF`) to one recording origin.
//! For each case the test records what the origin received (request line, headers in order,
//! body, chunk extensions, trailers) and what the client received (interim and final
//! responses, their framing headers, bodies and trailers, and whether the connection stayed
//! open), and asserts both sides' records against [`EXPECTED`], the table docs/hardening.md
//! explains row by row: a change in either proxy's behaviour fails the test.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ringside_tests::differential::{play, Case};
use ringside_tests::nginx::Nginx;
use ringside_tests::*;

fn cases() -> Vec<Case> {
    vec![
    Case {
        name: "plain GET (what each proxy adds)",
        send: b"GET /plain HTTP/1.1\r\nHost: example.test\r\nUser-Agent: diff\r\nAccept: */*\r\n\r\n".to_vec(),
        body_after_continue: None,
        finals: &["GET"],
        patience: WAIT,
    },
    Case {
        name: "obs-fold",
        send: b"GET /fold HTTP/1.1\r\nHost: example.test\r\nX-Folded: first\r\n  second\r\nX-After: 1\r\n\r\n".to_vec(),
        body_after_continue: None,
        finals: &["GET"],
        patience: WAIT,
    },
    Case {
        name: "absolute-form",
        send: b"GET http://absolute.test/abs?q=1 HTTP/1.1\r\nHost: other.test\r\n\r\n".to_vec(),
        body_after_continue: None,
        finals: &["GET"],
        patience: WAIT,
    },
    Case {
        name: "OPTIONS *",
        send: b"OPTIONS * HTTP/1.1\r\nHost: example.test\r\n\r\n".to_vec(),
        body_after_continue: None,
        finals: &["OPTIONS"],
        patience: WAIT,
    },
    Case {
        name: "chunk extension of 1 KiB",
        send: chunk_extension(1024),
        body_after_continue: None,
        finals: &["POST"],
        patience: WAIT,
    },
    Case {
        name: "chunk extension of 5 KiB",
        send: chunk_extension(5 * 1024),
        body_after_continue: None,
        finals: &["POST"],
        patience: WAIT,
    },
    Case {
        name: "request trailers",
        send: b"POST /trailers HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 42\r\n\r\n".to_vec(),
        body_after_continue: None,
        finals: &["POST"],
        patience: WAIT,
    },
    Case {
        name: "response trailers",
        send: b"GET /response-trailers HTTP/1.1\r\nHost: example.test\r\nTE: trailers\r\n\r\n".to_vec(),
        body_after_continue: None,
        finals: &["GET"],
        patience: WAIT,
    },
    Case {
        name: "100-continue",
        send: b"POST /continue HTTP/1.1\r\nHost: example.test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n".to_vec(),
        body_after_continue: Some(b"hello"),
        finals: &["POST"],
        patience: WAIT,
    },
    Case {
        name: "103 Early Hints",
        send: b"GET /early-hints HTTP/1.1\r\nHost: example.test\r\n\r\n".to_vec(),
        body_after_continue: None,
        finals: &["GET"],
        // nginx 1.22 takes the 103 for the final response, its body running to the upstream's
        // close: the client waits 3 s, well before the origin's 10 s idle timeout closes it.
        patience: Duration::from_secs(3),
    },
    Case {
        name: "HEAD with Content-Length, then GET",
        send: b"HEAD /head HTTP/1.1\r\nHost: example.test\r\n\r\nGET /plain HTTP/1.1\r\nHost: example.test\r\n\r\n".to_vec(),
        body_after_continue: None,
        finals: &["HEAD", "GET"],
        patience: WAIT,
    },
    Case {
        name: "Connection: close pipeline",
        send: b"GET /p1 HTTP/1.1\r\nHost: example.test\r\n\r\nGET /p2 HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\nGET /p3 HTTP/1.1\r\nHost: example.test\r\n\r\n".to_vec(),
        body_after_continue: None,
        finals: &["GET", "GET"],
        patience: WAIT,
    },
    ]
}

/// A chunked POST whose first chunk carries an extension of `len` bytes (`;name=vvv...`).
fn chunk_extension(len: usize) -> Vec<u8> {
    let head =
        "POST /extension HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n";
    let value = "v".repeat(len - ";name=".len());
    format!("{head}5;name={value}\r\nhello\r\n0\r\n\r\n").into_bytes()
}

/// The origin: `/early-hints` sends a 103 before its 200, `/head` answers HEAD with a
/// `Content-Length` of 1234 and no body, `/response-trailers` a chunked body with a trailer;
/// everything else `200 ok`.
fn origin() -> Origin {
    Origin::start(|r| match r.target.as_str() {
        "/early-hints" => {
            let mut bytes =
                b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n".to_vec();
            bytes.extend(http_response(
                200,
                &[("Content-Type", "text/plain")],
                b"hinted",
            ));
            Reply::Send(bytes)
        }
        "/head" => Reply::Send(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1234\r\n\r\n".to_vec(),
        ),
        "/response-trailers" => Reply::Send(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n\
              5\r\nhello\r\n0\r\nX-Checksum: abc\r\n\r\n"
                .to_vec(),
        ),
        _ => ok("ok"),
    })
}

/// One row of the documented table: what the origin and the client saw, through each proxy.
struct Expected {
    case: &'static str,
    /// The rule behind the row, as docs/hardening.md gives it.
    why: &'static str,
    ringside: (&'static str, &'static str),
    nginx: (&'static str, &'static str),
}

const EXPECTED: &[Expected] = &[
    Expected {
        case: "plain GET (what each proxy adds)",
        why: "ringside adds its forwarding and tracing headers upstream, and Date to a response without one; nginx replaces the Date and adds Server (RFC 9110 §6.6.1; finding: Via)",
        ringside: (
            "GET /plain HTTP/1.1 [Host: example.test, User-Agent: diff, Accept: */*, X-Forwarded-For: 127.0.0.1, X-Forwarded-Proto: http, X-Request-Id: <uuid>, traceparent: <traceparent>]",
            "200 [Content-Type: text/plain, Date: <date>, Content-Length: 2] body \"ok\" | open",
        ),
        nginx: (
            "GET /plain HTTP/1.1 [Host: example.test, User-Agent: diff, Accept: */*]",
            "200 [Server: nginx, Date: <date>, Content-Type: text/plain, Content-Length: 2, Connection: keep-alive] body \"ok\" | open",
        ),
    },
    Expected {
        case: "obs-fold",
        why: "both reject obs-fold with 400 (RFC 9112 §5.2)",
        ringside: (
            "nothing",
            "400 (the proxy's own) | closed",
        ),
        nginx: (
            "nothing",
            "400 (the proxy's own) | closed",
        ),
    },
    Expected {
        case: "absolute-form",
        why: "both send origin-form with the target's host (RFC 9112 §3.2.2, §3.2.1)",
        ringside: (
            "GET /abs?q=1 HTTP/1.1 [Host: absolute.test]",
            "200 [Content-Type: text/plain, Content-Length: 2] body \"ok\" | open",
        ),
        nginx: (
            "GET /abs?q=1 HTTP/1.1 [Host: absolute.test]",
            "200 [Content-Type: text/plain, Content-Length: 2] body \"ok\" | open",
        ),
    },
    Expected {
        case: "OPTIONS *",
        why: "ringside forwards asterisk-form (RFC 9112 §3.2.4); nginx refuses it",
        ringside: (
            "OPTIONS * HTTP/1.1 [Host: example.test]",
            "200 [Content-Type: text/plain, Content-Length: 2] body \"ok\" | open",
        ),
        nginx: (
            "nothing",
            "400 (the proxy's own) | closed",
        ),
    },
    Expected {
        case: "chunk extension of 1 KiB",
        why: "ringside keeps the chunked coding, nginx removes it (both allowed: RFC 9112 §6.1)",
        ringside: (
            "POST /extension HTTP/1.1 [Host: example.test, Transfer-Encoding: chunked] body \"hello\" chunk-ext name=vvvvvvvvvvvvvvvvvvv..(1023 bytes) trailers []",
            "200 [Content-Type: text/plain, Content-Length: 2] body \"ok\" | open",
        ),
        nginx: (
            "POST /extension HTTP/1.1 [Host: example.test, Content-Length: 5] body \"hello\"",
            "200 [Content-Type: text/plain, Content-Length: 2] body \"ok\" | open",
        ),
    },
    Expected {
        case: "chunk extension of 5 KiB",
        why: "ringside's 4 KiB limit on a chunk-size line (RFC 9112 §7.1.1); nginx has none",
        ringside: (
            "nothing",
            "400 (the proxy's own) | closed",
        ),
        nginx: (
            "POST /extension HTTP/1.1 [Host: example.test, Content-Length: 5] body \"hello\"",
            "200 [Content-Type: text/plain, Content-Length: 2] body \"ok\" | open",
        ),
    },
    Expected {
        case: "request trailers",
        why: "ringside forwards trailer fields, nginx discards them (both allowed: RFC 9112 §7.1.2)",
        ringside: (
            "POST /trailers HTTP/1.1 [Host: example.test, Trailer: X-Sum, Transfer-Encoding: chunked] body \"hello\" chunk-ext none trailers [X-Sum: 42]",
            "200 [Content-Type: text/plain, Content-Length: 2] body \"ok\" | open",
        ),
        nginx: (
            "POST /trailers HTTP/1.1 [Host: example.test, Content-Length: 5, Trailer: X-Sum] body \"hello\"",
            "200 [Content-Type: text/plain, Content-Length: 2] body \"ok\" | open",
        ),
    },
    Expected {
        case: "response trailers",
        why: "ringside forwards trailer fields, nginx discards them (both allowed: RFC 9112 §7.1.2)",
        ringside: (
            "GET /response-trailers HTTP/1.1 [Host: example.test]",
            "200 [Trailer: X-Checksum, Transfer-Encoding: chunked] body \"hello\" trailers [X-Checksum: abc] | open",
        ),
        nginx: (
            "GET /response-trailers HTTP/1.1 [Host: example.test]",
            "200 [Transfer-Encoding: chunked, Trailer: X-Checksum] body \"hello\" | open",
        ),
    },
    Expected {
        case: "100-continue",
        why: "ringside forwards the expectation (RFC 9110 §10.1.1), nginx answers it itself",
        ringside: (
            "POST /continue HTTP/1.1 [Host: example.test, Expect: 100-continue, Content-Length: 5] body \"hello\"",
            "100 [] | 200 [Content-Type: text/plain, Content-Length: 2] body \"ok\" | open",
        ),
        nginx: (
            "POST /continue HTTP/1.1 [Host: example.test, Content-Length: 5] body \"hello\"",
            "100 [] | 200 [Content-Type: text/plain, Content-Length: 2] body \"ok\" | open",
        ),
    },
    Expected {
        case: "103 Early Hints",
        why: "ringside forwards 1xx (RFC 9110 §15.2); nginx 1.22 takes a 103 for the final response",
        ringside: (
            "GET /early-hints HTTP/1.1 [Host: example.test]",
            "103 [Link: </style.css>; rel=preload] | 200 [Content-Type: text/plain, Content-Length: 6] body \"hinted\" | open",
        ),
        nginx: (
            "GET /early-hints HTTP/1.1 [Host: example.test]",
            "nothing within 3s | open",
        ),
    },
    Expected {
        case: "HEAD with Content-Length, then GET",
        why: "same: a HEAD response has no content (RFC 9110 §9.3.2, RFC 9112 §6.3)",
        ringside: (
            "HEAD /head HTTP/1.1 [Host: example.test] | GET /plain HTTP/1.1 [Host: example.test]",
            "200 [Content-Type: text/plain, Content-Length: 1234] | 200 [Content-Type: text/plain, Content-Length: 2] body \"ok\" | open",
        ),
        nginx: (
            "HEAD /head HTTP/1.1 [Host: example.test] | GET /plain HTTP/1.1 [Host: example.test]",
            "200 [Content-Type: text/plain, Content-Length: 1234] | 200 [Content-Type: text/plain, Content-Length: 2] body \"ok\" | open",
        ),
    },
    Expected {
        case: "Connection: close pipeline",
        why: "same: nothing after the close request is processed (RFC 9112 §9.6)",
        ringside: (
            "GET /p1 HTTP/1.1 [Host: example.test] | GET /p2 HTTP/1.1 [Host: example.test]",
            "200 [Content-Type: text/plain, Content-Length: 2] body \"ok\" | 200 [Content-Type: text/plain, Content-Length: 2] body \"ok\" | closed",
        ),
        nginx: (
            "GET /p1 HTTP/1.1 [Host: example.test] | GET /p2 HTTP/1.1 [Host: example.test]",
            "200 [Content-Type: text/plain, Content-Length: 2] body \"ok\" | 200 [Content-Type: text/plain, Content-Length: 2] body \"ok\" | closed",
        ),
    },
];

both_drivers!(
    fn odd_requests_match_the_documented_table(d) {
        let o = origin();
        let nginx = Nginx::start(o.addr());
        let p = Proxy::start(d, &basic_config(&[o.addr()], Extra::default()));
        let mut report = String::new();
        let mut failed = false;
        let cases = cases();
        for (i, case) in cases.iter().enumerate() {
            let all = i == 0 || std::env::var_os("DIFF_ALL").is_some();
            let ours = play(p.addr("in"), &o, case, all);
            let theirs = play(nginx.addr, &o, case, all);
            report.push_str(&format!(
                "case {:?}\n  ringside origin: {}\n  ringside client: {}\n  nginx origin:    {}\n  nginx client:    {}\n",
                case.name, ours.0, ours.1, theirs.0, theirs.1
            ));
            let row = EXPECTED.iter().find(|e| e.case == case.name);
            let matches = row.is_some_and(|e| {
                (e.ringside.0, e.ringside.1) == (ours.0.as_str(), ours.1.as_str())
                    && (e.nginx.0, e.nginx.1) == (theirs.0.as_str(), theirs.1.as_str())
            });
            if !matches {
                failed = true;
                let why = row.map_or("no row in EXPECTED", |e| e.why);
                report.push_str(&format!("  ^ differs from its row ({why})\n"));
            }
        }
        assert!(EXPECTED.len() == cases.len() && !failed, "differs from the table:\n{report}\nnginx error log:\n{}", nginx.error_log());
    }
);
