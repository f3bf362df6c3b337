//! JWT providers (gateway role): who issues the tokens a route accepts, where their keys are,
//! where a request carries its token and what the upstream learns from it.
//!
//! A `[[jwt_providers]]` entry validates to a [`JwtProvider`]. Its keys are either in the
//! configuration (`jwks` inline or `jwks_file`: read and parsed by `validate()`, a
//! [`KeySet`] ready to verify with) or fetched over HTTPS (`jwks_uri`: the engine's JWKS
//! fetcher thread parses what it gets with the same [`KeySet::parse`]). Signatures are checked
//! with the `jsonwebtoken` crate (on ring, the provider rustls already uses).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use rustls::RootCertStore;

/// The most keys one JWKS may hold (a bigger one is refused whole).
pub const MAX_KEYS: usize = 64;

/// One `[[jwt_providers]]` entry. Two are equal when their fingerprints are (what was
/// written and every byte read for it).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JwtProvider {
    pub name: String,
    /// `iss` must equal it.
    pub issuer: String,
    /// `aud` must contain one of them; empty: `aud` is not checked.
    pub audiences: Vec<String>,
    pub keys: JwksSource,
    /// Where a request carries its token, looked at in order.
    pub from: Vec<TokenSource>,
    /// Send the token on to the upstream (`forward = true`); removed otherwise.
    pub forward: bool,
    /// Claim (a path into nested objects) → request header for the upstream.
    pub claims_to_headers: Vec<ClaimHeader>,
    /// How far `exp` and `nbf` may be off.
    pub clock_skew: Duration,
    /// A hash of the validated entry: the engine's shared key state is keyed by it, so a
    /// reload that changes the provider starts afresh.
    pub fingerprint: u64,
}

impl PartialEq for JwtProvider {
    fn eq(&self, other: &Self) -> bool {
        self.fingerprint == other.fingerprint && self.name == other.name
    }
}
impl Eq for JwtProvider {}

/// Where a provider's keys come from.
#[derive(Debug, Clone)]
pub enum JwksSource {
    /// `jwks` or `jwks_file`: the keys, read when the configuration was validated.
    Static(Arc<KeySet>),
    /// `jwks_uri`: fetched off the workers at start, every `refresh` and on an unknown `kid`.
    Remote(RemoteJwks),
}

/// A `jwks_uri` and how to reach it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RemoteJwks {
    /// The URI as written.
    pub uri: String,
    /// `https` (else plain HTTP, allowed only to a loopback address).
    pub https: bool,
    /// Host name or IP literal (without brackets), for DNS, SNI and `Host`.
    pub host: String,
    pub port: u16,
    /// Path and query, at least `/`.
    pub path: String,
    /// `jwks_ca`, else the system's roots.
    pub roots: Arc<RootCertStore>,
    /// `jwks_refresh_s`.
    pub refresh: Duration,
}

/// One place a token may be: `header:<name>:<prefix>`, `query:<param>`, `cookie:<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// A header (lower-case name) whose value starts with `prefix` (ASCII case-insensitive;
    /// may be empty).
    Header {
        name: String,
        prefix: String,
    },
    Query(String),
    Cookie(String),
}

/// One `claims_to_headers` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClaimHeader {
    /// `"org.id"` → `["org", "id"]`.
    pub path: Vec<String>,
    /// Lower case.
    pub header: String,
}

/// The signature algorithms a provider accepts. `none` is never among them.
const ASYMMETRIC: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];
const HMAC: [Algorithm; 3] = [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];

/// The kinds of key, each verifying its own algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    Rsa,
    /// P-256 or P-384.
    Ec(Algorithm),
    Ed25519,
    /// A shared secret (`kty: oct`): only from the configuration, never fetched.
    Hmac,
}

impl KeyFamily {
    /// Whether a key of this family verifies `alg`.
    pub fn verifies(self, alg: Algorithm) -> bool {
        match self {
            KeyFamily::Rsa => matches!(
                alg,
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ),
            KeyFamily::Ec(a) => a == alg,
            KeyFamily::Ed25519 => alg == Algorithm::EdDSA,
            KeyFamily::Hmac => HMAC.contains(&alg),
        }
    }
}

/// One usable key of a JWKS.
#[derive(Clone)]
pub struct Key {
    pub kid: Option<String>,
    /// The JWK's own `alg`, when it names one: the token's must then be the same.
    pub alg: Option<Algorithm>,
    pub family: KeyFamily,
    pub key: DecodingKey,
}

impl Key {
    /// Whether this key may verify a token signed with `alg`.
    pub fn accepts(&self, alg: Algorithm) -> bool {
        self.family.verifies(alg) && self.alg.is_none_or(|a| a == alg)
    }
}

/// The usable keys of one JWKS document.
#[derive(Clone)]
pub struct KeySet {
    pub keys: Vec<Key>,
    /// A hash of the document: equal sets compare equal.
    digest: [u8; 32],
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kids: Vec<&str> = self.keys.iter().filter_map(|k| k.kid.as_deref()).collect();
        f.debug_struct("KeySet").field("kids", &kids).finish()
    }
}

impl PartialEq for KeySet {
    fn eq(&self, other: &Self) -> bool {
        self.digest == other.digest
    }
}
impl Eq for KeySet {}

