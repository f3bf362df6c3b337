//! Istio's listener layout: the `use_original_dst` listener as the parent of the
//! `bind_to_port: false` listeners' chains, filter chains matched by destination port and
//! address as children, the result accepted by ringside's own validation; and the NACK of
//! each match ringside cannot take, naming its field.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::cluster::v3::cluster::{
    ClusterDiscoveryType, DiscoveryType, LbPolicy,
};
use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::address::Address as Addr;
use envoy_types::pb::envoy::config::core::v3::socket_address::PortSpecifier;
use envoy_types::pb::envoy::config::core::v3::{Address, CidrRange, SocketAddress};
use envoy_types::pb::envoy::config::listener::v3::filter::ConfigType;
use envoy_types::pb::envoy::config::listener::v3::{
    Filter, FilterChain, FilterChainMatch, Listener, ListenerFilter,
};
use envoy_types::pb::envoy::config::route::v3::route::Action;
use envoy_types::pb::envoy::config::route::v3::route_action::ClusterSpecifier as RouteCluster;
use envoy_types::pb::envoy::config::route::v3::{Route, RouteAction, RouteConfiguration, VirtualHost};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::RouteSpecifier;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, Rds,
};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::tcp_proxy::ClusterSpecifier;
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;
use envoy_types::pb::google::protobuf::{Any, BoolValue, UInt32Value};
use prost::{Message, Name};

use super::*;

pub(super) fn any<M: Message + Name>(m: &M) -> Option<ConfigType> {
    Some(ConfigType::TypedConfig(Any {
        type_url: M::type_url(),
        value: m.encode_to_vec(),
    }))
}

pub(super) fn tcp(name: &str, cluster: &str, m: Option<FilterChainMatch>) -> FilterChain {
    let p = TcpProxy {
        stat_prefix: cluster.into(),
        cluster_specifier: Some(ClusterSpecifier::Cluster(cluster.into())),
        ..TcpProxy::default()
    };
    FilterChain {
        name: name.into(),
        filter_chain_match: m,
        filters: vec![Filter {
            name: "envoy.filters.network.tcp_proxy".into(),
            config_type: any(&p),
        }],
        ..FilterChain::default()
    }
}

pub(super) fn http(name: &str, rds: &str, m: Option<FilterChainMatch>) -> FilterChain {
    let h = HttpConnectionManager {
        stat_prefix: "outbound".into(),
        route_specifier: Some(RouteSpecifier::Rds(Rds {
            route_config_name: rds.into(),
            ..Rds::default()
        })),
        ..HttpConnectionManager::default()
    };
    FilterChain {
        name: name.into(),
        filter_chain_match: m,
        filters: vec![Filter {
            name: "envoy.filters.network.http_connection_manager".into(),
            config_type: any(&h),
        }],
        ..FilterChain::default()
    }
}

pub(super) fn port(p: u32) -> Option<FilterChainMatch> {
    Some(FilterChainMatch {
        destination_port: Some(UInt32Value { value: p }),
        ..FilterChainMatch::default()
    })
}

pub(super) fn prefixes(blocks: &[(&str, u32)]) -> Option<FilterChainMatch> {
    let prefix_ranges = blocks
        .iter()
        .map(|(ip, len)| CidrRange {
            address_prefix: (*ip).into(),
            prefix_len: Some(UInt32Value { value: *len }),
        })
        .collect();
    Some(FilterChainMatch {
        prefix_ranges,
        ..FilterChainMatch::default()
    })
}

pub(super) fn at(ip: &str, port: u32) -> Option<Address> {
    Some(Address {
        address: Some(Addr::SocketAddress(SocketAddress {
            address: ip.into(),
            port_specifier: Some(PortSpecifier::PortValue(port)),
            ..SocketAddress::default()
        })),
    })
}

const ORIGINAL_DST: &str = "envoy.filters.listener.original_dst";

/// Istio's `virtualOutbound`: the hand-off, a blackhole for its own port, passthrough.
pub(super) fn virtual_outbound(name: &str) -> Listener {
    Listener {
        name: name.into(),
        address: at("0.0.0.0", 15001),
        use_original_dst: Some(BoolValue { value: true }),
        listener_filters: vec![ListenerFilter {
            name: ORIGINAL_DST.into(),
            ..ListenerFilter::default()
        }],
        filter_chains: vec![
            tcp("virtualOutbound-blackhole", "BlackHoleCluster", port(15001)),
            tcp("virtualOutbound-catchall-tcp", "PassthroughCluster", None),
        ],
        ..Listener::default()
    }
}

