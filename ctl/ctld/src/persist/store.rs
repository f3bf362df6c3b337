//! The state directory: everything ctld applied, durable and never renumbered.
//!
//! ```text
//! STATE/nodes/<node-id>/<generation>.toml   the text of each kept generation (written first)
//! STATE/nodes/<node-id>/node.json           current generation, kept history, file seen,
//!                                           base source and overrides (rewritten per commit)
//! STATE/nodes/<node-id>/base.toml           the base the overrides are layered on
//! STATE/nodes/<node-id>/live.json           last acknowledgement, last seen (small; per ack)
//! STATE/rollout.json                        the current or last rollout (`rollout.rs`)
//! ```
//!
//! Every write is atomic (temporary file, fsync, rename, fsync of the directory), so a crash
//! leaves either the old or the new file. A generation file without a history entry (a crash
//! between the two writes) still counts when the next number is chosen: numbers are never
//! reused. Older generations are pruned ([`Store::prune`]): `node.json` then names the oldest
//! kept one in `pruned_below`, so numbering survives the pruning too.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::desired::Override;
use crate::persist::RolloutRecord;

/// What ctld remembers about one node (`node.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeRecord {
    pub node_id: String,
    /// The node's current generation; 0 while ctld has no configuration for it.
    pub current: u64,
    /// From the node's last hello.
    #[serde(default)]
    pub role: Option<String>,
    /// From the node's last hello or status: what selectors match.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: ringside_wire::Labels,
    /// The kept generations, oldest first.
    #[serde(default)]
    pub history: Vec<GenerationMeta>,
    /// Written by earlier versions; now in `live.json`. Read once, never written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acked: Option<AckRecord>,
    /// The config-directory file whose content was last applied to this node.
    #[serde(default)]
    pub file: Option<FileSeen>,
    /// Who set the base configuration (`file web-1.toml`, `apply`, `rollback to 3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_source: Option<String>,
    /// The operator's overrides layered on the base.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<Override>,
}

