//! SDS, end to end: a listener whose `DownstreamTlsContext` names its certificate by SDS
//! (`tls_certificate_sds_secret_configs`) is served once the real xDS server
//! (`tests/xds/ads_server.py`) sent that `Secret`; a certificate rotated through SDS under
//! load is served by the proxy (the TLS client sees the new certificate) with no failed
//! request, on both I/O drivers. Twice: the secret over ADS (`sds_config.ads`), and from a
//! local SDS server on a Unix socket as istio-agent serves an Istio sidecar
//! (`api_config_source` → `envoy_grpc` `sds-grpc`, ctld's `--xds-sds`), where a secret of
//! the same name over ADS must not be taken for it and a reset local stream reconnects; and a
//! local server that comes up after ctld is reached.

#![allow(clippy::unwrap_used)]

mod common;
mod xds;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use xds::*;

/// Where the listener's certificate comes from.
#[derive(Clone, Copy, PartialEq)]
enum Source {
    Ads,
    /// The local SDS server (`--sds-uds` of the test server, `--xds-sds` of ctld).
    Local,
}

impl Source {
    fn secret(self) -> &'static str {
        match self {
            Source::Ads => "server-cert",
            Source::Local => "default",
        }
    }

    fn sds_config(self) -> Value {
        match self {
            Source::Ads => json!({"ads": {}, "resource_api_version": "V3"}),
            // As istiod writes it.
            Source::Local => json!({"api_config_source": {
                    "api_type": "GRPC", "transport_api_version": "V3",
                    "set_node_on_first_message_only": true,
                    "grpc_services": [{"envoy_grpc": {"cluster_name": "sds-grpc"}}]},
                "initial_fetch_timeout": "0s", "resource_api_version": "V3"}),
        }
    }
}

/// A self-signed certificate for `localhost`: its PEM, its key's PEM, its DER.
struct Cert {
    pem: String,
    key: String,
    der: CertificateDer<'static>,
}

fn cert() -> Cert {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    Cert {
        pem: c.cert.pem(),
        key: c.key_pair.serialize_pem(),
        der: c.cert.der().clone(),
    }
}

fn secret(name: &str, c: &Cert) -> Value {
    json!({"name": name, "tls_certificate": {
        "certificate_chain": {"inline_string": c.pem},
        "private_key": {"inline_string": c.key}}})
}

/// The resources, with `c` as the certificate from `from`; `decoy` is sent as the secret of
/// the same name from the other source.
fn resources(port: u16, origin: &Origin, from: Source, c: &Cert, decoy: &Cert) -> Value {
    let mut l = listener("https", port, "r1");
    l["filter_chains"][0]["transport_socket"] = json!({"name": "envoy.transport_sockets.tls",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "common_tls_context": {"tls_certificate_sds_secret_configs": [
                {"name": from.secret(), "sds_config": from.sds_config()}]}}});
    let (ads, local) = match from {
        Source::Ads => (c, decoy),
        Source::Local => (decoy, c),
    };
    json!({
        "cds": [static_cluster("b", origin.addr)],
        "lds": [l],
        "rds": [route_config("r1", vec![json!({"match": {"prefix": "/"}, "route": {"cluster": "b"}})])],
        "sds": [secret(from.secret(), ads)],
        "sds_local": [secret(from.secret(), local)],
    })
}

