//! The ADS conversation without a network: subscriptions in Envoy's order, ACKs and NACKs
//! with version and nonce, and a configuration published only when complete.

#![allow(clippy::unwrap_used)]

use envoy_types::pb::envoy::config::cluster::v3::cluster::{ClusterDiscoveryType, DiscoveryType};
use envoy_types::pb::envoy::config::core::v3::address::Address as Addr;
use envoy_types::pb::envoy::config::core::v3::socket_address::PortSpecifier;
use envoy_types::pb::envoy::config::core::v3::{Address, SocketAddress};
use envoy_types::pb::envoy::config::listener::v3::filter::ConfigType;
use envoy_types::pb::envoy::config::listener::v3::{Filter, FilterChain};
use envoy_types::pb::envoy::config::route::v3::route::Action;
use envoy_types::pb::envoy::config::route::v3::route_action::{ClusterSpecifier, HashPolicy};
use envoy_types::pb::envoy::config::route::v3::{Route, RouteAction, VirtualHost};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::RouteSpecifier;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, Rds,
};

use super::*;

fn any<M: Message + Name>(m: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: m.encode_to_vec(),
    }
}

fn response(kind: Kind, version: &str, nonce: &str, resources: Vec<Any>) -> DiscoveryResponse {
    DiscoveryResponse {
        version_info: version.into(),
        type_url: kind.type_url(),
        nonce: nonce.into(),
        resources,
        ..DiscoveryResponse::default()
    }
}

fn eds_cluster(name: &str) -> Any {
    any(&Cluster {
        name: name.into(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32)),
        ..Cluster::default()
    })
}

fn listener(rds: &str) -> Any {
    let hcm = HttpConnectionManager {
        route_specifier: Some(RouteSpecifier::Rds(Rds {
            route_config_name: rds.into(),
            ..Rds::default()
        })),
        ..HttpConnectionManager::default()
    };
    any(&Listener {
        name: "l".into(),
        address: Some(Address {
            address: Some(Addr::SocketAddress(SocketAddress {
                address: "127.0.0.1".into(),
                port_specifier: Some(PortSpecifier::PortValue(0)),
                ..SocketAddress::default()
            })),
        }),
        filter_chains: vec![FilterChain {
            filters: vec![Filter {
                name: "hcm".into(),
                config_type: Some(ConfigType::TypedConfig(any(&hcm))),
            }],
            ..FilterChain::default()
        }],
        ..Listener::default()
    })
}

fn routes(name: &str, cluster: &str, hash: bool) -> Any {
    let action = RouteAction {
        cluster_specifier: Some(ClusterSpecifier::Cluster(cluster.into())),
        hash_policy: if hash {
            vec![HashPolicy::default()]
        } else {
            Vec::new()
        },
        ..RouteAction::default()
    };
    any(&RouteConfiguration {
        name: name.into(),
        virtual_hosts: vec![VirtualHost {
            name: "v".into(),
            domains: vec!["*".into()],
            routes: vec![Route {
                action: Some(Action::Route(action)),
                ..Route::default()
            }],
            ..VirtualHost::default()
        }],
        ..RouteConfiguration::default()
    })
}

fn cla(name: &str) -> Any {
    any(&ClusterLoadAssignment {
        cluster_name: name.into(),
        ..ClusterLoadAssignment::default()
    })
}

/// (type, version, nonce, names, error) of a request.
type Shown = (Option<Kind>, String, String, Vec<String>, bool);

fn shown(reqs: &[DiscoveryRequest]) -> Vec<Shown> {
    reqs.iter()
        .map(|r| {
            let kind = Kind::of(&r.type_url);
            let v = (r.version_info.clone(), r.response_nonce.clone());
            (
                kind,
                v.0,
                v.1,
                r.resource_names.clone(),
                r.error_detail.is_some(),
            )
        })
        .collect()
}

