//! The Envoy resources the tests send, in Envoy's JSON form (`ads_server.py` parses them
//! with xds-protos).

use std::net::SocketAddr;

use serde_json::{json, Value};

const HCM: &str =
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";

/// An EDS cluster with Istio's "unlimited" circuit breakers.
pub fn eds_cluster(name: &str) -> Value {
    let max = u32::MAX;
    json!({"name": name, "type": "EDS", "connect_timeout": "1s",
        "eds_cluster_config": {"eds_config": {"ads": {}}},
        "circuit_breakers": {"thresholds": [{"max_connections": max, "max_pending_requests": max,
            "max_requests": max, "max_retries": max, "track_remaining": true}]}})
}

/// A STATIC cluster with outlier detection and a TCP health check.
pub fn static_cluster(name: &str, addr: SocketAddr) -> Value {
    json!({"name": name, "type": "STATIC", "connect_timeout": "1s", "lb_policy": "LEAST_REQUEST",
        "load_assignment": load_assignment(name, &[(addr, 1, "z1")]),
        "outlier_detection": {"consecutive_5xx": 3, "interval": "5s", "enforcing_success_rate": 0},
        "health_checks": [{"timeout": "0.5s", "interval": "1s", "unhealthy_threshold": 3,
            "healthy_threshold": 1, "tcp_health_check": {}}]})
}

/// `(address, weight, zone)` each.
pub fn load_assignment(cluster: &str, eps: &[(SocketAddr, u32, &str)]) -> Value {
    let groups: Vec<Value> = eps
        .iter()
        .map(|(a, w, z)| {
            json!({"locality": {"region": "r", "zone": z}, "lb_endpoints": [{
                "endpoint": {"address": {"socket_address": {"address": a.ip().to_string(), "port_value": a.port()}}},
                "load_balancing_weight": w, "health_status": "HEALTHY"}]})
        })
        .collect();
    json!({"cluster_name": cluster, "endpoints": groups})
}

/// A listener on `port` whose HCM takes its routes from RDS `route_config`, with Istio's
/// telemetry filters before the router.
pub fn listener(name: &str, port: u16, route_config: &str) -> Value {
    json!({"name": name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "traffic_direction": "INBOUND",
        "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
            "typed_config": {"@type": HCM, "stat_prefix": "inbound",
                "rds": {"config_source": {"ads": {}}, "route_config_name": route_config},
                "upgrade_configs": [{"upgrade_type": "websocket"}],
                "http_filters": http_filters(&[])}}]}]})
}

