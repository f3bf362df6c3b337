//! The admin endpoint of the `ringside` binary (docs/admin.md): exact counters in `/metrics`
//! after a known mix of requests, consistent histograms, OpenMetrics, `/ready` during a drain,
//! `/config` across SIGHUP with the reload counters, `/clusters` with passive health, the log
//! level changed at run time, HTTP edge cases, a port in use, a hot upgrade keeping the admin
//! port, and the status page rendered by a real headless Chromium.
//!
//! Self-contained (std + serde_json): configs go to a fresh temp directory, every listener
//! (the admin one too) binds 127.0.0.1:0 and its real address is read from the log. Origins
//! are std threads. Nothing sleeps to synchronise: every wait polls with a deadline.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

const WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// Harness: temp dir, the ringside child, HTTP client, origin, metrics parser.

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
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
    fn write(&self, name: &str, text: &str) -> PathBuf {
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
struct Ringside {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Ringside {
    fn start(dir: &TempDir, config: &str, extra: &[&str]) -> Ringside {
        let path = dir.write("ringside.toml", config);
        let mut child = Command::new(env!("CARGO_BIN_EXE_ringside"))
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

    fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    fn count_log(&self, needle: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// The value of `field=` in the first log line containing `needle`.
    fn log_field(&mut self, needle: &str, field: &str) -> String {
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

    fn admin(&mut self) -> SocketAddr {
        self.log_field("admin endpoint serving", "admin")
            .parse()
            .unwrap()
    }

    fn listener(&mut self, name: &str) -> SocketAddr {
        let needle = format!("listener={name} ");
        self.log_field(&needle, "address").parse().unwrap()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args(["-s", sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success(), "kill -s {sig} failed");
    }

    fn wait_exit(&mut self) -> ExitStatus {
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
struct Resp {
    status: u16,
    /// Lower-cased head.
    head: String,
    body: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One request on a fresh connection; the response must carry Content-Length.
fn send(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
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

fn read_response(s: &mut TcpStream, head_only: bool) -> Resp {
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

fn get(addr: SocketAddr, path: &str) -> Resp {
    send(addr, "GET", path, &[], "")
}

/// Polls `f` until it returns `Some`, or fails with `what`.
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
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
struct Origin {
    addr: SocketAddr,
}

impl Origin {
    fn start(answer: impl Fn(&str) -> (u16, String) + Send + Sync + 'static) -> Origin {
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

    fn serve(conn: TcpStream, answer: &dyn Fn(&str) -> (u16, String)) {
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

/// An address on which nothing listens (connections are refused).
fn refused_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// One sample of a text exposition.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn parse_labels(s: &str) -> BTreeMap<String, String> {
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

fn parse_exposition(text: &str) -> Vec<Sample> {
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
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
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
fn sum(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
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

fn scrape(admin: SocketAddr) -> (String, Vec<Sample>) {
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
fn assert_histograms_consistent(samples: &[Sample], name: &str) {
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
    static DRIVER: std::cell::Cell<&'static str> = const { std::cell::Cell::new("epoll") };
}

fn on_both_drivers(test: impl Fn()) {
    for d in ["io_uring", "epoll"] {
        DRIVER.with(|c| c.set(d));
        test();
    }
}

/// `[proxy]` with the admin endpoint on an ephemeral port.
fn proxy_section(workers: usize) -> String {
    let driver = DRIVER.with(std::cell::Cell::get);
    format!(
        "[proxy]\nworkers = {workers}\ndriver = \"{driver}\"\ndrain_timeout_ms = 8000\n\
         admin = \"127.0.0.1:0\"\n"
    )
}

// ---------------------------------------------------------------------------------------
// /metrics

#[test]
fn metrics_count_a_known_mix_of_requests_exactly() {
    on_both_drivers(|| {
        let origin = Origin::start(|path| match path {
            "/app/fail" => (500, "boom".into()),
            _ => (200, "ok".into()),
        });
        let refused = refused_addr();
        let dir = TempDir::new();
        let config = format!(
            "{}\n[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n\n\
             [[routes]]\nlistener = \"in\"\nname = \"app\"\nmatch = {{ path_prefix = \"/app\" }}\ncluster = \"app\"\n\n\
             [[routes]]\nlistener = \"in\"\nname = \"gone\"\nmatch = {{ path_prefix = \"/gone\" }}\ncluster = \"gone\"\n\n\
             [[clusters]]\nname = \"app\"\nendpoints = [\"{}\"]\n\n\
             [[clusters]]\nname = \"gone\"\nendpoints = [\"{refused}\"]\n",
            proxy_section(2),
            origin.addr
        );
        let mut rs = Ringside::start(&dir, &config, &[]);
        let admin = rs.admin();
        let addr = rs.listener("in");

        // Before any request every configured listener and cluster is already exposed.
        let (_, samples) = scrape(admin);
        let count = "ringside_downstream_request_duration_seconds_count";
        assert!(samples
            .iter()
            .any(|s| s.name == count && s.labels["listener"] == "in"));
        assert_eq!(
            value(
                &samples,
                "ringside_upstream_connect_failures_total",
                &[("cluster", "gone")]
            ),
            0.0
        );

        // The mix: 7 × 2xx and 3 × 5xx from the origin, 2 × 404 (no route), 2 × 502
        // (upstream refused); one connection each.
        let mut expect = Vec::new();
        expect.extend(std::iter::repeat_n(("/app/ok", 200), 7));
        expect.extend(std::iter::repeat_n(("/app/fail", 500), 3));
        expect.extend(std::iter::repeat_n(("/nowhere", 404), 2));
        expect.extend(std::iter::repeat_n(("/gone/x", 502), 2));
        for (path, status) in &expect {
            assert_eq!(get(addr, path).status, *status, "{path}");
        }

        // Counters are recorded as each request ends: poll until all 14 are in, then
        // every figure must be exact.
        let total = "ringside_downstream_requests_total";
        let samples = eventually("14 requests counted", || {
            let (_, s) = scrape(admin);
            (sum(&s, total, &[]) >= 14.0
                && sum(&s, "ringside_upstream_requests_total", &[]) >= 10.0)
                .then_some(s)
        });
        let down = |route, class| {
            value(
                &samples,
                total,
                &[("listener", "in"), ("route", route), ("code_class", class)],
            )
        };
        assert_eq!(down("app", "2xx"), 7.0);
        assert_eq!(down("app", "5xx"), 3.0);
        assert_eq!(down("", "4xx"), 2.0);
        assert_eq!(down("gone", "5xx"), 2.0);
        assert_eq!(sum(&samples, total, &[]), 14.0, "nothing else counted");

        let endpoint = origin.addr.to_string();
        let up = |class| {
            value(
                &samples,
                "ringside_upstream_requests_total",
                &[
                    ("cluster", "app"),
                    ("endpoint", &endpoint),
                    ("code_class", class),
                ],
            )
        };
        assert_eq!((up("2xx"), up("5xx"), up("error")), (7.0, 3.0, 0.0));
        assert_eq!(
            sum(
                &samples,
                "ringside_upstream_requests_total",
                &[("cluster", "gone")]
            ),
            0.0,
            "a refused connect is not an exchange"
        );
        assert_eq!(
            value(
                &samples,
                "ringside_upstream_connect_failures_total",
                &[("cluster", "gone")]
            ),
            2.0
        );
        assert_eq!(
            value(
                &samples,
                "ringside_upstream_connect_failures_total",
                &[("cluster", "app")]
            ),
            0.0
        );

        // Histograms: consistent, and counting what the counters count.
        assert_histograms_consistent(&samples, "ringside_downstream_request_duration_seconds");
        assert_histograms_consistent(&samples, "ringside_upstream_request_duration_seconds");
        assert_eq!(value(&samples, count, &[("listener", "in")]), 14.0);
        assert_eq!(
            value(
                &samples,
                "ringside_upstream_request_duration_seconds_count",
                &[("cluster", "app")]
            ),
            10.0
        );

        // Connections: 14 accepted over the two workers; none open any more.
        let accepted = sum(&samples, "ringside_downstream_connections_total", &[]);
        assert_eq!(accepted, 14.0);
        let workers: Vec<_> = samples
            .iter()
            .filter(|s| s.name == "ringside_downstream_connections_total")
            .map(|s| s.labels["worker"].clone())
            .collect();
        assert_eq!(workers, ["0", "1"], "one series per worker");
        let open = eventually("connections closed", || {
            let (_, s) = scrape(admin);
            let n = sum(&s, "ringside_downstream_connections", &[("listener", "in")]);
            (n == 0.0).then_some(n)
        });
        assert_eq!(open, 0.0);
        assert!(samples
            .iter()
            .any(|s| s.name == "ringside_upstream_connections"
                && s.labels["cluster"] == "app"
                && s.labels["state"] == "idle"));

        // Process and build figures.
        let driver = DRIVER.with(std::cell::Cell::get);
        assert_eq!(
            value(&samples, "ringside_io_driver", &[("driver", driver)]),
            1.0,
            "driver"
        );
        assert_eq!(
            value(
                &samples,
                "ringside_build_info",
                &[("version", env!("CARGO_PKG_VERSION"))]
            ),
            1.0
        );
        assert_eq!(value(&samples, "ringside_config_generation", &[]), 1.0);
        for name in [
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_start_time_seconds",
        ] {
            assert!(value(&samples, name, &[]) > 0.0, "{name}");
        }
        assert!(samples
            .iter()
            .any(|s| s.name == "process_cpu_seconds_total"));
        rs.signal("TERM");
        assert!(rs.wait_exit().success());
    });
}

#[test]
fn metrics_text_is_well_formed_and_openmetrics_on_request() {
    let dir = TempDir::new();
    let config = format!(
        "{}\n[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n\n\
         [[routes]]\nlistener = \"in\"\nname = \"all.routes-1\"\ndirect_response = {{ status = 200 }}\n",
        proxy_section(1)
    );
    let mut rs = Ringside::start(&dir, &config, &[]);
    let admin = rs.admin();
    let addr = rs.listener("in");
    assert_eq!(get(addr, "/").status, 200);
    let (text, samples) = eventually("the request counted", || {
        let (t, s) = scrape(admin);
        (sum(&s, "ringside_downstream_requests_total", &[]) == 1.0).then_some((t, s))
    });
    // (Names cannot hold characters that need escaping; escaping has unit tests.)
    assert_eq!(
        sum(
            &samples,
            "ringside_downstream_requests_total",
            &[("route", "all.routes-1")]
        ),
        1.0
    );
    // Every family has HELP and TYPE, declared once, before its samples.
    let mut declared: Vec<(String, String)> = Vec::new();
    let mut helped: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            helped.push(rest.split(' ').next().unwrap().to_string());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(helped.contains(&name.to_string()), "no HELP before {line}");
            assert!(
                !declared.iter().any(|(n, _)| n == name),
                "{name} declared twice"
            );
            declared.push((name.to_string(), kind.to_string()));
        } else {
            let name = line.split(['{', ' ']).next().unwrap();
            let family = declared.iter().rev().find(|(n, kind)| {
                name == n
                    || (kind == "histogram"
                        && ["_bucket", "_sum", "_count"]
                            .iter()
                            .any(|s| name == format!("{n}{s}")))
            });
            assert!(family.is_some(), "sample {name} outside its family");
            if let Some((n, kind)) = family {
                if kind == "counter" {
                    assert!(n.ends_with("_total"), "counter {n} without _total");
                }
            }
        }
    }
    for family in [
        "ringside_downstream_requests_total",
        "ringside_downstream_request_duration_seconds",
        "ringside_upstream_requests_total",
        "ringside_upstream_request_duration_seconds",
        "ringside_upstream_connect_failures_total",
        "ringside_upstream_connections",
        "ringside_downstream_connections",
        "ringside_downstream_connections_total",
        "ringside_config_generation",
        "ringside_config_reload_total",
        "ringside_io_driver",
        "ringside_build_info",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        assert!(
            declared.iter().any(|(n, _)| n == family),
            "no family {family}"
        );
    }

    let om = send(
        admin,
        "GET",
        "/metrics",
        &[(
            "Accept",
            "application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )],
        "",
    );
    assert_eq!(om.status, 200);
    assert!(
        om.head
            .contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{}",
        om.head
    );
    assert!(om.body.ends_with("# EOF\n"), "no # EOF");
    assert!(om
        .body
        .contains("# TYPE ringside_downstream_requests counter\n"));
    assert_eq!(
        sum(
            &parse_exposition(&om.body),
            "ringside_downstream_requests_total",
            &[]
        ),
        1.0
    );
}

// ---------------------------------------------------------------------------------------
// /ready, /live

#[test]
fn ready_is_200_then_503_while_draining() {
    let (arrived_tx, arrived) = mpsc::channel::<()>();
    let (release_tx, release) = mpsc::channel::<()>();
    let arrived_tx = Mutex::new(arrived_tx);
    let release = Mutex::new(release);
    let origin = Origin::start(move |_| {
        arrived_tx.lock().unwrap().send(()).unwrap();
        let _ = release.lock().unwrap().recv_timeout(WAIT);
        (200, "slow done".into())
    });
    let dir = TempDir::new();
    let config = format!(
        "{}\n[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n\n\
         [[routes]]\nlistener = \"in\"\nname = \"slow\"\ncluster = \"slow\"\n\n\
         [[clusters]]\nname = \"slow\"\nendpoints = [\"{}\"]\n",
        proxy_section(1),
        origin.addr
    );
    let mut rs = Ringside::start(&dir, &config, &[]);
    let admin = rs.admin();
    let addr = rs.listener("in");
    let r = get(admin, "/ready");
    assert_eq!((r.status, r.body.as_str()), (200, "ready\n"));
    assert_eq!(get(admin, "/live").status, 200);

    // Hold one request in flight, so that the drain lasts until we let it go.
    let client = std::thread::spawn(move || get(addr, "/slow"));
    arrived
        .recv_timeout(WAIT)
        .expect("the request reached the origin");
    rs.signal("TERM");
    let r = eventually("/ready to say 503", || {
        let r = get(admin, "/ready");
        (r.status == 503).then_some(r)
    });
    assert_eq!(r.body, "draining\n");
    assert_eq!(
        get(admin, "/live").status,
        200,
        "still alive while draining"
    );
    let (_, samples) = scrape(admin);
    assert_eq!(value(&samples, "ringside_draining", &[]), 1.0);
    release_tx.send(()).unwrap();
    let r = client.join().unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, "slow done"));
    assert!(rs.wait_exit().success(), "log:\n{}", rs.log_text());
}

// ---------------------------------------------------------------------------------------
// /config and the reload counters

fn direct_config(body: &str, extra_listener: Option<SocketAddr>) -> String {
    let mut c = format!(
        "{}\n[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n\n\
         [[routes]]\nlistener = \"in\"\nname = \"all\"\ndirect_response = {{ status = 200, body = \"{body}\" }}\n",
        proxy_section(1)
    );
    if let Some(a) = extra_listener {
        c.push_str(&format!(
            "\n[[listeners]]\nname = \"taken\"\nbind = \"{a}\"\n\n\
             [[routes]]\nlistener = \"taken\"\nname = \"t\"\ndirect_response = {{ status = 200 }}\n"
        ));
    }
    c
}

fn reloads(admin: SocketAddr) -> (f64, f64, f64) {
    let (_, s) = scrape(admin);
    let r = |result| value(&s, "ringside_config_reload_total", &[("result", result)]);
    (r("ok"), r("invalid"), r("failed"))
}

#[test]
fn config_json_follows_sighup_and_reloads_are_counted() {
    let dir = TempDir::new();
    let mut rs = Ringside::start(&dir, &direct_config("one", None), &[]);
    let admin = rs.admin();
    let c = get(admin, "/config");
    assert_eq!(c.status, 200);
    assert!(
        c.head.contains("content-type: application/json"),
        "{}",
        c.head
    );
    let c = c.json();
    assert_eq!(c["generation"], 1);
    assert_eq!(c["config"]["routes"][0]["direct_response"]["body"], "one");
    assert_eq!(c["config"]["proxy"]["admin"], "127.0.0.1:0");
    assert_eq!(c["config"]["proxy"]["workers"], 1);
    let hash1 = c["config_hash"].as_str().unwrap().to_string();
    assert_eq!(hash1.len(), 16);
    assert_eq!(reloads(admin), (0.0, 0.0, 0.0));

    // A valid change: generation 2, new content, new hash; counted "ok".
    dir.write("ringside.toml", &direct_config("two", None));
    rs.signal("HUP");
    let c = eventually("generation 2 in /config", || {
        let c = get(admin, "/config").json();
        (c["generation"] == 2).then_some(c)
    });
    assert_eq!(c["config"]["routes"][0]["direct_response"]["body"], "two");
    assert_ne!(c["config_hash"].as_str().unwrap(), hash1);
    assert_eq!(reloads(admin), (1.0, 0.0, 0.0));
    let (_, s) = scrape(admin);
    assert_eq!(value(&s, "ringside_config_generation", &[]), 2.0);

    // An invalid file: rejected, counted "invalid", the generation stays.
    dir.write(
        "ringside.toml",
        "[[listeners]]\nname = \"in\"\nbind = \"nope\"\n",
    );
    rs.signal("HUP");
    eventually("an invalid reload counted", || {
        (reloads(admin) == (1.0, 1.0, 0.0)).then_some(())
    });
    assert_eq!(get(admin, "/config").json()["generation"], 2);

    // A valid file that cannot be applied (a port in use): counted "failed".
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = busy.local_addr().unwrap();
    dir.write("ringside.toml", &direct_config("three", Some(taken)));
    rs.signal("HUP");
    eventually("a failed reload counted", || {
        (reloads(admin) == (1.0, 1.0, 1.0)).then_some(())
    });
    assert_eq!(get(admin, "/config").json()["generation"], 2);
    drop(busy);

    // The admin endpoint itself is not reconfigured by a reload.
    let moved =
        direct_config("four", None).replace("admin = \"127.0.0.1:0\"", "admin = \"127.0.0.1:1\"");
    dir.write("ringside.toml", &moved);
    rs.signal("HUP");
    let c = eventually("generation 3", || {
        let c = get(admin, "/config").json();
        (c["generation"] == 3).then_some(c)
    });
    assert_eq!(c["config"]["proxy"]["admin"], "127.0.0.1:1");
    assert_eq!(
        get(admin, "/live").status,
        200,
        "still on its first address"
    );
}

// ---------------------------------------------------------------------------------------
// /clusters

#[test]
fn clusters_show_endpoints_with_weights_counters_and_health() {
    let origin = Origin::start(|_| (200, "ok".into()));
    let refused = refused_addr();
    let dir = TempDir::new();
    let config = format!(
        "{}\n[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n\n\
         [[routes]]\nlistener = \"in\"\nname = \"app\"\ncluster = \"app\"\n\n\
         [[clusters]]\nname = \"app\"\nlb = \"round_robin\"\nfail_timeout_ms = 60000\n\
         endpoints = [{{ address = \"{}\", weight = 3 }}, {{ address = \"{refused}\", weight = 1 }}]\n\n\
         [[clusters]]\nname = \"spare\"\nlb = \"least_request\"\nendpoints = [\"{}\"]\n",
        proxy_section(1),
        origin.addr,
        origin.addr
    );
    let mut rs = Ringside::start(&dir, &config, &[]);
    let admin = rs.admin();
    let addr = rs.listener("in");
    // Round robin reaches the refused endpoint within four picks; its failed connect ejects
    // it and the request is retried on the other one, so every answer is 200.
    for _ in 0..4 {
        assert_eq!(get(addr, "/").status, 200);
    }
    let v = eventually("4 exchanges in /clusters", || {
        let v = get(admin, "/clusters").json();
        (v["clusters"][0]["requests"] == 4).then_some(v)
    });
    assert_eq!(v["generation"], 1);
    let app = &v["clusters"][0];
    assert_eq!(app["name"], "app");
    assert_eq!(app["lb"], "round_robin");
    assert_eq!(app["healthy_endpoints"], 1);
    assert_eq!(app["connect_failures"], 1);
    let good = &app["endpoints"][0];
    assert_eq!(good["address"], origin.addr.to_string());
    assert_eq!(good["weight"], 3);
    assert_eq!(good["health"], "healthy");
    assert_eq!(good["requests"], 4);
    assert_eq!(good["responses"]["2xx"], 4);
    assert_eq!(good["errors"], 0);
    let bad = &app["endpoints"][1];
    assert_eq!(bad["address"], refused.to_string());
    assert_eq!(bad["weight"], 1);
    assert_eq!(bad["health"], "ejected");
    assert_eq!(bad["ejected_workers"], 1);
    assert_eq!(bad["connect_failures"], 1);
    assert_eq!(bad["requests"], 0);
    for key in ["active", "idle"] {
        assert!(good[key].is_u64(), "{key}: {good}");
    }
    // The pooled connection shows as idle here and in /metrics alike.
    let idle = eventually("the connection back in the pool", || {
        let v = get(admin, "/clusters").json();
        let e = &v["clusters"][0]["endpoints"][0];
        (e["active"] == 0 && e["idle"] == 1).then_some(1.0)
    });
    let (_, s) = scrape(admin);
    assert_eq!(
        value(
            &s,
            "ringside_upstream_connections",
            &[("cluster", "app"), ("state", "idle")]
        ),
        idle
    );
    let spare = &v["clusters"][1];
    assert_eq!(spare["name"], "spare");
    assert_eq!(spare["lb"], "least_request");
    assert_eq!(spare["requests"], 0);
    assert_eq!(spare["endpoints"][0]["health"], "healthy");
}

// ---------------------------------------------------------------------------------------
// /log-level

#[test]
fn log_level_changes_at_run_time() {
    let dir = TempDir::new();
    let mut rs = Ringside::start(&dir, &direct_config("hi", None), &["--log-level", "info"]);
    let admin = rs.admin();
    let r = get(admin, "/log-level");
    assert_eq!((r.status, r.body.as_str()), (200, "info\n"));
    // Each admin request is logged at debug: nothing at info.
    assert_eq!(get(admin, "/live").status, 200);
    assert_eq!(rs.count_log("admin request"), 0, "{}", rs.log_text());

    let r = send(admin, "POST", "/log-level?level=debug", &[], "");
    assert_eq!((r.status, r.body.as_str()), (200, "debug\n"));
    assert_eq!(get(admin, "/live").status, 200);
    eventually("a debug line", || {
        (rs.count_log("admin request") > 0).then_some(())
    });
    assert!(rs.log_text().contains("DEBUG"));

    // A bad level is refused and changes nothing.
    let r = send(admin, "POST", "/log-level", &[], "loud");
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("loud"), "{}", r.body);
    assert_eq!(get(admin, "/log-level").body, "debug\n");
    let r = send(admin, "POST", "/log-level", &[], "");
    assert_eq!(r.status, 400, "no level at all");

    // The level in the body, plain or form-encoded; at warn, admin requests are not logged.
    let r = send(admin, "POST", "/log-level", &[], "level=warn");
    assert_eq!((r.status, r.body.as_str()), (200, "warn\n"));
    for _ in 0..3 {
        assert_eq!(get(admin, "/live").status, 200);
    }
    // A directive list; then a marker request, after which every earlier line has arrived.
    let r = send(
        admin,
        "POST",
        "/log-level",
        &[],
        "warn,ringside_proxy=debug",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(get(admin, "/ready").status, 200);
    let logged = |path: &str| {
        let needle = format!("path={path} ");
        let log = rs.log.lock().unwrap();
        log.iter()
            .filter(|l| l.contains("admin request") && l.contains(&needle))
            .count()
    };
    eventually("the marker request logged", || {
        (logged("/ready") == 1).then_some(())
    });
    assert_eq!(
        logged("/live"),
        1,
        "only the /live made at debug is logged:\n{}",
        rs.log_text()
    );
}

// ---------------------------------------------------------------------------------------
// HTTP edges, startup errors, upgrade

#[test]
fn unknown_paths_wrong_methods_and_oversized_requests() {
    let dir = TempDir::new();
    let mut rs = Ringside::start(&dir, &direct_config("hi", None), &[]);
    let admin = rs.admin();
    assert_eq!(get(admin, "/nope").status, 404);
    let r = send(admin, "DELETE", "/metrics", &[], "");
    assert_eq!(r.status, 405);
    assert!(r.head.contains("allow: get, head"), "{}", r.head);
    let r = send(admin, "POST", "/ready", &[], "");
    assert_eq!(r.status, 405);
    let r = send(admin, "PUT", "/log-level", &[], "debug");
    assert_eq!(r.status, 405);
    assert!(r.head.contains("allow: get, head, post"), "{}", r.head);
    let r = send(admin, "HEAD", "/metrics", &[], "");
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    let big = "x".repeat(10_000);
    let r = send(admin, "GET", "/live", &[("X-Big", &big)], "");
    assert_eq!(r.status, 431);
    let r = send(admin, "POST", "/log-level", &[], &"d".repeat(5000));
    assert_eq!(r.status, 413);
    let r = get(admin, "/");
    assert_eq!(r.status, 200);
    assert!(r.head.contains("content-type: text/html"), "{}", r.head);
    assert!(
        !r.body.contains("http://") && !r.body.contains("https://"),
        "external assets"
    );
    // A connection that sends nothing is closed after the deadline, not held forever.
    let mut idle = TcpStream::connect(admin).unwrap();
    idle.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(idle.read(&mut buf).unwrap_or(0), 0);
}

#[test]
fn an_admin_port_in_use_is_a_startup_error() {
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = busy.local_addr().unwrap();
    let dir = TempDir::new();
    let config = direct_config("hi", None)
        .replace("admin = \"127.0.0.1:0\"", &format!("admin = \"{taken}\""));
    let mut rs = Ringside::start(&dir, &config, &[]);
    let status = rs.wait_exit();
    assert_eq!(status.code(), Some(1), "log:\n{}", rs.log_text());
    let log = rs.log_text();
    assert!(
        log.contains("admin endpoint") && log.contains(&taken.to_string()),
        "{log}"
    );
    assert_eq!(rs.count_log("listening"), 0, "nothing started: {log}");
}

#[test]
fn a_hot_upgrade_keeps_serving_the_admin_port() {
    use ringside_wire::{client_handshake, Conn, Peer, Reply, Request};
    // A fixed port, so that the new process binds the very same one.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = TempDir::new();
    let config = direct_config("hi", None).replace(
        "admin = \"127.0.0.1:0\"",
        &format!("admin = \"127.0.0.1:{port}\""),
    );
    let mut old = Ringside::start(&dir, &config, &[]);
    let admin = old.admin();
    assert_eq!(admin.port(), port);
    assert_eq!(get(admin, "/stats").json()["pid"], old.child.id());
    let mut c = Conn::connect(dir.0.join("ctl.sock")).unwrap();
    c.set_read_timeout(Some(WAIT)).unwrap();
    client_handshake(&mut c, Peer::Cli).unwrap();
    let reply = c
        .call(Request::Upgrade {
            binary: env!("CARGO_BIN_EXE_ringside").into(),
            args: Vec::new(),
        })
        .unwrap();
    assert!(
        matches!(reply, Reply::Upgraded { .. }),
        "{reply:?}; log:\n{}",
        old.log_text()
    );
    assert!(old.wait_exit().success());
    // The new process answers on the same admin port.
    let after = eventually("the new process on the admin port", || {
        let r = get(admin, "/stats");
        (r.status == 200).then(|| r.json())
    });
    assert_ne!(after["pid"], old.child.id());
    assert_eq!(get(admin, "/ready").status, 200);
    let mut c = Conn::connect(dir.0.join("ctl.sock")).unwrap();
    client_handshake(&mut c, Peer::Cli).unwrap();
    assert_eq!(c.call(Request::Drain).unwrap(), Reply::Ok);
    eventually("the new process gone", || {
        TcpStream::connect(admin).is_err().then_some(())
    });
}

// ---------------------------------------------------------------------------------------
// The status page in a real browser

/// The Chromium binary: `$RINGSIDE_CHROMIUM`, or `chromium`/`chromium-browser` on PATH.
fn chromium() -> PathBuf {
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
struct Traffic {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Traffic {
    fn start(addr: SocketAddr, paths: &[&'static str]) -> Traffic {
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

    fn wait_for(&self, n: u64) {
        eventually("traffic flowing", || {
            (self.done.load(Ordering::Relaxed) >= n).then_some(())
        });
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
    }
}

/// Runs headless Chromium on `url` and returns the DOM after ~3 s of (virtual) time.
fn dump_dom(url: &str, profile: &Path) -> String {
    let mut child = Command::new(chromium())
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
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", chromium().display()));
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
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish in 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let dom = reader.join().unwrap();
    let stderr = err_reader.join().unwrap();
    assert!(
        status.success() && dom.contains("</html>"),
        "chromium failed ({status:?}); stderr:\n{stderr}\nstdout:\n{dom}"
    );
    dom
}

/// The text of the element with `id`.
fn element_text<'a>(dom: &'a str, id: &str) -> &'a str {
    let open = format!("id=\"{id}\">");
    let start = dom
        .find(&open)
        .unwrap_or_else(|| panic!("no #{id} in\n{dom}"))
        + open.len();
    let len = dom[start..].find('<').unwrap();
    &dom[start..start + len]
}

/// The `td.rate` text of the row `<tr data-{attr}="{key}">`.
fn row_rate(dom: &str, attr: &str, key: &str) -> f64 {
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

#[test]
fn status_page_renders_in_headless_chromium() {
    let browser = chromium(); // fail first, with the install hint, if there is none
    let origin = Origin::start(|_| (200, "ok".into()));
    let dir = TempDir::new();
    let config = format!(
        "{}\n[[listeners]]\nname = \"edge\"\nbind = \"127.0.0.1:0\"\n\n\
         [[routes]]\nlistener = \"edge\"\nname = \"api\"\nmatch = {{ path_prefix = \"/api\" }}\ncluster = \"backend\"\n\n\
         [[routes]]\nlistener = \"edge\"\nname = \"static\"\ndirect_response = {{ status = 200, body = \"s\" }}\n\n\
         [[clusters]]\nname = \"backend\"\nendpoints = [\"{}\"]\n",
        proxy_section(2),
        origin.addr
    );
    let mut rs = Ringside::start(&dir, &config, &[]);
    let admin = rs.admin();
    let addr = rs.listener("edge");
    let traffic = Traffic::start(addr, &["/api/a", "/api/b", "/static"]);
    traffic.wait_for(50);
    let profile = dir.0.join("chromium-profile");
    let dom = dump_dom(&format!("http://{admin}/"), &profile);
    traffic.stop();
    let _ = browser;

    for name in ["edge", "api", "static", "backend", &origin.addr.to_string()] {
        assert!(
            dom.contains(&format!(">{name}<")),
            "{name} not shown:\n{dom}"
        );
    }
    let total: f64 = element_text(&dom, "total-rate")
        .parse()
        .unwrap_or_else(|_| panic!("no total rate in\n{dom}"));
    assert!(total > 0.0, "total request rate {total}:\n{dom}");
    assert!(row_rate(&dom, "listener", "edge") > 0.0, "{dom}");
    assert!(row_rate(&dom, "route", "edge/api") > 0.0, "{dom}");
    assert!(row_rate(&dom, "cluster", "backend") > 0.0, "{dom}");
    assert!(
        element_text(&dom, "summary").contains("generation 1"),
        "{dom}"
    );
    assert!(
        !element_text(&dom, "status").contains("cannot"),
        "the page could not poll /stats:\n{dom}"
    );
}
