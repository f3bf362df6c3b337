//! The data path's one error type, classified by side ([`Side`]: the client, the upstream,
//! or a local policy) and by whether a retry is safe ([`Retry`]). `pipeline/answer.rs` is the
//! only place that turns one into a response (HTTP/1.1, HTTP/2 or gRPC).

use std::io;

/// Which side a failure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// The client sent something the proxy refuses, or went away.
    Downstream,
    /// The upstream could not be reached, or failed or stalled.
    Upstream,
    /// A local policy refused the request: no route, a method or a size not allowed, an
    /// authorization rule, no endpoint left that is not ejected.
    Policy,
}

/// Whether the request may be sent again (to another endpoint) after this failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Retry {
    /// Never: the failure is the client's or a policy's, and would repeat.
    Never,
    /// The upstream may have seen the request but answered nothing: only an idempotent
    /// request may go again.
    IfIdempotent,
    /// The upstream saw none of the request (a failed connect, a refused stream): any
    /// request may go again.
    Safe,
}

/// Which limit of a cluster's circuit breaker refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BreakerLimit {
    Connections,
    PendingRequests,
    Requests,
}

impl BreakerLimit {
    pub(crate) const ALL: [BreakerLimit; 3] = [
        BreakerLimit::Connections,
        BreakerLimit::PendingRequests,
        BreakerLimit::Requests,
    ];

    /// The configuration key of the limit (also the metric's `limit` label).
    pub(crate) fn key(self) -> &'static str {
        match self {
            BreakerLimit::Connections => "max_connections",
            BreakerLimit::PendingRequests => "max_pending_requests",
            BreakerLimit::Requests => "max_requests",
        }
    }
}

/// What a refused request is told about the token bucket that refused it (the IETF draft's
/// RateLimit header fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateLimited {
    /// The bucket's size (`ratelimit-limit`).
    pub(crate) limit: u32,
    /// Whole seconds until a request would be let through again, at least 1 (`retry-after`,
    /// `ratelimit-reset`).
    pub(crate) reset_secs: u64,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyError {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("no route matched")]
    NoRoute,
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
    /// A try of a route with `retry.per_try_timeout_ms` took longer.
    #[error("upstream per-try timeout")]
    PerTryTimeout,
    /// A try's response head asked for a retry (`upstream/retry.rs`); it never reaches a
    /// client: the retry loop makes the next try.
    #[error("upstream response retried")]
    Retried,
    /// A listener's or a route's `rate_limit` refused the request.
    #[error("rate limited")]
    RateLimited(RateLimited),
    /// A route's `fault.abort` answered the request: an HTTP status, and for a gRPC request
    /// the gRPC status to use instead of the one the HTTP status maps to.
    #[error("fault injected")]
    FaultAbort { status: u16, grpc: Option<u8> },
    /// A cluster's circuit breaker is at this limit.
    #[error("cluster overloaded ({})", .0.key())]
    Overloaded(BreakerLimit),
    /// A route's `authn` found no credential, one no consumer has, or a token that does not
    /// pass.
    #[error("{}", .0.reason.message())]
    Unauthenticated(Unauthenticated),
    /// A gateway stage refused the request (an address filter, a CORS origin): why.
    #[error("{0}")]
    Refused(&'static str),
    /// A route's global rate limit with `fail_closed` cannot reach its Redis.
    #[error("rate limit unavailable: redis unreachable")]
    LimitUnavailable,
}

/// Why a request was not authenticated (the reason label of
/// `ringside_authn_failures_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthnFailure {
    /// No credential where the route looks for one.
    Missing,
    /// A credential no consumer has.
    Unknown,
    /// A JWT that does not pass.
    Jwt(JwtFailure),
}

/// Why a JWT does not pass. Each is a 401 with `error="invalid_token"`, but
/// [`JwtFailure::Audience`], which is a 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JwtFailure {
    /// Longer than the most a token may be.
    TooLarge,
    /// Not three base64url parts of JSON, or an `alg` (such as `none`) never accepted.
    Malformed,
    /// An `alg` the key that would check it does not take.
    Algorithm,
    /// A `kid` none of the provider's keys has (a refetch is asked for).
    UnknownKid,
    /// The provider has no keys yet (its JWKS was never fetched).
    NoKeys,
    Signature,
    Expired,
    NotYetValid,
    /// `iss` is not the provider's issuer, or there is none.
    Issuer,
    /// `aud` holds none of the provider's audiences (403).
    Audience,
}

