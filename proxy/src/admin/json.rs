//! The JSON documents: `/config` (the running configuration), `/clusters` (endpoints with
//! their counters and health) and `/stats` (everything the status page shows). Pure functions
//! of the snapshot and the merged counters.

use ringside_config::{
    Cluster, Endpoint, HealthCheck, HealthCheckKind, Lb, ListenerKind, OutlierDetection,
    RouteAction, Snapshot,
};
use ringside_engine::{Checked, ClusterHealth, EndpointHealth};
use serde_json::{json, Map, Value};

use super::totals::{ClusterTotals, EndpointTotals, Totals};

/// `GET /config`: generation, content hash and the configuration's TOML source as JSON, its
/// secrets (private keys, API keys, JWKS secrets, credential header values) replaced by
/// `"[redacted]"` (`ringside_config::redact`).
pub fn config(snap: &Snapshot) -> Result<Value, String> {
    let source = ringside_config::redact::redact_source(&snap.config.source)?;
    let table: toml::Table = toml::from_str(&source)
        .map_err(|e| format!("the running configuration's source does not parse: {e}"))?;
    Ok(json!({
        "generation": snap.generation,
        "config_hash": config_hash(snap),
        "config": toml_to_json(toml::Value::Table(table)),
    }))
}

/// The same spelling as `ringsidectl status`.
pub fn config_hash(snap: &Snapshot) -> String {
    format!("{:016x}", snap.config.content_hash)
}

/// TOML → JSON: datetimes become their RFC 3339 text, non-finite floats their TOML spelling.
pub fn toml_to_json(v: toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f)
            .map_or_else(|| Value::String(f.to_string()), Value::Number),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => {
            Value::Object(t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect())
        }
    }
}

fn lb_name(lb: Lb) -> &'static str {
    match lb {
        Lb::RoundRobin => "round_robin",
        Lb::LeastRequest => "least_request",
        Lb::Random => "random",
        Lb::RingHash => "ring_hash",
    }
}

fn classes(map: &std::collections::BTreeMap<&'static str, u64>) -> Value {
    Value::Object(
        map.iter()
            .map(|(k, v)| ((*k).to_string(), Value::from(*v)))
            .collect::<Map<String, Value>>(),
    )
}

