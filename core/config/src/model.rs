//! The validated configuration: what `validate()` produces and every other crate reads.
//!
//! These types are built only by `crate::validate` (they are `#[non_exhaustive]`, so no other
//! crate can construct one with a struct literal) and are immutable once published inside a
//! [`Snapshot`]. Every value is resolved: defaults applied, names turned into indices, regexes
//! compiled. Nothing here can fail at request time.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use crate::tls::{ListenerTls, MeshIdentity, MtlsMode, UpstreamMtls, UpstreamTls};

/// Index of a cluster in [`Config::clusters`]. Valid for the `Config` it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClusterId(pub usize);

/// One validated configuration, ready to serve.
#[derive(Debug)]
#[non_exhaustive]
pub struct Config {
    pub proxy: ProxySettings,
    pub listeners: Vec<Listener>,
    pub clusters: Vec<Cluster>,
    /// Stable 64-bit hash (FNV-1a) of the source text: identical text, identical hash.
    pub content_hash: u64,
    /// The TOML text this configuration was validated from (served by the admin endpoint).
    pub source: String,
    /// `[mesh].identity`, loaded and checked.
    pub mesh: Option<MeshIdentity>,
    /// The directory relative material paths were resolved against: the configuration
    /// file's for [`crate::load_file`], the current directory for [`crate::parse`]. `None`
    /// when it could not be determined (relative paths were then used as written).
    pub base_dir: Option<std::path::PathBuf>,
    /// FNV-1a hash of every certificate, key and CA read (files and inline PEM): with the
    /// same `content_hash`, a different `material_hash` means rotated material.
    pub material_hash: u64,
    /// `[[consumers]]` and their API keys (gateway role; empty otherwise).
    pub consumers: std::sync::Arc<crate::Consumers>,
    /// `[[jwt_providers]]`, by name (gateway role; empty otherwise).
    pub jwt_providers: Vec<std::sync::Arc<crate::JwtProvider>>,
    /// `[[redis]]`: the servers that keep global rate limits (gateway role; empty
    /// otherwise).
    pub redis: Vec<RedisServer>,
    /// `[dns]`: how endpoint host names are resolved.
    pub dns: crate::dns::DnsSettings,
}

impl Config {
    pub fn cluster(&self, id: ClusterId) -> &Cluster {
        // A `ClusterId` is made only by validating this configuration: it is in range.
        #[allow(clippy::indexing_slicing)]
        &self.clusters[id.0]
    }

    pub fn cluster_by_name(&self, name: &str) -> Option<ClusterId> {
        self.clusters
            .iter()
            .position(|c| c.name == name)
            .map(ClusterId)
    }

    pub fn listener(&self, name: &str) -> Option<&Listener> {
        self.listeners.iter().find(|l| l.name == name)
    }

