//! Translating message heads between HTTP/2 (`http` types) and HTTP/1.1 (our codec).
//!
//! - An HTTP/2 request head becomes an HTTP/1.1 head by writing it as HTTP/1.1 text and
//!   parsing it with the same parser (and limits) as any HTTP/1.1 request: routing, access
//!   logs, tracing and the HTTP/1.1 upstream path then see one kind of request, and a value
//!   HTTP/1.1 cannot carry is rejected there. `:authority` becomes `Host`, split `cookie`
//!   fields are joined, a body of unknown length is sent chunked, and an extended CONNECT
//!   for WebSocket (RFC 8441) becomes a `GET` with `Upgrade: websocket`.
//! - HTTP/1.1 heads become `http` heads without their hop-by-hop fields (RFC 9110 §7.6.1,
//!   RFC 9113 §8.2.2): `Connection` and what it names, `Keep-Alive`, `Proxy-Connection`,
//!   `Transfer-Encoding`, `Upgrade`, and `TE` other than `trailers`.

use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use ringside_codec::{build_request, Edits, Limits, RequestHead, ResponseHead};

use crate::cx::error::ProxyError;

/// Hop-by-hop fields that never cross a hop (besides those `Connection` names): the same
/// set the HTTP/1.1 encoder drops, every `proxy-*` included, plus HTTP/2's own.
fn is_hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "transfer-encoding"
            | "upgrade"
            | "te"
            | "host"
            | "http2-settings"
    ) || name.starts_with("proxy-")
}

/// The protocol-neutral head of an HTTP/2 request (the codec's `RequestHead`, which both
/// upstream clients write from), built from its fields and checked by the same rules as an
/// HTTP/1.1 head (`ringside_codec::build_request`), without writing it out as text and
/// parsing it again. `:authority` becomes `host`; cookies are joined; `te: trailers` is kept
/// and every other hop-by-hop field dropped. `body`: the request has a body (its stream did
/// not end with the headers), sent chunked when it has no length. `websocket`: an extended
/// CONNECT for the WebSocket protocol, which becomes an HTTP/1.1 `GET` upgrade with this key.
pub(crate) fn request_to_h1(
    parts: &http::request::Parts,
    body: bool,
    websocket: Option<&[u8]>,
    limits: &Limits,
) -> Result<RequestHead, ProxyError> {
    let method = match websocket {
        Some(_) => "GET",
        None => parts.method.as_str(),
    };
    let target = if parts.method == Method::CONNECT && websocket.is_none() {
        // Classic CONNECT: the target is the authority.
        parts.uri.authority().map_or("", |a| a.as_str())
    } else {
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    };
    let authority = parts
        .uri
        .authority()
        .map(|a| a.as_str().as_bytes())
        .or_else(|| parts.headers.get("host").map(|h| h.as_bytes()));
    let mut fields: Vec<(&[u8], &[u8])> = Vec::with_capacity(parts.headers.len() + 4);
    if let Some(a) = authority {
        fields.push((b"host", a));
    }
    let mut cookies: Vec<&[u8]> = Vec::new();
    for (name, value) in &parts.headers {
        let n = name.as_str();
        if n == "cookie" {
            cookies.push(value.as_bytes());
        } else if n == "te" {
            if value.as_bytes().eq_ignore_ascii_case(b"trailers") {
                fields.push((b"te", b"trailers"));
            }
        } else if !is_hop_by_hop(n) {
            fields.push((n.as_bytes(), value.as_bytes()));
        }
    }
    let joined = cookies.join(&b"; "[..]);
    if !cookies.is_empty() {
        fields.push((b"cookie", &joined));
    }
    if let Some(key) = websocket {
        fields.push((b"connection", b"upgrade"));
        fields.push((b"upgrade", b"websocket"));
        fields.push((b"sec-websocket-key", key));
    } else if body && !parts.headers.contains_key("content-length") && !is_tunnel(parts) {
        fields.push((b"transfer-encoding", b"chunked"));
    }
    let limits = Limits {
        // The h2 layer already bounded the header list; a few fields are ours.
        max_headers: limits.max_headers.saturating_add(4),
        ..*limits
    };
    Ok(build_request(method, target, fields.into_iter(), &limits)?)
}

