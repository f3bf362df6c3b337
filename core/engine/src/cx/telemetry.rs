//! Off-worker telemetry: the access-log writer thread and the OTLP span exporter thread.
//!
//! Workers format a line (or build a span) and `try_send` it into a bounded channel; they
//! never block and never touch a file or a socket for telemetry. When a channel is full the
//! line or span is dropped and counted. The writer keeps one buffered file per path, flushes
//! whenever its queue runs empty, and reopens every file on [`LogMsg::Reopen`] (SIGUSR1,
//! logrotate). The exporter batches spans (up to 512, or what arrived within a second) and
//! POSTs them as OTLP/HTTP JSON to the collector named by the *current* configuration.
//!
//! Each thread, with its queue, starts only once a configuration needs it (an access log, an
//! OTLP endpoint): the control thread calls [`Telemetry::ensure`] before it publishes a
//! snapshot. A proxy without either holds neither (the two queues alone are 448 KiB).

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{BufWriter, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use crossbeam_channel::{Receiver, Sender};
use ringside_config::{Config, ListenerKind, Snapshot};

/// Queue lengths: lines and spans waiting for their thread.
const LOG_QUEUE: usize = 4096;
const SPAN_QUEUE: usize = 2048;
const SPAN_BATCH: usize = 512;

/// Counters of the telemetry pipeline (updated only off the normal request path: on a drop,
/// or by the telemetry threads).
#[derive(Debug, Default)]
pub struct TelemetryCounters {
    pub log_lines_written: AtomicU64,
    pub log_lines_dropped: AtomicU64,
    pub spans_exported: AtomicU64,
    pub spans_dropped: AtomicU64,
}

pub(crate) enum LogMsg {
    Line { path: Arc<Path>, line: String },
    Reopen,
}

/// One finished span, ready to export.
pub(crate) struct Span {
    pub(crate) trace_id: [u8; 16],
    pub(crate) span_id: [u8; 8],
    pub(crate) parent_span_id: Option<[u8; 8]>,
    pub(crate) name: String,
    pub(crate) start: SystemTime,
    pub(crate) end: SystemTime,
    pub(crate) attributes: Vec<(&'static str, String)>,
    pub(crate) status: u16,
}

/// The workers' ends of the telemetry channels, each set when its thread starts.
#[derive(Clone)]
pub(crate) struct Telemetry {
    logs: Arc<OnceLock<Sender<LogMsg>>>,
    spans: Arc<OnceLock<Sender<Span>>>,
    shared: Arc<ArcSwap<Snapshot>>,
    pub(crate) counters: Arc<TelemetryCounters>,
}

impl Telemetry {
    /// No thread yet: see [`Telemetry::ensure`].
    pub(crate) fn new(shared: Arc<ArcSwap<Snapshot>>) -> Telemetry {
        Telemetry {
            logs: Arc::new(OnceLock::new()),
            spans: Arc::new(OnceLock::new()),
            shared,
            counters: Arc::new(TelemetryCounters::default()),
        }
    }

    /// Starts the threads `config` needs and that are not running yet: the access-log writer
    /// when a listener has an access log, the span exporter when `otlp_endpoint` is set.
    /// Called by the control thread before a configuration is published; a thread, once
    /// started, stays. A thread that cannot start is logged, and its lines or spans are
    /// dropped and counted.
    pub(crate) fn ensure(&self, config: &Config) {
        let logs = config.listeners.iter().any(|l| match &l.kind {
            ListenerKind::Http(h) => h.access_log.is_some(),
            ListenerKind::Tcp { .. } => false,
        });
        if logs && self.logs.get().is_none() {
            let (tx, rx) = crossbeam_channel::bounded(LOG_QUEUE);
            let c = self.counters.clone();
            match std::thread::Builder::new()
                .name("ringside-accesslog".into())
                .spawn(move || write_logs(rx, &c))
            {
                Ok(_) => {
                    let _ = self.logs.set(tx);
                }
                Err(e) => tracing::error!(error = %e, "cannot start the access-log thread"),
            }
        }
        if config.proxy.otlp_endpoint.is_some() && self.spans.get().is_none() {
            let (tx, rx) = crossbeam_channel::bounded(SPAN_QUEUE);
            let c = self.counters.clone();
            let shared = self.shared.clone();
            match std::thread::Builder::new()
                .name("ringside-otlp".into())
                .spawn(move || export_spans(rx, &shared, &c))
            {
                Ok(_) => {
                    let _ = self.spans.set(tx);
                }
                Err(e) => tracing::error!(error = %e, "cannot start the span exporter thread"),
            }
        }
    }

    pub(crate) fn log(&self, path: &Arc<Path>, line: String) {
        let sent = self.logs.get().is_some_and(|logs| {
            logs.try_send(LogMsg::Line {
                path: path.clone(),
                line,
            })
            .is_ok()
        });
        if !sent {
            self.counters
                .log_lines_dropped
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn reopen(&self) {
        if let Some(logs) = self.logs.get() {
            let _ = logs.send(LogMsg::Reopen);
        }
    }

    pub(crate) fn span(&self, span: Span) {
        let sent = self
            .spans
            .get()
            .is_some_and(|spans| spans.try_send(span).is_ok());
        if !sent {
            self.counters.spans_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn write_logs(rx: Receiver<LogMsg>, counters: &TelemetryCounters) {
    let mut files: HashMap<Arc<Path>, Option<BufWriter<Box<dyn Write + Send>>>> = HashMap::new();
    while let Ok(msg) = rx.recv() {
        match msg {
            LogMsg::Reopen => {
                for f in files.values_mut().flatten() {
                    let _ = f.flush();
                }
                files.clear();
            }
            LogMsg::Line { path, line } => {
                let out = files.entry(path.clone()).or_insert_with(|| open_log(&path));
                let written = match out {
                    Some(w) => w
                        .write_all(line.as_bytes())
                        .and_then(|()| w.write_all(b"\n"))
                        .is_ok(),
                    None => false,
                };
                let counter = if written {
                    &counters.log_lines_written
                } else {
                    &counters.log_lines_dropped
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
        if rx.is_empty() {
            for f in files.values_mut().flatten() {
                let _ = f.flush();
            }
        }
    }
}

fn open_log(path: &Path) -> Option<BufWriter<Box<dyn Write + Send>>> {
    if path == Path::new("-") {
        return Some(BufWriter::new(Box::new(std::io::stdout())));
    }
    match OpenOptions::new().create(true).append(true).open(path) {
        Ok(f) => Some(BufWriter::with_capacity(64 * 1024, Box::new(f))),
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "cannot open access log; its lines are dropped");
            None
        }
    }
}

fn export_spans(rx: Receiver<Span>, shared: &ArcSwap<Snapshot>, counters: &TelemetryCounters) {
    loop {
        let Ok(first) = rx.recv() else { return };
        let mut batch = vec![first];
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        while batch.len() < SPAN_BATCH {
            match rx.recv_deadline(deadline) {
                Ok(s) => batch.push(s),
                Err(_) => break,
            }
        }
        let n = batch.len() as u64;
        let Some(endpoint) = shared.load().config.proxy.otlp_endpoint else {
            counters.spans_dropped.fetch_add(n, Ordering::Relaxed);
            continue;
        };
        match post(endpoint, &otlp_json(&batch)) {
            Ok(()) => counters.spans_exported.fetch_add(n, Ordering::Relaxed),
            Err(e) => {
                tracing::debug!(collector = %endpoint, error = %e, "span export failed; batch dropped");
                counters.spans_dropped.fetch_add(n, Ordering::Relaxed)
            }
        };
    }
}

fn post(endpoint: SocketAddr, body: &str) -> std::io::Result<()> {
    let mut s = TcpStream::connect_timeout(&endpoint, Duration::from_secs(1))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.set_write_timeout(Some(Duration::from_secs(2)))?;
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: {endpoint}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body.as_bytes())?;
    let mut status = [0u8; 12];
    s.read_exact(&mut status)?;
    if status.starts_with(b"HTTP/1.1 2") || status.starts_with(b"HTTP/1.0 2") {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "collector answered {}",
            String::from_utf8_lossy(&status)
        )))
    }
}

fn unix_nanos(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

/// OTLP/HTTP JSON (ExportTraceServiceRequest) for one batch.
fn otlp_json(batch: &[Span]) -> String {
    let mut out = String::with_capacity(256 * batch.len() + 256);
    out.push_str(r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"ringside"}}]},"scopeSpans":[{"scope":{"name":"ringside","version":""#);
    out.push_str(env!("CARGO_PKG_VERSION"));
    out.push_str(r#""},"spans":["#);
    for (i, s) in batch.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"traceId":""#);
        crate::cx::trace::hex(&mut out, &s.trace_id);
        out.push_str(r#"","spanId":""#);
        crate::cx::trace::hex(&mut out, &s.span_id);
        out.push('"');
        if let Some(p) = s.parent_span_id {
            out.push_str(r#","parentSpanId":""#);
            crate::cx::trace::hex(&mut out, &p);
            out.push('"');
        }
        out.push_str(r#","name":"#);
        json_str(&mut out, &s.name);
        out.push_str(&format!(
            r#","kind":2,"startTimeUnixNano":"{}","endTimeUnixNano":"{}","attributes":["#,
            unix_nanos(s.start),
            unix_nanos(s.end)
        ));
        for (j, (k, v)) in s.attributes.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push_str(r#"{"key":"#);
            json_str(&mut out, k);
            out.push_str(r#","value":{"stringValue":"#);
            json_str(&mut out, v);
            out.push_str("}}");
        }
        // Status: ERROR for 5xx (server side of the span), UNSET otherwise.
        let code = if s.status >= 500 { 2 } else { 0 };
        out.push_str(&format!(r#"],"status":{{"code":{code}}}}}"#));
    }
    out.push_str("]}]}]}");
    out
}

/// Appends `s` as a JSON string literal.
pub(crate) fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `2026-11-21T20:15:35.724Z`.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (y, mo, day, h, mi, s) = civil(d.as_secs());
    format!(
        "{y:04}-{mo:02}-{day:02}T{h:02}:{mi:02}:{s:02}.{:03}Z",
        d.subsec_millis()
    )
}

/// `21/Nov/2026:20:15:35 +0000` (the combined log format's time).
pub(crate) fn clf_time(t: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (y, mo, day, h, mi, s) = civil(d.as_secs());
    let m = MONTHS
        .get((mo as usize).wrapping_sub(1))
        .copied()
        .unwrap_or("Jan");
    format!("{day:02}/{m}/{y:04}:{h:02}:{mi:02}:{s:02} +0000")
}

/// UTC calendar fields from Unix seconds (Howard Hinnant's days-from-civil, inverted).
pub(crate) fn civil(secs: u64) -> (i64, u32, u32, u64, u64, u64) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// A path as shared by every line of one access log.
pub(crate) fn log_path(p: &Path) -> Arc<Path> {
    Arc::from(PathBuf::from(p).into_boxed_path())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_dates() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_292_135_724);
        assert_eq!(rfc3339(t), "2026-11-21T20:15:35.724Z");
        assert_eq!(clf_time(t), "21/Nov/2026:20:15:35 +0000");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut s = String::new();
        json_str(&mut s, "a\"b\\c\n\u{1}é");
        assert_eq!(s, r#""a\"b\\c\n\u0001é""#);
    }

    #[test]
    fn writer_appends_lines_and_reopens() {
        let dir = std::env::temp_dir().join(format!("ringside-log-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("a.log");
        let _ = std::fs::remove_file(&path);
        let (tx, rx) = crossbeam_channel::bounded(16);
        let counters = Arc::new(TelemetryCounters::default());
        let c = counters.clone();
        let t = std::thread::spawn(move || write_logs(rx, &c));
        let p = log_path(&path);
        tx.send(LogMsg::Line {
            path: p.clone(),
            line: "one".into(),
        })
        .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::fs::read_to_string(&path).unwrap_or_default() != "one\n" {
            assert!(std::time::Instant::now() < deadline, "line not written");
            std::thread::sleep(Duration::from_millis(2));
        }
        std::fs::rename(&path, dir.join("a.log.1")).unwrap(); // logrotate moves the file...
        tx.send(LogMsg::Reopen).unwrap(); // ...and signals
        tx.send(LogMsg::Line {
            path: p,
            line: "two".into(),
        })
        .unwrap();
        drop(tx);
        t.join().unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("a.log.1")).unwrap(),
            "one\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
        assert_eq!(counters.log_lines_written.load(Ordering::Relaxed), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn otlp_json_is_well_formed() {
        let span = Span {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent_span_id: Some([3; 8]),
            name: "route \"api\"".into(),
            start: UNIX_EPOCH + Duration::from_secs(1),
            end: UNIX_EPOCH + Duration::from_secs(2),
            attributes: vec![("http.method", "GET".into())],
            status: 503,
        };
        let j = otlp_json(&[span]);
        assert!(j.contains(r#""traceId":"01010101010101010101010101010101""#));
        assert!(j.contains(r#""parentSpanId":"0303030303030303""#));
        assert!(j.contains(r#""name":"route \"api\"""#));
        assert!(j.contains(r#""startTimeUnixNano":"1000000000""#));
        assert!(j.contains(r#""status":{"code":2}"#));
        assert_eq!(j.matches('{').count(), j.matches('}').count());
    }
}
