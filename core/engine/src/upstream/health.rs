//! Active health checks: one prober per process, on a thread of its own with blocking std
//! I/O (never a worker: a worker never blocks). Started by `server.rs` with the process; it
//! follows the published snapshot (clusters and endpoints that come and go, changed checks)
//! and stops when the server shuts down.
//!
//! Each endpoint of a cluster with a `health_check` is checked every `interval`: a TCP
//! connect (`tcp = true`), or `GET http_path` over HTTP/1.1 (over TLS for a cluster with
//! `tls` or `mtls`, with the cluster's client settings) whose status must be one of
//! `expected_statuses`, all within `timeout`. The checks due at the same time run in parallel
//! (scoped threads, at most [`PARALLEL`] at once). The first check of an endpoint decides its
//! state at once; after that `unhealthy_threshold` failures in a row take a healthy endpoint
//! out of rotation and `healthy_threshold` passes in a row bring an unhealthy one back.
//!
//! Results reach the workers without a lock: the prober stores each endpoint's state in its
//! `outlier::EndpointMarks` (an atomic byte), which the workers' `ClusterState` hold. It
//! counts failed checks and transitions in the cluster's `ClusterMarks`. This file also
//! gathers those marks for the admin endpoint ([`report`]).

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use ringside_config::{Cluster, Config, HealthCheck, HealthCheckKind, Snapshot};
use rustls_pki_types::ServerName;

use super::outlier::{self, Checked, ClusterMarks, EndpointMarks};
use crate::cx::background::{exchange, Background, Seen};
use crate::cx::shared::Registry;

/// Most checks running at once.
const PARALLEL: usize = 64;
/// Longest sleep between two looks at the snapshot (a reload wakes the prober sooner; a
/// certificate rotation published by the file watcher is seen within this).
const IDLE: Duration = Duration::from_secs(1);

/// Starts the prober thread (`ringside-health`): [`Background::wake`] it after a reload,
/// [`Background::stop`] then [`Background::join`] it at shutdown.
pub(crate) fn spawn(
    shared: Arc<ArcSwap<Snapshot>>,
    registry: Arc<Registry>,
) -> io::Result<Background> {
    Background::spawn("ringside-health", move |signals| {
        let mut targets: Vec<Target> = Vec::new();
        let mut seen = Seen::default();
        loop {
            if let Some(snap) = seen.changed(&shared) {
                targets = targets_of(&snap.config, targets, &registry);
            }
            round(&mut targets);
            let now = Instant::now();
            let next = targets.iter().map(|t| t.next).min();
            let wait = next.map_or(IDLE, |n| n.saturating_duration_since(now).min(IDLE));
            if !signals.wait(wait) {
                break;
            }
        }
    })
}

