//! `[[clusters]]`: upstream endpoints and how they are reached (balancing, TLS, health
//! checks, outlier detection, circuit breaker, retry budget), and `[dns]`, which resolves
//! their host names.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// `[[clusters]]`: a named set of upstream endpoints and how to balance between them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileCluster {
    /// Required. Unique among clusters; routes and tcp listeners name clusters with it. 1 to
    /// 128 characters among `A-Z a-z 0-9 - _ .`.
    pub name: String,
    /// Load-balancing policy: `"round_robin"` (weighted), `"least_request"`, `"random"`
    /// (weighted) or `"ring_hash"` (consistent hashing on `hash_key`). Default
    /// `"round_robin"`.
    pub lb: Option<FileLb>,
    /// The upstream addresses: each `"IP:port"` or `"host:port"` (weight 1), or
    /// `{ address = "IP:port", weight = N }`. A host name is resolved off the workers, by
    /// the process's resolver thread (see `dns` and [`FileDns`]). No port 0, no duplicates.
    /// Default: none; a cluster without endpoints is valid and requests routed to it are
    /// answered 503.
    pub endpoints: Option<Vec<FileEndpoint>>,
    /// How a `"host:port"` endpoint becomes endpoints: `"strict"`, every A and AAAA record
    /// of the answer is an endpoint with the configured endpoint's weight and zone (Envoy's
    /// STRICT_DNS); `"logical"`, one endpoint per name, the first address of the answer, kept
    /// while later answers still hold it (Envoy's LOGICAL_DNS). Default `"strict"`.
    pub dns: Option<FileDnsMode>,
    /// Milliseconds allowed to establish an upstream connection. Default 1000.
    pub connect_timeout_ms: Option<u64>,
    /// What `ring_hash` hashes: `"header:NAME"` (the request header's first value),
    /// `"cookie:NAME"` (the cookie's value) or `"source_ip"` (the client's IP). Required when
    /// `lb = "ring_hash"`, an error otherwise.
    pub hash_key: Option<String>,
    /// With `hash_key = "cookie:NAME"`: a client that sends no such cookie is given one in
    /// the response (`Set-Cookie: NAME=VALUE; Max-Age=TTL; Path=PATH; HttpOnly`, the value
    /// made from the client's address and port), and its request is hashed by that value,
    /// so it sticks to one endpoint from its first request on (Envoy's cookie hash policy
    /// with a `ttl`, HAProxy's `cookie … insert`): `{ ttl_s = 3600, path = "/" }`; see
    /// [`FileHashCookie`]. Default: none (a request without the cookie goes to a random
    /// endpoint).
    pub hash_cookie: Option<FileHashCookie>,
    /// Idle upstream connections kept per endpoint by each worker, for reuse. 0 disables
    /// pooling. Default 64.
    pub max_idle_per_endpoint: Option<u64>,
    /// Milliseconds a pooled (idle) upstream connection is kept before it is closed.
    /// Default 60000.
    pub idle_timeout_ms: Option<u64>,
    /// Deprecated: `outlier_detection` replaces it. Without `outlier_detection`, the
    /// milliseconds an endpoint is ejected after a failed connect (like nginx's
    /// `fail_timeout`). An error together with `outlier_detection`. Default 10000.
    pub fail_timeout_ms: Option<u64>,
    /// Passive health (Envoy's outlier detection): endpoints that fail in a row are ejected
    /// from the balancer for a while, for the whole process. Without it, a cluster ejects an
    /// endpoint after one failed connect, for `fail_timeout_ms` (what ringside did before
    /// outlier detection). See
    /// [`FileOutlierDetection`].
    pub outlier_detection: Option<FileOutlierDetection>,
    /// Active health checks: one prober per process checks every endpoint; an endpoint that
    /// fails `unhealthy_threshold` checks in a row is out of rotation until it passes
    /// `healthy_threshold` in a row. Default: none. See [`FileHealthCheck`].
    pub health_check: Option<FileHealthCheck>,
    /// HTTP version spoken to the endpoints: `"http1"`, `"http2"` or `"auto"` (with TLS,
    /// what ALPN picks, preferring `h2`; without TLS, the downstream request's own version).
    /// Default `"http1"`.
    pub protocol: Option<FileUpstreamProtocol>,
    /// TLS towards the endpoints: `{ ca = "ca.pem", sni = "orders.internal" }`, optionally
    /// with a client certificate (`cert` and `key`). An error together with `mtls`. Default:
    /// none (plaintext).
    pub tls: Option<FileClusterTls>,
    /// Mesh mTLS towards the endpoints: `{ peer = "spiffe://..." }`. Presents the
    /// `[mesh].identity` (which it requires) and accepts only an endpoint whose certificate
    /// chains to the mesh trust bundle and carries the URI SAN `peer`. Default: none.
    pub mtls: Option<FileClusterMtls>,
    /// Caps the retries that routes make to this cluster, for the whole process:
    /// `{ ratio = 0.2, min_per_second = 10 }`; see [`FileRetryBudget`]. Default: that budget,
    /// for every route with a `retry` policy. A retry over the budget is not made (the last
    /// response goes to the client) and is counted.
    pub retry_budget: Option<FileRetryBudget>,
    /// Limits for the whole process (all workers together), past which a request is answered
    /// at once with 503 and `x-ringside-overloaded: true` (gRPC: UNAVAILABLE):
    /// `{ max_connections = 1024, max_pending_requests = 1024, max_requests = 1024 }`; see
    /// [`FileCircuitBreaker`]. Default: none (no limits, no cost).
    pub circuit_breaker: Option<FileCircuitBreaker>,
    /// `true`: keep requests on the endpoints in this proxy's own zone (`[proxy] zone`, which
    /// it requires) while at least `zone_min_healthy_percent` of their weight is in rotation;
    /// below that, the local zone takes the share it can (its healthy percent ÷ the minimum)
    /// and the rest spills over to the other zones in proportion to their weights, as in
    /// Envoy's zone-aware routing. Endpoints without a `zone` count as other zones. An error
    /// with `lb = "ring_hash"` (it would break the ring's consistency). Default `false`.
    pub zone_aware: Option<bool>,
    /// With `zone_aware`: the share of the local zone's endpoint weight, in percent (0 to
    /// 100), that must be in rotation for every request to stay local. Default 70.
    pub zone_min_healthy_percent: Option<u64>,
    /// Each zone's share of the requests, `{ "eu-west-1a" = 80, "eu-west-1b" = 20 }`
    /// (Envoy's locality-weighted balancing): a zone is chosen by its weight times its
    /// health (its share of endpoints in rotation × `overprovisioning_percent`, at most
    /// 100%), then an endpoint within it by `lb`. Endpoints in a zone not listed, or without a
    /// zone, take no requests. With endpoints of more than one `priority`, the level is
    /// chosen first, then a zone of it. 1 to 10000 each. An error with `zone_aware` or `lb =
    /// "ring_hash"`. Default: none.
    pub zone_weights: Option<std::collections::BTreeMap<String, u64>>,
    /// Panic mode's threshold, in percent (0 to 100) of the endpoints' weight in rotation:
    /// below it, a request may go to any endpoint, in rotation or not (Envoy's
    /// `healthy_panic_threshold`). 0: never; a cluster with no endpoint in rotation answers
    /// 503. Default: panic mode only when no endpoint is in rotation.
    pub panic_threshold_percent: Option<u64>,
    /// For endpoints of more than one `priority`: a level takes every request while its
    /// share of endpoints in rotation, times this percentage, is at least 100% (Envoy's
    /// overprovisioning factor: at 140, a level with 72% of its endpoints in rotation keeps
    /// everything, one with half of them keeps 70% and the next levels take the rest). 100
    /// to 1000. Default 140.
    pub overprovisioning_percent: Option<u64>,
    /// Where the endpoints come from: `"static"` (the `endpoints` list) or `"original_dst"`
    /// (each connection goes to the address it was going to before iptables redirected it
    /// to a `transparent` listener; no `endpoints`, `lb`, `health_check` or `zone_aware`, and only
    /// listeners with `transparent = true` may use it). Default `"static"`.
    pub kind: Option<FileClusterKind>,
}

