//! What a parent listener's connection opens with, when its children are told apart by it
//! (`match.transport`, `server_names`, `alpn`): Envoy's TLS and HTTP inspectors. The first
//! bytes are read (and later replayed to the child listener that serves the connection): a
//! TLS handshake record is parsed as far as its ClientHello (server name, offered
//! application protocols); plaintext is recognised as the HTTP/2 preface (`h2c`) or an
//! HTTP/1 request line (`http/1.1`, `http/1.0`). Reading stops as soon as the bytes decide,
//! after `LIMIT` bytes, or after the parent's `inspect_timeout_ms` (a client that waits for
//! the server to speak first): what is known by then decides, as Envoy's
//! `continue_on_listener_filters_timeout`, or the connection is closed
//! (`inspect_on_timeout = "close"`).

use monoio::net::TcpStream;
use ringside_config::{Hello, Inspect, Transport};

use crate::cx::io::{sleep_until, StopRead};

/// The most bytes read to decide (a ClientHello fits well within one TLS record).
const LIMIT: usize = 16 * 1024 + 5;
/// TLS record type of a handshake message.
const TLS_HANDSHAKE: u8 = 0x16;
const H2C_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Reads until the bytes say what the connection is, for at most `how.timeout`. `None`: the
/// client closed (or the socket failed) before sending anything, or sent too little in time
/// on a listener that closes then. A read the wait ends is cancelled, not dropped: bytes it
/// brought are kept (`StopRead`).
pub(crate) async fn inspect(stream: &mut TcpStream, how: Inspect) -> Option<(Vec<u8>, Hello)> {
    let deadline = monoio::time::Instant::now() + how.timeout;
    let mut first: Vec<u8> = Vec::new();
    loop {
        if let Some(hello) = classify(&first, false) {
            return Some((first, hello));
        }
        let want = (LIMIT - first.len()).min(4096);
        let ((res, got), stopped) = stream
            .read_or_stop(Vec::with_capacity(want), sleep_until(deadline))
            .await;
        match res {
            Ok(n) if n > 0 => first.extend_from_slice(&got),
            Ok(_) if first.is_empty() && !stopped => return None,
            _ if stopped && how.close_on_timeout => return None,
            // Closed, failed or out of time: decide on what came.
            _ => return classify(&first, true).map(|h| (first, h)),
        }
        if stopped && how.close_on_timeout {
            return None;
        }
        if stopped || first.len() >= LIMIT {
            return classify(&first, true).map(|h| (first, h));
        }
    }
}

/// What `bytes` open with, or `None` when more bytes could still change the answer (never
/// when `done`).
pub(crate) fn classify(bytes: &[u8], done: bool) -> Option<Hello> {
    let plain = |alpn: Option<&str>| Hello {
        transport: Transport::Plaintext,
        server_name: None,
        alpn: alpn.into_iter().map(str::to_string).collect(),
    };
    match bytes.first() {
        None => done.then(|| plain(None)),
        Some(&TLS_HANDSHAKE) => client_hello(bytes, done),
        Some(_) if bytes.starts_with(H2C_PREFACE) => Some(plain(Some("h2c"))),
        Some(_) if H2C_PREFACE.starts_with(bytes) && !done => None,
        Some(_) => match request_line(bytes) {
            Line::More if !done => None,
            Line::Http(version) => Some(plain(Some(version))),
            Line::More | Line::Not => Some(plain(None)),
        },
    }
}

