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
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use h2::server::SendResponse;
use h2::{Reason, RecvStream};
use http::{Request, Response};
use ringside_codec::{Limits, RequestHead};
use ringside_config::{
    Cluster, HttpListener, Listener, ListenerKind, RequestView, RouteAction, UpstreamProtocol,
};

use super::convert;
use super::relay::{h2_to_h2, RelayError};
use super::Resets;
use crate::error::ProxyError;
use crate::http::route::{authorize, pick_weighted, Outcome, ProxyFields};
use crate::http::ClientConn;
use crate::metrics::ListenerStats;
use crate::state::{ClusterState, View};
use crate::trace::TraceContext;
use crate::worker::Worker;

/// What one stream's handler needs from its connection.
pub(crate) struct StreamCtx {
    pub(crate) worker: Rc<Worker>,
    pub(crate) listener: Rc<str>,
    pub(crate) conn: Rc<ClientConn>,
    pub(crate) stats: Rc<ListenerStats>,
    pub(crate) resets: Rc<Resets>,
}

/// What the client has been sent so far.
#[derive(Default)]
pub(crate) struct Sent {
    pub(crate) head: Cell<bool>,
    pub(crate) status: Cell<u16>,
    pub(crate) bytes_in: Cell<u64>,
    pub(crate) bytes_out: Cell<u64>,
    pub(crate) upstream: Cell<Option<std::net::SocketAddr>>,
    pub(crate) upstream_time: Cell<Option<Duration>>,
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
    let Some(l) = view.listener(&ctx.listener) else {
        respond.borrow_mut().send_reset(Reason::REFUSED_STREAM);
        return;
    };
    let ListenerKind::Http(http) = &l.kind else {
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
    let limits = Limits {
        max_header_bytes: http.limits.max_header_bytes,
        max_headers: http.limits.max_headers,
        max_uri_bytes: http.limits.max_uri_bytes,
    };
    let ws_key = websocket.then(|| convert::websocket_key(|| worker.random()));
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
        || worker.random(),
        view.snap.config.proxy.trace_sample_rate,
    );
    ctx.stats.in_flight.set(ctx.stats.in_flight.get() + 1);
    let sent = Sent::default();
    let call = Call {
        ctx: &ctx,
        view: &view,
        l,
        http,
        head: &head,
        parts: &parts,
        grpc,
        websocket,
        trace: &trace,
        sent: &sent,
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
            crate::http::route::After::KeepAlive,
            route,
            sent.status.get(),
        ),
        Err(e) => {
            if sent.head.get() {
                respond.borrow_mut().send_reset(Reason::INTERNAL_ERROR);
                Outcome::failed(crate::http::route::After::Close, route, e)
            } else if e.answerable() {
                reply_error(&respond, e, grpc, request_id.as_deref());
                let mut o = Outcome::failed(crate::http::route::After::Close, route, e);
                o.status = if grpc { 200 } else { e.status() };
                o
            } else {
                let mut o = Outcome::failed(crate::http::route::After::Close, route, e);
                o.status = crate::http::route::CLIENT_CLOSED;
                o
            }
        }
    };
    if sent.head.get() {
        outcome.status = sent.status.get();
    }
    outcome.upstream = sent.upstream.get();
    outcome.upstream_time = sent.upstream_time.get();
    outcome.bytes_in = sent.bytes_in.get();
    outcome.bytes_out = sent.bytes_out.get();
    outcome.request_id = request_id;
    let took = started.elapsed();
    ctx.stats.request_done(outcome.route, outcome.status, took);
    crate::http::record(
        worker,
        &ctx.listener,
        http,
        &crate::http::Finished {
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

/// `grpc-timeout` (e.g. `100m`, `5S`): at most 8 digits and a unit.
pub(crate) fn grpc_timeout(v: &[u8]) -> Option<Duration> {
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b"H" => Duration::from_secs(n.saturating_mul(3600)),
        b"M" => Duration::from_secs(n.saturating_mul(60)),
        b"S" => Duration::from_secs(n),
        b"m" => Duration::from_millis(n),
        b"u" => Duration::from_micros(n),
        b"n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Answers a failure before any response head: HTTP status and text, or gRPC trailers-only.
pub(crate) fn reply_error(
    respond: &RefCell<SendResponse<Bytes>>,
    e: &ProxyError,
    grpc: bool,
    request_id: Option<&[u8]>,
) {
    let mut resp = Response::new(());
    let h = resp.headers_mut();
    h.insert("server", http::HeaderValue::from_static("ringside"));
    if let Some(id) = request_id.and_then(|v| http::HeaderValue::from_bytes(v).ok()) {
        h.insert("x-request-id", id);
    }
    if grpc {
        h.insert(
            "content-type",
            http::HeaderValue::from_static("application/grpc"),
        );
        h.insert(
            "grpc-status",
            http::HeaderValue::from(u16::from(e.grpc_code())),
        );
        if let Ok(msg) = http::HeaderValue::from_str(&percent_encode(&e.to_string())) {
            h.insert("grpc-message", msg);
        }
        let _ = respond.borrow_mut().send_response(resp, true);
        return;
    }
    let status = e.status();
    *resp.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
    let body = format!("{} {}: {}\n", status, crate::http::reason(status), e);
    let h = resp.headers_mut();
    h.insert(
        "content-type",
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert("content-length", http::HeaderValue::from(body.len()));
    if let Ok(mut s) = respond.borrow_mut().send_response(resp, false) {
        let _ = s.send_data(Bytes::from(body), true);
    }
}

/// gRPC's `grpc-message` encoding: percent-encode everything outside printable ASCII and `%`.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One request's exchange.
struct Call<'a> {
    ctx: &'a StreamCtx,
    view: &'a View,
    l: &'a Listener,
    http: &'a HttpListener,
    head: &'a RequestHead,
    parts: &'a http::request::Parts,
    grpc: bool,
    websocket: bool,
    trace: &'a TraceContext,
    sent: &'a Sent,
}

impl<'a> Call<'a> {
    /// Returns the matched route's name, the result, and the request id.
    async fn run(
        &self,
        body: &mut RecvStream,
        respond: &RefCell<SendResponse<Bytes>>,
    ) -> (&'a str, Result<(), ProxyError>, Option<Vec<u8>>) {
        let head = self.head;
        if let Err(e) = authorize(self.http, &self.ctx.conn, head) {
            let stats = &self.ctx.stats;
            stats.authz_denied.set(stats.authz_denied.get() + 1);
            return ("", Err(e), None);
        }
        if self.parts.method == http::Method::CONNECT && !self.websocket {
            return ("", Err(ProxyError::MethodNotAllowed), None);
        }
        let request = RequestView {
            method: head.method(),
            host: head.host(),
            path: head.path(),
            header: |name: &str| head.header(name),
            principal: self.ctx.conn.identity.as_deref(),
        };
        let Some(route) = self
            .http
            .routes
            .iter()
            .find(|r| r.matcher.matches(&request))
        else {
            return ("", Err(ProxyError::NoRoute), None);
        };
        let worker = &self.ctx.worker;
        let cluster = match &route.action {
            RouteAction::Direct(d) => {
                let mut resp = Response::new(());
                *resp.status_mut() =
                    http::StatusCode::from_u16(d.status).unwrap_or(http::StatusCode::OK);
                if let Ok(ct) = http::HeaderValue::from_str(&d.content_type) {
                    resp.headers_mut().insert("content-type", ct);
                }
                resp.headers_mut()
                    .insert("content-length", http::HeaderValue::from(d.body.len()));
                let no_body = head.method() == "HEAD" || d.body.is_empty();
                self.sent.status.set(d.status);
                self.sent.head.set(true);
                return match respond.borrow_mut().send_response(resp, no_body) {
                    Ok(mut s) if !no_body => {
                        self.sent.bytes_out.set(d.body.len() as u64);
                        let r = s.send_data(d.body.clone(), true);
                        (&route.name, r.map_err(ProxyError::ClientStream), None)
                    }
                    Ok(_) => (&route.name, Ok(()), None),
                    Err(e) => (&route.name, Err(ProxyError::ClientStream(e)), None),
                };
            }
            RouteAction::Cluster(id) => *id,
            RouteAction::Weighted { targets, total } => pick_weighted(worker, targets, *total),
        };
        let (Some(c), Some(state)) = (
            self.view.snap.config.clusters.get(cluster.0),
            self.view.clusters.get(cluster.0),
        ) else {
            return (&route.name, Err(ProxyError::NoHealthyEndpoint), None);
        };
        let fields = ProxyFields::new(worker, head, &self.ctx.conn, self.trace);
        let request_id = Some(fields.request_id.clone());
        let mut deadline = route.timeout;
        if self.grpc {
            if let Some(t) = head.header("grpc-timeout").and_then(grpc_timeout) {
                deadline = Some(deadline.map_or(t, |d| d.min(t)));
            }
        }
        let fut = self.forward(c, cluster.0, state, &fields, body, respond);
        let result = match deadline {
            Some(t) => monoio::time::timeout(t, fut)
                .await
                .unwrap_or(Err(ProxyError::Timeout)),
            None => fut.await,
        };
        (&route.name, result, request_id)
    }

    async fn forward(
        &self,
        c: &Cluster,
        idx: usize,
        state: &std::rc::Rc<ClusterState>,
        fields: &ProxyFields,
        body: &mut RecvStream,
        respond: &RefCell<SendResponse<Bytes>>,
    ) -> Result<(), ProxyError> {
        let h2_upstream = match c.protocol {
            UpstreamProtocol::Http2 => true,
            UpstreamProtocol::Http1 => false,
            // With TLS, ALPN chooses (h2 preferred); without, keep the client's protocol.
            UpstreamProtocol::Auto => true,
        };
        let (set, n) = fields.set();
        let set = set.get(..n).unwrap_or_default();
        let hash = crate::http::route::request_hash_of(c, self.head, self.ctx.conn.peer);
        if h2_upstream {
            self.to_h2(c, idx, state, set, hash, body, respond).await
        } else {
            super::h1up::exchange(
                &self.ctx.worker,
                c,
                idx,
                state,
                self.head,
                set,
                hash,
                self.websocket,
                self.l.idle_timeout,
                body,
                respond,
                self.sent,
            )
            .await
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn to_h2(
        &self,
        c: &Cluster,
        idx: usize,
        state: &std::rc::Rc<ClusterState>,
        set: &[(&str, &[u8])],
        hash: Option<u64>,
        body: &mut RecvStream,
        respond: &RefCell<SendResponse<Bytes>>,
    ) -> Result<(), ProxyError> {
        let worker = &self.ctx.worker;
        let scheme = if c.tls.is_some() || c.mtls.is_some() {
            "https"
        } else {
            "http"
        };
        let req = convert::request_h2_to_h2(self.parts, scheme, set)?;
        let (lease, ep, addr) = super::client::acquire(worker, c, idx, state, hash).await?;
        let stats = worker.stats.cluster(&c.name);
        let mut active = crate::http::Active::start(state, ep, &stats, addr);
        self.sent.upstream.set(Some(addr));
        let eos = body.is_end_stream();
        let sender = lease
            .sender()
            .ready()
            .await
            .map_err(ProxyError::UpstreamStream)?;
        let mut sender = sender;
        let (resp_fut, mut up_send) = sender
            .send_request(req, eos)
            .map_err(ProxyError::UpstreamStream)?;
        let idle = self.l.idle_timeout;
        let bytes_in = Cell::new(0u64);
        let mut upload_done = eos;
        let mut upload = pin!(async {
            if eos {
                Ok(())
            } else {
                h2_to_h2(body, &mut up_send, idle, &bytes_in).await
            }
        });
        let sent = self.sent;
        let mut download = pin!(async {
            let resp = resp_fut.await.map_err(ProxyError::UpstreamStream)?;
            let (parts, mut up_body) = resp.into_parts();
            let head = convert::response_h2_to_h2(&parts);
            sent.status.set(parts.status.as_u16());
            let end = up_body.is_end_stream();
            let mut down = respond
                .borrow_mut()
                .send_response(head, end)
                .map_err(ProxyError::ClientStream)?;
            sent.head.set(true);
            if !end {
                h2_to_h2(&mut up_body, &mut down, idle, &sent.bytes_out)
                    .await
                    .map_err(|e| match e {
                        RelayError::From(Some(e)) => ProxyError::UpstreamStream(e),
                        RelayError::From(None) => ProxyError::Timeout,
                        RelayError::To(Some(e)) => ProxyError::ClientStream(e),
                        RelayError::To(None) => ProxyError::ClientGone,
                    })?;
            }
            Ok::<(), ProxyError>(())
        });
        let result = poll_fn(|cx| {
            if !upload_done {
                if let Poll::Ready(r) = upload.as_mut().poll(cx) {
                    upload_done = true;
                    match r {
                        Err(RelayError::From(Some(e))) => {
                            return Poll::Ready(Err(ProxyError::ClientStream(e)))
                        }
                        Err(RelayError::From(None)) => {
                            return Poll::Ready(Err(ProxyError::BadRequest(
                                "request body timeout".into(),
                            )))
                        }
                        // The upstream stopped reading: its response tells the rest.
                        Err(RelayError::To(_)) | Ok(()) => {}
                    }
                }
            }
            match download.as_mut().poll(cx) {
                Poll::Ready(r) => Poll::Ready(r),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        self.sent.bytes_in.set(bytes_in.get());
        self.sent.upstream_time.set(Some(active.started.elapsed()));
        if self.sent.head.get() {
            active.status = Some(self.sent.status.get());
        }
        drop(active);
        drop(lease);
        result
    }
}
