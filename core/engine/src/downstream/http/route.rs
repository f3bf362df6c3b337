//! One HTTP/1.1 request through the pipeline (`crate::pipeline`): the listener's and the
//! route's stages decide, then the proxy answers itself (`answer.rs`) or forwards to the
//! chosen cluster (`forward.rs`) with the proxy headers (X-Forwarded-For appended,
//! X-Forwarded-Proto set when absent, X-Request-Id kept or generated), the stages' header
//! edits and the deadline they set (504 before the response head; a cut connection after).

use std::net::SocketAddr;

use ringside_codec::{BodyKind, Edits, RequestHead, Version};
use ringside_config::{Cluster, HashCookie, HttpListener, Lb, Listener};

use crate::cx::conn::{ConnRead, ConnWrite};
use crate::cx::error::ProxyError;
use crate::cx::io::write_vec_timeout;
use crate::cx::io::ReadBuf;
use crate::cx::trace::TraceContext;
use crate::downstream::Worker;
use crate::pipeline::answer::Answer;
use crate::pipeline::view::View;
use crate::pipeline::{self, Decision, Piped, ProxyFields};
use crate::stage::{Compiled, Local, Req};
use crate::upstream::balance::{made_cookie, request_hash};
use crate::upstream::{self, Down, Exchange, H1Down, Progress};

/// The client side of the connection, lent to one request.
pub(crate) struct Downstream<'a> {
    pub(crate) r: &'a mut ConnRead,
    pub(crate) w: &'a mut ConnWrite,
    pub(crate) buf: &'a mut ReadBuf,
}

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
    /// The consumer the request authenticated as (gateway `authn`).
    pub(crate) consumer: Option<std::rc::Rc<str>>,
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
            consumer: None,
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
    pub(crate) stats: &'a crate::cx::metrics::ListenerStats,
    /// When the head was read.
    pub(crate) started: std::time::Instant,
}

/// What the connection loop does after a request.
pub(crate) enum After {
    KeepAlive,
    Close,
    /// Close after discarding what the client may still send (an unread body).
    Linger,
}

