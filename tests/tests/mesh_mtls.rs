//! Sidecar-to-sidecar mutual TLS with SPIFFE identities: an outbound cluster presents its
//! proxy's identity and checks the peer's; an inbound listener in `strict` mode refuses
//! plaintext and untrusted or expired certificates, in `permissive` mode serves both on one
//! port; the verified identity reaches the upstream (X-Forwarded-Client-Cert) and the
//! authorization policy (403 and gRPC PERMISSION_DENIED).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use ringside_tests::certs::TestPki;
use ringside_tests::tools::curl;
use ringside_tests::*;

const CART: &str = "spiffe://cluster.local/ns/shop/sa/cart";
const ORDERS: &str = "spiffe://cluster.local/ns/shop/sa/orders";

struct Mesh {
    pki: TestPki,
    cart: (PathBuf, PathBuf),
    orders: (PathBuf, PathBuf),
}

fn mesh() -> Mesh {
    let pki = TestPki::new();
    let cart = pki.leaf("cart", &[], &[CART]);
    let orders = pki.leaf("orders", &[], &[ORDERS]);
    Mesh { pki, cart, orders }
}

fn identity(id: &(PathBuf, PathBuf), ca: &Path) -> String {
    format!(
        "[mesh]\nidentity = {{ cert = \"{}\", key = \"{}\", trust_bundle = \"{}\" }}\n",
        id.0.display(),
        id.1.display(),
        ca.display()
    )
}

/// The inbound sidecar of `orders`: an mTLS listener in front of `origin`.
fn inbound(d: Driver, m: &Mesh, origin: std::net::SocketAddr, mode: &str, authz: &str) -> Proxy {
    let default = if authz.is_empty() {
        ""
    } else {
        "authz_default = \"deny\""
    };
    Proxy::start(
        d,
        &format!(
            "{}\n[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\nmtls = \"{mode}\"\n{default}\n\
             [[routes]]\nlistener = \"in\"\nname = \"all\"\ncluster = \"app\"\n\
             [[clusters]]\nname = \"app\"\nendpoints = [\"{origin}\"]\n{authz}",
            identity(&m.orders, &m.pki.ca_path()),
        ),
    )
}

/// The outbound sidecar of `cart`: plaintext in, mTLS to `peer_addr` expecting `peer_id`.
fn outbound(d: Driver, m: &Mesh, peer_addr: std::net::SocketAddr, peer_id: &str) -> Proxy {
    Proxy::start(
        d,
        &format!(
            "{}\n[[listeners]]\nname = \"out\"\nbind = \"127.0.0.1:0\"\n\
             [[routes]]\nlistener = \"out\"\nname = \"all\"\ncluster = \"orders\"\n\
             [[clusters]]\nname = \"orders\"\nprotocol = \"http2\"\nendpoints = [\"{peer_addr}\"]\n\
             mtls = {{ peer = \"{peer_id}\" }}\n",
            identity(&m.cart, &m.pki.ca_path()),
        ),
    )
}

both_drivers!(
    fn sidecars_authenticate_each_other(d) {
        let m = mesh();
        let o = Origin::echo();
        let orders = inbound(d, &m, o.addr(), "strict", "");
        let cart = outbound(d, &m, orders.addr("in"), ORDERS);
        let r = curl(&[&format!("http://{}/orders/1", cart.addr("out"))]);
        assert_eq!(r.status, Some(200), "{r:?}");
        let seen = o.request(0);
        assert_eq!(seen.header("x-forwarded-client-cert"), Some(&*format!("URI={CART}")));
        // The original client spoke plaintext to the outbound sidecar.
        assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    }
);

both_drivers!(
    fn a_wrong_peer_identity_is_refused(d) {
        let m = mesh();
        let o = Origin::echo();
        let orders = inbound(d, &m, o.addr(), "strict", "");
        let cart = outbound(d, &m, orders.addr("in"), "spiffe://cluster.local/ns/shop/sa/payments");
        let r = curl(&[&format!("http://{}/x", cart.addr("out"))]);
        assert_eq!(r.status, Some(502), "{r:?}");
        assert_eq!(o.requests().len(), 0, "nothing reached the origin");
    }
);

