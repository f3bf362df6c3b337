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
//! Clients: HTTP/1.1 is written and read by hand over a std socket (plain or rustls), so
//! malformed bytes can be sent and every byte of the response is seen; HTTP/2 is the `h2`
//! crate over monoio's poll-io socket (plain, or tokio-rustls with ALPN `h2`). Every wait is
//! bounded by [`WAIT`].

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::h2origin::{send_all, H2Origin, H2Reply, H2Request};
use crate::{read_retrying, Driver, Origin, Proxy, Reply, Request, WAIT};

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
        let mut head = format!("{} {} HTTP/1.1\r\n", self.method, self.target);
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
    /// The same request this many times, one after the other on one connection.
    Repeat(Req, usize),
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
    /// Present, and the same values as the other field.
    SameAs(&'static str, &'static str),
    /// The first check on plaintext columns, the second on TLS columns.
    ByTls(Box<Check>, Box<Check>),
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
    /// For [`Traffic::Repeat`]: each of origins a and b answered between this many requests
    /// (counted by the response's `x-origin`).
    pub split: Option<(usize, usize)>,
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

    pub fn split(mut self, min: usize, max: usize) -> Expect {
        self.split = Some((min, max));
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
        self.send = Traffic::Repeat(req, n);
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

    pub fn only_up(mut self, up: Up, why: &'static str) -> Row {
        self.only_up = Some((up, why));
        self
    }
}

// ---------------------------------------------------------------------------------------
// Origin scripts

/// What an origin answers, written once for both origin protocols.
#[derive(Debug, Clone, Default)]
pub struct Script {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Fields only an HTTP/1.1 origin sends (connection-specific ones; HTTP/2 has none).
    pub h1_only: Vec<(String, String)>,
    /// The body (for a HEAD request, only its length is sent).
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
    pub delay: Duration,
    /// Close the connection (HTTP/1.1) or reset the stream (HTTP/2) instead of answering.
    pub reset: bool,
}

impl Script {
    fn no_body(&self, method: &str) -> bool {
        method == "HEAD" || self.status == 204 || self.status == 304
    }

    /// As the HTTP/1.1 origin answers it.
    pub fn to_h1(&self, method: &str) -> Reply {
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
        if self.reset {
            return Reply::Close;
        }
        let reason = match self.status {
            200 => "OK",
            304 => "Not Modified",
            _ => "Scripted",
        };
        let mut out = format!("HTTP/1.1 {} {reason}\r\n", self.status);
        for (n, v) in self.headers.iter().chain(&self.h1_only) {
            let _ = write!(out, "{n}: {v}\r\n");
        }
        let mut out = if !self.trailers.is_empty() {
            out.push_str("Transfer-Encoding: chunked\r\n\r\n");
            let mut out = out.into_bytes();
            if !self.body.is_empty() {
                out.extend_from_slice(format!("{:x}\r\n", self.body.len()).as_bytes());
                out.extend_from_slice(&self.body);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n");
            for (n, v) in &self.trailers {
                out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
            }
            out
        } else if self.status == 204 || self.status == 304 {
            out.into_bytes()
        } else {
            let _ = write!(out, "Content-Length: {}\r\n\r\n", self.body.len());
            let mut out = out.into_bytes();
            if method != "HEAD" {
                out.extend_from_slice(&self.body);
            }
            return Reply::Send(out);
        };
        out.extend_from_slice(b"\r\n");
        Reply::Send(out)
    }

    /// As the HTTP/2 origin answers it.
    pub fn to_h2(&self, method: &str) -> H2Reply {
        let mut headers: Vec<(String, String)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .collect();
        if method == "HEAD" {
            headers.push(("content-length".into(), self.body.len().to_string()));
        }
        H2Reply {
            status: self.status,
            headers,
            body: if self.no_body(method) {
                Vec::new()
            } else {
                self.body.clone()
            },
            trailers: self.trailers.clone(),
            delay: self.delay,
            reset: self.reset,
        }
    }
}

// ---------------------------------------------------------------------------------------
// The world of one driver

/// What an origin recorded, whichever its protocol.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
    pub complete: bool,
}

impl Seen {
    fn from_h1(r: &Request) -> Seen {
        Seen {
            method: r.method.clone(),
            target: r.target.clone(),
            headers: r.headers.clone(),
            body: r.body.clone(),
            trailers: chunked_trailers(&r.raw_body),
            complete: true,
        }
    }

    fn from_h2(r: &H2Request) -> Seen {
        let mut headers = r.headers.clone();
        if !r.authority.is_empty() {
            // `:authority`, checked as `host` like the Host field of HTTP/1.1 origins.
            headers.insert(0, ("host".into(), r.authority.clone()));
        }
        Seen {
            method: r.method.clone(),
            target: r.path.clone(),
            headers,
            body: r.body.clone(),
            trailers: r.trailers.clone(),
            complete: r.complete,
        }
    }

    fn cell(&self) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("x-cell"))
            .map(|(_, v)| v.as_str())
    }
}

