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

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

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

/// `[[listeners]]`: one socket ringside accepts connections on (in every worker).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileListener {
    /// Required. Unique among listeners; routes name their listener with it. 1 to 128
    /// characters among `A-Z a-z 0-9 - _ .`.
    pub name: String,
    /// Required, except on a listener with a `parent`. `"IP:port"`, e.g. `"127.0.0.1:15006"`,
    /// `"0.0.0.0:80"` or `"[::1]:8080"`; no host names. Port 0 binds an ephemeral port. Two
    /// listeners may not bind the same address (an unspecified IP such as `0.0.0.0` overlaps
    /// every IP of its family on that port).
    pub bind: Option<String>,
    /// A listener with no socket of its own: it serves the connections its parent (a
    /// `transparent` listener with a `bind`) accepts whose original destination its `match`
    /// takes (Envoy's filter chain match, and its `use_original_dst` hand-off to listeners
    /// that do not bind). The most specific child wins: one naming the destination's port
    /// before one naming no port, then the longest address block; a connection no child
    /// takes is served by the parent itself. Such a listener has no `bind`,
    /// `transparent` or `max_connections` (the parent's apply). Default: none.
    pub parent: Option<String>,
    /// With `parent`, required: which connections this listener serves, by original
    /// destination, `{ ports = [ 8080 ], addresses = [ "10.96.0.0/12" ] }`, and by what they
    /// open with (`transport`, `server_names`, `alpn`: the parent reads the first bytes to
    /// know). `ports`: 1 to 65535; `addresses`: address blocks (`"10.0.0.0/8"`, `"fd00::/8"`,
    /// or one address). An omitted key matches any; at least one is given. Two children of one
    /// parent may not take exactly the same connections.
    #[serde(rename = "match")]
    pub destination: Option<FileListenerMatch>,
    /// `"http"` (HTTP/1.1, requests dispatched by `[[routes]]`) or `"tcp"` (bytes forwarded
    /// to `cluster`). Default `"http"`.
    pub protocol: Option<FileProtocol>,
    /// The cluster a `tcp` listener forwards every connection to. Required for `tcp`, an
    /// error on an `http` listener (whose routes name clusters instead).
    pub cluster: Option<String>,
    /// Open connections per worker. Past it, a new connection is accepted and closed at once
    /// (counted in `ringside_downstream_connections_overflow_total`); the open ones go on
    /// being served. At least 1. Default 10000.
    pub max_connections: Option<u64>,
    /// Milliseconds a connection may stay idle (HTTP: no request in flight; TCP: no bytes
    /// either way) before it is closed. Default 60000.
    pub idle_timeout_ms: Option<u64>,
    /// HTTP only. Milliseconds allowed from a request's first byte (or the connection's
    /// start) to the end of its head; answered 408 and closed beyond (slowloris).
    /// Default 10000.
    pub request_head_timeout_ms: Option<u64>,
    /// HTTP only. Maximum size of a request head (request line and headers) in bytes;
    /// answered 431 beyond (414 when the request line alone is too long). At least 1.
    /// Default 65536.
    pub max_header_bytes: Option<u64>,
    /// HTTP only. Maximum number of header fields in a request; answered 431 beyond. At
    /// least 1. Default 100.
    pub max_headers: Option<u64>,
    /// HTTP only. Maximum length of the request target (path and query) in bytes; answered
    /// 414 beyond. At least 1. Default 8192.
    pub max_uri_bytes: Option<u64>,
    /// HTTP only. Maximum request body size in bytes; answered 413 beyond. 0 allows no body.
    /// Default: unlimited (bodies stream through).
    pub max_request_body_bytes: Option<u64>,
    /// HTTP only. `true`: each request's path is normalized as RFC 3986 §6 says before
    /// routing, `[[authz]]` and the upstream see it: percent-encoded unreserved characters
    /// decoded (`%7E` → `~`), other escapes upper-cased, `.` and `..` segments removed
    /// (`/a/../b` → `/b`); a `%` without two hex digits is answered 400. The query is not
    /// touched. Envoy's `normalize_path`. Default `false` (the path goes on as sent).
    pub normalize_path: Option<bool>,
    /// HTTP only. `true`: runs of `/` in the path are merged into one (`//a///b` → `/a/b`),
    /// after `normalize_path`. Envoy's `merge_slashes`. Default `false`.
    pub merge_slashes: Option<bool>,
    /// HTTP only. What an escaped slash (`%2F`, `%5C`) in the path does: `"keep"` (the
    /// default: it is not a separator), `"reject"` (answered 400) or `"unescape"` (decoded to
    /// `/` or `\` before `normalize_path`, so it separates segments). Envoy's
    /// `path_with_escaped_slashes_action`.
    pub escaped_slashes: Option<FileEscapedSlashes>,
    /// HTTP only. What becomes of `X-Forwarded-Client-Cert` (XFCC): `"sanitize_set"` (the
    /// default: a client's is removed; on a connection whose client certificate was
    /// verified, ringside sets its own, `URI=<identity>`), `"sanitize"` (removed, none
    /// set), `"append_forward"` (verified clients: theirs kept and ringside's appended after
    /// a comma; others: removed), `"forward_only"` (verified clients: theirs forwarded as
    /// sent; others: removed) or `"always_forward_only"` (forwarded as sent, from any
    /// client: only for a listener whose clients are trusted proxies). Envoy's
    /// `forward_client_cert_details`.
    pub forward_client_cert: Option<FileForwardClientCert>,
    /// HTTP only. What ringside's own X-Forwarded-Client-Cert element says of a verified
    /// client, in Envoy's order whatever the order here: `"by"` (each URI SAN of the
    /// certificate ringside served), `"hash"` (SHA-256 of the client's certificate, hex),
    /// `"cert"` and `"chain"` (its certificate, and its chain, URL-encoded PEM), `"subject"`
    /// (its subject, RFC 2253), `"uri"` (each URI SAN), `"dns"` (each DNS SAN). Envoy's
    /// `set_current_client_cert_details`, with `by` and `hash`, which Envoy always writes.
    /// Default `["uri"]`.
    pub client_cert_details: Option<Vec<FileCertDetail>>,
    /// HTTP only. One line per request to a file: `{ path = "/var/log/ringside/in.log",
    /// format = "json" }` (`format`: `"json"`, the default, or `"combined"`, Apache/nginx
    /// style; `path = "-"` is standard output). Lines go through a bounded buffer to a writer
    /// thread; when it is full lines are dropped and counted, never the request. SIGUSR1
    /// reopens the files (logrotate). Default: none.
    pub access_log: Option<FileAccessLog>,
    /// TLS termination: `{ certificates = [ { cert = "a.pem", key = "a-key.pem" }, ... ] }`.
    /// The certificate whose DNS names match the client's SNI is served (exact or `*.`
    /// wildcard of one label, case-insensitive); the first one otherwise. On an `http`
    /// listener ALPN offers `h2` and `http/1.1`. TLS 1.2 and 1.3. An error together with
    /// `mtls`. Default: none (plaintext).
    pub tls: Option<FileListenerTls>,
    /// Mesh mutual TLS with the `[mesh].identity` (which it requires): `"strict"` (every
    /// connection is TLS with a client certificate chaining to the mesh trust bundle) or
    /// `"permissive"` (plaintext is accepted too; a client certificate, when presented, is
    /// verified). The verified client's identity (URI SAN) is the principal `[[authz]]`
    /// rules match. Default: none.
    pub mtls: Option<FileMtlsMode>,
    /// HTTP only. What a request no `[[authz]]` rule matches gets: `"allow"` or `"deny"`
    /// (answered 403). Default `"allow"`.
    pub authz_default: Option<FileAuthzAction>,
    /// HTTP only. HTTP/2 settings of this listener (HTTP/2 is served over TLS when ALPN
    /// picks `h2`, and in cleartext when a connection opens with the HTTP/2 preface).
    pub http2: Option<FileHttp2>,
    /// HTTP only. Headers added to every request of this listener before it is sent
    /// upstream: `[ { name = "x-env", value = "prod", action = "overwrite" } ]`; see
    /// [`FileHeaderAdd`]. The listener's edits apply first, then the route's.
    pub request_headers_to_add: Option<Vec<FileHeaderAdd>>,
    /// HTTP only. Names of headers removed from every request of this listener before it is
    /// sent upstream (case-insensitive, each at most once): `[ "x-debug" ]`.
    pub request_headers_to_remove: Option<Vec<String>>,
    /// HTTP only. Headers added to every response of this listener before it is sent to the
    /// client, like `request_headers_to_add`.
    pub response_headers_to_add: Option<Vec<FileHeaderAdd>>,
    /// HTTP only. Names of headers removed from every response of this listener before it
    /// is sent to the client (case-insensitive, each at most once): `[ "x-powered-by" ]`.
    pub response_headers_to_remove: Option<Vec<String>>,
    /// HTTP only. A token bucket shared by every request of this listener, for the whole
    /// process (all workers): `{ requests_per_second = 500, burst = 1000 }`; see
    /// [`FileRateLimit`]. Checked after `[[authz]]` (a denied request takes no token).
    /// Default: none (no limit, no cost).
    pub rate_limit: Option<FileRateLimit>,
    /// HTTP, gateway role only. Client address blocks let in on this listener, checked
    /// before routing and `[[authz]]`, like `routes[].ip_allow`. Default: all.
    pub ip_allow: Option<Vec<String>>,
    /// HTTP, gateway role only. Client address blocks refused on this listener (403),
    /// checked before `ip_allow`. Default: none.
    pub ip_deny: Option<Vec<String>>,
    /// `true`: connections reach this listener through an iptables `REDIRECT` (traffic
    /// interception, as with Istio's sidecar; see deploy/interception/). Each accepted
    /// connection's original destination is read (`SO_ORIGINAL_DST`, IPv4 and IPv6; no
    /// capability needed), logged as `original_dst`, and is where a cluster with
    /// `kind = "original_dst"` forwards. Default `false`.
    pub transparent: Option<bool>,
    /// A parent (`transparent`) listener whose children are told apart by what a connection
    /// opens with reads its first bytes for at most this long; 0: as long as the listener's
    /// `idle_timeout_ms`. Envoy's `listener_filters_timeout`. Default 1000.
    pub inspect_timeout_ms: Option<u64>,
    /// What a connection that sent too little by `inspect_timeout_ms` gets: `"continue"`
    /// (chosen by what is known: plaintext, and TLS without a complete ClientHello) or
    /// `"close"`. Envoy's `continue_on_listener_filters_timeout`. Default `"continue"`.
    pub inspect_on_timeout: Option<FileInspectOnTimeout>,
}

