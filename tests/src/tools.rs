//! Real command-line clients, run with a bounded runtime: `curl` and `h2load` (nghttp2-client).
//! `scripts/install-test-deps` installs both.
//!
//! - [`curl`] runs `curl -sS --max-time 10 --noproxy '*' ARGS` and splits the response status
//!   and HTTP version off its output ([`CurlOutput`]).
//! - [`h2load`] runs `h2load ARGS` and parses its summary ([`H2loadSummary`]).
//! - [`run_bounded`] runs any command, killing it after a time limit.

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long a [`curl`] run may take before it is killed (curl's own `--max-time` is 10 s).
pub const CURL_LIMIT: Duration = Duration::from_secs(20);

/// How long an [`h2load`] run may take before it is killed.
pub const H2LOAD_LIMIT: Duration = Duration::from_secs(30);

/// Runs `cmd` with stdin closed and stdout/stderr captured; kills it (by its PID) and panics
/// when it has not exited within `limit`.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e} (run scripts/install-test-deps)"));
    // Drain both pipes on threads so a chatty child never blocks on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let err = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = err.join().unwrap();
            panic!(
                "{what} still running after {limit:?}: killed\nstderr:\n{}",
                String::from_utf8_lossy(&stderr)
            );
        }
        thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// What one [`curl`] run gave.
#[derive(Debug, Clone)]
pub struct CurlOutput {
    /// The (last) response status; `None` when curl got no response (`%{http_code}` 000).
    pub status: Option<u16>,
    /// `%{http_version}` of the (last) response: `"1.1"`, `"2"`, ... (`"0"` when none).
    pub http_version: String,
    /// What curl wrote to stdout (the body, and the head with `-i`), lossily as UTF-8.
    pub stdout: String,
    pub stderr: String,
    /// curl's exit code (0 success, 7 could not connect, 28 timed out, 35 TLS handshake, ...).
    pub exit_code: Option<i32>,
}

impl CurlOutput {
    /// Whether curl exited 0.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }
}

/// The marker that precedes curl's `-w` report on stdout.
const CURL_MARK: &str = "\n@@ringside-curl@@ ";

/// Runs `curl -sS --max-time 10 --noproxy '*' -w ... ARGS` (killed after [`CURL_LIMIT`]).
/// `ARGS` may override `--max-time`, must not use `-w` (it is taken), and typically ends with
/// the URL: `curl(&["--http2-prior-knowledge", &format!("http://{addr}/")])`.
pub fn curl(args: &[&str]) -> CurlOutput {
    let write_out = format!("{CURL_MARK}%{{http_code}} %{{http_version}}\n");
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "--max-time",
        "10",
        "--noproxy",
        "*",
        "-w",
        &write_out,
    ])
    .args(args);
    let out = run_bounded(&mut cmd, CURL_LIMIT);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let Some(at) = stdout.rfind(CURL_MARK) else {
        panic!("curl {args:?} wrote no -w report\nstdout:\n{stdout}\nstderr:\n{stderr}");
    };
    let mut report = stdout[at + CURL_MARK.len()..].split_whitespace();
    let code: u16 = report.next().and_then(|c| c.parse().ok()).unwrap_or(0);
    let http_version = report.next().unwrap_or("0").to_string();
    CurlOutput {
        status: (code != 0).then_some(code),
        http_version,
        stdout: stdout[..at].to_string(),
        stderr,
        exit_code: out.status.code(),
    }
}

/// The summary of an [`h2load`] run (its `requests:` and `status codes:` lines).
#[derive(Debug, Clone, Default)]
pub struct H2loadSummary {
    pub requests_total: u64,
    pub requests_started: u64,
    pub requests_done: u64,
    /// Requests answered with a 2xx or 3xx status.
    pub succeeded: u64,
    pub failed: u64,
    pub errored: u64,
    pub timeout: u64,
    pub status_2xx: u64,
    pub status_3xx: u64,
    pub status_4xx: u64,
    pub status_5xx: u64,
    /// h2load's whole stdout, for assertion messages.
    pub stdout: String,
    pub stderr: String,
    pub exit_code: Option<i32>,
}

/// Runs `h2load ARGS` (killed after [`H2LOAD_LIMIT`]) and parses its summary; panics when
/// there is none. HTTP/2 by default (h2c with prior knowledge for `http://`, ALPN for
/// `https://`); `--h1` for HTTP/1.1. Keep runs small (`-n`, `-c`, `-m`) or bounded (`-D`).
pub fn h2load(args: &[&str]) -> H2loadSummary {
    let out = run_bounded(Command::new("h2load").args(args), H2LOAD_LIMIT);
    let mut s = H2loadSummary {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        exit_code: out.status.code(),
        ..H2loadSummary::default()
    };
    let mut seen = (false, false);
    for line in s.stdout.clone().lines() {
        if let Some(rest) = line.strip_prefix("requests:") {
            seen.0 = true;
            for (n, what) in counts(rest) {
                match what {
                    "total" => s.requests_total = n,
                    "started" => s.requests_started = n,
                    "done" => s.requests_done = n,
                    "succeeded" => s.succeeded = n,
                    "failed" => s.failed = n,
                    "errored" => s.errored = n,
                    "timeout" => s.timeout = n,
                    _ => {}
                }
            }
        } else if let Some(rest) = line.strip_prefix("status codes:") {
            seen.1 = true;
            for (n, what) in counts(rest) {
                match what {
                    "2xx" => s.status_2xx = n,
                    "3xx" => s.status_3xx = n,
                    "4xx" => s.status_4xx = n,
                    "5xx" => s.status_5xx = n,
                    _ => {}
                }
            }
        }
    }
    assert!(
        seen == (true, true),
        "h2load {args:?} printed no summary\nstdout:\n{}\nstderr:\n{}",
        s.stdout,
        s.stderr
    );
    s
}

/// `" 5 total, 0 started"` → `[(5, "total"), (0, "started")]`.
fn counts(list: &str) -> Vec<(u64, &str)> {
    list.split(',')
        .filter_map(|item| {
            let (n, what) = item.trim().split_once(' ')?;
            Some((n.parse().ok()?, what.trim()))
        })
        .collect()
}

/// `payload` as one gRPC length-prefixed message (uncompressed), for sending gRPC with curl or
/// h2load: write it to a file, then `--data-binary @FILE` (curl) or `-d FILE` (h2load), with
/// `-H 'content-type: application/grpc' -H 'te: trailers'` and the path
/// `/test.Echo/Unary` (see `python::PyServer::grpc`).
pub fn grpc_frame(payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}
