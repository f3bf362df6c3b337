//! Checks of single values: each returns the resolved value or the message for the user.
//!
//! Messages quote the offending value (`invalid socket address "10.0.0.1"`); the caller adds
//! the path.

use std::net::SocketAddr;
use std::time::Duration;

use crate::model::HashKey;

/// Longest accepted timeout: one year. Larger values are almost certainly typos and would
/// only stress timer arithmetic.
pub(crate) const MAX_TIMEOUT_MS: u64 = 365 * 24 * 60 * 60 * 1000;
/// Most workers a process may run.
pub(crate) const MAX_WORKERS: u64 = 1024;
/// Highest endpoint weight (weights shape per-worker balancer state such as a hash ring).
pub(crate) const MAX_ENDPOINT_WEIGHT: u32 = 10_000;
/// Longest listener, route or cluster name.
pub(crate) const MAX_NAME_LEN: usize = 128;

/// A listener, route or cluster name: 1 to 128 characters among `A-Z a-z 0-9 - _ .`, so it
/// can appear unquoted in logs, metrics labels and CLI arguments.
pub(crate) fn name(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= MAX_NAME_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid name {value:?}: use 1 to {MAX_NAME_LEN} characters among A-Z a-z 0-9 - _ ."
        ))
    }
}

/// `IP:port`, no host names.
pub(crate) fn socket_addr(value: &str) -> Result<SocketAddr, String> {
    value
        .parse::<SocketAddr>()
        .map_err(|_| format!("invalid socket address {value:?}"))
}

/// A timeout in milliseconds: 1 to [`MAX_TIMEOUT_MS`].
pub(crate) fn timeout_ms(ms: u64) -> Result<Duration, String> {
    match ms {
        0 => Err("must be greater than 0".to_owned()),
        ms if ms > MAX_TIMEOUT_MS => Err(format!(
            "must be at most {MAX_TIMEOUT_MS} (one year), got {ms}"
        )),
        ms => Ok(Duration::from_millis(ms)),
    }
}

/// A count or size that must be at least 1 and fit in memory sizes.
pub(crate) fn positive(n: u64) -> Result<usize, String> {
    if n == 0 {
        return Err("must be greater than 0".to_owned());
    }
    usize::try_from(n).map_err(|_| format!("too large: {n}"))
}

/// A percentage: a finite number from 0.0 to 100.0.
pub(crate) fn percent(p: f64) -> Result<f64, String> {
    if (0.0..=100.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("must be a percentage from 0.0 to 100.0, got {p}"))
    }
}

/// A count that may be 0.
pub(crate) fn count(n: u64) -> Result<usize, String> {
    usize::try_from(n).map_err(|_| format!("too large: {n}"))
}

/// An RFC 9110 token (`tchar`s): methods, header names, cookie names — by the codec's rule,
/// so configuration accepts exactly the tokens requests can carry.
pub(crate) fn is_token(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(ringside_codec::is_tchar)
}

/// A header value ringside writes or compares (RFC 9110 `field-value`): visible characters,
/// spaces and tabs, no control characters (a CR or LF would split the header).
pub(crate) fn is_header_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80)
}

/// A match host: lower-cased, port stripped, optional leading `*.`. Accepts DNS names,
/// IPv4 addresses and bracketed IPv6 addresses (`[::1]`).
pub(crate) fn host(value: &str) -> Result<String, String> {
    let invalid = || format!("invalid host {value:?}");
    let lower = value.to_ascii_lowercase();
    let (wildcard, rest) = match lower.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, lower.as_str()),
    };
    let (name, port) = if rest.starts_with('[') {
        // `[v6]` or `[v6]:port`.
        let end = rest.find(']').ok_or_else(invalid)?;
        let name = rest.get(..=end).ok_or_else(invalid)?;
        let after = rest.get(end + 1..).ok_or_else(invalid)?;
        let port = match after {
            "" => None,
            after => Some(after.strip_prefix(':').ok_or_else(invalid)?),
        };
        let inner = name.get(1..name.len() - 1).ok_or_else(invalid)?;
        if wildcard || inner.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(invalid());
        }
        (name, port)
    } else {
        match rest.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (rest, None),
        }
    };
    if let Some(port) = port {
        if port.is_empty()
            || !port.bytes().all(|b| b.is_ascii_digit())
            || port.parse::<u16>().is_err()
        {
            return Err(invalid());
        }
    }
    let is_dns_like = |s: &str| {
        !s.is_empty()
            && s.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
    };
    if !name.starts_with('[') && !is_dns_like(name) {
        return Err(invalid());
    }
    Ok(if wildcard {
        format!("*.{name}")
    } else {
        name.to_owned()
    })
}

