//! TLS on listeners: certificates chosen by SNI, ALPN (h2 and http/1.1), TLS 1.2 and 1.3,
//! session resumption, and certificate files replaced on disk taking effect for new
//! handshakes without a restart and without dropping open connections.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ringside_tests::certs::TestPki;
use ringside_tests::tools::{curl, run_bounded};
use ringside_tests::*;

fn tls_config(o: std::net::SocketAddr, certs: &[(&Path, &Path)]) -> String {
    let list: Vec<String> = certs
        .iter()
        .map(|(c, k)| {
            format!(
                "{{ cert = \"{}\", key = \"{}\" }}",
                c.display(),
                k.display()
            )
        })
        .collect();
    basic_config(
        &[o],
        Extra {
            listener: &format!("tls = {{ certificates = [ {} ] }}", list.join(", ")),
            ..Extra::default()
        },
    )
}

fn https(p: &Proxy, host: &str, ca: &Path, extra: &[&str]) -> tools::CurlOutput {
    let port = p.addr("in").port();
    let resolve = format!("{host}:{port}:127.0.0.1");
    let url = format!("https://{host}:{port}/x");
    let ca = ca.display().to_string();
    let mut args = vec!["--resolve", &resolve, "--cacert", &ca];
    args.extend_from_slice(extra);
    args.push(&url);
    curl(&args)
}

/// The subject of the certificate the server presents for `sni`, via `openssl s_client`.
fn served_subject(addr: std::net::SocketAddr, sni: &str) -> String {
    let out = run_bounded(
        Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &addr.to_string(),
                "-servername",
                sni,
            ])
            .stdin(std::process::Stdio::null()),
        Duration::from_secs(10),
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.lines()
        .find(|l| l.starts_with("subject="))
        .unwrap_or("")
        .to_string()
}

both_drivers!(
    fn sni_alpn_and_versions(d) {
        let pki = TestPki::new();
        let (a, ak) = pki.leaf("alpha", &["a.test"], &[]);
        let (b, bk) = pki.leaf("beta", &["b.test", "*.wild.test"], &[]);
        let o = Origin::echo();
        let p = Proxy::start(d, &tls_config(o.addr(), &[(&a, &ak), (&b, &bk)]));
        let ca = pki.ca_path();
        // Each name gets its certificate (curl verifies the name against it).
        for host in ["a.test", "b.test", "x.wild.test"] {
            let r = https(&p, host, &ca, &["--http1.1"]);
            assert_eq!(r.status, Some(200), "{host}: {r:?}");
            assert_eq!(r.http_version, "1.1");
        }
        // An unknown name gets the first (default) certificate.
        assert!(served_subject(p.addr("in"), "unknown.test").contains("alpha"));
        assert!(served_subject(p.addr("in"), "b.test").contains("beta"));
        // ALPN h2.
        let r = https(&p, "a.test", &ca, &["--http2"]);
        assert_eq!((r.status, r.http_version.as_str()), (Some(200), "2"), "{r:?}");
        // Both protocol versions.
        let r = https(&p, "a.test", &ca, &["--tlsv1.2", "--tls-max", "1.2"]);
        assert_eq!(r.status, Some(200), "TLS 1.2: {r:?}");
        let r = https(&p, "a.test", &ca, &["--tlsv1.3"]);
        assert_eq!(r.status, Some(200), "TLS 1.3: {r:?}");
        // The upstream learns the request came over TLS.
        assert_eq!(o.requests().last().unwrap().header("x-forwarded-proto"), Some("https"));
        // A plaintext request on the TLS port gets no HTTP answer.
        let r = curl(&[&format!("http://{}/", p.addr("in"))]);
        assert_eq!(r.status, None, "{r:?}");
    }
);

