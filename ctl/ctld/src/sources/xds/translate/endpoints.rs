//! EDS (`ClusterLoadAssignment`) and a cluster's inline `load_assignment` → a cluster's
//! `endpoints`: the address, `load_balancing_weight` → `weight`, the locality's `zone` →
//! `zone`. Endpoints whose health status is UNHEALTHY, DRAINING or TIMEOUT are left out, as
//! Envoy does not balance to them. One priority only.

use std::mem::take;

use envoy_types::pb::envoy::config::core::v3::address::Address as Addr;
use envoy_types::pb::envoy::config::core::v3::socket_address::PortSpecifier;
use envoy_types::pb::envoy::config::core::v3::{Address, HealthStatus};
use envoy_types::pb::envoy::config::endpoint::v3::lb_endpoint::HostIdentifier;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use toml::Value;

use super::{int, string, Table};
use crate::sources::xds::nack::{leftover, unsupported, Res};

/// Envoy's default overprovisioning factor: a policy that says only it changes nothing.
const DEFAULT_OVERPROVISIONING: u32 = 140;

/// The endpoints of `cla`; `at` names it in errors.
pub fn load_assignment(mut cla: ClusterLoadAssignment, at: &str) -> Res<Vec<Value>> {
    let mut out = Vec::new();
    for (i, mut group) in take(&mut cla.endpoints).into_iter().enumerate() {
        let gat = format!("{at}.endpoints[{i}]");
        if group.priority != 0 {
            return Err(unsupported(
                &format!("{gat}.priority"),
                "a priority other than 0",
            ));
        }
        let zone = group
            .locality
            .take()
            .map(|l| l.zone)
            .filter(|z| !z.is_empty());
        // Locality weights only count with locality-weighted balancing, which a cluster's
        // common_lb_config would ask for (and is refused there): Envoy ignores them too.
        group.load_balancing_weight = None;
        group.metadata = None;
        for (j, mut lb) in take(&mut group.lb_endpoints).into_iter().enumerate() {
            let eat = format!("{gat}.lb_endpoints[{j}]");
            let status = take(&mut lb.health_status);
            let weight = lb.load_balancing_weight.take().map(|w| w.value);
            lb.metadata = None;
            let Some(HostIdentifier::Endpoint(mut ep)) = lb.host_identifier.take() else {
                return Err(format!(
                    "{eat}.endpoint: missing (endpoint_name is not supported by ringside)"
                ));
            };
            let address = socket_address(ep.address.take(), &format!("{eat}.endpoint.address"))?;
            // The host name only labels the endpoint (Envoy's health checks and
            // auto_host_rewrite use it; ringside neither).
            ep.hostname.clear();
            leftover(&ep, &format!("{eat}.endpoint"))?;
            leftover(&lb, &eat)?;
            let out_of_rotation = [
                HealthStatus::Unhealthy,
                HealthStatus::Draining,
                HealthStatus::Timeout,
            ];
            if out_of_rotation.iter().any(|s| *s as i32 == status) {
                continue;
            }
            let mut t = Table::new();
            t.insert("address".into(), string(address));
            if let Some(w) = weight {
                t.insert("weight".into(), int(w));
            }
            if let Some(z) = &zone {
                t.insert("zone".into(), string(z.clone()));
            }
            out.push(Value::Table(t));
        }
        leftover(&group, &gat)?;
    }
    if let Some(mut p) = cla.policy.take() {
        if p.overprovisioning_factor.as_ref().map(|f| f.value) == Some(DEFAULT_OVERPROVISIONING) {
            p.overprovisioning_factor = None;
        }
        leftover(&p, &format!("{at}.policy"))?;
    }
    cla.cluster_name.clear();
    leftover(&cla, at)?;
    Ok(out)
}

/// `IP:port` (`[v6]:port`) or `host:port` of a TCP socket address.
pub fn socket_address(a: Option<Address>, at: &str) -> Res<String> {
    let Some(Addr::SocketAddress(mut sa)) = a.and_then(|a| a.address) else {
        return Err(format!(
            "{at}: only a socket_address is supported by ringside"
        ));
    };
    if sa.protocol != 0 {
        return Err(unsupported(&format!("{at}.protocol"), "UDP"));
    }
    let port = match sa.port_specifier.take() {
        Some(PortSpecifier::PortValue(p)) => p,
        _ => return Err(format!("{at}.port_value: required by ringside")),
    };
    let host = take(&mut sa.address);
    leftover(&sa, at)?;
    Ok(match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => format!("[{v6}]:{port}"),
        _ => format!("{host}:{port}"),
    })
}
