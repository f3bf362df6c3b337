//! The ADS conversation without a network: subscriptions in Envoy's order, ACKs and NACKs
//! with version and nonce, and a configuration published only when complete.

#![allow(clippy::unwrap_used)]

use envoy_types::pb::envoy::config::cluster::v3::cluster::{ClusterDiscoveryType, DiscoveryType};
use envoy_types::pb::envoy::config::core::v3::address::Address as Addr;
use envoy_types::pb::envoy::config::core::v3::config_source::ConfigSourceSpecifier;
use envoy_types::pb::envoy::config::core::v3::ApiVersion;
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

use envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryResponse;

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

/// A state-of-the-world request.
fn sotw(r: &Request) -> &DiscoveryRequest {
    match r {
        Request::Sotw(r) => r,
        Request::Delta(r) => panic!("a delta request on a state-of-the-world stream: {r:?}"),
    }
}

fn shown(reqs: &[Request]) -> Vec<Shown> {
    reqs.iter()
        .map(sotw)
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
    let mut s = NodeState::new(
        Node::default(),
        Some("[proxy]\nworkers = 1\n".into()),
        false,
    );
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
    let mut s = NodeState::new(Node::default(), None, false);
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
        sotw(&step.requests[0]).error_detail.as_ref().unwrap().message,
        "route_config \"r1\": virtual_hosts[0].routes[0].route.hash_policy[0]: a hash policy with nothing to hash"
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
    assert!(sotw(&step.requests[0]).error_detail.is_some());
    assert_eq!(sotw(&step.requests[0]).response_nonce, "n8");
}

fn tls_listener(rds: &str, secret: &str) -> Any {
    use envoy_types::pb::envoy::config::core::v3::AggregatedConfigSource;
    tls_listener_from(
        rds,
        secret,
        ConfigSourceSpecifier::Ads(AggregatedConfigSource::default()),
    )
}

/// The `sds_config` istiod writes: gRPC to the bootstrap's `sds-grpc` cluster.
fn istio_sds() -> ConfigSourceSpecifier {
    use envoy_types::pb::envoy::config::core::v3::api_config_source::ApiType;
    use envoy_types::pb::envoy::config::core::v3::grpc_service::{EnvoyGrpc, TargetSpecifier};
    use envoy_types::pb::envoy::config::core::v3::{ApiConfigSource, ApiVersion, GrpcService};
    ConfigSourceSpecifier::ApiConfigSource(ApiConfigSource {
        api_type: ApiType::Grpc as i32,
        transport_api_version: ApiVersion::V3 as i32,
        set_node_on_first_message_only: true,
        grpc_services: vec![GrpcService {
            target_specifier: Some(TargetSpecifier::EnvoyGrpc(EnvoyGrpc {
                cluster_name: "sds-grpc".into(),
                ..EnvoyGrpc::default()
            })),
            ..GrpcService::default()
        }],
        ..ApiConfigSource::default()
    })
}

