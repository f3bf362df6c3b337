//! Every connected proxy process and the state of its pushes, owned by the reconciler. Pure:
//! the time comes in as an argument, the I/O goes out through each session's command
//! channel (`session.rs` owns the socket).
//!
//! Per session:
//! - **at most one push in flight**. There is no queue: when the push in flight is answered
//!   (or there is none), the session is pushed the node's target *as it is then*, so any
//!   number of changes made meanwhile cost one push (coalescing);
//! - a push unanswered after the ack timeout is reported timed out, but stays in flight: its
//!   answer is still taken when it comes (a late ack updates what the session serves). A
//!   session silent for the stall timeout is closed, and the proxy's reconnect resumes it;
//! - a refused or unsendable push is retried with backoff (doubling), unless the target
//!   changes meanwhile, which is pushed at once;
//! - a second kind of request, `status` (the process's stats), is sent every `stats_every`
//!   when no push is due; a push always goes first, and a stats request in flight counts as
//!   the one request in flight. A rollout asks for fresh stats at once ([`Registry::ask_stats`])
//!   to open and close its windows.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use ringside_wire::{ProxyStatus, Reply};

pub type SessionId = u64;

/// What the reconciler tells a session's I/O thread.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionCmd {
    Push {
        id: u64,
        generation: u64,
        config: Arc<str>,
    },
    /// Ask for the process's status (its stats).
    Stats { id: u64 },
    /// Close the connection (the proxy reconnects).
    Close,
}

#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub ack_timeout: Duration,
    /// A push unanswered this long closes the session.
    pub stall: Duration,
    pub retry_min: Duration,
    pub retry_max: Duration,
    /// How often an idle session is asked for its stats (None: never).
    pub stats_every: Option<Duration>,
}

impl Timing {
    pub fn new(ack_timeout: Duration) -> Timing {
        Timing {
            ack_timeout,
            stall: (ack_timeout * 10).max(Duration::from_secs(10)),
            retry_min: Duration::from_millis(500),
            retry_max: Duration::from_secs(30),
            stats_every: Some(Duration::from_secs(10)),
        }
    }
}

/// What became of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Acked,
    Refused(String),
    TimedOut(String),
    /// Could not be sent.
    Failed(String),
}

/// A push's outcome, for the node's status and for whoever waits on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub session: SessionId,
    pub node: String,
    pub generation: u64,
    pub outcome: Outcome,
    /// With `Acked`: the keys of the generation that wait for the process's restart.
    pub pending_restart: Vec<String>,
}

#[derive(Debug)]
pub struct Session {
    pub node: String,
    tx: Sender<SessionCmd>,
    /// The generation the process serves (its hello, then its acks).
    pub served: u64,
    in_flight: Option<InFlight>,
    /// After a failure: the generation that failed and when to try it again.
    retry: Option<(u64, Instant)>,
    backoff: Duration,
    next_request: u64,
    closing: bool,
    /// Pushes sent, for status and tests.
    pub pushes: u64,
    /// The process's last status, when it came, and when to ask again.
    pub stats: Option<ProxyStatus>,
    pub stats_at: Option<Instant>,
    stats_due: Instant,
    /// Asked for by a rollout: sent as soon as nothing else is in flight.
    stats_asked: bool,
}

#[derive(Debug, Clone, Copy)]
struct InFlight {
    id: u64,
    kind: Kind,
    sent_at: Instant,
    timed_out: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Push(u64),
    Stats,
}

#[derive(Debug)]
pub struct Registry {
    sessions: BTreeMap<SessionId, Session>,
    timing: Timing,
}

impl Registry {
    pub fn new(timing: Timing) -> Registry {
        Registry {
            sessions: BTreeMap::new(),
            timing,
        }
    }

    pub fn add(
        &mut self,
        id: SessionId,
        node: &str,
        served: u64,
        tx: Sender<SessionCmd>,
        now: Instant,
    ) {
        self.sessions.insert(
            id,
            Session {
                node: node.to_owned(),
                tx,
                served,
                in_flight: None,
                retry: None,
                backoff: self.timing.retry_min,
                // The hello took id 1 on the proxy's side; ctld's requests count on their own.
                next_request: 1,
                closing: false,
                pushes: 0,
                stats: None,
                stats_at: None,
                // The first stats after an interval: a new session's first push goes first.
                stats_due: now + self.timing.stats_every.unwrap_or_default(),
                stats_asked: false,
            },
        );
    }

