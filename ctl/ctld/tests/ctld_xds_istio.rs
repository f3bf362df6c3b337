//! Istio's listener layouts over the real ADS server (`tests/xds/ads_server.py`): outbound,
//! `virtualOutbound` (`use_original_dst`) and the `bind_to_port: false` listeners it hands
//! connections to, with filter chains by destination port and address block; inbound,
//! `virtualInbound` with chains by transport and ALPN. ctld ACKs them and pushes one
//! transparent parent and its children; the real proxy accepts that configuration and
//! reports every listener. (Connections through the hand-off need iptables in a network
//! namespace: `proxy/tests/interception.rs`.)

#![allow(clippy::unwrap_used)]

mod common;
mod xds;

use common::*;
use ringside_wire::{Conn, Peer, Reply, Request};
use serde_json::json;
use xds::*;

/// What ctld pushed (the configuration's text) and the proxy's listeners `(name, address,
/// protocol)`, sorted, once the proxy serves `resources` (version "v1", ACKed for each of
/// `kinds`).
fn served(
    driver: &str,
    resources: serde_json::Value,
    kinds: &[&str],
) -> (String, Vec<(String, String, String)>) {
    let mut ads = Ads::start();
    let metrics = free_port();
    let dirs = Dirs::new();
    dirs.write_config(
        "default.toml",
        &format!("[proxy]\ndriver = \"{driver}\"\nworkers = 1\n"),
    );
    ads.set("v1", resources);
    let ctld = start_ctld(&dirs, &ctld_args(&ads.url(), metrics));
    let proxy = Proxy::start_from_ctld(&ctld.socket, "n1", dirs.tmp.path());
    wait_for("the proxy to serve ctld's push", WAIT, || {
        let n = ctld.node("n1")?;
        (n.generation_desired > 0 && n.generation_acked == Some(n.generation_desired)).then_some(())
    });
    assert!(ads.nacks().is_empty(), "{driver}: {:?}", ads.nacks());
    let acks = ads.state()["acks"].clone();
    for kind in kinds {
        assert_eq!(acks[kind], "v1", "{driver}: {kind} in {acks}");
    }
    let Reply::Config { config, .. } = ctld.call(Request::GetConfig {
        node: Some("n1".into()),
        generation: None,
    }) else {
        panic!("{driver}: no configuration")
    };
    // The proxy runs them: the parent binds, its children share its address.
    let mut c = Conn::connect(&proxy.control).unwrap();
    ringside_wire::client_handshake(&mut c, Peer::Cli).unwrap();
    let Ok(Reply::ProxyStatus(status)) = c.call(Request::Status) else {
        panic!("{driver}: no proxy status")
    };
    let mut listeners: Vec<(String, String, String)> = status
        .listeners
        .iter()
        .map(|l| (l.name.clone(), l.address.clone(), l.protocol.clone()))
        .collect();
    listeners.sort();
    drop(proxy);
    drop(ctld);
    (config, listeners)
}

fn expect(at: &str) -> impl Fn(&str, &str) -> (String, String, String) + '_ {
    move |name, protocol| (name.to_owned(), at.to_owned(), protocol.to_owned())
}

#[test]
fn istios_outbound_listeners_are_acked_pushed_and_served_as_children() {
    for driver in DRIVERS {
        let b = Origin::start("b");
        let port = free_port();
        let mut cds = istio_clusters();
        cds.push(static_cluster("db", b.addr));
        let route = json!({"name": "b", "match": {"prefix": "/"}, "route": {"cluster": "db"}});
        let (config, listeners) = served(
            driver,
            json!({"cds": cds, "eds": [], "lds": istio_outbound(port),
                "rds": [route_config("8080", vec![route])]}),
            &["cds", "lds", "rds"],
        );
        for want in [
            "name = \"virtualOutbound\"\nprotocol = \"tcp\"\ntransparent = true",
            "name = \"0.0.0.0_8080\"\nparent = \"virtualOutbound\"",
            "[listeners.match]\naddresses = [\"10.96.0.10/32\"]\nports = [9000]",
            "name = \"0.0.0.0_7070.svc\"",
            "listener = \"0.0.0.0_8080\"",
        ] {
            assert!(config.contains(want), "{driver}: {want:?} in\n{config}");
        }
        let at = format!("127.0.0.1:{port}");
        let expect = expect(&at);
        assert_eq!(
            listeners,
            [
                expect("0.0.0.0_7070.rest", "tcp"),
                expect("0.0.0.0_7070.svc", "tcp"),
                expect("0.0.0.0_8080", "http"),
                expect("10.96.0.10_9000", "tcp"),
                expect("virtualOutbound", "tcp"),
                expect("virtualOutbound.virtualOutbound-blackhole", "tcp"),
            ],
            "{driver}"
        );
    }
}

#[test]
fn istios_inbound_chains_by_transport_and_alpn_are_acked_pushed_and_served_as_children() {
    let c = rcgen::generate_simple_self_signed(vec!["orders".into()]).unwrap();
    let (cert, key) = (c.cert.pem(), c.key_pair.serialize_pem());
    for driver in DRIVERS {
        let app = Origin::start("app");
        let port = free_port();
        let mut cds = istio_clusters();
        cds.push(
            json!({"name": "InboundPassthroughCluster", "type": "ORIGINAL_DST",
            "connect_timeout": "1s", "lb_policy": "CLUSTER_PROVIDED"}),
        );
        cds.push(static_cluster("inbound|8080||", app.addr));
        let (config, listeners) = served(
            driver,
            json!({"cds": cds, "eds": [], "lds": [istio_inbound(port, &cert, &key)], "rds": []}),
            // Inline routes: no RDS.
            &["cds", "lds"],
        );
        for want in [
            "name = \"virtualInbound\"\nprotocol = \"tcp\"\ntransparent = true",
            "[listeners.match]\ntransport = \"tls\"",
            "[listeners.match]\nalpn = [\"http/1.1\", \"h2c\"]\ntransport = \"plaintext\"",
            "[listeners.match]\nalpn = [\"istio-http/1.0\", \"istio-http/1.1\", \"istio-h2\"]\nports = [8080]\ntransport = \"tls\"",
            "[listeners.match]\nports = [8080]\ntransport = \"plaintext\"",
        ] {
            assert!(config.contains(want), "{driver}: {want:?} in\n{config}");
        }
        let at = format!("127.0.0.1:{port}");
        let expect = expect(&at);
        assert_eq!(
            listeners,
            [
                expect("virtualInbound", "tcp"),
                expect("virtualInbound.0.0.0.0_8080.plaintext", "http"),
                expect("virtualInbound.0.0.0.0_8080.tls.istio-http_1.0", "http"),
                expect("virtualInbound.virtualInbound", "tcp"),
                expect("virtualInbound.virtualInbound-blackhole", "tcp"),
                expect("virtualInbound.virtualInbound-catchall-http", "http"),
            ],
            "{driver}"
        );
    }
}
