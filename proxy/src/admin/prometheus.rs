//! `GET /metrics`: the Prometheus text exposition format 0.0.4, or OpenMetrics 1.0 when the
//! scraper asks for `application/openmetrics-text`. Rendering is a pure function of a
//! [`Scrape`] (docs/admin.md lists every family).

use std::fmt::Write as _;

use ringside_engine::metrics::{ConsumerCounts, Histogram, BUCKETS};
use ringside_engine::{Checked, ClusterHealth, RedisHealth};

use super::process::ProcessStats;
use super::totals::{ListenerTotals, Totals, ERROR_CLASS};

pub const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
pub const CONTENT_TYPE_OPENMETRICS: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Everything one scrape shows, gathered by the caller.
pub struct Scrape<'a> {
    pub totals: &'a Totals,
    /// Listeners and clusters of the running configuration: shown with zeros before their
    /// first request, so dashboards see every series from the start.
    pub listeners: Vec<String>,
    pub clusters: Vec<String>,
    pub generation: u64,
    /// (result label, count).
    pub reloads: Vec<(&'static str, u64)>,
    pub driver: String,
    pub workers: usize,
    pub draining: bool,
    /// Whether the ctld session is up; None when the process takes no configuration from ctld.
    pub ctld_connected: Option<bool>,
    pub telemetry: Telemetry,
    pub process: ProcessStats,
    /// Outlier ejections and health checks (`ServerHandle::health`), by cluster.
    pub health: Vec<ClusterHealth>,
    /// JWKS fetches of the JWT providers (`ServerHandle::jwks`), by provider.
    pub jwks: Vec<ringside_engine::JwksStats>,
    /// The global rate limits' Redis servers (`ServerHandle::redis`).
    pub redis: Vec<RedisHealth>,
    /// Endpoint host names and their lookups (`ServerHandle::dns`).
    pub dns: Vec<ringside_engine::DnsStats>,
    /// The memory ceiling and the last sampled resident size (`ServerHandle::memory`).
    pub memory: Option<ringside_engine::MemoryReport>,
}

/// The engine's telemetry counters (access log and span export).
#[derive(Debug, Default, Clone, Copy)]
pub struct Telemetry {
    pub log_lines_written: u64,
    pub log_lines_dropped: u64,
    pub spans_exported: u64,
    pub spans_dropped: u64,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
    /// OpenMetrics only: see `ringside_downstream_connections_total`.
    Unknown,
}

/// Builds one exposition; families must be declared before their samples.
struct Exposition {
    out: String,
    openmetrics: bool,
}

impl Exposition {
    /// `# HELP` and `# TYPE` for a family. Counters are named with their `_total` suffix;
    /// OpenMetrics names the family without it.
    fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let family = match kind {
            Kind::Counter if self.openmetrics => name.strip_suffix("_total").unwrap_or(name),
            _ => name,
        };
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
            Kind::Unknown => "unknown",
        };
        let _ = writeln!(self.out, "# HELP {family} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {family} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Into<Value>) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", value.into());
    }

    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) {
        let bucket = format!("{name}_bucket");
        for (i, cumulative) in h.cumulative().into_iter().enumerate() {
            let le = BUCKETS
                .get(i)
                .map_or_else(|| "+Inf".to_string(), |b| format!("{b:?}"));
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&bucket, &with_le, cumulative);
        }
        self.sample(&format!("{name}_sum"), labels, h.sum_seconds);
        self.sample(&format!("{name}_count"), labels, h.count);
    }
}

/// A sample value: integers exactly, floats in Prometheus' spelling.
pub enum Value {
    Int(u64),
    Float(f64),
}

impl From<u64> for Value {
    fn from(v: u64) -> Value {
        Value::Int(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Float(v)
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Int(v) => write!(f, "{v}"),
            Value::Float(v) if v.is_nan() => f.write_str("NaN"),
            Value::Float(v) if v.is_infinite() => {
                f.write_str(if *v > 0.0 { "+Inf" } else { "-Inf" })
            }
            Value::Float(v) => write!(f, "{v}"),
        }
    }
}

/// Label values escape `\`, `"` and newlines.
pub fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// HELP text escapes `\` and newlines.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Whether an `Accept` header asks for OpenMetrics.
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("application/openmetrics-text"))
}

