//! Forwarding one request to a cluster: acquire a connection, send the request while
//! receiving the response, relay it, and decide what can be reused.
//!
//! Pipeline position: after Route (which chose the cluster), it runs Balance + Pool
//! (`upstream::acquire`), then the upstream exchange. Request body upload and response
//! download run *concurrently*: an upstream that answers early (413, 401) or streams its
//! response while reading (echo, proxies) never deadlocks, and `Expect: 100-continue` works
//! because the upstream's `100 Continue` is relayed while the client waits.
//!
//! Retry rule: a request that found its *pooled* connection closed by the upstream before
//! any response byte arrived (the keep-alive race) is retried once on a fresh connection when
//! it is idempotent and has no body — nothing was lost, so nothing can be duplicated.

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use ringside_codec::{
    parse_response, write_request_head, write_response_head, BodyKind, Edits, RequestHead, Version,
};
use ringside_config::{Cluster, UpstreamProtocol};

use super::body::{relay_response_body, send_request_body, BodyState, RelayError, SendError};
use crate::conn::{ConnRead, ConnWrite};
use crate::error::ProxyError;
use crate::io::{write_vec_timeout, Fill, ReadBuf};
use crate::metrics::ClusterStats;
use crate::pool::Upstream;
use crate::state::ClusterState;
use crate::tunnel::{tunnel, End};
use crate::upstream::acquire;
use crate::worker::Worker;

/// Largest response head accepted from an upstream.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// Longest wait for the response head, or between two reads of a body, when the route sets
/// no timeout (nginx's `proxy_read_timeout`).
pub(crate) const UPSTREAM_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// The client side of the connection, lent to one request.
pub(crate) struct Downstream<'a> {
    pub(crate) r: &'a mut ConnRead,
    pub(crate) w: &'a mut ConnWrite,
    pub(crate) buf: &'a mut ReadBuf,
}

/// Everything about the request the forwarder needs.
pub(crate) struct Request<'a> {
    pub(crate) head: &'a RequestHead,
    /// Headers the proxy sets on the upstream request (X-Forwarded-*, X-Request-Id).
    pub(crate) set: &'a [(&'a str, &'a [u8])],
    /// The request as the pipeline left it: body limit, header edits, response hooks.
    pub(crate) piped: &'a crate::pipeline::Piped<'a>,
    /// Listener idle timeout: bounds waits on the client.
    pub(crate) idle: Duration,
    /// The client asked to keep the connection open.
    pub(crate) client_keep: bool,
    /// Ring-hash key of the request.
    pub(crate) hash: Option<u64>,
    /// Index of the cluster in the snapshot (its TLS context).
    pub(crate) cluster_idx: usize,
}

/// How a forwarded request ended.
pub(crate) enum Forwarded {
    /// A response was relayed; `keep` says whether the client connection can serve another.
    Done { keep: bool },
    /// The connection became a tunnel and has ended.
    Tunneled,
}

/// One exchange with an endpoint: counted as active (least_request, metrics) for as long as
/// it lives, and recorded when it ends — as a response with its status, or, when it ends
/// without one (including being dropped by a route timeout), as an error.
pub(crate) struct Active<'a> {
    state: &'a ClusterState,
    idx: usize,
    stats: &'a ClusterStats,
    addr: std::net::SocketAddr,
    pub(crate) started: std::time::Instant,
    pub(crate) status: Option<u16>,
}

impl<'a> Active<'a> {
    pub(crate) fn start(
        state: &'a ClusterState,
        idx: usize,
        stats: &'a ClusterStats,
        addr: std::net::SocketAddr,
    ) -> Active<'a> {
        state.balancer.request_started(idx);
        stats.started(addr);
        Active {
            state,
            idx,
            stats,
            addr,
            started: std::time::Instant::now(),
            status: None,
        }
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.state.balancer.request_finished(self.idx);
        self.stats.finished(self.addr);
        let took = self.started.elapsed();
        match self.status {
            Some(status) => self.stats.response(self.addr, status, took),
            None => self.stats.error(self.addr, took),
        }
    }
}

