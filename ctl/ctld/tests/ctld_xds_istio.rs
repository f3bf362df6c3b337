//! Istio's outbound listener layout over the real ADS server (`tests/xds/ads_server.py`):
//! `virtualOutbound` (`use_original_dst`) and the `bind_to_port: false` listeners it hands
//! connections to, with filter chains by destination port and address block. ctld ACKs them
//! and pushes one transparent parent and its children; the real proxy accepts that
//! configuration and reports every listener. (Connections through the hand-off need iptables
//! in a network namespace: `proxy/tests/interception.rs`.)

#![allow(clippy::unwrap_used)]

mod common;
mod xds;

use common::*;
use ringside_wire::{Conn, Peer, Reply, Request};
use serde_json::json;
use xds::*;

#[test]
fn istios_outbound_listeners_are_acked_pushed_and_served_as_children() {
    for driver in DRIVERS {
        let mut ads = Ads::start();
        let b = Origin::start("b");
        let (port, metrics) = (free_port(), free_port());
        let dirs = Dirs::new();
        dirs.write_config(
            "default.toml",
            &format!("[proxy]\ndriver = \"{driver}\"\nworkers = 1\n"),
        );
        let mut cds = istio_clusters();
        cds.push(static_cluster("db", b.addr));
        let route = json!({"name": "b", "match": {"prefix": "/"}, "route": {"cluster": "db"}});
        ads.set(
            "v1",
            json!({"cds": cds, "eds": [], "lds": istio_outbound(port),
                "rds": [route_config("8080", vec![route])]}),
        );
        let ctld = start_ctld(&dirs, &ctld_args(&ads.url(), metrics));
        let proxy = Proxy::start_from_ctld(&ctld.socket, "n1", dirs.tmp.path());
        wait_for("the proxy to serve ctld's push", WAIT, || {
            let n = ctld.node("n1")?;
            (n.generation_desired > 0 && n.generation_acked == Some(n.generation_desired))
                .then_some(())
        });
        assert!(ads.nacks().is_empty(), "{driver}: {:?}", ads.nacks());
        let acks = ads.state()["acks"].clone();
        for kind in ["cds", "lds", "rds"] {
            assert_eq!(acks[kind], "v1", "{driver}: {kind} in {acks}");
        }

        let Reply::Config { config, .. } = ctld.call(Request::GetConfig {
            node: Some("n1".into()),
            generation: None,
        }) else {
            panic!("{driver}: no configuration")
        };
        for want in [
            "name = \"virtualOutbound\"\nprotocol = \"tcp\"\ntransparent = true",
            "name = \"0.0.0.0_8080\"\nparent = \"virtualOutbound\"",
            "[listeners.match]\naddresses = [\"10.96.0.10/32\"]\nports = [9000]",
            "name = \"0.0.0.0_7070.svc\"",
            "listener = \"0.0.0.0_8080\"",
        ] {
            assert!(config.contains(want), "{driver}: {want:?} in\n{config}");
        }

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
        let at = format!("127.0.0.1:{port}");
        let expect =
            |name: &str, protocol: &str| (name.to_owned(), at.clone(), protocol.to_owned());
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
        drop(proxy);
        drop(ctld);
    }
}
