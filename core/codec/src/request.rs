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
use crate::{BodyKind, Limits, PathRules, RequestError, Version};

/// Room for the method, spaces and version beyond `max_uri_bytes` on an incomplete line.
const REQUEST_LINE_SLACK: usize = 64;

/// A parsed request head. Owns a copy of the head bytes; accessors index into it.
#[derive(Debug, Clone)]
pub struct RequestHead {
    /// The head as received (leading empty lines included), followed by synthesized bytes
    /// (an origin-form path for an absolute-form target, a lowercased host).
    pub(crate) buf: Bytes,
    pub(crate) method: Span,
    /// The method when it is one of RFC 9110's (most requests): read per request by several
    /// stages, without turning bytes into text each time.
    pub(crate) known_method: Option<&'static str>,
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
        match self.known_method {
            Some(m) => m,
            None => as_str(self.method.get(&self.buf)),
        }
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
        Ok(httparse::Status::Complete(n)) => {
            let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version)
            else {
                return Err(malformed("internal: incomplete request line"));
            };
            let fields = req.headers.iter().map(|h| (h.name.as_bytes(), h.value));
            let line = RequestLine {
                method,
                target,
                minor,
            };
            build(window, n, line, fields, limits).map(Some)
        }
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

/// The request line's tokens, as slices of the head.
struct RequestLine<'h> {
    method: &'h str,
    target: &'h str,
    minor: u8,
}

/// Builds a request head from fields instead of text: an HTTP/2 request's method, target
/// (`:path`, or the authority of a CONNECT) and fields (`host` from `:authority` first). The
/// head is laid out in the same buffer form a parsed one has and checked by the same rules
/// (one Host, one valid Content-Length, no Transfer-Encoding beside it, a valid target,
/// value bytes, the limits) — without tokenizing text again. Names must be HTTP tokens
/// (`http::HeaderName` guarantees it); a name that is not is refused.
pub fn build_request<'f>(
    method: &str,
    target: &str,
    fields: impl Iterator<Item = (&'f [u8], &'f [u8])>,
    limits: &Limits,
) -> Result<RequestHead, RequestError> {
    build_fields(method, target, 1, fields, limits)
}

impl RequestHead {
    /// The same request with another origin-form `target` and/or `host` (an authority, port
    /// included when it has one): method, version and every other field kept in order, and
    /// checked by the same rules as [`build_request`]. `None` keeps the request's own
    /// (`path_and_query()`, `authority()`). What a rewrite or a mirror's host suffix sends
    /// upstream; both upstream clients write from the result.
    pub fn retarget(
        &self,
        target: Option<&str>,
        host: Option<&str>,
    ) -> Result<RequestHead, RequestError> {
        let target = target.unwrap_or(self.path_and_query());
        let host = host.or(self.authority());
        let fields = host
            .map(|h| (&b"host"[..], h.as_bytes()))
            .into_iter()
            .chain(
                self.headers()
                    .filter(|(n, _)| !n.eq_ignore_ascii_case("host"))
                    .map(|(n, v)| (n.as_bytes(), v)),
            );
        let minor = match self.version {
            Version::Http10 => 0,
            Version::Http11 => 1,
        };
        // The head passed the listener's limits already; these only bound the rebuild.
        let limits = Limits {
            max_header_bytes: usize::MAX,
            max_headers: usize::MAX,
            max_uri_bytes: usize::MAX,
            // The path is the listener's already (or the rewrite's, which sends what it says).
            path: PathRules::NONE,
        };
        build_fields(self.method(), target, minor, fields, &limits)
    }
}