/// A classic CONNECT: its DATA frames are a tunnel's bytes, not a request body.
fn is_tunnel(parts: &http::request::Parts) -> bool {
    parts.method == Method::CONNECT && parts.extensions.get::<h2::ext::Protocol>().is_none()
}

/// Names listed in a `Connection` field, which are hop-by-hop too.
fn connection_tokens<'a>(header: impl Fn(&str) -> Option<&'a [u8]>) -> Vec<String> {
    header("connection")
        .map(|v| {
            String::from_utf8_lossy(v)
                .split(',')
                .map(|t| t.trim().to_ascii_lowercase())
                .filter(|t| !t.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Copies HTTP/1.1 header fields into an `http` map, minus the hop-by-hop ones.
fn copy_fields<'a>(
    fields: impl Iterator<Item = (&'a str, &'a [u8])>,
    named: &[String],
    extra_skip: &[&str],
    to: &mut HeaderMap,
) -> Result<(), String> {
    for (name, value) in fields {
        let lower = name.to_ascii_lowercase();
        if is_hop_by_hop(&lower)
            || named.iter().any(|n| n == &lower)
            || extra_skip.contains(&lower.as_str())
        {
            continue;
        }
        let n = HeaderName::from_bytes(lower.as_bytes()).map_err(|e| e.to_string())?;
        let v = HeaderValue::from_bytes(value).map_err(|e| e.to_string())?;
        to.append(n, v);
    }
    Ok(())
}

/// The HTTP/2 form of an HTTP/1.1 response head.
pub(crate) fn response_from_h1(
    resp: &ResponseHead,
    edits: &Edits,
) -> Result<Response<()>, ProxyError> {
    let status = StatusCode::from_u16(resp.status())
        .map_err(|e| ProxyError::UpstreamInvalid(e.to_string()))?;
    let mut out = Response::new(());
    *out.status_mut() = status;
    let named = connection_tokens(|n| resp.header(n));
    copy_fields(resp.headers(), &named, &[], out.headers_mut())
        .map_err(ProxyError::UpstreamInvalid)?;
    apply_edits(out.headers_mut(), edits);
    Ok(out)
}

/// The HTTP/2 form of an HTTP/1.1 request (sent to an HTTP/2 upstream). `set`: fields the
/// proxy sets (X-Forwarded-*, X-Request-Id, traceparent), replacing the client's.
pub(crate) fn request_from_h1(
    head: &RequestHead,
    scheme: &str,
    set: &[(&'static str, &[u8])],
    edits: &Edits,
) -> Result<Request<()>, ProxyError> {
    let authority = head.authority().or(head.host()).unwrap_or("localhost");
    let uri = Uri::builder()
        .scheme(scheme)
        .authority(authority)
        .path_and_query(head.path_and_query())
        .build()
        .map_err(|e| ProxyError::BadRequest(e.to_string()))?;
    let method = Method::from_bytes(head.method().as_bytes())
        .map_err(|e| ProxyError::BadRequest(e.to_string()))?;
    let mut out = Request::new(());
    *out.method_mut() = method;
    *out.uri_mut() = uri;
    *out.version_mut() = http::Version::HTTP_2;
    let named = connection_tokens(|n| head.header(n));
    let skip: Vec<String> = set.iter().map(|(n, _)| n.to_ascii_lowercase()).collect();
    let skip: Vec<&str> = skip.iter().map(String::as_str).collect();
    copy_fields(head.headers(), &named, &skip, out.headers_mut())
        .map_err(ProxyError::BadRequest)?;
    if head.header("te").is_some_and(|v| {
        String::from_utf8_lossy(v)
            .to_ascii_lowercase()
            .contains("trailers")
    }) {
        out.headers_mut()
            .insert("te", HeaderValue::from_static("trailers"));
    }
    set_fields(out.headers_mut(), set)?;
    apply_edits(out.headers_mut(), edits);
    Ok(out)
}

/// Sets (replaces) the proxy's own request fields; one with an empty value is withheld (the
/// client's is removed, none is set).
pub(crate) fn set_fields(
    map: &mut HeaderMap,
    set: &[(&'static str, &[u8])],
) -> Result<(), ProxyError> {
    for (name, value) in set {
        // `from_bytes` lowers the case itself.
        let n = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| ProxyError::BadRequest(e.to_string()))?;
        if value.is_empty() {
            map.remove(&n);
            continue;
        }
        let v =
            HeaderValue::from_bytes(value).map_err(|e| ProxyError::BadRequest(e.to_string()))?;
        map.insert(n, v);
    }
    Ok(())
}

/// Applies header edits to a map: the named fields removed, then the added ones appended.
/// Names and values were checked by configuration; one that still does not fit is skipped.
pub(crate) fn apply_edits(map: &mut HeaderMap, edits: &Edits) {
    for name in &edits.remove {
        if let Ok(n) = HeaderName::from_bytes(name) {
            map.remove(&n);
        }
    }
    for (name, value) in &edits.add {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            map.append(n, v);
        }
    }
}

/// An HTTP/2 request forwarded to an HTTP/2 upstream: the same head, with the proxy's fields
/// set and hop-by-hop fields (which HTTP/2 forbids anyway) removed. `head` is the neutral
/// head the exchange carries: when a stage rewrote its target or authority
/// (`RequestHead::retarget`), those replace the client's `:path` and `:authority`.
pub(crate) fn request_h2_to_h2(
    parts: &http::request::Parts,
    head: &RequestHead,
    scheme: &str,
    set: &[(&'static str, &[u8])],
    edits: &Edits,
) -> Result<Request<()>, ProxyError> {
    let mut req = Request::new(());
    *req.method_mut() = parts.method.clone();
    let mut uri = parts.uri.clone().into_parts();
    if uri.scheme.is_none() || uri.authority.is_some() {
        uri.scheme = Some(
            scheme
                .parse()
                .map_err(|_| ProxyError::BadRequest("bad scheme".into()))?,
        );
    }
    if uri.authority.is_none() {
        if let Some(h) = parts.headers.get("host") {
            uri.authority = Some(
                http::uri::Authority::try_from(h.as_bytes())
                    .map_err(|e| ProxyError::BadRequest(e.to_string()))?,
            );
        }
    }
    let authority = uri.authority.as_ref().map(http::uri::Authority::as_str);
    let path = uri.path_and_query.as_ref().map_or("/", |p| p.as_str());
    if path != head.path_and_query() || (authority.is_some() && authority != head.authority()) {
        uri.path_and_query = Some(
            head.path_and_query()
                .parse()
                .map_err(|_| ProxyError::BadRequest("bad rewritten path".into()))?,
        );
        if let Some(a) = head.authority() {
            uri.authority = Some(
                a.parse()
                    .map_err(|_| ProxyError::BadRequest("bad rewritten authority".into()))?,
            );
        }
    }
    *req.uri_mut() = Uri::from_parts(uri).map_err(|e| ProxyError::BadRequest(e.to_string()))?;
    *req.version_mut() = http::Version::HTTP_2;
    let headers = req.headers_mut();
    for (name, value) in &parts.headers {
        let n = name.as_str();
        if n == "te" {
            if value.as_bytes().eq_ignore_ascii_case(b"trailers") {
                headers.append(name.clone(), value.clone());
            }
            continue;
        }
        if !is_hop_by_hop(n) {
            headers.append(name.clone(), value.clone());
        }
    }
    set_fields(headers, set)?;
    apply_edits(headers, edits);
    if let Some(p) = parts.extensions.get::<h2::ext::Protocol>() {
        req.extensions_mut().insert(p.clone());
    }
    Ok(req)
}

/// An HTTP/2 response head forwarded as HTTP/2: hop-by-hop fields removed.
pub(crate) fn response_h2_to_h2(parts: &http::response::Parts, edits: &Edits) -> Response<()> {
    let mut out = Response::new(());
    *out.status_mut() = parts.status;
    for (name, value) in &parts.headers {
        if !is_hop_by_hop(name.as_str()) {
            out.headers_mut().append(name.clone(), value.clone());
        }
    }
    apply_edits(out.headers_mut(), edits);
    out
}

/// Writes an HTTP/2 response head as HTTP/1.1. Without `content-length` the body is sent
/// chunked (`chunked`) or delimited by the connection's close.
pub(crate) fn write_h1_response_head(
    out: &mut Vec<u8>,
    parts: &http::response::Parts,
    edits: &Edits,
    chunked: bool,
    close: bool,
) {
    let status = parts.status.as_u16();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(
        parts
            .status
            .canonical_reason()
            .unwrap_or("Unknown")
            .as_bytes(),
    );
    out.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        if is_hop_by_hop(name.as_str()) || edits.removes(name.as_str().as_bytes()) {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in &edits.add {
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    if chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes trailers as the end of a chunked body (`0`, the fields, a blank line).
pub(crate) fn write_h1_trailers(out: &mut Vec<u8>, trailers: Option<&HeaderMap>) {
    out.extend_from_slice(b"0\r\n");
    if let Some(t) = trailers {
        for (name, value) in t {
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// One chunk of a chunked body.
pub(crate) fn write_h1_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// A random `Sec-WebSocket-Key` (16 random bytes, base64) for an HTTP/1.1 upstream when the
/// client spoke RFC 8441, which has no key.
pub(crate) fn websocket_key(mut random: impl FnMut() -> u64) -> Vec<u8> {
    let mut raw = [0u8; 16];
    raw[..8].copy_from_slice(&random().to_le_bytes());
    raw[8..].copy_from_slice(&random().to_le_bytes());
    base64(&raw)
}

fn base64(data: &[u8]) -> Vec<u8> {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let b = [
            c.first().copied().unwrap_or(0),
            c.get(1).copied().unwrap_or(0),
            c.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= c.len() {
                // A six-bit index into the 64-letter alphabet.
                out.extend(T.get(((n >> (18 - 6 * i)) & 63) as usize));
            } else {
                out.push(b'=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_header_bytes: 8192,
            max_headers: 100,
            max_uri_bytes: 4096,
            path: ringside_codec::PathRules::NONE,
        }
    }

    #[test]
    fn h2_request_becomes_h1_with_host_cookies_and_chunked() {
        let req = Request::builder()
            .method("POST")
            .uri("https://api.example.com/v1/x?y=1")
            .header("cookie", "a=1")
            .header("cookie", "b=2")
            .header("te", "trailers")
            .header("content-type", "application/grpc")
            .body(())
            .unwrap();
        let (parts, ()) = req.into_parts();
        let head = request_to_h1(&parts, true, None, &limits()).unwrap();
        assert_eq!(head.method(), "POST");
        assert_eq!(head.path_and_query(), "/v1/x?y=1");
        assert_eq!(head.host(), Some("api.example.com"));
        assert_eq!(head.header("cookie"), Some(&b"a=1; b=2"[..]));
        assert_eq!(head.header("te"), Some(&b"trailers"[..]));
        assert_eq!(head.body(), ringside_codec::BodyKind::Chunked);
    }

    #[test]
    fn extended_connect_becomes_an_upgrade() {
        let req = Request::builder()
            .method("CONNECT")
            .uri("https://chat.example.com/ws")
            .body(())
            .unwrap();
        let (parts, ()) = req.into_parts();
        let head =
            request_to_h1(&parts, true, Some(b"dGhlIHNhbXBsZSBub25jZQ=="), &limits()).unwrap();
        assert_eq!(head.method(), "GET");
        assert_eq!(head.path(), "/ws");
        assert_eq!(head.upgrade(), Some(&b"websocket"[..]));
    }

    #[test]
    fn base64_matches_the_rfc_examples() {
        assert_eq!(base64(b"foobar"), b"Zm9vYmFy");
        assert_eq!(base64(b"fooba"), b"Zm9vYmE=");
        assert_eq!(base64(b"foob"), b"Zm9vYg==");
        assert_eq!(websocket_key(|| 7).len(), 24);
    }
}
