//! TLS, mesh, authz and HTTP/2 keys: certificates generated with rcgen into a tempdir.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};

use crate::model::{AuthzAction, Config, ListenerKind, UpstreamProtocol};
use crate::tls::MtlsMode;
use crate::{load_file, parse, parse_in, reload_material};

const SPIFFE: &str = "spiffe://cluster.local/ns/shop/sa/cart";

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

/// (cert PEM, key PEM) of a leaf signed by `ca` with DNS names and optional URI SAN.
fn leaf(ca: &Ca, dns: &[&str], uri: Option<&str>, expired: bool) -> (String, String) {
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
    (cert.pem(), key.serialize_pem())
}

/// A directory with: ca.pem, a.pem/a-key.pem (a.example.com), b.pem/b-key.pem
/// (*.b.example.com), id.pem/id-key.pem (spiffe), old.pem/old-key.pem (expired), plain.pem
/// /plain-key.pem (no URI SAN), client.pem/client-key.pem; the docs examples name these.
pub(super) fn pki() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("test CA");
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write("ca.pem", &ca.cert.pem());
    for (name, dns, uri, expired) in [
        ("a", &["a.example.com"][..], None, false),
        ("b", &["*.b.example.com"][..], None, false),
        ("id", &[][..], Some(SPIFFE), false),
        ("old", &["old.example.com"][..], None, true),
        ("plain", &["plain.example.com"][..], None, false),
        ("client", &["client.example.com"][..], None, false),
        ("shop", &["shop.example.com"][..], None, false),
        (
            "api",
            &["api.example.com", "*.api.example.com"][..],
            None,
            false,
        ),
    ] {
        let (cert, key) = leaf(&ca, dns, uri, expired);
        write(&format!("{name}.pem"), &cert);
        write(&format!("{name}-key.pem"), &key);
    }
    dir
}

fn ok_in(dir: &Path, text: &str) -> Config {
    parse_in(&super::tests::with_listener(text), dir)
        .unwrap_or_else(|e| panic!("expected a valid config, got:\n{e}"))
}