/// One endpoint to check.
struct Target {
    cluster: String,
    address: SocketAddr,
    check: HealthCheck,
    /// `Host` of an HTTP check.
    host: String,
    /// TLS settings of an HTTP check of a TLS cluster: `Err` when they cannot be built
    /// (the check fails with that message).
    tls: Option<Result<(Arc<rustls::ClientConfig>, ServerName<'static>), String>>,
    marks: Arc<EndpointMarks>,
    counters: Arc<ClusterMarks>,
    /// Results in a row against the endpoint's current state; `None` before the first.
    streak: Option<u32>,
    next: Instant,
}

/// The endpoints of `config` to check, carrying over the state of those that `old` already
/// checked the same way.
fn targets_of(config: &Config, mut old: Vec<Target>, registry: &Registry) -> Vec<Target> {
    let now = Instant::now();
    let mut targets = Vec::new();
    for c in &config.clusters {
        let Some(check) = &c.health_check else {
            continue;
        };
        let counters: Arc<ClusterMarks> =
            registry.get(&outlier::cluster_key(&c.name), Default::default);
        let tls = tls_for(c, config, &check.kind);
        for e in &c.endpoints {
            let marks: Arc<EndpointMarks> =
                registry.get(&outlier::endpoint_key(&c.name, e.address), Default::default);
            let same =
                |t: &Target| t.cluster == c.name && t.address == e.address && t.check == *check;
            let (streak, next) = match old.iter().position(same) {
                Some(i) => {
                    let t = old.swap_remove(i);
                    (t.streak, t.next)
                }
                None => {
                    marks.set_checked(Checked::Unknown);
                    (None, now)
                }
            };
            targets.push(Target {
                cluster: c.name.clone(),
                address: e.address,
                check: check.clone(),
                host: match c.tls.as_ref().and_then(|t| t.sni.as_ref()) {
                    Some(sni) => sni.to_str().into_owned(),
                    None => e.address.to_string(),
                },
                tls: tls.as_ref().map(|r| {
                    let name = crate::cx::tls::sni_for(c, e.address);
                    r.clone().map(|config| (config, name))
                }),
                marks,
                counters: Arc::clone(&counters),
                streak,
                next,
            });
        }
    }
    targets
}

/// The client settings an HTTP check of a TLS cluster uses (the cluster's, speaking
/// HTTP/1.1); `None` for a plaintext cluster or a TCP check.
fn tls_for(
    c: &Cluster,
    config: &Config,
    kind: &HealthCheckKind,
) -> Option<Result<Arc<rustls::ClientConfig>, String>> {
    if matches!(kind, HealthCheckKind::Tcp) {
        return None;
    }
    match crate::cx::tls::client_config(c, config.mesh.as_ref()) {
        Ok(None) => None,
        Ok(Some(cfg)) => {
            let mut cfg = (*cfg).clone();
            cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
            Some(Ok(Arc::new(cfg)))
        }
        Err(e) => Some(Err(e)),
    }
}

/// Runs the checks that are due and applies their results.
fn round(targets: &mut [Target]) {
    let now = Instant::now();
    let mut due: Vec<&mut Target> = targets.iter_mut().filter(|t| t.next <= now).collect();
    for batch in due.chunks_mut(PARALLEL) {
        let results: Vec<Result<(), String>> = std::thread::scope(|s| {
            // A thread that cannot be made runs its check here instead.
            let running: Vec<_> = batch
                .iter()
                .map(|t| {
                    let thread = std::thread::Builder::new().name("ringside-check".into());
                    thread.spawn_scoped(s, || probe(t)).map_err(|_| probe(t))
                })
                .collect();
            running
                .into_iter()
                .map(|r| match r {
                    Ok(h) => h
                        .join()
                        .unwrap_or_else(|_| Err("the check panicked".into())),
                    Err(done) => done,
                })
                .collect()
        });
        for (t, result) in batch.iter_mut().zip(results) {
            apply(t, result);
            t.next = now + t.check.interval;
        }
    }
}

/// Moves an endpoint's state by one result.
fn apply(t: &mut Target, result: Result<(), String>) {
    let passed = result.is_ok();
    if let Err(why) = &result {
        t.counters.check_failures.fetch_add(1, Relaxed);
        tracing::debug!(cluster = %t.cluster, endpoint = %t.address, reason = %why, "health check failed");
    }
    let state = t.marks.checked();
    let to = if passed {
        Checked::Healthy
    } else {
        Checked::Unhealthy
    };
    let threshold = if passed {
        t.check.healthy_threshold
    } else {
        t.check.unhealthy_threshold
    };
    let streak = match t.streak {
        // The first result decides.
        None => threshold,
        Some(_) if state == to => 0,
        Some(n) => n + 1,
    };
    if state != to && streak >= threshold {
        t.marks.set_checked(to);
        t.streak = Some(0);
        if state != Checked::Unknown {
            let counter = if passed {
                &t.counters.became_healthy
            } else {
                &t.counters.became_unhealthy
            };
            counter.fetch_add(1, Relaxed);
        }
        match &result {
            Ok(()) => {
                tracing::info!(cluster = %t.cluster, endpoint = %t.address, "endpoint healthy")
            }
            Err(why) => {
                tracing::warn!(cluster = %t.cluster, endpoint = %t.address, reason = %why, "endpoint unhealthy")
            }
        }
    } else {
        t.streak = Some(streak);
    }
}

/// One check, within its timeout: `Err` says why it failed.
fn probe(t: &Target) -> Result<(), String> {
    let deadline = Instant::now() + t.check.timeout;
    let tcp = TcpStream::connect_timeout(&t.address, t.check.timeout)
        .map_err(|e| format!("connect: {e}"))?;
    let HealthCheckKind::Http { path, expected } = &t.check.kind else {
        return Ok(());
    };
    let _ = tcp.set_nodelay(true);
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: ringside-health\r\nConnection: close\r\n\r\n",
        t.host
    );
    let clock = tcp.try_clone().map_err(|e| e.to_string())?;
    let status = match &t.tls {
        None => exchange(tcp, &clock, request.as_bytes(), deadline, None),
        Some(Err(e)) => return Err(format!("tls: {e}")),
        Some(Ok((config, name))) => {
            let conn = rustls::ClientConnection::new(Arc::clone(config), name.clone())
                .map_err(|e| format!("tls: {e}"))?;
            exchange(
                rustls::StreamOwned::new(conn, tcp),
                &clock,
                request.as_bytes(),
                deadline,
                None,
            )
        }
    }?
    .status;
    if expected.contains(&status) {
        Ok(())
    } else {
        Err(format!("status {status}"))
    }
}

