//! The requests ringsidectl sends to ctld, each turned into one reply (semantics in
//! `docs/control-protocol.md`). This runs on the CLI connection's own thread: it validates
//! what it can (an `apply` once, a `rollback`'s old text), reads immutable generation files
//! from the state directory, and asks the reconciler for the rest.

pub mod metrics;
pub mod server;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use ringside_wire::{Reply, Request};

use crate::desired::Proposal;
use crate::diff;
use crate::error::{validate, CtldError};
use crate::persist::Store;
use crate::reconciler::{ApiCall, Change, EditSpec, Found, Handle, Pick, Purpose, RolloutCall};

/// What a CLI thread needs: the reconciler's handle and the state directory (read only).
#[derive(Clone)]
pub struct Api {
    pub handle: Handle,
    pub store: Store,
}

impl Api {
    pub fn handle(&self, request: Request) -> Reply {
        self.serve(request).unwrap_or_else(CtldError::into_reply)
    }

    fn serve(&self, request: Request) -> Result<Reply, CtldError> {
        match request {
            Request::Status => self.handle.ask(ApiCall::Status).map(Reply::CtldStatus),
            Request::Apply {
                node,
                selector,
                config,
                no_wait,
            } => {
                // Validated once, here; an invalid file changes nothing.
                validate(&config)?;
                let pick = Pick { node, selector };
                self.change(pick, Change::Apply(Arc::from(config)), !no_wait)
            }
            Request::Diff {
                node,
                selector,
                config,
                show_secrets,
            } => {
                let pick = Pick { node, selector };
                let nodes = self
                    .handle
                    .ask(|reply| ApiCall::Current { pick, reply })??;
                let mut text = String::new();
                for (id, generation, current) in nodes {
                    let old_name = if generation == 0 {
                        format!("{id} (no configuration)")
                    } else {
                        format!("{id} generation {generation}")
                    };
                    let current = current.as_deref().unwrap_or("");
                    text.push_str(&diff::shown(
                        current,
                        &config,
                        &old_name,
                        &format!("{id} new"),
                        show_secrets,
                    ));
                }
                Ok(Reply::Diff { text })
            }
            Request::GetConfig { node, generation } => {
                let pick = Pick {
                    node,
                    selector: None,
                };
                let found = self.lookup(pick, generation, Purpose::Get)?;
                let (node, generation, config) =
                    found.into_iter().next().ok_or(CtldError::NoNodeYet)?;
                Ok(Reply::Config {
                    node,
                    generation,
                    config,
                })
            }
            Request::Rollback { node, selector, to } => {
                let pick = Pick { node, selector };
                let mut list = Vec::new();
                for (id, to, text) in self.lookup(pick.clone(), to, Purpose::Rollback)? {
                    validate(&text).map_err(|e| e.for_node(&id, true))?;
                    let source = format!("rollback to {to}");
                    let p = Proposal::Base {
                        text: Arc::from(text),
                        source: source.clone(),
                        file: None,
                        validated: true,
                    };
                    list.push((id, p, source));
                }
                self.change(pick, Change::PerNode(list), true)
            }
            Request::Endpoints {
                op,
                cluster,
                addresses,
                node,
                selector,
            } => {
                let spec = EditSpec::Endpoints {
                    op,
                    cluster,
                    addresses,
                };
                self.change(Pick { node, selector }, Change::Edit(spec), true)
            }
            Request::Weights {
                route,
                listener,
                weights,
                node,
                selector,
            } => {
                let spec = EditSpec::Weights {
                    route,
                    listener,
                    weights,
                };
                self.change(Pick { node, selector }, Change::Edit(spec), true)
            }
            Request::ClearOverrides {
                node,
                selector,
                key,
            } => self.change(Pick { node, selector }, Change::ClearOverrides(key), true),
            Request::RolloutStart(spec) => {
                // Validated once, here, like an apply.
                validate(&spec.config)?;
                self.rollout(RolloutCall::Start(spec))
            }
            Request::RolloutStatus => self.rollout(RolloutCall::Status),
            Request::RolloutPause => self.rollout(RolloutCall::Pause),
            Request::RolloutResume => self.rollout(RolloutCall::Resume),
            Request::RolloutAbort => self.rollout(RolloutCall::Abort),
            other => Ok(Reply::error(format!(
                "{} is not served by ringside-ctld",
                other.name()
            ))),
        }
    }

    fn rollout(&self, call: RolloutCall) -> Result<Reply, CtldError> {
        let rollout = self
            .handle
            .ask(|reply| ApiCall::Rollout { call, reply })??;
        Ok(Reply::Rollout {
            rollout: rollout.map(Box::new),
        })
    }

    fn change(&self, pick: Pick, change: Change, wait: bool) -> Result<Reply, CtldError> {
        self.handle.ask(|reply| ApiCall::Change {
            pick,
            change,
            wait,
            reply,
        })
    }

    /// The generations to read, with their texts (from the reconciler when it has them,
    /// else from the state directory).
    fn lookup(
        &self,
        pick: Pick,
        generation: Option<u64>,
        purpose: Purpose,
    ) -> Result<Vec<(String, u64, String)>, CtldError> {
        let found: Vec<Found> = self.handle.ask(|reply| ApiCall::Lookup {
            pick,
            generation,
            purpose,
            reply,
        })??;
        found
            .into_iter()
            .map(|(id, g, text)| {
                let text = match text {
                    Some(t) => t.to_string(),
                    None => self
                        .store
                        .read_generation(&id, g)
                        .map_err(|e| CtldError::Read {
                            node: id.clone(),
                            generation: g,
                            message: e.to_string(),
                        })?,
                };
                Ok((id, g, text))
            })
            .collect()
    }
}
