//! One JWKS fetch over blocking std I/O (the fetcher thread's, never a worker's): resolve,
//! connect, TLS (rustls, the provider's roots) for `https://`, an HTTP/1.0 `GET` (so the
//! body is never chunked), and the body of a `200`, at most [`MAX_RESPONSE`] bytes, all
//! within one deadline. Redirects are not followed.

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringside_config::RemoteJwks;

use crate::cx::background::{exchange, Response};
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
        None => ok_body(exchange(
            tcp,
            &clock,
            request.as_bytes(),
            deadline,
            Some(MAX_RESPONSE),
        )),
        Some(Err(e)) => Err(format!("tls: {e}")),
        Some(Ok(config)) => {
            let name = ServerName::try_from(r.host.clone()).map_err(|e| format!("tls: {e}"))?;
            let conn = rustls::ClientConnection::new(Arc::clone(config), name)
                .map_err(|e| format!("tls: {e}"))?;
            ok_body(exchange(
                rustls::StreamOwned::new(conn, tcp),
                &clock,
                request.as_bytes(),
                deadline,
                Some(MAX_RESPONSE),
            ))
        }
    }
}

/// The body of a 200.
fn ok_body(response: Result<Response, String>) -> Result<Vec<u8>, String> {
    let response = response?;
    if response.status != 200 {
        return Err(format!("status {}", response.status));
    }
    Ok(response.body)
}