impl JwtFailure {
    fn label(self) -> &'static str {
        match self {
            JwtFailure::TooLarge => "jwt_too_large",
            JwtFailure::Malformed => "jwt_malformed",
            JwtFailure::Algorithm => "jwt_algorithm",
            JwtFailure::UnknownKid => "jwt_unknown_kid",
            JwtFailure::NoKeys => "jwt_no_keys",
            JwtFailure::Signature => "jwt_signature",
            JwtFailure::Expired => "jwt_expired",
            JwtFailure::NotYetValid => "jwt_not_yet_valid",
            JwtFailure::Issuer => "jwt_issuer",
            JwtFailure::Audience => "jwt_audience",
        }
    }

    fn message(self) -> &'static str {
        match self {
            JwtFailure::TooLarge => "invalid token: too large",
            JwtFailure::Malformed => "invalid token: malformed",
            JwtFailure::Algorithm => "invalid token: algorithm not accepted",
            JwtFailure::UnknownKid => "invalid token: unknown key id",
            JwtFailure::NoKeys => "invalid token: no keys to verify it yet",
            JwtFailure::Signature => "invalid token: bad signature",
            JwtFailure::Expired => "invalid token: expired",
            JwtFailure::NotYetValid => "invalid token: not yet valid",
            JwtFailure::Issuer => "invalid token: wrong issuer",
            JwtFailure::Audience => "token not for this audience",
        }
    }
}

impl AuthnFailure {
    /// The metric's `reason` label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            AuthnFailure::Missing => "missing",
            AuthnFailure::Unknown => "unknown",
            AuthnFailure::Jwt(j) => j.label(),
        }
    }

    fn message(self) -> &'static str {
        match self {
            AuthnFailure::Missing => "no credential found in the request",
            AuthnFailure::Unknown => "invalid API key",
            AuthnFailure::Jwt(j) => j.message(),
        }
    }
}

/// What a refused request is told: 401 (403 for a token of another audience) with a
/// `WWW-Authenticate` field naming the route's ways in (`pipeline/answer.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unauthenticated {
    pub(crate) reason: AuthnFailure,
    /// The route's name.
    pub(crate) realm: Box<str>,
    /// The route takes a bearer token (JWT).
    pub(crate) bearer: bool,
    /// The route takes an API key.
    pub(crate) api_key: bool,
}

impl Unauthenticated {
    /// The value of `WWW-Authenticate` (RFC 9110 §11.6.1, RFC 6750 §3): one challenge per
    /// way the route takes, or the bearer one with `error="invalid_token"` for a bad token.
    pub(crate) fn challenge(&self) -> String {
        let r = &self.realm;
        match self.reason {
            AuthnFailure::Jwt(_) => format!("Bearer realm=\"{r}\", error=\"invalid_token\""),
            AuthnFailure::Unknown => format!("ApiKey realm=\"{r}\""),
            AuthnFailure::Missing => match (self.bearer, self.api_key) {
                (true, true) => format!("Bearer realm=\"{r}\", ApiKey realm=\"{r}\""),
                (true, false) => format!("Bearer realm=\"{r}\""),
                _ => format!("ApiKey realm=\"{r}\""),
            },
        }
    }

    fn forbidden(&self) -> bool {
        self.reason == AuthnFailure::Jwt(JwtFailure::Audience)
    }
}

impl ProxyError {
    pub(crate) fn status(&self) -> u16 {
        match self {
            ProxyError::BadRequest(_) => 400,
            ProxyError::NoRoute => 404,
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
            ProxyError::Timeout | ProxyError::PerTryTimeout => 504,
            ProxyError::Forbidden | ProxyError::Refused(_) => 403,
            ProxyError::Retried => 502,
            ProxyError::ClientStream(_) => 400,
            ProxyError::UpstreamStream(_) => 502,
            ProxyError::RateLimited(_) => 429,
            ProxyError::FaultAbort { status, .. } => *status,
            ProxyError::Overloaded(_) | ProxyError::LimitUnavailable => 503,
            ProxyError::Unauthenticated(u) if u.forbidden() => 403,
            ProxyError::Unauthenticated(_) => 401,
        }
    }

