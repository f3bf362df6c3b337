//! TCP listeners: pick an endpoint of the listener's cluster, connect, relay bytes both ways.
//!
//! Pipeline: accept ─▶ balance (source-IP hash for ring_hash) ─▶ connect (next endpoint on
//! failure, passive ejection) ─▶ `tunnel` (half-close aware, idle timeout from the listener).
//! Reads `listeners[].cluster` and `idle_timeout_ms`; a connection that cannot reach any
//! endpoint is closed.

use std::net::SocketAddr;
use std::rc::Rc;

use ringside_config::{HashKey, ListenerKind};

use crate::cx::conn::{ConnRead, ConnWrite};
use crate::cx::io::ReadBuf;
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
    let up: Upstream = match connect_any(worker.client(&view, c, cluster.0), c, state, hash).await {
        Ok((up, _)) => up,
        Err(e) => {
            tracing::warn!(listener = %listener, cluster = %c.name, %peer, error = %e, "tcp: no upstream");
            return;
        }
    };
    drop(view); // do not pin this generation for the life of a long connection
    let mut cbuf = ReadBuf::with_capacity(0);
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
    closed(&listener, peer, moved, &res);
}

/// The log line of a tunnel that ended (a TCP listener's connection, a CONNECT tunnel):
/// bytes sent (client to upstream) and received, and the error that ended it, if any.
pub(crate) fn closed(listener: &str, peer: SocketAddr, moved: Moved, res: &std::io::Result<()>) {
    let (sent, received) = (moved.a_to_b, moved.b_to_a);
    match res {
        Ok(()) => tracing::debug!(listener, %peer, sent, received, "tcp connection closed"),
        Err(e) => {
            tracing::debug!(listener, %peer, sent, received, error = %e, "tcp connection ended")
        }
    }
}
