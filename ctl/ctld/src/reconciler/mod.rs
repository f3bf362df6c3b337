//! The reconciler: one thread that owns all of ctld's state, fed by one bounded channel of
//! [`Event`]s. It never touches a disk or a socket: writes go to the persist thread, pushes
//! to the sessions' writer threads, replies to the CLI threads, all through channels that
//! never block it. So `status` answers while a proxy is frozen or the disk is slow.
//!
//! ```text
//! sources (files, CLI edits, xDS) ─▶ desired (plan → commit, generations) ─▶ target per node
//!     ─▶ sessions (one push in flight, coalesced, retried) ─▶ proxies
//!     └▶ persist thread (state dir, retention) ─▶ Persisted ─▶ target
//! ```
//!
//! `changes.rs` handles the CLI's requests and the waits for their outcomes; `nodes.rs` the
//! proxies' sessions, the config directory, persistence reports, forgetting and status;
//! `rollout/` the progressive rollout, which holds some nodes back while others are judged.

mod changes;
pub mod metrics;
mod nodes;
mod rollout;
#[cfg(test)]
mod tests;
mod waiters;
mod xds;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use ringside_wire::{CtldStatus, Labels, Reply, RolloutSpec, RolloutStatus};

pub use changes::{Change, Current, EditSpec, Found, Pick, Purpose};

use crate::clock::Now;
use crate::desired::NodeDesired;
use crate::error::CtldError;
use crate::persist::{Done, LiveRecord, LoadedNode, Op, RolloutRecord};
use crate::sessions::registry::{Registry, SessionCmd, SessionId, Timing};
use crate::sources::files::Scan;

/// Events queued for the reconciler at most; senders wait beyond.
pub const EVENTS: usize = 1024;
/// Writes the persist thread may be behind before changes are refused.
const MAX_PENDING_WRITES: usize = 16_384;
/// Housekeeping (forgetting nodes) runs at least this often.
const HOUSEKEEPING: Duration = Duration::from_secs(1);

pub enum Event {
    Api(ApiCall),
    /// The config directory, scanned (and validated) by the files source.
    Scan(Scan),
    Connected {
        session: SessionId,
        node: String,
        role: String,
        generation: u64,
        labels: Labels,
        tx: Sender<SessionCmd>,
    },
    Reply {
        session: SessionId,
        id: u64,
        reply: Reply,
    },
    Disconnected {
        session: SessionId,
    },
    Persisted(Done),
    /// A node's configuration from the xDS source, validated.
    Xds(crate::sources::xds::Update),
    /// Stop; answered once the reconciler let go of the persist queue.
    Stop(Sender<()>),
}

/// A CLI thread's request; each carries where to send the answer.
pub enum ApiCall {
    Status(Sender<CtldStatus>),
    Change {
        pick: Pick,
        change: Change,
        wait: bool,
        reply: Sender<Reply>,
    },
    /// The current text of each target (for `diff`).
    Current {
        pick: Pick,
        reply: Sender<Result<Vec<Current>, CtldError>>,
    },
    /// Which generation `get config` or `rollback` reads, per target.
    Lookup {
        pick: Pick,
        generation: Option<u64>,
        purpose: Purpose,
        reply: Sender<Result<Vec<Found>, CtldError>>,
    },
    /// What `/metrics` shows.
    Metrics(Sender<metrics::Metrics>),
    /// `rollout_*`: the rollout as it stands after the call.
    Rollout {
        call: RolloutCall,
        reply: Sender<Result<Option<RolloutStatus>, CtldError>>,
    },
}

/// What the operator asks of the rollout.
pub enum RolloutCall {
    /// Validated by the caller.
    Start(RolloutSpec),
    Status,
    Pause,
    Resume,
    Abort,
}

#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub timing: Timing,
    /// Generations kept per node (history and files).
    pub keep: usize,
    /// A node without a file of its own, unseen this long, is forgotten.
    pub forget_after: Duration,
}

struct Node {
    desired: NodeDesired,
    /// What sessions are pushed: the newest durable generation and its text.
    target: Option<(u64, Arc<str>)>,
    live: LiveRecord,
    /// Last connected, disconnected or edited.
    seen: Instant,
    last_error: Option<String>,
    /// Keys of the last acknowledged generation that wait for the node's restart.
    pending_restart: Vec<String>,
}

pub struct Reconciler {
    nodes: BTreeMap<String, Node>,
    sessions: Registry,
    scan: Scan,
    waiters: Vec<waiters::Waiter>,
    persist: Sender<Op>,
    pending_writes: usize,
    settings: Settings,
    /// The current rollout, or the last one.
    rollout: Option<rollout::Live>,
    counters: metrics::Counters,
    /// With `--xds`: the xDS source's link (`xds.rs`).
    xds: Option<xds::Link>,
}

