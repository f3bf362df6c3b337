//! The Route stage: picks the first route of the listener that matches the request, and acts
//! on it — a direct response, or forwarding to a cluster (a weighted choice among several).
//!
//! Also where the request is checked against what no route could serve (CONNECT, a declared
//! body over the limit), where the proxy headers are prepared (X-Forwarded-For appended,
//! X-Forwarded-Proto set when absent, X-Request-Id kept or generated), and where a route's
//! whole-request timeout is enforced (504 before the response head; a cut connection after).

use std::net::SocketAddr;

use ringside_codec::{BodyKind, RequestHead, Version};
use ringside_config::{
    AuthzAction, Cluster, ClusterId, HttpListener, Lb, Listener, RequestView, RouteAction,
};

use super::forward::{forward, Downstream, Forwarded, Progress, Request};
use super::respond;
use crate::balance::request_hash;
use crate::error::ProxyError;
use crate::io::write_vec_timeout;
use crate::state::View;
use crate::trace::TraceContext;
use crate::worker::Worker;

/// Recorded for a request whose client went away before any response (nginx's convention).
pub(crate) const CLIENT_CLOSED: u16 = 499;

/// How a request went: what to do next, and what the metrics and the access log record.
pub(crate) struct Outcome<'v> {
    pub(crate) after: After,
    /// The matched route's name; empty when none matched.
    pub(crate) route: &'v str,
    /// The status the client got (499 when it went away first).
    pub(crate) status: u16,
    pub(crate) upstream: Option<SocketAddr>,
    pub(crate) upstream_time: Option<std::time::Duration>,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    pub(crate) request_id: Option<Vec<u8>>,
    pub(crate) error: Option<String>,
}

