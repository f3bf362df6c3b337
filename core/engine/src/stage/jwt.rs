//! `Jwt`: the JSON Web Token half of a route's `authn` (gateway role), run by `AuthN`.
//!
//! Reads the route's `authn.jwt` providers (`ringside_config::JwtProvider`) and their keys,
//! shared for the whole process (`cx/jwks/`: read through an arc-swap, fetched off the
//! workers). For each provider in order, the token is looked for where its `from` says
//! (a header after a prefix, a query parameter, a cookie) and checked: at most
//! [`MAX_TOKEN`] bytes, an accepted `alg` (never `none`; HS* only with a key written in the
//! configuration), the signature with the key its `kid` names (an unknown `kid` asks the
//! fetcher for a refetch and is refused: the worker never waits), `iss`, `aud`, and `exp` /
//! `nbf` within `clock_skew_s`. Failures are [`JwtFailure`]s (`AuthN` answers them: 401
//! `invalid_token`, 403 for the audience).
//!
//! A verified token's `sub` names its consumer (`jwt_subjects`, one hash lookup); its
//! `claims_to_headers` go upstream (a client's copies are removed on every request of the
//! route); the token itself is removed unless `forward = true`.
//!
//! Cost: a verified token is kept in this worker's table of the route's verified credentials
//! (`seen.rs`) until its `exp` (plus the skew) or until the provider's keys change. A repeat
//! request costs one hash of the token (FxHash) and one comparison of its bytes, not a
//! signature check. (Keyed by a SHA-256, a hit cost 19k instructions of digest.)

use std::borrow::Cow;

use bytes::Bytes;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{decode, decode_header, Validation};
use ringside_config::jwt::accepted_algorithm;
use ringside_config::{ConsumerId, Consumers, JwtProvider, TokenSource};
use serde_json::Value;

use super::authn::{query_value, remove, without_param};
use super::seen::Seen;
use super::Req;
use crate::cx::error::{JwtFailure, ProxyError};
use crate::cx::jwks::{self, ProviderKeys};
use crate::cx::shared::Registry;

/// The longest token checked (a longer one is refused unread).
pub(crate) const MAX_TOKEN: usize = 8 * 1024;
/// The longest claim value given to the upstream as a header.
const MAX_CLAIM_VALUE: usize = 4096;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Jwt {
    providers: Vec<Checker>,
    /// Tokens this worker verified for the route.
    cache: Seen<Verified>,
}

#[derive(Clone)]
struct Checker {
    config: Arc<JwtProvider>,
    keys: Arc<ProviderKeys>,
    /// For each place of `config.from`, the header's name as an edit names it (empty for a
    /// query parameter or a cookie).
    from_headers: Vec<Bytes>,
}

impl Checker {
    fn new(provider: &Arc<JwtProvider>, registry: &Registry) -> Checker {
        let from_headers = provider
            .from
            .iter()
            .map(|source| match source {
                TokenSource::Header { name, .. } => Bytes::copy_from_slice(name.as_bytes()),
                TokenSource::Query(_) | TokenSource::Cookie(_) => Bytes::new(),
            })
            .collect();
        Checker {
            config: Arc::clone(provider),
            keys: jwks::keys_for(provider, registry),
            from_headers,
        }
    }
}

impl std::fmt::Debug for Checker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.config.name)
    }
}

impl PartialEq for Checker {
    fn eq(&self, other: &Self) -> bool {
        self.config == other.config && Arc::ptr_eq(&self.keys, &other.keys)
    }
}

/// What a verified token gives its requests.
#[derive(Debug, Clone)]
struct Verified {
    /// The provider (index in the route's list) whose keys verified it.
    provider: usize,
    /// That provider's key generation then.
    generation: u64,
    /// `exp` plus the skew, in Unix seconds.
    until: u64,
    consumer: Option<ConsumerId>,
    headers: Rc<[(Bytes, Bytes)]>,
}

impl Jwt {
    pub(crate) fn compile(providers: &[Arc<JwtProvider>], registry: &Registry) -> Jwt {
        Jwt {
            providers: providers
                .iter()
                .map(|p| Checker::new(p, registry))
                .collect(),
            cache: Seen::default(),
        }
    }

    /// Removes a client's own copies of the headers the providers' claims set.
    pub(crate) fn scrub(&self, req: &mut Req<'_>) {
        let head = req.head;
        for c in &self.providers {
            for claim in &c.config.claims_to_headers {
                if head.header(&claim.header).is_some() {
                    remove(req, Bytes::copy_from_slice(claim.header.as_bytes()));
                }
            }
        }
    }

