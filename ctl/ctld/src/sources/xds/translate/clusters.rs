//! CDS (`Cluster`) → `[[clusters]]`. Discovery types: STATIC and STRICT_DNS/LOGICAL_DNS
//! (inline `load_assignment`; `dns = "strict"`/`"logical"`), EDS (endpoints from the
//! `ClusterLoadAssignment` named by `eds_cluster_config.service_name`, else the cluster's
//! name), ORIGINAL_DST (`kind = "original_dst"`). `lb_policy` ROUND_ROBIN, LEAST_REQUEST,
//! RANDOM (CLUSTER_PROVIDED with ORIGINAL_DST), RING_HASH and MAGLEV (consistent hashing:
//! `build` writes `ring_hash` with the hash key the routes give, else `random`, as Envoy
//! picks at random for a request with no hash); `connect_timeout`; the upstream HTTP version
//! from `typed_extension_protocol_options`; circuit breakers, outlier detection, health
//! checks and the panic threshold (`resilience.rs`); upstream TLS (`tls.rs`).

use std::mem::take;

use envoy_types::pb::envoy::config::cluster::v3::cluster::{
    ClusterDiscoveryType, DiscoveryType, DnsLookupFamily, LbConfig, LbPolicy,
};
use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::extensions::upstreams::http::v3::http_protocol_options::explicit_http_config::ProtocolConfig;
use envoy_types::pb::envoy::extensions::upstreams::http::v3::http_protocol_options::UpstreamProtocolOptions;
use envoy_types::pb::envoy::extensions::upstreams::http::v3::HttpProtocolOptions;
use prost::Message;

use super::{endpoints, int, ms, name, resilience, string, tls, Table};
use crate::sources::xds::ignore;
use crate::sources::xds::nack::{leftover, unsupported, Res};

/// The key Envoy reads a cluster's upstream HTTP options under.
const HTTP_OPTIONS: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

/// One cluster, translated.
#[derive(Debug, Clone, PartialEq)]
pub struct TCluster {
    /// Its ringside name.
    pub name: String,
    /// The `[[clusters]]` table, without the endpoints of an EDS cluster.
    pub table: Table,
    /// An EDS cluster: the `ClusterLoadAssignment` its endpoints come from.
    pub eds: Option<String>,
    /// RING_HASH or MAGLEV: `lb` and `hash_key` come from the routes' hash policies.
    pub consistent: bool,
    /// `locality_weighted_lb_config`: its endpoints' localities' weights are `zone_weights`.
    pub locality_weighted: bool,
}

