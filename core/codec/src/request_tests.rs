//! Unit tests of `request.rs`: every acceptance and rejection rule, partial input, limits.

use super::*;

const LIMITS: Limits = Limits {
    max_header_bytes: 8192,
    max_headers: 100,
    max_uri_bytes: 4096,
    path: crate::PathRules::NONE,
};

fn parse(s: &[u8]) -> Result<Option<(RequestHead, usize)>, RequestError> {
    parse_request(s, &LIMITS)
}

fn ok(s: &[u8]) -> RequestHead {
    match parse(s) {
        Ok(Some((h, n))) => {
            assert_eq!(
                n,
                s.len(),
                "head length for {:?}",
                String::from_utf8_lossy(s)
            );
            h
        }
        other => panic!("{:?} -> {other:?}", String::from_utf8_lossy(s)),
    }
}

fn err(s: &[u8]) -> RequestError {
    match parse(s) {
        Err(e) => e,
        other => panic!("{:?} -> {other:?}", String::from_utf8_lossy(s)),
    }
}

fn malformed(s: &[u8]) {
    assert!(
        matches!(err(s), RequestError::Malformed(_)),
        "{:?} -> {:?}",
        String::from_utf8_lossy(s),
        parse(s)
    );
}

#[test]
fn simple_get() {
    let h = ok(b"GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: Example.COM:8080\r\nAccept: */*\r\n\r\n");
    assert_eq!(h.method(), "GET");
    assert!(h.is_idempotent());
    assert_eq!(h.version(), Version::Http11);
    assert_eq!(h.target(), "/a/b?x=1&y=2");
    assert_eq!(h.path_and_query(), "/a/b?x=1&y=2");
    assert_eq!(h.path(), "/a/b");
    assert_eq!(h.authority(), Some("Example.COM:8080"));
    assert_eq!(h.host(), Some("example.com"));
    assert_eq!(h.header("accept"), Some(&b"*/*"[..]));
    assert_eq!(h.header("ACCEPT"), Some(&b"*/*"[..]));
    assert_eq!(h.header("missing"), None);
    assert_eq!(h.body(), BodyKind::Empty);
    assert!(h.keep_alive());
    assert!(!h.expects_continue());
    assert_eq!(h.upgrade(), None);
    let all: Vec<_> = h.headers().collect();
    assert_eq!(
        all,
        vec![("Host", &b"Example.COM:8080"[..]), ("Accept", &b"*/*"[..])]
    );
}

#[test]
fn header_values_trimmed_and_first_wins() {
    let h = ok(b"GET / HTTP/1.1\r\nHost: a\r\nX-A: \t one \t\r\nx-a: two\r\nX-E:\r\n\r\n");
    assert_eq!(h.header("x-a"), Some(&b"one"[..]));
    assert_eq!(h.header("x-e"), Some(&b""[..]));
    assert_eq!(h.headers().count(), 4);
}

