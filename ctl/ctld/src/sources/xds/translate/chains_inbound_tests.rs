//! Istio's `virtualInbound`: filter chains matched by what the connection opens with
//! (`transport_protocol`, `application_protocols`, `server_names`) become child listeners
//! with `match.transport`, `alpn` and `server_names`; the result is what ringside's own
//! validation accepts and picks from as Envoy would. The NACKs of these matches are in
//! `chains_nack_tests.rs`.

#![allow(clippy::unwrap_used)]

use envoy_types::pb::envoy::config::core::v3::transport_socket::ConfigType as SocketConfig;
use envoy_types::pb::envoy::config::core::v3::{data_source, DataSource, TransportSocket};
use envoy_types::pb::envoy::config::listener::v3::{Filter, FilterChain, FilterChainMatch};
use envoy_types::pb::envoy::config::route::v3::route::Action;
use envoy_types::pb::envoy::config::route::v3::route_action::ClusterSpecifier as RouteCluster;
use envoy_types::pb::envoy::config::route::v3::{Route, RouteAction, RouteConfiguration, VirtualHost};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::RouteSpecifier;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CommonTlsContext, DownstreamTlsContext, TlsCertificate,
};
use envoy_types::pb::google::protobuf::{Any, UInt32Value};
use prost::{Message, Name};
use ringside_config::{Hello, Transport};

use super::chains_tests::*;

/// A match by destination port (if any), transport and application protocols.
pub(super) fn opening(
    port: Option<u32>,
    transport: &str,
    alpn: &[&str],
) -> Option<FilterChainMatch> {
    Some(FilterChainMatch {
        destination_port: port.map(|value| UInt32Value { value }),
        transport_protocol: transport.into(),
        application_protocols: alpn.iter().map(|a| a.to_string()).collect(),
        ..FilterChainMatch::default()
    })
}

/// An HCM whose inline route configuration `route` sends everything to `cluster`.
fn http_inline(name: &str, route: &str, cluster: &str, m: Option<FilterChainMatch>) -> FilterChain {
    let rc = RouteConfiguration {
        name: route.into(),
        virtual_hosts: vec![VirtualHost {
            name: "inbound|http|8080".into(),
            domains: vec!["*".into()],
            routes: vec![Route {
                action: Some(Action::Route(RouteAction {
                    cluster_specifier: Some(RouteCluster::Cluster(cluster.into())),
                    ..RouteAction::default()
                })),
                ..Route::default()
            }],
            ..VirtualHost::default()
        }],
        ..RouteConfiguration::default()
    };
    let h = HttpConnectionManager {
        stat_prefix: "inbound_0.0.0.0_8080".into(),
        route_specifier: Some(RouteSpecifier::RouteConfig(rc)),
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

/// An inline certificate and key as the chain's TLS context.
fn with_tls(mut c: FilterChain) -> FilterChain {
    let inline = |s: &str| {
        Some(DataSource {
            specifier: Some(data_source::Specifier::InlineString(s.into())),
            ..DataSource::default()
        })
    };
    let ctx = DownstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_certificates: vec![TlsCertificate {
                certificate_chain: inline("CERT"),
                private_key: inline("KEY"),
                ..TlsCertificate::default()
            }],
            ..CommonTlsContext::default()
        }),
        ..DownstreamTlsContext::default()
    };
    c.transport_socket = Some(TransportSocket {
        name: "envoy.transport_sockets.tls".into(),
        config_type: Some(SocketConfig::TypedConfig(Any {
            type_url: DownstreamTlsContext::type_url(),
            value: ctx.encode_to_vec(),
        })),
    });
    c
}

const PASSTHROUGH: &str = "InboundPassthroughCluster";
const ISTIO_ALPN: [&str; 3] = ["istio-http/1.0", "istio-http/1.1", "istio-h2"];

