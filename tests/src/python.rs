//! Real Python gRPC and WebSocket peers (the scripts in `tests/python/`), run in the virtualenv
//! `scripts/install-test-deps` makes (grpcio, websockets, PyJWT, cryptography).
//!
//! - [`PyServer::grpc`] / [`PyServer::grpc_tls`]: the `test.Echo` service of
//!   `grpc_server.py` (methods `Unary`, `ServerStream`, `ClientStream`, `Bidi`, `Slow`; request
//!   metadata `x-fail`, `x-echo`); [`PyServer::websocket`]: the echo server of `ws_server.py`
//!   ([`PyServer::websocket_plain`]: a pure echo that never pings on its own).
//!   Each listens on an ephemeral 127.0.0.1 port and is killed when dropped.
//! - [`grpc_client`] and [`ws_client`] run one client session and return its JSON report;
//!   [`ws_conformance`] runs the WebSocket conformance cases against several targets;
//!   [`run_script`] runs any other script (`jwt_tokens.py`, PyJWT) the same way.
//!   The scripts' docstrings describe their cases, arguments and reports.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::tools::run_bounded;

/// How long a server may take to print its port.
pub const START_LIMIT: Duration = Duration::from_secs(10);

/// How long one client run may take before it is killed.
pub const CLIENT_LIMIT: Duration = Duration::from_secs(20);

/// The directory of the Python scripts (`tests/python/`).
pub fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python")
}

/// The virtualenv's python: `$RINGSIDE_PYENV/bin/python`, by default
/// `<workspace>/target/pyenv/bin/python` (whatever `CARGO_TARGET_DIR` is, like the script).
/// Panics, saying to run `scripts/install-test-deps`, when it is missing.
pub fn pyenv_python() -> PathBuf {
    let env = match std::env::var_os("RINGSIDE_PYENV") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/pyenv"),
    };
    let python = env.join("bin/python");
    assert!(
        python.exists(),
        "no Python virtualenv at {}: run scripts/install-test-deps (it makes one with grpcio \
         and websockets)",
        env.display()
    );
    python
}

/// A `python SCRIPT ARGS` command in the virtualenv, without proxy settings from the
/// environment (the peers talk to loopback).
fn python_command(script: &str) -> Command {
    let mut cmd = Command::new(pyenv_python());
    cmd.arg(scripts_dir().join(script))
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    for name in ["http_proxy", "https_proxy", "all_proxy", "grpc_proxy"] {
        cmd.env_remove(name).env_remove(name.to_uppercase());
    }
    cmd
}

/// A Python server process; killed (by PID) when dropped.
pub struct PyServer {
    child: Child,
    /// Held open: the server exits when its stdin closes, so it dies with the test process
    /// even if `Drop` never runs.
    _stdin: ChildStdin,
    stderr: Arc<Mutex<Vec<u8>>>,
    pub port: u16,
}

impl PyServer {
    /// `grpc_server.py`: `test.Echo` over h2c.
    pub fn grpc() -> PyServer {
        PyServer::spawn("grpc_server.py", &[])
    }

    /// `grpc_server.py --tls CERT KEY`: `test.Echo` over TLS (see `certs::TestPki::leaf`).
    pub fn grpc_tls(cert: &Path, key: &Path) -> PyServer {
        PyServer::spawn("grpc_server.py", &["--tls".as_ref(), cert, key])
    }

    /// `ws_server.py`: a WebSocket echo server.
    pub fn websocket() -> PyServer {
        PyServer::spawn("ws_server.py", &[])
    }

    /// `ws_server.py --plain`: a WebSocket echo server without special messages or keepalive
    /// pings (the conformance run's).
    pub fn websocket_plain() -> PyServer {
        PyServer::spawn("ws_server.py", &["--plain".as_ref()])
    }

