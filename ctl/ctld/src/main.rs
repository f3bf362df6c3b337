//! `ringside-ctld`: the per-host control daemon.
//!
//! ```text
//! config dir ──inotify──▶ configdir::scan ─┐
//! ringsidectl ──▶ server ──▶ api ──────────┼─▶ Daemon::change ─▶ Store (state dir)
//!                                          │                  └▶ session ─push_config─▶ proxy
//! proxy ──hello──▶ server ──▶ session ─────┘
//! ```
//!
//! Threads, not a runtime: this is not the data plane. See `docs/control-protocol.md`.

mod api;
mod configdir;
mod daemon;
mod diff;
mod edit;
mod server;
mod session;
mod store;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

/// The ringside control daemon: owns every node's desired configuration, keeps it durable in
/// the state directory and pushes it to ringside processes over a Unix socket.
#[derive(Parser, Debug)]
#[command(name = "ringside-ctld", version)]
struct Args {
    /// The Unix socket to serve (created with mode 0600).
    #[arg(long, value_name = "PATH", default_value_os_t = ringside_wire::default_ctld_socket())]
    socket: PathBuf,
    /// Desired configurations: `<node-id>.toml`, else `default.toml`. Watched for changes.
    #[arg(long, value_name = "DIR")]
    config_dir: PathBuf,
    /// Where every applied generation is kept.
    #[arg(long, value_name = "DIR")]
    state_dir: PathBuf,
    /// How long a node may take to acknowledge a configuration.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    ack_timeout_ms: u64,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("ringside-ctld: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();

    std::fs::create_dir_all(&args.config_dir)
        .with_context(|| format!("config dir {}", args.config_dir.display()))?;
    let store = store::Store::open(&args.state_dir).context("state dir")?;
    let daemon = daemon::Daemon::open(
        store,
        &args.config_dir,
        Duration::from_millis(args.ack_timeout_ms.max(1)),
    )
    .context("loading the state dir")?;
    let listener = ringside_wire::bind_socket(&args.socket).context("control socket")?;

    // Signals first, so that a SIGTERM right after start is handled.
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ])
    .context("signal handlers")?;

    let d = daemon.clone();
    std::thread::Builder::new()
        .name("accept".into())
        .spawn(move || server::accept_loop(d, listener))?;
    let d = daemon.clone();
    let dir = args.config_dir.clone();
    std::thread::Builder::new()
        .name("watch".into())
        .spawn(move || {
            configdir::watch(dir, Duration::from_secs(5), || {
                d.rescan();
                true
            })
        })?;
    tracing::info!(socket = %args.socket.display(), config_dir = %args.config_dir.display(), state_dir = %args.state_dir.display(), "ringside-ctld serving");

    for signal in signals.forever() {
        if signal == signal_hook::consts::SIGHUP {
            tracing::info!("SIGHUP: rescanning the config directory");
            daemon.rescan();
            continue;
        }
        tracing::info!(signal, "shutting down");
        // Hold the state lock so no write is half done, then leave.
        let _frozen = daemon.freeze();
        let _ = std::fs::remove_file(&args.socket);
        std::process::exit(0);
    }
    Ok(())
}