both_drivers!(
    fn strict_refuses_plaintext_untrusted_and_expired_clients(d) {
        let m = mesh();
        let o = Origin::echo();
        let orders = inbound(d, &m, o.addr(), "strict", "");
        let port = orders.addr("in").port();
        let url = format!("https://orders.test:{port}/x");
        let resolve = format!("orders.test:{port}:127.0.0.1");
        // Plaintext.
        let r = curl(&[&format!("http://127.0.0.1:{port}/x")]);
        assert_eq!(r.status, None, "plaintext on a strict port: {r:?}");
        // No client certificate, then one from another CA, then an expired one.
        let ca = m.pki.ca_path().display().to_string();
        let base = ["-k", "--resolve", &resolve, "--cacert", &ca];
        let r = curl(&[&base[..], &[url.as_str()]].concat());
        assert_eq!(r.status, None, "no client certificate: {r:?}");
        let (oc, ok) = m.pki.other_ca_leaf("mallory", &[], &[CART]);
        let (ec, ek) = m.pki.expired_leaf("old", &[], &[CART]);
        for (c, k) in [(&oc, &ok), (&ec, &ek)] {
            let (c, k) = (c.display().to_string(), k.display().to_string());
            let r = curl(&[&base[..], &["--cert", &c, "--key", &k, url.as_str()]].concat());
            assert_eq!(r.status, None, "{c}: {r:?}");
        }
        // A good certificate works, and its identity is forwarded.
        let (c, k) = (m.cart.0.display().to_string(), m.cart.1.display().to_string());
        let r = curl(&[&base[..], &["--cert", &c, "--key", &k, url.as_str()]].concat());
        assert_eq!(r.status, Some(200), "{r:?}");
        assert_eq!(o.requests().len(), 1);
        let failures: u64 = orders
            .handle
            .metrics()
            .iter()
            .flat_map(|w| w.listeners.iter())
            .map(|l| l.tls_failures)
            .sum();
        assert!(failures >= 4, "handshake failures are counted: {failures}");
    }
);

both_drivers!(
    fn permissive_serves_plaintext_and_mtls_on_one_port(d) {
        let m = mesh();
        let o = Origin::echo();
        let orders = inbound(d, &m, o.addr(), "permissive", "");
        let port = orders.addr("in").port();
        let r = curl(&[&format!("http://127.0.0.1:{port}/plain")]);
        assert_eq!(r.status, Some(200), "{r:?}");
        assert_eq!(o.request(0).header("x-forwarded-client-cert"), None);
        let cart = outbound(d, &m, orders.addr("in"), ORDERS);
        let r = curl(&[&format!("http://{}/mtls", cart.addr("out"))]);
        assert_eq!(r.status, Some(200), "{r:?}");
        assert_eq!(o.request(1).header("x-forwarded-client-cert"), Some(&*format!("URI={CART}")));
    }
);

both_drivers!(
    fn authorization_policy_on_identity_path_and_method(d) {
        let m = mesh();
        let o = Origin::echo();
        let authz = format!(
            "[[authz]]\nlistener = \"in\"\naction = \"deny\"\npaths = [\"/admin/\"]\n\
             [[authz]]\nlistener = \"in\"\naction = \"allow\"\nprincipals = [\"{CART}\"]\nmethods = [\"GET\", \"POST\"]\n"
        );
        // With rules, the listener's default is deny (see `inbound`).
        let orders = inbound(d, &m, o.addr(), "permissive", &authz);
        let cart = outbound(d, &m, orders.addr("in"), ORDERS);
        let via = |method: &str, path: &str| {
            curl(&["-X", method, &format!("http://{}{path}", cart.addr("out"))]).status
        };
        assert_eq!(via("GET", "/orders"), Some(200));
        assert_eq!(via("POST", "/orders"), Some(200));
        assert_eq!(via("DELETE", "/orders"), Some(403), "method not allowed by any rule");
        assert_eq!(via("GET", "/admin/users"), Some(403), "deny rule first");
        // Plaintext clients have no identity: only the default applies.
        let r = curl(&[&format!("http://{}/orders", orders.addr("in"))]);
        assert_eq!(r.status, Some(403));
        let denied: u64 = orders
            .handle
            .metrics()
            .iter()
            .flat_map(|w| w.listeners.iter())
            .map(|l| l.authz_denied)
            .sum();
        assert_eq!(denied, 3);
    }
);

both_drivers!(
    fn routes_match_on_the_peer_identity(d) {
        let m = mesh();
        let o = Origin::echo();
        let orders = Proxy::start(
            d,
            &format!(
                "{}\n[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\nmtls = \"permissive\"\n\
                 [[routes]]\nlistener = \"in\"\nname = \"shop\"\nmatch = {{ principals = [\"spiffe://cluster.local/ns/shop/*\"] }}\ncluster = \"app\"\n\
                 [[routes]]\nlistener = \"in\"\nname = \"others\"\ndirect_response = {{ status = 418, body = \"who are you\" }}\n\
                 [[clusters]]\nname = \"app\"\nendpoints = [\"{}\"]\n",
                identity(&m.orders, &m.pki.ca_path()),
                o.addr()
            ),
        );
        let cart = outbound(d, &m, orders.addr("in"), ORDERS);
        let r = curl(&[&format!("http://{}/x", cart.addr("out"))]);
        assert_eq!(r.status, Some(200), "a shop identity takes the shop route: {r:?}");
        let r = curl(&[&format!("http://{}/x", orders.addr("in"))]);
        assert_eq!(r.status, Some(418), "no identity, no shop route: {r:?}");
    }
);
