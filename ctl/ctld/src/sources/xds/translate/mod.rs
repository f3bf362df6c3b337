//! xDS resources → a ringside configuration. Each resource is translated on its own when it
//! arrives (`listeners.rs`, its filter chains `chains.rs` and their matches `chain_match.rs`,
//! `routes.rs`, `clusters.rs`, `endpoints.rs`; a field ringside cannot honour fails it,
//! naming the field); [`build`] then puts the accepted resources together (the listeners'
//! parents and children: `layout.rs`) into the `[[listeners]]`, `[[routes]]` and
//! `[[clusters]]` of one TOML text, laid after the node's template (its file's other
//! sections: `[proxy]`, `[dns]`, `[mesh]`...). The caller validates the result with
//! ringside's own validation, as a file is.

pub mod chain_match;
pub mod chains;
#[cfg(test)]
mod chains_inbound_tests;
#[cfg(test)]
mod chains_nack_tests;
#[cfg(test)]
mod chains_tests;
pub mod clusters;
pub mod endpoints;
#[cfg(test)]
mod hash_tests;
mod hcm;
#[cfg(test)]
mod hcm_tests;
mod headers;
mod layout;
pub mod listeners;
mod resilience;
pub mod route_action;
pub mod routes;
pub mod secrets;
mod tls;

use std::collections::BTreeMap;

use envoy_types::pb::google::protobuf::Duration;
use toml::Value;

use chains::RouteSource;
pub use toml::Table;

/// Every accepted resource, translated, by its xDS name.
#[derive(Debug, Clone, Default)]
pub struct Translated {
    pub clusters: BTreeMap<String, clusters::TCluster>,
    /// By cluster (or EDS service) name.
    pub endpoints: BTreeMap<String, endpoints::Assignment>,
    pub listeners: BTreeMap<String, listeners::TListener>,
    pub routes: BTreeMap<String, routes::TRouteConfig>,
    /// SDS secrets by source and name.
    pub secrets: secrets::Secrets,
}

impl Translated {
    /// The SDS secrets the listeners and clusters refer to, by source, sorted, once each.
    pub fn secret_names(&self) -> secrets::Names {
        let mut out = secrets::Names::default();
        for (_, tls) in self.tls_tables() {
            secrets::names(tls, &mut out);
        }
        for list in [&mut out.ads, &mut out.local] {
            list.sort();
            list.dedup();
        }
        out
    }

    /// The first listener or cluster whose TLS needs a secret of the local SDS server, and
    /// that secret's name.
    pub fn first_local_secret(&self) -> Option<(String, String)> {
        self.tls_tables().find_map(|(at, tls)| {
            let mut names = secrets::Names::default();
            secrets::names(tls, &mut names);
            names.local.into_iter().next().map(|name| (at, name))
        })
    }

    /// `(where, tls table)` of every listener and cluster with TLS.
    fn tls_tables(&self) -> impl Iterator<Item = (String, &Table)> {
        let listeners = self.listeners.iter().flat_map(|(n, l)| {
            l.chains()
                .map(move |c| (format!("listener {n:?}"), &c.table))
        });
        let clusters = self
            .clusters
            .iter()
            .map(|(n, c)| (format!("cluster {n:?}"), &c.table));
        listeners
            .chain(clusters)
            .filter_map(|(at, t)| Some((at, t.get("tls")?.as_table()?)))
    }
}

/// Replaces the SDS references of `table`'s `tls` by the secrets; `Some(waiting)` when one is
/// not received yet.
fn resolve_secrets(table: &mut Table, t: &Translated, at: &str) -> Result<Option<Built>, String> {
    if let Some(Value::Table(tls)) = table.get_mut("tls") {
        if let Err(what) = secrets::resolve(tls, &t.secrets, at)? {
            return Ok(Some(Built::Waiting(what)));
        }
    }
    Ok(None)
}

