//! `[[jwt_providers]]`, `jwt_subjects` and `authn.jwt`: the contract as written, and each
//! mistake with its path.

use std::time::Duration;

use super::tests::{errors, ok};
use crate::jwt::{JwksSource, TokenSource};
use crate::model::ListenerKind;
use crate::ConsumerId;

const BASE: &str = r#"
[proxy]
role = "gateway"

[[listeners]]
name = "public"
bind = "127.0.0.1:0"

[[clusters]]
name = "local-app"
endpoints = [ "127.0.0.1:9001" ]
"#;

/// An Ed25519 public key (RFC 8037, A.2).
const JWKS: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"ed","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;

#[test]
fn the_contract_keys_are_accepted() {
    let text = format!(
        r#"{BASE}
[[jwt_providers]]
name = "corp"
issuer = "https://id.example.com"
audiences = [ "orders-api" ]
jwks_uri = "https://id.example.com/.well-known/jwks.json"
jwks_refresh_s = 600
from = [ "header:authorization:Bearer ", "query:access_token", "cookie:session" ]
forward = false
claims_to_headers = {{ sub = "x-user-id", "org.id" = "x-org-id" }}
clock_skew_s = 60

[[jwt_providers]]
name = "inline"
issuer = "me"
jwks = '{JWKS}'

[[consumers]]
name = "mobile-app"
jwt_subjects = [ "client:mobile" ]

[[routes]]
listener = "public"
name = "orders-api"
authn = {{ jwt = [ "corp", "inline" ], api_key = {{ header = "x-api-key", query = "apikey" }} }}
cluster = "local-app"

[[routes]]
listener = "public"
name = "jwt-only"
authn = {{ jwt = [ "inline" ] }}
cluster = "local-app"
"#
    );
    let c = ok(&text);
    assert_eq!(c.consumers.by_subject("client:mobile"), Some(ConsumerId(0)));
    assert_eq!(c.consumers.by_subject("client:other"), None);
    let names: Vec<&str> = c.jwt_providers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["corp", "inline"]);
    let corp = &c.jwt_providers[0];
    assert_eq!(corp.audiences, ["orders-api"]);
    assert_eq!(corp.clock_skew, Duration::from_secs(60));
    assert_eq!(corp.from.len(), 3);
    assert_eq!(corp.from[2], TokenSource::Cookie("session".into()));
    let claims: Vec<(String, &str)> = corp
        .claims_to_headers
        .iter()
        .map(|c| (c.path.join("/"), c.header.as_str()))
        .collect();
    assert_eq!(
        claims,
        [
            ("org/id".to_owned(), "x-org-id"),
            ("sub".to_owned(), "x-user-id")
        ]
    );
    match &corp.keys {
        JwksSource::Remote(r) => {
            assert_eq!(
                (r.https, r.host.as_str(), r.port),
                (true, "id.example.com", 443)
            );
            assert_eq!(r.path, "/.well-known/jwks.json");
            assert_eq!(r.refresh, Duration::from_secs(600));
        }
        JwksSource::Static(_) => panic!("fetched keys"),
    }
    let inline = &c.jwt_providers[1];
    assert!(matches!(&inline.keys, JwksSource::Static(k) if k.keys.len() == 1));
    // The defaults: the token in `Authorization: Bearer` or `?access_token=`, removed.
    assert_eq!(inline.from.len(), 2);
    assert!(!inline.forward);
    let ListenerKind::Http(http) = &c.listeners[0].kind else {
        panic!("http")
    };
    let authn = http.routes[0].authn.as_ref().unwrap();
    assert_eq!(authn.jwt.len(), 2);
    assert!(authn.api_key.is_some());
    let only = http.routes[1].authn.as_ref().unwrap();
    assert!(only.api_key.is_none());
    // The same text twice: the same providers (the engine keys its state by fingerprint).
    assert_eq!(ok(&text).jwt_providers, c.jwt_providers);
}

