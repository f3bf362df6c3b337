//! The process-wide sections: `[proxy]` (role, workers, the sockets to ctld, the control
//! socket and the admin endpoint, tracing) and `[mesh]` (the identity mesh mTLS presents).

use serde::Deserialize;

/// `[proxy]`: process-wide settings. The whole table is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileProxy {
    /// `"sidecar"` or `"gateway"`. Default `"sidecar"`.
    pub role: Option<FileRole>,
    /// Worker threads, one event loop each, 1 to 1024. Default: 1 for a sidecar, the number
    /// of cores available to the process for a gateway.
    pub workers: Option<u64>,
    /// I/O driver: `"auto"` (io_uring when the kernel allows it, else epoll), `"io_uring"` or
    /// `"epoll"`. Default `"auto"`.
    pub driver: Option<FileDriver>,
    /// On graceful shutdown, how long in-flight requests and connections may take to finish
    /// before they are closed, in milliseconds. Default 10000.
    pub drain_timeout_ms: Option<u64>,
    /// Path of the `ringside-ctld` Unix socket to take configuration from. When set, the
    /// proxy connects to the daemon, says hello with its `node_id`, serves what the daemon
    /// pushes, and keeps serving its last good configuration (reconnecting with backoff) when
    /// the daemon is gone. The `--ctld PATH` flag overrides it. Default: none.
    pub ctld: Option<String>,
    /// This proxy's node id towards ctld (names its configuration there: `<node-id>.toml`).
    /// 1 to 128 characters among `A-Z a-z 0-9 - _ .`. The `--node-id` flag overrides it.
    /// Default: the host name.
    pub node_id: Option<String>,
    /// This node's labels, presented to ctld in its hello and shown by `ringsidectl status`,
    /// where selectors (`--selector app=web,zone=a`) pick nodes by them, e.g.
    /// `labels = { app = "web", zone = "a" }`. A key is 1 to 63 characters among
    /// `A-Z a-z 0-9 - _ . /`, a value 0 to 63 among `A-Z a-z 0-9 - _ .`; at most 64 labels.
    /// `--node-label KEY=VALUE` flags are laid over them. Default: none.
    pub labels: Option<std::collections::BTreeMap<String, String>>,
    /// A memory ceiling for the whole process, in MiB (8 to 1048576): as its resident memory
    /// (RSS) passes 90% of it, idle keep-alive connections are closed, oldest first; at it,
    /// new connections are closed as soon as they are accepted. Requests in flight are never
    /// cut. RSS is sampled every 50 ms by a thread of its own. Default: none (no ceiling).
    pub memory_limit_mib: Option<u64>,
    /// This proxy's zone (its locality: an availability zone, a rack, a node), 1 to 128
    /// characters among `A-Z a-z 0-9 - _ .`. Clusters with `zone_aware = true` prefer the
    /// endpoints whose `zone` is this one. Default: none.
    pub zone: Option<String>,
    /// Path of this proxy's own control socket (status, drain, upgrade; mode 0600). Default:
    /// `$XDG_RUNTIME_DIR/ringside/proxy.sock`, else `/run/ringside/proxy.sock`.
    pub control_socket: Option<String>,
    /// Address of the admin HTTP endpoint (`/metrics`, `/ready`, `/live`, `/config`,
    /// `/clusters`, `/log-level`, a status page at `/`), e.g. `"127.0.0.1:9901"`. It is its own
    /// listener, never a data-plane port. On an address that is not loopback it serves only
    /// `/metrics`, `/ready` and `/live` (see `admin_full_access`). It is bound at start and
    /// not changed by reloads. Default: none (no admin endpoint).
    pub admin: Option<String>,
    /// `true`: serve every admin path on an `admin` address that is not loopback. Default
    /// `false`: bound beyond loopback (`0.0.0.0:9901`, a pod IP), the admin endpoint serves
    /// only `/metrics`, `/ready` and `/live` and answers 404 to the rest (`/config`,
    /// `/clusters`, `/stats`, the status page, `/log-level`), which stay on a loopback
    /// `admin` and behind `ringsidectl`. Read on every request, so a reload changes it.
    pub admin_full_access: Option<bool>,
    /// Fraction of new traces (requests arriving without `traceparent` or B3 headers) that
    /// are sampled, from 0.0 to 1.0. A request that carries trace context keeps its sampling
    /// decision. Default 1.0.
    pub trace_sample_rate: Option<f64>,
    /// Where to export spans over OTLP/HTTP (JSON): `"IP:port"` of an OpenTelemetry collector
    /// (the path is `/v1/traces`). Spans are batched and sent from a thread of their own;
    /// when the collector is slow or down they are dropped and counted. Default: none (trace
    /// context is still propagated).
    pub otlp_endpoint: Option<String>,
}

/// Values of `proxy.role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileRole {
    Sidecar,
    Gateway,
}

/// Values of `proxy.driver`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileDriver {
    Auto,
    IoUring,
    Epoll,
}

/// `[mesh]`: this proxy's place in a service mesh.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileMesh {
    /// The workload identity presented by `mtls` listeners and clusters, and the trust
    /// bundle their peers are verified against.
    pub identity: Option<FileMeshIdentity>,
}

/// `mesh.identity`: `{ cert = "id.pem", key = "id-key.pem", trust_bundle = "ca.pem" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileMeshIdentity {
    /// PEM file with the identity certificate (its URI SAN, e.g.
    /// `spiffe://cluster.local/ns/shop/sa/cart`, is this proxy's identity) and any
    /// intermediates. Exactly one of `cert` and `cert_pem`.
    pub cert: Option<String>,
    /// The same PEM text inline.
    pub cert_pem: Option<String>,
    /// PEM file with the identity's private key. Exactly one of `key` and `key_pem`.
    pub key: Option<String>,
    /// The same PEM text inline.
    pub key_pem: Option<String>,
    /// PEM file with the mesh's CA certificates (at least one): peers' certificates must
    /// chain to one of them. Exactly one of `trust_bundle` and `trust_bundle_pem`.
    pub trust_bundle: Option<String>,
    /// The same PEM text inline.
    pub trust_bundle_pem: Option<String>,
}
