//! Sans-io HTTP/1.1: bytes in, values or errors out. No socket, no runtime.
//!
//! Invariant for every function here: never panics on any input; rejects via an error.
//! (API CONTRACT — the bodies are being written; signatures are fixed.)

use std::ops::Range;

use bytes::Bytes;

/// Limits applied while parsing a request head.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub max_uri_bytes: usize,
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

/// A parsed request head. Owns a copy of the head bytes; accessors index into it.
#[derive(Debug, Clone)]
pub struct RequestHead {
    _todo: Bytes,
}

impl RequestHead {
    pub fn method(&self) -> &str {
        unimplemented!()
    }
    pub fn is_idempotent(&self) -> bool {
        unimplemented!()
    }
    pub fn version(&self) -> Version {
        unimplemented!()
    }
    pub fn target(&self) -> &str {
        unimplemented!()
    }
    pub fn path_and_query(&self) -> &str {
        unimplemented!()
    }
    pub fn path(&self) -> &str {
        unimplemented!()
    }
    pub fn host(&self) -> Option<&str> {
        unimplemented!()
    }
    pub fn authority(&self) -> Option<&str> {
        unimplemented!()
    }
    pub fn header(&self, _lower_name: &str) -> Option<&[u8]> {
        unimplemented!()
    }
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        std::iter::empty()
    }
    pub fn body(&self) -> BodyKind {
        unimplemented!()
    }
    pub fn keep_alive(&self) -> bool {
        unimplemented!()
    }
    pub fn expects_continue(&self) -> bool {
        unimplemented!()
    }
    pub fn upgrade(&self) -> Option<&[u8]> {
        unimplemented!()
    }
}

#[derive(Debug, Clone)]
pub struct ResponseHead {
    _todo: Bytes,
}

impl ResponseHead {
    pub fn status(&self) -> u16 {
        unimplemented!()
    }
    pub fn version(&self) -> Version {
        unimplemented!()
    }
    pub fn header(&self, _lower_name: &str) -> Option<&[u8]> {
        unimplemented!()
    }
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        std::iter::empty()
    }
    pub fn body(&self) -> BodyKind {
        unimplemented!()
    }
    pub fn keep_alive(&self) -> bool {
        unimplemented!()
    }
    pub fn is_informational(&self) -> bool {
        unimplemented!()
    }
}

pub fn parse_request(
    _buf: &[u8],
    _limits: &Limits,
) -> Result<Option<(RequestHead, usize)>, RequestError> {
    unimplemented!()
}

pub fn parse_response(
    _buf: &[u8],
    _max_bytes: usize,
    _request_method: &str,
) -> Result<Option<(ResponseHead, usize)>, ResponseError> {
    unimplemented!()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    pub consumed: usize,
    pub done: bool,
}

#[derive(Debug, Default)]
pub struct ChunkedScanner {}

impl ChunkedScanner {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn scan(
        &mut self,
        _input: &[u8],
        _on_data: impl FnMut(Range<usize>),
    ) -> Result<Scan, ChunkError> {
        unimplemented!()
    }
    pub fn data_bytes(&self) -> u64 {
        unimplemented!()
    }
}

pub fn write_request_head(
    _out: &mut Vec<u8>,
    _head: &RequestHead,
    _set: &[(&str, &[u8])],
    _upgrade: bool,
) {
    unimplemented!()
}

pub fn write_response_head(
    _out: &mut Vec<u8>,
    _head: &ResponseHead,
    _set: &[(&str, &[u8])],
    _keep_alive: bool,
) {
    unimplemented!()
}
