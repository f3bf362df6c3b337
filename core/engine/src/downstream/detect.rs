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
//! - On a `transparent` listener the connection's original destination (read at accept,
//!   `worker.rs`) goes with it into `ClientConn`.
//! - A child listener's connection may come with bytes its parent already read (`inspect.rs`):
//!   they are served first (the HTTP buffer, the TLS handshake, the TCP relay).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use monoio::io::{AsyncReadRent, Splitable};
use monoio::net::TcpStream;
use ringside_config::{CertDetails, ListenerKind, MtlsMode};

use crate::cx::conn::{into_poll, split_poll, ConnRead, ConnWrite, Prefixed, ServerTls};
use crate::cx::metrics::ListenerStats;
use crate::cx::original_dst::OriginalDst;
use crate::cx::tls::xfcc::{element, Served};
use crate::downstream::http::{self, ClientConn};
use crate::downstream::Worker;

/// TLS record type of a handshake message: the first byte of a ClientHello.
const TLS_HANDSHAKE: u8 = 0x16;

/// The work of a connection accepted on an HTTP listener, boxed at the size of the path it
/// takes: a plaintext HTTP/1.1 connection's task holds the HTTP/1.1 loop only, not the
/// sniffing, handshake and HTTP/2 state machines.
pub(crate) fn serve_http(
    worker: Rc<Worker>,
    listener: Rc<str>,
    stream: TcpStream,
    peer: SocketAddr,
    dst: Option<OriginalDst>,
    stats: Rc<ListenerStats>,
    first: Vec<u8>,
) -> Pin<Box<dyn Future<Output = ()>>> {
    let _ = stream.set_nodelay(true);
    let view = worker.views.current();
    let Some(l) = view.listener(&listener) else {
        return Box::pin(std::future::ready(()));
    };
    let ListenerKind::Http(http) = &l.kind else {
        return Box::pin(std::future::ready(()));
    };
    let timeout = http.limits.request_head_timeout;
    let tls = view.tls.server(&listener).cloned();
    let permissive = l.mtls == Some(MtlsMode::Permissive);
    let xfcc = XfccPlan {
        details: http.cert_details,
        served: view.tls.served(&listener).cloned(),
    };
    drop(view);
    match tls {
        None => Box::pin(plain(worker, listener, stream, first, peer, dst, stats)),
        Some(tls) => Box::pin(tls_http(
            worker, listener, tls, permissive, stream, first, peer, dst, stats, timeout, xfcc,
        )),
    }
}

/// HTTP over TLS: for permissive mTLS, the first bytes decide between TLS and plaintext; then
/// the handshake, and HTTP/2 or HTTP/1.1 as ALPN chose. `first`: bytes a parent listener
/// already read.
#[allow(clippy::too_many_arguments)]
async fn tls_http(
    worker: Rc<Worker>,
    listener: Rc<str>,
    tls: std::sync::Arc<rustls::ServerConfig>,
    permissive: bool,
    mut stream: TcpStream,
    mut first: Vec<u8>,
    peer: SocketAddr,
    dst: Option<OriginalDst>,
    stats: Rc<ListenerStats>,
    timeout: Duration,
    xfcc: XfccPlan,
) {
    if permissive && first.is_empty() {
        first = match monoio::time::timeout(timeout, stream.read(Vec::with_capacity(2048))).await {
            Ok((Ok(n), b)) if n > 0 => b,
            _ => return,
        };
    }
    if permissive && first.first() != Some(&TLS_HANDSHAKE) {
        return plain(worker, listener, stream, first, peer, dst, stats).await;
    }
    let handshake = handshake(&stats, tls, stream, first, peer, dst, timeout, Some(&xfcc));
    let Some((tls, conn)) = handshake.await else {
        return;
    };
    if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
        crate::downstream::h2::serve(worker, listener, tls, conn, stats).await;
    } else {
        let (r, w) = split_poll(tls);
        let c = http::Conn::new(
            worker,
            listener,
            ConnRead::Tls(r),
            ConnWrite::Tls(w),
            conn,
            stats,
        );
        http::serve(c).await;
    }
}

