//! `ConsumerLimit`: a consumer's own `rate_limit` — one token bucket per consumer for the
//! whole process, taken by every authenticated request of that consumer on any route
//! (gateway role).
//!
//! Sits right after `AuthN` (which names the consumer) and before the route's own
//! `rate_limit`: a request its consumer may not make takes no token of the route. Reads
//! `consumers[].rate_limit`; compiled on routes with `authn` when a consumer has one. The
//! bucket is `ratelimit.rs`'s [`Bucket`] in the process's `Registry`, keyed by the
//! consumer's name and settings, so every worker, route and listener takes from the same
//! one. Over the limit: 429 with `retry-after` and the `ratelimit-*` fields (gRPC:
//! RESOURCE_EXHAUSTED), counted in `ringside_consumer_rate_limited_total`; every
//! authenticated request is counted in `ringside_consumer_requests_total`.

use std::sync::Arc;

use ringside_config::Route;

use super::ratelimit::Bucket;
use super::{Flow, Req};
use crate::cx::shared::Registry;

#[derive(Debug, Clone)]
pub(crate) struct ConsumerLimit {
    /// By `ConsumerId`: the consumer's bucket, if it has a limit.
    buckets: Vec<Option<Arc<Bucket>>>,
    /// The settings the buckets were made from (for `PartialEq`).
    settings: Vec<Option<ringside_config::RateLimit>>,
}

impl PartialEq for ConsumerLimit {
    fn eq(&self, other: &Self) -> bool {
        self.settings == other.settings
    }
}

impl ConsumerLimit {
    /// The stage of `route`; counting the consumer's requests needs it on every route with
    /// `authn`, limited consumers or not.
    pub(crate) fn compile(route: &Route, registry: &Registry) -> Option<ConsumerLimit> {
        let consumers = &route.authn.as_ref()?.consumers;
        let settings: Vec<_> = consumers.list().iter().map(|c| c.rate_limit).collect();
        let buckets = consumers
            .list()
            .iter()
            .map(|c| {
                let limit = c.rate_limit?;
                let key = format!(
                    "ratelimit/consumer/{:?}/{}/{}",
                    c.name, limit.requests_per_second, limit.burst
                );
                Some(registry.get(&key, || Bucket::new(limit.requests_per_second, limit.burst)))
            })
            .collect();
        Some(ConsumerLimit { buckets, settings })
    }

    pub(crate) fn request<'v>(&self, req: &mut Req<'_>) -> Flow<'v> {
        let Some(consumer) = &req.consumer else {
            return Flow::Next;
        };
        let bucket = self.buckets.get(consumer.id.0).and_then(Option::as_ref);
        match bucket.map(|b| (b, b.take_at(b.since(req.now())))) {
            Some((b, Err(wait))) => {
                req.stats.consumer(&consumer.name, true);
                Flow::Reply(b.refusal(wait))
            }
            _ => {
                req.stats.consumer(&consumer.name, false);
                Flow::Next
            }
        }
    }
}
