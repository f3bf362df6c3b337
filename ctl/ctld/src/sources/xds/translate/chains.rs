//! One filter chain → one ringside listener (a [`TChain`]): its `filter_chain_match` (what
//! its child listener takes: `chain_match.rs`), its TLS transport socket → `tls`
//! (`tls.rs`), and its terminal network filter: a `HttpConnectionManager` (`protocol =
//! "http"`; routes by RDS or inline; connection settings → listener keys in `hcm.rs`) or a
//! `tcp_proxy` (`protocol = "tcp"`, `cluster`, `idle_timeout`). Filters of the ignore list
//! are skipped and counted.

use std::mem::take;

use envoy_types::pb::envoy::config::listener::v3::filter::ConfigType;
use envoy_types::pb::envoy::config::listener::v3::{Filter, FilterChain};
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

use super::chain_match::{chain_match, ChainMatch};
use super::routes::{route_config, TRouteConfig};
use super::{hcm, int, ms, name, string, tls, Table};
use crate::sources::xds::ignore;
use crate::sources::xds::nack::{leftover, unsupported, Res};

const ROUTER: &str = "envoy.filters.http.router";
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

/// One filter chain, translated: one ringside listener.
#[derive(Debug, Clone, PartialEq)]
pub struct TChain {
    /// Its ringside listener's name.
    pub name: String,
    /// Where it comes from, for messages: `listener "l".filter_chains[2]`.
    pub at: String,
    /// What its `filter_chain_match` takes.
    pub matches: ChainMatch,
    /// The `[[listeners]]` table, without `bind`, `parent` and `match`.
    pub table: Table,
    pub routes: RouteSource,
    /// A `tcp` listener's cluster (xDS name).
    pub tcp_cluster: Option<String>,
}

impl TChain {
    /// The same chain as the ringside listener `rname`.
    pub fn named(mut self, rname: String) -> TChain {
        self.table.insert("name".into(), string(rname.clone()));
        self.name = rname;
        self
    }
}

/// A filter chain as the ringside listener `rname`; `at` names it.
pub fn chain(
    mut c: FilterChain,
    rname: String,
    at: String,
    ignored: &mut Vec<String>,
) -> Res<TChain> {
    let matches = chain_match(c.filter_chain_match.take().unwrap_or_default(), &at)?;
    c.name.clear();
    c.metadata = None;
    let mut t = Table::new();
    t.insert("name".into(), string(rname.clone()));
    if let Some(ts) = c.transport_socket.take() {
        if let Some(tls) = tls::downstream(ts, &format!("{at}.transport_socket"))? {
            t.insert("tls".into(), Value::Table(tls));
        }
    }
    let mut terminal = None;
    for (i, f) in take(&mut c.filters).into_iter().enumerate() {
        let fat = format!("{at}.filters[{i}]");
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
        format!("{at}.filters: a http_connection_manager or tcp_proxy is required by ringside")
    })?;
    leftover(&c, &at)?;
    Ok(TChain {
        name: rname,
        at,
        matches,
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
        let p = typed::<TcpProxy>(&any, at)?;
        t.insert("protocol".into(), string("tcp"));
        return Ok((RouteSource::None, Some(tcp(p, at, t, ignored)?)));
    }
    Err(unsupported(
        at,
        format!("filter {:?} ({})", f.name, any.type_url),
    ))
}

/// A `tcp_proxy`: its cluster (xDS name).
fn tcp(mut p: TcpProxy, at: &str, t: &mut Table, ignored: &mut Vec<String>) -> Res<String> {
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
    Ok(c)
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