    /// Every certificate, key, CA and trust-bundle file this configuration read (resolved
    /// paths, each once, in file order): what a rotation watcher stats.
    pub fn tls_files(&self) -> Vec<std::path::PathBuf> {
        let mut files: Vec<std::path::PathBuf> = Vec::new();
        let mut add = |p: &Option<std::path::PathBuf>| {
            if let Some(p) = p {
                if !files.contains(p) {
                    files.push(p.clone());
                }
            }
        };
        if let Some(m) = &self.mesh {
            add(&m.identity.cert_path);
            add(&m.identity.key_path);
            add(&m.trust_bundle_path);
        }
        for l in &self.listeners {
            for c in l.tls.iter().flat_map(|t| &t.certificates) {
                add(&c.cert_path);
                add(&c.key_path);
            }
            if let Some(t) = &l.tls {
                add(&t.ca_path);
            }
        }
        for c in &self.clusters {
            if let Some(t) = &c.tls {
                add(&t.ca_path);
                if let Some(k) = &t.client {
                    add(&k.cert_path);
                    add(&k.key_path);
                }
            }
        }
        files
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Sidecar,
    Gateway,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverChoice {
    Auto,
    IoUring,
    Epoll,
}

#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProxySettings {
    pub role: Role,
    /// Resolved worker count (>= 1): the file's value, or 1 for a sidecar and the number of
    /// cores for a gateway.
    pub workers: usize,
    pub driver: DriverChoice,
    pub drain_timeout: Duration,
    /// This proxy's zone (`proxy.zone`), if set.
    pub zone: Option<String>,
    /// `proxy.memory_limit_mib`, in bytes.
    pub memory_limit: Option<u64>,
    /// The ctld socket to take configuration from, if any.
    pub ctld: Option<std::path::PathBuf>,
    /// The node id to present to ctld, if set in the file.
    pub node_id: Option<String>,
    /// This node's labels (`proxy.labels`), checked.
    pub labels: crate::labels::Labels,
    /// This proxy's control socket, if set in the file (else a default path).
    pub control_socket: Option<std::path::PathBuf>,
    /// The admin endpoint's address, if any.
    pub admin: Option<SocketAddr>,
    /// `admin_full_access`: every admin path is served on a non-loopback `admin` too.
    pub admin_full_access: bool,
    /// Fraction of new traces sampled (0.0 to 1.0).
    pub trace_sample_rate: f64,
    /// OTLP/HTTP collector to export spans to, if any.
    pub otlp_endpoint: Option<SocketAddr>,
}

#[derive(Debug)]
#[non_exhaustive]
pub struct Listener {
    pub name: String,
    pub bind: SocketAddr,
    pub kind: ListenerKind,
    /// Accepted connections per worker; at the limit a worker stops accepting until one closes.
    pub max_connections: usize,
    /// A connection with no request in flight (HTTP) or no bytes either way (TCP) for this
    /// long is closed.
    pub idle_timeout: Duration,
    /// TLS termination with the listener's own certificates. Never set together with `mtls`.
    pub tls: Option<ListenerTls>,
    /// Mesh mTLS with [`Config::mesh`] (validation guarantees it is present).
    pub mtls: Option<MtlsMode>,
    /// Connections arrive through an iptables `REDIRECT`: their original destination is
    /// read at accept (`transparent`). A child listener's is its parent's.
    pub transparent: bool,
    /// A child listener (`parent`): it binds nothing and serves the connections its parent
    /// hands it by their destination and what they open with; its `bind` is the parent's.
    pub parent: Option<String>,
    /// A parent listener's children, by the connections they take.
    pub children: crate::Children,
    /// How a parent reads a connection's first bytes when its children need them.
    pub inspect: Inspect,
    /// A parent's `unmatched = "close"`: a connection no child takes is closed, not served.
    pub close_unmatched: bool,
}

/// `inspect_timeout_ms`, `inspect_on_timeout`: how long a parent listener waits for a
/// connection's first bytes, and what a connection that sent too little by then gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inspect {
    pub timeout: Duration,
    /// `true`: closed; `false`: chosen by what is known (plaintext without a protocol, or TLS
    /// without a ClientHello's names).
    pub close_on_timeout: bool,
}

// A configuration holds a handful of listeners, built once per reload and read by
// reference: boxing the http variant would save nothing that matters and change the type
// every crate matches on.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum ListenerKind {
    Http(HttpListener),
    Tcp { cluster: ClusterId },
}

#[derive(Debug)]
#[non_exhaustive]
pub struct HttpListener {
    /// In file order; first match wins.
    pub routes: Vec<Route>,
    pub limits: HttpLimits,
    pub access_log: Option<AccessLog>,
    /// `[[authz]]` rules of this listener and its default.
    pub authz: Authz,
    pub http2: Http2Settings,
    /// Header edits applied to every request and response of the listener, before the
    /// route's.
    pub headers: crate::HeaderEdits,
    /// The listener's token bucket (`rate_limit`), if any.
    pub rate_limit: Option<RateLimit>,
    /// Gateway: the listener's `ip_allow` / `ip_deny`, checked before routing.
    pub ip: Option<crate::edge::IpFilter>,
    /// What becomes of a request's `X-Forwarded-Client-Cert` (`forward_client_cert`).
    pub forward_client_cert: ForwardClientCert,
    /// What ringside's own element says (`client_cert_details`).
    pub cert_details: CertDetails,
}

