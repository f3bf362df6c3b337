//! The process-level side of the engine: binds listeners, starts workers, publishes
//! configuration, and tells workers to add/remove listeners or drain. Runs on the caller's
//! (control) thread; nothing here is on the request path.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use arc_swap::ArcSwap;
use crossbeam_channel::Sender;
use ringside_config::{Config, ListenerKind, Snapshot};

use crate::cx::listen::bind_group;
use crate::cx::runtime::{self, ActiveDriver};
use crate::stage::Stacks;
use crate::worker::{self, Command, WorkerInit};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("I/O driver: {0}")]
    Driver(io::Error),
    #[error("listener {name} ({addr}): {source}")]
    Bind {
        name: String,
        addr: SocketAddr,
        source: io::Error,
    },
    #[error("worker {id}: {source}")]
    Worker { id: usize, source: io::Error },
    /// A role's stack cannot serve every configuration.
    #[error("pipeline: {0}")]
    Stack(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("listener {name} ({addr}): {source}")]
    Bind {
        name: String,
        addr: SocketAddr,
        source: io::Error,
    },
    /// A TLS context of the new configuration cannot be built.
    #[error("tls: {0}")]
    Tls(String),
}

/// What a reload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reloaded {
    /// Same content as the running configuration: nothing changed.
    Unchanged(u64),
    /// Published as this generation.
    Applied(u64),
}

struct WorkerHandle {
    thread: JoinHandle<()>,
    gauge: Arc<std::sync::atomic::AtomicU64>,
    commands: Sender<Command>,
    wake: StdUnixStream,
}

impl WorkerHandle {
    fn send(&mut self, cmd: Command) {
        if self.commands.send(cmd).is_ok() {
            let _ = self.wake.write_all(&[1]);
        }
    }
}

struct ListenerRecord {
    bind: SocketAddr,
    tcp: bool,
    bound: SocketAddr,
    /// Duplicates of the workers' sockets, `(worker, socket)`, kept so they can be handed to
    /// a new process (hot upgrade) and so a worker closing its copy never closes the socket.
    sockets: Vec<(usize, std::net::TcpListener)>,
}

/// A listening socket handed over by a previous process during a hot upgrade.
pub struct Inherited {
    pub name: String,
    pub socket: std::net::TcpListener,
}

/// A listening socket as exported for a hot upgrade.
pub struct ListenerSocket {
    pub name: String,
    pub address: SocketAddr,
    pub worker: usize,
    pub socket: std::net::TcpListener,
}

/// How to start: each role's pipeline, which generation number the first configuration
/// carries, and any sockets inherited from a previous process (used instead of binding, so
/// no queued connection is lost).
pub struct StartOptions {
    pub stacks: Stacks,
    pub generation: Option<u64>,
    pub inherited: Vec<Inherited>,
    /// Gives the memory the allocator keeps for reuse, but that the calling thread no longer
    /// uses, back to the system. Each worker calls it once a second (its housekeeping tick):
    /// after a burst, the buffers of connections that went idle leave the process's RSS
    /// instead of staying cached. The binary passes its allocator's collect (`proxy/src/main.rs`).
    pub trim: Option<fn()>,
}

impl StartOptions {
    /// A fresh start (no inherited sockets, generation 1) with these stacks.
    pub fn new(stacks: Stacks) -> StartOptions {
        StartOptions {
            stacks,
            generation: None,
            inherited: Vec::new(),
            trim: None,
        }
    }
}

struct Control {
    workers: Vec<WorkerHandle>,
    listeners: HashMap<String, ListenerRecord>,
    /// The active health checks' prober (`upstream/health.rs`), one per process, started
    /// once a configuration has a `health_check`.
    prober: Option<crate::cx::background::Background>,
    /// The JWT providers' key fetcher (`cx/jwks/`), one per process, started once a
    /// configuration has a `jwks_uri`.
    fetcher: Option<crate::cx::background::Background>,
    /// The endpoint names' resolver (`upstream/dns/`), one per process, started once a
    /// configuration names a host.
    resolver: Option<crate::cx::background::Background>,
    /// The memory ceiling's sampler (`cx/memory.rs`), started once a configuration sets one.
    sampler: Option<crate::cx::background::Background>,
    /// Re-reads certificate files when they change on disk (rotation without a reload),
    /// started once a configuration names one.
    tls_watch: Option<crate::cx::tls::Watcher>,
}