pub fn render(s: &Scrape<'_>, openmetrics: bool) -> String {
    let mut e = Exposition {
        out: String::with_capacity(16 * 1024),
        openmetrics,
    };
    let t = s.totals;
    let mut listeners: Vec<&str> = s.listeners.iter().map(String::as_str).collect();
    listeners.extend(t.listeners.keys().map(String::as_str));
    listeners.sort_unstable();
    listeners.dedup();
    let mut clusters: Vec<&str> = s.clusters.iter().map(String::as_str).collect();
    clusters.extend(t.clusters.keys().map(String::as_str));
    clusters.sort_unstable();
    clusters.dedup();

    e.family(
        "ringside_downstream_requests_total",
        Kind::Counter,
        "Requests answered to clients, by listener, route (empty when no route matched) and status class.",
    );
    for ((listener, route, class), n) in &t.requests {
        let labels = [
            ("listener", listener.as_str()),
            ("route", route.as_str()),
            ("code_class", *class),
        ];
        e.sample("ringside_downstream_requests_total", &labels, *n);
    }

    e.family(
        "ringside_downstream_request_duration_seconds",
        Kind::Histogram,
        "Time from a request's head to the end of its response, by listener.",
    );
    let empty = Histogram::default();
    for l in &listeners {
        let h = t.listeners.get(*l).map_or(&empty, |x| &x.duration);
        e.histogram(
            "ringside_downstream_request_duration_seconds",
            &[("listener", l)],
            h,
        );
    }

    e.family(
        "ringside_downstream_connections",
        Kind::Gauge,
        "Open client connections, by listener and state (active: a request in flight).",
    );
    for l in &listeners {
        let (active, idle) = t
            .listeners
            .get(*l)
            .map_or((0, 0), |x| (x.in_flight, x.idle()));
        e.sample(
            "ringside_downstream_connections",
            &[("listener", l), ("state", "active")],
            active,
        );
        e.sample(
            "ringside_downstream_connections",
            &[("listener", l), ("state", "idle")],
            idle,
        );
    }

    // In OpenMetrics a counter family drops `_total`, and `ringside_downstream_connections`
    // is already the gauge above: family names must be unique, so there this counter is
    // declared `unknown` under its full sample name (the samples are the same in both formats).
    e.family(
        "ringside_downstream_connections_total",
        if openmetrics {
            Kind::Unknown
        } else {
            Kind::Counter
        },
        "Client connections accepted, by worker.",
    );
    for (worker, n) in &t.accepted {
        e.sample(
            "ringside_downstream_connections_total",
            &[("worker", &worker.to_string())],
            *n,
        );
    }

    // Counters of one value per listener.
    let by_listener: [ListenerCounter; 4] = [
        (
            "ringside_downstream_tls_handshake_failures_total",
            "TLS handshakes that failed or timed out, by listener (plaintext on a TLS port, untrusted or expired client certificates).",
            |x| x.tls_failures,
        ),
        (
            "ringside_downstream_connections_overflow_total",
            "Connections closed as soon as accepted because their worker had the listener's max_connections open, by listener.",
            |x| x.overflow,
        ),
        (
            "ringside_downstream_connections_unmatched_total",
            "Connections a parent listener closed because none of its child listeners took them (unmatched = \"close\"), by listener.",
            |x| x.unmatched,
        ),
        (
            "ringside_authz_denied_total",
            "Requests denied by the listener's authorization policy (403 or gRPC PERMISSION_DENIED).",
            |x| x.authz_denied,
        ),
    ];
    for (name, help, count) in by_listener {
        e.family(name, Kind::Counter, help);
        for l in &listeners {
            let n = t.listeners.get(*l).map_or(0, count);
            e.sample(name, &[("listener", l)], n);
        }
    }
    e.family(
        "ringside_rate_limited_total",
        Kind::Counter,
        "Requests refused by a local rate limit (429 or gRPC RESOURCE_EXHAUSTED), by listener and route (empty: the listener's own bucket).",
    );
    for (listener, lt) in &t.listeners {
        for (route, n) in &lt.rate_limited {
            let labels = [("listener", listener.as_str()), ("route", route.as_str())];
            e.sample("ringside_rate_limited_total", &labels, *n);
        }
    }
    e.family(
        "ringside_authn_failures_total",
        Kind::Counter,
        "Requests refused by a route's authn (401 or gRPC UNAUTHENTICATED; 403 for jwt_audience), by listener, route and reason (missing: no credential; unknown: a key no consumer has; jwt_*: a token that does not pass).",
    );
    for (listener, lt) in &t.listeners {
        for ((route, reason), n) in &lt.authn_failures {
            let labels = [
                ("listener", listener.as_str()),
                ("route", route.as_str()),
                ("reason", reason),
            ];
            e.sample("ringside_authn_failures_total", &labels, *n);
        }
    }
    // Two families over the same counters, by listener and consumer: (name, help, value).
    type Family = (&'static str, &'static str, fn(&ConsumerCounts) -> u64);
    let by_consumer: [Family; 2] = [
        (
            "ringside_consumer_requests_total",
            "Authenticated requests, by listener and consumer (those its own rate limit refused included).",
            |c| c.requests + c.rate_limited,
        ),
        (
            "ringside_consumer_rate_limited_total",
            "Requests refused by their consumer's own rate limit (429 or gRPC RESOURCE_EXHAUSTED), by listener and consumer.",
            |c| c.rate_limited,
        ),
    ];
    for (name, help, value) in by_consumer {
        e.family(name, Kind::Counter, help);
        for (listener, lt) in &t.listeners {
            for (consumer, c) in &lt.consumers {
                let labels = [
                    ("listener", listener.as_str()),
                    ("consumer", consumer.as_str()),
                ];
                e.sample(name, &labels, value(c));
            }
        }
    }
    by_route(
        &mut e,
        t,
        (
            "ringside_fault_injected_total",
            "Faults injected by routes' fault settings, by listener, route and kind (delay or abort).",
            "kind",
        ),
        |lt| &lt.faults,
    );
    by_route(
        &mut e,
        t,
        (
            "ringside_gateway_events_total",
            "Gateway stage events, by listener, route and event: cors_preflight (a preflight answered 204), cors_origin_rejected (a request whose Origin the route's cors does not allow), redirect, ip_denied (403 by ip_allow/ip_deny).",
            "event",
        ),
        |lt| &lt.gateway,
    );

    e.family(
        "ringside_upstream_requests_total",
        Kind::Counter,
        "Exchanges with upstream endpoints, by response status class; code_class=\"error\" when the exchange ended without a response.",
    );
    for (cluster, c) in &t.clusters {
        for (addr, ep) in &c.endpoints {
            let endpoint = addr.to_string();
            let mut classes: Vec<(&str, u64)> =
                ep.responses.iter().map(|(k, v)| (*k, *v)).collect();
            if ep.errors > 0 {
                classes.push((ERROR_CLASS, ep.errors));
            }
            for (class, n) in classes {
                let labels = [
                    ("cluster", cluster.as_str()),
                    ("endpoint", endpoint.as_str()),
                    ("code_class", class),
                ];
                e.sample("ringside_upstream_requests_total", &labels, n);
            }
        }
    }

    e.family(
        "ringside_upstream_request_duration_seconds",
        Kind::Histogram,
        "Time from sending a request upstream to the end of its response (or the error), by cluster.",
    );
    for c in &clusters {
        let h = t.clusters.get(*c).map_or(&empty, |x| &x.duration);
        e.histogram(
            "ringside_upstream_request_duration_seconds",
            &[("cluster", c)],
            h,
        );
    }

    e.family(
        "ringside_upstream_connect_failures_total",
        Kind::Counter,
        "Failed connection attempts to upstream endpoints, by cluster.",
    );
    for c in &clusters {
        let n = t
            .clusters
            .get(*c)
            .map_or(0, |x| x.sum(|ep| ep.connect_failures));
        e.sample(
            "ringside_upstream_connect_failures_total",
            &[("cluster", c)],
            n,
        );
    }

    e.family(
        "ringside_upstream_retries_total",
        Kind::Counter,
        "Retries made by routes with a retry policy, by cluster and reason (connect-failure, refused-stream, reset, per-try-timeout, status, response-header, grpc-status).",
    );
    for c in &clusters {
        for (reason, n) in t.clusters.get(*c).map(|x| &x.retries).into_iter().flatten() {
            e.sample(
                "ringside_upstream_retries_total",
                &[("cluster", c), ("reason", reason)],
                *n,
            );
        }
    }

    e.family(
        "ringside_upstream_retry_outcomes_total",
        Kind::Counter,
        "Requests under a retry policy whose retrying is worth counting, by cluster and outcome: succeeded (a retry got an answer that was not retried), exhausted (the tries ran out), and retries not made: over-budget, body-too-large, method.",
    );
    for c in &clusters {
        for (outcome, n) in t
            .clusters
            .get(*c)
            .map(|x| &x.retry_outcomes)
            .into_iter()
            .flatten()
        {
            e.sample(
                "ringside_upstream_retry_outcomes_total",
                &[("cluster", c), ("outcome", outcome)],
                *n,
            );
        }
    }

    e.family(
        "ringside_mirror_requests_total",
        Kind::Counter,
        "Requests copied by a route's mirror, by the cluster they were copied to and result: answered, failed (no answer), dropped-busy (max_in_flight copies running), dropped-body-too-large.",
    );
    for c in &clusters {
        for (result, n) in t.clusters.get(*c).map(|x| &x.mirrors).into_iter().flatten() {
            e.sample(
                "ringside_mirror_requests_total",
                &[("cluster", c), ("result", result)],
                *n,
            );
        }
    }

    e.family(
        "ringside_circuit_breaker_overflows_total",
        Kind::Counter,
        "Requests refused by a cluster's circuit breaker (503 with x-ringside-overloaded), by cluster and limit.",
    );
    for (cluster, ct) in &t.clusters {
        for (limit, n) in &ct.overflows {
            let labels = [("cluster", cluster.as_str()), ("limit", *limit)];
            e.sample("ringside_circuit_breaker_overflows_total", &labels, *n);
        }
    }

    e.family(
        "ringside_cluster_unresolved_requests_total",
        Kind::Counter,
        "Requests answered 503 because none of the cluster's endpoint host names had resolved yet, by cluster.",
    );
    for (cluster, ct) in &t.clusters {
        if ct.unresolved > 0 {
            let labels = [("cluster", cluster.as_str())];
            e.sample(
                "ringside_cluster_unresolved_requests_total",
                &labels,
                ct.unresolved,
            );
        }
    }

    e.family(
        "ringside_upstream_zone_requests_total",
        Kind::Counter,
        "Exchanges with a cluster's endpoints, by cluster and the endpoint's zone (endpoints with a zone only).",
    );
    for (cluster, ct) in &t.clusters {
        for (zone, n) in &ct.zones {
            let labels = [("cluster", cluster.as_str()), ("zone", zone.as_str())];
            e.sample("ringside_upstream_zone_requests_total", &labels, *n);
        }
    }

    e.family(
        "ringside_original_dst_loops_total",
        Kind::Counter,
        "Requests (502) or TCP connections (closed) an original_dst cluster refused because their original destination was the proxy itself, by cluster.",
    );
    for (cluster, ct) in &t.clusters {
        if ct.original_dst_loops > 0 {
            let labels = [("cluster", cluster.as_str())];
            e.sample(
                "ringside_original_dst_loops_total",
                &labels,
                ct.original_dst_loops,
            );
        }
    }

    e.family(
        "ringside_upstream_connections",
        Kind::Gauge,
        "Upstream connections, by cluster and state (active: carrying a request; idle: pooled).",
    );
    for c in &clusters {
        let (active, idle) = t
            .clusters
            .get(*c)
            .map_or((0, 0), |x| (x.sum(|ep| ep.active), x.sum(|ep| ep.idle)));
        e.sample(
            "ringside_upstream_connections",
            &[("cluster", c), ("state", "active")],
            active,
        );
        e.sample(
            "ringside_upstream_connections",
            &[("cluster", c), ("state", "idle")],
            idle,
        );
    }

    health(&mut e, &s.health);
    jwks(&mut e, &s.jwks);
    redis(&mut e, &s.redis);
    dns(&mut e, &s.dns);

    e.family(
        "ringside_config_generation",
        Kind::Gauge,
        "Generation of the configuration being served.",
    );
    e.sample("ringside_config_generation", &[], s.generation);

    e.family(
        "ringside_config_reload_total",
        Kind::Counter,
        "Configuration reloads (SIGHUP and ctld pushes), by result: ok, invalid (rejected by validation) or failed (could not be applied).",
    );
    for (result, n) in &s.reloads {
        e.sample("ringside_config_reload_total", &[("result", result)], *n);
    }

    e.family(
        "ringside_io_driver",
        Kind::Gauge,
        "The I/O driver the workers run on (1 for the one in use).",
    );
    e.sample("ringside_io_driver", &[("driver", &s.driver)], 1u64);

    if let Some(m) = s.memory {
        e.family(
            "ringside_memory_limit_bytes",
            Kind::Gauge,
            "The memory ceiling ([proxy] memory_limit_mib): idle connections are shed from 90% of it, new ones refused at it.",
        );
        e.sample("ringside_memory_limit_bytes", &[], m.limit);
        e.family(
            "ringside_memory_resident_bytes",
            Kind::Gauge,
            "The resident size the memory ceiling was last compared with (sampled every 50 ms).",
        );
        e.sample("ringside_memory_resident_bytes", &[], m.resident);
        e.family(
            "ringside_memory_level",
            Kind::Gauge,
            "What the memory ceiling does now: 0 nothing, 1 sheds idle connections (past 90%), 2 also refuses new ones (at the ceiling).",
        );
        e.sample("ringside_memory_level", &[], m.level as u64);
    }
    e.family(
        "ringside_memory_shed_connections_total",
        Kind::Counter,
        "Idle keep-alive connections closed, oldest first, because resident memory passed 90% of the ceiling.",
    );
    e.sample("ringside_memory_shed_connections_total", &[], t.memory_shed);
    e.family(
        "ringside_memory_refused_connections_total",
        Kind::Counter,
        "Connections closed as soon as accepted because resident memory was at the ceiling.",
    );
    e.sample(
        "ringside_memory_refused_connections_total",
        &[],
        t.memory_refused,
    );

    e.family("ringside_workers", Kind::Gauge, "Worker threads.");
    e.sample("ringside_workers", &[], s.workers as u64);

    e.family(
        "ringside_draining",
        Kind::Gauge,
        "1 while the process drains (no new connections), else 0.",
    );
    e.sample("ringside_draining", &[], u64::from(s.draining));

    if let Some(up) = s.ctld_connected {
        e.family(
            "ringside_ctld_connected",
            Kind::Gauge,
            "1 while the session with ringside-ctld is up, 0 while the proxy serves its last good configuration without it (only with --ctld).",
        );
        e.sample("ringside_ctld_connected", &[], u64::from(up));
    }

    e.family(
        "ringside_build_info",
        Kind::Gauge,
        "The running build (always 1).",
    );
    e.sample(
        "ringside_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1u64,
    );

    let tel = s.telemetry;
    for (name, help, v) in [
        (
            "ringside_access_log_lines_written_total",
            "Access-log lines handed to the writer thread.",
            tel.log_lines_written,
        ),
        (
            "ringside_access_log_lines_dropped_total",
            "Access-log lines dropped because the writer's queue was full.",
            tel.log_lines_dropped,
        ),
        (
            "ringside_trace_spans_exported_total",
            "Spans sent to the OTLP collector.",
            tel.spans_exported,
        ),
        (
            "ringside_trace_spans_dropped_total",
            "Spans dropped (queue full, or the collector down or refusing).",
            tel.spans_dropped,
        ),
    ] {
        e.family(name, Kind::Counter, help);
        e.sample(name, &[], v);
    }

    process(&mut e, &s.process);
    if openmetrics {
        e.out.push_str("# EOF\n");
    }
    e.out
}

