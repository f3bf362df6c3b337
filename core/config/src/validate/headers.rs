//! Header edits of listeners and routes: `request_headers_to_add`, `request_headers_to_remove`,
//! `response_headers_to_add`, `response_headers_to_remove` → [`HeaderEdits`].
//!
//! Names are HTTP tokens by the codec's rule (`check::is_token`), stored lower-case; the
//! names ringside sets itself are refused, with the reason. Values are templates, parsed here
//! once so that a request only renders them.

use super::Validator;
use crate::check;
use crate::headers::{HeaderAction, HeaderAdd, HeaderEdits, ValuePart, ValueTemplate};
use crate::raw::{FileHeaderAction, FileHeaderAdd};

/// The four edit keys of one listener or route, as written.
pub(super) struct EditKeys<'a> {
    pub request_add: Option<&'a [FileHeaderAdd]>,
    pub request_remove: Option<&'a [String]>,
    pub response_add: Option<&'a [FileHeaderAdd]>,
    pub response_remove: Option<&'a [String]>,
}

impl Validator {
    /// The edits of the listener or route at `p` (`listeners[0]`, `routes[2]`). Every mistake
    /// is recorded; the caller's `clean` turns any into a failed element.
    pub(super) fn header_edits(&mut self, p: &str, keys: &EditKeys<'_>) -> HeaderEdits {
        let request_add =
            self.header_adds(&format!("{p}.request_headers_to_add"), keys.request_add);
        let request_remove = self.header_removes(
            &format!("{p}.request_headers_to_remove"),
            "request_headers_to_remove",
            keys.request_remove,
        );
        let response_add =
            self.header_adds(&format!("{p}.response_headers_to_add"), keys.response_add);
        let response_remove = self.header_removes(
            &format!("{p}.response_headers_to_remove"),
            "response_headers_to_remove",
            keys.response_remove,
        );
        HeaderEdits::new(request_add, request_remove, response_add, response_remove)
    }

    fn header_adds(&mut self, p: &str, given: Option<&[FileHeaderAdd]>) -> Vec<HeaderAdd> {
        let mut adds = Vec::new();
        for (j, add) in given.into_iter().flatten().enumerate() {
            let name = header_name(&add.name, "add");
            let value = template(&add.value);
            match (name, value) {
                (Ok(name), Ok(value)) => adds.push(HeaderAdd {
                    name,
                    value,
                    action: match add.action {
                        None | Some(FileHeaderAction::Append) => HeaderAction::Append,
                        Some(FileHeaderAction::AddIfAbsent) => HeaderAction::AddIfAbsent,
                        Some(FileHeaderAction::Overwrite) => HeaderAction::Overwrite,
                    },
                }),
                (name, value) => {
                    if let Err(m) = name {
                        self.err(format!("{p}[{j}].name"), m);
                    }
                    if let Err(m) = value {
                        self.err(format!("{p}[{j}].value"), m);
                    }
                }
            }
        }
        adds
    }

    /// `key` is the list's own key, for the duplicate message.
    fn header_removes(&mut self, p: &str, key: &str, given: Option<&[String]>) -> Vec<String> {
        // Each name kept, with its index in the list.
        let mut kept: Vec<(String, usize)> = Vec::new();
        for (j, name) in given.into_iter().flatten().enumerate() {
            match header_name(name, "remove") {
                Ok(lower) => match kept.iter().find(|(n, _)| *n == lower) {
                    Some((_, first)) => self.err(
                        format!("{p}[{j}]"),
                        format!(
                            "header {lower:?} listed twice (also {key}[{first}]; header names are case-insensitive)"
                        ),
                    ),
                    None => kept.push((lower, j)),
                },
                Err(m) => self.err(format!("{p}[{j}]"), m),
            }
        }
        kept.into_iter().map(|(name, _)| name).collect()
    }
}

