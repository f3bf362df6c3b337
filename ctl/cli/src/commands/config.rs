//! Whole configurations through ctld: `apply`, `diff`, `get config`, `rollback`.

use std::path::Path;

use ringside_wire::{Reply, Request};

use super::{call, ctld, show, show_applied, Failure};
use crate::cli::{Cli, FileArgs, NodeArg, Targets};

pub fn apply(cli: &Cli, args: &FileArgs, no_wait: bool) -> Result<(), Failure> {
    let config = read_valid(&args.file)?;
    let request = Request::Apply {
        node: args.node.id.clone(),
        selector: args.node.selector.clone(),
        config,
        no_wait,
    };
    show_applied(cli, &ctld(cli, request)?)
}

pub fn diff(cli: &Cli, args: &FileArgs, show_secrets: bool) -> Result<(), Failure> {
    let config = read_valid(&args.file)?;
    let request = Request::Diff {
        node: args.node.id.clone(),
        selector: args.node.selector.clone(),
        config,
        show_secrets,
    };
    show(cli, &ctld(cli, request)?, |r| match r {
        Reply::Diff { text } if text.is_empty() => Some("no changes\n".into()),
        Reply::Diff { text } => Some(text.clone()),
        _ => None,
    })
}

/// `get config`: from ctld, or with `--proxy` from that ringside process; secrets are
/// replaced by "[redacted]" here, in the text and the JSON alike, unless `show_secrets`.
pub fn get(
    cli: &Cli,
    node: &NodeArg,
    generation: Option<u64>,
    show_secrets: bool,
) -> Result<(), Failure> {
    let request = Request::GetConfig {
        node: node.id.clone(),
        generation,
    };
    let mut reply = match &cli.proxy {
        Some(path) => call(path, "ringside", request)?,
        None => ctld(cli, request)?,
    };
    if let (Reply::Config { config, .. }, false) = (&mut reply, show_secrets) {
        *config = ringside_config::redact::redact_source(config).map_err(Failure::new)?;
    }
    show(cli, &reply, |r| match r {
        Reply::Config { config, .. } => Some(config.clone()),
        _ => None,
    })
}

pub fn rollback(cli: &Cli, node: &Targets, to: Option<u64>) -> Result<(), Failure> {
    let request = Request::Rollback {
        node: node.id.clone(),
        selector: node.selector.clone(),
        to,
    };
    show_applied(cli, &ctld(cli, request)?)
}

/// Reads and validates a configuration file locally; an invalid one is refused with every
/// error before anything is contacted.
pub(super) fn read_valid(path: &Path) -> Result<String, Failure> {
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