/// What [`build`] made of the resources.
#[derive(Debug, Clone, PartialEq)]
pub enum Built {
    /// The whole configuration's `[[listeners]]`, `[[routes]]` and `[[clusters]]`.
    Ready(String),
    /// Something is not received yet: a listener, an EDS, RDS or SDS resource.
    Waiting(String),
    /// A route or listener names a cluster that CDS does not have.
    Missing(String),
}

/// Puts the resources together. An error: two xDS names that make the same ringside name, a
/// listener layout ringside cannot serve (`layout.rs`).
pub fn build(t: &Translated) -> Result<Built, String> {
    if t.listeners.is_empty() {
        // A ringside configuration has at least one listener: until LDS gives one (or
        // while it gives none), the node keeps what it has.
        return Ok(Built::Waiting("a listener (LDS)".into()));
    }
    let mut listeners = Vec::new();
    let mut routes = Vec::new();
    let mut clusters = Vec::new();
    let mut used: BTreeMap<String, String> = BTreeMap::new();
    for unit in layout::units(&t.listeners)? {
        unique(&mut used, "listener", &unit.chain.at, &unit.chain.name)?;
        match listener(t, &unit, &mut routes)? {
            Ok(table) => listeners.push(Value::Table(table)),
            Err(not_yet) => return Ok(not_yet),
        }
    }
    for (xds_name, c) in &t.clusters {
        unique(
            &mut used,
            "cluster",
            &format!("cluster {xds_name:?}"),
            &c.name,
        )?;
        let mut table = c.table.clone();
        if let Some(w) = resolve_secrets(&mut table, t, &format!("cluster {xds_name:?}"))? {
            return Ok(w);
        }
        if c.consistent {
            consistent_hash(&mut table, t, xds_name)?;
        }
        if let Some(service) = &c.eds {
            match t.endpoints.get(service) {
                Some(assignment) => assignment.fill(
                    &mut table,
                    c.locality_weighted,
                    &format!("cluster_load_assignment {service:?}"),
                )?,
                None => {
                    return Ok(Built::Waiting(format!(
                        "cluster_load_assignment {service:?}"
                    )))
                }
            }
        }
        clusters.push(Value::Table(table));
    }
    let mut doc = Table::new();
    for (key, list) in [
        ("listeners", listeners),
        ("routes", routes),
        ("clusters", clusters),
    ] {
        if !list.is_empty() {
            doc.insert(key.into(), Value::Array(list));
        }
    }
    toml::to_string(&doc)
        .map(Built::Ready)
        .map_err(|e| format!("cannot write the configuration: {e}"))
}

/// One ringside listener's table, its routes pushed onto `routes`; `Err` when something it
/// needs is not received yet.
fn listener(
    t: &Translated,
    unit: &layout::Unit<'_>,
    routes: &mut Vec<Value>,
) -> Result<Result<Table, Built>, String> {
    let (xds_name, c) = (unit.xds, unit.chain);
    let mut table = unit.table();
    if let Some(w) = resolve_secrets(&mut table, t, &format!("listener {xds_name:?}"))? {
        return Ok(Err(w));
    }
    let route_config = match &c.routes {
        RouteSource::None => None,
        RouteSource::Inline(rc) => Some(rc),
        RouteSource::Rds(name) => match t.routes.get(name) {
            Some(rc) => Some(rc),
            None => return Ok(Err(Built::Waiting(format!("route_config {name:?}")))),
        },
    };
    if let Some(cluster) = c
        .tcp_cluster
        .as_ref()
        .filter(|n| !t.clusters.contains_key(*n))
    {
        return Ok(Err(Built::Missing(format!(
            "listener {xds_name:?}: cluster {cluster:?} is not among the clusters (CDS)"
        ))));
    }
    if let Some(rc) = route_config {
        if let Some(cluster) = rc.clusters.iter().find(|n| !t.clusters.contains_key(*n)) {
            return Ok(Err(Built::Missing(format!(
                "route_config {:?}: cluster {cluster:?} is not among the clusters (CDS)",
                rc.name
            ))));
        }
        table.extend(rc.listener_edits.clone());
        for r in &rc.routes {
            let mut r = r.clone();
            r.insert("listener".into(), Value::String(c.name.clone()));
            routes.push(Value::Table(r));
        }
    }
    Ok(Ok(table))
}

