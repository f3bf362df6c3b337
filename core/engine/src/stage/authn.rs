//! `AuthN`: a route's `authn` — the request proves who it is with a JWT (`stage/jwt.rs`)
//! and/or an API key, and the upstream learns the consumer's name (gateway role).
//!
//! Sits first among a gateway route's stages (after a CORS preflight, which carries no
//! credential), before the consumer's and the route's rate limits: an unauthenticated
//! request takes no token. Reads the route's `authn.api_key` (`header`, `query`,
//! `hide_credentials`) and the configuration's consumers (`ringside_config::Consumers`:
//! the key is hashed once and looked up in one map, whatever the number of consumers; a key
//! that admitted is kept in the worker's table of the route's keys, `seen.rs`, so a repeat
//! costs one FxHash and one comparison instead of a SHA-256).
//!
//! - A route with `jwt` looks for a token first (`Jwt`); one that passes admits the request
//!   (its `sub` may name a consumer, else the request has none). Otherwise the API key, if
//!   the route takes one: either credential admits.
//! - No credential at all → 401 with `WWW-Authenticate` naming each way the route takes
//!   (`Bearer realm="<route>", ApiKey realm="<route>"`); a key no consumer has → 401
//!   (`ApiKey`); a bad token → 401 `Bearer realm="<route>", error="invalid_token"`, or 403
//!   for another audience's (gRPC: UNAUTHENTICATED, PERMISSION_DENIED). A bad token with a
//!   good key is admitted by the key. Counted in `ringside_authn_failures_total` by route
//!   and reason (`missing`, `unknown`, `jwt_*`).
//! - A known key: `Req::consumer` is set (for the rate limits and the metrics), the upstream
//!   gets `x-consumer-name`, and the credential is removed (the header, and the query
//!   parameter through the request edits' `target`) unless `hide_credentials = false`. The next stage,
//!   `ConsumerLimit`, counts it in `ringside_consumer_requests_total`.
//! - On every gateway route, with `authn` or not, an incoming `x-consumer-name` is removed:
//!   only the proxy says who the consumer is.

use std::borrow::Cow;
use std::rc::Rc;

use bytes::Bytes;

use ringside_codec::RequestHead;
use ringside_config::{ApiKeyAuthn, Authn, ConsumerId, Route};

use super::jwt::{Jwt, Passed};
use super::seen::Seen;
use super::{Flow, Identified, Local, Req};
use crate::cx::error::{AuthnFailure, ProxyError, Unauthenticated};
use crate::cx::shared::Registry;

/// The header that tells the upstream who the consumer is.
pub(crate) const CONSUMER_HEADER: &str = "x-consumer-name";

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AuthN {
    authn: Option<Authn>,
    /// The consumers' names by `ConsumerId`, made once per view (handed to each request),
    /// and as the value of `x-consumer-name`.
    names: Vec<(Rc<str>, Bytes)>,
    /// The API key's header name, as an edit removes it.
    key_header: Bytes,
    /// The route's JWT providers, with this worker's cache of verified tokens.
    jwt: Option<Jwt>,
    /// API keys this worker already found a consumer for (a repeat key is not hashed).
    keys: Seen<ConsumerId>,
}

/// What a request's credentials say to a route's `authn`, before anything in the request
/// is changed ([`AuthN::check`]). The pipeline checks a route with `match.consumers` this
/// way while it matches, and keeps the verdict of the route it chose for that route's
/// `AuthN` stage (`Req::checked`), so the credential is checked once.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// A token passed (it admits, with or without a consumer).
    Token(Passed),
    /// A consumer's API key, found in the query string or in the header.
    Key {
        id: ConsumerId,
        in_query: bool,
    },
    Refused(AuthnFailure),
}

impl Verdict {
    /// The consumer the request is, if it is admitted as one.
    pub(crate) fn consumer(&self) -> Option<ConsumerId> {
        match self {
            Verdict::Token(passed) => passed.consumer(),
            Verdict::Key { id, .. } => Some(*id),
            Verdict::Refused(_) => None,
        }
    }
}

impl AuthN {
    pub(crate) fn compile(route: &Route, registry: &Registry) -> AuthN {
        let names = route.authn.as_ref().map_or_else(Vec::new, |a| {
            a.consumers
                .list()
                .iter()
                .map(|c| {
                    let value = Bytes::copy_from_slice(c.name.as_bytes());
                    (Rc::from(c.name.as_str()), value)
                })
                .collect()
        });
        let key_header = route
            .authn
            .as_ref()
            .and_then(|a| a.api_key.as_ref())
            .map_or_else(Bytes::new, |k| Bytes::copy_from_slice(k.header.as_bytes()));
        let jwt = route
            .authn
            .as_ref()
            .filter(|a| !a.jwt.is_empty())
            .map(|a| Jwt::compile(&a.jwt, registry));
        AuthN {
            authn: route.authn.clone(),
            names,
            key_header,
            jwt,
            keys: Seen::default(),
        }
    }

