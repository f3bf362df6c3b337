//! The command line: global options and subcommands (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ringside_wire::Labels;

/// ringsidectl: operate ringside-ctld and ringside processes over their Unix sockets.
#[derive(Debug, Parser)]
#[command(name = "ringsidectl", version, about, long_about = None)]
pub struct Cli {
    /// ringside-ctld's socket [default: $XDG_RUNTIME_DIR/ringside/ctld.sock, else
    /// /run/ringside/ctld.sock].
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// One ringside process's control socket (for status, drain, upgrade, endpoints show,
    /// get config, log-level)
    /// [default for drain/upgrade/endpoints show: $XDG_RUNTIME_DIR/ringside/proxy.sock, else
    /// /run/ringside/proxy.sock].
    #[arg(long, global = true, value_name = "PATH")]
    pub proxy: Option<PathBuf>,

    /// Print the reply as JSON (for scripts) instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Nodes, labels, role, generation served, acknowledged or not, last error (or, with
    /// --proxy, one process's state).
    Status {
        /// Only the nodes whose labels match, KEY=VALUE[,KEY=VALUE...].
        #[arg(long, value_name = "KEY=VALUE,...", value_parser = ringside_config::labels::parse_selector)]
        selector: Option<Labels>,
    },
    /// Validate FILE, make it the configuration of a node (or of every known node), wait for
    /// the acknowledgements and print each node's generation and outcome.
    Apply {
        #[command(flatten)]
        file: FileArgs,
        /// Return once the change is committed (durable), without waiting for the nodes.
        #[arg(long)]
        no_wait: bool,
    },
    /// What `apply` with the same arguments would change; secrets redacted unless
    /// --show-secrets.
    Diff {
        #[command(flatten)]
        file: FileArgs,
        /// Print private keys, API keys and JWKS secrets as they are; by default they are
        /// replaced by "[redacted]" (a change to one is then said, not shown).
        #[arg(long)]
        show_secrets: bool,
    },
    /// Print a configuration ctld holds.
    #[command(subcommand)]
    Get(Get),
    /// Go back to an earlier generation (as a new generation).
    Rollback {
        #[command(flatten)]
        node: Targets,
        /// The generation whose content to restore [default: the one before the current one].
        #[arg(long, value_name = "N")]
        to: Option<u64>,
    },
    /// Set, add or remove a cluster's endpoints (through ctld); `show` asks one ringside
    /// process (--proxy) for the endpoints' health: ejections and health checks.
    Endpoints {
        op: Op,
        cluster: String,
        /// Addresses, IP:port or host:port.
        #[arg(value_name = "ADDR")]
        addresses: Vec<String>,
        #[command(flatten)]
        node: Targets,
    },
    /// Set weights of a weighted route (a weight of 0 sends a cluster nothing).
    Weights {
        /// The route's name, or LISTENER/ROUTE when the name is used on several listeners.
        route: String,
        /// CLUSTER=WEIGHT pairs.
        #[arg(value_name = "CLUSTER=W", required = true)]
        weights: Vec<String>,
        #[command(flatten)]
        node: Targets,
    },
    /// The operator's overrides (`endpoints`, `weights` edits layered on a node's base).
    #[command(subcommand)]
    Overrides(Overrides),
    /// Drain a ringside process: stop accepting, finish in-flight requests, exit.
    Drain,
    /// Print a ringside process's log filter, or set it (`debug`, `warn`,
    /// `info,ringside_engine=debug`): what the admin endpoint's `/log-level` does.
    LogLevel {
        /// The new filter [default: print the current one].
        level: Option<String>,
    },
    /// Replace a ringside process by a new binary without dropping a connection.
    Upgrade {
        /// The new ringside binary.
        #[arg(long, value_name = "PATH")]
        binary: PathBuf,
        /// Arguments for the new binary [default: the running process's own].
        #[arg(last = true, value_name = "ARGS")]
        args: Vec<String>,
    },
    /// Progressive rollouts: a configuration to a share of the nodes at a time, judged by
    /// their error rate against the others'.
    #[command(subcommand)]
    Rollout(Rollout),
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum Get {
    /// A node's current configuration, or one of its history (with --proxy: the configuration
    /// that one ringside process serves), secrets redacted unless --show-secrets.
    Config {
        #[command(flatten)]
        node: NodeArg,
        /// A generation from the node's history [default: the current one].
        #[arg(long, value_name = "N")]
        generation: Option<u64>,
        /// Print private keys, API keys and JWKS secrets as they are; by default they are
        /// replaced by "[redacted]".
        #[arg(long)]
        show_secrets: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum Rollout {
    /// Start a rollout of FILE to the selected nodes, step by step.
    Start {
        /// The configuration file (TOML).
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: PathBuf,
        /// The nodes, KEY=VALUE[,KEY=VALUE...] [default: every known node].
        #[arg(long, value_name = "KEY=VALUE,...", value_parser = ringside_config::labels::parse_selector)]
        selector: Option<Labels>,
        /// Cumulative shares of the selected nodes in percent, increasing, ending at 100.
        #[arg(
            long,
            value_name = "P,P,...",
            value_delimiter = ',',
            default_value = "10,50,100"
        )]
        steps: Vec<u32>,
        /// How long each step is watched before it is judged (e.g. 60s, 5m).
        #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = ringside_config::duration::parse_duration)]
        interval: std::time::Duration,
        /// Roll back when the canary nodes' error rate exceeds the others' by more than
        /// this many percentage points.
        #[arg(long, value_name = "POINTS", default_value_t = 1.0)]
        max_error_increase: f64,
        /// Requests each group must serve in a window for it to be judged; fewer, and the
        /// rollout pauses.
        #[arg(long, value_name = "N", default_value_t = 200)]
        min_requests: u64,
    },
    /// The current (or last) rollout: step, nodes on each generation, both error rates.
    Status,
    /// Hold the rollout at its step.
    Pause,
    /// Continue a paused rollout (with a fresh window).
    Resume,
    /// Stop the rollout and give every node it changed its configuration from before.
    Abort,
}

#[derive(Debug, Subcommand)]
pub enum Overrides {
    /// Remove one override (KEY as `status` lists it, e.g. "endpoints api"), or all: the
    /// node goes back to its base (its file, or the last apply) with the others.
    Clear {
        /// The override's key [default: every override].
        key: Option<String>,
        #[command(flatten)]
        node: Targets,
    },
}

#[derive(Debug, Args)]
pub struct FileArgs {
    /// The configuration file (TOML).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub node: Targets,
}

/// The nodes a change is for: one by name, those whose labels match, or every known node.
#[derive(Debug, Args)]
pub struct Targets {
    /// The node to act on [default: every known node].
    #[arg(long = "node", value_name = "ID", conflicts_with = "selector")]
    pub id: Option<String>,
    /// The known nodes whose labels match, KEY=VALUE[,KEY=VALUE...] (every pair must match).
    #[arg(long, value_name = "KEY=VALUE,...", value_parser = ringside_config::labels::parse_selector)]
    pub selector: Option<Labels>,
}

#[derive(Debug, Args)]
pub struct NodeArg {
    /// The node to act on [default: every known node].
    #[arg(long = "node", value_name = "ID")]
    pub id: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Op {
    Set,
    Add,
    Remove,
    /// The cluster's endpoints with their health, from one ringside process.
    Show,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}
