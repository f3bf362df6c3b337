//! Layer 2, the upstream side of an exchange: two clients, HTTP/1.1 ([`h1`]) and HTTP/2 ([`h2`]),
//! each with or without TLS, behind one call ([`call`]), and the Balance loop they share.
//!
//! ```text
//! call(Exchange, Down) ─▶ h1::call (pool, keep-alive race retry, 1xx, upgrades)
//!                      └▶ h2::call (multiplexed connections, extended CONNECT)
//!   each: acquire ─▶ request head (+ the stages' edits) ─▶ upload ∥ (response head ─▶
//!         the stages' response hooks ─▶ head to the client ─▶ body to the client)
//! ```
//! The response head comes back to the pipeline (`Piped::response_edits`) before a byte of
//! it is written to the client; the request body keeps streaming meanwhile, and bodies
//! stream both ways with bounded buffers. [`Down`] is the downstream side, HTTP/1.1 or
//! HTTP/2: where the request body comes from and where the response goes.
//!
//! Choosing and connecting to an endpoint (the Balance loop and its health):
//! The balancer picks among endpoints in rotation (not ejected by outlier detection, not
//! failing active health checks; `outlier.rs`, `health.rs`) and not yet tried for this
//! request; a connect failure is recorded against the endpoint (which may eject it) and the
//! loop moves on to another, up to `MAX_CONNECT_ATTEMPTS`. When no endpoint at all is in
//! rotation, the request goes to any of them (panic mode, counted): an outage of every
//! endpoint must not outlive itself. Each exchange's outcome (its status, or a reset or
//! timeout before one) is recorded when it ends ([`Active`]). An empty cluster answers 503
//! (no healthy endpoint); failed attempts answer 502.
//!
//! A cluster's circuit breaker ([`breaker`]) is taken on the way, each limit at one place:
//! `max_requests` for the whole of [`call`], `max_pending_requests` around the Balance loop
//! ([`try_endpoints`]), `max_connections` just before a connection is made. A refused
//! request ends there with `ProxyError::Overloaded` (503), and the endpoint is not blamed.

pub mod balance;
pub(crate) mod body;
pub(crate) mod breaker;
pub(crate) mod cluster;
pub(crate) mod convert;
pub(crate) mod dns;
pub(crate) mod h1;
pub(crate) mod h2;
pub(crate) mod h2_pool;
pub(crate) mod health;
pub(crate) mod mirror;
pub(crate) mod original_dst;
pub(crate) mod outlier;
pub(crate) mod pool;
pub(crate) mod priority;
pub(crate) mod redis;
pub(crate) mod relay;
pub(crate) mod retry;
pub(crate) mod tunnel;
pub(crate) mod zones;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use ::h2::server::SendResponse;
use ::h2::RecvStream;
use bytes::Bytes;
use ringside_codec::RequestHead;
use ringside_config::{Cluster, UpstreamProtocol};

use crate::cx::conn::{ConnRead, ConnWrite};
use crate::cx::error::{BreakerLimit, ProxyError};
use crate::cx::io::ReadBuf;
use crate::cx::metrics::ClusterStats;
use crate::cx::Cx;
use cluster::ClusterState;
use outlier::Outcome;
use pool::{Pool, UpTls, Upstream};

/// This worker's upstream connections: idle HTTP/1.1 ones, and multiplexed HTTP/2 ones.
#[derive(Default)]
pub(crate) struct Upstreams {
    pub(crate) pool: Pool,
    pub(crate) h2: h2_pool::H2Pool,
}

/// What an upstream client needs of its worker: the runtime context, the connections, and
/// the TLS client settings of the cluster being called (from the current view).
#[derive(Clone, Copy)]
pub(crate) struct Client<'a> {
    pub(crate) cx: &'a Cx,
    pub(crate) up: &'a Upstreams,
    pub(crate) tls: Option<&'a std::sync::Arc<rustls::ClientConfig>>,
    /// The client connection's original destination (`transparent` listeners): where a
    /// cluster of `kind = "original_dst"` sends it.
    pub(crate) original_dst: Option<crate::cx::original_dst::OriginalDst>,
}

