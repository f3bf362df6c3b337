//! A raw HTTP/1.1 client over `std::net::TcpStream`: sends exact bytes (malformed ones
//! included) and reads one response at a time, keeping the connection for the next.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::{read_retrying, WAIT};

/// One response as the client read it.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// The head exactly as received, through the empty line.
    pub head: String,
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    /// The trailer fields of a chunked body, in order.
    pub trailers: Vec<(String, String)>,
}

impl Response {
    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }

    /// The response said `Connection: close`.
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// Header or trailer fields, in order.
type Fields = Vec<(String, String)>;

pub struct Client {
    s: TcpStream,
    buf: Vec<u8>,
}

/// `clients` connections to `addr`, each sending `request` again as soon as it is answered
/// until `until` (the rate-limit tests): returns how many answers were 200 and how many 429,
/// summed over the connections. Each 429 is shown to `limited` (to check its fields); any
/// other status is a panic.
pub fn hammer(
    addr: SocketAddr,
    clients: usize,
    until: Instant,
    request: &[u8],
    limited: fn(&Response),
) -> (u64, u64) {
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let request = request.to_vec();
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                let (mut passed, mut refused) = (0u64, 0u64);
                while Instant::now() < until {
                    let r = c.request(&request);
                    match r.status {
                        200 => passed += 1,
                        429 => {
                            limited(&r);
                            refused += 1;
                        }
                        s => panic!("status {s}"),
                    }
                }
                (passed, refused)
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

/// A `GET path` request with `Host: test`.
pub fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").into_bytes()
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect_timeout(&addr, WAIT)
            .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.set_write_timeout(Some(WAIT)).unwrap();
        Client { s, buf: Vec::new() }
    }

    /// The socket, e.g. to clone it for a concurrent writer.
    pub fn stream(&self) -> &TcpStream {
        &self.s
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.s
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("send: {e}"));
    }

    /// Like `send`, but a failure is returned (the proxy may have closed already).
    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.s.write_all(bytes)
    }

    /// Half-closes: the client sends nothing more.
    pub fn shutdown_write(&self) {
        self.s.shutdown(Shutdown::Write).unwrap();
    }

    /// Sends `bytes` and reads the response (to a GET).
    pub fn request(&mut self, bytes: &[u8]) -> Response {
        self.send(bytes);
        self.read_response()
    }

    /// Reads one response to a request that is not HEAD.
    pub fn read_response(&mut self) -> Response {
        self.read_response_to("GET")
    }

    /// Reads one response to a request with `method` (HEAD responses have no body).
    pub fn read_response_to(&mut self, method: &str) -> Response {
        match self.try_read_response(method) {
            Ok(r) => r,
            Err(e) => panic!(
                "no response: {e}; received so far: {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
        }
    }

    pub fn try_read_response(&mut self, method: &str) -> io::Result<Response> {
        let head = take_head(&mut self.s, &mut self.buf)?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad status line {status_line:?}"),
                )
            })?;
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .filter_map(|l| {
                l.split_once(':')
                    .map(|(n, v)| (n.to_string(), v.trim().to_string()))
            })
            .collect();
        let mut resp = Response {
            status,
            head,
            headers,
            body: Vec::new(),
            trailers: Vec::new(),
        };
        if method == "HEAD" || status < 200 || status == 204 || status == 304 {
            return Ok(resp);
        }
        if resp
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
        {
            (resp.body, resp.trailers) = self.read_chunked()?;
        } else if let Some(n) = resp.header("content-length") {
            let n: usize = n
                .parse()
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad content-length"))?;
            resp.body = self.take(n)?;
        } else {
            while self.fill()? {}
            resp.body = std::mem::take(&mut self.buf);
        }
        Ok(resp)
    }

    /// Reads everything until the peer closes.
    pub fn read_to_close(&mut self) -> Vec<u8> {
        while self.fill().unwrap_or(false) {}
        std::mem::take(&mut self.buf)
    }

    /// Reads exactly `n` bytes (e.g. tunnelled data).
    pub fn read_exact_bytes(&mut self, n: usize) -> Vec<u8> {
        self.take(n)
            .unwrap_or_else(|e| panic!("reading {n} bytes: {e}"))
    }

    /// True if the peer closes (EOF or reset) within `timeout` and sends nothing before that.
    /// Bytes received meanwhile are kept for the next read and make this false.
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut chunk = [0u8; 4096];
        loop {
            if !self.buf.is_empty() {
                return false;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.s.set_read_timeout(Some(left)).unwrap();
            let r = read_retrying(&mut self.s, &mut chunk);
            self.s.set_read_timeout(Some(WAIT)).unwrap();
            match r {
                Ok(0) => return true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return false
                }
                Err(_) => return true,
            }
        }
    }

    /// True if nothing at all arrives within `window` (and the connection stays open).
    pub fn silent_for(&mut self, window: Duration) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut chunk = [0u8; 4096];
        self.s.set_read_timeout(Some(window)).unwrap();
        let r = read_retrying(&mut self.s, &mut chunk);
        self.s.set_read_timeout(Some(WAIT)).unwrap();
        match r {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                true
            }
            Ok(n) if n > 0 => {
                self.buf.extend_from_slice(&chunk[..n]);
                false
            }
            _ => false,
        }
    }

    fn fill(&mut self) -> io::Result<bool> {
        fill(&mut self.s, &mut self.buf)
    }

    fn take(&mut self, n: usize) -> io::Result<Vec<u8>> {
        take(&mut self.s, &mut self.buf, n)
    }

    fn take_line(&mut self) -> io::Result<String> {
        take_line(&mut self.s, &mut self.buf)
    }

    /// A chunked body: (the data, the trailer fields).
    fn read_chunked(&mut self) -> io::Result<(Vec<u8>, Fields)> {
        let mut body = Vec::new();
        loop {
            let line = self.take_line()?;
            let size = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size, 16).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad chunk size {line:?}"),
                )
            })?;
            if size == 0 {
                let mut trailers = Vec::new();
                loop {
                    let line = self.take_line()?;
                    if line.is_empty() {
                        return Ok((body, trailers));
                    }
                    if let Some((n, v)) = line.split_once(':') {
                        trailers.push((n.to_string(), v.trim().to_string()));
                    }
                }
            }
            let data = self.take(size + 2)?;
            if &data[size..] != b"\r\n" {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "chunk not followed by CRLF",
                ));
            }
            body.extend_from_slice(&data[..size]);
        }
    }
}

