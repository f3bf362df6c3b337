//! `[[routes]]`: an HTTP listener's route table: what a route matches, where it sends a
//! request (clusters, a fixed response, a redirect) and its policies (retry, mirror, fault,
//! rewrite, CORS).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{FileAuthn, FileHeaderAdd, FileRateLimit};

/// `[[routes]]`: one rule of an HTTP listener's route table. A listener's routes are tried in
/// file order; the first whose `match` accepts the request handles it; a request no route
/// matches is answered 404.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRoute {
    /// Required. The `http` listener this route belongs to.
    pub listener: String,
    /// Unique among the routes of one listener; appears in logs and metrics. 1 to 128
    /// characters among `A-Z a-z 0-9 - _ .`. Default `"<listener>/<index>"`, the index being
    /// the route's position among its listener's routes in file order, from 0
    /// (`"inbound/0"`, `"inbound/1"`); `/` is kept for these names.
    pub name: Option<String>,
    /// Which requests this route takes. Omitted or empty: every request.
    #[serde(rename = "match")]
    pub matcher: Option<FileMatch>,
    /// Send matching requests to this cluster. Exactly one of `cluster`, `weighted` and
    /// `direct_response` is required.
    pub cluster: Option<String>,
    /// Split matching requests between clusters in proportion to their weights, e.g.
    /// `[{ cluster = "v1", weight = 90 }, { cluster = "v2", weight = 10 }]`. Each cluster at
    /// most once; the weights must not sum to 0.
    pub weighted: Option<Vec<FileWeighted>>,
    /// Answer matching requests with this fixed response; no upstream is contacted.
    pub direct_response: Option<FileDirectResponse>,
    /// Whole-request deadline in milliseconds, from the request's arrival to the upstream's
    /// response head; answered 504 beyond. Default: none. An error on a `direct_response`
    /// route.
    pub timeout_ms: Option<u64>,
    /// Headers added to the requests this route sends upstream, after the listener's edits:
    /// `[ { name = "x-env", value = "prod", action = "overwrite" } ]`; see [`FileHeaderAdd`].
    pub request_headers_to_add: Option<Vec<FileHeaderAdd>>,
    /// Names of headers removed from the requests this route sends upstream, after the
    /// listener's edits (case-insensitive, each at most once): `[ "x-debug" ]`.
    pub request_headers_to_remove: Option<Vec<String>>,
    /// Headers added to the responses of this route, after the listener's edits, like
    /// `request_headers_to_add`.
    pub response_headers_to_add: Option<Vec<FileHeaderAdd>>,
    /// Names of headers removed from the responses of this route, after the listener's
    /// edits (case-insensitive, each at most once): `[ "x-powered-by" ]`.
    pub response_headers_to_remove: Option<Vec<String>>,
    /// Retries of this route's requests (a sub-table, `[routes.retry]`); see [`FileRetry`].
    /// An error on a `direct_response` route. Default: none (a request is tried once).
    pub retry: Option<FileRetry>,
    /// A copy of a share of the requests to another cluster, whose answers are dropped:
    /// `{ cluster = "orders-shadow", percent = 100.0 }`; see [`FileMirror`]. An error on a
    /// `direct_response` route. Default: none.
    pub mirror: Option<FileMirror>,
    /// Fault injection: delay or abort a share of the requests this route matches, e.g.
    /// `{ delay = { fixed_ms = 200, percent = 10.0 }, abort = { status = 503, percent = 1.0 } }`;
    /// see [`FileFault`]. An error on a `direct_response` route. Default: none.
    pub fault: Option<FileFault>,
    /// A token bucket shared by every request of this route, for the whole process (all
    /// workers): `{ requests_per_second = 500, burst = 1000 }`; see [`FileRateLimit`].
    /// Checked before the route's other stages (fault injection included). With `key`, one
    /// bucket per consumer, client address or header value instead (gateway role). Default:
    /// none.
    pub rate_limit: Option<FileRateLimit>,
    /// Gateway role only: who may use this route. `{ api_key = { header = "x-api-key",
    /// query = "apikey" } }` admits requests carrying an API key of a `[[consumers]]` entry,
    /// `{ jwt = [ "corp" ] }` those with a valid token of a `[[jwt_providers]]` entry; see
    /// [`FileAuthn`]. An error unless `[proxy] role = "gateway"`. Default: none (anyone).
    pub authn: Option<FileAuthn>,
    /// Gateway role only. Answer matching requests with a redirect built from the request:
    /// `{ scheme = "https", status = 301 }`; see [`FileRedirect`]. Takes the place of
    /// `cluster` (exactly one of `cluster`, `weighted`, `direct_response`, `redirect`).
    pub redirect: Option<FileRedirect>,
    /// Gateway role only. What the upstream request's path and host become:
    /// `{ prefix = "/orders/" }`, `{ regex = { pattern = "^/api/(.*)$", substitution = "/\\1" } }`,
    /// `{ host = "orders.internal" }`; see [`FileRewrite`]. Not on a `direct_response` or
    /// `redirect` route.
    pub rewrite: Option<FileRewrite>,
    /// Gateway role only. Client address blocks let in (`[ "10.0.0.0/8", "::1" ]`, IPv4 and
    /// IPv6; a bare address is one host). Given: every other address is refused with 403
    /// (gRPC PERMISSION_DENIED). The client is the connection's peer. Default: all.
    pub ip_allow: Option<Vec<String>>,
    /// Gateway role only. Client address blocks refused with 403, checked before
    /// `ip_allow`. Default: none.
    pub ip_deny: Option<Vec<String>>,
    /// Gateway role only. The most request body bytes this route takes, declared (413
    /// before forwarding) or streamed (the stream is cut); the lower of it and the
    /// listener's `max_request_body_bytes` applies. Default: the listener's.
    pub max_request_body_bytes: Option<u64>,
    /// Gateway role only. Cross-origin resource sharing (a sub-table, `[routes.cors]`); see
    /// [`FileCors`]. Default: none (CORS requests are forwarded as they come).
    pub cors: Option<FileCors>,
    /// A `match.connect` route only, in place of `cluster`: `"authority"` tunnels to the
    /// address the CONNECT names instead of a cluster's endpoint (Envoy's dynamic forward
    /// proxy, without DNS). The route's `match.host` is required and must be an IP address
    /// (`"10.0.0.7"`, `"[fd00::7]"`): a worker never waits for DNS, so a host name is
    /// tunnelled to through a cluster whose endpoints are its addresses. The tunnel thus
    /// reaches that one address, on the ports `match.ports` allows.
    pub tunnel_to: Option<String>,
}