/// `listeners[].forward_client_cert`: Envoy's `forward_client_cert_details`. "Verified" is
/// a connection whose client certificate ringside verified (mesh mTLS): its identity is
/// what ringside vouches for, as `URI=<identity>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForwardClientCert {
    /// The client's removed; none set.
    Sanitize,
    /// The client's removed; ringside's set for a verified client.
    #[default]
    SanitizeSet,
    /// A verified client's kept and ringside's appended; others' removed.
    AppendForward,
    /// A verified client's forwarded as sent; others' removed.
    ForwardOnly,
    /// Forwarded as sent from any client.
    AlwaysForwardOnly,
}

/// `listeners[].client_cert_details`: what ringside's X-Forwarded-Client-Cert element says
/// of a verified client (Envoy's `set_current_client_cert_details`, plus `By` and `Hash`).
/// Written in Envoy's order: By, Hash, Cert, Chain, Subject, URI, DNS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertDetails {
    pub by: bool,
    pub hash: bool,
    pub cert: bool,
    pub chain: bool,
    pub subject: bool,
    pub uri: bool,
    pub dns: bool,
}

impl Default for CertDetails {
    /// `URI=` alone.
    fn default() -> Self {
        CertDetails {
            by: false,
            hash: false,
            cert: false,
            chain: false,
            subject: false,
            uri: true,
            dns: false,
        }
    }
}

/// HTTP/2 settings of a listener. Header list size is [`HttpLimits::max_header_bytes`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Http2Settings {
    /// SETTINGS_MAX_CONCURRENT_STREAMS, >= 1.
    pub max_concurrent_streams: u32,
    /// SETTINGS_INITIAL_WINDOW_SIZE, 1 to 2^31-1.
    pub initial_stream_window: u32,
    /// Connection-level window, 65535 to 2^31-1.
    pub initial_connection_window: u32,
    /// SETTINGS_MAX_FRAME_SIZE, 16384 to 16777215.
    pub max_frame_size: u32,
    /// Stream resets per second a client may cause before the connection is closed, >= 1.
    pub max_resets_per_second: u32,
    /// PING interval on idle connections; `None`: no PINGs.
    pub keepalive_interval: Option<Duration>,
    /// How long a PING waits for its PONG before the connection is closed; `None`: the
    /// interval. Only with `keepalive_interval`.
    pub keepalive_timeout: Option<Duration>,
}

impl Default for Http2Settings {
    fn default() -> Self {
        Http2Settings {
            max_concurrent_streams: 100,
            initial_stream_window: 1 << 20,
            initial_connection_window: 4 << 20,
            max_frame_size: 16_384,
            max_resets_per_second: 200,
            keepalive_interval: None,
            keepalive_timeout: None,
        }
    }
}

/// What an authorization rule (or a listener's default) does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthzAction {
    Allow,
    /// Answered 403.
    Deny,
}

/// One `[[authz]]` rule: every non-empty condition must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthzRule {
    pub action: AuthzAction,
    /// Exact identities, or prefixes when ending in `*` (kept with the `*`).
    pub principals: Vec<String>,
    /// Path prefixes, each starting with `/`.
    pub paths: Vec<String>,
    /// Method tokens, compared exactly.
    pub methods: Vec<String>,
    /// Lower-case header names with the exact value their first field must carry.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Gateway role: the request's consumer is one of these (empty: any request).
    pub consumers: Vec<crate::ConsumerId>,
}