/// `listeners[].inspect_on_timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileInspectOnTimeout {
    Continue,
    Close,
}

/// `listeners[].match`: the original destinations a child listener serves.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileListenerMatch {
    /// Destination ports, 1 to 65535. Default: any.
    pub ports: Option<Vec<u64>>,
    /// Destination address blocks. Default: any.
    pub addresses: Option<Vec<String>>,
    /// What the connection opens with: `"tls"` (a TLS ClientHello) or `"plaintext"`
    /// (anything else). Default: either.
    pub transport: Option<FileTransport>,
    /// TLS only: the server names (SNI) of the ClientHello this child takes, exact
    /// (`"api.example.com"`) or a wildcard of any subdomain (`"*.example.com"`); lower case.
    /// Default: any (and connections without SNI).
    pub server_names: Option<Vec<String>>,
    /// Application protocols this child takes: over TLS, one the ClientHello offers (ALPN,
    /// e.g. `"h2"`, `"istio-http/1.1"`); in plaintext, what the first bytes are: `"h2c"` (the
    /// HTTP/2 preface), `"http/1.1"` or `"http/1.0"` (a request line). Default: any.
    pub alpn: Option<Vec<String>>,
}

/// `listeners[].match.transport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileTransport {
    Tls,
    Plaintext,
}