/// `header:NAME`, `cookie:NAME` or `source_ip`.
pub(crate) fn hash_key(value: &str) -> Result<HashKey, String> {
    let invalid = || {
        format!(
            "invalid hash key {value:?}: expected \"header:NAME\", \"cookie:NAME\" or \"source_ip\""
        )
    };
    if value == "source_ip" {
        return Ok(HashKey::SourceIp);
    }
    let (kind, name) = value.split_once(':').ok_or_else(invalid)?;
    if !is_token(name) {
        return Err(invalid());
    }
    match kind {
        "header" => Ok(HashKey::Header(name.to_ascii_lowercase())),
        "cookie" => Ok(HashKey::Cookie(name.to_owned())),
        _ => Err(invalid()),
    }
}

/// The part of a `regex` error a user needs: its last `error:` line, or the whole text.
pub(crate) fn regex_error(e: &regex::Error) -> String {
    match e {
        regex::Error::Syntax(text) => text
            .lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix("error: "))
            .unwrap_or(text)
            .to_owned(),
        regex::Error::CompiledTooBig(limit) => {
            format!("too big once compiled (limit {limit} bytes)")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(name("api-v1.canary_2").is_ok());
        assert!(name("").is_err());
        assert!(name("a b").is_err());
        assert!(name(&"a".repeat(129)).is_err());
        assert_eq!(
            name("é").unwrap_err(),
            "invalid name \"é\": use 1 to 128 characters among A-Z a-z 0-9 - _ ."
        );
    }

    #[test]
    fn socket_addrs() {
        assert!(socket_addr("127.0.0.1:0").is_ok());
        assert!(socket_addr("[::1]:80").is_ok());
        assert_eq!(
            socket_addr("10.0.0.1").unwrap_err(),
            "invalid socket address \"10.0.0.1\""
        );
        assert!(socket_addr("localhost:80").is_err());
        assert!(socket_addr("::1:80").is_err());
    }

    #[test]
    fn timeouts() {
        assert_eq!(timeout_ms(1500), Ok(Duration::from_millis(1500)));
        assert!(timeout_ms(0).is_err());
        assert!(timeout_ms(MAX_TIMEOUT_MS).is_ok());
        assert!(timeout_ms(MAX_TIMEOUT_MS + 1).is_err());
    }

    #[test]
    fn tokens() {
        assert!(is_token("GET"));
        assert!(is_token("x-canary"));
        assert!(is_token("PURGE"));
        assert!(!is_token(""));
        assert!(!is_token("GE T"));
        assert!(!is_token("a:b"));
        assert!(!is_token("x\r\n"));
    }

    #[test]
    fn header_values() {
        assert!(is_header_value("text/plain; charset=utf-8"));
        assert!(is_header_value(""));
        assert!(!is_header_value("a\r\nSet-Cookie: x"));
        assert!(is_header_value("é"));
        assert!(!is_header_value("a\0b"));
        assert!(!is_header_value("a\x7fb"));
    }

    #[test]
    fn hosts_are_lowercased_and_lose_their_port() {
        assert_eq!(host("API.Local").as_deref(), Ok("api.local"));
        assert_eq!(host("api.local:8080").as_deref(), Ok("api.local"));
        assert_eq!(host("*.Example.com").as_deref(), Ok("*.example.com"));
        assert_eq!(host("*.example.com:443").as_deref(), Ok("*.example.com"));
        assert_eq!(host("10.0.0.1:80").as_deref(), Ok("10.0.0.1"));
        assert_eq!(host("[::1]:80").as_deref(), Ok("[::1]"));
        assert_eq!(host("[::1]").as_deref(), Ok("[::1]"));
    }

    #[test]
    fn bad_hosts_are_rejected() {
        for bad in [
            "",
            "*",
            "*.",
            "a..b",
            "a b",
            "a.*.b",
            "api.local:",
            "api.local:x",
            "api:99999",
            "[::1",
            "[nope]",
            "*.[::1]",
            "[::1]x",
            "a/b",
        ] {
            assert!(host(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(host("a b").unwrap_err(), "invalid host \"a b\"");
    }

    #[test]
    fn hash_keys() {
        assert_eq!(hash_key("source_ip"), Ok(HashKey::SourceIp));
        assert_eq!(
            hash_key("header:X-User-Id"),
            Ok(HashKey::Header("x-user-id".into()))
        );
        assert_eq!(
            hash_key("cookie:Session"),
            Ok(HashKey::Cookie("Session".into()))
        );
        assert!(hash_key("header:").is_err());
        assert!(hash_key("query:id").is_err());
        assert!(hash_key("source-ip").is_err());
        assert!(hash_key("cookie:a b").is_err());
    }

    #[test]
    fn regex_errors_keep_the_reason() {
        let pattern = String::from("[a"); // not a literal: clippy would reject it
        let e = regex::Regex::new(&pattern).unwrap_err();
        assert_eq!(regex_error(&e), "unclosed character class");
    }
}
