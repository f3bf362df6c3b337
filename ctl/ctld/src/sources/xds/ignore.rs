//! What ringside ignores, knowingly and counted (`ringside_ctld_xds_ignored_total{what}`):
//! filters and fields that only feed Envoy's own telemetry or inspect what ringside detects
//! itself. Everything else ringside cannot honour is NACKed (`nack.rs`). docs/xds.md lists
//! both.

/// HTTP filters of a `HttpConnectionManager` that are skipped. `envoy.filters.http.router`
/// is the terminal filter: ringside's own router takes its place. The fault filter is
/// skipped only when it injects nothing (`translate/chains.rs` checks its config).
pub const HTTP_FILTERS: &[&str] = &[
    "istio.metadata_exchange",
    "istio.stats",
    "istio.alpn",
    "envoy.filters.http.grpc_stats",
    "envoy.filters.http.fault",
    "envoy.filters.http.cors",
];

/// Network filters of a listener's filter chain, and of a cluster's (upstream) filters.
pub const NETWORK_FILTERS: &[&str] = &[
    "istio.metadata_exchange",
    "istio.stats",
    "envoy.filters.network.metadata_exchange",
];

/// Listener filters that only inspect the first bytes (ringside detects TLS and HTTP/2
/// itself).
pub const LISTENER_FILTERS: &[&str] = &[
    "envoy.filters.listener.tls_inspector",
    "envoy.filters.listener.http_inspector",
];

/// The counted name of an ignored filter.
pub fn filter(kind: &str, name: &str) -> String {
    format!("{kind}:{name}")
}

/// Counts each of `fields` that was set (its value already taken out of its message):
/// stat prefixes, metadata, access logs, tracing, decorators.
pub fn fields(ignored: &mut Vec<String>, fields: &[(&str, bool)]) {
    for (name, set) in fields {
        if *set {
            ignored.push(format!("field:{name}"));
        }
    }
}
