//! Layer 3 (with `stage/`): the one request pipeline every HTTP protocol runs: the HTTP/1.1 connection loop
//! (`http/route.rs`) and the HTTP/2 stream task (`h2/stream.rs`) build a [`Req`] from their
//! wire form and call [`decide`]; both answer a [`Decision::Reply`] through `answer.rs` and
//! hand a [`Decision::Forward`] to the upstream call with the same [`Piped`] request.
//!
//! ```text
//! listener stages ─▶ first matching route ─▶ route stages ─▶ Forward(cluster) | Reply
//! response head ─▶ Piped::response_edits (the stages that ran, in reverse) ─▶ client
//! ```

pub(crate) mod answer;
pub(crate) mod view;

use ringside_codec::Edits;
use ringside_config::{ClusterId, HttpListener, RequestView, Route, RouteAction};

use crate::cx::error::ProxyError;
use crate::stage::{Compiled, Flow, Local, Req, Stage};

/// What the pipeline decided for a request.
pub(crate) enum Decision<'v> {
    /// The proxy answers itself. `route` is the matched route's name (empty before one
    /// matched); `stages` are the route stages that ran.
    Reply {
        route: &'v str,
        local: Local<'v>,
        stages: &'v [Stage],
    },
    /// Call the cluster.
    Forward {
        route: &'v Route,
        cluster: ClusterId,
        stages: &'v [Stage],
    },
}

/// Runs the listener's stages, matches the route and runs its stages.
pub(crate) fn decide<'v>(
    compiled: &'v Compiled,
    http: &'v HttpListener,
    req: &mut Req<'_>,
) -> Decision<'v> {
    for stage in &compiled.listener {
        if let Flow::Reply(local) = stage.request(req) {
            return Decision::Reply {
                route: "",
                local,
                stages: &[],
            };
        }
    }
    let head = req.head;
    let view = RequestView {
        method: head.method(),
        host: head.host(),
        path: head.path(),
        header: |name: &str| head.header(name),
        principal: req.conn.identity.as_deref(),
    };
    let Some((i, route)) = http
        .routes
        .iter()
        .enumerate()
        .find(|(_, r)| r.matcher.matches(&view))
    else {
        return Decision::Reply {
            route: "",
            local: Local::Error(ProxyError::NoRoute),
            stages: &[],
        };
    };
    let stages = compiled.routes.get(i).map_or(&[][..], Vec::as_slice);
    for (k, stage) in stages.iter().enumerate() {
        if let Flow::Reply(local) = stage.request(req) {
            return Decision::Reply {
                route: &route.name,
                local,
                stages: stages.get(..=k).unwrap_or(stages),
            };
        }
    }
    let cluster = match &route.action {
        RouteAction::Cluster(id) => *id,
        RouteAction::Weighted { targets, total } => pick_weighted(req.random, targets, *total),
        // Answered by the Direct stage, which every stack has (`Stack::check`).
        RouteAction::Direct(_) => {
            return Decision::Reply {
                route: &route.name,
                local: Local::Error(ProxyError::NoRoute),
                stages,
            }
        }
    };
    Decision::Forward {
        route,
        cluster,
        stages,
    }
}

/// A request that went through the pipeline, as the upstream call and the answer see it.
pub(crate) struct Piped<'a> {
    pub(crate) req: &'a Req<'a>,
    /// The route stages that ran: their response hooks run on the response head.
    pub(crate) stages: &'a [Stage],
}

impl Piped<'_> {
    /// The edits the stages make to a response head; `present` tells whether the response
    /// carries a field of that lower-case name.
    pub(crate) fn response_edits(&self, present: &dyn Fn(&str) -> bool) -> Edits {
        let mut edits = Edits::NONE;
        for stage in self.stages.iter().rev() {
            stage.response(self.req, present, &mut edits);
        }
        edits
    }
}

impl crate::upstream::ResponseHook for Piped<'_> {
    fn edits(&self, present: &dyn Fn(&str) -> bool) -> Edits {
        self.response_edits(present)
    }
}

/// A weighted choice among `targets` (weights summing to `total`).
pub(crate) fn pick_weighted(
    random: &dyn Fn() -> u64,
    targets: &[(ClusterId, u32)],
    total: u64,
) -> ClusterId {
    let mut x = random() % total.max(1);
    for (id, w) in targets {
        let w = u64::from(*w);
        if x < w {
            return *id;
        }
        x -= w;
    }
    targets.last().map_or(ClusterId(0), |t| t.0)
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
    pub(crate) fn new(req: &mut Req<'_>, trace: &crate::cx::trace::TraceContext) -> ProxyFields {
        let request_id = req.request_id().to_vec();
        let (head, conn) = (req.head, req.conn);
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
