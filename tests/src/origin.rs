//! Origin servers on std threads: a scripted HTTP/1.1 server that records what it received,
//! and a raw TCP echo server.
//!
//! The HTTP origin reads each request head and body (Content-Length or chunked; a malformed
//! chunked body is recorded as `framing_error`), answers `100 Continue` when asked, records the
//! request, and asks its handler for a [`Reply`]. One thread per connection; connections are
//! keep-alive until the client closes or the handler says otherwise.

use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{eventually, read_retrying, WAIT};

/// Idle read timeout of origin connections: bounds every origin thread's life.
const ORIGIN_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// One request as the origin received it.
#[derive(Debug, Clone)]
pub struct Request {
    /// Connection number, in accept order from 0.
    pub conn: usize,
    /// Index of this request on its connection, from 0.
    pub seq: usize,
    /// The head exactly as received, through the empty line.
    pub head: String,
    pub method: String,
    pub target: String,
    pub version: String,
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    /// The body bytes exactly as received (chunk framing included).
    pub raw_body: Vec<u8>,
    /// Set when a chunked body was not valid chunked coding.
    pub framing_error: Option<String>,
}

impl Request {
    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn has_header(&self, name: &str) -> bool {
        self.header(name).is_some()
    }
}

/// What the origin does after receiving a request.
pub enum Reply {
    /// Write these bytes; keep the connection (unless the request said `Connection: close`).
    Send(Vec<u8>),
    /// Write these bytes, then close the connection (whatever they say).
    SendClose(Vec<u8>),
    /// Close the connection without answering.
    Close,
    /// Take the socket over, with any bytes already read past this request.
    Hijack(Box<dyn FnOnce(TcpStream, Vec<u8>) + Send>),
}

#[derive(Default)]
struct Recorded {
    requests: Mutex<Vec<Request>>,
    connections: AtomicUsize,
    bytes: AtomicUsize,
    stop: AtomicBool,
}

/// A scripted HTTP/1.1 origin on 127.0.0.1. Stops accepting when dropped.
pub struct Origin {
    addr: SocketAddr,
    rec: Arc<Recorded>,
}

/// A complete response with `Content-Length` and the given extra headers.
pub fn http_response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (n, v) in headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// `200 OK` with a text body.
pub fn ok(body: &str) -> Reply {
    Reply::Send(http_response(
        200,
        &[("Content-Type", "text/plain")],
        body.as_bytes(),
    ))
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        404 => "Not Found",
        _ => "Whatever",
    }
}

impl Origin {
    /// Starts an origin answering with `handler`.
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Origin {
        Origin::accepting(move |stream, conn, rec| serve(stream, conn, rec, &handler))
    }

    /// Starts an origin that hands each accepted connection to `f` and records nothing but
    /// the connection count (for servers that speak no proper HTTP, or stream).
    pub fn raw(f: impl Fn(TcpStream) + Send + Sync + 'static) -> Origin {
        Origin::accepting(move |stream, _, _| {
            let _ = stream.set_read_timeout(Some(ORIGIN_READ_TIMEOUT));
            f(stream)
        })
    }

    /// Answers every request `200 OK` with `body`, listening on `addr` (another loopback
    /// address than 127.0.0.1, or port 0 for any).
    pub fn text_at(addr: std::net::SocketAddr, body: &'static str) -> Origin {
        Origin::accepting_on(listen_at(addr), move |stream, conn, rec| {
            serve(stream, conn, rec, &move |_: &Request| ok(body))
        })
    }

    fn accepting(f: impl Fn(TcpStream, usize, &Recorded) + Send + Sync + 'static) -> Origin {
        Origin::accepting_on(listen(), f)
    }

