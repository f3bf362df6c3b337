//! Commands for one ringside process (`--proxy`): `drain`, `upgrade`, `endpoints show`,
//! `log-level`.

use std::path::Path;

use ringside_wire::{Reply, Request};

use super::{call, proxy_path, show, Failure};
use crate::cli::Cli;
use crate::output;

pub fn drain(cli: &Cli) -> Result<(), Failure> {
    let reply = call(&proxy_path(cli), "ringside", Request::Drain)?;
    show(cli, &reply, |r| match r {
        Reply::Ok => Some("draining\n".into()),
        _ => None,
    })
}

/// `log-level [LEVEL]`: the process's log filter, or a new one.
pub fn log_level(cli: &Cli, level: Option<&str>) -> Result<(), Failure> {
    let request = Request::LogLevel {
        level: level.map(str::to_string),
    };
    let reply = call(&proxy_path(cli), "ringside", request)?;
    show(cli, &reply, |r| match r {
        Reply::LogLevel { level } => Some(format!("{level}\n")),
        _ => None,
    })
}

pub fn upgrade(cli: &Cli, binary: &Path, args: &[String]) -> Result<(), Failure> {
    // The proxy resolves the path from its own working directory: send an absolute one.
    let binary = std::fs::canonicalize(binary)
        .map_err(|e| Failure::new(format!("{}: {e}", binary.display())))?;
    let request = Request::Upgrade {
        binary: binary.to_string_lossy().into_owned(),
        args: args.to_vec(),
    };
    let reply = call(&proxy_path(cli), "ringside", request)?;
    show(cli, &reply, |r| match r {
        Reply::Upgraded { old_pid, new_pid } => Some(format!(
            "upgraded: pid {old_pid} handed its listeners to pid {new_pid} and is draining\n"
        )),
        _ => None,
    })
}

/// `endpoints show CLUSTER`: the endpoints' health, from one ringside process.
pub fn endpoints_show(cli: &Cli, cluster: &str, addresses: &[String]) -> Result<(), Failure> {
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
