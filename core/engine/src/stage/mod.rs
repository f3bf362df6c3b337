//! Stages: the steps of a request's life between the downstream protocol and the upstream
//! call, each one type in one file.
//!
//! ```text
//! listener stages ─▶ route match ─▶ route stages ─▶ upstream call ─▶ response hooks (reverse)
//!   Limits, Authz,                   RateLimit, HeaderEdits, Timeout,
//!   RateLimit                        Fault, Direct (RateLimit: GlobalLimit with redis)
//!   gateway: + IpFilter              gateway: + IpFilter, Cors, AuthN, ConsumerRateLimit,
//!                                    BodyLimit, Rewrite, Redirect
//! ```
//! Which stages run, and in which order, is each role's [`Stack`] (`proxy/src/stack.rs`,
//! `gateway/src/stack.rs`). A worker compiles the stack against every HTTP listener and route
//! when it builds its view of a snapshot ([`Compiled`]); a stage whose configuration is
//! absent compiles to nothing. Stages run with static dispatch (the [`Stage`] enum), take
//! `&self` and allocate nothing unless their configuration asks for it. The HTTP/1.1
//! connection loop and the HTTP/2 stream task run the same compiled stages through
//! `crate::pipeline`.

mod authn;
mod authz;
mod consumer_limit;
mod cors;
mod direct;
mod fault;
#[cfg(test)]
mod gateway_tests;
mod global_limit;
mod headers;
mod ip_filter;
mod jwt;
mod limits;
mod ratelimit;
mod redirect;
mod rewrite;
mod seen;
mod timeout;

pub(crate) use jwt::check_token;

use std::time::Duration;

use ringside_codec::{Edits, RequestHead};
use ringside_config::{DirectResponse, HttpListener, Listener, Route, RouteAction};

use crate::cx::error::ProxyError;
use crate::cx::metrics::ListenerStats;
use crate::cx::shared::Registry;
use crate::cx::ClientConn;

/// A step that runs for every request of a listener, before the route is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ListenerStep {
    /// Declared body over `max_request_body_bytes` (413), and the limit handed to the body
    /// relays.
    Limits,
    /// The listener's `[[authz]]` policy (403).
    Authz,
    /// The listener's `rate_limit`: a token bucket for the whole process (429).
    RateLimit,
    /// Gateway: the listener's `ip_allow` / `ip_deny` (403), before routing.
    IpFilter,
}

/// A step that runs for the requests of one route, after it matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteStep {
    /// The route's `authn` (401), which names the request's consumer; on every route, an
    /// incoming `x-consumer-name` removed (gateway role).
    AuthN,
    /// Gateway: the listener's `[[authz]]` policy when a rule names consumers (then it is
    /// decided here, once `AuthN` named the consumer, and not as a listener stage).
    Authz,
    /// The consumer's own `rate_limit`: a token bucket per consumer for the whole process
    /// (429; gateway role).
    ConsumerRateLimit,
    /// The route's `rate_limit`: a token bucket for the whole process (429), or one per
    /// key (`rate_limit.key`: consumer, client address, header value); with `redis`, a
    /// global limit instead (fixed windows counted in Redis; gateway role).
    RateLimit,
    /// Listener and route `*_headers_to_add` / `*_headers_to_remove`.
    HeaderEdits,
    /// The route's `timeout_ms`, shortened by `grpc-timeout`.
    Timeout,
    /// The route's `fault`: delay or abort a share of its requests.
    Fault,
    /// The route's `direct_response`.
    Direct,
    /// Gateway: the route's `ip_allow` / `ip_deny` (403).
    IpFilter,
    /// Gateway: the route's `[routes.cors]`: preflights answered, responses given the
    /// allow fields.
    Cors,
    /// Gateway: the route's `max_request_body_bytes` (413), lowering the listener's.
    BodyLimit,
    /// Gateway: the route's `rewrite` of the upstream request's path and host.
    Rewrite,
    /// Gateway: the route's `redirect`.
    Redirect,
}

