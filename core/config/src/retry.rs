//! The retry model: a route's `[routes.retry]` policy and a cluster's `retry_budget`, as the
//! engine's retry loop (`core/engine/src/upstream/retry.rs`) reads them.

use std::time::Duration;

/// What makes an attempt worth repeating (`retry.on`), as a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetryOn(u16);

impl RetryOn {
    /// No connection could be made (after the Balance loop's own tries).
    pub const CONNECT_FAILURE: RetryOn = RetryOn(1);
    /// An HTTP/2 upstream refused the stream (`REFUSED_STREAM`).
    pub const REFUSED_STREAM: RetryOn = RetryOn(1 << 1);
    /// The upstream closed or reset the connection or stream before a response head.
    pub const RESET: RetryOn = RetryOn(1 << 2);
    /// Any 5xx response, a connect failure, a reset, or a per-try timeout.
    pub const FIVE_XX: RetryOn = RetryOn(1 << 3);
    /// 502, 503 or 504, or a per-try timeout.
    pub const GATEWAY_ERROR: RetryOn = RetryOn(1 << 4);
    /// A status in `status_codes`.
    pub const STATUS_CODES: RetryOn = RetryOn(1 << 5);
    /// gRPC statuses of a trailers-only response.
    pub const GRPC_CANCELLED: RetryOn = RetryOn(1 << 6);
    pub const GRPC_DEADLINE_EXCEEDED: RetryOn = RetryOn(1 << 7);
    pub const GRPC_INTERNAL: RetryOn = RetryOn(1 << 8);
    pub const GRPC_RESOURCE_EXHAUSTED: RetryOn = RetryOn(1 << 9);
    pub const GRPC_UNAVAILABLE: RetryOn = RetryOn(1 << 10);

    /// The names of `retry.on`, each with its flag.
    pub const NAMES: [(&'static str, RetryOn); 11] = [
        ("connect-failure", RetryOn::CONNECT_FAILURE),
        ("refused-stream", RetryOn::REFUSED_STREAM),
        ("reset", RetryOn::RESET),
        ("5xx", RetryOn::FIVE_XX),
        ("gateway-error", RetryOn::GATEWAY_ERROR),
        ("retriable-status-codes", RetryOn::STATUS_CODES),
        ("cancelled", RetryOn::GRPC_CANCELLED),
        ("deadline-exceeded", RetryOn::GRPC_DEADLINE_EXCEEDED),
        ("internal", RetryOn::GRPC_INTERNAL),
        ("resource-exhausted", RetryOn::GRPC_RESOURCE_EXHAUSTED),
        ("unavailable", RetryOn::GRPC_UNAVAILABLE),
    ];

    pub const NONE: RetryOn = RetryOn(0);

    pub fn with(self, other: RetryOn) -> RetryOn {
        RetryOn(self.0 | other.0)
    }

    /// Whether any flag of `other` is in the set.
    pub fn any(self, other: RetryOn) -> bool {
        self.0 & other.0 != 0
    }

    /// The flag of a gRPC status code, when `retry.on` can name it.
    pub fn of_grpc_status(code: u32) -> RetryOn {
        match code {
            1 => RetryOn::GRPC_CANCELLED,
            4 => RetryOn::GRPC_DEADLINE_EXCEEDED,
            8 => RetryOn::GRPC_RESOURCE_EXHAUSTED,
            13 => RetryOn::GRPC_INTERNAL,
            14 => RetryOn::GRPC_UNAVAILABLE,
            _ => RetryOn::NONE,
        }
    }
}

/// How a response header's value must look for `retry.response_headers` to retry.
#[derive(Debug, Clone)]
pub enum HeaderValueMatch {
    Exact(Vec<u8>),
    /// Searched in the value (write `^` and `$` to anchor it).
    Regex(regex::Regex),
}

impl HeaderValueMatch {
    pub fn matches(&self, value: &[u8]) -> bool {
        match self {
            HeaderValueMatch::Exact(v) => v == value,
            HeaderValueMatch::Regex(re) => std::str::from_utf8(value).is_ok_and(|s| re.is_match(s)),
        }
    }
}

/// `[routes.retry]`, validated.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Retries after the first try (so `attempts + 1` tries at most).
    pub attempts: u32,
    /// Bound on each try; the route's `timeout_ms` still bounds them all.
    pub per_try_timeout: Option<Duration>,
    pub on: RetryOn,
    pub status_codes: Vec<u16>,
    /// Lower-case header names, each with what its value must match.
    pub response_headers: Vec<(String, HeaderValueMatch)>,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Methods that may be retried, exactly as written; `None`: the idempotent ones.
    pub methods: Option<Vec<String>>,
    /// The largest request body kept to be sent again.
    pub max_body_bytes: u64,
}

