//! The proptest half of the fuzz harness: random bytes and random mutations of valid messages
//! go through every parser and encoder, on every `cargo test`. The coverage-guided half is
//! `fuzz/` (cargo-fuzz); both check the properties in `fuzzing.rs`.
//!
//! Invariant checked: never panics; rejects via an error. Beyond that, properties that catch
//! wrong answers rather than crashes: a prefix of a parseable head is "need more", the chunked
//! scanner gives the same answer however its input is split, and an encoded head parses back
//! to the same message.

use proptest::prelude::*;

use crate::fuzzing::{
    check_chunked, check_request_bytes, check_request_prefix, check_response_bytes,
    check_response_prefix, exercise_request, exercise_response, scan_whole, LIMITS, METHODS,
};
use crate::{parse_request, parse_response};

const REQUESTS: &[&[u8]] = &[
    b"GET /a/b?x=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n",
    b"\r\nPOST http://orders:8080/api?x=1 HTTP/1.1\r\nHost: orders\r\nContent-Length: 5\r\n\r\nhello",
    b"PUT /u HTTP/1.1\r\nHost: [::1]:80\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, X-Hop\r\nUpgrade: websocket\r\nX-Hop: 1\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
    b"OPTIONS HTTPS://A.b HTTP/1.1\r\nHost: a\r\nProxy-Authorization: x\r\n\r\n",
    b"GET /a/./b/../%2e%2E//c%2f%7e%41?q=/../ HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET http://h//x/%5c..%2F/y/. HTTP/1.1\r\nHost: h\r\n\r\n",
];

const RESPONSES: &[&[u8]] = &[
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive, X-Hop\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"HTTP/1.0 404 Not Found\r\n\r\nbody",
    b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
];

const CHUNKED: &[&[u8]] = &[
    b"5\r\nhello\r\n0\r\n\r\n",
    b"1a;ext=1;q=\"x\"\r\nabcdefghijklmnopqrstuvwxyz\r\n3\r\nxyz\r\n0\r\nX-T: 1\r\n\r\nNEXT",
    b"0\r\n\r\n",
    b"000A \t;a\r\n0123456789\r\n0;e\r\nA: b\r\nC:\r\n\r\n",
];

/// Bytes that sit on the edges of the grammar.
const TOKENS: &[&[u8]] = &[
    b"\r",
    b"\n",
    b"\r\n",
    b" ",
    b"\t",
    b":",
    b",",
    b";",
    b"\x00",
    b"\x7f",
    b"\xff",
    b"0",
    b"f",
    b"chunked",
    b"Transfer-Encoding: ",
    b"Content-Length: ",
    b"Host: ",
    b"Connection: ",
    b"close",
    b"upgrade",
    b"HTTP/1.1",
    b"HTTP/2.0",
    b"http://",
    b"[",
    b"]",
    b"#",
    b"?",
    b"@",
    b"%",
    b"/",
    b"*",
    b"99999999999999999999",
];

#[derive(Debug, Clone)]
enum Mutation {
    Replace(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    InsertToken(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(i, t)| Mutation::InsertToken(i, t)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(base: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut v = base.to_vec();
    for m in mutations {
        let len = v.len();
        match *m {
            Mutation::Replace(i, b) if len > 0 => v[i % len] = b,
            Mutation::Insert(i, b) => v.insert(i % (len + 1), b),
            Mutation::Delete(i) if len > 0 => {
                v.remove(i % len);
            }
            Mutation::InsertToken(i, t) => {
                let at = i % (len + 1);
                v.splice(at..at, TOKENS[t].iter().copied());
            }
            Mutation::Truncate(i) => v.truncate(i % (len + 1)),
            _ => {}
        }
    }
    v
}

fn mutated(samples: &'static [&'static [u8]]) -> impl Strategy<Value = Vec<u8>> {
    (0..samples.len(), prop::collection::vec(mutation(), 0..6))
        .prop_map(move |(i, ms)| mutate(samples[i], &ms))
}

/// 2048 cases per property by default; `PROPTEST_CASES=N` for a longer fuzzing run.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2048);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..600)) {
        check_request_bytes(&input);
        check_response_bytes(&input);
        let _ = scan_whole(&input);
    }

    #[test]
    fn mutated_requests_never_panic(input in mutated(REQUESTS)) {
        check_request_bytes(&input);
    }

    /// `build_request` (HTTP/2 heads) never panics on any method, target or fields, and a
    /// head it accepts behaves like a parsed one under every accessor and the encoder.
    #[test]
    fn built_requests_never_panic(
        method in prop::sample::select(METHODS),
        target in prop::collection::vec(any::<u8>(), 0..80),
        fields in prop::collection::vec(
            (prop::collection::vec(any::<u8>(), 0..12), prop::collection::vec(any::<u8>(), 0..40)),
            0..12,
        ),
    ) {
        let target = String::from_utf8_lossy(&target);
        let fields = fields.iter().map(|(n, v)| (&n[..], &v[..]));
        if let Ok(h) = crate::build_request(method, &target, fields, &LIMITS) {
            exercise_request(&h);
        }
    }

    #[test]
    fn mutated_responses_never_panic(input in mutated(RESPONSES)) {
        check_response_bytes(&input);
    }

    #[test]
    fn prefix_of_parseable_request_needs_more(input in mutated(REQUESTS), cut in any::<usize>()) {
        check_request_prefix(&input, cut);
    }

    #[test]
    fn prefix_of_parseable_response_needs_more(input in mutated(RESPONSES), cut in any::<usize>()) {
        check_response_prefix(&input, cut);
    }

    #[test]
    fn chunked_split_anywhere_equals_whole(
        input in prop_oneof![mutated(CHUNKED), prop::collection::vec(any::<u8>(), 0..300)],
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        check_chunked(&input, &cuts);
    }
}

#[test]
fn samples_are_valid() {
    for s in REQUESTS {
        let (h, _) = parse_request(s, &LIMITS).unwrap().unwrap();
        exercise_request(&h);
    }
    for s in RESPONSES {
        for m in METHODS {
            let (h, _) = parse_response(s, 8192, m).unwrap().unwrap();
            exercise_response(&h, m);
        }
    }
    for s in CHUNKED {
        assert!(scan_whole(s).unwrap().1);
    }
}

/// Found by the http1_response fuzz target: a response head with exactly
/// `MAX_RESPONSE_HEADERS` fields is accepted, and re-encoded with the proxy's `via` it has
/// one field more than a ringside hop accepts. The property allows that (the limit is the
/// limit) instead of panicking; this pins both halves.
#[test]
fn a_head_at_the_field_limit_grows_past_it_when_forwarded() {
    let mut head = b"HTTP/1.1 302 Found\r\n".to_vec();
    for i in 0..crate::MAX_RESPONSE_HEADERS {
        head.extend_from_slice(format!("Set-Cookie: c{i}=1\r\n").as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    let (h, _) = parse_response(&head, 1 << 20, "GET").unwrap().unwrap();
    let mut out = Vec::new();
    crate::write_response_head(&mut out, &h, &[("via", b"r")], &crate::Edits::NONE, true);
    assert!(matches!(
        parse_response(&out, 1 << 20, "GET"),
        Err(crate::ResponseError::TooLarge)
    ));
    check_response_bytes(&head);
}