impl KeySet {
    /// Parses a JWKS document (`{"keys": [...]}`). Keys for encryption (`use: enc`) and of
    /// kinds or curves no accepted algorithm uses are skipped; `oct` (shared-secret) keys
    /// are kept only when `hmac` (a key written in the configuration). An error when the
    /// JSON is not a JWKS or no key is usable.
    pub fn parse(json: &[u8], hmac: bool) -> Result<KeySet, String> {
        #[derive(serde::Deserialize)]
        struct Doc {
            keys: Vec<serde_json::Value>,
        }
        let doc: Doc = serde_json::from_slice(json)
            .map_err(|e| format!("not a JWKS document ({{\"keys\": [...]}}): {e}"))?;
        if doc.keys.len() > MAX_KEYS {
            return Err(format!(
                "{} keys: at most {MAX_KEYS} per JWKS",
                doc.keys.len()
            ));
        }
        let mut keys = Vec::new();
        let mut skipped = Vec::new();
        for (i, value) in doc.keys.into_iter().enumerate() {
            match usable(value, hmac) {
                Ok(k) => keys.push(k),
                Err(why) => skipped.push(format!("keys[{i}]: {why}")),
            }
        }
        if keys.is_empty() {
            let why = if skipped.is_empty() {
                "it has no key".to_owned()
            } else {
                skipped.join("; ")
            };
            return Err(format!("no usable key in the JWKS: {why}"));
        }
        Ok(KeySet {
            keys,
            digest: crate::consumers::sha256(json),
        })
    }
}

/// One JWK as a [`Key`], or why it is not used.
fn usable(value: serde_json::Value, hmac: bool) -> Result<Key, String> {
    let jwk: Jwk = serde_json::from_value(value).map_err(|e| e.to_string())?;
    if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
        return Err("a key for encryption (use: enc)".into());
    }
    let family = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => KeyFamily::Rsa,
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => KeyFamily::Ec(Algorithm::ES256),
            EllipticCurve::P384 => KeyFamily::Ec(Algorithm::ES384),
            _ => return Err("an EC key must be on P-256 or P-384".into()),
        },
        AlgorithmParameters::OctetKeyPair(okp) => match okp.curve {
            EllipticCurve::Ed25519 => KeyFamily::Ed25519,
            _ => return Err("an OKP key must be Ed25519".into()),
        },
        AlgorithmParameters::OctetKey(_) if hmac => KeyFamily::Hmac,
        AlgorithmParameters::OctetKey(_) => {
            return Err("a shared-secret (oct) key is accepted only in the configuration's own jwks, never fetched".into())
        }
    };
    let alg = match jwk.common.key_algorithm {
        None => None,
        Some(a) => match algorithm_of(a) {
            Some(alg) if family.verifies(alg) => Some(alg),
            _ => return Err(format!("alg {a:?} is not accepted for this key")),
        },
    };
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("invalid key: {e}"))?;
    Ok(Key {
        kid: jwk.common.key_id,
        alg,
        family,
        key,
    })
}

/// A JWK's `alg` as a signature algorithm this proxy accepts.
fn algorithm_of(a: KeyAlgorithm) -> Option<Algorithm> {
    let alg = match a {
        KeyAlgorithm::HS256 => Algorithm::HS256,
        KeyAlgorithm::HS384 => Algorithm::HS384,
        KeyAlgorithm::HS512 => Algorithm::HS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    };
    Some(alg)
}

/// Whether a token's `alg` is one a provider may accept at all.
pub fn accepted_algorithm(alg: Algorithm) -> bool {
    ASYMMETRIC.contains(&alg) || HMAC.contains(&alg)
}

#[cfg(test)]
mod tests {
    use super::*;

    // An Ed25519 public key (RFC 8037, A.2) and a shared secret.
    const OKP: &str = r#"{"kty":"OKP","crv":"Ed25519","kid":"ed","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
    const OCT: &str = r#"{"kty":"oct","kid":"s","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTMyYg"}"#;

    #[test]
    fn key_sets() {
        let set = KeySet::parse(format!(r#"{{"keys":[{OKP}]}}"#).as_bytes(), false).unwrap();
        assert_eq!(set.keys.len(), 1);
        let key = set.keys.first().unwrap();
        assert_eq!(key.kid.as_deref(), Some("ed"));
        assert!(key.accepts(Algorithm::EdDSA));
        assert!(!key.accepts(Algorithm::RS256));
        // A fetched JWKS never gives a shared secret.
        let both = format!(r#"{{"keys":[{OKP},{OCT}]}}"#);
        assert_eq!(KeySet::parse(both.as_bytes(), false).unwrap().keys.len(), 1);
        assert_eq!(KeySet::parse(both.as_bytes(), true).unwrap().keys.len(), 2);
        let only_oct = format!(r#"{{"keys":[{OCT}]}}"#);
        let e = KeySet::parse(only_oct.as_bytes(), false).unwrap_err();
        assert!(e.contains("never fetched"), "{e}");
        assert!(KeySet::parse(b"{}", true).is_err());
        assert!(KeySet::parse(br#"{"keys":[]}"#, true).is_err());
        assert!(KeySet::parse(br#"{"keys":[{"kty":"RSA","n":"!","e":"AQAB"}]}"#, true).is_err());
        assert!(accepted_algorithm(Algorithm::HS256));
    }
}
