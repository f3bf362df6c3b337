//! TLS transport sockets: what each becomes, and what is refused.

#![allow(clippy::unwrap_used)]

use envoy_types::pb::envoy::config::core::v3::api_config_source::ApiType;
use envoy_types::pb::envoy::config::core::v3::config_source::ConfigSourceSpecifier;
use envoy_types::pb::envoy::config::core::v3::data_source::Specifier;
use envoy_types::pb::envoy::config::core::v3::grpc_service::{EnvoyGrpc, TargetSpecifier};
use envoy_types::pb::envoy::config::core::v3::transport_socket::ConfigType;
use envoy_types::pb::envoy::config::core::v3::{
    AggregatedConfigSource, ApiConfigSource, ApiVersion, ConfigSource, DataSource, GrpcService,
    TransportSocket,
};
use envoy_types::pb::envoy::extensions::transport_sockets::raw_buffer::v3::RawBuffer;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::common_tls_context::ValidationContextType;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, CommonTlsContext, DownstreamTlsContext, SdsSecretConfig,
    TlsCertificate, UpstreamTlsContext,
};
use envoy_types::pb::google::protobuf::{Any, BoolValue};
use prost::{Message, Name};

use super::*;

fn socket<M: Message + Name>(m: &M) -> TransportSocket {
    TransportSocket {
        name: "envoy.transport_sockets.tls".into(),
        config_type: Some(ConfigType::TypedConfig(Any {
            type_url: M::type_url(),
            value: m.encode_to_vec(),
        })),
    }
}

fn file(f: &str) -> Option<DataSource> {
    Some(DataSource {
        specifier: Some(Specifier::Filename(f.into())),
        ..DataSource::default()
    })
}

fn inline(s: &str) -> Option<DataSource> {
    Some(DataSource {
        specifier: Some(Specifier::InlineString(s.into())),
        ..DataSource::default()
    })
}

fn shown(t: Option<Table>) -> String {
    toml::Value::Table(t.unwrap()).to_string()
}

#[test]
fn upstream_tls_with_files_sni_and_a_ca() {
    let ctx = UpstreamTlsContext {
        sni: "orders.internal".into(),
        common_tls_context: Some(CommonTlsContext {
            tls_certificates: vec![TlsCertificate {
                certificate_chain: file("/etc/certs/client.pem"),
                private_key: file("/etc/certs/client-key.pem"),
                ..TlsCertificate::default()
            }],
            validation_context_type: Some(ValidationContextType::ValidationContext(
                CertificateValidationContext {
                    trusted_ca: inline("-----BEGIN CERTIFICATE-----"),
                    ..CertificateValidationContext::default()
                },
            )),
            alpn_protocols: vec!["h2".into()],
            ..CommonTlsContext::default()
        }),
        ..UpstreamTlsContext::default()
    };
    assert_eq!(
        shown(upstream(socket(&ctx), "c").unwrap()),
        "{ ca_pem = \"-----BEGIN CERTIFICATE-----\", cert = \"/etc/certs/client.pem\", key = \"/etc/certs/client-key.pem\", sni = \"orders.internal\" }"
    );
    assert_eq!(upstream(socket(&RawBuffer::default()), "c").unwrap(), None);

    let sds = |source: Option<ConfigSourceSpecifier>| UpstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_certificate_sds_secret_configs: vec![SdsSecretConfig {
                name: "client".into(),
                sds_config: Some(ConfigSource {
                    config_source_specifier: source,
                    ..ConfigSource::default()
                }),
            }],
            validation_context_type: Some(ValidationContextType::ValidationContextSdsSecretConfig(
                SdsSecretConfig {
                    name: "ROOTCA".into(),
                    sds_config: Some(ConfigSource {
                        config_source_specifier: Some(ConfigSourceSpecifier::Ads(
                            AggregatedConfigSource::default(),
                        )),
                        ..ConfigSource::default()
                    }),
                },
            )),
            ..CommonTlsContext::default()
        }),
        ..UpstreamTlsContext::default()
    };
    let ads = Some(ConfigSourceSpecifier::Ads(AggregatedConfigSource::default()));
    assert_eq!(
        shown(upstream(socket(&sds(ads)), "c").unwrap()),
        "{ sds_tls_certificate = \"client\", sds_validation_context = \"ROOTCA\" }"
    );
    let path = Some(ConfigSourceSpecifier::PathConfigSource(Default::default()));
    assert_eq!(
        upstream(socket(&sds(path)), "cluster \"c\".transport_socket").unwrap_err(),
        "cluster \"c\".transport_socket.common_tls_context.tls_certificate_sds_secret_configs[0].sds_config: a secret from elsewhere than ADS or the cluster \"sds-grpc\" is not supported by ringside"
    );

    // Istio's: gRPC to the bootstrap's `sds-grpc` cluster (istio-agent), a secret of the
    // local SDS server.
    let grpc = |api_type: ApiType, cluster: &str| {
        Some(ConfigSourceSpecifier::ApiConfigSource(ApiConfigSource {
            api_type: api_type as i32,
            transport_api_version: ApiVersion::V3 as i32,
            set_node_on_first_message_only: true,
            grpc_services: vec![GrpcService {
                target_specifier: Some(TargetSpecifier::EnvoyGrpc(EnvoyGrpc {
                    cluster_name: cluster.into(),
                    ..EnvoyGrpc::default()
                })),
                ..GrpcService::default()
            }],
            ..ApiConfigSource::default()
        }))
    };
    assert_eq!(
        shown(upstream(socket(&sds(grpc(ApiType::Grpc, "sds-grpc"))), "c").unwrap()),
        "{ sds_local_tls_certificate = \"client\", sds_validation_context = \"ROOTCA\" }"
    );
    let at = "cluster \"c\".transport_socket.common_tls_context.tls_certificate_sds_secret_configs[0].sds_config.api_config_source";
    assert_eq!(
        upstream(socket(&sds(grpc(ApiType::Grpc, "my-sds"))), "cluster \"c\".transport_socket").unwrap_err(),
        format!("{at}.grpc_services[0].envoy_grpc.cluster_name: a secret from the cluster \"my-sds\" (only \"sds-grpc\", the local SDS server) is not supported by ringside")
    );
    assert_eq!(
        upstream(socket(&sds(grpc(ApiType::DeltaGrpc, "sds-grpc"))), "cluster \"c\".transport_socket").unwrap_err(),
        format!("{at}.api_type: an SDS API other than GRPC (state of the world) is not supported by ringside")
    );
}