/// Longest wait for the response head, or between two reads of a body, when the route sets
/// no timeout (nginx's `proxy_read_timeout`).
pub(crate) const UPSTREAM_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// What the upstream call needs to know about the request, whatever its protocol.
#[derive(Clone, Copy)]
pub(crate) struct Exchange<'a> {
    pub(crate) head: &'a RequestHead,
    /// Headers the proxy sets on the upstream request (X-Forwarded-*, X-Request-Id...).
    pub(crate) set: &'a [(&'static str, &'a [u8])],
    /// The stages' edits of the request head.
    pub(crate) edits: &'a ringside_codec::Edits,
    /// The most request body bytes to forward (413 past it).
    pub(crate) body_limit: Option<u64>,
    /// The pipeline's look at the response head before the client gets it.
    pub(crate) response: &'a dyn ResponseHook,
    /// Ring-hash key of the request.
    pub(crate) hash: Option<u64>,
    /// Listener idle timeout: bounds waits on the client.
    pub(crate) idle: Duration,
    /// `application/grpc...` (a trailers-only `grpc-status` may ask for a retry).
    pub(crate) grpc: bool,
    /// The route's retry policy.
    pub(crate) retry: Option<&'a ringside_config::RetryPolicy>,
    /// Where a copy of the request goes (the route's mirror, when this request is one of
    /// its share).
    pub(crate) mirror: Option<&'a dyn mirror::Mirror>,
    /// Set by the retry loop for each try: the kept body, the look at the response head,
    /// the endpoints already tried. Empty (`Default`) from the pipeline.
    pub(crate) attempt: retry::Try<'a>,
}

/// The second phase of the call: the upstream's response head goes back through the
/// pipeline (the stages' response hooks, in reverse) before a byte of it reaches the client.
/// Implemented by `pipeline::Piped`; defined here so that this layer imports nothing above it.
pub(crate) trait ResponseHook {
    /// The edits to make to a response head; `present` tells whether the response carries a
    /// field of that lower-case name.
    fn edits(&self, present: &dyn Fn(&str) -> bool) -> ringside_codec::Edits;
}

/// The downstream side of an exchange.
pub(crate) enum Down<'a> {
    H1(H1Down<'a>),
    H2(H2Down<'a>),
    /// No client: a mirrored copy (`mirror.rs`), whose body is kept (`attempt.replay`) and
    /// whose response is read and dropped.
    Discard,
}

/// An HTTP/1.1 client connection, lent to one request.
pub(crate) struct H1Down<'a> {
    pub(crate) r: &'a mut ConnRead,
    pub(crate) w: &'a mut ConnWrite,
    /// Bytes read from the client and not consumed yet (the start of the body).
    pub(crate) buf: &'a mut ReadBuf,
    /// The client asked to keep the connection open.
    pub(crate) client_keep: bool,
}

/// One HTTP/2 stream of a client.
pub(crate) struct H2Down<'a> {
    pub(crate) parts: &'a http::request::Parts,
    pub(crate) body: &'a mut RecvStream,
    pub(crate) respond: &'a RefCell<SendResponse<Bytes>>,
    /// An RFC 8441 extended CONNECT for a WebSocket.
    pub(crate) websocket: bool,
    /// Body bytes already taken from `body` (read ahead for a retry, then found too big to
    /// keep): sent before the rest.
    pub(crate) pending: Vec<Bytes>,
}

/// The client side of an exchange split in two, so that its body can go up while the
/// response comes down: where the request body comes from ...
pub(crate) enum Source<'a> {
    H1 {
        r: &'a mut ConnRead,
        buf: &'a mut ReadBuf,
        state: &'a mut body::BodyState,
    },
    H2 {
        body: &'a mut RecvStream,
        pending: &'a mut Vec<Bytes>,
    },
    /// Nothing: the body, if any, is kept (`retry::Replay`).
    Kept,
}

/// ... and where the response goes.
pub(crate) enum Sink<'a> {
    H1 {
        w: &'a mut ConnWrite,
        client_keep: bool,
    },
    H2 {
        respond: &'a RefCell<SendResponse<Bytes>>,
    },
    /// Read and dropped.
    Discard,
}