    fn accepting_on(
        listener: TcpListener,
        f: impl Fn(TcpStream, usize, &Recorded) + Send + Sync + 'static,
    ) -> Origin {
        let addr = listener.local_addr().unwrap();
        let rec = Arc::new(Recorded::default());
        let f = Arc::new(f);
        let r = rec.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if r.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let conn = r.connections.fetch_add(1, Ordering::SeqCst);
                let (r, f) = (r.clone(), f.clone());
                std::thread::spawn(move || f(stream, conn, &r));
            }
        });
        Origin { addr, rec }
    }

    /// Answers every request `200 OK` with `body`.
    pub fn text(body: &'static str) -> Origin {
        Origin::start(move |_| ok(body))
    }

    /// Answers every request `200 OK` with `name`, except `/healthz`: 200 while `healthy`
    /// is set, else 503 (what an active health check reads).
    pub fn health_checked(name: &'static str, healthy: &Arc<AtomicBool>) -> Origin {
        let healthy = Arc::clone(healthy);
        Origin::start(
            move |r| match (r.target.as_str(), healthy.load(Ordering::SeqCst)) {
                ("/healthz", true) => ok("up"),
                ("/healthz", false) => Reply::Send(http_response(503, &[], b"down")),
                _ => ok(name),
            },
        )
    }

    /// Answers every request `200 OK` with the request's body.
    pub fn echo() -> Origin {
        Origin::start(|r| Reply::Send(http_response(200, &[], &r.body)))
    }

    /// Answers a request carrying `Upgrade` with `101 Switching Protocols` and then echoes
    /// bytes until the client half-closes (then writes `"bye\n"`); other requests get
    /// `200 no upgrade`.
    pub fn upgrade_echo() -> Origin {
        Origin::start(|r| {
            let Some(proto) = r.header("upgrade").map(str::to_string) else {
                return ok("no upgrade");
            };
            Reply::Hijack(Box::new(move |mut s, leftover| {
                let head = format!("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: {proto}\r\n\r\n");
                if s.write_all(head.as_bytes()).is_err() || s.write_all(&leftover).is_err() {
                    return;
                }
                echo_until_eof(s, b"bye\n");
            }))
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.rec.requests.lock().unwrap().clone()
    }

    /// The `i`-th request, waiting for it to arrive.
    pub fn request(&self, i: usize) -> Request {
        assert!(
            eventually(WAIT, || self.rec.requests.lock().unwrap().len() > i),
            "origin never received request #{i}"
        );
        self.requests().swap_remove(i)
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.rec.connections.load(Ordering::SeqCst)
    }

    /// Bytes received so far on all connections.
    pub fn bytes_received(&self) -> usize {
        self.rec.bytes.load(Ordering::SeqCst)
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.rec.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wake the accept loop
    }
}

/// A connection's reader: a buffer over the stream that counts received bytes.
struct Conn<'a> {
    s: TcpStream,
    buf: Vec<u8>,
    rec: &'a Recorded,
}

impl Conn<'_> {
    /// Reads more; `Ok(false)` at EOF.
    fn fill(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; 64 * 1024];
        let n = read_retrying(&mut self.s, &mut chunk)?;
        self.rec.bytes.fetch_add(n, Ordering::SeqCst);
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    fn take(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill()? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    fn take_line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                return self.take(i + 2);
            }
            if !self.fill()? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// The next head, or `None` at a clean EOF.
    fn head(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                return self.take(i + 4).map(Some);
            }
            if !self.fill()? {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(io::ErrorKind::UnexpectedEof.into())
                };
            }
        }
    }

    /// Reads a chunked body: (decoded, raw, error).
    fn chunked(&mut self) -> io::Result<(Vec<u8>, Vec<u8>, Option<String>)> {
        let (mut body, mut raw) = (Vec::new(), Vec::new());
        loop {
            let line = self.take_line()?;
            raw.extend_from_slice(&line);
            let text = String::from_utf8_lossy(&line[..line.len() - 2]).to_string();
            let size = text.split(';').next().unwrap_or("");
            let Ok(size) = usize::from_str_radix(size, 16) else {
                return Ok((body, raw, Some(format!("invalid chunk size line {text:?}"))));
            };
            if size == 0 {
                loop {
                    let trailer = self.take_line()?;
                    raw.extend_from_slice(&trailer);
                    if trailer == b"\r\n" {
                        return Ok((body, raw, None));
                    }
                }
            }
            let data = self.take(size + 2)?;
            raw.extend_from_slice(&data);
            if &data[size..] != b"\r\n" {
                return Ok((body, raw, Some("chunk data not followed by CRLF".into())));
            }
            body.extend_from_slice(&data[..size]);
        }
    }
}

