//! This proxy's own control socket: `status`, `health`, `get_config`, `log_level`, `drain`
//! and `upgrade` for ringsidectl, served
//! on a thread of its own (never a worker). The socket is created with mode 0600 and every
//! peer's uid is checked (root or our own); the first exchange is the version handshake and
//! every request gets exactly one reply (docs/control-protocol.md).

use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Instant;

use ringside_engine::ServerHandle;
use ringside_wire::{
    check_peer, server_handshake, Conn, Frame, ListenerStatus, ProxyStatus, Reply, Request, Traffic,
};

use crate::cli::Event;

/// What the control thread knows about the process.
pub struct Context {
    pub handle: Arc<ServerHandle>,
    pub events: Sender<Event>,
    pub started: Instant,
    pub node_id: Option<String>,
    /// `--node-label` flags, laid over the served configuration's `proxy.labels`.
    pub node_labels: ringside_wire::Labels,
    /// Whether the proxy was started with a ctld socket.
    pub uses_ctld: bool,
    /// Whether the session with ctld is up.
    pub ctld_connected: Arc<AtomicBool>,
    pub control_path: PathBuf,
    /// Outcomes of configuration reloads (SIGHUP and ctld pushes), for the admin endpoint.
    pub reloads: Arc<ReloadCounts>,
    /// The run-time log filter; `None` when logging could not be set up with one.
    pub log: Option<Arc<crate::admin::LogLevel>>,
    /// What the command line sets over the configuration.
    pub flags: crate::settings::Overrides,
    /// The process settings this process started with (they change only by a restart).
    pub settings: crate::settings::ProcessSettings,
}

/// How a configuration reload ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadResult {
    /// Applied, or identical to the running configuration.
    Ok,
    /// The text did not parse or validate; the running configuration stays.
    Invalid,
    /// Valid, but the engine could not apply it (a listener could not be bound).
    Failed,
}

impl ReloadResult {
    pub const ALL: [ReloadResult; 3] = [
        ReloadResult::Ok,
        ReloadResult::Invalid,
        ReloadResult::Failed,
    ];

    /// The `result` label of `ringside_config_reload_total`.
    pub fn label(self) -> &'static str {
        match self {
            ReloadResult::Ok => "ok",
            ReloadResult::Invalid => "invalid",
            ReloadResult::Failed => "failed",
        }
    }
}

/// Reload outcomes since the process started. Touched once per reload by the control thread
/// or the ctld client, read by the admin endpoint: never on the request path.
#[derive(Debug, Default)]
pub struct ReloadCounts {
    ok: AtomicU64,
    invalid: AtomicU64,
    failed: AtomicU64,
}

impl ReloadCounts {
    fn slot(&self, result: ReloadResult) -> &AtomicU64 {
        match result {
            ReloadResult::Ok => &self.ok,
            ReloadResult::Invalid => &self.invalid,
            ReloadResult::Failed => &self.failed,
        }
    }

    pub fn record(&self, result: ReloadResult) {
        self.slot(result).fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self, result: ReloadResult) -> u64 {
        self.slot(result).load(Ordering::Relaxed)
    }
}

impl Context {
    /// The keys of `config` that would wait for a restart.
    pub fn pending_restart(&self, config: &ringside_config::Config) -> Vec<String> {
        self.settings.pending(&self.flags, config)
    }

    /// Logs the keys of an applied configuration that wait for a restart, if any.
    pub fn log_pending_restart(keys: &[String]) {
        if !keys.is_empty() {
            tracing::warn!(
                keys = %keys.join(", "),
                "applied, except these keys: they take effect at the next restart"
            );
        }
    }

    /// Every cluster's endpoint health, for `ringsidectl endpoints show`.
    pub fn health(&self) -> Vec<ringside_wire::ClusterHealth> {
        let wire = |c: ringside_engine::ClusterHealth| ringside_wire::ClusterHealth {
            name: c.cluster,
            ejections: c.ejections,
            panic_requests: c.panic_requests,
            endpoints: c
                .endpoints
                .iter()
                .map(|e| ringside_wire::EndpointHealth {
                    address: e.address.to_string(),
                    health: e.health().into(),
                    ejected_ms: e.ejected_ms,
                    times_ejected: e.times_ejected,
                    check: e.checked.map(|c| c.name().into()),
                })
                .collect(),
        };
        self.handle.health().into_iter().map(wire).collect()
    }

    /// The running configuration's text, secrets included (this socket is the operator's:
    /// mode 0600, peer uid checked); `ringsidectl get config` redacts it unless
    /// `--show-secrets`. Only the running generation is kept here.
    pub fn config(&self, generation: Option<u64>) -> Reply {
        let snap = self.handle.snapshot();
        match generation {
            Some(g) if g != snap.generation => Reply::error(format!(
                "this process keeps only the generation it serves ({}), not {g}",
                snap.generation
            )),
            _ => Reply::Config {
                node: self.node_id.clone().unwrap_or_default(),
                generation: snap.generation,
                config: snap.config.source.clone(),
            },
        }
    }