/// A header name to add or remove (`verb`), lower-cased; the message says why it is refused.
pub(super) fn header_name(name: &str, verb: &str) -> Result<String, String> {
    if name.is_empty() {
        return Err("header name must not be empty".to_owned());
    }
    if name.starts_with(':') {
        return Err(format!(
            "cannot {verb} {name:?}: pseudo-headers are HTTP/2's request and status lines, which ringside writes itself"
        ));
    }
    if !check::is_token(name) {
        return Err(format!(
            "invalid header name {name:?}: must be an HTTP token such as \"x-env\""
        ));
    }
    let lower = name.to_ascii_lowercase();
    let why = match lower.as_str() {
        "content-length" | "transfer-encoding" | "trailer" => {
            "it frames the message body, and ringside frames every message it sends itself"
        }
        "connection" | "keep-alive" | "te" | "upgrade" => {
            "a hop-by-hop header describes one connection, and ringside writes its own on each"
        }
        n if n.starts_with("proxy-") => {
            "proxy-* headers are hop-by-hop: they describe one connection, and ringside writes its own on each"
        }
        "host" => "it is set from the request's authority",
        _ => return Ok(lower),
    };
    Err(format!("cannot {verb} {lower:?}: {why}"))
}

/// The substitutions a value may use, for messages.
const SUBSTITUTIONS: &str =
    "%REQ(name)%, %DOWNSTREAM_REMOTE_ADDRESS%, %REQUEST_ID%, or %% for a literal %";

/// Parses a header value template: literal text, `%%` (a literal `%`), `%REQ(name)%`,
/// `%DOWNSTREAM_REMOTE_ADDRESS%` and `%REQUEST_ID%`. Adjacent literal text is one part.
pub(super) fn template(value: &str) -> Result<ValueTemplate, String> {
    if value.is_empty() {
        return Err(
            "empty value: a header whose value renders empty is not added (to remove a header, use the *_headers_to_remove keys)"
                .to_owned(),
        );
    }
    if value.starts_with([' ', '\t']) || value.ends_with([' ', '\t']) {
        return Err(format!(
            "header value {value:?} has leading or trailing whitespace, which a header value never has"
        ));
    }
    if let Some(c) = value
        .chars()
        .find(|&c| !(c == ' ' || c == '\t' || c.is_ascii_graphic()))
    {
        return Err(format!(
            "invalid character {c:?} in header value {value:?}: only visible ASCII characters, spaces and tabs are allowed"
        ));
    }
    let mut parts: Vec<ValuePart> = Vec::new();
    let mut literal: Vec<u8> = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find('%') {
        literal.extend_from_slice(rest.get(..start).unwrap_or_default().as_bytes());
        let after = rest.get(start + 1..).unwrap_or_default();
        if let Some(more) = after.strip_prefix('%') {
            literal.push(b'%');
            rest = more;
            continue;
        }
        let Some(end) = after.find('%') else {
            return Err(format!(
                "unterminated \"%\" in header value {value:?}: substitutions are {SUBSTITUTIONS}"
            ));
        };
        let token = after.get(..end).unwrap_or_default();
        let part = match token {
            "DOWNSTREAM_REMOTE_ADDRESS" => ValuePart::DownstreamRemoteAddress,
            "REQUEST_ID" => ValuePart::RequestId,
            _ => match token
                .strip_prefix("REQ(")
                .and_then(|t| t.strip_suffix(')'))
            {
                Some(name) if check::is_token(name) => {
                    ValuePart::RequestHeader(name.to_ascii_lowercase())
                }
                Some(name) => {
                    return Err(format!(
                        "invalid header name {name:?} in \"%{token}%\": must be an HTTP token such as \"x-user\""
                    ))
                }
                None => {
                    return Err(format!(
                        "unknown substitution \"%{token}%\" in header value {value:?}: substitutions are {SUBSTITUTIONS}"
                    ))
                }
            },
        };
        if !literal.is_empty() {
            parts.push(ValuePart::Literal(std::mem::take(&mut literal)));
        }
        parts.push(part);
        rest = after.get(end + 1..).unwrap_or_default();
    }
    literal.extend_from_slice(rest.as_bytes());
    if !literal.is_empty() {
        parts.push(ValuePart::Literal(literal));
    }
    Ok(ValueTemplate { parts })
}
