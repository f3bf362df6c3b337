//! The world one driver's table runs against: the origins' scripts, what they recorded,
//! the proxies and the TLS client settings.

use super::*;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::h2origin::{H2Origin, H2Reply, H2Request};
use crate::{Driver, Origin, Proxy, Reply, Request};

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
pub(crate) fn chunked_trailers(raw: &[u8]) -> Vec<(String, String)> {
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

    pub(crate) fn proxy(&self, setup: Setup) -> Result<&Proxy, &str> {
        match self.proxies.iter().find(|(s, _)| *s == setup) {
            Some((_, Ok(p))) => Ok(p),
            Some((_, Err(e))) => Err(e),
            None => Err("no proxy for this setup"),
        }
    }

    /// Every record of this cell, from every origin: (which, upstream, seen).
    pub(crate) fn seen(&self, cell: &str) -> Vec<(Which, Up, Seen)> {
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