/// The steps of one role's pipeline, in order. Built by each role's `stack.rs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stack {
    listener: Vec<ListenerStep>,
    route: Vec<RouteStep>,
}

impl Stack {
    /// A stack with no steps: every request goes straight to its route's cluster.
    pub fn new() -> Stack {
        Stack {
            listener: Vec::new(),
            route: Vec::new(),
        }
    }

    /// Appends a step to the listener's stages.
    pub fn listener(mut self, step: ListenerStep) -> Stack {
        self.listener.push(step);
        self
    }

    /// Appends a step to every route's stages.
    pub fn route(mut self, step: RouteStep) -> Stack {
        self.route.push(step);
        self
    }

    /// Inserts a step into every route's stages right after `after` (at the end if the stack
    /// has no `after`).
    pub fn route_after(mut self, after: RouteStep, step: RouteStep) -> Stack {
        let at = self
            .route
            .iter()
            .position(|s| *s == after)
            .map_or(self.route.len(), |i| i + 1);
        self.route.insert(at, step);
        self
    }

    /// Inserts a step into the listener's stages right after `after` (at the end if the stack
    /// has no `after`).
    pub fn listener_after(mut self, after: ListenerStep, step: ListenerStep) -> Stack {
        let at = self
            .listener
            .iter()
            .position(|s| *s == after)
            .map_or(self.listener.len(), |i| i + 1);
        self.listener.insert(at, step);
        self
    }

    /// Inserts a step into every route's stages right before `before` (at the end if the
    /// stack has no `before`): whatever was put before `before` earlier stays in front.
    pub fn route_before(mut self, before: RouteStep, step: RouteStep) -> Stack {
        let at = self
            .route
            .iter()
            .position(|s| *s == before)
            .unwrap_or(self.route.len());
        self.route.insert(at, step);
        self
    }

    /// Whether the stack can serve every configuration: a `direct_response` route needs the
    /// `Direct` step.
    pub fn check(&self) -> Result<(), String> {
        if !self.route.contains(&RouteStep::Direct) {
            return Err(
                "the stack has no RouteStep::Direct: direct_response routes could not answer"
                    .into(),
            );
        }
        Ok(())
    }

    /// Whether the stack can serve every gateway configuration: [`Stack::check`], and each
    /// step the gateway's route keys need (validation lets those keys through only for
    /// `role = "gateway"`, so this stack must run them all).
    pub fn check_gateway(&self) -> Result<(), String> {
        self.check()?;
        if !self.listener.contains(&ListenerStep::IpFilter) {
            return Err(
                "the gateway stack has no ListenerStep::IpFilter: listeners' ip_allow/ip_deny would be ignored"
                    .into(),
            );
        }
        for (step, key) in [
            (RouteStep::IpFilter, "ip_allow/ip_deny"),
            (RouteStep::Authz, "consumer rules of [[authz]]"),
            (RouteStep::Cors, "cors"),
            (RouteStep::BodyLimit, "max_request_body_bytes"),
            (RouteStep::Rewrite, "rewrite"),
            (RouteStep::Redirect, "redirect"),
        ] {
            if !self.route.contains(&step) {
                return Err(format!(
                    "the gateway stack has no RouteStep::{step:?}: routes' {key} would be ignored"
                ));
            }
        }
        Ok(())
    }
}

/// The stack of each role; the running snapshot's `proxy.role` picks one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stacks {
    pub sidecar: Stack,
    pub gateway: Stack,
}

impl Default for Stack {
    fn default() -> Self {
        Stack::new()
    }
}

/// Names of the fields the proxy itself sets on every upstream request (see
/// `pipeline::ProxyFields`): present for `add_if_absent`.
pub(crate) const PROXY_SET: [&str; 5] = [
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-request-id",
    "traceparent",
    "x-forwarded-client-cert",
];

