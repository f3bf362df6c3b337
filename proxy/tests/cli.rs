//! The `ringside` binary: `check`, `--version`, `--help`, `default-config`, `run` with signals
//! (SIGTERM/SIGINT drain and exit 0, SIGHUP re-reads the file).
//!
//! Self-contained (std only): configs go to a fresh temp directory, listeners bind
//! 127.0.0.1:0 and the real address is read from the "listening" log line on stderr. Signals
//! are sent with kill(1) to the child this test started.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

fn ringside() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ringside"));
    c.env_remove("RUST_LOG").env("NO_COLOR", "1");
    c
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "ringside-cli-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        // Write then rename, so a running ringside never reads half a file.
        let tmp = self.0.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn check(path: &Path) -> Output {
    ringside()
        .arg("check")
        .arg("--config")
        .arg(path)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

/// Removes ANSI colour sequences, in case the log writer adds them.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A `ringside run` child whose stderr is collected line by line. Killed on drop if still
/// running.
struct Running {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = ringside()
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                sink.lock().unwrap().push(strip_ansi(&line));
            }
        });
        Running { child, log }
    }

    fn run_config(path: &Path) -> Running {
        Running::start(&["run", "--config", path.to_str().unwrap()])
    }

    fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// The first log line containing `needle` (waiting for it), or `None`.
    fn wait_log(&mut self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.log.lock().unwrap().iter().find(|l| l.contains(needle)) {
                return Some(l.clone());
            }
            if Instant::now() >= deadline || matches!(self.child.try_wait(), Ok(Some(_))) {
                return self
                    .log
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|l| l.contains(needle))
                    .cloned();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The address of listener `name`, from its "listening" log line.
    fn listening(&mut self, name: &str) -> SocketAddr {
        let needle = format!("listener={name} ");
        let deadline = Instant::now() + WAIT;
        loop {
            let line = self
                .log
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains("listening") && l.contains(&needle))
                .cloned();
            if let Some(line) = line {
                let addr = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("address="))
                    .unwrap();
                return addr.parse().unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "no \"listening\" line for {name}; log:\n{}",
                self.log_text()
            );
            assert!(
                !matches!(self.child.try_wait(), Ok(Some(_))),
                "ringside exited before listening; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args(["-s", sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success(), "kill -s {sig} failed");
    }

    fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "ringside did not exit in {timeout:?}; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One request on a fresh connection; returns (status, headers, body). The response must
/// carry Content-Length.
fn http(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect_timeout(&addr, WAIT).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = text(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .expect("a Content-Length");
            if buf.len() >= end + 4 + len {
                let status = head.split(' ').nth(1).unwrap().parse().unwrap();
                return (status, head, text(&buf[end + 4..end + 4 + len]));
            }
        }
        match s.read(&mut chunk) {
            Ok(0) => panic!("closed mid-response: {:?}", text(&buf)),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("reading response: {e}; got {:?}", text(&buf)),
        }
    }
}

fn direct_config(body: &str) -> String {
    format!(
        "[proxy]\ndrain_timeout_ms = 5000\n\
         [[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n\
         [[routes]]\nlistener = \"in\"\nname = \"all\"\ndirect_response = {{ status = 200, body = \"{body}\" }}\n"
    )
}

#[test]
fn check_accepts_a_valid_file() {
    let dir = TempDir::new();
    let path = dir.write("ok.toml", &direct_config("hi"));
    let out = check(&path);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("configuration OK"),
        "stdout: {}",
        text(&out.stdout)
    );
}

#[test]
fn check_prints_every_error_with_its_path_and_exits_1() {
    let dir = TempDir::new();
    let path = dir.write(
        "bad.toml",
        r#"
[proxy]
workers = 0
[[listeners]]
name = "in"
bind = "127.0.0.1:0"
bnd = "typo"
[[routes]]
listener = "in"
name = "all"
cluster = "missing"
[[clusters]]
name = "app"
endpoints = ["10.0.0.1"]
"#,
    );
    let out = check(&path);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    for (path, what) in [
        ("proxy.workers", "0"),
        ("listeners[0].bnd", "unknown field"),
        ("routes[0].cluster", "missing"),
        ("clusters[0].endpoints[0]", "10.0.0.1"),
    ] {
        let line = err.lines().find(|l| l.contains(&format!("{path}: ")));
        let line = line.unwrap_or_else(|| panic!("no error for {path}; stderr:\n{err}"));
        assert!(
            line.contains(what),
            "error for {path} does not mention {what:?}: {line}"
        );
    }
    assert!(!text(&out.stdout).contains("configuration OK"));
}

