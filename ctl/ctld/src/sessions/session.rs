//! One proxy connection's I/O. The proxy connected and said hello; from then on ctld sends
//! the requests down this connection and the proxy answers.
//!
//! Two threads, no decisions: the writer (the connection's own thread) sends what the
//! reconciler commands ([`SessionCmd`]); the reader turns every frame from the proxy into an
//! event for the reconciler, which matches replies to pushes (`registry.rs`). A proxy that
//! stops reading blocks only its writer, never the reconciler.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crossbeam_channel::Sender;
use ringside_wire::{Conn, Frame, Labels, Reply, Request, WireError};

use super::registry::{SessionCmd, SessionId};
use crate::reconciler::Event;

/// Commands queued for one writer at most (a push, a close, a reply to a stray request).
const COMMANDS: usize = 4;

static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

/// What the proxy said in its hello.
pub struct Hello {
    pub node: String,
    pub role: String,
    pub generation: u64,
    pub labels: Labels,
}

/// Serves one proxy connection until it closes.
pub fn run(events: Sender<Event>, mut conn: Conn, hello: Hello, write_timeout: Duration) {
    let Hello {
        node,
        role,
        generation,
        labels,
    } = hello;
    let session: SessionId = NEXT_SESSION.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = crossbeam_channel::bounded::<Outgoing>(COMMANDS);
    let (cmd_tx, cmd_rx) = crossbeam_channel::bounded::<SessionCmd>(COMMANDS);
    let mut reader = match conn.try_clone() {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(node = %node, error = %e, "cannot clone the connection");
            return;
        }
    };
    let _ = reader.set_read_timeout(None);
    let _ = conn.set_write_timeout(Some(write_timeout));
    let hello = Event::Connected {
        session,
        node: node.clone(),
        role,
        generation,
        labels,
        tx: cmd_tx,
    };
    // Registered before the reader starts, so that its end is always seen after it.
    if events.send(hello).is_err() {
        return;
    }
    let reader_events = events.clone();
    let reader_node = node.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("read {node}"))
        .spawn(move || {
            let reason = loop {
                match reader.recv() {
                    Ok(Frame::Reply { id, reply }) => {
                        let e = Event::Reply { session, id, reply };
                        if reader_events.send(e).is_err() {
                            break "ctld is shutting down".to_owned();
                        }
                    }
                    Ok(Frame::Request { id, request }) => {
                        // The proxy only answers on this connection.
                        if tx.send(Outgoing::Refuse { id, request }).is_err() {
                            break "the writer ended".to_owned();
                        }
                    }
                    Err(WireError::Closed) => break "closed by the proxy".to_owned(),
                    Err(e) => break e.to_string(),
                }
            };
            tracing::debug!(node = %reader_node, session, %reason, "session ends");
            let _ = reader_events.send(Event::Disconnected { session });
        });
    if let Err(e) = spawned {
        tracing::warn!(node = %node, error = %e, "cannot start a reader thread");
        let _ = events.send(Event::Disconnected { session });
        return;
    }
    loop {
        let out = crossbeam_channel::select! {
            recv(cmd_rx) -> c => match c {
                Ok(SessionCmd::Push { id, generation, config }) => Outgoing::Push { id, generation, config: config.to_string() },
                Ok(SessionCmd::Stats { id }) => Outgoing::Stats { id },
                Ok(SessionCmd::Close) | Err(_) => break,
            },
            recv(rx) -> o => match o {
                Ok(o) => o,
                Err(_) => break,
            },
        };
        let sent = match out {
            Outgoing::Push {
                id,
                generation,
                config,
            } => {
                tracing::debug!(node = %node, generation, "push");
                let request = Request::PushConfig { generation, config };
                conn.send(&Frame::Request { id, request })
            }
            Outgoing::Stats { id } => conn.send(&Frame::Request {
                id,
                request: Request::Status,
            }),
            Outgoing::Refuse { id, request } => {
                let msg = format!(
                    "{} is not served on a proxy's connection to ringside-ctld",
                    request.name()
                );
                conn.reply(id, Reply::error(msg))
            }
        };
        if let Err(e) = sent {
            tracing::info!(node = %node, session, error = %e, "write failed; closing the session");
            break;
        }
    }
    // The reader sees the shutdown and reports the disconnection.
    let _ = conn.stream().shutdown(std::net::Shutdown::Both);
}

enum Outgoing {
    Push {
        id: u64,
        generation: u64,
        config: String,
    },
    Stats {
        id: u64,
    },
    Refuse {
        id: u64,
        request: Request,
    },
}
