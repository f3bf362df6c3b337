//! `ringside run|check`, logging, and signal handling on the control (main) thread.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use ringside_config::{Config, ConfigErrors};
use ringside_engine::{Reloaded, ServerHandle};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::admin::LogLevel;
use crate::control::{ReloadCounts, ReloadResult};

/// ringside: a thread-per-core L4/L7 proxy — service-mesh sidecar and API gateway.
#[derive(Debug, Parser)]
#[command(name = "ringside", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file (TOML). Without it ringside serves its embedded default
    /// configuration (see the README).
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Take configuration from this ringside-ctld socket (overrides `proxy.ctld`).
    #[arg(long, global = true, value_name = "PATH")]
    pub ctld: Option<PathBuf>,

    /// Node id to present to ctld (overrides `proxy.node_id`; default: the host name).
    #[arg(long, global = true, value_name = "ID")]
    pub node_id: Option<String>,

    /// A label of this node, KEY=VALUE, laid over `proxy.labels` (repeatable). ctld's
    /// selectors (`--selector app=web`) match them.
    #[arg(long = "node-label", global = true, value_name = "KEY=VALUE", value_parser = ringside_config::labels::parse_label)]
    pub node_labels: Vec<(String, String)>,

    /// This proxy's control socket (overrides `proxy.control_socket`).
    #[arg(long, global = true, value_name = "PATH")]
    pub control_socket: Option<PathBuf>,

    /// Log level or filter (error, warn, info, debug, trace, or a tracing filter such as
    /// "ringside_engine=debug"). Overrides RUST_LOG. Logs go to stderr.
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy (the default when no subcommand is given).
    Run,
    /// Validate the configuration and exit: 0 when it is valid, 1 with every error otherwise.
    Check,
    /// Print the embedded default configuration.
    DefaultConfig,
}

/// The binary's entry point. `trim`: the allocator's collect, which each worker calls once
/// a second (`StartOptions::trim`).
pub fn main(trim: Option<fn()>) -> ExitCode {
    disable_transparent_huge_pages();
    let cli = Cli::parse();
    let log = init_logging(cli.log_level.as_deref());
    match cli.command.as_ref().unwrap_or(&Command::Run) {
        Command::Run => run(&cli, log, trim),
        Command::Check => check(cli.config.as_deref()),
        Command::DefaultConfig => {
            print!("{}", ringside_config::DEFAULT_CONFIG);
            ExitCode::SUCCESS
        }
    }
}

/// mimalloc commits its arena eagerly; with transparent huge pages set to "always" every
/// touched 2 MiB of it becomes resident, tripling an idle proxy's memory for no gain. Opt
/// this process out (the kernel checks the flag at fault time, so it also covers mappings
/// made before `main`).
fn disable_transparent_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes plain integer arguments and touches no memory of ours.
    let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
}

