//! One HTTP/2 request stream, from its HEADERS to its end.
//!
//! ```text
//! HEADERS ─▶ head as HTTP/1.1 (convert) ─▶ authz ─▶ route ─▶ direct response
//!                                                        └─▶ cluster: h2 upstream (multiplexed)
//!                                                                   | h1 upstream (pool)
//! ```
//! Uses the same route table, proxy fields, deadline and metrics as HTTP/1.1. A failure
//! before the response head is answered as HTTP (status and a short text body) or, for a
//! gRPC request (`content-type: application/grpc...`), in gRPC's trailers-only form with a
//! `grpc-status` (14 UNAVAILABLE, 4 DEADLINE_EXCEEDED, 12 UNIMPLEMENTED, 7 PERMISSION_DENIED).
//! After the head, a failure resets the stream. `grpc-timeout` shortens the route timeout.

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use h2::server::SendResponse;
use h2::{Reason, RecvStream};
use http::Request;
use ringside_codec::{Edits, RequestHead};
use ringside_config::{HttpListener, Listener};

use super::Resets;
use crate::cx::error::ProxyError;
use crate::cx::metrics::ListenerStats;
use crate::cx::trace::TraceContext;
use crate::cx::ClientConn;
use crate::downstream::http::route::Outcome;
use crate::downstream::Worker;
use crate::pipeline::answer::Answer;
use crate::pipeline::view::View;
use crate::pipeline::{self, Decision, Piped, ProxyFields};
use crate::stage::{Compiled, Local, Req};
use crate::upstream::convert;
use crate::upstream::{self, Down, Exchange, H2Down, Progress};

/// What one stream's handler needs from its connection.
pub(crate) struct StreamCtx {
    pub(crate) worker: Rc<Worker>,
    pub(crate) listener: Rc<str>,
    pub(crate) conn: Rc<ClientConn>,
    pub(crate) stats: Rc<ListenerStats>,
    pub(crate) resets: Rc<Resets>,
}

pub(crate) async fn handle(
    ctx: Rc<StreamCtx>,
    req: Request<RecvStream>,
    respond: SendResponse<Bytes>,
) {
    let respond = RefCell::new(respond);
    let started = Instant::now();
    let started_at = SystemTime::now();
    let worker = &ctx.worker;
    let view = worker.views.current();
    let Some((l, http, compiled)) = view.http(&ctx.listener) else {
        respond.borrow_mut().send_reset(Reason::REFUSED_STREAM);
        return;
    };
    let (parts, mut body) = req.into_parts();
    let grpc = is_grpc(&parts.headers);
    let websocket = parts.method == http::Method::CONNECT
        && parts
            .extensions
            .get::<h2::ext::Protocol>()
            .is_some_and(|p| p.as_str().eq_ignore_ascii_case("websocket"));
    let limits = http.limits.codec();
    let ws_key = websocket.then(|| convert::websocket_key(|| worker.cx.random()));
    let head =
        match convert::request_to_h1(&parts, !body.is_end_stream(), ws_key.as_deref(), &limits) {
            Ok(head) => head,
            Err(e) => {
                ctx.stats.request_done("", e.status(), started.elapsed());
                reply_error(&respond, &e, grpc, None);
                return;
            }
        };
    let trace = TraceContext::continue_or_start(
        |n| head.header(n),
        || worker.cx.random(),
        view.snap.config.proxy.trace_sample_rate,
    );
    ctx.stats.in_flight.set(ctx.stats.in_flight.get() + 1);
    let sent = Progress::default();
    let consumer = Cell::new(None);
    let call = Call {
        ctx: &ctx,
        view: &view,
        l,
        http,
        compiled,
        head: &head,
        parts: &parts,
        grpc,
        websocket,
        trace: &trace,
        sent: &sent,
        consumer: &consumer,
        started,
    };
    // A client that resets the stream (RST_STREAM) ends the exchange at once: the upstream
    // request is dropped instead of running to its end for nobody.
    let (route, result, request_id) = {
        let mut run = pin!(call.run(&mut body, &respond));
        poll_fn(|cx| {
            if let Poll::Ready(r) = run.as_mut().poll(cx) {
                return Poll::Ready(r);
            }
            match respond.borrow_mut().poll_reset(cx) {
                Poll::Ready(Ok(reason)) => {
                    ctx.resets.record();
                    Poll::Ready((
                        "",
                        Err(ProxyError::ClientStream(h2::Error::from(reason))),
                        None,
                    ))
                }
                _ => Poll::Pending,
            }
        })
        .await
    };
    ctx.stats
        .in_flight
        .set(ctx.stats.in_flight.get().saturating_sub(1));
    let mut outcome = match &result {
        Ok(()) => Outcome::new(
            crate::downstream::http::route::After::KeepAlive,
            route,
            sent.status.get(),
        ),
        Err(e) => {
            if sent.head_sent.get() {
                respond.borrow_mut().send_reset(Reason::INTERNAL_ERROR);
                Outcome::failed(crate::downstream::http::route::After::Close, route, e)
            } else if e.answerable() {
                reply_error(&respond, e, grpc, request_id.as_deref());
                let mut o = Outcome::failed(crate::downstream::http::route::After::Close, route, e);
                o.status = if grpc { 200 } else { e.status() };
                o
            } else {
                let mut o = Outcome::failed(crate::downstream::http::route::After::Close, route, e);
                o.status = crate::downstream::http::route::CLIENT_CLOSED;
                o
            }
        }
    };
    if sent.head_sent.get() {
        outcome.status = sent.status.get();
    }
    outcome.upstream = sent.upstream.get();
    outcome.upstream_time = sent.upstream_time.get();
    outcome.bytes_in = sent.bytes_in.get();
    outcome.bytes_out = sent.bytes_out.get();
    outcome.request_id = request_id;
    outcome.consumer = consumer.take();
    let took = started.elapsed();
    ctx.stats.request_done(outcome.route, outcome.status, took);
    crate::downstream::http::record(
        worker,
        &ctx.listener,
        http,
        &crate::downstream::http::Finished {
            started_at,
            took,
            head: &head,
            conn: &ctx.conn,
            trace: &trace,
            outcome: &outcome,
            h2: true,
        },
    );
}

