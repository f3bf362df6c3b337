//! The machinery of the behaviour table (`tests/tests/behaviour_table.rs`): rows, columns, the
//! clients that send a row's request in each column, the checks, and the report.
//!
//! ```text
//! Row { name, config, send, expect } × Down (http/1.1, h2c, http/1.1+tls, h2+tls)
//!                                    × Up (HTTP/1.1 origin, HTTP/2 origin)
//!                                    × driver (one `World` per driver)
//! ```
//!
//! - A [`Row`] says what the client sends ([`Form`]: one [`Req`] rendered for each protocol,
//!   raw HTTP/1.1 bytes, or explicitly [`Form::NotApplicable`] with the reason) and what must
//!   happen ([`Expect`]: the response, what the origin received, the connection afterwards).
//! - Every request carries `x-cell: <id>`, so what each origin recorded is attributed to one
//!   cell; raw forms write `$CELL` where the id goes.
//! - [`run`] runs every row in every column, collects every failure (a panic in a cell is a
//!   failure of that cell too), prints the matrix, and returns the failures; the test fails
//!   when there is any.
//!
//! Files: this one has the columns, requests, expectations and rows; `world.rs` the origins
//! and proxies of one driver; `clients.rs` the clients; `run.rs` running cells and the table.
//!
//! Clients: HTTP/1.1 is written and read by hand over a std socket (plain or rustls), so
//! malformed bytes can be sent and every byte of the response is seen; HTTP/2 is the `h2`
//! crate over monoio's poll-io socket (plain, or tokio-rustls with ALPN `h2`). Every wait is
//! bounded by [`WAIT`].

mod clients;
mod run;
mod world;

pub use clients::*;
pub use run::*;
pub use world::*;

use std::fmt::Write as _;
use std::time::Duration;

// ---------------------------------------------------------------------------------------
// Columns

/// The downstream protocol of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Down {
    /// HTTP/1.1 in plaintext.
    H1,
    /// HTTP/2 in plaintext with prior knowledge.
    H2c,
    /// HTTP/1.1 over TLS (ALPN `http/1.1`).
    H1Tls,
    /// HTTP/2 over TLS (ALPN `h2`).
    H2Tls,
}

impl Down {
    pub const ALL: [Down; 4] = [Down::H1, Down::H2c, Down::H1Tls, Down::H2Tls];

    pub fn h2(self) -> bool {
        matches!(self, Down::H2c | Down::H2Tls)
    }

    pub fn tls(self) -> bool {
        matches!(self, Down::H1Tls | Down::H2Tls)
    }

    pub fn label(self) -> &'static str {
        match self {
            Down::H1 => "http/1.1",
            Down::H2c => "h2c",
            Down::H1Tls => "http/1.1+tls",
            Down::H2Tls => "h2+tls",
        }
    }
}

/// The upstream protocol of a column: which origin (and cluster `protocol`) serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Up {
    H1,
    H2,
}

impl Up {
    pub const ALL: [Up; 2] = [Up::H1, Up::H2];

    /// The suffix of listener and cluster names for this upstream (`a-h1`, `plain-h2`).
    pub fn suffix(self) -> &'static str {
        match self {
            Up::H1 => "h1",
            Up::H2 => "h2",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Up::H1 => "http/1.1 origin",
            Up::H2 => "h2 origin",
        }
    }
}

/// The listener a column's requests go to: plaintext or TLS, routing to this upstream.
pub fn listener_name(down: Down, up: Up) -> String {
    let kind = if down.tls() { "tls" } else { "plain" };
    format!("{kind}-{}", up.suffix())
}

/// One of the two origins of each upstream protocol (routes send to `a-*` by default and to
/// `b-*` when a routing rule picks the other).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    A,
    B,
}

impl Which {
    pub fn name(self) -> &'static str {
        match self {
            Which::A => "a",
            Which::B => "b",
        }
    }
}

// ---------------------------------------------------------------------------------------
// Requests