impl Down<'_> {
    /// Splits the client side in two; `h1_body` is an HTTP/1.1 client's body state.
    pub(crate) fn split<'s>(
        &'s mut self,
        h1_body: &'s mut body::BodyState,
    ) -> (Source<'s>, Sink<'s>) {
        match self {
            Down::H1(d) => (
                Source::H1 {
                    r: &mut *d.r,
                    buf: &mut *d.buf,
                    state: h1_body,
                },
                Sink::H1 {
                    w: &mut *d.w,
                    client_keep: d.client_keep,
                },
            ),
            Down::H2(d) => (
                Source::H2 {
                    body: &mut *d.body,
                    pending: &mut d.pending,
                },
                Sink::H2 { respond: d.respond },
            ),
            Down::Discard => (Source::Kept, Sink::Discard),
        }
    }
}

/// What the client has been sent so far by this request's exchange.
#[derive(Default)]
pub(crate) struct Progress {
    /// A final response head went out: an error can now only close the connection or reset
    /// the stream.
    pub(crate) head_sent: Cell<bool>,
    /// A `100 Continue` went out: the client is sending its body.
    pub(crate) continued: Cell<bool>,
    /// Status of the final response head sent to the client (when `head_sent`).
    pub(crate) status: Cell<u16>,
    /// Request body bytes sent upstream, and bytes written to the client.
    pub(crate) bytes_in: Cell<u64>,
    pub(crate) bytes_out: Cell<u64>,
    /// The endpoint of the last exchange (its address and its index in the cluster) and how
    /// long it took.
    pub(crate) upstream: Cell<Option<SocketAddr>>,
    pub(crate) endpoint: Cell<Option<usize>>,
    /// The status of a response the retry policy held back for another try (it never went
    /// to the client).
    pub(crate) retried: Cell<Option<u16>>,
    pub(crate) upstream_time: Cell<Option<Duration>>,
}

/// How an exchange ended (for an HTTP/1.1 client: whether its connection can serve another
/// request).
pub(crate) struct Ended {
    pub(crate) keep: bool,
}

/// Runs one exchange's request-body upload and response download together, so that an
/// upstream that answers early (413, 401) or streams its answer while it reads never
/// deadlocks, and `Expect: 100-continue` works. A client that fails while sending its body
/// ends the exchange unless the response is already complete; an upload stopped because the
/// upstream stopped reading (`upstream_stopped`) lets the response tell the rest. Once the
/// response is complete, `wait_for_body()` says whether the rest of the body is still waited
/// for (an HTTP/1.1 connection can only be reused after it). `upload_done`: there is no body.
/// Resolves to the download's value and the upload's result (`None`: it did not finish).
pub(crate) fn upload_and_download<T, U, D, W>(
    upload: U,
    upload_done: bool,
    download: D,
    upstream_stopped: fn(&ProxyError) -> bool,
    wait_for_body: W,
) -> UploadAndDownload<T, U, D, W>
where
    U: Future<Output = Result<(), ProxyError>>,
    D: Future<Output = Result<T, ProxyError>>,
    W: Fn() -> bool,
{
    UploadAndDownload {
        upload,
        download,
        upload_result: upload_done.then_some(Ok(())),
        download_result: None,
        upstream_stopped,
        wait_for_body,
    }
}

pin_project_lite::pin_project! {
    /// The future of [`upload_and_download`]: a struct, so that both directions (most of an
    /// exchange's state) are stored once, where an `async fn` would keep its arguments and
    /// its pinned copies of them (two moves of both futures per request).
    pub(crate) struct UploadAndDownload<T, U, D, W> {
        #[pin]
        upload: U,
        #[pin]
        download: D,
        upload_result: Option<Result<(), ProxyError>>,
        download_result: Option<T>,
        upstream_stopped: fn(&ProxyError) -> bool,
        wait_for_body: W,
    }
}

impl<T, U, D, W> Future for UploadAndDownload<T, U, D, W>
where
    U: Future<Output = Result<(), ProxyError>>,
    D: Future<Output = Result<T, ProxyError>>,
    W: Fn() -> bool,
{
    type Output = Result<(T, Option<Result<(), ProxyError>>), ProxyError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if this.upload_result.is_none() {
            if let Poll::Ready(r) = this.upload.poll(cx) {
                match r {
                    Err(e) if this.download_result.is_none() && !(this.upstream_stopped)(&e) => {
                        return Poll::Ready(Err(e))
                    }
                    r => *this.upload_result = Some(r),
                }
            }
        }
        if this.download_result.is_none() {
            match this.download.poll(cx) {
                Poll::Ready(Ok(v)) => *this.download_result = Some(v),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
        }
        let finished = match (&*this.upload_result, this.download_result.is_some()) {
            (Some(_), true) => true,
            (None, true) => !(this.wait_for_body)(),
            _ => false,
        };
        if !finished {
            return Poll::Pending;
        }
        Poll::Ready(match this.download_result.take() {
            Some(v) => Ok((v, this.upload_result.take())),
            None => Err(ProxyError::UpstreamInvalid("no response".into())),
        })
    }
}

