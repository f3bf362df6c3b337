//! The validated configuration: what `validate()` produces and every other crate reads.
//!
//! These types are built only by `crate::validate` (they are `#[non_exhaustive]`, so no other
//! crate can construct one with a struct literal) and are immutable once published inside a
//! [`Snapshot`]. Every value is resolved: defaults applied, names turned into indices, regexes
//! compiled. Nothing here can fail at request time.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

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
}

impl Config {
    pub fn cluster(&self, id: ClusterId) -> &Cluster {
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
    /// The ctld socket to take configuration from, if any.
    pub ctld: Option<std::path::PathBuf>,
    /// The node id to present to ctld, if set in the file.
    pub node_id: Option<String>,
    /// This proxy's control socket, if set in the file (else a default path).
    pub control_socket: Option<std::path::PathBuf>,
    /// The admin endpoint's address, if any.
    pub admin: Option<SocketAddr>,
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
}

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
}

#[derive(Debug)]
#[non_exhaustive]
pub struct Route {
    pub name: String,
    pub matcher: RouteMatch,
    pub action: RouteAction,
    /// Whole-request deadline; 504 when exceeded before the response head.
    pub timeout: Option<Duration>,
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
}

#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DirectResponse {
    pub status: u16,
    pub body: Bytes,
    pub content_type: String,
}

#[derive(Debug)]
#[non_exhaustive]
pub struct Cluster {
    pub name: String,
    pub lb: Lb,
    pub endpoints: Vec<Endpoint>,
    pub connect_timeout: Duration,
    /// Required for `Lb::RingHash`, absent otherwise.
    pub hash_key: Option<HashKey>,
    /// Idle pooled connections kept per endpoint per worker.
    pub max_idle_per_endpoint: usize,
    /// A pooled connection idle this long is closed.
    pub idle_timeout: Duration,
    /// After a failed connect an endpoint is skipped by the balancer for this long
    /// (passive health, like nginx's `fail_timeout`).
    pub fail_timeout: Duration,
    /// Hash of everything above: equal fingerprints mean per-worker state (balancer, pools)
    /// can be carried over a reload.
    pub fingerprint: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Endpoint {
    pub address: SocketAddr,
    /// >= 1.
    pub weight: u32,
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
