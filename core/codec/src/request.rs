//! Request heads: [`parse_request`] and the [`RequestHead`] it returns.
//!
//! httparse tokenizes (strict `ParserConfig`: no lenient option enabled); this module adds the
//! checks a proxy needs so that no request can be read differently here and upstream
//! (RFC 9112): no bare CR/LF, ASCII-only target in the form its method allows, exactly one
//! valid `Host` on HTTP/1.1, one all-digit `Content-Length`, `Transfer-Encoding` only as
//! `chunked` and never together with `Content-Length` or on HTTP/1.0.
//!
//! Decisions on the open points:
//! - `Transfer-Encoding: gzip, chunked` (well-formed, other codings before a final `chunked`)
//!   is refused with `NotImplemented` (501), as nginx does: the encoder normalises framing to
//!   `Transfer-Encoding: chunked` and would otherwise drop the inner coding.
//! - `host()` of an IPv6 literal keeps its brackets: `[::1]:80` gives `"[::1]"`.
//! - An empty `Host` value is refused (a proxy routes by host).
//! - A fragment (`#...`) in the target is dropped from `path_and_query()`; non-ASCII bytes in
//!   the target are refused.
//! - `OPTIONS http://h` (absolute form, empty path, no query) becomes `*` (RFC 9112 §3.2.4).
//! - `Expect: 100-continue` and `Upgrade` are ignored on HTTP/1.0 (RFC 9110 §10.1.1, §7.8).
//! - 414 is returned when the target exceeds `max_uri_bytes`, and also while the request line
//!   is still incomplete once it exceeds `max_uri_bytes + 64` or fills `max_header_bytes`.

use bytes::{BufMut, Bytes, BytesMut};

use crate::header::{
    as_str, authority_host_len, is_value_byte, line_endings_ok, parse_content_length, trim_ows,
    ConnFlags, Hdr, Scratch, Span, TeState, TeVerdict,
};
use crate::{BodyKind, Limits, RequestError, Version};

/// Room for the method, spaces and version beyond `max_uri_bytes` on an incomplete line.
const REQUEST_LINE_SLACK: usize = 64;

/// A parsed request head. Owns a copy of the head bytes; accessors index into it.
#[derive(Debug, Clone)]
pub struct RequestHead {
    /// The head as received (leading empty lines included), followed by synthesized bytes
    /// (an origin-form path for an absolute-form target, a lowercased host).
    pub(crate) buf: Bytes,
    pub(crate) method: Span,
    pub(crate) target: Span,
    pub(crate) path_and_query: Span,
    pub(crate) path: Span,
    pub(crate) authority: Option<Span>,
    pub(crate) host: Option<Span>,
    pub(crate) headers: Vec<Hdr>,
    pub(crate) upgrade: Option<Span>,
    pub(crate) version: Version,
    pub(crate) body: BodyKind,
    pub(crate) keep_alive: bool,
    pub(crate) expects_continue: bool,
}

impl RequestHead {
    /// The method token as sent (case-sensitive).
    pub fn method(&self) -> &str {
        as_str(self.method.get(&self.buf))
    }
    /// GET, HEAD, OPTIONS, TRACE, PUT and DELETE (RFC 9110 §9.2.2).
    pub fn is_idempotent(&self) -> bool {
        matches!(
            self.method(),
            "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
        )
    }
    pub fn version(&self) -> Version {
        self.version
    }
    /// The request target exactly as sent.
    pub fn target(&self) -> &str {
        as_str(self.target.get(&self.buf))
    }
    /// Origin-form path and query (`/` for an empty absolute-form path); `*` for asterisk form;
    /// the authority for CONNECT. Never contains a fragment.
    pub fn path_and_query(&self) -> &str {
        as_str(self.path_and_query.get(&self.buf))
    }
    /// `path_and_query()` without the query.
    pub fn path(&self) -> &str {
        as_str(self.path.get(&self.buf))
    }
    /// The authority's host, lowercased, port stripped (IPv6 literals keep their brackets).
    pub fn host(&self) -> Option<&str> {
        self.host.map(|s| as_str(s.get(&self.buf)))
    }
    /// The target's authority (absolute or authority form), else the `Host` header.
    pub fn authority(&self) -> Option<&str> {
        self.authority.map(|s| as_str(s.get(&self.buf)))
    }
    /// First value of a header, by case-insensitive name.
    pub fn header(&self, lower_name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| {
                h.name
                    .get(&self.buf)
                    .eq_ignore_ascii_case(lower_name.as_bytes())
            })
            .map(|h| h.value.get(&self.buf))
    }
    /// Every header as (name as sent, value), in order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.headers
            .iter()
            .map(move |h| (as_str(h.name.get(&self.buf)), h.value.get(&self.buf)))
    }
    pub fn body(&self) -> BodyKind {
        self.body
    }
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }
    pub fn expects_continue(&self) -> bool {
        self.expects_continue
    }
    /// The `Upgrade` value when `Connection` carries the `upgrade` token (HTTP/1.1 only).
    pub fn upgrade(&self) -> Option<&[u8]> {
        self.upgrade.map(|s| s.get(&self.buf))
    }
}

