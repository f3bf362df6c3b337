//! The daemon's state: every known node, its generations, its connected sessions, and the
//! config directory's last scan. One `Mutex` guards it (this is the control plane: a few
//! requests a second at most); disk writes happen under it so that the order of generations
//! on disk is the order of the changes.
//!
//! The one way a node's configuration changes is [`Daemon::change`] → `commit`: a new
//! generation is written to the store, then pushed to every session of the node.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ringside_wire::{CtldStatus, FileErrors, NodeApplied, NodeStatus, PushOutcome, Reply};

use crate::configdir::{self, Scan};
use crate::session::{PushJob, SessionEvent};
use crate::store::{AckRecord, FileSeen, GenerationMeta, NodeRecord, Store};

/// The outcome of one push, sent by the session to whoever waits for it.
pub type PushResult = Result<(), String>;

pub struct Daemon {
    inner: Mutex<Inner>,
    store: Store,
    config_dir: PathBuf,
    /// How long a node may take to acknowledge a push.
    pub ack_timeout: Duration,
}

#[derive(Default)]
struct Inner {
    nodes: BTreeMap<String, Node>,
    scan: Scan,
    next_session: u64,
}

struct Node {
    record: NodeRecord,
    /// The text of `record.current` (None while it is 0).
    current_text: Option<Arc<str>>,
    next_generation: u64,
    sessions: Vec<Session>,
    last_error: Option<String>,
}

struct Session {
    id: u64,
    tx: Sender<SessionEvent>,
    /// The generation this session serves (from its hello, then its acks).
    served: u64,
}

impl Node {
    fn new(id: &str) -> Node {
        Node {
            record: NodeRecord {
                node_id: id.to_owned(),
                ..NodeRecord::default()
            },
            current_text: None,
            next_generation: 1,
            sessions: Vec::new(),
            last_error: None,
        }
    }
}

/// Which nodes a change targets.
enum Targets {
    One(String),
    AllKnown,
}

