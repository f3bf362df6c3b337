//! The harness of `admin.rs`: a temp dir, the `ringside` child with its log, a one-shot HTTP
//! client, a keep-alive origin, a parser for the text exposition, paced traffic, and headless
//! Chromium. Std only (and serde_json); every wait polls with a deadline.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// Harness: temp dir, the ringside child, HTTP client, origin, metrics parser.

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "ringside-admin-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// Writes atomically (write then rename), so a reload never reads half a file.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
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

/// A `ringside run` child with its stderr collected line by line; killed on drop.
pub struct Ringside {
    pub child: Child,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Ringside {
    pub fn start(dir: &TempDir, config: &str, extra: &[&str]) -> Ringside {
        Ringside::start_as(
            Command::new(env!("CARGO_BIN_EXE_ringside")),
            dir,
            config,
            extra,
        )
    }

    /// As [`Ringside::start`], with `command` running the binary (`ip netns exec NS setpriv
    /// ... ringside`, say).
    pub fn start_as(mut command: Command, dir: &TempDir, config: &str, extra: &[&str]) -> Ringside {
        let path = dir.write("ringside.toml", config);
        let mut child = command
            .args(extra)
            .arg("run")
            .arg("--config")
            .arg(&path)
            .arg("--control-socket")
            .arg(dir.0.join("ctl.sock"))
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Ringside { child, log }
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn count_log(&self, needle: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// The value of `field=` in the first log line containing `needle`.
    pub fn log_field(&mut self, needle: &str, field: &str) -> String {
        let prefix = format!("{field}=");
        let deadline = Instant::now() + WAIT;
        loop {
            let found = self.log.lock().unwrap().iter().find_map(|l| {
                if !l.contains(needle) {
                    return None;
                }
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix(prefix.as_str()))
                    .map(str::to_string)
            });
            if let Some(v) = found {
                return v;
            }
            assert!(
                Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)),
                "no {needle:?} line with {field}=; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn admin(&mut self) -> SocketAddr {
        self.log_field("admin endpoint serving", "admin")
            .parse()
            .unwrap()
    }

    pub fn listener(&mut self, name: &str) -> SocketAddr {
        let needle = format!("listener={name} ");
        self.log_field(&needle, "address").parse().unwrap()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args(["-s", sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success(), "kill -s {sig} failed");
    }

    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "ringside did not exit; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Ringside {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    /// Lower-cased head.
    pub head: String,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One request on a fresh connection; the response must carry Content-Length.
pub fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Resp {
    let mut s = TcpStream::connect_timeout(&addr, WAIT).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    read_response(&mut s, method == "HEAD")
}

pub fn read_response(s: &mut TcpStream, head_only: bool) -> Resp {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .expect("a Content-Length");
            let len = if head_only { 0 } else { len };
            if buf.len() >= end + 4 + len {
                let status = head.split(' ').nth(1).unwrap().parse().unwrap();
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned();
                return Resp { status, head, body };
            }
        }
        match s.read(&mut chunk) {
            Ok(0) => panic!("closed mid-response: {:?}", String::from_utf8_lossy(&buf)),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("reading a response: {e}"),
        }
    }
}

pub fn get(addr: SocketAddr, path: &str) -> Resp {
    send(addr, "GET", path, &[], "")
}

/// Polls `f` until it returns `Some`, or fails with `what`.
pub fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A keep-alive HTTP/1.1 origin answering GETs with `answer(path)` = (status, body).
pub struct Origin {
    pub addr: SocketAddr,
}

impl Origin {
    pub fn start(answer: impl Fn(&str) -> (u16, String) + Send + Sync + 'static) -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let answer = Arc::new(answer);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let answer = answer.clone();
                std::thread::spawn(move || Origin::serve(conn, &*answer));
            }
        });
        Origin { addr }
    }

    pub fn serve(conn: TcpStream, answer: &dyn Fn(&str) -> (u16, String)) {
        let mut r = BufReader::new(conn);
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 {
                    return;
                }
                if h.trim_end().is_empty() {
                    break;
                }
            }
            let (status, body) = answer(&path);
            let resp = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            if r.get_mut().write_all(resp.as_bytes()).is_err() {
                return;
            }
        }
    }
}

/// An address on which nothing listens (connections are refused) for the rest of the test
/// process: a socket bound without `SO_REUSEADDR` that never listens keeps the port, so no
/// listener started by a test running in parallel can take it.
pub fn refused_addr() -> SocketAddr {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    std::mem::forget(socket); // held until the process exits
    addr
}

/// One sample of a text exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

pub fn parse_labels(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            return out;
        }
        assert_eq!(chars.next(), Some('"'), "label {key} unquoted in {s}");
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c) => value.push(c),
                    None => panic!("dangling escape in {s}"),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        out.insert(key.trim_start_matches(',').to_string(), value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
}

pub fn parse_exposition(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, parse_labels(rest.strip_suffix('}').unwrap())),
                None => (series, BTreeMap::new()),
            };
            let value = match value {
                "+Inf" => f64::INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("bad value in {l}")),
            };
            Sample {
                name: name.to_string(),
                labels,
                value,
            }
        })
        .collect()
}

/// The value of the sample `name` with exactly these labels; 0 when absent.
pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    samples
        .iter()
        .find(|s| s.name == name && s.labels == want)
        .map_or(0.0, |s| s.value)
}

/// Sum of every sample `name` whose labels include these.
pub fn sum(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

pub fn scrape(admin: SocketAddr) -> (String, Vec<Sample>) {
    let r = get(admin, "/metrics");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.head.contains("content-type: text/plain; version=0.0.4"),
        "{}",
        r.head
    );
    let samples = parse_exposition(&r.body);
    (r.body, samples)
}

