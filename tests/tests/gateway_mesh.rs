//! The merged role in one process (`deploy/gateway-mesh/`), end to end on loopback: ringside
//! A runs that very configuration file (only its addresses, key source and certificate
//! directory swapped for the test's), as the public gateway *and* the mesh sidecar of an app;
//! ringside B is the inbound sidecar of another service.
//!
//! ```text
//! curl ──TLS, JWT──▶ A public ──▶ app ──▶ A outbound ──mTLS──▶ B inbound (strict) ──▶ orders
//!                    (gateway)    (calls orders from its handler, HTTP_PROXY style)
//! ```
//!
//! Checked: the consumer and claim headers the app gets (and no token), the caller identity
//! B hands to the orders service, refusals at A (no token) and at B (plaintext, a wrong
//! identity), the consumer's rate limit, a mesh peer on A's inbound listener, the outbound
//! listener's retries across the mesh, and that the app has exactly one proxy in front of it.

#![allow(clippy::unwrap_used)] // test helpers, like #[test] bodies

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use serde_json::json;

use ringside_tests::certs::TestPki;
use ringside_tests::jwt::{JwksServer, Tokens};
use ringside_tests::tools::{curl, CurlOutput};
use ringside_tests::*;

/// The configuration under test, as shipped.
const DEPLOY: &str = include_str!("../../deploy/gateway-mesh/ringside.toml");
/// A's identity (the deploy file's `[mesh]`) and B's (what A's `orders` cluster expects).
const STOREFRONT: &str = "spiffe://cluster.local/ns/shop/sa/storefront";
const ORDERS: &str = "spiffe://cluster.local/ns/shop/sa/orders";
/// The public name A's certificate carries.
const HOST: &str = "shop.example.com";
/// The deploy file's consumer limit of `mobile-app`.
const MOBILE_LIMIT: &str = "rate_limit = { requests_per_second = 50, burst = 100 }";

/// `text` with `from` replaced by `to`; `from` must be there (else the deploy file changed
/// under the test, which must then be brought along).
fn swap(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "deploy/gateway-mesh/ringside.toml has no {from:?}"
    );
    text.replace(from, to)
}

/// Copies the deploy file's certificates out of `pki`: `certs/` beside the configuration.
fn install_certs(pki: &TestPki) {
    let certs = pki.dir().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let (public_cert, public_key) = pki.leaf("public", &[HOST, "127.0.0.1"], &[]);
    let (id_cert, id_key) = pki.leaf("storefront", &[], &[STOREFRONT]);
    for (from, to) in [
        (public_cert, "public.crt"),
        (public_key, "public.key"),
        (id_cert, "identity.crt"),
        (id_key, "identity.key"),
        (pki.ca_path(), "trust-bundle.crt"),
    ] {
        std::fs::copy(from, certs.join(to)).unwrap();
    }
}

/// Both ringsides, the app, the orders service and the JWT material.
struct Shop {
    pki: TestPki,
    tokens: Tokens,
    app: Origin,
    orders: Origin,
    a: Proxy,
    b: Proxy,
    /// How many of the orders service's next answers are 503s.
    orders_fail: Arc<AtomicUsize>,
    _jwks: JwksServer,
}