/// The trailer fields of a raw chunked body (empty when it is not chunked).
fn chunked_trailers(raw: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(raw);
    let mut rest: &str = &text;
    loop {
        let Some((line, after)) = rest.split_once("\r\n") else {
            return Vec::new();
        };
        let size = line.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size, 16) else {
            return Vec::new();
        };
        if size == 0 {
            return after
                .split("\r\n")
                .take_while(|l| !l.is_empty())
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
                .collect();
        }
        let Some(next) = after.get(size + 2..) else {
            return Vec::new();
        };
        rest = next;
    }
}

/// Certificates for the TLS columns.
pub struct TlsClients {
    /// ALPN `http/1.1`, and with the client certificate.
    pub h1: Arc<rustls::ClientConfig>,
    pub h1_cert: Arc<rustls::ClientConfig>,
    /// ALPN `h2`, and with the client certificate.
    pub h2: Arc<rustls::ClientConfig>,
    pub h2_cert: Arc<rustls::ClientConfig>,
    /// The name the proxy's certificate carries.
    pub server_name: &'static str,
}

impl TlsClients {
    /// Trusts `ca`; `cert` is the client certificate offered when a request asks for it.
    pub fn new(ca: &Path, cert: (&Path, &Path), server_name: &'static str) -> TlsClients {
        let config = |alpn: &[u8], with_cert: bool| {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca).unwrap() {
                roots.add(c.unwrap()).unwrap();
            }
            let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
            let mut c = if with_cert {
                let chain: Vec<_> = CertificateDer::pem_file_iter(cert.0)
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
                let key = PrivateKeyDer::from_pem_file(cert.1).unwrap();
                builder.with_client_auth_cert(chain, key).unwrap()
            } else {
                builder.with_no_client_auth()
            };
            c.alpn_protocols = vec![alpn.to_vec()];
            Arc::new(c)
        };
        TlsClients {
            h1: config(b"http/1.1", false),
            h1_cert: config(b"http/1.1", true),
            h2: config(b"h2", false),
            h2_cert: config(b"h2", true),
            server_name,
        }
    }
}

/// The origins, proxies and client settings one driver's table runs against.
pub struct World {
    pub driver: Driver,
    pub a_h1: Origin,
    pub b_h1: Origin,
    pub a_h2: H2Origin,
    pub b_h2: H2Origin,
    /// The proxy of each setup, or why its configuration was refused.
    pub proxies: Vec<(Setup, Result<Proxy, String>)>,
    pub tls: TlsClients,
}

impl World {
    /// Starts the four origins, each answering with `script(origin name, request target)`.
    pub fn origins(script: fn(&str, &str) -> Script) -> (Origin, Origin, H2Origin, H2Origin) {
        let h1 = |name: &'static str| {
            Origin::start(move |r: &Request| script(name, &r.target).to_h1(&r.method))
        };
        let h2 = |name: &'static str| {
            H2Origin::start(move |r: &H2Request| script(name, &r.path).to_h2(&r.method))
        };
        (h1("a"), h1("b"), h2("a"), h2("b"))
    }

    /// Starts a proxy on `text` (see [`crate::full_config`]); a configuration the proxy
    /// refuses is returned as the error text, so the rows on it fail and the others run.
    pub fn start_proxy(driver: Driver, text: &str) -> Result<Proxy, String> {
        let full = crate::full_config(driver, text);
        let config = ringside_config::parse(&full).map_err(|e| e.to_string())?;
        match ringside_engine::start(config, ringside_proxy::stack::stacks()) {
            Ok(handle) => Ok(Proxy { handle, driver }),
            Err(e) => Err(format!("ringside did not start: {e}")),
        }
    }

    fn proxy(&self, setup: Setup) -> Result<&Proxy, &str> {
        match self.proxies.iter().find(|(s, _)| *s == setup) {
            Some((_, Ok(p))) => Ok(p),
            Some((_, Err(e))) => Err(e),
            None => Err("no proxy for this setup"),
        }
    }

    /// Every record of this cell, from every origin: (which, upstream, seen).
    fn seen(&self, cell: &str) -> Vec<(Which, Up, Seen)> {
        let mut out = Vec::new();
        for (which, o) in [(Which::A, &self.a_h1), (Which::B, &self.b_h1)] {
            for r in o.requests() {
                let s = Seen::from_h1(&r);
                if s.cell() == Some(cell) {
                    out.push((which, Up::H1, s));
                }
            }
        }
        for (which, o) in [(Which::A, &self.a_h2), (Which::B, &self.b_h2)] {
            for r in o.requests() {
                let s = Seen::from_h2(&r);
                if s.cell() == Some(cell) {
                    out.push((which, Up::H2, s));
                }
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------------
// Responses and clients

/// One response as a client read it.
#[derive(Debug, Clone, Default)]
pub struct Resp {
    pub status: u16,
    /// Header fields (names lower-case).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
    /// The head as received (HTTP/1.1), or a rendering of it (HTTP/2), for messages.
    pub head: String,
}

impl Resp {
    /// One line: the head's lines joined with ` | `, then the start of the body.
    fn describe(&self) -> String {
        let body = String::from_utf8_lossy(&self.body);
        let body: String = body.chars().take(200).collect();
        let head: Vec<&str> = self.head.lines().filter(|l| !l.trim().is_empty()).collect();
        format!("[{}] body {body:?}", head.join(" | "))
    }
}

fn header_values(fields: &[(String, String)], name: &str) -> Vec<String> {
    fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.split(','))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

enum H1Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl H1Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            H1Stream::Plain(s) => s,
            H1Stream::Tls(s) => s.get_ref(),
        }
    }
}

