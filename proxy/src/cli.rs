//! `ringside run|check`, logging, and signal handling on the control (main) thread.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use ringside_config::{Config, ConfigErrors};
use ringside_engine::{Reloaded, ServerHandle};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use tracing_subscriber::EnvFilter;

/// ringside: a thread-per-core L4/L7 proxy — service-mesh sidecar and API gateway.
#[derive(Debug, Parser)]
#[command(name = "ringside", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file (TOML). Without it ringside serves its embedded default
    /// configuration (see the README).
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

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

pub fn main() -> ExitCode {
    disable_transparent_huge_pages();
    let cli = Cli::parse();
    init_logging(cli.log_level.as_deref());
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => run(cli.config.as_deref()),
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

fn init_logging(level: Option<&str>) {
    let filter = match level {
        Some(l) => EnvFilter::try_new(l).unwrap_or_else(|e| {
            eprintln!("ringside: invalid --log-level {l:?} ({e}); using info");
            EnvFilter::new("info")
        }),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
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

enum Event {
    Signal(i32),
    Drained,
}

fn run(path: Option<&Path>) -> ExitCode {
    let config = match load(path) {
        Ok(c) => c,
        Err(errors) => {
            print_errors(path, &errors);
            return ExitCode::FAILURE;
        }
    };
    let (tx, rx) = crossbeam_channel_lite();
    // Register signal handlers before any worker starts, so a SIGTERM sent right after the
    // process appears is a drain, not a kill.
    let mut signals = match signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ringside: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let handle = match ringside_engine::start(config) {
        Ok(h) => Arc::new(h),
        Err(e) => {
            eprintln!("ringside: {e}");
            return ExitCode::FAILURE;
        }
    };
    announce(&handle, path);
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
            Event::Signal(SIGHUP) => reload(&handle, path),
            Event::Signal(sig) if !draining => {
                draining = true;
                tracing::info!(
                    signal = sig,
                    "draining: no new connections, finishing in-flight requests"
                );
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
            Event::Drained => {
                tracing::info!("drained; exiting");
                return ExitCode::SUCCESS;
            }
        }
    }
    ExitCode::SUCCESS
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

fn reload(handle: &ServerHandle, path: Option<&Path>) {
    let Some(p) = path else {
        tracing::info!("SIGHUP: running on the embedded default configuration; nothing to re-read");
        return;
    };
    match ringside_config::load_file(p) {
        Err(errors) => {
            for e in &errors.0 {
                tracing::error!(file = %p.display(), "{e}");
            }
            tracing::error!(file = %p.display(), "reload rejected; the running configuration stays");
        }
        Ok(config) => match handle.reload(config) {
            Ok(Reloaded::Applied(g)) => tracing::info!(generation = g, "configuration reloaded"),
            Ok(Reloaded::Unchanged(g)) => tracing::info!(generation = g, "configuration unchanged"),
            Err(e) => {
                tracing::error!(error = %e, "reload rejected; the running configuration stays")
            }
        },
    }
}

/// A tiny unbounded channel over std (the control thread is not on the data path).
fn crossbeam_channel_lite() -> (
    std::sync::mpsc::Sender<Event>,
    std::sync::mpsc::Receiver<Event>,
) {
    std::sync::mpsc::channel()
}
