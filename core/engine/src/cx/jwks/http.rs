//! One JWKS fetch over blocking std I/O (the fetcher thread's, never a worker's): resolve,
//! connect, TLS (rustls, the provider's roots) for `https://`, an HTTP/1.0 `GET` (so the
//! body is never chunked), and the body of a `200`, at most [`MAX_RESPONSE`] bytes, all
//! within one deadline. Redirects are not followed.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringside_config::RemoteJwks;
use rustls_pki_types::ServerName;

/// The largest JWKS response read.
const MAX_RESPONSE: usize = 1 << 20;

/// `GET` of the JWKS document: its body.
pub(super) fn fetch(
    r: &RemoteJwks,
    tls: Option<&Result<Arc<rustls::ClientConfig>, String>>,
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    let deadline = Instant::now() + timeout;
    let addrs = (r.host.as_str(), r.port)
        .to_socket_addrs()
        .map_err(|e| format!("resolve {}: {e}", r.host))?;
    let mut last = format!("{} has no address", r.host);
    let mut tcp = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = format!("connect {a}: {e}"),
        }
    }
    let tcp = tcp.ok_or(last)?;
    let authority = match (
        r.host.contains(':'),
        r.port == if r.https { 443 } else { 80 },
    ) {
        (true, true) => format!("[{}]", r.host),
        (true, false) => format!("[{}]:{}", r.host, r.port),
        (false, true) => r.host.clone(),
        (false, false) => format!("{}:{}", r.host, r.port),
    };
    // HTTP/1.0: the body is never chunked.
    let request = format!(
        "GET {} HTTP/1.0\r\nHost: {authority}\r\nAccept: application/json\r\nUser-Agent: ringside-jwks\r\n\r\n",
        r.path
    );
    let clock = tcp.try_clone().map_err(|e| e.to_string())?;
    match tls {
        None => exchange(tcp, &clock, request.as_bytes(), deadline),
        Some(Err(e)) => Err(format!("tls: {e}")),
        Some(Ok(config)) => {
            let name = ServerName::try_from(r.host.clone()).map_err(|e| format!("tls: {e}"))?;
            let conn = rustls::ClientConnection::new(Arc::clone(config), name)
                .map_err(|e| format!("tls: {e}"))?;
            exchange(
                rustls::StreamOwned::new(conn, tcp),
                &clock,
                request.as_bytes(),
                deadline,
            )
        }
    }
}

/// Writes `request`, reads the response until its body is complete, and returns the body
/// of a 200.
fn exchange(
    mut stream: impl Read + Write,
    clock: &TcpStream,
    request: &[u8],
    deadline: Instant,
) -> Result<Vec<u8>, String> {
    let left = || {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err("timed out".to_string())
        } else {
            Ok(left)
        }
    };
    clock
        .set_write_timeout(Some(left()?))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(request)
        .and_then(|()| stream.flush())
        .map_err(|e| format!("write: {e}"))?;
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let mut head: Option<(u16, Option<u64>, usize)> = None;
    loop {
        if let Some((_, Some(len), start)) = head {
            if got.len().saturating_sub(start) as u64 >= len {
                break;
            }
        }
        clock
            .set_read_timeout(Some(left()?))
            .map_err(|e| e.to_string())?;
        let n = match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // A server that closes without TLS close_notify: the body ends there.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && head.is_some() => break,
            Err(e) => return Err(format!("read: {e}")),
        };
        got.extend_from_slice(buf.get(..n).unwrap_or_default());
        if got.len() > MAX_RESPONSE {
            return Err(format!("response longer than {MAX_RESPONSE} bytes"));
        }
        if head.is_none() {
            match ringside_codec::parse_response(&got, 64 * 1024, "GET") {
                Ok(Some((h, start))) => {
                    let len = match h.body() {
                        ringside_codec::BodyKind::Length(n) => Some(n),
                        ringside_codec::BodyKind::Empty => Some(0),
                        _ => None,
                    };
                    head = Some((h.status(), len, start));
                }
                Ok(None) => {}
                Err(e) => return Err(format!("invalid response: {e}")),
            }
        }
    }
    let Some((status, len, start)) = head else {
        return Err("closed before a response".into());
    };
    if status != 200 {
        return Err(format!("status {status}"));
    }
    let mut body = got.split_off(start.min(got.len()));
    if let Some(len) = len {
        if (body.len() as u64) < len {
            return Err("response body cut short".into());
        }
        body.truncate(usize::try_from(len).unwrap_or(usize::MAX));
    }
    Ok(body)
}
