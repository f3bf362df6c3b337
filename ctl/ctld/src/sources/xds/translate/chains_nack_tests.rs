//! The NACK of each filter chain match and listener layout ringside cannot serve, naming
//! the resource and field (fixtures in `chains_tests.rs`).

#![allow(clippy::unwrap_used)]

use envoy_types::pb::envoy::config::core::v3::CidrRange;
use envoy_types::pb::envoy::config::listener::v3::{FilterChainMatch, Listener};
use envoy_types::pb::google::protobuf::{BoolValue, UInt32Value};

use super::chains_inbound_tests::{istio_inbound, opening};
use super::chains_tests::*;

#[test]
fn each_match_ringside_cannot_take_is_nacked_by_field() {
    let mut fields: Vec<(&str, FilterChainMatch)> = Vec::new();
    let base = FilterChainMatch::default;
    let cidr = || vec![CidrRange::default()];
    fields.push((
        "source_type",
        FilterChainMatch {
            source_type: 1,
            ..base()
        },
    ));
    fields.push((
        "source_prefix_ranges",
        FilterChainMatch {
            source_prefix_ranges: cidr(),
            ..base()
        },
    ));
    fields.push((
        "source_ports",
        FilterChainMatch {
            source_ports: vec![1],
            ..base()
        },
    ));
    let direct = cidr();
    fields.push((
        "direct_source_prefix_ranges",
        FilterChainMatch {
            direct_source_prefix_ranges: direct,
            ..base()
        },
    ));
    fields.push((
        "address_suffix",
        FilterChainMatch {
            address_suffix: "::1".into(),
            ..base()
        },
    ));
    let len = Some(UInt32Value { value: 64 });
    fields.push((
        "suffix_len",
        FilterChainMatch {
            suffix_len: len,
            ..base()
        },
    ));
    for (field, mut m) in fields {
        m.destination_port = Some(UInt32Value { value: 8080 });
        let inbound = virtual_inbound(
            vec![
                tcp("a", "orders", port(1)),
                tcp("b", "orders", port(2)),
                tcp("c", "orders", None),
                tcp("d", "orders", Some(m)),
            ],
            None,
        );
        assert_eq!(
            built(vec![inbound]).unwrap_err(),
            format!("listener \"virtualInbound\".filter_chains[3].filter_chain_match.{field}: not supported by ringside")
        );
    }
}

#[test]
fn layouts_ringside_cannot_serve_are_nacked_naming_their_sources() {
    let nack = |ls: Vec<Listener>| built(ls).unwrap_err();
    let mut matcher = virtual_outbound("o");
    matcher.filter_chain_matcher = Some(Default::default());
    assert_eq!(
        nack(vec![matcher]),
        "listener \"o\".filter_chain_matcher: the filter chain matcher (ringside takes filter_chain_match) is not supported by ringside"
    );
    let lone = receiver(
        "0.0.0.0_8080",
        "0.0.0.0",
        8080,
        vec![http("", "8080", None)],
    );
    assert_eq!(
        nack(vec![lone.clone()]),
        "listener \"0.0.0.0_8080\".bind_to_port: false without a listener with use_original_dst (none hands it connections) is not supported by ringside"
    );
    assert_eq!(
        nack(vec![virtual_outbound("a"), virtual_outbound("b"), lone.clone()]),
        "listener \"b\".use_original_dst: a second listener with use_original_dst (listener \"a\" has it; the listeners that do not bind have one parent) is not supported by ringside"
    );
    let mut both = virtual_outbound("o");
    both.bind_to_port = Some(BoolValue { value: false });
    assert_eq!(
        nack(vec![both]),
        "listener \"o\".bind_to_port: false with use_original_dst (the listener that hands connections on accepts them) is not supported by ringside"
    );
    let elsewhere = receiver(
        "0.0.0.0_8080",
        "0.0.0.0",
        8080,
        vec![http("", "8080", port(9090))],
    );
    assert_eq!(
        nack(vec![virtual_outbound("o"), elsewhere]),
        "listener \"0.0.0.0_8080\".filter_chains[0].filter_chain_match.destination_port: 9090, and the listener is at port 8080: the chain could never take a connection"
    );
    let outside = receiver(
        "svc",
        "10.96.0.10",
        80,
        vec![tcp("", "orders", prefixes(&[("10.0.0.0", 16)]))],
    );
    assert_eq!(
        nack(vec![virtual_outbound("o"), outside]),
        "listener \"svc\".filter_chains[0].filter_chain_match.prefix_ranges: none holds the listener's address 10.96.0.10: the chain could never take a connection"
    );
    let long = receiver(
        "l",
        "0.0.0.0",
        80,
        vec![tcp("", "orders", prefixes(&[("10.0.0.0", 33)]))],
    );
    assert_eq!(
        nack(vec![virtual_outbound("o"), long]),
        "listener \"l\".filter_chains[0].filter_chain_match.prefix_ranges[0].prefix_len: 33 is longer than the address (32 bits)"
    );
    let twin = receiver("twin", "0.0.0.0", 8080, vec![tcp("", "orders", None)]);
    assert_eq!(
        nack(vec![virtual_outbound("o"), lone, twin]),
        "listener \"twin\".filter_chains[0].filter_chain_match: takes port 8080 of 0.0.0.0/0, as listener \"0.0.0.0_8080\".filter_chains[0] does (ringside hands those connections to one listener)"
    );
}