/// A listener's authorization: rules in file order, first match wins, else `default`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Authz {
    pub rules: Vec<AuthzRule>,
    pub default: AuthzAction,
}

impl Default for Authz {
    fn default() -> Self {
        Authz {
            rules: Vec::new(),
            default: AuthzAction::Allow,
        }
    }
}

impl Authz {
    /// The action for a request. `principal` is the peer's verified identity (`None`
    /// without one: such a request never matches a rule with principals); `path` excludes
    /// the query string; `header` looks a header up by lower-case name.
    ///
    /// `consumer` is the request's consumer (gateway role), known once the route's `authn`
    /// ran: a listener whose rules name consumers ([`Authz::names_consumers`]) is decided
    /// then.
    pub fn decide<'h>(
        &self,
        consumer: Option<crate::ConsumerId>,
        principal: Option<&str>,
        method: &str,
        path: &str,
        header: impl Fn(&str) -> Option<&'h [u8]>,
    ) -> AuthzAction {
        self.rules
            .iter()
            .find(|r| {
                (r.consumers.is_empty() || consumer.is_some_and(|c| r.consumers.contains(&c)))
                    && crate::authz::rule_matches(r, principal, method, path, &header)
            })
            .map_or(self.default, |r| r.action)
    }

    /// Whether a rule needs the request's consumer (then the gateway decides after the
    /// route's `authn`).
    pub fn names_consumers(&self) -> bool {
        self.rules.iter().any(|r| !r.consumers.is_empty())
    }
}

/// Where and how a listener logs its requests.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccessLog {
    /// A file, or `-` for standard output.
    pub path: std::path::PathBuf,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Combined,
}

/// Limits on what a client may send; each breach has its own status code.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpLimits {
    /// Whole request head (request line + headers) in bytes; 431 beyond (414 when it is the
    /// request line alone that is too long).
    pub max_header_bytes: usize,
    /// Number of header fields; 431 beyond.
    pub max_headers: usize,
    /// Request target length in bytes; 414 beyond.
    pub max_uri_bytes: usize,
    /// Time allowed from the first byte of a request (or connection start) to the end of its
    /// head; 408 and close beyond (slowloris).
    pub request_head_timeout: Duration,
    /// Request body size; 413 beyond. `None`: unlimited (bodies stream).
    pub max_request_body_bytes: Option<u64>,
    /// `normalize_path`, `merge_slashes`, `escaped_slashes`: what the parsers do to a
    /// request's path before anything reads it.
    pub path: ringside_codec::PathRules,
}

impl HttpLimits {
    /// What both protocols parse a request head with.
    pub fn codec(&self) -> ringside_codec::Limits {
        ringside_codec::Limits {
            max_header_bytes: self.max_header_bytes,
            max_headers: self.max_headers,
            max_uri_bytes: self.max_uri_bytes,
            path: self.path,
        }
    }
}

#[derive(Debug)]
#[non_exhaustive]
pub struct Route {
    pub name: String,
    pub matcher: RouteMatch,
    pub action: RouteAction,
    /// Whole-request deadline; 504 when exceeded before the response head.
    pub timeout: Option<Duration>,
    /// Header edits applied after the listener's (`request_headers_to_add`, ...).
    pub headers: crate::HeaderEdits,
    /// `[routes.retry]`: when and how requests are tried again.
    pub retry: Option<crate::RetryPolicy>,
    /// Shadow traffic to another cluster.
    pub mirror: Option<Mirror>,
    /// Fault injection (`fault`); never on a direct response route.
    pub fault: Option<Fault>,
    /// The route's token bucket (`rate_limit`), if any.
    pub rate_limit: Option<RateLimit>,
    /// What `rate_limit` keeps a bucket for (`rate_limit.key`; gateway role); also what
    /// `global_rate_limit` counts by.
    pub rate_limit_key: crate::RateLimitKey,
    /// The route's global limit (`rate_limit` with `redis`; gateway role), if any. A route
    /// has this or `rate_limit`, never both.
    pub global_rate_limit: Option<GlobalRateLimit>,
    /// Who may use the route (`authn`; gateway role).
    pub authn: Option<crate::Authn>,
    /// The gateway's request shaping (CORS, rewrite, address filter, body limit); empty on
    /// a sidecar.
    pub edge: crate::edge::Edge,
}