impl Daemon {
    /// Loads the state directory and applies the config directory once.
    pub fn open(
        store: Store,
        config_dir: &Path,
        ack_timeout: Duration,
    ) -> std::io::Result<Arc<Daemon>> {
        let mut inner = Inner::default();
        for (id, loaded) in store.load_all()? {
            let current_text = if loaded.record.current > 0 {
                Some(Arc::from(
                    store
                        .read_generation(&id, loaded.record.current)
                        .map_err(|e| {
                            std::io::Error::new(
                                e.kind(),
                                format!("node {id}: generation {}: {e}", loaded.record.current),
                            )
                        })?,
                ))
            } else {
                None
            };
            inner.nodes.insert(
                id,
                Node {
                    record: loaded.record,
                    current_text,
                    next_generation: loaded.next_generation,
                    sessions: Vec::new(),
                    last_error: None,
                },
            );
        }
        tracing::info!(nodes = inner.nodes.len(), "state loaded");
        let daemon = Arc::new(Daemon {
            inner: Mutex::new(inner),
            store,
            config_dir: config_dir.to_path_buf(),
            ack_timeout,
        });
        daemon.rescan();
        Ok(daemon)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock is a bug; the state itself stays consistent (every
        // change is written to disk before memory), so carry on with it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the lock and keeps it: used at shutdown so that no write is in progress.
    pub fn freeze(&self) -> impl Sized + '_ {
        self.lock()
    }

    // ── the config directory ───────────────────────────────────────────────────────────

    /// Scans the config directory and applies what changed.
    pub fn rescan(&self) {
        let scan = configdir::scan(&self.config_dir);
        let mut inner = self.lock();
        log_scan_changes(&inner.scan, &scan);
        for id in scan.nodes.keys() {
            inner
                .nodes
                .entry(id.clone())
                .or_insert_with(|| Node::new(id));
        }
        inner.scan = scan;
        let ids: Vec<String> = inner.nodes.keys().cloned().collect();
        for id in ids {
            self.apply_file(&mut inner, &id);
        }
    }

    /// Applies the config-dir file of `id` if it is valid and changed since last applied.
    fn apply_file(&self, inner: &mut Inner, id: &str) {
        let Some(file) = inner.scan.file_for(id) else {
            return;
        };
        if !file.errors.is_empty() {
            return;
        }
        let seen = FileSeen {
            name: file.name.clone(),
            hash: file.hash.clone(),
        };
        let (text, source) = (file.text.clone(), format!("file {}", file.name));
        let Some(node) = inner.nodes.get_mut(id) else {
            return;
        };
        if node.record.file.as_ref() == Some(&seen) {
            return;
        }
        match self.commit(node, &text, &source, Some(seen)) {
            Ok(c) if c.changed => {
                tracing::info!(node = id, generation = c.generation, %source, "new generation")
            }
            Ok(_) => {}
            Err(e) => tracing::error!(node = id, error = %e, "cannot persist a generation"),
        }
    }

    // ── sessions ───────────────────────────────────────────────────────────────────────

    /// Registers a proxy that said hello. Pushes its current configuration if it serves
    /// another generation. Returns the session id.
    pub fn connect(
        &self,
        node_id: &str,
        role: &str,
        generation: u64,
        tx: Sender<SessionEvent>,
    ) -> u64 {
        let mut inner = self.lock();
        inner.next_session += 1;
        let session_id = inner.next_session;
        let is_new = !inner.nodes.contains_key(node_id);
        inner
            .nodes
            .entry(node_id.to_owned())
            .or_insert_with(|| Node::new(node_id));
        if is_new {
            // A node seen for the first time gets its file (its own or default.toml).
            self.apply_file(&mut inner, node_id);
        }
        let Some(node) = inner.nodes.get_mut(node_id) else {
            return session_id;
        };
        if node.record.role.as_deref() != Some(role) || is_new {
            node.record.role = Some(role.to_owned());
            self.save(&node.record);
        }
        if generation != 0 && generation == node.record.current {
            node.record.acked = Some(AckRecord {
                generation,
                at: now_s(),
            });
            self.save(&node.record);
        }
        node.sessions.push(Session {
            id: session_id,
            tx: tx.clone(),
            served: generation,
        });
        if let Some(text) = node.current_text.clone() {
            if generation != node.record.current {
                let _ = tx.send(SessionEvent::Push(PushJob {
                    generation: node.record.current,
                    config: text,
                    waiter: None,
                }));
            }
        }
        tracing::info!(
            node = node_id,
            role,
            generation,
            session = session_id,
            desired = node.record.current,
            "proxy connected"
        );
        session_id
    }

    pub fn disconnect(&self, node_id: &str, session_id: u64) {
        let mut inner = self.lock();
        if let Some(node) = inner.nodes.get_mut(node_id) {
            node.sessions.retain(|s| s.id != session_id);
        }
        tracing::info!(node = node_id, session = session_id, "proxy disconnected");
    }

    /// A session's push was acknowledged (`generation`) or failed (`Err`).
    pub fn push_done(
        &self,
        node_id: &str,
        session_id: u64,
        pushed: u64,
        result: Result<u64, String>,
    ) {
        let mut inner = self.lock();
        let Some(node) = inner.nodes.get_mut(node_id) else {
            return;
        };
        match result {
            Ok(generation) => {
                if let Some(s) = node.sessions.iter_mut().find(|s| s.id == session_id) {
                    s.served = generation;
                }
                node.record.acked = Some(AckRecord {
                    generation,
                    at: now_s(),
                });
                node.last_error = None;
                self.save(&node.record);
                tracing::info!(node = node_id, generation, "acknowledged");
            }
            Err(message) => {
                tracing::warn!(node = node_id, generation = pushed, error = %message, "push failed");
                node.last_error = Some(format!("generation {pushed}: {message}"));
            }
        }
    }

    fn save(&self, record: &NodeRecord) {
        if let Err(e) = self.store.save_record(record) {
            tracing::error!(node = %record.node_id, error = %e, "cannot persist node state");
        }
    }

    // ── changes ────────────────────────────────────────────────────────────────────────

    /// Makes `text` the current configuration of `node`: a new generation unless identical,
    /// written to disk, then pushed to the node's sessions (those not serving it already).
    fn commit(
        &self,
        node: &mut Node,
        text: &str,
        source: &str,
        file: Option<FileSeen>,
    ) -> std::io::Result<Committed> {
        let changed = node.current_text.as_deref() != Some(text);
        let file_changed = file.is_some() && node.record.file != file;
        if changed {
            let generation = node.next_generation;
            self.store
                .write_generation(&node.record.node_id, generation, text)?;
            let mut record = node.record.clone();
            record.current = generation;
            record.history.push(GenerationMeta {
                generation,
                created_at: now_s(),
                source: source.to_owned(),
            });
            if file.is_some() {
                record.file = file;
            }
            self.store.save_record(&record)?;
            node.record = record;
            node.next_generation = generation + 1;
            node.current_text = Some(Arc::from(text));
        } else if file_changed {
            node.record.file = file;
            self.save(&node.record);
        }
        let generation = node.record.current;
        let mut waits = Vec::new();
        if let Some(config) = node.current_text.clone() {
            for s in node.sessions.iter().filter(|s| s.served != generation) {
                let (tx, rx) = mpsc::channel();
                let job = PushJob {
                    generation,
                    config: config.clone(),
                    waiter: Some(tx),
                };
                if s.tx.send(SessionEvent::Push(job)).is_ok() {
                    waits.push(rx);
                }
            }
        }
        Ok(Committed {
            generation,
            changed,
            connected: !node.sessions.is_empty(),
            waits,
        })
    }

    fn resolve(&self, inner: &mut Inner, node: Option<&str>) -> Result<Vec<String>, String> {
        match targets(node) {
            Targets::One(id) => {
                ringside_wire::validate_node_id(&id)?;
                Ok(vec![id])
            }
            Targets::AllKnown if inner.nodes.is_empty() => {
                Err("no node is known yet: name one with --node".into())
            }
            Targets::AllKnown => Ok(inner.nodes.keys().cloned().collect()),
        }
    }

    /// The one way a node's configuration changes on request: for each target node,
    /// `edit` gives the new text and the source to record (or an error); every new text is
    /// validated; only when all are valid is anything committed. Then waits for the acks.
    pub fn change(
        &self,
        node: Option<&str>,
        edit: impl Fn(&EditCtx<'_>) -> Result<(String, String), String>,
    ) -> Reply {
        let mut inner = self.lock();
        let ids = match self.resolve(&mut inner, node) {
            Ok(ids) => ids,
            Err(e) => return Reply::error(e),
        };
        let multi = ids.len() > 1;
        let mut planned = Vec::new();
        for id in &ids {
            let fresh;
            let n = match inner.nodes.get(id) {
                Some(n) => n,
                None => {
                    fresh = Node::new(id);
                    &fresh
                }
            };
            let ctx = EditCtx {
                id,
                current: n.current_text.as_deref(),
                record: &n.record,
                store: &self.store,
            };
            let (text, source) = match edit(&ctx) {
                Ok(t) => t,
                Err(e) if multi && !e.starts_with(&format!("node {id} ")) => {
                    return Reply::error(format!("node {id}: {e}"))
                }
                Err(e) => return Reply::error(e),
            };
            if let Err(errs) = ringside_config::parse(&text) {
                let errors: Vec<String> = errs.0.iter().map(ToString::to_string).collect();
                let prefix = if multi {
                    format!("node {id}: ")
                } else {
                    String::new()
                };
                return Reply::Error {
                    message: format!(
                        "{prefix}configuration refused ({})",
                        plural(errors.len(), "error")
                    ),
                    errors,
                };
            }
            planned.push((id.clone(), text, source));
        }
        let mut committed = Vec::new();
        for (id, text, source) in planned {
            let node = inner
                .nodes
                .entry(id.clone())
                .or_insert_with(|| Node::new(&id));
            match self.commit(node, &text, &source, None) {
                Ok(c) => {
                    if c.changed {
                        tracing::info!(node = %id, generation = c.generation, %source, "new generation");
                    }
                    committed.push((id, c))
                }
                Err(e) => {
                    tracing::error!(node = %id, error = %e, "cannot persist a generation");
                    return Reply::error(format!("node {id}: cannot persist the generation: {e}"));
                }
            }
        }
        drop(inner);
        let deadline = Instant::now() + self.ack_timeout + Duration::from_millis(500);
        let nodes = committed
            .into_iter()
            .map(|(node, c)| NodeApplied {
                outcome: wait_outcome(&c, deadline, self.ack_timeout),
                node,
                generation: c.generation,
                changed: c.changed,
            })
            .collect();
        Reply::Applied { nodes }
    }

    /// The current text of each target (None when it has none), for `diff`.
    pub fn current_texts(&self, node: Option<&str>) -> Result<Vec<Current>, String> {
        let mut inner = self.lock();
        let ids = self.resolve(&mut inner, node)?;
        Ok(ids
            .into_iter()
            .map(|id| {
                let n = inner.nodes.get(&id);
                let generation = n.map_or(0, |n| n.record.current);
                let text = n.and_then(|n| n.current_text.clone());
                (id, generation, text)
            })
            .collect())
    }

    /// The text of `generation` (default: current) of `node` (default: the only known node).
    pub fn get_config(
        &self,
        node: Option<&str>,
        generation: Option<u64>,
    ) -> Result<(String, u64, String), String> {
        let inner = self.lock();
        let id = match node {
            Some(id) => id.to_owned(),
            None => match inner.nodes.len() {
                0 => return Err("no node is known yet".into()),
                1 => inner.nodes.keys().next().cloned().unwrap_or_default(),
                _ => {
                    let names: Vec<&str> = inner.nodes.keys().map(String::as_str).collect();
                    return Err(format!(
                        "{} nodes are known ({}): name one with --node",
                        names.len(),
                        names.join(", ")
                    ));
                }
            },
        };
        let n = inner
            .nodes
            .get(&id)
            .ok_or_else(|| format!("unknown node {id:?}"))?;
        let generation = generation.unwrap_or(n.record.current);
        if generation == 0 {
            return Err(format!("node {id} has no configuration yet"));
        }
        if generation == n.record.current {
            if let Some(t) = &n.current_text {
                return Ok((id, generation, t.to_string()));
            }
        }
        if !n.record.history.iter().any(|g| g.generation == generation) {
            return Err(format!(
                "node {id} has no generation {generation} ({})",
                range(&n.record)
            ));
        }
        let text = self
            .store
            .read_generation(&id, generation)
            .map_err(|e| format!("node {id}: generation {generation}: {e}"))?;
        Ok((id, generation, text))
    }

    pub fn status(&self) -> CtldStatus {
        let inner = self.lock();
        let nodes = inner
            .nodes
            .values()
            .map(|n| NodeStatus {
                node_id: n.record.node_id.clone(),
                role: n.record.role.clone(),
                connected: !n.sessions.is_empty(),
                generation_desired: n.record.current,
                generation_acked: n.record.acked.map(|a| a.generation),
                acked_at: n.record.acked.map(|a| a.at),
                last_error: n.last_error.clone(),
            })
            .collect();
        CtldStatus {
            nodes,
            config_dir_errors: dir_errors(&inner.scan),
        }
    }
}

/// A node's id, current generation and its text (None while it has none).
pub type Current = (String, u64, Option<Arc<str>>);

/// What an edit sees of one node.
pub struct EditCtx<'a> {
    pub id: &'a str,
    /// The node's current text; None while it has no configuration.
    pub current: Option<&'a str>,
    record: &'a NodeRecord,
    store: &'a Store,
}

impl EditCtx<'_> {
    /// The current text, or an error naming the node.
    pub fn require_current(&self) -> Result<&str, String> {
        self.current
            .ok_or_else(|| format!("node {} has no configuration yet", self.id))
    }

