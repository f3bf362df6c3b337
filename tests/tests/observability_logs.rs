//! Access logs and trace context: one JSON (or combined) line per request matching what
//! happened, reopened on request (logrotate); W3C `traceparent` continued or started and sent
//! upstream (B3 accepted); sampled spans exported to an OTLP/HTTP collector, and counted as
//! dropped when the collector is down.

#![allow(clippy::unwrap_used)] // test helpers, like #[test] bodies

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use ringside_tests::*;
use serde_json::Value;

/// A fresh directory for one test's access log, removed when the guard drops.
struct TempLog {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn temp_log(name: &str) -> TempLog {
    let dir = tempfile::Builder::new()
        .prefix(&format!("ringside-obs-{name}-"))
        .tempdir()
        .unwrap();
    let path = dir.path().join("access.log");
    TempLog { _dir: dir, path }
}

fn lines(path: &Path, n: usize) -> Vec<String> {
    let mut got = Vec::new();
    assert!(
        eventually(WAIT, || {
            got = std::fs::read_to_string(path)
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect();
            got.len() >= n
        }),
        "expected {n} lines in {}, got {got:?}",
        path.display()
    );
    got
}

fn config(o: &Origin, log: &Path, format: &str, proxy_extra: &str) -> String {
    toml(
        "$extra\n\
         [[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\naccess_log = { path = \"$log\", format = \"$format\" }\n\
         [[routes]]\nlistener = \"in\"\nname = \"ping\"\nmatch = { path_exact = \"/ping\" }\ndirect_response = { status = 200, body = \"pong\" }\n\
         [[routes]]\nlistener = \"in\"\nname = \"app\"\nmatch = { path_prefix = \"/app\" }\ncluster = \"app\"\n\
         [[clusters]]\nname = \"app\"\nendpoints = [\"$o\"]\n",
        &[("o", &o.addr()), ("log", &log.display()), ("format", &format), ("extra", &proxy_extra)],
    )
}

fn trace_id_of(traceparent: &str) -> &str {
    &traceparent[3..35]
}

both_drivers!(
    fn json_lines_match_the_requests(d) {
        let o = Origin::text("hello");
        let log_dir = temp_log(&format!("json-{}", d.toml()));
        let log = log_dir.path.clone();
        let p = Proxy::start(d, &config(&o, &log, "json", ""));
        let mut c = Client::connect(p.addr("in"));
        assert_eq!(c.request(&get("/app/x?q=1")).status, 200);
        assert_eq!(c.request(&get("/ping")).status, 200);
        assert_eq!(c.request(&get("/nowhere")).status, 404);
        let got = lines(&log, 3);
        let v: Vec<Value> = got.iter().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
        let forwarded = o.request(0);
        assert_eq!(v[0]["method"], "GET");
        assert_eq!(v[0]["path"], "/app/x?q=1");
        assert_eq!(v[0]["route"], "app");
        assert_eq!(v[0]["status"], 200);
        assert_eq!(v[0]["listener"], "in");
        assert_eq!(v[0]["upstream"], o.addr().to_string());
        assert!(v[0]["bytes_out"].as_u64().unwrap() > 5);
        assert!(v[0]["upstream_duration_ms"].as_f64().is_some());
        assert_eq!(v[0]["request_id"], forwarded.header("x-request-id").unwrap());
        assert_eq!(v[0]["trace_id"], trace_id_of(forwarded.header("traceparent").unwrap()));
        assert_eq!(v[0]["client"], "127.0.0.1");
        assert_eq!(v[1]["route"], "ping");
        assert_eq!(v[1]["upstream"], Value::Null);
        assert_eq!(v[2]["route"], Value::Null);
        assert_eq!(v[2]["status"], 404);
        assert!(v[2]["error"].as_str().unwrap().contains("no route"));
        assert_eq!(p.handle.telemetry().log_lines_written.load(Ordering::Relaxed), 3);
    }
);

both_drivers!(
    fn a_reload_that_adds_an_access_log_starts_its_writer(d) {
        // The writer thread starts only when a configuration has an access log: a proxy
        // started without one must still log after a reload adds it.
        let o = Origin::text("hello");
        let log_dir = temp_log(&format!("reload-{}", d.toml()));
        let log = log_dir.path.clone();
        let without = config(&o, &log, "json", "").replace(
            &format!("access_log = {{ path = \"{}\", format = \"json\" }}\n", log.display()),
            "",
        );
        assert!(!without.contains("access_log"), "{without}");
        let p = Proxy::start(d, &without);
        let mut c = Client::connect(p.addr("in"));
        assert_eq!(c.request(&get("/ping")).status, 200);
        assert!(matches!(p.reload(&config(&o, &log, "json", "")), Reloaded::Applied(_)));
        assert_eq!(c.request(&get("/ping")).status, 200);
        let got = lines(&log, 1);
        assert!(got[0].contains("\"route\":\"ping\""), "{}", got[0]);
    }
);

both_drivers!(
    fn combined_lines_and_reopen_after_rotation(d) {
        let o = Origin::text("hello");
        let log_dir = temp_log(&format!("combined-{}", d.toml()));
        let log = log_dir.path.clone();
        let p = Proxy::start(d, &config(&o, &log, "combined", ""));
        let mut c = Client::connect(p.addr("in"));
        assert_eq!(c.request(b"GET /app/a HTTP/1.1\r\nHost: t\r\nUser-Agent: probe/1\r\n\r\n").status, 200);
        let first = lines(&log, 1);
        assert!(first[0].starts_with("127.0.0.1 - - ["), "{}", first[0]);
        assert!(first[0].contains("] \"GET /app/a HTTP/1.1\" 200 "), "{}", first[0]);
        assert!(first[0].ends_with("\"-\" \"probe/1\""), "{}", first[0]);
        let rotated = log.with_extension("log.1");
        std::fs::rename(&log, &rotated).unwrap();
        p.handle.reopen_logs();
        assert_eq!(c.request(&get("/ping")).status, 200);
        let second = lines(&log, 1);
        assert!(second[0].contains("\"GET /ping HTTP/1.1\" 200"), "{}", second[0]);
        assert_eq!(std::fs::read_to_string(&rotated).unwrap().lines().count(), 1);
    }
);

both_drivers!(
    fn trace_context_is_continued_or_started(d) {
        let o = Origin::text("hello");
        let log_dir = temp_log(&format!("trace-{}", d.toml()));
        let log = log_dir.path.clone();
        let p = Proxy::start(d, &config(&o, &log, "json", ""));
        let mut c = Client::connect(p.addr("in"));
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        c.request(format!("GET /app/1 HTTP/1.1\r\nHost: t\r\ntraceparent: {incoming}\r\ntracestate: v=1\r\n\r\n").as_bytes());
        c.request(&get("/app/2"));
        c.request(b"GET /app/3 HTTP/1.1\r\nHost: t\r\nb3: 80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1\r\n\r\n");
        let continued = o.request(0);
        let tp = continued.header("traceparent").unwrap();
        assert_eq!(tp.len(), 55);
        assert_eq!(trace_id_of(tp), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(&tp[36..52], "00f067aa0ba902b7", "the proxy sends its own span id");
        assert!(tp.ends_with("-01"));
        assert_eq!(continued.header_all("traceparent").len(), 1, "the caller's traceparent is replaced");
        assert_eq!(continued.header("tracestate"), Some("v=1"));
        let started = o.request(1);
        let tp2 = started.header("traceparent").unwrap();
        assert!(tp2.starts_with("00-") && tp2.len() == 55 && trace_id_of(tp2) != "4bf92f3577b34da6a3ce929d0e0e4736");
        let b3 = o.request(2);
        assert_eq!(trace_id_of(b3.header("traceparent").unwrap()), "80f198ee56343ba864fe8b2a57d3eff7");
    }
);

both_drivers!(
    fn sampled_spans_go_to_the_collector(d) {
        let collector = Origin::start(|_| ok(""));
        let o = Origin::text("hello");
        let log_dir = temp_log(&format!("otlp-{}", d.toml()));
        let log = log_dir.path.clone();
        let extra = format!("otlp_endpoint = \"{}\"\ntrace_sample_rate = 1.0", collector.addr());
        let p = Proxy::start(d, &config(&o, &log, "json", &extra));
        let mut c = Client::connect(p.addr("in"));
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        c.request(format!("GET /app/1 HTTP/1.1\r\nHost: t\r\ntraceparent: {incoming}\r\n\r\n").as_bytes());
        assert!(eventually(WAIT, || !collector.requests().is_empty()), "no export reached the collector");
        let post = collector.request(0);
        assert_eq!((post.method.as_str(), post.target.as_str()), ("POST", "/v1/traces"));
        let body: Value = serde_json::from_slice(&post.body).unwrap();
        let span = &body["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(span["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(span["parentSpanId"], "00f067aa0ba902b7");
        assert_eq!(span["name"], "app");
        let sent = o.request(0);
        assert_eq!(span["spanId"].as_str().unwrap(), &sent.header("traceparent").unwrap()[36..52]);
        assert!(eventually(WAIT, || p.handle.telemetry().spans_exported.load(Ordering::Relaxed) == 1));
    }
);

both_drivers!(
    fn spans_are_dropped_and_counted_when_the_collector_is_down(d) {
        let o = Origin::text("hello");
        let log_dir = temp_log(&format!("down-{}", d.toml()));
        let log = log_dir.path.clone();
        let extra = format!("otlp_endpoint = \"{}\"", closed_port());
        let p = Proxy::start(d, &config(&o, &log, "json", &extra));
        let mut c = Client::connect(p.addr("in"));
        for _ in 0..3 {
            assert_eq!(c.request(&get("/app/x")).status, 200, "requests are unaffected");
        }
        assert!(eventually(WAIT, || p.handle.telemetry().spans_dropped.load(Ordering::Relaxed) == 3));
    }
);
