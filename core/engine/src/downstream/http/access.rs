//! Access-log lines and trace spans for one finished request, built on the worker and handed
//! to the telemetry threads (`telemetry.rs`), which do the I/O.
//!
//! JSON lines carry: `time` (start, RFC 3339 UTC), `duration_ms`, `listener`, `route`,
//! `method`, `authority`, `path`, `protocol`, `status`, `bytes_in` (request body bytes sent
//! upstream), `bytes_out` (bytes written to the client), `upstream`, `upstream_duration_ms`,
//! `request_id`, `trace_id`, `client`, `original_dst` (where the client was going before
//! iptables redirected it to a `transparent` listener, else null), `peer_identity` (the
//! verified client identity on an mTLS listener, else null), `consumer` (gateway: the consumer the request authenticated as,
//! else null), `error`. The combined format is Apache/nginx's,
//! with `bytes_out` as the size. The values of credential query parameters (`access_token`,
//! `apikey`, ...: `ringside_config::redact::is_credential_name`) in `path` and the
//! `Referer` read `[redacted]`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ringside_codec::{RequestHead, Version};
use ringside_config::redact::redact_query;
use ringside_config::LogFormat;

use super::route::Outcome;
use crate::cx::telemetry::{clf_time, json_str, log_path, rfc3339, Span};
use crate::cx::trace::TraceContext;

pub(crate) struct Entry<'a> {
    pub(crate) time: SystemTime,
    pub(crate) took: Duration,
    pub(crate) listener: &'a str,
    pub(crate) head: &'a RequestHead,
    pub(crate) peer: SocketAddr,
    /// The client's verified identity (mesh mTLS).
    pub(crate) identity: Option<&'a str>,
    /// Where the connection was going before it was redirected (`transparent` listeners).
    pub(crate) original_dst: Option<SocketAddr>,
    /// The request came over HTTP/2.
    pub(crate) h2: bool,
    pub(crate) trace: &'a TraceContext,
    pub(crate) outcome: &'a Outcome<'a>,
}