impl Shop {
    /// Starts everything; `mobile_limit` replaces the consumer limit of `mobile-app`.
    fn start(d: Driver, mobile_limit: &str) -> Shop {
        let pki = TestPki::new();
        install_certs(&pki);
        let claims = json!({ "iss": "https://id.example.com", "aud": "storefront",
                             "sub": "client:mobile", "exp": "now+600", "org": { "id": "o-7" } });
        let tokens = Tokens::make(
            &[("rsa1", "RSA")],
            json!({ "mobile": { "key": "rsa1", "alg": "RS256", "claims": claims } }),
        );
        let (jc, jk) = pki.leaf("jwks", &["127.0.0.1"], &[]);
        let jwks = JwksServer::start(&jc, &jk, &tokens.jwks(&["rsa1"]));

        // The orders service: records what reaches it, answers with the target it got (or
        // 503, as many times as `orders_fail` says).
        let orders_fail = Arc::new(AtomicUsize::new(0));
        let fail = Arc::clone(&orders_fail);
        let orders = Origin::start(move |r| {
            let failing = fail
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if failing {
                return Reply::Send(http_response(503, &[], b"busy"));
            }
            ok(&format!("order at {}", r.target))
        });
        // B: the orders pod's sidecar. Strict mTLS; only the storefront identity may call.
        let (oc, ok_) = pki.leaf("orders", &[], &[ORDERS]);
        let b = Proxy::start(
            d,
            &format!(
                "[mesh]\nidentity = {{ cert = \"{}\", key = \"{}\", trust_bundle = \"{}\" }}\n\
                 [[listeners]]\nname = \"inbound\"\nbind = \"127.0.0.1:0\"\nmtls = \"strict\"\n\
                 authz_default = \"deny\"\n\
                 [[authz]]\nlistener = \"inbound\"\naction = \"allow\"\nprincipals = [\"{STOREFRONT}\"]\n\
                 [[routes]]\nlistener = \"inbound\"\nname = \"all\"\ncluster = \"svc\"\n\
                 [[clusters]]\nname = \"svc\"\nendpoints = [\"{}\"]\n",
                oc.display(),
                ok_.display(),
                pki.ca_path().display(),
                orders.addr()
            ),
        );

        // The app: each request it serves makes a real call to the orders service through
        // A's outbound listener, as an HTTP_PROXY client does (absolute-form target), and
        // answers with what it got.
        let outbound: Arc<OnceLock<SocketAddr>> = Arc::new(OnceLock::new());
        let out = Arc::clone(&outbound);
        let app = Origin::start(move |_| {
            let Some(addr) = out.get() else {
                return Reply::Send(http_response(503, &[], b"outbound not known yet"));
            };
            let got = Client::connect(*addr).request(
                b"GET http://orders/orders/7 HTTP/1.1\r\nHost: orders\r\n\
                      x-consumer-name: mobile-app\r\nx-user-id: client:mobile\r\n\r\n",
            );
            ok(&format!("app got {}: {}", got.status, got.text()))
        });

        // A: the deploy file, pointed at the test's parts.
        let mut text = DEPLOY.to_string();
        for (from, to) in [
            ("driver = \"auto\"", format!("driver = \"{}\"", d.toml())),
            ("drain_timeout_ms = 10000", "drain_timeout_ms = 3000".into()),
            ("bind = \"0.0.0.0:8443\"", "bind = \"127.0.0.1:0\"".into()),
            ("bind = \"0.0.0.0:15006\"", "bind = \"127.0.0.1:0\"".into()),
            (
                "bind = \"127.0.0.1:15001\"",
                "bind = \"127.0.0.1:0\"".into(),
            ),
            ("bind = \"0.0.0.0:15021\"", "bind = \"127.0.0.1:0\"".into()),
            (
                "endpoints = [ \"127.0.0.1:8080\" ]",
                format!("endpoints = [ \"{}\" ]", app.addr()),
            ),
            (
                "endpoints = [ \"10.0.0.7:15006\", \"10.0.0.8:15006\" ]",
                format!("endpoints = [ \"{}\" ]", b.addr("inbound")),
            ),
            (
                "jwks_uri = \"https://id.example.com/.well-known/jwks.json\"",
                format!(
                    "jwks_uri = \"{}\"\njwks_ca = \"{}\"",
                    jwks.uri(),
                    pki.ca_path().display()
                ),
            ),
            (MOBILE_LIMIT, mobile_limit.into()),
        ] {
            text = swap(&text, from, &to);
        }
        let a = start_in(d, &text, pki.dir());
        outbound.set(a.addr("outbound")).unwrap();
        let shop = Shop {
            pki,
            tokens,
            app,
            orders,
            a,
            b,
            orders_fail,
            _jwks: jwks,
        };
        // The keys are fetched by a thread of A's own: wait for the first good answer.
        assert!(
            eventually(WAIT, || shop
                .call("--http1.1", "/api/shop/warm", &shop.bearer())
                .status
                == Some(200)),
            "the token was never accepted"
        );
        shop
    }

    fn bearer(&self) -> Vec<String> {
        vec![
            "-H".into(),
            format!("Authorization: Bearer {}", self.tokens.get("mobile")),
        ]
    }

    /// curl (`version`: `--http1.1` or `--http2`) to A's public listener, by its public name.
    fn call(&self, version: &str, path: &str, extra: &[String]) -> CurlOutput {
        let port = self.a.addr("public").port();
        let resolve = format!("{HOST}:{port}:127.0.0.1");
        let ca = self.pki.ca_path().display().to_string();
        let url = format!("https://{HOST}:{port}{path}");
        let mut args = vec![version, "-i", "--cacert", &ca, "--resolve", &resolve];
        args.extend(extra.iter().map(String::as_str));
        args.push(&url);
        curl(&args)
    }

    /// curl over mTLS to `addr` with the certificate `cert`/`key` (mesh certificates name
    /// no host: the CA is checked, not the name).
    fn mesh_call(&self, addr: SocketAddr, cert: &Path, key: &Path, path: &str) -> CurlOutput {
        let ca = self.pki.ca_path().display().to_string();
        let (c, k) = (cert.display().to_string(), key.display().to_string());
        let url = format!("https://{addr}{path}");
        curl(&["-k", "--cacert", &ca, "--cert", &c, "--key", &k, &url])
    }
}

