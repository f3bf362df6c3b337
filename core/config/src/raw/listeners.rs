//! `[[listeners]]`: the sockets ringside accepts on and what is set per listener: TLS
//! termination, HTTP/2, the access log, and a child listener's `match` on the connection.

use serde::Deserialize;

use super::{FileAuthzAction, FileHeaderAdd, FileRateLimit};

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
    /// listener with a `bind`) accepts that its `match` takes (Envoy's filter chain match,
    /// and its `use_original_dst` hand-off to listeners that do not bind): by destination
    /// (the original one on a `transparent` parent, else the address the connection came in
    /// on) and by what the connection opens with (a gateway's TLS by server name). The most
    /// specific child wins: one naming the destination's port before one naming no port,
    /// then the longest address block, the server name, the transport, the ALPN; a
    /// connection no child takes is served by the parent itself. Such a listener has no
    /// `bind`, `transparent` or `max_connections` (the parent's apply). Default: none.
    pub parent: Option<String>,
    /// With `parent`, required: which connections this listener serves, by destination,
    /// `{ ports = [ 8080 ], addresses = [ "10.96.0.0/12" ] }`, and by what they
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
    /// A parent listener (`transparent`, or the parent of child listeners) whose children
    /// are told apart by what a connection opens with reads its first bytes for at most this
    /// long; 0: as long as the listener's `idle_timeout_ms`. Envoy's
    /// `listener_filters_timeout`. Default 1000.
    pub inspect_timeout_ms: Option<u64>,
    /// What a connection that sent too little by `inspect_timeout_ms` gets: `"continue"`
    /// (chosen by what is known: plaintext, and TLS without a complete ClientHello) or
    /// `"close"`. Envoy's `continue_on_listener_filters_timeout`. Default `"continue"`.
    pub inspect_on_timeout: Option<FileInspectOnTimeout>,
    /// A parent listener: what a connection no child listener takes gets: `"serve"` (this
    /// listener serves it) or `"close"` (closed at once and counted in
    /// `ringside_downstream_connections_unmatched_total`, as Envoy closes a connection no
    /// filter chain takes: a gateway port with one child per server name and nothing for
    /// the others). Default `"serve"`.
    pub unmatched: Option<FileUnmatched>,
}

/// `listeners[].unmatched`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileUnmatched {
    Serve,
    Close,
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