/// A route's fault injection. Percentages are from 0.0 to 100.0.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Fault {
    pub delay: Option<FaultDelay>,
    pub abort: Option<FaultAbort>,
    /// Requests may ask for the configured kinds of fault with `x-ringside-fault-*` headers.
    pub header_control: bool,
}

#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FaultDelay {
    /// `None` only with `header_control` (the delay then comes from the request).
    pub fixed: Option<Duration>,
    pub percent: f64,
}

#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FaultAbort {
    /// 200..=599.
    pub status: Option<u16>,
    /// 0..=16.
    pub grpc_status: Option<u8>,
    pub percent: f64,
}

impl Fault {
    /// Built by `validate()`; also for the tests of the crates that inject faults.
    pub fn new(
        delay: Option<FaultDelay>,
        abort: Option<FaultAbort>,
        header_control: bool,
    ) -> Fault {
        Fault {
            delay,
            abort,
            header_control,
        }
    }
}

impl FaultDelay {
    pub fn new(fixed: Option<Duration>, percent: f64) -> FaultDelay {
        FaultDelay { fixed, percent }
    }
}

impl FaultAbort {
    pub fn new(status: Option<u16>, grpc_status: Option<u8>, percent: f64) -> FaultAbort {
        FaultAbort {
            status,
            grpc_status,
            percent,
        }
    }
}

/// A token bucket: `burst` tokens at most, `requests_per_second` added per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimit {
    /// 1..=1_000_000_000.
    pub requests_per_second: u32,
    /// 1..=u32::MAX.
    pub burst: u32,
}

impl RateLimit {
    pub fn new(requests_per_second: u32, burst: u32) -> RateLimit {
        RateLimit {
            requests_per_second,
            burst,
        }
    }
}

/// A `[[redis]]`: a Redis server that keeps global rate limits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct RedisServer {
    pub name: String,
    pub address: std::net::SocketAddr,
    /// The longest a connect or a batch of counts may take (1 ms to 10 s).
    pub timeout: Duration,
}

impl RedisServer {
    pub fn new(name: impl Into<String>, address: std::net::SocketAddr, timeout: Duration) -> Self {
        RedisServer {
            name: name.into(),
            address,
            timeout,
        }
    }
}

/// A route's global rate limit: at most `limit` requests per fixed window of
/// `window_secs`, counted in `redis` by every proxy that shares it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct GlobalRateLimit {
    pub redis: RedisServer,
    /// Requests per window, >= 1.
    pub limit: u32,
    /// 1 (`requests_per_second`) or 60 (`requests_per_minute`).
    pub window_secs: u32,
    /// Refuse (503) instead of letting requests through while Redis is unreachable.
    pub fail_closed: bool,
}

impl GlobalRateLimit {
    pub fn new(redis: RedisServer, limit: u32, window_secs: u32, fail_closed: bool) -> Self {
        GlobalRateLimit {
            redis,
            limit,
            window_secs,
            fail_closed,
        }
    }
}

/// A cluster's circuit breaker: limits for the whole process; `None` is not enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CircuitBreaker {
    pub max_connections: Option<u32>,
    pub max_pending_requests: Option<u32>,
    pub max_requests: Option<u32>,
}

impl CircuitBreaker {
    pub fn new(
        max_connections: Option<u32>,
        max_pending_requests: Option<u32>,
        max_requests: Option<u32>,
    ) -> CircuitBreaker {
        CircuitBreaker {
            max_connections,
            max_pending_requests,
            max_requests,
        }
    }
}

