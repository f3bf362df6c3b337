//! The gateway's JWT authentication over real sockets: tokens signed by PyJWT with RSA, EC
//! and Ed25519 keys made fresh for each test; keys served over HTTPS by a JWKS server that
//! rotates them and goes down; every kind of bad token; the consumer and claim headers the
//! upstream gets (and that a client cannot forge). The per-protocol answers (HTTP/1.1, h2,
//! TLS, gRPC) are rows of the behaviour table.

#![allow(clippy::unwrap_used)] // test helpers, like #[test] bodies

use std::time::Instant;

use serde_json::json;

use ringside_tests::certs::TestPki;
use ringside_tests::jwt::{JwksServer, Tokens};
use ringside_tests::*;

const ISSUER: &str = "https://id.example.com";

/// Claims that pass, `sub` naming the consumer `mobile-app`.
fn claims() -> serde_json::Value {
    json!({ "iss": ISSUER, "aud": "orders-api", "sub": "client:mobile", "exp": "now+600",
            "org": { "id": "o-7" } })
}

/// A gateway in front of `origin` whose route `all` (`/x...`) takes the tokens of provider
/// `corp`, and route `strict` (`/strict...`) those of `headers-only`, which looks for them
/// in the `Authorization` header only (`keys`: both providers' `jwks...` lines).
fn gateway(d: Driver, origin: &Origin, keys: &str) -> Proxy {
    Proxy::start(d, &config(origin, keys, "orders-api"))
}

/// [`gateway`]'s configuration, with the providers' audience.
fn config(origin: &Origin, keys: &str, audience: &str) -> String {
    let tail = format!(
        r#"
[[jwt_providers]]
name = "corp"
issuer = "{ISSUER}"
audiences = [ "{audience}" ]
{keys}
claims_to_headers = {{ sub = "x-user-id", "org.id" = "x-org-id" }}

[[jwt_providers]]
name = "headers-only"
issuer = "{ISSUER}"
audiences = [ "{audience}" ]
{keys}
from = [ "header:authorization:Bearer " ]

[[consumers]]
name = "mobile-app"
jwt_subjects = [ "client:mobile" ]

[[routes]]
listener = "in"
name = "strict"
match = {{ path_prefix = "/strict" }}
authn = {{ jwt = [ "headers-only" ] }}
cluster = "app"
"#
    );
    basic_config(
        &[origin.addr()],
        Extra {
            proxy: "role = \"gateway\"",
            listener: "",
            route: "match = { path_prefix = \"/x\" }\nauthn = { jwt = [ \"corp\" ] }",
            cluster: &tail,
        },
    )
}

/// `GET path` with `Authorization: Bearer <token>` (none when empty) and `extra` lines.
fn call(p: &Proxy, path: &str, token: &str, extra: &str) -> Response {
    let auth = if token.is_empty() {
        String::new()
    } else {
        format!("Authorization: Bearer {token}\r\n")
    };
    Client::connect(p.addr("in"))
        .request(format!("GET {path} HTTP/1.1\r\nHost: test\r\n{auth}{extra}\r\n").as_bytes())
}