    /// `None`: no provider found a token. Otherwise the token that passed, or why the
    /// first one that says most does not. Changes nothing in the request (the cache
    /// aside): [`Jwt::apply`] does, once the request is admitted.
    pub(crate) fn check(
        &self,
        head: &ringside_codec::RequestHead,
        consumers: &Consumers,
    ) -> Option<Result<Passed, JwtFailure>> {
        let now = unix_now();
        let mut failure: Option<JwtFailure> = None;
        for (i, c) in self.providers.iter().enumerate() {
            let Some((source, token)) = find(head, &c.config.from) else {
                continue;
            };
            // A token too long to be checked is not even looked up.
            let cached = match token.len() {
                n if n > MAX_TOKEN => None,
                _ => self.cache.get(&token).filter(|v| {
                    v.provider == i && v.generation == c.keys.generation() && now < v.until
                }),
            };
            let verified = match cached {
                Some(v) => v,
                None => match verify(c, &token, consumers) {
                    Ok(mut v) => {
                        v.provider = i;
                        self.cache.put(&token, v.clone(), |e| now < e.until);
                        v
                    }
                    Err(f) => {
                        // The first failure that is not another issuer's token says most.
                        if failure.is_none_or(|old| old == JwtFailure::Issuer) {
                            failure = Some(f);
                        }
                        continue;
                    }
                },
            };
            return Some(Ok(Passed { source, verified }));
        }
        failure.map(Err)
    }

    /// Makes the request edits of a token that passed: the token removed (unless the
    /// provider forwards it) and its claims' headers added. Returns its consumer.
    pub(crate) fn apply(
        &self,
        req: &mut Req<'_>,
        passed: &Passed,
    ) -> Result<Option<ConsumerId>, ProxyError> {
        let v = &passed.verified;
        let Some(c) = self.providers.get(v.provider) else {
            return Ok(None);
        };
        if !c.config.forward {
            if let Some(source) = c.config.from.get(passed.source) {
                let name = c
                    .from_headers
                    .get(passed.source)
                    .cloned()
                    .unwrap_or_default();
                strip(req, source, name)?;
            }
        }
        for (name, value) in v.headers.iter() {
            req.edits.add.push((name.clone(), value.clone()));
        }
        Ok(v.consumer)
    }
}

/// A token that passed a route's check: where it was (an index in its provider's `from`)
/// and what it gives.
#[derive(Debug)]
pub(crate) struct Passed {
    source: usize,
    verified: Verified,
}

impl Passed {
    /// The consumer whose `jwt_subjects` has the token's `sub`.
    pub(crate) fn consumer(&self) -> Option<ConsumerId> {
        self.verified.consumer
    }
}

/// The first place of `from` holding a token: its index in `from`, and the token.
fn find<'h>(
    head: &'h ringside_codec::RequestHead,
    from: &[TokenSource],
) -> Option<(usize, Cow<'h, [u8]>)> {
    from.iter().enumerate().find_map(|(i, source)| {
        let token: Cow<'h, [u8]> = match source {
            TokenSource::Header { name, prefix } => {
                let v = head.header(name)?;
                let p = prefix.as_bytes();
                let rest = match v.get(..p.len()) {
                    Some(start) if start.eq_ignore_ascii_case(p) => v.get(p.len()..)?,
                    _ => return None,
                };
                Cow::Borrowed(rest.trim_ascii())
            }
            TokenSource::Query(q) => query_value(head.path_and_query(), q)?,
            TokenSource::Cookie(name) => Cow::Borrowed(cookie(head, name)?),
        };
        (!token.is_empty()).then_some((i, token))
    })
}

/// The value of cookie `name`.
fn cookie<'h>(head: &'h ringside_codec::RequestHead, name: &str) -> Option<&'h [u8]> {
    head.headers()
        .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
        .flat_map(|(_, v)| v.split(|b| *b == b';'))
        .find_map(|pair| {
            let pair = pair.trim_ascii();
            let eq = pair.iter().position(|b| *b == b'=')?;
            let (n, v) = (pair.get(..eq)?, pair.get(eq + 1..)?);
            (n == name.as_bytes()).then_some(v)
        })
}

/// Removes the token from where it was found (`header`: a header source's name, as an
/// edit names it).
fn strip(req: &mut Req<'_>, source: &TokenSource, header: Bytes) -> Result<(), ProxyError> {
    match source {
        TokenSource::Header { .. } => remove(req, header),
        TokenSource::Query(q) => {
            let base = req.upstream_head();
            let h = base.retarget(Some(&without_param(base.path_and_query(), q)), None)?;
            req.rewritten = Some(Box::new(h));
        }
        TokenSource::Cookie(name) => {
            let head = req.head;
            let rest: Vec<&[u8]> = head
                .headers()
                .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
                .flat_map(|(_, v)| v.split(|b| *b == b';'))
                .map(<[u8]>::trim_ascii)
                .filter(|p| {
                    !p.is_empty() && p.split(|b| *b == b'=').next() != Some(name.as_bytes())
                })
                .collect();
            let cookie = Bytes::from_static(b"cookie");
            remove(req, cookie.clone());
            if !rest.is_empty() {
                req.edits.add.push((cookie, rest.join(&b"; "[..]).into()));
            }
        }
    }
    Ok(())
}