/// `routes[].mirror`, validated.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Mirror {
    pub cluster: ClusterId,
    /// 0.0 to 100.0.
    pub percent: f64,
    /// Appended to the copy's host, before its port.
    pub host_suffix: Option<String>,
    /// Copies in flight per worker.
    pub max_in_flight: usize,
}

#[derive(Debug)]
#[non_exhaustive]
pub struct RouteMatch {
    /// Lower-case host without port; a leading `*.` matches any subdomain.
    pub host: Option<String>,
    pub path: PathMatch,
    /// Method token exactly as written in the file (methods are case-sensitive), compared
    /// exactly.
    pub method: Option<String>,
    /// Lower-case header names with the exact value they must carry.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The client's verified identity must be one of these (exact, or a prefix ending in
    /// `*`); empty: any client, with or without an identity.
    pub principals: Vec<String>,
    /// Gateway role: the request's consumer, as the route's own `authn` identifies it, must
    /// be one of these; empty: any request. Not checked by [`RouteMatch::matches`]: the
    /// pipeline checks it after the other conditions hold (it needs the route's credentials
    /// checked, which is the engine's work).
    pub consumers: Vec<crate::ConsumerId>,
    /// `match.connect`: the route takes `CONNECT` tunnels, and only those (a route without
    /// it never takes one).
    pub connect: bool,
    /// `match.ports`: a CONNECT's authority port must be one of these; empty: any port.
    pub ports: Vec<u16>,
}

#[derive(Debug)]
pub enum PathMatch {
    Any,
    Prefix(String),
    Exact(String),
    /// Compiled anchored (`^(?:…)$`): the whole path must match.
    Regex(regex::Regex),
}

/// What a request looks like to the route table: the path excludes the query string.
pub struct RequestView<'a, H>
where
    H: Fn(&str) -> Option<&'a [u8]>,
{
    pub method: &'a str,
    /// Lower-case, port stripped; `None` when the request has no authority.
    pub host: Option<&'a str>,
    pub path: &'a str,
    /// Looks a header up by lower-case name.
    pub header: H,
    /// The client's verified identity (mesh mTLS), if any.
    pub principal: Option<&'a str>,
    /// A `CONNECT` tunnel request (not an RFC 8441 extended CONNECT).
    pub connect: bool,
    /// A CONNECT's authority port (`None` for any other request).
    pub port: Option<u16>,
}

impl RouteMatch {
    pub fn matches<'a, H>(&self, req: &RequestView<'a, H>) -> bool
    where
        H: Fn(&str) -> Option<&'a [u8]>,
    {
        crate::matching::matches(self, req)
    }
}

#[derive(Debug)]
pub enum RouteAction {
    Cluster(ClusterId),
    /// Weights are >= 0 and their sum is > 0; `total` is that sum.
    Weighted {
        targets: Vec<(ClusterId, u32)>,
        total: u64,
    },
    Direct(DirectResponse),
    /// Gateway role only: answered with a redirect built from the request.
    Redirect(crate::edge::Redirect),
    /// A CONNECT route's `tunnel_to = "authority"`: a tunnel to the address the request
    /// names (its host is an IP address: the route's `match.host` is one).
    Authority,
}

#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DirectResponse {
    pub status: u16,
    pub body: Bytes,
    pub content_type: String,
}

impl DirectResponse {
    /// Built by `validate()`; also for the tests of the crates that answer with one.
    pub fn new(status: u16, body: Bytes, content_type: String) -> DirectResponse {
        DirectResponse {
            status,
            body,
            content_type,
        }
    }
}