both_drivers!(
    fn a_parent_that_is_not_transparent_hands_tls_on_by_server_name(d) {
        // A gateway's one port: each host's TLS (and routes) in a child listener chosen by
        // the ClientHello's server name; what no child takes, the parent serves (here,
        // plaintext HTTP).
        let pki = TestPki::new();
        let (a, ak) = pki.leaf("api", &["api.test"], &[]);
        let (b, bk) = pki.leaf("legacy", &["*.legacy.test"], &[]);
        let (oa, ob, oc) = (Origin::text("a"), Origin::text("b"), Origin::text("c"));
        let child = |name: &str, sni: &str, cert: &Path, key: &Path, origin: &Origin| {
            format!(
                "[[listeners]]\nname = \"{name}\"\nparent = \"in\"\nmatch = {{ server_names = [ \"{sni}\" ] }}\n\
                 tls = {{ certificates = [ {{ cert = \"{}\", key = \"{}\" }} ] }}\n\
                 [[routes]]\nlistener = \"{name}\"\ncluster = \"{name}\"\n\
                 [[clusters]]\nname = \"{name}\"\nendpoints = [ \"{}\" ]\n",
                cert.display(),
                key.display(),
                origin.addr()
            )
        };
        let text = format!(
            "[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n\
             [[routes]]\nlistener = \"in\"\ncluster = \"plain\"\n\
             [[clusters]]\nname = \"plain\"\nendpoints = [ \"{}\" ]\n{}{}",
            oc.addr(),
            child("api", "api.test", &a, &ak, &oa),
            child("legacy", "*.legacy.test", &b, &bk, &ob),
        );
        let p = Proxy::start(d, &text);
        let ca = pki.ca_path();
        for (host, version, want) in [
            ("api.test", "--http1.1", "a"),
            ("api.test", "--http2", "a"),
            ("old.legacy.test", "--http1.1", "b"),
            ("old.legacy.test", "--http2", "b"),
        ] {
            let r = https(&p, host, &ca, &[version]);
            assert_eq!((r.status, r.stdout.as_str()), (Some(200), want), "{host} {version}: {r:?}");
        }
        let r = curl(&[&format!("http://{}/x", p.addr("in"))]);
        assert_eq!((r.status, r.stdout.as_str()), (Some(200), "c"), "{r:?}");
        drop(p);

        // `unmatched = "close"`: what no child takes (another server name, plaintext) is
        // closed and counted, as Envoy closes what no filter chain takes.
        let closing = text.replacen("bind = \"127.0.0.1:0\"\n", "bind = \"127.0.0.1:0\"\nunmatched = \"close\"\n", 1);
        let p = Proxy::start(d, &closing);
        let r = https(&p, "api.test", &ca, &["--http2"]);
        assert_eq!((r.status, r.stdout.as_str()), (Some(200), "a"), "{r:?}");
        let r = https(&p, "other.test", &ca, &["--insecure"]);
        assert_eq!(r.status, None, "another server name: {r:?}");
        let r = curl(&[&format!("http://{}/x", p.addr("in"))]);
        assert_eq!(r.status, None, "plaintext: {r:?}");
        assert!(eventually(WAIT, || p.listener_total("in", |l| l.unmatched) == 2));
        assert_eq!(oc.requests().len(), 1, "only the first proxy's plaintext request");
    }
);

/// `openssl s_client` sending one request with `Connection: close`.
fn s_client(addr: &str, version: &str, sess_flag: &str, sess: &Path) -> std::process::Output {
    let script = format!(
        "printf 'GET / HTTP/1.1\\r\\nHost: a.test\\r\\nConnection: close\\r\\n\\r\\n' | \
         openssl s_client -ign_eof -connect {addr} -servername a.test {version} {sess_flag} '{}'",
        sess.display()
    );
    run_bounded(
        Command::new("sh").arg("-c").arg(script),
        Duration::from_secs(10),
    )
}

both_drivers!(
    fn sessions_resume(d) {
        let pki = TestPki::new();
        let (a, ak) = pki.leaf("alpha", &["a.test"], &[]);
        let o = Origin::echo();
        let p = Proxy::start(d, &tls_config(o.addr(), &[(&a, &ak)]));
        let sess = pki.dir().join("session.pem");
        let addr = p.addr("in").to_string();
        for version in ["-tls1_2", "-tls1_3"] {
            // A whole request (`Connection: close`, `-ign_eof`): the client reads until the
            // server closes, so it has received the TLS 1.3 ticket that follows the handshake.
            let first = s_client(&addr, version, "-sess_out", &sess);
            assert!(String::from_utf8_lossy(&first.stdout).contains("New,"), "{version}");
            let second = s_client(&addr, version, "-sess_in", &sess);
            let text = String::from_utf8_lossy(&second.stdout);
            assert!(text.contains("Reused,"), "{version} resumption:\n{text}");
        }
    }
);