    pub fn node_of(&self, id: SessionId) -> Option<String> {
        self.sessions.get(&id).map(|s| s.node.clone())
    }

    pub fn remove(&mut self, id: SessionId) -> Option<Session> {
        self.sessions.remove(&id)
    }

    pub fn session(&self, id: SessionId) -> Option<&Session> {
        self.sessions.get(&id)
    }

    /// Asks every session of `node` for its stats as soon as it is free (pump the node).
    pub fn ask_stats(&mut self, node: &str) {
        for s in self.sessions.values_mut().filter(|s| s.node == node) {
            s.stats_asked = true;
        }
    }

    /// The traffic counters of every process of `node` by pid, if the node has a session
    /// and each of its sessions reported them since `since`.
    pub fn fresh_traffic(
        &self,
        node: &str,
        since: Instant,
    ) -> Option<BTreeMap<u32, ringside_wire::Traffic>> {
        let mut out = BTreeMap::new();
        for (_, s) in self.of_node(node) {
            let st = s.stats.as_ref().filter(|_| s.stats_at >= Some(since))?;
            out.insert(st.pid, st.traffic?);
        }
        (!out.is_empty()).then_some(out)
    }

    /// The sessions of `node`.
    pub fn of_node<'a>(&'a self, node: &'a str) -> impl Iterator<Item = (SessionId, &'a Session)> {
        self.sessions
            .iter()
            .filter(move |(_, s)| s.node == node)
            .map(|(id, s)| (*id, s))
    }

    /// Pushes `target` to every session of `node` that does not serve it and may be pushed:
    /// nothing in flight, no retry pending for that same generation. A session with no push
    /// due is asked for its stats when they are due.
    pub fn pump(
        &mut self,
        node: &str,
        target: Option<(u64, &Arc<str>)>,
        now: Instant,
    ) -> Vec<Report> {
        let t = self.timing;
        let mut reports = Vec::new();
        for (&sid, s) in self.sessions.iter_mut().filter(|(_, s)| s.node == node) {
            if s.in_flight.is_some() || s.closing {
                continue;
            }
            let push = target.filter(|(g, _)| {
                *g != s.served && !matches!(s.retry, Some((r, at)) if r == *g && now < at)
            });
            let id = s.next_request + 1;
            let (cmd, kind) = match push {
                Some((generation, config)) => {
                    let config = config.clone();
                    let cmd = SessionCmd::Push {
                        id,
                        generation,
                        config,
                    };
                    (cmd, Kind::Push(generation))
                }
                None if s.stats_asked || (t.stats_every.is_some() && now >= s.stats_due) => {
                    (SessionCmd::Stats { id }, Kind::Stats)
                }
                None => continue,
            };
            s.next_request = id;
            match (s.tx.try_send(cmd), kind) {
                (Ok(()), _) => {
                    if let Kind::Push(_) = kind {
                        s.pushes += 1;
                    }
                    s.in_flight = Some(InFlight {
                        id,
                        kind,
                        sent_at: now,
                        timed_out: false,
                    });
                }
                (Err(e), Kind::Push(generation)) => {
                    s.fail(generation, now, t);
                    let outcome = Outcome::Failed(format!("cannot send: {e}"));
                    reports.push(report(sid, s, generation, outcome));
                }
                (Err(_), Kind::Stats) => {}
            }
            if kind == Kind::Stats {
                s.stats_due = now + t.stats_every.unwrap_or_default();
                s.stats_asked = false;
            }
        }
        reports
    }

    /// A reply from session `sid` to request `id`: the push's outcome (None for stats).
    /// A reply to a request that timed out is still taken (a late ack). `None` when it
    /// answers nothing in flight; else the session is free again (pump its node).
    pub fn on_reply(
        &mut self,
        sid: SessionId,
        id: u64,
        reply: Reply,
        now: Instant,
    ) -> Option<Option<Report>> {
        let timing = self.timing;
        let s = self.sessions.get_mut(&sid)?;
        let f = match s.in_flight {
            Some(f) if f.id == id => f,
            _ => {
                tracing::debug!(node = %s.node, id, "reply to no request in flight; ignored");
                return None;
            }
        };
        s.in_flight = None;
        let pushed = match f.kind {
            Kind::Push(g) => g,
            Kind::Stats => {
                match reply {
                    Reply::ProxyStatus(st) => {
                        s.stats = Some(st);
                        s.stats_at = Some(now);
                    }
                    other => tracing::debug!(node = %s.node, reply = other.name(), "no stats"),
                }
                return Some(None);
            }
        };
        let mut pending = Vec::new();
        let outcome = match reply {
            Reply::Ack {
                generation,
                pending_restart,
            } if generation == pushed => {
                s.served = generation;
                s.retry = None;
                s.backoff = timing.retry_min;
                pending = pending_restart;
                Outcome::Acked
            }
            Reply::Ack { generation, .. } => Outcome::Refused(format!(
                "acknowledged generation {generation} instead of {pushed}"
            )),
            Reply::Error { message, errors } if errors.is_empty() => Outcome::Refused(message),
            Reply::Error { message, errors } => {
                Outcome::Refused(format!("{message}: {}", errors.join("; ")))
            }
            other => Outcome::Refused(format!("unexpected {} reply to push_config", other.name())),
        };
        if outcome != Outcome::Acked {
            s.fail(pushed, now, timing);
        }
        let mut r = report(sid, s, pushed, outcome);
        r.pending_restart = pending;
        Some(Some(r))
    }

    /// Timeouts and stalls at `now`. Returns the reports and the nodes with a retry or
    /// stats due (to pump).
    pub fn tick(&mut self, now: Instant) -> (Vec<Report>, Vec<String>) {
        let t = self.timing;
        let mut reports = Vec::new();
        let mut due = Vec::new();
        for (&sid, s) in self.sessions.iter_mut() {
            if let Some(f) = s.in_flight.as_mut() {
                if !f.timed_out && now >= f.sent_at + t.ack_timeout {
                    f.timed_out = true;
                    if let Kind::Push(g) = f.kind {
                        let msg = format!("no acknowledgement within {}", secs(t.ack_timeout));
                        reports.push(report(sid, s, g, Outcome::TimedOut(msg)));
                    }
                } else if !s.closing && now >= f.sent_at + t.stall {
                    tracing::warn!(node = %s.node, session = sid, "no answer for {}; closing the session", secs(t.stall));
                    s.closing = true;
                    let _ = s.tx.try_send(SessionCmd::Close);
                }
            } else if (matches!(s.retry, Some((_, at)) if now >= at)
                || (t.stats_every.is_some() && now >= s.stats_due))
                && !due.contains(&s.node)
            {
                due.push(s.node.clone());
            }
        }
        (reports, due)
    }

    /// The next instant [`Self::tick`] has something to do.
    pub fn next_wake(&self) -> Option<Instant> {
        let t = self.timing;
        self.sessions
            .values()
            .filter_map(|s| {
                let stats = t.stats_every.map(|_| s.stats_due);
                match (s.in_flight, s.retry) {
                    (Some(f), _) if !f.timed_out => Some(f.sent_at + t.ack_timeout),
                    (Some(f), _) if !s.closing => Some(f.sent_at + t.stall),
                    (Some(_), _) => None,
                    (None, Some((_, at))) => Some(stats.map_or(at, |d| d.min(at))),
                    (None, None) => stats,
                }
            })
            .min()
    }
}

impl Session {
    fn fail(&mut self, generation: u64, now: Instant, t: Timing) {
        self.retry = Some((generation, now + self.backoff));
        self.backoff = (self.backoff * 2).min(t.retry_max);
    }

    /// The generation in flight, if any.
    #[cfg(test)]
    pub fn in_flight(&self) -> Option<u64> {
        self.in_flight.and_then(|f| match f.kind {
            Kind::Push(g) => Some(g),
            Kind::Stats => None,
        })
    }
}

fn report(session: SessionId, s: &Session, generation: u64, outcome: Outcome) -> Report {
    Report {
        session,
        node: s.node.clone(),
        generation,
        outcome,
        pending_restart: Vec::new(),
    }
}

pub fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
pub(crate) mod tests;