#[test]
fn a_listener_without_original_destinations_or_a_chain_for_the_rest_is_served() {
    let nack = |ls: Vec<Listener>| built(ls).unwrap_err();
    let valid = |text: &str| {
        ringside_config::parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    };
    // Without the original_dst filter: a parent by the address connections come in on.
    let mut plain = virtual_inbound(
        vec![tcp("", "orders", port(80))],
        Some(tcp("", "orders", None)),
    );
    plain.listener_filters.clear();
    let text = built(vec![plain]).unwrap();
    assert!(!text.contains("transparent"), "{text}");
    assert!(text.contains("parent = \"virtualInbound\""), "{text}");
    valid(&text);
    // No chain for the rest: a parent that closes the connections no child takes, as
    // Envoy does.
    let closing = virtual_inbound(vec![tcp("", "orders", port(80))], None);
    let text = built(vec![closing]).unwrap();
    assert!(text.contains("unmatched = \"close\""), "{text}");
    valid(&text);
    let two = virtual_inbound(vec![tcp("", "orders", None), tcp("", "orders", None)], None);
    assert_eq!(
        nack(vec![two]),
        "listener \"virtualInbound\".filter_chains[1].filter_chain_match: empty, as that of listener \"virtualInbound\".filter_chains[0]: two filter chains with the same match (Envoy refuses them too)"
    );
    // use_original_dst without the listener filter: still transparent (the hand-off reads
    // the original destination).
    let mut bare = virtual_outbound("o");
    bare.listener_filters.clear();
    let text = built(vec![bare]).unwrap();
    assert!(text.contains("transparent = true"), "{text}");
}

#[test]
fn a_hand_off_chain_a_receiver_would_take_first_is_nacked() {
    let mut outbound = virtual_outbound("o");
    outbound
        .filter_chains
        .push(tcp("near", "orders", prefixes(&[("10.0.0.0", 8)])));
    outbound.filter_chains[2]
        .filter_chain_match
        .as_mut()
        .unwrap()
        .destination_port = Some(UInt32Value { value: 8080 });
    let lone = receiver(
        "0.0.0.0_8080",
        "0.0.0.0",
        8080,
        vec![http("", "8080", None)],
    );
    assert_eq!(
        built(vec![outbound.clone(), lone]).unwrap_err(),
        "listener \"o\".filter_chains[2].filter_chain_match: the block 10.0.0.0/8 at port 8080, which Envoy hands to listener \"0.0.0.0_8080\" (bind_to_port false) before trying this chain, is not supported by ringside"
    );
    // A receiver at one address leaves the others of that port to the chain, as Envoy does.
    let one = receiver("svc", "10.96.0.10", 8080, vec![http("", "8080", None)]);
    built(vec![outbound, one]).unwrap();
}