/// What changes with every acknowledgement and connection (`live.json`), kept apart from
/// `node.json` so an ack rewrites a few bytes, not the history.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveRecord {
    #[serde(default)]
    pub acked: Option<AckRecord>,
    /// When the node was last connected or edited, seconds since the Unix epoch.
    #[serde(default)]
    pub seen_at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerationMeta {
    pub generation: u64,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
    /// What made it: `file default.toml`, `apply`, `endpoints add api`, `rollback to 3`…
    pub source: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckRecord {
    pub generation: u64,
    /// Seconds since the Unix epoch.
    pub at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSeen {
    /// File name inside the config directory.
    pub name: String,
    /// FNV-1a 64 of its text, 16 hex digits.
    pub hash: String,
}

/// A node loaded from disk: its record, the next free generation number, and the texts the
/// reconciler keeps in memory.
#[derive(Debug, Clone)]
pub struct LoadedNode {
    pub record: NodeRecord,
    pub live: LiveRecord,
    pub next_generation: u64,
    /// The current generation's text (None while it is 0).
    pub current_text: Option<String>,
    /// `base.toml`, else the current text.
    pub base_text: Option<String>,
}

/// The state directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the state directory.
    pub fn open(root: &Path) -> io::Result<Store> {
        fs::create_dir_all(root.join("nodes"))
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", root.display())))?;
        Ok(Store {
            root: root.to_path_buf(),
        })
    }

    fn node_dir(&self, id: &str) -> PathBuf {
        self.root.join("nodes").join(id)
    }

    /// Loads every node. A `node.json` that cannot be read is an error: starting without it
    /// would renumber generations.
    pub fn load_all(&self) -> io::Result<BTreeMap<String, LoadedNode>> {
        let mut out = BTreeMap::new();
        let dir = self.root.join("nodes");
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            if !entry.file_type()?.is_dir() {
                continue;
            }
            let Some(id) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if ringside_wire::validate_node_id(&id).is_err() {
                continue;
            }
            let path = entry.path();
            remove_temporaries(&path);
            let max_file = max_generation_file(&path)?;
            let meta_path = path.join("node.json");
            let record = match fs::read(&meta_path) {
                Ok(bytes) => serde_json::from_slice::<NodeRecord>(&bytes).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: {e}", meta_path.display()),
                    )
                })?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => NodeRecord {
                    node_id: id.clone(),
                    ..NodeRecord::default()
                },
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("{}: {e}", meta_path.display()),
                    ))
                }
            };
            let max_hist = record
                .history
                .iter()
                .map(|g| g.generation)
                .max()
                .unwrap_or(0);
            let next_generation = max_file.max(max_hist).max(record.current) + 1;
            let mut live: LiveRecord = read_json(&path.join("live.json"))?.unwrap_or_default();
            if live.acked.is_none() {
                live.acked = record.acked;
            }
            let current_text = match record.current {
                0 => None,
                g => Some(self.read_generation(&id, g).map_err(|e| {
                    io::Error::new(e.kind(), format!("node {id}: generation {g}: {e}"))
                })?),
            };
            let base_text = match fs::read_to_string(path.join("base.toml")) {
                Ok(t) => Some(t),
                Err(e) if e.kind() == io::ErrorKind::NotFound => current_text.clone(),
                Err(e) => return Err(e),
            };
            out.insert(
                id,
                LoadedNode {
                    record,
                    live,
                    next_generation,
                    current_text,
                    base_text,
                },
            );
        }
        Ok(out)
    }

    pub fn save_live(&self, id: &str, live: &LiveRecord) -> io::Result<()> {
        let dir = self.node_dir(id);
        fs::create_dir_all(&dir)?;
        let bytes = serde_json::to_vec(live).map_err(io::Error::other)?;
        atomic_write(&dir.join("live.json"), &bytes)
    }

    pub fn save_base(&self, id: &str, text: &str) -> io::Result<()> {
        let dir = self.node_dir(id);
        fs::create_dir_all(&dir)?;
        atomic_write(&dir.join("base.toml"), text.as_bytes())
    }

    /// Removes the generation files of `id` below `keep_from`.
    pub fn prune(&self, id: &str, keep_from: u64) -> io::Result<usize> {
        let mut removed = 0;
        for entry in fs::read_dir(self.node_dir(id))? {
            let entry = entry?;
            if generation_of(&entry.file_name()).is_some_and(|g| g < keep_from) {
                fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Removes everything ctld kept about `id`.
    pub fn forget(&self, id: &str) -> io::Result<()> {
        match fs::remove_dir_all(self.node_dir(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Writes a generation's text (before the record that names it).
    pub fn write_generation(&self, id: &str, generation: u64, text: &str) -> io::Result<()> {
        let dir = self.node_dir(id);
        fs::create_dir_all(&dir)?;
        atomic_write(&dir.join(format!("{generation}.toml")), text.as_bytes())
    }

    /// Reads a generation's text. Generation files never change once written, so any thread
    /// may read them.
    pub fn read_generation(&self, id: &str, generation: u64) -> io::Result<String> {
        fs::read_to_string(self.node_dir(id).join(format!("{generation}.toml")))
    }

    /// The current or last rollout, if there ever was one.
    pub fn load_rollout(&self) -> io::Result<Option<RolloutRecord>> {
        read_json(&self.root.join("rollout.json"))
    }

    pub fn save_rollout(&self, rollout: &RolloutRecord) -> io::Result<()> {
        let mut bytes = serde_json::to_vec_pretty(rollout).map_err(io::Error::other)?;
        bytes.push(b'\n');
        atomic_write(&self.root.join("rollout.json"), &bytes)
    }

    pub fn save_record(&self, record: &NodeRecord) -> io::Result<()> {
        let dir = self.node_dir(&record.node_id);
        fs::create_dir_all(&dir)?;
        let mut bytes = serde_json::to_vec_pretty(record).map_err(io::Error::other)?;
        bytes.push(b'\n');
        atomic_write(&dir.join("node.json"), &bytes)
    }
}

/// The largest `<n>.toml` in a node's directory (0 if none).
fn max_generation_file(dir: &Path) -> io::Result<u64> {
    let mut max = 0;
    for entry in fs::read_dir(dir)? {
        if let Some(n) = generation_of(&entry?.file_name()) {
            max = max.max(n);
        }
    }
    Ok(max)
}

fn generation_of(name: &std::ffi::OsStr) -> Option<u64> {
    name.to_str()
        .and_then(|s| s.strip_suffix(".toml"))
        .and_then(|s| s.parse::<u64>().ok())
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
    }
}

fn remove_temporaries(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(".tmp.") {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync,
/// rename over `path`, fsync of the directory.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no parent"))?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = dir.join(format!(
        ".tmp.{}.{}",
        std::process::id(),
        name.to_string_lossy()
    ));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// FNV-1a 64: a hash that is stable across builds (unlike std's), for file contents.
pub fn fnv64(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests;