/// A `bind_to_port: false` listener.
pub(super) fn receiver(name: &str, ip: &str, port: u32, chains: Vec<FilterChain>) -> Listener {
    Listener {
        name: name.into(),
        address: at(ip, port),
        bind_to_port: Some(BoolValue { value: false }),
        filter_chains: chains,
        ..Listener::default()
    }
}

fn cluster(name: &str, kind: DiscoveryType) -> (String, clusters::TCluster) {
    let c = Cluster {
        name: name.into(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(kind as i32)),
        lb_policy: if kind == DiscoveryType::OriginalDst {
            LbPolicy::ClusterProvided as i32
        } else {
            0
        },
        ..Cluster::default()
    };
    (name.into(), clusters::cluster(c, &mut Vec::new()).unwrap())
}

fn route_8080() -> routes::TRouteConfig {
    let rc = RouteConfiguration {
        name: "8080".into(),
        virtual_hosts: vec![VirtualHost {
            name: "orders".into(),
            domains: vec!["*".into()],
            routes: vec![Route {
                action: Some(Action::Route(RouteAction {
                    cluster_specifier: Some(RouteCluster::Cluster("orders".into())),
                    ..RouteAction::default()
                })),
                ..Route::default()
            }],
            ..VirtualHost::default()
        }],
        ..RouteConfiguration::default()
    };
    routes::route_config(rc, &mut Vec::new()).unwrap()
}

/// The listener `children` picks for a connection to `dst` that opened with `hello`; `None`:
/// the parent.
pub(super) fn picked<'a>(
    children: &'a ringside_config::Children,
    dst: &str,
    hello: Option<&ringside_config::Hello>,
) -> Option<&'a str> {
    match children.pick(dst.parse().unwrap(), hello) {
        ringside_config::Pick::Child(name) => Some(name),
        ringside_config::Pick::Parent => None,
        ringside_config::Pick::Inspect => Some("(inspect)"),
    }
}

/// The listeners translated with Istio's clusters and route `8080`; what `build` makes.
pub(super) fn built(ls: Vec<Listener>) -> Result<String, String> {
    let mut t = Translated::default();
    for l in ls {
        let name = l.name.clone();
        t.listeners
            .insert(name, listeners::listener(l, &mut Vec::new())?);
    }
    t.clusters = BTreeMap::from([
        cluster("BlackHoleCluster", DiscoveryType::Static),
        cluster("PassthroughCluster", DiscoveryType::OriginalDst),
        cluster("InboundPassthroughCluster", DiscoveryType::OriginalDst),
        cluster("inbound|8080||", DiscoveryType::Static),
        cluster("orders", DiscoveryType::Static),
        cluster("outbound|9000||db", DiscoveryType::Static),
    ]);
    t.routes.insert("8080".into(), route_8080());
    match build(&t)? {
        Built::Ready(text) => Ok(text),
        other => panic!("{other:?}"),
    }
}

fn istio() -> Vec<Listener> {
    vec![
        virtual_outbound("virtualOutbound"),
        receiver(
            "0.0.0.0_8080",
            "0.0.0.0",
            8080,
            vec![http("", "8080", None)],
        ),
        receiver(
            "10.96.0.10_9000",
            "10.96.0.10",
            9000,
            vec![tcp("", "outbound|9000||db", None)],
        ),
        receiver(
            "0.0.0.0_7070",
            "0.0.0.0",
            7070,
            vec![
                tcp("svc", "orders", prefixes(&[("10.96.1.2", 12)])),
                tcp("rest", "PassthroughCluster", prefixes(&[("0.0.0.0", 0)])),
            ],
        ),
    ]
}