both_drivers!(
    fn replaced_certificate_files_take_effect_without_dropping_connections(d) {
        let pki = TestPki::new();
        let (a, ak) = pki.leaf("first", &["a.test"], &[]);
        let o = Origin::echo();
        let p = Proxy::start(d, &tls_config(o.addr(), &[(&a, &ak)]));
        assert!(served_subject(p.addr("in"), "a.test").contains("first"));

        // A client holds a keep-alive TLS connection across the change.
        let mut held = tls_client(&pki.ca_path(), p.addr("in"), "a.test");
        assert!(held.get("/before").starts_with("HTTP/1.1 200"));

        let (a2, ak2) = pki.leaf("second", &["a.test"], &[]);
        std::fs::copy(&a2, &a).unwrap();
        std::fs::copy(&ak2, &ak).unwrap();
        assert!(
            eventually(Duration::from_secs(10), || served_subject(p.addr("in"), "a.test")
                .contains("second")),
            "new handshakes get the new certificate"
        );
        assert!(held.get("/after").starts_with("HTTP/1.1 200"), "the open connection still serves");
    }
);

both_drivers!(
    fn files_of_a_reload_that_brings_the_first_certificate_are_watched(d) {
        // No certificate at start (so no file watcher yet); a reload makes the listener TLS.
        let pki = TestPki::new();
        let (a, ak) = pki.leaf("first", &["a.test"], &[]);
        let o = Origin::echo();
        let p = Proxy::start(d, &basic_config(&[o.addr()], Extra::default()));
        let generation = p.handle.generation();
        assert_eq!(p.reload(&tls_config(o.addr(), &[(&a, &ak)])), Reloaded::Applied(generation + 1));
        assert!(served_subject(p.addr("in"), "a.test").contains("first"));
        let (a2, ak2) = pki.leaf("second", &["a.test"], &[]);
        std::fs::copy(&a2, &a).unwrap();
        std::fs::copy(&ak2, &ak).unwrap();
        assert!(
            eventually(Duration::from_secs(10), || served_subject(p.addr("in"), "a.test")
                .contains("second")),
            "the files named by the reload are watched"
        );
    }
);

/// A blocking rustls client holding one keep-alive connection.
struct TlsClient {
    stream: rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>,
}

fn tls_client(ca: &Path, addr: std::net::SocketAddr, name: &str) -> TlsClient {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let cfg = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let conn = rustls::ClientConnection::new(
        std::sync::Arc::new(cfg),
        rustls_pki_types::ServerName::try_from(name.to_string()).unwrap(),
    )
    .unwrap();
    let tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    TlsClient {
        stream: rustls::StreamOwned::new(conn, tcp),
    }
}

impl TlsClient {
    /// Sends a GET and reads its (length-delimited) response.
    fn get(&mut self, path: &str) -> String {
        use std::io::{Read, Write};
        write!(self.stream, "GET {path} HTTP/1.1\r\nHost: a.test\r\n\r\n").unwrap();
        self.stream.flush().unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = self.stream.read(&mut buf).unwrap();
            assert!(n > 0, "connection closed");
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                if body.len() >= len {
                    return text;
                }
            }
        }
    }
}

both_drivers!(
    fn upstream_tls_verifies_the_server_name(d) {
        let pki = TestPki::new();
        let (c, k) = pki.leaf("orders", &["orders.internal"], &[]);
        let o = Origin::echo();
        let inner = Proxy::start(d, &tls_config(o.addr(), &[(&c, &k)]));
        let outer = |protocol: &str, sni: &str| {
            Proxy::start(
                d,
                &basic_config(
                    &[inner.addr("in")],
                    Extra {
                        cluster: &format!(
                            "protocol = \"{protocol}\"\ntls = {{ ca = \"{}\", sni = \"{sni}\" }}",
                            pki.ca_path().display()
                        ),
                        ..Extra::default()
                    },
                ),
            )
        };
        for protocol in ["http1", "http2", "auto"] {
            let good = outer(protocol, "orders.internal");
            for _ in 0..3 {
                // Several requests: HTTP/1.1 reuses its pooled TLS connection.
                let r = curl(&[&format!("http://{}/x", good.addr("in"))]);
                assert_eq!(r.status, Some(200), "{protocol}: {r:?}");
            }
            let bad = outer(protocol, "payments.internal");
            let r = curl(&[&format!("http://{}/x", bad.addr("in"))]);
            assert_eq!(r.status, Some(502), "{protocol}: a name the certificate does not carry: {r:?}");
        }
        assert_eq!(o.requests().len(), 9);
    }
);