/// One compiled stage.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Stage {
    Limits(limits::Limits),
    Authz(authz::Authz),
    Headers(headers::Headers),
    Timeout(timeout::Timeout),
    Direct(direct::Direct),
    RateLimit(ratelimit::RateLimit),
    GlobalLimit(global_limit::GlobalLimit),
    Fault(fault::Fault),
    AuthN(authn::AuthN),
    ConsumerLimit(consumer_limit::ConsumerLimit),
    IpFilter(ip_filter::IpFilter),
    Cors(cors::Cors),
    BodyLimit(limits::BodyLimit),
    Rewrite(rewrite::Rewrite),
    Redirect(redirect::Redirect),
}

impl Stage {
    pub(crate) fn request<'v>(&'v self, req: &mut Req<'_>) -> Flow<'v> {
        match self {
            Stage::Limits(s) => s.request(req),
            Stage::Authz(s) => s.request(req),
            Stage::Headers(s) => s.request(req),
            Stage::Timeout(s) => s.request(req),
            Stage::Direct(s) => s.request(req),
            Stage::RateLimit(s) => s.request(req),
            Stage::GlobalLimit(s) => s.request(req),
            Stage::Fault(s) => s.request(req),
            Stage::AuthN(s) => s.request(req),
            Stage::ConsumerLimit(s) => s.request(req),
            Stage::IpFilter(s) => s.request(req),
            Stage::Cors(s) => s.request(req),
            Stage::BodyLimit(s) => s.request(req),
            Stage::Rewrite(s) => s.request(req),
            Stage::Redirect(s) => s.request(req),
        }
    }

    /// The stage's look at the response head before the client gets it.
    pub(crate) fn response(
        &self,
        req: &Req<'_>,
        present: &dyn Fn(&str) -> bool,
        edits: &mut Edits,
    ) {
        match self {
            Stage::Headers(s) => s.response(req, present, edits),
            Stage::Cors(s) => s.response(req, edits),
            Stage::Limits(_)
            | Stage::Authz(_)
            | Stage::Timeout(_)
            | Stage::Direct(_)
            | Stage::RateLimit(_)
            | Stage::GlobalLimit(_)
            | Stage::Fault(_)
            | Stage::AuthN(_)
            | Stage::ConsumerLimit(_)
            | Stage::IpFilter(_)
            | Stage::BodyLimit(_)
            | Stage::Rewrite(_)
            | Stage::Redirect(_) => {}
        }
    }

    /// Takes over the per-worker state of the same stage in the previous view when this
    /// stage's configuration is unchanged. No stage of today needs to: a token bucket is
    /// process-wide and found again in the `Registry` by its key (listener, route and
    /// settings), so a reload that keeps them keeps the bucket; a global limit's counts
    /// are its worker's client of the `[[redis]]` (`upstream/redis/`), found again by the
    /// server's settings.
    fn carry(&mut self, _old: &Stage) {}
}

/// What a stage decided.
pub(crate) enum Flow<'v> {
    Next,
    Reply(Local<'v>),
}

/// An answer the proxy makes itself (written by `answer.rs` for each protocol).
pub(crate) enum Local<'v> {
    Error(ProxyError),
    Direct(&'v DirectResponse),
    /// A redirect route's answer: its status and `Location`.
    Redirect {
        status: u16,
        location: String,
    },
}