/// The ClientHello's server name and application protocols, once it is all there.
fn client_hello(bytes: &[u8], done: bool) -> Option<Hello> {
    let mut acceptor = rustls::server::Acceptor::default();
    let mut rest = bytes;
    while !rest.is_empty() {
        match acceptor.read_tls(&mut rest) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    let tls = |server_name: Option<String>, alpn: Vec<String>| Hello {
        transport: Transport::Tls,
        server_name,
        alpn,
    };
    match acceptor.accept() {
        Ok(Some(accepted)) => {
            let hello = accepted.client_hello();
            let name = hello.server_name().map(str::to_ascii_lowercase);
            let alpn = hello
                .alpn()
                .into_iter()
                .flatten()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            Some(tls(name, alpn))
        }
        Ok(None) if !done => None,
        // Not a ClientHello rustls can read, or cut short: TLS, nothing more known.
        Ok(None) | Err(_) => Some(tls(None, Vec::new())),
    }
}

enum Line {
    /// `HTTP/1.1` or `HTTP/1.0`, as ALPN names them.
    Http(&'static str),
    /// Not an HTTP/1 request line.
    Not,
    /// No line end yet, and nothing so far rules it out.
    More,
}

/// An HTTP/1 request line: `METHOD SP target SP HTTP/1.x CRLF`.
fn request_line(bytes: &[u8]) -> Line {
    let end = bytes.iter().position(|&b| b == b'\n');
    let line = end.map_or(bytes, |e| bytes.get(..e).unwrap_or_default());
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut parts = line.splitn(3, |&b| b == b' ');
    let method = parts.next().unwrap_or_default();
    if method.is_empty() && end.is_some() || !method.iter().all(|&b| ringside_codec::is_tchar(b)) {
        return Line::Not;
    }
    if end.is_none() {
        // Still coming: only bytes a request line may hold so far.
        let ok = line.iter().all(|&b| b.is_ascii_graphic() || b == b' ');
        return if ok && bytes.len() < 8192 {
            Line::More
        } else {
            Line::Not
        };
    }
    let target = parts.next().unwrap_or_default();
    match (target.is_empty(), parts.next()) {
        (false, Some(b"HTTP/1.1")) => Line::Http("http/1.1"),
        (false, Some(b"HTTP/1.0")) => Line::Http("http/1.0"),
        _ => Line::Not,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alpn(h: &Hello) -> Vec<&str> {
        h.alpn.iter().map(String::as_str).collect()
    }

    #[test]
    fn plaintext_is_told_by_its_first_line() {
        let h = classify(b"GET /x HTTP/1.1\r\nHost: a\r\n", false).unwrap();
        assert_eq!(
            (h.transport, alpn(&h)),
            (Transport::Plaintext, vec!["http/1.1"])
        );
        let h = classify(b"POST / HTTP/1.0\n", false).unwrap();
        assert_eq!(alpn(&h), ["http/1.0"]);
        assert_eq!(alpn(&classify(H2C_PREFACE, false).unwrap()), ["h2c"]);
        // Part of a line, or of the preface: more is needed, unless nothing more comes.
        assert!(classify(b"GET /x HT", false).is_none());
        assert!(classify(b"PRI * HTTP/2", false).is_none());
        assert!(alpn(&classify(b"GET /x HT", true).unwrap()).is_empty());
        // Not HTTP: decided at once, without waiting for a line end.
        for not in [
            &b"\x00\x01binary"[..],
            b"SSH-2.0-OpenSSH\r\n",
            b"GET /x HTTP/2.0\r\n",
        ] {
            let h = classify(not, false).unwrap();
            assert_eq!(
                (h.transport, h.alpn.len()),
                (Transport::Plaintext, 0),
                "{not:?}"
            );
        }
        assert_eq!(classify(b"", true).unwrap().transport, Transport::Plaintext);
        assert!(classify(b"", false).is_none());
    }

    #[test]
    fn tls_is_told_by_its_client_hello() {
        let hello = client_hello_bytes("Api.Example.com", &[b"istio-http/1.1", b"h2"]);
        let h = classify(&hello, false).unwrap();
        assert_eq!(h.transport, Transport::Tls);
        assert_eq!(h.server_name.as_deref(), Some("api.example.com"));
        assert_eq!(alpn(&h), ["istio-http/1.1", "h2"]);
        // Cut short: more is needed, unless nothing more comes.
        let part = hello.get(..hello.len() / 2).unwrap();
        assert!(classify(part, false).is_none());
        let h = classify(part, true).unwrap();
        assert_eq!(
            (h.transport, h.server_name, h.alpn.len()),
            (Transport::Tls, None, 0)
        );
        // A handshake record that is no ClientHello: TLS, nothing more.
        let h = classify(b"\x16\x03\x01\x00\x05\x02\x00\x00\x01\x00", false).unwrap();
        assert_eq!((h.transport, h.server_name), (Transport::Tls, None));
    }

    /// A real ClientHello, as rustls's client writes it.
    fn client_hello_bytes(name: &str, alpn: &[&[u8]]) -> Vec<u8> {
        let mut roots = rustls::RootCertStore::empty();
        let cert = rcgen::generate_simple_self_signed(vec!["x".into()]).unwrap();
        roots.add(cert.cert.der().clone()).unwrap();
        let mut config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let server = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
        let mut c = rustls::ClientConnection::new(std::sync::Arc::new(config), server).unwrap();
        let mut out = Vec::new();
        c.write_tls(&mut out).unwrap();
        out
    }
}