    /// Runs `tests/python/SCRIPT ARGS` and waits (at most [`START_LIMIT`]) for its first
    /// stdout line, `PORT <n>`.
    pub fn spawn(script: &str, args: &[&Path]) -> PyServer {
        let mut child = python_command(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {script}: {e}"));
        let stdin = child.stdin.take().unwrap();

        // Collect stderr for failure messages; drain stdout after the port line.
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut err = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = err.read(&mut buf) {
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let (tx, rx) = mpsc::channel();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        thread::spawn(move || {
            let mut line = String::new();
            let _ = out.read_line(&mut line);
            let _ = tx.send(line);
            let _ = std::io::copy(&mut out, &mut std::io::sink());
        });

        let mut server = PyServer {
            child,
            _stdin: stdin,
            stderr,
            port: 0,
        };
        let line = rx.recv_timeout(START_LIMIT).unwrap_or_default();
        match line.trim().strip_prefix("PORT ").map(str::parse) {
            Some(Ok(port)) => server.port = port,
            _ => {
                // Give a crashing interpreter a moment to finish its traceback.
                thread::sleep(Duration::from_millis(200));
                panic!(
                    "{script} did not print `PORT <n>` within {START_LIMIT:?} (got {line:?})\n\
                     stderr:\n{}",
                    server.stderr()
                )
            }
        }
        server
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// What the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `grpc_client.py TARGET CASE ARGS` (killed after [`CLIENT_LIMIT`]) and returns its JSON:
/// `{"ok", "code", "details", "responses", "initial_metadata", "trailing_metadata"}`.
///
/// `CASE` is `unary [PAYLOAD]`, `server_stream [N]`, `client_stream [MSG...]`,
/// `bidi [MSG...]` (ping-pong: each message waits for the previous echo), `slow [MS]` or
/// `fail [CODE]`; options go in `args` too: `--timeout S`, `--metadata k=v` (repeatable),
/// `--tls-ca CA --authority NAME`.
pub fn grpc_client(target: &str, case: &str, args: &[&str]) -> serde_json::Value {
    run_client("grpc_client.py", &[&[target, case], args].concat())
}

/// Runs `ws_client.py URL ARGS` (killed after [`CLIENT_LIMIT`]) and returns its JSON:
/// `{"ok", "echoes", "binary_ok", "close_code", "close_reason", "error"}`. `args`:
/// `--messages A B ...`, `--binary-size N`, `--header K=V` (repeatable), `--tls-ca CA`,
/// `--timeout S`.
pub fn ws_client(url: &str, args: &[&str]) -> serde_json::Value {
    run_client("ws_client.py", &[&[url], args].concat())
}

/// How long a [`ws_conformance`] run may take (the full list sends 16 MiB messages three
/// times over).
pub const CONFORMANCE_LIMIT: Duration = Duration::from_secs(300);

/// Runs `ws_conformance.py` (killed after [`CONFORMANCE_LIMIT`]) against `targets`, each
/// `NAME=HOST:PORT` or `NAME=HOST:PORT:tls` (the first is the reference), and returns its JSON:
/// `{"cases", "full", "targets", "categories", "endings", "differences"}`. `ca` verifies the
/// `:tls` targets (as `localhost`); `full` runs the full case list instead of the short one.
pub fn ws_conformance(targets: &[String], ca: Option<&Path>, full: bool) -> serde_json::Value {
    let mut args: Vec<String> = targets.iter().map(|t| format!("--target={t}")).collect();
    if let Some(ca) = ca {
        args.push(format!("--ca={}", ca.display()));
    }
    if full {
        args.push("--full".into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_client_within("ws_conformance.py", &args, CONFORMANCE_LIMIT)
}

/// Runs `tests/python/SCRIPT ARGS` (killed after [`CLIENT_LIMIT`]) and returns the JSON of its
/// last output line (`jwt_tokens.py`: see `crate::jwt::Tokens`).
pub fn run_script(script: &str, args: &[&str]) -> serde_json::Value {
    run_client(script, args)
}

fn run_client(script: &str, args: &[&str]) -> serde_json::Value {
    run_client_within(script, args, CLIENT_LIMIT)
}

fn run_client_within(script: &str, args: &[&str], limit: Duration) -> serde_json::Value {
    let out = run_bounded(python_command(script).args(args), limit);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} {args:?} failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    let line = stdout.lines().rev().find(|l| !l.trim().is_empty());
    match line.map(serde_json::from_str) {
        Some(Ok(value)) => value,
        _ => panic!("{script} {args:?} printed no JSON line\nstdout:\n{stdout}\nstderr:\n{stderr}"),
    }
}