impl Reconciler {
    /// The state loaded from disk; `persist` is the persist thread's queue.
    pub fn new(
        loaded: BTreeMap<String, LoadedNode>,
        rollout: Option<RolloutRecord>,
        persist: Sender<Op>,
        settings: Settings,
        now: Now,
    ) -> Reconciler {
        let nodes = loaded
            .into_iter()
            .map(|(id, l)| {
                let live = l.live;
                let desired = NodeDesired::loaded(l);
                let target = desired.text.clone().map(|t| (desired.current(), t));
                // Unseen since `seen_at`, as far as the monotonic clock allows.
                let ago = Duration::from_secs(now.unix.saturating_sub(live.seen_at));
                let seen = now.mono.checked_sub(ago).unwrap_or(now.mono);
                let node = Node {
                    desired,
                    target,
                    live,
                    seen,
                    last_error: None,
                    pending_restart: Vec::new(),
                };
                (id, node)
            })
            .collect();
        let mut r = Reconciler {
            nodes,
            sessions: Registry::new(settings.timing),
            scan: Scan::default(),
            waiters: Vec::new(),
            persist,
            pending_writes: 0,
            settings,
            rollout: None,
            counters: metrics::Counters::default(),
            xds: None,
        };
        if let Some(rec) = rollout {
            r.rollout_loaded(rec, now);
        }
        r
    }

    /// Handles events until `Stop` (or until every sender is gone).
    pub fn run(mut self, events: Receiver<Event>) {
        loop {
            let now = Now::system();
            let wake = self.next_wake(now.mono);
            let event = match events.recv_timeout(wake.saturating_duration_since(now.mono)) {
                Ok(Event::Stop(done)) => {
                    drop(self);
                    let _ = done.send(());
                    return;
                }
                Ok(e) => Some(e),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let now = Now::system();
            // What may add a node or change a file (forgetting is seen by the count).
            let membership = matches!(
                event,
                Some(Event::Scan(_) | Event::Connected { .. } | Event::Api(_))
            );
            if let Some(e) = event {
                self.handle(e, now);
            }
            self.tick(now);
            self.xds_nodes_changed(membership);
        }
    }

    pub fn handle(&mut self, event: Event, now: Now) {
        match event {
            Event::Api(call) => self.api(call, now),
            Event::Scan(scan) => self.on_scan(scan, now),
            Event::Connected {
                session,
                node,
                role,
                generation,
                labels,
                tx,
            } => self.on_connected(session, &node, (&role, labels), generation, tx, now),
            Event::Reply { session, id, reply } => self.on_reply(session, id, reply, now),
            Event::Disconnected { session } => self.on_disconnected(session, now),
            Event::Persisted(done) => self.on_persisted(done, now),
            Event::Xds(update) => self.on_xds(update, now),
            Event::Stop(done) => {
                let _ = done.send(());
            }
        }
    }

    /// Timeouts, retries, waiters' deadlines, forgetting.
    pub fn tick(&mut self, now: Now) {
        let (reports, due) = self.sessions.tick(now.mono);
        for r in reports {
            self.on_report(r, now);
        }
        for node in due {
            self.pump(&node, now);
        }
        self.expire_waiters(now);
        self.rollout_tick(now);
        self.forget_unseen(now);
    }

    fn next_wake(&self, now: Instant) -> Instant {
        let mut wake = now + HOUSEKEEPING;
        if let Some(t) = self.sessions.next_wake() {
            wake = wake.min(t);
        }
        if let Some(t) = self.waiters.iter().map(|w| w.deadline).min() {
            wake = wake.min(t);
        }
        if let Some(t) = self.rollout_wake() {
            wake = wake.min(t);
        }
        wake
    }

    /// Queues writes for the persist thread (never blocks).
    fn write(&mut self, ops: Vec<Op>) {
        for op in ops {
            if self.persist.send(op).is_ok() {
                self.pending_writes += 1;
            }
        }
    }

    fn writes_ok(&self) -> Result<(), CtldError> {
        if self.pending_writes > MAX_PENDING_WRITES {
            return Err(CtldError::Busy(self.pending_writes));
        }
        Ok(())
    }

    /// Pushes the node's target to those of its sessions that may be pushed.
    fn pump(&mut self, node: &str, now: Now) {
        let target = self.nodes.get(node).and_then(|n| n.target.clone());
        let reports = self
            .sessions
            .pump(node, target.as_ref().map(|(g, t)| (*g, t)), now.mono);
        for r in reports {
            self.on_report(r, now);
        }
    }
}

/// The handle CLI threads and sources hold: one request, one answer.
#[derive(Clone)]
pub struct Handle {
    pub events: Sender<Event>,
}

impl Handle {
    /// Sends the call `make` builds and waits for its answer.
    pub fn ask<T>(&self, make: impl FnOnce(Sender<T>) -> ApiCall) -> Result<T, CtldError> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.events
            .send(Event::Api(make(tx)))
            .map_err(|_| CtldError::ShuttingDown)?;
        rx.recv().map_err(|_| CtldError::ShuttingDown)
    }
}
