//! JWT test material: keys and tokens made by a real JWT library (PyJWT with cryptography,
//! `tests/python/jwt_tokens.py`), and a JWKS document served over HTTPS that a test can
//! rotate and take down.
//!
//! - [`Tokens::make`] generates fresh RSA, EC and Ed25519 keys and signs the tokens a test
//!   asks for; [`Tokens::jwks`] builds a JWKS document from some of the public keys.
//! - [`JwksServer`] answers every `GET` with the document it holds, over TLS with a
//!   certificate of the test CA (`certs::TestPki`), on 127.0.0.1 with an ephemeral port.
//!   [`JwksServer::set`] rotates the document; [`JwksServer::down`] makes every connection
//!   close unanswered (a failed fetch); [`JwksServer::fetches`] counts the answered ones.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};

use crate::python::run_script;

/// Keys and tokens made by `jwt_tokens.py`.
pub struct Tokens {
    out: Value,
}

impl Tokens {
    /// `keys`: (kid, `"RSA"` / `"EC"` / `"EC384"` / `"OKP"`); `tokens`: the script's token
    /// specs by name (see its docstring).
    pub fn make(keys: &[(&str, &str)], tokens: Value) -> Tokens {
        let keys: Vec<Value> = keys
            .iter()
            .map(|(kid, kty)| json!({ "kid": kid, "kty": kty }))
            .collect();
        let spec = json!({ "keys": keys, "tokens": tokens });
        Tokens {
            out: run_script("jwt_tokens.py", &[&spec.to_string()]),
        }
    }

    /// The token named `name`.
    pub fn get(&self, name: &str) -> String {
        match self.out["tokens"][name].as_str() {
            Some(t) => t.to_owned(),
            None => panic!("no token {name:?} in {}", self.out),
        }
    }

    /// A JWKS document with the public keys of `kids`.
    pub fn jwks(&self, kids: &[&str]) -> String {
        let keys: Vec<&Value> = kids.iter().map(|k| &self.out["jwks"][k]).collect();
        json!({ "keys": keys }).to_string()
    }
}

/// An HTTPS server of one JWKS document.
pub struct JwksServer {
    addr: SocketAddr,
    body: Arc<Mutex<String>>,
    down: Arc<AtomicBool>,
    fetches: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl JwksServer {
    /// Serves `body` with the certificate `cert`/`key` (PEM files).
    pub fn start(cert: &Path, key: &Path, body: &str) -> JwksServer {
        let chain: Vec<_> = CertificateDer::pem_file_iter(cert)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let key = PrivateKeyDer::from_pem_file(key).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let server = JwksServer {
            addr: listener.local_addr().unwrap(),
            body: Arc::new(Mutex::new(body.to_owned())),
            down: Arc::new(AtomicBool::new(false)),
            fetches: Arc::new(AtomicUsize::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (body, down, fetches, stop) = (
            Arc::clone(&server.body),
            Arc::clone(&server.down),
            Arc::clone(&server.fetches),
            Arc::clone(&server.stop),
        );
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let tcp = match listener.accept() {
                    Ok((tcp, _)) => tcp,
                    Err(_) => {
                        thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                };
                if down.load(Ordering::Relaxed) {
                    continue; // dropped: closed unanswered
                }
                let _ = tcp.set_nonblocking(false);
                let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
                let conn = rustls::ServerConnection::new(Arc::clone(&config)).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16384 {
                    match tls.read(&mut buf) {
                        Ok(n @ 1..) => head.extend_from_slice(&buf[..n]),
                        _ => break,
                    }
                }
                if !head.starts_with(b"GET ") {
                    continue;
                }
                let body = body.lock().unwrap().clone();
                let response = format!(
                    "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                if tls.write_all(response.as_bytes()).is_ok() {
                    fetches.fetch_add(1, Ordering::Relaxed);
                }
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        });
        server
    }

    /// `https://127.0.0.1:<port>/jwks.json` (the certificate must name 127.0.0.1).
    pub fn uri(&self) -> String {
        format!("https://127.0.0.1:{}/jwks.json", self.addr.port())
    }

    /// Serves `body` from now on.
    pub fn set(&self, body: &str) {
        *self.body.lock().unwrap() = body.to_owned();
    }

    /// `true`: every connection is closed unanswered.
    pub fn down(&self, down: bool) {
        self.down.store(down, Ordering::Relaxed);
    }

    /// Documents served so far.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::Relaxed)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
