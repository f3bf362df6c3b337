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
//!   changes meanwhile, which is pushed at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use ringside_wire::Reply;

pub type SessionId = u64;

/// What the reconciler tells a session's I/O thread.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionCmd {
    Push {
        id: u64,
        generation: u64,
        config: Arc<str>,
    },
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
}

impl Timing {
    pub fn new(ack_timeout: Duration) -> Timing {
        Timing {
            ack_timeout,
            stall: (ack_timeout * 10).max(Duration::from_secs(10)),
            retry_min: Duration::from_millis(500),
            retry_max: Duration::from_secs(30),
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
}

#[derive(Debug, Clone, Copy)]
struct InFlight {
    id: u64,
    generation: u64,
    sent_at: Instant,
    timed_out: bool,
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

    pub fn add(&mut self, id: SessionId, node: &str, served: u64, tx: Sender<SessionCmd>) {
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
            },
        );
    }

    pub fn remove(&mut self, id: SessionId) -> Option<Session> {
        self.sessions.remove(&id)
    }

    #[cfg(test)]
    pub fn get(&self, id: SessionId) -> Option<&Session> {
        self.sessions.get(&id)
    }

    /// The sessions of `node`.
    pub fn of_node<'a>(&'a self, node: &'a str) -> impl Iterator<Item = (SessionId, &'a Session)> {
        self.sessions
            .iter()
            .filter(move |(_, s)| s.node == node)
            .map(|(id, s)| (*id, s))
    }

    /// Pushes `target` to every session of `node` that does not serve it and may be pushed:
    /// nothing in flight, no retry pending for that same generation.
    pub fn pump(
        &mut self,
        node: &str,
        target: Option<(u64, &Arc<str>)>,
        now: Instant,
    ) -> Vec<Report> {
        let Some((generation, config)) = target else {
            return Vec::new();
        };
        let mut reports = Vec::new();
        for (&sid, s) in self.sessions.iter_mut().filter(|(_, s)| s.node == node) {
            if s.in_flight.is_some() || s.served == generation || s.closing {
                continue;
            }
            if matches!(s.retry, Some((g, at)) if g == generation && now < at) {
                continue;
            }
            s.next_request += 1;
            let id = s.next_request;
            let cmd = SessionCmd::Push {
                id,
                generation,
                config: config.clone(),
            };
            match s.tx.try_send(cmd) {
                Ok(()) => {
                    s.pushes += 1;
                    s.in_flight = Some(InFlight {
                        id,
                        generation,
                        sent_at: now,
                        timed_out: false,
                    });
                }
                Err(e) => {
                    s.fail(generation, now, self.timing);
                    reports.push(report(
                        sid,
                        s,
                        generation,
                        Outcome::Failed(format!("cannot send: {e}")),
                    ));
                }
            }
        }
        reports
    }

    /// A reply from session `sid` to request `id`. A reply to a push that timed out is still
    /// taken (a late ack).
    pub fn on_reply(
        &mut self,
        sid: SessionId,
        id: u64,
        reply: Reply,
        now: Instant,
    ) -> Option<Report> {
        let timing = self.timing;
        let s = self.sessions.get_mut(&sid)?;
        let f = match s.in_flight {
            Some(f) if f.id == id => f,
            _ => {
                tracing::debug!(node = %s.node, id, "reply to no push in flight; ignored");
                return None;
            }
        };
        s.in_flight = None;
        let outcome = match reply {
            Reply::Ack { generation } if generation == f.generation => {
                s.served = generation;
                s.retry = None;
                s.backoff = timing.retry_min;
                Outcome::Acked
            }
            Reply::Ack { generation } => Outcome::Refused(format!(
                "acknowledged generation {generation} instead of {}",
                f.generation
            )),
            Reply::Error { message, errors } if errors.is_empty() => Outcome::Refused(message),
            Reply::Error { message, errors } => {
                Outcome::Refused(format!("{message}: {}", errors.join("; ")))
            }
            other => Outcome::Refused(format!("unexpected {} reply to push_config", other.name())),
        };
        if outcome != Outcome::Acked {
            s.fail(f.generation, now, timing);
        }
        Some(report(sid, s, f.generation, outcome))
    }

    /// Timeouts and stalls at `now`. Returns the reports and the nodes with a retry due (to
    /// pump).
    pub fn tick(&mut self, now: Instant) -> (Vec<Report>, Vec<String>) {
        let t = self.timing;
        let mut reports = Vec::new();
        let mut due = Vec::new();
        for (&sid, s) in self.sessions.iter_mut() {
            if let Some(f) = s.in_flight.as_mut() {
                if !f.timed_out && now >= f.sent_at + t.ack_timeout {
                    f.timed_out = true;
                    let g = f.generation;
                    let msg = format!("no acknowledgement within {}", secs(t.ack_timeout));
                    reports.push(report(sid, s, g, Outcome::TimedOut(msg)));
                } else if !s.closing && now >= f.sent_at + t.stall {
                    tracing::warn!(node = %s.node, session = sid, "no answer for {}; closing the session", secs(t.stall));
                    s.closing = true;
                    let _ = s.tx.try_send(SessionCmd::Close);
                }
            } else if matches!(s.retry, Some((_, at)) if now >= at) && !due.contains(&s.node) {
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
            .filter_map(|s| match (s.in_flight, s.retry) {
                (Some(f), _) if !f.timed_out => Some(f.sent_at + t.ack_timeout),
                (Some(f), _) if !s.closing => Some(f.sent_at + t.stall),
                (Some(_), _) => None,
                (None, Some((_, at))) => Some(at),
                (None, None) => None,
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
        self.in_flight.map(|f| f.generation)
    }
}

fn report(session: SessionId, s: &Session, generation: u64, outcome: Outcome) -> Report {
    Report {
        session,
        node: s.node.clone(),
        generation,
        outcome,
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
mod tests;