/// `clusters[].hash_cookie`: the cookie ring hash gives a client that has none.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileHashCookie {
    /// Required. The cookie's lifetime in seconds (`Max-Age`), 0 to 315360000; 0 makes a
    /// session cookie (no `Max-Age`: the browser drops it when it closes).
    pub ttl_s: u64,
    /// The cookie's `Path`: `/` and characters a cookie attribute may hold (no `;`, no
    /// control characters), 1 to 1024. Default: none (the browser uses the request's
    /// directory).
    pub path: Option<String>,
}

/// Values of `clusters[].kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileClusterKind {
    Static,
    OriginalDst,
}

/// `clusters[].retry_budget`: `{ ratio = 0.2, min_per_second = 10 }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRetryBudget {
    /// Retries may add at most this share of the requests sent to the cluster (by routes
    /// with a retry policy) over the last 10 seconds, 0.0 to 100.0. Default 0.2.
    pub ratio: Option<f64>,
    /// ... plus this many retries per second whatever the load. Default 10.
    pub min_per_second: Option<u64>,
}

/// `clusters[].circuit_breaker`: each limit at least 1; a limit not given is not enforced
/// (unlike Envoy, whose defaults are 1024 each).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileCircuitBreaker {
    /// Connections open to the cluster's endpoints (pooled idle ones included). A request
    /// that needs a new connection past it is refused; one that can reuse a pooled
    /// connection is not.
    pub max_connections: Option<u64>,
    /// Requests choosing an endpoint and waiting for a connection to it (taking a pooled
    /// one, or connecting).
    pub max_pending_requests: Option<u64>,
    /// Requests in flight to the cluster, from choosing an endpoint to the end of the
    /// response.
    pub max_requests: Option<u64>,
}

