//! TLS contexts end to end, in memory: rcgen certificates, configurations validated by
//! ringside-config, and rustls client and server connections driven against each other
//! through byte buffers (no sockets).
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use ringside_config::Config;
use rustls::client::danger::ServerCertVerifier;
use rustls::{ClientConfig, ClientConnection, HandshakeKind, ServerConfig, ServerConnection};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::resolve::{name_matches, BySni};
use super::verify::SpiffeVerifier;
use super::*;

const CART: &str = "spiffe://cluster.local/ns/shop/sa/cart";
const ORDERS: &str = "spiffe://cluster.local/ns/shop/sa/orders";

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let cert = p.self_signed(&key).unwrap();
    Ca { cert, key }
}

/// (cert PEM, key PEM, cert DER).
fn leaf(ca: &Ca, dns: &[&str], uri: Option<&str>, expired: bool) -> (String, String, Vec<u8>) {
    let key = KeyPair::generate().unwrap();
    let mut p =
        CertificateParams::new(dns.iter().map(|d| (*d).to_owned()).collect::<Vec<_>>()).unwrap();
    if let Some(uri) = uri {
        p.subject_alt_names
            .push(SanType::URI(uri.try_into().unwrap()));
    }
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    if expired {
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    let cert = p.signed_by(&key, &ca.cert, &ca.key).unwrap();
    (cert.pem(), key.serialize_pem(), cert.der().to_vec())
}

/// A directory of PEM files: ca, other-ca, a (a.example.com), b (*.b.example.com), cart and
/// orders (SPIFFE ids under ca), rogue (ORDERS' id under other-ca).
struct Pki {
    dir: tempfile::TempDir,
    ca: Ca,
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let main = ca("mesh CA");
    let other = ca("other CA");
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write("ca.pem", &main.cert.pem());
    write("other-ca.pem", &other.cert.pem());
    for (name, issuer, dns, uri) in [
        ("a", &main, &["a.example.com"][..], None),
        ("b", &main, &["*.b.example.com"][..], None),
        ("cart", &main, &[][..], Some(CART)),
        ("orders", &main, &[][..], Some(ORDERS)),
        ("rogue", &other, &[][..], Some(ORDERS)),
    ] {
        let (cert, key, _) = leaf(issuer, dns, uri, false);
        write(&format!("{name}.pem"), &cert);
        write(&format!("{name}-key.pem"), &key);
    }
    Pki { dir, ca: main }
}

fn config(pki: &Pki, text: &str) -> Config {
    ringside_config::parse_in(text, pki.dir.path()).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// A proxy whose mesh identity is `id` (trusting `bundle`), with an edge TLS listener, a
/// strict and a permissive mTLS listener, and clusters towards `peer`.
fn mesh_config(pki: &Pki, id: &str, bundle: &str, peer: &str) -> Config {
    config(
        pki,
        &format!(
            r#"
[mesh]
identity = {{ cert = "{id}.pem", key = "{id}-key.pem", trust_bundle = "{bundle}" }}

[[listeners]]
name = "edge"
bind = "127.0.0.1:0"
tls = {{ certificates = [ {{ cert = "a.pem", key = "a-key.pem" }}, {{ cert = "b.pem", key = "b-key.pem" }} ] }}

[[listeners]]
name = "inbound"
bind = "127.0.0.1:0"
mtls = "strict"

[[listeners]]
name = "migrating"
bind = "127.0.0.1:0"
mtls = "permissive"

[[listeners]]
name = "plain"
bind = "127.0.0.1:0"

[[clusters]]
name = "mesh"
protocol = "http2"
endpoints = [ "10.0.0.1:8443" ]
mtls = {{ peer = "{peer}" }}

[[clusters]]
name = "web"
protocol = "auto"
endpoints = [ "10.0.0.2:443" ]
tls = {{ ca = "ca.pem", sni = "x.b.example.com" }}

[[clusters]]
name = "clear"
endpoints = [ "10.0.0.3:80" ]
"#
        ),
    )
}

/// Runs a handshake to completion through memory; the first error either side reports.
fn handshake(client: &mut ClientConnection, server: &mut ServerConnection) -> Result<(), String> {
    fn pump(
        from: &mut impl std::ops::DerefMut<Target = rustls::ConnectionCommon<impl Sized>>,
        to: &mut impl std::ops::DerefMut<Target = rustls::ConnectionCommon<impl Sized>>,
        side: &str,
    ) -> Result<(), String> {
        let mut buf = Vec::new();
        while from.wants_write() {
            from.write_tls(&mut buf).unwrap();
        }
        let mut rest = &buf[..];
        while !rest.is_empty() {
            to.read_tls(&mut rest).unwrap();
            to.process_new_packets()
                .map_err(|e| format!("{side}: {e}"))?;
        }
        Ok(())
    }
    for _ in 0..10 {
        pump(client, server, "server")?;
        pump(server, client, "client")?;
        if !client.is_handshaking() && !server.is_handshaking() {
            // Deliver the TLS 1.3 tickets sent after the handshake.
            pump(server, client, "client")?;
            return Ok(());
        }
    }
    Err("handshake did not finish".into())
}

fn connect(
    client: &Arc<ClientConfig>,
    server: &Arc<ServerConfig>,
    name: &str,
) -> Result<(ClientConnection, ServerConnection), String> {
    let name = ServerName::try_from(name.to_owned()).unwrap();
    let mut c = ClientConnection::new(Arc::clone(client), name).unwrap();
    let mut s = ServerConnection::new(Arc::clone(server)).unwrap();
    handshake(&mut c, &mut s)?;
    Ok((c, s))
}

/// A plain WebPKI client trusting `ca.pem`, offering `alpn`.
fn web_client(pki: &Pki, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.cert.der().clone()).unwrap();
    let mut c = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    c.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    Arc::new(c)
}

#[test]
fn sni_picks_by_dns_name_with_one_label_wildcards() {
    assert!(name_matches("a.example.com", "a.example.com"));
    assert!(name_matches("*.b.example.com", "x.b.example.com"));
    assert!(!name_matches("*.b.example.com", "b.example.com"));
    assert!(!name_matches("*.b.example.com", "y.x.b.example.com"));
    assert!(!name_matches("*.b.example.com", ".b.example.com"));

    let pki = pki();
    let c = mesh_config(&pki, "cart", "ca.pem", ORDERS);
    let certs = &c
        .listener("edge")
        .unwrap()
        .tls
        .as_ref()
        .unwrap()
        .certificates;
    let by_sni = BySni::new(certs).unwrap();
    assert_eq!(by_sni.pick(Some("A.Example.COM.")), 0);
    assert_eq!(by_sni.pick(Some("x.b.example.com")), 1);
    assert_eq!(by_sni.pick(Some("unknown.example.com")), 0);
    assert_eq!(by_sni.pick(None), 0);
}

#[test]
fn edge_listener_serves_the_sni_certificate_and_negotiates_h2() {
    let pki = pki();
    let c = mesh_config(&pki, "cart", "ca.pem", ORDERS);
    let ctx = TlsContexts::build(&c);
    let server = ctx.server("edge").unwrap();
    assert!(ctx.server("plain").is_none());

    let (client, _) = connect(
        &web_client(&pki, &[b"h2", b"http/1.1"]),
        server,
        "x.b.example.com",
    )
    .unwrap();
    assert_eq!(client.alpn_protocol(), Some(&b"h2"[..]));
    let b = std::fs::read(pki.dir.path().join("b.pem")).unwrap();
    let b = rustls_pki_types::pem::PemObject::from_pem_slice(&b)
        .map(|d: CertificateDer<'_>| d.to_vec())
        .unwrap();
    assert_eq!(client.peer_certificates().unwrap()[0].as_ref(), &b[..]);

    let (client, _) = connect(&web_client(&pki, &[b"http/1.1"]), server, "a.example.com").unwrap();
    assert_eq!(client.alpn_protocol(), Some(&b"http/1.1"[..]));
}

#[test]
fn mesh_mtls_verifies_both_identities() {
    let pki = pki();
    // Two proxies: cart calls orders.
    let cart = mesh_config(&pki, "cart", "ca.pem", ORDERS);
    let orders = mesh_config(&pki, "orders", "ca.pem", CART);
    let client = TlsContexts::build(&cart).client(0).cloned().unwrap();
    let server = TlsContexts::build(&orders)
        .server("inbound")
        .cloned()
        .unwrap();
    let addr: std::net::SocketAddr = "10.0.0.1:8443".parse().unwrap();
    let name = sni_for(&cart.clusters[0], addr);
    assert_eq!(name.to_str(), "10.0.0.1");
    let (c, s) = connect(&client, &server, &name.to_str()).unwrap();
    assert_eq!(c.alpn_protocol(), Some(&b"h2"[..]));
    assert_eq!(
        peer_identity(s.peer_certificates().unwrap()).as_deref(),
        Some(CART)
    );
    assert_eq!(
        peer_identity(c.peer_certificates().unwrap()).as_deref(),
        Some(ORDERS)
    );
}

#[test]
fn mesh_mtls_rejects_the_wrong_identity_and_the_wrong_ca() {
    let pki = pki();
    let cart = mesh_config(
        &pki,
        "cart",
        "ca.pem",
        "spiffe://cluster.local/ns/shop/sa/payments",
    );
    let orders = mesh_config(&pki, "orders", "ca.pem", CART);
    let client = TlsContexts::build(&cart).client(0).cloned().unwrap();
    let server = TlsContexts::build(&orders)
        .server("inbound")
        .cloned()
        .unwrap();
    let e = connect(&client, &server, "10.0.0.1").unwrap_err();
    assert!(
        e.contains(&format!(
            "peer identity {ORDERS}, expected spiffe://cluster.local/ns/shop/sa/payments"
        )),
        "{e}"
    );

    // The rogue server has orders' id from another CA (and trusts it).
    let cart = mesh_config(&pki, "cart", "ca.pem", ORDERS);
    let rogue = mesh_config(&pki, "rogue", "other-ca.pem", CART);
    let client = TlsContexts::build(&cart).client(0).cloned().unwrap();
    let server = TlsContexts::build(&rogue)
        .server("inbound")
        .cloned()
        .unwrap();
    let e = connect(&client, &server, "10.0.0.1").unwrap_err();
    assert!(
        e.starts_with("client: ") && e.contains("UnknownIssuer"),
        "{e}"
    );
}

#[test]
fn strict_mtls_requires_a_client_certificate_and_permissive_does_not() {
    let pki = pki();
    let c = mesh_config(&pki, "orders", "ca.pem", CART);
    let ctx = TlsContexts::build(&c);
    // A client trusting the mesh CA but presenting no certificate, skipping the name check
    // through the SPIFFE verifier.
    let verifier = SpiffeVerifier::new(
        Arc::clone(&c.mesh.as_ref().unwrap().roots),
        vec![ORDERS.into()],
        &provider(),
    );
    let anonymous = Arc::new(
        ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(VERSIONS)
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth(),
    );
    let e = connect(&anonymous, ctx.server("inbound").unwrap(), "10.0.0.1").unwrap_err();
    assert!(e == "server: peer sent no certificates", "{e}");
    let (_, s) = connect(&anonymous, ctx.server("migrating").unwrap(), "10.0.0.1").unwrap();
    assert!(s.peer_certificates().is_none());
}

#[test]
fn the_spiffe_verifier_rejects_expired_certificates() {
    let pki = pki();
    let (_, _, expired) = leaf(&pki.ca, &[], Some(ORDERS), true);
    let (_, _, fresh) = leaf(&pki.ca, &[], Some(ORDERS), false);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.cert.der().clone()).unwrap();
    let v = SpiffeVerifier::new(Arc::new(roots), vec![ORDERS.into()], &provider());
    let name = ServerName::try_from("10.0.0.1").unwrap();
    let check = |der: Vec<u8>| {
        v.verify_server_cert(&CertificateDer::from(der), &[], &name, &[], UnixTime::now())
    };
    assert!(check(fresh).is_ok());
    assert_eq!(
        check(expired).unwrap_err(),
        rustls::Error::InvalidCertificate(rustls::CertificateError::Expired)
    );
}

#[test]
fn sessions_resume_across_rebuilt_contexts_but_not_across_listeners() {
    let pki = pki();
    let c = mesh_config(&pki, "cart", "ca.pem", ORDERS);
    let client = web_client(&pki, &[b"h2"]);
    let first = TlsContexts::build(&c);
    let (c1, _) = connect(&client, first.server("edge").unwrap(), "a.example.com").unwrap();
    assert_eq!(c1.handshake_kind(), Some(HandshakeKind::Full));
    // A reload builds new contexts: the session still resumes.
    let again = TlsContexts::build(&mesh_config(&pki, "cart", "ca.pem", ORDERS));
    let (c2, _) = connect(&client, again.server("edge").unwrap(), "a.example.com").unwrap();
    assert_eq!(c2.handshake_kind(), Some(HandshakeKind::Resumed));
    // Another listener with the same certificate does not accept that session.
    let other = config(&pki, "[[listeners]]\nname = \"edge2\"\nbind = \"127.0.0.1:0\"\ntls = { certificates = [ { cert = \"a.pem\", key = \"a-key.pem\" } ] }\n");
    let other = TlsContexts::build(&other);
    let (c3, _) = connect(&client, other.server("edge2").unwrap(), "a.example.com").unwrap();
    assert_eq!(c3.handshake_kind(), Some(HandshakeKind::Full));
}

#[test]
fn client_configs_follow_the_cluster() {
    let pki = pki();
    let c = mesh_config(&pki, "cart", "ca.pem", ORDERS);
    let ctx = TlsContexts::try_build(&c).unwrap();
    assert_eq!(ctx.client(0).unwrap().alpn_protocols, [b"h2".to_vec()]);
    assert_eq!(
        ctx.client(1).unwrap().alpn_protocols,
        [b"h2".to_vec(), b"http/1.1".to_vec()]
    );
    assert!(ctx.client(2).is_none());
    assert!(ctx.client(3).is_none());
    let addr: std::net::SocketAddr = "10.0.0.2:443".parse().unwrap();
    assert_eq!(sni_for(&c.clusters[1], addr).to_str(), "x.b.example.com");
    // The web cluster verifies b's wildcard certificate by its SNI.
    let server = ctx.server("edge").unwrap();
    let (client, _) = connect(ctx.client(1).unwrap(), server, "x.b.example.com").unwrap();
    assert_eq!(client.alpn_protocol(), Some(&b"h2"[..]));
}

#[test]
fn the_watcher_reports_a_settled_change() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cert.pem");
    std::fs::write(&file, "one").unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let watched = file.clone();
    let watcher = spawn_watcher(
        move || vec![watched.clone()],
        move || {
            seen.fetch_add(1, Ordering::SeqCst);
        },
        Duration::from_millis(20),
    )
    .unwrap();
    // Let it take a first look, then change the file (size changes, whatever the mtime
    // granularity).
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    std::fs::write(&file, "two, longer").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while calls.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "no change reported");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(calls.load(Ordering::SeqCst), 1, "one change, one call");
    watcher.stop();
}

