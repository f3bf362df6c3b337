//! The codec's fuzz properties, shared by the proptest suite (`fuzz.rs`, run by
//! `cargo test`) and the cargo-fuzz targets (`fuzz/fuzz_targets/`, feature `fuzzing`).
//!
//! Each `check_*` function takes arbitrary bytes, runs them through the parsers and encoders,
//! and panics when a property fails: a panic is what both harnesses report. Invariant behind
//! all of them: the codec never panics on any input; it rejects via an error. Beyond that they
//! catch wrong answers rather than crashes:
//!
//! - an encoded head parses back to the same message (method, target, authority, framing);
//! - a prefix of a parseable head is "need more", never an error or another head;
//! - a listener's path rules change only the path, leave no dot segment or `//`, and give the
//!   same path again at a next hop with the same rules;
//! - the chunked scanner gives the same answer (consumed, done, data, trailers, or the same error) however its
//!   input is split.
//!
//! Not part of the codec's API: compiled for tests and with the `fuzzing` feature only.

use crate::{
    parse_request, parse_response, write_request_head, write_response_head,
    write_response_head_dechunked, BodyKind, ChunkError, ChunkedScanner, Edits, EscapedSlashes,
    Limits, PathRules, RequestError, RequestHead, ResponseError, ResponseHead, Version,
    MAX_RESPONSE_HEADERS,
};

/// The limits the properties parse with (a proxy's defaults, smaller).
pub const LIMITS: Limits = Limits {
    max_header_bytes: 8192,
    max_headers: 64,
    max_uri_bytes: 4096,
    path: crate::PathRules::NONE,
};

/// Limits no encoded head of a parsed one exceeds.
const BIG: Limits = Limits {
    max_header_bytes: 1 << 20,
    max_headers: 1000,
    max_uri_bytes: 1 << 20,
    path: crate::PathRules::NONE,
};

/// The request methods a response is parsed against (its framing depends on it).
pub const METHODS: &[&str] = &["GET", "HEAD", "POST", "CONNECT", "OPTIONS"];

/// Calls every accessor and both encoders; checks the encoded head parses back.
pub fn exercise_request(h: &RequestHead) {
    let _ = (h.method(), h.is_idempotent(), h.version(), h.target());
    let _ = (h.path(), h.host(), h.keep_alive(), h.expects_continue());
    let _ = (h.header("host"), h.header("content-length"), h.upgrade());
    assert!(h.path_and_query().starts_with(h.path()));
    assert!(!h.path_and_query().contains('#'));
    assert_eq!(h.headers().count(), h.headers.len());
    for (name, value) in h.headers() {
        assert!(!name.is_empty());
        assert!(!value.contains(&b'\r') && !value.contains(&b'\n'));
    }
    for upgrade in [false, true] {
        let mut out = Vec::new();
        write_request_head(&mut out, h, &[("x-fwd", b"1")], &Edits::NONE, upgrade);
        if h.version() == Version::Http10 && h.authority().is_none() {
            continue; // goes out without Host: not a valid HTTP/1.1 request by itself
        }
        let (back, n) = match parse_request(&out, &BIG) {
            Ok(Some(x)) => x,
            other => panic!(
                "encoded request does not parse: {other:?}\n{}",
                String::from_utf8_lossy(&out)
            ),
        };
        assert_eq!(n, out.len());
        assert_eq!(back.method(), h.method());
        assert_eq!(back.path_and_query(), h.path_and_query());
        assert_eq!(back.authority(), h.authority());
        assert_eq!(back.host(), h.host());
        assert_eq!(back.body(), h.body());
        assert_eq!(back.header("x-fwd"), Some(&b"1"[..]));
    }
}