    /// The gRPC status code a gRPC client gets for this failure (grpc/doc/statuscodes.md and
    /// its HTTP-to-gRPC mapping).
    pub(crate) fn grpc_code(&self) -> u8 {
        match self {
            ProxyError::NoRoute | ProxyError::NotImplemented => 12,
            ProxyError::Forbidden | ProxyError::Refused(_) => 7,
            ProxyError::Timeout | ProxyError::PerTryTimeout | ProxyError::HeadTimeout => 4,
            ProxyError::BodyTooLarge | ProxyError::HeadersTooLarge | ProxyError::UriTooLong => 8,
            ProxyError::NoHealthyEndpoint
            | ProxyError::Connect(_)
            | ProxyError::UpstreamClosedEarly
            | ProxyError::UpstreamIo(_)
            | ProxyError::UpstreamInvalid(_)
            | ProxyError::UpstreamStream(_)
            | ProxyError::Retried => 14,
            ProxyError::ClientGone | ProxyError::ClientIo(_) | ProxyError::ClientStream(_) => 1,
            ProxyError::BadRequest(_) | ProxyError::VersionNotSupported => 13,
            ProxyError::RateLimited(_) => 8,
            ProxyError::Overloaded(_) | ProxyError::LimitUnavailable => 14,
            ProxyError::Unauthenticated(u) if u.forbidden() => 7,
            ProxyError::Unauthenticated(_) => 16,
            ProxyError::FaultAbort { status, grpc } => grpc.unwrap_or(match status {
                400 => 13,
                401 => 16,
                403 => 7,
                404 => 12,
                429 | 502 | 503 | 504 => 14,
                _ => 2,
            }),
        }
    }

    pub(crate) fn side(&self) -> Side {
        match self {
            ProxyError::BadRequest(_)
            | ProxyError::HeadTimeout
            | ProxyError::UriTooLong
            | ProxyError::HeadersTooLarge
            | ProxyError::NotImplemented
            | ProxyError::VersionNotSupported
            | ProxyError::ClientGone
            | ProxyError::ClientIo(_)
            | ProxyError::ClientStream(_) => Side::Downstream,
            ProxyError::NoRoute
            | ProxyError::BodyTooLarge
            | ProxyError::Forbidden
            | ProxyError::Refused(_)
            | ProxyError::NoHealthyEndpoint
            | ProxyError::RateLimited(_)
            | ProxyError::FaultAbort { .. }
            | ProxyError::Overloaded(_)
            | ProxyError::LimitUnavailable
            | ProxyError::Unauthenticated(_) => Side::Policy,
            ProxyError::Connect(_)
            | ProxyError::UpstreamClosedEarly
            | ProxyError::UpstreamIo(_)
            | ProxyError::UpstreamInvalid(_)
            | ProxyError::Timeout
            | ProxyError::PerTryTimeout
            | ProxyError::Retried
            | ProxyError::UpstreamStream(_) => Side::Upstream,
        }
    }

    /// Whether a retry is safe after this failure (see [`Retry`]).
    pub(crate) fn retry(&self) -> Retry {
        match self {
            ProxyError::Connect(_) => Retry::Safe,
            ProxyError::UpstreamStream(e) if e.reason() == Some(h2::Reason::REFUSED_STREAM) => {
                Retry::Safe
            }
            _ if self.unprocessed() => Retry::Safe,
            ProxyError::UpstreamClosedEarly
            | ProxyError::UpstreamIo(_)
            | ProxyError::UpstreamInvalid(_)
            | ProxyError::Timeout
            | ProxyError::UpstreamStream(_) => Retry::IfIdempotent,
            _ => Retry::Never,
        }
    }

    /// An HTTP/2 stream the upstream said it never processed: its GOAWAY's last stream ID is
    /// below the stream (h2 fails exactly those streams with the remote GOAWAY; the ones it
    /// processed end on the connection, or with a broken pipe when it closes), or the stream
    /// could not be opened because the connection had received GOAWAY.
    pub(crate) fn unprocessed(&self) -> bool {
        matches!(self, ProxyError::UpstreamStream(e) if e.is_go_away() && e.is_remote())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_and_retries() {
        let refused = ProxyError::UpstreamStream(h2::Error::from(h2::Reason::REFUSED_STREAM));
        let reset = ProxyError::UpstreamStream(h2::Error::from(h2::Reason::INTERNAL_ERROR));
        let connect = ProxyError::Connect(io::ErrorKind::ConnectionRefused.into());
        assert_eq!(connect.retry(), Retry::Safe);
        assert_eq!(refused.retry(), Retry::Safe);
        assert_eq!(reset.retry(), Retry::IfIdempotent);
        assert_eq!(ProxyError::UpstreamClosedEarly.retry(), Retry::IfIdempotent);
        assert_eq!(ProxyError::Forbidden.retry(), Retry::Never);
        assert_eq!(ProxyError::ClientGone.retry(), Retry::Never);
        assert_eq!(ProxyError::Forbidden.side(), Side::Policy);
        assert_eq!(ProxyError::NoHealthyEndpoint.side(), Side::Policy);
        assert_eq!(
            ProxyError::BadRequest(String::new()).side(),
            Side::Downstream
        );
        assert_eq!(ProxyError::Timeout.side(), Side::Upstream);
    }
}