/// A counter family by listener, route and one more label (`family`: name, help, label).
fn by_route(
    e: &mut Exposition,
    t: &Totals,
    family: (&str, &str, &str),
    counts: impl Fn(
        &super::totals::ListenerTotals,
    ) -> &std::collections::BTreeMap<(String, &'static str), u64>,
) {
    let (name, help, label) = family;
    e.family(name, Kind::Counter, help);
    for (listener, lt) in &t.listeners {
        for ((route, value), n) in counts(lt) {
            let labels = [
                ("listener", listener.as_str()),
                ("route", route.as_str()),
                (label, *value),
            ];
            e.sample(name, &labels, *n);
        }
    }
}

fn process(e: &mut Exposition, p: &ProcessStats) {
    if let Some(v) = p.cpu_seconds {
        let name = "process_cpu_seconds_total";
        e.family(
            name,
            Kind::Counter,
            "Total user and system CPU time spent in seconds.",
        );
        e.sample(name, &[], v);
    }
    let gauges = [
        (
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            p.resident_memory_bytes.map(Value::Int),
        ),
        (
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            p.virtual_memory_bytes.map(Value::Int),
        ),
        (
            "process_open_fds",
            "Number of open file descriptors.",
            p.open_fds.map(Value::Int),
        ),
        (
            "process_max_fds",
            "Maximum number of open file descriptors.",
            p.max_fds.map(Value::Int),
        ),
        (
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            p.start_time_seconds.map(Value::Float),
        ),
    ];
    for (name, help, v) in gauges {
        if let Some(v) = v {
            e.family(name, Kind::Gauge, help);
            e.sample(name, &[], v);
        }
    }
}

/// Outlier ejection, panic mode and active health checks, by cluster (process-wide marks).
fn health(e: &mut Exposition, health: &[ClusterHealth]) {
    type Count = fn(&ClusterHealth) -> u64;
    let families: [(&str, Kind, &str, Count); 5] = [
        (
            "ringside_upstream_ejections_total",
            Kind::Counter,
            "Endpoints ejected by outlier detection, by cluster.",
            |h| h.ejections,
        ),
        (
            "ringside_upstream_endpoints_ejected",
            Kind::Gauge,
            "Endpoints ejected by outlier detection now, by cluster.",
            |h| h.endpoints.iter().filter(|ep| ep.ejected_ms > 0).count() as u64,
        ),
        (
            "ringside_upstream_endpoints_unhealthy",
            Kind::Gauge,
            "Endpoints failing their active health checks now, by cluster.",
            |h| {
                let failing =
                    |ep: &&ringside_engine::EndpointHealth| ep.checked == Some(Checked::Unhealthy);
                h.endpoints.iter().filter(failing).count() as u64
            },
        ),
        (
            "ringside_upstream_panic_requests_total",
            Kind::Counter,
            "Requests sent to any endpoint because none was in rotation (panic mode), by cluster.",
            |h| h.panic_requests,
        ),
        (
            "ringside_upstream_health_check_failures_total",
            Kind::Counter,
            "Failed active health checks, by cluster.",
            |h| h.check_failures,
        ),
    ];
    for (name, kind, help, count) in families {
        e.family(name, kind, help);
        for h in health {
            e.sample(name, &[("cluster", &h.cluster)], count(h));
        }
    }
    let name = "ringside_upstream_health_transitions_total";
    e.family(
        name,
        Kind::Counter,
        "Endpoints that changed health-check state, by cluster and the state they went to (healthy or unhealthy).",
    );
    for h in health {
        for (to, n) in [
            ("healthy", h.became_healthy),
            ("unhealthy", h.became_unhealthy),
        ] {
            e.sample(name, &[("cluster", &h.cluster), ("to", to)], n);
        }
    }
}

/// The JWT providers' key fetches (process-wide counters), by provider.
fn jwks(e: &mut Exposition, jwks: &[ringside_engine::JwksStats]) {
    let families: [Family<ringside_engine::JwksStats>; 3] = [
        (
            "ringside_jwks_fetches_total",
            Kind::Counter,
            "Fetches of a JWT provider's jwks_uri, by provider.",
            |j| j.fetches,
        ),
        (
            "ringside_jwks_fetch_failures_total",
            Kind::Counter,
            "Failed fetches of a JWT provider's jwks_uri (the last good keys stay in use), by provider.",
            |j| j.failures,
        ),
        (
            "ringside_jwks_keys_loaded",
            Kind::Gauge,
            "1 when a JWT provider has keys to verify tokens with, by provider.",
            |j| u64::from(j.has_keys),
        ),
    ];
    per_item(e, &families, jwks, "provider", |j| &j.provider);
}

/// The global rate limits' Redis servers (process-wide counters), by `[[redis]]` name.
fn redis(e: &mut Exposition, servers: &[RedisHealth]) {
    let families: [Family<RedisHealth>; 3] = [
        (
            "ringside_ratelimit_redis_failures_total",
            Kind::Counter,
            "Connects and batches of global rate-limit counts that failed or took longer than timeout_ms, by redis; meanwhile requests fail open (or closed).",
            |r| r.failures,
        ),
        (
            "ringside_ratelimit_redis_connected_workers",
            Kind::Gauge,
            "Workers connected to the redis now (each worker keeps one connection).",
            |r| r.connected_workers,
        ),
        (
            "ringside_ratelimit_redis_syncs_total",
            Kind::Counter,
            "Batches of global rate-limit counts the redis answered.",
            |r| r.syncs,
        ),
    ];
    per_item(e, &families, servers, "redis", |r| &r.name);
}

/// The endpoint host names the resolver thread looks up (process-wide counters), by host.
fn dns(e: &mut Exposition, hosts: &[ringside_engine::DnsStats]) {
    let families: [Family<ringside_engine::DnsStats>; 4] = [
        (
            "ringside_dns_lookups_total",
            Kind::Counter,
            "Lookups of an endpoint host name, by host.",
            |d| d.lookups,
        ),
        (
            "ringside_dns_lookup_failures_total",
            Kind::Counter,
            "Lookups of an endpoint host name that failed (the last good addresses were kept), by host.",
            |d| d.failures,
        ),
        (
            "ringside_dns_changes_total",
            Kind::Counter,
            "Answers that changed an endpoint host name's addresses, by host.",
            |d| d.changes,
        ),
        (
            "ringside_dns_addresses",
            Kind::Gauge,
            "Addresses an endpoint host name resolves to now (0: it never resolved), by host.",
            |d| d.addresses.len() as u64,
        ),
    ];
    per_item(e, &families, hosts, "host", |d| &d.host);
}

/// A counter of one value per listener: name, help, the listener's value.
type ListenerCounter = (&'static str, &'static str, fn(&ListenerTotals) -> u64);

/// A metric family of process-wide counters: name, kind, help, and the value of one item.
type Family<T> = (&'static str, Kind, &'static str, fn(&T) -> u64);

/// Declares each of `families` and gives it one sample per item,
/// labelled `label` = `name_of(item)`.
fn per_item<T>(
    e: &mut Exposition,
    families: &[Family<T>],
    items: &[T],
    label: &str,
    name_of: fn(&T) -> &str,
) {
    for (name, kind, help, count) in families {
        e.family(name, *kind, help);
        for item in items {
            e.sample(name, &[(label, name_of(item))], count(item));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringside_engine::metrics::{
        ClusterReport, EndpointReport, ListenerReport, RequestCount, WorkerReport,
    };

    fn scrape(t: &Totals) -> Scrape<'_> {
        Scrape {
            totals: t,
            listeners: vec!["in".into(), "quiet".into()],
            clusters: vec!["app".into()],
            generation: 3,
            reloads: vec![("ok", 2), ("invalid", 1), ("failed", 0)],
            driver: "epoll".into(),
            workers: 2,
            draining: false,
            ctld_connected: Some(false),
            memory: Some(ringside_engine::MemoryReport {
                limit: 64 << 20,
                resident: 60 << 20,
                level: ringside_engine::MemoryLevel::Shed,
            }),
            telemetry: Telemetry::default(),
            process: ProcessStats {
                cpu_seconds: Some(1.5),
                ..ProcessStats::default()
            },
            health: vec![ClusterHealth {
                cluster: "app".into(),
                ejections: 3,
                panic_requests: 4,
                check_failures: 5,
                became_unhealthy: 2,
                became_healthy: 1,
                endpoints: vec![ringside_engine::EndpointHealth {
                    address: "127.0.0.1:9".parse().unwrap(),
                    ejected_ms: 250,
                    times_ejected: 2,
                    checked: Some(Checked::Unhealthy),
                    down: false,
                }],
            }],
            jwks: vec![ringside_engine::JwksStats {
                provider: "corp".into(),
                fetches: 7,
                failures: 2,
                has_keys: true,
            }],
            redis: vec![RedisHealth {
                name: "limits".into(),
                failures: 3,
                connected_workers: 2,
                syncs: 40,
            }],
            dns: vec![ringside_engine::DnsStats {
                host: "orders.internal".into(),
                addresses: vec!["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()],
                lookups: 9,
                failures: 1,
                changes: 2,
                last_error: None,
            }],
        }
    }

    fn totals() -> Totals {
        let mut h = Histogram::default();
        h.observe(std::time::Duration::from_millis(3));
        h.observe(std::time::Duration::from_secs(30));
        let w = |id| WorkerReport {
            worker: id,
            accepted: 2,
            memory_shed: 3,
            memory_refused: 0,
            requests: vec![RequestCount {
                listener: "in".into(),
                route: "a\"b\\c\nd".into(),
                status: 200,
                count: 2,
            }],
            listeners: vec![ListenerReport {
                listener: "in".into(),
                duration: h.clone(),
                open: 3,
                in_flight: 1,
                tls_failures: 5,
                authz_denied: 7,
                overflow: 4,
                unmatched: 0,
                rate_limited: vec![("api".into(), 3)],
                faults: vec![("api".into(), "abort", 1)],
                authn_failures: vec![("api".into(), "missing", 2)],
                consumers: vec![(
                    "mobile".into(),
                    ringside_engine::metrics::ConsumerCounts {
                        requests: 4,
                        rate_limited: 1,
                    },
                )],
                gateway: vec![("api".into(), "redirect", 4)],
            }],
            clusters: vec![ClusterReport {
                cluster: "app".into(),
                duration: h.clone(),
                endpoints: vec![EndpointReport {
                    address: "127.0.0.1:9".parse().unwrap(),
                    responses: vec![(503, 1)],
                    errors: 2,
                    connect_failures: 1,
                    ..EndpointReport::default()
                }],
                retries: vec![("status", 3)],
                retry_outcomes: vec![("over-budget", 1)],
                mirrors: vec![("answered", 4)],
                overflows: vec![("max_requests", 5)],
                unresolved: 3,
                zones: vec![("z1".into(), 6)],
                original_dst_loops: 6,
            }],
        };
        Totals::merge(&[w(0), w(1)])
    }

    #[test]
    fn text_format() {
        let t = totals();
        let text = render(&scrape(&t), false);
        for line in [
            "# TYPE ringside_downstream_requests_total counter",
            r#"ringside_downstream_requests_total{listener="in",route="a\"b\\c\nd",code_class="2xx"} 4"#,
            r#"ringside_downstream_request_duration_seconds_bucket{listener="in",le="0.005"} 2"#,
            r#"ringside_downstream_request_duration_seconds_bucket{listener="in",le="10.0"} 2"#,
            r#"ringside_downstream_request_duration_seconds_bucket{listener="in",le="+Inf"} 4"#,
            r#"ringside_downstream_request_duration_seconds_count{listener="in"} 4"#,
            r#"ringside_downstream_request_duration_seconds_count{listener="quiet"} 0"#,
            r#"ringside_downstream_connections{listener="in",state="active"} 2"#,
            r#"ringside_downstream_connections{listener="in",state="idle"} 4"#,
            r#"ringside_downstream_connections_total{worker="1"} 2"#,
            r#"ringside_upstream_requests_total{cluster="app",endpoint="127.0.0.1:9",code_class="5xx"} 2"#,
            r#"ringside_upstream_requests_total{cluster="app",endpoint="127.0.0.1:9",code_class="error"} 4"#,
            r#"ringside_upstream_connect_failures_total{cluster="app"} 2"#,
            r#"ringside_upstream_retries_total{cluster="app",reason="status"} 6"#,
            r#"ringside_upstream_retry_outcomes_total{cluster="app",outcome="over-budget"} 2"#,
            r#"ringside_mirror_requests_total{cluster="app",result="answered"} 8"#,
            "# TYPE ringside_downstream_tls_handshake_failures_total counter",
            r#"ringside_downstream_tls_handshake_failures_total{listener="in"} 10"#,
            r#"ringside_downstream_connections_overflow_total{listener="in"} 8"#,
            r#"ringside_authz_denied_total{listener="in"} 14"#,
            r#"ringside_rate_limited_total{listener="in",route="api"} 6"#,
            r#"ringside_fault_injected_total{listener="in",route="api",kind="abort"} 2"#,
            r#"ringside_authn_failures_total{listener="in",route="api",reason="missing"} 4"#,
            r#"ringside_jwks_fetches_total{provider="corp"} 7"#,
            r#"ringside_jwks_fetch_failures_total{provider="corp"} 2"#,
            r#"ringside_jwks_keys_loaded{provider="corp"} 1"#,
            r#"ringside_consumer_requests_total{listener="in",consumer="mobile"} 10"#,
            r#"ringside_consumer_rate_limited_total{listener="in",consumer="mobile"} 2"#,
            r#"ringside_gateway_events_total{listener="in",route="api",event="redirect"} 8"#,
            r#"ringside_circuit_breaker_overflows_total{cluster="app",limit="max_requests"} 10"#,
            r#"ringside_cluster_unresolved_requests_total{cluster="app"} 6"#,
            r#"ringside_upstream_zone_requests_total{cluster="app",zone="z1"} 12"#,
            r#"ringside_original_dst_loops_total{cluster="app"} 12"#,
            r#"ringside_config_reload_total{result="invalid"} 1"#,
            r#"ringside_io_driver{driver="epoll"} 1"#,
            "ringside_memory_limit_bytes 67108864",
            "ringside_memory_resident_bytes 62914560",
            "ringside_memory_level 1",
            "ringside_memory_shed_connections_total 6",
            "ringside_config_generation 3",
            "ringside_ctld_connected 0",
            "process_cpu_seconds_total 1.5",
            r#"ringside_upstream_ejections_total{cluster="app"} 3"#,
            r#"ringside_upstream_endpoints_ejected{cluster="app"} 1"#,
            r#"ringside_upstream_endpoints_unhealthy{cluster="app"} 1"#,
            r#"ringside_upstream_panic_requests_total{cluster="app"} 4"#,
            r#"ringside_upstream_health_check_failures_total{cluster="app"} 5"#,
            r#"ringside_upstream_health_transitions_total{cluster="app",to="healthy"} 1"#,
            r#"ringside_upstream_health_transitions_total{cluster="app",to="unhealthy"} 2"#,
            r#"ringside_ratelimit_redis_failures_total{redis="limits"} 3"#,
            r#"ringside_ratelimit_redis_connected_workers{redis="limits"} 2"#,
            r#"ringside_ratelimit_redis_syncs_total{redis="limits"} 40"#,
            r#"ringside_dns_lookups_total{host="orders.internal"} 9"#,
            r#"ringside_dns_lookup_failures_total{host="orders.internal"} 1"#,
            r#"ringside_dns_changes_total{host="orders.internal"} 2"#,
            r#"ringside_dns_addresses{host="orders.internal"} 2"#,
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(!text.contains("# EOF"));
        // Every sample belongs to a family declared before it.
        let mut declared = Vec::new();
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                declared.push(rest.split(' ').next().unwrap_or("").to_string());
            } else if !l.starts_with('#') {
                let name = l.split(['{', ' ']).next().unwrap_or("");
                assert!(
                    declared.iter().any(|f| name == f
                        || ["_bucket", "_sum", "_count"]
                            .iter()
                            .any(|s| name == format!("{f}{s}"))),
                    "{name} has no TYPE"
                );
            }
        }
    }

    #[test]
    fn openmetrics_names_counter_families_without_total_and_ends_with_eof() {
        let t = totals();
        let text = render(&scrape(&t), true);
        assert!(text.contains("# TYPE ringside_downstream_requests counter\n"));
        assert!(text.contains("# TYPE process_cpu_seconds counter\n"));
        assert!(text.contains("\nringside_config_reload_total{result=\"ok\"} 2\n"));
        assert!(text.ends_with("# EOF\n"));
        // Family names are unique (the accepted-connections counter would otherwise share
        // the gauge's name).
        let mut families: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        let n = families.len();
        families.sort_unstable();
        families.dedup();
        assert_eq!(families.len(), n, "duplicate families in\n{text}");
        assert!(text.contains("# TYPE ringside_downstream_connections_total unknown\n"));
        assert!(wants_openmetrics(Some(
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"
        )));
        assert!(!wants_openmetrics(Some("text/plain")));
    }
}