/// One endpoint's health as the admin endpoint shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointHealth {
    pub address: SocketAddr,
    /// Milliseconds of outlier ejection left (0: not ejected).
    pub ejected_ms: u64,
    /// The ejection multiplier as it stands (decayed while in rotation).
    pub times_ejected: u32,
    /// The active check's verdict; `None` when the cluster has no `health_check`.
    pub checked: Option<Checked>,
    /// Out of rotation by configuration (`endpoints[].down`).
    pub down: bool,
}

impl EndpointHealth {
    /// Whether the balancer picks it (outside panic mode).
    pub fn in_rotation(&self) -> bool {
        !self.down && self.ejected_ms == 0 && self.checked != Some(Checked::Unhealthy)
    }

    /// `"down"` (by configuration), else `"ejected"` (by outlier detection), else
    /// `"unhealthy"` (failing its checks), else `"healthy"`: what `/clusters` and
    /// `ringsidectl endpoints show` say.
    pub fn health(&self) -> &'static str {
        if self.down {
            "down"
        } else if self.ejected_ms > 0 {
            "ejected"
        } else if self.checked == Some(Checked::Unhealthy) {
            "unhealthy"
        } else {
            "healthy"
        }
    }
}

/// One cluster's health as the admin endpoint shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterHealth {
    pub cluster: String,
    pub ejections: u64,
    pub panic_requests: u64,
    pub check_failures: u64,
    pub became_unhealthy: u64,
    pub became_healthy: u64,
    /// In configuration order.
    pub endpoints: Vec<EndpointHealth>,
}

