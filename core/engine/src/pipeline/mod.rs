//! Layer 3 (with `stage/`): the one request pipeline every HTTP protocol runs: the HTTP/1.1 connection loop
//! (`http/route.rs`) and the HTTP/2 stream task (`h2/stream.rs`) build a [`Req`] from their
//! wire form and call [`decide`]; both answer a [`Decision::Reply`] through `answer.rs` and
//! hand a [`Decision::Forward`] to the upstream call with the same [`Piped`] request, and a
//! [`Decision::Tunnel`] (a CONNECT) to `downstream/connect.rs`.
//!
//! ```text
//! listener stages ─▶ first matching route ─▶ route stages ─▶ Forward(cluster) | Reply
//!                     (`match.consumers`: the route's credentials checked,  | Tunnel
//!                      kept for its AuthN; a CONNECT meets `match.connect` routes only)
//! Forward ─▶ forward: a fault's delay, then the upstream call, within the deadline
//! response head ─▶ Piped::response_edits (the stages that ran, in reverse) ─▶ client
//! ```

pub(crate) mod answer;
pub(crate) mod view;

use bytes::Bytes;
use ringside_codec::{BodyKind, Edits};
use ringside_config::{
    ClusterId, ForwardClientCert, HttpListener, RequestView, Route, RouteAction,
};

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
    /// A CONNECT a `match.connect` route took: open a tunnel (`downstream/connect.rs`).
    Tunnel {
        route: &'v Route,
        to: TunnelTo,
        stages: &'v [Stage],
    },
}

/// Where a CONNECT's tunnel goes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TunnelTo {
    /// An endpoint of this cluster.
    Cluster(ClusterId),
    /// The address the request names (`tunnel_to = "authority"`).
    Authority,
}

/// Runs the listener's stages, matches the route and runs its stages.
pub(crate) fn decide<'v>(
    compiled: &'v Compiled,
    http: &'v HttpListener,
    req: &mut Req<'_>,
) -> Decision<'v> {
    if req.connect && !matches!(req.head.body(), BodyKind::Empty | BodyKind::Length(0)) {
        // What follows a CONNECT's head is the tunnel's: a declared body would make two
        // parties read the same bytes two ways.
        return Decision::Reply {
            route: "",
            local: Local::Error(ProxyError::BadRequest("a CONNECT has no content".into())),
            stages: &[],
        };
    }
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
    let conn = req.conn;
    let view = RequestView {
        method: head.method(),
        host: head.host(),
        path: head.path(),
        header: |name: &str| head.header(name),
        principal: conn.identity.as_deref(),
        connect: req.connect,
        // A CONNECT's authority's; otherwise an intercepted connection's original
        // destination's (`transparent` listeners).
        port: if req.connect {
            authority_port(head)
        } else {
            conn.original_dst.map(|d| d.addr.port())
        },
    };
    // A route's `match.consumers` is checked last, with that route's own credentials.
    let Some((i, route)) = http.routes.iter().enumerate().find(|(i, r)| {
        r.matcher.matches(&view)
            && (r.matcher.consumers.is_empty()
                || compiled.consumer_matches(*i, &r.matcher.consumers, req))
    }) else {
        let e = if req.connect {
            ProxyError::Refused("no route allows a tunnel to this authority")
        } else {
            ProxyError::NoRoute
        };
        return Decision::Reply {
            route: "",
            local: Local::Error(e),
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
        RouteAction::Authority => {
            return Decision::Tunnel {
                route,
                to: TunnelTo::Authority,
                stages,
            }
        }
        // Answered by the Direct stage, which every stack has (`Stack::check`), or by the
        // Redirect stage, which the gateway's has (`Stack::check_gateway`; only the gateway
        // role accepts redirect routes).
        RouteAction::Direct(_) | RouteAction::Redirect(_) => {
            return Decision::Reply {
                route: &route.name,
                local: Local::Error(ProxyError::NoRoute),
                stages,
            }
        }
    };
    // A forwarded request always carries an id (`X-Request-Id`, `%REQUEST_ID%`).
    req.request_id();
    if req.connect {
        return Decision::Tunnel {
            route,
            to: TunnelTo::Cluster(cluster),
            stages,
        };
    }
    Decision::Forward {
        route,
        cluster,
        stages,
    }
}