fn errors_in(dir: &Path, text: &str) -> Vec<String> {
    match parse_in(&super::tests::with_listener(text), dir) {
        Ok(_) => panic!("expected errors, the config is valid:\n{text}"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

const CONTRACT: &str = r#"
[[listeners]]
name = "edge"
bind = "0.0.0.0:8443"
protocol = "http"
tls = { certificates = [ { cert = "a.pem", key = "a-key.pem" },
                         { cert = "b.pem", key = "b-key.pem" } ] }

[[listeners]]
name = "inbound"
bind = "0.0.0.0:15006"
protocol = "http"
mtls = "strict"
authz_default = "deny"
http2 = { max_concurrent_streams = 50, keepalive_interval_ms = 20000, keepalive_timeout_ms = 5000 }

[mesh]
identity = { cert = "id.pem", key = "id-key.pem", trust_bundle = "ca.pem" }

[[authz]]
listener = "inbound"
action = "deny"
principals = [ "spiffe://cluster.local/ns/shop/sa/evil" ]
paths = [ "/admin/" ]

[[authz]]
listener = "inbound"
action = "allow"
principals = [ "spiffe://cluster.local/ns/shop/*" ]
methods = [ "GET" ]
headers = { "X-Env" = "prod" }

[[clusters]]
name = "orders"
protocol = "http2"
endpoints = [ "10.0.0.7:8443" ]
tls = { ca = "ca.pem", sni = "orders.internal" }

[[clusters]]
name = "mesh"
protocol = "auto"
endpoints = [ "10.0.0.8:8443" ]
mtls = { peer = "spiffe://cluster.local/ns/shop/sa/orders" }
"#;

#[test]
fn the_contract_of_the_brief_validates_into_the_model() {
    let dir = pki();
    let c = ok_in(dir.path(), CONTRACT);
    let edge = c.listener("edge").unwrap();
    let tls = edge.tls.as_ref().unwrap();
    assert_eq!(tls.certificates.len(), 2);
    assert_eq!(tls.certificates[0].dns_names, ["a.example.com"]);
    assert_eq!(tls.certificates[1].dns_names, ["*.b.example.com"]);
    assert_eq!(
        tls.certificates[0].cert_path.as_deref(),
        Some(dir.path().join("a.pem").as_path())
    );
    let inbound = c.listener("inbound").unwrap();
    assert_eq!(inbound.mtls, Some(MtlsMode::Strict));
    let ListenerKind::Http(http) = &inbound.kind else {
        panic!("http listener")
    };
    assert_eq!(http.authz.default, AuthzAction::Deny);
    assert_eq!(http.authz.rules.len(), 2);
    assert_eq!(
        http.authz.rules[1].headers,
        [("x-env".into(), b"prod".to_vec())]
    );
    assert_eq!(http.http2.max_concurrent_streams, 50);
    assert_eq!(http.http2.initial_stream_window, 1 << 20);
    assert_eq!(
        http.http2.keepalive_interval,
        Some(std::time::Duration::from_secs(20))
    );
    assert_eq!(
        http.http2.keepalive_timeout,
        Some(std::time::Duration::from_secs(5))
    );
    let evil = "spiffe://cluster.local/ns/shop/sa/evil";
    let env = |n: &str| (n == "x-env").then_some(&b"prod"[..]);
    assert_eq!(
        http.authz.decide(None, Some(evil), "GET", "/admin/x", env),
        AuthzAction::Deny
    );
    assert_eq!(
        http.authz
            .decide(None, Some(SPIFFE), "GET", "/admin/x", env),
        AuthzAction::Allow
    );
    assert_eq!(
        http.authz.decide(None, Some(SPIFFE), "PUT", "/", env),
        AuthzAction::Deny
    );

    let mesh = c.mesh.as_ref().unwrap();
    assert_eq!(mesh.spiffe_id, SPIFFE);
    assert_eq!(mesh.roots.len(), 1);

    let orders = &c.clusters[0];
    assert_eq!(orders.protocol, UpstreamProtocol::Http2);
    let otls = orders.tls.as_ref().unwrap();
    assert_eq!(otls.sni.as_ref().unwrap().to_str(), "orders.internal");
    assert!(!otls.system_roots);
    assert!(otls.client.is_none());
    assert_eq!(c.clusters[1].protocol, UpstreamProtocol::Auto);
    assert_eq!(
        c.clusters[1].mtls.as_ref().unwrap().peer,
        "spiffe://cluster.local/ns/shop/sa/orders"
    );

    let files = c.tls_files();
    let names: Vec<_> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "id.pem",
            "id-key.pem",
            "ca.pem",
            "a.pem",
            "a-key.pem",
            "b.pem",
            "b-key.pem"
        ]
    );
}

#[test]
fn relative_paths_resolve_against_the_file_and_reload_rereads_them() {
    let dir = pki();
    let path = dir.path().join("ringside.toml");
    let text = "[[listeners]]\nname = \"l\"\nbind = \"127.0.0.1:0\"\ntls = { certificates = [ { cert = \"a.pem\", key = \"a-key.pem\" } ] }\n";
    std::fs::write(&path, text).unwrap();
    let c = load_file(&path).unwrap();
    assert_eq!(c.base_dir.as_deref(), Some(dir.path()));
    let same = reload_material(&c).unwrap();
    assert_eq!(same.material_hash, c.material_hash);
    assert_eq!(same.content_hash, c.content_hash);
    // Rotate: b's material in a's files.
    std::fs::copy(dir.path().join("b.pem"), dir.path().join("a.pem")).unwrap();
    std::fs::copy(dir.path().join("b-key.pem"), dir.path().join("a-key.pem")).unwrap();
    let rotated = reload_material(&c).unwrap();
    assert_ne!(rotated.material_hash, c.material_hash);
    assert_eq!(
        rotated.listeners[0].tls.as_ref().unwrap().certificates[0].dns_names,
        ["*.b.example.com"]
    );
    // A half-rotated pair is refused.
    std::fs::copy(
        dir.path().join("plain-key.pem"),
        dir.path().join("a-key.pem"),
    )
    .unwrap();
    let e = reload_material(&c).unwrap_err().to_string();
    assert!(
        e.starts_with("listeners[0].tls.certificates[0].key: the private key in \"a-key.pem\" does not match the certificate in \"a.pem\""),
        "{e}"
    );
}

#[test]
fn inline_pem_is_accepted_and_counts_as_material() {
    let dir = pki();
    let read = |n: &str| std::fs::read_to_string(dir.path().join(n)).unwrap();
    let text = format!(
        "[mesh]\nidentity = {{ cert_pem = '''{}''', key_pem = '''{}''', trust_bundle_pem = '''{}''' }}\n",
        read("id.pem"),
        read("id-key.pem"),
        read("ca.pem")
    );
    let c = parse(&super::tests::with_listener(&text)).unwrap();
    let mesh = c.mesh.as_ref().unwrap();
    assert_eq!(mesh.spiffe_id, SPIFFE);
    assert!(mesh.identity.cert_path.is_none() && mesh.trust_bundle_path.is_none());
    assert!(c.tls_files().is_empty());
    assert_ne!(c.material_hash, super::tests::ok("").material_hash);
}

#[test]
fn material_errors_carry_their_path_and_file() {
    let dir = pki();
    let e = errors_in(
        dir.path(),
        r#"
[[listeners]]
name = "l"
bind = "127.0.0.1:0"
tls = { certificates = [ { cert = "a.pem", key = "a-key.pem" }, { cert = "x.pem", key = "b-key.pem" },
  { cert = "a.pem", key = "b-key.pem" }, { cert = "old.pem", key = "old-key.pem" },
  { cert = "a-key.pem", key = "a.pem" }, { cert = "a.pem", cert_pem = "x", key = "a-key.pem" },
  { key = "a-key.pem" } ] }
"#,
    );
    let p = "listeners[0].tls.certificates";
    assert_eq!(e.len(), 7, "{e:#?}");
    assert!(
        e[0].starts_with(&format!("{p}[1].cert: cannot read \"x.pem\": No such file")),
        "{e:#?}"
    );
    assert_eq!(e[1], format!("{p}[2].key: the private key in \"b-key.pem\" does not match the certificate in \"a.pem\""));
    assert_eq!(e[2], format!("{p}[3].cert: the certificate in \"old.pem\" expired on 2021-01-01T00:00:00Z (not after)"));
    assert_eq!(e[3], format!("{p}[4].cert: no certificate found in \"a-key.pem\" (expected PEM \"BEGIN CERTIFICATE\" blocks)"));
    assert_eq!(e[4], format!("{p}[4].key: no private key found in \"a.pem\" (expected a PKCS#8, PKCS#1 or SEC1 PEM key)"));
    assert_eq!(
        e[5],
        format!("{p}[5]: give one of \"cert\" and \"cert_pem\", not both")
    );
    assert_eq!(
        e[6],
        format!("{p}[6]: missing field \"cert\" (or \"cert_pem\")")
    );
}

#[test]
fn mesh_and_mtls_consistency_is_checked() {
    let dir = pki();
    let e = errors_in(
        dir.path(),
        r#"
[mesh]
identity = { cert = "plain.pem", key = "plain-key.pem", trust_bundle = "a-key.pem" }

[[listeners]]
name = "l"
bind = "127.0.0.1:0"
mtls = "strict"
"#,
    );
    assert_eq!(
        e,
        [
            "mesh.identity.trust_bundle: no certificate found in \"a-key.pem\" (expected PEM \"BEGIN CERTIFICATE\" blocks)",
            "mesh.identity.cert: the certificate in \"plain.pem\" has no URI subject alternative name (the SPIFFE id, e.g. \"spiffe://cluster.local/ns/NS/sa/SA\")",
        ]
    );
    let e = errors_in(
        dir.path(),
        r#"
[[listeners]]
name = "l"
bind = "127.0.0.1:0"
mtls = "permissive"

[[listeners]]
name = "t"
bind = "127.0.0.1:0"
protocol = "tcp"
cluster = "c"
mtls = "strict"
tls = { certificates = [ { cert = "a.pem", key = "a-key.pem" } ] }
authz_default = "deny"

[[authz]]
listener = "t"
action = "allow"

[[authz]]
listener = "nope"
action = "allow"
paths = [ "admin" ]
principals = [ "spiffe://x/*/y", "" ]
methods = [ "G ET" ]

[[clusters]]
name = "c"
mtls = { peer = "spiffe://x" }
tls = {}

[[clusters]]
name = "d"
mtls = { peer = "orders" }
tls = { sni = "not a name", cert = "a.pem" }
"#,
    );
    assert_eq!(
        e,
        [
            "listeners[0].mtls: requires [mesh].identity (the certificate mtls presents and the trust bundle it verifies clients with)",
            "listeners[1].authz_default: only valid on protocol = \"http\" listeners",
            "listeners[1].mtls: cannot be set together with \"tls\": an mtls listener serves the [mesh] identity",
            "authz[0].listener: listener \"t\" is a tcp listener; authz rules apply to http listeners only",
            "authz[1].listener: unknown listener \"nope\"",
            "authz[1].principals[0]: invalid principal \"spiffe://x/*/y\": an identity such as \"spiffe://cluster.local/ns/NS/sa/SA\", or a prefix ending in \"*\"",
            "authz[1].principals[1]: invalid principal \"\": an identity such as \"spiffe://cluster.local/ns/NS/sa/SA\", or a prefix ending in \"*\"",
            "authz[1].paths[0]: must start with \"/\", got \"admin\"",
            "authz[1].methods[0]: invalid method \"G ET\": must be an HTTP token such as \"GET\"",
            "clusters[0].mtls: cannot be set together with \"tls\": mtls uses the [mesh] identity and trust bundle",
            "clusters[1].tls.sni: invalid server name \"not a name\": must be a DNS name or an IP address",
            "clusters[1].tls: a client certificate needs both \"cert\" (or \"cert_pem\") and \"key\" (or \"key_pem\")",
            "clusters[1].mtls.peer: invalid identity \"orders\": must be a URI such as \"spiffe://cluster.local/ns/NS/sa/SA\"",
            "clusters[1].mtls: cannot be set together with \"tls\": mtls uses the [mesh] identity and trust bundle",
        ]
    );
}

#[test]
fn http2_settings_are_bounded() {
    let e = super::tests::errors(
        r#"
[[listeners]]
name = "l"
bind = "127.0.0.1:0"
http2 = { max_concurrent_streams = 0, initial_stream_window_bytes = 2147483648, initial_connection_window_bytes = 1000, max_frame_bytes = 16777216, max_resets_per_second = 0, keepalive_interval_ms = 0, keepalive_timeout_ms = 0 }

[[listeners]]
name = "m"
bind = "127.0.0.1:0"
http2 = { keepalive_timeout_ms = 1000 }
"#,
    );
    let p = "listeners[0].http2";
    assert_eq!(
        e,
        [
            format!("{p}.max_concurrent_streams: must be from 1 to 2147483647, got 0"),
            format!(
                "{p}.initial_stream_window_bytes: must be from 1 to 2147483647, got 2147483648"
            ),
            format!(
                "{p}.initial_connection_window_bytes: must be from 65535 to 2147483647, got 1000"
            ),
            format!("{p}.max_frame_bytes: must be from 16384 to 16777215, got 16777216"),
            format!("{p}.max_resets_per_second: must be from 1 to 4294967295, got 0"),
            format!("{p}.keepalive_interval_ms: must be greater than 0"),
            format!("{p}.keepalive_timeout_ms: must be greater than 0"),
            "listeners[1].http2.keepalive_timeout_ms: requires keepalive_interval_ms (without it no PINGs are sent)".to_owned(),
        ]
    );
}

#[test]
fn upstream_tls_defaults_to_system_roots_and_feeds_the_fingerprint() {
    let dir = pki();
    let fp = |extra: &str| {
        let c = ok_in(
            dir.path(),
            &format!("[[clusters]]\nname = \"c\"\nendpoints = [ \"10.0.0.1:443\" ]\n{extra}"),
        );
        c.clusters[0].fingerprint
    };
    let c = ok_in(
        dir.path(),
        "[[clusters]]\nname = \"c\"\nprotocol = \"http2\"\ntls = {}\n",
    );
    let t = c.clusters[0].tls.as_ref().unwrap();
    assert!(t.system_roots && t.sni.is_none() && t.ca_path.is_none());
    let prints = [
        fp(""),
        fp("protocol = \"http2\"\n"),
        fp("protocol = \"http2\"\ntls = {}\n"),
        fp("protocol = \"http2\"\ntls = { ca = \"ca.pem\" }\n"),
        fp("protocol = \"http2\"\ntls = { ca = \"ca.pem\", sni = \"x.internal\" }\n"),
        fp("protocol = \"http2\"\ntls = { ca = \"ca.pem\", cert = \"a.pem\", key = \"a-key.pem\" }\n"),
    ];
    for (i, a) in prints.iter().enumerate() {
        for b in &prints[i + 1..] {
            assert_ne!(a, b, "{prints:?}");
        }
    }
    assert_eq!(fp("protocol = \"http1\"\n"), fp(""));
}

/// A TLS listener on `a.pem` with `tls_extra` appended to its `tls` table.
fn tls_listener(tls_extra: &str) -> String {
    format!(
        "[[listeners]]\nname = \"l\"\nbind = \"127.0.0.1:0\"\n\
         tls = {{ certificates = [ {{ cert = \"a.pem\", key = \"a-key.pem\" }} ]{tls_extra} }}\n"
    )
}

#[test]
fn a_listeners_client_ca_is_read_watched_and_checked() {
    let dir = pki();
    let c = ok_in(
        dir.path(),
        &tls_listener(", ca = \"ca.pem\", require_client_certificate = true"),
    );
    let t = c.listeners[0].tls.as_ref().unwrap();
    assert!(t.client_roots.is_some() && t.require_client_certificate);
    assert!(
        c.tls_files().contains(&dir.path().join("ca.pem")),
        "the CA file is watched"
    );
    let c = ok_in(dir.path(), &tls_listener(""));
    let t = c.listeners[0].tls.as_ref().unwrap();
    assert!(t.client_roots.is_none() && !t.require_client_certificate);
    let p = "listeners[0].tls";
    assert_eq!(
        errors_in(dir.path(), &tls_listener(", require_client_certificate = true")),
        [format!("{p}.require_client_certificate: needs \"ca\" or \"ca_pem\" (the CA clients' certificates must chain to)")]
    );
    assert_eq!(
        errors_in(
            dir.path(),
            &tls_listener(", ca = \"ca.pem\", ca_pem = \"x\"")
        ),
        [format!("{p}: give one of \"ca\" and \"ca_pem\", not both")]
    );
    let e = errors_in(dir.path(), &tls_listener(", ca = \"nope.pem\""));
    assert!(
        e[0].starts_with(&format!("{p}.ca: cannot read \"nope.pem\"")),
        "{e:?}"
    );
}

#[test]
fn a_clusters_identities_are_uris() {
    let dir = pki();
    let cluster = |ids: &str| {
        format!("[[clusters]]\nname = \"c\"\nendpoints = [ \"127.0.0.1:1\" ]\ntls = {{ ca = \"ca.pem\", identities = {ids} }}\n")
    };
    let c = ok_in(dir.path(), &cluster(&format!("[ \"{SPIFFE}\" ]")));
    assert_eq!(c.clusters[0].tls.as_ref().unwrap().identities, [SPIFFE]);
    assert_eq!(
        errors_in(dir.path(), &cluster("[ \"cart\", \"spiffe://x/y\" ]")),
        ["clusters[0].tls.identities[0]: \"cart\" is not a URI (e.g. \"spiffe://cluster.local/ns/shop/sa/orders\")"]
    );
    assert_eq!(
        errors_in(dir.path(), &cluster("[]")),
        ["clusters[0].tls.identities: at least one identity, or leave it out"]
    );
}

#[test]
fn a_listeners_client_identities_are_checked() {
    let dir = pki();
    let c = ok_in(
        dir.path(),
        &tls_listener(", ca = \"ca.pem\", client_identities = [ \"spiffe://td/ns/a/sa/b\", \"spiffe://td/ns/c/*\" ]"),
    );
    let t = c.listeners[0].tls.as_ref().unwrap();
    assert_eq!(
        t.client_identities,
        ["spiffe://td/ns/a/sa/b", "spiffe://td/ns/c/*"]
    );
    let p = "listeners[0].tls.client_identities";
    assert_eq!(
        errors_in(
            dir.path(),
            &tls_listener(", client_identities = [ \"spiffe://td/x\" ]")
        ),
        [format!(
            "{p}: needs \"ca\" or \"ca_pem\" (the CA clients' certificates must chain to)"
        )]
    );
    assert_eq!(
        errors_in(
            dir.path(),
            &tls_listener(", ca = \"ca.pem\", client_identities = []")
        ),
        [format!(
            "{p}: must not be empty (leave it out for any identity)"
        )]
    );
    let e = errors_in(
        dir.path(),
        &tls_listener(", ca = \"ca.pem\", client_identities = [ \"spiffe://td/*/sa/b\" ]"),
    );
    assert!(
        e.len() == 1 && e[0].starts_with(&format!("{p}[0]: invalid principal")),
        "{e:?}"
    );
}

#[test]
fn identity_lists_accept_any_san_against_any_entry() {
    use crate::tls::identities_accept;
    let list = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let ids = list(&["spiffe://td/ns/a/sa/b", "spiffe://td/ns/c/*"]);
    assert!(identities_accept(&ids, &list(&["spiffe://td/ns/a/sa/b"])));
    assert!(identities_accept(
        &ids,
        &list(&["urn:x", "spiffe://td/ns/c/sa/any"])
    ));
    assert!(!identities_accept(&ids, &list(&["spiffe://td/ns/a/sa/bb"])));
    assert!(!identities_accept(&ids, &list(&["spiffe://td/ns/cc/sa/x"])));
    assert!(!identities_accept(&ids, &[]));
    assert!(identities_accept(&[], &[]));
}