/// Calls the cluster, under the route's retry policy and with its mirror when it has them
/// (`retry.rs`, `mirror.rs`); a request without either goes straight to [`call_once`]. One
/// `async fn` in `retry.rs`, not a wrapper here: awaiting the retry loop's future from
/// another would move it (a memcpy of its whole size) on every request.
pub(crate) use retry::call;

/// One try (or a mirrored copy): the cluster's HTTP/2 client for `protocol = "http2"`, and
/// for `auto` over TLS (ALPN chooses) or from an HTTP/2 client; else its HTTP/1.1 client. A
/// try holds a place under the breaker's `max_requests` while it runs.
pub(crate) async fn call_once(
    client: Client<'_>,
    cluster: &Cluster,
    state: &ClusterState,
    x: &Exchange<'_>,
    down: &mut Down<'_>,
    progress: &Progress,
) -> Result<Ended, ProxyError> {
    let _request = breaker::hold(state.breaker.as_deref(), BreakerLimit::Requests, || {
        client.cx.stats.cluster(&cluster.name)
    })?;
    let tls = cluster.tls.is_some() || cluster.mtls.is_some();
    let h2 = match cluster.protocol {
        UpstreamProtocol::Http2 => true,
        UpstreamProtocol::Http1 => false,
        UpstreamProtocol::Auto => tls || matches!(down, Down::H2(_)),
    };
    if h2 {
        // Boxed: the HTTP/2 client's future is the largest of a request (6.6 KB, the
        // HTTP/1.1 client's 5 KB), and every request's future is as large as its largest
        // branch.
        Box::pin(h2::call(client, cluster, state, x, down, progress)).await
    } else {
        h1::call(client, cluster, state, x, down, progress).await
    }
}

/// One exchange with an endpoint: counted as active (least_request, metrics) for as long as
/// it lives, and recorded when it ends — as a response with its status, or, when it ends
/// without one (including being dropped by a route timeout), as an error.
pub(crate) struct Active<'a> {
    state: &'a ClusterState,
    idx: usize,
    stats: &'a ClusterStats,
    addr: SocketAddr,
    started: std::time::Instant,
    progress: &'a Progress,
    /// Whether an exchange that ends without a response is the endpoint's failure (a reset,
    /// a timeout, a route timeout dropping it) rather than the client's.
    upstream_fault: Cell<bool>,
}

impl<'a> Active<'a> {
    pub(crate) fn start(
        state: &'a ClusterState,
        idx: usize,
        stats: &'a ClusterStats,
        addr: SocketAddr,
        progress: &'a Progress,
    ) -> Active<'a> {
        state.balancer.request_started(idx);
        progress.upstream.set(Some(addr));
        progress.endpoint.set(Some(idx));
        // An original destination's series are bounded (`ClusterStats::destination`).
        let addr = if idx == original_dst::INDEX {
            stats.destination(addr)
        } else {
            addr
        };
        stats.started(addr);
        if let Some(zone) = state.zone(idx) {
            stats.zone_request(zone);
        }
        Active {
            state,
            idx,
            stats,
            addr,
            started: std::time::Instant::now(),
            progress,
            upstream_fault: Cell::new(true),
        }
    }

    /// Says how the exchange failed: a client's failure, or the keep-alive race on a reused
    /// connection (`race`), is not held against the endpoint.
    pub(crate) fn failed(&self, e: &ProxyError, race: bool) {
        let upstream = e.side() == crate::cx::error::Side::Upstream;
        self.upstream_fault.set(upstream && !race);
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.state.balancer.request_finished(self.idx);
        self.stats.finished(self.addr);
        let took = self.started.elapsed();
        self.progress.upstream_time.set(Some(took));
        // A response held back for a retry (`retry::Gate`) is a response all the same.
        let held_back = self.progress.retried.take();
        if self.progress.head_sent.get() || held_back.is_some() {
            let status = held_back.unwrap_or(self.progress.status.get());
            self.stats.response(self.addr, status, took);
            let outcome = Outcome::Response(status);
            self.state.record(self.idx, self.addr, outcome);
        } else {
            self.stats.error(self.addr, took);
            if self.upstream_fault.get() {
                let outcome = Outcome::NoResponse;
                self.state.record(self.idx, self.addr, outcome);
            }
        }
    }
}

