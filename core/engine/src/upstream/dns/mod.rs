//! Endpoints by DNS name: the resolver thread (`ringside-dns`), one per process, started by
//! `server.rs` like the health prober. Never a worker: a worker never resolves a name.
//!
//! The thread looks up every host a cluster's `host:port` endpoints name (`lookup.rs`:
//! hickory-resolver on a current-thread tokio runtime of its own), again when an answer's
//! TTL (clamped to `[dns] min_ttl_s..=max_ttl_s`) runs out. When an answer changes the
//! addresses, it publishes the configuration again, validated anew from its own text with
//! the answers filled in ([`ringside_config::Config::set_resolved`]), under the same
//! generation: the same lock-free `ArcSwap` path as a reload, after which each worker builds
//! its view lazily. Pools (keyed by address) and health marks (keyed by cluster and address)
//! of the addresses that stayed are kept, as through any reload that keeps an endpoint.
//!
//! A failed lookup keeps the last good addresses and is counted; it is tried again after
//! `min_ttl`, doubling up to `max_ttl`. A name that never resolved adds no endpoint: a
//! cluster left without any answers 503 (`upstream::try_endpoints`, counted per cluster).
//!
//! [`Answers`] is shared with the control thread: a reload, or certificate files published
//! again, fills the new configuration from it before publishing (under its lock, so that a
//! publish of the resolver's and a reload never undo each other). The lock is never taken on
//! the request path.

mod lookup;

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use ringside_config::{Config, Snapshot};

use crate::cx::background::Background;
use lookup::{Answer, Lookup};

/// Longest sleep between two looks at the snapshot when no answer is due sooner (a reload
/// wakes the thread at once).
const IDLE: Duration = Duration::from_secs(1);

/// The last good answer of every host in use, and its counters.
#[derive(Default)]
pub(crate) struct Answers(Mutex<HashMap<String, Host>>);

#[derive(Default)]
pub(crate) struct Host {
    /// The last good addresses, in a stable order: addresses that stay keep their place, new
    /// ones go last (so `logical` keeps its address while answers still hold it).
    addresses: Option<Vec<IpAddr>>,
    /// When to look it up again.
    due: Option<Instant>,
    /// Failed lookups in a row (the retry backs off).
    failing: u32,
    lookups: u64,
    failures: u64,
    changes: u64,
    last_error: Option<String>,
}

/// One host's state, for the admin endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsStats {
    pub host: String,
    /// The addresses in use (the last good answer); empty when it never resolved.
    pub addresses: Vec<IpAddr>,
    pub lookups: u64,
    pub failures: u64,
    /// Answers that changed the addresses.
    pub changes: u64,
    pub last_error: Option<String>,
}

impl Answers {
    pub(crate) fn lock(&self) -> MutexGuard<'_, HashMap<String, Host>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fills `config`'s `host:port` endpoints with the answers held now.
    pub(crate) fn fill(hosts: &HashMap<String, Host>, config: &mut Config) {
        config.set_resolved(&|h| hosts.get(h).and_then(|s| s.addresses.clone()));
    }

    /// Every host in use, for the admin endpoint (sorted by name).
    pub(crate) fn report(&self, config: &Config) -> Vec<DnsStats> {
        let hosts = self.lock();
        let mut out: Vec<DnsStats> = config
            .dns_hosts()
            .into_iter()
            .map(|h| {
                let s = hosts.get(h);
                DnsStats {
                    host: h.to_string(),
                    addresses: s.and_then(|s| s.addresses.clone()).unwrap_or_default(),
                    lookups: s.map_or(0, |s| s.lookups),
                    failures: s.map_or(0, |s| s.failures),
                    changes: s.map_or(0, |s| s.changes),
                    last_error: s.and_then(|s| s.last_error.clone()),
                }
            })
            .collect();
        out.sort_by(|a, b| a.host.cmp(&b.host));
        out
    }
}

/// Starts the resolver thread: [`Background::wake`] it after a reload, [`Background::stop`]
/// then [`Background::join`] it at shutdown. `first` is sent once its first round is
/// published (or there was nothing to resolve).
pub(crate) fn spawn(
    shared: Arc<ArcSwap<Snapshot>>,
    answers: Arc<Answers>,
    first: crossbeam_channel::Sender<()>,
) -> io::Result<Background> {
    Background::spawn("ringside-dns", move |signals| {
        let mut lookup: Option<Lookup> = None;
        let mut first = Some(first);
        loop {
            let snap = shared.load_full();
            let settings = &snap.config.dns;
            let hosts = snap.config.dns_hosts();
            if !hosts.is_empty() && !lookup.as_ref().is_some_and(|l| l.fits(settings)) {
                lookup = match Lookup::new(settings) {
                    Ok(l) => Some(l),
                    Err(e) => {
                        tracing::error!(error = %e, "dns: cannot start the resolver's runtime");
                        None
                    }
                };
            }
            let next = match &lookup {
                Some(l) if !hosts.is_empty() => round(l, &snap.config, &shared, &answers),
                _ => None,
            };
            if let Some(f) = first.take() {
                let _ = f.send(());
            }
            let wait = next.map_or(IDLE, |n| {
                n.saturating_duration_since(Instant::now())
                    .clamp(Duration::from_millis(10), IDLE)
            });
            if !signals.wait(wait) {
                break;
            }
        }
    })
}

