//! `ringside-ctld`: the per-host control daemon, a reconciler.
//!
//! ```text
//! sources/files ─┐                    ┌─▶ persist thread ─▶ state dir
//! sources/xds ───┤                    │
//! api (CLI) ─────┼─▶ reconciler ──────┤
//! sessions ──────┘   (one thread,     └─▶ sessions/session ─push_config─▶ proxies
//!   (hello, acks)     owns the state)
//! ```
//!
//! Every arrow into the reconciler is one bounded channel of events; nothing it does waits
//! on a disk or a socket. Threads, not a runtime: this is not the data plane (the xDS source
//! alone runs gRPC on a tokio runtime of its own thread, `sources/xds/`). See
//! `docs/control-protocol.md` and `ctl/README.md`.

mod api;
mod clock;
mod desired;
mod diff;
mod error;
mod persist;
mod reconciler;
mod sessions;
mod sources;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;

use crate::clock::Now;
use crate::reconciler::{Event, Handle, Reconciler, Settings};
use crate::sessions::registry::Timing;
use crate::sources::{files, xds};

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
    /// Generations kept per node, in the history and as files; older ones are pruned.
    #[arg(long, value_name = "N", default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
    keep_generations: u64,
    /// A node without a file of its own in the config directory, neither connected nor
    /// edited for this long, is forgotten (e.g. `24h`, `30m`, `500ms`).
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = clock::parse_duration)]
    forget_after: Duration,
    /// How often each connected process is asked for its status (stats), shown by
    /// `ringsidectl status`; `0s` never.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = clock::parse_duration)]
    stats_interval: Duration,
    /// Serve Prometheus metrics (nodes, pushes, rollouts) on `http://ADDR/metrics`, e.g.
    /// `127.0.0.1:9902`. Default: none.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
    /// Take every node's listeners, routes and clusters from this xDS server (ADS over gRPC:
    /// `http://` plaintext, `https://` TLS), e.g. `http://istiod.istio-system:15010`; see
    /// docs/xds.md.
    #[arg(long, value_name = "URL", value_parser = parse_xds_url)]
    xds: Option<String>,
    /// The xDS node id sent for each node; `{node}` is replaced by the ringside node id
    /// (Istio: `sidecar~10.0.0.7~{node}.shop~shop.svc.cluster.local`).
    #[arg(
        long,
        value_name = "TEMPLATE",
        default_value = "{node}",
        requires = "xds"
    )]
    xds_node_id: String,
    /// The xDS node's cluster (Istio: the workload's service name).
    #[arg(
        long,
        value_name = "NAME",
        default_value = "ringside",
        requires = "xds"
    )]
    xds_cluster: String,
    /// A string in the xDS node's metadata (Istio reads `NAMESPACE`, `CLUSTER_ID`, ...);
    /// repeated for several.
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_key_value, requires = "xds")]
    xds_metadata: Vec<(String, String)>,
    /// Incremental xDS (`DeltaAggregatedResources`: each response carries only what changed)
    /// instead of state of the world; what istiod and Envoy Gateway offer their proxies.
    #[arg(long, requires = "xds")]
    xds_delta: bool,
    /// The Unix socket of the node's local SDS server, for the secrets that resources name by
    /// the cluster `sds-grpc` (Istio: istio-agent's
    /// `/var/run/secrets/workload-spiffe-uds/socket`); see docs/xds.md.
    #[arg(long, value_name = "PATH", requires = "xds")]
    xds_sds: Option<std::path::PathBuf>,
    /// PEM CA bundle that verifies an `https://` xDS server (default: the system's roots).
    #[arg(long, value_name = "FILE", requires = "xds")]
    xds_ca: Option<std::path::PathBuf>,
    /// PEM client certificate chain presented to an `https://` xDS server (mTLS).
    #[arg(long, value_name = "FILE", requires = "xds_key")]
    xds_cert: Option<std::path::PathBuf>,
    /// The PEM private key of `--xds-cert`.
    #[arg(long, value_name = "FILE", requires = "xds_cert")]
    xds_key: Option<std::path::PathBuf>,
}