/// Connect attempts (distinct endpoints) per request.
const MAX_CONNECT_ATTEMPTS: usize = 3;

/// Whether [`acquire`] may hand out a pooled connection, and how it checks it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reuse {
    /// A new connection.
    No,
    /// A pooled one, checked with `MSG_PEEK` (a request that cannot be repeated).
    Checked,
    /// A pooled one, checked only if it has been idle a while (`pool::FRESH`): for a request
    /// that is repeated on a new connection if the pooled one turns out closed.
    Trusted,
}

/// A connection to some endpoint of `cluster`: pooled as `reuse` allows, else new.
pub(crate) async fn acquire(
    client: Client<'_>,
    cluster: &Cluster,
    state: &ClusterState,
    hash: Option<u64>,
    avoid: &[usize],
    reuse: Reuse,
) -> Result<(Upstream, usize), ProxyError> {
    // TLS settings are keyed by the cluster's fingerprint (which covers them): a pooled
    // connection is only reused under the settings it was made with.
    let tls = if cluster.tls.is_some() || cluster.mtls.is_some() {
        client.tls
    } else {
        None
    };
    let tls_key = if tls.is_some() {
        cluster.fingerprint | 1
    } else {
        0
    };
    let tls = tls.as_ref();
    try_endpoints(client, cluster, state, hash, avoid, |_, addr| async move {
        if reuse != Reuse::No {
            if let Some(conn) = client.up.pool.take(addr, tls_key, reuse == Reuse::Trusted) {
                return Ok(conn);
            }
        }
        let slot = connection_slot(client.cx, cluster, state)?;
        let up_tls = tls.map(|config| UpTls {
            config: std::sync::Arc::clone(config),
            name: crate::cx::tls::sni_for(cluster, addr),
            key: tls_key,
        });
        let mut up = Upstream::connect_with(addr, cluster.connect_timeout, up_tls)
            .await
            .map_err(ProxyError::Connect)?;
        up.slot = slot;
        Ok(up)
    })
    .await
}

/// A place under the breaker's `max_connections` for a new connection to `cluster`, which
/// holds it until it closes (`None`: the cluster sets no such limit).
pub(crate) fn connection_slot(
    cx: &Cx,
    cluster: &Cluster,
    state: &ClusterState,
) -> Result<Option<breaker::ConnectionSlot>, ProxyError> {
    match &state.breaker {
        Some(b) if b.limits_connections() => b
            .hold_connection(|| cx.stats.cluster(&cluster.name))
            .map(Some),
        _ => Ok(None),
    }
}

