//! Differential exchanges (`tests/http1_against_nginx.rs`): play one request sequence against
//! a proxy in front of an [`Origin`] and record, as one line of text each, what the origin
//! received (request line, headers in order, body, chunk extensions, trailers) and what the
//! client received (interim and final responses, headers, bodies, trailers, and whether the
//! connection stayed open), with what changes from run to run (dates, ids) normalized, so that
//! two proxies' records can be compared and asserted as strings.

use std::net::SocketAddr;
use std::time::Duration;

use crate::{Client, Origin, Request, Response, WAIT};

/// One request sequence, sent at once on a new connection.
pub struct Case {
    pub name: &'static str,
    pub send: Vec<u8>,
    /// Sent after the head (`send`) once a 100 arrived, or after 3 s without one.
    pub body_after_continue: Option<&'static [u8]>,
    /// The methods of the requests whose final responses the client reads, in order.
    pub finals: &'static [&'static str],
    /// How long the client waits for each response.
    pub patience: Duration,
}

/// Headers a proxy adds to every request or response whatever the request: recorded only
/// when `play` is asked for `all` headers (a test's first, plain case), left out otherwise.
pub const OWN_HEADERS: &[&str] = &[
    "date",
    "server",
    "connection",
    "keep-alive",
    "x-request-id",
    "x-forwarded-for",
    "x-forwarded-proto",
    "forwarded",
    "via",
    "traceparent",
];

fn headers(list: &[(String, String)], all: bool) -> String {
    list.iter()
        .filter(|(n, _)| all || !OWN_HEADERS.contains(&n.to_ascii_lowercase().as_str()))
        .map(|(n, v)| format!("{n}: {}", shorten(&normal(n, v))))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A header's value without what changes from run to run (dates, ids, versions).
fn normal(name: &str, value: &str) -> String {
    match name.to_ascii_lowercase().as_str() {
        "date" => "<date>".into(),
        "x-request-id" => "<uuid>".into(),
        "traceparent" => "<traceparent>".into(),
        "server" => value.split('/').next().unwrap_or("").into(),
        _ => value.into(),
    }
}

fn shorten(v: &str) -> String {
    if v.len() > 48 {
        format!("{}..({} bytes)", &v[..24], v.len())
    } else {
        v.to_string()
    }
}

/// What the origin received: one line per request.
pub fn origin_view(reqs: &[Request], all: bool) -> String {
    let lines: Vec<String> = reqs
        .iter()
        .map(|r| {
            let mut line = format!(
                "{} {} {} [{}]",
                r.method,
                r.target,
                r.version,
                headers(&r.headers, all)
            );
            if !r.body.is_empty() {
                line.push_str(&format!(" body {:?}", String::from_utf8_lossy(&r.body)));
            }
            if r.has_header("transfer-encoding") {
                let raw = String::from_utf8_lossy(&r.raw_body).to_string();
                let first = raw.split("\r\n").next().unwrap_or("");
                let ext = first
                    .split_once(';')
                    .map_or("none".into(), |(_, e)| shorten(e));
                let trailers: Vec<&str> = raw
                    .rsplit_once("\r\n0")
                    .map(|(_, t)| t.split("\r\n").skip(1).filter(|l| !l.is_empty()).collect())
                    .unwrap_or_default();
                line.push_str(&format!(
                    " chunk-ext {ext} trailers [{}]",
                    trailers.join(", ")
                ));
            }
            line
        })
        .collect();
    if lines.is_empty() {
        "nothing".into()
    } else {
        lines.join(" | ")
    }
}

/// What the client received of one response (see [`play`] for `all` and statuses of 400 or
/// more).
pub fn response_view(r: &Response, all: bool) -> String {
    if r.status >= 400 {
        return format!("{} (the proxy's own)", r.status);
    }
    let mut s = format!("{} [{}]", r.status, headers(&r.headers, all));
    if !r.body.is_empty() {
        s.push_str(&format!(" body {:?}", shorten(&r.text())));
    }
    if !r.trailers.is_empty() {
        s.push_str(&format!(" trailers [{}]", headers(&r.trailers, true)));
    }
    s
}

/// Plays `case` against the proxy at `addr`, in front of `o`: (origin view, client view).
/// `all` keeps the [`OWN_HEADERS`] in both. A response of 400 or more is recorded by its
/// status only (the origin never sends one: it is the proxy's own page).
pub fn play(addr: SocketAddr, o: &Origin, case: &Case, all: bool) -> (String, String) {
    let before = o.requests().len();
    let mut c = Client::connect(addr);
    c.stream().set_read_timeout(Some(case.patience)).unwrap();
    c.send(&case.send);
    let mut seen = Vec::new();
    let mut said_close = false;
    if let Some(body) = case.body_after_continue {
        if c.silent_for(Duration::from_secs(3)) {
            seen.push("no 100 within 3 s".to_string());
        } else {
            match c.try_read_response("POST") {
                Ok(r) => seen.push(response_view(&r, all)),
                Err(e) => seen.push(format!("error {e}")),
            }
        }
        let _ = c.try_send(body);
    }
    'finals: for method in case.finals {
        loop {
            match c.try_read_response(method) {
                Ok(r) => {
                    seen.push(response_view(&r, all));
                    said_close = r.closes();
                    if r.status >= 200 {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    seen.push(format!("nothing within {:?}", case.patience));
                    break 'finals;
                }
                Err(e) => {
                    seen.push(format!("error {}", e.kind()));
                    break 'finals;
                }
            }
        }
    }
    // A close the last response announced is waited for; otherwise 300 ms tell "open".
    let grace = if said_close {
        WAIT
    } else {
        Duration::from_millis(300)
    };
    let end = if c.closed_within(grace) {
        "closed"
    } else {
        "open"
    };
    seen.push(end.into());
    let reqs = o.requests();
    (origin_view(&reqs[before..], all), seen.join(" | "))
}