impl Read for H1Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            H1Stream::Plain(s) => read_retrying(s, buf),
            H1Stream::Tls(s) => read_retrying(s.as_mut(), buf),
        }
    }
}

impl Write for H1Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            H1Stream::Plain(s) => s.write(buf),
            H1Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            H1Stream::Plain(s) => s.flush(),
            H1Stream::Tls(s) => s.flush(),
        }
    }
}

/// An HTTP/1.1 client connection (plain or TLS) that writes exact bytes and reads responses
/// with their trailers.
pub struct H1Conn {
    s: H1Stream,
    buf: Vec<u8>,
    pub local: SocketAddr,
}

impl H1Conn {
    pub fn connect(
        addr: SocketAddr,
        tls: Option<(Arc<rustls::ClientConfig>, &'static str)>,
    ) -> Result<H1Conn, String> {
        let tcp =
            TcpStream::connect_timeout(&addr, WAIT).map_err(|e| format!("connect {addr}: {e}"))?;
        tcp.set_read_timeout(Some(WAIT)).unwrap();
        tcp.set_write_timeout(Some(WAIT)).unwrap();
        let local = tcp.local_addr().unwrap();
        let s = match tls {
            None => H1Stream::Plain(tcp),
            Some((config, name)) => {
                let conn = rustls::ClientConnection::new(
                    config,
                    ServerName::try_from(name.to_string()).unwrap(),
                )
                .unwrap();
                let mut s = rustls::StreamOwned::new(conn, tcp);
                while s.conn.is_handshaking() {
                    s.conn
                        .complete_io(&mut s.sock)
                        .map_err(|e| format!("TLS handshake: {e}"))?;
                }
                if s.conn.alpn_protocol() != Some(b"http/1.1") {
                    return Err(format!(
                        "ALPN chose {:?}, not http/1.1",
                        s.conn.alpn_protocol().map(String::from_utf8_lossy)
                    ));
                }
                H1Stream::Tls(Box::new(s))
            }
        };
        Ok(H1Conn {
            s,
            buf: Vec::new(),
            local,
        })
    }

    pub fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.s
            .write_all(bytes)
            .and_then(|()| self.s.flush())
            .map_err(|e| format!("send: {e}"))
    }

    fn fill(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.s.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    fn take(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill()? {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("closed after {} of {n} bytes", self.buf.len()),
                ));
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    fn line(&mut self) -> io::Result<String> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let l = self.take(i + 2)?;
                return Ok(String::from_utf8_lossy(&l[..i]).into_owned());
            }
            if !self.fill()? {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed inside a chunked body",
                ));
            }
        }
    }

    /// Reads one final response (interim 1xx ones are skipped) to a request with `method`.
    pub fn read_response(&mut self, method: &str) -> Result<Resp, String> {
        self.read_response_inner(method).map_err(|e| {
            format!(
                "no complete response: {e}; bytes left unread: {:?}",
                String::from_utf8_lossy(&self.buf)
            )
        })
    }

    fn read_response_inner(&mut self, method: &str) -> io::Result<Resp> {
        loop {
            let end = loop {
                if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                if !self.fill()? {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "closed before a response head",
                    ));
                }
            };
            let head: Vec<u8> = self.buf.drain(..end).collect();
            let head = String::from_utf8_lossy(&head).into_owned();
            let mut lines = head.split("\r\n");
            let status_line = lines.next().unwrap_or("");
            let status: u16 = status_line
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("bad status line {status_line:?}"),
                    )
                })?;
            if (100..200).contains(&status) && status != 101 {
                continue;
            }
            let headers: Vec<(String, String)> = lines
                .filter(|l| !l.is_empty())
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_string()))
                .collect();
            let mut resp = Resp {
                status,
                head,
                headers,
                ..Resp::default()
            };
            if method == "HEAD" || status == 204 || status == 304 || status == 101 {
                return Ok(resp);
            }
            let chunked = header_values(&resp.headers, "transfer-encoding")
                .iter()
                .any(|v| v.eq_ignore_ascii_case("chunked"));
            if chunked {
                loop {
                    let line = self.line()?;
                    let size = line.split(';').next().unwrap_or("").trim();
                    let size = usize::from_str_radix(size, 16).map_err(|_| {
                        io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("bad chunk size {line:?}"),
                        )
                    })?;
                    if size == 0 {
                        loop {
                            let t = self.line()?;
                            if t.is_empty() {
                                break;
                            }
                            if let Some((n, v)) = t.split_once(':') {
                                resp.trailers
                                    .push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
                            }
                        }
                        return Ok(resp);
                    }
                    let data = self.take(size + 2)?;
                    resp.body.extend_from_slice(&data[..size]);
                }
            }
            if let Some(n) = resp
                .headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .map(|(_, v)| v.clone())
            {
                let n: usize = n.parse().map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidData, "bad content-length")
                })?;
                resp.body = self.take(n)?;
                return Ok(resp);
            }
            while self.fill()? {}
            resp.body = std::mem::take(&mut self.buf);
            return Ok(resp);
        }
    }

    /// Whether the peer closes within `timeout` without sending anything more.
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        self.s.tcp().set_read_timeout(Some(timeout)).unwrap();
        let mut chunk = [0u8; 4096];
        let r = self.s.read(&mut chunk);
        let _ = self.s.tcp().set_read_timeout(Some(WAIT));
        match r {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
        }
    }
}

