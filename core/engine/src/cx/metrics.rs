//! Request counters and latency histograms, counted per worker without locks or atomics.
//!
//! On the request path a worker only touches its own `Cell`s and `RefCell`s. A scrape
//! (`ServerHandle::metrics`) sends every worker a command; each answers with an owned copy
//! of its counters, and the copies are summed — so a scrape is exact (after N requests the
//! counters say N) and costs the data path nothing between scrapes. Counters live as long as
//! the worker, across reloads: they are keyed by names, not by configuration indices.

use std::cell::{Cell, RefCell};
// Fx, not SipHash: these maps are touched several times per request, and their keys come from
// the configuration (route names, endpoints) and from status codes.
use rustc_hash::FxHashMap as HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use crate::cx::error::BreakerLimit;
use ringside_config::RetryReason;

/// Upper bounds of the latency histogram buckets, in seconds (Prometheus `le`).
pub const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A latency histogram: per-bucket counts (not cumulative; the last slot is `+Inf`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    pub counts: [u64; BUCKETS.len() + 1],
    pub sum_seconds: f64,
    pub count: u64,
}

impl Histogram {
    pub fn observe(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(BUCKETS.len());
        if let Some(c) = self.counts.get_mut(i) {
            *c += 1;
        }
        self.sum_seconds += s;
        self.count += 1;
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += *b;
        }
        self.sum_seconds += other.sum_seconds;
        self.count += other.count;
    }

    /// Cumulative counts, one per bucket plus `+Inf`, as the exposition format wants.
    pub fn cumulative(&self) -> Vec<u64> {
        let mut total = 0;
        self.counts
            .iter()
            .map(|c| {
                total += c;
                total
            })
            .collect()
    }
}

/// "2xx", "4xx"... from a status code.
pub fn code_class(status: u16) -> &'static str {
    match status / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

/// One listener's counters in one worker.
#[derive(Default)]
pub(crate) struct ListenerStats {
    /// Requests by route name (empty when none matched) and status.
    requests: RefCell<HashMap<Box<str>, HashMap<u16, u64>>>,
    duration: RefCell<Histogram>,
    /// Open connections and requests in flight (the rest of the open ones are idle).
    pub(crate) open: Cell<u64>,
    pub(crate) in_flight: Cell<u64>,
    /// TLS handshakes that failed or timed out (a plaintext client on a TLS port, an
    /// untrusted or expired client certificate...).
    pub(crate) tls_failures: Cell<u64>,
    /// Requests denied by the listener's authorization policy.
    pub(crate) authz_denied: Cell<u64>,
    /// Connections closed at accept because the worker had `max_connections` open.
    pub(crate) overflow: Cell<u64>,
    /// A parent's connections no child listener took, closed (`unmatched = "close"`).
    pub(crate) unmatched: Cell<u64>,
    /// Requests refused by a token bucket, by route (empty: the listener's own bucket).
    rate_limited: RefCell<HashMap<Box<str>, u64>>,
    /// Faults injected, by route and kind (`"delay"`, `"abort"`).
    faults: RefCell<HashMap<(Box<str>, &'static str), u64>>,
    /// Requests a route's `authn` refused, by route and reason (`"missing"`, `"unknown"`,
    /// `"jwt_*"`).
    authn_failures: RefCell<HashMap<(Box<str>, &'static str), u64>>,
    /// By consumer (names from the configuration, so bounded by it): authenticated
    /// requests, and those refused by the consumer's own bucket.
    consumers: RefCell<HashMap<Box<str>, ConsumerCounts>>,
    /// Gateway stage events, by route and event (`"cors_preflight"`,
    /// `"cors_origin_rejected"`, `"redirect"`, `"ip_denied"`).
    gateway: RefCell<HashMap<(Box<str>, &'static str), u64>>,
}

/// One consumer's counters in one worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsumerCounts {
    pub requests: u64,
    pub rate_limited: u64,
}

impl ListenerStats {
    pub(crate) fn request_done(&self, route: &str, status: u16, took: Duration) {
        let mut requests = self.requests.borrow_mut();
        match requests.get_mut(route) {
            Some(by_status) => *by_status.entry(status).or_insert(0) += 1,
            None => {
                requests.insert(route.into(), HashMap::from_iter([(status, 1)]));
            }
        }
        self.duration.borrow_mut().observe(took);
    }

    /// A request refused by the bucket of `route` (empty: the listener's).
    pub(crate) fn rate_limited(&self, route: &str) {
        let mut counts = self.rate_limited.borrow_mut();
        match counts.get_mut(route) {
            Some(n) => *n += 1,
            None => {
                counts.insert(route.into(), 1);
            }
        }
    }

    /// A request of `route` that its `authn` refused for `reason`.
    pub(crate) fn authn_failed(&self, route: &str, reason: &'static str) {
        *self
            .authn_failures
            .borrow_mut()
            .entry((route.into(), reason))
            .or_insert(0) += 1;
    }

    /// An authenticated request of `consumer`; `limited`: its own bucket refused it.
    pub(crate) fn consumer(&self, consumer: &str, limited: bool) {
        let mut counts = self.consumers.borrow_mut();
        let c = match counts.get_mut(consumer) {
            Some(c) => c,
            None => counts.entry(consumer.into()).or_default(),
        };
        if limited {
            c.rate_limited += 1;
        } else {
            c.requests += 1;
        }
    }

    /// A fault of `kind` (`"delay"`, `"abort"`) injected into a request of `route`.
    pub(crate) fn fault(&self, route: &str, kind: &'static str) {
        *self
            .faults
            .borrow_mut()
            .entry((route.into(), kind))
            .or_insert(0) += 1;
    }

    /// A gateway stage's `event` on a request of `route`.
    pub(crate) fn gateway(&self, route: &str, event: &'static str) {
        *self
            .gateway
            .borrow_mut()
            .entry((route.into(), event))
            .or_insert(0) += 1;
    }
}

/// Distinct destinations of an `original_dst` cluster that a worker keeps series for.
pub(crate) const MAX_DESTINATIONS: usize = 1024;

/// The endpoint the destinations past [`MAX_DESTINATIONS`] are counted under.
pub const OTHER_DESTINATIONS: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::UNSPECIFIED,
    0,
));

