//! The gateway's keys: `[[consumers]]` and their API keys, a route's `authn`, and the `key`
//! of a route's `rate_limit`. Each needs `[proxy] role = "gateway"` (a sidecar's pipeline
//! has no stage that would read it, and a key it silently ignored would leave a route open).
//! A route's `authn.jwt` names `[[jwt_providers]]` (`validate/jwt.rs`); a consumer's
//! `jwt_subjects` go in their own table. A route's `match.consumers` names consumers and
//! needs the route's `authn` (the pipeline checks it with that route's credentials).

use std::collections::HashMap;
use std::sync::Arc;

use super::headers::header_name;
use super::Validator;
use crate::consumers::{sha256, ApiKeyAuthn, Authn, Consumer, ConsumerId, Consumers, Digest};
use crate::jwt::JwtProvider;
use crate::model::Role;
use crate::raw::{FileApiKey, FileApiKeyAuthn, FileConsumer, FileRateLimit, FileRoute};
use crate::read::Slot;
use crate::RateLimitKey;

/// What `gateway_route` found in one route.
pub(super) struct GatewayRoute {
    pub(super) authn: Option<Authn>,
    pub(super) rate_limit_key: RateLimitKey,
    /// `match.consumers`, resolved (empty: any request).
    pub(super) consumers: Vec<ConsumerId>,
}

/// What a gateway-only key says when the role is not `gateway`.
pub(super) const GATEWAY_ONLY: &str =
    "needs [proxy] role = \"gateway\": the sidecar's pipeline has no stage that reads it";

/// The longest `{ key = "..." }`.
const MAX_KEY_LEN: usize = 256;

impl Validator {
    /// `[[consumers]]`: every consumer, and one table from key digest to consumer.
    pub(super) fn consumers(&mut self, role: Role, slots: &[Slot<FileConsumer>]) -> Consumers {
        self.names("consumers", "consumer", slots, |c: &FileConsumer| &c.name);
        let mut list = Vec::new();
        // Where each digest was first given, for the duplicate's message.
        let mut keys: HashMap<Digest, (ConsumerId, String)> = HashMap::new();
        let mut subjects: HashMap<String, (ConsumerId, String)> = HashMap::new();
        for (i, slot) in slots.iter().enumerate() {
            let Slot::Ok(c) = slot else { continue };
            let p = format!("consumers[{i}]");
            if role != Role::Gateway {
                self.err(&*p, GATEWAY_ONLY);
            }
            let rate_limit = c.rate_limit.as_ref().and_then(|r| {
                let at = format!("{p}.rate_limit");
                self.unkeyed(&at, r, "a consumer's own bucket");
                self.rate_limit(&at, r)
            });
            let id = ConsumerId(list.len());
            for (j, key) in c.api_keys.iter().flatten().enumerate() {
                let at = format!("{p}.api_keys[{j}]");
                let Some(digest) = self.api_key(&at, key) else {
                    continue;
                };
                match keys.get(&digest) {
                    Some((_, first)) => {
                        let first = first.clone();
                        self.err(
                            at,
                            format!("duplicate API key (also {first}): a key names one consumer"),
                        );
                    }
                    None => {
                        keys.insert(digest, (id, at));
                    }
                }
            }
            for (j, sub) in c.jwt_subjects.iter().flatten().enumerate() {
                let at = format!("{p}.jwt_subjects[{j}]");
                if sub.is_empty() || sub.len() > MAX_KEY_LEN {
                    self.err(at, format!("must be 1 to {MAX_KEY_LEN} characters"));
                } else if let Some((_, first)) = subjects.get(sub) {
                    let first = first.clone();
                    self.err(
                        at,
                        format!("duplicate JWT subject {sub:?} (also {first}): a subject names one consumer"),
                    );
                } else {
                    subjects.insert(sub.clone(), (id, at));
                }
            }
            list.push(Consumer {
                name: c.name.clone(),
                rate_limit,
            });
        }
        Consumers::new(list, keys.into_iter().map(|(d, (id, _))| (d, id)))
            .with_subjects(subjects.into_iter().map(|(s, (id, _))| (s, id)))
    }