both_drivers!(
    fn upstream_tls_checks_identities_in_place_of_the_name(d) {
        // `tls.identities`: the upstream's certificate must chain to `ca` and carry one of
        // the URI SANs; its DNS names no longer matter (Istio's outbound clusters check
        // the destination's SPIFFE id this way).
        let pki = TestPki::new();
        let (c, k) = pki.leaf("orders", &["orders.internal"], &["spiffe://ringside.test/orders"]);
        let o = Origin::echo();
        let inner = Proxy::start(d, &tls_config(o.addr(), &[(&c, &k)]));
        let outer = |identities: &str| {
            Proxy::start(
                d,
                &basic_config(
                    &[inner.addr("in")],
                    Extra {
                        cluster: &format!(
                            "tls = {{ ca = \"{}\", sni = \"elsewhere.internal\", identities = [ {identities} ] }}",
                            pki.ca_path().display()
                        ),
                        ..Extra::default()
                    },
                ),
            )
        };
        let good = outer("\"spiffe://ringside.test/payments\", \"spiffe://ringside.test/orders\"");
        let r = curl(&[&format!("http://{}/x", good.addr("in"))]);
        assert_eq!(r.status, Some(200), "one of the identities, whatever the name: {r:?}");
        let bad = outer("\"spiffe://ringside.test/payments\"");
        let r = curl(&[&format!("http://{}/x", bad.addr("in"))]);
        assert_eq!(r.status, Some(502), "none of them: {r:?}");
        assert_eq!(o.requests().len(), 1);
    }
);

both_drivers!(
    fn certificates_pushed_inline_replace_the_running_ones(d) {
        let pki = TestPki::new();
        let (a, ak) = pki.leaf("first", &["a.test"], &[]);
        let (b, bk) = pki.leaf("pushed", &["a.test"], &[]);
        let o = Origin::echo();
        let inline = |c: &Path, k: &Path| {
            basic_config(
                &[o.addr()],
                Extra {
                    listener: &format!(
                        "tls = {{ certificates = [ {{ cert_pem = '''{}''', key_pem = '''{}''' }} ] }}",
                        std::fs::read_to_string(c).unwrap(),
                        std::fs::read_to_string(k).unwrap()
                    ),
                    ..Extra::default()
                },
            )
        };
        let p = Proxy::start(d, &inline(&a, &ak));
        assert!(served_subject(p.addr("in"), "a.test").contains("first"));
        p.reload(&inline(&b, &bk));
        assert!(served_subject(p.addr("in"), "a.test").contains("pushed"));
    }
);

both_drivers!(
    fn a_tcp_listener_originates_tls(d) {
        let pki = TestPki::new();
        let (c, k) = pki.leaf("orders", &["orders.internal"], &[]);
        let o = Origin::echo();
        let inner = Proxy::start(d, &tls_config(o.addr(), &[(&c, &k)]));
        let outer = Proxy::start(
            d,
            &format!(
                "[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\nprotocol = \"tcp\"\ncluster = \"app\"\n\
                 [[clusters]]\nname = \"app\"\nendpoints = [\"{}\"]\ntls = {{ ca = \"{}\", sni = \"orders.internal\" }}\n",
                inner.addr("in"),
                pki.ca_path().display()
            ),
        );
        let r = curl(&["--http1.1", &format!("http://{}/tcp", outer.addr("in"))]);
        assert_eq!(r.status, Some(200), "{r:?}");
        assert_eq!(o.request(0).target, "/tcp");
    }
);

both_drivers!(
    fn invalid_replacement_files_keep_the_running_certificate(d) {
        let pki = TestPki::new();
        let (a, ak) = pki.leaf("first", &["a.test"], &[]);
        let o = Origin::echo();
        let p = Proxy::start(d, &tls_config(o.addr(), &[(&a, &ak)]));
        // A key that does not match the certificate, then a file that is not PEM at all.
        let (_, other_key) = pki.leaf("other", &["a.test"], &[]);
        std::fs::copy(&other_key, &ak).unwrap();
        // A negative check: nothing may change, so wait past the watcher's period (1 s) and
        // its settle tick before looking.
        std::thread::sleep(Duration::from_millis(2500));
        assert!(served_subject(p.addr("in"), "a.test").contains("first"), "mismatched key refused");
        std::fs::write(&a, b"not a certificate").unwrap();
        std::thread::sleep(Duration::from_millis(2500));
        assert!(served_subject(p.addr("in"), "a.test").contains("first"), "garbage refused");
        let r = https(&p, "a.test", &pki.ca_path(), &[]);
        assert_eq!(r.status, Some(200), "still serving: {r:?}");
    }
);