/// One cluster's counters in one worker.
#[derive(Default)]
pub(crate) struct ClusterStats {
    /// Responses by (endpoint, status).
    responses: RefCell<HashMap<(SocketAddr, u16), u64>>,
    /// Exchanges that ended without a response, by endpoint.
    errors: RefCell<HashMap<SocketAddr, u64>>,
    connect_failures: RefCell<HashMap<SocketAddr, u64>>,
    /// Requests in flight by endpoint.
    active: RefCell<HashMap<SocketAddr, u64>>,
    duration: RefCell<Histogram>,
    /// Retries made, by reason (indexed like `RetryReason::ALL`).
    retries: [Cell<u64>; RetryReason::ALL.len()],
    /// Requests under a retry policy, by how their retrying ended (like `RetryOutcome::ALL`).
    retry_outcomes: [Cell<u64>; RetryOutcome::ALL.len()],
    /// Copies mirrored to this cluster, by result (like `MirrorResult::ALL`).
    mirrors: [Cell<u64>; MirrorResult::ALL.len()],
    /// Requests or connections an `original_dst` cluster refused because their original
    /// destination was the proxy itself.
    original_dst_loops: Cell<u64>,
    /// Requests refused by the circuit breaker, by limit (`BreakerLimit::ALL`'s order).
    overflows: [Cell<u64>; 3],
    /// Requests answered 503 because the cluster's host names had not resolved.
    unresolved: Cell<u64>,
    /// Exchanges with an endpoint that has a zone, by zone.
    zones: RefCell<HashMap<Rc<str>, u64>>,
}

impl ClusterStats {
    pub(crate) fn response(&self, endpoint: SocketAddr, status: u16, took: Duration) {
        *self
            .responses
            .borrow_mut()
            .entry((endpoint, status))
            .or_insert(0) += 1;
        self.duration.borrow_mut().observe(took);
    }

    pub(crate) fn error(&self, endpoint: SocketAddr, took: Duration) {
        *self.errors.borrow_mut().entry(endpoint).or_insert(0) += 1;
        self.duration.borrow_mut().observe(took);
    }