/// Every histogram `name` is cumulative, ends with `+Inf` equal to `_count`, and has a sum.
pub fn assert_histograms_consistent(samples: &[Sample], name: &str) {
    let bucket = format!("{name}_bucket");
    // (le, cumulative count) by the series' other labels.
    type Buckets = Vec<(f64, f64)>;
    let mut series: BTreeMap<Vec<(String, String)>, Buckets> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.name == bucket) {
        let le: f64 = match s.labels["le"].as_str() {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap(),
        };
        let mut key: Vec<(String, String)> = s.labels.clone().into_iter().collect();
        key.retain(|(k, _)| k != "le");
        series.entry(key).or_default().push((le, s.value));
    }
    assert!(!series.is_empty(), "no {bucket} samples");
    for (labels, mut buckets) in series {
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(
            buckets.windows(2).all(|w| w[0].1 <= w[1].1),
            "{name}{labels:?}: buckets not cumulative: {buckets:?}"
        );
        let inf = buckets.last().unwrap();
        assert!(inf.0.is_infinite(), "{name}{labels:?}: no +Inf bucket");
        let l: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let count = value(samples, &format!("{name}_count"), &l);
        assert_eq!(inf.1, count, "{name}{labels:?}: +Inf bucket != _count");
        let s = samples
            .iter()
            .find(|s| s.name == format!("{name}_sum") && s.labels.len() == l.len())
            .map(|s| s.value);
        assert!(s.is_some_and(|s| s >= 0.0), "{name}{labels:?}: no _sum");
    }
}

thread_local! {
    /// The I/O driver the current test runs the proxy on.
    static DRIVER: std::cell::Cell<&'static str> = const { std::cell::Cell::new("epoll") };
}

/// The driver of the current test.
pub fn driver() -> &'static str {
    DRIVER.with(std::cell::Cell::get)
}

/// Runs `test` once per I/O driver.
pub fn on_both_drivers(test: impl Fn()) {
    for d in ["io_uring", "epoll"] {
        DRIVER.with(|c| c.set(d));
        test();
    }
}

/// `[proxy]` with the admin endpoint on an ephemeral port.
pub fn proxy_section(workers: usize) -> String {
    let driver = DRIVER.with(std::cell::Cell::get);
    format!(
        "[proxy]\nworkers = {workers}\ndriver = \"{driver}\"\ndrain_timeout_ms = 8000\n\
         admin = \"127.0.0.1:0\"\n"
    )
}

/// The Chromium binary: `$RINGSIDE_CHROMIUM`, or `chromium`/`chromium-browser` on PATH.
pub fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("RINGSIDE_CHROMIUM") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser"] {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "Chromium is not installed, and the status-page test needs a real browser: run \
         `apt-get install -y chromium` (CI's .ci/run does), or set RINGSIDE_CHROMIUM"
    );
}

/// Requests on keep-alive connections until stopped; returns how many were answered.
pub struct Traffic {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Traffic {
    pub fn start(addr: SocketAddr, paths: &[&'static str]) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let threads = paths
            .iter()
            .map(|path| {
                let (stop, done, path) = (stop.clone(), done.clone(), *path);
                std::thread::spawn(move || {
                    let mut s = TcpStream::connect(addr).unwrap();
                    s.set_read_timeout(Some(WAIT)).unwrap();
                    while !stop.load(Ordering::Relaxed) {
                        let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");
                        s.write_all(req.as_bytes()).unwrap();
                        read_response(&mut s, false);
                        done.fetch_add(1, Ordering::Relaxed);
                        // Paced, not flat out: a steady few hundred requests a second that
                        // leave the CPUs to the browser.
                        std::thread::sleep(Duration::from_millis(2));
                    }
                })
            })
            .collect();
        Traffic {
            stop,
            done,
            threads,
        }
    }

    pub fn wait_for(&self, n: u64) {
        eventually("traffic flowing", || {
            (self.done.load(Ordering::Relaxed) >= n).then_some(())
        });
    }

    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
    }
}

/// Runs headless Chromium on `url` and returns the DOM after 3 s of (virtual) time, or
/// `None` if the browser did not finish within `limit`.
pub fn dump_dom(browser: &Path, url: &str, profile: &Path, limit: Duration) -> Option<String> {
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--virtual-time-budget=3000", "--dump-dom", url])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", browser.display()));
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let dom = reader.join().unwrap();
    let stderr = err_reader.join().unwrap();
    let status = status?;
    assert!(
        status.success() && dom.contains("</html>"),
        "chromium failed ({status:?}); stderr:\n{stderr}\nstdout:\n{dom}"
    );
    Some(dom)
}

/// The text of the element with `id`.
pub fn element_text<'a>(dom: &'a str, id: &str) -> &'a str {
    let open = format!("id=\"{id}\">");
    let start = dom
        .find(&open)
        .unwrap_or_else(|| panic!("no #{id} in\n{dom}"))
        + open.len();
    let len = dom[start..].find('<').unwrap();
    &dom[start..start + len]
}

/// The `td.rate` text of the row `<tr data-{attr}="{key}">`.
pub fn row_rate(dom: &str, attr: &str, key: &str) -> f64 {
    let open = format!("<tr data-{attr}=\"{key}\"");
    let start = dom
        .find(&open)
        .unwrap_or_else(|| panic!("no row {open} in\n{dom}"));
    let row = &dom[start..start + dom[start..].find("</tr>").unwrap()];
    let marker = "class=\"num rate\">";
    let at = row.find(marker).unwrap() + marker.len();
    let text = &row[at..at + row[at..].find('<').unwrap()];
    text.parse()
        .unwrap_or_else(|_| panic!("rate {text:?} in {row}"))
}