/// An HTTP/2 client connection (h2c or TLS with ALPN h2), on the current monoio runtime.
pub struct H2Conn {
    send: h2::client::SendRequest<Bytes>,
    pub local: SocketAddr,
    scheme: &'static str,
}

impl H2Conn {
    pub async fn connect(
        addr: SocketAddr,
        tls: Option<(Arc<rustls::ClientConfig>, &'static str)>,
    ) -> Result<H2Conn, String> {
        let tcp = monoio::time::timeout(WAIT, monoio::net::TcpStream::connect_addr(addr))
            .await
            .map_err(|_| format!("connect {addr}: timed out"))?
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let local = tcp.local_addr().unwrap();
        let io = tcp
            .try_into_poll_io()
            .map_err(|(e, _)| format!("poll io: {e}"))?;
        let builder = h2::client::Builder::new();
        let (send, scheme) = match tls {
            None => {
                let (send, conn) = monoio::time::timeout(WAIT, builder.handshake::<_, Bytes>(io))
                    .await
                    .map_err(|_| "h2 handshake timed out".to_string())?
                    .map_err(|e| format!("h2 handshake: {e}"))?;
                monoio::spawn(async move {
                    let _ = conn.await;
                });
                (send, "http")
            }
            Some((config, name)) => {
                let connector = tokio_rustls::TlsConnector::from(config);
                let name = ServerName::try_from(name.to_string()).unwrap();
                let stream = monoio::time::timeout(WAIT, connector.connect(name, io))
                    .await
                    .map_err(|_| "TLS handshake timed out".to_string())?
                    .map_err(|e| format!("TLS handshake: {e}"))?;
                if stream.get_ref().1.alpn_protocol() != Some(b"h2") {
                    return Err(format!(
                        "ALPN chose {:?}, not h2",
                        stream
                            .get_ref()
                            .1
                            .alpn_protocol()
                            .map(String::from_utf8_lossy)
                    ));
                }
                let (send, conn) =
                    monoio::time::timeout(WAIT, builder.handshake::<_, Bytes>(stream))
                        .await
                        .map_err(|_| "h2 handshake timed out".to_string())?
                        .map_err(|e| format!("h2 handshake: {e}"))?;
                monoio::spawn(async move {
                    let _ = conn.await;
                });
                (send, "https")
            }
        };
        Ok(H2Conn {
            send,
            local,
            scheme,
        })
    }

    /// Sends `req` on a new stream and reads the whole response (body and trailers).
    pub async fn request(&self, req: &Req, cell: &str) -> Result<Resp, String> {
        let uri = if req.method == "CONNECT" {
            req.target.clone()
        } else if let Some(a) = &req.authority {
            format!("{}://{a}{}", self.scheme, req.target)
        } else {
            req.target.clone()
        };
        let mut b = http::Request::builder().method(req.method).uri(uri);
        if req.authority.is_none() {
            // A relative URI: the h2 crate then sends `:scheme` and `:path` and no
            // `:authority` (what it does when forwarding an HTTP/1 request).
            b = b.version(http::Version::HTTP_11);
        }
        for (n, v) in &req.headers {
            b = b.header(n.to_ascii_lowercase(), v.as_str());
        }
        b = b.header("x-cell", cell);
        if let Body::Sized(body) = &req.body {
            b = b.header("content-length", body.len());
        }
        let http_req = b
            .body(())
            .map_err(|e| format!("building the request: {e}"))?;
        let mut send = monoio::time::timeout(WAIT, self.send.clone().ready())
            .await
            .map_err(|_| "no stream available".to_string())?
            .map_err(|e| format!("connection: {e}"))?;
        let body = req.body_bytes();
        let end = body.is_empty() && req.trailers.is_empty();
        let (resp, mut stream) = send
            .send_request(http_req, end)
            .map_err(|e| format!("send_request: {e}"))?;
        if !end {
            // Failures here are not final: a server that answers early (413) may reset the
            // stream while the body is still going; its response tells.
            let mut ok = true;
            let parts: Vec<&[u8]> = match &req.body {
                Body::Streamed(b) => b.chunks(1000).collect(),
                _ => vec![body],
            };
            let n = parts.len();
            for (i, part) in parts.into_iter().enumerate() {
                let last = i + 1 == n && req.trailers.is_empty();
                if !part.is_empty()
                    && send_all(&mut stream, Bytes::copy_from_slice(part), last)
                        .await
                        .is_err()
                {
                    ok = false;
                    break;
                }
            }
            if ok && !req.trailers.is_empty() {
                let mut map = http::HeaderMap::new();
                for (n, v) in &req.trailers {
                    map.append(
                        http::HeaderName::from_bytes(n.to_ascii_lowercase().as_bytes()).unwrap(),
                        http::HeaderValue::from_str(v).unwrap(),
                    );
                }
                let _ = stream.send_trailers(map);
            }
        }
        let resp = monoio::time::timeout(WAIT, resp)
            .await
            .map_err(|_| "no response within the wait".to_string())?
            .map_err(|e| format!("stream failed before a response: {e}"))?;
        let (parts, mut rbody) = resp.into_parts();
        let headers: Vec<(String, String)> = parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut head = format!("HTTP/2 {}\n", parts.status.as_u16());
        for (n, v) in &headers {
            let _ = writeln!(head, "{n}: {v}");
        }
        let mut out = Resp {
            status: parts.status.as_u16(),
            headers,
            head,
            ..Resp::default()
        };
        loop {
            match monoio::time::timeout(WAIT, rbody.data()).await {
                Ok(Some(Ok(d))) => {
                    let _ = rbody.flow_control().release_capacity(d.len());
                    out.body.extend_from_slice(&d);
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    return Err(format!(
                        "response body failed: {e} (after {})",
                        out.describe()
                    ))
                }
                Err(_) => return Err(format!("response body stalled (after {})", out.describe())),
            }
        }
        match monoio::time::timeout(WAIT, rbody.trailers()).await {
            Ok(Ok(Some(t))) => {
                out.trailers = t
                    .iter()
                    .map(|(n, v)| {
                        (
                            n.as_str().to_string(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect();
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => return Err(format!("response trailers failed: {e}")),
            Err(_) => return Err("response trailers stalled".into()),
        }
        Ok(out)
    }
}

/// A runtime for the HTTP/2 client of one cell.
fn client_runtime() -> monoio::Runtime<monoio::time::TimeDriver<monoio::LegacyDriver>> {
    monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// Running a cell

/// What happened in a cell, for the checks.
struct Exchanged {
    resp: Result<Resp, String>,
    /// The follow-up request on the same connection (when the row asks whether it is
    /// reusable).
    follow: Option<Result<Resp, String>>,
    /// For repeated requests: every response.
    repeats: Vec<Result<Resp, String>>,
    local: SocketAddr,
    elapsed: Duration,
    closed: Option<bool>,
}

/// The request that shows a connection is still usable, and its expected answer.
fn follow_up() -> (Req, u16, &'static str) {
    (Req::get("/direct/200"), 200, "hello")
}

fn tls_for(
    world: &World,
    down: Down,
    cert: bool,
) -> Option<(Arc<rustls::ClientConfig>, &'static str)> {
    let t = &world.tls;
    let config = match (down, cert) {
        (Down::H1Tls, false) => t.h1.clone(),
        (Down::H1Tls, true) => t.h1_cert.clone(),
        (Down::H2Tls, false) => t.h2.clone(),
        (Down::H2Tls, true) => t.h2_cert.clone(),
        _ => return None,
    };
    Some((config, t.server_name))
}

fn exchange_h1(
    world: &World,
    addr: SocketAddr,
    down: Down,
    form: &Form,
    expect: &Expect,
    cell: &str,
) -> Result<Exchanged, String> {
    let (bytes, method, cert) = match form {
        Form::Req(r) => (r.to_h1(cell), r.method, r.client_cert),
        Form::Raw(s) | Form::Stall(s) => (s.replace("$CELL", cell).into_bytes(), "GET", false),
        Form::NotApplicable(_) => return Err("not applicable".into()),
    };
    let mut c = H1Conn::connect(addr, tls_for(world, down, cert))?;
    let started = Instant::now();
    // A proxy that answers early may close its reading side: the response still tells.
    let sent = c.send(&bytes);
    let resp = c.read_response(method).map_err(|e| match &sent {
        Err(s) => format!("{s}; {e}"),
        Ok(()) => e,
    });
    let elapsed = started.elapsed();
    let follow = if expect.reusable && resp.is_ok() {
        let (req, _, _) = follow_up();
        Some(
            c.send(&req.to_h1(cell))
                .and_then(|()| c.read_response(req.method)),
        )
    } else {
        None
    };
    let closed = (expect.closes && resp.is_ok()).then(|| c.closed_within(WAIT));
    Ok(Exchanged {
        resp,
        follow,
        repeats: Vec::new(),
        local: c.local,
        elapsed,
        closed,
    })
}

fn exchange_h2(
    world: &World,
    addr: SocketAddr,
    down: Down,
    req: &Req,
    expect: &Expect,
    cell: &str,
) -> Result<Exchanged, String> {
    let tls = tls_for(world, down, req.client_cert);
    let reusable = expect.reusable;
    client_runtime().block_on(async move {
        let c = H2Conn::connect(addr, tls).await?;
        let started = Instant::now();
        let resp = c.request(req, cell).await;
        let elapsed = started.elapsed();
        let follow = if reusable && resp.is_ok() {
            let (f, _, _) = follow_up();
            Some(c.request(&f, cell).await)
        } else {
            None
        };
        Ok(Exchanged {
            resp,
            follow,
            repeats: Vec::new(),
            local: c.local,
            elapsed,
            closed: None,
        })
    })
}

fn repeat(
    world: &World,
    addr: SocketAddr,
    down: Down,
    req: &Req,
    n: usize,
    cell: &str,
) -> Result<Exchanged, String> {
    let tls = tls_for(world, down, req.client_cert);
    let started = Instant::now();
    if down.h2() {
        return client_runtime().block_on(async move {
            let c = H2Conn::connect(addr, tls).await?;
            let mut repeats = Vec::with_capacity(n);
            for _ in 0..n {
                repeats.push(c.request(req, cell).await);
            }
            Ok(Exchanged {
                resp: Ok(Resp::default()),
                follow: None,
                repeats,
                local: c.local,
                elapsed: started.elapsed(),
                closed: None,
            })
        });
    }
    let mut c = H1Conn::connect(addr, tls)?;
    let bytes = req.to_h1(cell);
    let mut repeats = Vec::with_capacity(n);
    for _ in 0..n {
        let r = c.send(&bytes).and_then(|()| c.read_response(req.method));
        let failed = r.is_err();
        repeats.push(r);
        if failed {
            break;
        }
    }
    Ok(Exchanged {
        resp: Ok(Resp::default()),
        follow: None,
        repeats,
        local: c.local,
        elapsed: started.elapsed(),
        closed: None,
    })
}

/// A cell's outcome.
enum Verdict {
    Pass,
    NotApplicable(String),
    Fail(String),
}

fn render(v: &V, down: Down, local: SocketAddr) -> String {
    match v {
        V::Lit(s) => s.clone(),
        V::ClientIp => local.ip().to_string(),
        V::ClientAddr => local.to_string(),
        V::Scheme => if down.tls() { "https" } else { "http" }.to_string(),
    }
}

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Problems with `fields` under `check` (empty when it holds).
fn check_fields(
    what: &str,
    fields: &[(String, String)],
    check: &Check,
    down: Down,
    local: SocketAddr,
) -> Vec<String> {
    match check {
        Check::Is(name, want) => {
            let want: Vec<String> = want.iter().map(|v| render(v, down, local)).collect();
            let got = header_values(fields, name);
            if got == want {
                vec![]
            } else {
                vec![format!("{what} {name}: {got:?}, expected {want:?}")]
            }
        }
        Check::Absent(name) => {
            let got: Vec<&String> = fields
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
                .collect();
            if got.is_empty() {
                vec![]
            } else {
                vec![format!("{what} {name}: {got:?}, expected none")]
            }
        }
        Check::Without(name, value) => {
            let got = header_values(fields, name);
            if got.iter().any(|v| v.eq_ignore_ascii_case(value)) {
                vec![format!("{what} {name}: {got:?}, expected no {value:?}")]
            } else {
                vec![]
            }
        }
        Check::Uuid(name) => {
            let got = header_values(fields, name);
            if got.len() == 1 && is_uuid(&got[0]) {
                vec![]
            } else {
                vec![format!("{what} {name}: {got:?}, expected one UUID")]
            }
        }
        Check::SameAs(name, other) => {
            let (a, b) = (header_values(fields, name), header_values(fields, other));
            if !a.is_empty() && a == b {
                vec![]
            } else {
                vec![format!(
                    "{what} {name}: {a:?}, expected the same as {other}: {b:?}"
                )]
            }
        }
        Check::ByTls(plain, tls) => check_fields(
            what,
            fields,
            if down.tls() { tls } else { plain },
            down,
            local,
        ),
    }
}

fn check_response(resp: &Resp, e: &Expect, down: Down, local: SocketAddr) -> Vec<String> {
    let mut problems = Vec::new();
    if resp.status != e.status {
        problems.push(format!("status {}, expected {}", resp.status, e.status));
    }
    if let Some(code) = e.grpc_status {
        let in_headers = header_values(&resp.headers, "grpc-status");
        let in_trailers = header_values(&resp.trailers, "grpc-status");
        let got = in_headers.first().or(in_trailers.first());
        if got.map(String::as_str) != Some(code.to_string().as_str()) {
            problems.push(format!("grpc-status {got:?}, expected {code}"));
        }
        if !header_values(&resp.headers, "content-type")
            .first()
            .is_some_and(|c| c.starts_with("application/grpc"))
        {
            problems.push("content-type is not application/grpc".into());
        }
    }
    match &e.body {
        None => {}
        Some(BodyCheck::Empty) if !resp.body.is_empty() => problems.push(format!(
            "a body of {} bytes, expected none",
            resp.body.len()
        )),
        Some(BodyCheck::Is(b)) if &resp.body != b => problems.push(format!(
            "body {:?}, expected {:?}",
            String::from_utf8_lossy(&resp.body),
            String::from_utf8_lossy(b)
        )),
        Some(BodyCheck::ShortText)
            if resp.body.is_empty() || resp.body.len() > 512 || !resp.body.ends_with(b"\n") =>
        {
            problems.push(format!(
                "body {:?}, expected one short line of text",
                String::from_utf8_lossy(&resp.body)
            ))
        }
        Some(_) => {}
    }
    for c in &e.headers {
        problems.extend(check_fields(
            "response header",
            &resp.headers,
            c,
            down,
            local,
        ));
    }
    for c in &e.trailers {
        problems.extend(check_fields(
            "response trailer",
            &resp.trailers,
            c,
            down,
            local,
        ));
    }
    problems
}

fn check_origin(
    world: &World,
    e: &Expect,
    down: Down,
    up: Up,
    cell: &str,
    local: SocketAddr,
) -> Vec<String> {
    let seen = world.seen(cell);
    let describe = |s: &[(Which, Up, Seen)]| {
        s.iter()
            .map(|(w, u, s)| {
                format!(
                    "{} {} {} {}{}",
                    w.name(),
                    u.label(),
                    s.method,
                    s.target,
                    if s.complete { "" } else { " (incomplete)" }
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    match &e.origin {
        OriginCheck::Any => vec![],
        OriginCheck::Untouched if seen.is_empty() => vec![],
        OriginCheck::Untouched => vec![format!("an origin received it: {}", describe(&seen))],
        OriginCheck::NoCompleteRequest => {
            let complete: Vec<_> = seen.iter().filter(|s| s.2.complete).cloned().collect();
            if complete.is_empty() {
                vec![]
            } else {
                vec![format!(
                    "an origin received all of it: {}",
                    describe(&complete)
                )]
            }
        }
        OriginCheck::Got(g) => {
            let which = match g.pick {
                Pick::Is(w) => w,
                Pick::ByTls(plain, tls) => {
                    if down.tls() {
                        tls
                    } else {
                        plain
                    }
                }
            };
            let mine: Vec<&Seen> = seen
                .iter()
                .filter(|(w, u, _)| *w == which && *u == up)
                .map(|(_, _, s)| s)
                .collect();
            let [s] = mine.as_slice() else {
                return vec![format!(
                    "origin {} ({}) received it {} times; all origins: [{}]",
                    which.name(),
                    up.label(),
                    mine.len(),
                    describe(&seen)
                )];
            };
            let mut problems = Vec::new();
            if seen.len() != 1 {
                problems.push(format!("received more than once: {}", describe(&seen)));
            }
            if !s.complete {
                problems.push("the origin got an incomplete request".into());
            }
            if let Some(m) = g.method {
                if s.method != m {
                    problems.push(format!("origin got method {}, expected {m}", s.method));
                }
            }
            if let Some(t) = &g.target {
                if &s.target != t {
                    problems.push(format!("origin got target {:?}, expected {t:?}", s.target));
                }
            }
            if let Some(b) = &g.body {
                if &s.body != b {
                    problems.push(format!(
                        "origin got body {:?}, expected {:?}",
                        String::from_utf8_lossy(&s.body),
                        String::from_utf8_lossy(b)
                    ));
                }
            }
            for c in &g.headers {
                problems.extend(check_fields("origin header", &s.headers, c, down, local));
            }
            for c in &g.trailers {
                problems.extend(check_fields("origin trailer", &s.trailers, c, down, local));
            }
            problems
        }
    }
}

fn run_cell(world: &World, row: &Row, down: Down, up: Up, cell: &str) -> Verdict {
    if let Some((only, why)) = row.only_up {
        if up != only {
            return Verdict::NotApplicable(why.to_string());
        }
    }
    let form = match &row.send {
        Traffic::One { h1, h2 } => Some(if down.h2() { h2 } else { h1 }),
        Traffic::Repeat(..) => None,
    };
    if let Some(Form::NotApplicable(why)) = form {
        return Verdict::NotApplicable(why.to_string());
    }
    let proxy = match world.proxy(row.setup) {
        Ok(p) => p,
        Err(e) => {
            let first: String = e.lines().next().unwrap_or("").chars().take(120).collect();
            return Verdict::Fail(format!(
                "the {:?} configuration was refused ({} errors, listed after the matrix; the first: {first}...)",
                row.setup,
                e.lines().count()
            ));
        }
    };
    let addr = proxy.addr(&listener_name(down, up));
    let e = &row.expect;
    let ex = match (&row.send, form) {
        (Traffic::Repeat(req, n), _) => repeat(world, addr, down, req, *n, cell),
        (_, Some(form)) if !down.h2() => exchange_h1(world, addr, down, form, e, cell),
        (_, Some(Form::Req(req))) => exchange_h2(world, addr, down, req, e, cell),
        (_, Some(other)) => Err(format!("{other:?} cannot be sent over HTTP/2")),
        (_, None) => Err("nothing to send".into()),
    };
    let ex = match ex {
        Ok(ex) => ex,
        Err(err) => return Verdict::Fail(err),
    };
    let mut problems = Vec::new();
    if let Traffic::Repeat(_, n) = &row.send {
        let mut counts = (0usize, 0usize);
        for r in &ex.repeats {
            match r {
                Ok(r) if r.status == e.status => match header_values(&r.headers, "x-origin")
                    .first()
                    .map(String::as_str)
                {
                    Some("a") => counts.0 += 1,
                    Some("b") => counts.1 += 1,
                    other => problems.push(format!("a response from origin {other:?}")),
                },
                Ok(r) => problems.push(format!("status {}, expected {}", r.status, e.status)),
                Err(err) => problems.push(err.clone()),
            }
        }
        if ex.repeats.len() != *n {
            problems.push(format!("{} of {n} requests answered", ex.repeats.len()));
        }
        if let Some((min, max)) = e.split {
            for (name, c) in [("a", counts.0), ("b", counts.1)] {
                if c < min || c > max {
                    problems.push(format!(
                        "origin {name} answered {c} of {n} (a {}, b {}), expected {min} to {max}",
                        counts.0, counts.1
                    ));
                }
            }
        }
        problems.dedup();
    } else {
        match &ex.resp {
            Err(err) => problems.push(err.clone()),
            Ok(resp) => {
                let p = check_response(resp, e, down, ex.local);
                if !p.is_empty() {
                    problems.extend(p);
                    problems.push(format!("response: {}", resp.describe()));
                }
            }
        }
        if let Some(min) = e.min_elapsed {
            if ex.elapsed < min {
                problems.push(format!(
                    "answered after {:?}, expected at least {min:?}",
                    ex.elapsed
                ));
            }
        }
        if e.reusable {
            let (_, status, body) = follow_up();
            match &ex.follow {
                Some(Ok(r)) if r.status == status && r.body == body.as_bytes() => {}
                Some(Ok(r)) => problems.push(format!(
                    "the next request on the connection got: {}",
                    r.describe()
                )),
                Some(Err(err)) => {
                    problems.push(format!("the next request on the connection failed: {err}"))
                }
                None => {}
            }
        }
        if ex.closed == Some(false) {
            problems.push("the connection was not closed".into());
        }
    }
    problems.extend(check_origin(world, e, down, up, cell, ex.local));
    if problems.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail(problems.join("; "))
    }
}

// ---------------------------------------------------------------------------------------
// The whole table

/// Runs every row in every column of `world`; prints the matrix and returns every failure
/// as `row × downstream × upstream × driver: what went wrong`.
pub fn run(world: &World, rows: &[Row]) -> Vec<String> {
    let started = Instant::now();
    let driver = world.driver.toml();
    let columns: Vec<(Down, Up)> = Down::ALL
        .iter()
        .flat_map(|d| Up::ALL.iter().map(move |u| (*d, *u)))
        .collect();
    let mut failures = Vec::new();
    let mut not_applicable = Vec::new();
    let mut matrix = String::new();
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(10);
    let _ = write!(
        matrix,
        "\n{:width$} ",
        format!("behaviour table on {driver}")
    );
    for (d, u) in &columns {
        let _ = write!(matrix, " {:>16}", format!("{}>{}", d.label(), u.suffix()));
    }
    matrix.push('\n');
    let (mut pass, mut na) = (0, 0);
    for (ri, row) in rows.iter().enumerate() {
        let _ = write!(matrix, "{:width$} ", row.name);
        for (ci, (down, up)) in columns.iter().enumerate() {
            let cell = format!("{driver}-{ri}-{ci}");
            let verdict = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_cell(world, row, *down, *up, &cell)
            }))
            .unwrap_or_else(|p| {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                Verdict::Fail(format!("panicked: {msg}"))
            });
            let mark = match verdict {
                Verdict::Pass => {
                    pass += 1;
                    "ok"
                }
                Verdict::NotApplicable(why) => {
                    na += 1;
                    if !not_applicable
                        .iter()
                        .any(|(r, w): &(&str, String)| *r == row.name && *w == why)
                    {
                        not_applicable.push((row.name, why));
                    }
                    "n/a"
                }
                Verdict::Fail(why) => {
                    failures.push(format!(
                        "{} × {} × {} × {driver}: {why}",
                        row.name,
                        down.label(),
                        up.label()
                    ));
                    "FAIL"
                }
            };
            let _ = write!(matrix, " {mark:>16}");
        }
        matrix.push('\n');
    }
    let _ = writeln!(
        matrix,
        "\n{driver}: {} cells: {pass} pass, {} fail, {na} not applicable, in {:.1?}",
        rows.len() * columns.len(),
        failures.len(),
        started.elapsed()
    );
    let _ = writeln!(matrix, "not applicable:");
    for (row, why) in &not_applicable {
        let _ = writeln!(matrix, "  {row}: {why}");
    }
    for (setup, p) in &world.proxies {
        if let Err(e) = p {
            let _ = writeln!(matrix, "the {setup:?} configuration was refused:\n{e}");
        }
    }
    eprintln!("{matrix}");
    failures
}