    pub(crate) fn connect_failure(&self, endpoint: SocketAddr) {
        *self
            .connect_failures
            .borrow_mut()
            .entry(endpoint)
            .or_insert(0) += 1;
    }

    pub(crate) fn retry(&self, reason: RetryReason) {
        if let Some(c) = RetryReason::ALL
            .iter()
            .position(|r| *r == reason)
            .and_then(|i| self.retries.get(i))
        {
            c.set(c.get() + 1);
        }
    }

    pub(crate) fn retry_outcome(&self, outcome: RetryOutcome) {
        if let Some(c) = self.retry_outcomes.get(outcome as usize) {
            c.set(c.get() + 1);
        }
    }

    pub(crate) fn mirror(&self, result: MirrorResult) {
        if let Some(c) = self.mirrors.get(result as usize) {
            c.set(c.get() + 1);
        }
    }

    /// A request refused by the circuit breaker's `limit`.
    pub(crate) fn overflow(&self, limit: BreakerLimit) {
        if let Some(n) = self.overflow_cell(limit) {
            n.set(n.get() + 1);
        }
    }

    fn overflow_cell(&self, limit: BreakerLimit) -> Option<&Cell<u64>> {
        let i = BreakerLimit::ALL.iter().position(|l| *l == limit)?;
        self.overflows.get(i)
    }

    /// Requests refused by `limit` so far.
    #[cfg(test)]
    pub(crate) fn overflows(&self, limit: BreakerLimit) -> u64 {
        self.overflow_cell(limit).map_or(0, Cell::get)
    }

    pub(crate) fn unresolved(&self) {
        self.unresolved.set(self.unresolved.get() + 1);
    }

    /// An exchange started with an endpoint in `zone`.
    pub(crate) fn zone_request(&self, zone: &Rc<str>) {
        let mut zones = self.zones.borrow_mut();
        match zones.get_mut(zone) {
            Some(n) => *n += 1,
            None => {
                zones.insert(Rc::clone(zone), 1);
            }
        }
    }

    /// The endpoint an `original_dst` cluster's exchange with `addr` is counted under:
    /// `addr` itself for the first [`MAX_DESTINATIONS`] destinations this worker saw, then
    /// [`OTHER_DESTINATIONS`] (destinations come and go; the series must not grow forever).
    pub(crate) fn destination(&self, addr: SocketAddr) -> SocketAddr {
        let active = self.active.borrow();
        let failures = self.connect_failures.borrow();
        let known = active.contains_key(&addr) || failures.contains_key(&addr);
        if known || active.len().max(failures.len()) < MAX_DESTINATIONS {
            addr
        } else {
            OTHER_DESTINATIONS
        }
    }

    pub(crate) fn original_dst_loop(&self) {
        self.original_dst_loops
            .set(self.original_dst_loops.get() + 1);
    }

    pub(crate) fn started(&self, endpoint: SocketAddr) {
        *self.active.borrow_mut().entry(endpoint).or_insert(0) += 1;
    }

    pub(crate) fn finished(&self, endpoint: SocketAddr) {
        if let Some(n) = self.active.borrow_mut().get_mut(&endpoint) {
            *n = n.saturating_sub(1);
        }
    }

    /// Forgets the counters of endpoints `keep` refuses, unless requests to them are still
    /// in flight.
    fn retain_endpoints(&self, keep: impl Fn(SocketAddr) -> bool) {
        self.active.borrow_mut().retain(|a, n| *n > 0 || keep(*a));
        let active = self.active.borrow();
        let keep = |a: &SocketAddr| active.contains_key(a) || keep(*a);
        self.responses.borrow_mut().retain(|(a, _), _| keep(a));
        self.errors.borrow_mut().retain(|a, _| keep(a));
        self.connect_failures.borrow_mut().retain(|a, _| keep(a));
    }

    /// Whether requests to any endpoint are in flight.
    fn busy(&self) -> bool {
        self.active.borrow().values().any(|n| *n > 0)
    }
}

