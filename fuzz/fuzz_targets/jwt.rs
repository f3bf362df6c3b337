//! JWT and JWKS parsing (gateway role): `ringside_config::KeySet::parse` (a JWKS document, as
//! written in the configuration or fetched from `jwks_uri`) and the route's token check
//! (`core/engine/src/stage/jwt.rs`, reached through `ringside_engine::fuzzing::jwt_verify`).
//!
//! Invariant: never panics on any document or token; a bad one is rejected with an error.
//! Property: a token is accepted only if its claims say what the provider requires — the
//! issuer, the audience, an `exp` not past (with the clock skew) — and the claim headers it
//! sends upstream are short and printable.
//!
//! Input: the first byte chooses what the rest is. 0: a JWKS document. 1: a token as a client
//! sends it (it cannot guess the signature, so this walks the refusals). 2: a header JSON, a
//! newline, a claims JSON: the target signs them with the provider's HS256 key, so the check
//! goes past the signature into the claims.
#![no_main]

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use ringside_config::{Config, KeySet};
use ringside_engine::fuzzing::jwt_verify;
use serde_json::Value;

/// A gateway with one provider whose key (`secret`, HS256) is in the configuration.
const CONFIG: &str = r#"
[proxy]
role = "gateway"

[[listeners]]
name = "public"
bind = "127.0.0.1:0"

[[clusters]]
name = "app"
endpoints = [ "127.0.0.1:9001" ]

[[jwt_providers]]
name = "fuzz"
issuer = "fuzz"
audiences = [ "api" ]
jwks = '{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}'
claims_to_headers = { sub = "x-user", "org.id" = "x-org", n = "x-n" }
clock_skew_s = 60

[[consumers]]
name = "mobile-app"
jwt_subjects = [ "client:mobile" ]
"#;

fn config() -> &'static Config {
    static CONFIG_: OnceLock<Config> = OnceLock::new();
    CONFIG_.get_or_init(|| ringside_config::parse(CONFIG).expect("the fuzz configuration"))
}

fn check(token: &[u8], claims: Option<&[u8]>) {
    let c = config();
    let provider = c.jwt_providers.first().expect("one provider");
    let Ok(headers) = jwt_verify(provider, &c.consumers, token) else {
        return;
    };
    for (name, value) in &headers {
        assert!(name.starts_with("x-"));
        assert!(value.len() <= 4096);
        assert!(value
            .iter()
            .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b)));
    }
    let Some(claims) = claims else { return };
    let claims: Value = serde_json::from_slice(claims).expect("accepted claims are JSON");
    assert_eq!(claims.get("iss"), Some(&Value::from("fuzz")), "{claims}");
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == "api",
        Some(Value::Array(a)) => a.iter().any(|a| a == "api"),
        _ => false,
    };
    assert!(aud_ok, "accepted without the audience: {claims}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let exp = claims.get("exp").and_then(Value::as_f64).expect("exp");
    assert!(exp + 60.0 >= now as f64, "accepted after exp: {claims}");
}

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            for hmac in [false, true] {
                if let Ok(set) = KeySet::parse(rest, hmac) {
                    let _ = set.keys.len();
                }
            }
        }
        1 => check(rest, None),
        _ => {
            let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
                return;
            };
            let (header, claims) = (&rest[..nl], &rest[nl + 1..]);
            let mut token = URL_SAFE_NO_PAD.encode(header);
            token.push('.');
            token.push_str(&URL_SAFE_NO_PAD.encode(claims));
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"secret");
            let tag = ring::hmac::sign(&key, token.as_bytes());
            token.push('.');
            token.push_str(&URL_SAFE_NO_PAD.encode(tag.as_ref()));
            check(token.as_bytes(), Some(claims));
        }
    }
});
