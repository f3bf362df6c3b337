//! One file per group of subcommands; here, what they share: reaching a socket, printing a
//! reply, the failure type.

pub mod config;
pub mod edits;
pub mod proxy;
pub mod rollout;
pub mod status;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ringside_wire::{Conn, Peer, Reply, Request, WireError};

use crate::cli::Cli;
use crate::output;

/// The longest any reply may take: `apply` waits up to ctld's acknowledgement timeout (10 s)
/// and an upgrade up to the proxy's drain timeout.
const REPLY_TIMEOUT: Duration = Duration::from_secs(120);

/// A failure: the message line, and the configuration errors if any.
pub struct Failure {
    pub message: String,
    pub errors: Vec<String>,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            errors: Vec::new(),
        }
    }
}

pub fn proxy_path(cli: &Cli) -> PathBuf {
    cli.proxy
        .clone()
        .unwrap_or_else(|| ringside_wire::find_socket("proxy.sock"))
}

/// A request to ringside-ctld.
pub fn ctld(cli: &Cli, request: Request) -> Result<Reply, Failure> {
    if cli.proxy.is_some() {
        return Err(Failure::new(format!(
            "{} is a ringside-ctld command; --proxy is for status, drain, upgrade, endpoints show, get config and log-level",
            request.name()
        )));
    }
    let path = cli
        .socket
        .clone()
        .unwrap_or_else(|| ringside_wire::find_socket("ctld.sock"));
    call(&path, "ringside-ctld", request)
}

/// Connects, says hello, sends one request. An `error` reply is a failure.
pub fn call(path: &Path, what: &str, request: Request) -> Result<Reply, Failure> {
    let fail = |e: WireError| match e {
        WireError::Remote { message, errors } => Failure { message, errors },
        other => Failure::new(format!("{what} at {}: {other}", path.display())),
    };
    let mut conn = Conn::new(
        ringside_wire::socket::connect(path)
            .map_err(|e| Failure::new(format!("cannot connect to {what}: {e}")))?,
    );
    conn.set_read_timeout(Some(REPLY_TIMEOUT))
        .and_then(|()| conn.set_write_timeout(Some(REPLY_TIMEOUT)))
        .map_err(|e| Failure::new(e.to_string()))?;
    ringside_wire::client_handshake(&mut conn, Peer::Cli).map_err(fail)?;
    conn.call(request).and_then(Reply::check).map_err(fail)
}

/// Prints a reply: as JSON with --json, else as `text` renders it.
pub fn show(
    cli: &Cli,
    reply: &Reply,
    text: impl Fn(&Reply) -> Option<String>,
) -> Result<(), Failure> {
    let out = if cli.json {
        format!("{}\n", to_json(reply))
    } else {
        text(reply).ok_or_else(|| Failure::new(format!("unexpected {} reply", reply.name())))?
    };
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`| head`) is not worth an error message.
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
    Ok(())
}

/// Prints an `applied` reply; any node without a good outcome makes the exit status 1.
pub fn show_applied(cli: &Cli, reply: &Reply) -> Result<(), Failure> {
    show(cli, reply, |r| match r {
        Reply::Applied { nodes } => Some(output::applied(nodes)),
        _ => None,
    })?;
    if let Reply::Applied { nodes } = reply {
        let failed: Vec<&str> = nodes
            .iter()
            .filter(|n| !n.outcome.is_ok())
            .map(|n| n.node.as_str())
            .collect();
        if !failed.is_empty() {
            // Already printed per node; the exit status says it too.
            if !cli.json {
                eprintln!("ringsidectl: not acknowledged by {}", failed.join(", "));
            }
            std::process::exit(1);
        }
    }
    Ok(())
}

pub fn to_json(reply: &Reply) -> String {
    serde_json::to_string_pretty(reply)
        .unwrap_or_else(|e| format!("{{\"type\":\"error\",\"message\":\"{e}\"}}"))
}