#[test]
fn matches_by_what_the_connection_opens_with_that_ringside_cannot_take() {
    let nack = |m: FilterChainMatch| {
        let inbound = virtual_inbound(
            vec![tcp("", "orders", None), tcp("", "orders", Some(m))],
            None,
        );
        built(vec![inbound]).unwrap_err()
    };
    let at = "listener \"virtualInbound\".filter_chains[1].filter_chain_match";
    assert_eq!(
        nack(opening(None, "quic", &[]).unwrap()),
        format!("{at}.transport_protocol: \"quic\" (ringside tells \"tls\" from \"raw_buffer\") is not supported by ringside")
    );
    let names = |n: &[&str]| FilterChainMatch {
        server_names: n.iter().map(|n| n.to_string()).collect(),
        ..FilterChainMatch::default()
    };
    assert_eq!(
        nack(names(&["api.example.com", "*"])),
        format!("{at}.server_names[1]: \"*\": a wildcard other than a leading \"*.\" (any subdomain, \"*.example.com\") is not supported by ringside")
    );
    assert_eq!(
        nack(names(&["*w.example.com"])),
        format!("{at}.server_names[0]: \"*w.example.com\": a wildcard other than a leading \"*.\" (any subdomain, \"*.example.com\") is not supported by ringside")
    );
    assert_eq!(
        nack(names(&["example.com."])),
        format!("{at}.server_names[0]: invalid server name \"example.com.\": lower-case DNS labels (\"api.example.com\"), or \"*.\" and labels for any subdomain")
    );
    let mut plain = names(&["api.example.com"]);
    plain.transport_protocol = "raw_buffer".into();
    assert_eq!(
        nack(plain),
        format!("{at}.server_names: with transport_protocol \"raw_buffer\": only a TLS ClientHello names a server, the chain could never take a connection")
    );
    assert_eq!(
        nack(opening(None, "tls", &["h2", "a b"]).unwrap()),
        format!("{at}.application_protocols[1]: invalid protocol \"a b\": 1 to 255 printable characters, e.g. \"h2\"")
    );
}

#[test]
fn two_chains_taking_the_same_opening_are_nacked_naming_both() {
    // A second chain for TLS with one of Istio's protocols at port 8080.
    let mut chains = istio_inbound();
    let again = opening(Some(8080), "tls", &["h2", "istio-http/1.1"]);
    chains.push(tcp("again", "orders", again));
    assert_eq!(
        built(vec![virtual_inbound(chains, None)]).unwrap_err(),
        "listener \"virtualInbound\".filter_chains[6].filter_chain_match: takes port 8080 of any address, over TLS, protocol \"istio-http/1.1\", as listener \"virtualInbound\".filter_chains[4] does (ringside hands those connections to one listener)"
    );
    // The same server name, however written.
    let sni = |n: &str| FilterChainMatch {
        server_names: vec![n.into()],
        transport_protocol: "tls".into(),
        ..FilterChainMatch::default()
    };
    let chains = vec![
        tcp("", "orders", None),
        tcp("", "orders", Some(sni("*.Example.com"))),
        tcp("", "orders", Some(sni("*.example.com"))),
    ];
    assert_eq!(
        built(vec![virtual_inbound(chains, None)]).unwrap_err(),
        "listener \"virtualInbound\".filter_chains[2].filter_chain_match: takes any port of any address, server name \"*.example.com\", over TLS, as listener \"virtualInbound\".filter_chains[1] does (ringside hands those connections to one listener)"
    );
}

#[test]
fn a_hand_off_chain_at_a_receivers_own_address_is_nacked_whatever_it_opens_with() {
    let mut outbound = virtual_outbound("o");
    let mut m = opening(Some(9000), "tls", &[]).unwrap();
    m.prefix_ranges = vec![CidrRange {
        address_prefix: "10.96.0.10".into(),
        prefix_len: Some(UInt32Value { value: 32 }),
    }];
    outbound
        .filter_chains
        .push(tcp("tls-db", "orders", Some(m)));
    let db = receiver(
        "10.96.0.10_9000",
        "10.96.0.10",
        9000,
        vec![tcp("", "orders", None)],
    );
    assert_eq!(
        built(vec![outbound, db]).unwrap_err(),
        "listener \"o\".filter_chains[2].filter_chain_match: the block 10.96.0.10/32 at port 9000, which Envoy hands to listener \"10.96.0.10_9000\" (bind_to_port false) before trying this chain, is not supported by ringside"
    );
}