/// Istio's telemetry filters, `extra`, and the router.
pub fn http_filters(extra: &[Value]) -> Vec<Value> {
    let mut f = vec![
        json!({"name": "istio.metadata_exchange"}),
        json!({"name": "envoy.filters.http.fault", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"}}),
        json!({"name": "istio.stats"}),
    ];
    f.extend(extra.iter().cloned());
    f.push(json!({"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}));
    f
}

/// One virtual host for every domain with these routes.
pub fn route_config(name: &str, routes: Vec<Value>) -> Value {
    json!({"name": name, "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": routes}]})
}

const TCP_PROXY: &str =
    "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy";

/// A filter chain forwarding to `cluster`, taking what `filter_chain_match` says.
pub fn tcp_chain(name: &str, cluster: &str, filter_chain_match: Value) -> Value {
    json!({"name": name, "filter_chain_match": filter_chain_match,
        "filters": [{"name": "envoy.filters.network.tcp_proxy",
            "typed_config": {"@type": TCP_PROXY, "stat_prefix": cluster, "cluster": cluster}}]})
}

/// Istio's outbound listeners: `virtualOutbound` on 127.0.0.1:`port` (`use_original_dst`,
/// the original_dst listener filter, a blackhole for its own port, passthrough to the
/// ORIGINAL_DST cluster `PassthroughCluster`), and the `bind_to_port: false` listeners it
/// hands connections to: `0.0.0.0_8080` (HTTP, routes by RDS `8080`), `10.96.0.10_9000`
/// (TCP to `db`), `0.0.0.0_7070` (two chains by address block).
pub fn istio_outbound(port: u16) -> Vec<Value> {
    let receiver = |name: &str, ip: &str, p: u16, chains: Vec<Value>| {
        json!({"name": name, "address": {"socket_address": {"address": ip, "port_value": p}},
            "bind_to_port": false, "traffic_direction": "OUTBOUND", "filter_chains": chains})
    };
    let mut http = listener("0.0.0.0_8080", 8080, "8080");
    http["address"]["socket_address"]["address"] = json!("0.0.0.0");
    http["bind_to_port"] = json!(false);
    let block =
        |ip: &str, len: u32| json!({"prefix_ranges": [{"address_prefix": ip, "prefix_len": len}]});
    vec![
        json!({"name": "virtualOutbound",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
            "use_original_dst": true, "traffic_direction": "OUTBOUND",
            "listener_filters": [{"name": "envoy.filters.listener.original_dst"}],
            "filter_chains": [
                tcp_chain("virtualOutbound-blackhole", "BlackHoleCluster", json!({"destination_port": port})),
                tcp_chain("virtualOutbound-catchall-tcp", "PassthroughCluster", json!({}))]}),
        http,
        receiver(
            "10.96.0.10_9000",
            "10.96.0.10",
            9000,
            vec![tcp_chain("", "db", json!({}))],
        ),
        receiver(
            "0.0.0.0_7070",
            "0.0.0.0",
            7070,
            vec![
                tcp_chain("svc", "db", block("10.96.0.0", 12)),
                tcp_chain("rest", "PassthroughCluster", block("0.0.0.0", 0)),
            ],
        ),
    ]
}

/// Istio's `BlackHoleCluster` (no endpoints) and `PassthroughCluster` (ORIGINAL_DST).
pub fn istio_clusters() -> Vec<Value> {
    vec![
        json!({"name": "BlackHoleCluster", "type": "STATIC", "connect_timeout": "1s"}),
        json!({"name": "PassthroughCluster", "type": "ORIGINAL_DST", "connect_timeout": "1s",
            "lb_policy": "CLUSTER_PROVIDED"}),
    ]
}

/// An HCM chain serving everything to `cluster` by an inline route configuration (Istio's
/// inbound chains), taking what `filter_chain_match` says.
pub fn http_chain(name: &str, cluster: &str, filter_chain_match: Value) -> Value {
    json!({"name": name, "filter_chain_match": filter_chain_match,
        "filters": [{"name": "envoy.filters.network.http_connection_manager",
            "typed_config": {"@type": HCM, "stat_prefix": "inbound",
                "route_config": route_config(cluster, vec![json!({"match": {"prefix": "/"},
                    "route": {"cluster": cluster}})]),
                "http_filters": http_filters(&[])}}]})
}

/// Istio's inbound listener `virtualInbound` on 127.0.0.1:`port` under PERMISSIVE mTLS with
/// one HTTP port, 8080 (cluster `inbound|8080||`): the original_dst, TLS and HTTP inspector
/// listener filters; a blackhole for its own port; passthrough to the ORIGINAL_DST cluster
/// `InboundPassthroughCluster` (the empty match, and TLS); plaintext HTTP to it by the HTTP
/// inspector's protocols; and port 8080's chains by transport and ALPN, the mTLS one with
/// the certificate `cert`/`key` inline.
pub fn istio_inbound(port: u16, cert: &str, key: &str) -> Value {
    let mut mtls = http_chain(
        "0.0.0.0_8080",
        "inbound|8080||",
        json!({"destination_port": 8080, "transport_protocol": "tls",
            "application_protocols": ["istio-http/1.0", "istio-http/1.1", "istio-h2"]}),
    );
    mtls["transport_socket"] = json!({"name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
        "common_tls_context": {"tls_certificates": [{"certificate_chain": {"inline_string": cert},
            "private_key": {"inline_string": key}}]}}});
    let passthrough = "InboundPassthroughCluster";
    json!({"name": "virtualInbound",
    "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
    "traffic_direction": "INBOUND",
    "listener_filters": [{"name": "envoy.filters.listener.original_dst"},
        {"name": "envoy.filters.listener.tls_inspector"},
        {"name": "envoy.filters.listener.http_inspector"}],
    "filter_chains": [
        tcp_chain("virtualInbound-blackhole", "BlackHoleCluster", json!({"destination_port": port})),
        tcp_chain("virtualInbound", passthrough, json!({})),
        tcp_chain("virtualInbound", passthrough, json!({"transport_protocol": "tls"})),
        http_chain("virtualInbound-catchall-http", passthrough,
            json!({"transport_protocol": "raw_buffer", "application_protocols": ["http/1.1", "h2c"]})),
        mtls,
        http_chain("0.0.0.0_8080", "inbound|8080||",
            json!({"destination_port": 8080, "transport_protocol": "raw_buffer"})),
    ]})
}