/// `[clusters.outlier_detection]`: every key optional. An endpoint that reaches one of the
/// consecutive-failure counts is ejected for `base_ejection_ms` × the times it has been
/// ejected, at most `max_ejection_ms`; the multiplier goes down by one for every
/// `interval_ms` the endpoint spends back in rotation. Connect failures, resets and timeouts
/// before a response count as 5xx and as gateway failures; any other response ends both
/// runs (a 500 ends a run of gateway failures). If every endpoint is ejected or failing its
/// health checks, requests go to all of them (panic mode, counted) rather than failing.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileOutlierDetection {
    /// 5xx responses in a row that eject an endpoint; 0 turns this trigger off. Default 5.
    pub consecutive_5xx: Option<u64>,
    /// Gateway failures in a row (502, 503 and 504 responses) that eject an endpoint; 0
    /// turns this trigger off. Default 5.
    pub consecutive_gateway_failure: Option<u64>,
    /// Milliseconds that take one off an endpoint's ejection multiplier while it stays in
    /// rotation. Default 10000.
    pub interval_ms: Option<u64>,
    /// Milliseconds of the first ejection (and the unit of later ones). Default 30000.
    pub base_ejection_ms: Option<u64>,
    /// Longest ejection, at least `base_ejection_ms`. Default 300000.
    pub max_ejection_ms: Option<u64>,
    /// Most endpoints of the cluster ejected at once, in percent (0 to 100); one endpoint may
    /// always be ejected. Default 10.
    pub max_ejection_percent: Option<u64>,
}

/// `[clusters.health_check]`: exactly one of `http_path` and `tcp = true`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileHealthCheck {
    /// An HTTP/1.1 check: `GET` of this path (starting with `/`), with `Host` the cluster's
    /// `tls.sni` or the endpoint's address and `User-Agent: ringside-health`; over TLS for a
    /// cluster with `tls` or `mtls`. Not with `protocol = "http2"` (use `tcp = true`).
    pub http_path: Option<String>,
    /// `true`: the check is a TCP connect (no TLS handshake, no request).
    pub tcp: Option<bool>,
    /// Milliseconds between two checks of an endpoint. Default 5000.
    pub interval_ms: Option<u64>,
    /// Milliseconds a check may take (connect, request and response head), less than
    /// `interval_ms`. Default 1000.
    pub timeout_ms: Option<u64>,
    /// Failed checks in a row that take a healthy endpoint out of rotation, at least 1.
    /// Default 3.
    pub unhealthy_threshold: Option<u64>,
    /// Passed checks in a row that bring an unhealthy endpoint back, at least 1. Default 2.
    pub healthy_threshold: Option<u64>,
    /// Statuses that pass an HTTP check, each 100 to 599. Default `[ 200 ]`.
    pub expected_statuses: Option<Vec<u16>>,
}

/// Values of `clusters[].protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileUpstreamProtocol {
    Http1,
    Http2,
    Auto,
}

/// `clusters[].tls`: every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileClusterTls {
    /// PEM file with the CA certificates the endpoints' certificates must chain to. At most
    /// one of `ca` and `ca_pem`. Default: the system's trust store.
    pub ca: Option<String>,
    /// The same PEM text inline.
    pub ca_pem: Option<String>,
    /// Server name sent (SNI) and verified, a DNS name or an IP address. Default: for a
    /// cluster whose endpoints all name one host (`"api.example.com:443"`), that host;
    /// otherwise the endpoint's IP address is verified and no SNI is sent.
    pub sni: Option<String>,
    /// PEM file with a client certificate chain to present. `cert`/`cert_pem` and
    /// `key`/`key_pem` go together: both or neither.
    pub cert: Option<String>,
    /// The same PEM text inline.
    pub cert_pem: Option<String>,
    /// PEM file with the client certificate's private key.
    pub key: Option<String>,
    /// The same PEM text inline.
    pub key_pem: Option<String>,
    /// URI SANs (SPIFFE ids, say) of which the endpoints' certificates must carry one, e.g.
    /// `[ "spiffe://cluster.local/ns/shop/sa/orders" ]`: checked in place of the server
    /// name (which is still sent as SNI), the certificate still chaining to `ca` (Envoy's
    /// `match_typed_subject_alt_names` with exact URI matchers). Default: none (the server
    /// name is verified).
    pub identities: Option<Vec<String>>,
}

