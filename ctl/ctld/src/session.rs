//! One proxy's connection. The proxy connected and said hello; from then on ctld sends the
//! requests (`push_config`) down this connection and the proxy answers.
//!
//! Two threads per connection: a reader that turns every incoming frame into a
//! [`SessionEvent::Frame`], and the session loop that owns the writing half, sends one push at
//! a time and matches the replies. Both feed the same channel, so the loop waits on one
//! thing: a push to send, a reply, or (while a push is in flight) its deadline.

use std::collections::VecDeque;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringside_wire::{Conn, Frame, Reply, Request, WireError};

use crate::daemon::{Daemon, PushResult};

/// A configuration to push to one session.
pub struct PushJob {
    pub generation: u64,
    pub config: Arc<str>,
    /// Told the outcome (if anyone waits).
    pub waiter: Option<Sender<PushResult>>,
}

pub enum SessionEvent {
    Push(PushJob),
    Frame(Result<Frame, WireError>),
}

struct InFlight {
    id: u64,
    job: PushJob,
    deadline: Instant,
}

/// Serves one proxy connection until it closes.
pub fn run(daemon: Arc<Daemon>, mut conn: Conn, node_id: String, role: String, generation: u64) {
    let (tx, rx) = mpsc::channel();
    let reader = match conn.try_clone() {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(node = %node_id, error = %e, "cannot clone the connection");
            return;
        }
    };
    // The reader waits for frames for as long as the connection lives.
    let _ = reader.set_read_timeout(None);
    let _ = conn.set_write_timeout(Some(daemon.ack_timeout));
    let reader_tx = tx.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("read {node_id}"))
        .spawn(move || {
            let mut reader = reader;
            loop {
                let r = reader.recv();
                let end = r.is_err();
                if reader_tx.send(SessionEvent::Frame(r)).is_err() || end {
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(node = %node_id, error = %e, "cannot start a reader thread");
        return;
    }
    let session = daemon.connect(&node_id, &role, generation, tx);
    let mut queue: VecDeque<PushJob> = VecDeque::new();
    let mut in_flight: Option<InFlight> = None;
    let end_reason: String = loop {
        if in_flight.is_none() {
            if let Some(job) = queue.pop_front() {
                let id = conn.next_id();
                let request = Request::PushConfig {
                    generation: job.generation,
                    config: job.config.to_string(),
                };
                if let Err(e) = conn.send(&Frame::Request { id, request }) {
                    finish(
                        &daemon,
                        &node_id,
                        session,
                        job,
                        Err(format!("cannot send: {e}")),
                    );
                    break format!("write failed: {e}");
                }
                tracing::debug!(node = %node_id, generation = job.generation, "pushed");
                in_flight = Some(InFlight {
                    id,
                    job,
                    deadline: Instant::now() + daemon.ack_timeout,
                });
            }
        }
        let event = match &in_flight {
            Some(f) => rx.recv_timeout(f.deadline.saturating_duration_since(Instant::now())),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match event {
            Err(RecvTimeoutError::Timeout) => {
                if let Some(f) = in_flight.take() {
                    let msg = format!("no acknowledgement within {}", secs(daemon.ack_timeout));
                    finish(&daemon, &node_id, session, f.job, Err(msg));
                }
            }
            Err(RecvTimeoutError::Disconnected) => break "channel closed".into(),
            Ok(SessionEvent::Push(job)) => queue.push_back(job),
            Ok(SessionEvent::Frame(Ok(Frame::Reply { id, reply }))) => {
                match in_flight.take() {
                    Some(f) if f.id == id => {
                        let result = match reply {
                            Reply::Ack { generation } if generation == f.job.generation => {
                                Ok(generation)
                            }
                            Reply::Ack { generation } => Err(format!(
                                "acknowledged generation {generation} instead of {}",
                                f.job.generation
                            )),
                            Reply::Error { message, errors } => Err(join_error(&message, &errors)),
                            other => {
                                Err(format!("unexpected {} reply to push_config", other.name()))
                            }
                        };
                        finish(&daemon, &node_id, session, f.job, result);
                    }
                    other => {
                        // A late reply to a push that timed out: ignore it.
                        tracing::debug!(node = %node_id, id, "reply to an abandoned push ignored");
                        in_flight = other;
                    }
                }
            }
            Ok(SessionEvent::Frame(Ok(Frame::Request { id, request }))) => {
                let msg = format!(
                    "{} is not served on a proxy's connection to ringside-ctld",
                    request.name()
                );
                if let Err(e) = conn.reply(id, Reply::error(msg)) {
                    break format!("write failed: {e}");
                }
            }
            Ok(SessionEvent::Frame(Err(WireError::Closed))) => break "closed by the proxy".into(),
            Ok(SessionEvent::Frame(Err(e))) => break e.to_string(),
        }
    };
    tracing::debug!(node = %node_id, reason = %end_reason, "session ends");
    let _ = conn.stream().shutdown(std::net::Shutdown::Both);
    daemon.disconnect(&node_id, session);
    let gone = || Err::<(), String>("the node disconnected before acknowledging".into());
    if let Some(f) = in_flight {
        if let Some(w) = f.job.waiter {
            let _ = w.send(gone());
        }
    }
    for job in queue {
        if let Some(w) = job.waiter {
            let _ = w.send(gone());
        }
    }
    // Pushes that arrive after disconnect: their senders see the channel close.
    drop(rx);
}

fn finish(daemon: &Daemon, node: &str, session: u64, job: PushJob, result: Result<u64, String>) {
    daemon.push_done(node, session, job.generation, result.clone());
    if let Some(w) = job.waiter {
        let _ = w.send(result.map(|_| ()));
    }
}

fn join_error(message: &str, errors: &[String]) -> String {
    if errors.is_empty() {
        message.to_owned()
    } else {
        format!("{message}: {}", errors.join("; "))
    }
}

fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}
