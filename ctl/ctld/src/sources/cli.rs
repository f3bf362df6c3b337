//! The operator's edits (`ringsidectl endpoints`, `weights`) as overrides: the edit is made
//! on the node's current configuration, and what it made of the edited list becomes the
//! override of that key (`desired/precedence.rs`), so it is laid again on any later base.

use ringside_wire::{EndpointOp, WeightSpec};

use crate::desired::{Override, Proposal, Target};
use crate::error::CtldError;
use crate::sources::edit::{self, Field};

/// An edit as the CLI sent it.
#[derive(Debug, Clone, PartialEq)]
pub enum EditSpec {
    Endpoints {
        op: EndpointOp,
        cluster: String,
        addresses: Vec<String>,
    },
    Weights {
        route: String,
        listener: Option<String>,
        weights: Vec<WeightSpec>,
    },
}

impl EditSpec {
    /// The history's source line: `endpoints add api 10.0.0.7:8080`, `weights api v1=90`.
    pub fn describe(&self) -> String {
        match self {
            EditSpec::Endpoints {
                op,
                cluster,
                addresses,
            } => {
                let verb = match op {
                    EndpointOp::Set => "set",
                    EndpointOp::Add => "add",
                    EndpointOp::Remove => "remove",
                };
                format!("endpoints {verb} {cluster} {}", addresses.join(" "))
            }
            EditSpec::Weights { route, weights, .. } => {
                let list: Vec<String> = weights
                    .iter()
                    .map(|w| format!("{}={}", w.cluster, w.weight))
                    .collect();
                format!("weights {route} {}", list.join(" "))
            }
        }
    }
}

/// The override `spec` makes of `current`.
pub fn propose(spec: &EditSpec, current: &str) -> Result<Proposal, CtldError> {
    let edit_err = |message: String| CtldError::Edit {
        node: None,
        message,
    };
    let (target, edited) = match spec {
        EditSpec::Endpoints {
            op,
            cluster,
            addresses,
        } => {
            let text = edit::endpoints(current, *op, cluster, addresses).map_err(edit_err)?;
            let target = Target::Endpoints {
                cluster: cluster.clone(),
            };
            (target, text)
        }
        EditSpec::Weights {
            route,
            listener,
            weights,
        } => {
            let listener =
                edit::resolve_route(current, route, listener.as_deref()).map_err(edit_err)?;
            let text = edit::weights(current, route, Some(&listener), weights).map_err(edit_err)?;
            let target = Target::Weights {
                listener,
                route: route.clone(),
            };
            (target, text)
        }
    };
    let field: Field<'_> = target.field();
    let value = edit::get_value(&edited, field).map_err(edit_err)?;
    Ok(Proposal::Override(Override { target, value }))
}