#[test]
fn istios_layout_becomes_a_parent_and_its_children_that_validate() {
    let text = built(istio()).unwrap();
    let start = text.find("[[listeners]]").unwrap();
    let end = text.find("[[routes]]").unwrap();
    assert_eq!(
        &text[start..end],
        r#"[[listeners]]
bind = "0.0.0.0:15001"
cluster = "PassthroughCluster"
name = "virtualOutbound"
protocol = "tcp"
transparent = true

[[listeners]]
cluster = "orders"
name = "0.0.0.0_7070.svc"
parent = "virtualOutbound"
protocol = "tcp"

[listeners.match]
addresses = ["10.96.0.0/12"]
ports = [7070]

[[listeners]]
cluster = "PassthroughCluster"
name = "0.0.0.0_7070.rest"
parent = "virtualOutbound"
protocol = "tcp"

[listeners.match]
addresses = ["0.0.0.0/0"]
ports = [7070]

[[listeners]]
forward_client_cert = "sanitize"
name = "0.0.0.0_8080"
parent = "virtualOutbound"
protocol = "http"

[listeners.match]
addresses = ["0.0.0.0/0"]
ports = [8080]

[[listeners]]
cluster = "outbound_9000__db"
name = "10.96.0.10_9000"
parent = "virtualOutbound"
protocol = "tcp"

[listeners.match]
addresses = ["10.96.0.10/32"]
ports = [9000]

[[listeners]]
cluster = "BlackHoleCluster"
name = "virtualOutbound.virtualOutbound-blackhole"
parent = "virtualOutbound"
protocol = "tcp"

[listeners.match]
ports = [15001]

"#
    );
    let config = ringside_config::parse(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    let parent = &config.listeners[0];
    let pick = |dst: &str| picked(&parent.children, dst, None);
    assert_eq!(pick("10.96.0.10:8080"), Some("0.0.0.0_8080"));
    assert_eq!(pick("10.96.0.10:9000"), Some("10.96.0.10_9000"));
    assert_eq!(pick("10.96.0.11:9000"), None, "the parent's passthrough");
    assert_eq!(pick("10.96.5.5:7070"), Some("0.0.0.0_7070.svc"));
    assert_eq!(pick("192.168.0.1:7070"), Some("0.0.0.0_7070.rest"));
    assert_eq!(
        pick("127.0.0.1:15001"),
        Some("virtualOutbound.virtualOutbound-blackhole")
    );
    assert!(
        text[end..].contains("listener = \"0.0.0.0_8080\""),
        "{text}"
    );
}

/// Istio's `virtualInbound` shape: a transparent listener that binds, chains by
/// destination port, the rest to a default chain.
pub(super) fn virtual_inbound(chains: Vec<FilterChain>, default: Option<FilterChain>) -> Listener {
    Listener {
        name: "virtualInbound".into(),
        address: at("0.0.0.0", 15006),
        listener_filters: vec![ListenerFilter {
            name: ORIGINAL_DST.into(),
            ..ListenerFilter::default()
        }],
        filter_chains: chains,
        default_filter_chain: default,
        ..Listener::default()
    }
}

#[test]
fn a_transparent_listeners_chains_by_port_are_its_children() {
    let inbound = virtual_inbound(
        vec![
            tcp("virtualInbound-blackhole", "BlackHoleCluster", port(15006)),
            http("0.0.0.0_8080", "8080", port(8080)),
            // Host bits past the length are cleared, as Envoy does.
            tcp("pods", "orders", prefixes(&[("10.244.3.4", 16)])),
        ],
        Some(tcp("passthrough", "PassthroughCluster", None)),
    );
    let text = built(vec![inbound]).unwrap();
    let config = ringside_config::parse(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    let l = &config.listeners[0];
    assert_eq!(l.name, "virtualInbound");
    assert!(l.transparent);
    let pick = |dst: &str| picked(&l.children, dst, None);
    assert_eq!(pick("10.244.0.1:8080"), Some("virtualInbound.0.0.0.0_8080"));
    assert_eq!(pick("10.244.0.1:9090"), Some("virtualInbound.pods"));
    assert_eq!(
        pick("127.0.0.1:15006"),
        Some("virtualInbound.virtualInbound-blackhole")
    );
    assert_eq!(
        pick("192.168.0.1:9090"),
        None,
        "the default chain: the listener itself"
    );
    assert!(text.contains("addresses = [\"10.244.0.0/16\"]"), "{text}");
}