/// Calls every accessor and the encoders of a response head parsed for `method`; checks
/// the encoded head parses back with the same status and framing.
pub fn exercise_response(h: &ResponseHead, method: &str) {
    let _ = (h.status(), h.version(), h.reason(), h.keep_alive());
    let _ = (h.is_informational(), h.header("content-length"));
    assert_eq!(h.headers().count(), h.headers.len());
    for keep_alive in [false, true] {
        let mut out = Vec::new();
        write_response_head(&mut out, h, &[("via", b"r")], &Edits::NONE, keep_alive);
        let (back, n) = match parse_response(&out, 1 << 20, method) {
            Ok(Some(x)) => x,
            // The proxy's own fields (`via`, `connection`) can push a head that was at the
            // field limit past it: the next hop may refuse what this one accepted (found by
            // the http1_response target; docs/hardening.md).
            Err(ResponseError::TooLarge) if field_lines(&out) > MAX_RESPONSE_HEADERS => continue,
            other => panic!(
                "encoded response does not parse: {other:?}\n{}",
                String::from_utf8_lossy(&out)
            ),
        };
        assert_eq!(n, out.len());
        assert_eq!(back.status(), h.status());
        assert_eq!(back.body(), h.body());
        if !h.is_informational() && (!keep_alive || h.body() == BodyKind::UntilClose) {
            assert!(!back.keep_alive());
        }
    }
    let mut out = Vec::new();
    write_response_head_dechunked(&mut out, h, &[], &Edits::NONE);
    let back = parse_response(&out, 1 << 20, method);
    assert!(
        back.is_ok() || field_lines(&out) > MAX_RESPONSE_HEADERS,
        "{back:?}"
    );
}

/// The field lines of an encoded head (its lines but the start line and the final empty one).
pub fn field_lines(head: &[u8]) -> usize {
    head.windows(2)
        .filter(|w| w == b"\r\n")
        .count()
        .saturating_sub(2)
}

/// What scanning a chunked body gave: bytes consumed, whether it ended, the chunk data and
/// the trailer bytes; or the error it was refused with.
pub type Scanned = Result<(usize, bool, Vec<u8>, Vec<u8>), ChunkError>;

/// Scans `input` in one piece.
pub fn scan_whole(input: &[u8]) -> Scanned {
    let mut s = ChunkedScanner::new();
    let mut data = Vec::new();
    let mut trailers = Vec::new();
    let r = s.scan_with_trailers(
        input,
        |r| data.extend_from_slice(input.get(r).unwrap_or_default()),
        |b| trailers.push(b),
    )?;
    assert!(r.consumed <= input.len());
    assert!(r.done || r.consumed == input.len());
    assert_eq!(r.done, s.is_done());
    assert_eq!(s.data_bytes(), data.len() as u64);
    if r.done {
        // Trailer field lines are handed over whole, each with its CRLF.
        assert!(trailers.is_empty() || trailers.ends_with(b"\r\n"));
    }
    Ok((r.consumed, r.done, data, trailers))
}

/// Scans `input` in pieces cut at `cuts` (taken modulo the input's length, any order).
pub fn scan_split(input: &[u8], cuts: &[usize]) -> Scanned {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    points.push(0);
    points.push(input.len());
    points.sort_unstable();
    let mut s = ChunkedScanner::new();
    let mut data = Vec::new();
    let mut trailers = Vec::new();
    let mut consumed = 0;
    for w in points.windows(2) {
        let piece = input.get(w[0]..w[1]).unwrap_or_default();
        let r = s.scan_with_trailers(
            piece,
            |r| data.extend_from_slice(piece.get(r).unwrap_or_default()),
            |b| trailers.push(b),
        )?;
        consumed += r.consumed;
        if r.done {
            return Ok((consumed, true, data, trailers));
        }
        assert_eq!(r.consumed, piece.len());
    }
    Ok((consumed, false, data, trailers))
}

/// The chunked scanner's answer for `input` is the same in one piece, in pieces cut at
/// `cuts`, and one byte at a time.
pub fn check_chunked(input: &[u8], cuts: &[usize]) {
    let whole = scan_whole(input);
    assert_eq!(whole, scan_split(input, cuts), "cut at {cuts:?}");
    let every: Vec<usize> = (0..input.len()).collect();
    assert_eq!(whole, scan_split(input, &every), "one byte at a time");
}

/// Parses `input` as a request head with normal and tiny limits; every head parsed goes
/// through [`exercise_request`].
pub fn check_request_bytes(input: &[u8]) {
    if let Ok(Some((h, n))) = parse_request(input, &LIMITS) {
        assert!(n <= input.len());
        exercise_request(&h);
    }
    // Small limits walk the size-limit branches.
    for limits in [
        Limits {
            max_header_bytes: 40,
            max_headers: 2,
            max_uri_bytes: 8,
            path: crate::PathRules::NONE,
        },
        Limits {
            max_header_bytes: 0,
            max_headers: 0,
            max_uri_bytes: 0,
            path: crate::PathRules::NONE,
        },
    ] {
        if let Ok(Some((h, _))) = parse_request(input, &limits) {
            exercise_request(&h);
        }
    }
    check_path_rules(input);
}

