//! `status`: ctld's view of every node, or (`--proxy`) one process's state.

use ringside_wire::{Labels, Reply, Request};

use super::{call, ctld, show, Failure};
use crate::cli::Cli;
use crate::output;

pub fn status(cli: &Cli, selector: Option<&Labels>) -> Result<(), Failure> {
    match &cli.proxy {
        Some(path) => {
            let reply = call(path, "ringside", Request::Status)?;
            show(cli, &reply, |r| match r {
                Reply::ProxyStatus(s) => Some(output::proxy_status(s)),
                _ => None,
            })
        }
        None => {
            let mut reply = ctld(cli, Request::Status)?;
            if let (Reply::CtldStatus(s), Some(selector)) = (&mut reply, selector) {
                s.nodes
                    .retain(|n| ringside_config::labels::matches(selector, &n.labels));
            }
            show(cli, &reply, |r| match r {
                Reply::CtldStatus(s) => Some(output::ctld_status(s)),
                _ => None,
            })
        }
    }
}