/// One request as the stages see it, whatever protocol it came on.
pub(crate) struct Req<'a> {
    pub(crate) head: &'a RequestHead,
    pub(crate) conn: &'a ClientConn,
    pub(crate) stats: &'a ListenerStats,
    /// `application/grpc...`: failures answer in gRPC's trailers-only form.
    pub(crate) grpc: bool,
    /// A `CONNECT` tunnel (not an RFC 8441 extended CONNECT for a WebSocket, which
    /// `Req::new` is told of): only `match.connect` routes take it.
    pub(crate) connect: bool,
    /// Source of randomness for a generated request id.
    pub(crate) random: &'a dyn Fn() -> u64,
    request_id: Option<Vec<u8>>,
    /// Set by `Limits`: the most body bytes the relays may forward.
    pub(crate) body_limit: Option<u64>,
    /// Set by `Timeout`: the whole upstream call's deadline.
    pub(crate) deadline: Option<Duration>,
    /// Set by `Fault`: how long to wait before forwarding (within the deadline).
    pub(crate) delay: Option<Duration>,
    /// Set by `HeaderEdits`: what to change in the upstream request head.
    pub(crate) edits: Edits,
    /// Set by `AuthN`: the consumer the request authenticated as (gateway role).
    pub(crate) consumer: Option<Identified>,
    /// Set by the pipeline when it chose a route by `match.consumers`: what the route's
    /// credentials said, taken by that route's `AuthN` (so they are checked once). Boxed:
    /// few requests carry one.
    pub(crate) checked: Option<Box<authn::Verdict>>,
    /// Set by `Rewrite`: the head to send upstream instead of `head` (another target or
    /// host); see [`Req::upstream_head`]. Boxed: every request carries the field, few a
    /// rewrite.
    pub(crate) rewritten: Option<Box<RequestHead>>,
    /// When the request's head was read (`Req::started_at`): stages that need the time read
    /// this, not the clock (a clock read per stage per request adds up).
    started: Option<std::time::Instant>,
}

/// The consumer a request authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identified {
    pub(crate) id: ringside_config::ConsumerId,
    pub(crate) name: std::rc::Rc<str>,
}

impl<'a> Req<'a> {
    pub(crate) fn new(
        head: &'a RequestHead,
        conn: &'a ClientConn,
        stats: &'a ListenerStats,
        grpc: bool,
        websocket: bool,
        random: &'a dyn Fn() -> u64,
    ) -> Req<'a> {
        Req {
            head,
            conn,
            stats,
            grpc,
            // The one method comparison a request pays for tunnels.
            connect: !websocket && head.method() == "CONNECT",
            random,
            request_id: None,
            body_limit: None,
            deadline: None,
            delay: None,
            edits: Edits::NONE,
            consumer: None,
            checked: None,
            rewritten: None,
            started: None,
        }
    }

    /// The request, begun at `t` (both protocols take the time once per request).
    pub(crate) fn started_at(mut self, t: std::time::Instant) -> Self {
        self.started = Some(t);
        self
    }

    /// When the request began: the time given to [`Req::started_at`], else the clock now.
    pub(crate) fn now(&self) -> std::time::Instant {
        self.started.unwrap_or_else(std::time::Instant::now)
    }

    /// The head the upstream clients write: the stages' rewrite, else the request's own.
    pub(crate) fn upstream_head(&self) -> &RequestHead {
        self.rewritten.as_deref().unwrap_or(self.head)
    }

    /// The request's id: the client's `X-Request-Id`, else a new random UUID (made once).
    pub(crate) fn request_id(&mut self) -> &[u8] {
        let head = self.head;
        let random = self.random;
        self.request_id
            .get_or_insert_with(|| match head.header("x-request-id") {
                Some(id) if !id.is_empty() => id.to_vec(),
                _ => new_request_id(random),
            })
    }

    /// The request id, when something already needed it.
    pub(crate) fn request_id_if_known(&self) -> Option<&[u8]> {
        self.request_id.as_deref()
    }
}

/// A random (version 4) UUID in its usual text form (8-4-4-4-12 hex digits).
fn new_request_id(random: &dyn Fn() -> u64) -> Vec<u8> {
    let hi = (random() & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_4000;
    let lo = (random() & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&hi.to_be_bytes());
    bytes[8..].copy_from_slice(&lo.to_be_bytes());
    let mut out = Vec::with_capacity(36);
    for (i, part) in [0..4, 4..6, 6..8, 8..10, 10..16].into_iter().enumerate() {
        if i > 0 {
            out.push(b'-');
        }
        crate::cx::trace::hex_bytes(&mut out, bytes.get(part).unwrap_or_default());
    }
    out
}

/// A listener's stages and each of its routes' stages, compiled from one snapshot.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub(crate) listener: Vec<Stage>,
    /// Indexed like `HttpListener::routes`.
    pub(crate) routes: Vec<Vec<Stage>>,
}

