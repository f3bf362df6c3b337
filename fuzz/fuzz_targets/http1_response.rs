//! HTTP/1.1 response heads from an upstream: `ringside_codec::parse_response`, for every
//! request method that changes a response's framing.
//!
//! Invariant: never panics on any bytes; a head it cannot accept is rejected with a
//! `ResponseError`. Properties (`ringside_codec::fuzzing`, shared with the proptest suite):
//! every accessor of a parsed head works, the head encoded for the client (kept alive or not,
//! de-chunked or not) parses back with the same status and framing, and a prefix of a
//! parseable head is "need more", never an error or a shorter head.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringside_codec::fuzzing::{check_response_bytes, check_response_prefix};

fuzz_target!(|data: &[u8]| {
    check_response_bytes(data);
    let end = match ringside_codec::parse_response(data, 8192, "GET") {
        Ok(Some((_, n))) => n,
        _ => data.len(),
    };
    check_response_prefix(data, end.saturating_sub(1));
    check_response_prefix(data, end / 2);
});