    /// One `api_keys` element at `p`: its digest.
    fn api_key(&mut self, p: &str, key: &FileApiKey) -> Option<Digest> {
        match (&key.sha256, &key.key) {
            (Some(hex), None) => match parse_digest(hex) {
                Some(d) => Some(d),
                None => self.fail(
                    format!("{p}.sha256"),
                    "must be 64 hexadecimal digits (a SHA-256 digest, e.g. from `printf %s \"$KEY\" | sha256sum`)",
                ),
            },
            (None, Some(k)) => {
                let visible = k.bytes().all(|b| (0x21..=0x7e).contains(&b));
                if k.is_empty() || k.len() > MAX_KEY_LEN || !visible {
                    return self.fail(
                        format!("{p}.key"),
                        format!("must be 1 to {MAX_KEY_LEN} visible ASCII characters, without spaces"),
                    );
                }
                Some(sha256(k.as_bytes()))
            }
            _ => self.fail(p, "needs exactly one of sha256 and key"),
        }
    }

    /// A route's `authn`, its `rate_limit.key` and its `match.consumers` (`name`: the
    /// route's name).
    pub(super) fn gateway_route(
        &mut self,
        i: usize,
        r: &FileRoute,
        name: &str,
        role: Role,
        consumers: &Arc<Consumers>,
        providers: &HashMap<String, Option<Arc<JwtProvider>>>,
    ) -> GatewayRoute {
        let p = format!("routes[{i}]");
        let matched = self.match_consumers(&p, r, role, consumers);
        let authn = r.authn.as_ref().and_then(|a| {
            let at = format!("{p}.authn");
            if role != Role::Gateway {
                return self.fail(at, GATEWAY_ONLY);
            }
            let mut jwt = Vec::new();
            let mut known = true;
            for (j, provider) in a.jwt.iter().flatten().enumerate() {
                match providers.get(provider) {
                    Some(Some(p)) => jwt.push(Arc::clone(p)),
                    // Invalid: its own error says why.
                    Some(None) => known = false,
                    None => {
                        known = false;
                        self.err(
                            format!("{at}.jwt[{j}]"),
                            format!("unknown JWT provider {provider:?}"),
                        );
                    }
                }
            }
            if a.jwt.as_ref().is_some_and(Vec::is_empty) {
                return self.fail(format!("{at}.jwt"), "must name at least one JWT provider");
            }
            let api_key = match &a.api_key {
                None if a.jwt.is_none() => {
                    return self.fail(at, "needs api_key, jwt, or both");
                }
                None => None,
                Some(k) => Some(self.api_key_authn(&at, k)?),
            };
            if !known {
                return None;
            }
            Some(Authn::new(
                api_key,
                jwt,
                name.to_owned(),
                Arc::clone(consumers),
            ))
        });
        let key = match r.rate_limit.as_ref().and_then(|l| l.key.as_deref()) {
            None | Some("route") => RateLimitKey::Route,
            Some(written) => {
                let at = format!("{p}.rate_limit.key");
                let key = match written {
                    "consumer" => Some(RateLimitKey::Consumer),
                    "ip" => Some(RateLimitKey::Ip),
                    _ => match written.strip_prefix("header:").map(|h| header_name(h, "read")) {
                        Some(Ok(h)) => Some(RateLimitKey::Header(h)),
                        Some(Err(m)) => self.fail(&*at, m),
                        None => self.fail(
                            &*at,
                            format!("unknown key {written:?}, expected \"route\", \"consumer\", \"ip\" or \"header:<name>\""),
                        ),
                    },
                };
                if key.is_some() && role != Role::Gateway {
                    self.err(&*at, GATEWAY_ONLY);
                }
                if key == Some(RateLimitKey::Consumer) && r.authn.is_none() {
                    self.err(
                        &*at,
                        "a bucket per consumer needs the route's authn (nothing else says who the consumer is)",
                    );
                }
                key.unwrap_or_default()
            }
        };
        GatewayRoute {
            authn,
            rate_limit_key: key,
            consumers: matched,
        }
    }