impl Compiled {
    /// Whether route `i`'s own `authn` says the request is one of `consumers` (a route's
    /// `match.consumers`). When it does, the verdict is kept in the request for that
    /// route's `AuthN` stage, which runs next.
    pub(crate) fn consumer_matches(
        &self,
        i: usize,
        consumers: &[ringside_config::ConsumerId],
        req: &mut Req<'_>,
    ) -> bool {
        let authn = self.routes.get(i).and_then(|stages| {
            stages.iter().find_map(|s| match s {
                Stage::AuthN(a) => Some(a),
                _ => None,
            })
        });
        let Some(verdict) = authn.and_then(|a| a.check(req.head)) else {
            return false;
        };
        let admitted = verdict.consumer().is_some_and(|c| consumers.contains(&c));
        if admitted {
            req.checked = Some(Box::new(verdict));
        }
        admitted
    }

    /// `registry` holds the state a stage shares with the other workers for the whole process.
    pub(crate) fn build(
        stack: &Stack,
        listener: &Listener,
        http: &HttpListener,
        registry: &Registry,
    ) -> Compiled {
        let name = listener.name.as_str();
        let listener = stack
            .listener
            .iter()
            .filter_map(|step| match step {
                ListenerStep::Limits => Some(Stage::Limits(limits::Limits {
                    max_body: http.limits.max_request_body_bytes,
                })),
                // A policy naming consumers is decided after the route's AuthN
                // (`RouteStep::Authz`).
                ListenerStep::Authz => (!http.authz.names_consumers()
                    && (!http.authz.rules.is_empty()
                        || http.authz.default != ringside_config::AuthzAction::Allow))
                    .then(|| {
                        Stage::Authz(authz::Authz {
                            policy: http.authz.clone(),
                        })
                    }),
                ListenerStep::RateLimit => http.rate_limit.map(|limit| {
                    Stage::RateLimit(ratelimit::RateLimit::compile(limit, name, None, registry))
                }),
                // Counted under the route "" (none matched yet), like the listener's bucket.
                ListenerStep::IpFilter => http.ip.as_ref().map(|filter| {
                    Stage::IpFilter(ip_filter::IpFilter {
                        route: "".into(),
                        filter: filter.clone(),
                    })
                }),
            })
            .collect();
        let routes = http
            .routes
            .iter()
            .map(|route| route_stages(stack, name, http, route, registry))
            .collect();
        Compiled { listener, routes }
    }

    /// Carries per-worker stage state over from `old` (the same listener in the previous
    /// view): stage by stage for the listener, and route by route (by name) for routes.
    pub(crate) fn carry(&mut self, old: &Compiled, old_names: &[&str], names: &[&str]) {
        carry_list(&mut self.listener, &old.listener);
        for (route, name) in self.routes.iter_mut().zip(names) {
            if let Some(i) = old_names.iter().position(|n| n == name) {
                if let Some(prev) = old.routes.get(i) {
                    carry_list(route, prev);
                }
            }
        }
    }
}

/// Each stage takes over the state of the first stage of `old` with the same configuration.
fn carry_list(stages: &mut [Stage], old: &[Stage]) {
    for s in stages {
        if let Some(prev) = old.iter().find(|o| **o == *s) {
            s.carry(prev);
        }
    }
}

