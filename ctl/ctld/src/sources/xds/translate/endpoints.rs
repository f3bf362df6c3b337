//! EDS (`ClusterLoadAssignment`) and a cluster's inline `load_assignment` → a cluster's
//! `endpoints`: the address, `load_balancing_weight` → `weight`, the locality's `zone` →
//! `zone`, the locality's `priority` → `priority` (ringside's priority levels: Envoy's
//! arithmetic, the one Istio's locality failover relies on), the policy's
//! `overprovisioning_factor` → the cluster's `overprovisioning_percent`. Endpoints whose
//! health status is UNHEALTHY, DRAINING or TIMEOUT are `down`: out of rotation but counted
//! in their level's, zone's and cluster's size, as Envoy counts them.

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
/// The overprovisioning factors ringside takes (`overprovisioning_percent`).
const OVERPROVISIONING: std::ops::RangeInclusive<u32> = 100..=1000;
/// The highest priority ringside takes (`endpoints[].priority`).
const MAX_PRIORITY: u32 = 255;

/// A load assignment, translated: a cluster's `endpoints` and the keys that go with them.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub endpoints: Vec<Value>,
    /// `overprovisioning_percent`, when the policy sets a factor other than Envoy's default.
    pub overprovisioning: Option<u32>,
    /// Each locality's zone (empty: none) and `load_balancing_weight`, with where it is,
    /// for a cluster that weighs localities.
    pub localities: Vec<(String, Option<u32>, String)>,
}

impl Assignment {
    /// Puts the endpoints and their keys into the cluster's table; a cluster that weighs
    /// localities (`locality_weighted`) gets their weights as `zone_weights`. `at` names
    /// the assignment in errors.
    pub fn fill(&self, cluster: &mut Table, locality_weighted: bool, at: &str) -> Res<()> {
        cluster.insert("endpoints".into(), Value::Array(self.endpoints.clone()));
        if let Some(f) = self.overprovisioning {
            cluster.insert("overprovisioning_percent".into(), int(f));
        }
        if locality_weighted {
            if let Some(weights) = self.zone_weights(at)? {
                cluster.insert("zone_weights".into(), Value::Table(weights));
            }
        }
        Ok(())
    }

    /// The localities' weights by zone: none when no locality has a weight, or when there
    /// is one locality (its weight picks nothing). ringside knows a locality by its zone:
    /// a weighted locality needs one, and two with one zone need the same weight.
    fn zone_weights(&self, at: &str) -> Res<Option<Table>> {
        let weighted = self.localities.iter().any(|(_, w, _)| w.is_some());
        if !weighted || self.localities.len() < 2 {
            return Ok(None);
        }
        let mut out = Table::new();
        let mut seen: Vec<(&str, Option<u32>, &str)> = Vec::new();
        for (zone, w, lat) in &self.localities {
            if zone.is_empty() {
                return Err(unsupported(
                    &format!("{at}.{lat}.locality"),
                    "a weighted locality without a zone (ringside weighs zones)",
                ));
            }
            if let Some((_, other, oat)) = seen.iter().find(|(z, ..)| z == zone) {
                if other != w {
                    return Err(unsupported(
                        &format!("{at}.{lat}.load_balancing_weight"),
                        format!("a weight for zone {zone:?} other than {oat}'s (ringside weighs zones, not regions or sub-zones)"),
                    ));
                }
                continue;
            }
            seen.push((zone, *w, lat));
            // Envoy gives a locality without a weight none: its endpoints take nothing.
            if let Some(w) = w {
                out.insert(zone.clone(), int(*w));
            }
        }
        Ok(Some(out))
    }
}

/// The endpoints of `cla`; `at` names it in errors.
pub fn load_assignment(mut cla: ClusterLoadAssignment, at: &str) -> Res<Assignment> {
    let mut out = Vec::new();
    let mut localities = Vec::new();
    for (i, mut group) in take(&mut cla.endpoints).into_iter().enumerate() {
        let gat = format!("{at}.endpoints[{i}]");
        let priority = take(&mut group.priority);
        if priority > MAX_PRIORITY {
            return Err(unsupported(
                &format!("{gat}.priority"),
                format!("priority {priority} (ringside's levels are 0 to {MAX_PRIORITY})"),
            ));
        }
        let zone = group
            .locality
            .take()
            .map(|l| l.zone)
            .filter(|z| !z.is_empty());
        // Locality weights count only for a cluster whose common_lb_config asks for
        // locality-weighted balancing (`Assignment::fill`): Envoy ignores them otherwise.
        let weight = group.load_balancing_weight.take().map(|w| w.value);
        localities.push((
            zone.clone().unwrap_or_default(),
            weight,
            format!("endpoints[{i}]"),
        ));
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
            let mut t = Table::new();
            t.insert("address".into(), string(address));
            if out_of_rotation.iter().any(|s| *s as i32 == status) {
                t.insert("down".into(), Value::Boolean(true));
            }
            if let Some(w) = weight {
                t.insert("weight".into(), int(w));
            }
            if let Some(z) = &zone {
                t.insert("zone".into(), string(z.clone()));
            }
            if priority != 0 {
                t.insert("priority".into(), int(priority));
            }
            out.push(Value::Table(t));
        }
        leftover(&group, &gat)?;
    }
    let mut overprovisioning = None;
    if let Some(mut p) = cla.policy.take() {
        let pat = format!("{at}.policy");
        match p.overprovisioning_factor.take().map(|f| f.value) {
            None | Some(DEFAULT_OVERPROVISIONING) => {}
            Some(f) if OVERPROVISIONING.contains(&f) => overprovisioning = Some(f),
            Some(f) => {
                return Err(unsupported(
                    &format!("{pat}.overprovisioning_factor"),
                    format!(
                        "{f} (ringside takes {} to {})",
                        OVERPROVISIONING.start(),
                        OVERPROVISIONING.end()
                    ),
                ))
            }
        }
        leftover(&p, &pat)?;
    }
    cla.cluster_name.clear();
    leftover(&cla, at)?;
    Ok(Assignment {
        endpoints: out,
        overprovisioning,
        localities,
    })
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