    /// What the request's credentials say to this route (`None`: the route has no
    /// `authn`). A token first; when none passes, the API key: either admits.
    pub(crate) fn check(&self, head: &RequestHead) -> Option<Verdict> {
        let authn = self.authn.as_ref()?;
        let mut jwt_failure = None;
        if let Some(jwt) = &self.jwt {
            match jwt.check(head, &authn.consumers) {
                Some(Ok(passed)) => return Some(Verdict::Token(passed)),
                Some(Err(f)) => jwt_failure = Some(f),
                None => {}
            }
        }
        let key = authn.api_key.as_ref().and_then(|k| find_key(head, k));
        Some(match (jwt_failure, key) {
            (_, Some((key, in_query))) => match self.consumer_by_key(authn, &key) {
                Some(id) => Verdict::Key { id, in_query },
                None => {
                    Verdict::Refused(jwt_failure.map_or(AuthnFailure::Unknown, AuthnFailure::Jwt))
                }
            },
            (Some(f), None) => Verdict::Refused(AuthnFailure::Jwt(f)),
            (None, None) => Verdict::Refused(AuthnFailure::Missing),
        })
    }

    /// The consumer whose API key is `key`: from this worker's table of keys it admitted,
    /// else hashed and looked up (and kept when it admits).
    fn consumer_by_key(&self, authn: &Authn, key: &[u8]) -> Option<ConsumerId> {
        if let Some(id) = self.keys.get(key) {
            return Some(id);
        }
        let id = authn.consumers.by_api_key(key)?;
        self.keys.put(key, id, |_| true);
        Some(id)
    }

    pub(crate) fn request<'v>(&self, req: &mut Req<'_>) -> Flow<'v> {
        let head = req.head;
        if head.header(CONSUMER_HEADER).is_some() {
            remove(req, Bytes::from_static(CONSUMER_HEADER.as_bytes()));
        }
        let Some(authn) = &self.authn else {
            return Flow::Next;
        };
        if let Some(jwt) = &self.jwt {
            jwt.scrub(req);
        }
        // Checked while matching (`match.consumers`), or now.
        let verdict = match req.checked.take() {
            Some(v) => *v,
            None => match self.check(head) {
                Some(v) => v,
                None => return Flow::Next,
            },
        };
        let admitted = match verdict {
            Verdict::Token(passed) => match self.jwt.as_ref().map(|j| j.apply(req, &passed)) {
                Some(Ok(consumer)) => consumer,
                Some(Err(e)) => return Flow::Reply(Local::Error(e)),
                None => None,
            },
            Verdict::Key { id, in_query } => match authn.api_key.as_ref() {
                Some(k) => match hide_key(req, k, &self.key_header, in_query) {
                    Ok(()) => Some(id),
                    Err(e) => return Flow::Reply(Local::Error(e)),
                },
                None => Some(id),
            },
            Verdict::Refused(reason) => {
                req.stats.authn_failed(&authn.realm, reason.label());
                return Flow::Reply(Local::Error(ProxyError::Unauthenticated(Unauthenticated {
                    reason,
                    realm: authn.realm.as_str().into(),
                    bearer: self.jwt.is_some(),
                    api_key: authn.api_key.is_some(),
                })));
            }
        };
        self.admit(req, admitted)
    }

    /// The request is `consumer`'s (or nobody's: a token whose `sub` no consumer has).
    fn admit<'v>(&self, req: &mut Req<'_>, consumer: Option<ConsumerId>) -> Flow<'v> {
        let Some(name) = consumer.and_then(|id| Some((id, self.names.get(id.0)?))) else {
            return Flow::Next;
        };
        let (id, (name, value)) = name;
        req.edits.add.push((
            Bytes::from_static(CONSUMER_HEADER.as_bytes()),
            Bytes::clone(value),
        ));
        req.consumer = Some(Identified {
            id,
            name: Rc::clone(name),
        });
        Flow::Next
    }
}

/// The API key where `k` says (the header first), and whether it came from the query.
fn find_key<'h>(head: &'h RequestHead, k: &ApiKeyAuthn) -> Option<(Cow<'h, [u8]>, bool)> {
    match head.header(&k.header) {
        Some(v) => Some((Cow::Borrowed(v), false)),
        None => k
            .query
            .as_deref()
            .and_then(|q| query_value(head.path_and_query(), q))
            .map(|v| (v, true)),
    }
}

