//! Persistence, off the reconciler's thread: the reconciler queues [`Op`]s and carries on;
//! this thread writes them in order, in batches, and reports which generations are durable
//! ([`Done`]). The reconciler pushes a generation only once it is durable, so a restart never
//! reissues a number a proxy has seen.
//!
//! A batch coalesces the small records: of several `node.json` or `live.json` writes of one
//! node queued together, only the last is written.

pub mod rollout;
pub mod store;

use std::collections::BTreeMap;
use std::sync::Arc;

use crossbeam_channel::Receiver;

pub use rollout::{RolloutNodeRecord, RolloutRecord, RolloutState};
pub use store::{AckRecord, FileSeen, GenerationMeta, LiveRecord, LoadedNode, NodeRecord, Store};

/// Most operations written in one batch.
const BATCH: usize = 256;

/// One write to the state directory.
#[derive(Debug, Clone)]
pub enum Op {
    /// A generation's text; written before the record that names it.
    Generation {
        node: String,
        generation: u64,
        text: Arc<str>,
    },
    Record(NodeRecord),
    Base {
        node: String,
        text: Arc<str>,
    },
    Live {
        node: String,
        live: LiveRecord,
    },
    /// Remove the generation files below `keep_from`.
    Prune {
        node: String,
        keep_from: u64,
    },
    /// Remove the node's directory.
    Forget {
        node: String,
    },
    /// The rollout's record (`rollout.json`).
    Rollout(Arc<RolloutRecord>),
}

impl Op {
    fn node(&self) -> &str {
        match self {
            Op::Generation { node, .. }
            | Op::Base { node, .. }
            | Op::Live { node, .. }
            | Op::Prune { node, .. }
            | Op::Forget { node } => node,
            Op::Record(r) => &r.node_id,
            // Not a valid node id: the rollout's writes never mix with a node's.
            Op::Rollout(_) => "",
        }
    }
}

/// What a batch made durable, or failed to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Done {
    /// Per node, the highest generation now on disk with its record.
    pub durable: BTreeMap<String, u64>,
    /// Per node, the generations that could not be written, with the reason.
    pub failed: Vec<(String, u64, String)>,
    /// Operations written in this batch (the reconciler counts what is pending).
    pub ops: usize,
}

/// Runs the persist thread until `ops` closes. `done` is told after every batch.
pub fn run(store: Store, ops: Receiver<Op>, done: impl Fn(Done)) {
    while let Ok(first) = ops.recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match ops.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        done(write_batch(&store, batch));
    }
}

/// Writes one batch in order, skipping records superseded later in the batch.
pub fn write_batch(store: &Store, batch: Vec<Op>) -> Done {
    let mut out = Done {
        ops: batch.len(),
        ..Done::default()
    };
    let superseded = superseded(&batch);
    let mut failed_nodes: BTreeMap<String, String> = BTreeMap::new();
    for (i, op) in batch.into_iter().enumerate() {
        if superseded.get(i).copied().unwrap_or(false) {
            continue;
        }
        let node = op.node().to_owned();
        let result = match &op {
            Op::Generation {
                generation, text, ..
            } => {
                if failed_nodes.contains_key(&node) {
                    out.failed
                        .push((node, *generation, "an earlier write failed".into()));
                    continue;
                }
                // Durable with the record that names it (below).
                let r = store.write_generation(&node, *generation, text);
                if let Err(e) = &r {
                    out.failed.push((node.clone(), *generation, e.to_string()));
                    failed_nodes.insert(node.clone(), e.to_string());
                }
                r
            }
            Op::Record(record) => {
                // A record never names a generation whose text could not be written.
                if failed_nodes.contains_key(&node) {
                    continue;
                }
                let r = store.save_record(record);
                if r.is_ok() {
                    let current = record.current;
                    let d = out.durable.entry(node.clone()).or_default();
                    *d = (*d).max(current);
                }
                r
            }
            Op::Base { text, .. } => store.save_base(&node, text),
            Op::Live { live, .. } => store.save_live(&node, live),
            Op::Prune { keep_from, .. } => store.prune(&node, *keep_from).map(|_| ()),
            Op::Forget { .. } => {
                out.durable.remove(&node);
                store.forget(&node)
            }
            Op::Rollout(r) => store.save_rollout(r),
        };
        if let Err(e) = result {
            tracing::error!(node = %node, error = %e, "cannot write the state directory");
        }
    }
    out
}

/// For each op, whether a later op of the same kind for the same node (with no `Forget` of
/// that node between) makes it pointless: `Record`, `Live` and `Base` only.
fn superseded(batch: &[Op]) -> Vec<bool> {
    let mut out = vec![false; batch.len()];
    // Walking backwards: the kinds already seen later, per node.
    let mut later: BTreeMap<(&str, u8), ()> = BTreeMap::new();
    for (i, op) in batch.iter().enumerate().rev() {
        let kind = match op {
            Op::Record(_) => 1,
            Op::Live { .. } => 2,
            Op::Base { .. } => 3,
            Op::Rollout(_) => 4,
            Op::Forget { node } => {
                later.retain(|(n, _), _| n != node);
                continue;
            }
            _ => continue,
        };
        if later.insert((op.node(), kind), ()).is_some() {
            if let Some(s) = out.get_mut(i) {
                *s = true;
            }
        }
    }
    out
}

/// Starts the persist thread; its reports go to `done`.
pub fn spawn(
    store: Store,
    ops: Receiver<Op>,
    done: impl Fn(Done) + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("persist".into())
        .spawn(move || run(store, ops, done))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(node: &str, current: u64) -> Op {
        Op::Record(NodeRecord {
            node_id: node.into(),
            current,
            ..NodeRecord::default()
        })
    }

    #[test]
    fn a_batch_writes_generations_and_only_the_last_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let text: Arc<str> = Arc::from("x");
        let batch = vec![
            Op::Generation {
                node: "a".into(),
                generation: 1,
                text: text.clone(),
            },
            record("a", 1),
            Op::Generation {
                node: "a".into(),
                generation: 2,
                text,
            },
            record("a", 2),
        ];
        assert_eq!(superseded(&batch), [false, true, false, false]);
        let done = write_batch(&store, batch);
        assert_eq!(done.durable["a"], 2);
        assert!(done.failed.is_empty());
        let loaded = store.load_all().unwrap();
        assert_eq!(loaded["a"].record.current, 2);
        assert_eq!(loaded["a"].next_generation, 3);
    }

    #[test]
    fn forget_separates_records() {
        let batch = vec![
            record("a", 1),
            Op::Forget { node: "a".into() },
            record("a", 1),
        ];
        assert_eq!(superseded(&batch), [false, false, false]);
    }
}
