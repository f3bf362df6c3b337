//! The data path's one error type, classified by side and retryability. `http::respond` is
//! the only place that turns one into a response.

use std::io;

/// Which side a failure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Downstream,
    Upstream,
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyError {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("no route matched")]
    NoRoute,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("request head timeout")]
    HeadTimeout,
    #[error("request body too large")]
    BodyTooLarge,
    #[error("request target too long")]
    UriTooLong,
    #[error("request header fields too large")]
    HeadersTooLarge,
    #[error("not implemented")]
    NotImplemented,
    #[error("HTTP version not supported")]
    VersionNotSupported,
    #[error("client closed the connection")]
    ClientGone,
    #[error("client I/O: {0}")]
    ClientIo(io::Error),
    #[error("no healthy endpoint")]
    NoHealthyEndpoint,
    #[error("upstream connect failed: {0}")]
    Connect(io::Error),
    /// The upstream closed or reset before sending any byte of a response. On a reused
    /// connection this is the classic keep-alive race and is safe to retry for idempotent,
    /// bodyless requests.
    #[error("upstream closed the connection before responding")]
    UpstreamClosedEarly,
    #[error("upstream I/O: {0}")]
    UpstreamIo(io::Error),
    #[error("invalid response from upstream: {0}")]
    UpstreamInvalid(String),
    #[error("upstream timed out")]
    Timeout,
    #[error("denied by authorization policy")]
    Forbidden,
    /// The HTTP/2 client reset the stream or the connection failed.
    #[error("client stream: {0}")]
    ClientStream(h2::Error),
    /// The upstream HTTP/2 stream or connection failed.
    #[error("upstream stream: {0}")]
    UpstreamStream(h2::Error),
}

impl ProxyError {
    pub(crate) fn status(&self) -> u16 {
        match self {
            ProxyError::BadRequest(_) => 400,
            ProxyError::NoRoute => 404,
            ProxyError::MethodNotAllowed => 405,
            ProxyError::HeadTimeout => 408,
            ProxyError::BodyTooLarge => 413,
            ProxyError::UriTooLong => 414,
            ProxyError::HeadersTooLarge => 431,
            ProxyError::NotImplemented => 501,
            ProxyError::VersionNotSupported => 505,
            ProxyError::ClientGone | ProxyError::ClientIo(_) => 400,
            ProxyError::NoHealthyEndpoint => 503,
            ProxyError::Connect(_)
            | ProxyError::UpstreamClosedEarly
            | ProxyError::UpstreamIo(_)
            | ProxyError::UpstreamInvalid(_) => 502,
            ProxyError::Timeout => 504,
            ProxyError::Forbidden => 403,
            ProxyError::ClientStream(_) => 400,
            ProxyError::UpstreamStream(_) => 502,
        }
    }

    /// The gRPC status code a gRPC client gets for this failure (grpc/doc/statuscodes.md and
    /// its HTTP-to-gRPC mapping).
    pub(crate) fn grpc_code(&self) -> u8 {
        match self {
            ProxyError::NoRoute | ProxyError::MethodNotAllowed | ProxyError::NotImplemented => 12,
            ProxyError::Forbidden => 7,
            ProxyError::Timeout | ProxyError::HeadTimeout => 4,
            ProxyError::BodyTooLarge | ProxyError::HeadersTooLarge | ProxyError::UriTooLong => 8,
            ProxyError::NoHealthyEndpoint
            | ProxyError::Connect(_)
            | ProxyError::UpstreamClosedEarly
            | ProxyError::UpstreamIo(_)
            | ProxyError::UpstreamInvalid(_)
            | ProxyError::UpstreamStream(_) => 14,
            ProxyError::ClientGone | ProxyError::ClientIo(_) | ProxyError::ClientStream(_) => 1,
            ProxyError::BadRequest(_) | ProxyError::VersionNotSupported => 13,
        }
    }

    pub(crate) fn side(&self) -> Side {
        match self {
            ProxyError::BadRequest(_)
            | ProxyError::NoRoute
            | ProxyError::MethodNotAllowed
            | ProxyError::HeadTimeout
            | ProxyError::BodyTooLarge
            | ProxyError::UriTooLong
            | ProxyError::HeadersTooLarge
            | ProxyError::NotImplemented
            | ProxyError::VersionNotSupported
            | ProxyError::ClientGone
            | ProxyError::ClientIo(_)
            | ProxyError::ClientStream(_)
            | ProxyError::Forbidden => Side::Downstream,
            ProxyError::NoHealthyEndpoint => Side::Internal,
            ProxyError::Connect(_)
            | ProxyError::UpstreamClosedEarly
            | ProxyError::UpstreamIo(_)
            | ProxyError::UpstreamInvalid(_)
            | ProxyError::Timeout
            | ProxyError::UpstreamStream(_) => Side::Upstream,
        }
    }

    /// Whether the client can still be sent a response (it is not the one that went away).
    pub(crate) fn answerable(&self) -> bool {
        !matches!(
            self,
            ProxyError::ClientGone | ProxyError::ClientIo(_) | ProxyError::ClientStream(_)
        )
    }
}

impl From<ringside_codec::RequestError> for ProxyError {
    fn from(e: ringside_codec::RequestError) -> Self {
        use ringside_codec::RequestError as E;
        match e {
            E::Malformed(why) => ProxyError::BadRequest(why.to_string()),
            E::UriTooLong => ProxyError::UriTooLong,
            E::HeadersTooLarge => ProxyError::HeadersTooLarge,
            E::VersionNotSupported => ProxyError::VersionNotSupported,
            E::NotImplemented => ProxyError::NotImplemented,
        }
    }
}