/// A worker's counters.
#[derive(Default)]
pub(crate) struct WorkerStats {
    listeners: RefCell<HashMap<Rc<str>, Rc<ListenerStats>>>,
    clusters: RefCell<HashMap<Rc<str>, Rc<ClusterStats>>>,
    /// Connections accepted by this worker since it started.
    pub(crate) accepted: Cell<u64>,
    /// Idle connections closed because memory was short (`cx/memory.rs`).
    pub(crate) memory_shed: Cell<u64>,
    /// Connections closed as soon as accepted because memory was at its ceiling.
    pub(crate) memory_refused: Cell<u64>,
}

impl WorkerStats {
    pub(crate) fn listener(&self, name: &Rc<str>) -> Rc<ListenerStats> {
        self.listeners
            .borrow_mut()
            .entry(name.clone())
            .or_default()
            .clone()
    }

    pub(crate) fn cluster(&self, name: &str) -> Rc<ClusterStats> {
        if let Some(s) = self.clusters.borrow().get(name) {
            return s.clone();
        }
        let s = Rc::new(ClusterStats::default());
        self.clusters.borrow_mut().insert(Rc::from(name), s.clone());
        s
    }

    /// Forgets the counters of clusters and endpoints `config` no longer has, so that
    /// endpoints coming and going (EDS, DNS, reloads) do not grow a worker's counters, or the
    /// scrape, without bound: a removed endpoint's series end, as Envoy's host stats end with
    /// the host. Counters with requests in flight stay until a later call. An `original_dst`
    /// cluster's destinations are not configured; [`MAX_DESTINATIONS`] bounds them instead.
    pub(crate) fn retain(&self, config: &ringside_config::Config) {
        let by_name: HashMap<&str, &ringside_config::Cluster> = config
            .clusters
            .iter()
            .map(|c| (c.name.as_str(), c))
            .collect();
        self.clusters
            .borrow_mut()
            .retain(|name, stats| match by_name.get(&**name) {
                Some(c) if c.original_dst => true,
                Some(c) => {
                    let addrs: std::collections::HashSet<SocketAddr> =
                        c.endpoints.iter().map(|e| e.address).collect();
                    stats.retain_endpoints(|a| addrs.contains(&a));
                    true
                }
                None => stats.busy(),
            });
    }

