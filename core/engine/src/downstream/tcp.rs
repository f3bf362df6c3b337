//! TCP listeners: pick an endpoint of the listener's cluster, connect, relay bytes both ways.
//!
//! Pipeline: accept ─▶ balance (source-IP hash for ring_hash) ─▶ connect (next endpoint on
//! failure, passive ejection) ─▶ `tunnel` (half-close aware, idle timeout from the listener).
//! Reads `listeners[].cluster` and `idle_timeout_ms`; a connection that cannot reach any
//! endpoint is closed. On a `transparent` listener the connection's original destination is
//! in its log lines (`original_dst`) and is where an `original_dst` cluster connects.

use std::net::SocketAddr;
use std::rc::Rc;

use ringside_config::{HashKey, ListenerKind};

use crate::cx::conn::{ConnRead, ConnWrite};
use crate::cx::io::ReadBuf;
use crate::cx::original_dst::OriginalDst;
use crate::downstream::Worker;
use crate::upstream::balance::request_hash;
use crate::upstream::connect_any;
use crate::upstream::pool::Upstream;
use crate::upstream::tunnel::{tunnel, End, Moved};

pub(crate) async fn serve(
    worker: Rc<Worker>,
    listener: Rc<str>,
    mut cr: ConnRead,
    mut cw: ConnWrite,
    peer: SocketAddr,
    dst: Option<OriginalDst>,
    first: Vec<u8>,
) {
    let view = worker.views.current();
    let Some(l) = view.listener(&listener) else {
        return;
    };
    let ListenerKind::Tcp { cluster } = l.kind else {
        return;
    };
    let idle = l.idle_timeout;
    let c = view.snap.config.cluster(cluster);

    let Some(state) = view.clusters.get(cluster.0) else {
        return;
    };
    let hash = c
        .hash_key
        .as_ref()
        .filter(|k| matches!(k, HashKey::SourceIp))
        .and_then(|k| request_hash(k, |_| None, peer.ip()));
    let client = worker.client(&view, c, cluster.0, dst);
    let up: Upstream = match connect_any(client, c, state, hash).await {
        Ok((up, _)) => up,
        Err(e) => {
            let original_dst = dst.map(|d| tracing::field::display(d.addr));
            tracing::warn!(listener = %listener, cluster = %c.name, %peer, original_dst, error = %e, "tcp: no upstream");
            return;
        }
    };
    drop(view); // do not pin this generation for the life of a long connection
                // Bytes a parent listener read to choose this listener go out first.
    let mut cbuf = ReadBuf::with_capacity(0);
    cbuf.extend(&first);
    drop(first);
    let Upstream {
        mut r,
        mut w,
        mut buf,
        ..
    } = up;
    let (moved, res) = tunnel(
        End {
            r: &mut cr,
            w: &mut cw,
            buf: &mut cbuf,
        },
        End {
            r: &mut r,
            w: &mut w,
            buf: &mut buf,
        },
        idle,
    )
    .await;
    closed(&listener, peer, dst, moved, &res);
}

/// The log line of a tunnel that ended (a TCP listener's connection, a CONNECT tunnel):
/// bytes sent (client to upstream) and received, and the error that ended it, if any; on a
/// `transparent` listener, the connection's original destination.
pub(crate) fn closed(
    listener: &str,
    peer: SocketAddr,
    dst: Option<OriginalDst>,
    moved: Moved,
    res: &std::io::Result<()>,
) {
    let (sent, received) = (moved.a_to_b, moved.b_to_a);
    let original_dst = dst.map(|d| tracing::field::display(d.addr));
    match res {
        Ok(()) => {
            tracing::debug!(listener, %peer, original_dst, sent, received, "tcp connection closed")
        }
        Err(e) => {
            tracing::debug!(listener, %peer, original_dst, sent, received, error = %e, "tcp connection ended")
        }
    }
}