impl<'v> Outcome<'v> {
    pub(crate) fn new(after: After, route: &'v str, status: u16) -> Outcome<'v> {
        Outcome {
            after,
            route,
            status,
            upstream: None,
            upstream_time: None,
            bytes_in: 0,
            bytes_out: 0,
            request_id: None,
            error: None,
        }
    }

    pub(crate) fn failed(after: After, route: &'v str, e: &ProxyError) -> Outcome<'v> {
        Outcome {
            error: Some(e.to_string()),
            ..Outcome::new(after, route, e.status())
        }
    }
}

/// The request as it arrived: its head, its client and its trace context.
pub(crate) struct Incoming<'a> {
    pub(crate) head: &'a RequestHead,
    pub(crate) peer: SocketAddr,
    pub(crate) trace: &'a TraceContext,
    pub(crate) conn: &'a super::ClientConn,
    pub(crate) stats: &'a crate::metrics::ListenerStats,
}

/// What the connection loop does after a request.
pub(crate) enum After {
    KeepAlive,
    Close,
    /// Close after discarding what the client may still send (an unread body).
    Linger,
}

/// Serves one request; returns what to do next, the matched route's name (empty when none)
/// and the status the client got.
pub(crate) async fn handle<'v>(
    worker: &std::rc::Rc<Worker>,
    view: &'v View,
    l: &Listener,
    http: &'v HttpListener,
    incoming: &Incoming<'_>,
    ds: &mut Downstream<'_>,
) -> Outcome<'v> {
    let (head, peer, trace) = (incoming.head, incoming.peer, incoming.trace);
    let client_keep = head.keep_alive() && head.version() == Version::Http11 && !worker.draining();
    let has_body = !matches!(head.body(), BodyKind::Empty | BodyKind::Length(0));
    let head_only = head.method() == "HEAD";

    if head.method() == "CONNECT" {
        let e = ProxyError::MethodNotAllowed;
        return Outcome::failed(answer(ds, l, &e, false, head_only, has_body).await, "", &e);
    }
    if let (BodyKind::Length(n), Some(max)) = (head.body(), http.limits.max_request_body_bytes) {
        if n > max {
            let e = ProxyError::BodyTooLarge;
            return Outcome::failed(answer(ds, l, &e, false, head_only, true).await, "", &e);
        }
    }
    if let Err(e) = authorize(http, incoming.conn, head) {
        incoming
            .stats
            .authz_denied
            .set(incoming.stats.authz_denied.get() + 1);
        return Outcome::failed(
            answer(ds, l, &e, client_keep, head_only, has_body).await,
            "",
            &e,
        );
    }
    let request = RequestView {
        method: head.method(),
        host: head.host(),
        path: head.path(),
        header: |name: &str| head.header(name),
        principal: incoming.conn.identity.as_deref(),
    };
    let Some(route) = http.routes.iter().find(|r| r.matcher.matches(&request)) else {
        let e = ProxyError::NoRoute;
        return Outcome::failed(
            answer(ds, l, &e, client_keep, head_only, has_body).await,
            "",
            &e,
        );
    };
    let cluster = match &route.action {
        RouteAction::Direct(d) => {
            let keep = client_keep && !has_body;
            let mut out = Vec::with_capacity(256 + d.body.len());
            respond::direct(&mut out, d, !keep, head_only);
            let bytes_out = out.len() as u64;
            let after = match write_vec_timeout(ds.w, out, l.idle_timeout).await {
                Ok(()) if keep => After::KeepAlive,
                Ok(()) if has_body => After::Linger,
                _ => After::Close,
            };
            return Outcome {
                bytes_out,
                ..Outcome::new(after, &route.name, d.status)
            };
        }
        RouteAction::Cluster(id) => *id,
        RouteAction::Weighted { targets, total } => pick_weighted(worker, targets, *total),
    };

    let (Some(c), Some(state)) = (
        view.snap.config.clusters.get(cluster.0),
        view.clusters.get(cluster.0),
    ) else {
        let e = ProxyError::NoHealthyEndpoint;
        return Outcome::failed(
            answer(ds, l, &e, false, head_only, has_body).await,
            &route.name,
            &e,
        );
    };
    let fields = ProxyFields::new(worker, head, incoming.conn, trace);
    let (set, n) = fields.set();
    let set = set.get(..n).unwrap_or_default();
    let request_id = fields.request_id.clone();
    let hash = request_hash_of(c, head, peer);
    let req = Request {
        head,
        set,
        limits: &http.limits,
        idle: l.idle_timeout,
        client_keep,
        hash,
        cluster_idx: cluster.0,
    };
    let progress = Progress::default();
    let result = {
        let fut = forward(worker, c, state, &req, ds, &progress);
        match route.timeout {
            Some(t) => monoio::time::timeout(t, fut)
                .await
                .unwrap_or(Err(ProxyError::Timeout)),
            None => fut.await,
        }
    };
    let done = |after: After, status: u16, error: Option<String>| Outcome {
        after,
        route: &route.name,
        status,
        upstream: progress.upstream.get(),
        upstream_time: progress.upstream_time.get(),
        bytes_in: progress.bytes_in.get(),
        bytes_out: progress.bytes_out.get(),
        request_id: Some(request_id.clone()),
        error,
    };
    match result {
        Ok(Forwarded::Done { keep: true }) => done(After::KeepAlive, progress.status.get(), None),
        Ok(Forwarded::Done { keep: false }) | Ok(Forwarded::Tunneled) => {
            done(After::Close, progress.status.get(), None)
        }
        Err(e) => {
            tracing::debug!(route = %route.name, cluster = %c.name, %peer, side = ?e.side(), error = %e, "request failed");
            if progress.head_sent.get() {
                return done(After::Close, progress.status.get(), Some(e.to_string()));
            }
            if !e.answerable() {
                return done(After::Close, CLIENT_CLOSED, Some(e.to_string()));
            }
            // The request body may be partly unread: only a bodyless request keeps the
            // connection after an error.
            let mut out = Vec::with_capacity(256);
            respond::error(
                &mut out,
                &e,
                !client_keep || has_body,
                head_only,
                Some(&request_id),
            );
            progress
                .bytes_out
                .set(progress.bytes_out.get() + out.len() as u64);
            let after = match write_vec_timeout(ds.w, out, l.idle_timeout).await {
                Ok(()) if client_keep && !has_body => After::KeepAlive,
                Ok(()) if has_body => After::Linger,
                _ => After::Close,
            };
            done(after, e.status(), Some(e.to_string()))
        }
    }
}