/// Starts ringside on a whole file (with its own `[proxy]`), certificates relative to `dir`.
fn start_in(d: Driver, text: &str, dir: &Path) -> Proxy {
    let config = match ringside_config::parse_in(text, dir) {
        Ok(c) => c,
        Err(e) => panic!("the deploy configuration is invalid:\n{e}\n---\n{text}"),
    };
    let handle = ringside_engine::start(config, ringside_proxy::stack::stacks())
        .unwrap_or_else(|e| panic!("ringside did not start on {}: {e}", d.toml()));
    assert_eq!(handle.driver(), d.active());
    Proxy { handle, driver: d }
}

both_drivers!(
    /// A token holder calls the app over HTTP/1.1 and h2; the app's own call crosses the mesh.
    fn the_whole_path(d) {
        let shop = Shop::start(d, MOBILE_LIMIT);
        let (app0, orders0) = (shop.app.requests().len(), shop.orders.requests().len());
        for (i, (version, seen_as)) in [("--http1.1", "1.1"), ("--http2", "2")].into_iter().enumerate() {
            // A forged consumer name is dropped, whatever the client says.
            let mut extra = shop.bearer();
            extra.extend(["-H".into(), "x-consumer-name: admin".into()]);
            let r = shop.call(version, "/api/shop/cart?id=3", &extra);
            assert_eq!(r.status, Some(200), "{r:?}");
            assert_eq!(r.http_version, seen_as);
            assert!(r.stdout.ends_with("app got 200: order at /orders/7"), "{r:?}");

            // 2. The app: rewritten path, who called, no token, one proxy in front.
            let seen = shop.app.request(app0 + i);
            assert_eq!(seen.target, "/shop/cart?id=3");
            assert_eq!(seen.header("x-original-path"), Some("/api/shop/cart?id=3"));
            assert_eq!(seen.header_all("x-consumer-name"), ["mobile-app"]);
            assert_eq!(seen.header("x-user-id"), Some("client:mobile"));
            assert_eq!(seen.header("x-org-id"), Some("o-7"));
            assert!(!seen.has_header("authorization"), "forward = false: {seen:?}");
            assert_eq!(seen.header_all("x-forwarded-for"), ["127.0.0.1"], "one hop: {seen:?}");
            assert_eq!(seen.header("x-forwarded-proto"), Some("https"));
            assert!(!seen.has_header("x-forwarded-client-cert"), "not a mesh request");

            // 4. The orders service: A's identity, verified by B.
            let seen = shop.orders.request(orders0 + i);
            assert_eq!(seen.target, "/orders/7");
            assert_eq!(seen.header("host"), Some("orders"));
            // What the app passes on: its own headers, but never a consumer name, which a
            // gateway removes on every route (the outbound one too).
            assert!(!seen.has_header("x-consumer-name"), "{seen:?}");
            assert_eq!(seen.header("x-user-id"), Some("client:mobile"));
            assert_eq!(
                seen.header("x-forwarded-client-cert"),
                Some(&*format!("URI={STOREFRONT}"))
            );
        }
        let (app_n, orders_n) = (shop.app.requests().len(), shop.orders.requests().len());

        // The outbound listener knows only the services it routes.
        let r = Client::connect(shop.a.addr("outbound"))
            .request(b"GET http://inventory/x HTTP/1.1\r\nHost: inventory\r\n\r\n");
        assert_eq!(r.status, 404);
        assert_eq!(shop.orders.requests().len(), orders_n);

        // No credential: refused at A, the app never sees it. Same for a preflight, which A
        // answers itself.
        let r = shop.call("--http2", "/api/shop/cart", &[]);
        assert_eq!(r.status, Some(401), "{r:?}");
        let preflight: Vec<String> = [
            "-X", "OPTIONS", "-H", "Origin: https://www.example.com",
            "-H", "Access-Control-Request-Method: POST",
        ]
        .map(String::from)
        .into();
        let r = shop.call("--http1.1", "/api/shop/cart", &preflight);
        assert_eq!(r.status, Some(204), "{r:?}");
        let head = r.stdout.to_ascii_lowercase();
        assert!(head.contains("access-control-allow-origin: https://www.example.com"), "{r:?}");
        assert_eq!(shop.app.requests().len(), app_n);

        // An API key (sha256 of "test" in the deploy file) is the partner consumer's.
        let key: Vec<String> = ["-H", "x-api-key: test"].map(String::from).into();
        let r = shop.call("--http1.1", "/api/shop/list", &key);
        assert_eq!(r.status, Some(200), "{r:?}");
        let seen = shop.app.request(app_n);
        assert_eq!(seen.header("x-consumer-name"), Some("partner"));
        assert!(!seen.has_header("x-api-key"));

        // B refuses a plaintext caller and a mesh identity its policy does not name; the
        // orders service sees neither.
        let orders_n = orders_n + 1; // the partner's call went through
        assert_eq!(shop.orders.requests().len(), orders_n);
        let r = curl(&[&format!("http://{}/orders/7", shop.b.addr("inbound"))]);
        assert_eq!(r.status, None, "plaintext on a strict port: {r:?}");
        let (ec, ek) = shop.pki.leaf("payments", &[], &["spiffe://cluster.local/ns/shop/sa/payments"]);
        let r = shop.mesh_call(shop.b.addr("inbound"), &ec, &ek, "/orders/7");
        assert_eq!(r.status, Some(403), "{r:?}");
        assert_eq!(shop.orders.requests().len(), orders_n);

        // A's inbound listener: a peer of the shop namespace reaches the app, which learns
        // who called; one from another namespace is refused.
        let app_n = shop.app.requests().len();
        let r = shop.mesh_call(shop.a.addr("inbound"), &ec, &ek, "/shop/peek");
        assert_eq!(r.status, Some(200), "{r:?}");
        let seen = shop.app.request(app_n);
        assert_eq!(
            seen.header("x-forwarded-client-cert"),
            Some("URI=spiffe://cluster.local/ns/shop/sa/payments")
        );
        assert!(!seen.has_header("x-consumer-name"));
        let (xc, xk) = shop.pki.leaf("stranger", &[], &["spiffe://cluster.local/ns/other/sa/x"]);
        let r = shop.mesh_call(shop.a.addr("inbound"), &xc, &xk, "/shop/peek");
        assert_eq!(r.status, Some(403), "{r:?}");
        assert_eq!(shop.app.requests().len(), app_n + 1);
    }
);

