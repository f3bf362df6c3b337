//! Every worker's counters summed into one view, keyed and sorted by name, for `/metrics`,
//! `/clusters` and `/stats`. Sums of exact per-worker counts are exact.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use ringside_engine::metrics::{code_class, ConsumerCounts, Histogram, WorkerReport};

/// The `code_class` of an upstream exchange that ended without a response.
pub const ERROR_CLASS: &str = "error";

#[derive(Debug, Default)]
pub struct Totals {
    /// Workers that answered the scrape.
    pub workers: usize,
    /// Connections accepted, by worker id.
    pub accepted: BTreeMap<usize, u64>,
    /// Idle connections closed because memory was short (`[proxy] memory_limit_mib`).
    pub memory_shed: u64,
    /// Connections closed as soon as accepted because memory was at its ceiling.
    pub memory_refused: u64,
    /// Requests by (listener, route, code class); route "" when no route matched.
    pub requests: BTreeMap<(String, String, &'static str), u64>,
    pub listeners: BTreeMap<String, ListenerTotals>,
    pub clusters: BTreeMap<String, ClusterTotals>,
}

#[derive(Debug, Default)]
pub struct ListenerTotals {
    pub duration: Histogram,
    pub open: u64,
    pub in_flight: u64,
    pub tls_failures: u64,
    pub authz_denied: u64,
    /// Connections closed at accept past `max_connections`.
    pub overflow: u64,
    pub unmatched: u64,
    /// Requests refused by a token bucket, by route ("" for the listener's own).
    pub rate_limited: BTreeMap<String, u64>,
    /// Faults injected, by (route, kind).
    pub faults: BTreeMap<(String, &'static str), u64>,
    /// Requests refused by a route's `authn`, by (route, reason).
    pub authn_failures: BTreeMap<(String, &'static str), u64>,
    /// By consumer: authenticated requests, and those its own bucket refused.
    pub consumers: BTreeMap<String, ConsumerCounts>,
    /// Gateway stage events, by (route, event).
    pub gateway: BTreeMap<(String, &'static str), u64>,
}

impl ListenerTotals {
    /// Open connections with no request in flight.
    pub fn idle(&self) -> u64 {
        self.open.saturating_sub(self.in_flight)
    }
}

#[derive(Debug, Default)]
pub struct ClusterTotals {
    pub duration: Histogram,
    pub endpoints: BTreeMap<SocketAddr, EndpointTotals>,
    /// Retries made, by reason.
    pub retries: BTreeMap<&'static str, u64>,
    /// Requests under a retry policy, by how their retrying ended.
    pub retry_outcomes: BTreeMap<&'static str, u64>,
    /// Copies mirrored to this cluster, by result.
    pub mirrors: BTreeMap<&'static str, u64>,
    /// Requests refused by the circuit breaker, by limit (`"max_requests"`...).
    pub overflows: BTreeMap<&'static str, u64>,
    /// Requests answered 503 because the cluster's host names had not resolved.
    pub unresolved: u64,
    /// Exchanges with endpoints that have a zone, by zone.
    pub zones: BTreeMap<String, u64>,
    /// Requests or connections an `original_dst` cluster refused as loops.
    pub original_dst_loops: u64,
}

impl ClusterTotals {
    pub fn sum(&self, f: impl Fn(&EndpointTotals) -> u64) -> u64 {
        self.endpoints.values().map(f).sum()
    }
}

#[derive(Debug, Default, Clone)]
pub struct EndpointTotals {
    /// Responses by code class.
    pub responses: BTreeMap<&'static str, u64>,
    /// Exchanges that ended without a response.
    pub errors: u64,
    pub connect_failures: u64,
    /// Requests in flight.
    pub active: u64,
    /// Pooled idle connections.
    pub idle: u64,
}

impl EndpointTotals {
    /// Exchanges that reached a connection: responses plus errors.
    pub fn requests(&self) -> u64 {
        self.responses.values().sum::<u64>() + self.errors
    }

    /// Responses with this class (`"5xx"`).
    pub fn class(&self, class: &str) -> u64 {
        self.responses.get(class).copied().unwrap_or(0)
    }
}

impl Totals {
    pub fn merge(reports: &[WorkerReport]) -> Totals {
        let mut t = Totals {
            workers: reports.len(),
            ..Totals::default()
        };
        for r in reports {
            *t.accepted.entry(r.worker).or_insert(0) += r.accepted;
            t.memory_shed += r.memory_shed;
            t.memory_refused += r.memory_refused;
            for c in &r.requests {
                let key = (c.listener.clone(), c.route.clone(), code_class(c.status));
                *t.requests.entry(key).or_insert(0) += c.count;
            }
            for l in &r.listeners {
                let lt = t.listeners.entry(l.listener.clone()).or_default();
                lt.duration.merge(&l.duration);
                lt.open += l.open;
                lt.in_flight += l.in_flight;
                lt.tls_failures += l.tls_failures;
                lt.authz_denied += l.authz_denied;
                lt.overflow += l.overflow;
                lt.unmatched += l.unmatched;
                for (route, n) in &l.rate_limited {
                    *lt.rate_limited.entry(route.clone()).or_insert(0) += n;
                }
                for (route, kind, n) in &l.faults {
                    *lt.faults.entry((route.clone(), *kind)).or_insert(0) += n;
                }
                for (route, reason, n) in &l.authn_failures {
                    *lt.authn_failures
                        .entry((route.clone(), *reason))
                        .or_insert(0) += n;
                }
                for (name, c) in &l.consumers {
                    let sum = lt.consumers.entry(name.clone()).or_default();
                    sum.requests += c.requests;
                    sum.rate_limited += c.rate_limited;
                }
                for (route, event, n) in &l.gateway {
                    *lt.gateway.entry((route.clone(), *event)).or_insert(0) += n;
                }
            }
            for c in &r.clusters {
                let ct = t.clusters.entry(c.cluster.clone()).or_default();
                ct.duration.merge(&c.duration);
                for (reason, n) in &c.retries {
                    *ct.retries.entry(reason).or_insert(0) += n;
                }
                for (outcome, n) in &c.retry_outcomes {
                    *ct.retry_outcomes.entry(outcome).or_insert(0) += n;
                }
                for (result, n) in &c.mirrors {
                    *ct.mirrors.entry(result).or_insert(0) += n;
                }
                for (limit, n) in &c.overflows {
                    *ct.overflows.entry(*limit).or_insert(0) += n;
                }
                ct.unresolved += c.unresolved;
                for (zone, n) in &c.zones {
                    *ct.zones.entry(zone.clone()).or_insert(0) += n;
                }
                ct.original_dst_loops += c.original_dst_loops;
                for e in &c.endpoints {
                    let et = ct.endpoints.entry(e.address).or_default();
                    for (status, n) in &e.responses {
                        *et.responses.entry(code_class(*status)).or_insert(0) += n;
                    }
                    et.errors += e.errors;
                    et.connect_failures += e.connect_failures;
                    et.active += e.active;
                    et.idle += e.idle;
                }
            }
        }
        t
    }

    /// Requests on `listener` (all routes), or on one route of it, by code class.
    pub fn requests_by_class(
        &self,
        listener: &str,
        route: Option<&str>,
    ) -> BTreeMap<&'static str, u64> {
        let mut out = BTreeMap::new();
        for ((l, r, class), n) in &self.requests {
            if l == listener && route.is_none_or(|want| want == r) {
                *out.entry(*class).or_insert(0) += n;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringside_engine::metrics::{ClusterReport, EndpointReport, RequestCount};

    fn worker(id: usize, ok: u64) -> WorkerReport {
        let a: SocketAddr = "127.0.0.1:9".parse().unwrap();
        WorkerReport {
            worker: id,
            accepted: ok,
            memory_shed: 0,
            memory_refused: 0,
            requests: vec![
                RequestCount {
                    listener: "in".into(),
                    route: "api".into(),
                    status: 200,
                    count: ok,
                },
                RequestCount {
                    listener: "in".into(),
                    route: "api".into(),
                    status: 204,
                    count: 1,
                },
            ],
            listeners: Vec::new(),
            clusters: vec![ClusterReport {
                cluster: "app".into(),
                duration: Histogram::default(),
                endpoints: vec![EndpointReport {
                    address: a,
                    responses: vec![(200, ok), (503, 1)],
                    errors: 1,
                    ..EndpointReport::default()
                }],
                overflows: vec![("max_requests", ok)],
                ..ClusterReport::default()
            }],
        }
    }

    #[test]
    fn sums_over_workers_by_class() {
        let t = Totals::merge(&[worker(0, 3), worker(1, 4)]);
        assert_eq!(t.workers, 2);
        assert_eq!(
            t.requests.get(&("in".into(), "api".into(), "2xx")),
            Some(&9)
        );
        let ep = t.clusters["app"].endpoints.values().next().unwrap();
        assert_eq!((ep.class("2xx"), ep.class("5xx"), ep.errors), (7, 2, 2));
        assert_eq!(ep.requests(), 11);
        assert_eq!(t.clusters["app"].overflows.get("max_requests"), Some(&7));
        assert_eq!(t.accepted.values().sum::<u64>(), 7);
        assert_eq!(t.requests_by_class("in", Some("api")).get("2xx"), Some(&9));
        assert_eq!(t.requests_by_class("in", Some("other")).len(), 0);
    }
}