    /// An owned copy for the control thread; `idle` gives the pooled connections per endpoint.
    /// (Ejections and health-check results are process-wide: `ServerHandle::health`.)
    pub(crate) fn report(&self, worker: usize, idle: impl Fn(SocketAddr) -> u64) -> WorkerReport {
        let mut r = WorkerReport {
            worker,
            accepted: self.accepted.get(),
            memory_shed: self.memory_shed.get(),
            memory_refused: self.memory_refused.get(),
            ..WorkerReport::default()
        };
        for (name, l) in self.listeners.borrow().iter() {
            for (route, by_status) in l.requests.borrow().iter() {
                for (status, n) in by_status {
                    r.requests.push(RequestCount {
                        listener: name.to_string(),
                        route: route.to_string(),
                        status: *status,
                        count: *n,
                    });
                }
            }
            r.listeners.push(ListenerReport {
                listener: name.to_string(),
                duration: l.duration.borrow().clone(),
                open: l.open.get(),
                in_flight: l.in_flight.get(),
                tls_failures: l.tls_failures.get(),
                authz_denied: l.authz_denied.get(),
                overflow: l.overflow.get(),
                unmatched: l.unmatched.get(),
                rate_limited: l
                    .rate_limited
                    .borrow()
                    .iter()
                    .map(|(route, n)| (route.to_string(), *n))
                    .collect(),
                faults: l
                    .faults
                    .borrow()
                    .iter()
                    .map(|((route, kind), n)| (route.to_string(), *kind, *n))
                    .collect(),
                authn_failures: l
                    .authn_failures
                    .borrow()
                    .iter()
                    .map(|((route, reason), n)| (route.to_string(), *reason, *n))
                    .collect(),
                consumers: l
                    .consumers
                    .borrow()
                    .iter()
                    .map(|(name, c)| (name.to_string(), *c))
                    .collect(),
                gateway: l
                    .gateway
                    .borrow()
                    .iter()
                    .map(|((route, event), n)| (route.to_string(), *event, *n))
                    .collect(),
            });
        }
        for (name, c) in self.clusters.borrow().iter() {
            let mut endpoints: HashMap<SocketAddr, EndpointReport> = HashMap::default();
            fn at<'m>(
                m: &'m mut HashMap<SocketAddr, EndpointReport>,
                a: SocketAddr,
                idle: &dyn Fn(SocketAddr) -> u64,
            ) -> &'m mut EndpointReport {
                m.entry(a).or_insert_with(|| EndpointReport {
                    address: a,
                    idle: idle(a),
                    ..Default::default()
                })
            }
            for ((a, status), n) in c.responses.borrow().iter() {
                at(&mut endpoints, *a, &idle).responses.push((*status, *n));
            }
            for (a, n) in c.errors.borrow().iter() {
                at(&mut endpoints, *a, &idle).errors += n;
            }
            for (a, n) in c.connect_failures.borrow().iter() {
                at(&mut endpoints, *a, &idle).connect_failures += n;
            }
            for (a, n) in c.active.borrow().iter() {
                at(&mut endpoints, *a, &idle).active += n;
            }
            let nonzero = |(label, n): (&'static str, u64)| (n > 0).then_some((label, n));
            r.clusters.push(ClusterReport {
                cluster: name.to_string(),
                duration: c.duration.borrow().clone(),
                endpoints: endpoints.into_values().collect(),
                retries: RetryReason::ALL
                    .iter()
                    .zip(&c.retries)
                    .map(|(r, n)| (r.as_str(), n.get()))
                    .filter_map(nonzero)
                    .collect(),
                retry_outcomes: RetryOutcome::ALL
                    .iter()
                    .zip(&c.retry_outcomes)
                    .map(|(o, n)| (o.as_str(), n.get()))
                    .filter_map(nonzero)
                    .collect(),
                mirrors: MirrorResult::ALL
                    .iter()
                    .zip(&c.mirrors)
                    .map(|(m, n)| (m.as_str(), n.get()))
                    .filter_map(nonzero)
                    .collect(),
                overflows: BreakerLimit::ALL
                    .iter()
                    .zip(&c.overflows)
                    .filter(|(_, n)| n.get() > 0)
                    .map(|(l, n)| (l.key(), n.get()))
                    .collect(),
                unresolved: c.unresolved.get(),
                zones: c
                    .zones
                    .borrow()
                    .iter()
                    .map(|(z, n)| (z.to_string(), *n))
                    .collect(),
                original_dst_loops: c.original_dst_loops.get(),
            });
        }
        r
    }
}

