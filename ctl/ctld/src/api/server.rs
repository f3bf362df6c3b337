//! Accepting connections: check the peer's uid, the handshake, then either a proxy session
//! (`sessions/session.rs`) or a CLI's requests (`api/mod.rs`), one thread per connection.

use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ringside_wire::{Conn, Frame, Peer, Reply, WireError};

use super::Api;
use crate::sessions::session;

/// Most connections served at once; more are closed at accept.
const MAX_CONNECTIONS: usize = 1024;
/// Time a new connection has to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// A CLI connection idle this long is closed.
const CLI_IDLE: Duration = Duration::from_secs(600);

pub const SERVER_NAME: &str = concat!("ringside-ctld ", env!("CARGO_PKG_VERSION"));

pub fn accept_loop(api: Api, ack_timeout: Duration, listener: UnixListener) {
    let open = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if open.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
            tracing::warn!("too many control connections; closing a new one");
            continue;
        }
        open.fetch_add(1, Ordering::Relaxed);
        let (api, open2) = (api.clone(), open.clone());
        let spawned = std::thread::Builder::new()
            .name("conn".into())
            .spawn(move || {
                serve(&api, ack_timeout, stream);
                open2.fetch_sub(1, Ordering::Relaxed);
            });
        if let Err(e) = spawned {
            open.fetch_sub(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "cannot start a connection thread");
        }
    }
}

fn serve(api: &Api, ack_timeout: Duration, stream: UnixStream) {
    if let Err(e) = ringside_wire::check_peer(&stream) {
        tracing::warn!(error = %e, "connection refused");
        return;
    }
    let mut conn = Conn::new(stream);
    if conn.set_read_timeout(Some(HELLO_TIMEOUT)).is_err()
        || conn
            .set_write_timeout(Some(Duration::from_secs(10)))
            .is_err()
    {
        return;
    }
    let peer = ringside_wire::server_handshake_with(&mut conn, SERVER_NAME, |p| match p {
        Peer::Proxy { node_id, .. } => ringside_wire::validate_node_id(node_id),
        Peer::Cli => Ok(()),
    });
    match peer {
        Ok(Peer::Proxy {
            node_id,
            role,
            generation,
            labels,
        }) => {
            let events = api.handle.events.clone();
            let hello = session::Hello {
                node: node_id,
                role,
                generation,
                labels,
            };
            session::run(events, conn, hello, ack_timeout)
        }
        Ok(Peer::Cli) => serve_cli(api, conn),
        Err(WireError::Closed) => {}
        Err(e) => tracing::info!(error = %e, "handshake failed"),
    }
}

fn serve_cli(api: &Api, mut conn: Conn) {
    if conn.set_read_timeout(Some(CLI_IDLE)).is_err() {
        return;
    }
    loop {
        match conn.recv() {
            Ok(Frame::Request { id, request }) => {
                let name = request.name();
                let mut reply = api.handle(request);
                if conn.version() < 2 {
                    for_version_1(&mut reply);
                }
                if let Reply::Error { message, .. } = &reply {
                    tracing::info!(request = name, error = %message, "request refused");
                }
                if conn.reply(id, reply).is_err() {
                    return;
                }
            }
            Ok(Frame::Reply { .. }) => {
                tracing::info!("a CLI sent a reply; closing");
                return;
            }
            Err(WireError::Closed) | Err(WireError::Timeout) => return,
            Err(e) => {
                tracing::info!(error = %e, "CLI connection closed");
                return;
            }
        }
    }
}

/// Drops what protocol version 2 added from a reply to a version 1 CLI, which would refuse
/// the unknown field.
fn for_version_1(reply: &mut Reply) {
    if let Reply::CtldStatus(status) = reply {
        for node in &mut status.nodes {
            node.pending_restart.clear();
        }
    }
}