fn parse_head(conn: usize, seq: usize, head: &[u8]) -> Request {
    let text = String::from_utf8_lossy(head).to_string();
    let mut lines = text.split("\r\n");
    let mut first = lines.next().unwrap_or("").splitn(3, ' ');
    let (method, target, version) = (
        first.next().unwrap_or("").to_string(),
        first.next().unwrap_or("").to_string(),
        first.next().unwrap_or("").to_string(),
    );
    let headers = lines
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once(':') {
            Some((n, v)) => (n.to_string(), v.trim().to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect();
    Request {
        conn,
        seq,
        head: text,
        method,
        target,
        version,
        headers,
        body: Vec::new(),
        raw_body: Vec::new(),
        framing_error: None,
    }
}

fn serve(stream: TcpStream, conn: usize, rec: &Recorded, handler: &impl Fn(&Request) -> Reply) {
    let _ = stream.set_read_timeout(Some(ORIGIN_READ_TIMEOUT));
    let mut c = Conn {
        s: stream,
        buf: Vec::new(),
        rec,
    };
    for seq in 0.. {
        let Ok(Some(head)) = c.head() else { return };
        let mut req = parse_head(conn, seq, &head);
        if req
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
            && c.s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err()
        {
            return;
        }
        let chunked = req
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let body = if chunked {
            c.chunked().map(|(b, raw, err)| {
                req.raw_body = raw;
                req.framing_error = err;
                b
            })
        } else {
            let n = req
                .header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            c.take(n).inspect(|b| req.raw_body = b.clone())
        };
        let Ok(body) = body else { return };
        req.body = body;
        let close_asked = req
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let bad_framing = req.framing_error.is_some();
        rec.requests.lock().unwrap().push(req.clone());
        if bad_framing {
            let _ = c.s.write_all(&http_response(
                400,
                &[("Connection", "close")],
                b"bad chunked framing",
            ));
            return;
        }
        match handler(&req) {
            Reply::Send(bytes) => {
                if c.s.write_all(&bytes).is_err() || close_asked {
                    let _ = c.s.shutdown(Shutdown::Write);
                    return;
                }
            }
            Reply::SendClose(bytes) => {
                let _ = c.s.write_all(&bytes);
                let _ = c.s.shutdown(Shutdown::Both);
                return;
            }
            Reply::Close => {
                let _ = c.s.shutdown(Shutdown::Both);
                return;
            }
            Reply::Hijack(f) => {
                let leftover = std::mem::take(&mut c.buf);
                f(c.s, leftover);
                return;
            }
        }
    }
}

/// A raw TCP echo server: echoes every byte; when the client half-closes, it writes
/// `"bye\n"` and then closes its side too.
pub struct TcpEcho {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl TcpEcho {
    pub fn start() -> TcpEcho {
        let listener = listen();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (n, st) = (connections.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                n.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || echo_until_eof(stream, b"bye\n"));
            }
        });
        TcpEcho {
            addr,
            connections,
            stop,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for TcpEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

/// Echoes until the peer's EOF, then writes `goodbye` and shuts the socket down.
pub fn echo_until_eof(mut s: TcpStream, goodbye: &[u8]) {
    let _ = s.set_read_timeout(Some(ORIGIN_READ_TIMEOUT));
    let mut buf = [0u8; 64 * 1024];
    loop {
        match read_retrying(&mut s, &mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if s.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(_) => return,
        }
    }
    let _ = s.write_all(goodbye);
    let _ = s.shutdown(Shutdown::Both);
}

/// A listening socket on an ephemeral loopback port with a deep accept queue: a proxy that
/// opens a couple of hundred upstream connections at once (h2load with many streams over
/// HTTP/1.1 upstreams) would overflow std's default backlog of 128, and the connects the
/// kernel drops then time out in the proxy as 502s that say nothing about the proxy.
fn listen() -> TcpListener {
    listen_at("127.0.0.1:0".parse().unwrap())
}

fn listen_at(addr: std::net::SocketAddr) -> TcpListener {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_reuse_address(true).unwrap();
    socket.bind(&addr.into()).unwrap();
    socket.listen(4096).unwrap();
    socket.into()
}
