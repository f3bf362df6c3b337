//! The one place that turns what the proxy answers itself — a [`ProxyError`] or a
//! `direct_response` — into a response on each protocol: HTTP/1.1 bytes ([`Answer::h1`]),
//! an HTTP/2 response ([`Answer::h2`]), or, for a gRPC request's error, gRPC's trailers-only
//! form with `grpc-status` and `grpc-message`.
//!
//! Error bodies are one line of plain text: the status and a reason a person can act on.
//! 1xx, 204 and 304 answers carry no body, and 204 no `Content-Length` (RFC 9110 §8.6);
//! an answer to HEAD keeps the `Content-Length` of the body it leaves out. Responses that
//! end an HTTP/1.1 connection say `Connection: close`. Some errors carry fields of their
//! own, in every form: a rate-limited request's 429 says when to come back (`retry-after`
//! and the IETF draft's `ratelimit-limit`, `ratelimit-remaining`, `ratelimit-reset`), and a
//! circuit breaker's 503 says `x-ringside-overloaded: true` (so does a global rate limit's
//! that fails closed, with `retry-after: 1`), a route's `authn` 401 says
//! `www-authenticate: ApiKey realm="<route>"` (gRPC: UNAUTHENTICATED), and a redirect
//! carries its `location` and an empty body. Every answer has its `Date` (RFC 9110 §6.6.1),
//! unless a route's response edits remove it.

use bytes::Bytes;
use h2::server::SendResponse;
use ringside_codec::{canonical_reason, Edits};

use crate::cx::error::ProxyError;
use crate::stage::Local;

/// An answer of the proxy's own, before it takes a protocol's form.
pub(crate) struct Answer<'a> {
    status: u16,
    content_type: &'a str,
    body: Bytes,
    request_id: Option<&'a [u8]>,
    /// gRPC status and message, for an error to a gRPC request.
    grpc: Option<(u8, String)>,
    /// Fields of the error's own (empty for most).
    fields: Vec<(&'static str, String)>,
}

const TEXT: &str = "text/plain; charset=utf-8";