/// The Balance loop shared by every kind of upstream connection (HTTP/1 pool, HTTP/2,
/// TCP): picks an endpoint in rotation and not tried yet (nor in `avoid`, the endpoints of a
/// request's earlier tries, unless nothing else is left; any endpoint when none is in
/// rotation: panic mode), runs `connect` on it, and on failure counts and records it (which
/// may eject the endpoint) and tries another, up to `MAX_CONNECT_ATTEMPTS`. Returns the
/// connection and the endpoint's index. A cluster of `kind = "original_dst"` has no
/// balancer: it connects to the client connection's original destination (`original_dst.rs`,
/// index `original_dst::INDEX`).
pub(crate) async fn try_endpoints<T, F, Fut>(
    client: Client<'_>,
    cluster: &Cluster,
    state: &ClusterState,
    hash: Option<u64>,
    avoid: &[usize],
    mut connect: F,
) -> Result<(T, usize), ProxyError>
where
    F: FnMut(usize, std::net::SocketAddr) -> Fut,
    Fut: std::future::Future<Output = Result<T, ProxyError>>,
{
    let cx = client.cx;
    let _pending = breaker::hold(
        state.breaker.as_deref(),
        BreakerLimit::PendingRequests,
        || cx.stats.cluster(&cluster.name),
    )?;
    if cluster.original_dst {
        let addr = original_dst::destination(cx, cluster, client.original_dst)?;
        return match connect(original_dst::INDEX, addr).await {
            Ok(conn) => Ok((conn, original_dst::INDEX)),
            Err(e @ ProxyError::Overloaded(_)) => Err(e),
            Err(e) => {
                let stats = cx.stats.cluster(&cluster.name);
                stats.connect_failure(stats.destination(addr));
                tracing::warn!(cluster = %cluster.name, original_dst = %addr, error = %e, "connect failed");
                Err(e)
            }
        };
    }
    if cluster.unresolved() {
        state.unresolved(&cx.stats.cluster(&cluster.name));
        return Err(ProxyError::NoHealthyEndpoint);
    }
    let mut tried: Vec<usize> = Vec::new();
    let mut last_err = None;
    // `panic_threshold_percent`: below it, panic mode from the first pick (a cluster with
    // priority levels: a level's panic mode, chosen with the level by `state.pick`).
    let threshold = cluster.panic_threshold_percent;
    let mut panic = match threshold {
        Some(min) if min > 0 && !state.has_levels() => {
            let clock = std::cell::OnceCell::new();
            let below =
                below_threshold(cluster, state, min, &|| *clock.get_or_init(outlier::now_ms));
            if below {
                state.panicked();
                tracing::debug!(cluster = %cluster.name, "weight in rotation below panic_threshold_percent: panic mode");
            }
            below
        }
        _ => false,
    };
    // With `panic_threshold_percent = 0`, never: no endpoint in rotation is a 503.
    let may_panic = threshold != Some(0);
    loop {
        // The clock is read at most once per pick, and only if an endpoint was ever ejected.
        let clock = std::cell::OnceCell::new();
        let now = || *clock.get_or_init(outlier::now_ms);
        let untried = |i: usize| !tried.contains(&i);
        let fresh = |i: usize| untried(i) && !avoid.contains(&i);
        let mut pick = match state.pick(hash, fresh, panic, threshold, &now) {
            None if !avoid.is_empty() => state.pick(hash, untried, panic, threshold, &now),
            pick => pick,
        };
        if pick.is_none()
            && tried.is_empty()
            && !panic
            && may_panic
            && !cluster.endpoints.is_empty()
        {
            // Nothing in rotation: every endpoint rather than none.
            panic = true;
            state.panicked();
            tracing::debug!(cluster = %cluster.name, "no endpoint in rotation: panic mode");
            pick = state.pick(hash, |i| !tried.contains(&i), true, threshold, &now);
        }
        let Some(idx) = pick else {
            return Err(last_err.unwrap_or(ProxyError::NoHealthyEndpoint));
        };
        let Some(ep) = cluster.endpoints.get(idx) else {
            return Err(ProxyError::NoHealthyEndpoint);
        };
        match connect(idx, ep.address).await {
            Ok(conn) => {
                state.record(idx, ep.address, Outcome::Connected);
                return Ok((conn, idx));
            }
            // The breaker refused a new connection: the endpoint is not to blame.
            Err(e @ ProxyError::Overloaded(_)) => return Err(e),
            Err(e) => {
                cx.stats.cluster(&cluster.name).connect_failure(ep.address);
                tracing::warn!(cluster = %cluster.name, endpoint = %ep.address, error = %e, "connect failed");
                state.record(idx, ep.address, Outcome::ConnectFailure);
                tried.push(idx);
                if tried.len() >= MAX_CONNECT_ATTEMPTS {
                    return Err(e);
                }
                last_err = Some(e);
            }
        }
    }
}

/// Whether the weight of the endpoints in rotation is below `min` percent of the cluster's.
fn below_threshold(
    cluster: &Cluster,
    state: &ClusterState,
    min: u8,
    now: &dyn Fn() -> u64,
) -> bool {
    let (mut up, mut all) = (0u64, 0u64);
    for (i, e) in cluster.endpoints.iter().enumerate() {
        let w = u64::from(e.weight.max(1));
        all += w;
        if state.in_rotation(i, now) {
            up += w;
        }
    }
    up * 100 < all * u64::from(min)
}

/// A fresh connection (TCP listeners never pool).
pub(crate) async fn connect_any(
    client: Client<'_>,
    cluster: &Cluster,
    state: &ClusterState,
    hash: Option<u64>,
) -> Result<(Upstream, usize), ProxyError> {
    acquire(client, cluster, state, hash, &[], Reuse::No).await
}