#[derive(Debug)]
#[non_exhaustive]
pub struct Cluster {
    pub name: String,
    pub lb: Lb,
    /// The `IP:port` endpoints as written, then the addresses `names` resolved to (the last
    /// `resolved` of them; see [`Cluster::set_resolved`]).
    pub endpoints: Vec<Endpoint>,
    /// The `host:port` endpoints, resolved by the engine's resolver thread.
    pub names: Vec<crate::dns::NamedEndpoint>,
    /// How `names` become endpoints.
    pub dns: crate::dns::DnsMode,
    /// How many of `endpoints`, at its end, came from `names`.
    pub resolved: usize,
    pub connect_timeout: Duration,
    /// Required for `Lb::RingHash`, absent otherwise.
    pub hash_key: Option<HashKey>,
    /// Idle pooled connections kept per endpoint per worker.
    pub max_idle_per_endpoint: usize,
    /// A pooled connection idle this long is closed.
    pub idle_timeout: Duration,
    /// Deprecated (`outlier_detection` replaces it): without `outlier_detection`, how long
    /// an endpoint is ejected after a failed connect; `outlier` is made from it.
    pub fail_timeout: Duration,
    /// Passive health: when endpoints are ejected. Always present: a cluster without
    /// `outlier_detection` gets [`OutlierDetection::from_fail_timeout`].
    pub outlier: OutlierDetection,
    /// Active health checks, if configured.
    pub health_check: Option<HealthCheck>,
    /// HTTP version spoken to the endpoints.
    pub protocol: UpstreamProtocol,
    /// TLS towards the endpoints. Never set together with `mtls`.
    pub tls: Option<UpstreamTls>,
    /// Mesh mTLS towards the endpoints with [`Config::mesh`] (validation guarantees it is
    /// present).
    pub mtls: Option<UpstreamMtls>,
    /// Process-wide limits (`circuit_breaker`), if any.
    pub circuit_breaker: Option<CircuitBreaker>,
    /// The zones its endpoints name, each once, in order of first appearance.
    pub zones: Vec<String>,
    /// `zone_aware`, if set.
    pub zone_aware: Option<ZoneAware>,
    /// `zone_weights`: indexed by [`ZoneId`], each zone's weight (0: not listed, no
    /// requests).
    pub zone_weights: Option<Vec<u32>>,
    /// Hash of everything above: equal fingerprints mean per-worker state (balancer, pools)
    /// can be carried over a reload.
    pub fingerprint: u64,
    /// Caps the retries routes make to this cluster, for the whole process (not in the
    /// fingerprint: the budget's state is keyed by its own settings).
    pub retry_budget: crate::RetryBudget,
    /// `kind = "original_dst"`: no endpoints; each connection goes to its client
    /// connection's original destination (a `transparent` listener's).
    pub original_dst: bool,
    /// `panic_threshold_percent` (0 to 100): panic mode while the weight in rotation is
    /// below it; `Some(0)` never. `None`: panic mode only when nothing is in rotation. Read
    /// per request (not in the fingerprint).
    pub panic_threshold_percent: Option<u8>,
    /// `hash_cookie`: the cookie a client without one is given (ring hash by that cookie
    /// only). Read per request (not in the fingerprint).
    pub hash_cookie: Option<HashCookie>,
    /// `overprovisioning_percent` (100 to 1000): how a priority level's share of endpoints
    /// in rotation becomes its health. Only endpoints of more than one priority read it.
    pub overprovisioning_percent: u16,
}

impl Cluster {
    /// Whether its endpoints (or the addresses its names resolve to) are of more than one
    /// priority level.
    pub fn has_priorities(&self) -> bool {
        let mut levels = self
            .endpoints
            .iter()
            .chain(self.names.iter().map(|n| &n.endpoint))
            .map(|e| e.priority);
        let first = levels.next();
        levels.any(|p| Some(p) != first)
    }
}

/// `clusters[].hash_cookie`: the cookie a ring-hash cluster gives a client that sends none
/// (the cluster's `hash_key` names it).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HashCookie {
    pub name: String,
    /// `Max-Age`; `None`: a session cookie.
    pub ttl_s: Option<u64>,
    pub path: Option<String>,
}