#[test]
fn check_refuses_a_file_without_listeners() {
    let dir = TempDir::new();
    for (name, content) in [("empty.toml", ""), ("cut.toml", "[proxy]\nworkers = 1\n")] {
        let out = check(&dir.write(name, content));
        assert_eq!(out.status.code(), Some(1), "{name}");
        let err = text(&out.stderr);
        assert!(
            err.contains(&format!("{name}: listeners: at least one is required")),
            "{err}"
        );
    }
}

#[test]
fn check_of_a_missing_file_fails() {
    let dir = TempDir::new();
    let out = check(&dir.0.join("nope.toml"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("nope.toml"),
        "stderr: {}",
        text(&out.stderr)
    );
}

#[test]
fn check_reports_a_syntax_error() {
    let dir = TempDir::new();
    let path = dir.write("syntax.toml", "[[listeners]\nname = \n");
    let out = check(&path);
    assert_eq!(out.status.code(), Some(1));
    assert!(!text(&out.stderr).trim().is_empty());
}

#[test]
fn version_and_help() {
    let out = ringside().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout).trim(),
        format!("ringside {}", env!("CARGO_PKG_VERSION"))
    );
    let out = ringside().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = text(&out.stdout);
    for word in ["run", "check", "--config", "--log-level", "--version"] {
        assert!(
            help.contains(word),
            "--help does not mention {word}:\n{help}"
        );
    }
}

#[test]
fn unknown_argument_is_a_usage_error() {
    let out = ringside().arg("--no-such-flag").output().unwrap();
    assert!(!out.status.success());
    assert!(!text(&out.stderr).is_empty());
}

#[test]
fn the_bootstrap_timeout_needs_ctld_alone_and_a_duration() {
    let dir = TempDir::new();
    let file = dir.write("ok.toml", &direct_config("hi"));
    let file = file.to_str().unwrap();
    for (args, says) in [
        (vec!["run", "--bootstrap-timeout", "30s"], "--ctld"),
        (
            vec![
                "run",
                "--ctld",
                "/x",
                "--config",
                file,
                "--bootstrap-timeout",
                "30s",
            ],
            "--config",
        ),
        (
            vec!["run", "--ctld", "/x", "--bootstrap-timeout", "30"],
            "missing unit",
        ),
    ] {
        let out = ringside().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains(says),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn run_with_an_invalid_file_exits_1_with_the_errors() {
    let dir = TempDir::new();
    let path = dir.write(
        "bad.toml",
        "[[clusters]]\nname = \"x\"\nendpoints = [\"nowhere\"]\n",
    );
    let out = ringside()
        .arg("run")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("clusters[0].endpoints[0]"),
        "stderr: {}",
        text(&out.stderr)
    );
}

#[test]
fn embedded_default_config_is_valid_and_serves_a_page_on_8080() {
    let out = ringside().arg("default-config").output().unwrap();
    assert!(out.status.success());
    let default = text(&out.stdout);
    assert!(default.contains("127.0.0.1:8080"), "{default}");
    let dir = TempDir::new();
    let path = dir.write("default.toml", &default);
    assert!(
        check(&path).status.success(),
        "the embedded default passes check"
    );
    let out = ringside().arg("check").output().unwrap();
    assert!(
        out.status.success(),
        "check without --config checks the default: {}",
        text(&out.stderr)
    );

    // Serving it needs port 8080, which this machine may be using for something else.
    if TcpListener::bind("127.0.0.1:8080").is_err() {
        eprintln!("port 8080 is busy: skipping the request to the embedded default");
        return;
    }
    let mut run = Running::start(&["run"]);
    if run.wait_log("listening", WAIT).is_none() {
        eprintln!(
            "ringside could not take port 8080 (raced): skipping; log:\n{}",
            run.log_text()
        );
        return;
    }
    let addr = run.listening("default");
    assert_eq!(addr, "127.0.0.1:8080".parse().unwrap());
    let (status, head, body) = http(addr, "/");
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(body.contains("ringside"), "{body}");
    run.signal("TERM");
    assert!(run.wait_exit(WAIT).success());
}

#[test]
fn sigterm_drains_an_in_flight_request_then_exits_0() {
    // An origin that answers after 1 s and reports when the request has arrived.
    let origin = TcpListener::bind("127.0.0.1:0").unwrap();
    let origin_addr = origin.local_addr().unwrap();
    let (arrived_tx, arrived) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut s, _) = origin.accept().unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let mut buf = [0u8; 4096];
        let mut got = Vec::new();
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
        arrived_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_secs(1));
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nslow done");
        std::thread::sleep(Duration::from_secs(1));
    });
    let dir = TempDir::new();
    let path = dir.write(
        "slow.toml",
        &format!(
            "[proxy]\ndrain_timeout_ms = 8000\n\
             [[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n\
             [[routes]]\nlistener = \"in\"\nname = \"all\"\ncluster = \"slow\"\n\
             [[clusters]]\nname = \"slow\"\nendpoints = [\"{origin_addr}\"]\n"
        ),
    );
    let mut run = Running::run_config(&path);
    let addr = run.listening("in");
    let client = std::thread::spawn(move || http(addr, "/slow"));
    arrived
        .recv_timeout(WAIT)
        .expect("the request reached the origin");
    let t = Instant::now();
    run.signal("TERM");
    let (status, _, body) = client.join().unwrap();
    assert_eq!(
        (status, body.as_str()),
        (200, "slow done"),
        "the in-flight request got its response"
    );
    let exit = run.wait_exit(WAIT);
    assert!(
        exit.success(),
        "exit status {exit:?}; log:\n{}",
        run.log_text()
    );
    assert!(
        t.elapsed() < Duration::from_secs(6),
        "drained without waiting for drain_timeout: {:?}",
        t.elapsed()
    );
}

