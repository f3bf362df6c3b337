//! JWT providers' keys for the whole process: one [`ProviderKeys`] per provider, and the one
//! fetcher thread that fills those whose keys are at a `jwks_uri`.
//!
//! The fetcher runs beside the workers with blocking std I/O (never on a worker: a worker
//! never blocks), like the health prober: `server.rs` starts it with the process, wakes it
//! on a reload (it follows the published snapshot) and stops it with the drain. It fetches
//! each remote JWKS at start, every `jwks_refresh_s`, and when a worker asks: a token naming
//! a `kid` the keys lack makes the worker call [`ProviderKeys::ask_refetch`], which sets a
//! flag (at most once per [`REFETCH_EVERY`] per provider) and returns at once; the fetcher
//! looks at the flags every [`POLL`]. A failed fetch keeps the last good keys (and is retried
//! within [`RETRY`]); fetches and failures are counted per provider ([`report`]).
//!
//! Workers read a provider's keys through an `ArcSwapOption` (no lock per request). Each
//! `ProviderKeys` lives in the `Registry` under the provider's name and fingerprint, so a
//! reload that changes the provider starts with fresh state, and one that keeps it keeps the
//! keys. A new key set bumps [`ProviderKeys::generation`], which invalidates the workers'
//! cached verifications.

use std::io;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, ArcSwapOption};
use ringside_config::{Config, JwksSource, JwtProvider, KeySet, RemoteJwks, Snapshot};

use crate::cx::background::{Background, Seen};
use crate::cx::shared::Registry;

mod http;

/// At most one refetch asked by the workers per provider in this time.
pub(crate) const REFETCH_EVERY: Duration = Duration::from_secs(10);
/// How often the fetcher looks for refetches asked by the workers.
const POLL: Duration = Duration::from_millis(100);
/// A failed fetch is tried again after this (or `jwks_refresh_s`, if shorter).
const RETRY: Duration = Duration::from_secs(5);
/// Longest wait when no provider fetches anything.
const IDLE: Duration = Duration::from_secs(1);
/// One fetch (connect, TLS, request, response) takes at most this.
const TIMEOUT: Duration = Duration::from_secs(5);
const NEVER: u64 = u64::MAX;

/// One provider's keys and counters, shared by the workers and the fetcher.
pub(crate) struct ProviderKeys {
    keys: ArcSwapOption<KeySet>,
    generation: AtomicU64,
    refetch: AtomicBool,
    /// When a worker last asked for a refetch (milliseconds of [`clock`]).
    asked: AtomicU64,
    fetches: AtomicU64,
    failures: AtomicU64,
}

impl ProviderKeys {
    fn new(keys: Option<Arc<KeySet>>) -> ProviderKeys {
        ProviderKeys {
            keys: ArcSwapOption::new(keys),
            generation: AtomicU64::new(next_generation()),
            refetch: AtomicBool::new(false),
            asked: AtomicU64::new(NEVER),
            fetches: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    /// The provider's keys: `None` before the first fetch succeeded.
    pub(crate) fn current(&self) -> arc_swap::Guard<Option<Arc<KeySet>>> {
        self.keys.load()
    }

    /// Changes with every new key set (unique in the process).
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Relaxed)
    }

    /// Asks the fetcher for a refetch (a token named a `kid` the keys lack); never waits.
    /// At most once per [`REFETCH_EVERY`].
    pub(crate) fn ask_refetch(&self) {
        let now = clock();
        let last = self.asked.load(Relaxed);
        let due = last == NEVER || now.saturating_sub(last) >= REFETCH_EVERY.as_millis() as u64;
        if due
            && self
                .asked
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_ok()
        {
            self.refetch.store(true, Relaxed);
        }
    }

    fn publish(&self, set: KeySet) {
        if self.keys.load().as_deref() != Some(&set) {
            self.keys.store(Some(Arc::new(set)));
            self.generation.store(next_generation(), Relaxed);
        }
    }
}

/// A number no key set of the process had before: a cached verification names the
/// generation of the keys it was made with, whichever provider (old or new) they belong to.
fn next_generation() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Relaxed)
}

/// Milliseconds since the first call (a monotonic clock all threads share).
fn clock() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// The registry key of a provider's state.
fn key(p: &JwtProvider) -> String {
    format!("jwks/{}/{:016x}", p.name, p.fingerprint)
}