/// Serves one request through the pipeline; returns what to do next, the matched route's
/// name (empty when none) and the status the client got.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn handle<'v>(
    worker: &std::rc::Rc<Worker>,
    view: &'v View,
    l: &Listener,
    http: &'v HttpListener,
    compiled: &'v Compiled,
    incoming: &Incoming<'_>,
    ds: &mut Downstream<'_>,
) -> Outcome<'v> {
    let (head, peer, trace) = (incoming.head, incoming.peer, incoming.trace);
    let client_keep =
        head.keep_alive() && head.version() == Version::Http11 && !worker.cx.draining();
    let has_body = !matches!(head.body(), BodyKind::Empty | BodyKind::Length(0));
    let head_only = head.method() == "HEAD";
    let random = || worker.cx.random();
    let mut req = Req::new(head, incoming.conn, incoming.stats, false, false, &random)
        .started_at(incoming.started);
    let (route, cluster, stages) = match pipeline::decide(compiled, http, &mut req) {
        Decision::Reply {
            route,
            local,
            stages,
        } => {
            let piped = Piped::new(&req, stages);
            let shape = Shape {
                client_keep,
                head_only,
                has_body,
            };
            return reply(ds, l, &piped, route, &local, shape).await;
        }
        Decision::Tunnel { route, to, stages } => {
            let piped = Piped::new(&req, stages);
            // Boxed: a rare branch, kept out of every request's future.
            let tunnel = crate::downstream::connect::h1(worker, view, l, route, to, &piped, ds);
            return Box::pin(tunnel).await;
        }
        Decision::Forward {
            route,
            cluster,
            stages,
        } => (route, cluster, stages),
    };

    let (Some(c), Some(state)) = (
        view.snap.config.clusters.get(cluster.0),
        view.clusters.get(cluster.0),
    ) else {
        let piped = Piped::new(&req, stages);
        let local = Local::Error(ProxyError::NoHealthyEndpoint);
        let shape = Shape {
            client_keep: false,
            head_only,
            has_body,
        };
        return reply(ds, l, &piped, &route.name, &local, shape).await;
    };
    let fields = ProxyFields::new(&req, trace, http.forward_client_cert);
    let (set, n) = fields.set();
    let set = set.get(..n).unwrap_or_default();
    let request_id = fields.request_id.to_vec();
    let (hash, cookie) = hash_of(c, head, peer);
    let piped = Piped {
        req: &req,
        stages,
        cookie,
    };
    let mirror = crate::downstream::mirror::choose(worker, route, head, false);
    let exchange = Exchange {
        head: req.upstream_head(),
        set,
        edits: &req.edits,
        body_limit: req.body_limit,
        response: &piped,
        hash,
        idle: l.idle_timeout,
        grpc: false,
        retry: route.retry.as_ref(),
        mirror: mirror.as_ref().map(|m| m as _),
        attempt: Default::default(),
    };
    let progress = Progress::default();
    let result = {
        let mut down = Down::H1(H1Down {
            r: &mut *ds.r,
            w: &mut *ds.w,
            buf: &mut *ds.buf,
            client_keep,
        });
        let fut = upstream::call(
            worker.client(view, c, cluster.0, incoming.conn.original_dst),
            c,
            state,
            &exchange,
            &mut down,
            &progress,
        );
        pipeline::forward(&req, fut).await
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
        consumer: consumer_of(&req),
    };
    match result {
        Ok(upstream::Ended { keep: true }) => done(After::KeepAlive, progress.status.get(), None),
        Ok(upstream::Ended { keep: false }) => done(After::Close, progress.status.get(), None),
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
            Answer::error(&e, false, Some(&request_id)).h1(
                &mut out,
                !client_keep || has_body,
                head_only,
                &Edits::NONE,
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

/// What the answer to a request may do with the connection.
#[derive(Clone, Copy)]
struct Shape {
    client_keep: bool,
    head_only: bool,
    has_body: bool,
}

/// Writes the proxy's own answer (an error, or a direct response with the route's response
/// edits). The connection stays only when the client asked and no body is pending; a
/// refused CONNECT always closes it (what follows it would be read as the next request).
async fn reply<'v>(
    ds: &mut Downstream<'_>,
    l: &Listener,
    piped: &Piped<'_>,
    route: &'v str,
    local: &Local<'_>,
    shape: Shape,
) -> Outcome<'v> {
    let keep = shape.client_keep && !shape.has_body && !piped.req.connect;
    let answer = Answer::of(local, false, None);
    let edits = match local {
        Local::Direct(_) | Local::Redirect { .. } => piped.response_edits(&|n| answer.has(n)),
        Local::Error(_) => Edits::NONE,
    };
    let mut out = Vec::with_capacity(256);
    answer.h1(&mut out, !keep, shape.head_only, &edits);
    let bytes_out = out.len() as u64;
    let after = match write_vec_timeout(ds.w, out, l.idle_timeout).await {
        Ok(()) if keep => After::KeepAlive,
        Ok(()) if shape.has_body => After::Linger,
        _ => After::Close,
    };
    Outcome {
        bytes_out,
        consumer: consumer_of(piped.req),
        error: match local {
            Local::Error(e) => Some(e.to_string()),
            Local::Direct(_) | Local::Redirect { .. } => None,
        },
        ..Outcome::new(after, route, answer.status())
    }
}

/// The name of the consumer a request authenticated as, for its log line.
pub(crate) fn consumer_of(req: &Req<'_>) -> Option<std::rc::Rc<str>> {
    req.consumer.as_ref().map(|c| std::rc::Rc::clone(&c.name))
}

/// The ring-hash key of a request for a `ring_hash` cluster.
pub(crate) fn request_hash_of(c: &Cluster, head: &RequestHead, peer: SocketAddr) -> Option<u64> {
    hash_of(c, head, peer).0
}

/// The ring-hash key of a request for a `ring_hash` cluster, and, when the cluster gives a
/// client without its cookie one (`hash_cookie`), that cookie and its value: the request is
/// then hashed as the cookie will hash the client's next requests (`made_cookie`).
pub(crate) fn hash_of<'c>(
    c: &'c Cluster,
    head: &RequestHead,
    peer: SocketAddr,
) -> (Option<u64>, Option<(&'c HashCookie, u64)>) {
    let (Lb::RingHash, Some(key)) = (c.lb, &c.hash_key) else {
        return (None, None);
    };
    match (
        request_hash(key, |n| head.header(n), peer.ip()),
        &c.hash_cookie,
    ) {
        (None, Some(cookie)) => {
            let (value, hash) = made_cookie(peer);
            (Some(hash), Some((cookie, value)))
        }
        (hash, _) => (hash, None),
    }
}
