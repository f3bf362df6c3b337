//! Head encoders: re-serialize a parsed head for the next hop.
//!
//! Always HTTP/1.1 on the wire. Hop-by-hop fields are dropped (`Connection` and every field
//! it names, `Keep-Alive`, `Proxy-*`, `TE`, `Transfer-Encoding`, `Upgrade` unless upgrading)
//! and framing is re-written from the parsed [`BodyKind`], so what the next hop reads is
//! exactly what this codec decided. Field values are copied byte-for-byte.
//!
//! `set` entries replace every received field of the same name (case-insensitive) and are
//! written after the received fields. An entry whose name is not a token or whose value holds
//! CR, LF or NUL is skipped (no header injection through a computed value).

use bytes::Bytes;

use crate::header::{is_fixed_hop_by_hop, is_tchar, list, Hdr};
use crate::{BodyKind, RequestHead, ResponseHead};

/// The canonical reason phrase of a status code, if it has one.
pub fn canonical_reason(status: u16) -> Option<&'static str> {
    Some(match status {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        511 => "Network Authentication Required",
        _ => return None,
    })
}

/// Writes the request head for the upstream; see the crate docs for the exact layout.
pub fn write_request_head(
    out: &mut Vec<u8>,
    head: &RequestHead,
    set: &[(&'static str, &[u8])],
    edits: &Edits,
    upgrade: bool,
) {
    out.reserve(
        head.buf
            .len()
            .saturating_add(set_len(set))
            .saturating_add(edits.added_len())
            .saturating_add(64),
    );
    out.extend_from_slice(head.method().as_bytes());
    out.push(b' ');
    out.extend_from_slice(head.path_and_query().as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if let Some(authority) = head.authority() {
        if !in_set(set, b"host") {
            field(out, b"Host", authority.as_bytes());
        }
    }
    let conn_tokens = has_connection(&head.headers, &head.buf);
    for h in &head.headers {
        let name = h.name.get(&head.buf);
        if name.eq_ignore_ascii_case(b"host")
            || name.eq_ignore_ascii_case(b"upgrade")
            || is_fixed_hop_by_hop(name)
            || (conn_tokens && named_by_connection(&head.headers, &head.buf, name))
            || in_set(set, name)
            || edits.removes(name)
        {
            continue;
        }
        field(out, name, h.value.get(&head.buf));
    }
    write_set(out, set, edits);
    match head.body() {
        BodyKind::Length(n) => content_length(out, n),
        BodyKind::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        BodyKind::Empty | BodyKind::UntilClose => {}
    }
    if upgrade {
        if let Some(protocol) = head.upgrade() {
            out.extend_from_slice(b"Connection: upgrade\r\n");
            field(out, b"Upgrade", protocol);
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes the response head for the client.
///
/// Framing: `Content-Length` for `Length`, `Transfer-Encoding: chunked` for `Chunked`; for
/// `Empty`, the received `Content-Length` is kept only when the request was HEAD or the status
/// is 304. `Connection: close` is added when `!keep_alive` or the body is close-delimited
/// (`UntilClose`), never on 1xx. A 101 keeps `Upgrade` and gets `Connection: upgrade`.
/// To keep an HTTP/1.0 client's connection open, pass `("Connection", b"keep-alive")` in
/// `set`.
pub fn write_response_head(
    out: &mut Vec<u8>,
    head: &ResponseHead,
    set: &[(&'static str, &[u8])],
    edits: &Edits,
    keep_alive: bool,
) {
    write_response(out, head, set, edits, Mode::Framed { keep_alive });
}

/// Writes the response head for a client that gets the body de-chunked and delimited by
/// close (an HTTP/1.0 client of a chunked upstream): no `Transfer-Encoding`, no
/// `Content-Length`, and `Connection: close`.
pub fn write_response_head_dechunked(
    out: &mut Vec<u8>,
    head: &ResponseHead,
    set: &[(&'static str, &[u8])],
    edits: &Edits,
) {
    write_response(out, head, set, edits, Mode::Dechunked);
}

#[derive(Clone, Copy)]
enum Mode {
    Framed { keep_alive: bool },
    Dechunked,
}

fn write_response(
    out: &mut Vec<u8>,
    head: &ResponseHead,
    set: &[(&'static str, &[u8])],
    edits: &Edits,
    mode: Mode,
) {
    out.reserve(
        head.buf
            .len()
            .saturating_add(set_len(set))
            .saturating_add(edits.added_len())
            .saturating_add(64),
    );
    let status = head.status();
    out.extend_from_slice(b"HTTP/1.1 ");
    push_status(out, status);
    out.push(b' ');
    let reason = head.reason();
    if reason.is_empty() {
        out.extend_from_slice(canonical_reason(status).unwrap_or("").as_bytes());
    } else {
        out.extend_from_slice(reason);
    }
    out.extend_from_slice(b"\r\n");
    let switching = status == 101;
    let conn_tokens = has_connection(&head.headers, &head.buf);
    for h in &head.headers {
        let name = h.name.get(&head.buf);
        let is_upgrade = name.eq_ignore_ascii_case(b"upgrade");
        if is_upgrade && switching {
            // The protocol being switched to: end-to-end for a 101 (named by Connection).
            if !in_set(set, name) && !edits.removes(name) {
                field(out, name, h.value.get(&head.buf));
            }
            continue;
        }
        if is_upgrade
            || is_fixed_hop_by_hop(name)
            || (conn_tokens && named_by_connection(&head.headers, &head.buf, name))
            || in_set(set, name)
            || edits.removes(name)
        {
            continue;
        }
        field(out, name, h.value.get(&head.buf));
    }
    write_set(out, set, edits);
    if switching {
        out.extend_from_slice(b"Connection: upgrade\r\n");
    }
    if !head.is_informational() {
        let close = match mode {
            Mode::Framed { keep_alive } => {
                match head.body() {
                    BodyKind::Length(n) => content_length(out, n),
                    BodyKind::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
                    BodyKind::Empty => {
                        if let Some(n) = head.passthrough_length {
                            content_length(out, n);
                        }
                    }
                    BodyKind::UntilClose => {}
                }
                !keep_alive || head.body() == BodyKind::UntilClose
            }
            Mode::Dechunked => true,
        };
        if close {
            out.extend_from_slice(b"Connection: close\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends one field line, `name: value` and CRLF (re-exported as `write_field`).
pub fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn content_length(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(b"Content-Length: ");
    push_u64(out, n);
    out.extend_from_slice(b"\r\n");
}

fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at = at.saturating_sub(1);
        if let Some(d) = digits.get_mut(at) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || at == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(at..).unwrap_or_default());
}

fn push_status(out: &mut Vec<u8>, status: u16) {
    let s = status.min(999);
    out.extend_from_slice(&[
        b'0' + (s / 100) as u8,
        b'0' + (s / 10 % 10) as u8,
        b'0' + (s % 10) as u8,
    ]);
}

fn set_len(set: &[(&'static str, &[u8])]) -> usize {
    set.iter().fold(0usize, |acc, (n, v)| {
        acc.saturating_add(n.len())
            .saturating_add(v.len())
            .saturating_add(4)
    })
}

fn in_set(set: &[(&'static str, &[u8])], name: &[u8]) -> bool {
    set.iter()
        .any(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name))
}

/// Whether a field the proxy sets may be written. Its name is one of the proxy's constants
/// (`&'static str`), checked only in debug builds; its value may carry bytes from the request
/// or the configuration, and is scanned for CR, LF and NUL with SIMD (`memchr3`: a loop over
/// every byte cost a few hundred instructions per request).
fn set_entry_ok(name: &'static str, value: &[u8]) -> bool {
    debug_assert!(
        !name.is_empty() && name.bytes().all(is_tchar),
        "not a field name: {name:?}"
    );
    value_ok(value)
}

/// Whether a value has no CR, LF or NUL: a plain loop for the short values most fields
/// have (memchr's set-up costs more than the loop there), SIMD for long ones.
fn value_ok(value: &[u8]) -> bool {
    if value.len() < 32 {
        value.iter().all(|&b| b != b'\r' && b != b'\n' && b != 0)
    } else {
        memchr::memchr3(b'\r', b'\n', 0, value).is_none()
    }
}

/// The proxy's own fields (unless an edit removed them), then the fields the edits add. A
/// set field with an empty value is withheld: the message's own of that name was left out,
/// and none is written.
fn write_set(out: &mut Vec<u8>, set: &[(&'static str, &[u8])], edits: &Edits) {
    for (name, value) in set {
        if !value.is_empty() && set_entry_ok(name, value) && !edits.removes(name.as_bytes()) {
            field(out, name.as_bytes(), value);
        }
    }
    for (name, value) in &edits.add {
        // Names from the configuration or a stage: checked here, whatever made them.
        if !name.is_empty() && name.iter().copied().all(is_tchar) && value_ok(value) {
            field(out, name, value);
        }
    }
}

/// Header edits to apply while writing a head, resolved for one message: the fields named in
/// `remove` are left out (the message's own and the proxy's), then the fields in `add` are
/// written after all others, in order. Names are compared case-insensitively. Framing and
/// hop-by-hop fields are the writer's and cannot be edited (configuration refuses them).
///
/// Names and values are `Bytes`, so that a stage adding a fixed field (`vary: origin`,
/// `Bytes::from_static`) or one it keeps from the configuration (a clone: a reference
/// count) allocates nothing for it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Edits {
    pub remove: Vec<Bytes>,
    pub add: Vec<(Bytes, Bytes)>,
}

impl Edits {
    /// No edit (what a message gets when no listener or route configures any).
    pub const NONE: Edits = Edits {
        remove: Vec::new(),
        add: Vec::new(),
    };

    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.add.is_empty()
    }

    pub fn removes(&self, name: &[u8]) -> bool {
        self.remove.iter().any(|n| n.eq_ignore_ascii_case(name))
    }

    /// Whether the edits remove, set or add a field named `name`.
    pub fn touches(&self, name: &[u8]) -> bool {
        self.removes(name) || self.add.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// Removes the fields named `name` (listed once).
    pub fn remove_field(&mut self, name: Bytes) {
        if !self.removes(&name) {
            self.remove.push(name);
        }
    }

    /// Sets `name` to `value`: any field of that name, the message's or an earlier edit's,
    /// is replaced.
    pub fn overwrite(&mut self, name: Bytes, value: Bytes) {
        self.add.retain(|(n, _)| *n != name);
        self.remove_field(name.clone());
        self.add.push((name, value));
    }

    /// The bytes the added fields take in a head.
    fn added_len(&self) -> usize {
        self.add.iter().fold(0usize, |acc, (n, v)| {
            acc.saturating_add(n.len())
                .saturating_add(v.len())
                .saturating_add(4)
        })
    }
}

fn has_connection(headers: &[Hdr], buf: &[u8]) -> bool {
    headers
        .iter()
        .any(|h| h.name.get(buf).eq_ignore_ascii_case(b"connection"))
}

/// Whether `name` is listed in any `Connection` field (RFC 9110 §7.6.1).
fn named_by_connection(headers: &[Hdr], buf: &[u8], name: &[u8]) -> bool {
    headers
        .iter()
        .filter(|h| h.name.get(buf).eq_ignore_ascii_case(b"connection"))
        .any(|h| list(h.value.get(buf)).any(|t| t.eq_ignore_ascii_case(name)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_request, parse_response, Limits};

    const LIMITS: Limits = Limits {
        max_header_bytes: 8192,
        max_headers: 100,
        max_uri_bytes: 4096,
        path: crate::PathRules::NONE,
    };

    fn req(s: &str) -> RequestHead {
        parse_request(s.as_bytes(), &LIMITS).unwrap().unwrap().0
    }

    fn res(s: &str, method: &str) -> ResponseHead {
        parse_response(s.as_bytes(), 8192, method)
            .unwrap()
            .unwrap()
            .0
    }

    fn enc_req(s: &str, set: &[(&'static str, &[u8])], upgrade: bool) -> String {
        let mut out = Vec::new();
        write_request_head(&mut out, &req(s), set, &Edits::NONE, upgrade);
        String::from_utf8(out).unwrap()
    }

    fn enc_res(s: &str, method: &str, set: &[(&'static str, &[u8])], keep_alive: bool) -> String {
        let mut out = Vec::new();
        write_response_head(&mut out, &res(s, method), set, &Edits::NONE, keep_alive);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn request_drops_hop_by_hop() {
        let s = "POST /p?q=1 HTTP/1.1\r\nX-First: 1\r\nHost: svc\r\nConnection: keep-alive, X-Hop, x-other\r\n\
                 Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: secret\r\n\
                 TE: trailers\r\nX-Hop: drop\r\nX-Other: drop\r\nUpgrade: h2c\r\nContent-Length: 3\r\n\
                 Accept: */*\r\n\r\n";
        assert_eq!(
            enc_req(s, &[], false),
            "POST /p?q=1 HTTP/1.1\r\nHost: svc\r\nX-First: 1\r\nAccept: */*\r\nContent-Length: 3\r\n\r\n"
        );
    }

    #[test]
    fn request_absolute_form_becomes_origin_form() {
        let s = "GET http://Orders:8080/api?x=1 HTTP/1.1\r\nHost: ignored\r\nAccept: a\r\n\r\n";
        assert_eq!(
            enc_req(s, &[], false),
            "GET /api?x=1 HTTP/1.1\r\nHost: Orders:8080\r\nAccept: a\r\n\r\n"
        );
        let s = "GET http://o?x HTTP/1.1\r\nHost: o\r\n\r\n";
        assert_eq!(
            enc_req(s, &[], false),
            "GET /?x HTTP/1.1\r\nHost: o\r\n\r\n"
        );
    }

    #[test]
    fn request_http10_client_goes_out_as_11() {
        let s = "GET /x HTTP/1.0\r\nConnection: keep-alive\r\nUser-Agent: old\r\n\r\n";
        assert_eq!(
            enc_req(s, &[], false),
            "GET /x HTTP/1.1\r\nUser-Agent: old\r\n\r\n"
        );
        let s = "POST /x HTTP/1.0\r\nHost: h\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            enc_req(s, &[], false),
            "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn request_set_replaces_and_appends() {
        let s = "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: spoofed\r\nx-request-id: 1\r\nA: b\r\n\r\n";
        let set: &[(&'static str, &[u8])] =
            &[("x-forwarded-for", b"10.0.0.1"), ("X-Request-Id", b"2")];
        assert_eq!(
            enc_req(s, set, false),
            "GET / HTTP/1.1\r\nHost: h\r\nA: b\r\nx-forwarded-for: 10.0.0.1\r\nX-Request-Id: 2\r\n\r\n"
        );
        // host in set replaces the authority line
        let set: &[(&'static str, &[u8])] = &[("Host", b"rewritten")];
        assert_eq!(enc_req(s, set, false).matches("Host:").count(), 1);
        assert!(enc_req(s, set, false).contains("Host: rewritten\r\n"));
        // a set entry whose value could inject a header is skipped, short or long
        let long = format!("{}\r\nEvil: 1", "a".repeat(40));
        let set: &[(&'static str, &[u8])] = &[
            ("X", b"a\r\nEvil: 1"),
            ("Y", long.as_bytes()),
            ("Z", b"a\0"),
        ];
        assert_eq!(
            enc_req(s, set, false),
            "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: spoofed\r\nx-request-id: 1\r\nA: b\r\n\r\n"
        );
    }

    /// The proxy's field names are its own constants: a bad one is a bug, caught in debug
    /// builds (release builds do not check them per request).
    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "not a field name")]
    fn a_bad_set_name_is_a_bug() {
        let s = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
        enc_req(s, &[("Bad Name", b"v")], false);
    }

    #[test]
    fn request_framing() {
        let s = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(
            enc_req(s, &[], false),
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        let s = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0012345678901\r\n\r\n";
        assert_eq!(
            enc_req(s, &[], false),
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 12345678901\r\n\r\n"
        );
        let s = format!(
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n",
            u64::MAX
        );
        assert!(enc_req(&s, &[], false).contains(&format!("Content-Length: {}\r\n", u64::MAX)));
    }

    #[test]
    fn request_upgrade() {
        let s = "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                 Sec-WebSocket-Key: k\r\n\r\n";
        assert_eq!(
            enc_req(s, &[], true),
            "GET /ws HTTP/1.1\r\nHost: h\r\nSec-WebSocket-Key: k\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"
        );
        assert_eq!(
            enc_req(s, &[], false),
            "GET /ws HTTP/1.1\r\nHost: h\r\nSec-WebSocket-Key: k\r\n\r\n"
        );
    }

    #[test]
    fn request_values_byte_for_byte() {
        let s = b"GET / HTTP/1.1\r\nHost: h\r\nX: caf\xc3\xa9 \"q\" \t x\r\n\r\n";
        let head = parse_request(s, &LIMITS).unwrap().unwrap().0;
        let mut out = Vec::new();
        write_request_head(&mut out, &head, &[], &Edits::NONE, false);
        assert_eq!(
            out,
            b"GET / HTTP/1.1\r\nHost: h\r\nX: caf\xc3\xa9 \"q\" \t x\r\n\r\n"
        );
    }

    #[test]
    fn encoded_request_parses_back_identically() {
        let s = "PUT http://a.example:81/x/y?z HTTP/1.1\r\nHost: a.example:81\r\nX: 1\r\n\
                 Transfer-Encoding: chunked\r\nConnection: x\r\n\r\n";
        let out = enc_req(s, &[("via", b"ringside")], false);
        let back = req(&out);
        assert_eq!(back.method(), "PUT");
        assert_eq!(back.target(), "/x/y?z");
        assert_eq!(back.authority(), Some("a.example:81"));
        assert_eq!(back.body(), BodyKind::Chunked);
        assert_eq!(back.header("x"), None);
        assert_eq!(back.header("via"), Some(&b"ringside"[..]));
    }

    #[test]
    fn response_basic() {
        let s = "HTTP/1.1 200 OK\r\nServer: up\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n\
                 Keep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nUpgrade: h2\r\n\
                 Content-Length: 5\r\n\r\n";
        assert_eq!(
            enc_res(s, "GET", &[], true),
            "HTTP/1.1 200 OK\r\nServer: up\r\nContent-Length: 5\r\n\r\n"
        );
        assert_eq!(
            enc_res(s, "GET", &[("server", b"ringside")], false),
            "HTTP/1.1 200 OK\r\nserver: ringside\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn response_reason() {
        assert!(enc_res("HTTP/1.1 404 Nope\r\n\r\n", "GET", &[], true)
            .starts_with("HTTP/1.1 404 Nope\r\n"));
        assert!(enc_res("HTTP/1.1 404\r\n\r\n", "GET", &[], true)
            .starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(enc_res(
            "HTTP/1.0 299\r\nContent-Length: 0\r\n\r\n",
            "GET",
            &[],
            true
        )
        .starts_with("HTTP/1.1 299 \r\n"));
        assert_eq!(canonical_reason(502), Some("Bad Gateway"));
        assert_eq!(canonical_reason(299), None);
    }

    #[test]
    fn response_framing() {
        assert_eq!(
            enc_res(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                "GET",
                &[],
                true
            ),
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        // close-delimited: always Connection: close
        assert_eq!(
            enc_res("HTTP/1.1 200 OK\r\nX: y\r\n\r\n", "GET", &[], true),
            "HTTP/1.1 200 OK\r\nX: y\r\nConnection: close\r\n\r\n"
        );
        // HEAD and 304 keep the representation's Content-Length
        assert_eq!(
            enc_res(
                "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n",
                "HEAD",
                &[],
                true
            ),
            "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"
        );
        assert_eq!(
            enc_res(
                "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\nETag: x\r\n\r\n",
                "GET",
                &[],
                true
            ),
            "HTTP/1.1 304 Not Modified\r\nETag: x\r\nContent-Length: 99\r\n\r\n"
        );
        // 204 and CONNECT 2xx do not
        assert_eq!(
            enc_res(
                "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
                "GET",
                &[],
                true
            ),
            "HTTP/1.1 204 No Content\r\n\r\n"
        );
        assert_eq!(
            enc_res(
                "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n",
                "CONNECT",
                &[],
                true
            ),
            "HTTP/1.1 200 OK\r\n\r\n"
        );
        // HEAD with chunked: nothing to frame
        assert_eq!(
            enc_res(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                "HEAD",
                &[],
                true
            ),
            "HTTP/1.1 200 OK\r\n\r\n"
        );
    }

    #[test]
    fn response_informational() {
        assert_eq!(
            enc_res("HTTP/1.1 100 Continue\r\n\r\n", "POST", &[], false),
            "HTTP/1.1 100 Continue\r\n\r\n"
        );
        assert_eq!(
            enc_res(
                "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
                "GET",
                &[],
                false
            ),
            "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
        );
        assert_eq!(
            enc_res(
                "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                 Sec-WebSocket-Accept: a\r\n\r\n",
                "GET",
                &[],
                false
            ),
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: a\r\n\
             Connection: upgrade\r\n\r\n"
        );
    }

    #[test]
    fn response_dechunked() {
        let head = res(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\
             Connection: keep-alive\r\n\r\n",
            "GET",
        );
        let mut out = Vec::new();
        write_response_head_dechunked(&mut out, &head, &[("x-via", b"r")], &Edits::NONE);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nx-via: r\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn response_values_byte_for_byte() {
        let s = b"HTTP/1.1 200 \xc3\xa9t\xc3\xa9\r\nSet-Cookie: a=\"b\"; \t x\xff\r\nContent-Length: 0\r\n\r\n";
        let head = parse_response(s, 8192, "GET").unwrap().unwrap().0;
        let mut out = Vec::new();
        write_response_head(&mut out, &head, &[], &Edits::NONE, true);
        assert_eq!(
            out,
            b"HTTP/1.1 200 \xc3\xa9t\xc3\xa9\r\nSet-Cookie: a=\"b\"; \t x\xff\r\nContent-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn numbers() {
        for n in [0u64, 1, 9, 10, 99, 100, 12345, u64::MAX] {
            let mut out = Vec::new();
            push_u64(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
        let mut out = Vec::new();
        push_status(&mut out, 101);
        assert_eq!(out, b"101");
    }

    #[test]
    fn edits_remove_then_add_after_every_other_field() {
        let head = req("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nX-Debug: y\r\nX-B: 2\r\n\r\n");
        let edits = Edits {
            remove: vec!["x-debug".into(), "x-b".into(), "x-request-id".into()],
            add: vec![
                (Bytes::from_static(b"x-b"), Bytes::from_static(b"3")),
                (Bytes::from_static(b"x-a"), Bytes::from_static(b"4")),
            ],
        };
        let mut out = Vec::new();
        write_request_head(&mut out, &head, &[("X-Request-Id", b"r")], &edits, false);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-b: 3\r\nx-a: 4\r\n\r\n"
        );
        let resp = res(
            "HTTP/1.1 200 OK\r\nX-Powered-By: p\r\nContent-Length: 0\r\n\r\n",
            "GET",
        );
        let edits = Edits {
            remove: vec!["x-powered-by".into()],
            add: vec![(
                Bytes::from_static(b"x-served-by"),
                Bytes::from_static(b"ringside"),
            )],
        };
        let mut out = Vec::new();
        write_response_head(&mut out, &resp, &[], &edits, true);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\nx-served-by: ringside\r\nContent-Length: 0\r\n\r\n"
        );
    }
}
