//! Response heads: [`parse_response`] and the [`ResponseHead`] it returns.
//!
//! Same tokenizer and line-ending rules as requests. Framing is decided per RFC 9112 §6.3
//! given the request method, and refused where two readers could disagree (response
//! smuggling toward the client):
//! - `Transfer-Encoding` together with `Content-Length` is `Malformed` (RFC lets TE win; a
//!   proxy refusing is safer).
//! - `Content-Length` repeated (as fields or as a list) is accepted only when every value is
//!   identical; differing or invalid values are `Malformed`.
//! - `Transfer-Encoding` must be exactly `chunked` (across fields); anything else, including
//!   `gzip, chunked` and a coding not ending in `chunked` (which RFC reads as close-delimited),
//!   is `Malformed`, and so is `Transfer-Encoding` on an HTTP/1.0 response.
//! - At most [`MAX_RESPONSE_HEADERS`] fields; more is `TooLarge`.

use bytes::Bytes;

use crate::header::{
    as_str, is_value_byte, line_endings_ok, list, parse_content_length, trim_ows, ConnFlags, Hdr,
    Scratch, Span, TeState, TeVerdict, STACK_HEADERS,
};
use crate::{BodyKind, ResponseError, Version};

/// Most header fields accepted in an upstream response head.
pub const MAX_RESPONSE_HEADERS: usize = STACK_HEADERS;

#[derive(Debug, Clone)]
pub struct ResponseHead {
    pub(crate) buf: Bytes,
    pub(crate) status: u16,
    pub(crate) reason: Span,
    pub(crate) headers: Vec<Hdr>,
    pub(crate) version: Version,
    pub(crate) body: BodyKind,
    pub(crate) keep_alive: bool,
    /// The `Content-Length` to pass through when the body is empty only because the request
    /// was HEAD or the status is 304 (it describes the representation, not this message).
    pub(crate) passthrough_length: Option<u64>,
}

impl ResponseHead {
    pub fn status(&self) -> u16 {
        self.status
    }
    pub fn version(&self) -> Version {
        self.version
    }
    /// The reason phrase as received (may be empty, may hold obs-text).
    pub fn reason(&self) -> &[u8] {
        self.reason.get(&self.buf)
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
    /// Whether the upstream connection can carry another request after this response.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }
    /// 1xx, 101 included.
    pub fn is_informational(&self) -> bool {
        (100..=199).contains(&self.status)
    }
}

fn malformed(msg: &'static str) -> ResponseError {
    ResponseError::Malformed(msg)
}

/// Parses one response head from the start of `buf`; `request_method` decides the framing.
///
/// `Ok(None)`: incomplete. `Ok(Some((head, n)))`: the body starts at `buf[n..]`.
pub fn parse_response(
    buf: &[u8],
    max_bytes: usize,
    request_method: &str,
) -> Result<Option<(ResponseHead, usize)>, ResponseError> {
    let window = buf.get(..max_bytes).unwrap_or(buf);
    let mut scratch = Scratch::new(MAX_RESPONSE_HEADERS);
    let mut res = httparse::Response::new(&mut []);
    let status = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut res,
        window,
        scratch.slots(MAX_RESPONSE_HEADERS),
    );
    match status {
        Ok(httparse::Status::Complete(n)) => build(window, n, &res, request_method).map(Some),
        Ok(httparse::Status::Partial) if buf.len() > max_bytes => Err(ResponseError::TooLarge),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(ResponseError::TooLarge),
        Err(httparse::Error::Version) => Err(malformed("unsupported HTTP version")),
        Err(httparse::Error::Status) => Err(malformed("invalid status line")),
        Err(httparse::Error::HeaderName) => Err(malformed("invalid header name")),
        Err(httparse::Error::HeaderValue) => Err(malformed("invalid header value")),
        Err(_) => Err(malformed("invalid response head")),
    }
}