/// The port of a CONNECT's authority (`host:port`, the port required by the parsers).
fn authority_port(head: &ringside_codec::RequestHead) -> Option<u16> {
    let (_, port) = head.authority()?.rsplit_once(':')?;
    port.parse().ok()
}

/// Forwards a request that `decide` sent to a cluster: waits the delay a `Fault` stage set,
/// then runs `call` (the upstream call), the whole of it within the deadline `Timeout` set
/// (504 when it runs out first, so a delay counts against the route timeout). The one
/// place both protocols forward through (`downstream/http/route.rs`, `downstream/h2/stream.rs`).
pub(crate) fn forward<T, F>(req: &Req<'_>, call: F) -> Forward<F>
where
    F: std::future::Future<Output = Result<T, ProxyError>>,
{
    Forward {
        call,
        delay: req.delay.map(crate::cx::io::sleep),
        limit: req.deadline.map(crate::cx::io::precise_sleep),
    }
}

pin_project_lite::pin_project! {
    /// The future of [`forward`]: a struct, so that the call (the largest future of a
    /// request) is stored once, where an `async fn` taking it would keep it twice or more.
    pub(crate) struct Forward<F> {
        #[pin]
        call: F,
        // A fault's delay, waited before the call starts.
        delay: Option<crate::cx::deadline::Deadline>,
        // The route's deadline (a precise timer: a user who sets 1.5 s expects 1.5 s).
        limit: Option<crate::cx::deadline::Deadline>,
    }
}

impl<T, F> std::future::Future for Forward<F>
where
    F: std::future::Future<Output = Result<T, ProxyError>>,
{
    type Output = Result<T, ProxyError>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        use std::task::Poll;
        let this = self.project();
        let waited = match this.delay {
            Some(d) => std::pin::Pin::new(d).poll(cx).is_ready(),
            None => true,
        };
        if waited {
            *this.delay = None;
            if let Poll::Ready(r) = this.call.poll(cx) {
                return Poll::Ready(r);
            }
        }
        let expired = match this.limit {
            Some(t) => std::pin::Pin::new(t).poll(cx).is_ready(),
            None => false,
        };
        if expired {
            Poll::Ready(Err(ProxyError::Timeout))
        } else {
            Poll::Pending
        }
    }
}

/// A request that went through the pipeline, as the upstream call and the answer see it.
pub(crate) struct Piped<'a> {
    pub(crate) req: &'a Req<'a>,
    /// The route stages that ran: their response hooks run on the response head.
    pub(crate) stages: &'a [Stage],
    /// A ring-hash cluster's `hash_cookie` for a client that sent none, and its value: the
    /// response sets it.
    pub(crate) cookie: Option<(&'a ringside_config::HashCookie, u64)>,
}

