//! Header edits: the validated form of `request_headers_to_add`, `request_headers_to_remove`,
//! `response_headers_to_add` and `response_headers_to_remove` on a listener or a route.
//!
//! A value is a template: literal text with `%REQ(name)%`, `%DOWNSTREAM_REMOTE_ADDRESS%` and
//! `%REQUEST_ID%` substituted per request ([`ValueTemplate::render`]). A value that renders
//! empty is not added (Envoy's default, `keep_empty_value = false`). Names are stored
//! lower-case; the wire form of HTTP/1.1 keeps that case (header names are case-insensitive).

use std::net::SocketAddr;

/// What an added header does when the message already carries one of that name (Envoy's
/// `append_action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HeaderAction {
    /// Add another field of that name, keeping the ones present (the default).
    #[default]
    Append,
    /// Add the field only when the message has none of that name.
    AddIfAbsent,
    /// Replace every field of that name.
    Overwrite,
}

/// One piece of a [`ValueTemplate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValuePart {
    /// Text as written.
    Literal(Vec<u8>),
    /// `%REQ(name)%`: the request's header of that (lower-case) name, as the client sent it
    /// (before any edit); the first field when there are several; absent: empty.
    RequestHeader(String),
    /// `%DOWNSTREAM_REMOTE_ADDRESS%`: the client's address and port (`127.0.0.1:5000`,
    /// `[::1]:5000`).
    DownstreamRemoteAddress,
    /// `%REQUEST_ID%`: the request's `X-Request-Id` (kept from the client or generated).
    RequestId,
}

/// A header value with substitutions, parsed and checked by `validate()`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValueTemplate {
    pub parts: Vec<ValuePart>,
}

/// What a template may read from the request it is rendered for.
pub struct TemplateInput<'a, H: Fn(&str) -> Option<&'a [u8]>> {
    /// The request's header by lower-case name (the first field when several).
    pub header: H,
    pub remote: SocketAddr,
    pub request_id: &'a [u8],
}

impl ValueTemplate {
    /// The value when it has no substitutions.
    pub fn literal(&self) -> Option<&[u8]> {
        match self.parts.as_slice() {
            [] => Some(b""),
            [ValuePart::Literal(v)] => Some(v),
            _ => None,
        }
    }

    /// Appends the rendered value to `out`. Values read from the request are added as they
    /// are: the request's own fields were checked by the parser, so they carry no CR, LF or
    /// NUL.
    pub fn render<'a, H: Fn(&str) -> Option<&'a [u8]>>(
        &self,
        out: &mut Vec<u8>,
        input: &TemplateInput<'a, H>,
    ) {
        for part in &self.parts {
            match part {
                ValuePart::Literal(v) => out.extend_from_slice(v),
                ValuePart::RequestHeader(name) => {
                    if let Some(v) = (input.header)(name) {
                        out.extend_from_slice(v);
                    }
                }
                ValuePart::DownstreamRemoteAddress => {
                    use std::io::Write;
                    let _ = write!(out, "{}", input.remote);
                }
                ValuePart::RequestId => out.extend_from_slice(input.request_id),
            }
        }
    }
}

/// One header to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderAdd {
    /// Lower-case field name.
    pub name: String,
    pub value: ValueTemplate,
    pub action: HeaderAction,
}

/// The header edits of a listener or a route.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct HeaderEdits {
    pub request_add: Vec<HeaderAdd>,
    /// Lower-case names.
    pub request_remove: Vec<String>,
    pub response_add: Vec<HeaderAdd>,
    /// Lower-case names.
    pub response_remove: Vec<String>,
}

impl HeaderEdits {
    pub fn is_empty(&self) -> bool {
        self.request_add.is_empty()
            && self.request_remove.is_empty()
            && self.response_add.is_empty()
            && self.response_remove.is_empty()
    }

    /// Built by `validate()`; also for tests of the crates that apply edits.
    pub fn new(
        request_add: Vec<HeaderAdd>,
        request_remove: Vec<String>,
        response_add: Vec<HeaderAdd>,
        response_remove: Vec<String>,
    ) -> HeaderEdits {
        HeaderEdits {
            request_add,
            request_remove,
            response_add,
            response_remove,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_part() {
        let t = ValueTemplate {
            parts: vec![
                ValuePart::Literal(b"a=".to_vec()),
                ValuePart::RequestHeader("x-a".into()),
                ValuePart::Literal(b";c=".to_vec()),
                ValuePart::DownstreamRemoteAddress,
                ValuePart::Literal(b";id=".to_vec()),
                ValuePart::RequestId,
                ValuePart::RequestHeader("x-missing".into()),
            ],
        };
        let mut out = Vec::new();
        let input = TemplateInput {
            header: |n: &str| (n == "x-a").then_some(&b"1"[..]),
            remote: "[::1]:5000".parse().unwrap(),
            request_id: b"rid",
        };
        t.render(&mut out, &input);
        assert_eq!(out, b"a=1;c=[::1]:5000;id=rid");
        assert_eq!(t.literal(), None);
    }
}