/// A request body.
#[derive(Debug, Clone)]
pub enum Body {
    Empty,
    /// With a declared length (`Content-Length`, also on HTTP/2).
    Sized(Vec<u8>),
    /// Without a declared length: chunked on HTTP/1.1, DATA frames on HTTP/2.
    Streamed(Vec<u8>),
}

/// One request, written by each protocol's client in its own form.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: &'static str,
    /// Origin-form target (path and query); for `CONNECT`, the authority.
    pub target: String,
    /// `Host` / `:authority`; `None` sends neither.
    pub authority: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Body,
    /// Trailer fields (the HTTP/1.1 body is then chunked).
    pub trailers: Vec<(String, String)>,
    /// On TLS columns, present the client certificate (mTLS identity).
    pub client_cert: bool,
}

/// The authority requests carry unless a row says otherwise.
pub const AUTHORITY: &str = "ringside.test";

impl Req {
    pub fn new(method: &'static str, target: impl Into<String>) -> Req {
        Req {
            method,
            target: target.into(),
            authority: Some(AUTHORITY.to_string()),
            headers: Vec::new(),
            body: Body::Empty,
            trailers: Vec::new(),
            client_cert: false,
        }
    }

    pub fn get(target: impl Into<String>) -> Req {
        Req::new("GET", target)
    }

    pub fn post(target: impl Into<String>) -> Req {
        Req::new("POST", target)
    }

    /// A unary gRPC call: `POST`, `content-type: application/grpc`, `te: trailers`, one
    /// length-prefixed message.
    pub fn grpc(target: impl Into<String>) -> Req {
        Req::post(target)
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .sized(crate::tools::grpc_frame(b"hi"))
    }

    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn authority(mut self, authority: &str) -> Req {
        self.authority = Some(authority.to_string());
        self
    }

    /// Neither `Host` nor `:authority`.
    pub fn no_authority(mut self) -> Req {
        self.authority = None;
        self
    }

    pub fn sized(mut self, body: impl Into<Vec<u8>>) -> Req {
        self.body = Body::Sized(body.into());
        self
    }

    pub fn streamed(mut self, body: impl Into<Vec<u8>>) -> Req {
        self.body = Body::Streamed(body.into());
        self
    }