/// `routes[].redirect`: the proxy answers with `status` and a `Location` built from the
/// request, each part replaced when given. The query is kept unless `strip_query`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRedirect {
    /// `"http"` or `"https"`. Default: the request's (`https` on a TLS listener). When the
    /// scheme changes and no `port` is given, the new scheme's default port is used.
    pub scheme: Option<String>,
    /// A host name or IP address, without port. Default: the request's host.
    pub host: Option<String>,
    /// 1 to 65535; left out of the location when it is the scheme's default. Default: the
    /// request's port (none when the scheme changes).
    pub port: Option<u64>,
    /// The whole new path (`/login`), starting with `/`, no query. Not with `prefix`.
    pub path: Option<String>,
    /// Replaces the route's `match.path_prefix` (only on a route matching by
    /// `path_prefix`). Not with `path`.
    pub prefix: Option<String>,
    /// Drop the request's query. Default `false`.
    pub strip_query: Option<bool>,
    /// 301, 302, 303, 307 or 308. Default 301.
    pub status: Option<u16>,
}

/// `routes[].rewrite`: at least one key. The query string is kept; when the path changes
/// the original path and query go upstream in `x-original-path`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRewrite {
    /// Replaces the route's `match.path_prefix` (only on a route matching by
    /// `path_prefix`): with `path_prefix = "/api/orders/"` and `prefix = "/orders/"`,
    /// `/api/orders/7?x=1` goes upstream as `/orders/7?x=1`. Not with `regex`.
    pub prefix: Option<String>,
    /// Replaces every match of a regular expression in the path (not the query); see
    /// [`FileRegexRewrite`]. Not with `prefix`.
    pub regex: Option<FileRegexRewrite>,
    /// The upstream request's `Host` (HTTP/1.1) or `:authority` (HTTP/2), with an optional
    /// port: `"orders.internal"`, `"10.0.0.5:8080"`.
    pub host: Option<String>,
}