/// Polls until `token` gets `status` (the fetcher works on its own time).
fn until_status(p: &Proxy, token: &str, status: u16) {
    let deadline = Instant::now() + WAIT;
    loop {
        let got = call(p, "/x", token, "").status;
        if got == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still {got}, waited for {status}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn valid(key: &str, alg: &str) -> serde_json::Value {
    json!({ "key": key, "alg": alg, "claims": claims() })
}

both_drivers!(
    /// RS256, PS256, ES256 and EdDSA tokens pass with keys fetched over HTTPS; a rotation is
    /// picked up by the unknown `kid` of a token signed with the new key (the refresh is ten
    /// minutes away), and tokens of the old key are refused after it.
    fn fetched_keys_and_a_rotation(d) {
        let tokens = Tokens::make(
            &[("rsa1", "RSA"), ("ec1", "EC"), ("ed1", "OKP"), ("rsa2", "RSA")],
            json!({
                "rs": valid("rsa1", "RS256"), "ps": valid("rsa1", "PS256"),
                "es": valid("ec1", "ES256"), "ed": valid("ed1", "EdDSA"),
                "new": valid("rsa2", "RS384"),
            }),
        );
        let pki = TestPki::new();
        let (cert, key) = pki.leaf("jwks", &["127.0.0.1"], &[]);
        let server = JwksServer::start(&cert, &key, &tokens.jwks(&["rsa1", "ec1", "ed1"]));
        let o = Origin::echo();
        let keys = format!(
            "jwks_uri = \"{}\"\njwks_ca = \"{}\"\njwks_refresh_s = 600",
            server.uri(),
            pki.ca_path().display()
        );
        let p = gateway(d, &o, &keys);
        until_status(&p, &tokens.get("rs"), 200);
        for t in ["ps", "es", "ed"] {
            assert_eq!(call(&p, "/x", &tokens.get(t), "").status, 200, "{t}");
        }
        let seen = o.requests().pop().unwrap();
        assert_eq!(seen.header("x-consumer-name"), Some("mobile-app"));
        assert_eq!(seen.header("x-user-id"), Some("client:mobile"));
        assert_eq!(seen.header("x-org-id"), Some("o-7"));
        assert!(!seen.has_header("authorization"), "the token is not forwarded");

        server.set(&tokens.jwks(&["rsa2"]));
        let before = server.fetches();
        // Unknown kid: refused now, fetched again in the background, then admitted.
        let first = call(&p, "/x", &tokens.get("new"), "");
        assert_eq!(first.status, 401);
        assert_eq!(
            first.header("www-authenticate"),
            Some(r#"Bearer realm="all", error="invalid_token""#)
        );
        until_status(&p, &tokens.get("new"), 200);
        // Rate-limited: the loop above sent the unknown kid many times, and the fetcher went
        // to the server once for it (a second fetch can be the retry of a start-up fetch that
        // a loaded machine timed out, counted after `before`; CI saw that once).
        let refetches = server.fetches() - before;
        assert!((1..=2).contains(&refetches), "{refetches} refetches");
        // The old key is gone: its (cached) tokens are checked again and refused.
        assert_eq!(call(&p, "/x", &tokens.get("rs"), "").status, 401);
        let stats = p.handle.jwks();
        let corp = stats.iter().find(|s| s.provider == "corp").unwrap();
        assert!(corp.fetches >= 2 && corp.failures == 0 && corp.has_keys, "{corp:?}");
    }
);

both_drivers!(
    /// The JWKS server goes down: fetches fail and are counted, and the last good keys keep
    /// verifying tokens (one never seen before, so not from a cache).
    fn a_jwks_outage_keeps_the_last_good_keys(d) {
        let tokens = Tokens::make(
            &[("ec1", "EC"), ("ed1", "OKP")],
            json!({ "es": valid("ec1", "ES256"), "ed": valid("ed1", "EdDSA") }),
        );
        let pki = TestPki::new();
        let (cert, key) = pki.leaf("jwks", &["127.0.0.1"], &[]);
        let server = JwksServer::start(&cert, &key, &tokens.jwks(&["ec1", "ed1"]));
        let o = Origin::text("hi");
        let keys = format!(
            "jwks_uri = \"{}\"\njwks_ca = \"{}\"\njwks_refresh_s = 1",
            server.uri(),
            pki.ca_path().display()
        );
        let p = gateway(d, &o, &keys);
        until_status(&p, &tokens.get("es"), 200);
        server.down(true);
        let deadline = Instant::now() + WAIT;
        loop {
            let stats = p.handle.jwks();
            if stats.iter().any(|s| s.provider == "corp" && s.failures >= 2) {
                break;
            }
            assert!(Instant::now() < deadline, "no failed fetch counted: {stats:?}");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert_eq!(call(&p, "/x", &tokens.get("ed"), "").status, 200);
        server.down(false);
    }
);

both_drivers!(
    /// Every kind of bad token, with keys written in the configuration; and what a client
    /// sends in the consumer and claim headers never reaches the upstream.
    fn bad_tokens_and_forged_headers(d) {
        let tokens = Tokens::make(
            &[("rsa1", "RSA"), ("rsa2", "RSA"), ("ec1", "EC")],
            json!({
                "good": valid("rsa1", "RS256"),
                "expired": { "key": "rsa1", "alg": "RS256",
                             "claims": { "iss": ISSUER, "aud": "orders-api", "exp": "now-300" } },
                "early": { "key": "rsa1", "alg": "RS256",
                           "claims": { "iss": ISSUER, "aud": "orders-api", "exp": "now+600", "nbf": "now+300" } },
                "issuer": { "key": "rsa1", "alg": "RS256",
                            "claims": { "iss": "https://evil.example.com", "aud": "orders-api", "exp": "now+600" } },
                "audience": { "key": "ec1", "alg": "ES256",
                              "claims": { "iss": ISSUER, "aud": ["billing"], "exp": "now+600" } },
                "wrong_key": { "key": "rsa2", "kid": "rsa1", "alg": "RS256", "claims": claims() },
                "none": { "unsigned": true, "claims": claims() },
                "huge": { "key": "rsa1", "alg": "RS256",
                          "claims": { "iss": ISSUER, "aud": "orders-api", "exp": "now+600", "pad": "x".repeat(9000) } },
            }),
        );
        let jwks = tokens.jwks(&["rsa1", "ec1"]);
        let o = Origin::echo();
        let p = gateway(d, &o, &format!("jwks = '{jwks}'"));
        let invalid = r#"Bearer realm="all", error="invalid_token""#;
        for name in ["expired", "early", "issuer", "wrong_key", "none", "huge"] {
            let r = call(&p, "/x", &tokens.get(name), "");
            assert_eq!(r.status, 401, "{name}");
            assert_eq!(r.header("www-authenticate"), Some(invalid), "{name}");
        }
        let r = call(&p, "/x", "not.a.token", "");
        assert_eq!((r.status, r.header("www-authenticate")), (401, Some(invalid)));
        let r = call(&p, "/x", &tokens.get("audience"), "");
        assert_eq!(r.status, 403);
        let r = call(&p, "/x", "", "");
        assert_eq!(
            (r.status, r.header("www-authenticate")),
            (401, Some(r#"Bearer realm="all""#))
        );
        // A token only in the query string, where the route's provider does not look.
        let good = tokens.get("good");
        let r = call(&p, &format!("/strict?access_token={good}"), "", "");
        assert_eq!(
            (r.status, r.header("www-authenticate")),
            (401, Some(r#"Bearer realm="strict""#))
        );
        // ... where the other provider does: admitted, and the parameter removed.
        assert_eq!(call(&p, &format!("/x?a=1&access_token={good}"), "", "").status, 200);
        assert_eq!(o.requests().pop().unwrap().target, "/x?a=1");
        assert!(o.requests().len() == 1, "no refused request reached the origin");

        // Forged consumer and claim headers are replaced by the proxy's.
        let r = call(
            &p,
            "/x",
            &good,
            "X-Consumer-Name: admin\r\nX-User-Id: root\r\nX-Org-Id: o-1\r\n",
        );
        assert_eq!(r.status, 200);
        let seen = o.requests().pop().unwrap();
        assert_eq!(seen.header_all("x-consumer-name"), ["mobile-app"]);
        assert_eq!(seen.header_all("x-user-id"), ["client:mobile"]);
        assert_eq!(seen.header_all("x-org-id"), ["o-7"]);
        // Failures are counted by reason.
        let mut reasons: Vec<&str> = Vec::new();
        let reports = p.handle.metrics();
        for (_, reason, _) in reports.iter().flat_map(|r| &r.listeners).flat_map(|l| &l.authn_failures) {
            if !reasons.contains(reason) {
                reasons.push(reason);
            }
        }
        reasons.sort_unstable();
        assert_eq!(
            reasons,
            [
                "jwt_audience",
                "jwt_expired",
                "jwt_issuer",
                "jwt_malformed",
                "jwt_not_yet_valid",
                "jwt_signature",
                "jwt_too_large",
                "missing"
            ]
        );
    }
);

both_drivers!(
    /// Keys from an `http://` loopback URI; a reload that changes the provider empties the
    /// workers' caches of verified tokens (a token admitted before is checked again under the
    /// new audience), and one that keeps it keeps its keys (no new fetch).
    fn a_reload_that_changes_the_provider(d) {
        let tokens = Tokens::make(&[("ed1", "OKP")], json!({ "ok": valid("ed1", "EdDSA") }));
        let jwks = tokens.jwks(&["ed1"]);
        let keys_origin = Origin::start(move |_| {
            Reply::SendClose(http_response(200, &[("Content-Type", "application/json")], jwks.as_bytes()))
        });
        let o = Origin::text("hi");
        let keys = format!("jwks_uri = \"http://{}/jwks.json\"", keys_origin.addr());
        let p = gateway(d, &o, &keys);
        let ok = tokens.get("ok");
        until_status(&p, &ok, 200);
        assert_eq!(call(&p, "/x", &ok, "").status, 200, "from the cache");
        let fetched = keys_origin.requests().len();
        // The same providers, another route line: the keys stay, nothing is fetched again.
        let same = config(&o, &keys, "orders-api").replace("name = \"strict\"", "name = \"strict2\"");
        p.reload(&same);
        assert_eq!(call(&p, "/x", &ok, "").status, 200);
        assert_eq!(keys_origin.requests().len(), fetched, "the keys were kept");
        p.reload(&config(&o, &keys, "billing-api"));
        // The new provider has its keys once fetched; the cached verification is gone.
        until_status(&p, &ok, 403);
    }
);