fn build(
    window: &[u8],
    n: usize,
    res: &httparse::Response<'_, '_>,
    request_method: &str,
) -> Result<(ResponseHead, usize), ResponseError> {
    let head = window.get(..n).ok_or(malformed("internal: head length"))?;
    if u32::try_from(n).is_err() {
        return Err(ResponseError::TooLarge);
    }
    if !line_endings_ok(head) {
        return Err(malformed("bare CR or LF in head"));
    }
    let (Some(minor), Some(status)) = (res.version, res.code) else {
        return Err(malformed("internal: incomplete status line"));
    };
    let version = match minor {
        0 => Version::Http10,
        1 => Version::Http11,
        _ => return Err(malformed("unsupported HTTP version")),
    };
    let http11 = version == Version::Http11;
    if !(100..=599).contains(&status) {
        return Err(malformed("status code out of range"));
    }
    // Strict config: the line is exactly `HTTP/1.x SP 3DIGIT [SP reason] CRLF`.
    let line_start = head
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(head.len());
    let line = head.get(line_start..).unwrap_or_default();
    let eol = line.iter().position(|&b| b == b'\r').unwrap_or(0);
    let reason_at = line_start.saturating_add(13);
    let reason = if eol > 13 {
        Span::at(reason_at, eol.saturating_sub(13)).ok_or(ResponseError::TooLarge)?
    } else {
        Span::at(reason_at.min(n), 0).ok_or(ResponseError::TooLarge)?
    };

    let mut headers = Vec::with_capacity(res.headers.len());
    let mut content_length: Option<u64> = None;
    let mut te = TeState::default();
    let mut te_seen = false;
    let mut conn = ConnFlags::default();
    for h in res.headers.iter() {
        let name = h.name.as_bytes();
        let value = trim_ows(h.value);
        if !value.iter().all(|&b| is_value_byte(b)) {
            return Err(malformed("invalid byte in header value"));
        }
        headers.push(Hdr {
            name: Span::of(head, name).ok_or(malformed("internal: header name"))?,
            value: Span::of(head, value).ok_or(malformed("internal: header value"))?,
        });
        if name.eq_ignore_ascii_case(b"content-length") {
            for element in list(value) {
                let v = parse_content_length(element).ok_or(malformed("invalid Content-Length"))?;
                if content_length.is_some_and(|prev| prev != v) {
                    return Err(malformed("conflicting Content-Length values"));
                }
                content_length = Some(v);
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            te_seen = true;
            te.add(value);
        } else if name.eq_ignore_ascii_case(b"connection") {
            conn.add(value);
        }
    }

    if te_seen {
        if content_length.is_some() {
            return Err(malformed("both Transfer-Encoding and Content-Length"));
        }
        if !http11 {
            return Err(malformed("Transfer-Encoding in an HTTP/1.0 response"));
        }
        match te.verdict() {
            TeVerdict::Chunked => {}
            TeVerdict::OtherThenChunked => return Err(malformed("unsupported transfer-coding")),
            TeVerdict::Invalid(msg) => return Err(malformed(msg)),
        }
    }

    // RFC 9112 §6.3, in order.
    let head_request = request_method == "HEAD";
    let no_body_status = (100..=199).contains(&status) || status == 204 || status == 304;
    let tunnel = request_method == "CONNECT" && (200..=299).contains(&status);
    let body = if head_request || no_body_status || tunnel {
        BodyKind::Empty
    } else if te_seen {
        BodyKind::Chunked
    } else if let Some(len) = content_length {
        BodyKind::Length(len)
    } else {
        BodyKind::UntilClose
    };
    let passthrough_length = if head_request || status == 304 {
        content_length
    } else {
        None
    };

    let head = ResponseHead {
        buf: Bytes::copy_from_slice(head),
        status,
        reason,
        headers,
        version,
        body,
        keep_alive: conn.persistent(http11) && body != BodyKind::UntilClose,
        passthrough_length,
    };
    Ok((head, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &[u8], method: &str) -> Result<Option<(ResponseHead, usize)>, ResponseError> {
        parse_response(s, 8192, method)
    }

    fn ok(s: &[u8], method: &str) -> ResponseHead {
        match parse(s, method) {
            Ok(Some((h, n))) => {
                assert_eq!(n, s.len(), "{:?}", String::from_utf8_lossy(s));
                h
            }
            other => panic!("{:?} -> {other:?}", String::from_utf8_lossy(s)),
        }
    }

    fn malformed(s: &[u8]) {
        let r = parse(s, "GET");
        assert!(
            matches!(r, Err(ResponseError::Malformed(_))),
            "{:?} -> {r:?}",
            String::from_utf8_lossy(s)
        );
    }

    #[test]
    fn simple_response() {
        let h = ok(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nx-a: 2\r\n\r\n",
            "GET",
        );
        assert_eq!(h.status(), 200);
        assert_eq!(h.version(), Version::Http11);
        assert_eq!(h.reason(), b"OK");
        assert_eq!(h.body(), BodyKind::Length(5));
        assert!(h.keep_alive());
        assert!(!h.is_informational());
        assert_eq!(h.header("x-a"), Some(&b"1"[..]));
        assert_eq!(h.header("X-A"), Some(&b"1"[..]));
        assert_eq!(h.headers().count(), 3);
        assert_eq!(h.headers().nth(1), Some(("X-A", &b"1"[..])));
    }

    #[test]
    fn reasons() {
        assert_eq!(
            ok(b"HTTP/1.1 404 Not Found\r\n\r\n", "GET").reason(),
            b"Not Found"
        );
        assert_eq!(ok(b"HTTP/1.1 404 \r\n\r\n", "GET").reason(), b"");
        assert_eq!(ok(b"HTTP/1.1 404\r\n\r\n", "GET").reason(), b"");
        assert_eq!(
            ok(b"HTTP/1.1 200 caf\xc3\xa9\r\n\r\n", "GET").reason(),
            b"caf\xc3\xa9"
        );
        assert_eq!(
            ok(b"\r\nHTTP/1.1 200 Fine\r\n\r\n", "GET").reason(),
            b"Fine"
        );
        malformed(b"HTTP/1.1 200 O\x00K\r\n\r\n");
    }

    #[test]
    fn status_rules() {
        for bad in [
            &b"HTTP/1.1 099 X\r\n\r\n"[..],
            b"HTTP/1.1 600 X\r\n\r\n",
            b"HTTP/1.1 000 X\r\n\r\n",
            b"HTTP/1.1 20 X\r\n\r\n",
            b"HTTP/1.1 2000 X\r\n\r\n",
            b"HTTP/1.1 abc X\r\n\r\n",
            b"HTTP/1.1  200 X\r\n\r\n",
            b"HTTP/2 200\r\n\r\n",
            b"HTTP/1.2 200 OK\r\n\r\n",
            b"http/1.1 200 OK\r\n\r\n",
            b"ICY 200 OK\r\n\r\n",
        ] {
            malformed(bad);
        }
        assert_eq!(ok(b"HTTP/1.1 100 Continue\r\n\r\n", "GET").status(), 100);
        assert_eq!(ok(b"HTTP/1.1 599 X\r\n\r\n", "GET").status(), 599);
    }

    #[test]
    fn line_endings_and_fields() {
        malformed(b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n");
        malformed(b"HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n");
        malformed(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n");
        malformed(b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n");
        malformed(b"HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n");
        malformed(b"HTTP/1.1 200 OK\r\nX: 1\r\n 2\r\n\r\n");
        malformed(b"HTTP/1.1 200 OK\r\nX: \x01\r\n\r\n");
        malformed(b"HTTP/1.1 200 OK\r\nX(: 1\r\n\r\n");
    }

    #[test]
    fn framing_rules() {
        let body = |s: &[u8], m: &str| ok(s, m).body();
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        let length = b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n";
        let neither = b"HTTP/1.1 200 OK\r\n\r\n";
        assert_eq!(body(chunked, "GET"), BodyKind::Chunked);
        assert_eq!(body(length, "GET"), BodyKind::Length(12));
        assert_eq!(body(neither, "GET"), BodyKind::UntilClose);
        assert!(!ok(neither, "GET").keep_alive());
        for head_like in [&chunked[..], length, neither] {
            assert_eq!(body(head_like, "HEAD"), BodyKind::Empty);
            assert_eq!(body(head_like, "CONNECT"), BodyKind::Empty);
            assert!(ok(head_like, "HEAD").keep_alive());
        }
        for status in ["100", "101", "103", "204", "304"] {
            for extra in [
                "",
                "Content-Length: 10\r\n",
                "Transfer-Encoding: chunked\r\n",
            ] {
                let s = format!("HTTP/1.1 {status} X\r\n{extra}\r\n");
                assert_eq!(body(s.as_bytes(), "GET"), BodyKind::Empty, "{s}");
            }
        }
        // a non-2xx answer to CONNECT has a body
        let s = b"HTTP/1.1 407 Auth\r\nContent-Length: 3\r\n\r\n";
        assert_eq!(body(s, "CONNECT"), BodyKind::Length(3));
        // identical duplicates are tolerated
        let s = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n";
        assert_eq!(body(s, "GET"), BodyKind::Length(3));
        let s = b"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n";
        assert_eq!(body(s, "GET"), BodyKind::Length(3));
        for bad in [
            "Content-Length: 3\r\nContent-Length: 4",
            "Content-Length: 3, 4",
            "Content-Length: 3,",
            "Content-Length: -3",
            "Content-Length: +3",
            "Content-Length: 3a",
            "Content-Length: ",
            "Content-Length: 18446744073709551616",
            "Transfer-Encoding: chunked\r\nContent-Length: 3",
            "Content-Length: 3\r\nTransfer-Encoding: chunked",
            "Transfer-Encoding: gzip, chunked",
            "Transfer-Encoding: gzip",
            "Transfer-Encoding: chunked, chunked",
            "Transfer-Encoding: chunked;x",
            "Transfer-Encoding: xchunked",
            "Transfer-Encoding: \"chunked\"",
        ] {
            malformed(format!("HTTP/1.1 200 OK\r\n{bad}\r\n\r\n").as_bytes());
            // refused even where the body would be empty anyway
            let s = format!("HTTP/1.1 200 OK\r\n{bad}\r\n\r\n");
            assert!(parse(s.as_bytes(), "HEAD").is_err(), "{bad}");
        }
        malformed(b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    }

    #[test]
    fn keep_alive_rules() {
        let ka = |s: &[u8]| ok(s, "GET").keep_alive();
        assert!(ka(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
        assert!(!ka(
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ));
        assert!(!ka(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"));
        assert!(ka(
            b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"
        ));
        assert!(!ka(b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n"));
        assert!(ka(b"HTTP/1.1 204 No Content\r\n\r\n"));
    }

    #[test]
    fn informational() {
        for (s, info) in [
            (100, true),
            (101, true),
            (103, true),
            (199, true),
            (200, false),
        ] {
            let h = ok(format!("HTTP/1.1 {s} X\r\n\r\n").as_bytes(), "GET");
            assert_eq!(h.is_informational(), info, "{s}");
        }
    }

    #[test]
    fn partial_and_size() {
        let full: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nServer: x\r\n\r\nhi";
        let head_len = full.len() - 2;
        for cut in 0..head_len {
            assert_eq!(
                parse(&full[..cut], "GET").unwrap().map(|x| x.1),
                None,
                "{cut}"
            );
        }
        for cut in head_len..=full.len() {
            assert_eq!(parse(&full[..cut], "GET").unwrap().unwrap().1, head_len);
        }
        assert_eq!(
            parse_response(full, head_len - 1, "GET").unwrap_err(),
            ResponseError::TooLarge
        );
        assert!(matches!(
            parse_response(&full[..10], head_len - 1, "GET"),
            Ok(None)
        ));
        assert!(parse_response(full, head_len, "GET").unwrap().is_some());
        let mut many = String::from("HTTP/1.1 200 OK\r\n");
        for i in 0..MAX_RESPONSE_HEADERS {
            many.push_str(&format!("X-{i}: 1\r\n"));
        }
        assert!(
            parse_response(format!("{many}\r\n").as_bytes(), 1 << 20, "GET")
                .unwrap()
                .is_some()
        );
        assert_eq!(
            parse_response(format!("{many}Y: 1\r\n\r\n").as_bytes(), 1 << 20, "GET").unwrap_err(),
            ResponseError::TooLarge
        );
    }

    #[test]
    fn pipelined_responses() {
        let s = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx";
        let (h, n) = parse(s, "POST").unwrap().unwrap();
        assert!(h.is_informational());
        let (h, m) = parse(&s[n..], "POST").unwrap().unwrap();
        assert_eq!(h.status(), 200);
        assert_eq!(&s[n + m..], b"x");
    }
}