/// A running engine. Dropping it does not stop the workers: call [`ServerHandle::shutdown`].
pub struct ServerHandle {
    shared: Arc<ArcSwap<Snapshot>>,
    driver: ActiveDriver,
    worker_count: usize,
    telemetry: crate::cx::telemetry::Telemetry,
    /// State the workers share for the whole process (`cx/shared.rs`).
    registry: Arc<crate::cx::shared::Registry>,
    /// The resolver's answers: a reload fills its configuration from them.
    answers: Arc<crate::upstream::dns::Answers>,
    /// The process's memory figures (`cx/memory.rs`), as the workers see them.
    memory: Arc<crate::cx::memory::Memory>,
    control: Mutex<Control>,
    draining: std::sync::atomic::AtomicBool,
}

/// Binds every listener, starts `config.proxy.workers` pinned workers and returns once all of
/// them are accepting.
pub fn start(config: Config, stacks: Stacks) -> Result<ServerHandle, StartError> {
    start_with(config, StartOptions::new(stacks))
}

/// [`start`], taking over inherited sockets where a listener's name and address match.
pub fn start_with(config: Config, options: StartOptions) -> Result<ServerHandle, StartError> {
    options.stacks.sidecar.check().map_err(StartError::Stack)?;
    options
        .stacks
        .gateway
        .check_gateway()
        .map_err(StartError::Stack)?;
    let stacks = Arc::new(options.stacks);
    let driver = runtime::resolve(config.proxy.driver).map_err(StartError::Driver)?;
    let fallback = config.proxy.driver == ringside_config::DriverChoice::Auto;
    let workers = config.proxy.workers.max(1);
    let mut inherited: HashMap<String, Vec<std::net::TcpListener>> = HashMap::new();
    for i in options.inherited {
        inherited.entry(i.name).or_default().push(i.socket);
    }
    let mut listeners = HashMap::new();
    let mut sockets: Vec<Vec<(String, std::net::TcpListener)>> =
        (0..workers).map(|_| Vec::new()).collect();
    // A child listener binds nothing: its parent accepts its connections.
    for l in config.listeners.iter().filter(|l| l.parent.is_none()) {
        let bind_err = |source| StartError::Bind {
            name: l.name.clone(),
            addr: l.bind,
            source,
        };
        let taken = inherited.remove(&l.name).filter(|group| {
            let matches = group.iter().all(|s| s.local_addr().is_ok_and(|a| same_listener(l.bind, a)));
            if !matches {
                tracing::warn!(listener = %l.name, "inherited sockets do not match the configured address; binding anew");
            }
            matches && !group.is_empty()
        });
        let (group, bound) = match taken {
            Some(mut group) => {
                // `taken` keeps only non-empty groups.
                let bound = group
                    .first()
                    .map_or_else(|| Err(io::ErrorKind::NotFound.into()), |s| s.local_addr())
                    .map_err(bind_err)?;
                // Fewer inherited sockets than workers: add sockets to the same group.
                while group.len() < workers {
                    group.push(crate::cx::listen::bind_one(bound).map_err(bind_err)?);
                }
                tracing::info!(listener = %l.name, address = %bound, sockets = group.len(), "took over listening sockets");
                (group, bound)
            }
            None => bind_group(l.bind, workers).map_err(bind_err)?,
        };
        let mut dups = Vec::with_capacity(group.len());
        for (i, s) in group.into_iter().enumerate() {
            let w = i % workers;
            dups.push((w, s.try_clone().map_err(bind_err)?));
            if let Some(own) = sockets.get_mut(w) {
                own.push((l.name.clone(), s));
            }
        }
        let tcp = matches!(l.kind, ListenerKind::Tcp { .. });
        listeners.insert(
            l.name.clone(),
            ListenerRecord {
                bind: l.bind,
                tcp,
                bound,
                sockets: dups,
            },
        );
    }
    for (name, group) in inherited {
        tracing::warn!(listener = %name, sockets = group.len(), "inherited listener not in the configuration: closed");
    }
    let generation = options.generation.unwrap_or(1);
    let shared = Arc::new(ArcSwap::from_pointee(Snapshot { generation, config }));
    let telemetry = crate::cx::telemetry::Telemetry::new(shared.clone());
    telemetry.ensure(&shared.load().config);
    let registry = Arc::new(crate::cx::shared::Registry::default());
    let answers = Arc::new(crate::upstream::dns::Answers::default());
    let resolver = start_resolver(&shared, &answers, true);
    let memory = registry.get(crate::cx::memory::KEY, crate::cx::memory::Memory::default);
    let cpus = runtime::allowed_cpus();
    let (ready_tx, ready_rx) = crossbeam_channel::bounded::<(usize, io::Result<()>)>(workers);
    let mut handles = Vec::with_capacity(workers);
    for (id, listeners) in sockets.into_iter().enumerate() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let (control_end, worker_end) =
            StdUnixStream::pair().map_err(|source| StartError::Worker { id, source })?;
        worker_end
            .set_nonblocking(true)
            .map_err(|source| StartError::Worker { id, source })?;
        let gauge = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let init = WorkerInit {
            id,
            gauge: gauge.clone(),
            telemetry: telemetry.clone(),
            shared: shared.clone(),
            stacks: stacks.clone(),
            registry: registry.clone(),
            trim: options.trim,
            listeners,
            commands: rx,
            wake: worker_end,
        };
        let cpu = cpus.get(id % cpus.len().max(1)).copied();
        let ready = ready_tx.clone();
        let thread = std::thread::Builder::new()
            .name(format!("ringside-w{id}"))
            .spawn(move || {
                if let Some(cpu) = cpu {
                    runtime::pin_to_cpu(cpu);
                }
                let ready_ok = ready.clone();
                let run = runtime::block_on(
                    driver,
                    fallback,
                    worker::main(init, move || {
                        let _ = ready_ok.send((id, Ok(())));
                    }),
                );
                if let Err(e) = run {
                    let _ = ready.send((id, Err(e)));
                }
            })
            .map_err(|source| StartError::Worker { id, source })?;
        handles.push(WorkerHandle {
            thread,
            gauge,
            commands: tx,
            wake: control_end,
        });
    }
    drop(ready_tx);
    let prober = start_prober(&shared, &registry);
    let fetcher = start_fetcher(&shared, &registry);
    let sampler = start_sampler(&shared, &memory);
    let tls_watch = watch_tls_files(&shared, &answers);
    let handle = ServerHandle {
        shared,
        driver,
        worker_count: workers,
        draining: std::sync::atomic::AtomicBool::new(false),
        telemetry,
        registry,
        answers,
        memory,
        control: Mutex::new(Control {
            workers: handles,
            listeners,
            prober,
            fetcher,
            resolver,
            sampler,
            tls_watch,
        }),
    };
    for _ in 0..workers {
        match ready_rx.recv() {
            Ok((_, Ok(()))) => {}
            Ok((id, Err(source))) => {
                handle.begin_drain();
                handle.wait();
                return Err(StartError::Worker { id, source });
            }
            Err(_) => {
                handle.begin_drain();
                handle.wait();
                return Err(StartError::Worker {
                    id: 0,
                    source: io::Error::other("worker exited during start"),
                });
            }
        }
    }
    tracing::info!(driver = %driver, workers, "ringside started");
    Ok(handle)
}

