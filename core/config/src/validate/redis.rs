//! Global rate limits: `[[redis]]` servers, and a route's `rate_limit` that names one
//! (`redis = "<name>"`: fixed windows of one second or one minute, counted in Redis by every
//! proxy that shares it). Both need `[proxy] role = "gateway"`.

use std::collections::HashMap;

use super::Validator;
use crate::model::{GlobalRateLimit, RedisServer, Role};
use crate::raw::{FileRateLimit, FileRedis};
use crate::read::Slot;

/// `timeout_ms` when not given: a Redis on the same host or in the same zone answers a
/// batch in well under a millisecond.
const DEFAULT_TIMEOUT_MS: u64 = 20;
const MAX_TIMEOUT_MS: u64 = 10_000;

/// The `[[redis]]` servers by name; `broken` holds names of elements that did not validate
/// (a route naming one is not reported a second time).
pub(super) struct RedisServers {
    by_name: HashMap<String, RedisServer>,
    broken: Vec<String>,
}

impl RedisServers {
    /// Every valid server, in file order.
    pub(super) fn list(&self, slots: &[Slot<FileRedis>]) -> Vec<RedisServer> {
        slots
            .iter()
            .filter_map(|s| match s {
                Slot::Ok(r) => self.by_name.get(&r.name).cloned(),
                Slot::Broken { .. } => None,
            })
            .collect()
    }
}

impl Validator {
    /// `[[redis]]`: names, addresses, timeouts.
    pub(super) fn redis_servers(&mut self, role: Role, slots: &[Slot<FileRedis>]) -> RedisServers {
        let ids = self.names("redis", "redis", slots, |r: &FileRedis| &r.name);
        let mut out = RedisServers {
            by_name: HashMap::new(),
            broken: Vec::new(),
        };
        for (i, slot) in slots.iter().enumerate() {
            let r = match slot {
                Slot::Ok(r) => r,
                Slot::Broken { name } => {
                    out.broken.extend(name.clone());
                    continue;
                }
            };
            let p = format!("redis[{i}]");
            let server = self.clean(|v| {
                if role != Role::Gateway {
                    v.err(
                        &*p,
                        "needs [proxy] role = \"gateway\": the sidecar's pipeline has no stage that reads it",
                    );
                }
                let address = match r.address.parse::<std::net::SocketAddr>() {
                    Ok(a) => a,
                    Err(_) => {
                        v.err(
                            format!("{p}.address"),
                            format!("invalid socket address {:?}: write IP:port", r.address),
                        );
                        std::net::SocketAddr::from(([127, 0, 0, 1], 6379))
                    }
                };
                let ms = r.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
                if !(1..=MAX_TIMEOUT_MS).contains(&ms) {
                    v.err(
                        format!("{p}.timeout_ms"),
                        format!("must be from 1 to {MAX_TIMEOUT_MS}, got {ms}"),
                    );
                }
                RedisServer::new(
                    r.name.clone(),
                    address,
                    std::time::Duration::from_millis(ms),
                )
            });
            match server {
                // A duplicate name keeps the first definition.
                Some(s) if ids.get(r.name.as_str()) == Some(&i) => {
                    out.by_name.insert(r.name.clone(), s);
                }
                Some(_) => {}
                None => out.broken.push(r.name.clone()),
            }
        }
        out
    }

    /// A route's `rate_limit` at `p` when it names a `redis`: the global limit.
    pub(super) fn global_rate_limit(
        &mut self,
        p: &str,
        r: &FileRateLimit,
        role: Role,
        servers: &RedisServers,
    ) -> Option<GlobalRateLimit> {
        let name = r.redis.as_deref()?;
        let limit = self.clean(|v| {
            if role != Role::Gateway {
                v.err(
                    format!("{p}.redis"),
                    "needs [proxy] role = \"gateway\": the sidecar's pipeline has no stage that reads it",
                );
            }
            if r.burst.is_some() {
                v.err(
                    format!("{p}.burst"),
                    "not with redis: a global limit counts fixed windows, which have no burst",
                );
            }
            let (n, window, key) = match (r.requests_per_second, r.requests_per_minute) {
                (Some(n), None) => (n, 1, "requests_per_second"),
                (None, Some(n)) => (n, 60, "requests_per_minute"),
                _ => {
                    v.err(
                        p,
                        "a global limit needs exactly one of requests_per_second and requests_per_minute",
                    );
                    (1, 1, "")
                }
            };
            let limit = match u32::try_from(n) {
                Ok(l) if l >= 1 => l,
                _ => {
                    v.err(
                        format!("{p}.{key}"),
                        format!("must be from 1 to {}, got {n}", u32::MAX),
                    );
                    1
                }
            };
            (limit, window)
        });
        let server = match servers.by_name.get(name) {
            Some(s) => Some(s.clone()),
            None if servers.broken.iter().any(|b| b == name) => None,
            None => self.fail(format!("{p}.redis"), format!("no [[redis]] named {name:?}")),
        };
        let (limit, window) = limit?;
        Some(GlobalRateLimit::new(
            server?,
            limit,
            window,
            r.fail_closed.unwrap_or(false),
        ))
    }
}
