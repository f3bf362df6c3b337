//! The Detect stage: what a new connection speaks, and its TLS handshake.
//!
//! ```text
//! accept ─▶ detect ─▶ plaintext ─▶ HTTP/1.1 (http::serve) ─▶ h2c preface? ─▶ HTTP/2
//!                  └▶ TLS handshake ─▶ ALPN h2 ─▶ HTTP/2 (h2::serve)
//!                                   └▶ otherwise ─▶ HTTP/1.1 over TLS
//! ```
//! - A listener with `tls` (certificates chosen by SNI) or `mtls = "strict"` only speaks
//!   TLS: a plaintext client fails the handshake and is disconnected.
//! - `mtls = "permissive"` reads the first bytes: a TLS handshake record (0x16) is TLS with
//!   client certificates, anything else is served as plaintext (for migrations).
//! - The handshake must finish within the listener's `request_head_timeout`. The client's
//!   verified identity (the URI SAN of its certificate) is recorded for authorization,
//!   X-Forwarded-Client-Cert and the access log.
//! - TCP listeners with TLS terminate it and forward the plaintext bytes.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use monoio::io::{AsyncReadRent, Splitable};
use monoio::net::TcpStream;
use ringside_config::{ListenerKind, MtlsMode};

use crate::cx::conn::{into_poll, split_poll, ConnRead, ConnWrite, Prefixed, ServerTls};
use crate::cx::metrics::ListenerStats;
use crate::downstream::http::{ClientConn, Ended};
use crate::downstream::Worker;

/// TLS record type of a handshake message: the first byte of a ClientHello.
const TLS_HANDSHAKE: u8 = 0x16;

/// Serves a connection accepted on an HTTP listener.
pub(crate) async fn serve_http(
    worker: Rc<Worker>,
    listener: Rc<str>,
    stream: TcpStream,
    peer: SocketAddr,
    stats: Rc<ListenerStats>,
) {
    let _ = stream.set_nodelay(true);
    let view = worker.views.current();
    let Some(l) = view.listener(&listener) else {
        return;
    };
    let ListenerKind::Http(http) = &l.kind else {
        return;
    };
    let timeout = http.limits.request_head_timeout;
    let tls = view.tls.server(&listener).cloned();
    let permissive = l.mtls == Some(MtlsMode::Permissive);
    drop(view);
    let Some(tls) = tls else {
        return plain(worker, listener, stream, Vec::new(), peer, stats).await;
    };
    let mut stream = stream;
    let mut first = Vec::new();
    if permissive {
        first = match monoio::time::timeout(timeout, stream.read(Vec::with_capacity(2048))).await {
            Ok((Ok(n), b)) if n > 0 => b,
            _ => return,
        };
        if first.first() != Some(&TLS_HANDSHAKE) {
            return plain(worker, listener, stream, first, peer, stats).await;
        }
    }
    let Some((tls, conn)) = handshake(&stats, tls, stream, first, peer, timeout).await else {
        return;
    };
    if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
        crate::downstream::h2::serve(worker, listener, tls, conn, stats).await;
    } else {
        let (r, w) = split_poll(tls);
        crate::downstream::http::serve(
            worker,
            listener,
            ConnRead::Tls(r),
            ConnWrite::Tls(w),
            Vec::new(),
            conn,
            stats,
        )
        .await;
    }
}

/// Plaintext HTTP: HTTP/1.1, or HTTP/2 when the client opens with the preface.
async fn plain(
    worker: Rc<Worker>,
    listener: Rc<str>,
    stream: TcpStream,
    first: Vec<u8>,
    peer: SocketAddr,
    stats: Rc<ListenerStats>,
) {
    let conn = Rc::new(ClientConn {
        peer,
        tls: false,
        identity: None,
    });
    let (r, w) = stream.into_split();
    let ended = crate::downstream::http::serve(
        Rc::clone(&worker),
        Rc::clone(&listener),
        ConnRead::Plain(r),
        ConnWrite::Plain(w),
        first,
        Rc::clone(&conn),
        Rc::clone(&stats),
    )
    .await;
    if let Ended::H2c(stream, read) = ended {
        match into_poll(stream) {
            Ok(poll) => {
                crate::downstream::h2::serve(
                    worker,
                    listener,
                    Prefixed::new(read, poll),
                    conn,
                    stats,
                )
                .await
            }
            Err(e) => {
                tracing::debug!(%peer, error = %e, "h2c: cannot switch the socket to poll mode")
            }
        }
    }
}

/// The TLS handshake, bounded by `timeout`; failures are counted and logged at debug level
/// (a port scanner or a plaintext client on a TLS port is not worth a warning).
async fn handshake(
    stats: &ListenerStats,
    config: std::sync::Arc<rustls::ServerConfig>,
    stream: TcpStream,
    first: Vec<u8>,
    peer: SocketAddr,
    timeout: Duration,
) -> Option<(ServerTls, Rc<ClientConn>)> {
    let poll = match into_poll(stream) {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "tls: cannot switch the socket to poll mode");
            return None;
        }
    };
    let accept = tokio_rustls::TlsAcceptor::from(config).accept(Prefixed::new(first, poll));
    let tls = match monoio::time::timeout(timeout, accept).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            stats.tls_failures.set(stats.tls_failures.get() + 1);
            tracing::debug!(%peer, error = %e, "tls handshake failed");
            return None;
        }
        Err(_) => {
            stats.tls_failures.set(stats.tls_failures.get() + 1);
            tracing::debug!(%peer, "tls handshake timed out");
            return None;
        }
    };
    let identity = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(crate::cx::tls::peer_identity)
        .map(Rc::<str>::from);
    let conn = Rc::new(ClientConn {
        peer,
        tls: true,
        identity,
    });
    Some((tls, conn))
}

/// Serves a connection accepted on a TCP listener: TLS is terminated when configured.
pub(crate) async fn serve_tcp(
    worker: Rc<Worker>,
    listener: Rc<str>,
    stream: TcpStream,
    peer: SocketAddr,
    stats: Rc<ListenerStats>,
) {
    let view = worker.views.current();
    let tls = view.tls.server(&listener).cloned();
    let timeout = view
        .listener(&listener)
        .map_or(Duration::from_secs(10), |l| {
            l.idle_timeout.min(Duration::from_secs(10))
        });
    drop(view);
    let Some(tls) = tls else {
        let (r, w) = stream.into_split();
        return crate::downstream::tcp::serve(
            worker,
            listener,
            ConnRead::Plain(r),
            ConnWrite::Plain(w),
            peer,
        )
        .await;
    };
    let Some((tls, _conn)) = handshake(&stats, tls, stream, Vec::new(), peer, timeout).await else {
        return;
    };
    let (r, w) = split_poll(tls);
    crate::downstream::tcp::serve(worker, listener, ConnRead::Tls(r), ConnWrite::Tls(w), peer)
        .await;
}