impl RetryPolicy {
    /// Whether a request of this method may be retried.
    pub fn allows_method(&self, method: &str) -> bool {
        match &self.methods {
            Some(list) => list.iter().any(|m| m == method),
            None => matches!(
                method,
                "GET" | "HEAD" | "OPTIONS" | "PUT" | "DELETE" | "TRACE"
            ),
        }
    }

    /// Whether a response with this status and these fields asks for another try
    /// (`header` looks a field up by lower-case name; `grpc`: the request is gRPC).
    pub fn wants_response<'a>(
        &self,
        status: u16,
        grpc: bool,
        header: &dyn Fn(&str) -> Option<&'a [u8]>,
    ) -> Option<RetryReason> {
        if (self.on.any(RetryOn::FIVE_XX) && status >= 500)
            || (self.on.any(RetryOn::GATEWAY_ERROR) && matches!(status, 502..=504))
        {
            return Some(RetryReason::Status);
        }
        if self.on.any(RetryOn::STATUS_CODES) && self.status_codes.contains(&status) {
            return Some(RetryReason::Status);
        }
        if self
            .response_headers
            .iter()
            .any(|(name, m)| header(name).is_some_and(|v| m.matches(v)))
        {
            return Some(RetryReason::Header);
        }
        if grpc {
            let code = header("grpc-status")
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|v| v.trim().parse::<u32>().ok());
            if code.is_some_and(|c| self.on.any(RetryOn::of_grpc_status(c))) {
                return Some(RetryReason::Grpc);
            }
        }
        None
    }
}

/// Why an attempt was repeated (the `reason` label of the retry metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryReason {
    ConnectFailure,
    RefusedStream,
    Reset,
    /// A per-try timeout.
    Timeout,
    /// A 5xx, gateway error or listed status code.
    Status,
    /// A `response_headers` match.
    Header,
    /// A retriable gRPC status.
    Grpc,
}

impl RetryReason {
    pub const ALL: [RetryReason; 7] = [
        RetryReason::ConnectFailure,
        RetryReason::RefusedStream,
        RetryReason::Reset,
        RetryReason::Timeout,
        RetryReason::Status,
        RetryReason::Header,
        RetryReason::Grpc,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RetryReason::ConnectFailure => "connect-failure",
            RetryReason::RefusedStream => "refused-stream",
            RetryReason::Reset => "reset",
            RetryReason::Timeout => "per-try-timeout",
            RetryReason::Status => "status",
            RetryReason::Header => "response-header",
            RetryReason::Grpc => "grpc-status",
        }
    }
}

/// `clusters[].retry_budget`, validated.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct RetryBudget {
    /// Retries may add at most this share of the requests of the last 10 s ...
    pub ratio: f64,
    /// ... plus this many per second.
    pub min_per_second: u32,
}

impl RetryBudget {
    pub fn new(ratio: f64, min_per_second: u32) -> RetryBudget {
        RetryBudget {
            ratio,
            min_per_second,
        }
    }
}

impl Default for RetryBudget {
    /// Linkerd's default: 20% more requests, and 10 retries per second whatever the load.
    fn default() -> Self {
        RetryBudget {
            ratio: 0.2,
            min_per_second: 10,
        }
    }
}