/// Parses one request head from the start of `buf`.
///
/// `Ok(None)`: the head is incomplete, read more. `Ok(Some((head, n)))`: `n` bytes (leading
/// empty lines and the final CRLFCRLF included) form the head; the body or the next request
/// starts at `buf[n..]`.
pub fn parse_request(
    buf: &[u8],
    limits: &Limits,
) -> Result<Option<(RequestHead, usize)>, RequestError> {
    // Never look past the limit: a complete head must fit in it.
    let window = buf.get(..limits.max_header_bytes).unwrap_or(buf);
    let mut scratch = Scratch::new(limits.max_headers);
    let mut req = httparse::Request::new(&mut []);
    let status = httparse::ParserConfig::default().parse_request_with_uninit_headers(
        &mut req,
        window,
        scratch.slots(limits.max_headers),
    );
    if let Some(path) = req.path {
        if path.len() > limits.max_uri_bytes {
            return Err(RequestError::UriTooLong);
        }
    }
    match status {
        Ok(httparse::Status::Complete(n)) => build(window, n, &req, limits).map(Some),
        Ok(httparse::Status::Partial) => {
            if req.path.is_none() {
                // Still inside the request line (or the empty lines before it).
                let start = window
                    .iter()
                    .position(|&b| b != b'\r' && b != b'\n')
                    .unwrap_or(window.len());
                let line_len = window.len().saturating_sub(start);
                if line_len > limits.max_uri_bytes.saturating_add(REQUEST_LINE_SLACK)
                    || buf.len() > limits.max_header_bytes
                {
                    return Err(RequestError::UriTooLong);
                }
            }
            if buf.len() > limits.max_header_bytes {
                return Err(RequestError::HeadersTooLarge);
            }
            Ok(None)
        }
        Err(e) => Err(map_error(e, window, req.path)),
    }
}

fn map_error(e: httparse::Error, window: &[u8], path: Option<&str>) -> RequestError {
    use httparse::Error as E;
    match e {
        E::TooManyHeaders => RequestError::HeadersTooLarge,
        E::Version => {
            // `HTTP/<digit>...` that is not 1.0/1.1 is a version we do not speak; anything
            // else in that position is garbage.
            let version = path
                .and_then(|p| Span::of(window, p.as_bytes()))
                .and_then(|s| window.get((s.end as usize).saturating_add(1)..))
                .unwrap_or_default();
            match version.get(..6) {
                Some([b'H', b'T', b'T', b'P', b'/', d]) if d.is_ascii_digit() => {
                    RequestError::VersionNotSupported
                }
                _ => RequestError::Malformed("invalid HTTP version"),
            }
        }
        E::Token => RequestError::Malformed("invalid method or request target"),
        E::HeaderName => RequestError::Malformed("invalid header name"),
        E::HeaderValue => RequestError::Malformed("invalid header value"),
        E::NewLine => RequestError::Malformed("invalid line ending"),
        _ => RequestError::Malformed("invalid request head"),
    }
}

fn malformed(msg: &'static str) -> RequestError {
    RequestError::Malformed(msg)
}

/// Where `path_and_query` comes from: a span of the head, or `prefix` + span (synthesized).
struct PqPlan {
    prefix: &'static [u8],
    rest: Span,
}

