//! The xDS tests' peers: the real ADS management server (`tests/xds/ads_server.py`, grpcio
//! and xds-protos in the test virtualenv), HTTP origins that answer their name, a client,
//! and the Envoy resources the tests send, in Envoy's JSON form; a real Envoy fed by the
//! same server (`envoy.rs`).

#![allow(dead_code, unused_imports, clippy::unwrap_used)]

mod envoy;
mod mesh;
mod referee;
mod resources;

pub use envoy::*;
pub use mesh::*;
pub use referee::*;
pub use resources::*;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

/// The ADS server; killed (by pid) when dropped, and it exits when its stdin closes.
pub struct Ads {
    child: Child,
    stdin: ChildStdin,
    out: BufReader<ChildStdout>,
    pub port: u16,
}

/// The test virtualenv (`scripts/install-test-deps`).
fn pyenv() -> PathBuf {
    std::env::var_os("RINGSIDE_PYENV").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/pyenv"),
        PathBuf::from,
    )
}

fn python() -> PathBuf {
    let env = pyenv();
    let python = env.join("bin/python");
    assert!(
        python.exists(),
        "no Python virtualenv at {}: run scripts/install-test-deps (grpcio, xds-protos)",
        env.display()
    );
    python
}

impl Ads {
    pub fn start() -> Ads {
        Ads::start_on(None)
    }

    /// On `port` again (a restarted server), else an ephemeral port.
    pub fn start_on(port: Option<u16>) -> Ads {
        Ads::start_with(port, &[])
    }

    /// As `start_on`, with more arguments (`--tls CERT KEY`, `--client-ca CA`).
    pub fn start_with(port: Option<u16>, args: &[&std::ffi::OsStr]) -> Ads {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/xds/ads_server.py");
        let mut cmd = Command::new(python());
        cmd.arg(script)
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1");
        if let Some(p) = port {
            cmd.args(["--port", &p.to_string()]);
        }
        cmd.args(args);
        for name in ["http_proxy", "https_proxy", "all_proxy", "grpc_proxy"] {
            cmd.env_remove(name).env_remove(name.to_uppercase());
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start ads_server.py");
        let stdin = child.stdin.take().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let port = serde_json::from_str::<Value>(&line)
            .ok()
            .and_then(|v| v["port"].as_u64())
            .unwrap_or_else(|| panic!("ads_server.py said {line:?}, not its port"));
        Ads {
            child,
            stdin,
            out,
            port: u16::try_from(port).unwrap(),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn call(&mut self, cmd: Value) -> Value {
        writeln!(self.stdin, "{cmd}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.out.read_line(&mut line).unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert!(v.get("error").is_none(), "ads_server.py: {v}");
        v
    }

    /// Replaces the resources (`{"cds": [...], "eds": [...], "lds": [...], "rds": [...]}`)
    /// and pushes them.
    pub fn set(&mut self, version: &str, resources: Value) {
        self.call(json!({"op": "set", "version": version, "resources": resources}));
    }

    /// As `set`, with resources of their own for some nodes (`{"NODE ID": {"lds": [...]}}`).
    pub fn set_per_node(&mut self, version: &str, resources: Value, per_node: Value) {
        self.call(
            json!({"op": "set", "version": version, "resources": resources,
            "per_node": per_node}),
        );
    }

    pub fn reset(&mut self) {
        self.call(json!({"op": "reset"}));
    }

    /// Ends the local SDS server's streams (`--sds-uds`) with UNAVAILABLE.
    pub fn reset_local(&mut self) {
        self.call(json!({"op": "reset_local"}));
    }

    pub fn state(&mut self) -> Value {
        self.call(json!({"op": "state"}))
    }

    /// The version ctld last ACKed for each of the four types, `None` until all did.
    pub fn acked(&mut self) -> Option<[String; 4]> {
        let s = self.state();
        let get = |k: &str| s["acks"][k].as_str().map(str::to_owned);
        Some([get("cds")?, get("eds")?, get("lds")?, get("rds")?])
    }

    /// The error_detail of every NACK so far.
    pub fn nacks(&mut self) -> Vec<String> {
        let s = self.state();
        s["nacks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["error"].as_str().unwrap().to_owned())
            .collect()
    }
}

impl Ads {
    /// Kills the server (by pid): its streams end, its port refuses connections.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Ads {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP/1.1 origin on 127.0.0.1 that answers every request with its name (keep-alive).
pub struct Origin {
    pub addr: SocketAddr,
}

impl Origin {
    pub fn start(name: &'static str) -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                std::thread::spawn(move || serve(conn, name));
            }
        });
        Origin { addr }
    }

    /// An origin that answers `origin=NAME path=PATH` (the request target it saw).
    pub fn echo(name: &'static str) -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    serve_with(conn, |path| format!("origin={name} path={path}"))
                });
            }
        });
        Origin { addr }
    }
}

fn serve(conn: TcpStream, name: &str) {
    serve_with(conn, |_| name.to_owned());
}

/// Answers each request of a keep-alive connection with `body(request target)`.
fn serve_with(mut conn: TcpStream, body: impl Fn(&str) -> String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            match conn.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end);
        let target = head.split_whitespace().nth(1).unwrap_or_default();
        let name = body(target);
        let reply = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\ncontent-type: text/plain\r\n\r\n{name}",
            name.len()
        );
        if conn.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// `GET path` on a new connection: `(status, body)`, or `None` if the exchange failed.
pub fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> Option<(u16, String)> {
    exchange(port, path, headers).map(|(status, _, body)| (status, body))
}

/// `GET target` with `headers` (and `host: svc.test` unless they have a host) on a new
/// connection: `(status, head, body)`, or `None` if the exchange failed.
pub fn exchange(
    port: u16,
    target: &str,
    headers: &[(&str, &str)],
) -> Option<(u16, String, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut req = format!("GET {target} HTTP/1.1\r\nconnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str("host: svc.test\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let (head, body) = resp.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, head.to_owned(), body.to_owned()))
}

/// The body of a 200 answer to `GET path`.
pub fn body(port: u16, path: &str) -> Option<String> {
    get(port, path, &[])
        .filter(|(s, _)| *s == 200)
        .map(|(_, b)| b)
}