#[test]
fn client_identities_gate_client_certificates_by_uri_san() {
    let pki = pki();
    // `cart` and `orders` (SPIFFE ids under ca.pem) and `a` (a DNS name only) as clients.
    let client = |id: &str| {
        let c = config(
            &pki,
            &format!(
                "[[listeners]]\nname = \"k\"\nbind = \"127.0.0.1:0\"\n\
                 tls = {{ certificates = [ {{ cert = \"{id}.pem\", key = \"{id}-key.pem\" }} ] }}\n"
            ),
        );
        let key = Arc::clone(&c.listeners[0].tls.as_ref().unwrap().certificates[0].key);
        let mut roots = rustls::RootCertStore::empty();
        roots.add(pki.ca.cert.der().clone()).unwrap();
        Arc::new(
            ClientConfig::builder_with_provider(provider())
                .with_protocol_versions(VERSIONS)
                .unwrap()
                .with_root_certificates(roots)
                .with_client_cert_resolver(Arc::new(SingleCertAndKey::from(key))),
        )
    };
    let listener = |identities: &str, require: bool| {
        let c = config(
            &pki,
            &format!(
                "[[listeners]]\nname = \"l\"\nbind = \"127.0.0.1:0\"\n\
                 tls = {{ certificates = [ {{ cert = \"a.pem\", key = \"a-key.pem\" }} ], \
                 ca = \"ca.pem\", require_client_certificate = {require}, \
                 client_identities = {identities} }}\n"
            ),
        );
        Arc::clone(TlsContexts::build(&c).server("l").unwrap())
    };
    let exact = listener(&format!("[ \"{ORDERS}\" ]"), true);
    let (_, s) = connect(&client("orders"), &exact, "a.example.com").unwrap();
    assert_eq!(
        peer_identity(s.peer_certificates().unwrap()).as_deref(),
        Some(ORDERS)
    );
    let e = connect(&client("cart"), &exact, "a.example.com").unwrap_err();
    assert!(
        e.contains(&format!("peer identity {CART}, expected {ORDERS}")),
        "{e}"
    );
    // A prefix: one namespace of the trust domain.
    let prefix = listener("[ \"spiffe://cluster.local/ns/shop/*\" ]", true);
    connect(&client("cart"), &prefix, "a.example.com").unwrap();
    connect(&client("orders"), &prefix, "a.example.com").unwrap();
    let e = connect(&client("a"), &prefix, "a.example.com").unwrap_err();
    assert!(e.contains("peer has no URI SAN identity"), "{e}");
    let other_ns = listener("[ \"spiffe://cluster.local/ns/billing/*\" ]", true);
    assert!(connect(&client("cart"), &other_ns, "a.example.com").is_err());
    // Optional client certificates: no certificate passes, a wrong one does not.
    let optional = listener(&format!("[ \"{ORDERS}\" ]"), false);
    let (_, s) = connect(&web_client(&pki, &[]), &optional, "a.example.com").unwrap();
    assert!(s.peer_certificates().is_none());
    assert!(connect(&client("cart"), &optional, "a.example.com").is_err());
    // A session from before the list changed does not resume (it would skip the check).
    let cart = client("cart");
    let (c1, _) = connect(&cart, &prefix, "a.example.com").unwrap();
    let (c2, _) = connect(&cart, &prefix, "a.example.com").unwrap();
    assert_eq!(c1.handshake_kind(), Some(HandshakeKind::Full));
    assert_eq!(c2.handshake_kind(), Some(HandshakeKind::Resumed));
    assert!(connect(&cart, &exact, "a.example.com").is_err());
}