/// The marks of every cluster of `config`, read without creating any.
pub(crate) fn report(config: &Config, registry: &Registry) -> Vec<ClusterHealth> {
    let now = outlier::now_ms();
    config
        .clusters
        .iter()
        .map(|c| {
            let counters: Option<Arc<ClusterMarks>> = registry.find(&outlier::cluster_key(&c.name));
            let count = |f: fn(&ClusterMarks) -> &std::sync::atomic::AtomicU64| {
                counters.as_deref().map_or(0, |m| f(m).load(Relaxed))
            };
            let endpoints = c
                .endpoints
                .iter()
                .map(|e| {
                    let marks: Option<Arc<EndpointMarks>> =
                        registry.find(&outlier::endpoint_key(&c.name, e.address));
                    let marks = marks.as_deref();
                    EndpointHealth {
                        address: e.address,
                        ejected_ms: marks.map_or(0, |m| m.ejected_for(now)),
                        times_ejected: marks.map_or(0, |m| m.times_ejected(&c.outlier, now)),
                        checked: c
                            .health_check
                            .as_ref()
                            .map(|_| marks.map_or(Checked::Unknown, EndpointMarks::checked)),
                        down: e.down,
                    }
                })
                .collect();
            ClusterHealth {
                cluster: c.name.clone(),
                ejections: count(|m| &m.ejections),
                panic_requests: count(|m| &m.panic_requests),
                check_failures: count(|m| &m.check_failures),
                became_unhealthy: count(|m| &m.became_unhealthy),
                became_healthy: count(|m| &m.became_healthy),
                endpoints,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    fn config(endpoint: SocketAddr, check: &str) -> Config {
        let text = format!(
            "[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n\
             [[clusters]]\nname = \"c\"\nendpoints = [ \"{endpoint}\" ]\n[clusters.health_check]\n{check}"
        );
        ringside_config::parse(&text).unwrap()
    }

    fn target(check: &str, registry: &Registry) -> Target {
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        targets_of(&config(addr, check), Vec::new(), registry).remove(0)
    }

    #[test]
    fn thresholds_apply_in_both_directions() {
        let registry = Registry::default();
        let mut t = target(
            "tcp = true\nunhealthy_threshold = 3\nhealthy_threshold = 2\n",
            &registry,
        );
        let fail = || Err("x".to_string());
        assert_eq!(t.marks.checked(), Checked::Unknown);
        apply(&mut t, fail());
        assert_eq!(
            t.marks.checked(),
            Checked::Unhealthy,
            "the first check decides"
        );
        apply(&mut t, Ok(()));
        apply(&mut t, fail());
        apply(&mut t, Ok(()));
        assert_eq!(
            t.marks.checked(),
            Checked::Unhealthy,
            "two passes, not in a row"
        );
        apply(&mut t, Ok(()));
        assert_eq!(t.marks.checked(), Checked::Healthy);
        for _ in 0..2 {
            apply(&mut t, fail());
        }
        apply(&mut t, Ok(()));
        for _ in 0..2 {
            apply(&mut t, fail());
        }
        assert_eq!(t.marks.checked(), Checked::Healthy, "a pass broke the run");
        apply(&mut t, fail());
        assert_eq!(t.marks.checked(), Checked::Unhealthy);
        let c = &t.counters;
        assert_eq!(c.became_healthy.load(Relaxed), 1);
        assert_eq!(
            c.became_unhealthy.load(Relaxed),
            1,
            "the first verdict is no transition"
        );
        assert_eq!(c.check_failures.load(Relaxed), 7);
    }

    #[test]
    fn a_reload_keeps_the_state_of_an_unchanged_check() {
        let registry = Registry::default();
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let check = "tcp = true\n";
        let mut old = targets_of(&config(addr, check), Vec::new(), &registry);
        apply(&mut old[0], Err("x".into()));
        apply(&mut old[0], Ok(()));
        let kept = targets_of(&config(addr, check), old, &registry);
        assert_eq!(kept[0].streak, Some(1));
        assert_eq!(kept[0].marks.checked(), Checked::Unhealthy);
        let changed = targets_of(
            &config(addr, "tcp = true\ninterval_ms = 99\n"),
            kept,
            &registry,
        );
        assert_eq!(changed[0].streak, None);
        assert_eq!(
            changed[0].marks.checked(),
            Checked::Unknown,
            "a new check starts afresh"
        );
    }

    /// An origin answering one connection with `response`; returns its address and the
    /// request head it read.
    fn origin(response: &'static str) -> (SocketAddr, std::thread::JoinHandle<String>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let served = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 512];
            while !head.ends_with(b"\r\n\r\n") {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0);
                head.extend_from_slice(&buf[..n]);
            }
            s.write_all(response.as_bytes()).unwrap();
            String::from_utf8(head).unwrap()
        });
        (addr, served)
    }

    fn http_target(addr: SocketAddr, registry: &Registry) -> Target {
        let check = "http_path = \"/healthz\"\nexpected_statuses = [ 200, 204 ]\n";
        targets_of(&config(addr, check), Vec::new(), registry).remove(0)
    }

    #[test]
    fn an_http_check_sends_get_and_reads_the_status() {
        let registry = Registry::default();
        let (addr, served) = origin("HTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!(probe(&http_target(addr, &registry)), Ok(()));
        let head = served.join().unwrap();
        assert!(head.starts_with("GET /healthz HTTP/1.1\r\n"), "{head}");
        assert!(head.contains(&format!("\r\nHost: {addr}\r\n")), "{head}");
        assert!(
            head.contains("\r\nUser-Agent: ringside-health\r\n"),
            "{head}"
        );

        let (addr, _served) =
            origin("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(
            probe(&http_target(addr, &registry)),
            Err("status 503".into())
        );
        let (addr, _served) = origin("garbage\r\n\r\n");
        let r = probe(&http_target(addr, &registry));
        assert!(
            r.as_ref().is_err_and(|e| e.starts_with("invalid response")),
            "{r:?}"
        );
    }

    #[test]
    fn a_silent_endpoint_times_out() {
        let registry = Registry::default();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let check = "http_path = \"/\"\ninterval_ms = 1000\ntimeout_ms = 100\n";
        let t = targets_of(&config(addr, check), Vec::new(), &registry).remove(0);
        let started = Instant::now();
        let r = probe(&t);
        assert!(r.is_err(), "{r:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "bounded by the timeout"
        );
        drop(l);
    }
}
