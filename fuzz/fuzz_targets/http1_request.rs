//! HTTP/1.1 request heads from a client: `ringside_codec::parse_request`.
//!
//! Invariant: never panics on any bytes; a head it cannot accept is rejected with a
//! `RequestError`. Properties (`ringside_codec::fuzzing`, shared with the proptest suite):
//! every accessor of a parsed head works, the head encoded for the next hop parses back to the
//! same method, target, authority and framing, a prefix of a parseable head is "need
//! more", never an error or a shorter head, and the listener path rules (normalized, slashes
//! merged, escaped slashes kept or unescaped) change only the path, leave no dot segment or
//! `//`, and give the same path again at a next hop.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringside_codec::fuzzing::{check_request_bytes, check_request_prefix, LIMITS};

fuzz_target!(|data: &[u8]| {
    check_request_bytes(data);
    // Prefixes: just short of the head's end, and half-way.
    let end = match ringside_codec::parse_request(data, &LIMITS) {
        Ok(Some((_, n))) => n,
        _ => data.len(),
    };
    check_request_prefix(data, end.saturating_sub(1));
    check_request_prefix(data, end / 2);
});