/// `listeners[].tls`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileListenerTls {
    /// Required, at least one. Certificates with their keys; the first is the default.
    pub certificates: Vec<FileCertKey>,
    /// PEM file with the CA certificates clients' certificates must chain to: a client that
    /// presents a certificate is verified against them (nginx's `ssl_client_certificate`,
    /// Envoy's `validation_context.trusted_ca`), and its URI SAN is the principal
    /// `[[authz]]` rules and `match.principals` see. At most one of `ca` and `ca_pem`.
    /// Default: none (no client certificate is asked for).
    pub ca: Option<String>,
    /// The same PEM text inline.
    pub ca_pem: Option<String>,
    /// `true`: a client without a certificate that verifies is refused in the handshake
    /// (nginx's `ssl_verify_client on`; `false`, the default, is its `optional`). Needs
    /// `ca` or `ca_pem`.
    pub require_client_certificate: Option<bool>,
    /// URI SANs of which a client's certificate must carry one, or prefixes ending in `*`
    /// (`"spiffe://cluster.local/*"`: one trust domain), checked after the certificate
    /// verifies against `ca`; a certificate without one is refused in the handshake (Envoy's
    /// `match_typed_subject_alt_names` on a listener). Needs `ca` or `ca_pem`. A client that
    /// presents no certificate is refused only with `require_client_certificate`. Default:
    /// any identity the CA vouches for.
    pub client_identities: Option<Vec<String>>,
}

