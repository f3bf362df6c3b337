//! The connection to ringside-ctld: say hello with the node id, role and served generation,
//! then serve every configuration the daemon pushes down this connection. A pushed
//! configuration is validated here as well; an invalid one is refused with every error and
//! the running one stays. A push is applied whole but for the process settings
//! (`settings.rs`): its `ack` names those that wait for a restart. When the daemon is gone
//! the proxy keeps serving its last good configuration and reconnects with backoff (100 ms
//! doubling to 5 s).
//!
//! A proxy started with `--ctld` alone ([`spawn_boot`]) says hello with role `unconfigured`
//! and generation 0, and hands the first valid push to the main thread to start on
//! (`bootstrap.rs`); it acknowledges it once the process serves, then carries on as above.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Sender, SyncSender};
use std::sync::Arc;
use std::time::Duration;

use ringside_config::Config;
use ringside_engine::Reloaded;
use ringside_wire::{
    client_handshake_at, is_version_refusal, Conn, Frame, Labels, Peer, Reply, Request,
    MIN_PROTOCOL_VERSION, PROTOCOL_VERSION,
};

use crate::cli::Event;
use crate::control::{Context, ReloadResult};

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// ctld's first configuration, for the main thread to start on. It answers on `started`:
/// the running process, or why it could not start.
pub struct FirstConfig {
    pub config: Config,
    pub generation: u64,
    pub started: SyncSender<Result<Arc<Context>, String>>,
}