#[test]
fn subscribes_in_envoys_order_and_publishes_only_a_complete_configuration() {
    let mut s = NodeState::new(Node::default(), Some("[proxy]\nworkers = 1\n".into()));
    let open = shown(&s.opening());
    assert_eq!(
        open.iter().map(|r| r.0).collect::<Vec<_>>(),
        [Some(Kind::Cds), Some(Kind::Lds)]
    );

    let step = s.on_response(response(Kind::Cds, "1", "n1", vec![eds_cluster("a")]));
    assert_eq!(step.outcome, Some((Kind::Cds, "ack")));
    assert_eq!(
        shown(&step.requests),
        [
            (Some(Kind::Cds), "1".into(), "n1".into(), vec![], false),
            (
                Some(Kind::Eds),
                String::new(),
                String::new(),
                vec!["a".into()],
                false
            ),
        ]
    );
    assert!(step.publish.is_none(), "no listener yet");

    let step = s.on_response(response(Kind::Lds, "1", "n2", vec![listener("r1")]));
    assert_eq!(step.outcome, Some((Kind::Lds, "ack")));
    assert_eq!(shown(&step.requests)[1].3, ["r1"], "RDS asked for r1");
    assert_eq!(step.detail.as_deref(), Some("route_config \"r1\""));
    assert!(step.publish.is_none());

    let step = s.on_response(response(
        Kind::Rds,
        "1",
        "n3",
        vec![routes("r1", "a", false)],
    ));
    assert_eq!(step.outcome, Some((Kind::Rds, "ack")));
    assert_eq!(
        step.detail.as_deref(),
        Some("cluster_load_assignment \"a\""),
        "waits for EDS"
    );
    assert!(step.publish.is_none());

    let step = s.on_response(response(Kind::Eds, "1", "n4", vec![cla("a")]));
    let text = step.publish.expect("complete");
    assert!(text.starts_with("[proxy]\nworkers = 1\n"), "{text}");
    assert!(
        text.contains("[[clusters]]") && text.contains("[[routes]]"),
        "{text}"
    );

    // The same resources again: acknowledged, nothing new to publish.
    let step = s.on_response(response(Kind::Eds, "2", "n5", vec![cla("a")]));
    assert_eq!(step.outcome, Some((Kind::Eds, "ack")));
    assert!(step.publish.is_none());
}

#[test]
fn a_nack_keeps_the_last_version_and_the_resources() {
    let mut s = NodeState::new(Node::default(), None);
    s.opening();
    s.on_response(response(Kind::Cds, "1", "n1", vec![eds_cluster("a")]));
    let step = s.on_response(response(Kind::Eds, "1", "n2", vec![cla("a")]));
    assert_eq!(step.outcome, Some((Kind::Eds, "ack")), "{:?}", step.detail);
    s.on_response(response(Kind::Lds, "1", "n3", vec![listener("r1")]));
    let step = s.on_response(response(
        Kind::Rds,
        "1",
        "n4",
        vec![routes("r1", "a", false)],
    ));
    assert!(step.publish.is_some(), "{:?}", step.detail);

    let step = s.on_response(response(
        Kind::Rds,
        "2",
        "n5",
        vec![routes("r1", "a", true)],
    ));
    assert_eq!(step.outcome, Some((Kind::Rds, "nack")));
    assert_eq!(
        shown(&step.requests),
        [(
            Some(Kind::Rds),
            "1".into(),
            "n5".into(),
            vec!["r1".into()],
            true
        )]
    );
    assert_eq!(
        step.requests[0].error_detail.as_ref().unwrap().message,
        "route_config \"r1\": virtual_hosts[0].routes[0].route.hash_policy: not supported by ringside"
    );
    let step = s.on_response(response(
        Kind::Rds,
        "3",
        "n6",
        vec![routes("r1", "b", false)],
    ));
    assert_eq!(
        step.outcome,
        Some((Kind::Rds, "nack")),
        "cluster b is not in CDS"
    );
    assert!(step
        .detail
        .unwrap()
        .contains("cluster \"b\" is not among the clusters"));

    // A CDS change that drops a cluster in use is accepted, and waits.
    let step = s.on_response(response(Kind::Cds, "2", "n7", vec![eds_cluster("c")]));
    assert_eq!(step.outcome, Some((Kind::Cds, "ack")));
    assert!(step.publish.is_none());
    assert_eq!(
        shown(&step.requests)[1].3,
        ["c"],
        "EDS asked for c instead of a"
    );

    // A type never asked for is NACKed by its own type URL.
    let mut odd = response(Kind::Cds, "1", "n8", Vec::new());
    odd.type_url = "type.googleapis.com/envoy.service.runtime.v3.Runtime".into();
    let step = s.on_response(odd);
    assert!(step.requests[0].error_detail.is_some());
    assert_eq!(step.requests[0].response_nonce, "n8");
}

