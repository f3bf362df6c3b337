//! `GlobalLimit`: a route's rate limit shared by every ringside that names the same
//! `[[redis]]` (gateway role): fixed windows of one second or one minute, counted in Redis.
//!
//! Sits where the route's local `RateLimit` would (a route has one or the other): after
//! `AuthN` and the consumer's own bucket, so that a request nobody may make takes no share
//! of the window. Reads `rate_limit = { key, requests_per_second | requests_per_minute,
//! redis, fail_closed }`; requests are keyed as the local keyed buckets key them
//! (`ratelimit::key_of`). Each window is the Redis key
//! `ringside:rl:<route>:<key>:<window seconds>:<window start, unix seconds>`, e.g.
//! `ringside:rl:orders-api:consumer=mobile-app:60:1733450400`.
//!
//! A request costs no I/O: this worker's client of the server decides from its own counts
//! and its sync task talks to Redis every few milliseconds (`upstream/redis/`). Over the
//! limit: 429 with `retry-after`, `ratelimit-limit`, `ratelimit-remaining: 0` and
//! `ratelimit-reset` (the seconds left in the window; gRPC RESOURCE_EXHAUSTED), counted in
//! `ringside_rate_limited_total`. Redis unreachable: the request passes, counted as the
//! gateway event `ratelimit_fail_open` — or, with `fail_closed`, it is refused with 503 and
//! `x-ringside-overloaded: true` (gRPC UNAVAILABLE), counted as `ratelimit_fail_closed`.

use std::io::Write as _;
use std::rc::Rc;

use ringside_config::{GlobalRateLimit, RateLimitKey};

use super::ratelimit::{key_of, KeyOf};
use super::{Flow, Local, Req};
use crate::cx::error::{ProxyError, RateLimited};
use crate::cx::shared::Registry;
use crate::upstream::redis::{client, Admit, Client, Decision};

/// Header values longer than this are keyed by a hash of the value, so that a window key
/// stays short.
const MAX_VALUE_IN_KEY: usize = 128;

#[derive(Debug, Clone)]
pub(crate) struct GlobalLimit {
    settings: GlobalRateLimit,
    key: RateLimitKey,
    route: Box<str>,
    /// `ringside:rl:<route>:`.
    prefix: Box<[u8]>,
    client: Rc<Client>,
}

impl PartialEq for GlobalLimit {
    fn eq(&self, other: &Self) -> bool {
        self.route == other.route && self.settings == other.settings && self.key == other.key
    }
}

impl GlobalLimit {
    pub(crate) fn compile(
        settings: &GlobalRateLimit,
        key: &RateLimitKey,
        route: &str,
        registry: &Registry,
    ) -> GlobalLimit {
        GlobalLimit {
            settings: settings.clone(),
            key: key.clone(),
            route: route.into(),
            prefix: format!("ringside:rl:{route}:").into_bytes().into(),
            client: client(&settings.redis, registry),
        }
    }

    pub(crate) fn request<'v>(&self, req: &mut Req<'_>) -> Flow<'v> {
        let now = self.client.unix_secs(req.now());
        let window = self.settings.window_secs.max(1);
        let start = now - now % u64::from(window);
        let decision = {
            let mut key = self.client.key.borrow_mut();
            key.clear();
            key.extend_from_slice(&self.prefix);
            write_key(&mut key, &self.key, key_of(&self.key, req));
            let _ = write!(key, ":{window}:{start}");
            self.client.admit(
                &key,
                self.settings.limit,
                window,
                start + u64::from(window),
                now,
            )
        };
        match decision {
            Decision::Admit(Admit::Yes { .. }) => Flow::Next,
            Decision::Admit(Admit::Over { reset_secs }) => {
                req.stats.rate_limited(&self.route);
                Flow::Reply(Local::Error(ProxyError::RateLimited(RateLimited {
                    limit: self.settings.limit,
                    reset_secs,
                })))
            }
            Decision::Down if self.settings.fail_closed => {
                req.stats.gateway(&self.route, "ratelimit_fail_closed");
                Flow::Reply(Local::Error(ProxyError::LimitUnavailable))
            }
            // Redis unreachable, or this worker's table of windows full: let it through.
            Decision::Down | Decision::Admit(Admit::Full) => {
                req.stats.gateway(&self.route, "ratelimit_fail_open");
                Flow::Next
            }
        }
    }
}

/// The key part of a window key: `route`, `consumer=<name>`, `<header>=<value>`,
/// `ip=<address>`.
fn write_key(out: &mut Vec<u8>, key: &RateLimitKey, of: KeyOf<'_>) {
    match of {
        KeyOf::Route => out.extend_from_slice(b"route"),
        KeyOf::Consumer(name) => {
            out.extend_from_slice(b"consumer=");
            out.extend_from_slice(name.as_bytes());
        }
        KeyOf::Header(value) => {
            if let RateLimitKey::Header(name) = key {
                out.extend_from_slice(name.as_bytes());
            }
            out.push(b'=');
            if value.len() <= MAX_VALUE_IN_KEY {
                out.extend_from_slice(value);
            } else {
                let _ = write!(out, "#{:016x}", fnv1a(value));
            }
        }
        KeyOf::Ip(addr) => {
            let _ = write!(out, "ip={addr}");
        }
    }
}

/// FNV-1a, 64 bits: the same in every process (a window key must be).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_keys_name_the_key_kind_and_value() {
        let key = |k: &RateLimitKey, of| {
            let mut out = Vec::new();
            write_key(&mut out, k, of);
            String::from_utf8(out).unwrap()
        };
        let tenant = RateLimitKey::Header("x-tenant".into());
        assert_eq!(key(&RateLimitKey::Route, KeyOf::Route), "route");
        assert_eq!(
            key(&RateLimitKey::Consumer, KeyOf::Consumer("mobile-app")),
            "consumer=mobile-app"
        );
        assert_eq!(key(&tenant, KeyOf::Header(b"acme")), "x-tenant=acme");
        assert_eq!(
            key(&tenant, KeyOf::Ip("::1".parse().unwrap())),
            "ip=::1",
            "a request without the header is keyed by its address"
        );
        let long = vec![b'a'; 200];
        let hashed = key(&tenant, KeyOf::Header(&long));
        assert_eq!(hashed, format!("x-tenant=#{:016x}", fnv1a(&long)));
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    }
}