/// A RING_HASH or MAGLEV cluster's `lb`: `ring_hash` by the one key its routes' hash policies
/// name, `random` when none does (Envoy hashes nothing then and picks at random). Routes
/// that hash it by different keys cannot be served: ringside's hash key is the cluster's.
/// A route to it without a hash policy hashes by that key too (Envoy would pick at random).
fn consistent_hash(table: &mut Table, t: &Translated, xds_name: &str) -> Result<(), String> {
    let inline = t
        .listeners
        .values()
        .flat_map(|l| l.chains())
        .filter_map(|c| match &c.routes {
            RouteSource::Inline(rc) => Some(rc),
            _ => None,
        });
    let hashes = t
        .routes
        .values()
        .chain(inline)
        .flat_map(|rc| &rc.hashes)
        .filter(|h| h.clusters.iter().any(|c| c == xds_name));
    let mut key: Option<&route_action::RouteHash> = None;
    for h in hashes {
        match key {
            None => key = Some(h),
            Some(first) if (&first.key, &first.cookie) != (&h.key, &h.cookie) => {
                return Err(format!(
                    "cluster {xds_name:?}: its routes hash it differently ({}: {}; {}: {}), and ringside's hash key is the cluster's",
                    first.at,
                    shown(first),
                    h.at,
                    shown(h)
                ))
            }
            Some(_) => {}
        }
    }
    match key {
        Some(h) => {
            table.insert("lb".into(), string("ring_hash"));
            table.insert("hash_key".into(), string(h.key.clone()));
            if let Some(cookie) = &h.cookie {
                table.insert("hash_cookie".into(), Value::Table(cookie.clone()));
            }
        }
        None => {
            table.insert("lb".into(), string("random"));
        }
    }
    Ok(())
}

/// A route's hash as an error shows it: the key, and a made cookie's settings.
fn shown(h: &route_action::RouteHash) -> String {
    match &h.cookie {
        None => h.key.clone(),
        Some(c) => format!("{} made with {}", h.key, Value::Table(c.clone())),
    }
}

/// Listeners and clusters share no namespace in ringside, but a name must stay unique within
/// its kind once made a ringside name. `at` names the xDS source: a cluster, a filter chain.
fn unique(
    used: &mut BTreeMap<String, String>,
    kind: &str,
    at: &str,
    name: &str,
) -> Result<(), String> {
    let key = format!("{kind} {name}");
    match used.insert(key, at.to_owned()) {
        Some(other) if other != at => Err(format!(
            "{at}: its ringside {kind} name {name:?} is also that of {other}"
        )),
        _ => Ok(()),
    }
}

/// The node's configuration: the template's own sections, then the xDS ones. The template's
/// `listeners`, `routes` and `clusters` (and what names them: `authz`) are left out.
pub fn compose(template: Option<&str>, xds: &str) -> String {
    let mut out = String::new();
    if let Some(t) = template {
        if let Ok(mut doc) = t.parse::<toml_edit::DocumentMut>() {
            for key in ["listeners", "routes", "clusters", "authz"] {
                doc.remove(key);
            }
            out.push_str(&doc.to_string());
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
        }
    }
    out.push_str(xds);
    out
}

/// A ringside name for an xDS one: characters ringside names do not take (Istio's
/// `outbound|8080||orders.shop.svc.cluster.local`) become `_`.
pub fn name(xds: &str) -> String {
    xds.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A protobuf duration in milliseconds (negative ones are 0; validation bounds the rest).
pub fn ms(d: &Duration) -> i64 {
    (d.seconds.max(0))
        .saturating_mul(1000)
        .saturating_add(i64::from(d.nanos.max(0) / 1_000_000))
}

/// `n` as a TOML integer.
pub fn int(n: impl Into<i64>) -> Value {
    Value::Integer(n.into())
}

pub fn string(s: impl Into<String>) -> Value {
    Value::String(s.into())
}

#[cfg(test)]
mod tests;