/// A certificate chain and its private key: `{ cert = "a.pem", key = "a-key.pem" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileCertKey {
    /// PEM file with the certificate, then any intermediates. Exactly one of `cert` and
    /// `cert_pem`.
    pub cert: Option<String>,
    /// The same PEM text inline.
    pub cert_pem: Option<String>,
    /// PEM file with exactly one private key (PKCS#8, PKCS#1 or SEC1; RSA, ECDSA P-256/P-384
    /// or Ed25519) matching the certificate. Exactly one of `key` and `key_pem`.
    pub key: Option<String>,
    /// The same PEM text inline.
    pub key_pem: Option<String>,
}

/// Values of `listeners[].mtls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileMtlsMode {
    Strict,
    Permissive,
}

/// `listeners[].http2`: every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileHttp2 {
    /// Streams a client may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS), 1 to
    /// 2147483647. Default 100.
    pub max_concurrent_streams: Option<u64>,
    /// Flow-control window of each stream in bytes (SETTINGS_INITIAL_WINDOW_SIZE), 1 to
    /// 2147483647. Default 1048576.
    pub initial_stream_window_bytes: Option<u64>,
    /// Flow-control window of the whole connection in bytes, 65535 to 2147483647. Default
    /// 4194304.
    pub initial_connection_window_bytes: Option<u64>,
    /// Largest frame payload accepted (SETTINGS_MAX_FRAME_SIZE), 16384 to 16777215. Default
    /// 16384.
    pub max_frame_bytes: Option<u64>,
    /// Stream resets a client may cause per second before the connection is closed with
    /// ENHANCE_YOUR_CALM (Rapid Reset protection), at least 1. Default 200.
    pub max_resets_per_second: Option<u64>,
    /// Milliseconds between PINGs sent on an idle connection to check the client is alive.
    /// Default: none (no PINGs).
    pub keepalive_interval_ms: Option<u64>,
    /// Milliseconds a keepalive PING waits for its PONG before the connection is closed.
    /// Requires `keepalive_interval_ms`. Default: the interval.
    pub keepalive_timeout_ms: Option<u64>,
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

/// `[[authz]]`: one authorization rule of an `http` listener. A listener's rules are tried
/// in file order; the first that matches a request decides; a request no rule matches gets
/// the listener's `authz_default`. Every condition given must hold; a rule without any
/// matches every request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAuthz {
    /// Required. The `http` listener the rule applies to.
    pub listener: String,
    /// Required. `"allow"` or `"deny"` (answered 403).
    pub action: FileAuthzAction,
    /// The client's verified identity (the URI SAN of its mTLS certificate) is one of these:
    /// exact strings, or a prefix when ending in `*` (`"spiffe://cluster.local/ns/shop/*"`).
    /// A request without a verified identity never matches a rule with `principals`.
    pub principals: Option<Vec<String>>,
    /// The path (without the query string) starts with one of these; each must start with
    /// `/`.
    pub paths: Option<Vec<String>>,
    /// The method is one of these tokens (case-sensitive: `"GET"`).
    pub methods: Option<Vec<String>>,
    /// Header name → value: each header must be present with exactly this first value.
    /// Names are case-insensitive.
    pub headers: Option<BTreeMap<String, String>>,
    /// Gateway role: `[[consumers]]` names; the request's consumer (as the matched route's
    /// `authn` identifies it) is one of these. A request without a consumer never matches
    /// a rule with `consumers`. When any rule of a listener has `consumers`, the listener's
    /// rules are decided after the route's `authn` instead of before routing.
    pub consumers: Option<Vec<String>>,
}