/// Istio's inbound listener under PERMISSIVE mTLS, with one HTTP port, 8080.
pub(super) fn istio_inbound() -> Vec<FilterChain> {
    vec![
        tcp("virtualInbound-blackhole", "BlackHoleCluster", port(15006)),
        tcp(
            "virtualInbound",
            PASSTHROUGH,
            Some(FilterChainMatch::default()),
        ),
        tcp("virtualInbound", PASSTHROUGH, opening(None, "tls", &[])),
        http_inline(
            "virtualInbound-catchall-http",
            "InboundPassthroughCluster",
            PASSTHROUGH,
            opening(None, "raw_buffer", &["http/1.1", "h2c"]),
        ),
        with_tls(http_inline(
            "0.0.0.0_8080",
            "inbound|8080||",
            "inbound|8080||",
            opening(Some(8080), "tls", &ISTIO_ALPN),
        )),
        http_inline(
            "0.0.0.0_8080",
            "inbound|8080||",
            "inbound|8080||",
            opening(Some(8080), "raw_buffer", &[]),
        ),
    ]
}

#[test]
fn istios_inbound_chains_by_transport_and_alpn_become_children_that_validate() {
    let text = built(vec![virtual_inbound(istio_inbound(), None)]).unwrap();
    let start = text.find("[[listeners]]").unwrap();
    let end = text.find("[[routes]]").unwrap();
    assert_eq!(
        &text[start..end],
        r#"[[listeners]]
bind = "0.0.0.0:15006"
cluster = "InboundPassthroughCluster"
name = "virtualInbound"
protocol = "tcp"
transparent = true

[[listeners]]
cluster = "BlackHoleCluster"
name = "virtualInbound.virtualInbound-blackhole"
parent = "virtualInbound"
protocol = "tcp"

[listeners.match]
ports = [15006]

[[listeners]]
cluster = "InboundPassthroughCluster"
name = "virtualInbound.virtualInbound"
parent = "virtualInbound"
protocol = "tcp"

[listeners.match]
transport = "tls"

[[listeners]]
forward_client_cert = "sanitize"
name = "virtualInbound.virtualInbound-catchall-http"
parent = "virtualInbound"
protocol = "http"

[listeners.match]
alpn = ["http/1.1", "h2c"]
transport = "plaintext"

[[listeners]]
forward_client_cert = "sanitize"
name = "virtualInbound.0.0.0.0_8080.tls.istio-http_1.0"
parent = "virtualInbound"
protocol = "http"

[listeners.match]
alpn = ["istio-http/1.0", "istio-http/1.1", "istio-h2"]
ports = [8080]
transport = "tls"

[[listeners.tls.certificates]]
cert_pem = "CERT"
key_pem = "KEY"

[[listeners]]
forward_client_cert = "sanitize"
name = "virtualInbound.0.0.0.0_8080.plaintext"
parent = "virtualInbound"
protocol = "http"

[listeners.match]
ports = [8080]
transport = "plaintext"

"#
    );
    // A real certificate in place of the placeholders, for ringside's validation.
    let c = rcgen::generate_simple_self_signed(vec!["orders".into()]).unwrap();
    let pem = |s: String| toml::Value::String(s).to_string();
    let real = text
        .replace("\"CERT\"", &pem(c.cert.pem()))
        .replace("\"KEY\"", &pem(c.key_pair.serialize_pem()));
    let config = ringside_config::parse(&real).unwrap_or_else(|e| panic!("{e:?}\n{real}"));
    let l = &config.listeners[0];
    assert_eq!(l.name, "virtualInbound");
    let hello = |transport, alpn: &[&str]| Hello {
        transport,
        server_name: None,
        alpn: alpn.iter().map(|a| a.to_string()).collect(),
    };
    let pick = |dst: &str, h: Option<&Hello>| picked(&l.children, dst, h);
    let tls = |alpn| hello(Transport::Tls, alpn);
    let plain = |alpn| hello(Transport::Plaintext, alpn);
    let to = "10.244.0.5:8080";
    assert_eq!(pick(to, None), Some("(inspect)"));
    let mtls_http = Some("virtualInbound.0.0.0.0_8080.tls.istio-http_1.0");
    assert_eq!(pick(to, Some(&tls(&["istio-h2", "h2"]))), mtls_http);
    assert_eq!(
        pick(to, Some(&plain(&["h2c"]))),
        Some("virtualInbound.0.0.0.0_8080.plaintext")
    );
    assert_eq!(
        pick(to, Some(&plain(&[]))),
        Some("virtualInbound.0.0.0.0_8080.plaintext")
    );
    // TLS without Istio's protocols: the port's chains take none, the others do (Envoy's
    // fallback from the port's chains to those naming none).
    assert_eq!(
        pick(to, Some(&tls(&["h2"]))),
        Some("virtualInbound.virtualInbound")
    );
    let to = "10.244.0.5:9090";
    assert_eq!(
        pick(to, Some(&tls(&[]))),
        Some("virtualInbound.virtualInbound")
    );
    assert_eq!(
        pick(to, Some(&plain(&["http/1.1"]))),
        Some("virtualInbound.virtualInbound-catchall-http")
    );
    assert_eq!(
        pick(to, Some(&plain(&[]))),
        None,
        "the listener: passthrough"
    );
    assert_eq!(
        pick("10.244.0.5:15006", None),
        Some("virtualInbound.virtualInbound-blackhole"),
        "no bytes read for a port whose chains do not need them"
    );
    assert!(
        text[end..].contains("listener = \"virtualInbound.virtualInbound-catchall-http\""),
        "{text}"
    );
}