/// `clusters[].mtls`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileClusterMtls {
    /// Required. The identity (URI SAN) the endpoints' certificates must carry, e.g.
    /// `"spiffe://cluster.local/ns/shop/sa/orders"`.
    pub peer: String,
}

/// Values of `clusters[].lb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileLb {
    RoundRobin,
    LeastRequest,
    Random,
    RingHash,
}

/// One element of `clusters[].endpoints`: a bare address string or a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileEndpoint {
    /// `"IP:port"`, weight 1.
    Address(String),
    /// `{ address = "IP:port", weight = N, zone = "z1" }`.
    Table(FileEndpointTable),
}

impl FileEndpoint {
    /// The address as written.
    pub fn address(&self) -> &str {
        match self {
            FileEndpoint::Address(a) => a,
            FileEndpoint::Table(t) => &t.address,
        }
    }
}

/// Hand-written rather than `#[serde(untagged)]`: untagged enums replace the inner error
/// ("unknown field", "missing field") with "data did not match any variant", which would hide
/// the mistake from the user.
impl<'de> Deserialize<'de> for FileEndpoint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EndpointVisitor;

        impl<'de> Visitor<'de> for EndpointVisitor {
            type Value = FileEndpoint;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    r#"an address "IP:port" or a table { address = "IP:port", weight = N }"#,
                )
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<FileEndpoint, E> {
                Ok(FileEndpoint::Address(v.to_owned()))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<FileEndpoint, A::Error> {
                let table =
                    FileEndpointTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(FileEndpoint::Table(table))
            }
        }

        deserializer.deserialize_any(EndpointVisitor)
    }
}

/// The table form of an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEndpointTable {
    /// Required. `"IP:port"` or `"host:port"`.
    pub address: String,
    /// Relative share of traffic (for `round_robin`, `random` and `ring_hash`), 1 to 10000.
    /// Default 1.
    pub weight: Option<u32>,
    /// The endpoint's zone, for `zone_aware` clusters and the per-zone request counters; 1 to
    /// 128 characters among `A-Z a-z 0-9 - _ .`. Default: none.
    pub zone: Option<String>,
    /// The endpoint's priority level, 0 (the first choice) to 255. Requests go to the
    /// lowest level while enough of it is in rotation, and spill over to the next levels as
    /// its endpoints are ejected or fail their health checks (Envoy's priority levels; see
    /// `overprovisioning_percent`). Default 0.
    pub priority: Option<u32>,
    /// `true`: out of rotation, as if failing its health checks: it takes no request
    /// (except in panic mode) but still counts in its cluster's, level's and zone's size, so
    /// the others spill over as they would for an unhealthy endpoint (Envoy's EDS health
    /// status UNHEALTHY, DRAINING or TIMEOUT; nginx's `down`). Default `false`.
    pub down: Option<bool>,
}

/// Values of `clusters[].dns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileDnsMode {
    Strict,
    Logical,
}

/// `[dns]`: how the resolver thread resolves endpoint host names. Every key optional.
/// Each name is looked up again when its answer's TTL runs out (clamped to
/// `min_ttl_s..=max_ttl_s`); a failed lookup keeps the last good addresses and is counted.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDns {
    /// Name servers, each `"IP:port"` (UDP, then TCP for a truncated answer), e.g.
    /// `[ "127.0.0.1:5353" ]`. Given, they replace `/etc/resolv.conf` and `/etc/hosts`
    /// entirely. Default: the servers and search domains of `/etc/resolv.conf`, with
    /// `/etc/hosts` read first.
    pub servers: Option<Vec<String>>,
    /// Shortest time an answer is kept, in seconds, 1 to 86400. Default 1.
    pub min_ttl_s: Option<u64>,
    /// Longest time an answer is kept, in seconds, `min_ttl_s` to 86400. Default 300.
    pub max_ttl_s: Option<u64>,
}