/// The shared keys of provider `p` (made on first use: a provider with keys in the
/// configuration has them from the start).
pub(crate) fn keys_for(p: &JwtProvider, registry: &Registry) -> Arc<ProviderKeys> {
    registry.get(&key(p), || {
        ProviderKeys::new(match &p.keys {
            JwksSource::Static(set) => Some(Arc::clone(set)),
            JwksSource::Remote(_) => None,
        })
    })
}

/// One provider whose keys are fetched.
struct Target {
    name: String,
    remote: RemoteJwks,
    keys: Arc<ProviderKeys>,
    /// The client settings of an `https://` URI (`Err`: why they cannot be built).
    tls: Option<Result<Arc<rustls::ClientConfig>, String>>,
    next: Instant,
}

/// Starts the fetcher thread (`ringside-jwks`): [`Background::wake`] it after a reload,
/// [`Background::stop`] then [`Background::join`] it at shutdown.
pub(crate) fn spawn(
    shared: Arc<ArcSwap<Snapshot>>,
    registry: Arc<Registry>,
) -> io::Result<Background> {
    Background::spawn("ringside-jwks", move |signals| {
        let mut targets: Vec<Target> = Vec::new();
        let mut seen = Seen::default();
        loop {
            if let Some(snap) = seen.changed(&shared) {
                targets = targets_of(&snap.config, targets, &registry);
            }
            for t in &mut targets {
                let asked = t.keys.refetch.swap(false, Relaxed);
                if asked || t.next <= Instant::now() {
                    t.next = Instant::now() + fetch_into(t);
                }
            }
            let wait = match targets.iter().map(|t| t.next).min() {
                None => IDLE,
                Some(n) => n.saturating_duration_since(Instant::now()).min(POLL),
            };
            if !signals.wait(wait) {
                break;
            }
        }
    })
}

/// The remote providers of `config`, keeping the schedule of those `old` already had.
fn targets_of(config: &Config, mut old: Vec<Target>, registry: &Registry) -> Vec<Target> {
    let mut targets = Vec::new();
    for p in &config.jwt_providers {
        let JwksSource::Remote(remote) = &p.keys else {
            continue;
        };
        let keys = keys_for(p, registry);
        let next = match old.iter().position(|t| Arc::ptr_eq(&t.keys, &keys)) {
            Some(i) => old.swap_remove(i).next,
            None => Instant::now(),
        };
        let tls = remote
            .https
            .then(|| crate::cx::tls::jwks_client(Arc::clone(&remote.roots)));
        targets.push(Target {
            name: p.name.clone(),
            remote: remote.clone(),
            keys,
            tls,
            next,
        });
    }
    targets
}

/// Fetches one provider's keys and publishes them; how long until the next fetch.
fn fetch_into(t: &Target) -> Duration {
    t.keys.fetches.fetch_add(1, Relaxed);
    let got = http::fetch(&t.remote, t.tls.as_ref(), TIMEOUT)
        .and_then(|body| KeySet::parse(&body, false));
    match got {
        Ok(set) => {
            t.keys.publish(set);
            t.remote.refresh
        }
        Err(e) => {
            t.keys.failures.fetch_add(1, Relaxed);
            // A credential in the URI's query (`?access_token=...`) is not logged.
            let uri = ringside_config::redact::redact_query(&t.remote.uri);
            tracing::warn!(provider = %t.name, uri = %uri, error = %e,
                "JWKS fetch failed; the last good keys stay in use");
            t.remote.refresh.min(RETRY)
        }
    }
}

/// One provider's fetch counters, for the metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksStats {
    pub provider: String,
    pub fetches: u64,
    pub failures: u64,
    /// Whether the provider has keys to verify with.
    pub has_keys: bool,
}

/// The fetch counters of every provider of `config` that has shared state.
pub(crate) fn report(config: &Config, registry: &Registry) -> Vec<JwksStats> {
    config
        .jwt_providers
        .iter()
        .filter_map(|p| {
            let k = registry.find::<ProviderKeys>(&key(p))?;
            Some(JwksStats {
                provider: p.name.clone(),
                fetches: k.fetches.load(Relaxed),
                failures: k.failures.load(Relaxed),
                has_keys: k.current().is_some(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refetches_are_rate_limited() {
        let k = ProviderKeys::new(None);
        k.ask_refetch();
        assert!(k.refetch.swap(false, Relaxed));
        k.ask_refetch();
        assert!(
            !k.refetch.load(Relaxed),
            "a second ask within 10 s is dropped"
        );
    }
}