/// Reads what `s` has into `buf`; `false` at the end of the stream. The HTTP/1.1 clients of the
/// harness (`Client`, and the behaviour table's `table::H1Conn`) share these readers.
pub(crate) fn fill(s: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<bool> {
    let mut chunk = [0u8; 64 * 1024];
    let n = read_retrying(s, &mut chunk)?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n > 0)
}

/// The next `n` bytes, reading more as needed.
pub(crate) fn take(s: &mut impl Read, buf: &mut Vec<u8>, n: usize) -> io::Result<Vec<u8>> {
    while buf.len() < n {
        if !fill(s, buf)? {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("closed after {} of {n} bytes", buf.len()),
            ));
        }
    }
    Ok(buf.drain(..n).collect())
}

/// The next message head, up to and including its empty line, as text.
pub(crate) fn take_head(s: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<String> {
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head: Vec<u8> = buf.drain(..i + 4).collect();
            return Ok(String::from_utf8_lossy(&head).into_owned());
        }
        if !fill(s, buf)? {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed before a response head",
            ));
        }
    }
}

/// The next CRLF-ended line, without its CRLF.
pub(crate) fn take_line(s: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<String> {
    loop {
        if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
            let line = take(s, buf, i + 2)?;
            return Ok(String::from_utf8_lossy(&line[..i]).to_string());
        }
        if !fill(s, buf)? {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed inside a chunked body",
            ));
        }
    }
}