#[test]
fn server_names_are_lower_cased_and_a_chain_by_transport_alone_is_a_child() {
    let names = FilterChainMatch {
        server_names: vec![
            "API.Example.com".into(),
            "*.example.com".into(),
            "api.example.com".into(),
        ],
        ..FilterChainMatch::default()
    };
    let text = built(vec![virtual_inbound(
        vec![
            tcp("sni", "orders", Some(names)),
            tcp("tls", "orders", opening(None, "tls", &[])),
        ],
        Some(tcp("rest", PASSTHROUGH, None)),
    )])
    .unwrap();
    assert!(
        text.contains(
            "[listeners.match]\nserver_names = [\"api.example.com\", \"*.example.com\"]\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("[listeners.match]\ntransport = \"tls\"\n"),
        "{text}"
    );
    let config = ringside_config::parse(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    let l = &config.listeners[0];
    let sni = |name: &str| Hello {
        transport: Transport::Tls,
        server_name: Some(name.into()),
        alpn: Vec::new(),
    };
    let to = "10.0.0.1:443";
    assert_eq!(
        picked(&l.children, to, Some(&sni("www.example.com"))),
        Some("virtualInbound.sni")
    );
    assert_eq!(
        picked(&l.children, to, Some(&sni("example.org"))),
        Some("virtualInbound.tls")
    );
}

/// Istio's outbound protocol sniffing: a `bind_to_port: false` listener's HTTP chain by the
/// HTTP inspector's protocols (any transport: with `raw_buffer` named, a plaintext
/// connection that is not HTTP would end there, in Envoy as in ringside) beside its TCP
/// chain, both children at the port.
#[test]
fn a_receivers_chains_by_alpn_are_children_at_its_port() {
    let sniffed = receiver(
        "0.0.0.0_8080",
        "0.0.0.0",
        8080,
        vec![
            http(
                "0.0.0.0_8080",
                "8080",
                opening(None, "", &["http/1.0", "http/1.1", "h2c"]),
            ),
            tcp("0.0.0.0_8080", "PassthroughCluster", None),
        ],
    );
    let text = built(vec![virtual_outbound("virtualOutbound"), sniffed]).unwrap();
    let config = ringside_config::parse(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    let plain = |alpn: &[&str]| Hello {
        transport: Transport::Plaintext,
        server_name: None,
        alpn: alpn.iter().map(|a| a.to_string()).collect(),
    };
    let children = &config.listeners[0].children;
    let to = "10.96.0.7:8080";
    assert_eq!(picked(children, to, None), Some("(inspect)"));
    let http = picked(children, to, Some(&plain(&["h2c"])));
    assert_eq!(http, Some("0.0.0.0_8080.0.0.0.0_8080.http_1.0"));
    let tcp = picked(children, to, Some(&plain(&[])));
    assert_eq!(tcp, Some("0.0.0.0_8080.0.0.0.0_8080"));
}

/// Envoy's listener filter timeout becomes the parent's wait for first bytes: a bound
/// listener's own, or for the hand-off listener its receivers' (where Istio sets it).
#[test]
fn the_listener_filter_timeout_is_the_parents_wait() {
    use envoy_types::pb::google::protobuf::Duration;
    let mut inbound = virtual_inbound(istio_inbound(), None);
    inbound.listener_filters_timeout = Some(Duration::default());
    inbound.continue_on_listener_filters_timeout = true;
    let text = built(vec![inbound]).unwrap();
    assert!(
        text.contains(
            "inspect_on_timeout = \"continue\"\ninspect_timeout_ms = 0\nname = \"virtualInbound\""
        ),
        "{text}"
    );
    let c = rcgen::generate_simple_self_signed(vec!["orders".into()]).unwrap();
    let pem = |s: String| toml::Value::String(s).to_string();
    let text = text
        .replace("\"CERT\"", &pem(c.cert.pem()))
        .replace("\"KEY\"", &pem(c.key_pair.serialize_pem()));
    let config = ringside_config::parse(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    let how = config.listeners[0].inspect;
    assert!(!how.close_on_timeout);

    let mut sniffed = receiver(
        "0.0.0.0_8080",
        "0.0.0.0",
        8080,
        vec![
            http(
                "0.0.0.0_8080",
                "8080",
                opening(None, "", &["http/1.1", "h2c"]),
            ),
            tcp("0.0.0.0_8080", "PassthroughCluster", None),
        ],
    );
    sniffed.listener_filters_timeout = Some(Duration {
        seconds: 5,
        nanos: 0,
    });
    let text = built(vec![virtual_outbound("virtualOutbound"), sniffed]).unwrap();
    let config = ringside_config::parse(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    let how = config.listeners[0].inspect;
    assert_eq!(
        (how.timeout.as_millis(), how.close_on_timeout),
        (5000, true)
    );
}

/// A push that adds another port's chains ahead of 8080's renames none of 8080's children
/// (a renamed child would close its keep-alive connections).
#[test]
fn a_childs_name_does_not_move_when_other_chains_come_and_go() {
    let names = |chains: Vec<FilterChain>| -> Vec<String> {
        let text = built(vec![virtual_inbound(chains, None)]).unwrap();
        text.lines()
            .filter_map(|l| l.strip_prefix("name = \"virtualInbound.0.0.0.0_"))
            .map(|n| n.trim_end_matches('"').to_string())
            .collect()
    };
    let before = names(istio_inbound());
    assert_eq!(before, ["8080.tls.istio-http_1.0", "8080.plaintext"]);
    let mut more = istio_inbound();
    let other = |transport, alpn: &[&str]| {
        http_inline(
            "0.0.0.0_9090",
            "inbound|9090||",
            "inbound|8080||",
            opening(Some(9090), transport, alpn),
        )
    };
    more.insert(2, other("raw_buffer", &[]));
    more.insert(2, other("tls", &ISTIO_ALPN));
    let after = names(more);
    assert_eq!(
        after,
        [
            "9090.tls.istio-http_1.0",
            "9090.plaintext",
            "8080.tls.istio-http_1.0",
            "8080.plaintext"
        ]
    );
}