both_drivers!(
    /// The consumer's own bucket: past its burst, 429 with `retry-after`, and the app is
    /// not called.
    fn the_consumer_limit(d) {
        let shop = Shop::start(d, "rate_limit = { requests_per_second = 1, burst = 3 }");
        // The warm-up call of `start` took one token; one comes back every second.
        let app_n = shop.app.requests().len();
        let started = std::time::Instant::now();
        let mut statuses = Vec::new();
        while statuses.len() < 10 && !statuses.contains(&429) {
            let r = shop.call("--http1.1", "/api/shop/cart", &shop.bearer());
            if r.status == Some(429) {
                assert!(r.stdout.to_ascii_lowercase().contains("retry-after:"), "{r:?}");
            }
            statuses.push(r.status.unwrap());
        }
        let refilled = started.elapsed().as_secs() as usize + 1;
        let passed = statuses.len() - 1;
        assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
        assert!(statuses[..passed].iter().all(|s| *s == 200), "{statuses:?}");
        assert!((2..=3 + refilled).contains(&passed), "burst 3: {statuses:?}");
        assert_eq!(shop.app.requests().len(), app_n + passed);
    }
);

both_drivers!(
    /// The outbound listener's resilience, across the mesh: a 503 of the orders service is
    /// retried by A (gateway-error), over mTLS again, and the app gets the second answer.
    fn the_outbound_retries(d) {
        let shop = Shop::start(d, MOBILE_LIMIT);
        let orders_n = shop.orders.requests().len();
        shop.orders_fail.store(1, Ordering::SeqCst);
        let r = shop.call("--http2", "/api/shop/cart", &shop.bearer());
        assert_eq!(r.status, Some(200), "{r:?}");
        assert!(r.stdout.ends_with("app got 200: order at /orders/7"), "{r:?}");
        let seen = shop.orders.requests();
        assert_eq!(seen.len(), orders_n + 2, "the first try and its retry");
        for s in &seen[orders_n..] {
            assert_eq!(s.header("x-forwarded-client-cert"), Some(&*format!("URI={STOREFRONT}")));
        }
        // Two failures are retried twice (attempts = 2); three reach the app as the 503.
        shop.orders_fail.store(3, Ordering::SeqCst);
        let r = shop.call("--http1.1", "/api/shop/cart", &shop.bearer());
        assert!(r.stdout.ends_with("app got 503: busy"), "{r:?}");
        assert_eq!(shop.orders.requests().len(), orders_n + 5);
    }
);

/// `ringside check` of the shipped file, with certificates where it expects them.
#[test]
fn the_deploy_file_checks() {
    let pki = TestPki::new();
    install_certs(&pki);
    let path = pki.dir().join("ringside.toml");
    std::fs::write(&path, DEPLOY).unwrap();
    if let Err(e) = ringside_config::load_file(&path) {
        panic!("deploy/gateway-mesh/ringside.toml: {e}");
    }
}