/// One HTTPS request on a new connection: its status and the certificate served.
fn https_get(
    config: &Arc<rustls::ClientConfig>,
    port: u16,
) -> Option<(u16, CertificateDer<'static>)> {
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(config.clone(), name).ok()?;
    let tcp = TcpStream::connect(("127.0.0.1", port)).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(b"GET /x HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .ok()?;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tls.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&out);
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let served = tls.conn.peer_certificates()?.first()?.clone().into_owned();
    Some((status, served))
}

fn client(trusted: &[&Cert]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in trusted {
        roots.add(c.der.clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    // Full handshakes only: a resumed session does not show the server's certificate again.
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

#[test]
fn a_certificate_rotated_through_sds_is_served_without_failed_requests() {
    rotation(Source::Ads);
}

#[test]
fn a_certificate_of_the_local_sds_server_is_served_rotated_and_survives_a_reset() {
    rotation(Source::Local);
}

fn rotation(from: Source) {
    for driver in DRIVERS {
        // `three`, the decoy, is not trusted: a handshake with it fails.
        let (one, two, three) = (cert(), cert(), cert());
        let config = client(&[&one, &two]);
        let dirs = Dirs::new();
        let socket = dirs.tmp.path().join("sds.sock");
        let mut ads = match from {
            Source::Ads => Ads::start(),
            Source::Local => Ads::start_with(None, &["--sds-uds".as_ref(), socket.as_os_str()]),
        };
        let origin = Origin::start("b");
        let port = free_port();
        dirs.write_config(
            "default.toml",
            &format!("[proxy]\ndriver = \"{driver}\"\nworkers = 1\n"),
        );
        ads.set("v1", resources(port, &origin, from, &one, &three));
        let mut args = ctld_args(&ads.url(), free_port());
        if from == Source::Local {
            args.extend(["--xds-sds".to_owned(), socket.display().to_string()]);
        }
        let ctld = start_ctld(&dirs, &args);
        let proxy = Proxy::start_from_ctld(&ctld.socket, "n1", dirs.tmp.path());
        wait_for("the SDS certificate served", WAIT, || {
            https_get(&config, port).filter(|(s, c)| *s == 200 && *c == one.der)
        });

        let load = {
            let config = config.clone();
            std::thread::spawn(move || {
                let mut out = Vec::new();
                let start = Instant::now();
                while start.elapsed() < Duration::from_secs(4) && out.len() < 300 {
                    out.push(https_get(&config, port));
                    std::thread::sleep(Duration::from_millis(10));
                }
                out
            })
        };
        std::thread::sleep(Duration::from_millis(800));
        ads.set("v2", resources(port, &origin, from, &two, &three));
        let results = load.join().unwrap();
        assert!(results.len() >= 50, "{driver}: {} requests", results.len());
        let failed = results
            .iter()
            .filter(|r| !matches!(r, Some((200, c)) if *c == one.der || *c == two.der))
            .count();
        assert_eq!(failed, 0, "{driver}: {failed} of {} failed", results.len());
        let served = |r: &Option<(u16, CertificateDer<'static>)>| r.as_ref().unwrap().1.clone();
        assert_eq!(
            served(&results[0]),
            one.der,
            "{driver}: the first certificate first"
        );
        assert_eq!(
            served(results.last().unwrap()),
            two.der,
            "{driver}: the rotated certificate last"
        );
        assert!(ads.nacks().is_empty(), "{driver}: {:?}", ads.nacks());
        let kind = match from {
            Source::Ads => "sds",
            Source::Local => "sds_local",
        };
        let sds_acked = ads.state()["acks"][kind].as_str().map(str::to_owned);
        assert_eq!(sds_acked.as_deref(), Some("v2"), "{driver}");
        if from == Source::Local {
            // The local server ends its stream: ctld opens another and takes the next
            // rotation from it.
            ads.reset_local();
            std::thread::sleep(Duration::from_millis(300));
            ads.set("v3", resources(port, &origin, from, &one, &three));
            wait_for("the certificate after the reset served", WAIT, || {
                https_get(&config, port).filter(|(s, c)| *s == 200 && *c == one.der)
            });
            let s = ads.state();
            let local = |v: &Value| v["local"].as_bool() == Some(true);
            assert_eq!(
                s["streams"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|v| local(v))
                    .count(),
                1,
                "{driver}: one local stream open: {s}"
            );
            assert_eq!(s["acks"]["sds_local"].as_str(), Some("v3"), "{driver}");
        }
        drop(proxy);
        drop(ctld);
    }
}

/// The local SDS server is not up when ctld starts (istio-agent comes up after it): the ADS
/// side is accepted and waits for the secret, ctld keeps trying the socket with its backoff,
/// and once a server listens there its certificate is served, on both I/O drivers.
#[test]
fn a_local_sds_server_that_comes_up_late_is_reached() {
    for driver in DRIVERS {
        let one = cert();
        let config = client(&[&one]);
        let dirs = Dirs::new();
        let socket = dirs.tmp.path().join("sds.sock");
        let mut ads = Ads::start();
        let origin = Origin::start("b");
        let port = free_port();
        dirs.write_config(
            "default.toml",
            &format!("[proxy]\ndriver = \"{driver}\"\nworkers = 1\n"),
        );
        ads.set("v1", resources(port, &origin, Source::Local, &one, &one));
        let mut args = ctld_args(&ads.url(), free_port());
        args.extend(["--xds-sds".to_owned(), socket.display().to_string()]);
        let ctld = start_ctld(&dirs, &args);
        let proxy = Proxy::start_from_ctld(&ctld.socket, "n1", dirs.tmp.path());
        std::thread::sleep(Duration::from_millis(1500));
        assert!(
            https_get(&config, port).is_none(),
            "{driver}: served before its certificate came"
        );
        let mut agent = Ads::start_with(None, &["--sds-uds".as_ref(), socket.as_os_str()]);
        agent.set("a1", json!({"sds_local": [secret("default", &one)]}));
        wait_for("the late local server's certificate served", WAIT, || {
            https_get(&config, port).filter(|(s, c)| *s == 200 && *c == one.der)
        });
        assert_eq!(
            agent.state()["acks"]["sds_local"].as_str(),
            Some("a1"),
            "{driver}"
        );
        assert!(ads.nacks().is_empty(), "{driver}: {:?}", ads.nacks());
        drop(proxy);
        drop(ctld);
    }
}