/// `routes[].rewrite.regex`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRegexRewrite {
    /// Required. A regular expression (Rust `regex` syntax, RE2-like), not anchored unless
    /// it says so (`^…$`).
    pub pattern: String,
    /// Required. The replacement; `\1` to `\9` insert the pattern's capture groups (written
    /// `"/\\1"` in a TOML basic string, `'/\1'` in a literal one), `\\` is a backslash.
    pub substitution: String,
}

/// `[routes.cors]`: the route's answer to browsers' cross-origin requests (the Fetch
/// standard's CORS protocol). A preflight (`OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`) from an allowed origin is answered 204 by the proxy with
/// the allow fields; from any other origin it is answered 403 without them; neither is
/// forwarded. Other requests are forwarded; the response to one from an allowed origin gets
/// `access-control-allow-origin` (the request's origin), `-expose-headers`,
/// `-allow-credentials` and `vary: origin`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileCors {
    /// Required, not empty. Each is an origin (`"https://app.example.com"`, compared
    /// without regard to case), `"*"` (every origin), `"null"`, or `"regex:…"`: a regular
    /// expression the whole origin must match (anchored whether or not it says `^…$`).
    pub allow_origins: Vec<String>,
    /// Methods a preflight allows (`access-control-allow-methods`), HTTP tokens. Default:
    /// none sent (browsers then allow only GET, HEAD and POST).
    pub allow_methods: Option<Vec<String>>,
    /// Request header names a preflight allows (`access-control-allow-headers`). Default:
    /// none sent.
    pub allow_headers: Option<Vec<String>>,
    /// Response header names scripts may read (`access-control-expose-headers`). Default:
    /// none sent.
    pub expose_headers: Option<Vec<String>>,
    /// How long a browser may cache a preflight's answer (`access-control-max-age`), 0 to
    /// 86400 seconds. Default: not sent (the browser's default, 5 s).
    pub max_age_s: Option<u64>,
    /// Let requests carry credentials (`access-control-allow-credentials: true`). An error
    /// together with `"*"` in `allow_origins`. Default `false`.
    pub allow_credentials: Option<bool>,
}

/// `routes[].fault`: Envoy's fault filter for one route. Percentages are of the requests the
/// route matches, from 0.0 to 100.0. A request picked for an abort is answered at once
/// (never forwarded, never delayed); otherwise a request picked for a delay waits before
/// it is forwarded, and the wait counts against the route's `timeout_ms`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileFault {
    /// Delay a share of the requests: `{ fixed_ms = 200, percent = 10.0 }`.
    pub delay: Option<FileFaultDelay>,
    /// Answer a share of the requests without forwarding them:
    /// `{ status = 503, percent = 1.0 }`, `{ grpc_status = 14, percent = 5.0 }`.
    pub abort: Option<FileFaultAbort>,
    /// Let requests ask for a fault with the `x-ringside-fault-*` headers (docs/config.md
    /// "Fault injection"), within the `delay` and `abort` given here: a header can only
    /// ask for a kind of fault that is configured, and never for a larger percentage than
    /// the configured one. Default `false`.
    pub header_control: Option<bool>,
}

/// `routes[].fault.delay`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileFaultDelay {
    /// The delay in milliseconds, at least 1. Required unless `header_control = true`
    /// (then a request without the delay header is not delayed).
    pub fixed_ms: Option<u64>,
    /// Required. Percentage of the route's requests delayed, 0.0 to 100.0.
    pub percent: f64,
}

/// `routes[].fault.abort`: at least one of `status` and `grpc_status` (either may come from
/// a header instead with `header_control = true`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileFaultAbort {
    /// HTTP status of the answer, 200 to 599. A gRPC request gets the gRPC status this
    /// HTTP status maps to, unless `grpc_status` is given.
    pub status: Option<u16>,
    /// gRPC status of the answer to a gRPC request (`content-type: application/grpc...`),
    /// 0 to 16, in a trailers-only response. With no `status`, only gRPC requests are
    /// aborted.
    pub grpc_status: Option<u8>,
    /// Required. Percentage of the route's requests aborted, 0.0 to 100.0.
    pub percent: f64,
}

