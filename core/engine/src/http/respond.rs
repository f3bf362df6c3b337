//! The one place that turns a [`ProxyError`] or a direct response into bytes on the wire.
//!
//! Bodies are short plain text: the status and a reason a person can act on. Responses that
//! end the connection say `Connection: close`.

use ringside_config::DirectResponse;

use crate::error::ProxyError;

/// Canonical reason phrase for the codes the proxy itself produces.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

fn head(
    out: &mut Vec<u8>,
    status: u16,
    content_type: &str,
    len: usize,
    close: bool,
    request_id: Option<&[u8]>,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason(status).as_bytes());
    out.extend_from_slice(b"\r\nServer: ringside\r\nContent-Type: ");
    out.extend_from_slice(content_type.as_bytes());
    out.extend_from_slice(b"\r\nContent-Length: ");
    out.extend_from_slice(len.to_string().as_bytes());
    if let Some(id) = request_id {
        out.extend_from_slice(b"\r\nX-Request-Id: ");
        out.extend_from_slice(id);
    }
    if close {
        out.extend_from_slice(b"\r\nConnection: close");
    }
    out.extend_from_slice(b"\r\n\r\n");
}

/// The response for an error the proxy produced.
pub(crate) fn error(
    out: &mut Vec<u8>,
    err: &ProxyError,
    close: bool,
    head_only: bool,
    request_id: Option<&[u8]>,
) {
    let status = err.status();
    let body = format!("{} {}: {}\n", status, reason(status), err);
    head(
        out,
        status,
        "text/plain; charset=utf-8",
        body.len(),
        close,
        request_id,
    );
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
}

/// A configured `direct_response`.
pub(crate) fn direct(out: &mut Vec<u8>, d: &DirectResponse, close: bool, head_only: bool) {
    let no_body = head_only || d.status == 204 || d.status == 304;
    let len = if d.status == 204 { 0 } else { d.body.len() };
    head(out, d.status, &d.content_type, len, close, None);
    if !no_body {
        out.extend_from_slice(&d.body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_response_is_complete_http() {
        let mut out = Vec::new();
        error(&mut out, &ProxyError::NoRoute, true, false, None);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(text.contains("Connection: close\r\n"));
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
    }

    #[test]
    fn head_only_keeps_length_but_no_body() {
        let mut out = Vec::new();
        error(&mut out, &ProxyError::Timeout, false, true, None);
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with("\r\n\r\n"));
        assert!(text.contains("504 Gateway Timeout"));
    }
}
