//! The files source. The config directory: `DIR/<node-id>.toml` is a node's desired
//! configuration, `DIR/default.toml` that of every node without its own file. Scanned (and
//! validated) on this source's own thread at start and whenever inotify reports a change
//! (plus a slow periodic rescan in case an event was missed); each scan goes to the
//! reconciler whole, which applies the files that changed.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use inotify::{Inotify, WatchMask};

use ringside_wire::FileErrors;

use crate::persist::store::fnv64;

/// The name of the file every node without its own file falls back to.
pub const DEFAULT_FILE: &str = "default.toml";

/// One readable `.toml` file of the directory.
#[derive(Debug, Clone, PartialEq)]
pub struct DirFile {
    /// File name, e.g. `web-1.toml`.
    pub name: String,
    pub text: std::sync::Arc<str>,
    /// [`fnv64`] of `text`.
    pub hash: String,
    /// Validation errors (`path: message`); empty when the file is valid.
    pub errors: Vec<String>,
}

/// What the directory holds right now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scan {
    pub default: Option<DirFile>,
    /// By node id.
    pub nodes: BTreeMap<String, DirFile>,
    /// Files that could not be read or are not named after a valid node id.
    pub unreadable: Vec<(String, String)>,
}

impl Scan {
    /// The file that applies to `node`: its own, else `default.toml`.
    pub fn file_for(&self, node: &str) -> Option<&DirFile> {
        self.nodes.get(node).or(self.default.as_ref())
    }
}

/// Reads every `*.toml` of `dir` and validates it: as a configuration, or with `templates`
/// (ctld's `--xds`) as the template of one (`sources/xds`). Hidden files and editors'
/// temporaries (`.name.toml.swp`, `name.toml~`) are not `*.toml` or start with a dot, so they
/// are skipped.
pub fn scan(dir: &Path, templates: bool) -> Scan {
    let mut out = Scan::default();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            out.unreadable
                .push((dir.display().to_string(), format!("cannot read: {e}")));
            return out;
        }
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".toml") else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let text = match fs::read_to_string(entry.path()) {
            Ok(t) => t,
            Err(e) => {
                out.unreadable.push((name, format!("cannot read: {e}")));
                continue;
            }
        };
        let errors = if templates {
            crate::sources::xds::template_errors(&text)
        } else {
            match ringside_config::parse(&text) {
                Ok(_) => Vec::new(),
                Err(errs) => errs.0.iter().map(ToString::to_string).collect(),
            }
        };
        let file = DirFile {
            hash: fnv64(&text),
            name: name.clone(),
            text: text.into(),
            errors,
        };
        if name == DEFAULT_FILE {
            out.default = Some(file);
        } else if let Err(e) = ringside_wire::validate_node_id(stem) {
            out.unreadable.push((name, e));
        } else {
            out.nodes.insert(stem.to_owned(), file);
        }
    }
    out
}

/// Watches `dir` and calls `on_change` after each burst of changes (debounced by 50 ms),
/// and every `fallback` regardless. Runs until `on_change` returns false.
pub fn watch(dir: PathBuf, fallback: Duration, mut on_change: impl FnMut() -> bool) {
    let inotify = Inotify::init().and_then(|ino| {
        ino.watches()
            .add(
                &dir,
                WatchMask::CLOSE_WRITE
                    | WatchMask::MOVED_TO
                    | WatchMask::MOVED_FROM
                    | WatchMask::DELETE
                    | WatchMask::CREATE
                    | WatchMask::MODIFY,
            )
            .map(|_| ino)
    });
    let mut inotify = match inotify {
        Ok(i) => Some(i),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot watch the config directory; rescanning every {fallback:?}");
            None
        }
    };
    let mut buf = [0u8; 4096];
    loop {
        let ready = match inotify.as_ref() {
            Some(ino) => {
                use std::os::fd::AsFd;
                ringside_wire::socket::wait_readable(ino.as_fd(), Some(fallback)).unwrap_or(false)
            }
            None => {
                std::thread::sleep(fallback);
                false
            }
        };
        if ready {
            // Let a burst of writes (editor save, cp, mv) finish, then drain the events.
            std::thread::sleep(Duration::from_millis(50));
            if let Some(ino) = inotify.as_mut() {
                while let Ok(events) = ino.read_events(&mut buf) {
                    if events.count() == 0 {
                        break;
                    }
                }
            }
        }
        if !on_change() {
            return;
        }
    }
}

/// The rejected files of a scan, sorted by name.
pub fn dir_errors(scan: &Scan) -> Vec<FileErrors> {
    let mut out: Vec<FileErrors> = scan
        .default
        .iter()
        .chain(scan.nodes.values())
        .filter(|f| !f.errors.is_empty())
        .map(|f| FileErrors {
            file: f.name.clone(),
            errors: f.errors.clone(),
        })
        .collect();
    out.extend(scan.unreadable.iter().map(|(file, e)| FileErrors {
        file: file.clone(),
        errors: vec![e.clone()],
    }));
    out.sort_by(|a, b| a.file.cmp(&b.file));
    out
}

/// Logs files that became invalid (not on every rescan).
pub fn log_scan_changes(old: &Scan, new: &Scan) {
    let old_errs = dir_errors(old);
    for f in dir_errors(new) {
        if !old_errs.contains(&f) {
            tracing::error!(file = %f.file, errors = %f.errors.join("; "), "config file rejected; nodes keep their configuration");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_classifies_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let listener = "[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n";
        fs::write(d.join("default.toml"), listener).unwrap();
        fs::write(
            d.join("web-1.toml"),
            format!("[proxy]\nworkers = 0\n{listener}"),
        )
        .unwrap();
        fs::write(
            d.join("web-2.toml"),
            format!("[proxy]\nworkers = 2\n{listener}"),
        )
        .unwrap();
        fs::write(d.join("notes.txt"), "x").unwrap();
        fs::write(d.join(".web-3.toml.swp"), "x").unwrap();
        fs::write(d.join("bad name.toml"), "").unwrap();
        let s = scan(d, false);
        assert!(s.default.as_ref().unwrap().errors.is_empty());
        assert_eq!(
            s.nodes["web-1"].errors,
            ["proxy.workers: must be from 1 to 1024, got 0"]
        );
        assert!(s.nodes["web-2"].errors.is_empty());
        assert_eq!(s.nodes.len(), 2);
        assert_eq!(s.unreadable.len(), 1);
        assert_eq!(s.file_for("web-2").unwrap().name, "web-2.toml");
        assert_eq!(s.file_for("other").unwrap().name, "default.toml");
    }
}