/// Path rules ([`PathRules`]): a head parsed with them is the head parsed without, but for
/// its path: no dot segment (normalizing), no `//` (merging), never longer, and forwarded to
/// a next hop with the same rules it keeps that path (the rules are idempotent).
fn check_path_rules(input: &[u8]) {
    let Ok(Some((plain, _))) = parse_request(input, &LIMITS) else {
        return;
    };
    for escaped_slashes in [EscapedSlashes::Keep, EscapedSlashes::Unescape] {
        let rules = PathRules {
            normalize: true,
            merge_slashes: true,
            escaped_slashes,
        };
        let limits = Limits {
            path: rules,
            ..LIMITS
        };
        let h = match parse_request(input, &limits) {
            Ok(Some((h, _))) => h,
            // Only the path's escapes can refuse it.
            Err(RequestError::Malformed("invalid percent-encoding in the path")) => {
                assert!(plain.path().contains('%'), "{}", plain.path());
                continue;
            }
            other => panic!("parsed without path rules, not with them: {other:?}"),
        };
        exercise_request(&h);
        assert_eq!(h.method(), plain.method());
        assert_eq!(h.target(), plain.target());
        assert_eq!(h.authority(), plain.authority());
        assert_eq!(h.body(), plain.body());
        assert!(h.path().len() <= plain.path().len());
        let query = |pq: &str| pq.find('?').map(|i| pq[i..].to_owned());
        assert_eq!(query(h.path_and_query()), query(plain.path_and_query()));
        let path = h.path();
        if path.starts_with('/') && h.method() != "CONNECT" {
            assert!(!path.contains("//"), "{path}");
            assert!(!path.split('/').any(|s| s == "." || s == ".."), "{path}");
            assert_eq!(rules.apply(path.as_bytes()), Ok(None), "{path}");
        }
        let mut out = Vec::new();
        write_request_head(&mut out, &h, &[], &Edits::NONE, false);
        if let Ok(Some((again, _))) = parse_request(&out, &Limits { path: rules, ..BIG }) {
            assert_eq!(again.path_and_query(), h.path_and_query());
        }
    }
}

/// Parses `input` as a response head for every method in [`METHODS`]; every head parsed
/// goes through [`exercise_response`].
pub fn check_response_bytes(input: &[u8]) {
    for method in METHODS {
        if let Ok(Some((h, n))) = parse_response(input, 8192, method) {
            assert!(n <= input.len());
            exercise_response(&h, method);
        }
        let _ = parse_response(input, 16, method);
    }
}

/// A prefix of a parseable request head (cut at `cut`, modulo the length) needs more bytes,
/// or is that same head; it never fails or parses as something shorter.
pub fn check_request_prefix(input: &[u8], cut: usize) {
    let full = parse_request(input, &LIMITS);
    let cut = cut % (input.len() + 1);
    let prefix = parse_request(input.get(..cut).unwrap_or_default(), &LIMITS);
    match (&full, &prefix) {
        (Ok(Some((_, n))), Ok(None)) => assert!(cut < *n),
        (Ok(Some((_, n))), Ok(Some((_, m)))) => assert_eq!(n, m),
        (Ok(Some(_)), Err(e)) => panic!("prefix failed with {e:?}"),
        (_, Ok(Some((_, m)))) => panic!("prefix parsed ({m}) but full: {full:?}"),
        _ => {}
    }
}

/// [`check_request_prefix`] for response heads (parsed for a GET).
pub fn check_response_prefix(input: &[u8], cut: usize) {
    let full = parse_response(input, 8192, "GET");
    let cut = cut % (input.len() + 1);
    let prefix = parse_response(input.get(..cut).unwrap_or_default(), 8192, "GET");
    match (&full, &prefix) {
        (Ok(Some((_, n))), Ok(None)) => assert!(cut < *n),
        (Ok(Some((_, n))), Ok(Some((_, m)))) => assert_eq!(n, m),
        (Ok(Some(_)), Err(e)) => panic!("prefix failed with {e:?}"),
        (_, Ok(Some((_, m)))) => panic!("prefix parsed ({m}) but full: {full:?}"),
        _ => {}
    }
}