/// Watches the certificate, key and CA files of the running configuration; when they change,
/// the configuration is validated again with the new material and published under the same
/// generation (new handshakes use the new certificates; open connections are untouched). A
/// change that does not validate (say, a certificate written without its key yet) is logged
/// and the running material keeps serving. Started only once a configuration names such a
/// file (at start, or at the reload that brings the first one).
fn watch_tls_files(
    shared: &Arc<ArcSwap<Snapshot>>,
    answers: &Arc<crate::upstream::dns::Answers>,
) -> Option<crate::cx::tls::Watcher> {
    if shared.load().config.tls_files().is_empty() {
        return None;
    }
    let answers = Arc::clone(answers);
    let files = Arc::clone(shared);
    let publish = Arc::clone(shared);
    let watcher = crate::cx::tls::spawn_watcher(
        move || files.load().config.tls_files(),
        move || {
            let current = publish.load_full();
            match ringside_config::reload_material(&current.config) {
                Ok(mut next) if next.material_hash != current.config.material_hash => {
                    let dns = answers.lock();
                    crate::upstream::dns::Answers::fill(&dns, &mut next);
                    if let Err(e) = crate::cx::tls::TlsContexts::try_build(&next) {
                        tracing::error!(error = %e, "tls: new certificate material rejected");
                        return;
                    }
                    let snap = Arc::new(Snapshot {
                        generation: current.generation,
                        config: next,
                    });
                    // Only over the snapshot it was made from: a reload in between wins
                    // (and has read the files itself).
                    let prev = publish.compare_and_swap(&current, snap);
                    if Arc::ptr_eq(&prev, &current) {
                        tracing::info!("tls: certificate files changed; new handshakes use them");
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(errors = %e, "tls: changed certificate files are invalid; keeping the running ones")
                }
            }
        },
        std::time::Duration::from_secs(1),
    );
    match watcher {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "tls: cannot start the certificate file watcher");
            None
        }
    }
}