#[test]
fn downstream_tls_certificates_and_client_verification() {
    let cert = TlsCertificate {
        certificate_chain: inline("CERT"),
        private_key: inline("KEY"),
        ..TlsCertificate::default()
    };
    let ctx = DownstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_certificates: vec![cert],
            ..CommonTlsContext::default()
        }),
        ..DownstreamTlsContext::default()
    };
    assert_eq!(
        shown(downstream(socket(&ctx), "l").unwrap()),
        "{ certificates = [{ cert_pem = \"CERT\", key_pem = \"KEY\" }] }"
    );
    // Required without a CA to verify against: refused.
    let blind = DownstreamTlsContext {
        require_client_certificate: Some(BoolValue { value: true }),
        ..ctx.clone()
    };
    assert_eq!(
        downstream(socket(&blind), "l").unwrap_err(),
        "l.require_client_certificate: true without a validation context (the CA clients' certificates must chain to) is not supported by ringside"
    );
    // A trusted CA: clients verified against it, required or not.
    let with_ca = |require: bool, v: ValidationContextType| {
        let mut c = ctx.clone();
        c.require_client_certificate = Some(BoolValue { value: require });
        c.common_tls_context
            .as_mut()
            .unwrap()
            .validation_context_type = Some(v);
        shown(downstream(socket(&c), "l").unwrap())
    };
    let inline_ca = ValidationContextType::ValidationContext(CertificateValidationContext {
        trusted_ca: inline("CA"),
        ..CertificateValidationContext::default()
    });
    assert_eq!(
        with_ca(true, inline_ca.clone()),
        "{ ca_pem = \"CA\", certificates = [{ cert_pem = \"CERT\", key_pem = \"KEY\" }], require_client_certificate = true }"
    );
    assert_eq!(
        with_ca(false, inline_ca),
        "{ ca_pem = \"CA\", certificates = [{ cert_pem = \"CERT\", key_pem = \"KEY\" }] }"
    );
    // Istio's inbound listeners: the root CA from SDS, resolved like a cluster's.
    let sds = ValidationContextType::ValidationContextSdsSecretConfig(SdsSecretConfig {
        name: "ROOTCA".into(),
        sds_config: Some(ConfigSource {
            config_source_specifier: Some(ConfigSourceSpecifier::Ads(
                AggregatedConfigSource::default(),
            )),
            ..ConfigSource::default()
        }),
    });
    assert_eq!(
        with_ca(true, sds),
        "{ certificates = [{ cert_pem = \"CERT\", key_pem = \"KEY\" }], require_client_certificate = true, sds_validation_context = \"ROOTCA\" }"
    );
    assert_eq!(
        upstream(socket(&DownstreamTlsContext::default()), "c").unwrap_err(),
        "c: transport socket type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext is not supported by ringside"
    );
}