fn tls_listener(rds: &str, secret: &str) -> Any {
    use envoy_types::pb::envoy::config::core::v3::config_source::ConfigSourceSpecifier;
    use envoy_types::pb::envoy::config::core::v3::{
        transport_socket, AggregatedConfigSource, ConfigSource, TransportSocket,
    };
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
        CommonTlsContext, DownstreamTlsContext, SdsSecretConfig,
    };
    let ctx = DownstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_certificate_sds_secret_configs: vec![SdsSecretConfig {
                name: secret.into(),
                sds_config: Some(ConfigSource {
                    config_source_specifier: Some(ConfigSourceSpecifier::Ads(
                        AggregatedConfigSource::default(),
                    )),
                    ..ConfigSource::default()
                }),
            }],
            ..CommonTlsContext::default()
        }),
        ..DownstreamTlsContext::default()
    };
    let mut l = Listener::decode(listener(rds).value.as_slice()).unwrap();
    l.filter_chains[0].transport_socket = Some(TransportSocket {
        name: "tls".into(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(any(&ctx))),
    });
    any(&l)
}

/// A self-signed certificate and its key, PEM.
fn pem() -> (String, String) {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    (c.cert.pem(), c.key_pair.serialize_pem())
}

fn secret(name: &str, (cert, key): &(String, String)) -> Any {
    use envoy_types::pb::envoy::config::core::v3::{data_source::Specifier, DataSource};
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{secret, TlsCertificate};
    let inline = |s: &str| {
        Some(DataSource {
            specifier: Some(Specifier::InlineString(s.into())),
            ..DataSource::default()
        })
    };
    any(&Secret {
        name: name.into(),
        r#type: Some(secret::Type::TlsCertificate(TlsCertificate {
            certificate_chain: inline(cert),
            private_key: inline(key),
            ..TlsCertificate::default()
        })),
    })
}

#[test]
fn sds_secrets_are_asked_for_awaited_and_rotated() {
    let mut s = NodeState::new(Node::default(), None);
    s.opening();
    s.on_response(response(Kind::Cds, "1", "n1", vec![eds_cluster("a")]));
    s.on_response(response(Kind::Eds, "1", "n2", vec![cla("a")]));
    s.on_response(response(
        Kind::Rds,
        "1",
        "n3",
        vec![routes("r1", "a", false)],
    ));
    let step = s.on_response(response(
        Kind::Lds,
        "1",
        "n4",
        vec![tls_listener("r1", "cert")],
    ));
    assert_eq!(step.outcome, Some((Kind::Lds, "ack")), "{:?}", step.detail);
    assert_eq!(step.publish, None);
    assert_eq!(step.detail.as_deref(), Some("secret \"cert\""));
    let asked = shown(&step.requests);
    assert!(
        asked.contains(&(
            Some(Kind::Sds),
            String::new(),
            String::new(),
            vec!["cert".into()],
            false
        )),
        "{asked:?}"
    );

    let (one, two) = (pem(), pem());
    let step = s.on_response(response(Kind::Sds, "1", "n5", vec![secret("cert", &one)]));
    assert_eq!(step.outcome, Some((Kind::Sds, "ack")), "{:?}", step.detail);
    let text = step.publish.unwrap();
    let doc: toml::Table = text.parse().unwrap();
    let certs = &doc["listeners"][0]["tls"]["certificates"];
    assert_eq!(
        certs[0]["cert_pem"].as_str(),
        Some(one.0.as_str()),
        "{text}"
    );
    assert_eq!(certs[0]["key_pem"].as_str(), Some(one.1.as_str()), "{text}");
    assert!(!text.contains("sds_"), "{text}");

    // Rotation: a new version of the secret is a new configuration.
    let step = s.on_response(response(Kind::Sds, "2", "n6", vec![secret("cert", &two)]));
    let doc: toml::Table = step.publish.unwrap().parse().unwrap();
    let certs = &doc["listeners"][0]["tls"]["certificates"];
    assert_eq!(certs[0]["cert_pem"].as_str(), Some(two.0.as_str()));

    // Unsupported secret fields are refused by field; the last secret stays.
    let mut bad = Secret::decode(secret("cert", &pem()).value.as_slice()).unwrap();
    if let Some(envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::secret::Type::TlsCertificate(tc)) = &mut bad.r#type {
        tc.password = tc.private_key.clone();
    }
    let step = s.on_response(response(Kind::Sds, "3", "n7", vec![any(&bad)]));
    assert_eq!(step.outcome, Some((Kind::Sds, "nack")));
    assert_eq!(
        step.detail.as_deref(),
        Some("secret \"cert\".tls_certificate.password: not supported by ringside")
    );
    assert_eq!(shown(&step.requests)[0].1, "2");
}