impl ServerHandle {
    /// The address a listener is bound to (the real port when the config said `:0`).
    pub fn local_addr(&self, listener: &str) -> Option<SocketAddr> {
        self.lock().listeners.get(listener).map(|r| r.bound)
    }

    pub fn driver(&self) -> ActiveDriver {
        self.driver
    }

    pub fn workers(&self) -> usize {
        self.worker_count
    }

    /// How many values of process-wide state the workers share now, of one kind: the key
    /// prefix `"ratelimit/"` (token buckets), `"breaker/"` (circuit breakers),
    /// `"retry-budget/"`, `"health/"` (endpoint marks), or `""` for all. One per configured
    /// limit, budget or endpoint that a view in use holds.
    pub fn shared_state(&self, kind: &str) -> usize {
        self.registry.live(kind)
    }

    /// Open client connections, all workers together.
    pub fn connections(&self) -> u64 {
        self.lock()
            .workers
            .iter()
            .map(|w| w.gauge.load(std::sync::atomic::Ordering::Relaxed))
            .sum()
    }

    /// Every worker's counters, exact at the time of the call (each worker answers a scrape
    /// command with a copy; nothing on the request path is shared). Workers that do not answer
    /// within a second (exited after a drain) are left out.
    pub fn metrics(&self) -> Vec<crate::cx::metrics::WorkerReport> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let asked = {
            let mut control = self.lock();
            for w in control.workers.iter_mut() {
                w.send(Command::Scrape(tx.clone()));
            }
            control.workers.len()
        };
        drop(tx);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        let mut reports = Vec::with_capacity(asked);
        while reports.len() < asked {
            match rx.recv_deadline(deadline) {
                Ok(r) => reports.push(r),
                Err(_) => break,
            }
        }
        reports.sort_by_key(|r| r.worker);
        reports
    }

    /// Reopens every access-log file (after logrotate moved them; SIGUSR1).
    pub fn reopen_logs(&self) {
        self.telemetry.reopen();
    }

    /// Access-log lines written and dropped, spans exported and dropped.
    pub fn telemetry(&self) -> &crate::cx::telemetry::TelemetryCounters {
        &self.telemetry.counters
    }

    /// Whether a drain has begun.
    pub fn draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The generation being served.
    pub fn generation(&self) -> u64 {
        self.shared.load().generation
    }

    /// The snapshot being served.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.shared.load_full()
    }

    /// The JWT providers' JWKS fetch counters (`ringside_jwks_fetches_total`,
    /// `ringside_jwks_fetch_failures_total`), for the providers of the served snapshot.
    pub fn jwks(&self) -> Vec<crate::cx::jwks::JwksStats> {
        crate::cx::jwks::report(&self.shared.load().config, &self.registry)
    }

    /// Outlier ejections and health-check results of every cluster of the served snapshot,
    /// read from the process-wide marks (`upstream/outlier.rs`), with their counters.
    /// The memory ceiling and the last sampled resident size, in bytes (`None`: no
    /// ceiling).
    pub fn memory(&self) -> Option<crate::cx::memory::MemoryReport> {
        self.memory.figures()
    }

    pub fn health(&self) -> Vec<crate::upstream::health::ClusterHealth> {
        crate::upstream::health::report(&self.shared.load().config, &self.registry)
    }

    /// Every host name the served snapshot's endpoints name, with its addresses and lookup
    /// counters (`ringside_dns_*`).
    pub fn dns(&self) -> Vec<crate::upstream::dns::DnsStats> {
        self.answers.report(&self.shared.load().config)
    }

    /// Every `[[redis]]` of the served snapshot with its counters (global rate limits:
    /// failures, workers connected, batches answered), for the whole process.
    pub fn redis(&self) -> Vec<crate::upstream::redis::RedisHealth> {
        crate::upstream::redis::report(&self.shared.load().config, &self.registry)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes a new configuration. Listeners that appear are bound (a bind failure rejects
    /// the whole reload and changes nothing); listeners that disappear stop accepting;
    /// existing keep-alive connections see the new routes on their next request. The worker
    /// count and the driver stay as they started: the caller reports changes to them
    /// (`proxy/src/settings.rs`).
    pub fn reload(&self, config: Config) -> Result<Reloaded, ReloadError> {
        self.reload_as(config, None)
    }

    /// [`reload`](Self::reload) publishing the given generation number (a control daemon
    /// numbers generations itself) instead of the next one.
    pub fn reload_as(
        &self,
        mut config: Config,
        generation: Option<u64>,
    ) -> Result<Reloaded, ReloadError> {
        let mut control = self.lock();
        // Held until published, so that the resolver does not publish in between.
        let dns = self.answers.lock();
        crate::upstream::dns::Answers::fill(&dns, &mut config);
        let current = self.shared.load_full();
        crate::cx::tls::TlsContexts::try_build(&config).map_err(ReloadError::Tls)?;
        if current.config.material_hash != config.material_hash
            && current.config.content_hash == config.content_hash
        {
            // Same text, new certificate material (files replaced on disk): same generation.
            let generation = generation.unwrap_or(current.generation);
            self.telemetry.ensure(&config);
            self.shared.store(Arc::new(Snapshot { generation, config }));
            return Ok(Reloaded::Applied(generation));
        }
        if current.config.content_hash == config.content_hash {
            if let Some(g) = generation.filter(|g| *g != current.generation) {
                // Same content under a new number: renumber, nothing else changes.
                self.shared.store(Arc::new(Snapshot {
                    generation: g,
                    config,
                }));
                return Ok(Reloaded::Applied(g));
            }
            return Ok(Reloaded::Unchanged(current.generation));
        }
        let mut added = Vec::new();
        let mut kept = Vec::new();
        for l in config.listeners.iter().filter(|l| l.parent.is_none()) {
            let tcp = matches!(l.kind, ListenerKind::Tcp { .. });
            match control.listeners.get(&l.name) {
                Some(r) if r.bind == l.bind && r.tcp == tcp => kept.push(l.name.clone()),
                _ => {
                    let bind_err = |source| ReloadError::Bind {
                        name: l.name.clone(),
                        addr: l.bind,
                        source,
                    };
                    let (group, bound) = bind_group(l.bind, self.worker_count).map_err(bind_err)?;
                    let mut dups = Vec::with_capacity(group.len());
                    for (w, sock) in group.iter().enumerate() {
                        dups.push((w, sock.try_clone().map_err(bind_err)?));
                    }
                    added.push((
                        l.name.clone(),
                        group,
                        ListenerRecord {
                            bind: l.bind,
                            tcp,
                            bound,
                            sockets: dups,
                        },
                    ));
                }
            }
        }
        let mut listeners = HashMap::new();
        let mut removed = Vec::new();
        for (name, record) in std::mem::take(&mut control.listeners) {
            if kept.contains(&name) {
                listeners.insert(name, record);
            } else {
                removed.push(name);
            }
        }
        let generation = generation.unwrap_or(current.generation + 1);
        self.telemetry.ensure(&config);
        self.shared.store(Arc::new(Snapshot { generation, config }));
        // Each background thread looks at the new snapshot, or starts if it now has work.
        match &control.prober {
            Some(p) => p.wake(),
            None => control.prober = start_prober(&self.shared, &self.registry),
        }
        match &control.fetcher {
            Some(f) => f.wake(),
            None => control.fetcher = start_fetcher(&self.shared, &self.registry),
        }
        drop(dns);
        match &control.resolver {
            Some(r) => r.wake(),
            None => control.resolver = start_resolver(&self.shared, &self.answers, false),
        }
        match &control.sampler {
            Some(s) => s.wake(),
            None => control.sampler = start_sampler(&self.shared, &self.memory),
        }
        // A running watcher reads the file list of each snapshot itself.
        if control.tls_watch.is_none() {
            control.tls_watch = watch_tls_files(&self.shared, &self.answers);
        }
        for name in &removed {
            for w in control.workers.iter_mut() {
                w.send(Command::RemoveListener { name: name.clone() });
            }
        }
        for (name, group, record) in added {
            for (w, socket) in control.workers.iter_mut().zip(group) {
                w.send(Command::AddListener {
                    name: name.clone(),
                    socket,
                });
            }
            listeners.insert(name, record);
        }
        control.listeners = listeners;
        Ok(Reloaded::Applied(generation))
    }

    /// Duplicates of every listening socket, for handing to a new process (hot upgrade).
    pub fn listener_sockets(&self) -> io::Result<Vec<ListenerSocket>> {
        let control = self.lock();
        let mut out = Vec::new();
        for (name, record) in &control.listeners {
            for (worker, sock) in &record.sockets {
                out.push(ListenerSocket {
                    name: name.clone(),
                    address: record.bound,
                    worker: *worker,
                    socket: sock.try_clone()?,
                });
            }
        }
        Ok(out)
    }

    /// Starts a graceful drain: workers stop accepting, idle keep-alive connections are
    /// closed, in-flight requests finish (their responses say `Connection: close`), and each
    /// worker exits when its connections are done or `drain_timeout` has passed.
    pub fn begin_drain(&self) {
        self.draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let mut control = self.lock();
        // Close the control thread's copies of the listening sockets, so that once the
        // workers close theirs the port refuses new connections instead of queueing them
        // for a process that is leaving. (A hot upgrade has already handed them over.)
        for record in control.listeners.values_mut() {
            record.sockets.clear();
        }
        for w in control.workers.iter_mut() {
            w.send(Command::Drain);
        }
        if let Some(p) = &control.prober {
            p.stop();
        }
        if let Some(f) = &control.fetcher {
            f.stop();
        }
        if let Some(r) = &control.resolver {
            r.stop();
        }
        if let Some(s) = &control.sampler {
            s.stop();
        }
    }

    /// Waits for every worker (and the health prober) to exit.
    pub fn wait(&self) {
        let (workers, prober, fetcher, resolver, sampler) = {
            let mut control = self.lock();
            (
                std::mem::take(&mut control.workers),
                control.prober.take(),
                control.fetcher.take(),
                control.resolver.take(),
                control.sampler.take(),
            )
        };
        for w in workers {
            let _ = w.thread.join();
        }
        if let Some(p) = prober {
            p.join();
        }
        if let Some(f) = fetcher {
            f.join();
        }
        if let Some(r) = resolver {
            r.join();
        }
        if let Some(s) = sampler {
            s.join();
        }
    }

    /// `begin_drain` then `wait`.
    pub fn shutdown(&self) {
        self.begin_drain();
        self.wait();
    }
}

/// How long a start waits for the first answers of the endpoints' host names before the
/// workers serve (a cluster whose names have not resolved by then answers 503 until they do).
const FIRST_ANSWERS: std::time::Duration = std::time::Duration::from_secs(2);

/// Starts the resolver thread when an endpoint of the published configuration names a host
/// (an idle process keeps no thread, runtime or resolver it does not need) and, with
/// `wait` (at start), waits for its first round of answers, at most [`FIRST_ANSWERS`]. After
/// a reload, as after a reload of a running resolver, such clusters answer 503 until then.
fn start_resolver(
    shared: &Arc<ArcSwap<Snapshot>>,
    answers: &Arc<crate::upstream::dns::Answers>,
    wait: bool,
) -> Option<crate::cx::background::Background> {
    if shared.load().config.dns_hosts().is_empty() {
        return None;
    }
    let (first, first_done) = crossbeam_channel::bounded(1);
    match crate::upstream::dns::spawn(Arc::clone(shared), Arc::clone(answers), first) {
        Ok(r) => {
            if wait && first_done.recv_timeout(FIRST_ANSWERS).is_err() {
                tracing::warn!(
                    "dns: endpoint names not answered within {FIRST_ANSWERS:?}; serving, their clusters answer 503 until they resolve"
                );
            }
            Some(r)
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot start the resolver: endpoint host names will not resolve");
            None
        }
    }
}

/// Whether an inherited socket bound to `actual` can serve a listener configured with `bind`
/// (port 0 in the configuration accepts any port on the same IP).
fn same_listener(bind: SocketAddr, actual: SocketAddr) -> bool {
    bind == actual || (bind.port() == 0 && bind.ip() == actual.ip())
}

/// Starts the health prober when the published configuration has an active health check (it
/// then follows reloads, and keeps running if a later one has none).
fn start_prober(
    shared: &Arc<ArcSwap<Snapshot>>,
    registry: &Arc<crate::cx::shared::Registry>,
) -> Option<crate::cx::background::Background> {
    let config = &shared.load().config;
    if !config.clusters.iter().any(|c| c.health_check.is_some()) {
        return None;
    }
    match crate::upstream::health::spawn(Arc::clone(shared), Arc::clone(registry)) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::error!(error = %e, "cannot start the health prober: active health checks are off");
            None
        }
    }
}

