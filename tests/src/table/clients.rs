//! The clients that send a cell's request: HTTP/1.1 by hand over a std socket (plain or
//! rustls) and HTTP/2 with the `h2` crate over monoio, and the response they read.

use super::*;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rustls::pki_types::ServerName;

use crate::h2origin::send_all;
use crate::{read_retrying, WAIT};

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
    pub(crate) fn describe(&self) -> String {
        let body = String::from_utf8_lossy(&self.body);
        let body: String = body.chars().take(200).collect();
        let head: Vec<&str> = self.head.lines().filter(|l| !l.trim().is_empty()).collect();
        format!("[{}] body {body:?}", head.join(" | "))
    }
}

pub(crate) fn header_values(fields: &[(String, String)], name: &str) -> Vec<String> {
    fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.split(','))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

pub(crate) enum H1Stream {
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
        crate::client::fill(&mut self.s, &mut self.buf)
    }

    fn take(&mut self, n: usize) -> io::Result<Vec<u8>> {
        crate::client::take(&mut self.s, &mut self.buf, n)
    }

    fn line(&mut self) -> io::Result<String> {
        crate::client::take_line(&mut self.s, &mut self.buf)
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
            let head = crate::client::take_head(&mut self.s, &mut self.buf)?;
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

    /// Opens a `CONNECT authority` stream (RFC 9113 §8.5: `:method` and `:authority` only);
    /// returns the response status and, on a 2xx, the stream's two halves (the tunnel).
    #[allow(clippy::type_complexity)]
    pub async fn connect_tunnel(
        &self,
        authority: &str,
    ) -> Result<(u16, Option<(h2::SendStream<Bytes>, h2::RecvStream)>), String> {
        let req = http::Request::builder()
            .method("CONNECT")
            .uri(authority)
            .body(())
            .map_err(|e| format!("building the request: {e}"))?;
        let mut send = monoio::time::timeout(WAIT, self.send.clone().ready())
            .await
            .map_err(|_| "no stream available".to_string())?
            .map_err(|e| format!("connection failed: {e}"))?;
        let (resp, stream) = send
            .send_request(req, false)
            .map_err(|e| format!("sending the CONNECT: {e}"))?;
        let resp = monoio::time::timeout(WAIT, resp)
            .await
            .map_err(|_| "no response within the wait".to_string())?
            .map_err(|e| format!("stream failed before a response: {e}"))?;
        let status = resp.status().as_u16();
        let tunnel = resp
            .status()
            .is_success()
            .then(|| (stream, resp.into_body()));
        Ok((status, tunnel))
    }

    /// Sends `req` on a new stream and reads the whole response (body and trailers).
    pub async fn request(&self, req: &Req, cell: &str) -> Result<Resp, String> {
        let target = req.target.replace("$CELL", cell);
        let uri = if req.method == "CONNECT" {
            target
        } else if let Some(a) = &req.authority {
            format!("{}://{a}{target}", self.scheme)
        } else {
            target
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

/// A runtime for the HTTP/2 client of one cell (or of a test of its own).
pub fn client_runtime() -> monoio::Runtime<monoio::time::TimeDriver<monoio::LegacyDriver>> {
    monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .unwrap()
}