both_drivers!(
    fn client_certificates_are_verified_against_the_listeners_ca(d) {
        // `tls.ca`: a client certificate is asked for and verified; its URI SAN is the
        // client's identity (sent upstream in X-Forwarded-Client-Cert). With
        // `require_client_certificate` a client without one, or with one from another CA, is
        // refused in the handshake and nothing reaches the origin.
        let pki = TestPki::new();
        let (cert, key) = pki.leaf("server", &["api.test"], &[]);
        let (client, client_key) = pki.leaf("client", &[], &["spiffe://ringside.test/partner"]);
        let (stranger, stranger_key) =
            pki.other_ca_leaf("stranger", &[], &["spiffe://evil.test/partner"]);
        let o = Origin::echo();
        let config_with = |require: bool, identities: &str| {
            basic_config(
                &[o.addr()],
                Extra {
                    listener: &format!(
                        "tls = {{ certificates = [ {{ cert = \"{}\", key = \"{}\" }} ], ca = \"{}\", require_client_certificate = {require}{identities} }}",
                        cert.display(),
                        key.display(),
                        pki.ca_path().display()
                    ),
                    ..Extra::default()
                },
            )
        };
        let config = |require: bool| config_with(require, "");
        let p = Proxy::start(d, &config(true));
        let ca = pki.ca_path();
        let (c, k) = (client.display().to_string(), client_key.display().to_string());
        let ok = https(&p, "api.test", &ca, &["--cert", &c, "--key", &k]);
        assert_eq!(ok.status, Some(200), "{ok:?}");
        assert_eq!(
            o.request(0).header("x-forwarded-client-cert"),
            Some("URI=spiffe://ringside.test/partner")
        );
        let none = https(&p, "api.test", &ca, &[]);
        assert_eq!(none.status, None, "no certificate: refused in the handshake: {none:?}");
        let (s, sk) = (stranger.display().to_string(), stranger_key.display().to_string());
        let other = https(&p, "api.test", &ca, &["--cert", &s, "--key", &sk]);
        assert_eq!(other.status, None, "another CA's: refused: {other:?}");
        assert_eq!(o.requests().len(), 1, "nothing else reached the origin");

        // Not required: a client without a certificate is served (no identity); one that
        // presents a certificate must still present a valid one.
        p.reload(&config(false));
        let none = https(&p, "api.test", &ca, &[]);
        assert_eq!(none.status, Some(200), "{none:?}");
        assert_eq!(o.request(1).header("x-forwarded-client-cert"), None);
        let other = https(&p, "api.test", &ca, &["--cert", &s, "--key", &sk]);
        assert_eq!(other.status, None, "another CA's: still refused: {other:?}");
        let ok = https(&p, "api.test", &ca, &["--cert", &c, "--key", &k]);
        assert_eq!(ok.status, Some(200), "{ok:?}");
        assert_eq!(o.requests().len(), 3);

        // `client_identities`: the CA's certificate must also carry an accepted URI SAN, by
        // exact identity or by prefix; another of the CA's clients is refused in the handshake.
        let (rival, rival_key) = pki.leaf("rival", &[], &["spiffe://ringside.test/rival"]);
        let (r, rk) = (rival.display().to_string(), rival_key.display().to_string());
        // Checked in the handshake, before ALPN picks the protocol: both are tried.
        for identities in [
            ", client_identities = [ \"spiffe://ringside.test/partner\" ]",
            ", client_identities = [ \"spiffe://other.test/*\", \"spiffe://ringside.test/part*\" ]",
        ] {
            p.reload(&config_with(true, identities));
            for proto in ["--http1.1", "--http2"] {
                let ok = https(&p, "api.test", &ca, &[proto, "--cert", &c, "--key", &k]);
                assert_eq!(ok.status, Some(200), "{identities} {proto}: {ok:?}");
                let rival = https(&p, "api.test", &ca, &[proto, "--cert", &r, "--key", &rk]);
                assert_eq!(rival.status, None, "{identities} {proto}: refused: {rival:?}");
            }
        }
        // Optional certificates: a client without one is still served.
        p.reload(&config_with(
            false,
            ", client_identities = [ \"spiffe://ringside.test/partner\" ]",
        ));
        let none = https(&p, "api.test", &ca, &[]);
        assert_eq!(none.status, Some(200), "{none:?}");
        let rival = https(&p, "api.test", &ca, &["--cert", &r, "--key", &rk]);
        assert_eq!(rival.status, None, "{rival:?}");
        assert_eq!(o.requests().len(), 8, "no refused client reached the origin");
    }
);

