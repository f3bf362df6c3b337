//! The desired state: per node, the base and overrides in force (see [`precedence`]), the
//! configuration they make, and its generations. Every change goes the same way: a source's
//! [`Proposal`] → [`NodeDesired::plan`] (layering and validation; errors go back to the
//! source) → [`NodeDesired::commit`] (a new generation unless identical, and the writes for
//! the persist thread). Pure: no I/O, no clock of its own.

pub mod precedence;

use std::sync::Arc;

pub use precedence::{Override, Target};

use crate::error::{validate, CtldError};
use crate::persist::{FileSeen, GenerationMeta, LoadedNode, NodeRecord, Op};

/// What a source proposes for one node.
#[derive(Debug, Clone)]
pub enum Proposal {
    /// A whole configuration: from a file (`file` set, overrides kept) or the operator
    /// (`apply`, `rollback`: overrides cleared). `validated`: already checked by the caller.
    Base {
        text: Arc<str>,
        source: String,
        file: Option<FileSeen>,
        validated: bool,
    },
    /// An operator override of one key (the edit already made on the current text).
    Override(Override),
    /// Remove one override (by key) or all.
    ClearOverrides { key: Option<String> },
}

/// A checked change, ready to commit.
#[derive(Debug, Clone)]
pub struct Plan {
    pub text: Arc<str>,
    pub source: String,
    base: Arc<str>,
    base_source: String,
    file: Option<FileSeen>,
    overrides: Vec<Override>,
    /// Overrides left out because their key is gone, with the reason.
    pub dropped: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    pub generation: u64,
    pub changed: bool,
}

#[derive(Debug, Clone)]
pub struct NodeDesired {
    pub record: NodeRecord,
    /// The current generation's text (None while it has none).
    pub text: Option<Arc<str>>,
    /// The base the overrides are laid on.
    pub base: Option<Arc<str>>,
    pub next_generation: u64,
}

impl NodeDesired {
    pub fn new(id: &str) -> NodeDesired {
        NodeDesired {
            record: NodeRecord {
                node_id: id.to_owned(),
                ..NodeRecord::default()
            },
            text: None,
            base: None,
            next_generation: 1,
        }
    }

    pub fn loaded(l: LoadedNode) -> NodeDesired {
        NodeDesired {
            record: l.record,
            text: l.current_text.map(Arc::from),
            base: l.base_text.map(Arc::from),
            next_generation: l.next_generation,
        }
    }

    pub fn id(&self) -> &str {
        &self.record.node_id
    }

    pub fn current(&self) -> u64 {
        self.record.current
    }

    /// Checks what `p` would make of this node. Nothing changes until [`Self::commit`].
    pub fn plan(&self, p: Proposal, source: &str) -> Result<Plan, CtldError> {
        let id = self.id();
        let (base, base_source, file, overrides, validated) = match p {
            Proposal::Base {
                text,
                source: base_source,
                file,
                validated,
            } => {
                // A file keeps the operator's overrides; the operator's own base clears them.
                let overrides = match file {
                    Some(_) => self.record.overrides.clone(),
                    None => Vec::new(),
                };
                let validated = validated && overrides.is_empty();
                (text, base_source, file, overrides, validated)
            }
            Proposal::Override(o) => {
                let base = self
                    .base
                    .clone()
                    .or_else(|| self.text.clone())
                    .ok_or_else(|| CtldError::NoConfiguration(id.to_owned()))?;
                let overrides = precedence::with_override(&self.record.overrides, o);
                (base, self.base_source(), None, overrides, false)
            }
            Proposal::ClearOverrides { key } => {
                let base = self
                    .base
                    .clone()
                    .or_else(|| self.text.clone())
                    .ok_or_else(|| CtldError::NoConfiguration(id.to_owned()))?;
                let mut overrides = self.record.overrides.clone();
                match &key {
                    Some(k) => {
                        let before = overrides.len();
                        overrides.retain(|o| &o.target.key() != k);
                        if overrides.len() == before {
                            return Err(CtldError::NoOverride {
                                node: id.to_owned(),
                                key: k.clone(),
                            });
                        }
                    }
                    None => overrides.clear(),
                }
                (base, self.base_source(), None, overrides, false)
            }
        };
        let layered = precedence::layer(&base, &overrides);
        let text: Arc<str> = if layered.kept.is_empty() && layered.dropped.is_empty() {
            base.clone()
        } else {
            Arc::from(layered.text)
        };
        if !validated {
            validate(&text)?;
        }
        Ok(Plan {
            text,
            source: source.to_owned(),
            base,
            base_source,
            file,
            overrides: layered.kept,
            dropped: layered.dropped,
        })
    }

    fn base_source(&self) -> String {
        self.record
            .base_source
            .clone()
            .unwrap_or_else(|| "apply".into())
    }

    /// Makes `plan` the node's configuration: a new generation unless the text is the
    /// current one. Returns the writes for the persist thread, in order. `keep`: generations
    /// kept (history and files).
    pub fn commit(&mut self, plan: Plan, now_unix: u64, keep: usize) -> (Committed, Vec<Op>) {
        let id = self.id().to_owned();
        let changed = self.text.as_deref() != Some(&*plan.text);
        let mut ops = Vec::new();
        let base_changed = self.base.as_deref() != Some(&*plan.base);
        let mut record = self.record.clone();
        record.base_source = Some(plan.base_source);
        record.overrides = plan.overrides;
        record.acked = None;
        if plan.file.is_some() {
            record.file = plan.file;
        }
        let mut prune = None;
        if changed {
            let generation = self.next_generation;
            ops.push(Op::Generation {
                node: id.clone(),
                generation,
                text: plan.text.clone(),
            });
            record.current = generation;
            record.history.push(GenerationMeta {
                generation,
                created_at: now_unix,
                source: plan.source,
            });
            let keep = keep.max(1);
            if record.history.len() > keep {
                let cut = record.history.len() - keep;
                record.history.drain(..cut);
                prune = record.history.first().map(|g| g.generation);
            }
            self.next_generation = generation + 1;
            self.text = Some(plan.text);
        }
        if base_changed {
            ops.push(Op::Base {
                node: id.clone(),
                text: plan.base.clone(),
            });
            self.base = Some(plan.base);
        }
        if record != self.record || changed {
            ops.push(Op::Record(record.clone()));
        }
        if let Some(keep_from) = prune {
            ops.push(Op::Prune {
                node: id,
                keep_from,
            });
        }
        self.record = record;
        let committed = Committed {
            generation: self.record.current,
            changed,
        };
        (committed, ops)
    }

    /// The oldest and newest kept generations, for error messages.
    pub fn range(&self) -> String {
        let h = &self.record.history;
        match (h.first(), h.last()) {
            (Some(a), Some(b)) => format!("it has {} to {}", a.generation, b.generation),
            _ => "it has none".into(),
        }
    }

    /// Whether generation `g` is kept.
    pub fn has(&self, g: u64) -> bool {
        self.record.history.iter().any(|m| m.generation == g)
    }

    /// The generation a rollback without `--to` restores: the newest kept before the current.
    pub fn previous(&self) -> Result<u64, CtldError> {
        let current = self.current();
        self.record
            .history
            .iter()
            .map(|g| g.generation)
            .filter(|&g| g < current)
            .max()
            .ok_or_else(|| match current {
                0 => CtldError::NoConfiguration(self.id().to_owned()),
                c => CtldError::NoEarlier {
                    node: self.id().to_owned(),
                    current: c,
                },
            })
    }
}

#[cfg(test)]
pub(crate) mod tests;