    /// `ringsidectl log-level [LEVEL]`: the filter, or a new one (like `POST /log-level`).
    pub fn log_level(&self, level: Option<&str>) -> Reply {
        let Some(log) = &self.log else {
            return Reply::error("the log level cannot be changed in this process");
        };
        match level {
            None => Reply::LogLevel {
                level: log.current(),
            },
            Some(spec) => match log.set(spec) {
                Ok(now) => {
                    tracing::info!(level = %now, "log level changed over the control socket");
                    Reply::LogLevel { level: now }
                }
                Err(e) => Reply::error(e),
            },
        }
    }

    /// This node's labels: the served configuration's, with the flags laid over them.
    pub fn labels(&self) -> ringside_wire::Labels {
        let mut labels = self.handle.snapshot().config.proxy.labels.clone();
        labels.extend(self.node_labels.clone());
        labels
    }

    /// Requests answered and 5xx answers since start, for ctld's rollouts.
    fn traffic(&self) -> Traffic {
        let mut t = Traffic::default();
        for r in self.handle.metrics() {
            for c in &r.requests {
                t.requests += c.count;
                if c.status >= 500 {
                    t.responses_5xx += c.count;
                }
            }
            for e in r.clusters.iter().flat_map(|c| &c.endpoints) {
                for (status, n) in &e.responses {
                    t.upstream_requests += n;
                    if *status >= 500 {
                        t.upstream_5xx += n;
                    }
                }
                t.upstream_requests += e.errors;
            }
        }
        t
    }

    pub fn status(&self) -> ProxyStatus {
        let snap = self.handle.snapshot();
        let role = match snap.config.proxy.role {
            ringside_config::Role::Sidecar => "sidecar",
            ringside_config::Role::Gateway => "gateway",
        };
        let listeners = snap
            .config
            .listeners
            .iter()
            .map(|l| ListenerStatus {
                name: l.name.clone(),
                address: self
                    .handle
                    .local_addr(l.parent.as_deref().unwrap_or(&l.name))
                    .map_or_else(|| l.bind.to_string(), |a| a.to_string()),
                protocol: match l.kind {
                    ringside_config::ListenerKind::Http(_) => "http".into(),
                    ringside_config::ListenerKind::Tcp { .. } => "tcp".into(),
                },
            })
            .collect();
        ProxyStatus {
            node_id: self.node_id.clone(),
            labels: self.labels(),
            traffic: Some(self.traffic()),
            role: role.into(),
            generation: snap.generation,
            config_hash: format!("{:016x}", snap.config.content_hash),
            driver: self.handle.driver().to_string(),
            workers: self.handle.workers(),
            listeners,
            connections: self.handle.connections(),
            draining: self.handle.draining(),
            ctld_connected: self.ctld_connected.load(Ordering::Relaxed),
            uptime_s: self.started.elapsed().as_secs(),
            pid: std::process::id(),
        }
    }
}

/// Serves the control socket until the process exits.
pub fn serve(listener: UnixListener, ctx: Arc<Context>) {
    let spawned = std::thread::Builder::new()
        .name("ringside-control".into())
        .spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(stream) => {
                        let ctx = ctx.clone();
                        let _ = std::thread::Builder::new()
                            .name("ringside-control-conn".into())
                            .spawn(move || connection(stream, &ctx));
                    }
                    Err(e) => tracing::warn!(error = %e, "control socket accept failed"),
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the control thread");
    }
}

fn connection(stream: UnixStream, ctx: &Context) {
    if let Err(e) = check_peer(&stream) {
        tracing::warn!(error = %e, "control connection refused");
        return;
    }
    let mut conn = Conn::new(stream);
    if let Err(e) = server_handshake(
        &mut conn,
        &format!("ringside {}", env!("CARGO_PKG_VERSION")),
    ) {
        tracing::debug!(error = %e, "control handshake failed");
        return;
    }
    loop {
        let (id, request) = match conn.recv() {
            Ok(Frame::Request { id, request }) => (id, request),
            Ok(Frame::Reply { .. }) => continue,
            Err(_) => return,
        };
        let reply = match request {
            Request::Status => Reply::ProxyStatus(ctx.status()),
            Request::Health => Reply::Health {
                clusters: ctx.health(),
            },
            Request::GetConfig { generation, .. } => ctx.config(generation),
            Request::LogLevel { level } => ctx.log_level(level.as_deref()),
            Request::Drain => {
                // The reply goes first: a drain with nothing in flight can end the process
                // before a reply sent after it would be written.
                let sent = conn.reply(id, Reply::Ok);
                let _ = ctx.events.send(Event::DrainRequested);
                if sent.is_err() {
                    return;
                }
                continue;
            }
            Request::Upgrade { binary, args } => {
                let (reply, drain) = crate::upgrade::run(ctx, &binary, args);
                let sent = conn.reply(id, reply);
                if drain {
                    let _ = ctx.events.send(Event::DrainRequested);
                }
                if sent.is_err() {
                    return;
                }
                continue;
            }
            other => Reply::error(format!("{} is not served here", other.name())),
        };
        if conn.reply(id, reply).is_err() {
            return;
        }
    }
}
