//! The everyday edits through ctld, kept as the operator's overrides: `endpoints set|add|remove`,
//! `weights`, and `overrides clear`.

use ringside_wire::{EndpointOp, Request, WeightSpec};

use super::{ctld, show_applied, Failure};
use crate::cli::{Cli, Targets};

pub fn endpoints(
    cli: &Cli,
    op: EndpointOp,
    cluster: &str,
    addresses: &[String],
    node: &Targets,
) -> Result<(), Failure> {
    if addresses.is_empty() && op != EndpointOp::Set {
        return Err(Failure::new("name at least one address (IP:port)"));
    }
    for a in addresses {
        if !ringside_config::dns::is_endpoint_address(a) {
            return Err(Failure::new(format!(
                "invalid endpoint address {a:?} (expected IP:port or host:port)"
            )));
        }
    }
    let request = Request::Endpoints {
        op,
        cluster: cluster.to_owned(),
        addresses: addresses.to_vec(),
        node: node.id.clone(),
        selector: node.selector.clone(),
    };
    show_applied(cli, &ctld(cli, request)?)
}

pub fn weights(cli: &Cli, route: &str, weights: &[String], node: &Targets) -> Result<(), Failure> {
    let (listener, route) = match route.split_once('/') {
        Some((l, r)) => (Some(l.to_owned()), r.to_owned()),
        None => (None, route.to_owned()),
    };
    let weights = weights
        .iter()
        .map(|w| parse_weight(w))
        .collect::<Result<Vec<_>, _>>()?;
    let request = Request::Weights {
        route,
        listener,
        weights,
        node: node.id.clone(),
        selector: node.selector.clone(),
    };
    show_applied(cli, &ctld(cli, request)?)
}

pub fn clear_overrides(cli: &Cli, key: Option<&str>, node: &Targets) -> Result<(), Failure> {
    let request = Request::ClearOverrides {
        node: node.id.clone(),
        selector: node.selector.clone(),
        key: key.map(str::to_owned),
    };
    show_applied(cli, &ctld(cli, request)?)
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