impl<'a> Answer<'a> {
    /// The answer for `local`; `grpc`: the request is gRPC (errors go trailers-only).
    pub(crate) fn of(local: &'a Local<'_>, grpc: bool, request_id: Option<&'a [u8]>) -> Answer<'a> {
        match local {
            Local::Error(e) => Answer::error(e, grpc, request_id),
            Local::Direct(d) => Answer {
                status: d.status,
                content_type: &d.content_type,
                body: d.body.clone(),
                request_id: None,
                grpc: None,
                fields: Vec::new(),
            },
            Local::Redirect { status, location } => Answer {
                status: *status,
                content_type: TEXT,
                body: Bytes::new(),
                request_id: None,
                grpc: None,
                fields: vec![("location", location.clone())],
            },
        }
    }

    pub(crate) fn error(e: &ProxyError, grpc: bool, request_id: Option<&'a [u8]>) -> Answer<'a> {
        let status = e.status();
        Answer {
            status,
            content_type: TEXT,
            body: Bytes::from(format!("{} {}: {}\n", status, reason(status), e)),
            request_id,
            grpc: grpc.then(|| (e.grpc_code(), e.to_string())),
            fields: fields_of(e),
        }
    }

    /// The status the client gets (gRPC errors travel in a 200).
    pub(crate) fn status(&self) -> u16 {
        if self.grpc.is_some() {
            200
        } else {
            self.status
        }
    }

    /// Whether the answer carries a field of this lower-case name (for response edits).
    pub(crate) fn has(&self, name: &str) -> bool {
        match name {
            "server" | "date" => true,
            "content-type" => self.has_content_type(),
            "content-length" => self.content_length().is_some(),
            "x-request-id" => self.request_id.is_some(),
            "grpc-status" | "grpc-message" => self.grpc.is_some(),
            _ => self.fields.iter().any(|(n, _)| *n == name),
        }
    }

    fn content_length(&self) -> Option<usize> {
        match self.status {
            100..=199 | 204 | 304 => None,
            _ => Some(self.body.len()),
        }
    }

    /// A `Content-Type` goes with a content (a length, or a body) only: not on a bodiless
    /// 204, nor on a preflight's empty answer.
    fn has_content_type(&self) -> bool {
        self.content_length().is_some() || !self.body.is_empty()
    }

    fn sends_body(&self, head_only: bool) -> bool {
        !head_only && self.content_length().is_some_and(|n| n > 0)
    }

    /// HTTP/1.1 bytes (gRPC does not run over HTTP/1.1: the plain status is used).
    pub(crate) fn h1(&self, out: &mut Vec<u8>, close: bool, head_only: bool, edits: &Edits) {
        let write = ringside_codec::write_field;
        // The answer's own fields, unless an edit removes them (an overwrite removes the
        // name, then adds its value: the added fields are always written).
        let field = |out: &mut Vec<u8>, name: &str, value: &[u8]| {
            if !edits.removes(name.as_bytes()) {
                write(out, name.as_bytes(), value);
            }
        };
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(self.status.to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(reason(self.status).as_bytes());
        out.extend_from_slice(b"\r\n");
        field(out, "Server", b"ringside");
        field(out, "Date", &crate::cx::date::now());
        if self.has_content_type() {
            field(out, "Content-Type", self.content_type.as_bytes());
        }
        if let Some(n) = self.content_length() {
            field(out, "Content-Length", n.to_string().as_bytes());
        }
        if let Some(id) = self.request_id {
            field(out, "X-Request-Id", id);
        }
        for (name, value) in &self.fields {
            field(out, name, value.as_bytes());
        }
        for (name, value) in &edits.add {
            write(out, name, value);
        }
        if close {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if self.sends_body(head_only) {
            out.extend_from_slice(&self.body);
        }
    }

    /// Sends the answer on an HTTP/2 stream; returns the body bytes sent.
    pub(crate) fn h2(
        &self,
        respond: &mut SendResponse<Bytes>,
        head_only: bool,
        edits: &Edits,
    ) -> Result<u64, h2::Error> {
        let mut resp = http::Response::new(());
        if self.grpc.is_none() {
            *resp.status_mut() =
                http::StatusCode::from_u16(self.status).unwrap_or(http::StatusCode::BAD_GATEWAY);
        }
        let h = resp.headers_mut();
        h.insert("server", http::HeaderValue::from_static("ringside"));
        if let Ok(date) = http::HeaderValue::from_maybe_shared(crate::cx::date::now()) {
            h.insert("date", date);
        }
        if let Some(id) = self
            .request_id
            .and_then(|v| http::HeaderValue::from_bytes(v).ok())
        {
            h.insert("x-request-id", id);
        }
        for (name, value) in &self.fields {
            if let Ok(v) = http::HeaderValue::from_str(value) {
                h.insert(*name, v);
            }
        }
        if let Some((code, message)) = &self.grpc {
            h.insert(
                "content-type",
                http::HeaderValue::from_static("application/grpc"),
            );
            h.insert("grpc-status", http::HeaderValue::from(u16::from(*code)));
            if let Ok(msg) = http::HeaderValue::from_str(&percent_encode(message)) {
                h.insert("grpc-message", msg);
            }
            crate::upstream::convert::apply_edits(h, edits);
            respond.send_response(resp, true)?;
            return Ok(0);
        }
        if let (true, Ok(ct)) = (
            self.has_content_type(),
            http::HeaderValue::from_str(self.content_type),
        ) {
            h.insert("content-type", ct);
        }
        if let Some(n) = self.content_length() {
            h.insert("content-length", http::HeaderValue::from(n));
        }
        crate::upstream::convert::apply_edits(resp.headers_mut(), edits);
        let body = self.sends_body(head_only);
        let mut stream = respond.send_response(resp, !body)?;
        if body {
            stream.send_data(self.body.clone(), true)?;
            return Ok(self.body.len() as u64);
        }
        Ok(0)
    }
}

/// The answer to a CONNECT once its tunnel is open, as HTTP/1.1 bytes: `200 Connection
/// established` with the route's added response fields and no content fields (a 2xx to
/// CONNECT has neither `Content-Length` nor `Transfer-Encoding`, RFC 9110 §9.3.6); the
/// tunnel's bytes follow.
pub(crate) fn tunnel_h1(out: &mut Vec<u8>, edits: &Edits) {
    out.extend_from_slice(b"HTTP/1.1 200 Connection established\r\n");
    for (name, value) in &edits.add {
        ringside_codec::write_field(out, name, value);
    }
    out.extend_from_slice(b"\r\n");
}

/// The same on an HTTP/2 stream: `:status 200`, the stream left open for the tunnel's DATA
/// frames (RFC 9113 §8.5).
pub(crate) fn tunnel_h2(
    respond: &mut SendResponse<Bytes>,
    edits: &Edits,
) -> Result<h2::SendStream<Bytes>, h2::Error> {
    let mut resp = http::Response::new(());
    crate::upstream::convert::apply_edits(resp.headers_mut(), edits);
    respond.send_response(resp, false)
}

/// The fields an error's answer carries besides the usual ones.
fn fields_of(e: &ProxyError) -> Vec<(&'static str, String)> {
    match e {
        ProxyError::RateLimited(r) => {
            let reset = r.reset_secs.to_string();
            vec![
                ("retry-after", reset.clone()),
                ("ratelimit-limit", r.limit.to_string()),
                ("ratelimit-remaining", "0".to_owned()),
                ("ratelimit-reset", reset),
            ]
        }
        ProxyError::Overloaded(_) => vec![("x-ringside-overloaded", "true".to_owned())],
        // A global limit that cannot reach Redis and fails closed: overloaded too, and
        // worth a try again in a second.
        ProxyError::LimitUnavailable => vec![
            ("retry-after", "1".to_owned()),
            ("x-ringside-overloaded", "true".to_owned()),
        ],
        // RFC 9110 §11.6.1: a 401 says how to authenticate (Kong's key-auth names the
        // scheme `ApiKey` too). The realm is the route's name; route names are tokens.
        ProxyError::Unauthenticated(u) => vec![("www-authenticate", u.challenge())],
        _ => Vec::new(),
    }
}

/// The reason phrase of a status the proxy answers with.
pub(crate) fn reason(status: u16) -> &'static str {
    canonical_reason(status).unwrap_or("Unknown")
}

/// gRPC's `grpc-message` encoding: percent-encode everything outside printable ASCII and `%`.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringside_config::DirectResponse;

    fn h1(a: &Answer<'_>, close: bool, head_only: bool) -> String {
        let mut out = Vec::new();
        a.h1(&mut out, close, head_only, &Edits::NONE);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn error_response_is_complete_http() {
        let text = h1(
            &Answer::error(&ProxyError::NoRoute, false, None),
            true,
            false,
        );
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(text.contains("Connection: close\r\n"));
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
    }

    #[test]
    fn head_only_keeps_length_but_no_body() {
        let text = h1(
            &Answer::error(&ProxyError::Timeout, false, None),
            false,
            true,
        );
        assert!(text.ends_with("\r\n\r\n"));
        assert!(text.contains("504 Gateway Timeout"));
        assert!(text.contains("Content-Length: "));
    }

    #[test]
    fn no_content_has_neither_body_nor_length() {
        let d = DirectResponse::new(204, "x".into(), "text/plain".into());
        let local = Local::Direct(&d);
        let text = h1(&Answer::of(&local, false, None), false, false);
        assert!(text.starts_with("HTTP/1.1 204 No Content\r\n"));
        assert!(!text.to_ascii_lowercase().contains("content-length"));
        assert!(text.ends_with("\r\n\r\n"));
        let d = DirectResponse::new(304, "x".into(), "text/plain".into());
        let local = Local::Direct(&d);
        let text = h1(&Answer::of(&local, false, None), false, false);
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn limits_say_so_in_their_fields() {
        let limited = ProxyError::RateLimited(crate::cx::error::RateLimited {
            limit: 10,
            reset_secs: 2,
        });
        let text = h1(&Answer::error(&limited, false, None), false, false);
        assert!(
            text.starts_with("HTTP/1.1 429 Too Many Requests\r\n"),
            "{text}"
        );
        for f in [
            "retry-after: 2\r\n",
            "ratelimit-limit: 10\r\n",
            "ratelimit-remaining: 0\r\n",
            "ratelimit-reset: 2\r\n",
        ] {
            assert!(text.contains(f), "{f} in {text}");
        }
        let overloaded = ProxyError::Overloaded(crate::cx::error::BreakerLimit::Requests);
        let answer = Answer::error(&overloaded, true, None);
        assert!(answer.has("x-ringside-overloaded"));
        assert_eq!(answer.status(), 200);
        assert_eq!(overloaded.grpc_code(), 14);
        let text = h1(&Answer::error(&overloaded, false, None), false, false);
        assert!(text.starts_with("HTTP/1.1 503 "), "{text}");
        assert!(text.contains("x-ringside-overloaded: true\r\n"), "{text}");
        let abort = ProxyError::FaultAbort {
            status: 418,
            grpc: None,
        };
        assert!(h1(&Answer::error(&abort, false, None), false, false).starts_with("HTTP/1.1 418 "));
        assert_eq!(abort.grpc_code(), 2);
        assert_eq!(
            ProxyError::FaultAbort {
                status: 503,
                grpc: Some(4)
            }
            .grpc_code(),
            4
        );
        assert_eq!(
            ProxyError::FaultAbort {
                status: 503,
                grpc: None
            }
            .grpc_code(),
            14
        );
    }

    #[test]
    fn an_unauthenticated_answer_says_how_to_authenticate() {
        use crate::cx::error::{AuthnFailure, Unauthenticated};
        let e = ProxyError::Unauthenticated(Unauthenticated {
            reason: AuthnFailure::Missing,
            realm: "orders-api".into(),
            bearer: false,
            api_key: true,
        });
        let text = h1(&Answer::error(&e, false, None), false, false);
        assert!(text.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{text}");
        assert!(
            text.contains("www-authenticate: ApiKey realm=\"orders-api\"\r\n"),
            "{text}"
        );
        assert!(
            text.ends_with("no credential found in the request\n"),
            "{text}"
        );
        let grpc = Answer::error(&e, true, None);
        assert_eq!((grpc.status(), e.grpc_code()), (200, 16));
        assert!(grpc.has("www-authenticate"));
    }

    #[test]
    fn edits_remove_and_add_fields() {
        let d = DirectResponse::new(200, "hi".into(), "text/plain".into());
        let local = Local::Direct(&d);
        let edits = Edits {
            remove: vec![Bytes::from_static(b"server")],
            add: vec![(
                Bytes::from_static(b"x-served-by"),
                Bytes::from_static(b"ringside"),
            )],
        };
        let mut out = Vec::new();
        Answer::of(&local, false, None).h1(&mut out, false, false, &edits);
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("Server:"));
        assert!(text.contains("x-served-by: ringside\r\n"));
        // An overwrite (the name removed, then added) writes the added value.
        let edits = Edits {
            remove: vec![Bytes::from_static(b"content-type")],
            add: vec![(
                Bytes::from_static(b"content-type"),
                Bytes::from_static(b"text/x"),
            )],
        };
        let mut out = Vec::new();
        Answer::of(&local, false, None).h1(&mut out, false, false, &edits);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches("ontent-").count(), 2, "{text}");
        assert!(text.contains("content-type: text/x\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\nhi"));
    }
}