#[test]
fn san_matchers_become_a_clusters_identities() {
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::common_tls_context::CombinedCertificateValidationContext;
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::subject_alt_name_matcher::SanType;
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::SubjectAltNameMatcher;
    use envoy_types::pb::envoy::r#type::matcher::v3::string_matcher::MatchPattern;
    use envoy_types::pb::envoy::r#type::matcher::v3::StringMatcher;

    let exact = |s: &str| StringMatcher {
        match_pattern: Some(MatchPattern::Exact(s.into())),
        ..StringMatcher::default()
    };
    let uri = |s: &str| SubjectAltNameMatcher {
        san_type: SanType::Uri as i32,
        matcher: Some(exact(s)),
        ..SubjectAltNameMatcher::default()
    };
    let ads = || ConfigSource {
        config_source_specifier: Some(
            ConfigSourceSpecifier::Ads(AggregatedConfigSource::default()),
        ),
        ..ConfigSource::default()
    };
    // Istio's outbound: SAN matchers beside the root CA from SDS.
    let combined = |v: CertificateValidationContext| UpstreamTlsContext {
        sni: "outbound_.8080_._.orders.shop.svc.cluster.local".into(),
        common_tls_context: Some(CommonTlsContext {
            validation_context_type: Some(ValidationContextType::CombinedValidationContext(
                CombinedCertificateValidationContext {
                    default_validation_context: Some(v),
                    validation_context_sds_secret_config: Some(SdsSecretConfig {
                        name: "ROOTCA".into(),
                        sds_config: Some(ads()),
                    }),
                    ..CombinedCertificateValidationContext::default()
                },
            )),
            ..CommonTlsContext::default()
        }),
        ..UpstreamTlsContext::default()
    };
    let typed = CertificateValidationContext {
        match_typed_subject_alt_names: vec![
            uri("spiffe://cluster.local/ns/shop/sa/orders"),
            uri("spiffe://cluster.local/ns/shop/sa/orders-v2"),
        ],
        ..CertificateValidationContext::default()
    };
    assert_eq!(
        shown(upstream(socket(&combined(typed)), "c").unwrap()),
        "{ identities = [\"spiffe://cluster.local/ns/shop/sa/orders\", \"spiffe://cluster.local/ns/shop/sa/orders-v2\"], sds_validation_context = \"ROOTCA\", sni = \"outbound_.8080_._.orders.shop.svc.cluster.local\" }"
    );
    #[allow(deprecated)]
    let untyped = CertificateValidationContext {
        match_subject_alt_names: vec![exact("spiffe://cluster.local/ns/shop/sa/orders")],
        ..CertificateValidationContext::default()
    };
    assert!(shown(upstream(socket(&combined(untyped)), "c").unwrap())
        .starts_with("{ identities = [\"spiffe://cluster.local/ns/shop/sa/orders\"]"));
    // What ringside cannot check is NACKed by field.
    let dns = CertificateValidationContext {
        match_typed_subject_alt_names: vec![SubjectAltNameMatcher {
            san_type: SanType::Dns as i32,
            ..uri("orders.shop")
        }],
        ..CertificateValidationContext::default()
    };
    assert_eq!(
        upstream(socket(&combined(dns)), "c").unwrap_err(),
        "c.common_tls_context.combined_validation_context.default_validation_context.match_typed_subject_alt_names[0].san_type: a SAN other than URI (ringside checks URI SANs) is not supported by ringside"
    );
    let prefix = CertificateValidationContext {
        match_typed_subject_alt_names: vec![SubjectAltNameMatcher {
            matcher: Some(StringMatcher {
                match_pattern: Some(MatchPattern::Prefix("spiffe://".into())),
                ..StringMatcher::default()
            }),
            ..uri("")
        }],
        ..CertificateValidationContext::default()
    };
    assert_eq!(
        upstream(socket(&combined(prefix)), "c").unwrap_err(),
        "c.common_tls_context.combined_validation_context.default_validation_context.match_typed_subject_alt_names[0].matcher: a matcher other than a case-sensitive exact one without `*` is not supported by ringside"
    );
    // On a listener: the clients' identities, exact or by prefix (Istio's inbound trust
    // domain check), written with ringside's trailing `*`.
    let prefix_of = |s: &str| SubjectAltNameMatcher {
        matcher: Some(StringMatcher {
            match_pattern: Some(MatchPattern::Prefix(s.into())),
            ..StringMatcher::default()
        }),
        ..uri("")
    };
    let listener = |matchers: Vec<SubjectAltNameMatcher>| DownstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            validation_context_type: Some(ValidationContextType::ValidationContext(
                CertificateValidationContext {
                    trusted_ca: inline("CA"),
                    match_typed_subject_alt_names: matchers,
                    ..CertificateValidationContext::default()
                },
            )),
            ..CommonTlsContext::default()
        }),
        ..DownstreamTlsContext::default()
    };
    assert_eq!(
        shown(
            downstream(
                socket(&listener(vec![
                    uri("spiffe://x/ns/a/sa/b"),
                    prefix_of("spiffe://cluster.local/")
                ])),
                "l"
            )
            .unwrap()
        ),
        "{ ca_pem = \"CA\", certificates = [], client_identities = [\"spiffe://x/ns/a/sa/b\", \"spiffe://cluster.local/*\"] }"
    );
    // A `*` in a value would read as a prefix: NACKed, as is a case-insensitive matcher.
    assert_eq!(
        downstream(socket(&listener(vec![uri("spiffe://x/*")])), "l").unwrap_err(),
        "l.common_tls_context.validation_context.match_typed_subject_alt_names[0].matcher: a matcher other than a case-sensitive exact or prefix one without `*` is not supported by ringside"
    );
    let mut folded = prefix_of("spiffe://");
    folded.matcher.as_mut().unwrap().ignore_case = true;
    assert!(downstream(socket(&listener(vec![folded])), "l").is_err());
}