/// What the client has been sent so far by this request's exchange.
#[derive(Default)]
pub(crate) struct Progress {
    /// A final response head went out: an error can now only close the connection.
    pub(crate) head_sent: Cell<bool>,
    /// A `100 Continue` went out: the client is sending its body.
    pub(crate) continued: Cell<bool>,
    /// Status of the final response head sent to the client (when `head_sent`).
    pub(crate) status: Cell<u16>,
    /// Request body bytes sent upstream, and bytes written to the client.
    pub(crate) bytes_in: Cell<u64>,
    pub(crate) bytes_out: Cell<u64>,
    /// The endpoint of the last exchange and how long it took.
    pub(crate) upstream: Cell<Option<std::net::SocketAddr>>,
    pub(crate) upstream_time: Cell<Option<std::time::Duration>>,
}

enum Exchanged {
    Final {
        keep_client: bool,
        reuse_upstream: bool,
    },
    Upgraded,
}

pub(crate) async fn forward(
    worker: &std::rc::Rc<Worker>,
    cluster: &Cluster,
    state: &ClusterState,
    req: &Request<'_>,
    ds: &mut Downstream<'_>,
    progress: &Progress,
) -> Result<Forwarded, ProxyError> {
    // `auto` with TLS lets ALPN choose, on the HTTP/2 path (see docs/config.md).
    let tls = cluster.tls.is_some() || cluster.mtls.is_some();
    if cluster.protocol == UpstreamProtocol::Http2
        || (cluster.protocol == UpstreamProtocol::Auto && tls)
    {
        let after = crate::h2::from_h1::forward(
            worker,
            cluster,
            req.cluster_idx,
            state,
            crate::h2::from_h1::FromH1 { req, ds, progress },
        )
        .await?;
        return Ok(Forwarded::Done {
            keep: matches!(after, super::route::After::KeepAlive),
        });
    }
    let stats = worker.stats.cluster(&cluster.name);
    let retry_safe = req.head.is_idempotent()
        && matches!(req.head.body(), BodyKind::Empty | BodyKind::Length(0));
    let mut attempt = 0;
    loop {
        let (mut up, idx) = acquire(
            worker,
            cluster,
            req.cluster_idx,
            state,
            req.hash,
            attempt == 0,
        )
        .await?;
        // A guard, not a call after the await: a route timeout drops this future mid-way
        // and the active-request count must still come down.
        let mut active = Active::start(state, idx, &stats, up.addr);
        progress.upstream.set(Some(up.addr));
        let res = exchange(worker, req, ds, &mut up, progress).await;
        progress.upstream_time.set(Some(active.started.elapsed()));
        if progress.head_sent.get() {
            active.status = Some(progress.status.get());
        }
        drop(active);
        match res {
            Ok(Exchanged::Final {
                keep_client,
                reuse_upstream,
            }) => {
                if reuse_upstream && !worker.draining() {
                    worker
                        .pool
                        .put(up, cluster.max_idle_per_endpoint, cluster.idle_timeout);
                }
                return Ok(Forwarded::Done { keep: keep_client });
            }
            Ok(Exchanged::Upgraded) => {
                let Upstream {
                    mut r,
                    mut w,
                    mut buf,
                    ..
                } = up;
                let _ = tunnel(
                    End {
                        r: ds.r,
                        w: ds.w,
                        buf: ds.buf,
                    },
                    End {
                        r: &mut r,
                        w: &mut w,
                        buf: &mut buf,
                    },
                    req.idle,
                )
                .await;
                return Ok(Forwarded::Tunneled);
            }
            Err(ProxyError::UpstreamClosedEarly)
                if up.reused && retry_safe && !progress.head_sent.get() && attempt == 0 =>
            {
                tracing::debug!(endpoint = %up.addr, "pooled connection was closed by the upstream; retrying");
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn exchange(
    worker: &Worker,
    req: &Request<'_>,
    ds: &mut Downstream<'_>,
    up: &mut Upstream,
    progress: &Progress,
) -> Result<Exchanged, ProxyError> {
    let head = req.head;
    let upgrade = head.upgrade().is_some() && matches!(head.body(), BodyKind::Empty);
    let mut out = Vec::with_capacity(1024);
    write_request_head(&mut out, head, req.set, &req.piped.req.edits, upgrade);
    let mut body = BodyState::new(head.body());
    let mut sent = 0u64;
    let mut payload = 0u64;
    let n = body
        .take(ds.buf.data(), |r| payload += r.len() as u64)
        .map_err(|e| ProxyError::BadRequest(e.to_string()))?;
    sent += payload;
    if req.piped.req.body_limit.is_some_and(|l| sent > l) {
        return Err(ProxyError::BodyTooLarge);
    }
    out.extend_from_slice(ds.buf.data().get(..n).unwrap_or(&[]));
    ds.buf.consume(n);
    let reused = up.reused;
    if let Err(e) = write_vec_timeout(&mut up.w, out, UPSTREAM_READ_TIMEOUT).await {
        return Err(if reused {
            ProxyError::UpstreamClosedEarly
        } else {
            ProxyError::UpstreamIo(e)
        });
    }

    let Upstream {
        r: upr,
        w: upw,
        buf: upbuf,
        ..
    } = up;
    let Downstream {
        r: cr,
        w: cw,
        buf: cbuf,
    } = ds;
    let limit = req.piped.req.body_limit;
    // An `Expect: 100-continue` client that gets a final response without a `100 Continue`
    // before it may never send its body (RFC 9110 §10.1.1): then it must not be waited for.
    let mut send_result: Option<Result<(), SendError>> = body.is_done().then_some(Ok(()));
    let mut recv_result: Option<Exchanged> = None;
    let outcome = {
        let mut send = pin!(async {
            if body.is_done() {
                Ok(())
            } else {
                send_request_body(cr, cbuf, upw, &mut body, limit, &mut sent, req.idle).await
            }
        });
        let mut recv = pin!(receive(worker, req, upr, upbuf, cw, upgrade, progress));
        poll_fn(|cx| {
            if send_result.is_none() {
                if let Poll::Ready(r) = send.as_mut().poll(cx) {
                    if recv_result.is_none() {
                        match r {
                            Err(SendError::Client(e)) => return Poll::Ready(Err(e)),
                            Err(SendError::TooLarge) => {
                                return Poll::Ready(Err(ProxyError::BodyTooLarge))
                            }
                            _ => {}
                        }
                    }
                    send_result = Some(r);
                }
            }
            if recv_result.is_none() {
                match recv.as_mut().poll(cx) {
                    Poll::Ready(Ok(x)) => recv_result = Some(x),
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {}
                }
            }
            // The response is complete. An upstream that answered before reading the whole
            // request body usually keeps reading (and discarding) it, so the body keeps
            // flowing; the exchange ends when both directions have.
            match (&send_result, recv_result.is_some()) {
                (Some(_), true) => Poll::Ready(Ok(())),
                (None, true) if head.expects_continue() && !progress.continued.get() => {
                    Poll::Ready(Ok(()))
                }
                _ => Poll::Pending,
            }
        })
        .await
    };
    progress.bytes_in.set(sent);
    outcome?;
    let Some(exchanged) = recv_result else {
        return Err(ProxyError::UpstreamInvalid("no response".into()));
    };
    match exchanged {
        Exchanged::Final {
            keep_client,
            reuse_upstream,
        } => {
            // A request body that did not finish leaves both connections in an unknown
            // state: close them.
            let body_complete = matches!(send_result, Some(Ok(())));
            Ok(Exchanged::Final {
                keep_client: keep_client && body_complete,
                reuse_upstream: reuse_upstream && body_complete,
            })
        }
        Exchanged::Upgraded => Ok(Exchanged::Upgraded),
    }
}

/// Reads the response head (relaying interim 1xx responses), writes it to the client, and
/// relays the body.
async fn receive(
    worker: &Worker,
    req: &Request<'_>,
    upr: &mut ConnRead,
    upbuf: &mut ReadBuf,
    cw: &mut ConnWrite,
    upgrade: bool,
    progress: &Progress,
) -> Result<Exchanged, ProxyError> {
    let head = req.head;
    let http10 = head.version() == Version::Http10;
    let mut got_bytes = false;
    loop {
        let (resp, n) = loop {
            if !upbuf.is_empty() {
                got_bytes = true;
                match parse_response(upbuf.data(), MAX_RESPONSE_HEAD, head.method()) {
                    Ok(Some(parsed)) => break parsed,
                    Ok(None) => {}
                    Err(e) => return Err(ProxyError::UpstreamInvalid(e.to_string())),
                }
            }
            match upbuf
                .fill(
                    upr,
                    MAX_RESPONSE_HEAD,
                    crate::io::sleep(UPSTREAM_READ_TIMEOUT),
                )
                .await
            {
                Ok(Fill::Data) => {}
                Ok(Fill::Eof) if !got_bytes => return Err(ProxyError::UpstreamClosedEarly),
                Ok(Fill::Eof) => {
                    return Err(ProxyError::UpstreamInvalid(
                        "upstream closed the connection mid-head".into(),
                    ))
                }
                Ok(Fill::Stopped) => return Err(ProxyError::Timeout),
                Ok(Fill::Full) => {
                    return Err(ProxyError::UpstreamInvalid(
                        "response head too large".into(),
                    ))
                }
                Err(e) if !got_bytes && is_reset(&e) => {
                    return Err(ProxyError::UpstreamClosedEarly)
                }
                Err(e) => return Err(ProxyError::UpstreamIo(e)),
            }
        };
        upbuf.consume(n);
        let status = resp.status();
        if status == 101 {
            if !upgrade {
                return Err(ProxyError::UpstreamInvalid(
                    "101 without an upgrade request".into(),
                ));
            }
            let mut out = Vec::with_capacity(512);
            write_response_head(&mut out, &resp, &[], &Edits::NONE, true);
            progress.status.set(101);
            progress.head_sent.set(true);
            write_vec_timeout(cw, out, req.idle)
                .await
                .map_err(ProxyError::ClientIo)?;
            return Ok(Exchanged::Upgraded);
        }
        if resp.is_informational() {
            // 100 Continue, 103 Early Hints...: relay to HTTP/1.1 clients, drop for 1.0.
            if !http10 {
                let mut out = Vec::with_capacity(256);
                write_response_head(&mut out, &resp, &[], &Edits::NONE, true);
                write_vec_timeout(cw, out, req.idle)
                    .await
                    .map_err(ProxyError::ClientIo)?;
                if status == 100 {
                    progress.continued.set(true);
                }
            }
            continue;
        }
        progress.status.set(status);
        let kind = resp.body();
        let dechunk = http10 && kind == BodyKind::Chunked;
        let keep_client =
            req.client_keep && !http10 && kind != BodyKind::UntilClose && !worker.draining();
        let edits = req.piped.response_edits(&|n| resp.header(n).is_some());
        let mut out = Vec::with_capacity(1024);
        if dechunk {
            ringside_codec::write_response_head_dechunked(&mut out, &resp, &[], &edits);
        } else {
            write_response_head(&mut out, &resp, &[], &edits, keep_client);
        }
        progress.head_sent.set(true);
        let mut state = BodyState::new(kind);
        let relayed = relay_response_body(
            upr,
            upbuf,
            cw,
            &mut state,
            dechunk,
            out,
            UPSTREAM_READ_TIMEOUT,
            req.idle,
            &progress.bytes_out,
        )
        .await;
        match relayed {
            Ok(()) => {}
            Err(RelayError::Upstream(e)) | Err(RelayError::Client(e)) => return Err(e),
        }
        let reuse_upstream = resp.keep_alive() && upbuf.is_empty();
        return Ok(Exchanged::Final {
            keep_client,
            reuse_upstream,
        });
    }
}

fn is_reset(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::BrokenPipe
    )
}