/// [`build_request`] for HTTP/1.`minor`.
fn build_fields<'f>(
    method: &str,
    target: &str,
    minor: u8,
    fields: impl Iterator<Item = (&'f [u8], &'f [u8])>,
    limits: &Limits,
) -> Result<RequestHead, RequestError> {
    if target.len() > limits.max_uri_bytes {
        return Err(RequestError::UriTooLong);
    }
    if method.is_empty() || !method.bytes().all(crate::header::is_tchar) {
        return Err(malformed("invalid method"));
    }
    let mut buf = Vec::with_capacity(256);
    buf.extend_from_slice(method.as_bytes());
    buf.push(b' ');
    buf.extend_from_slice(target.as_bytes());
    buf.extend_from_slice(if minor == 0 {
        b" HTTP/1.0\r\n"
    } else {
        b" HTTP/1.1\r\n"
    });
    let mut spans: Vec<(usize, usize, usize, usize)> = Vec::new();
    for (name, value) in fields {
        if spans.len() >= limits.max_headers {
            return Err(RequestError::HeadersTooLarge);
        }
        if name.is_empty() || !name.iter().all(|&b| crate::header::is_tchar(b)) {
            return Err(malformed("invalid header name"));
        }
        let at = buf.len();
        buf.extend_from_slice(name);
        buf.extend_from_slice(b": ");
        buf.extend_from_slice(value);
        buf.extend_from_slice(b"\r\n");
        spans.push((at, name.len(), at + name.len() + 2, value.len()));
    }
    buf.extend_from_slice(b"\r\n");
    let n = buf.len();
    let method_at = 0..method.len();
    let target_at = method.len() + 1..method.len() + 1 + target.len();
    let text = |r: std::ops::Range<usize>| buf.get(r).map(as_str).unwrap_or_default();
    let line = RequestLine {
        method: text(method_at),
        target: text(target_at),
        minor,
    };
    let fields = spans.iter().map(|&(n_at, n_len, v_at, v_len)| {
        (
            buf.get(n_at..n_at + n_len).unwrap_or_default(),
            buf.get(v_at..v_at + v_len).unwrap_or_default(),
        )
    });
    build(&buf, n, line, fields, limits).map(|(head, _)| head)
}

fn build<'h>(
    window: &'h [u8],
    n: usize,
    line: RequestLine<'h>,
    fields: impl ExactSizeIterator<Item = (&'h [u8], &'h [u8])>,
    limits: &Limits,
) -> Result<(RequestHead, usize), RequestError> {
    let head = window.get(..n).ok_or(malformed("internal: head length"))?;
    if u32::try_from(n).is_err() {
        return Err(RequestError::HeadersTooLarge);
    }
    let RequestLine {
        method,
        target,
        minor,
    } = line;
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
    let mut headers = Vec::with_capacity(fields.len());
    let mut host_header: Option<Span> = None;
    let mut content_length: Option<u64> = None;
    let mut te = TeState::default();
    let mut te_seen = false;
    let mut conn = ConnFlags::default();
    let mut expect_continue = false;
    let mut upgrade: Option<Span> = None;
    for (name, value) in fields {
        let value = trim_ows(value);
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
    // The listener's path rules, on an origin-form path (also an absolute-form target's);
    // `Some`: the new path and the query as sent.
    let fixed = if limits.path.is_none() || method == "CONNECT" || !pq.prefix.is_empty() {
        None
    } else {
        fixed_path(pq.rest.get(head), &limits.path)?
    };

    // One allocation: the head, then any synthesized bytes.
    let pq_len = match &fixed {
        Some(f) => f.len(),
        None => pq.prefix.len().saturating_add(pq.rest.get(head).len()),
    };
    let host_extra = match (host_needs_lower, host_src) {
        (true, Some(h)) => h.get(head).len(),
        _ => 0,
    };
    let synth_pq = !pq.prefix.is_empty() || fixed.is_some();
    let extra = if synth_pq { pq_len } else { 0 }.saturating_add(host_extra);
    let mut owned = BytesMut::with_capacity(n.saturating_add(extra));
    owned.put_slice(head);
    let path_and_query = if synth_pq {
        let at = owned.len();
        match &fixed {
            Some(f) => owned.put_slice(f),
            None => {
                owned.put_slice(pq.prefix);
                owned.put_slice(pq.rest.get(head));
            }
        }
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
        known_method: known_method(method),
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

/// `path_and_query` (origin-form) with its path under `rules`: `None` when it stays as sent.
fn fixed_path(pq: &[u8], rules: &PathRules) -> Result<Option<Vec<u8>>, RequestError> {
    let end = pq.iter().position(|&b| b == b'?').unwrap_or(pq.len());
    let (path, query) = (
        pq.get(..end).unwrap_or(pq),
        pq.get(end..).unwrap_or_default(),
    );
    if path.first() != Some(&b'/') {
        return Ok(None);
    }
    Ok(rules.apply(path)?.map(|mut p| {
        p.extend_from_slice(query);
        p
    }))
}

/// `method` as a constant when it is one of RFC 9110's (and PATCH).
fn known_method(method: &str) -> Option<&'static str> {
    [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ]
    .into_iter()
    .find(|m| *m == method)
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
#[path = "request_tests.rs"]
mod tests;