/// `routes[].mirror`: shadow traffic. Fire-and-forget: the copy never changes the main
/// response or its latency.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileMirror {
    /// Required. The cluster the copies go to.
    pub cluster: String,
    /// Share of the route's requests copied, 0.0 to 100.0. Default 100.0.
    pub percent: Option<f64>,
    /// Appended to the copy's host (before its port): `"-shadow"` sends `orders:8080` as
    /// `orders-shadow:8080`. Default: none, the host stays as it was.
    pub host_suffix: Option<String>,
    /// Copies in flight per worker, 1 to 65536; a copy beyond it is dropped and counted.
    /// Default 64.
    pub max_in_flight: Option<u64>,
}

/// `[routes.retry]`: when and how a route's requests are tried again. Every key optional.
///
/// A request is retried only if its method allows it (`methods`), before any byte of a
/// response reached the client, and while its body fits `max_body_bytes`. Each retry goes to
/// another endpoint when the cluster has one, after a backoff, and carries
/// `x-ringside-attempt: N` (every try of a route with a retry policy does, from 1). When the
/// tries run out, the last response goes to the client as it came. The cluster's
/// `retry_budget` caps how many retries are made.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRetry {
    /// Retries after the first try, 1 to 10. Default 1.
    pub attempts: Option<u64>,
    /// Milliseconds each try may take up to its response head; a try past it is abandoned
    /// and counts as a per-try timeout (retried under `5xx` and `gateway-error`). The route's
    /// `timeout_ms` still bounds all tries and backoffs together. Default: none.
    pub per_try_timeout_ms: Option<u64>,
    /// What is retried, any of: `"connect-failure"`, `"refused-stream"` (an HTTP/2 upstream's
    /// REFUSED_STREAM), `"reset"` (closed or reset before a response), `"5xx"` (any 5xx, a
    /// connect failure, a reset or a per-try timeout), `"gateway-error"` (502, 503, 504 or a
    /// per-try timeout), `"retriable-status-codes"` (`status_codes`), and the gRPC statuses
    /// of a trailers-only response `"cancelled"`, `"deadline-exceeded"`, `"internal"`,
    /// `"resource-exhausted"`, `"unavailable"`. Default: Istio's, `["connect-failure",
    /// "refused-stream", "unavailable", "cancelled", "retriable-status-codes"]`.
    pub on: Option<Vec<String>>,
    /// The statuses `"retriable-status-codes"` retries, 100 to 599. Default `[503]`.
    pub status_codes: Option<Vec<u64>>,
    /// Response headers that ask for a retry, a trigger of their own: a response carrying
    /// one of these names with a matching value is retried. The value is exact, or
    /// `"regex:RE"` (searched; anchor with `^` and `$`): `{ "x-retryable" = "regex:^(yes|true)$" }`.
    pub response_headers: Option<BTreeMap<String, String>>,
    /// The wait before retry N: random between `base_ms` and `min(max_ms, base_ms × 2^N)`
    /// (full jitter). `{ base_ms = 25, max_ms = 250 }` is the default; `max_ms` defaults to
    /// ten times `base_ms`.
    pub backoff: Option<FileBackoff>,
    /// Methods that may be retried. Default: the idempotent ones (`GET`, `HEAD`, `OPTIONS`,
    /// `PUT`, `DELETE`, `TRACE`): a `POST` is not retried unless listed here.
    pub methods: Option<Vec<String>>,
    /// The largest request body kept to be sent again, 0 to 16777216 bytes. A request with a
    /// bigger body is sent once (and counted), never answered with an error for it. Default
    /// 65536.
    pub max_body_bytes: Option<u64>,
}

/// `routes[].retry.backoff`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileBackoff {
    /// Milliseconds, at least 1. Default 25.
    pub base_ms: Option<u64>,
    /// Milliseconds, at least `base_ms`. Default ten times `base_ms`.
    pub max_ms: Option<u64>,
}