/// Starts the client thread of a serving process.
pub fn spawn(path: PathBuf, node_id: String, ctx: Arc<Context>, from_ctld: Arc<AtomicBool>) {
    let spawned = std::thread::Builder::new()
        .name("ringside-ctld".into())
        .spawn(move || {
            let mut version = PROTOCOL_VERSION;
            run(&path, &node_id, &ctx, &from_ctld, &mut version)
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the ctld client");
    }
}

/// Starts the client thread of a process that waits for its first configuration: it sends
/// the main thread [`Event::FirstConfig`] and [`Event::CtldState`].
pub fn spawn_boot(path: PathBuf, node_id: String, labels: Labels, events: Sender<Event>) {
    let spawned = std::thread::Builder::new()
        .name("ringside-ctld".into())
        .spawn(move || {
            let mut version = PROTOCOL_VERSION;
            let mut backoff = BACKOFF_MIN;
            let ctx = loop {
                match boot(&path, &node_id, &labels, &events, &mut version) {
                    Ok(Some(ctx)) => break ctx,
                    Ok(None) => backoff = BACKOFF_MIN,
                    Err(e) => {
                        tracing::debug!(socket = %path.display(), error = %e, "ctld unavailable");
                        if events
                            .send(Event::CtldState(format!("unavailable: {e}")))
                            .is_err()
                        {
                            return;
                        }
                    }
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(BACKOFF_MAX);
            };
            run(&path, &node_id, &ctx, &AtomicBool::new(true), &mut version);
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the ctld client");
    }
}

fn run(path: &Path, node_id: &str, ctx: &Context, from_ctld: &AtomicBool, version: &mut u32) {
    let mut backoff = BACKOFF_MIN;
    loop {
        if ctx.handle.draining() {
            return;
        }
        match session(path, node_id, ctx, from_ctld, version) {
            Ok(()) => backoff = BACKOFF_MIN,
            Err(e) => tracing::debug!(socket = %path.display(), error = %e, "ctld unavailable"),
        }
        ctx.ctld_connected.store(false, Ordering::Relaxed);
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Connects and says hello, offering `version`; a ctld that speaks only an older protocol
/// refuses it and closes, and is greeted again with the oldest (kept for later connections).
fn hello(path: &Path, peer: Peer, version: &mut u32) -> Result<Conn, String> {
    loop {
        let mut conn = Conn::connect(path).map_err(|e| e.to_string())?;
        match client_handshake_at(&mut conn, peer.clone(), *version) {
            Ok(_) => return Ok(conn),
            Err(e) if is_version_refusal(&e) && *version > MIN_PROTOCOL_VERSION => {
                tracing::info!(error = %e, "ctld speaks an older protocol; saying hello with version {MIN_PROTOCOL_VERSION}");
                *version = MIN_PROTOCOL_VERSION;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// One connection of a process without configuration. `Ok(Some)`: it started on a push
/// and served this connection until it closed; `Ok(None)`: the connection closed first.
fn boot(
    path: &Path,
    node_id: &str,
    labels: &Labels,
    events: &Sender<Event>,
    version: &mut u32,
) -> Result<Option<Arc<Context>>, String> {
    let peer = Peer::Proxy {
        node_id: node_id.into(),
        role: "unconfigured".into(),
        generation: 0,
        labels: labels.clone(),
    };
    let mut conn = hello(path, peer, version)?;
    tracing::info!(socket = %path.display(), node = node_id, "connected to ctld; waiting for this node's configuration");
    let state = "connected; no configuration for this node yet".to_owned();
    if events.send(Event::CtldState(state)).is_err() {
        return Ok(None);
    }
    loop {
        let (id, request) = match conn.recv() {
            Ok(Frame::Request { id, request }) => (id, request),
            Ok(Frame::Reply { .. }) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "lost the connection to ctld before any configuration");
                let _ = events.send(Event::CtldState(format!("connection lost: {e}")));
                return Ok(None);
            }
        };
        let reply = match request {
            Request::PushConfig { generation, config } => match parse(generation, &config) {
                Err(reply) => *reply,
                Ok(config) => {
                    let (tx, rx) = std::sync::mpsc::sync_channel(1);
                    let first = FirstConfig {
                        config,
                        generation,
                        started: tx,
                    };
                    if events.send(Event::FirstConfig(Box::new(first))).is_err() {
                        return Ok(None);
                    }
                    match rx.recv() {
                        Ok(Ok(ctx)) => {
                            let pending = ctx.pending_restart(&ctx.handle.snapshot().config);
                            Context::log_pending_restart(&pending);
                            ctx.ctld_connected.store(true, Ordering::Relaxed);
                            conn.reply(id, ack(&conn, generation, pending))
                                .map_err(|e| e.to_string())?;
                            serve(&mut conn, &ctx, &AtomicBool::new(true));
                            return Ok(Some(ctx));
                        }
                        Ok(Err(e)) => {
                            Reply::error(format!("generation {generation} not applied: {e}"))
                        }
                        Err(_) => return Ok(None),
                    }
                }
            },
            Request::Status => Reply::error("no configuration yet: waiting for the first push"),
            other => Reply::error(format!("{} is not served here", other.name())),
        };
        conn.reply(id, reply).map_err(|e| e.to_string())?;
    }
}

/// One connection's life; returns when the daemon goes away.
fn session(
    path: &Path,
    node_id: &str,
    ctx: &Context,
    from_ctld: &AtomicBool,
    version: &mut u32,
) -> Result<(), String> {
    let snap = ctx.handle.snapshot();
    // Generation 0 says "not from ctld" (a file or the embedded default): the daemon then
    // pushes this node's configuration whatever its number.
    let generation = if from_ctld.load(Ordering::Relaxed) {
        snap.generation
    } else {
        0
    };
    let role = match snap.config.proxy.role {
        ringside_config::Role::Sidecar => "sidecar",
        ringside_config::Role::Gateway => "gateway",
    };
    let peer = Peer::Proxy {
        node_id: node_id.into(),
        role: role.into(),
        generation,
        labels: ctx.labels(),
    };
    let mut conn = hello(path, peer, version)?;
    ctx.ctld_connected.store(true, Ordering::Relaxed);
    tracing::info!(socket = %path.display(), node = node_id, "connected to ctld");
    serve(&mut conn, ctx, from_ctld);
    Ok(())
}

/// Answers ctld's requests on `conn` until it closes.
fn serve(conn: &mut Conn, ctx: &Context, from_ctld: &AtomicBool) {
    loop {
        let (id, request) = match conn.recv() {
            Ok(Frame::Request { id, request }) => (id, request),
            Ok(Frame::Reply { .. }) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "lost the connection to ctld; serving the last good configuration");
                return;
            }
        };
        let reply = match request {
            Request::PushConfig { generation, config } => {
                push(conn, ctx, generation, &config, from_ctld)
            }
            Request::Status => Reply::ProxyStatus(ctx.status()),
            other => Reply::error(format!("{} is not served here", other.name())),
        };
        if conn.reply(id, reply).is_err() {
            return;
        }
    }
}

/// The pushed text as a configuration, or the `error` reply that refuses it.
fn parse(generation: u64, text: &str) -> Result<Config, Box<Reply>> {
    ringside_config::parse(text).map_err(|errors| {
        tracing::error!(
            generation,
            "ctld pushed an invalid configuration; keeping the running one"
        );
        Box::new(Reply::Error {
            message: format!("generation {generation} is invalid"),
            errors: errors.0.iter().map(ToString::to_string).collect(),
        })
    })
}

/// The `ack` of `generation`; the keys waiting for a restart only for a peer that knows them.
fn ack(conn: &Conn, generation: u64, pending_restart: Vec<String>) -> Reply {
    if conn.version() < 2 {
        return Reply::ack(generation);
    }
    Reply::Ack {
        generation,
        pending_restart,
    }
}

fn push(conn: &Conn, ctx: &Context, generation: u64, text: &str, from_ctld: &AtomicBool) -> Reply {
    let config = match parse(generation, text) {
        Ok(c) => c,
        Err(reply) => {
            ctx.reloads.record(ReloadResult::Invalid);
            return *reply;
        }
    };
    let pending = ctx.pending_restart(&config);
    match ctx.handle.reload_as(config, Some(generation)) {
        Ok(r) => {
            ctx.reloads.record(ReloadResult::Ok);
            from_ctld.store(true, Ordering::Relaxed);
            match r {
                Reloaded::Applied(g) => {
                    tracing::info!(generation = g, "configuration from ctld applied")
                }
                Reloaded::Unchanged(g) => {
                    tracing::debug!(generation = g, "configuration from ctld unchanged")
                }
            }
            Context::log_pending_restart(&pending);
            ack(conn, generation, pending)
        }
        Err(e) => {
            ctx.reloads.record(ReloadResult::Failed);
            Reply::error(format!("generation {generation} not applied: {e}"))
        }
    }
}