/// `application/grpc` and its `+proto`/`+json` variants.
pub(crate) fn is_grpc(headers: &http::HeaderMap) -> bool {
    headers
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// Answers a failure before any response head: HTTP status and text, or gRPC trailers-only
/// (`answer.rs` gives it its form).
pub(crate) fn reply_error(
    respond: &RefCell<SendResponse<Bytes>>,
    e: &ProxyError,
    grpc: bool,
    request_id: Option<&[u8]>,
) {
    let _ = Answer::error(e, grpc, request_id).h2(&mut respond.borrow_mut(), false, &Edits::NONE);
}

/// One request's exchange.
struct Call<'a> {
    ctx: &'a StreamCtx,
    view: &'a View,
    l: &'a Listener,
    http: &'a HttpListener,
    compiled: &'a Compiled,
    head: &'a RequestHead,
    parts: &'a http::request::Parts,
    grpc: bool,
    websocket: bool,
    trace: &'a TraceContext,
    sent: &'a Progress,
    /// Set once the pipeline ran: the consumer the request authenticated as (its log line).
    consumer: &'a Cell<Option<std::rc::Rc<str>>>,
    /// When the stream's head arrived.
    started: Instant,
}

impl<'a> Call<'a> {
    /// Runs the pipeline, then answers or forwards. Returns the matched route's name, the
    /// result, and the request id.
    async fn run(
        &self,
        body: &mut RecvStream,
        respond: &RefCell<SendResponse<Bytes>>,
    ) -> (&'a str, Result<(), ProxyError>, Option<Vec<u8>>) {
        let head = self.head;
        let worker = &self.ctx.worker;
        let random = || worker.cx.random();
        let conn = &self.ctx.conn;
        let mut req = Req::new(
            head,
            conn,
            &self.ctx.stats,
            self.grpc,
            self.websocket,
            &random,
        )
        .started_at(self.started);
        let decision = pipeline::decide(self.compiled, self.http, &mut req);
        self.consumer
            .set(crate::downstream::http::route::consumer_of(&req));
        let (route, cluster, stages) = match decision {
            Decision::Reply {
                route,
                local: Local::Error(e),
                ..
            } => return (route, Err(e), None),
            Decision::Reply {
                route,
                local,
                stages,
            } => {
                let piped = Piped::new(&req, stages);
                let answer = Answer::of(&local, self.grpc, None);
                let edits = piped.response_edits(&|n| answer.has(n));
                self.sent.status.set(answer.status());
                self.sent.head_sent.set(true);
                let head_only = head.method() == "HEAD";
                return match answer.h2(&mut respond.borrow_mut(), head_only, &edits) {
                    Ok(n) => {
                        self.sent.bytes_out.set(n);
                        (route, Ok(()), None)
                    }
                    Err(e) => (route, Err(ProxyError::ClientStream(e)), None),
                };
            }
            Decision::Forward {
                route,
                cluster,
                stages,
            } => (route, cluster, stages),
            Decision::Tunnel { route, to, stages } => {
                let piped = Piped::new(&req, stages);
                let (view, l) = (self.view, self.l);
                // Boxed, as the upstream call below: most streams never take this branch.
                let tunnel = crate::downstream::connect::h2(
                    worker, view, l, to, &piped, body, respond, self.sent,
                );
                return (&route.name, Box::pin(tunnel).await, None);
            }
        };
        let (Some(c), Some(state)) = (
            self.view.snap.config.clusters.get(cluster.0),
            self.view.clusters.get(cluster.0),
        ) else {
            return (&route.name, Err(ProxyError::NoHealthyEndpoint), None);
        };
        let fields = ProxyFields::new(&req, self.trace, self.http.forward_client_cert);
        let request_id = Some(fields.request_id.to_vec());
        let (hash, cookie) = crate::downstream::http::route::hash_of(c, head, conn.peer);
        let piped = Piped {
            req: &req,
            stages,
            cookie,
        };
        let (set, n) = fields.set();
        let mirror = crate::downstream::mirror::choose(worker, route, head, self.websocket);
        let exchange = Exchange {
            head: req.upstream_head(),
            set: set.get(..n).unwrap_or_default(),
            edits: &req.edits,
            body_limit: req.body_limit,
            response: &piped,
            hash,
            idle: self.l.idle_timeout,
            grpc: self.grpc,
            retry: route.retry.as_ref(),
            mirror: mirror.as_ref().map(|m| m as _),
            attempt: Default::default(),
        };
        let mut down = Down::H2(H2Down {
            parts: self.parts,
            body,
            respond,
            websocket: self.websocket,
            pending: Vec::new(),
        });
        // Boxed: the upstream call is most of a stream task's state, and the task is moved
        // into its spawn before it runs; a stream the pipeline answers never pays for it.
        let fut = Box::pin(upstream::call(
            worker.client(self.view, c, cluster.0, conn.original_dst),
            c,
            state,
            &exchange,
            &mut down,
            self.sent,
        ));
        let result = pipeline::forward(&req, fut).await;
        (&route.name, result.map(|_| ()), request_id)
    }
}