/// Values of `listeners[].forward_client_cert`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileForwardClientCert {
    Sanitize,
    SanitizeSet,
    AppendForward,
    ForwardOnly,
    AlwaysForwardOnly,
}

/// Values of `listeners[].client_cert_details`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileCertDetail {
    By,
    Hash,
    Cert,
    Chain,
    Subject,
    Uri,
    Dns,
}

/// Values of `listeners[].escaped_slashes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileEscapedSlashes {
    Keep,
    Reject,
    Unescape,
}

/// Values of `authz.action` and `listeners[].authz_default`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileAuthzAction {
    Allow,
    Deny,
}

/// `listeners[].access_log`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAccessLog {
    /// Required. File to append to, or `"-"` for standard output.
    pub path: String,
    /// `"json"` (default) or `"combined"`.
    pub format: Option<FileLogFormat>,
}

/// Values of `access_log.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileLogFormat {
    Json,
    Combined,
}

/// Values of `listeners[].protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileProtocol {
    Http,
    Tcp,
}

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

/// `routes[].authn` (gateway role): how a request proves who it is. At least one of
/// `api_key` and `jwt`; with both, either credential admits the request (a JWT is looked
/// for first). A request with neither is answered 401 with one `WWW-Authenticate` field
/// holding both challenges (`Bearer realm="<route>", ApiKey realm="<route>"`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAuthn {
    /// An API key from a header and/or a query parameter; see [`FileApiKeyAuthn`].
    pub api_key: Option<FileApiKeyAuthn>,
    /// Names of `[[jwt_providers]]` whose tokens the route accepts (`[ "corp" ]`), tried in
    /// order. Default: none.
    pub jwt: Option<Vec<String>>,
}

/// `routes[].authn.api_key`: where a request carries its key. A request without a key is
/// answered 401 with `WWW-Authenticate: ApiKey realm="<route>"`, one with an unknown key 401
/// (gRPC: UNAUTHENTICATED); a known key makes the request its consumer's, and the upstream
/// gets `x-consumer-name`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileApiKeyAuthn {
    /// The request header holding the key (case-insensitive). Default `"x-api-key"`.
    pub header: Option<String>,
    /// A query parameter that may hold the key instead (its value is percent-decoded), e.g.
    /// `"apikey"`. The header is looked at first. Default: none (a key in the query string
    /// is not accepted).
    pub query: Option<String>,
    /// `false`: forward the credential (header and query parameter) to the upstream.
    /// Default `true`: it is removed.
    pub hide_credentials: Option<bool>,
}

/// `[[consumers]]` (gateway role): one client of the gateway's routes, known by its API
/// keys. A consumer's name goes upstream in `x-consumer-name` and is the `key = "consumer"`
/// of route rate limits.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConsumer {
    /// Required. Unique among consumers. 1 to 128 characters among `A-Z a-z 0-9 - _ .`.
    pub name: String,
    /// The consumer's API keys, each `{ sha256 = "<64 hex digits>" }` (the SHA-256 of the
    /// key, so that the file holds no secret) or `{ key = "..." }`. A key belongs to one
    /// consumer only. Default: none.
    pub api_keys: Option<Vec<FileApiKey>>,
    /// JWT subjects (`sub` claims) that are this consumer: a request with a verified token
    /// whose `sub` is one of them is this consumer's (`[ "client:mobile" ]`). A subject
    /// belongs to one consumer only. A verified token whose `sub` is no consumer's is still
    /// admitted, with no consumer. Default: none.
    pub jwt_subjects: Option<Vec<String>>,
    /// The consumer's own token bucket, for the whole process, taken by each of its
    /// authenticated requests on every route: `{ requests_per_second = 50, burst = 100 }`
    /// (no `key`). Default: none.
    pub rate_limit: Option<FileRateLimit>,
}