fn protocol(e: &Entry<'_>) -> &'static str {
    if e.h2 {
        return "HTTP/2";
    }
    match e.head.version() {
        Version::Http10 => "HTTP/1.0",
        Version::Http11 => "HTTP/1.1",
    }
}

fn millis(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

pub(crate) fn line(format: LogFormat, e: &Entry<'_>) -> String {
    match format {
        LogFormat::Json => json(e),
        LogFormat::Combined => combined(e),
    }
}

fn json(e: &Entry<'_>) -> String {
    let o = e.outcome;
    let mut s = String::with_capacity(384);
    let field = |s: &mut String, key: &str, value: Option<&str>| {
        s.push_str(if s.is_empty() { "{\"" } else { ",\"" });
        s.push_str(key);
        s.push_str("\":");
        match value {
            Some(v) => json_str(s, v),
            None => s.push_str("null"),
        }
    };
    field(&mut s, "time", Some(&rfc3339(e.time)));
    s.push_str(&format!(",\"duration_ms\":{}", millis(e.took)));
    field(&mut s, "listener", Some(e.listener));
    field(&mut s, "route", (!o.route.is_empty()).then_some(o.route));
    field(&mut s, "method", Some(e.head.method()));
    field(&mut s, "authority", e.head.authority());
    field(
        &mut s,
        "path",
        Some(&*redact_query(e.head.path_and_query())),
    );
    field(&mut s, "protocol", Some(protocol(e)));
    s.push_str(&format!(
        ",\"status\":{},\"bytes_in\":{},\"bytes_out\":{}",
        o.status, o.bytes_in, o.bytes_out
    ));
    field(
        &mut s,
        "upstream",
        o.upstream.map(|a| a.to_string()).as_deref(),
    );
    match o.upstream_time {
        Some(t) => s.push_str(&format!(",\"upstream_duration_ms\":{}", millis(t))),
        None => s.push_str(",\"upstream_duration_ms\":null"),
    }
    let request_id = o
        .request_id
        .as_deref()
        .or_else(|| e.head.header("x-request-id"));
    field(
        &mut s,
        "request_id",
        request_id.map(String::from_utf8_lossy).as_deref(),
    );
    field(&mut s, "trace_id", Some(&e.trace.trace_id_hex()));
    field(&mut s, "client", Some(&e.peer.ip().to_string()));
    field(
        &mut s,
        "original_dst",
        e.original_dst.map(|a| a.to_string()).as_deref(),
    );
    field(&mut s, "peer_identity", e.identity);
    field(&mut s, "consumer", o.consumer.as_deref());
    field(&mut s, "error", o.error.as_deref());
    s.push('}');
    s
}

/// `client - - [time] "METHOD path PROTOCOL" status bytes "referer" "user-agent"`.
fn combined(e: &Entry<'_>) -> String {
    let quoted = |v: Option<&[u8]>| -> String {
        match v {
            Some(v) => redact_query(&String::from_utf8_lossy(v))
                .replace('\\', "\\\\")
                .replace('"', "\\\""),
            None => "-".into(),
        }
    };
    format!(
        "{} - - [{}] \"{} {} {}\" {} {} \"{}\" \"{}\"",
        e.peer.ip(),
        clf_time(e.time),
        e.head.method(),
        redact_query(e.head.path_and_query()).replace('"', "%22"),
        protocol(e),
        e.outcome.status,
        e.outcome.bytes_out,
        quoted(e.head.header("referer")),
        quoted(e.head.header("user-agent")),
    )
}

pub(crate) fn span(
    start: SystemTime,
    listener: &str,
    head: &RequestHead,
    peer: SocketAddr,
    trace: &TraceContext,
    o: &Outcome<'_>,
) -> Span {
    let mut attributes = vec![
        ("http.request.method", head.method().to_string()),
        ("url.path", head.path().to_string()),
        ("http.response.status_code", o.status.to_string()),
        ("client.address", peer.ip().to_string()),
        ("ringside.listener", listener.to_string()),
    ];
    if !o.route.is_empty() {
        attributes.push(("http.route", o.route.to_string()));
    }
    if let Some(a) = o.upstream {
        attributes.push(("server.address", a.to_string()));
    }
    if let Some(e) = &o.error {
        attributes.push(("error.type", e.clone()));
    }
    Span {
        trace_id: trace.trace_id,
        span_id: trace.span_id,
        parent_span_id: trace.parent_span_id,
        name: if o.route.is_empty() {
            format!("{} {listener}", head.method())
        } else {
            o.route.to_string()
        },
        start,
        end: SystemTime::now(),
        attributes,
        status: o.status,
    }
}

/// The shared path of a listener's log, made once per connection and per path change.
#[derive(Default)]
pub(crate) struct PathCache(Option<(PathBuf, Arc<Path>)>);

impl PathCache {
    pub(crate) fn get(&mut self, p: &Path) -> Arc<Path> {
        match &self.0 {
            Some((k, v)) if k == p => v.clone(),
            _ => {
                let v = log_path(p);
                self.0 = Some((p.to_path_buf(), v.clone()));
                v
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::downstream::http::route::{After, Outcome};

    fn line_for(h2: bool, identity: Option<&str>, format: LogFormat) -> String {
        line_to(h2, identity, None, format)
    }

    fn line_to(
        h2: bool,
        identity: Option<&str>,
        original_dst: Option<SocketAddr>,
        format: LogFormat,
    ) -> String {
        let limits = ringside_codec::Limits {
            max_header_bytes: 4096,
            max_headers: 32,
            max_uri_bytes: 1024,
            path: ringside_codec::PathRules::NONE,
        };
        let (head, _) =
            ringside_codec::parse_request(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n", &limits)
                .unwrap()
                .unwrap();
        let trace = TraceContext::continue_or_start(|_| None, || 7, 1.0);
        let outcome = Outcome::new(After::KeepAlive, "r", 200);
        line(
            format,
            &Entry {
                time: SystemTime::UNIX_EPOCH,
                took: Duration::from_millis(1),
                listener: "in",
                head: &head,
                peer: "127.0.0.1:9".parse().unwrap(),
                identity,
                original_dst,
                h2,
                trace: &trace,
                outcome: &outcome,
            },
        )
    }

    #[test]
    fn records_the_protocol_and_the_peer_identity() {
        let id = "spiffe://cluster.local/ns/shop/sa/cart";
        let j = line_for(true, Some(id), LogFormat::Json);
        assert!(j.contains(r#""protocol":"HTTP/2""#), "{j}");
        assert!(j.contains(&format!(r#""peer_identity":"{id}""#)), "{j}");
        let j = line_for(false, None, LogFormat::Json);
        assert!(j.contains(r#""protocol":"HTTP/1.1""#), "{j}");
        assert!(j.contains(r#""peer_identity":null"#), "{j}");
        assert!(j.contains(r#""consumer":null,"error""#), "{j}");
        let c = line_for(true, None, LogFormat::Combined);
        assert!(c.contains("\"GET /x HTTP/2\""), "{c}");
    }

    #[test]
    fn records_the_original_destination() {
        let j = line_for(false, None, LogFormat::Json);
        assert!(j.contains(r#""original_dst":null"#), "{j}");
        let to = "[fd00::7]:8443".parse().ok();
        let j = line_to(false, None, to, LogFormat::Json);
        assert!(j.contains(r#""original_dst":"[fd00::7]:8443""#), "{j}");
    }
}
