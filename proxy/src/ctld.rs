//! The connection to ringside-ctld: say hello with the node id, role and served generation,
//! then serve every configuration the daemon pushes down this connection. A pushed
//! configuration is validated here as well; an invalid one is refused with every error and
//! the running one stays. When the daemon is gone the proxy keeps serving its last good
//! configuration and reconnects with backoff (100 ms doubling to 5 s).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ringside_engine::Reloaded;
use ringside_wire::{client_handshake, Conn, Frame, Peer, Reply, Request};

use crate::control::{Context, ReloadResult};

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Starts the client thread.
pub fn spawn(path: PathBuf, node_id: String, ctx: Arc<Context>, from_ctld: Arc<AtomicBool>) {
    let spawned = std::thread::Builder::new()
        .name("ringside-ctld".into())
        .spawn(move || run(&path, &node_id, &ctx, &from_ctld));
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the ctld client");
    }
}

fn run(path: &PathBuf, node_id: &str, ctx: &Context, from_ctld: &AtomicBool) {
    let mut backoff = BACKOFF_MIN;
    loop {
        if ctx.handle.draining() {
            return;
        }
        match session(path, node_id, ctx, from_ctld) {
            Ok(()) => backoff = BACKOFF_MIN,
            Err(e) => tracing::debug!(socket = %path.display(), error = %e, "ctld unavailable"),
        }
        ctx.ctld_connected.store(false, Ordering::Relaxed);
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// One connection's life; returns when the daemon goes away.
fn session(
    path: &PathBuf,
    node_id: &str,
    ctx: &Context,
    from_ctld: &AtomicBool,
) -> Result<(), String> {
    let mut conn = Conn::connect(path).map_err(|e| e.to_string())?;
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
    client_handshake(
        &mut conn,
        Peer::Proxy {
            node_id: node_id.into(),
            role: role.into(),
            generation,
            labels: ctx.labels(),
        },
    )
    .map_err(|e| e.to_string())?;
    ctx.ctld_connected.store(true, Ordering::Relaxed);
    tracing::info!(socket = %path.display(), node = node_id, "connected to ctld");
    loop {
        let (id, request) = match conn.recv() {
            Ok(Frame::Request { id, request }) => (id, request),
            Ok(Frame::Reply { .. }) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "lost the connection to ctld; serving the last good configuration");
                return Ok(());
            }
        };
        let reply = match request {
            Request::PushConfig { generation, config } => push(ctx, generation, &config, from_ctld),
            Request::Status => Reply::ProxyStatus(ctx.status()),
            other => Reply::error(format!("{} is not served here", other.name())),
        };
        conn.reply(id, reply).map_err(|e| e.to_string())?;
    }
}

fn push(ctx: &Context, generation: u64, text: &str, from_ctld: &AtomicBool) -> Reply {
    let config = match ringside_config::parse(text) {
        Ok(c) => c,
        Err(errors) => {
            ctx.reloads.record(ReloadResult::Invalid);
            tracing::error!(
                generation,
                "ctld pushed an invalid configuration; keeping the running one"
            );
            return Reply::Error {
                message: format!("generation {generation} is invalid"),
                errors: errors.0.iter().map(ToString::to_string).collect(),
            };
        }
    };
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
            Reply::Ack { generation }
        }
        Err(e) => {
            ctx.reloads.record(ReloadResult::Failed);
            Reply::error(format!("generation {generation} not applied: {e}"))
        }
    }
}
