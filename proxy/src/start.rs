//! Starting a configured process, the same way whether its configuration came from a file,
//! the embedded default or ringside-ctld's first push: take the old process's sockets (hot
//! upgrade), bind the admin endpoint, start the engine's workers, serve the control socket.
//! Every process setting (`workers`, `driver`, `admin`, `control_socket`…) is read here,
//! once; later configurations change them only by a restart (`settings.rs`).

use std::sync::atomic::AtomicBool;
use std::sync::mpsc::Sender;
use std::sync::Arc;

use ringside_config::Config;
use ringside_engine::ServerHandle;

use crate::admin::LogLevel;
use crate::cli::{Cli, Event};
use crate::control::{Context, ReloadCounts};
use crate::settings::ProcessSettings;

/// Where the first configuration came from.
pub enum Source {
    /// A file, or the embedded default (`None`).
    File(Option<std::path::PathBuf>),
    /// ringside-ctld's push of this generation, to a process that said hello as `node_id`.
    Ctld { generation: u64, node_id: String },
}

impl Source {
    fn name(&self) -> String {
        match self {
            Source::File(path) => crate::cli::source_name(path.as_deref()),
            Source::Ctld { generation, .. } => format!("ringside-ctld generation {generation}"),
        }
    }
}

/// Starts serving `config`. On an error nothing stays bound: the caller may exit, or wait
/// for another configuration.
pub fn start(
    cli: &Cli,
    config: Config,
    source: &Source,
    events: &Sender<Event>,
    log: Option<Arc<LogLevel>>,
    trim: Option<fn()>,
) -> Result<Arc<Context>, String> {
    let flags = cli.overrides();
    let mut settings = ProcessSettings::of(&flags, &config);
    let generation = match source {
        Source::File(_) => None,
        Source::Ctld {
            generation,
            node_id,
        } => {
            // The node id said in the hello is the one this process keeps.
            settings.node_id = node_id.clone();
            Some(*generation)
        }
    };
    let role = match config.proxy.role {
        ringside_config::Role::Sidecar => "sidecar",
        ringside_config::Role::Gateway => "gateway",
    };
    // Started by a hot upgrade: take the old process's listening sockets first.
    let mut handover =
        crate::upgrade::inherit(&settings.node_id, role).map_err(|e| format!("upgrade: {e}"))?;
    let inherited = handover
        .as_mut()
        .map(crate::upgrade::Handover::take_sockets)
        .unwrap_or_default();
    // The admin listener is bound before the workers start, so a port in use stops the start
    // cleanly; a hot upgrade's new process joins the old one's port (SO_REUSEPORT).
    let admin = match settings.admin {
        Some(addr) => Some(
            crate::admin::bind(addr, handover.is_some())
                .map_err(|e| format!("cannot bind the admin endpoint (proxy.admin) {addr}: {e}"))?,
        ),
        None => None,
    };
    let options = ringside_engine::StartOptions {
        inherited,
        generation,
        trim,
        ..ringside_engine::StartOptions::new(crate::stack::stacks())
    };
    let handle = Arc::new(ringside_engine::start_with(config, options).map_err(|e| e.to_string())?);
    announce(&handle, source);
    let upgraded = handover.is_some();
    if let Some(h) = handover {
        // Become the unit's main process before the old one leaves (systemd).
        crate::notify::notify(&format!("MAINPID={}", std::process::id()));
        if let Err(e) = h.ready() {
            tracing::warn!(error = %e, "upgrade: the old process did not acknowledge; serving anyway");
        }
    }
    let control_path = settings.control_socket.clone();
    let ctx = Arc::new(Context {
        handle: handle.clone(),
        events: events.clone(),
        started: std::time::Instant::now(),
        node_id: Some(settings.node_id.clone()),
        node_labels: cli.node_labels.iter().cloned().collect(),
        uses_ctld: settings.ctld.is_some(),
        ctld_connected: Arc::new(AtomicBool::new(false)),
        control_path: control_path.clone(),
        reloads: Arc::new(ReloadCounts::default()),
        log: log.clone(),
        flags,
        settings,
    });
    if let Some(listener) = admin {
        let addr = listener
            .local_addr()
            .map_or_else(|e| e.to_string(), |a| a.to_string());
        let admin = Arc::new(crate::admin::Admin {
            ctx: ctx.clone(),
            log,
            loopback: crate::admin::loopback(&listener),
        });
        if let Err(e) = crate::admin::serve(listener, admin) {
            handle.shutdown();
            return Err(format!("cannot start the admin endpoint: {e}"));
        }
        tracing::info!(admin = %addr, "admin endpoint serving");
    }
    if upgraded {
        // The old process's control socket is ours now: replace the file.
        let _ = std::fs::remove_file(&control_path);
    }
    match ringside_wire::bind_socket(&control_path) {
        Ok(listener) => {
            tracing::info!(socket = %control_path.display(), "control socket");
            crate::control::serve(listener, ctx.clone());
        }
        Err(e) => {
            tracing::warn!(error = %e, "no control socket (status, drain and upgrade need it)")
        }
    }
    Ok(ctx)
}

fn announce(handle: &ServerHandle, source: &Source) {
    let snap = handle.snapshot();
    for l in &snap.config.listeners {
        let addr = handle
            .local_addr(l.parent.as_deref().unwrap_or(&l.name))
            .map_or_else(|| l.bind.to_string(), |a| a.to_string());
        match &l.parent {
            None => tracing::info!(listener = %l.name, address = %addr, "listening"),
            Some(p) => {
                tracing::info!(listener = %l.name, parent = %p, address = %addr, "serving the parent's connections by original destination")
            }
        }
    }
    tracing::info!(
        config = %source.name(),
        generation = snap.generation,
        driver = %handle.driver(),
        workers = handle.workers(),
        "serving"
    );
}
