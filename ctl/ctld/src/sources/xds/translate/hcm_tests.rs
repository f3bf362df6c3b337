//! The HCM's connection settings: what each becomes on the listener, that the result passes
//! ringside's own validation, and the NACK of each value ringside cannot honour.

#![allow(clippy::unwrap_used)]

use envoy_types::pb::envoy::config::core::v3::address::Address as Addr;
use envoy_types::pb::envoy::config::core::v3::socket_address::PortSpecifier;
use envoy_types::pb::envoy::config::core::v3::{
    Address, Http1ProtocolOptions, Http2ProtocolOptions, HttpProtocolOptions, KeepaliveSettings,
    SocketAddress,
};
use envoy_types::pb::envoy::config::listener::v3::filter::ConfigType;
use envoy_types::pb::envoy::config::listener::v3::{Filter, FilterChain, Listener};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::{
    ForwardClientCertDetails, PathWithEscapedSlashesAction, RouteSpecifier,
    ServerHeaderTransformation, SetCurrentClientCertDetails,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, Rds,
};
use envoy_types::pb::google::protobuf::{Any, BoolValue, Duration, UInt32Value};
use prost::{Message, Name};

use super::listeners::listener;

fn secs(seconds: i64) -> Option<Duration> {
    Some(Duration { seconds, nanos: 0 })
}

fn millis(ms: i32) -> Option<Duration> {
    Some(Duration {
        seconds: 0,
        nanos: ms * 1_000_000,
    })
}

fn u32v(value: u32) -> Option<UInt32Value> {
    Some(UInt32Value { value })
}

fn bool_v(value: bool) -> Option<BoolValue> {
    Some(BoolValue { value })
}

/// An HCM with routes by RDS; `edit` sets what a test is about.
fn hcm(edit: impl FnOnce(&mut HttpConnectionManager)) -> HttpConnectionManager {
    let mut h = HttpConnectionManager {
        stat_prefix: "inbound_0.0.0.0_8080".into(),
        route_specifier: Some(RouteSpecifier::Rds(Rds {
            route_config_name: "r".into(),
            ..Rds::default()
        })),
        ..HttpConnectionManager::default()
    };
    edit(&mut h);
    h
}

/// The listener `l` with that HCM, translated: its table as TOML, or the NACK.
fn translate(h: HttpConnectionManager) -> Result<String, String> {
    translated(h).0
}

/// [`translate`], and what was ignored (counted).
fn translated(h: HttpConnectionManager) -> (Result<String, String>, Vec<String>) {
    let l = Listener {
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
                name: "envoy.filters.network.http_connection_manager".into(),
                config_type: Some(ConfigType::TypedConfig(Any {
                    type_url: HttpConnectionManager::type_url(),
                    value: h.encode_to_vec(),
                })),
            }],
            ..FilterChain::default()
        }],
        ..Listener::default()
    };
    let mut ignored = Vec::new();
    let t = listener(l, &mut ignored).map(|t| toml::to_string(&t.own.unwrap().table).unwrap());
    (t, ignored)
}

const AT: &str = "listener \"l\".filter_chains[0].filters[0]";