impl HashCookie {
    /// The `Set-Cookie` field value that gives a client the cookie `value` (hex digits).
    pub fn set_cookie(&self, value: u64) -> String {
        let mut out = format!("{}={value:016x}", self.name);
        if let Some(ttl) = self.ttl_s {
            out.push_str(&format!("; Max-Age={ttl}"));
        }
        if let Some(path) = &self.path {
            out.push_str(&format!("; Path={path}"));
        }
        out.push_str("; HttpOnly");
        out
    }
}

/// `clusters[].outlier_detection`: consecutive failures that eject an endpoint, and for how
/// long. A count of `None` is a trigger that is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutlierDetection {
    /// 5xx responses and local failures (a failed connect, a reset or timeout before any
    /// response) in a row.
    pub consecutive_5xx: Option<u32>,
    /// 502, 503 and 504 responses and local failures in a row.
    pub consecutive_gateway_failure: Option<u32>,
    /// Failed connects only: the trigger of a cluster without `outlier_detection`.
    pub consecutive_connect_failure: Option<u32>,
    /// Each interval an endpoint stays in rotation takes one off its ejection multiplier.
    pub interval: Duration,
    pub base_ejection: Duration,
    /// >= `base_ejection`.
    pub max_ejection: Duration,
    /// 0 to 100; one endpoint may always be ejected.
    pub max_ejection_percent: u8,
}

impl OutlierDetection {
    /// What a cluster without `outlier_detection` gets: one failed connect ejects an endpoint
    /// for `fail_timeout` every time (the passive health ringside had before), and any share
    /// of the cluster may be ejected.
    pub fn from_fail_timeout(fail_timeout: Duration) -> OutlierDetection {
        OutlierDetection {
            consecutive_5xx: None,
            consecutive_gateway_failure: None,
            consecutive_connect_failure: Some(1),
            interval: fail_timeout,
            base_ejection: fail_timeout,
            max_ejection: fail_timeout,
            max_ejection_percent: 100,
        }
    }
}

/// `clusters[].health_check`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HealthCheck {
    pub kind: HealthCheckKind,
    pub interval: Duration,
    /// < `interval`.
    pub timeout: Duration,
    /// >= 1.
    pub unhealthy_threshold: u32,
    /// >= 1.
    pub healthy_threshold: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthCheckKind {
    /// `GET path` over HTTP/1.1 (TLS for a TLS cluster); a status in `expected` passes.
    Http { path: String, expected: Vec<u16> },
    /// A TCP connect passes.
    Tcp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Endpoint {
    pub address: SocketAddr,
    /// >= 1.
    pub weight: u32,
    /// The endpoint's zone: an index into its cluster's `zones`.
    pub zone: Option<ZoneId>,
    /// Its priority level: 0 is the first choice (`endpoints[].priority`).
    pub priority: u8,
    /// Out of rotation by configuration (`endpoints[].down`).
    pub down: bool,
}

/// An index into [`Cluster::zones`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ZoneId(pub u16);

/// `clusters[].zone_aware`: requests stay in the proxy's zone while enough of it is healthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ZoneAware {
    /// The proxy's own zone (`[proxy] zone`) in the cluster's `zones`; `None` when no
    /// endpoint of the cluster is in it (then every request goes to the other zones).
    pub local: Option<ZoneId>,
    /// 0 to 100.
    pub min_healthy_percent: u8,
}

/// `clusters[].protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpstreamProtocol {
    #[default]
    Http1,
    Http2,
    /// With TLS, what ALPN picks (`h2` preferred); without, the downstream request's version.
    Auto,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lb {
    RoundRobin,
    LeastRequest,
    Random,
    RingHash,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    /// Lower-case header name.
    Header(String),
    Cookie(String),
    SourceIp,
}