fn build(
    window: &[u8],
    n: usize,
    req: &httparse::Request<'_, '_>,
    limits: &Limits,
) -> Result<(RequestHead, usize), RequestError> {
    let head = window.get(..n).ok_or(malformed("internal: head length"))?;
    if u32::try_from(n).is_err() {
        return Err(RequestError::HeadersTooLarge);
    }
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(malformed("internal: incomplete request line"));
    };
    if target.len() > limits.max_uri_bytes {
        return Err(RequestError::UriTooLong);
    }
    if !line_endings_ok(head) {
        return Err(malformed("bare CR or LF in head"));
    }
    let version = match minor {
        0 => Version::Http10,
        1 => Version::Http11,
        _ => return Err(RequestError::VersionNotSupported),
    };
    let http11 = version == Version::Http11;
    if !target.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(malformed("invalid byte in request target"));
    }
    let method_span = Span::of(head, method.as_bytes()).ok_or(malformed("internal: method"))?;
    let target_span = Span::of(head, target.as_bytes()).ok_or(malformed("internal: target"))?;

    // Header fields: record spans, and the fields that decide framing and routing.
    let mut headers = Vec::with_capacity(req.headers.len());
    let mut host_header: Option<Span> = None;
    let mut content_length: Option<u64> = None;
    let mut te = TeState::default();
    let mut te_seen = false;
    let mut conn = ConnFlags::default();
    let mut expect_continue = false;
    let mut upgrade: Option<Span> = None;
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        let value = trim_ows(h.value);
        if !value.iter().all(|&b| is_value_byte(b)) {
            return Err(malformed("invalid byte in header value"));
        }
        let hdr = Hdr {
            name: Span::of(head, name).ok_or(malformed("internal: header name"))?,
            value: Span::of(head, value).ok_or(malformed("internal: header value"))?,
        };
        if name.eq_ignore_ascii_case(b"host") {
            if host_header.is_some() {
                return Err(malformed("multiple Host headers"));
            }
            if authority_host_len(value).is_none() {
                return Err(malformed("invalid Host header"));
            }
            host_header = Some(hdr.value);
        } else if name.eq_ignore_ascii_case(b"content-length") {
            if content_length.is_some() {
                return Err(malformed("multiple Content-Length headers"));
            }
            content_length =
                Some(parse_content_length(value).ok_or(malformed("invalid Content-Length"))?);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            te_seen = true;
            te.add(value);
        } else if name.eq_ignore_ascii_case(b"connection") {
            conn.add(value);
        } else if name.eq_ignore_ascii_case(b"expect") {
            expect_continue |= value.eq_ignore_ascii_case(b"100-continue");
        } else if name.eq_ignore_ascii_case(b"upgrade") && upgrade.is_none() {
            upgrade = Some(hdr.value);
        }
        headers.push(hdr);
    }

    let body = if te_seen {
        if !http11 {
            return Err(malformed("Transfer-Encoding in an HTTP/1.0 request"));
        }
        if content_length.is_some() {
            return Err(malformed("both Transfer-Encoding and Content-Length"));
        }
        match te.verdict() {
            TeVerdict::Chunked => BodyKind::Chunked,
            TeVerdict::OtherThenChunked => return Err(RequestError::NotImplemented),
            TeVerdict::Invalid(msg) => return Err(malformed(msg)),
        }
    } else {
        content_length.map_or(BodyKind::Empty, BodyKind::Length)
    };

    if http11 && host_header.is_none() {
        return Err(malformed("missing Host header"));
    }

    // Request target: which form, and what it means.
    let tb = target.as_bytes();
    let (pq, target_authority) = if method == "CONNECT" {
        // authority-form: host ":" port, port required.
        match authority_host_len(tb) {
            Some(len) if tb.get(len) == Some(&b':') && tb.len() > len.saturating_add(1) => {}
            _ => return Err(malformed("CONNECT needs an authority-form target")),
        }
        (
            PqPlan {
                prefix: b"",
                rest: target_span,
            },
            Some(target_span),
        )
    } else if tb.first() == Some(&b'/') {
        let end = fragment_start(tb);
        let rest = target_span
            .sub(0, end)
            .ok_or(malformed("internal: target"))?;
        (PqPlan { prefix: b"", rest }, None)
    } else if tb == b"*" {
        if method != "OPTIONS" {
            return Err(malformed("asterisk-form target outside OPTIONS"));
        }
        (
            PqPlan {
                prefix: b"",
                rest: target_span,
            },
            None,
        )
    } else {
        absolute_form(tb, target_span, method == "OPTIONS")?
    };

    let authority = target_authority.or(host_header);
    let host_src = match authority {
        Some(a) => {
            let len = authority_host_len(a.get(head)).ok_or(malformed("invalid authority"))?;
            Some(a.sub(0, len).ok_or(malformed("internal: host"))?)
        }
        None => None,
    };
    let host_needs_lower = host_src.is_some_and(|h| h.get(head).iter().any(u8::is_ascii_uppercase));

    // One allocation: the head, then any synthesized bytes.
    let pq_len = pq.prefix.len().saturating_add(pq.rest.get(head).len());
    let host_extra = match (host_needs_lower, host_src) {
        (true, Some(h)) => h.get(head).len(),
        _ => 0,
    };
    let synth_pq = !pq.prefix.is_empty();
    let extra = if synth_pq { pq_len } else { 0 }.saturating_add(host_extra);
    let mut owned = BytesMut::with_capacity(n.saturating_add(extra));
    owned.put_slice(head);
    let path_and_query = if synth_pq {
        let at = owned.len();
        owned.put_slice(pq.prefix);
        owned.put_slice(pq.rest.get(head));
        Span::at(at, pq_len).ok_or(RequestError::HeadersTooLarge)?
    } else {
        pq.rest
    };
    let host = match (host_needs_lower, host_src) {
        (true, Some(h)) => {
            let at = owned.len();
            owned.extend(h.get(head).iter().map(u8::to_ascii_lowercase));
            Some(Span::at(at, host_extra).ok_or(RequestError::HeadersTooLarge)?)
        }
        (_, h) => h,
    };
    let buf = owned.freeze();
    let pq_bytes = path_and_query.get(&buf);
    let path_len = if method == "CONNECT" {
        pq_bytes.len()
    } else {
        pq_bytes
            .iter()
            .position(|&b| b == b'?')
            .unwrap_or(pq_bytes.len())
    };
    let path = path_and_query
        .sub(0, path_len)
        .ok_or(malformed("internal: path"))?;

    let head = RequestHead {
        buf,
        method: method_span,
        target: target_span,
        path_and_query,
        path,
        authority,
        host,
        headers,
        upgrade: if http11 && conn.upgrade {
            upgrade
        } else {
            None
        },
        version,
        body,
        keep_alive: conn.persistent(http11),
        expects_continue: http11 && expect_continue,
    };
    Ok((head, n))
}