#[test]
fn provider_mistakes() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"keys\": 3}").unwrap();
    let text = format!(
        r#"{BASE}
[[jwt_providers]]
name = "a"
issuer = ""
jwks_uri = "http://id.example.com/jwks"
from = [ "body:token", "header:x-token:Bearer " ]
claims_to_headers = {{ sub = "x-consumer-name", "org..id" = "x-org", iss = "bad header" }}
clock_skew_s = 601

[[jwt_providers]]
name = "b"
issuer = "b"
jwks = '{{"keys":[{{"kty":"oct","k":"c2VjcmV0"}}]}}'
jwks_uri = "https://x/"

[[jwt_providers]]
name = "c"
issuer = "c"
jwks_file = "{bad}"

[[jwt_providers]]
name = "d"
issuer = "d"
jwks_uri = "https://x/jwks"
jwks_ca = "/nonexistent/ca.pem"
jwks_refresh_s = 0

[[jwt_providers]]
name = "e"
issuer = "e"
jwks = '{{"keys":[{{"kty":"RSA","n":"!!","e":"AQAB"}}]}}'
jwks_refresh_s = 5

[[jwt_providers]]
name = "a"
issuer = "again"
jwks = '{JWKS}'

[[consumers]]
name = "x"
jwt_subjects = [ "s", "" ]

[[consumers]]
name = "y"
jwt_subjects = [ "s" ]

[[routes]]
listener = "public"
authn = {{ jwt = [ "nope" ] }}
cluster = "local-app"

[[routes]]
listener = "public"
authn = {{ jwt = [ ] }}
cluster = "local-app"
"#,
        bad = bad.display()
    );
    let found = errors(&text);
    for (path, what) in [
        ("jwt_providers[0].issuer: ", "must not be empty"),
        (
            "jwt_providers[0].jwks_uri: ",
            "http:// is accepted only to a loopback",
        ),
        ("jwt_providers[0].from[0]: ", "unknown place \"body:token\""),
        (
            "jwt_providers[0].claims_to_headers.sub: ",
            "x-consumer-name is set by the proxy",
        ),
        (
            "jwt_providers[0].claims_to_headers.org..id: ",
            "invalid claim",
        ),
        (
            "jwt_providers[0].claims_to_headers.iss: ",
            "invalid header name",
        ),
        ("jwt_providers[0].clock_skew_s: ", "must be from 0 to 600"),
        (
            "jwt_providers[1]: ",
            "needs exactly one of jwks_uri, jwks_file and jwks",
        ),
        ("jwt_providers[2].jwks_file: ", "not a JWKS document"),
        ("jwt_providers[3].jwks_ca: ", "cannot read"),
        ("jwt_providers[4].jwks: ", "no usable key"),
        ("jwt_providers[4].jwks_refresh_s: ", "only with jwks_uri"),
        (
            "jwt_providers[5].name: ",
            "duplicate JWT provider name \"a\"",
        ),
        ("consumers[0].jwt_subjects[1]: ", "must be 1 to 256"),
        (
            "consumers[1].jwt_subjects[0]: ",
            "duplicate JWT subject \"s\"",
        ),
        ("routes[0].authn.jwt[0]: ", "unknown JWT provider \"nope\""),
        ("routes[1].authn.jwt: ", "must name at least one"),
    ] {
        assert!(
            found
                .iter()
                .any(|e| e.starts_with(path) && e.contains(what)),
            "{path}{what} in {found:#?}"
        );
    }
}

#[test]
fn jwt_keys_need_the_gateway_role() {
    let text = format!(
        r#"
[[listeners]]
name = "public"
bind = "127.0.0.1:0"

[[jwt_providers]]
name = "inline"
issuer = "me"
jwks = '{JWKS}'
"#
    );
    let found = errors(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("jwt_providers[0]: needs [proxy] role = \"gateway\""));
}
