//! Consumers and API keys (gateway role): who a request is, found in constant time.
//!
//! `[[consumers]]` name the clients of a gateway's routes. Each API key of the file is kept
//! as its SHA-256 digest (a `{ key = "..." }` is hashed when the configuration is
//! validated), in one hash map from digest to consumer. A request's key is hashed once and
//! looked up in that map: the cost does not grow with the number of consumers or keys, and
//! no key is compared byte by byte with a secret (the digest of a presented key is not
//! something a client can steer towards a stored one). A consumer's `jwt_subjects` go in a
//! second map, from a verified token's `sub` to the consumer.

use std::collections::HashMap;
use std::sync::Arc;

use crate::jwt::JwtProvider;
use crate::model::RateLimit;

/// A SHA-256 digest.
pub type Digest = [u8; 32];

/// The SHA-256 digest of `bytes` (ring, the provider rustls already uses).
pub fn sha256(bytes: &[u8]) -> Digest {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    for (o, b) in out.iter_mut().zip(d.as_ref()) {
        *o = *b;
    }
    out
}

/// One `[[consumers]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Consumer {
    pub name: String,
    /// The consumer's own token bucket, for every one of its authenticated requests.
    pub rate_limit: Option<RateLimit>,
}

/// Index of a consumer in [`Consumers::list`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConsumerId(pub usize);

/// Every consumer of the configuration and the table of their API keys.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Consumers {
    list: Vec<Consumer>,
    by_key: HashMap<Digest, ConsumerId>,
    /// `jwt_subjects`: a verified token's `sub` → its consumer.
    by_subject: HashMap<String, ConsumerId>,
}

impl Consumers {
    /// Built by `validate()` (which refuses a key given to two consumers); also for tests.
    pub fn new(list: Vec<Consumer>, keys: impl IntoIterator<Item = (Digest, ConsumerId)>) -> Self {
        Consumers {
            list,
            by_key: keys.into_iter().collect(),
            by_subject: HashMap::new(),
        }
    }

    /// With the consumers' JWT subjects (`validate()` refuses a subject given twice).
    pub fn with_subjects(
        mut self,
        subjects: impl IntoIterator<Item = (String, ConsumerId)>,
    ) -> Self {
        self.by_subject = subjects.into_iter().collect();
        self
    }

    /// The consumer a verified JWT's `sub` names: one hash lookup.
    pub fn by_subject(&self, sub: &str) -> Option<ConsumerId> {
        self.by_subject.get(sub).copied()
    }

    pub fn list(&self) -> &[Consumer] {
        &self.list
    }

    pub fn get(&self, id: ConsumerId) -> Option<&Consumer> {
        self.list.get(id.0)
    }

    /// The consumer whose API key is `presented`: one SHA-256 and one hash lookup.
    pub fn by_api_key(&self, presented: &[u8]) -> Option<ConsumerId> {
        if self.by_key.is_empty() {
            return None;
        }
        self.by_key.get(&sha256(presented)).copied()
    }
}

/// A route's `authn` (gateway role): an API key, JWT providers, or both (either admits).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Authn {
    /// `api_key`: where the request carries its key.
    pub api_key: Option<ApiKeyAuthn>,
    /// `jwt`: the providers whose tokens the route accepts, in the order written.
    pub jwt: Vec<Arc<JwtProvider>>,
    /// The realm of `WWW-Authenticate` on a 401: the route's name.
    pub realm: String,
    /// The configuration's consumers (shared by every route).
    pub consumers: Arc<Consumers>,
}

/// Where a request carries its API key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiKeyAuthn {
    /// A header name, lower case.
    pub header: String,
    /// A query parameter name, if keys may come in the query string.
    pub query: Option<String>,
    /// Remove the credential before the upstream.
    pub hide_credentials: bool,
}

impl ApiKeyAuthn {
    pub fn new(header: String, query: Option<String>, hide_credentials: bool) -> Self {
        ApiKeyAuthn {
            header,
            query,
            hide_credentials,
        }
    }
}

impl Authn {
    pub fn new(
        api_key: Option<ApiKeyAuthn>,
        jwt: Vec<Arc<JwtProvider>>,
        realm: String,
        consumers: Arc<Consumers>,
    ) -> Self {
        Authn {
            api_key,
            jwt,
            realm,
            consumers,
        }
    }
}

/// What a route's `rate_limit` keeps one bucket for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RateLimitKey {
    /// One bucket for the whole route.
    #[default]
    Route,
    /// One per consumer (the route has `authn`).
    Consumer,
    /// One per client IP address.
    Ip,
    /// One per value of this request header (lower case); without it, by client address.
    Header(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_found_by_its_digest() {
        let consumers = Consumers::new(
            vec![Consumer {
                name: "app".into(),
                rate_limit: None,
            }],
            [(sha256(b"test"), ConsumerId(0))],
        );
        // printf %s test | sha256sum
        assert_eq!(
            sha256(b"test")
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
        assert_eq!(consumers.by_api_key(b"test"), Some(ConsumerId(0)));
        assert_eq!(consumers.by_api_key(b"test "), None);
        assert_eq!(consumers.by_api_key(b""), None);
        assert_eq!(Consumers::default().by_api_key(b"test"), None);
    }
}