fn route_stages(
    stack: &Stack,
    listener: &str,
    http: &HttpListener,
    route: &Route,
    registry: &Registry,
) -> Vec<Stage> {
    stack
        .route
        .iter()
        .filter_map(|step| match step {
            RouteStep::AuthN => Some(Stage::AuthN(authn::AuthN::compile(route, registry))),
            RouteStep::Authz => http.authz.names_consumers().then(|| {
                Stage::Authz(authz::Authz {
                    policy: http.authz.clone(),
                })
            }),
            RouteStep::ConsumerRateLimit => {
                consumer_limit::ConsumerLimit::compile(route, registry).map(Stage::ConsumerLimit)
            }
            RouteStep::RateLimit => match (&route.global_rate_limit, route.rate_limit) {
                (Some(global), _) => Some(Stage::GlobalLimit(global_limit::GlobalLimit::compile(
                    global,
                    &route.rate_limit_key,
                    &route.name,
                    registry,
                ))),
                (None, Some(limit)) => Some(Stage::RateLimit(ratelimit::RateLimit::compile_keyed(
                    limit,
                    &route.rate_limit_key,
                    listener,
                    &route.name,
                    registry,
                ))),
                (None, None) => None,
            },
            RouteStep::Fault => route
                .fault
                .as_ref()
                .map(|f| Stage::Fault(fault::Fault::compile(&route.name, f))),
            RouteStep::HeaderEdits => {
                headers::Headers::compile(&http.headers, &route.headers).map(Stage::Headers)
            }
            RouteStep::Timeout => match route.action {
                RouteAction::Direct(_) | RouteAction::Redirect(_) => None,
                _ => Some(Stage::Timeout(timeout::Timeout {
                    route: route.timeout,
                })),
            },
            RouteStep::Direct => match &route.action {
                RouteAction::Direct(d) => Some(Stage::Direct(direct::Direct {
                    response: d.clone(),
                })),
                _ => None,
            },
            RouteStep::IpFilter => route.edge.ip.as_ref().map(|filter| {
                Stage::IpFilter(ip_filter::IpFilter {
                    route: route.name.as_str().into(),
                    filter: filter.clone(),
                })
            }),
            RouteStep::Cors => route
                .edge
                .cors
                .as_ref()
                .map(|policy| Stage::Cors(cors::Cors::compile(&route.name, policy))),
            RouteStep::BodyLimit => route
                .edge
                .max_request_body_bytes
                .map(|max_body| Stage::BodyLimit(limits::BodyLimit { max_body })),
            RouteStep::Rewrite => route
                .edge
                .rewrite
                .as_ref()
                .map(|rule| Stage::Rewrite(rewrite::Rewrite { rule: rule.clone() })),
            RouteStep::Redirect => match &route.action {
                RouteAction::Redirect(rule) => Some(Stage::Redirect(redirect::Redirect {
                    route: route.name.as_str().into(),
                    rule: rule.clone(),
                })),
                _ => None,
            },
        })
        .collect()
}

/// The sidecar's stack (`proxy/src/stack.rs`, which the engine cannot import), for the
/// stage and pipeline tests.
#[cfg(test)]
pub(crate) fn test_sidecar() -> Stack {
    Stack::new()
        .listener(ListenerStep::Limits)
        .listener(ListenerStep::Authz)
        .listener(ListenerStep::RateLimit)
        .route(RouteStep::RateLimit)
        .route(RouteStep::HeaderEdits)
        .route(RouteStep::Timeout)
        .route(RouteStep::Fault)
        .route(RouteStep::Direct)
}

/// Header edits as text, in order: `-name` for each removal, then `+name=value` (the stage
/// tests).
#[cfg(test)]
pub(crate) fn test_edits(edits: &ringside_codec::Edits) -> Vec<String> {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let removed = edits.remove.iter().map(|n| format!("-{}", text(n)));
    let added = edits
        .add
        .iter()
        .map(|(n, v)| format!("+{}={}", text(n), text(v)));
    removed.chain(added).collect()
}

/// A request head parsed from `text` under roomy limits (the stage and pipeline tests).
#[cfg(test)]
pub(crate) fn test_head(text: &str) -> RequestHead {
    let limits = ringside_codec::Limits {
        max_header_bytes: 8192,
        max_headers: 64,
        max_uri_bytes: 4096,
        path: ringside_codec::PathRules::NONE,
    };
    match ringside_codec::parse_request(text.as_bytes(), &limits) {
        Ok(Some((head, _))) => head,
        _ => panic!("not a whole request head: {text:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_version_4_uuids() {
        let n = std::cell::Cell::new(0u64);
        let random = || {
            n.set(n.get().wrapping_add(0x0123_4567_89ab_cdef));
            n.get()
        };
        let id = String::from_utf8(new_request_id(&random)).unwrap();
        assert_eq!(id, "01234567-89ab-4def-8246-8acf13579bde");
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
    }
}
