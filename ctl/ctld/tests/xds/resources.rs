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