/// An admitting key removed from the upstream request, unless `hide_credentials = false`
/// (`header`: `k.header` as an edit names it).
fn hide_key(
    req: &mut Req<'_>,
    k: &ApiKeyAuthn,
    header: &Bytes,
    in_query: bool,
) -> Result<(), ProxyError> {
    if !k.hide_credentials {
        return Ok(());
    }
    if !in_query {
        remove(req, Bytes::clone(header));
    }
    // The query parameter goes too, even when the header was the one used.
    // The upstream head then has the target without it (`Req::rewritten`, which a
    // later `Rewrite` starts from).
    if let Some(q) = &k.query {
        let base = req.upstream_head();
        let target = base.path_and_query();
        if in_query || query_value(target, q).is_some() {
            let h = base.retarget(Some(&without_param(target, q)), None)?;
            req.rewritten = Some(Box::new(h));
        }
    }
    Ok(())
}

/// Removes a request header (once in the list).
pub(super) fn remove(req: &mut Req<'_>, name: Bytes) {
    req.edits.remove_field(name);
}

/// The percent-decoded value of the first query parameter `name` in `target`.
pub(super) fn query_value<'t>(target: &'t str, name: &str) -> Option<Cow<'t, [u8]>> {
    let (_, query) = target.split_once('?')?;
    query
        .split('&')
        .find_map(|pair| match pair.split_once('=') {
            Some((n, v)) if n == name => Some(v),
            _ => None,
        })
        .filter(|v| !v.is_empty())
        .map(percent_decode)
}

/// `%XX` decoded (a `%` not followed by two hex digits is kept as it is).
fn percent_decode(v: &str) -> Cow<'_, [u8]> {
    if !v.contains('%') {
        return Cow::Borrowed(v.as_bytes());
    }
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let hex = |j: usize| b.get(j).and_then(|d| char::from(*d).to_digit(16));
        match (c, hex(i + 1), hex(i + 2)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
                i += 3;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}