    /// A route's `match.consumers`: known consumers' names, on a route whose `authn` can
    /// tell who the consumer is.
    fn match_consumers(
        &mut self,
        p: &str,
        r: &FileRoute,
        role: Role,
        consumers: &Consumers,
    ) -> Vec<ConsumerId> {
        let Some(names) = r.matcher.as_ref().and_then(|m| m.consumers.as_ref()) else {
            return Vec::new();
        };
        let at = format!("{p}.match.consumers");
        if role != Role::Gateway {
            self.err(at, GATEWAY_ONLY);
            return Vec::new();
        }
        if r.authn.is_none() {
            self.err(
                at,
                "matching on the consumer needs the route's authn (nothing else says who the consumer is)",
            );
            return Vec::new();
        }
        self.consumer_ids(&at, names, consumers)
    }

    /// An `[[authz]]` rule's `consumers`: known consumers' names (gateway role).
    pub(super) fn authz_consumers(
        &mut self,
        i: usize,
        a: &crate::raw::FileAuthz,
        role: Role,
        consumers: &Consumers,
    ) -> Vec<ConsumerId> {
        let Some(names) = a.consumers.as_ref() else {
            return Vec::new();
        };
        let at = format!("authz[{i}].consumers");
        if role != Role::Gateway {
            self.err(at, GATEWAY_ONLY);
            return Vec::new();
        }
        self.consumer_ids(&at, names, consumers)
    }

    /// Consumers named at `at`: at least one, each known.
    fn consumer_ids(
        &mut self,
        at: &str,
        names: &[String],
        consumers: &Consumers,
    ) -> Vec<ConsumerId> {
        if names.is_empty() {
            self.err(at, "must name at least one consumer");
            return Vec::new();
        }
        let mut ids = Vec::with_capacity(names.len());
        for (j, name) in names.iter().enumerate() {
            match consumers.list().iter().position(|c| &c.name == name) {
                Some(k) => ids.push(ConsumerId(k)),
                None => self.err(format!("{at}[{j}]"), format!("unknown consumer {name:?}")),
            }
        }
        ids
    }

    /// A route's `authn.api_key` (`at`: the path of `authn`).
    fn api_key_authn(&mut self, at: &str, k: &FileApiKeyAuthn) -> Option<ApiKeyAuthn> {
        let header = match header_name(k.header.as_deref().unwrap_or("x-api-key"), "read") {
            Ok(h) => h,
            Err(m) => return self.fail(format!("{at}.api_key.header"), m),
        };
        if let Some(q) = &k.query {
            if q.is_empty()
                || q.bytes()
                    .any(|b| matches!(b, b'&' | b'=' | b'#' | b'%') || !b.is_ascii_graphic())
            {
                return self.fail(
                    format!("{at}.api_key.query"),
                    format!("invalid query parameter name {q:?}: visible ASCII without & = # %"),
                );
            }
        }
        Some(ApiKeyAuthn::new(
            header,
            k.query.clone(),
            k.hide_credentials.unwrap_or(true),
        ))
    }

    /// A `rate_limit` at `p` that cannot have a `key` (`whose`: what its bucket is).
    pub(super) fn unkeyed(&mut self, p: &str, r: &FileRateLimit, whose: &str) {
        if r.key.is_some() {
            self.err(
                format!("{p}.key"),
                format!("only a route's rate_limit has a key; this is {whose}"),
            );
        }
    }
}

/// 64 hexadecimal digits (either case) as a digest.
fn parse_digest(hex: &str) -> Option<Digest> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let digit = |c: u8| char::from(c).to_digit(16);
        let (hi, lo) = (digit(*pair.first()?)?, digit(*pair.get(1)?)?);
        *o = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}
