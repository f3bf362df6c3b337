//! Secrets out of what ringside shows: the configuration text with every credential replaced
//! by [`REDACTED`] (the admin endpoint's `/config`, `ringsidectl get config` unless
//! `--show-secrets`), and the rule for which header and query-parameter names carry
//! credentials (access logs redact those query values).
//!
//! What counts as a secret in a configuration:
//! - every `key_pem` (a private key inline: listener certificates, the mesh identity, a
//!   cluster's client certificate);
//! - `consumers[].api_keys[].key` (an API key in the clear; a `sha256` stays);
//! - in `jwt_providers[].jwks` (an inline JWKS document), the private members of each key
//!   (`d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`) and an `oct` key's shared secret `k`; the public
//!   members stay, so the document still says which keys there are. A document that does not
//!   parse is redacted whole;
//! - the value of a header that carries a credential ([`is_credential_name`]) wherever the
//!   configuration writes header values: `*_headers_to_add` entries, `match.headers`,
//!   `authz[].headers`, `retry.response_headers`.
//!
//! Paths of key files (`key = "tls/key.pem"`) are not secrets and stay.

use std::borrow::Cow;

use toml_edit::{DocumentMut, Item, TableLike, Value};

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// JWK members that are private (RFC 7518 §6.3.2, §6.4.1 for `oct`'s `k`; OKP's `d`).
const JWK_PRIVATE: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Whether a header or query-parameter name carries a credential: `authorization`,
/// `proxy-authorization`, `cookie`, `set-cookie`, or a name containing `token`, `secret`,
/// `password`, `passwd`, `apikey`, `api-key`, `api_key`, `credential`, `session`, `jwt` or
/// `signature` (ASCII case-insensitive).
pub fn is_credential_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "authorization" | "proxy-authorization" | "cookie" | "set-cookie" | "key" | "sig"
    ) || [
        "token",
        "secret",
        "password",
        "passwd",
        "apikey",
        "api-key",
        "api_key",
        "credential",
        "session",
        "jwt",
        "signature",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// A request target (or any URL, such as a `Referer`) with the values of its credential
/// query parameters ([`is_credential_name`]: `access_token`, `apikey`, ...) replaced by
/// [`REDACTED`], for access logs. Borrowed when there is nothing to redact.
pub fn redact_query(target: &str) -> Cow<'_, str> {
    let Some(q) = target.find('?') else {
        return Cow::Borrowed(target);
    };
    let end = target[q..].find('#').map_or(target.len(), |f| q + f);
    let query = &target[q + 1..end];
    let secret = |pair: &str| {
        pair.split_once('=')
            .is_some_and(|(name, value)| !value.is_empty() && is_credential_name(name))
    };
    if !query.split('&').any(secret) {
        return Cow::Borrowed(target);
    }
    let mut out = String::with_capacity(target.len());
    out.push_str(&target[..=q]);
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((name, _)) if secret(pair) => {
                out.push_str(name);
                out.push('=');
                out.push_str(REDACTED);
            }
            _ => out.push_str(pair),
        }
    }
    out.push_str(&target[end..]);
    Cow::Owned(out)
}

/// The configuration text with its secrets replaced by [`REDACTED`], comments and layout
/// kept. Text that is not TOML (never the case for a running configuration) is refused.
pub fn redact_source(text: &str) -> Result<String, String> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e| format!("the configuration does not parse: {e}"))?;
    table(doc.as_table_mut(), None);
    Ok(doc.to_string())
}

/// Whether an error path (`consumers[0].api_keys[1]`) is at or under a secret of the
/// configuration, so that its error message must not quote the value.
pub(crate) fn is_secret_path(path: &str) -> bool {
    path.split(['.', '['])
        .any(|s| matches!(s, "api_keys" | "key_pem" | "jwks"))
}

/// An error message with every double-quoted part replaced by [`REDACTED`].
pub(crate) fn redact_quoted(message: &str) -> String {
    message
        .split('"')
        .enumerate()
        .map(|(i, part)| if i % 2 == 1 { REDACTED } else { part })
        .collect::<Vec<_>>()
        .join("\"")
}

/// An inline JWKS document with its keys' private members redacted.
pub fn redact_jwks(json: &str) -> String {
    let Ok(mut doc) = serde_json::from_str::<serde_json::Value>(json) else {
        return REDACTED.into();
    };
    let Some(keys) = doc.get_mut("keys").and_then(|k| k.as_array_mut()) else {
        return REDACTED.into();
    };
    for key in keys {
        let Some(key) = key.as_object_mut() else {
            return REDACTED.into();
        };
        for (name, v) in key.iter_mut() {
            if JWK_PRIVATE.contains(&name.as_str()) {
                *v = serde_json::Value::String(REDACTED.into());
            }
        }
    }
    doc.to_string()
}