/// `[[jwt_providers]]` (gateway role): an issuer of JSON Web Tokens that routes accept
/// (`routes[].authn.jwt`). Accepted algorithms: RS256/384/512, PS256/384/512, ES256/384,
/// EdDSA (Ed25519), and HS256/384/512 only with a shared-secret (`oct`) key written in
/// `jwks`; `alg: none` never. A token must carry `exp`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileJwtProvider {
    /// Required. Unique among providers. 1 to 128 characters among `A-Z a-z 0-9 - _ .`.
    pub name: String,
    /// Required. The token's `iss` must equal it.
    pub issuer: String,
    /// The token's `aud` (a string or an array) must contain one of these; a token without
    /// `aud` is then refused too (403). Default: none (`aud` is not checked).
    pub audiences: Option<Vec<String>>,
    /// Where to fetch the keys (a JWKS document): an `https://` URI, or `http://` to a
    /// loopback address only. Fetched off the workers at start, every `jwks_refresh_s`, and
    /// when a token names a `kid` the keys lack (at most once per 10 s). A failed fetch keeps
    /// the last good keys. Exactly one of `jwks_uri`, `jwks_file` and `jwks`.
    pub jwks_uri: Option<String>,
    /// A JWKS document in a file, read when the configuration is loaded.
    pub jwks_file: Option<String>,
    /// A JWKS document inline (`jwks = '{"keys": [...]}'`). The one place an `oct`
    /// (shared-secret, HS256) key is accepted.
    pub jwks: Option<String>,
    /// PEM CA certificates that sign the `jwks_uri` server's certificate. Default: the
    /// system's roots.
    pub jwks_ca: Option<String>,
    /// Seconds between two fetches of `jwks_uri`, 1 to 86400. Default 600.
    pub jwks_refresh_s: Option<u64>,
    /// Where a request carries its token, looked at in order: `"header:<name>:<prefix>"`
    /// (the value after the prefix, matched case-insensitively), `"query:<param>"`,
    /// `"cookie:<name>"`. Default `[ "header:authorization:Bearer ", "query:access_token" ]`.
    pub from: Option<Vec<String>>,
    /// `true`: send the token on to the upstream. Default `false`: it is removed (the
    /// header, query parameter or cookie it came in).
    pub forward: Option<bool>,
    /// Claims given to the upstream as request headers: `{ sub = "x-user-id", "org.id" =
    /// "x-org-id" }` (a dotted name reaches into nested objects). String, number and
    /// boolean claims only. A client's own copies of these headers are removed. Default:
    /// none.
    pub claims_to_headers: Option<BTreeMap<String, String>>,
    /// How far `exp` and `nbf` may be off, 0 to 600 seconds. Default 60.
    pub clock_skew_s: Option<u64>,
}

/// One element of `consumers[].api_keys`: exactly one of `sha256` and `key`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileApiKey {
    /// The SHA-256 digest of the key, 64 hexadecimal digits (e.g. the output of
    /// `printf %s "$KEY" | sha256sum`).
    pub sha256: Option<String>,
    /// The key itself: 1 to 256 visible ASCII characters (no space).
    pub key: Option<String>,
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

/// `[[redis]]` (gateway role): a Redis server that keeps global rate limits (a route's
/// `rate_limit.redis`). Each worker keeps one connection to it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRedis {
    /// Required. Referenced by routes' `rate_limit.redis`.
    pub name: String,
    /// Required. The server's `IP:port` (no host names: a worker never resolves names).
    pub address: String,
    /// The longest a connect or a batch of counts may take, 1 to 10000 ms; beyond it the
    /// connection is closed and the limits fail open (or closed) until it is back.
    /// Default 20.
    pub timeout_ms: Option<u64>,
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

/// Values of `clusters[].kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileClusterKind {
    Static,
    OriginalDst,
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