pub fn cluster(mut c: Cluster, ignored: &mut Vec<String>) -> Res<TCluster> {
    let xds_name = take(&mut c.name);
    let at = format!("cluster {xds_name:?}");
    let mut t = Table::new();
    let rname = name(&xds_name);
    t.insert("name".into(), string(rname.clone()));
    let kind = match c.cluster_discovery_type.take() {
        None => DiscoveryType::Static,
        Some(ClusterDiscoveryType::Type(n)) => DiscoveryType::try_from(n)
            .map_err(|_| unsupported(&format!("{at}.type"), format!("type {n}")))?,
        Some(ClusterDiscoveryType::ClusterType(ct)) => {
            return Err(unsupported(
                &format!("{at}.cluster_type"),
                format!("custom cluster type {:?}", ct.name),
            ))
        }
    };
    let lb = LbPolicy::try_from(take(&mut c.lb_policy)).ok();
    let mut eds = None;
    // An inline load assignment, filled in once common_lb_config says whether its
    // localities' weights count.
    let mut inline = None;
    match kind {
        DiscoveryType::Static | DiscoveryType::StrictDns | DiscoveryType::LogicalDns => {
            if kind == DiscoveryType::StrictDns {
                t.insert("dns".into(), string("strict"));
            }
            if kind == DiscoveryType::LogicalDns {
                t.insert("dns".into(), string("logical"));
            }
            match c.load_assignment.take() {
                Some(cla) => {
                    let la = endpoints::load_assignment(cla, &format!("{at}.load_assignment"))?;
                    inline = Some(la);
                }
                None => {
                    t.insert("endpoints".into(), toml::Value::Array(Vec::new()));
                }
            }
        }
        DiscoveryType::Eds => {
            // Where to ask: ctld asks over the one ADS stream whatever the config source says.
            let service = c
                .eds_cluster_config
                .take()
                .map(|e| e.service_name)
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| xds_name.clone());
            eds = Some(service);
        }
        DiscoveryType::OriginalDst => {
            t.insert("kind".into(), string("original_dst"));
        }
    }
    let mut consistent = false;
    match (lb, kind) {
        (Some(LbPolicy::ClusterProvided), DiscoveryType::OriginalDst) => {}
        (Some(LbPolicy::RoundRobin), DiscoveryType::OriginalDst) => {}
        (Some(LbPolicy::RoundRobin), _) => {}
        (Some(LbPolicy::LeastRequest), _) => {
            t.insert("lb".into(), string("least_request"));
        }
        (Some(LbPolicy::Random), _) => {
            t.insert("lb".into(), string("random"));
        }
        (Some(LbPolicy::RingHash | LbPolicy::Maglev), k) if k != DiscoveryType::OriginalDst => {
            consistent = true;
            // The ring's (or table's) size and hash function: ringside's ring is its own
            // (100 points per unit of weight, XXH64), and which endpoint a key lands on
            // differs from Envoy's whatever they say; what holds is that a key sticks.
            if let Some(LbConfig::RingHashLbConfig(_) | LbConfig::MaglevLbConfig(_)) = &c.lb_config
            {
                c.lb_config = None;
            }
        }
        (other, _) => {
            let what = other.map_or("this lb_policy".into(), |p| {
                format!("lb_policy {}", p.as_str_name())
            });
            return Err(unsupported(&format!("{at}.lb_policy"), what));
        }
    }
    if let Some(cb) = c.circuit_breakers.take() {
        let cat = format!("{at}.circuit_breakers");
        if let Some(b) = resilience::circuit_breaker(cb, &cat, ignored)? {
            t.insert("circuit_breaker".into(), toml::Value::Table(b));
        }
    }
    if let Some(o) = c.outlier_detection.take() {
        let o = resilience::outlier_detection(o, &format!("{at}.outlier_detection"))?;
        t.insert("outlier_detection".into(), toml::Value::Table(o));
    }
    let common =
        resilience::common_lb(c.common_lb_config.take(), &format!("{at}.common_lb_config"))?;
    if kind != DiscoveryType::OriginalDst {
        t.insert("panic_threshold_percent".into(), int(common.panic));
    }
    // Ring hash weighs endpoints, not zones (Envoy folds locality weights into the ring's
    // host weights; ringside does not: documented).
    let weighs_zones = common.locality_weighted && !consistent;
    if let Some(a) = inline {
        a.fill(&mut t, weighs_zones, &format!("{at}.load_assignment"))?;
    }
    let checks = take(&mut c.health_checks);
    if let Some(h) = resilience::health_check(checks, &format!("{at}.health_checks"))? {
        t.insert("health_check".into(), toml::Value::Table(h));
    }
    if let Some(ts) = c.transport_socket.take() {
        if let Some(tls) = tls::upstream(ts, &format!("{at}.transport_socket"))? {
            t.insert("tls".into(), toml::Value::Table(tls));
        }
    }
    if let Some(d) = c.connect_timeout.take() {
        t.insert("connect_timeout_ms".into(), int(ms(&d)));
    }
    // Deprecated fields servers still send: the HTTP/2 option and respect_dns_ttl.
    #[allow(deprecated)]
    if c.http2_protocol_options.take().is_some() {
        t.insert("protocol".into(), string("http2"));
    }
    for (key, any) in take(&mut c.typed_extension_protocol_options) {
        let kat = format!("{at}.typed_extension_protocol_options[{key:?}]");
        if key != HTTP_OPTIONS {
            return Err(unsupported(&kat, "this extension"));
        }
        let mut o = HttpProtocolOptions::decode(any.value.as_slice())
            .map_err(|e| format!("{kat}: cannot decode: {e}"))?;
        let protocol = match o.upstream_protocol_options.take() {
            None => None,
            Some(UpstreamProtocolOptions::ExplicitHttpConfig(mut e)) => {
                match e.protocol_config.take() {
                    Some(ProtocolConfig::HttpProtocolOptions(_)) => Some("http1"),
                    Some(ProtocolConfig::Http2ProtocolOptions(_)) => Some("http2"),
                    _ => return Err(unsupported(&kat, "HTTP/3 upstream")),
                }
            }
            Some(UpstreamProtocolOptions::UseDownstreamProtocolConfig(_)) => Some("auto"),
            Some(UpstreamProtocolOptions::AutoConfig(_)) => {
                return Err(unsupported(&kat, "auto_config"))
            }
        };
        if let Some(p) = protocol {
            t.insert("protocol".into(), string(p));
        }
        leftover(&o, &kat)?;
    }
    // Ringside resolves IPv4 first, then IPv6, and honours the answers' TTLs.
    let family = DnsLookupFamily::try_from(c.dns_lookup_family).ok();
    if matches!(
        family,
        Some(DnsLookupFamily::Auto | DnsLookupFamily::V4Only | DnsLookupFamily::V4Preferred)
    ) {
        c.dns_lookup_family = 0;
    }
    #[allow(deprecated)]
    {
        c.respect_dns_ttl = false;
    }
    for (i, f) in take(&mut c.filters).into_iter().enumerate() {
        if !ignore::NETWORK_FILTERS.contains(&f.name.as_str()) {
            return Err(unsupported(
                &format!("{at}.filters[{i}]"),
                format!("filter {:?}", f.name),
            ));
        }
        ignored.push(ignore::filter("cluster_filter", &f.name));
    }
    let fields = [
        ("alt_stat_name", !take(&mut c.alt_stat_name).is_empty()),
        ("metadata", c.metadata.take().is_some()),
    ];
    ignore::fields(ignored, &fields);
    leftover(&c, &at)?;
    Ok(TCluster {
        name: rname,
        table: t,
        eds,
        consistent,
        locality_weighted: weighs_zones,
    })
}
