//! The requests ringsidectl sends to ctld, each turned into one reply. The semantics are
//! those of `docs/control-protocol.md`.

use ringside_wire::{EndpointOp, Reply, Request};

use crate::daemon::{plural, Daemon};
use crate::{diff, edit};

pub fn handle(daemon: &Daemon, request: Request) -> Reply {
    match request {
        Request::Status => Reply::CtldStatus(daemon.status()),
        Request::Apply { node, config } => {
            // Validate once, before choosing targets: an invalid file changes nothing.
            if let Err(errs) = ringside_config::parse(&config) {
                let errors: Vec<String> = errs.0.iter().map(ToString::to_string).collect();
                return Reply::Error {
                    message: format!("configuration refused ({})", plural(errors.len(), "error")),
                    errors,
                };
            }
            daemon.change(node.as_deref(), |_| Ok((config.clone(), "apply".into())))
        }
        Request::Diff { node, config } => match daemon.current_texts(node.as_deref()) {
            Ok(nodes) => {
                let mut text = String::new();
                for (id, generation, current) in nodes {
                    let old_name = if generation == 0 {
                        format!("{id} (no configuration)")
                    } else {
                        format!("{id} generation {generation}")
                    };
                    text.push_str(&diff::unified(
                        current.as_deref().unwrap_or(""),
                        &config,
                        &old_name,
                        &format!("{id} new"),
                    ));
                }
                Reply::Diff { text }
            }
            Err(e) => Reply::error(e),
        },
        Request::GetConfig { node, generation } => {
            match daemon.get_config(node.as_deref(), generation) {
                Ok((node, generation, config)) => Reply::Config {
                    node,
                    generation,
                    config,
                },
                Err(e) => Reply::error(e),
            }
        }
        Request::Rollback { node, to } => daemon.change(node.as_deref(), |ctx| {
            let (to, text) = ctx.rollback_target(to)?;
            Ok((text, format!("rollback to {to}")))
        }),
        Request::Endpoints {
            op,
            cluster,
            addresses,
            node,
        } => {
            let verb = match op {
                EndpointOp::Set => "set",
                EndpointOp::Add => "add",
                EndpointOp::Remove => "remove",
            };
            let source = format!("endpoints {verb} {cluster} {}", addresses.join(" "));
            daemon.change(node.as_deref(), |ctx| {
                let text = edit::endpoints(ctx.require_current()?, op, &cluster, &addresses)?;
                Ok((text, source.clone()))
            })
        }
        Request::Weights {
            route,
            listener,
            weights,
            node,
        } => {
            let list: Vec<String> = weights
                .iter()
                .map(|w| format!("{}={}", w.cluster, w.weight))
                .collect();
            let source = format!("weights {route} {}", list.join(" "));
            daemon.change(node.as_deref(), |ctx| {
                let text = edit::weights(
                    ctx.require_current()?,
                    &route,
                    listener.as_deref(),
                    &weights,
                )?;
                Ok((text, source.clone()))
            })
        }
        other => Reply::error(format!("{} is not served by ringside-ctld", other.name())),
    }
}
