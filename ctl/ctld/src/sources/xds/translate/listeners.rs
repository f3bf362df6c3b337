//! LDS (`Listener`) → `[[listeners]]`: the socket address → `bind`; one filter chain whose
//! terminal network filter is a `HttpConnectionManager` (`protocol = "http"`; routes by RDS
//! over ADS or inline) or a `tcp_proxy` (`protocol = "tcp"`, `cluster`, `idle_timeout`). The
//! `original_dst` listener filter → `transparent = true`; a TLS transport socket → `tls`
//! (`tls.rs`); the HCM's connection settings → the listener's limits and timeouts
//! (`hcm.rs`). Filters of the ignore list are
//! skipped and counted; any other filter is refused by name.

use std::mem::take;

use envoy_types::pb::envoy::config::listener::v3::filter::ConfigType;
use envoy_types::pb::envoy::config::listener::v3::{Filter, Listener};
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::HttpFault;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::{
    CodecType, RouteSpecifier,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_filter::ConfigType as HttpConfigType;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::tcp_proxy::ClusterSpecifier;
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;
use envoy_types::pb::google::protobuf::Any;
use prost::{Message, Name};
use toml::Value;

use super::endpoints::socket_address;
use super::routes::{route_config, TRouteConfig};
use super::{hcm, int, ms, name, string, tls, Table};
use crate::sources::xds::ignore;
use crate::sources::xds::nack::{leftover, unsupported, Res};

const ROUTER: &str = "envoy.filters.http.router";
const ORIGINAL_DST: &str = "envoy.filters.listener.original_dst";
const FAULT: &str = "envoy.filters.http.fault";

/// Where an HTTP listener's routes come from.
#[derive(Debug, Clone, PartialEq)]
pub enum RouteSource {
    /// A `tcp` listener.
    None,
    /// RDS: the route configuration of that name.
    Rds(String),
    Inline(TRouteConfig),
}

#[derive(Debug, Clone, PartialEq)]
pub struct TListener {
    pub name: String,
    pub table: Table,
    pub routes: RouteSource,
    /// A `tcp` listener's cluster (xDS name).
    pub tcp_cluster: Option<String>,
}

pub fn listener(mut l: Listener, ignored: &mut Vec<String>) -> Res<TListener> {
    let xds_name = take(&mut l.name);
    let at = format!("listener {xds_name:?}");
    let rname = name(&xds_name);
    let mut t = Table::new();
    t.insert("name".into(), string(rname.clone()));
    let bind = socket_address(l.address.take(), &format!("{at}.address"))?;
    t.insert("bind".into(), string(bind));
    for (i, f) in take(&mut l.listener_filters).into_iter().enumerate() {
        if f.name == ORIGINAL_DST {
            t.insert("transparent".into(), Value::Boolean(true));
        } else if ignore::LISTENER_FILTERS.contains(&f.name.as_str()) {
            ignored.push(ignore::filter("listener_filter", &f.name));
        } else {
            return Err(unsupported(
                &format!("{at}.listener_filters[{i}]"),
                format!("filter {:?}", f.name),
            ));
        }
    }
    let mut chains = take(&mut l.filter_chains);
    if chains.len() != 1 {
        return Err(unsupported(
            &format!("{at}.filter_chains"),
            format!(
                "{} filter chains (ringside takes exactly one)",
                chains.len()
            ),
        ));
    }
    let mut chain = chains.remove(0);
    let cat = format!("{at}.filter_chains[0]");
    if chain
        .filter_chain_match
        .take()
        .is_some_and(|m| m != Default::default())
    {
        return Err(unsupported(
            &format!("{cat}.filter_chain_match"),
            "a filter chain match",
        ));
    }
    chain.name.clear();
    chain.metadata = None;
    if let Some(ts) = chain.transport_socket.take() {
        if let Some(tls) = tls::downstream(ts, &format!("{cat}.transport_socket"))? {
            t.insert("tls".into(), Value::Table(tls));
        }
    }
    let mut terminal = None;
    for (i, f) in take(&mut chain.filters).into_iter().enumerate() {
        let fat = format!("{cat}.filters[{i}]");
        if ignore::NETWORK_FILTERS.contains(&f.name.as_str()) {
            ignored.push(ignore::filter("network_filter", &f.name));
            continue;
        }
        if terminal.is_some() {
            return Err(unsupported(
                &fat,
                format!("filter {:?} after the terminal filter", f.name),
            ));
        }
        terminal = Some(network_filter(f, &fat, &mut t, ignored)?);
    }
    let (routes, tcp_cluster) = terminal.ok_or_else(|| {
        format!("{cat}.filters: a http_connection_manager or tcp_proxy is required by ringside")
    })?;
    leftover(&chain, &cat)?;
    // Informational: the direction Istio gives its listeners.
    l.traffic_direction = 0;
    let fields = [
        ("stat_prefix", !take(&mut l.stat_prefix).is_empty()),
        ("metadata", l.metadata.take().is_some()),
    ];
    ignore::fields(ignored, &fields);
    leftover(&l, &at)?;
    Ok(TListener {
        name: rname,
        table: t,
        routes,
        tcp_cluster,
    })
}

fn typed<M: Message + Name + Default>(any: &Any, at: &str) -> Res<M> {
    if any.type_url != M::type_url() {
        return Err(format!(
            "{at}.typed_config: expected {}, got {}",
            M::type_url(),
            any.type_url
        ));
    }
    M::decode(any.value.as_slice()).map_err(|e| format!("{at}.typed_config: cannot decode: {e}"))
}

fn network_filter(
    f: Filter,
    at: &str,
    t: &mut Table,
    ignored: &mut Vec<String>,
) -> Res<(RouteSource, Option<String>)> {
    let Some(ConfigType::TypedConfig(any)) = f.config_type else {
        return Err(format!("{at}.typed_config: required by ringside"));
    };
    if any.type_url == HttpConnectionManager::type_url() {
        let hcm = typed::<HttpConnectionManager>(&any, at)?;
        t.insert("protocol".into(), string("http"));
        return Ok((http(hcm, at, t, ignored)?, None));
    }
    if any.type_url == TcpProxy::type_url() {
        let mut p = typed::<TcpProxy>(&any, at)?;
        t.insert("protocol".into(), string("tcp"));
        let c = match p.cluster_specifier.take() {
            Some(ClusterSpecifier::Cluster(c)) => c,
            _ => {
                return Err(unsupported(
                    &format!("{at}.weighted_clusters"),
                    "a weighted tcp_proxy",
                ))
            }
        };
        t.insert("cluster".into(), string(name(&c)));
        if let Some(d) = p.idle_timeout.take() {
            t.insert("idle_timeout_ms".into(), int(ms(&d)));
        }
        let fields = [
            ("stat_prefix", !take(&mut p.stat_prefix).is_empty()),
            ("access_log", !take(&mut p.access_log).is_empty()),
        ];
        ignore::fields(ignored, &fields);
        leftover(&p, at)?;
        return Ok((RouteSource::None, Some(c)));
    }
    Err(unsupported(
        at,
        format!("filter {:?} ({})", f.name, any.type_url),
    ))
}

fn http(
    mut h: HttpConnectionManager,
    at: &str,
    t: &mut Table,
    ignored: &mut Vec<String>,
) -> Res<RouteSource> {
    match CodecType::try_from(h.codec_type) {
        Ok(CodecType::Auto | CodecType::Http1 | CodecType::Http2) => h.codec_type = 0,
        _ => return Err(unsupported(&format!("{at}.codec_type"), "HTTP/3")),
    }
    let filters = take(&mut h.http_filters);
    let last = filters.len().saturating_sub(1);
    for (i, f) in filters.into_iter().enumerate() {
        let fat = format!("{at}.http_filters[{i}]");
        if f.name == ROUTER {
            if i != last {
                return Err(unsupported(&fat, "a filter after the router"));
            }
            continue;
        }
        if !ignore::HTTP_FILTERS.contains(&f.name.as_str()) {
            return Err(unsupported(&fat, format!("filter {:?}", f.name)));
        }
        if f.name == FAULT {
            if let Some(HttpConfigType::TypedConfig(any)) = &f.config_type {
                let fault = typed::<HttpFault>(any, &fat)?;
                if fault.delay.is_some()
                    || fault.abort.is_some()
                    || fault.response_rate_limit.is_some()
                {
                    return Err(unsupported(&fat, "a fault filter that injects faults"));
                }
            }
        }
        ignored.push(ignore::filter("http_filter", &f.name));
    }
    let routes = match h.route_specifier.take() {
        Some(RouteSpecifier::Rds(r)) => RouteSource::Rds(r.route_config_name),
        Some(RouteSpecifier::RouteConfig(rc)) => RouteSource::Inline(route_config(rc, ignored)?),
        _ => return Err(format!("{at}: rds or route_config is required by ringside")),
    };
    // WebSocket upgrades are relayed by every ringside listener.
    h.upgrade_configs.retain(|u| {
        !(u.upgrade_type.eq_ignore_ascii_case("websocket")
            && u.filters.is_empty()
            && u.enabled.as_ref().is_none_or(|e| e.value))
    });
    let fields = [
        ("stat_prefix", !take(&mut h.stat_prefix).is_empty()),
        ("access_log", !take(&mut h.access_log).is_empty()),
        ("tracing", h.tracing.take().is_some()),
    ];
    ignore::fields(ignored, &fields);
    hcm::settings(&mut h, at, t, ignored)?;
    leftover(&h, at)?;
    Ok(routes)
}