impl<'a> Piped<'a> {
    /// A request that sets no cookie.
    pub(crate) fn new(req: &'a Req<'a>, stages: &'a [Stage]) -> Piped<'a> {
        Piped {
            req,
            stages,
            cookie: None,
        }
    }
    /// The edits the stages make to a response head; `present` tells whether the response
    /// carries a field of that lower-case name.
    ///
    /// A response without `Date` gets one (RFC 9110 §6.6.1), unless a stage removes or sets
    /// it: this is the one place every response ringside sends passes, forwarded or its own,
    /// HTTP/1.1 or HTTP/2.
    pub(crate) fn response_edits(&self, present: &dyn Fn(&str) -> bool) -> Edits {
        let mut edits = Edits::NONE;
        for stage in self.stages.iter().rev() {
            stage.response(self.req, present, &mut edits);
        }
        if let Some((cookie, value)) = self.cookie {
            edits.add.push((
                Bytes::from_static(b"Set-Cookie"),
                Bytes::from(cookie.set_cookie(value)),
            ));
        }
        if !present("date") && !edits.touches(b"date") {
            edits
                .add
                .push((Bytes::from_static(b"Date"), crate::cx::date::now()));
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
/// X-Forwarded-Client-Cert as the listener's `forward_client_cert` says (by default the
/// client's verified identity on an mTLS connection, else none, whatever the client sent
/// removed: only the proxy vouches for identities; Envoy's SANITIZE_SET).
pub(crate) struct ProxyFields<'r> {
    /// The request's id, as the request keeps it (`Req::request_id`).
    pub(crate) request_id: &'r [u8],
    /// The other values, one after the other in one allocation (this runs per request).
    values: Vec<u8>,
    /// Where each value ends in `values`: X-Forwarded-For, X-Forwarded-Proto, traceparent,
    /// X-Forwarded-Client-Cert.
    ends: [usize; 4],
    /// The client's X-Forwarded-Client-Cert goes on as sent: the proxy sets none.
    xfcc_as_sent: bool,
}

impl<'r> ProxyFields<'r> {
    /// The fields for a forwarded request (`decide` gave it its id).
    pub(crate) fn new(
        req: &'r Req<'_>,
        trace: &crate::cx::trace::TraceContext,
        xfcc: ForwardClientCert,
    ) -> Self {
        let request_id = req.request_id_if_known().unwrap_or_default();
        let (head, conn) = (req.head, req.conn);
        // Envoy's rules: the client's as sent (ALWAYS_FORWARD_ONLY; FORWARD_ONLY from a
        // verified client), the client's followed by the proxy's (APPEND_FORWARD, verified),
        // only the proxy's (SANITIZE_SET, verified), or none.
        // A verified client has an element (`client_cert_details`, built at its handshake).
        let verified = conn
            .xfcc
            .as_ref()
            .filter(|_| xfcc != ForwardClientCert::Sanitize);
        let xfcc_as_sent = xfcc == ForwardClientCert::AlwaysForwardOnly
            || (xfcc == ForwardClientCert::ForwardOnly && verified.is_some());
        let prev_xfcc = match (xfcc, verified) {
            (ForwardClientCert::AppendForward, Some(_)) => head
                .header("x-forwarded-client-cert")
                .filter(|p| !p.is_empty()),
            _ => None,
        };
        let own_xfcc = verified.filter(|_| {
            matches!(
                xfcc,
                ForwardClientCert::SanitizeSet | ForwardClientCert::AppendForward
            )
        });
        let prev_xff = head.header("x-forwarded-for").filter(|p| !p.is_empty());
        let scheme: &[u8] = if conn.tls { b"https" } else { b"http" };
        let proto = head.header("x-forwarded-proto").unwrap_or(scheme);
        let mut v = Vec::with_capacity(
            prev_xff.map_or(0, |p| p.len() + 2)
                + 40
                + proto.len()
                + 55
                + own_xfcc.map_or(0, |e| e.len())
                + prev_xfcc.map_or(0, |p| p.len() + 1),
        );
        if let Some(prev) = prev_xff {
            v.extend_from_slice(prev);
            v.extend_from_slice(b", ");
        }
        push_ip(&mut v, conn.peer.ip());
        let xff = v.len();
        v.extend_from_slice(proto);
        let proto = v.len();
        trace.write_traceparent(&mut v);
        let traceparent = v.len();
        if let Some(element) = own_xfcc {
            if let Some(prev) = prev_xfcc {
                v.extend_from_slice(prev);
                v.push(b',');
            }
            v.extend_from_slice(element.as_bytes());
        }
        ProxyFields {
            request_id,
            ends: [xff, proto, traceparent, v.len()],
            values: v,
            xfcc_as_sent,
        }
    }

    /// The fields as `(name, value)` pairs, on the stack (this runs per request): take
    /// `.0[..n]` of the returned `(array, n)`. An empty X-Forwarded-Client-Cert is one the
    /// proxy withholds: the writers remove the client's and send none. Left out of the
    /// `n` (it is last), the client's goes on as sent.
    pub(crate) fn set(&self) -> ([(&'static str, &[u8]); 5], usize) {
        let [xff, proto, traceparent, xfcc] = self.ends;
        let part = |from: usize, to: usize| self.values.get(from..to).unwrap_or_default();
        let set = [
            ("X-Forwarded-For", part(0, xff)),
            ("X-Forwarded-Proto", part(xff, proto)),
            ("X-Request-Id", self.request_id),
            ("traceparent", part(proto, traceparent)),
            ("X-Forwarded-Client-Cert", part(traceparent, xfcc)),
        ];
        (set, if self.xfcc_as_sent { 4 } else { 5 })
    }
}

/// Appends an IP address in its usual text form. IPv4, the common case, without `fmt` (which
/// costs over a thousand instructions per request here).
fn push_ip(out: &mut Vec<u8>, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                if octet >= 100 {
                    out.push(b'0' + octet / 100);
                }
                if octet >= 10 {
                    out.push(b'0' + octet / 10 % 10);
                }
                out.push(b'0' + octet % 10);
            }
        }
        std::net::IpAddr::V6(_) => {
            use std::io::Write;
            let _ = write!(out, "{ip}");
        }
    }
}

#[cfg(test)]
mod tests {
    //! The pipeline over scripted requests: the sidecar's stack compiled against a small
    //! configuration, `decide` run on parsed heads, the decision and the request's state
    //! checked. Every protocol runs this same code (the behaviour table runs it end to end).

    use super::*;

    #[test]
    fn a_response_without_date_gets_one() {
        let config = ringside_config::parse(CONFIG).unwrap();
        let (http, compiled) = compile(&config, &stack());
        let head = crate::stage::test_head("GET /direct HTTP/1.1\r\nHost: h\r\n\r\n");
        let conn = client();
        let stats = ListenerStats::default();
        let random = || 4;
        let mut req = Req::new(&head, &conn, &stats, false, false, &random);
        let Decision::Reply { stages, .. } = decide(&compiled, http, &mut req) else {
            panic!("a direct answer")
        };
        let piped = Piped::new(&req, stages);
        let dates = |e: &Edits| {
            e.add
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(b"date"))
                .count()
        };
        assert_eq!(dates(&piped.response_edits(&|_| false)), 1);
        // The response has its own: it is kept, not doubled.
        assert_eq!(dates(&piped.response_edits(&|n| n == "date")), 0);
    }

    #[test]
    fn ip_addresses_are_written_as_display_writes_them() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.255.9",
            "192.168.100.200",
            "1.10.100.99",
            "::1",
            "2001:db8::1",
            "::ffff:10.0.0.1",
        ] {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            let mut out = b"x".to_vec();
            push_ip(&mut out, ip);
            assert_eq!(out, format!("x{ip}").into_bytes());
        }
    }
    use crate::cx::metrics::ListenerStats;
    use crate::cx::ClientConn;
    use crate::stage::Stack;
    use ringside_config::ListenerKind;

    const CONFIG: &str = r#"
        [[listeners]]
        name = "in"
        bind = "127.0.0.1:1"
        max_request_body_bytes = 100
        request_headers_to_add = [ { name = "x-l", value = "listener" } ]

        [[routes]]
        listener = "in"
        match = { path_prefix = "/direct" }
        direct_response = { status = 204, body = "x" }
        response_headers_to_add = [ { name = "x-r", value = "%REQ(x-in)%" } ]

        [[routes]]
        listener = "in"
        name = "api"
        match = { path_prefix = "/api" }
        cluster = "api"
        timeout_ms = 1500
        request_headers_to_add = [ { name = "x-l", value = "route", action = "overwrite" } ]
        request_headers_to_remove = [ "x-debug" ]

        [[authz]]
        listener = "in"
        action = "deny"
        paths = [ "/secret" ]

        [[clusters]]
        name = "api"
        endpoints = [ "127.0.0.1:2" ]
    "#;

    /// The sidecar's stack (`proxy/src/stack.rs`, which the engine cannot import).
    fn stack() -> Stack {
        crate::stage::test_sidecar()
    }

    fn client() -> ClientConn {
        ClientConn {
            peer: "10.0.0.1:5000".parse().unwrap(),
            tls: false,
            identity: None,
            xfcc: None,
            original_dst: None,
        }
    }

    /// The first listener of `config` and `stack` compiled for it.
    fn compile<'c>(
        config: &'c ringside_config::Config,
        stack: &Stack,
    ) -> (&'c HttpListener, Compiled) {
        let ListenerKind::Http(http) = &config.listeners[0].kind else {
            panic!("http listener")
        };
        let registry = crate::cx::shared::Registry::default();
        (
            http,
            Compiled::build(stack, &config.listeners[0], http, &registry),
        )
    }

    /// Runs `decide` on `text`; returns what it decided, in words, and the request edits.
    fn run(text: &str) -> (String, Edits, Option<std::time::Duration>) {
        let config = ringside_config::parse(CONFIG).unwrap();
        let (http, compiled) = compile(&config, &stack());
        let head = crate::stage::test_head(text);
        let conn = client();
        let stats = ListenerStats::default();
        let random = || 4;
        let mut req = Req::new(&head, &conn, &stats, false, false, &random);
        let said = match decide(&compiled, http, &mut req) {
            Decision::Reply {
                route,
                local: Local::Error(e),
                ..
            } => format!("{route}:{}", e.status()),
            Decision::Reply {
                route,
                local: Local::Direct(d),
                stages,
            } => {
                let piped = Piped::new(&req, stages);
                // An answer that has its `Date`: only the stages' edits are left.
                let edits = piped.response_edits(&|n| n == "date");
                let added: Vec<String> = edits
                    .add
                    .iter()
                    .map(|(n, v)| {
                        let (n, v) = (String::from_utf8_lossy(n), String::from_utf8_lossy(v));
                        format!("{n}={v}")
                    })
                    .collect();
                format!("{route}:direct {} {}", d.status, added.join(","))
            }
            Decision::Reply {
                route,
                local: Local::Redirect { status, .. },
                ..
            } => format!("{route}:redirect {status}"),
            Decision::Forward { route, cluster, .. } => {
                format!("{}:forward {}", route.name, cluster.0)
            }
            Decision::Tunnel { route, to, .. } => format!("{}:tunnel {to:?}", route.name),
        };
        (said, req.edits.clone(), req.deadline)
    }

    #[test]
    fn limits_then_authz_then_route() {
        // A CONNECT no route takes is refused (403, not 404 nor 405); a declared body over
        // the limit is refused before the policy is asked; a denied path gets 403 even
        // though no route serves it.
        assert_eq!(
            run("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n").0,
            ":403"
        );
        assert_eq!(
            run("POST /api HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n").0,
            ":413"
        );
        assert_eq!(
            run("POST /secret HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n").0,
            ":413"
        );
        assert_eq!(run("GET /secret HTTP/1.1\r\nHost: h\r\n\r\n").0, ":403");
        assert_eq!(run("GET /nothing HTTP/1.1\r\nHost: h\r\n\r\n").0, ":404");
    }

    #[test]
    fn a_route_runs_its_stages() {
        let (said, edits, deadline) =
            run("GET /api/x HTTP/1.1\r\nHost: h\r\nX-Debug: 1\r\nX-L: client\r\n\r\n");
        assert_eq!(said, "api:forward 0");
        assert_eq!(deadline, Some(std::time::Duration::from_millis(1500)));
        // Listener edit appended, then the route's overwrite replaced it and the client's.
        assert!(edits.removes(b"x-debug") && edits.removes(b"x-l"));
        assert_eq!(
            edits.add,
            vec![(
                bytes::Bytes::from_static(b"x-l"),
                bytes::Bytes::from_static(b"route")
            )]
        );
        // An unnamed route is named after its listener and position; its direct answer
        // gets the response edits.
        let (said, _, deadline) = run("GET /direct HTTP/1.1\r\nHost: h\r\nX-In: v\r\n\r\n");
        assert_eq!(said, "in/0:direct 204 x-r=v");
        assert_eq!(deadline, None);
    }

    const TUNNELS: &str = r#"
        [[listeners]]
        name = "in"
        bind = "127.0.0.1:1"

        [[authz]]
        listener = "in"
        action = "deny"
        headers = { "x-deny" = "1" }

        [[routes]]
        listener = "in"
        name = "api"
        match = { connect = true, host = "api.example.com", ports = [443] }
        cluster = "api"

        [[routes]]
        listener = "in"
        name = "ip"
        match = { connect = true, host = "10.0.0.7" }
        tunnel_to = "authority"

        [[routes]]
        listener = "in"
        name = "all"
        cluster = "api"

        [[clusters]]
        name = "api"
        endpoints = [ "127.0.0.1:2" ]
    "#;

    /// CONNECTs meet `match.connect` routes only, by host and port, after the listener's
    /// stages; anything else no route allows is 403, even beside a route that takes all.
    #[test]
    fn a_connect_meets_connect_routes_only() {
        let config = ringside_config::parse(TUNNELS).unwrap();
        let (http, compiled) = compile(&config, &stack());
        let conn = client();
        let stats = ListenerStats::default();
        let random = || 4;
        let said = |text: &str| {
            let head = crate::stage::test_head(text);
            let mut req = Req::new(&head, &conn, &stats, false, false, &random);
            match decide(&compiled, http, &mut req) {
                Decision::Tunnel { route, to, .. } => format!("{} {to:?}", route.name),
                Decision::Forward { route, .. } => format!("{} forward", route.name),
                d => status_of(d).to_string(),
            }
        };
        let connect = |authority: &str, extra: &str| {
            said(&format!(
                "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n{extra}\r\n"
            ))
        };
        assert_eq!(
            connect("api.example.com:443", ""),
            "api Cluster(ClusterId(0))"
        );
        assert_eq!(
            connect("API.Example.com:443", ""),
            "api Cluster(ClusterId(0))"
        );
        assert_eq!(connect("api.example.com:22", ""), "403");
        assert_eq!(connect("evil.example.com:443", ""), "403");
        assert_eq!(connect("10.0.0.7:5432", ""), "ip Authority");
        assert_eq!(connect("10.0.0.8:5432", ""), "403");
        // What follows the head is the tunnel's: a declared body is malformed.
        assert_eq!(
            connect("api.example.com:443", "Content-Length: 3\r\n"),
            "400"
        );
        // The listener's policy applies to a tunnel as to any request.
        assert_eq!(connect("api.example.com:443", "X-Deny: 1\r\n"), "403");
        // Other requests never meet a connect route.
        assert_eq!(
            said("GET / HTTP/1.1\r\nHost: api.example.com\r\n\r\n"),
            "all forward"
        );
    }

    /// Gateway: the listener's address filter and bucket refuse CONNECTs as any request.
    #[test]
    fn a_connect_meets_the_listeners_filters_and_bucket() {
        let config = ringside_config::parse(
            r#"
            [proxy]
            role = "gateway"

            [[listeners]]
            name = "in"
            bind = "127.0.0.1:1"
            ip_allow = [ "10.0.0.0/8" ]
            rate_limit = { requests_per_second = 1, burst = 1 }

            [[routes]]
            listener = "in"
            name = "api"
            match = { connect = true, host = "api.example.com" }
            cluster = "api"

            [[clusters]]
            name = "api"
            endpoints = [ "127.0.0.1:2" ]
            "#,
        )
        .unwrap();
        use crate::stage::ListenerStep;
        let stack = Stack::new()
            .listener(ListenerStep::Limits)
            .listener(ListenerStep::IpFilter)
            .listener(ListenerStep::Authz)
            .listener(ListenerStep::RateLimit);
        let (http, compiled) = compile(&config, &stack);
        let inside = client();
        let outside = ClientConn {
            peer: "192.0.2.1:5000".parse().unwrap(),
            ..client()
        };
        let worker = crate::cx::metrics::WorkerStats::default();
        let stats = worker.listener(&std::rc::Rc::from("in"));
        let random = || 4;
        let head = crate::stage::test_head(
            "CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\n\r\n",
        );
        let status = |conn: &ClientConn| {
            let mut req = Req::new(&head, conn, &stats, false, false, &random);
            status_of(decide(&compiled, http, &mut req))
        };
        // Refused by address before the bucket: it takes no token.
        assert_eq!(status(&outside), 403);
        assert_eq!(status(&inside), 0, "tunnelled");
        assert_eq!(status(&inside), 429);
    }

    /// A listener bucket of 3, a route bucket of 1 in front of an abort on every request.
    const LIMITED: &str = r#"
        [[listeners]]
        name = "in"
        bind = "127.0.0.1:1"
        rate_limit = { requests_per_second = 1, burst = 3 }

        [[authz]]
        listener = "in"
        action = "deny"
        paths = [ "/secret" ]

        [[routes]]
        listener = "in"
        name = "open"
        match = { path_prefix = "/open" }
        direct_response = { status = 200 }

        [[routes]]
        listener = "in"
        name = "api"
        cluster = "api"
        timeout_ms = 1500
        rate_limit = { requests_per_second = 1, burst = 1 }
        fault = { abort = { status = 418, percent = 100.0 } }

        [[clusters]]
        name = "api"
        endpoints = [ "127.0.0.1:2" ]
    "#;

    #[test]
    fn buckets_come_before_faults_and_after_authz() {
        let config = ringside_config::parse(LIMITED).unwrap();
        let (http, compiled) = compile(&config, &stack());
        let conn = client();
        let stats = ListenerStats::default();
        let random = || 4;
        let status = |path: &str| {
            let head = crate::stage::test_head(&format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n"));
            let mut req = Req::new(&head, &conn, &stats, false, false, &random);
            status_of(decide(&compiled, http, &mut req))
        };
        // Denied requests take no token of the listener's bucket (burst 3).
        for _ in 0..5 {
            assert_eq!(status("/secret"), 403);
        }
        // The route's first request passes its bucket (burst 1) and meets the fault; the
        // second is refused by the bucket before any fault.
        assert_eq!(status("/api"), 418);
        assert_eq!(status("/api"), 429);
        // The listener's bucket had three tokens: the third goes to another route, and
        // the fourth request of the listener is refused there.
        assert_eq!(status("/open"), 200);
        assert_eq!(status("/open"), 429);
    }

    /// The status a decision answers with (0: forwarded).
    fn status_of(decision: Decision<'_>) -> u16 {
        match decision {
            Decision::Reply {
                local: Local::Error(e),
                ..
            } => e.status(),
            Decision::Reply {
                local: Local::Direct(d),
                ..
            } => d.status,
            Decision::Reply {
                local: Local::Redirect { status, .. },
                ..
            } => status,
            Decision::Forward { .. } | Decision::Tunnel { .. } => 0,
        }
    }

    const GATEWAY: &str = r#"
        [proxy]
        role = "gateway"

        [[listeners]]
        name = "public"
        bind = "127.0.0.1:1"

        [[consumers]]
        name = "small"
        api_keys = [ { key = "small-key" } ]
        rate_limit = { requests_per_second = 1, burst = 1 }

        [[consumers]]
        name = "big"
        api_keys = [ { key = "big-key" } ]

        [[routes]]
        listener = "public"
        name = "api"
        authn = { api_key = {} }
        rate_limit = { key = "consumer", requests_per_second = 1, burst = 2 }
        cluster = "app"

        [[clusters]]
        name = "app"
        endpoints = [ "127.0.0.1:2" ]
    "#;

    /// The gateway's route stages in their order (`gateway/src/stack.rs`, which the engine
    /// cannot import either).
    fn gateway_stack() -> Stack {
        use crate::stage::RouteStep;
        Stack::new()
            .route(RouteStep::RateLimit)
            .route(RouteStep::Direct)
            .route_before(RouteStep::RateLimit, RouteStep::AuthN)
            .route_after(RouteStep::AuthN, RouteStep::ConsumerRateLimit)
    }

    /// Gateway: authentication before any bucket, the consumer's bucket before the route's.
    #[test]
    fn authn_then_the_consumer_bucket_then_the_route_bucket() {
        let config = ringside_config::parse(GATEWAY).unwrap();
        let (http, compiled) = compile(&config, &gateway_stack());
        let conn = client();
        let worker = crate::cx::metrics::WorkerStats::default();
        let stats = worker.listener(&std::rc::Rc::from("public"));
        let random = || 4;
        let status = |key: &str| {
            let head = crate::stage::test_head(&format!(
                "GET /x HTTP/1.1\r\nHost: h\r\nX-Api-Key: {key}\r\n\r\n"
            ));
            let mut req = Req::new(&head, &conn, &stats, false, false, &random);
            status_of(decide(&compiled, http, &mut req))
        };
        // Refused keys take no token of anyone's bucket.
        for _ in 0..5 {
            assert_eq!(status("nope"), 401);
        }
        // `small` has one token of its own: its second request is refused by its own bucket
        // and takes none of the route's.
        assert_eq!(status("small-key"), 0);
        assert_eq!(status("small-key"), 429);
        // `big` has no bucket of its own; the route keeps two tokens per consumer.
        assert_eq!(status("big-key"), 0);
        assert_eq!(status("big-key"), 0);
        assert_eq!(status("big-key"), 429);
        let report = worker.report(0, |_| 0);
        let l = &report.listeners[0];
        assert_eq!(l.authn_failures, [("api".to_string(), "unknown", 5)]);
        let mut consumers = l.consumers.clone();
        consumers.sort_by(|a, b| a.0.cmp(&b.0));
        let counts: Vec<(&str, u64, u64)> = consumers
            .iter()
            .map(|(n, c)| (n.as_str(), c.requests, c.rate_limited))
            .collect();
        // The requests the route's bucket refused were authenticated: counted as requests.
        assert_eq!(counts, [("big", 3, 0), ("small", 1, 1)]);
        assert_eq!(l.rate_limited, [("api".to_string(), 1)]);
    }

    /// What each `forward_client_cert` mode sends upstream, for a client whose certificate
    /// was verified and for one without: `Some(value)` set by the proxy (empty: withheld,
    /// the client's removed), `None` left out of the set (the client's goes on as sent).
    #[test]
    fn each_forward_client_cert_mode_sets_withholds_or_passes_the_clients() {
        let head = crate::stage::test_head(
            "GET /x HTTP/1.1\r\nHost: a\r\nX-Forwarded-Client-Cert: URI=spiffe://c/sent\r\n\r\n",
        );
        let stats = ListenerStats::default();
        let random = || 4;
        let trace = crate::cx::trace::TraceContext::continue_or_start(|_| None, || 7, 0.0);
        let sent = |xfcc: ForwardClientCert, verified: bool| {
            let conn = ClientConn {
                identity: verified.then(|| std::rc::Rc::from("spiffe://c/verified")),
                xfcc: verified.then(|| std::rc::Rc::from("URI=spiffe://c/verified")),
                tls: verified,
                ..client()
            };
            let req = Req::new(&head, &conn, &stats, false, false, &random);
            let fields = ProxyFields::new(&req, &trace, xfcc);
            let (set, n) = fields.set();
            let set = set.get(..n).unwrap_or_default();
            set.iter()
                .find(|(name, _)| *name == "X-Forwarded-Client-Cert")
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        };
        use ForwardClientCert as F;
        let own = "URI=spiffe://c/verified";
        for (mode, verified, want) in [
            (F::SanitizeSet, true, Some(own.to_owned())),
            (F::SanitizeSet, false, Some(String::new())),
            (F::Sanitize, true, Some(String::new())),
            (F::Sanitize, false, Some(String::new())),
            (
                F::AppendForward,
                true,
                Some(format!("URI=spiffe://c/sent,{own}")),
            ),
            (F::AppendForward, false, Some(String::new())),
            (F::ForwardOnly, true, None),
            (F::ForwardOnly, false, Some(String::new())),
            (F::AlwaysForwardOnly, true, None),
            (F::AlwaysForwardOnly, false, None),
        ] {
            assert_eq!(sent(mode, verified), want, "{mode:?}, verified: {verified}");
        }
    }
}
