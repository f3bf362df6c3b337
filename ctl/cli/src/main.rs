//! `ringsidectl`: the operator CLI. Talks to ringside-ctld (`--socket`) or to one ringside
//! process (`--proxy`) with the protocol of `docs/control-protocol.md`.
//!
//! Output: text for people, `--json` (the reply as sent on the wire) for scripts. Exit status:
//! 0 on success, 1 on any failure, with a one-line message on stderr (and, for a refused
//! configuration, one line per error).

mod cli;
mod output;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use cli::{Cli, Command, Get, Op, Shell};
use ringside_wire::{Conn, EndpointOp, Peer, Reply, Request, WeightSpec, WireError};

/// The longest any reply may take: `apply` waits up to ctld's acknowledgement timeout (10 s)
/// and an upgrade up to the proxy's drain timeout.
const REPLY_TIMEOUT: Duration = Duration::from_secs(120);

/// A failure: the message line, and the configuration errors if any.
struct Failure {
    message: String,
    errors: Vec<String>,
}

impl Failure {
    fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            errors: Vec::new(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if cli.json {
                let reply = Reply::Error {
                    message: f.message,
                    errors: f.errors,
                };
                println!("{}", to_json(&reply));
            } else {
                eprintln!("ringsidectl: {}", f.message);
                for e in &f.errors {
                    eprintln!("  {e}");
                }
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<(), Failure> {
    match &cli.command {
        Command::Completions { shell } => {
            let shell = match shell {
                Shell::Bash => clap_complete::Shell::Bash,
                Shell::Zsh => clap_complete::Shell::Zsh,
                Shell::Fish => clap_complete::Shell::Fish,
            };
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "ringsidectl",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Status => match &cli.proxy {
            Some(path) => {
                let reply = call(path, "ringside", Request::Status)?;
                show(cli, &reply, |r| match r {
                    Reply::ProxyStatus(s) => Some(output::proxy_status(s)),
                    _ => None,
                })
            }
            None => {
                let reply = ctld(cli, Request::Status)?;
                show(cli, &reply, |r| match r {
                    Reply::CtldStatus(s) => Some(output::ctld_status(s)),
                    _ => None,
                })
            }
        },
        Command::Apply(args) => {
            let config = read_valid(&args.file)?;
            let reply = ctld(
                cli,
                Request::Apply {
                    node: args.node.id.clone(),
                    config,
                    no_wait: false,
                },
            )?;
            show_applied(cli, &reply)
        }
        Command::Diff(args) => {
            let config = read_valid(&args.file)?;
            let reply = ctld(
                cli,
                Request::Diff {
                    node: args.node.id.clone(),
                    config,
                },
            )?;
            show(cli, &reply, |r| match r {
                Reply::Diff { text } if text.is_empty() => Some("no changes\n".into()),
                Reply::Diff { text } => Some(text.clone()),
                _ => None,
            })
        }
        Command::Get(Get::Config { node, generation }) => {
            let reply = ctld(
                cli,
                Request::GetConfig {
                    node: node.id.clone(),
                    generation: *generation,
                },
            )?;
            show(cli, &reply, |r| match r {
                Reply::Config { config, .. } => Some(config.clone()),
                _ => None,
            })
        }
        Command::Rollback { node, to } => {
            let reply = ctld(
                cli,
                Request::Rollback {
                    node: node.id.clone(),
                    to: *to,
                },
            )?;
            show_applied(cli, &reply)
        }
        Command::Endpoints {
            op,
            cluster,
            addresses,
            node,
        } => {
            let op = match op {
                Op::Set => EndpointOp::Set,
                Op::Add => EndpointOp::Add,
                Op::Remove => EndpointOp::Remove,
                Op::Show => return endpoints_show(cli, cluster, addresses),
            };
            if addresses.is_empty() && op != EndpointOp::Set {
                return Err(Failure::new("name at least one address (IP:port)"));
            }
            for a in addresses {
                if a.parse::<std::net::SocketAddr>().is_err() {
                    return Err(Failure::new(format!(
                        "invalid socket address {a:?} (expected IP:port)"
                    )));
                }
            }
            let reply = ctld(
                cli,
                Request::Endpoints {
                    op,
                    cluster: cluster.clone(),
                    addresses: addresses.clone(),
                    node: node.id.clone(),
                },
            )?;
            show_applied(cli, &reply)
        }
        Command::Weights {
            route,
            weights,
            node,
        } => {
            let (listener, route) = match route.split_once('/') {
                Some((l, r)) => (Some(l.to_owned()), r.to_owned()),
                None => (None, route.clone()),
            };
            let weights = weights
                .iter()
                .map(|w| parse_weight(w))
                .collect::<Result<Vec<_>, _>>()?;
            let reply = ctld(
                cli,
                Request::Weights {
                    route,
                    listener,
                    weights,
                    node: node.id.clone(),
                },
            )?;
            show_applied(cli, &reply)
        }
        Command::Drain => {
            let reply = call(&proxy_path(cli), "ringside", Request::Drain)?;
            show(cli, &reply, |r| match r {
                Reply::Ok => Some("draining\n".into()),
                _ => None,
            })
        }
        Command::Upgrade { binary, args } => {
            // The proxy resolves the path from its own working directory: send an absolute one.
            let binary = std::fs::canonicalize(binary)
                .map_err(|e| Failure::new(format!("{}: {e}", binary.display())))?;
            let reply = call(
                &proxy_path(cli),
                "ringside",
                Request::Upgrade {
                    binary: binary.to_string_lossy().into_owned(),
                    args: args.clone(),
                },
            )?;
            show(cli, &reply, |r| {
                match r {
                Reply::Upgraded { old_pid, new_pid } => {
                    Some(format!("upgraded: pid {old_pid} handed its listeners to pid {new_pid} and is draining\n"))
                }
                _ => None,
            }
            })
        }
    }
}

/// `endpoints show CLUSTER`: the endpoints' health, from one ringside process.
fn endpoints_show(cli: &Cli, cluster: &str, addresses: &[String]) -> Result<(), Failure> {
    if !addresses.is_empty() {
        return Err(Failure::new("endpoints show takes a cluster name only"));
    }
    let reply = call(&proxy_path(cli), "ringside", Request::Health)?;
    let Reply::Health { clusters } = reply else {
        return Err(Failure::new(format!("unexpected {} reply", reply.name())));
    };
    let Some(found) = clusters.into_iter().find(|c| c.name == cluster) else {
        return Err(Failure::new(format!("no cluster named {cluster:?}")));
    };
    let reply = Reply::Health {
        clusters: vec![found],
    };
    show(cli, &reply, |r| match r {
        Reply::Health { clusters } => clusters.first().map(output::health),
        _ => None,
    })
}

fn parse_weight(s: &str) -> Result<WeightSpec, Failure> {
    let bad = || {
        Failure::new(format!(
            "invalid weight {s:?} (expected CLUSTER=WEIGHT, WEIGHT from 0 to 4294967295)"
        ))
    };
    let (cluster, w) = s.split_once('=').ok_or_else(bad)?;
    if cluster.is_empty() {
        return Err(bad());
    }
    let weight = w.parse::<u32>().map_err(|_| bad())?;
    Ok(WeightSpec {
        cluster: cluster.to_owned(),
        weight,
    })
}

/// Reads and validates a configuration file locally; an invalid one is refused with every
/// error before anything is contacted.
fn read_valid(path: &Path) -> Result<String, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::new(format!("{}: cannot read: {e}", path.display())))?;
    if let Err(errs) = ringside_config::parse(&text) {
        let n = errs.0.len();
        return Err(Failure {
            message: format!(
                "{}: configuration refused ({n} error{}), nothing changed",
                path.display(),
                if n == 1 { "" } else { "s" }
            ),
            errors: errs.0.iter().map(ToString::to_string).collect(),
        });
    }
    Ok(text)
}

fn proxy_path(cli: &Cli) -> PathBuf {
    cli.proxy
        .clone()
        .unwrap_or_else(|| ringside_wire::find_socket("proxy.sock"))
}

/// A request to ringside-ctld.
fn ctld(cli: &Cli, request: Request) -> Result<Reply, Failure> {
    if cli.proxy.is_some() {
        return Err(Failure::new(format!(
            "{} is a ringside-ctld command; --proxy is for status, drain and upgrade",
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
fn call(path: &Path, what: &str, request: Request) -> Result<Reply, Failure> {
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
fn show(cli: &Cli, reply: &Reply, text: impl Fn(&Reply) -> Option<String>) -> Result<(), Failure> {
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

fn show_applied(cli: &Cli, reply: &Reply) -> Result<(), Failure> {
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

fn to_json(reply: &Reply) -> String {
    serde_json::to_string_pretty(reply)
        .unwrap_or_else(|e| format!("{{\"type\":\"error\",\"message\":\"{e}\"}}"))
}