fn fragment_start(bytes: &[u8]) -> usize {
    bytes.iter().position(|&b| b == b'#').unwrap_or(bytes.len())
}

/// `http://authority[/path][?query][#fragment]` (scheme case-insensitive, http or https).
fn absolute_form(
    tb: &[u8],
    target: Span,
    options: bool,
) -> Result<(PqPlan, Option<Span>), RequestError> {
    let colon = tb
        .iter()
        .position(|&b| b == b':')
        .ok_or(malformed("invalid request target"))?;
    let scheme = tb.get(..colon).unwrap_or_default();
    if !(scheme.eq_ignore_ascii_case(b"http") || scheme.eq_ignore_ascii_case(b"https")) {
        return Err(malformed("unsupported scheme in request target"));
    }
    let auth_start = colon.saturating_add(3);
    if tb.get(colon..auth_start) != Some(b"://") {
        return Err(malformed("invalid absolute-form target"));
    }
    let after = tb.get(auth_start..).unwrap_or_default();
    let auth_len = after
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(after.len());
    let auth_bytes = after.get(..auth_len).unwrap_or_default();
    if auth_bytes.contains(&b'@') {
        return Err(malformed("userinfo in request target"));
    }
    if authority_host_len(auth_bytes).is_none() {
        return Err(malformed("invalid authority in request target"));
    }
    let auth_end = auth_start.saturating_add(auth_len);
    let authority = target
        .sub(auth_start, auth_end)
        .ok_or(malformed("internal: authority"))?;
    let tail = tb.get(auth_end..).unwrap_or_default();
    let tail_end = auth_end.saturating_add(fragment_start(tail));
    let rest = target
        .sub(auth_end, tail_end)
        .ok_or(malformed("internal: target"))?;
    let plan = match tail.first() {
        Some(b'/') => PqPlan { prefix: b"", rest },
        _ if options && rest.start == rest.end => PqPlan { prefix: b"*", rest },
        _ => PqPlan { prefix: b"/", rest },
    };
    Ok((plan, Some(authority)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_header_bytes: 8192,
        max_headers: 100,
        max_uri_bytes: 4096,
    };

    fn parse(s: &[u8]) -> Result<Option<(RequestHead, usize)>, RequestError> {
        parse_request(s, &LIMITS)
    }

    fn ok(s: &[u8]) -> RequestHead {
        match parse(s) {
            Ok(Some((h, n))) => {
                assert_eq!(
                    n,
                    s.len(),
                    "head length for {:?}",
                    String::from_utf8_lossy(s)
                );
                h
            }
            other => panic!("{:?} -> {other:?}", String::from_utf8_lossy(s)),
        }
    }

    fn err(s: &[u8]) -> RequestError {
        match parse(s) {
            Err(e) => e,
            other => panic!("{:?} -> {other:?}", String::from_utf8_lossy(s)),
        }
    }

    fn malformed(s: &[u8]) {
        assert!(
            matches!(err(s), RequestError::Malformed(_)),
            "{:?} -> {:?}",
            String::from_utf8_lossy(s),
            parse(s)
        );
    }

    #[test]
    fn simple_get() {
        let h = ok(b"GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: Example.COM:8080\r\nAccept: */*\r\n\r\n");
        assert_eq!(h.method(), "GET");
        assert!(h.is_idempotent());
        assert_eq!(h.version(), Version::Http11);
        assert_eq!(h.target(), "/a/b?x=1&y=2");
        assert_eq!(h.path_and_query(), "/a/b?x=1&y=2");
        assert_eq!(h.path(), "/a/b");
        assert_eq!(h.authority(), Some("Example.COM:8080"));
        assert_eq!(h.host(), Some("example.com"));
        assert_eq!(h.header("accept"), Some(&b"*/*"[..]));
        assert_eq!(h.header("ACCEPT"), Some(&b"*/*"[..]));
        assert_eq!(h.header("missing"), None);
        assert_eq!(h.body(), BodyKind::Empty);
        assert!(h.keep_alive());
        assert!(!h.expects_continue());
        assert_eq!(h.upgrade(), None);
        let all: Vec<_> = h.headers().collect();
        assert_eq!(
            all,
            vec![("Host", &b"Example.COM:8080"[..]), ("Accept", &b"*/*"[..])]
        );
    }

    #[test]
    fn header_values_trimmed_and_first_wins() {
        let h = ok(b"GET / HTTP/1.1\r\nHost: a\r\nX-A: \t one \t\r\nx-a: two\r\nX-E:\r\n\r\n");
        assert_eq!(h.header("x-a"), Some(&b"one"[..]));
        assert_eq!(h.header("x-e"), Some(&b""[..]));
        assert_eq!(h.headers().count(), 4);
    }

    #[test]
    fn methods_and_idempotence() {
        for (m, idem) in [
            ("GET", true),
            ("HEAD", true),
            ("OPTIONS", true),
            ("TRACE", true),
            ("PUT", true),
            ("DELETE", true),
            ("POST", false),
            ("PATCH", false),
            ("get", false),
            ("PROPFIND", false),
        ] {
            let h = ok(format!("{m} / HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes());
            assert_eq!(h.method(), m);
            assert_eq!(h.is_idempotent(), idem, "{m}");
        }
        malformed(b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n");
        malformed(b" GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    }

    #[test]
    fn leading_empty_lines_are_skipped_and_counted() {
        let s = b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
        let h = ok(s);
        assert_eq!(h.method(), "GET");
        malformed(b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
        malformed(b"\r\rGET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert!(matches!(parse(b"\r\n"), Ok(None)));
        assert!(matches!(parse(b""), Ok(None)));
    }

    #[test]
    fn partial_at_every_split_point() {
        let full: &[u8] = b"\r\nPOST http://Orders:8080/api?x=1 HTTP/1.1\r\nHost: orders\r\n\
            Content-Length: 5\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n\r\nhello";
        let head_len = full.len() - 5;
        for cut in 0..head_len {
            assert!(matches!(parse(&full[..cut]), Ok(None)), "cut at {cut}");
        }
        for cut in head_len..=full.len() {
            let (h, n) = parse(&full[..cut]).unwrap().unwrap();
            assert_eq!(n, head_len);
            assert_eq!(h.body(), BodyKind::Length(5));
            assert_eq!(h.path_and_query(), "/api?x=1");
        }
    }

    #[test]
    fn pipelined_requests() {
        let s = b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /3 HTTP/1.1\r\nHost: a\r\n\r\n";
        let (h1, n1) = parse(s).unwrap().unwrap();
        assert_eq!(h1.path(), "/1");
        let rest = &s[n1..];
        let (h2, n2) = parse(rest).unwrap().unwrap();
        assert_eq!(h2.path(), "/2");
        assert_eq!(h2.body(), BodyKind::Length(3));
        let rest = &rest[n2 + 3..];
        let (h3, n3) = parse(rest).unwrap().unwrap();
        assert_eq!(h3.path(), "/3");
        assert_eq!(n3, rest.len());
    }

    #[test]
    fn line_ending_rules() {
        malformed(b"GET / HTTP/1.1\nHost: a\r\n\r\n");
        malformed(b"GET / HTTP/1.1\r\nHost: a\n\r\n");
        malformed(b"GET / HTTP/1.1\r\nHost: a\r\n\n");
        malformed(b"GET / HTTP/1.1\nHost: a\n\n");
        malformed(b"GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n");
        malformed(b"GET / HTTP/1.1\r\nX: a\rb\r\nHost: a\r\n\r\n");
        malformed(b"GET /\r HTTP/1.1\r\nHost: a\r\n\r\n");
        malformed(b"GET / HTTP/1.1\r\r\nHost: a\r\n\r\n");
    }

    #[test]
    fn field_syntax_rules() {
        // whitespace between name and colon
        malformed(b"GET / HTTP/1.1\r\nHost : a\r\n\r\n");
        malformed(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length\t: 1\r\n\r\n");
        // obs-fold
        malformed(b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n");
        malformed(b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\t2\r\n\r\n");
        // space before the first field
        malformed(b"GET / HTTP/1.1\r\n Host: a\r\n\r\n");
        // control characters in values
        for c in [0u8, 1, 0x0b, 0x0c, 0x1f, 0x7f] {
            let mut s = b"GET / HTTP/1.1\r\nHost: a\r\nX: a".to_vec();
            s.push(c);
            s.extend_from_slice(b"b\r\n\r\n");
            malformed(&s);
        }
        // invalid tokens in names
        malformed(b"GET / HTTP/1.1\r\nHost: a\r\nX(Y): 1\r\n\r\n");
        malformed(b"GET / HTTP/1.1\r\nHost: a\r\n: 1\r\n\r\n");
        malformed(b"GET / HTTP/1.1\r\nHost: a\r\nX\x00: 1\r\n\r\n");
        malformed(b"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n");
        // obs-text in a value is allowed and returned as is
        let h = ok(b"GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n");
        assert_eq!(h.header("x"), Some(&b"caf\xc3\xa9"[..]));
    }

    #[test]
    fn request_line_rules() {
        malformed(b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n");
        malformed(b"GET /  HTTP/1.1\r\nHost: a\r\n\r\n");
        malformed(b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n");
        malformed(b"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n");
        malformed(b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n");
        malformed(b"GET\r\n\r\n");
        malformed(b"GET /\r\n\r\n");
    }

    #[test]
    fn versions() {
        let h = ok(b"GET / HTTP/1.0\r\n\r\n");
        assert_eq!(h.version(), Version::Http10);
        assert!(!h.keep_alive());
        assert_eq!(h.host(), None);
        assert_eq!(h.authority(), None);
        for v in ["HTTP/2.0", "HTTP/1.2", "HTTP/3", "HTTP/0.9", "HTTP/9.9"] {
            let s = format!("GET / {v}\r\nHost: a\r\n\r\n");
            assert_eq!(err(s.as_bytes()), RequestError::VersionNotSupported, "{v}");
        }
        let preface = parse(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        assert!(matches!(
            preface,
            Err(RequestError::VersionNotSupported | RequestError::Malformed(_))
        ));
        malformed(b"GET / http/1.1\r\nHost: a\r\n\r\n");
        malformed(b"GET / HTTX/1.1\r\nHost: a\r\n\r\n");
        malformed(b"GET / HTTP/\r\nHost: a\r\n\r\n");
        assert_eq!(err(b"GET / HTTP/2").status(), 505);
    }

    #[test]
    fn size_limits() {
        let limits = Limits {
            max_header_bytes: 200,
            max_headers: 3,
            max_uri_bytes: 50,
        };
        let p = |s: &[u8]| parse_request(s, &limits);
        // target longer than max_uri, complete or not
        let long = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(50));
        assert_eq!(p(long.as_bytes()).unwrap_err(), RequestError::UriTooLong);
        assert_eq!(
            p(&long.as_bytes()[..60]).unwrap_err(),
            RequestError::UriTooLong
        );
        let exact = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(49));
        assert!(p(exact.as_bytes()).unwrap().is_some());
        // an incomplete request line already past max_uri + slack
        let line = format!("GET /{}", "a".repeat(200));
        assert_eq!(
            p(&line.as_bytes()[..120]).unwrap_err(),
            RequestError::UriTooLong
        );
        assert!(matches!(p(&line.as_bytes()[..100]), Ok(None)));
        // an incomplete request line that fills the whole head limit
        let big = Limits {
            max_header_bytes: 100,
            max_headers: 3,
            max_uri_bytes: 1000,
        };
        let line = format!("GET /{}", "a".repeat(200));
        assert_eq!(
            parse_request(line.as_bytes(), &big).unwrap_err(),
            RequestError::UriTooLong
        );
        // headers past max_header_bytes, complete or not
        let many = format!(
            "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
            "b".repeat(200)
        );
        assert_eq!(
            p(many.as_bytes()).unwrap_err(),
            RequestError::HeadersTooLarge
        );
        assert_eq!(
            p(&many.as_bytes()[..201]).unwrap_err(),
            RequestError::HeadersTooLarge
        );
        assert!(matches!(p(&many.as_bytes()[..200]), Ok(None)));
        // a head of exactly max_header_bytes is fine, and bytes after it do not count
        let fill = 200 - b"GET / HTTP/1.1\r\nHost: a\r\nX: \r\n\r\n".len();
        let exact = format!(
            "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\nBODY",
            "b".repeat(fill)
        );
        assert_eq!(p(exact.as_bytes()).unwrap().unwrap().1, 200);
        // header count
        assert!(p(b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n")
            .unwrap()
            .is_some());
        assert_eq!(
            p(b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n").unwrap_err(),
            RequestError::HeadersTooLarge
        );
        assert_eq!(
            p(b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n").unwrap_err(),
            RequestError::HeadersTooLarge
        );
    }

    #[test]
    fn many_headers_spill_to_heap() {
        let limits = Limits {
            max_header_bytes: 65536,
            max_headers: 300,
            max_uri_bytes: 100,
        };
        let mut s = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
        for i in 0..299 {
            s.push_str(&format!("X-{i}: {i}\r\n"));
        }
        s.push_str("\r\n");
        let (h, _) = parse_request(s.as_bytes(), &limits).unwrap().unwrap();
        assert_eq!(h.headers().count(), 300);
        assert_eq!(h.header("x-298"), Some(&b"298"[..]));
        let more = s.replace("\r\n\r\n", "\r\nX-Last: 1\r\n\r\n");
        assert_eq!(
            parse_request(more.as_bytes(), &limits).unwrap_err(),
            RequestError::HeadersTooLarge
        );
    }

    #[test]
    fn content_length_rules() {
        let h = ok(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 42\r\n\r\n");
        assert_eq!(h.body(), BodyKind::Length(42));
        let h = ok(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(h.body(), BodyKind::Length(0));
        let h = ok(b"POST / HTTP/1.0\r\nContent-Length: 7\r\n\r\n");
        assert_eq!(h.body(), BodyKind::Length(7));
        for bad in [
            "Content-Length: 1\r\nContent-Length: 1",
            "Content-Length: 1\r\nContent-Length: 2",
            "Content-Length: 1, 1",
            "Content-Length: 1,2",
            "Content-Length: +1",
            "Content-Length: -1",
            "Content-Length: 0x10",
            "Content-Length: 1 2",
            "Content-Length: ",
            "Content-Length: 18446744073709551616",
            "Content-Length: 99999999999999999999999",
            "Content-Length: 1.0",
        ] {
            malformed(format!("POST / HTTP/1.1\r\nHost: a\r\n{bad}\r\n\r\n").as_bytes());
        }
    }

    #[test]
    fn transfer_encoding_rules() {
        for good in [
            "Transfer-Encoding: chunked",
            "Transfer-Encoding: CHUNKED",
            "Transfer-Encoding:  \tchunked \t",
        ] {
            let h = ok(format!("POST / HTTP/1.1\r\nHost: a\r\n{good}\r\n\r\n").as_bytes());
            assert_eq!(h.body(), BodyKind::Chunked, "{good}");
        }
        for bad in [
            "Transfer-Encoding: chunked\r\nContent-Length: 5",
            "Content-Length: 5\r\nTransfer-Encoding: chunked",
            "Content-Length: 5\r\nTransfer-Encoding: gzip, chunked",
            "Transfer-Encoding: chunked, chunked",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
            "Transfer-Encoding: chunked, gzip",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip",
            "Transfer-Encoding: gzip",
            "Transfer-Encoding: xchunked",
            "Transfer-Encoding: chunkedx",
            "Transfer-Encoding: chunked;x",
            "Transfer-Encoding: chunked; q=1",
            "Transfer-Encoding: \"chunked\"",
            "Transfer-Encoding: chunked,",
            "Transfer-Encoding: ,chunked",
            "Transfer-Encoding: ",
            "Transfer-Encoding: ch unked",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: ",
            "Transfer-Encoding: \u{ff}chunked",
        ] {
            malformed(format!("POST / HTTP/1.1\r\nHost: a\r\n{bad}\r\n\r\n").as_bytes());
        }
        for unimpl in [
            "Transfer-Encoding: gzip, chunked",
            "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked",
            "Transfer-Encoding: xchunked, chunked",
        ] {
            let e = err(format!("POST / HTTP/1.1\r\nHost: a\r\n{unimpl}\r\n\r\n").as_bytes());
            assert_eq!(e, RequestError::NotImplemented, "{unimpl}");
            assert_eq!(e.status(), 501);
        }
        // HTTP/1.0 with Transfer-Encoding
        malformed(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n");
    }

    #[test]
    fn host_rules() {
        malformed(b"GET / HTTP/1.1\r\n\r\n");
        malformed(b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n");
        malformed(b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n");
        malformed(b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n");
        for bad in [
            "", "a b", "a/b", "a@b", "a:b", "a:80:80", "[::1", "a:99999", "a\\b", "\"a\"", "a%zz",
        ] {
            malformed(format!("GET / HTTP/1.1\r\nHost: {bad}\r\n\r\n").as_bytes());
        }
        let h = ok(b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n");
        assert_eq!(h.host(), Some("[::1]"));
        assert_eq!(h.authority(), Some("[::1]:8080"));
        let h = ok(b"GET / HTTP/1.1\r\nHost: [::1]\r\n\r\n");
        assert_eq!(h.host(), Some("[::1]"));
        let h = ok(b"GET / HTTP/1.1\r\nHost: api.example.com\r\n\r\n");
        assert_eq!(h.host(), Some("api.example.com"));
        assert_eq!(h.authority(), Some("api.example.com"));
        let h = ok(b"GET / HTTP/1.1\r\nHost: API.Example.com:443\r\n\r\n");
        assert_eq!(h.host(), Some("api.example.com"));
        assert_eq!(h.authority(), Some("API.Example.com:443"));
        let h = ok(b"GET / HTTP/1.0\r\nHost: a.b\r\n\r\n");
        assert_eq!(h.host(), Some("a.b"));
    }

    #[test]
    fn absolute_form() {
        let h = ok(b"GET http://orders:8080/api?x=1 HTTP/1.1\r\nHost: other\r\n\r\n");
        assert_eq!(h.target(), "http://orders:8080/api?x=1");
        assert_eq!(h.authority(), Some("orders:8080"));
        assert_eq!(h.host(), Some("orders"));
        assert_eq!(h.path_and_query(), "/api?x=1");
        assert_eq!(h.path(), "/api");
        let h = ok(b"GET HTTPS://Orders HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(h.path_and_query(), "/");
        assert_eq!(h.path(), "/");
        assert_eq!(h.host(), Some("orders"));
        assert_eq!(h.authority(), Some("Orders"));
        let h = ok(b"GET http://o?q=1 HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(h.path_and_query(), "/?q=1");
        assert_eq!(h.path(), "/");
        let h = ok(b"GET http://o/p#frag HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(h.path_and_query(), "/p");
        let h = ok(b"GET http://o#frag HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(h.path_and_query(), "/");
        let h = ok(b"GET http://[::1]:80/x HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(h.host(), Some("[::1]"));
        assert_eq!(h.authority(), Some("[::1]:80"));
        let h = ok(b"OPTIONS http://o:1 HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(h.path_and_query(), "*");
        let h = ok(b"OPTIONS http://o:1/ HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(h.path_and_query(), "/");
        let h = ok(b"GET http://o/ HTTP/1.0\r\n\r\n");
        assert_eq!(h.authority(), Some("o"));
        for bad in [
            "ftp://o/",
            "ws://o/",
            "http:/o/",
            "http:o",
            "http://",
            "http:///x",
            "http://u@o/",
            "http://u:p@o/",
            "http://o:x/",
            "http://a b/",
            "o/x",
            "orders:8080",
            "?x",
            "#x",
            "**",
        ] {
            malformed(format!("GET {bad} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        }
    }

    #[test]
    fn origin_asterisk_and_authority_forms() {
        let h = ok(b"GET /p?q#f HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(h.path_and_query(), "/p?q");
        assert_eq!(h.path(), "/p");
        assert_eq!(h.target(), "/p?q#f");
        let h = ok(b"GET /?#? HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(h.path_and_query(), "/?");
        assert_eq!(h.path(), "/");
        let h = ok(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(h.path_and_query(), "*");
        assert_eq!(h.path(), "*");
        malformed(b"GET * HTTP/1.1\r\nHost: a\r\n\r\n");
        let h = ok(b"CONNECT orders:443 HTTP/1.1\r\nHost: orders:443\r\n\r\n");
        assert_eq!(h.path_and_query(), "orders:443");
        assert_eq!(h.authority(), Some("orders:443"));
        assert_eq!(h.host(), Some("orders"));
        malformed(b"CONNECT orders HTTP/1.1\r\nHost: orders\r\n\r\n");
        malformed(b"CONNECT orders: HTTP/1.1\r\nHost: orders\r\n\r\n");
        malformed(b"CONNECT /x HTTP/1.1\r\nHost: orders\r\n\r\n");
        malformed(b"CONNECT http://o:1/ HTTP/1.1\r\nHost: orders\r\n\r\n");
    }

    #[test]
    fn keep_alive_rules() {
        let ka = |s: &[u8]| ok(s).keep_alive();
        assert!(ka(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
        assert!(!ka(
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        ));
        assert!(!ka(
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, CLOSE\r\n\r\n"
        ));
        assert!(!ka(
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: x\r\nConnection: close\r\n\r\n"
        ));
        assert!(ka(
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n"
        ));
        assert!(!ka(b"GET / HTTP/1.0\r\n\r\n"));
        assert!(ka(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
        assert!(ka(b"GET / HTTP/1.0\r\nConnection: foo ,Keep-Alive\r\n\r\n"));
        assert!(!ka(
            b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"
        ));
    }

    #[test]
    fn expect_and_upgrade() {
        assert!(
            ok(b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n\r\n").expects_continue()
        );
        assert!(!ok(b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n").expects_continue());
        assert!(!ok(b"PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n").expects_continue());
        let h =
            ok(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
        assert_eq!(h.upgrade(), Some(&b"websocket"[..]));
        let h = ok(b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n");
        assert_eq!(h.upgrade(), None);
        let h = ok(b"GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n");
        assert_eq!(h.upgrade(), None);
    }

    #[test]
    fn error_statuses() {
        assert_eq!(RequestError::Malformed("x").status(), 400);
        assert_eq!(RequestError::UriTooLong.status(), 414);
        assert_eq!(RequestError::HeadersTooLarge.status(), 431);
        assert_eq!(RequestError::VersionNotSupported.status(), 505);
        assert_eq!(RequestError::NotImplemented.status(), 501);
    }

    #[test]
    fn zero_limits_do_not_panic() {
        let limits = Limits {
            max_header_bytes: 0,
            max_headers: 0,
            max_uri_bytes: 0,
        };
        assert!(parse_request(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", &limits).is_err());
        assert!(matches!(parse_request(b"", &limits), Ok(None)));
    }
}