/// `routes[].match`: every condition given must hold. All are optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileMatch {
    /// The request's host (the `Host` header or the authority of an absolute target),
    /// compared case-insensitively and without its port. A leading `*.` matches any
    /// subdomain: `"*.example.com"` matches `a.example.com` and `a.b.example.com` but not
    /// `example.com`. A port written here is ignored. A request without a host never matches
    /// a route that has one.
    pub host: Option<String>,
    /// The path (without the query string) starts with this; must start with `/`. Plain
    /// string prefix: `"/v1"` also matches `/v1beta`, write `"/v1/"` to match a directory.
    /// At most one of `path_prefix`, `path_exact`, `path_regex`.
    pub path_prefix: Option<String>,
    /// The path (without the query string) equals this; must start with `/`.
    pub path_exact: Option<String>,
    /// The whole path (without the query string) matches this regular expression (Rust
    /// `regex` syntax; it is anchored at both ends, `"/v[0-9]+/.*"` needs no `^`/`$`).
    /// `(?i)` is not available (the `regex` crate is built without Unicode case folding).
    pub path_regex: Option<String>,
    /// The request method equals this token exactly; methods are case-sensitive, write
    /// `"GET"`, not `"get"`.
    pub method: Option<String>,
    /// Header name → value: each header must be present and its first value must equal
    /// this exactly (byte for byte, case-sensitive). Names are case-insensitive.
    pub headers: Option<BTreeMap<String, String>>,
    /// The client's verified identity (the URI SAN of its certificate on an `mtls` listener)
    /// is one of these: an exact identity such as `"spiffe://cluster.local/ns/shop/sa/cart"`,
    /// or a prefix ending in `*`. A request without a verified identity (plaintext on a
    /// permissive listener, any other listener) never matches a route that has principals.
    pub principals: Option<Vec<String>>,
    /// Gateway role: `[[consumers]]` names. The route matches only a request whose
    /// credential, checked by this route's `authn` (required), is one of these consumers'.
    /// Any other request (another consumer's, or one without a valid credential) goes on to
    /// the next route, as for any condition that does not hold. Checked after the other
    /// conditions. A CORS preflight carries no credential: give the route without
    /// `consumers` that catches the rest the same `cors`.
    pub consumers: Option<Vec<String>>,
    /// `true`: the route takes `CONNECT` requests (the tunnels `HTTPS_PROXY` clients ask
    /// for, over HTTP/1.1 and HTTP/2), and only those; a route without it never takes one,
    /// and a `CONNECT` no route takes is refused with 403. `host` is then the authority's
    /// host (`CONNECT api.example.com:443` has host `api.example.com`). The route answers
    /// `200` and relays bytes both ways to an endpoint of its `cluster` (or `weighted`), or
    /// to the authority itself with `tunnel_to = "authority"`. Not with `path_*` or
    /// `method`; the route takes no `direct_response`, `redirect`, `retry`, `mirror`,
    /// `rewrite` or `cors`. An RFC 8441 extended CONNECT (a WebSocket over HTTP/2) is not a
    /// tunnel: ordinary routes take it. Default `false`.
    pub connect: Option<bool>,
    /// With `connect = true`: the authority's port must be one of these (1 to 65535), e.g.
    /// `[ 443 ]`. On a listener with `transparent = true`, for other requests: the port of
    /// the connection's original destination must be one of these. An error anywhere else.
    /// Default: any port.
    pub ports: Option<Vec<u16>>,
}

/// One element of `routes[].weighted`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileWeighted {
    /// Required. A cluster name.
    pub cluster: String,
    /// Required. Relative share of requests, 0 or more (0 sends this cluster nothing).
    pub weight: u32,
}

/// `routes[].direct_response`: a fixed response.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDirectResponse {
    /// Required. Status code, 200 to 599.
    pub status: u16,
    /// Response body. Default: empty.
    pub body: Option<String>,
    /// `Content-Type` of the response. Default `"text/plain; charset=utf-8"`.
    pub content_type: Option<String>,
}
