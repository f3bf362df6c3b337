//! Certificate rotation: a thread that notices when TLS material files change.
//!
//! Every period it stats the files the current configuration read (`Config::tls_files`,
//! through the caller's `files` function, so a reload that names other files is followed)
//! and compares modification time, size, inode and device with the previous round. A change
//! is reported once the files have stayed unchanged for one more period, so that a cert and
//! key written one after the other are read as a pair; then `on_change` runs on this thread
//! (the caller re-validates with `ringside_config::reload_material` and publishes). A file
//! that disappears or reappears counts as a change. Cheap: a few `stat`s a second, no
//! worker involved. Dropping the [`Watcher`] stops the thread at once.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

/// What identifies one version of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
    device: u64,
}

fn stamp(path: &PathBuf) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        modified: m.modified().ok(),
        len: m.len(),
        inode: m.ino(),
        device: m.dev(),
    })
}

/// The running watcher thread; dropping it stops the thread (without waiting for it).
#[derive(Debug)]
pub(crate) struct Watcher {
    /// Dropping the sender wakes the thread, which then exits.
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Stops the thread and waits for it (at most the duration of an `on_change` call).
    pub(crate) fn stop(mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.take();
    }
}

/// Starts the watcher thread: every `period` (1 s in production) it stats `files()` and
/// calls `on_change` after a change has settled (see the module header).
pub(crate) fn spawn_watcher(
    files: impl Fn() -> Vec<PathBuf> + Send + 'static,
    on_change: impl Fn() + Send + 'static,
    period: Duration,
) -> std::io::Result<Watcher> {
    let (stop, stopped) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("ringside-tls-watch".into())
        .spawn(move || {
            // The baseline is taken at once, not at the first tick: a file replaced right
            // after the configuration was read must still count as a change.
            let mut seen: HashMap<PathBuf, Option<Stamp>> = files()
                .into_iter()
                .map(|p| (p.clone(), stamp(&p)))
                .collect();
            let mut pending = false;
            loop {
                match stopped.recv_timeout(period) {
                    Err(RecvTimeoutError::Timeout) => {}
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                }
                let mut changed = false;
                let mut now: HashMap<PathBuf, Option<Stamp>> = HashMap::new();
                for path in files() {
                    let s = stamp(&path);
                    // A file new to the set was just read by the reload that named it.
                    if seen.get(&path).is_some_and(|old| *old != s) {
                        changed = true;
                    }
                    now.insert(path, s);
                }
                seen = now;
                if changed {
                    pending = true;
                } else if pending {
                    pending = false;
                    on_change();
                }
            }
        })?;
    Ok(Watcher {
        stop: Some(stop),
        thread: Some(thread),
    })
}
