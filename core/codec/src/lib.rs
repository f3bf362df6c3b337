//! Sans-io HTTP/1.1: bytes in, values or errors out. No socket, no runtime.
//!
//! Invariant for every function here: never panics on any input; rejects via an error.
//! No `unwrap`/`expect`, no unchecked indexing, no overflowing arithmetic outside tests.
//!
//! - [`parse_request`] / [`RequestHead`] (`request.rs`): request heads, with the RFC 9112
//!   rules that keep a request from being read two ways (smuggling).
//! - [`parse_response`] / [`ResponseHead`] (`response.rs`): response heads and their framing
//!   given the request method (RFC 9112 §6.3).
//! - [`ChunkedScanner`] (`chunked.rs`): incremental chunked-body validator for bodies that
//!   are forwarded verbatim.
//! - [`PathRules`] (`path.rs`): what a listener does to request paths (dot segments, escapes,
//!   merged slashes), applied by the parsers so that routing and the next hop see one path.
//! - [`write_request_head`], [`write_response_head`], [`write_response_head_dechunked`]
//!   (`encode.rs`): re-serialize a head for the next hop without hop-by-hop fields.
//!
//! Heads are tokenized by `httparse` (strict configuration) and copied once into a `Bytes`;
//! accessors return slices of it through stored offsets: no allocation per header.
//!
//! Fuzzing, two harnesses over the same properties (`fuzzing.rs`: never panics, encoded heads
//! parse back, prefixes need more, chunked scanning is split-independent):
//! - the proptest suite in `fuzz.rs`, on every `cargo test -p ringside-codec`: random bytes and
//!   random mutations of valid requests, responses and chunked bodies, 2048 cases per property
//!   (`PROPTEST_CASES=N` for more);
//! - the coverage-guided cargo-fuzz targets in `fuzz/` (`fuzz/run`, docs/hardening.md), which
//!   build this crate with the `fuzzing` feature.

// Nothing panics on input (ARCHITECTURE.md, "Invariants"); `unwrap_used` is the workspace's.
#![cfg_attr(
    not(test),
    deny(clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

mod chunked;
mod encode;
#[cfg(test)]
mod fuzz;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
// Property checks for the fuzz targets: a failed property is a panic on purpose.
#[allow(clippy::panic, clippy::indexing_slicing)]
pub mod fuzzing;
mod header;
mod path;
mod request;
mod response;

pub use chunked::{ChunkedScanner, MAX_CHUNK_SIZE_LINE, MAX_TRAILER_BYTES};
pub use encode::field as write_field;
pub use encode::{
    canonical_reason, write_request_head, write_response_head, write_response_head_dechunked, Edits,
};
pub use header::is_tchar;
pub use path::{EscapedSlashes, PathRules};
pub use request::{build_request, parse_request, RequestHead};
pub use response::{parse_response, ResponseHead, MAX_RESPONSE_HEADERS};

/// Limits applied while parsing a request head, and the path rules.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub max_uri_bytes: usize,
    /// What the listener does to the request's path (`path.rs`): applied to the head's
    /// `path()` and `path_and_query()`, never to its `target()`.
    pub path: PathRules,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

/// How the message body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Empty,
    Length(u64),
    Chunked,
    /// Responses only: body ends when the upstream closes.
    UntilClose,
}

/// Why a request head was refused. `status()` is the response code the proxy sends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    #[error("request line too long")]
    UriTooLong,
    #[error("request header fields too large")]
    HeadersTooLarge,
    #[error("unsupported HTTP version")]
    VersionNotSupported,
    #[error("unsupported transfer coding")]
    NotImplemented,
}

impl RequestError {
    pub fn status(&self) -> u16 {
        match self {
            RequestError::Malformed(_) => 400,
            RequestError::UriTooLong => 414,
            RequestError::HeadersTooLarge => 431,
            RequestError::VersionNotSupported => 505,
            RequestError::NotImplemented => 501,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("invalid response from upstream: {0}")]
    Malformed(&'static str),
    #[error("upstream response head too large")]
    TooLarge,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("invalid chunked encoding: {0}")]
    Invalid(&'static str),
}

/// What [`ChunkedScanner::scan`] did with one input slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    /// Bytes of the input that belong to the body (all of it unless `done`).
    pub consumed: usize,
    /// The body, trailers included, is complete.
    pub done: bool,
}