    pub fn trailer(mut self, name: &str, value: &str) -> Req {
        self.trailers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn client_cert(mut self) -> Req {
        self.client_cert = true;
        self
    }

    fn body_bytes(&self) -> &[u8] {
        match &self.body {
            Body::Empty => &[],
            Body::Sized(b) | Body::Streamed(b) => b,
        }
    }

    /// The HTTP/1.1 bytes of this request.
    pub fn to_h1(&self, cell: &str) -> Vec<u8> {
        let mut head = format!(
            "{} {} HTTP/1.1\r\n",
            self.method,
            self.target.replace("$CELL", cell)
        );
        if let Some(a) = &self.authority {
            let _ = write!(head, "Host: {a}\r\n");
        }
        for (n, v) in &self.headers {
            let _ = write!(head, "{n}: {v}\r\n");
        }
        let _ = write!(head, "x-cell: {cell}\r\n");
        let chunked = matches!(self.body, Body::Streamed(_)) || !self.trailers.is_empty();
        let body = self.body_bytes();
        if chunked {
            head.push_str("Transfer-Encoding: chunked\r\n");
        } else if let Body::Sized(b) = &self.body {
            let _ = write!(head, "Content-Length: {}\r\n", b.len());
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        if chunked {
            for chunk in body.chunks(1000) {
                out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                out.extend_from_slice(chunk);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n");
            for (n, v) in &self.trailers {
                out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
            }
            out.extend_from_slice(b"\r\n");
        } else {
            out.extend_from_slice(body);
        }
        out
    }
}

/// What a client sends in one protocol.
#[derive(Debug, Clone)]
pub enum Form {
    Req(Req),
    /// These bytes, as they are, on an HTTP/1.1 connection (`$CELL` is replaced by the cell
    /// id). For what no well-behaved client writes.
    Raw(String),
    /// These bytes, and then nothing: a request head that never ends.
    Stall(String),
    /// The behaviour does not exist in this protocol; the reason is printed in the matrix.
    NotApplicable(&'static str),
}

impl From<Req> for Form {
    fn from(r: Req) -> Form {
        Form::Req(r)
    }
}

/// What the client does in a cell.
#[derive(Debug, Clone)]
pub enum Traffic {
    /// One request (and the follow-ups `Expect` asks for); HTTP/1.1 and HTTP/2 clients may
    /// send different forms.
    One { h1: Form, h2: Form },
    /// The same request this many times, one after the other on one connection, with this
    /// pause between a response and the next request.
    Repeat(Req, usize, Duration),
}

// ---------------------------------------------------------------------------------------
// Expectations

/// A value a check compares with.
#[derive(Debug, Clone)]
pub enum V {
    Lit(String),
    /// The client's IP address.
    ClientIp,
    /// The client's address and port (its socket's local address).
    ClientAddr,
    /// `http` on plaintext columns, `https` on TLS columns.
    Scheme,
}

pub fn lit(s: &str) -> V {
    V::Lit(s.to_string())
}

/// A check on a list of header (or trailer) fields. Values are compared as lists: every
/// field of the name, each split at commas (so `a, b` in one field equals two fields `a` and
/// `b`: RFC 9110 §5.3).
#[derive(Debug, Clone)]
pub enum Check {
    /// Exactly these values, in order.
    Is(&'static str, Vec<V>),
    Absent(&'static str),
    /// No value (comma-split) of the field is this one (the field itself may be present).
    Without(&'static str, &'static str),
    /// One field whose value is a UUID (8-4-4-4-12 hex digits).
    Uuid(&'static str),
    /// One field of this shape: `#` stands for one hex digit, anything else for itself.
    Shape(&'static str, &'static str),
    /// Present, and the same values as the other field.
    SameAs(&'static str, &'static str),
    /// The first check on plaintext columns, the second on TLS columns.
    ByTls(Box<Check>, Box<Check>),
    /// One field, an IMF-fixdate (RFC 9110 §5.6.7): this one, or (`None`) now, give or take
    /// ten seconds.
    Date(&'static str, Option<&'static str>),
}

pub fn is(name: &'static str, values: &[V]) -> Check {
    Check::Is(name, values.to_vec())
}

pub fn is_lit(name: &'static str, value: &str) -> Check {
    Check::Is(name, vec![lit(value)])
}

pub fn absent(name: &'static str) -> Check {
    Check::Absent(name)
}

pub fn by_tls(plain: Check, tls: Check) -> Check {
    Check::ByTls(Box::new(plain), Box::new(tls))
}

/// A check on a response body.
#[derive(Debug, Clone)]
pub enum BodyCheck {
    Empty,
    Is(Vec<u8>),
    /// A short one-line text (the proxy's own error bodies).
    ShortText,
}

/// Which origin must have received the request.
#[derive(Debug, Clone, Copy)]
pub enum Pick {
    Is(Which),
    /// The first on plaintext columns, the second on TLS columns.
    ByTls(Which, Which),
}

/// What the origin must have received.
#[derive(Debug, Clone)]
pub struct Got {
    pub pick: Pick,
    pub method: Option<&'static str>,
    pub target: Option<String>,
    pub headers: Vec<Check>,
    pub body: Option<Vec<u8>>,
    pub trailers: Vec<Check>,
}

impl Got {
    pub fn a() -> Got {
        Got::by(Pick::Is(Which::A))
    }

    pub fn b() -> Got {
        Got::by(Pick::Is(Which::B))
    }

    pub fn by(pick: Pick) -> Got {
        Got {
            pick,
            method: None,
            target: None,
            headers: Vec::new(),
            body: None,
            trailers: Vec::new(),
        }
    }

    pub fn method(mut self, m: &'static str) -> Got {
        self.method = Some(m);
        self
    }

    pub fn target(mut self, t: impl Into<String>) -> Got {
        self.target = Some(t.into());
        self
    }

    pub fn headers(mut self, checks: Vec<Check>) -> Got {
        self.headers.extend(checks);
        self
    }

    pub fn body(mut self, b: impl Into<Vec<u8>>) -> Got {
        self.body = Some(b.into());
        self
    }

    pub fn trailers(mut self, checks: Vec<Check>) -> Got {
        self.trailers.extend(checks);
        self
    }
}

/// What the origins must have seen of this cell's requests.
#[derive(Debug, Clone)]
pub enum OriginCheck {
    /// Not looked at.
    Any,
    /// No origin received anything of the request (not even its head on HTTP/2).
    Untouched,
    /// No origin received the whole request (its head may have gone ahead of the body).
    NoCompleteRequest,
    /// This origin received it (exactly once), like this.
    Got(Got),
    /// The origins received it once per element, each time like that element: the
    /// elements naming one origin are that origin's receipts in order (a request that was
    /// retried, or mirrored to another origin). Waits a little for receipts that may come
    /// after the answer (a mirrored copy).
    Tries(Vec<Got>),
}

/// What must happen in a cell.
#[derive(Debug, Clone)]
pub struct Expect {
    /// The response status (200 for gRPC answers).
    pub status: u16,
    /// A gRPC trailers-only answer with this `grpc-status`.
    pub grpc_status: Option<u8>,
    pub body: Option<BodyCheck>,
    pub headers: Vec<Check>,
    pub trailers: Vec<Check>,
    pub origin: OriginCheck,
    /// The connection serves another request afterwards (`GET /direct/200` gets `200
    /// hello`), which also shows nothing stray followed the response.
    pub reusable: bool,
    /// The proxy closes the connection after the response (HTTP/1.1).
    pub closes: bool,
    /// The response did not come sooner (a timeout, not an immediate answer).
    pub min_elapsed: Option<Duration>,
    /// For [`Traffic::Repeat`]: origins a and b answered between this many requests each,
    /// `[a, b]` (counted by the response's `x-origin`).
    pub split: Option<[(usize, usize); 2]>,
}

impl Expect {
    pub fn status(status: u16) -> Expect {
        Expect {
            status,
            grpc_status: None,
            body: None,
            headers: Vec::new(),
            trailers: Vec::new(),
            origin: OriginCheck::Any,
            reusable: false,
            closes: false,
            min_elapsed: None,
            split: None,
        }
    }

    /// A gRPC answer from the proxy itself: HTTP 200, trailers-only with `grpc-status`, and
    /// nothing sent to any origin.
    pub fn grpc(code: u8) -> Expect {
        Expect {
            grpc_status: Some(code),
            ..Expect::status(200)
        }
    }

    /// An answer of the proxy itself: a short text body, nothing sent to any origin.
    pub fn own(status: u16) -> Expect {
        Expect::status(status).short_text().untouched()
    }

    pub fn short_text(mut self) -> Expect {
        self.body = Some(BodyCheck::ShortText);
        self
    }

    pub fn body(mut self, b: &str) -> Expect {
        self.body = Some(BodyCheck::Is(b.as_bytes().to_vec()));
        self
    }

    pub fn no_body(mut self) -> Expect {
        self.body = Some(BodyCheck::Empty);
        self
    }

    pub fn headers(mut self, checks: Vec<Check>) -> Expect {
        self.headers.extend(checks);
        self
    }

    pub fn trailers(mut self, checks: Vec<Check>) -> Expect {
        self.trailers.extend(checks);
        self
    }

    pub fn untouched(mut self) -> Expect {
        self.origin = OriginCheck::Untouched;
        self
    }

    pub fn no_complete_request(mut self) -> Expect {
        self.origin = OriginCheck::NoCompleteRequest;
        self
    }

    /// The request reached the origins once per try, each like its element (see
    /// [`OriginCheck::Tries`]).
    pub fn tries(mut self, tries: Vec<Got>) -> Expect {
        self.origin = OriginCheck::Tries(tries);
        self
    }

    pub fn got(mut self, got: Got) -> Expect {
        self.origin = OriginCheck::Got(got);
        self
    }

    pub fn reusable(mut self) -> Expect {
        self.reusable = true;
        self
    }

    pub fn closes(mut self) -> Expect {
        self.closes = true;
        self
    }

    pub fn not_before(mut self, d: Duration) -> Expect {
        self.min_elapsed = Some(d);
        self
    }

    /// Each of origins a and b answered `min` to `max` of the repeated requests.
    pub fn split(mut self, min: usize, max: usize) -> Expect {
        self.split = Some([(min, max), (min, max)]);
        self
    }

    /// Origin a answered exactly `a` of the repeated requests and origin b exactly `b`.
    pub fn counts(mut self, a: usize, b: usize) -> Expect {
        self.split = Some([(a, a), (b, b)]);
        self
    }
}

// ---------------------------------------------------------------------------------------
// Rows

/// Which proxy (configuration) a row runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// The configuration every released key covers.
    Core,
    /// The configuration with the header-edit keys (refused by a proxy that lacks them: then
    /// the rows on it fail, and the others still run).
    Edits,
    /// A gateway (`role = "gateway"`) with consumers, API-key routes and keyed rate limits.
    Consumers,
    /// `role = "gateway"` with the gateway's route keys (CORS, rewrites, redirects, address
    /// filters, route body limits); refused like `Edits` by a proxy that lacks them.
    Gateway,
}

/// One behaviour.
#[derive(Debug, Clone)]
pub struct Row {
    pub name: &'static str,
    pub setup: Setup,
    /// The configuration the row exercises, as it is written in the file.
    pub config: &'static str,
    pub send: Traffic,
    pub expect: Expect,
    /// When set, the row exists only for this upstream; the other column is not applicable
    /// for the reason given.
    pub only_up: Option<(Up, &'static str)>,
    /// A request sent before the row's own, on a connection of its own, under another cell
    /// id (so the origins' records of the cell are the row's request alone); its answer is
    /// not checked. For behaviours that depend on what came before (a token bucket, a
    /// circuit breaker's places).
    pub before: Option<Before>,
}

/// What a row sends before its own request.
#[derive(Debug, Clone)]
pub enum Before {
    /// This request, answered before the row's request is sent.
    Sent(Req),
    /// This request in the background: the row's request is sent once an origin has
    /// received it (so it is in flight), and the cell ends when it has been answered.
    InFlight(Req),
}

/// A row on the core configuration; `send` and `expect` follow.
pub fn row(name: &'static str, config: &'static str) -> Row {
    Row {
        name,
        setup: Setup::Core,
        config,
        send: Traffic::One {
            h1: Form::NotApplicable("no request"),
            h2: Form::NotApplicable("no request"),
        },
        expect: Expect::status(0),
        only_up: None,
        before: None,
    }
}

impl Row {
    /// The same request for every protocol.
    pub fn send(mut self, req: Req) -> Row {
        self.send = Traffic::One {
            h1: Form::Req(req.clone()),
            h2: Form::Req(req),
        };
        self
    }

    /// Different forms for HTTP/1.1 and HTTP/2 clients.
    pub fn send_by_proto(mut self, h1: impl Into<Form>, h2: impl Into<Form>) -> Row {
        self.send = Traffic::One {
            h1: h1.into(),
            h2: h2.into(),
        };
        self
    }

    pub fn repeat(mut self, req: Req, n: usize) -> Row {
        self.send = Traffic::Repeat(req, n, Duration::ZERO);
        self
    }

    /// For [`Row::repeat`]: pause this long between a response and the next request.
    pub fn pace(mut self, pause: Duration) -> Row {
        if let Traffic::Repeat(_, _, p) = &mut self.send {
            *p = pause;
        }
        self
    }

    pub fn expect(mut self, e: Expect) -> Row {
        self.expect = e;
        self
    }

    pub fn on(mut self, setup: Setup) -> Row {
        self.setup = setup;
        self
    }

    /// Sends `req` first, and the row's request once it is answered.
    pub fn after(mut self, req: Req) -> Row {
        self.before = Some(Before::Sent(req));
        self
    }

    /// Sends `req` in the background first, and the row's request while it is in flight.
    pub fn during(mut self, req: Req) -> Row {
        self.before = Some(Before::InFlight(req));
        self
    }

    pub fn only_up(mut self, up: Up, why: &'static str) -> Row {
        self.only_up = Some((up, why));
        self
    }
}