/// [`verify`] for the fuzz target (`crate::fuzzing::jwt_verify`): `token` checked against
/// `provider` as a route checks it, and the claim headers it would send upstream.
pub(crate) fn check_token(
    provider: &Arc<JwtProvider>,
    registry: &Registry,
    consumers: &Consumers,
    token: &[u8],
) -> Result<Vec<(String, Vec<u8>)>, JwtFailure> {
    let c = Checker::new(provider, registry);
    let v = verify(&c, token, consumers)?;
    Ok(v.headers
        .iter()
        .map(|(n, v)| (String::from_utf8_lossy(n).into_owned(), v.to_vec()))
        .collect())
}

/// Checks `token` against provider `c`.
fn verify(c: &Checker, token: &[u8], consumers: &Consumers) -> Result<Verified, JwtFailure> {
    if token.len() > MAX_TOKEN {
        return Err(JwtFailure::TooLarge);
    }
    let token = std::str::from_utf8(token).map_err(|_| JwtFailure::Malformed)?;
    let header = decode_header(token).map_err(|_| JwtFailure::Malformed)?;
    if !accepted_algorithm(header.alg) {
        return Err(JwtFailure::Malformed);
    }
    let generation = c.keys.generation();
    let guard = c.keys.current();
    // Before the first fetch succeeded: the fetcher is already trying (and retrying).
    let Some(set) = guard.as_ref() else {
        return Err(JwtFailure::NoKeys);
    };
    // The key the `kid` names (failing that, the keys that have no `kid`); without a `kid`,
    // every key that takes the algorithm.
    let with_kid = |kid: Option<&String>| -> Vec<&ringside_config::jwt::Key> {
        set.keys.iter().filter(|k| k.kid.as_ref() == kid).collect()
    };
    let named = match &header.kid {
        Some(kid) => match with_kid(Some(kid)) {
            exact if !exact.is_empty() => exact,
            _ => with_kid(None),
        },
        None => set.keys.iter().collect(),
    };
    if named.is_empty() {
        c.keys.ask_refetch();
        return Err(JwtFailure::UnknownKid);
    }
    let p = &c.config;
    let mut v = Validation::new(header.alg);
    v.leeway = p.clock_skew.as_secs();
    v.validate_nbf = true;
    v.set_issuer(&[&p.issuer]);
    if p.audiences.is_empty() {
        v.validate_aud = false;
        v.set_required_spec_claims(&["exp", "iss"]);
    } else {
        v.set_audience(&p.audiences);
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
    }
    let mut failure = JwtFailure::Algorithm;
    for key in named.into_iter().filter(|k| k.accepts(header.alg)) {
        match decode::<Value>(token, &key.key, &v) {
            Ok(data) => return Ok(verified(p, &data.claims, consumers, generation)),
            Err(e) => match failure_of(e.kind()) {
                JwtFailure::Signature => failure = JwtFailure::Signature,
                other => return Err(other),
            },
        }
    }
    Err(failure)
}

fn failure_of(kind: &ErrorKind) -> JwtFailure {
    match kind {
        ErrorKind::ExpiredSignature => JwtFailure::Expired,
        ErrorKind::ImmatureSignature => JwtFailure::NotYetValid,
        ErrorKind::InvalidIssuer => JwtFailure::Issuer,
        ErrorKind::InvalidAudience => JwtFailure::Audience,
        ErrorKind::MissingRequiredClaim(c) if c == "aud" => JwtFailure::Audience,
        ErrorKind::MissingRequiredClaim(c) if c == "iss" => JwtFailure::Issuer,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => JwtFailure::Algorithm,
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat
        | ErrorKind::Crypto(_) => JwtFailure::Signature,
        _ => JwtFailure::Malformed,
    }
}

/// What the verified `claims` give the requests that carry them.
fn verified(p: &JwtProvider, claims: &Value, consumers: &Consumers, generation: u64) -> Verified {
    let exp = claims.get("exp").and_then(Value::as_f64).unwrap_or(0.0);
    let until = (exp.max(0.0) as u64).saturating_add(p.clock_skew.as_secs());
    let consumer = claims
        .get("sub")
        .and_then(Value::as_str)
        .and_then(|sub| consumers.by_subject(sub));
    let headers: Vec<(Bytes, Bytes)> = p
        .claims_to_headers
        .iter()
        .filter_map(|c| {
            let v = c.path.iter().try_fold(claims, |v, k| v.get(k))?;
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            let fits = text.len() <= MAX_CLAIM_VALUE
                && text
                    .bytes()
                    .all(|b| b == b'\t' || (0x20..0x7f).contains(&b));
            fits.then(|| {
                let name = Bytes::copy_from_slice(c.header.as_bytes());
                (name, Bytes::from(text.into_bytes()))
            })
        })
        .collect();
    Verified {
        provider: 0,
        generation,
        until,
        consumer,
        headers: headers.into(),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
#[path = "jwt_tests.rs"]
mod tests;
