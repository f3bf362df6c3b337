//! `ringside run|check`, logging, and signal handling on the control (main) thread.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use ringside_config::{Config, ConfigErrors};
use ringside_engine::Reloaded;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::admin::LogLevel;
use crate::control::{Context, ReloadResult};

/// ringside: a thread-per-core L4/L7 proxy — service-mesh sidecar and API gateway.
#[derive(Debug, Parser)]
#[command(name = "ringside", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file (TOML). Without it ringside serves its embedded default
    /// configuration (see the README), or, with `--ctld`, waits for ctld's.
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

    /// With `--ctld` and no `--config`: exit with an error when no configuration has come
    /// from ctld within this long (`30s`, `2m`). Default: wait for as long as it takes
    /// (a supervisor restarting the process would only wait again).
    #[arg(long, global = true, value_name = "DURATION", value_parser = ringside_config::duration::parse_duration, requires = "ctld", conflicts_with = "config")]
    pub bootstrap_timeout: Option<Duration>,

    /// Log level or filter (error, warn, info, debug, trace, or a tracing filter such as
    /// "ringside_engine=debug"). Overrides RUST_LOG. Logs go to stderr.
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// The process settings the command line sets over the configuration.
    pub fn overrides(&self) -> crate::settings::Overrides {
        crate::settings::Overrides {
            ctld: self.ctld.clone(),
            node_id: self.node_id.clone(),
            control_socket: self.control_socket.clone(),
        }
    }
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

pub(crate) fn source_name(path: Option<&Path>) -> String {
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
    /// ringside-ctld's first configuration, for a process started with `--ctld` alone.
    FirstConfig(Box<crate::ctld::FirstConfig>),
    /// How the wait for the first configuration goes (`connected`, `unavailable: …`).
    CtldState(String),
}

fn run(cli: &Cli, log: Option<Arc<LogLevel>>, trim: Option<fn()>) -> ExitCode {
    let (tx, rx) = std::sync::mpsc::channel();
    // Register signal handlers before anything starts, so a SIGTERM sent right after the
    // process appears is a drain (or, while waiting for ctld, an exit), not a kill.
    let mut signals = match signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR1])
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ringside: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
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
    let path = cli.config.as_deref();
    let ctx = match (path, cli.ctld.as_ref()) {
        // Nothing is bound until ctld's first configuration.
        (None, Some(socket)) => match crate::bootstrap::wait(cli, socket, &tx, &rx, log, trim) {
            Ok(ctx) => ctx,
            Err(code) => return code,
        },
        _ => {
            let config = match load(path) {
                Ok(c) => c,
                Err(errors) => {
                    print_errors(path, &errors);
                    return ExitCode::FAILURE;
                }
            };
            let source = crate::start::Source::File(cli.config.clone());
            let ctx = match crate::start::start(cli, config, &source, &tx, log, trim) {
                Ok(ctx) => ctx,
                Err(e) => {
                    eprintln!("ringside: {e}");
                    return ExitCode::FAILURE;
                }
            };
            if let Some(socket) = ctx.settings.ctld.clone() {
                let node_id = ctx.settings.node_id.clone();
                crate::ctld::spawn(
                    socket,
                    node_id,
                    ctx.clone(),
                    Arc::new(AtomicBool::new(false)),
                );
            }
            ctx
        }
    };
    serve(path, &ctx, &tx, &rx)
}

/// The serving process's event loop: signals, drain requests, the end of the drain.
fn serve(path: Option<&Path>, ctx: &Context, tx: &Sender<Event>, rx: &Receiver<Event>) -> ExitCode {
    let handle = &ctx.handle;
    crate::notify::notify(&format!("MAINPID={}\nREADY=1", std::process::id()));
    // Serving: the code only start-up ran need not stay mapped.
    crate::footprint::release_startup_code();
    let mut draining = false;
    while let Ok(event) = rx.recv() {
        match event {
            Event::Signal(SIGUSR1) => {
                tracing::info!("SIGUSR1: reopening access logs");
                handle.reopen_logs();
            }
            Event::Signal(SIGHUP) => reload(ctx, path),
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
            Event::DrainRequested | Event::FirstConfig(_) | Event::CtldState(_) => {}
            Event::Drained => {
                tracing::info!("drained; exiting");
                if !crate::upgrade::handed_over() {
                    let _ = std::fs::remove_file(&ctx.control_path);
                }
                return ExitCode::SUCCESS;
            }
        }
    }
    ExitCode::SUCCESS
}

fn reload(ctx: &Context, path: Option<&Path>) {
    let Some(p) = path else {
        if ctx.uses_ctld {
            tracing::info!(
                "SIGHUP: the configuration comes from ringside-ctld; nothing to re-read"
            );
        } else {
            tracing::info!(
                "SIGHUP: running on the embedded default configuration; nothing to re-read"
            );
        }
        return;
    };
    let reloads = &ctx.reloads;
    match ringside_config::load_file(p) {
        Err(errors) => {
            reloads.record(ReloadResult::Invalid);
            for e in &errors.0 {
                tracing::error!(file = %p.display(), "{e}");
            }
            tracing::error!(file = %p.display(), "reload rejected; the running configuration stays");
        }
        Ok(config) => {
            let pending = ctx.pending_restart(&config);
            match ctx.handle.reload(config) {
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
                    Context::log_pending_restart(&pending);
                }
                Err(e) => {
                    reloads.record(ReloadResult::Failed);
                    tracing::error!(error = %e, "reload rejected; the running configuration stays")
                }
            }
        }
    }
}