/// Plaintext HTTP: HTTP/1.1, or HTTP/2 when the client opens with the preface (`http::serve`
/// hands the connection over). `first`: bytes already read (permissive mTLS sniffing).
fn plain(
    worker: Rc<Worker>,
    listener: Rc<str>,
    stream: TcpStream,
    first: Vec<u8>,
    peer: SocketAddr,
    original_dst: Option<OriginalDst>,
    stats: Rc<ListenerStats>,
) -> impl Future<Output = ()> {
    let conn = Rc::new(ClientConn {
        peer,
        tls: false,
        identity: None,
        xfcc: None,
        original_dst,
    });
    let (r, w) = stream.into_split();
    let mut c = http::Conn::new(
        worker,
        listener,
        ConnRead::Plain(r),
        ConnWrite::Plain(w),
        conn,
        stats,
    );
    c.buffer(&first);
    http::serve(c)
}

/// What an HTTP listener's X-Forwarded-Client-Cert element says of a verified client, and
/// the certificates it serves (`By=`).
struct XfccPlan {
    details: CertDetails,
    served: Option<std::sync::Arc<Served>>,
}

/// The TLS handshake, bounded by `timeout`; failures are counted and logged at debug level
/// (a port scanner or a plaintext client on a TLS port is not worth a warning). `xfcc`: an
/// HTTP listener's, whose connection keeps its X-Forwarded-Client-Cert element.
#[allow(clippy::too_many_arguments)]
async fn handshake(
    stats: &ListenerStats,
    config: std::sync::Arc<rustls::ServerConfig>,
    stream: TcpStream,
    first: Vec<u8>,
    peer: SocketAddr,
    original_dst: Option<OriginalDst>,
    timeout: Duration,
    xfcc: Option<&XfccPlan>,
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
    let session = tls.get_ref().1;
    let chain = session.peer_certificates();
    let identity = chain
        .and_then(crate::cx::tls::peer_identity)
        .map(Rc::<str>::from);
    // Once per connection: each request copies it.
    let xfcc = match (xfcc, chain) {
        (Some(plan), Some(chain)) => {
            let by = plan
                .served
                .as_ref()
                .map_or(&[][..], |s| s.uris(session.server_name()));
            element(&plan.details, by, chain).map(Rc::<str>::from)
        }
        _ => None,
    };
    let conn = Rc::new(ClientConn {
        peer,
        tls: true,
        identity,
        xfcc,
        original_dst,
    });
    Some((tls, conn))
}

/// Serves a connection accepted on a TCP listener: TLS is terminated when configured.
/// `first`: bytes a parent listener already read, relayed (or handshaken) first.
pub(crate) async fn serve_tcp(
    worker: Rc<Worker>,
    listener: Rc<str>,
    stream: TcpStream,
    peer: SocketAddr,
    dst: Option<OriginalDst>,
    stats: Rc<ListenerStats>,
    mut first: Vec<u8>,
) {
    let view = worker.views.current();
    let tls = view.tls.server(&listener).cloned();
    let timeout = view
        .listener(&listener)
        .map_or(Duration::from_secs(10), |l| {
            l.idle_timeout.min(Duration::from_secs(10))
        });
    drop(view);
    let (r, w) = match tls {
        None => {
            let (r, w) = stream.into_split();
            (ConnRead::Plain(r), ConnWrite::Plain(w))
        }
        Some(tls) => {
            let first = std::mem::take(&mut first);
            let handshake = handshake(&stats, tls, stream, first, peer, dst, timeout, None);
            let Some((tls, _conn)) = handshake.await else {
                return;
            };
            let (r, w) = split_poll(tls);
            (ConnRead::Tls(r), ConnWrite::Tls(w))
        }
    };
    crate::downstream::tcp::serve(worker, listener, r, w, peer, dst, first).await;
}