/// What `openssl` says of a certificate file: `args` after `x509 -in FILE -noout`.
fn openssl_x509(file: &Path, args: &[&str]) -> String {
    let out = run_bounded(
        Command::new("openssl")
            .args(["x509", "-in"])
            .arg(file)
            .arg("-noout")
            .args(args),
        Duration::from_secs(10),
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

both_drivers!(
    fn the_client_cert_details_of_x_forwarded_client_cert(d) {
        // `client_cert_details`: ringside's element says what Envoy's would, in its order;
        // `openssl` computes the expected hash and subject (RFC 2253) from the same files.
        let pki = TestPki::new();
        let own = "spiffe://ringside.test/ns/shop/sa/api";
        let (cert, key) = pki.leaf("server", &["api.test"], &[own]);
        let partner = "spiffe://ringside.test/partner";
        let (client, client_key) = pki.leaf("client", &["client.test"], &[partner]);
        let o = Origin::echo();
        let config = |details: &str, mode: &str| {
            basic_config(
                &[o.addr()],
                Extra {
                    listener: &format!(
                        "tls = {{ certificates = [ {{ cert = \"{}\", key = \"{}\" }} ], ca = \"{}\" }}\nclient_cert_details = {details}\nforward_client_cert = \"{mode}\"",
                        cert.display(),
                        key.display(),
                        pki.ca_path().display()
                    ),
                    ..Extra::default()
                },
            )
        };
        let fingerprint = openssl_x509(&client, &["-fingerprint", "-sha256"]);
        let hash = fingerprint
            .split_once('=')
            .map(|(_, h)| h.replace(':', "").to_ascii_lowercase())
            .unwrap();
        let subject = openssl_x509(&client, &["-subject", "-nameopt", "RFC2253"]);
        let subject = subject.strip_prefix("subject=").unwrap_or(&subject).to_string();
        let p = Proxy::start(
            d,
            &config(r#"[ "dns", "uri", "subject", "hash", "by" ]"#, "sanitize_set"),
        );
        let ca = pki.ca_path();
        let (c, k) = (client.display().to_string(), client_key.display().to_string());
        let want =
            format!("By={own};Hash={hash};Subject=\"{subject}\";URI={partner};DNS=client.test");
        for (i, version) in ["--http1.1", "--http2"].into_iter().enumerate() {
            let r = https(&p, "api.test", &ca, &[version, "--cert", &c, "--key", &k]);
            assert_eq!(r.status, Some(200), "{r:?}");
            let seen = o.request(i);
            assert_eq!(seen.header("x-forwarded-client-cert"), Some(want.as_str()), "{version}");
        }
        // Appended after the client's own elements (APPEND_FORWARD); no certificate, none.
        p.reload(&config(r#"[ "hash", "uri" ]"#, "append_forward"));
        let sent = "X-Forwarded-Client-Cert: By=spiffe://edge;URI=spiffe://first";
        let r = https(&p, "api.test", &ca, &["--cert", &c, "--key", &k, "-H", sent]);
        assert_eq!(r.status, Some(200), "{r:?}");
        assert_eq!(
            o.request(2).header("x-forwarded-client-cert"),
            Some(&*format!("By=spiffe://edge;URI=spiffe://first,Hash={hash};URI={partner}"))
        );
        let r = https(&p, "api.test", &ca, &["-H", sent]);
        assert_eq!(r.status, Some(200), "{r:?}");
        assert_eq!(o.request(3).header("x-forwarded-client-cert"), None);
    }
);