/// Starts the JWKS fetcher when the published configuration has a provider with a
/// `jwks_uri` (it then follows reloads, and keeps running if a later one has none).
fn start_fetcher(
    shared: &Arc<ArcSwap<Snapshot>>,
    registry: &Arc<crate::cx::shared::Registry>,
) -> Option<crate::cx::background::Background> {
    let config = &shared.load().config;
    let remote = config
        .jwt_providers
        .iter()
        .any(|p| matches!(p.keys, ringside_config::JwksSource::Remote(_)));
    if !remote {
        return None;
    }
    match crate::cx::jwks::spawn(Arc::clone(shared), Arc::clone(registry)) {
        Ok(f) => Some(f),
        Err(e) => {
            tracing::error!(error = %e, "cannot start the JWKS fetcher: jwks_uri keys will not be fetched");
            None
        }
    }
}

/// Starts the memory ceiling's sampler when the published configuration sets a ceiling (it
/// then follows reloads, and keeps running if a later one clears the ceiling).
fn start_sampler(
    shared: &Arc<ArcSwap<Snapshot>>,
    memory: &Arc<crate::cx::memory::Memory>,
) -> Option<crate::cx::background::Background> {
    shared.load().config.proxy.memory_limit?;
    match crate::cx::memory::spawn(Arc::clone(shared), Arc::clone(memory)) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(error = %e, "cannot start the memory sampler: memory_limit_mib is not enforced");
            None
        }
    }
}