/// Logs to stderr through a filter that the admin endpoint can replace at run time
/// (`POST /log-level`); returns its handle, or `None` if a logger was already installed.
fn init_logging(level: Option<&str>) -> Option<Arc<LogLevel>> {
    let filter = match level {
        Some(l) => EnvFilter::try_new(l).unwrap_or_else(|e| {
            eprintln!("ringside: invalid --log-level {l:?} ({e}); using info");
            EnvFilter::new("info")
        }),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let shown = filter.to_string();
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .try_init()
        .ok()?;
    Some(Arc::new(LogLevel::new(handle, shown)))
}

fn load(path: Option<&Path>) -> Result<Config, ConfigErrors> {
    match path {
        Some(p) => ringside_config::load_file(p),
        None => ringside_config::parse(ringside_config::DEFAULT_CONFIG),
    }
}

fn source_name(path: Option<&Path>) -> String {
    path.map_or_else(
        || "embedded default configuration".to_string(),
        |p| p.display().to_string(),
    )
}

fn print_errors(path: Option<&Path>, errors: &ConfigErrors) {
    let name = source_name(path);
    for e in &errors.0 {
        eprintln!("{name}: {e}");
    }
    let n = errors.0.len();
    eprintln!(
        "{name}: configuration check failed ({n} error{})",
        if n == 1 { "" } else { "s" }
    );
}

fn check(path: Option<&Path>) -> ExitCode {
    match load(path) {
        Ok(_) => {
            println!("{}: configuration OK", source_name(path));
            ExitCode::SUCCESS
        }
        Err(errors) => {
            print_errors(path, &errors);
            ExitCode::FAILURE
        }
    }
}

/// What the main (control) thread reacts to.
pub enum Event {
    Signal(i32),
    /// `ringsidectl drain`, or the end of a successful upgrade.
    DrainRequested,
    Drained,
}

fn run(cli: &Cli, log: Option<Arc<LogLevel>>, trim: Option<fn()>) -> ExitCode {
    let path = cli.config.as_deref();
    let config = match load(path) {
        Ok(c) => c,
        Err(errors) => {
            print_errors(path, &errors);
            return ExitCode::FAILURE;
        }
    };
    let node_id = cli
        .node_id
        .clone()
        .or_else(|| config.proxy.node_id.clone())
        .unwrap_or_else(host_name);
    let ctld = cli.ctld.clone().or_else(|| config.proxy.ctld.clone());
    let control_path = cli
        .control_socket
        .clone()
        .or_else(|| config.proxy.control_socket.clone())
        .unwrap_or_else(ringside_wire::default_proxy_socket);
    let role = match config.proxy.role {
        ringside_config::Role::Sidecar => "sidecar",
        ringside_config::Role::Gateway => "gateway",
    };
    let (tx, rx) = std::sync::mpsc::channel();
    // Register signal handlers before any worker starts, so a SIGTERM sent right after the
    // process appears is a drain, not a kill.
    let mut signals = match signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR1])
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ringside: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Started by a hot upgrade: take the old process's listening sockets first.
    let mut handover = match crate::upgrade::inherit(&node_id, role) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("ringside: upgrade: {e}");
            return ExitCode::FAILURE;
        }
    };
    let inherited = handover
        .as_mut()
        .map(crate::upgrade::Handover::take_sockets)
        .unwrap_or_default();
    // The admin listener is bound before the workers start, so a port in use stops the start
    // cleanly; a hot upgrade's new process joins the old one's port (SO_REUSEPORT).
    let admin = match config.proxy.admin {
        Some(addr) => match crate::admin::bind(addr, handover.is_some()) {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("ringside: cannot bind the admin endpoint (proxy.admin) {addr}: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let options = ringside_engine::StartOptions {
        inherited,
        trim,
        ..ringside_engine::StartOptions::new(crate::stack::stacks())
    };
    let handle = match ringside_engine::start_with(config, options) {
        Ok(h) => Arc::new(h),
        Err(e) => {
            eprintln!("ringside: {e}");
            return ExitCode::FAILURE;
        }
    };
    announce(&handle, path);
    let upgraded = handover.is_some();
    if let Some(h) = handover {
        // Become the unit's main process before the old one leaves (systemd).
        crate::notify::notify(&format!("MAINPID={}", std::process::id()));
        if let Err(e) = h.ready() {
            tracing::warn!(error = %e, "upgrade: the old process did not acknowledge; serving anyway");
        }
    }
    let ctx = Arc::new(crate::control::Context {
        handle: handle.clone(),
        events: tx.clone(),
        started: std::time::Instant::now(),
        node_id: Some(node_id.clone()),
        node_labels: cli.node_labels.iter().cloned().collect(),
        uses_ctld: ctld.is_some(),
        ctld_connected: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        control_path: control_path.clone(),
        reloads: Arc::new(ReloadCounts::default()),
        log: log.clone(),
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
        match crate::admin::serve(listener, admin) {
            Ok(()) => tracing::info!(admin = %addr, "admin endpoint serving"),
            Err(e) => {
                eprintln!("ringside: cannot start the admin endpoint: {e}");
                handle.shutdown();
                return ExitCode::FAILURE;
            }
        }
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
    if let Some(socket) = ctld {
        crate::ctld::spawn(
            socket,
            node_id,
            ctx.clone(),
            Arc::new(std::sync::atomic::AtomicBool::new(false)),
        );
    }
    crate::notify::notify(&format!("MAINPID={}\nREADY=1", std::process::id()));
    // Serving: the code only start-up ran need not stay mapped.
    crate::footprint::release_startup_code();
    {
        let tx = tx.clone();
        std::thread::Builder::new()
            .name("ringside-signals".into())
            .spawn(move || {
                for sig in signals.forever() {
                    if tx.send(Event::Signal(sig)).is_err() {
                        return;
                    }
                }
            })
            .ok();
    }
    let mut draining = false;
    while let Ok(event) = rx.recv() {
        match event {
            Event::Signal(SIGUSR1) => {
                tracing::info!("SIGUSR1: reopening access logs");
                handle.reopen_logs();
            }
            Event::Signal(SIGHUP) => reload(&handle, path, &ctx.reloads),
            Event::Signal(_) | Event::DrainRequested if !draining => {
                draining = true;
                tracing::info!("draining: no new connections, finishing in-flight requests");
                // After a hot upgrade the unit lives on in the new process: telling systemd
                // we stop would stop the whole service (NotifyAccess=all).
                if !crate::upgrade::handed_over() {
                    crate::notify::notify("STOPPING=1");
                }
                handle.begin_drain();
                let h = handle.clone();
                let tx = tx.clone();
                std::thread::spawn(move || {
                    h.wait();
                    let _ = tx.send(Event::Drained);
                });
            }
            Event::Signal(sig) => {
                tracing::warn!(signal = sig, "second signal during drain: exiting now");
                return ExitCode::SUCCESS;
            }
            Event::DrainRequested => {}
            Event::Drained => {
                tracing::info!("drained; exiting");
                if !crate::upgrade::handed_over() {
                    let _ = std::fs::remove_file(&control_path);
                }
                return ExitCode::SUCCESS;
            }
        }
    }
    ExitCode::SUCCESS
}

fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let name = if rc == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(buf.get(..end).unwrap_or_default()).into_owned()
    } else {
        String::new()
    };
    if ringside_wire::validate_node_id(&name).is_ok() {
        name
    } else {
        "ringside".into()
    }
}

fn announce(handle: &ServerHandle, path: Option<&Path>) {
    let snap = handle.snapshot();
    for l in &snap.config.listeners {
        let addr = handle
            .local_addr(&l.name)
            .map_or_else(|| l.bind.to_string(), |a| a.to_string());
        tracing::info!(listener = %l.name, address = %addr, "listening");
    }
    tracing::info!(
        config = %source_name(path),
        generation = snap.generation,
        driver = %handle.driver(),
        workers = handle.workers(),
        "serving"
    );
}

fn reload(handle: &ServerHandle, path: Option<&Path>, reloads: &ReloadCounts) {
    let Some(p) = path else {
        tracing::info!("SIGHUP: running on the embedded default configuration; nothing to re-read");
        return;
    };
    match ringside_config::load_file(p) {
        Err(errors) => {
            reloads.record(ReloadResult::Invalid);
            for e in &errors.0 {
                tracing::error!(file = %p.display(), "{e}");
            }
            tracing::error!(file = %p.display(), "reload rejected; the running configuration stays");
        }
        Ok(config) => match handle.reload(config) {
            Ok(r) => {
                reloads.record(ReloadResult::Ok);
                match r {
                    Reloaded::Applied(g) => {
                        tracing::info!(generation = g, "configuration reloaded")
                    }
                    Reloaded::Unchanged(g) => {
                        tracing::info!(generation = g, "configuration unchanged")
                    }
                }
            }
            Err(e) => {
                reloads.record(ReloadResult::Failed);
                tracing::error!(error = %e, "reload rejected; the running configuration stays")
            }
        },
    }
}
