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

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, ArcSwapOption};
use crossbeam_channel::{RecvTimeoutError, Sender};
use ringside_config::{Config, JwksSource, JwtProvider, KeySet, RemoteJwks, Snapshot};
use rustls_pki_types::ServerName;

use crate::cx::shared::Registry;

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
/// The largest JWKS response read.
const MAX_RESPONSE: usize = 1 << 20;
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
            generation: AtomicU64::new(0),
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

    /// Changes with every new key set.
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
            self.generation.fetch_add(1, Relaxed);
        }
    }
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

/// The running fetcher: [`Fetcher::wake`] after a reload, [`Fetcher::stop`] then
/// [`Fetcher::join`] at shutdown.
pub(crate) struct Fetcher {
    signal: Sender<Signal>,
    thread: JoinHandle<()>,
}

enum Signal {
    Reload,
    Stop,
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

impl Fetcher {
    pub(crate) fn spawn(
        shared: Arc<ArcSwap<Snapshot>>,
        registry: Arc<Registry>,
    ) -> io::Result<Fetcher> {
        let (signal, signals) = crossbeam_channel::bounded::<Signal>(4);
        let thread = std::thread::Builder::new()
            .name("ringside-jwks".into())
            .spawn(move || {
                let mut targets: Vec<Target> = Vec::new();
                let mut seen: Option<Arc<Snapshot>> = None;
                loop {
                    let snap = shared.load_full();
                    if !seen.as_ref().is_some_and(|s| Arc::ptr_eq(s, &snap)) {
                        targets = targets_of(&snap.config, targets, &registry);
                        seen = Some(snap);
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
                    match signals.recv_timeout(wait) {
                        Ok(Signal::Reload) | Err(RecvTimeoutError::Timeout) => {}
                        Ok(Signal::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
            })?;
        Ok(Fetcher { signal, thread })
    }

    pub(crate) fn wake(&self) {
        let _ = self.signal.try_send(Signal::Reload);
    }

    pub(crate) fn stop(&self) {
        let _ = self.signal.send(Signal::Stop);
    }

    pub(crate) fn join(self) {
        let _ = self.thread.join();
    }
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
    let got = fetch(&t.remote, t.tls.as_ref()).and_then(|body| KeySet::parse(&body, false));
    match got {
        Ok(set) => {
            t.keys.publish(set);
            t.remote.refresh
        }
        Err(e) => {
            t.keys.failures.fetch_add(1, Relaxed);
            tracing::warn!(provider = %t.name, uri = %t.remote.uri, error = %e,
                "JWKS fetch failed; the last good keys stay in use");
            t.remote.refresh.min(RETRY)
        }
    }
}

/// `GET` of the JWKS document: its body.
fn fetch(
    r: &RemoteJwks,
    tls: Option<&Result<Arc<rustls::ClientConfig>, String>>,
) -> Result<Vec<u8>, String> {
    let deadline = Instant::now() + TIMEOUT;
    let addrs = (r.host.as_str(), r.port)
        .to_socket_addrs()
        .map_err(|e| format!("resolve {}: {e}", r.host))?;
    let mut last = format!("{} has no address", r.host);
    let mut tcp = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, TIMEOUT) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = format!("connect {a}: {e}"),
        }
    }
    let tcp = tcp.ok_or(last)?;
    let authority = match (
        r.host.contains(':'),
        r.port == if r.https { 443 } else { 80 },
    ) {
        (true, true) => format!("[{}]", r.host),
        (true, false) => format!("[{}]:{}", r.host, r.port),
        (false, true) => r.host.clone(),
        (false, false) => format!("{}:{}", r.host, r.port),
    };
    // HTTP/1.0: the body is never chunked.
    let request = format!(
        "GET {} HTTP/1.0\r\nHost: {authority}\r\nAccept: application/json\r\nUser-Agent: ringside-jwks\r\n\r\n",
        r.path
    );
    let clock = tcp.try_clone().map_err(|e| e.to_string())?;
    match tls {
        None => exchange(tcp, &clock, request.as_bytes(), deadline),
        Some(Err(e)) => Err(format!("tls: {e}")),
        Some(Ok(config)) => {
            let name = ServerName::try_from(r.host.clone()).map_err(|e| format!("tls: {e}"))?;
            let conn = rustls::ClientConnection::new(Arc::clone(config), name)
                .map_err(|e| format!("tls: {e}"))?;
            exchange(
                rustls::StreamOwned::new(conn, tcp),
                &clock,
                request.as_bytes(),
                deadline,
            )
        }
    }
}

/// Writes `request`, reads the response until its body is complete, and returns the body
/// of a 200.
fn exchange(
    mut stream: impl Read + Write,
    clock: &TcpStream,
    request: &[u8],
    deadline: Instant,
) -> Result<Vec<u8>, String> {
    let left = || {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err("timed out".to_string())
        } else {
            Ok(left)
        }
    };
    clock
        .set_write_timeout(Some(left()?))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(request)
        .and_then(|()| stream.flush())
        .map_err(|e| format!("write: {e}"))?;
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let mut head: Option<(u16, Option<u64>, usize)> = None;
    loop {
        if let Some((_, Some(len), start)) = head {
            if got.len().saturating_sub(start) as u64 >= len {
                break;
            }
        }
        clock
            .set_read_timeout(Some(left()?))
            .map_err(|e| e.to_string())?;
        let n = match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // A server that closes without TLS close_notify: the body ends there.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && head.is_some() => break,
            Err(e) => return Err(format!("read: {e}")),
        };
        got.extend_from_slice(buf.get(..n).unwrap_or_default());
        if got.len() > MAX_RESPONSE {
            return Err(format!("response longer than {MAX_RESPONSE} bytes"));
        }
        if head.is_none() {
            match ringside_codec::parse_response(&got, 64 * 1024, "GET") {
                Ok(Some((h, start))) => {
                    let len = match h.body() {
                        ringside_codec::BodyKind::Length(n) => Some(n),
                        ringside_codec::BodyKind::Empty => Some(0),
                        _ => None,
                    };
                    head = Some((h.status(), len, start));
                }
                Ok(None) => {}
                Err(e) => return Err(format!("invalid response: {e}")),
            }
        }
    }
    let Some((status, len, start)) = head else {
        return Err("closed before a response".into());
    };
    if status != 200 {
        return Err(format!("status {status}"));
    }
    let mut body = got.split_off(start.min(got.len()));
    if let Some(len) = len {
        if (body.len() as u64) < len {
            return Err("response body cut short".into());
        }
        body.truncate(usize::try_from(len).unwrap_or(usize::MAX));
    }
    Ok(body)
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