#[test]
fn istio_like_settings_become_the_listeners_limits_and_validate() {
    let h = hcm(|h| {
        h.common_http_protocol_options = Some(HttpProtocolOptions {
            idle_timeout: secs(3600),
            max_headers_count: u32v(80),
            ..HttpProtocolOptions::default()
        });
        h.max_request_headers_kb = u32v(96);
        h.request_headers_timeout = secs(5);
        h.http2_protocol_options = Some(Http2ProtocolOptions {
            max_concurrent_streams: u32v(250),
            initial_stream_window_size: u32v(65_536),
            initial_connection_window_size: u32v(1_048_576),
            connection_keepalive: Some(KeepaliveSettings {
                interval: secs(30),
                timeout: secs(5),
                ..KeepaliveSettings::default()
            }),
            ..Http2ProtocolOptions::default()
        });
        h.http_protocol_options = Some(Http1ProtocolOptions {
            accept_http_10: true,
            allow_absolute_url: bool_v(true),
            ..Http1ProtocolOptions::default()
        });
        h.server_name = "istio-envoy".into();
        h.use_remote_address = bool_v(true);
        h.generate_request_id = bool_v(true);
        h.preserve_external_request_id = true;
        // Istio's default `pathNormalization` (BASE).
        h.normalize_path = bool_v(true);
        // Istio's inbound listeners.
        h.forward_client_cert_details = ForwardClientCertDetails::AppendForward as i32;
        h.set_current_client_cert_details = Some(SetCurrentClientCertDetails {
            subject: bool_v(true),
            dns: true,
            uri: true,
            ..SetCurrentClientCertDetails::default()
        });
    });
    let table = translate(h).unwrap();
    assert_eq!(
        table,
        r#"bind = "127.0.0.1:0"
client_cert_details = ["by", "hash", "subject", "uri", "dns"]
forward_client_cert = "append_forward"
idle_timeout_ms = 3600000
max_header_bytes = 98304
max_headers = 80
name = "l"
normalize_path = true
protocol = "http"
request_head_timeout_ms = 5000

[http2]
initial_connection_window_bytes = 1048576
initial_stream_window_bytes = 65536
keepalive_interval_ms = 30000
keepalive_timeout_ms = 5000
max_concurrent_streams = 250

[[response_headers_to_add]]
action = "overwrite"
name = "server"
value = "istio-envoy"
"#
    );
    // What ringside's validation makes of it, as ctld checks every composed configuration.
    let mut doc = toml::Table::new();
    let listener: toml::Table = toml::from_str(&table).unwrap();
    doc.insert("listeners".into(), vec![listener].into());
    let text = toml::to_string(&doc).unwrap();
    let config = ringside_config::parse(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    let l = &config.listeners[0];
    assert_eq!(l.idle_timeout, std::time::Duration::from_secs(3600));
    let ringside_config::ListenerKind::Http(http) = &l.kind else {
        panic!("an http listener")
    };
    assert_eq!(http.limits.max_header_bytes, 96 * 1024);
    assert_eq!(http.limits.max_headers, 80);
    assert!(http.limits.path.normalize);
    assert_eq!(
        http.forward_client_cert,
        ringside_config::ForwardClientCert::AppendForward
    );
    assert_eq!(http.http2.max_concurrent_streams, 250);
    assert_eq!(
        http.http2.keepalive_timeout,
        Some(std::time::Duration::from_secs(5))
    );
}

#[test]
fn server_name_follows_the_transformation_and_stays_literal() {
    let with = |name: &str, how: ServerHeaderTransformation| {
        translate(hcm(|h| {
            h.server_name = name.into();
            h.server_header_transformation = how as i32;
        }))
        .unwrap()
    };
    let t = with("100%-edge", ServerHeaderTransformation::AppendIfAbsent);
    assert!(
        t.ends_with("action = \"add_if_absent\"\nname = \"server\"\nvalue = \"100%%-edge\"\n"),
        "{t}"
    );
    let t = with("edge", ServerHeaderTransformation::PassThrough);
    assert!(!t.contains("response_headers_to_add"), "{t}");
    // An empty name: no edit (ringside's own `server: ringside` stays on its answers).
    let t = with("", ServerHeaderTransformation::Overwrite);
    assert!(!t.contains("response_headers_to_add"), "{t}");
}

#[test]
fn zero_means_none_in_envoy_and_is_refused_or_bounded() {
    let e = translate(hcm(|h| {
        h.common_http_protocol_options = Some(HttpProtocolOptions {
            idle_timeout: secs(0),
            ..HttpProtocolOptions::default()
        });
    }))
    .unwrap_err();
    assert_eq!(
        e,
        format!("{AT}.common_http_protocol_options.idle_timeout: 0 (no idle timeout) is not supported by ringside")
    );
    // No head timeout in Envoy: ringside keeps its own bound (its default).
    let t = translate(hcm(|h| h.request_headers_timeout = secs(0))).unwrap();
    assert!(!t.contains("request_head_timeout_ms"), "{t}");
    let t = translate(hcm(|h| h.request_headers_timeout = millis(250))).unwrap();
    assert!(t.contains("request_head_timeout_ms = 250\n"), "{t}");
}

#[test]
fn what_ringside_cannot_honour_is_nacked_by_field() {
    let cases: Vec<(HttpConnectionManager, &str)> = vec![
        (
            hcm(|h| {
                h.path_with_escaped_slashes_action =
                    PathWithEscapedSlashesAction::UnescapeAndRedirect as i32
            }),
            "path_with_escaped_slashes_action: UNESCAPE_AND_REDIRECT (ringside keeps, rejects or unescapes and forwards) is not supported by ringside",
        ),
        (
            hcm(|h| {
                h.set_current_client_cert_details = Some(SetCurrentClientCertDetails {
                    uri: true,
                    issuer: true,
                    ..SetCurrentClientCertDetails::default()
                });
            }),
            "set_current_client_cert_details.issuer: not supported by ringside",
        ),
        (
            hcm(|h| h.forward_client_cert_details = 7),
            "forward_client_cert_details: value 7 is not supported by ringside",
        ),
        (
            hcm(|h| h.path_with_escaped_slashes_action = 9),
            "path_with_escaped_slashes_action: value 9 is not supported by ringside",
        ),
        (
            hcm(|h| h.stream_idle_timeout = secs(300)),
            "stream_idle_timeout: not supported by ringside",
        ),
        (
            hcm(|h| h.xff_num_trusted_hops = 1),
            "xff_num_trusted_hops: not supported by ringside",
        ),
        (
            hcm(|h| h.generate_request_id = bool_v(false)),
            "generate_request_id: false (ringside gives every request an x-request-id) is not supported by ringside",
        ),
        (
            hcm(|h| {
                h.common_http_protocol_options = Some(HttpProtocolOptions {
                    max_stream_duration: secs(10),
                    ..HttpProtocolOptions::default()
                })
            }),
            "common_http_protocol_options.max_stream_duration: not supported by ringside",
        ),
        (
            hcm(|h| {
                h.http2_protocol_options = Some(Http2ProtocolOptions {
                    hpack_table_size: u32v(0),
                    ..Http2ProtocolOptions::default()
                })
            }),
            "http2_protocol_options.hpack_table_size: not supported by ringside",
        ),
        (
            hcm(|h| {
                h.http2_protocol_options = Some(Http2ProtocolOptions {
                    connection_keepalive: Some(KeepaliveSettings {
                        connection_idle_interval: secs(60),
                        timeout: secs(5),
                        ..KeepaliveSettings::default()
                    }),
                    ..Http2ProtocolOptions::default()
                })
            }),
            "http2_protocol_options.connection_keepalive.interval: keepalive without an interval is not supported by ringside",
        ),
        (
            hcm(|h| {
                h.http_protocol_options = Some(Http1ProtocolOptions {
                    allow_absolute_url: bool_v(false),
                    ..Http1ProtocolOptions::default()
                })
            }),
            "http_protocol_options.allow_absolute_url: false (ringside routes absolute-form targets) is not supported by ringside",
        ),
        (
            hcm(|h| h.server_header_transformation = 7),
            "server_header_transformation: value 7 is not supported by ringside",
        ),
    ];
    for (h, want) in cases {
        assert_eq!(translate(h), Err(format!("{AT}.{want}")));
    }
}

#[test]
fn use_remote_address_false_is_counted_not_refused() {
    let (t, ignored) = translated(hcm(|h| h.use_remote_address = bool_v(false)));
    assert!(t.is_ok(), "{t:?}");
    assert!(
        ignored.contains(&"field:use_remote_address".to_owned()),
        "{ignored:?}"
    );
    let (_, ignored) = translated(hcm(|h| h.use_remote_address = bool_v(true)));
    assert!(
        !ignored.contains(&"field:use_remote_address".to_owned()),
        "{ignored:?}"
    );
}

#[test]
fn path_settings_become_the_listener_path_rules() {
    let t = translate(hcm(|h| {
        h.normalize_path = bool_v(true);
        h.merge_slashes = true;
        h.path_with_escaped_slashes_action =
            PathWithEscapedSlashesAction::UnescapeAndForward as i32;
    }))
    .unwrap();
    for line in [
        "normalize_path = true\n",
        "merge_slashes = true\n",
        "escaped_slashes = \"unescape\"\n",
    ] {
        assert!(t.contains(line), "{line} in {t}");
    }
    let t = translate(hcm(|h| {
        h.path_with_escaped_slashes_action = PathWithEscapedSlashesAction::RejectRequest as i32
    }))
    .unwrap();
    assert!(t.contains("escaped_slashes = \"reject\"\n"), "{t}");
    // Envoy's defaults (and `false`) are ringside's: nothing written.
    for h in [
        hcm(|h| h.normalize_path = bool_v(false)),
        hcm(|h| {
            h.path_with_escaped_slashes_action = PathWithEscapedSlashesAction::KeepUnchanged as i32
        }),
        hcm(|_| {}),
    ] {
        let t = translate(h).unwrap();
        for key in ["normalize_path", "merge_slashes", "escaped_slashes"] {
            assert!(!t.contains(key), "{key} in {t}");
        }
    }
}

#[test]
fn every_xfcc_mode_is_translated() {
    for (mode, value) in [
        (ForwardClientCertDetails::Sanitize, "sanitize"),
        (ForwardClientCertDetails::ForwardOnly, "forward_only"),
        (ForwardClientCertDetails::AppendForward, "append_forward"),
        (ForwardClientCertDetails::SanitizeSet, "sanitize_set"),
        (
            ForwardClientCertDetails::AlwaysForwardOnly,
            "always_forward_only",
        ),
    ] {
        let t = translate(hcm(|h| h.forward_client_cert_details = mode as i32)).unwrap();
        assert!(
            t.contains(&format!("forward_client_cert = \"{value}\"\n")),
            "{mode:?}: {t}"
        );
        // Envoy writes By and Hash whenever it sets its own element.
        let sets = matches!(value, "sanitize_set" | "append_forward");
        assert_eq!(
            t.contains("client_cert_details = [\"by\", \"hash\"]\n"),
            sets,
            "{mode:?}: {t}"
        );
    }
    let every = translate(hcm(|h| {
        h.forward_client_cert_details = ForwardClientCertDetails::SanitizeSet as i32;
        h.set_current_client_cert_details = Some(SetCurrentClientCertDetails {
            subject: bool_v(true),
            cert: true,
            chain: true,
            dns: true,
            uri: true,
            ..SetCurrentClientCertDetails::default()
        });
    }))
    .unwrap();
    assert!(
        every.contains(
            "client_cert_details = [\"by\", \"hash\", \"cert\", \"chain\", \"subject\", \"uri\", \"dns\"]\n"
        ),
        "{every}"
    );
}