fn parse_xds_url(s: &str) -> Result<String, String> {
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"));
    match rest {
        Some(rest) if !rest.is_empty() => Ok(s.trim_end_matches('/').to_owned()),
        _ => Err(format!(
            "{s:?}: write the server as http://HOST:PORT or https://HOST:PORT"
        )),
    }
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{s:?}: write KEY=VALUE")),
    }
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
    let store = persist::Store::open(&args.state_dir).context("state dir")?;
    let loaded = store.load_all().context("loading the state dir")?;
    let rollout = store.load_rollout().context("loading the rollout")?;
    tracing::info!(
        nodes = loaded.len(),
        rollout = rollout.as_ref().map(|r| r.id),
        "state loaded"
    );
    let ack_timeout = Duration::from_millis(args.ack_timeout_ms.max(1));
    let mut timing = Timing::new(ack_timeout);
    timing.stats_every = Some(args.stats_interval).filter(|d| !d.is_zero());
    let settings = Settings {
        timing,
        keep: usize::try_from(args.keep_generations).unwrap_or(usize::MAX),
        forget_after: args.forget_after,
    };

    let (events, inbox) = crossbeam_channel::bounded(reconciler::EVENTS);
    // Unbounded, so that the reconciler never waits on the disk; it refuses changes when
    // the persist thread is too far behind instead.
    let (ops, ops_rx) = crossbeam_channel::unbounded();
    let done_events = events.clone();
    let persist = persist::spawn(store.clone(), ops_rx, move |done| {
        let _ = done_events.send(Event::Persisted(done));
    })?;
    let mut reconciler = Reconciler::new(loaded, rollout, ops, settings, Now::system());
    let xds_stats = match &args.xds {
        Some(address) => {
            let (templates, watched) = tokio::sync::watch::channel(Default::default());
            reconciler = reconciler.with_xds(templates);
            let stats = std::sync::Arc::new(xds::Stats::default());
            let settings = xds::Settings {
                address: address.clone(),
                node_id: args.xds_node_id.clone(),
                cluster: args.xds_cluster.clone(),
                metadata: args.xds_metadata.clone(),
                delta: args.xds_delta,
                sds: args.xds_sds.clone(),
                tls: xds::tls::client_config(
                    address,
                    args.xds_ca.as_deref(),
                    args.xds_cert.as_deref().zip(args.xds_key.as_deref()),
                )?,
            };
            xds::spawn(settings, watched, events.clone(), stats.clone()).context("xds thread")?;
            tracing::info!(server = %address, "xDS source on");
            Some(stats)
        }
        None => None,
    };
    // With --xds the files are templates (sources/xds), and are validated as such.
    let templates = args.xds.is_some();
    // The first scan is queued before anything else can happen.
    let _ = events.send(Event::Scan(files::scan(&args.config_dir, templates)));
    std::thread::Builder::new()
        .name("reconciler".into())
        .spawn(move || reconciler.run(inbox))?;
    let handle = Handle {
        events: events.clone(),
    };
    let listener = ringside_wire::bind_socket(&args.socket).context("control socket")?;
    if let Some(addr) = args.metrics {
        let metrics =
            std::net::TcpListener::bind(addr).with_context(|| format!("--metrics {addr}"))?;
        tracing::info!(metrics = %metrics.local_addr()?, "metrics endpoint serving");
        let handle = handle.clone();
        std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || api::metrics::serve(handle, xds_stats, metrics))?;
    }

    // Signals first, so that a SIGTERM right after start is handled.
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ])
    .context("signal handlers")?;

    let api = api::Api {
        handle: handle.clone(),
        store,
    };
    std::thread::Builder::new()
        .name("accept".into())
        .spawn(move || api::server::accept_loop(api, ack_timeout, listener))?;
    let (dir, watch_events) = (args.config_dir.clone(), events.clone());
    std::thread::Builder::new()
        .name("watch".into())
        .spawn(move || {
            files::watch(dir.clone(), Duration::from_secs(5), || {
                watch_events
                    .send(Event::Scan(files::scan(&dir, templates)))
                    .is_ok()
            })
        })?;
    tracing::info!(socket = %args.socket.display(), config_dir = %args.config_dir.display(), state_dir = %args.state_dir.display(), "ringside-ctld serving");

    for signal in signals.forever() {
        if signal == signal_hook::consts::SIGHUP {
            tracing::info!("SIGHUP: rescanning the config directory");
            let _ = events.send(Event::Scan(files::scan(&args.config_dir, templates)));
            continue;
        }
        tracing::info!(signal, "shutting down");
        // Stop the reconciler, then let the persist thread finish what is queued.
        let (tx, rx) = crossbeam_channel::bounded(1);
        if events
            .send_timeout(Event::Stop(tx), Duration::from_secs(2))
            .is_ok()
        {
            let _ = rx.recv_timeout(Duration::from_secs(2));
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while !persist.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = std::fs::remove_file(&args.socket);
        std::process::exit(0);
    }
    Ok(())
}