/// The request fields the proxy sets upstream: X-Forwarded-For (appended), X-Forwarded-Proto
/// (kept, else `http`/`https`), X-Request-Id (kept, else a new UUID), the trace context, and
/// on an mTLS listener X-Forwarded-Client-Cert with the client's verified identity (replacing
/// whatever the client sent: only the proxy vouches for identities).
pub(crate) struct ProxyFields {
    pub(crate) request_id: Vec<u8>,
    xff: Vec<u8>,
    proto: Vec<u8>,
    traceparent: String,
    xfcc: Vec<u8>,
}

impl ProxyFields {
    pub(crate) fn new(
        worker: &Worker,
        head: &RequestHead,
        conn: &super::ClientConn,
        trace: &TraceContext,
    ) -> ProxyFields {
        let request_id = match head.header("x-request-id") {
            Some(id) if !id.is_empty() => id.to_vec(),
            _ => new_request_id(worker),
        };
        let ip = conn.peer.ip().to_string();
        let xff = match head.header("x-forwarded-for") {
            Some(prev) if !prev.is_empty() => {
                let mut v = prev.to_vec();
                v.extend_from_slice(b", ");
                v.extend_from_slice(ip.as_bytes());
                v
            }
            _ => ip.into_bytes(),
        };
        let scheme: &[u8] = if conn.tls { b"https" } else { b"http" };
        let proto = head.header("x-forwarded-proto").unwrap_or(scheme).to_vec();
        let xfcc = conn
            .identity
            .as_ref()
            .map(|id| format!("URI={id}").into_bytes())
            .unwrap_or_default();
        ProxyFields {
            request_id,
            xff,
            proto,
            traceparent: trace.traceparent(),
            xfcc,
        }
    }

    /// The fields as `(name, value)` pairs, on the stack (this runs per request): take
    /// `.0[..n]` of the returned `(array, n)`.
    pub(crate) fn set(&self) -> ([(&'static str, &[u8]); 5], usize) {
        let set = [
            ("X-Forwarded-For", &self.xff[..]),
            ("X-Forwarded-Proto", &self.proto[..]),
            ("X-Request-Id", &self.request_id[..]),
            ("traceparent", self.traceparent.as_bytes()),
            ("X-Forwarded-Client-Cert", &self.xfcc[..]),
        ];
        (set, if self.xfcc.is_empty() { 4 } else { 5 })
    }
}

/// The listener's authorization policy for this request (403 when denied).
pub(crate) fn authorize(
    http: &HttpListener,
    conn: &super::ClientConn,
    head: &RequestHead,
) -> Result<(), ProxyError> {
    let decision = http
        .authz
        .decide(conn.identity.as_deref(), head.method(), head.path(), |n| {
            head.header(n)
        });
    match decision {
        AuthzAction::Allow => Ok(()),
        AuthzAction::Deny => Err(ProxyError::Forbidden),
    }
}

/// Writes an error response; keeps the connection only when asked and no body is pending.
async fn answer(
    ds: &mut Downstream<'_>,
    l: &Listener,
    err: &ProxyError,
    keep: bool,
    head_only: bool,
    has_body: bool,
) -> After {
    let keep = keep && !has_body;
    let mut out = Vec::with_capacity(256);
    respond::error(&mut out, err, !keep, head_only, None);
    match write_vec_timeout(ds.w, out, l.idle_timeout).await {
        Ok(()) if keep => After::KeepAlive,
        Ok(()) => After::Linger,
        Err(_) => After::Close,
    }
}

/// The ring-hash key of a request for a `ring_hash` cluster.
pub(crate) fn request_hash_of(c: &Cluster, head: &RequestHead, peer: SocketAddr) -> Option<u64> {
    match (c.lb, &c.hash_key) {
        (Lb::RingHash, Some(key)) => request_hash(key, |n| head.header(n), peer.ip()),
        _ => None,
    }
}

pub(crate) fn pick_weighted(
    worker: &Worker,
    targets: &[(ClusterId, u32)],
    total: u64,
) -> ClusterId {
    let mut x = worker.random() % total.max(1);
    for (id, w) in targets {
        let w = u64::from(*w);
        if x < w {
            return *id;
        }
        x -= w;
    }
    targets.last().map_or(ClusterId(0), |t| t.0)
}

/// A random (version 4) UUID in its usual text form.
fn new_request_id(worker: &Worker) -> Vec<u8> {
    let hi = worker.random();
    let lo = worker.random();
    let hi = (hi & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_4000;
    let lo = (lo & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
    .into_bytes()
}
