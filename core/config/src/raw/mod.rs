//! The file format: one serde type per TOML table, exactly as a user writes it.
//!
//! Every type is closed with `deny_unknown_fields`, and every field's doc comment is the
//! reference for that key (docs/config.md is written from them). Nothing here is checked
//! beyond its TOML type: addresses stay strings, names are not resolved, defaults are not
//! applied. `validate` does all of that, so that each mistake is reported with its own path
//! and message.
//!
//! A file has these top-level keys: `[proxy]`, `[mesh]`, `[[listeners]]`, `[[routes]]`,
//! `[[authz]]`, `[[clusters]]`, `[[consumers]]`, `[[jwt_providers]]` and `[[redis]]`
//! (gateway role), and `[dns]`. Any other top-level key is an error. Only `[[listeners]]` is
//! required (at least one): an empty or truncated file would serve nothing.
//!
//! Certificate, key and CA files are named by path; a relative path is resolved against the
//! directory of the configuration file (or the current directory when the text did not come
//! from a file). Each can be given inline instead (`cert_pem`, `key_pem`, ...), which is how a
//! control plane pushes new identities.
//!
//! One file per part of the file: `process` (`[proxy]`, `[mesh]`), `listeners`, `authz`,
//! `routes`, `clusters` (with `[dns]`) and `gateway` (`[[consumers]]`, `[[jwt_providers]]`,
//! `[[redis]]`); the tables more than one of them takes (header edits, rate limits) are here.
//! Every type is re-exported, so `raw::FileRoute` names it wherever its file is.

use serde::Deserialize;

mod authz;
mod clusters;
mod gateway;
mod listeners;
mod process;
mod routes;

pub use authz::{FileAuthz, FileAuthzAction};
pub use clusters::{
    FileCircuitBreaker, FileCluster, FileClusterKind, FileClusterMtls, FileClusterTls, FileDns,
    FileDnsMode, FileEndpoint, FileEndpointTable, FileHashCookie, FileHealthCheck, FileLb,
    FileOutlierDetection, FileRetryBudget, FileUpstreamProtocol,
};
pub use gateway::{
    FileApiKey, FileApiKeyAuthn, FileAuthn, FileConsumer, FileJwtProvider, FileRedis,
};
pub use listeners::{
    FileAccessLog, FileCertDetail, FileCertKey, FileEscapedSlashes, FileForwardClientCert,
    FileHttp2, FileInspectOnTimeout, FileListener, FileListenerMatch, FileListenerTls,
    FileLogFormat, FileMtlsMode, FileProtocol, FileTransport, FileUnmatched,
};
pub use process::{FileDriver, FileMesh, FileMeshIdentity, FileProxy, FileRole};
pub use routes::{
    FileBackoff, FileCors, FileDirectResponse, FileFault, FileFaultAbort, FileFaultDelay,
    FileMatch, FileMirror, FileRedirect, FileRegexRewrite, FileRetry, FileRewrite, FileRoute,
    FileWeighted,
};

/// `rate_limit` of a listener or a route: a token bucket holding up to `burst` tokens,
/// refilled at `requests_per_second`; each request takes one. One bucket per listener or
/// route for the whole process, whatever the number of workers. A request that finds the
/// bucket empty is answered 429 with `retry-after`, `ratelimit-limit`,
/// `ratelimit-remaining` and `ratelimit-reset` (gRPC: RESOURCE_EXHAUSTED).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRateLimit {
    /// Tokens added per second, 1 to 1000000000 (with `redis`: requests per one-second
    /// window, 1 to 4294967295). Required unless `requests_per_minute` is given (with
    /// `redis`, exactly one of the two).
    pub requests_per_second: Option<u64>,
    /// Size of the bucket (the most requests let through at once after a quiet spell), 1
    /// to 4294967295. Default: `requests_per_second` (one second's worth). Not with `redis`
    /// (a window has no burst).
    pub burst: Option<u64>,
    /// A route's only (gateway role): what gets a bucket of its own. `"route"` (one bucket
    /// for the route, the default), `"consumer"` (one per consumer; the route needs
    /// `authn`), `"ip"` (one per client address) or `"header:<name>"` (one per value of
    /// that request header; a request without it is keyed by its client address). Keyed
    /// buckets live in a fixed table of 4096 per route: keys that hash to the same slot
    /// share a bucket (see docs/config.md).
    pub key: Option<String>,
    /// With `redis` only: requests per one-minute window, 1 to 4294967295 (a local limit
    /// is `requests_per_second`).
    pub requests_per_minute: Option<u64>,
    /// A route's only (gateway role): the name of a `[[redis]]` that keeps this limit for
    /// every ringside sharing it (a global limit: fixed windows counted in Redis). Default:
    /// none (a local token bucket).
    pub redis: Option<String>,
    /// With `redis` only: refuse requests (503, `x-ringside-overloaded: true`; gRPC
    /// UNAVAILABLE) while Redis is unreachable or slower than its `timeout_ms`, instead of
    /// letting them through. Default false (fail open).
    pub fail_closed: Option<bool>,
}

/// One element of `request_headers_to_add` or `response_headers_to_add` (on a listener or a
/// route): `{ name = "x-served-by", value = "ringside", action = "append" }`.
///
/// `name` and the names removed by the `*_headers_to_remove` keys are HTTP tokens,
/// case-insensitive (stored lower-case). Refused, because ringside sets them itself:
/// pseudo-headers (`:path`, `:status`, ...), the hop-by-hop headers `connection`,
/// `keep-alive`, `te`, `upgrade` and every `proxy-*` (`proxy-connection`, ...), the framing
/// headers `content-length`, `transfer-encoding` and `trailer`, and `host` (set from the
/// request's authority).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileHeaderAdd {
    /// Required. The header's name.
    pub name: String,
    /// Required. The header's value: visible ASCII characters, spaces and tabs, without
    /// leading or trailing whitespace, with these substitutions made per request:
    /// `%REQ(name)%` (the request's header of that name, an HTTP token, case-insensitive;
    /// empty when absent), `%DOWNSTREAM_REMOTE_ADDRESS%` (the client's address and port,
    /// `10.0.0.7:41000`, `[::1]:41000`), `%REQUEST_ID%` (the request's `x-request-id`), and
    /// `%%` for a literal `%`. Any other `%` is an error. The same substitutions work on
    /// the response side, where they read the request the response answers. A value that
    /// renders empty is not added; an empty value is an error.
    pub value: String,
    /// What happens when the message already has a header of that name: `"append"` (add
    /// another field, keeping the others), `"add_if_absent"` (add it only when there is
    /// none) or `"overwrite"` (replace every field of that name). Default `"append"`.
    pub action: Option<FileHeaderAction>,
}

/// Values of `request_headers_to_add[].action` and `response_headers_to_add[].action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileHeaderAction {
    Append,
    AddIfAbsent,
    Overwrite,
}
