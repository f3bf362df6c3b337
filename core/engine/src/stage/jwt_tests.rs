//! `AuthN` with JWT providers, over parsed request heads: tokens signed here with a shared
//! secret written in the configuration (the integration tests use RSA, EC and Ed25519 keys
//! made by a real JWT library).

use jsonwebtoken::{encode, EncodingKey, Header};
use ringside_config::ListenerKind;
use serde_json::json;

use super::super::authn::AuthN;
use super::super::{Flow, Local, Req};
use crate::cx::metrics::ListenerStats;
use crate::cx::shared::Registry;
use crate::cx::ClientConn;

const SECRET: &[u8] = b"secret-secret-secret-secret-32b!";
// base64url of SECRET.
const SECRET_B64: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTMyYiE";

fn config() -> String {
    format!(
        r#"
[proxy]
role = "gateway"

[[listeners]]
name = "public"
bind = "127.0.0.1:1"

[[jwt_providers]]
name = "corp"
issuer = "https://id.example.com"
audiences = [ "orders-api" ]
jwks = '{{"keys":[{{"kty":"oct","kid":"k1","k":"{SECRET_B64}"}}]}}'
from = [ "header:authorization:Bearer ", "query:access_token", "cookie:session" ]
claims_to_headers = {{ sub = "x-user-id", "org.id" = "x-org-id" }}

[[jwt_providers]]
name = "no-kid"
issuer = "https://id.example.com"
jwks = '{{"keys":[{{"kty":"oct","k":"{SECRET_B64}"}}]}}'

[[consumers]]
name = "mobile-app"
api_keys = [ {{ key = "mobile-key" }} ]
jwt_subjects = [ "client:mobile" ]

[[routes]]
listener = "public"
name = "either"
match = {{ path_prefix = "/either" }}
authn = {{ jwt = [ "corp" ], api_key = {{ header = "x-api-key" }} }}
cluster = "app"

[[routes]]
listener = "public"
name = "jwt"
cluster = "app"
authn = {{ jwt = [ "corp" ] }}

[[routes]]
listener = "public"
name = "no-kid"
match = {{ path_prefix = "/no-kid" }}
cluster = "app"
authn = {{ jwt = [ "no-kid" ] }}

[[clusters]]
name = "app"
endpoints = [ "127.0.0.1:2" ]
"#
    )
}