/// Walks a table whose key is `parent` (for an array's elements, the array's key).
fn table(t: &mut dyn TableLike, parent: Option<&str>) {
    let header_add = matches!(
        parent,
        Some("request_headers_to_add" | "response_headers_to_add")
    ) && t
        .get("name")
        .and_then(Item::as_str)
        .is_some_and(is_credential_name);
    let header_map = parent == Some("headers") || parent == Some("response_headers");
    for (key, item) in t.iter_mut() {
        let key = key.get().to_string();
        let secret = key == "key_pem"
            || (parent == Some("api_keys") && key == "key")
            || (header_add && key == "value")
            || (header_map && is_credential_name(&key));
        if let Some(s) = item.as_str() {
            if secret {
                set(item, REDACTED.to_string());
            } else if parent == Some("jwt_providers") && key == "jwks" {
                let redacted = redact_jwks(s);
                set(item, redacted);
            }
            continue;
        }
        self::item(item, &key);
    }
}

fn item(item: &mut Item, key: &str) {
    match item {
        Item::Table(t) => table(t, Some(key)),
        Item::ArrayOfTables(a) => {
            for t in a.iter_mut() {
                table(t, Some(key));
            }
        }
        Item::Value(v) => value(v, key),
        Item::None => {}
    }
}

fn value(v: &mut Value, key: &str) {
    match v {
        Value::InlineTable(t) => table(t, Some(key)),
        Value::Array(a) => {
            for v in a.iter_mut() {
                value(v, key);
            }
        }
        _ => {}
    }
}

/// Replaces a string value, keeping the decoration (spacing, comments) around it.
fn set(item: &mut Item, text: String) {
    if let Some(v) = item.as_value_mut() {
        let decor = v.decor().clone();
        *v = Value::from(text);
        *v.decor_mut() = decor;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_keys_api_keys_and_credential_headers_are_redacted() {
        let text = r#"
# a comment that stays
[[listeners]]
name = "in"
tls = { certificates = [{ cert_pem = "CERT", key_pem = "-----BEGIN PRIVATE KEY-----x" }] }
request_headers_to_add = [{ name = "Authorization", value = "Bearer s3cret" },
                          { name = "x-served-by", value = "ringside" }]

[mesh.identity]
cert = "id.pem"
key = "id-key.pem"

[[clusters]]
name = "app"
tls = { key_pem = """
-----BEGIN EC PRIVATE KEY-----
abc
-----END EC PRIVATE KEY-----
""", cert_pem = "CERT2" }

[[routes]]
match = { headers = { "x-auth-token" = "t0k", "x-env" = "prod" } }

[[consumers]]
name = "a"
api_keys = [{ key = "k-123456" }, { sha256 = "ab" }]
"#;
        let out = redact_source(text).unwrap();
        for secret in ["PRIVATE KEY", "s3cret", "t0k", "k-123456"] {
            assert!(!out.contains(secret), "{secret} in\n{out}");
        }
        for kept in [
            "# a comment that stays",
            "CERT2",
            "ringside",
            "prod",
            "key = \"id-key.pem\"",
            "sha256 = \"ab\"",
        ] {
            assert!(out.contains(kept), "{kept} missing in\n{out}");
        }
        assert_eq!(out.matches(REDACTED).count(), 5, "{out}");
        // Still TOML.
        let _: toml::Table = toml::from_str(&out).unwrap();
    }

    #[test]
    fn jwks_keeps_public_members_only() {
        let jwks = r#"{"keys":[{"kty":"oct","kid":"hs","k":"c2VjcmV0"},{"kty":"RSA","kid":"r","n":"AQAB1","e":"AQAB","d":"PRIV","p":"P","q":"Q"}]}"#;
        let out = redact_jwks(jwks);
        for secret in ["c2VjcmV0", "PRIV", "\"P\"", "\"Q\""] {
            assert!(!out.contains(secret), "{out}");
        }
        assert!(
            out.contains("AQAB1") && out.contains("\"kid\":\"hs\""),
            "{out}"
        );
        assert_eq!(redact_jwks("not json {"), REDACTED);
        let text = format!("[[jwt_providers]]\nname = \"p\"\njwks = '{jwks}'\n");
        let out = redact_source(&text).unwrap();
        assert!(!out.contains("c2VjcmV0") && out.contains("AQAB1"), "{out}");
    }

    #[test]
    fn query_credentials() {
        assert!(matches!(
            redact_query("/a?b=1&c"),
            Cow::Borrowed("/a?b=1&c")
        ));
        assert!(matches!(redact_query("/no-query"), Cow::Borrowed(_)));
        assert_eq!(
            redact_query("/a?access_token=eyJ.x.y&page=2&apikey=k1#frag"),
            "/a?access_token=[redacted]&page=2&apikey=[redacted]#frag"
        );
        assert_eq!(redact_query("/a?token="), "/a?token=");
    }

    #[test]
    fn errors_under_secrets_do_not_quote_them() {
        let errs =
            crate::parse("[[consumers]]\nname = \"a\"\napi_keys = [\"sk-live-1\"]\n").unwrap_err();
        let text = errs.0.iter().map(ToString::to_string).collect::<String>();
        assert!(text.contains("api_keys[0]"), "{text}");
        assert!(!text.contains("sk-live-1"), "{text}");
    }

    #[test]
    fn credential_names() {
        for n in [
            "Authorization",
            "cookie",
            "x-api-key",
            "access_token",
            "apikey",
            "key",
        ] {
            assert!(is_credential_name(n), "{n}");
        }
        for n in ["x-served-by", "page", "keyword", "x-request-id", "user"] {
            assert!(!is_credential_name(n), "{n}");
        }
    }
}