    /// The generation to roll back to (`to`, default: the one before the current one) and
    /// its text.
    pub fn rollback_target(&self, to: Option<u64>) -> Result<(u64, String), String> {
        let id = self.id;
        let r = self.record;
        let to = match to {
            Some(t) => t,
            None => r
                .history
                .iter()
                .map(|g| g.generation)
                .filter(|&g| g < r.current)
                .max()
                .ok_or_else(|| match r.current {
                    0 => format!("node {id} has no configuration yet"),
                    c => format!("node {id} has no generation before {c}"),
                })?,
        };
        if !r.history.iter().any(|g| g.generation == to) {
            return Err(format!("node {id} has no generation {to} ({})", range(r)));
        }
        let text = self
            .store
            .read_generation(id, to)
            .map_err(|e| format!("node {id}: generation {to}: {e}"))?;
        Ok((to, text))
    }
}

struct Committed {
    generation: u64,
    changed: bool,
    connected: bool,
    waits: Vec<Receiver<PushResult>>,
}

fn wait_outcome(c: &Committed, deadline: Instant, ack_timeout: Duration) -> PushOutcome {
    if !c.connected {
        return PushOutcome::NotConnected;
    }
    for rx in &c.waits {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Ok(())) => {}
            Ok(Err(message)) => return PushOutcome::Failed { message },
            Err(RecvTimeoutError::Timeout) => {
                return PushOutcome::Failed {
                    message: format!("no acknowledgement within {}", secs(ack_timeout)),
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                return PushOutcome::Failed {
                    message: "the node disconnected before acknowledging".into(),
                }
            }
        }
    }
    PushOutcome::Acked
}

fn targets(node: Option<&str>) -> Targets {
    match node {
        Some(id) => Targets::One(id.to_owned()),
        None => Targets::AllKnown,
    }
}

fn dir_errors(scan: &Scan) -> Vec<FileErrors> {
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

/// Logs files that became invalid or valid again (not every rescan).
fn log_scan_changes(old: &Scan, new: &Scan) {
    let old_errs = dir_errors(old);
    for f in dir_errors(new) {
        if !old_errs.contains(&f) {
            tracing::error!(file = %f.file, errors = %f.errors.join("; "), "config file rejected; nodes keep their configuration");
        }
    }
}

fn range(r: &NodeRecord) -> String {
    match (r.history.first(), r.history.last()) {
        (Some(a), Some(b)) => format!("it has {} to {}", a.generation, b.generation),
        _ => "it has none".into(),
    }
}

pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

pub fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