/// Requests counted for one (listener, route, status).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestCount {
    pub listener: String,
    /// Empty when no route matched.
    pub route: String,
    pub status: u16,
    pub count: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListenerReport {
    pub listener: String,
    pub duration: Histogram,
    pub open: u64,
    pub in_flight: u64,
    /// TLS handshakes that failed or timed out.
    pub tls_failures: u64,
    /// Requests denied by the authorization policy.
    pub authz_denied: u64,
    /// Connections closed at accept past `max_connections`.
    pub overflow: u64,
    /// A parent's connections no child listener took, closed.
    pub unmatched: u64,
    /// Requests refused by a token bucket: (route, count); route empty for the listener's
    /// own bucket.
    pub rate_limited: Vec<(String, u64)>,
    /// Faults injected: (route, kind `"delay"` or `"abort"`, count).
    pub faults: Vec<(String, &'static str, u64)>,
    /// Requests refused by a route's `authn`: (route, reason `"missing"`, `"unknown"` or a
    /// JWT's `"jwt_*"`, count).
    pub authn_failures: Vec<(String, &'static str, u64)>,
    /// By consumer: (name, authenticated requests and those its own bucket refused).
    pub consumers: Vec<(String, ConsumerCounts)>,
    /// Gateway stage events: (route, event, count).
    pub gateway: Vec<(String, &'static str, u64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EndpointReport {
    pub address: SocketAddr,
    /// (status, responses).
    pub responses: Vec<(u16, u64)>,
    /// Exchanges that ended without a response.
    pub errors: u64,
    pub connect_failures: u64,
    /// Requests in flight.
    pub active: u64,
    /// Pooled idle connections.
    pub idle: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterReport {
    pub cluster: String,
    pub duration: Histogram,
    pub endpoints: Vec<EndpointReport>,
    /// Retries made, by reason (`RetryReason::as_str`); only reasons that occurred.
    pub retries: Vec<(&'static str, u64)>,
    /// Requests under a retry policy by how their retrying ended (`RetryOutcome::as_str`);
    /// only outcomes that occurred.
    pub retry_outcomes: Vec<(&'static str, u64)>,
    /// Copies mirrored to this cluster by result (`MirrorResult::as_str`); only results that
    /// occurred.
    pub mirrors: Vec<(&'static str, u64)>,
    /// Requests refused by the circuit breaker: (limit key, e.g. `"max_requests"`, count).
    pub overflows: Vec<(&'static str, u64)>,
    /// Requests answered 503 because none of the cluster's host names had resolved.
    pub unresolved: u64,
    /// Exchanges with endpoints that have a zone: (zone, count).
    pub zones: Vec<(String, u64)>,
    /// Requests or connections an `original_dst` cluster refused: their original destination
    /// was the proxy itself.
    pub original_dst_loops: u64,
}

/// What became of a request a route mirrors to this cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MirrorResult {
    /// The copy was sent and answered (the answer was dropped).
    Answered = 0,
    /// The copy was sent and got no answer (connect failure, reset, timeout).
    Failed = 1,
    /// Not copied: `max_in_flight` copies were already running on the worker.
    Busy = 2,
    /// Not copied: the body was too big to keep.
    BodyTooLarge = 3,
}

impl MirrorResult {
    pub const ALL: [MirrorResult; 4] = [
        MirrorResult::Answered,
        MirrorResult::Failed,
        MirrorResult::Busy,
        MirrorResult::BodyTooLarge,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MirrorResult::Answered => "answered",
            MirrorResult::Failed => "failed",
            MirrorResult::Busy => "dropped-busy",
            MirrorResult::BodyTooLarge => "dropped-body-too-large",
        }
    }
}

/// How retrying a request ended, when it is worth counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryOutcome {
    /// A retried request got an answer that was not retried.
    Succeeded = 0,
    /// The tries ran out; the last answer went to the client as it came.
    Exhausted = 1,
    /// A retry was not made: the cluster's retry budget was spent.
    OverBudget = 2,
    /// A retry was not made: the request body was bigger than `max_body_bytes`.
    BodyTooLarge = 3,
    /// A retry was not made: the policy does not retry the request's method.
    Method = 4,
}

impl RetryOutcome {
    pub const ALL: [RetryOutcome; 5] = [
        RetryOutcome::Succeeded,
        RetryOutcome::Exhausted,
        RetryOutcome::OverBudget,
        RetryOutcome::BodyTooLarge,
        RetryOutcome::Method,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RetryOutcome::Succeeded => "succeeded",
            RetryOutcome::Exhausted => "exhausted",
            RetryOutcome::OverBudget => "over-budget",
            RetryOutcome::BodyTooLarge => "body-too-large",
            RetryOutcome::Method => "method",
        }
    }
}

/// One worker's counters at scrape time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkerReport {
    pub worker: usize,
    pub accepted: u64,
    /// Idle connections closed because memory was short.
    pub memory_shed: u64,
    /// Connections closed as soon as accepted because memory was at its ceiling.
    pub memory_refused: u64,
    pub requests: Vec<RequestCount>,
    pub listeners: Vec<ListenerReport>,
    pub clusters: Vec<ClusterReport>,
}

impl Default for EndpointReport {
    fn default() -> Self {
        EndpointReport {
            address: SocketAddr::from(([0, 0, 0, 0], 0)),
            responses: Vec::new(),
            errors: 0,
            connect_failures: 0,
            active: 0,
            idle: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_consistent() {
        let mut h = Histogram::default();
        h.observe(Duration::from_micros(100));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(20));
        assert_eq!(h.count, 3);
        let cum = h.cumulative();
        assert_eq!(cum.len(), BUCKETS.len() + 1);
        assert_eq!(cum[0], 1); // <= 0.5 ms
        assert_eq!(cum[3], 2); // <= 5 ms
        assert_eq!(*cum.last().unwrap(), 3); // +Inf holds everything
        assert!(cum.windows(2).all(|w| w[0] <= w[1]));
        assert!((h.sum_seconds - 20.0031).abs() < 1e-9);
    }

    #[test]
    fn an_original_dst_cluster_keeps_series_for_so_many_destinations() {
        let c = ClusterStats::default();
        let at = |i: usize| SocketAddr::from(([10, 0, (i / 256) as u8, (i % 256) as u8], 80));
        for i in 0..MAX_DESTINATIONS {
            assert_eq!(c.destination(at(i)), at(i));
            c.started(at(i));
        }
        // A destination seen before keeps its series; a new one is counted with the others.
        assert_eq!(c.destination(at(7)), at(7));
        assert_eq!(c.destination(at(MAX_DESTINATIONS)), OTHER_DESTINATIONS);
    }

    #[test]
    fn reports_carry_exact_counts() {
        let w = WorkerStats::default();
        let l = w.listener(&Rc::from("in"));
        for _ in 0..5 {
            l.request_done("api", 200, Duration::from_millis(1));
        }
        l.request_done("", 404, Duration::from_millis(1));
        let c = w.cluster("app");
        let a: SocketAddr = "127.0.0.1:9".parse().unwrap();
        c.response(a, 200, Duration::from_millis(1));
        c.error(a, Duration::from_millis(1));
        c.connect_failure(a);
        let r = w.report(0, |_| 2);
        let api: u64 = r
            .requests
            .iter()
            .filter(|c| c.route == "api" && c.status == 200)
            .map(|c| c.count)
            .sum();
        assert_eq!(api, 5);
        assert!(r
            .requests
            .iter()
            .any(|c| c.route.is_empty() && c.status == 404 && c.count == 1));
        let ep = &r.clusters[0].endpoints[0];
        assert_eq!(
            (
                ep.responses.clone(),
                ep.errors,
                ep.connect_failures,
                ep.idle
            ),
            (vec![(200, 1)], 1, 1, 2)
        );
    }

    #[test]
    fn counters_of_endpoints_and_clusters_gone_from_the_configuration_are_forgotten() {
        let config = |endpoints: &str| {
            ringside_config::parse(&format!(
                "[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n\
                 [[clusters]]\nname = \"app\"\nendpoints = [ {endpoints} ]\n\
                 [[clusters]]\nname = \"dst\"\nkind = \"original_dst\"\n"
            ))
            .unwrap()
        };
        let w = WorkerStats::default();
        let (a, b, c): (SocketAddr, SocketAddr, SocketAddr) = (
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
            "127.0.0.1:3".parse().unwrap(),
        );
        let app = w.cluster("app");
        for ep in [a, b, c] {
            app.response(ep, 200, Duration::from_millis(1));
            app.error(ep, Duration::from_millis(1));
            app.connect_failure(ep);
        }
        // A request to c is still in flight.
        app.started(c);
        w.cluster("dst").response(a, 200, Duration::from_millis(1));
        w.cluster("gone").response(a, 200, Duration::from_millis(1));
        w.retain(&config("\"127.0.0.1:1\""));
        let endpoints = |r: &WorkerReport, cluster: &str| {
            let mut e: Vec<SocketAddr> = r
                .clusters
                .iter()
                .filter(|c| c.cluster == cluster)
                .flat_map(|c| c.endpoints.iter().map(|e| e.address))
                .collect();
            e.sort();
            e
        };
        let r = w.report(0, |_| 0);
        assert_eq!(endpoints(&r, "app"), [a, c]);
        assert_eq!(endpoints(&r, "dst"), [a]);
        assert!(r.clusters.iter().all(|c| c.cluster != "gone"));
        // Once c's request ends, the next pruning forgets it too.
        app.finished(c);
        w.retain(&config("\"127.0.0.1:1\""));
        assert_eq!(endpoints(&w.report(0, |_| 0), "app"), [a]);
    }
}