#[test]
fn sigint_exits_0() {
    let dir = TempDir::new();
    let path = dir.write("ok.toml", &direct_config("hi"));
    let mut run = Running::run_config(&path);
    let addr = run.listening("in");
    assert_eq!(http(addr, "/").2, "hi");
    run.signal("INT");
    assert!(run.wait_exit(WAIT).success());
}

#[test]
fn sighup_reloads_a_changed_file() {
    let dir = TempDir::new();
    let path = dir.write("live.toml", &direct_config("one"));
    let mut run = Running::run_config(&path);
    let addr = run.listening("in");
    assert_eq!(http(addr, "/").2, "one");
    dir.write("live.toml", &direct_config("two"));
    run.signal("HUP");
    let deadline = Instant::now() + WAIT;
    while http(addr, "/").2 != "two" {
        assert!(
            Instant::now() < deadline,
            "never switched to the new body; log:\n{}",
            run.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    run.signal("TERM");
    assert!(run.wait_exit(WAIT).success());
}

#[test]
fn sighup_with_an_invalid_file_keeps_the_running_config() {
    let dir = TempDir::new();
    let path = dir.write("live.toml", &direct_config("one"));
    let mut run = Running::run_config(&path);
    let addr = run.listening("in");
    assert_eq!(http(addr, "/").2, "one");
    // A bad address; an empty file, and one cut short, would close every listener.
    let cases = [
        (
            "[[listeners]]\nname = \"in\"\nbind = \"not an address\"\n",
            "listeners[0].bind",
        ),
        ("", "listeners: at least one is required"),
        (
            "[proxy]\ndrain_timeout_ms = 5000\n",
            "listeners: at least one is required",
        ),
    ];
    for (i, (content, error)) in cases.into_iter().enumerate() {
        dir.write("live.toml", content);
        run.signal("HUP");
        let deadline = Instant::now() + WAIT;
        while run.log_text().matches("reload rejected").count() <= i && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            run.log_text().matches("reload rejected").count() > i,
            "the bad file is reported; log:\n{}",
            run.log_text()
        );
        assert!(
            run.log_text().contains(error),
            "with its path ({error}); log:\n{}",
            run.log_text()
        );
        assert_eq!(
            http(addr, "/").2,
            "one",
            "the old configuration still serves"
        );
        assert!(matches!(run.child.try_wait(), Ok(None)), "still running");
    }
    run.signal("TERM");
    assert!(run.wait_exit(WAIT).success());
}

#[test]
fn log_level_filters_the_logs() {
    let dir = TempDir::new();
    let path = dir.write("ok.toml", &direct_config("hi"));
    let mut run = Running::start(&[
        "--log-level",
        "debug",
        "run",
        "--config",
        path.to_str().unwrap(),
    ]);
    let addr = run.listening("in");
    assert_eq!(http(addr, "/").2, "hi");
    run.signal("TERM");
    assert!(run.wait_exit(WAIT).success());
    assert!(
        run.wait_log("DEBUG", Duration::from_secs(2)).is_some(),
        "no debug line at debug:\n{}",
        run.log_text()
    );

    // At warn, the info lines (such as "listening") are gone.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let quiet = direct_config("quiet").replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    let path = dir.write("quiet.toml", &quiet);
    let mut run = Running::start(&[
        "--log-level",
        "warn",
        "run",
        "--config",
        path.to_str().unwrap(),
    ]);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "ringside never listened on {addr}; log:\n{}",
            run.log_text()
        );
        assert!(
            matches!(run.child.try_wait(), Ok(None)),
            "exited; log:\n{}",
            run.log_text()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(http(addr, "/").2, "quiet");
    assert!(
        !run.log_text().contains("INFO"),
        "info lines at --log-level warn:\n{}",
        run.log_text()
    );
    run.signal("TERM");
    assert!(run.wait_exit(WAIT).success());
}