#[test]
fn methods_and_idempotence() {
    for (m, idem) in [
        ("GET", true),
        ("HEAD", true),
        ("OPTIONS", true),
        ("TRACE", true),
        ("PUT", true),
        ("DELETE", true),
        ("POST", false),
        ("PATCH", false),
        ("get", false),
        ("PROPFIND", false),
    ] {
        let h = ok(format!("{m} / HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes());
        assert_eq!(h.method(), m);
        assert_eq!(h.is_idempotent(), idem, "{m}");
    }
    malformed(b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n");
    malformed(b" GET / HTTP/1.1\r\nHost: a\r\n\r\n");
}

#[test]
fn leading_empty_lines_are_skipped_and_counted() {
    let s = b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let h = ok(s);
    assert_eq!(h.method(), "GET");
    malformed(b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    malformed(b"\r\rGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(matches!(parse(b"\r\n"), Ok(None)));
    assert!(matches!(parse(b""), Ok(None)));
}

#[test]
fn partial_at_every_split_point() {
    let full: &[u8] = b"\r\nPOST http://Orders:8080/api?x=1 HTTP/1.1\r\nHost: orders\r\n\
        Content-Length: 5\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n\r\nhello";
    let head_len = full.len() - 5;
    for cut in 0..head_len {
        assert!(matches!(parse(&full[..cut]), Ok(None)), "cut at {cut}");
    }
    for cut in head_len..=full.len() {
        let (h, n) = parse(&full[..cut]).unwrap().unwrap();
        assert_eq!(n, head_len);
        assert_eq!(h.body(), BodyKind::Length(5));
        assert_eq!(h.path_and_query(), "/api?x=1");
    }
}

#[test]
fn pipelined_requests() {
    let s = b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /3 HTTP/1.1\r\nHost: a\r\n\r\n";
    let (h1, n1) = parse(s).unwrap().unwrap();
    assert_eq!(h1.path(), "/1");
    let rest = &s[n1..];
    let (h2, n2) = parse(rest).unwrap().unwrap();
    assert_eq!(h2.path(), "/2");
    assert_eq!(h2.body(), BodyKind::Length(3));
    let rest = &rest[n2 + 3..];
    let (h3, n3) = parse(rest).unwrap().unwrap();
    assert_eq!(h3.path(), "/3");
    assert_eq!(n3, rest.len());
}

#[test]
fn line_ending_rules() {
    malformed(b"GET / HTTP/1.1\nHost: a\r\n\r\n");
    malformed(b"GET / HTTP/1.1\r\nHost: a\n\r\n");
    malformed(b"GET / HTTP/1.1\r\nHost: a\r\n\n");
    malformed(b"GET / HTTP/1.1\nHost: a\n\n");
    malformed(b"GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n");
    malformed(b"GET / HTTP/1.1\r\nX: a\rb\r\nHost: a\r\n\r\n");
    malformed(b"GET /\r HTTP/1.1\r\nHost: a\r\n\r\n");
    malformed(b"GET / HTTP/1.1\r\r\nHost: a\r\n\r\n");
}

#[test]
fn field_syntax_rules() {
    // whitespace between name and colon
    malformed(b"GET / HTTP/1.1\r\nHost : a\r\n\r\n");
    malformed(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length\t: 1\r\n\r\n");
    // obs-fold
    malformed(b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n");
    malformed(b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\t2\r\n\r\n");
    // space before the first field
    malformed(b"GET / HTTP/1.1\r\n Host: a\r\n\r\n");
    // control characters in values
    for c in [0u8, 1, 0x0b, 0x0c, 0x1f, 0x7f] {
        let mut s = b"GET / HTTP/1.1\r\nHost: a\r\nX: a".to_vec();
        s.push(c);
        s.extend_from_slice(b"b\r\n\r\n");
        malformed(&s);
    }
    // invalid tokens in names
    malformed(b"GET / HTTP/1.1\r\nHost: a\r\nX(Y): 1\r\n\r\n");
    malformed(b"GET / HTTP/1.1\r\nHost: a\r\n: 1\r\n\r\n");
    malformed(b"GET / HTTP/1.1\r\nHost: a\r\nX\x00: 1\r\n\r\n");
    malformed(b"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n");
    // obs-text in a value is allowed and returned as is
    let h = ok(b"GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n");
    assert_eq!(h.header("x"), Some(&b"caf\xc3\xa9"[..]));
}

#[test]
fn request_line_rules() {
    malformed(b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n");
    malformed(b"GET /  HTTP/1.1\r\nHost: a\r\n\r\n");
    malformed(b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n");
    malformed(b"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n");
    malformed(b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n");
    malformed(b"GET\r\n\r\n");
    malformed(b"GET /\r\n\r\n");
}

#[test]
fn versions() {
    let h = ok(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(h.version(), Version::Http10);
    assert!(!h.keep_alive());
    assert_eq!(h.host(), None);
    assert_eq!(h.authority(), None);
    for v in ["HTTP/2.0", "HTTP/1.2", "HTTP/3", "HTTP/0.9", "HTTP/9.9"] {
        let s = format!("GET / {v}\r\nHost: a\r\n\r\n");
        assert_eq!(err(s.as_bytes()), RequestError::VersionNotSupported, "{v}");
    }
    let preface = parse(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    assert!(matches!(
        preface,
        Err(RequestError::VersionNotSupported | RequestError::Malformed(_))
    ));
    malformed(b"GET / http/1.1\r\nHost: a\r\n\r\n");
    malformed(b"GET / HTTX/1.1\r\nHost: a\r\n\r\n");
    malformed(b"GET / HTTP/\r\nHost: a\r\n\r\n");
    assert_eq!(err(b"GET / HTTP/2").status(), 505);
}

#[test]
fn size_limits() {
    let limits = Limits {
        max_header_bytes: 200,
        max_headers: 3,
        max_uri_bytes: 50,
        path: crate::PathRules::NONE,
    };
    let p = |s: &[u8]| parse_request(s, &limits);
    // target longer than max_uri, complete or not
    let long = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(50));
    assert_eq!(p(long.as_bytes()).unwrap_err(), RequestError::UriTooLong);
    assert_eq!(
        p(&long.as_bytes()[..60]).unwrap_err(),
        RequestError::UriTooLong
    );
    let exact = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(49));
    assert!(p(exact.as_bytes()).unwrap().is_some());
    // an incomplete request line already past max_uri + slack
    let line = format!("GET /{}", "a".repeat(200));
    assert_eq!(
        p(&line.as_bytes()[..120]).unwrap_err(),
        RequestError::UriTooLong
    );
    assert!(matches!(p(&line.as_bytes()[..100]), Ok(None)));
    // an incomplete request line that fills the whole head limit
    let big = Limits {
        max_header_bytes: 100,
        max_headers: 3,
        max_uri_bytes: 1000,
        path: crate::PathRules::NONE,
    };
    let line = format!("GET /{}", "a".repeat(200));
    assert_eq!(
        parse_request(line.as_bytes(), &big).unwrap_err(),
        RequestError::UriTooLong
    );
    // headers past max_header_bytes, complete or not
    let many = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
        "b".repeat(200)
    );
    assert_eq!(
        p(many.as_bytes()).unwrap_err(),
        RequestError::HeadersTooLarge
    );
    assert_eq!(
        p(&many.as_bytes()[..201]).unwrap_err(),
        RequestError::HeadersTooLarge
    );
    assert!(matches!(p(&many.as_bytes()[..200]), Ok(None)));
    // a head of exactly max_header_bytes is fine, and bytes after it do not count
    let fill = 200 - b"GET / HTTP/1.1\r\nHost: a\r\nX: \r\n\r\n".len();
    let exact = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\nBODY",
        "b".repeat(fill)
    );
    assert_eq!(p(exact.as_bytes()).unwrap().unwrap().1, 200);
    // header count
    assert!(p(b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n")
        .unwrap()
        .is_some());
    assert_eq!(
        p(b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n").unwrap_err(),
        RequestError::HeadersTooLarge
    );
    assert_eq!(
        p(b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n").unwrap_err(),
        RequestError::HeadersTooLarge
    );
}

#[test]
fn many_headers_spill_to_heap() {
    let limits = Limits {
        max_header_bytes: 65536,
        max_headers: 300,
        max_uri_bytes: 100,
        path: crate::PathRules::NONE,
    };
    let mut s = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
    for i in 0..299 {
        s.push_str(&format!("X-{i}: {i}\r\n"));
    }
    s.push_str("\r\n");
    let (h, _) = parse_request(s.as_bytes(), &limits).unwrap().unwrap();
    assert_eq!(h.headers().count(), 300);
    assert_eq!(h.header("x-298"), Some(&b"298"[..]));
    let more = s.replace("\r\n\r\n", "\r\nX-Last: 1\r\n\r\n");
    assert_eq!(
        parse_request(more.as_bytes(), &limits).unwrap_err(),
        RequestError::HeadersTooLarge
    );
}

#[test]
fn content_length_rules() {
    let h = ok(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 42\r\n\r\n");
    assert_eq!(h.body(), BodyKind::Length(42));
    let h = ok(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(h.body(), BodyKind::Length(0));
    let h = ok(b"POST / HTTP/1.0\r\nContent-Length: 7\r\n\r\n");
    assert_eq!(h.body(), BodyKind::Length(7));
    for bad in [
        "Content-Length: 1\r\nContent-Length: 1",
        "Content-Length: 1\r\nContent-Length: 2",
        "Content-Length: 1, 1",
        "Content-Length: 1,2",
        "Content-Length: +1",
        "Content-Length: -1",
        "Content-Length: 0x10",
        "Content-Length: 1 2",
        "Content-Length: ",
        "Content-Length: 18446744073709551616",
        "Content-Length: 99999999999999999999999",
        "Content-Length: 1.0",
    ] {
        malformed(format!("POST / HTTP/1.1\r\nHost: a\r\n{bad}\r\n\r\n").as_bytes());
    }
}

#[test]
fn transfer_encoding_rules() {
    for good in [
        "Transfer-Encoding: chunked",
        "Transfer-Encoding: CHUNKED",
        "Transfer-Encoding:  \tchunked \t",
    ] {
        let h = ok(format!("POST / HTTP/1.1\r\nHost: a\r\n{good}\r\n\r\n").as_bytes());
        assert_eq!(h.body(), BodyKind::Chunked, "{good}");
    }
    for bad in [
        "Transfer-Encoding: chunked\r\nContent-Length: 5",
        "Content-Length: 5\r\nTransfer-Encoding: chunked",
        "Content-Length: 5\r\nTransfer-Encoding: gzip, chunked",
        "Transfer-Encoding: chunked, chunked",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
        "Transfer-Encoding: chunked, gzip",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip",
        "Transfer-Encoding: gzip",
        "Transfer-Encoding: xchunked",
        "Transfer-Encoding: chunkedx",
        "Transfer-Encoding: chunked;x",
        "Transfer-Encoding: chunked; q=1",
        "Transfer-Encoding: \"chunked\"",
        "Transfer-Encoding: chunked,",
        "Transfer-Encoding: ,chunked",
        "Transfer-Encoding: ",
        "Transfer-Encoding: ch unked",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: ",
        "Transfer-Encoding: \u{ff}chunked",
    ] {
        malformed(format!("POST / HTTP/1.1\r\nHost: a\r\n{bad}\r\n\r\n").as_bytes());
    }
    for unimpl in [
        "Transfer-Encoding: gzip, chunked",
        "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked",
        "Transfer-Encoding: xchunked, chunked",
    ] {
        let e = err(format!("POST / HTTP/1.1\r\nHost: a\r\n{unimpl}\r\n\r\n").as_bytes());
        assert_eq!(e, RequestError::NotImplemented, "{unimpl}");
        assert_eq!(e.status(), 501);
    }
    // HTTP/1.0 with Transfer-Encoding
    malformed(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n");
}

#[test]
fn host_rules() {
    malformed(b"GET / HTTP/1.1\r\n\r\n");
    malformed(b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n");
    malformed(b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n");
    malformed(b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n");
    for bad in [
        "", "a b", "a/b", "a@b", "a:b", "a:80:80", "[::1", "a:99999", "a\\b", "\"a\"", "a%zz",
    ] {
        malformed(format!("GET / HTTP/1.1\r\nHost: {bad}\r\n\r\n").as_bytes());
    }
    let h = ok(b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n");
    assert_eq!(h.host(), Some("[::1]"));
    assert_eq!(h.authority(), Some("[::1]:8080"));
    let h = ok(b"GET / HTTP/1.1\r\nHost: [::1]\r\n\r\n");
    assert_eq!(h.host(), Some("[::1]"));
    let h = ok(b"GET / HTTP/1.1\r\nHost: api.example.com\r\n\r\n");
    assert_eq!(h.host(), Some("api.example.com"));
    assert_eq!(h.authority(), Some("api.example.com"));
    let h = ok(b"GET / HTTP/1.1\r\nHost: API.Example.com:443\r\n\r\n");
    assert_eq!(h.host(), Some("api.example.com"));
    assert_eq!(h.authority(), Some("API.Example.com:443"));
    let h = ok(b"GET / HTTP/1.0\r\nHost: a.b\r\n\r\n");
    assert_eq!(h.host(), Some("a.b"));
}

#[test]
fn absolute_form() {
    let h = ok(b"GET http://orders:8080/api?x=1 HTTP/1.1\r\nHost: other\r\n\r\n");
    assert_eq!(h.target(), "http://orders:8080/api?x=1");
    assert_eq!(h.authority(), Some("orders:8080"));
    assert_eq!(h.host(), Some("orders"));
    assert_eq!(h.path_and_query(), "/api?x=1");
    assert_eq!(h.path(), "/api");
    let h = ok(b"GET HTTPS://Orders HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(h.path_and_query(), "/");
    assert_eq!(h.path(), "/");
    assert_eq!(h.host(), Some("orders"));
    assert_eq!(h.authority(), Some("Orders"));
    let h = ok(b"GET http://o?q=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(h.path_and_query(), "/?q=1");
    assert_eq!(h.path(), "/");
    let h = ok(b"GET http://o/p#frag HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(h.path_and_query(), "/p");
    let h = ok(b"GET http://o#frag HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(h.path_and_query(), "/");
    let h = ok(b"GET http://[::1]:80/x HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(h.host(), Some("[::1]"));
    assert_eq!(h.authority(), Some("[::1]:80"));
    let h = ok(b"OPTIONS http://o:1 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(h.path_and_query(), "*");
    let h = ok(b"OPTIONS http://o:1/ HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(h.path_and_query(), "/");
    let h = ok(b"GET http://o/ HTTP/1.0\r\n\r\n");
    assert_eq!(h.authority(), Some("o"));
    for bad in [
        "ftp://o/",
        "ws://o/",
        "http:/o/",
        "http:o",
        "http://",
        "http:///x",
        "http://u@o/",
        "http://u:p@o/",
        "http://o:x/",
        "http://a b/",
        "o/x",
        "orders:8080",
        "?x",
        "#x",
        "**",
    ] {
        malformed(format!("GET {bad} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
    }
}

#[test]
fn origin_asterisk_and_authority_forms() {
    let h = ok(b"GET /p?q#f HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(h.path_and_query(), "/p?q");
    assert_eq!(h.path(), "/p");
    assert_eq!(h.target(), "/p?q#f");
    let h = ok(b"GET /?#? HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(h.path_and_query(), "/?");
    assert_eq!(h.path(), "/");
    let h = ok(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(h.path_and_query(), "*");
    assert_eq!(h.path(), "*");
    malformed(b"GET * HTTP/1.1\r\nHost: a\r\n\r\n");
    let h = ok(b"CONNECT orders:443 HTTP/1.1\r\nHost: orders:443\r\n\r\n");
    assert_eq!(h.path_and_query(), "orders:443");
    assert_eq!(h.authority(), Some("orders:443"));
    assert_eq!(h.host(), Some("orders"));
    malformed(b"CONNECT orders HTTP/1.1\r\nHost: orders\r\n\r\n");
    malformed(b"CONNECT orders: HTTP/1.1\r\nHost: orders\r\n\r\n");
    malformed(b"CONNECT /x HTTP/1.1\r\nHost: orders\r\n\r\n");
    malformed(b"CONNECT http://o:1/ HTTP/1.1\r\nHost: orders\r\n\r\n");
}

#[test]
fn keep_alive_rules() {
    let ka = |s: &[u8]| ok(s).keep_alive();
    assert!(ka(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert!(!ka(
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    ));
    assert!(!ka(
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, CLOSE\r\n\r\n"
    ));
    assert!(!ka(
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: x\r\nConnection: close\r\n\r\n"
    ));
    assert!(ka(
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n"
    ));
    assert!(!ka(b"GET / HTTP/1.0\r\n\r\n"));
    assert!(ka(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    assert!(ka(b"GET / HTTP/1.0\r\nConnection: foo ,Keep-Alive\r\n\r\n"));
    assert!(!ka(
        b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"
    ));
}

#[test]
fn expect_and_upgrade() {
    assert!(ok(b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n\r\n").expects_continue());
    assert!(!ok(b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n").expects_continue());
    assert!(!ok(b"PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n").expects_continue());
    let h = ok(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
    assert_eq!(h.upgrade(), Some(&b"websocket"[..]));
    let h = ok(b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n");
    assert_eq!(h.upgrade(), None);
    let h = ok(b"GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n");
    assert_eq!(h.upgrade(), None);
}

#[test]
fn error_statuses() {
    assert_eq!(RequestError::Malformed("x").status(), 400);
    assert_eq!(RequestError::UriTooLong.status(), 414);
    assert_eq!(RequestError::HeadersTooLarge.status(), 431);
    assert_eq!(RequestError::VersionNotSupported.status(), 505);
    assert_eq!(RequestError::NotImplemented.status(), 501);
}

#[test]
fn zero_limits_do_not_panic() {
    let limits = Limits {
        max_header_bytes: 0,
        max_headers: 0,
        max_uri_bytes: 0,
        path: crate::PathRules::NONE,
    };
    assert!(parse_request(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", &limits).is_err());
    assert!(matches!(parse_request(b"", &limits), Ok(None)));
}

#[test]
fn built_head_reads_like_a_parsed_one() {
    let fields: [(&[u8], &[u8]); 4] = [
        (b"host", b"Example.COM:8080"),
        (b"content-length", b"5"),
        (b"x-a", b" padded "),
        (b"te", b"trailers"),
    ];
    let built = build_request("POST", "/a/b?q=1", fields.into_iter(), &LIMITS).unwrap();
    let text = "POST /a/b?q=1 HTTP/1.1\r\nhost: Example.COM:8080\r\ncontent-length: 5\r\nx-a:  padded \r\nte: trailers\r\n\r\n";
    let (parsed, _) = parse_request(text.as_bytes(), &LIMITS).unwrap().unwrap();
    assert_eq!(built.method(), parsed.method());
    assert_eq!(built.path_and_query(), parsed.path_and_query());
    assert_eq!(built.path(), "/a/b");
    assert_eq!(built.host(), Some("example.com"));
    assert_eq!(built.host(), parsed.host());
    assert_eq!(built.body(), BodyKind::Length(5));
    assert_eq!(built.header("x-a"), Some(&b"padded"[..]));
    let names: Vec<_> = built
        .headers()
        .map(|(n, v)| (n.to_string(), v.to_vec()))
        .collect();
    let parsed_names: Vec<_> = parsed
        .headers()
        .map(|(n, v)| (n.to_string(), v.to_vec()))
        .collect();
    assert_eq!(names, parsed_names);
}

#[test]
fn built_heads_keep_the_parser_rules() {
    let build = |target: &str, fields: &[(&[u8], &[u8])]| {
        build_request("GET", target, fields.iter().copied(), &LIMITS)
    };
    let host: (&[u8], &[u8]) = (b"host", b"h");
    assert!(matches!(
        build(
            "/",
            &[host, (b"content-length", b"1"), (b"content-length", b"2")]
        ),
        Err(RequestError::Malformed(_))
    ));
    assert!(matches!(
        build(
            "/",
            &[
                host,
                (b"content-length", b"1"),
                (b"transfer-encoding", b"chunked")
            ]
        ),
        Err(RequestError::Malformed(_))
    ));
    assert!(matches!(
        build("/", &[host, (b"bad name", b"1")]),
        Err(RequestError::Malformed(_))
    ));
    assert!(matches!(
        build("/", &[host, (b"x", b"a\x01b")]),
        Err(RequestError::Malformed(_))
    ));
    assert!(matches!(build("/", &[]), Err(RequestError::Malformed(_))));
    let long = format!("/{}", "a".repeat(LIMITS.max_uri_bytes));
    assert!(matches!(
        build(&long, &[host]),
        Err(RequestError::UriTooLong)
    ));
    let many: Vec<(&[u8], &[u8])> = std::iter::once(host)
        .chain(std::iter::repeat_n(
            (&b"x"[..], &b"1"[..]),
            LIMITS.max_headers,
        ))
        .collect();
    assert!(matches!(
        build("/", &many),
        Err(RequestError::HeadersTooLarge)
    ));
    assert!(matches!(
        build_request("G T", "/", [host].into_iter(), &LIMITS),
        Err(RequestError::Malformed(_))
    ));
}

#[test]
fn retarget_keeps_version_fields_and_framing() {
    let head = ok(b"POST http://Api.Example:8080/a/b?q=1 HTTP/1.0\r\nHost: other\r\nX-A: 1\r\nContent-Length: 3\r\n\r\n");
    let moved = head.retarget(Some("/c?q=1"), None).unwrap();
    assert_eq!(moved.version(), Version::Http10);
    assert_eq!(moved.path_and_query(), "/c?q=1");
    assert_eq!(moved.path(), "/c");
    // The target's authority wins over the Host field, as it does upstream.
    assert_eq!(moved.authority(), Some("Api.Example:8080"));
    assert_eq!(moved.host(), Some("api.example"));
    assert_eq!(moved.header("x-a"), Some(&b"1"[..]));
    assert_eq!(moved.body(), BodyKind::Length(3));
    let hosted = head.retarget(None, Some("svc.internal:9000")).unwrap();
    assert_eq!(hosted.path_and_query(), "/a/b?q=1");
    assert_eq!(hosted.host(), Some("svc.internal"));
    assert_eq!(hosted.authority(), Some("svc.internal:9000"));
    assert_eq!(
        hosted
            .headers()
            .filter(|(n, _)| n.eq_ignore_ascii_case("host"))
            .count(),
        1
    );
    assert!(matches!(
        head.retarget(Some("/a b"), None),
        Err(RequestError::Malformed(_))
    ));
}