/// Looks up the hosts that are due, records the answers, and publishes the configuration
/// again when an answer changed its endpoints. Returns when the next host is due.
fn round(
    lookup: &Lookup,
    config: &Config,
    shared: &ArcSwap<Snapshot>,
    answers: &Answers,
) -> Option<Instant> {
    let in_use = config.dns_hosts();
    let now = Instant::now();
    let due: Vec<String> = {
        let mut hosts = answers.lock();
        hosts.retain(|h, _| in_use.contains(&h.as_str()));
        in_use
            .iter()
            .filter(|h| hosts.get(**h).and_then(|s| s.due).is_none_or(|d| d <= now))
            .map(|h| h.to_string())
            .collect()
    };
    if !due.is_empty() {
        let results = lookup.round(due);
        let mut hosts = answers.lock();
        let (min, max) = (config.dns.min_ttl, config.dns.max_ttl);
        for (host, answer) in results {
            let s = hosts.entry(host.clone()).or_default();
            record(&host, s, answer, min, max);
        }
    }
    // Every round, not only after lookups: a publish that failed is tried again.
    let hosts = answers.lock();
    publish(shared, &hosts);
    in_use
        .iter()
        .filter_map(|h| hosts.get(*h).and_then(|s| s.due))
        .min()
}

/// Records one lookup's answer in `s`.
fn record(host: &str, s: &mut Host, answer: Answer, min: Duration, max: Duration) {
    s.lookups += 1;
    match answer {
        Answer::Found(found, until) => {
            let stable = match &s.addresses {
                Some(old) => {
                    let mut kept: Vec<IpAddr> =
                        old.iter().filter(|a| found.contains(a)).copied().collect();
                    kept.extend(found.iter().filter(|a| !old.contains(a)));
                    kept
                }
                None => found,
            };
            if s.addresses.as_ref() != Some(&stable) {
                s.changes += 1;
                tracing::info!(host, addresses = ?stable, "dns: answer changed");
            }
            s.addresses = Some(stable);
            // Ten milliseconds past the TTL, so the resolver's own cache has let it go.
            s.due = Some(until + Duration::from_millis(10));
            s.failing = 0;
            s.last_error = None;
        }
        Answer::Failed(e) => {
            s.failures += 1;
            s.failing = s.failing.saturating_add(1);
            let backoff = min
                .saturating_mul(1u32 << s.failing.saturating_sub(1).min(16))
                .min(max);
            s.due = Some(Instant::now() + backoff);
            match &s.addresses {
                Some(kept) => {
                    tracing::warn!(host, error = %e, addresses = ?kept, "dns: lookup failed; keeping the last good addresses")
                }
                None => {
                    tracing::warn!(host, error = %e, "dns: lookup failed and the name never resolved: its clusters answer 503 until it does")
                }
            }
            s.last_error = Some(e);
        }
    }
}

/// Publishes the served configuration again with `hosts`' answers, under the same
/// generation, when they change its endpoints. The configuration is validated again from its
/// own text (it is not `Clone`); if that fails (certificate files being replaced), the next
/// round tries again.
fn publish(shared: &ArcSwap<Snapshot>, hosts: &HashMap<String, Host>) {
    let current = shared.load_full();
    let answer = |h: &str| hosts.get(h).and_then(|s| s.addresses.clone());
    if !current.config.resolution_differs(&answer) {
        return;
    }
    match ringside_config::reload_material(&current.config) {
        Ok(mut next) => {
            next.set_resolved(&answer);
            shared.store(Arc::new(Snapshot {
                generation: current.generation,
                config: next,
            }));
            tracing::info!(
                generation = current.generation,
                "dns: endpoints changed; published"
            );
        }
        Err(e) => {
            tracing::error!(errors = %e, "dns: the running configuration no longer validates (files being replaced?); endpoints not updated yet");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn answers_keep_their_order_and_failures_keep_the_last_good_one() {
        let (min, max) = (Duration::from_secs(1), Duration::from_secs(5));
        let mut h = Host::default();
        let later = Instant::now() + Duration::from_secs(3);
        record(
            "a",
            &mut h,
            Answer::Found(vec![ip("10.0.0.1"), ip("10.0.0.2")], later),
            min,
            max,
        );
        assert_eq!(h.changes, 1);
        // The same addresses in another order: no change, the old order stays.
        record(
            "a",
            &mut h,
            Answer::Found(vec![ip("10.0.0.2"), ip("10.0.0.1")], later),
            min,
            max,
        );
        assert_eq!(h.changes, 1);
        assert_eq!(h.addresses, Some(vec![ip("10.0.0.1"), ip("10.0.0.2")]));
        // One leaves, one comes: the one that stays keeps its place (first, for `logical`).
        record(
            "a",
            &mut h,
            Answer::Found(vec![ip("10.0.0.3"), ip("10.0.0.1")], later),
            min,
            max,
        );
        assert_eq!(h.addresses, Some(vec![ip("10.0.0.1"), ip("10.0.0.3")]));
        assert_eq!(h.changes, 2);
        // Failures keep the addresses and back off from min to max.
        let mut waits = Vec::new();
        for _ in 0..5 {
            let before = Instant::now();
            record("a", &mut h, Answer::Failed("timed out".into()), min, max);
            waits.push(
                h.due
                    .unwrap()
                    .saturating_duration_since(before)
                    .as_secs_f64()
                    .round() as u64,
            );
        }
        assert_eq!(waits, [1, 2, 4, 5, 5]);
        assert_eq!(h.addresses, Some(vec![ip("10.0.0.1"), ip("10.0.0.3")]));
        assert_eq!((h.lookups, h.failures), (8, 5));
        assert_eq!(h.last_error.as_deref(), Some("timed out"));
    }
}
