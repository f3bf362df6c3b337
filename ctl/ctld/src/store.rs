//! The state directory: everything ctld applied, durable and never renumbered.
//!
//! ```text
//! STATE/nodes/<node-id>/<generation>.toml   the text of each generation (written first)
//! STATE/nodes/<node-id>/node.json           current generation, history, last ack, file seen
//! ```
//!
//! Every write is atomic (temporary file, fsync, rename, fsync of the directory), so a crash
//! leaves either the old or the new file. A generation file without a history entry (a crash
//! between the two writes) still counts when the next number is chosen: numbers are never
//! reused.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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
    /// Every generation, oldest first.
    #[serde(default)]
    pub history: Vec<GenerationMeta>,
    #[serde(default)]
    pub acked: Option<AckRecord>,
    /// The config-directory file whose content was last applied to this node.
    #[serde(default)]
    pub file: Option<FileSeen>,
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

/// A node loaded from disk: its record and the next free generation number.
#[derive(Debug, Clone)]
pub struct LoadedNode {
    pub record: NodeRecord,
    pub next_generation: u64,
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
            out.insert(
                id,
                LoadedNode {
                    record,
                    next_generation,
                },
            );
        }
        Ok(out)
    }

    /// Writes a generation's text (before the record that names it).
    pub fn write_generation(&self, id: &str, generation: u64, text: &str) -> io::Result<()> {
        let dir = self.node_dir(id);
        fs::create_dir_all(&dir)?;
        atomic_write(&dir.join(format!("{generation}.toml")), text.as_bytes())
    }

    pub fn read_generation(&self, id: &str, generation: u64) -> io::Result<String> {
        fs::read_to_string(self.node_dir(id).join(format!("{generation}.toml")))
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
        let name = entry?.file_name();
        if let Some(n) = name
            .to_str()
            .and_then(|s| s.strip_suffix(".toml"))
            .and_then(|s| s.parse::<u64>().ok())
        {
            max = max.max(n);
        }
    }
    Ok(max)
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
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_next_generation() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.write_generation("a", 1, "one").unwrap();
        store.write_generation("a", 2, "two").unwrap();
        let rec = NodeRecord {
            node_id: "a".into(),
            current: 2,
            history: vec![
                GenerationMeta {
                    generation: 1,
                    created_at: 1,
                    source: "apply".into(),
                },
                GenerationMeta {
                    generation: 2,
                    created_at: 2,
                    source: "apply".into(),
                },
            ],
            ..NodeRecord::default()
        };
        store.save_record(&rec).unwrap();
        // A crash after writing generation 3's text but before its record:
        store.write_generation("a", 3, "three").unwrap();
        let all = Store::open(dir.path()).unwrap().load_all().unwrap();
        assert_eq!(all["a"].record, rec);
        assert_eq!(all["a"].next_generation, 4);
        assert_eq!(store.read_generation("a", 2).unwrap(), "two");
    }

    #[test]
    fn corrupt_record_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        fs::create_dir_all(dir.path().join("nodes/a")).unwrap();
        fs::write(dir.path().join("nodes/a/node.json"), "{not json").unwrap();
        assert!(store.load_all().is_err());
    }

    #[test]
    fn atomic_write_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        atomic_write(&p, b"1").unwrap();
        atomic_write(&p, b"2").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"2");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn fnv_is_stable() {
        assert_eq!(fnv64(""), "cbf29ce484222325");
        assert_eq!(fnv64("a"), "af63dc4c8601ec8c");
    }
}