fn tls_listener_from(rds: &str, secret: &str, source: ConfigSourceSpecifier) -> Any {
    use envoy_types::pb::envoy::config::core::v3::{
        transport_socket, ConfigSource, TransportSocket,
    };
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
        CommonTlsContext, DownstreamTlsContext, SdsSecretConfig,
    };
    let ctx = DownstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_certificate_sds_secret_configs: vec![SdsSecretConfig {
                name: secret.into(),
                sds_config: Some(ConfigSource {
                    config_source_specifier: Some(source),
                    resource_api_version: ApiVersion::V3 as i32,
                    initial_fetch_timeout: Some(Default::default()),
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

/// A certificate secret with a `password`, which ringside refuses by field.
fn password_protected(name: &str) -> Secret {
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::secret::Type;
    let mut bad = Secret::decode(secret(name, &pem()).value.as_slice()).unwrap();
    if let Some(Type::TlsCertificate(tc)) = &mut bad.r#type {
        tc.password = tc.private_key.clone();
    }
    bad
}

#[test]
fn sds_secrets_are_asked_for_awaited_and_rotated() {
    let mut s = NodeState::new(Node::default(), None, false);
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
    let bad = password_protected("cert");
    let step = s.on_response(response(Kind::Sds, "3", "n7", vec![any(&bad)]));
    assert_eq!(step.outcome, Some((Kind::Sds, "nack")));
    assert_eq!(
        step.detail.as_deref(),
        Some("secret \"cert\".tls_certificate.password: not supported by ringside")
    );
    assert_eq!(shown(&step.requests)[0].1, "2");
}

/// A node whose TLS listener names its certificate by Istio's `sds-grpc`: until then, LDS
/// waits for the certificate.
fn istio_node(local_sds: bool) -> (NodeState, Step) {
    let mut s = NodeState::new(Node::default(), None, false).with_local_sds(local_sds);
    s.opening();
    s.on_response(response(Kind::Cds, "1", "n1", vec![eds_cluster("a")]));
    s.on_response(response(Kind::Eds, "1", "n2", vec![cla("a")]));
    s.on_response(response(
        Kind::Rds,
        "1",
        "n3",
        vec![routes("r1", "a", false)],
    ));
    let l = tls_listener_from("r1", "default", istio_sds());
    let step = s.on_response(response(Kind::Lds, "1", "n4", vec![l]));
    (s, step)
}

#[test]
fn secrets_of_the_local_sds_server_come_on_their_own_stream() {
    // Without --xds-sds, the listener is refused, naming what is missing.
    let (_, step) = istio_node(false);
    assert_eq!(step.outcome, Some((Kind::Lds, "nack")));
    let detail = step.detail.unwrap();
    assert!(
        detail.starts_with(
            "listener \"l\": secret \"default\" comes from the SDS server \"sds-grpc\""
        ) && detail.contains("--xds-sds"),
        "{detail}"
    );

    let (mut s, step) = istio_node(true);
    assert_eq!(step.outcome, Some((Kind::Lds, "ack")), "{:?}", step.detail);
    assert_eq!(
        step.detail.as_deref(),
        Some("secret \"default\" from \"sds-grpc\"")
    );
    // Not asked of ADS: of the local stream.
    assert!(
        shown(&step.requests).iter().all(|r| r.0 != Some(Kind::Sds)),
        "{:?}",
        shown(&step.requests)
    );
    assert_eq!(s.local_names(), ["default"]);
    let opening = s.local_request(true);
    assert_eq!(opening.resource_names, ["default"]);
    assert_eq!(opening.type_url, Kind::Sds.type_url());

    // An ADS secret of the same name is another secret: still waiting.
    let (one, two) = (pem(), pem());
    let step = s.on_response(response(
        Kind::Sds,
        "1",
        "a1",
        vec![secret("default", &two)],
    ));
    assert_eq!(step.publish, None);

    let step = s.on_local(response(
        Kind::Sds,
        "L1",
        "s1",
        vec![secret("default", &one)],
    ));
    assert_eq!(step.outcome, Some((Kind::Sds, "ack")), "{:?}", step.detail);
    let ack = sotw(&step.requests[0]);
    assert_eq!(
        (
            ack.version_info.as_str(),
            ack.response_nonce.as_str(),
            ack.error_detail.is_none()
        ),
        ("L1", "s1", true)
    );
    assert_eq!(ack.resource_names, ["default"]);
    let doc: toml::Table = step.publish.unwrap().parse().unwrap();
    let certs = &doc["listeners"][0]["tls"]["certificates"];
    assert_eq!(certs[0]["cert_pem"].as_str(), Some(one.0.as_str()));

    // Rotated by the local server.
    let step = s.on_local(response(
        Kind::Sds,
        "L2",
        "s2",
        vec![secret("default", &two)],
    ));
    let doc: toml::Table = step.publish.unwrap().parse().unwrap();
    let certs = &doc["listeners"][0]["tls"]["certificates"];
    assert_eq!(certs[0]["cert_pem"].as_str(), Some(two.0.as_str()));

    // A secret ringside cannot use is NACKed on that stream, naming the field; the last
    // one stays.
    let bad = password_protected("default");
    let step = s.on_local(response(Kind::Sds, "L3", "s3", vec![any(&bad)]));
    assert_eq!(step.outcome, Some((Kind::Sds, "nack")));
    assert_eq!(step.publish, None);
    let nack = sotw(&step.requests[0]);
    assert_eq!(
        (nack.version_info.as_str(), nack.response_nonce.as_str()),
        ("L2", "s3")
    );
    assert_eq!(
        nack.error_detail.as_ref().unwrap().message,
        "secret \"default\".tls_certificate.password: not supported by ringside"
    );
    // A resource of another type on that stream is refused too.
    let step = s.on_local(response(Kind::Cds, "L4", "s4", vec![eds_cluster("x")]));
    assert_eq!(step.outcome, Some((Kind::Sds, "nack")));
}

fn delta(
    kind: Kind,
    nonce: &str,
    resources: Vec<(&str, &str, Any)>,
    removed: &[&str],
) -> DeltaDiscoveryResponse {
    use envoy_types::pb::envoy::service::discovery::v3::Resource;
    DeltaDiscoveryResponse {
        system_version_info: nonce.into(),
        type_url: kind.type_url(),
        nonce: nonce.into(),
        resources: resources
            .into_iter()
            .map(|(name, version, any)| Resource {
                name: name.into(),
                version: version.into(),
                resource: Some(any),
                ..Resource::default()
            })
            .collect(),
        removed_resources: removed.iter().map(|n| (*n).to_owned()).collect(),
        ..DeltaDiscoveryResponse::default()
    }
}

/// (type, nonce, subscribed, unsubscribed, error) of an incremental request.
type DeltaShown = (Option<Kind>, String, Vec<String>, Vec<String>, bool);

fn delta_shown(reqs: &[Request]) -> Vec<DeltaShown> {
    reqs.iter()
        .map(|r| match r {
            Request::Delta(r) => (
                Kind::of(&r.type_url),
                r.response_nonce.clone(),
                r.resource_names_subscribe.clone(),
                r.resource_names_unsubscribe.clone(),
                r.error_detail.is_some(),
            ),
            Request::Sotw(r) => panic!("a state-of-the-world request on a delta stream: {r:?}"),
        })
        .collect()
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|n| (*n).to_owned()).collect()
}

#[test]
fn delta_applies_changes_and_removals_and_subscribes_by_difference() {
    let mut s = NodeState::new(Node::default(), None, true);
    let open = delta_shown(&s.opening());
    assert_eq!(
        open,
        [
            (Some(Kind::Cds), String::new(), vec![], vec![], false),
            (Some(Kind::Lds), String::new(), vec![], vec![], false),
        ],
        "CDS and LDS by wildcard"
    );
    let step = s.on_delta(delta(
        Kind::Cds,
        "n1",
        vec![("a", "1", eds_cluster("a"))],
        &[],
    ));
    assert_eq!(step.outcome, Some((Kind::Cds, "ack")));
    assert_eq!(
        delta_shown(&step.requests),
        [
            (Some(Kind::Cds), "n1".into(), vec![], vec![], false),
            (Some(Kind::Eds), String::new(), names(&["a"]), vec![], false),
        ]
    );
    s.on_delta(delta(Kind::Eds, "n2", vec![("a", "1", cla("a"))], &[]));
    let step = s.on_delta(delta(
        Kind::Lds,
        "n3",
        vec![("l", "1", listener("r1"))],
        &[],
    ));
    assert_eq!(
        delta_shown(&step.requests)[1].2,
        names(&["r1"]),
        "RDS asked for r1"
    );
    let step = s.on_delta(delta(
        Kind::Rds,
        "n4",
        vec![("r1", "1", routes("r1", "a", false))],
        &[],
    ));
    assert!(step.publish.is_some(), "{:?}", step.detail);

    // A second cluster in a response of its own: the first stays, EDS adds only b.
    let step = s.on_delta(delta(
        Kind::Cds,
        "n5",
        vec![("b", "1", eds_cluster("b"))],
        &[],
    ));
    assert_eq!(step.outcome, Some((Kind::Cds, "ack")));
    assert_eq!(
        delta_shown(&step.requests)[1],
        (Some(Kind::Eds), String::new(), names(&["b"]), vec![], false)
    );
    let step = s.on_delta(delta(Kind::Eds, "n6", vec![("b", "1", cla("b"))], &[]));
    assert_eq!(step.outcome, Some((Kind::Eds, "ack")));
    let text = step.publish.expect("a and b");
    assert!(
        text.contains("name = \"a\"") && text.contains("name = \"b\""),
        "{text}"
    );

    // A change the node refuses: NACKed, and the kept set is the one before it.
    let step = s.on_delta(delta(
        Kind::Rds,
        "n7",
        vec![("r1", "2", routes("r1", "a", true))],
        &[],
    ));
    assert_eq!(step.outcome, Some((Kind::Rds, "nack")));
    assert_eq!(
        delta_shown(&step.requests),
        [(Some(Kind::Rds), "n7".into(), vec![], vec![], true)]
    );
    // Removing a: the routes still name it (kept from before the NACK), so the configuration
    // waits; EDS drops a.
    let step = s.on_delta(delta(Kind::Cds, "n8", vec![], &["a"]));
    assert_eq!(step.outcome, Some((Kind::Cds, "ack")));
    assert!(step.publish.is_none());
    assert_eq!(
        delta_shown(&step.requests)[1],
        (Some(Kind::Eds), String::new(), vec![], names(&["a"]), false)
    );
    let step = s.on_delta(delta(
        Kind::Rds,
        "n9",
        vec![("r1", "3", routes("r1", "b", false))],
        &[],
    ));
    assert_eq!(step.outcome, Some((Kind::Rds, "ack")), "{:?}", step.detail);
    let text = step.publish.expect("b only");
    assert!(
        !text.contains("name = \"a\"") && text.contains("name = \"b\""),
        "{text}"
    );

    // A new stream says what the node has.
    let reopened = s.opening();
    let versions = |kind: Kind| match reopened
        .iter()
        .find(|r| matches!(r, Request::Delta(d) if d.type_url == kind.type_url()))
    {
        Some(Request::Delta(d)) => d.initial_resource_versions.clone(),
        _ => panic!("no {kind:?} request"),
    };
    assert_eq!(versions(Kind::Cds).get("b").map(String::as_str), Some("1"));
    assert!(!versions(Kind::Cds).contains_key("a"));
    assert_eq!(versions(Kind::Rds).get("r1").map(String::as_str), Some("3"));
    assert_eq!(versions(Kind::Eds).len(), 1);
}
