//! HTTP/2 head conversion (`core/engine/src/upstream/convert.rs`, reached through
//! `ringside_engine::fuzzing`): a client's HTTP/2 request head becomes the neutral HTTP/1.1
//! head and an HTTP/2 request for the upstream; an upstream's HTTP/1.1 response head becomes
//! an HTTP/2 response, and an HTTP/2 response head is written as HTTP/1.1.
//!
//! Invariant: never panics on any head the `http` types can hold; a head that HTTP/1.1 cannot
//! carry is rejected with an error. Properties: an accepted request head passes the codec's
//! checks (`ringside_codec::fuzzing::exercise_request`: it encodes and parses back to the
//! same method, target, authority and framing) and keeps the client's method (a `GET` for an
//! extended CONNECT); an HTTP/2 request built from it has the same method and path; an HTTP/1.1
//! response head converted to HTTP/2 keeps its status and, written back as HTTP/1.1, parses.
//!
//! Input: the first byte chooses the direction. Even: an HTTP/2 request, as lines — method,
//! URI, flags (`b`: the stream has a body, `w`: extended CONNECT for WebSocket), then
//! `name: value` fields (fields `http` refuses are left out, as the h2 crate would refuse
//! them). Odd: an HTTP/1.1 response head.
#![no_main]

use http::header::{HeaderName, HeaderValue};
use http::{Method, Uri};
use libfuzzer_sys::fuzz_target;
use ringside_codec::fuzzing::{exercise_request, field_lines, LIMITS};
use ringside_codec::{parse_response, ResponseError, MAX_RESPONSE_HEADERS};
use ringside_engine::fuzzing::{
    request_from_h1, request_h2_to_h2, request_to_h1, response_from_h1, write_h1_response_head,
};

fn request(data: &[u8]) {
    let mut lines = data.split(|&b| b == b'\n');
    let (Some(method), Some(uri), Some(flags)) = (lines.next(), lines.next(), lines.next()) else {
        return;
    };
    let Ok(method) = Method::from_bytes(method) else {
        return;
    };
    let Ok(uri) = Uri::try_from(uri) else {
        return;
    };
    let body = flags.contains(&b'b');
    let websocket = flags
        .contains(&b'w')
        .then_some(&b"dGhlIHNhbXBsZSBub25jZQ=="[..]);
    let mut req = http::Request::new(());
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.version_mut() = http::Version::HTTP_2;
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = line.split_at(colon);
        let value = value.get(1..).unwrap_or_default().trim_ascii();
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            req.headers_mut().append(n, v);
        }
    }
    let (parts, ()) = req.into_parts();
    let Ok(head) = request_to_h1(&parts, body, websocket, &LIMITS) else {
        return;
    };
    exercise_request(&head);
    let expected = if websocket.is_some() {
        "GET"
    } else {
        parts.method.as_str()
    };
    assert_eq!(head.method(), expected);
    if let Ok(out) = request_from_h1(&head, "https", &[("x-forwarded-proto", b"https")]) {
        assert_eq!(out.method().as_str(), head.method());
        let path = out.uri().path_and_query().map_or("", |p| p.as_str());
        assert_eq!(path, head.path_and_query());
    }
    let _ = request_h2_to_h2(&parts, &head, "https");
}

fn response(data: &[u8]) {
    let Ok(Some((head, _))) = parse_response(data, 8192, "GET") else {
        return;
    };
    let Ok(h2) = response_from_h1(&head) else {
        return;
    };
    assert_eq!(h2.status().as_u16(), head.status());
    let (parts, ()) = h2.into_parts();
    // The engine writes a chunked body only where a body may be and its length is unknown.
    let status = parts.status.as_u16();
    let may_chunk = status >= 200
        && status != 204
        && status != 304
        && !parts.headers.contains_key("content-length");
    for (chunked, close) in [(false, false), (may_chunk, false), (false, true)] {
        let mut out = Vec::new();
        write_h1_response_head(&mut out, &parts, chunked, close);
        match parse_response(&out, 1 << 20, "GET") {
            Ok(Some((back, n))) => {
                assert_eq!(n, out.len());
                assert_eq!(back.status(), head.status());
            }
            // At the field limit, the writer's own fields push it over (as in http1_response).
            Err(ResponseError::TooLarge) if field_lines(&out) > MAX_RESPONSE_HEADERS => {}
            other => panic!(
                "written HTTP/1.1 head does not parse: {other:?}\n{}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((mode, rest)) if mode % 2 == 0 => request(rest),
        Some((_, rest)) => response(rest),
        None => {}
    }
});
