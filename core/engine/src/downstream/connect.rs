//! CONNECT tunnels: what an `HTTPS_PROXY` client asks for (`CONNECT api.example.com:443`),
//! once the pipeline let a `match.connect` route take it (`Decision::Tunnel`).
//!
//! ```text
//! decide ─▶ Tunnel(cluster | authority) ─▶ open: Balance loop + connect (the TCP
//!   listener's), or the authority's IP address ─▶ 200 ─▶ tunnel | h2_tunnel ─▶ log line
//! ```
//! Over HTTP/1.1 the answer is `HTTP/1.1 200 Connection established` and the connection is
//! the tunnel until either side ends it; over HTTP/2 it is `:status 200` on the stream,
//! whose DATA frames carry the bytes (RFC 9113 §8.5). Bytes already read after the head go
//! first. A failure before the `200` is answered (502, 503, 504 within the route's
//! `timeout_ms`) and the HTTP/1.1 connection closed; after it, the tunnel just ends. The
//! listener's `idle_timeout_ms` ends a silent tunnel. Counted and logged as a request with
//! status 200 whose `bytes_in` / `bytes_out` are the tunnel's bytes each way, and in the
//! TCP listeners' debug line (`tcp::closed`).

use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::server::SendResponse;
use h2::RecvStream;
use ringside_codec::{Edits, RequestHead};
use ringside_config::{Listener, Route};

use crate::cx::error::ProxyError;
use crate::cx::io::write_vec_timeout;
use crate::downstream::http::route::{consumer_of, After, Downstream, Outcome, CLIENT_CLOSED};
use crate::downstream::Worker;
use crate::pipeline::answer::{tunnel_h1, tunnel_h2, Answer};
use crate::pipeline::view::View;
use crate::pipeline::{self, Piped, TunnelTo};
use crate::upstream::pool::Upstream;
use crate::upstream::tunnel::{h2_tunnel, tunnel, End, Moved};
use crate::upstream::{connect_any, Progress};

/// How long a connect to an authority's address may take (a cluster's default
/// `connect_timeout_ms`).
const AUTHORITY_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// A CONNECT over HTTP/1.1: opens the tunnel, answers, relays until either side ends.
pub(crate) async fn h1<'v>(
    worker: &Rc<Worker>,
    view: &View,
    l: &Listener,
    route: &'v Route,
    to: TunnelTo,
    piped: &Piped<'_>,
    ds: &mut Downstream<'_>,
) -> Outcome<'v> {
    let req = piped.req;
    let started = Instant::now();
    let mut up = match pipeline::forward(req, open(worker, view, to, req.head, req.conn.peer)).await
    {
        Ok(up) => up,
        Err(e) => {
            tracing::debug!(route = %route.name, peer = %req.conn.peer, error = %e, "connect: no tunnel");
            let mut out = Vec::with_capacity(256);
            Answer::error(&e, false, None).h1(&mut out, true, false, &Edits::NONE);
            let bytes_out = out.len() as u64;
            let _ = write_vec_timeout(ds.w, out, l.idle_timeout).await;
            return Outcome {
                bytes_out,
                consumer: consumer_of(req),
                ..Outcome::failed(After::Close, &route.name, &e)
            };
        }
    };
    let opened = started.elapsed();
    let mut out = Vec::with_capacity(64);
    tunnel_h1(&mut out, &piped.response_edits(&|_| false));
    let head = out.len() as u64;
    let mut outcome = Outcome {
        upstream: Some(up.addr),
        upstream_time: Some(opened),
        consumer: consumer_of(req),
        ..Outcome::new(After::Close, &route.name, 200)
    };
    if write_vec_timeout(ds.w, out, l.idle_timeout).await.is_err() {
        outcome.status = CLIENT_CLOSED;
        return outcome;
    }
    let Upstream { r, w, buf, .. } = &mut up;
    let client = End {
        r: &mut *ds.r,
        w: &mut *ds.w,
        buf: &mut *ds.buf,
    };
    let (moved, res) = tunnel(client, End { r, w, buf }, l.idle_timeout).await;
    crate::downstream::tcp::closed(&l.name, req.conn.peer, moved, &res);
    outcome.bytes_in = moved.a_to_b;
    outcome.bytes_out = head + moved.b_to_a;
    outcome.error = res.err().map(|e| e.to_string());
    outcome
}

/// A CONNECT over HTTP/2: opens the tunnel, answers `:status 200` on the stream, relays its
/// DATA frames until both directions end. `sent` records what the stream's log line says.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn h2(
    worker: &Rc<Worker>,
    view: &View,
    l: &Listener,
    to: TunnelTo,
    piped: &Piped<'_>,
    body: &mut RecvStream,
    respond: &std::cell::RefCell<SendResponse<Bytes>>,
    sent: &Progress,
) -> Result<(), ProxyError> {
    let req = piped.req;
    let started = Instant::now();
    let mut up = pipeline::forward(req, open(worker, view, to, req.head, req.conn.peer)).await?;
    sent.upstream.set(Some(up.addr));
    sent.upstream_time.set(Some(started.elapsed()));
    let stream = tunnel_h2(&mut respond.borrow_mut(), &piped.response_edits(&|_| false))
        .map_err(ProxyError::ClientStream)?;
    sent.status.set(200);
    sent.head_sent.set(true);
    h2_tunnel(body, stream, &mut up, l.idle_timeout, sent).await;
    let moved = Moved {
        a_to_b: sent.bytes_in.get(),
        b_to_a: sent.bytes_out.get(),
    };
    crate::downstream::tcp::closed(&l.name, req.conn.peer, moved, &Ok(()));
    Ok(())
}

/// The tunnel's upstream connection: an endpoint of the cluster, through the Balance loop
/// as a TCP listener's (breaker, ejection, TLS when the cluster has it), or the address
/// the authority names (its host is an IP address: the route's `match.host` is one).
async fn open(
    worker: &Rc<Worker>,
    view: &View,
    to: TunnelTo,
    head: &RequestHead,
    peer: SocketAddr,
) -> Result<Upstream, ProxyError> {
    match to {
        TunnelTo::Cluster(id) => {
            let (Some(c), Some(state)) =
                (view.snap.config.clusters.get(id.0), view.clusters.get(id.0))
            else {
                return Err(ProxyError::NoHealthyEndpoint);
            };
            let hash = crate::downstream::http::route::request_hash_of(c, head, peer);
            let (up, _) = connect_any(worker.client(view, c, id.0), c, state, hash).await?;
            Ok(up)
        }
        TunnelTo::Authority => {
            let addr = authority_addr(head).ok_or(ProxyError::Refused(
                "a tunnel to the authority needs an IP address",
            ))?;
            Upstream::connect(addr, AUTHORITY_CONNECT_TIMEOUT)
                .await
                .map_err(ProxyError::Connect)
        }
    }
}

/// The socket address of a CONNECT's authority, when its host is an IP address.
fn authority_addr(head: &RequestHead) -> Option<SocketAddr> {
    let (host, port) = head.authority()?.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Some(SocketAddr::new(
        host.parse::<IpAddr>().ok()?,
        port.parse().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_authority_is_an_address_only_when_its_host_is_an_ip() {
        let addr = |authority: &str| {
            let head = crate::stage::test_head(&format!(
                "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n"
            ));
            authority_addr(&head)
        };
        assert_eq!(addr("10.0.0.7:443"), Some("10.0.0.7:443".parse().unwrap()));
        assert_eq!(
            addr("[fd00::7]:8443"),
            Some("[fd00::7]:8443".parse().unwrap())
        );
        assert_eq!(addr("api.example.com:443"), None);
    }
}