fn endpoint(
    address: String,
    weight: Option<u32>,
    e: &EndpointTotals,
    h: Option<&EndpointHealth>,
) -> Value {
    let health = h.map_or("healthy", EndpointHealth::health);
    json!({
        "address": address,
        "weight": weight,
        "health": health,
        "ejected_ms": h.map_or(0, |h| h.ejected_ms),
        "times_ejected": h.map_or(0, |h| h.times_ejected),
        "health_check": h.and_then(|h| h.checked).map(Checked::name),
        "active": e.active,
        "idle": e.idle,
        "requests": e.requests(),
        "responses": classes(&e.responses),
        "errors": e.errors,
        "connect_failures": e.connect_failures,
    })
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A cluster's outlier detection settings (the default one too: see docs/config.md).
fn outlier(o: &OutlierDetection) -> Value {
    json!({
        "consecutive_5xx": o.consecutive_5xx,
        "consecutive_gateway_failure": o.consecutive_gateway_failure,
        "consecutive_connect_failure": o.consecutive_connect_failure,
        "interval_ms": millis(o.interval),
        "base_ejection_ms": millis(o.base_ejection),
        "max_ejection_ms": millis(o.max_ejection),
        "max_ejection_percent": o.max_ejection_percent,
    })
}

fn health_check(h: &HealthCheck) -> Value {
    let (path, expected) = match &h.kind {
        HealthCheckKind::Http { path, expected } => (Some(path.as_str()), Some(expected)),
        HealthCheckKind::Tcp => (None, None),
    };
    json!({
        "http_path": path,
        "tcp": path.is_none(),
        "expected_statuses": expected,
        "interval_ms": millis(h.interval),
        "timeout_ms": millis(h.timeout),
        "unhealthy_threshold": h.unhealthy_threshold,
        "healthy_threshold": h.healthy_threshold,
    })
}

/// One configured cluster with its endpoints (in configuration order), their counters and
/// their health.
fn cluster(c: &Cluster, t: Option<&ClusterTotals>, h: Option<&ClusterHealth>) -> Value {
    let none = EndpointTotals::default();
    let health_of =
        |ep: &Endpoint| h.and_then(|h| h.endpoints.iter().find(|e| e.address == ep.address));
    let endpoints: Vec<Value> = c
        .endpoints
        .iter()
        .map(|ep| {
            let stats = t
                .and_then(|t| t.endpoints.get(&ep.address))
                .unwrap_or(&none);
            endpoint(
                ep.address.to_string(),
                Some(ep.weight),
                stats,
                health_of(ep),
            )
        })
        .collect();
    let sum = |f: fn(&EndpointTotals) -> u64| {
        c.endpoints
            .iter()
            .filter_map(|ep| t.and_then(|t| t.endpoints.get(&ep.address)))
            .map(f)
            .sum::<u64>()
    };
    let healthy = c
        .endpoints
        .iter()
        .filter(|ep| health_of(ep).is_none_or(EndpointHealth::in_rotation))
        .count();
    let count = |f: fn(&ClusterHealth) -> u64| h.map_or(0, f);
    json!({
        "name": c.name,
        "lb": lb_name(c.lb),
        "connect_timeout_ms": millis(c.connect_timeout),
        "fail_timeout_ms": millis(c.fail_timeout),
        "outlier_detection": outlier(&c.outlier),
        "health_check": c.health_check.as_ref().map(health_check),
        "healthy_endpoints": healthy,
        "ejections": count(|h| h.ejections),
        "panic_requests": count(|h| h.panic_requests),
        "health_check_failures": count(|h| h.check_failures),
        "requests": sum(EndpointTotals::requests),
        "responses_5xx": sum(|e| e.class("5xx")),
        "errors": sum(|e| e.errors),
        "connect_failures": sum(|e| e.connect_failures),
        "active": sum(|e| e.active),
        "idle": sum(|e| e.idle),
        "endpoints": endpoints,
    })
}

/// `GET /clusters`: `health` is `ServerHandle::health`.
pub fn clusters(snap: &Snapshot, t: &Totals, health: &[ClusterHealth]) -> Value {
    let list: Vec<Value> = snap
        .config
        .clusters
        .iter()
        .map(|c| {
            let h = health.iter().find(|h| h.cluster == c.name);
            cluster(c, t.clusters.get(&c.name), h)
        })
        .collect();
    json!({ "generation": snap.generation, "clusters": list })
}

fn route_target(snap: &Snapshot, action: &RouteAction) -> String {
    let name = |id| {
        snap.config
            .clusters
            .get(id)
            .map_or("?", |c: &Cluster| c.name.as_str())
    };
    match action {
        RouteAction::Cluster(id) => format!("cluster {}", name(id.0)),
        RouteAction::Weighted { targets, total } => {
            let parts: Vec<String> = targets
                .iter()
                .map(|(id, w)| {
                    let pct = if *total > 0 {
                        u64::from(*w) * 100 / total
                    } else {
                        0
                    };
                    format!("{} {pct}%", name(id.0))
                })
                .collect();
            format!("clusters {}", parts.join(", "))
        }
        RouteAction::Direct(d) => format!("direct response {}", d.status),
        RouteAction::Redirect(r) => format!("redirect {}", r.status),
        RouteAction::Authority => "tunnel to the authority".to_string(),
    }
}

/// Process-level facts for `/stats`, gathered by the caller.
pub struct Facts {
    /// Unix time of the scrape, in seconds: the status page divides counter deltas by
    /// deltas of this (not by the browser's clock, which headless and background tabs skew).
    pub time: f64,
    pub uptime_seconds: u64,
    pub node_id: Option<String>,
    pub driver: String,
    pub draining: bool,
    pub connections: u64,
    /// Bound address by listener name.
    pub addresses: Vec<(String, String)>,
    /// `ServerHandle::health`.
    pub health: Vec<ClusterHealth>,
}

/// `GET /stats`: what the status page polls.
pub fn stats(snap: &Snapshot, t: &Totals, f: &Facts) -> Value {
    let listeners: Vec<Value> = snap
        .config
        .listeners
        .iter()
        .map(|l| {
            let address = f
                .addresses
                .iter()
                .find(|(n, _)| *n == l.name)
                .map_or_else(|| l.bind.to_string(), |(_, a)| a.clone());
            let lt = t.listeners.get(&l.name);
            let (protocol, target, mut routes) = match &l.kind {
                ListenerKind::Http(h) => {
                    let routes: Vec<Value> = h
                        .routes
                        .iter()
                        .map(|r| {
                            json!({
                                "name": r.name,
                                "target": route_target(snap, &r.action),
                                "requests": classes(&t.requests_by_class(&l.name, Some(&r.name))),
                            })
                        })
                        .collect();
                    ("http", Value::Null, routes)
                }
                ListenerKind::Tcp { cluster } => (
                    "tcp",
                    Value::from(
                        snap.config
                            .clusters
                            .get(cluster.0)
                            .map_or("?", |c| c.name.as_str()),
                    ),
                    Vec::new(),
                ),
            };
            let unmatched = t.requests_by_class(&l.name, Some(""));
            if !unmatched.is_empty() {
                routes.push(json!({
                    "name": "",
                    "target": "no route matched",
                    "requests": classes(&unmatched),
                }));
            }
            json!({
                "name": l.name,
                "address": address,
                "protocol": protocol,
                "cluster": target,
                "open": lt.map_or(0, |x| x.open),
                "active": lt.map_or(0, |x| x.in_flight),
                "idle": lt.map_or(0, |x| x.idle()),
                "requests": classes(&t.requests_by_class(&l.name, None)),
                "routes": routes,
            })
        })
        .collect();
    json!({
        "time": f.time,
        "version": env!("CARGO_PKG_VERSION"),
        "pid": std::process::id(),
        "node_id": f.node_id,
        "uptime_seconds": f.uptime_seconds,
        "generation": snap.generation,
        "config_hash": config_hash(snap),
        "driver": f.driver,
        "workers": t.workers,
        "draining": f.draining,
        "connections": f.connections,
        "listeners": listeners,
        "clusters": clusters(snap, t, &f.health).get("clusters").cloned().unwrap_or(Value::Null),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[proxy]
workers = 2
[[listeners]]
name = "in"
bind = "127.0.0.1:0"
[[routes]]
listener = "in"
name = "api"
match = { path_prefix = "/api" }
cluster = "app"
[[clusters]]
name = "app"
lb = "least_request"
endpoints = ["127.0.0.1:9", { address = "127.0.0.1:10", weight = 3 }]
"#;

    fn snap() -> Snapshot {
        let config = ringside_config::parse(CONFIG).unwrap();
        Snapshot {
            generation: 7,
            config,
        }
    }

    #[test]
    fn config_is_the_source_as_json() {
        let v = config(&snap()).unwrap();
        assert_eq!(v["generation"], 7);
        assert_eq!(v["config"]["proxy"]["workers"], 2);
        assert_eq!(v["config"]["routes"][0]["match"]["path_prefix"], "/api");
        assert_eq!(v["config_hash"].as_str().map(str::len), Some(16));
        let d: toml::Value = toml::from_str("t = 1979-05-27T07:32:00Z").unwrap();
        assert_eq!(toml_to_json(d)["t"], "1979-05-27T07:32:00Z");
    }

    #[test]
    fn clusters_list_configured_endpoints_with_weights() {
        let v = clusters(&snap(), &Totals::default(), &[]);
        let c = &v["clusters"][0];
        assert_eq!(c["name"], "app");
        assert_eq!(c["lb"], "least_request");
        assert_eq!(c["endpoints"][1]["address"], "127.0.0.1:10");
        assert_eq!(c["endpoints"][1]["weight"], 3);
        assert_eq!(c["endpoints"][0]["health"], "healthy");
        assert_eq!(c["healthy_endpoints"], 2);
    }
}