fn stage(route: &str) -> AuthN {
    let config = ringside_config::parse(&config()).unwrap();
    let ListenerKind::Http(http) = &config.listeners[0].kind else {
        panic!("http listener")
    };
    let route = http.routes.iter().find(|r| r.name == route).unwrap();
    AuthN::compile(route, &Registry::default())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn token(claims: serde_json::Value) -> String {
    let mut h = Header::new(jsonwebtoken::Algorithm::HS256);
    h.kid = Some("k1".into());
    encode(&h, &claims, &EncodingKey::from_secret(SECRET)).unwrap()
}

fn good() -> serde_json::Value {
    json!({ "iss": "https://id.example.com", "aud": ["other", "orders-api"], "sub": "client:mobile",
            "exp": now() + 300, "org": { "id": 42 } })
}

/// The status (0: passed), `www-authenticate` value, consumer, header edits and target.
struct Outcome {
    status: u16,
    challenge: Option<String>,
    consumer: Option<String>,
    edits: Vec<String>,
    target: Option<String>,
}

fn run(stage: &AuthN, text: &str) -> Outcome {
    let head = crate::stage::test_head(text);
    let conn = ClientConn {
        peer: "10.0.0.1:5000".parse().unwrap(),
        tls: false,
        identity: None,
        xfcc: None,
        original_dst: None,
    };
    let stats = ListenerStats::default();
    let random = || 4;
    let mut req = Req::new(&head, &conn, &stats, false, false, &random);
    let (status, challenge) = match stage.request(&mut req) {
        Flow::Next => (0, None),
        Flow::Reply(Local::Error(e)) => {
            let c = match &e {
                crate::cx::error::ProxyError::Unauthenticated(u) => Some(u.challenge()),
                _ => None,
            };
            (e.status(), c)
        }
        Flow::Reply(_) => (1, None),
    };
    let edits = crate::stage::test_edits(&req.edits);
    Outcome {
        status,
        challenge,
        consumer: req.consumer.map(|c| c.name.to_string()),
        edits,
        target: req.rewritten.map(|h| h.path_and_query().to_string()),
    }
}

fn bearer(stage: &AuthN, token: &str) -> Outcome {
    run(
        stage,
        &format!("GET /jwt HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {token}\r\n\r\n"),
    )
}

#[test]
fn a_valid_token_names_its_consumer_and_claims() {
    let s = stage("jwt");
    let t = token(good());
    let o = run(
        &s,
        &format!("GET /jwt HTTP/1.1\r\nHost: h\r\nX-User-Id: forged\r\nX-Consumer-Name: admin\r\nAuthorization: bearer {t}\r\n\r\n"),
    );
    assert_eq!((o.status, o.consumer.as_deref()), (0, Some("mobile-app")));
    assert_eq!(
        o.edits,
        [
            "-x-consumer-name",
            "-x-user-id",
            "-authorization",
            "+x-org-id=42",
            "+x-user-id=client:mobile",
            "+x-consumer-name=mobile-app"
        ]
    );
    // The second time: from this worker's cache, the same outcome.
    let again = bearer(&s, &t);
    assert_eq!(
        (again.status, again.consumer.as_deref()),
        (0, Some("mobile-app"))
    );
    // A subject that is nobody's: admitted without a consumer.
    let mut anon = good();
    anon["sub"] = json!("someone");
    let o = bearer(&s, &token(anon));
    assert_eq!((o.status, o.consumer), (0, None));
    assert!(!o.edits.iter().any(|e| e.starts_with("+x-consumer-name")));
}

#[test]
fn tokens_in_the_query_and_in_a_cookie_are_removed() {
    let s = stage("jwt");
    let t = token(good());
    let o = run(
        &s,
        &format!("GET /jwt?a=1&access_token={t} HTTP/1.1\r\nHost: h\r\n\r\n"),
    );
    assert_eq!((o.status, o.target.as_deref()), (0, Some("/jwt?a=1")));
    let o = run(
        &s,
        &format!(
            "GET /jwt HTTP/1.1\r\nHost: h\r\nCookie: theme=dark; session={t}; lang=en\r\n\r\n"
        ),
    );
    assert_eq!(o.status, 0);
    assert!(o.edits.contains(&"-cookie".to_owned()), "{:?}", o.edits);
    assert!(
        o.edits.contains(&"+cookie=theme=dark; lang=en".to_owned()),
        "{:?}",
        o.edits
    );
}

#[test]
fn bad_tokens_are_refused() {
    let s = stage("jwt");
    let invalid = r#"Bearer realm="jwt", error="invalid_token""#;
    let mut expired = good();
    expired["exp"] = json!(now() - 600);
    let mut early = good();
    early["nbf"] = json!(now() + 600);
    let mut issuer = good();
    issuer["iss"] = json!("https://evil.example.com");
    let mut no_exp = good();
    no_exp.as_object_mut().unwrap().remove("exp");
    let t = token(good());
    let (head, rest) = t.split_once('.').unwrap();
    let (_, sig) = rest.split_once('.').unwrap();
    let forged_body = format!("{head}.eyJpc3MiOiJ4In0.{sig}");
    // alg: none, unsigned.
    let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJjbGllbnQ6bW9iaWxlIn0.";
    let mut other_kid = Header::new(jsonwebtoken::Algorithm::HS256);
    other_kid.kid = Some("k9".into());
    let unknown_kid = encode(&other_kid, &good(), &EncodingKey::from_secret(SECRET)).unwrap();
    let wrong_key = encode(
        &Header::new(jsonwebtoken::Algorithm::HS256),
        &good(),
        &EncodingKey::from_secret(b"another-secret-another-secret-32"),
    )
    .unwrap();
    for (what, t) in [
        ("expired", token(expired)),
        ("not yet valid", token(early)),
        ("wrong issuer", token(issuer)),
        ("no exp", token(no_exp)),
        ("forged body", forged_body),
        ("alg none", none.to_owned()),
        ("garbage", "a.b.c".to_owned()),
        ("unknown kid", unknown_kid),
        ("wrong key", wrong_key),
    ] {
        let o = bearer(&s, &t);
        assert_eq!(
            (o.status, o.challenge.as_deref()),
            (401, Some(invalid)),
            "{what}"
        );
        assert_eq!(o.consumer, None, "{what}");
    }
    let mut audience = good();
    audience["aud"] = json!("billing");
    assert_eq!(bearer(&s, &token(audience)).status, 403);
    let mut no_aud = good();
    no_aud.as_object_mut().unwrap().remove("aud");
    assert_eq!(bearer(&s, &token(no_aud)).status, 403);
    // No token: the bearer challenge alone.
    let o = run(
        &s,
        "GET /jwt HTTP/1.1\r\nHost: h\r\nAuthorization: Basic eDp5\r\n\r\n",
    );
    assert_eq!(
        (o.status, o.challenge.as_deref()),
        (401, Some(r#"Bearer realm="jwt""#))
    );
}

#[test]
fn either_credential_admits() {
    let s = stage("either");
    let o = run(&s, "GET /either HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(
        (o.status, o.challenge.as_deref()),
        (401, Some(r#"Bearer realm="either", ApiKey realm="either""#))
    );
    let o = run(
        &s,
        "GET /either HTTP/1.1\r\nHost: h\r\nX-Api-Key: mobile-key\r\n\r\n",
    );
    assert_eq!((o.status, o.consumer.as_deref()), (0, Some("mobile-app")));
    let o = run(
        &s,
        "GET /either HTTP/1.1\r\nHost: h\r\nX-Api-Key: nope\r\n\r\n",
    );
    assert_eq!(
        (o.status, o.challenge.as_deref()),
        (401, Some(r#"ApiKey realm="either""#))
    );
    // A bad token with a good key: the key admits.
    let o = run(
        &s,
        "GET /either HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer a.b.c\r\nX-Api-Key: mobile-key\r\n\r\n",
    );
    assert_eq!((o.status, o.consumer.as_deref()), (0, Some("mobile-app")));
    let o = bearer(&s, &token(good()));
    assert_eq!((o.status, o.consumer.as_deref()), (0, Some("mobile-app")));
}

#[test]
fn a_kid_the_keys_do_not_name_uses_the_keys_without_one() {
    let s = stage("no-kid");
    assert_eq!(bearer(&s, &token(good())).status, 0);
}