/// `target` without any query parameter `name` (and without `?` when none is left).
pub(super) fn without_param(target: &str, name: &str) -> String {
    let Some((path, query)) = target.split_once('?') else {
        return target.to_owned();
    };
    let mut out = String::with_capacity(target.len());
    out.push_str(path);
    let mut sep = '?';
    for pair in query.split('&') {
        if pair.split_once('=').map_or(pair, |(n, _)| n) == name {
            continue;
        }
        out.push(sep);
        out.push_str(pair);
        sep = '&';
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cx::metrics::ListenerStats;
    use crate::cx::ClientConn;
    use ringside_config::ListenerKind;

    #[test]
    fn query_parameters() {
        assert_eq!(
            query_value("/a?x=1&apikey=k%2Fy&z", "apikey").as_deref(),
            Some(&b"k/y"[..])
        );
        assert_eq!(query_value("/a?apikeys=1", "apikey"), None);
        assert_eq!(query_value("/a?apikey=", "apikey"), None);
        assert_eq!(query_value("/a", "apikey"), None);
        assert_eq!(percent_decode("a%zz%4").as_ref(), b"a%zz%4");
        assert_eq!(without_param("/a?x=1&apikey=k&z", "apikey"), "/a?x=1&z");
        assert_eq!(without_param("/a?apikey=k", "apikey"), "/a");
        assert_eq!(without_param("/a?apikey=k&apikey=j&b", "apikey"), "/a?b");
        assert_eq!(without_param("/a", "apikey"), "/a");
    }

    const CONFIG: &str = r#"
        [proxy]
        role = "gateway"

        [[listeners]]
        name = "public"
        bind = "127.0.0.1:1"

        [[consumers]]
        name = "mobile"
        api_keys = [ { sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" } ]

        [[consumers]]
        name = "web"
        api_keys = [ { key = "web-key" } ]

        [[routes]]
        listener = "public"
        name = "both"
        match = { path_prefix = "/both" }
        authn = { api_key = { query = "apikey" } }
        cluster = "app"

        [[routes]]
        listener = "public"
        name = "shown"
        match = { path_prefix = "/shown" }
        authn = { api_key = { header = "X-Key", query = "k", hide_credentials = false } }
        cluster = "app"

        [[routes]]
        listener = "public"
        name = "open"
        cluster = "app"

        [[clusters]]
        name = "app"
        endpoints = [ "127.0.0.1:2" ]
    "#;

    /// What `AuthN` of the route matching `text` does: the status it answers (0: it
    /// passes), the consumer, the header edits and the target it sets.
    fn run(text: &str) -> (u16, Option<String>, Vec<String>, Option<String>) {
        let config = ringside_config::parse(CONFIG).unwrap();
        let ListenerKind::Http(http) = &config.listeners[0].kind else {
            panic!("http listener")
        };
        let head = crate::stage::test_head(text);
        let route = http
            .routes
            .iter()
            .find(|r| head.path().starts_with(&format!("/{}", r.name)) || r.name == "open")
            .unwrap();
        let stage = AuthN::compile(route, &crate::cx::shared::Registry::default());
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
        let status = match stage.request(&mut req) {
            Flow::Next => 0,
            Flow::Reply(Local::Error(e)) => e.status(),
            Flow::Reply(Local::Direct(_) | Local::Redirect { .. }) => 1,
        };
        let edits = crate::stage::test_edits(&req.edits);
        let consumer = req.consumer.map(|c| c.name.to_string());
        (
            status,
            consumer,
            edits,
            req.rewritten.map(|h| h.path_and_query().to_string()),
        )
    }

    #[test]
    fn keys_from_the_header_and_the_query() {
        // sha256("test") is mobile's; a plain key is web's.
        let (status, consumer, edits, target) =
            run("GET /both?a=1 HTTP/1.1\r\nHost: h\r\nX-Api-Key: test\r\n\r\n");
        assert_eq!(
            (status, consumer.as_deref(), target),
            (0, Some("mobile"), None)
        );
        assert_eq!(edits, ["-x-api-key", "+x-consumer-name=mobile"]);
        let (status, consumer, edits, target) =
            run("GET /both?a=1&apikey=web-key HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!((status, consumer.as_deref()), (0, Some("web")));
        assert_eq!(edits, ["+x-consumer-name=web"]);
        assert_eq!(target.as_deref(), Some("/both?a=1"));
        // Both given: the header is used, and neither goes upstream.
        let (status, consumer, edits, target) =
            run("GET /both?apikey=web-key HTTP/1.1\r\nHost: h\r\nX-Api-Key: test\r\n\r\n");
        assert_eq!((status, consumer.as_deref()), (0, Some("mobile")));
        assert_eq!(edits, ["-x-api-key", "+x-consumer-name=mobile"]);
        assert_eq!(target.as_deref(), Some("/both"));
    }

    #[test]
    fn missing_and_unknown_keys_are_refused() {
        assert_eq!(run("GET /both HTTP/1.1\r\nHost: h\r\n\r\n").0, 401);
        assert_eq!(
            run("GET /both HTTP/1.1\r\nHost: h\r\nX-Api-Key: nope\r\n\r\n").0,
            401
        );
        assert_eq!(
            run("GET /both?apikey=nope HTTP/1.1\r\nHost: h\r\n\r\n").0,
            401
        );
        // The header is looked at first: a wrong header key is not saved by the query.
        assert_eq!(
            run("GET /both?apikey=test HTTP/1.1\r\nHost: h\r\nX-Api-Key: nope\r\n\r\n").0,
            401
        );
    }

    #[test]
    fn credentials_stay_with_hide_credentials_false() {
        let (status, consumer, edits, target) =
            run("GET /shown?k=test HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(
            (status, consumer.as_deref(), target),
            (0, Some("mobile"), None)
        );
        assert_eq!(edits, ["+x-consumer-name=mobile"]);
        let (_, _, edits, _) = run("GET /shown HTTP/1.1\r\nHost: h\r\nx-key: web-key\r\n\r\n");
        assert_eq!(edits, ["+x-consumer-name=web"]);
    }

    #[test]
    fn a_forged_consumer_name_is_removed_on_every_route() {
        let (status, consumer, edits, _) =
            run("GET /open HTTP/1.1\r\nHost: h\r\nX-Consumer-Name: admin\r\n\r\n");
        assert_eq!((status, consumer), (0, None));
        assert_eq!(edits, ["-x-consumer-name"]);
        let (status, consumer, edits, _) = run(
            "GET /both HTTP/1.1\r\nHost: h\r\nX-Consumer-Name: admin\r\nX-Api-Key: web-key\r\n\r\n",
        );
        assert_eq!((status, consumer.as_deref()), (0, Some("web")));
        assert_eq!(
            edits,
            ["-x-consumer-name", "-x-api-key", "+x-consumer-name=web"]
        );
        // Nothing to do on a clean request of an open route.
        assert_eq!(
            run("GET /open HTTP/1.1\r\nHost: h\r\n\r\n").2,
            Vec::<String>::new()
        );
    }
}
