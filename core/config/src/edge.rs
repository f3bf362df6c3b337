//! The gateway's request shaping, as validated: CORS ([`Cors`]), path and host rewrites
//! ([`Rewrite`]), redirects ([`Redirect`]), client address filters ([`IpFilter`]).
//!
//! Each type answers its one question about a request (is this origin allowed, what is the
//! new path, where does the redirect point, is this address let in) without I/O, so the
//! engine's stages (`core/engine/src/stage/{cors,rewrite,redirect,ip_filter}.rs`) stay thin
//! and these rules are tested here. Only `role = "gateway"` runs them; validation refuses the
//! keys on a sidecar.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A route's edge settings besides its action (a redirect is a [`crate::RouteAction`]).
#[derive(Debug, Default, Clone, PartialEq)]
#[non_exhaustive]
pub struct Edge {
    /// `[routes.cors]`.
    pub cors: Option<Cors>,
    /// `rewrite`: what the upstream request's path and host become.
    pub rewrite: Option<Rewrite>,
    /// `ip_allow` / `ip_deny`.
    pub ip: Option<IpFilter>,
    /// The route's `max_request_body_bytes` (the lower of it and the listener's applies).
    pub max_request_body_bytes: Option<u64>,
}

impl Edge {
    pub fn new(
        cors: Option<Cors>,
        rewrite: Option<Rewrite>,
        ip: Option<IpFilter>,
        max_request_body_bytes: Option<u64>,
    ) -> Edge {
        Edge {
            cors,
            rewrite,
            ip,
            max_request_body_bytes,
        }
    }
}

/// One entry of `allow_origins`.
#[derive(Debug, Clone)]
pub enum Origin {
    /// `"*"`: every origin.
    Any,
    /// An origin as a browser sends it (`https://app.example.com`), compared without regard
    /// to ASCII case.
    Exact(String),
    /// `regex:…`, anchored: it must match the whole origin.
    Regex(regex::Regex),
}

impl PartialEq for Origin {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Origin::Any, Origin::Any) => true,
            (Origin::Exact(a), Origin::Exact(b)) => a == b,
            (Origin::Regex(a), Origin::Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

/// A route's CORS policy (`[routes.cors]`). List values are joined with `", "`, ready to
/// send; an empty one is not sent.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Cors {
    pub origins: Vec<Origin>,
    pub allow_methods: String,
    pub allow_headers: String,
    pub expose_headers: String,
    pub max_age_s: Option<u64>,
    pub allow_credentials: bool,
}

impl Cors {
    pub fn new(
        origins: Vec<Origin>,
        allow_methods: String,
        allow_headers: String,
        expose_headers: String,
        max_age_s: Option<u64>,
        allow_credentials: bool,
    ) -> Cors {
        Cors {
            origins,
            allow_methods,
            allow_headers,
            expose_headers,
            max_age_s,
            allow_credentials,
        }
    }

    /// Whether a request's `Origin` value is allowed.
    pub fn allows(&self, origin: &[u8]) -> bool {
        let Ok(origin) = std::str::from_utf8(origin) else {
            return false;
        };
        self.origins.iter().any(|o| match o {
            Origin::Any => true,
            Origin::Exact(e) => e.eq_ignore_ascii_case(origin),
            Origin::Regex(re) => re.is_match(origin),
        })
    }
}

/// How a path is rewritten (`rewrite.prefix`, `rewrite.regex`, `redirect.prefix`).
#[derive(Debug, Clone)]
pub enum PathRewrite {
    /// The route's `path_prefix` (`matched`) is replaced by `replacement`.
    Prefix {
        matched: String,
        replacement: String,
    },
    /// Every match of `pattern` in the path is replaced by `substitution` (in the regex
    /// crate's syntax: the file's `\1` is `${1}` here).
    Regex {
        pattern: regex::Regex,
        substitution: String,
    },
}

impl PartialEq for PathRewrite {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (
                PathRewrite::Prefix {
                    matched: a,
                    replacement: b,
                },
                PathRewrite::Prefix {
                    matched: c,
                    replacement: d,
                },
            ) => a == c && b == d,
            (
                PathRewrite::Regex {
                    pattern: a,
                    substitution: b,
                },
                PathRewrite::Regex {
                    pattern: c,
                    substitution: d,
                },
            ) => a.as_str() == c.as_str() && b == d,
            _ => false,
        }
    }
}

impl PathRewrite {
    /// The new path (no query), or `None` when the rule leaves `path` as it is. A result
    /// that would not start with `/` gets one.
    pub fn apply(&self, path: &str) -> Option<String> {
        let new = match self {
            PathRewrite::Prefix {
                matched,
                replacement,
            } => {
                let rest = path.strip_prefix(matched.as_str())?;
                format!("{replacement}{rest}")
            }
            PathRewrite::Regex {
                pattern,
                substitution,
            } => match pattern.replace_all(path, substitution.as_str()) {
                std::borrow::Cow::Borrowed(_) => return None,
                std::borrow::Cow::Owned(s) => s,
            },
        };
        Some(if new.starts_with('/') {
            new
        } else {
            format!("/{new}")
        })
    }
}

/// A route's `rewrite`: at least one of `path` and `host`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Rewrite {
    pub path: Option<PathRewrite>,
    /// The upstream request's authority (`Host`, `:authority`), port included when given.
    pub host: Option<String>,
}

impl Rewrite {
    pub fn new(path: Option<PathRewrite>, host: Option<String>) -> Rewrite {
        Rewrite { path, host }
    }

    /// The new origin-form target for `path_and_query` (whose path is `path`), the query
    /// kept; `None` when the path stays.
    pub fn target(&self, path: &str, path_and_query: &str) -> Option<String> {
        let new = self.path.as_ref()?.apply(path)?;
        let query = path_and_query.get(path.len()..).unwrap_or_default();
        Some(new + query)
    }
}

/// Where a redirect route's `Location` points (`redirect`). Each part not given is the
/// request's own.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Redirect {
    /// `"http"` or `"https"`.
    pub scheme: Option<String>,
    /// A host name or IP literal, without port.
    pub host: Option<String>,
    pub port: Option<u16>,
    pub path: Option<RedirectPath>,
    pub strip_query: bool,
    /// 301, 302, 303, 307 or 308.
    pub status: u16,
}

/// What a redirect does to the path.
#[derive(Debug, Clone, PartialEq)]
pub enum RedirectPath {
    /// `path`: the whole path.
    Whole(String),
    /// `prefix`: the route's `path_prefix` replaced.
    Prefix(PathRewrite),
}

impl Redirect {
    pub fn new(
        scheme: Option<String>,
        host: Option<String>,
        port: Option<u16>,
        path: Option<RedirectPath>,
        strip_query: bool,
        status: u16,
    ) -> Redirect {
        Redirect {
            scheme,
            host,
            port,
            path,
            strip_query,
            status,
        }
    }

    /// The `Location` for a request that came over TLS or not (`tls`), with this
    /// `authority` (host and optional port), `path` and `path_and_query`.
    ///
    /// The port: `port` when given; else none when the scheme changes (the new scheme's
    /// default); else the request's. A port that is its scheme's default is left out.
    /// Without any host (an HTTP/1.0 request without `Host`, no `host` given) the location
    /// is the path alone, relative to the request's own authority.
    pub fn location(
        &self,
        tls: bool,
        authority: Option<&str>,
        path: &str,
        path_and_query: &str,
    ) -> String {
        let own = if tls { "https" } else { "http" };
        let scheme = self.scheme.as_deref().unwrap_or(own);
        let (req_host, req_port) = split_authority(authority.unwrap_or_default());
        let host = self.host.as_deref().unwrap_or(req_host);
        let port = match (self.port, &self.scheme) {
            (Some(p), _) => Some(p),
            (None, Some(_)) if scheme != own => None,
            (None, _) => req_port.and_then(|p| p.parse().ok()),
        };
        let port = port.filter(|&p| !matches!((scheme, p), ("http", 80) | ("https", 443)));
        let new_path = match &self.path {
            None => None,
            Some(RedirectPath::Whole(p)) => Some(p.clone()),
            Some(RedirectPath::Prefix(rule)) => rule.apply(path),
        };
        let path_part = new_path.as_deref().unwrap_or(path);
        let query = if self.strip_query {
            ""
        } else {
            path_and_query.get(path.len()..).unwrap_or_default()
        };
        let mut out = String::with_capacity(host.len() + path_and_query.len() + 16);
        if !host.is_empty() {
            out.push_str(scheme);
            out.push_str("://");
            out.push_str(host);
            if let Some(p) = port {
                out.push(':');
                out.push_str(&p.to_string());
            }
        }
        out.push_str(path_part);
        out.push_str(query);
        out
    }
}

/// `host:port` → (`host`, `Some(port)`); an IPv6 literal keeps its brackets.
fn split_authority(authority: &str) -> (&str, Option<&str>) {
    match authority.rfind(':') {
        Some(i) if !authority.get(i..).unwrap_or_default().contains(']') => (
            authority.get(..i).unwrap_or_default(),
            authority.get(i + 1..),
        ),
        _ => (authority, None),
    }
}

/// An address block: `10.0.0.0/8`, `2001:db8::/32`, or one address (`127.0.0.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    bits: u8,
}

impl Cidr {
    /// Parses a block; host bits set below the prefix (`10.0.0.1/8`) are an error, as a
    /// likely typo.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (addr, bits) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("invalid address block {s:?}: expected e.g. \"10.0.0.0/8\""))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => max,
            Some(b) => match b.parse::<u8>() {
                Ok(n) if n <= max && b.bytes().all(|c| c.is_ascii_digit()) => n,
                _ => return Err(format!("invalid prefix length in {s:?}: 0 to {max}")),
            },
        };
        let cidr = Cidr { addr, bits };
        if cidr.masked(addr) != bits_of(addr) {
            return Err(format!(
                "{s:?} has bits set past its prefix length /{bits}; write the block's first address"
            ));
        }
        Ok(cidr)
    }

    /// The block of the first `bits` bits of `addr` (at most its width, 32 or 128), the bits
    /// past them cleared: Envoy's reading of a `CidrRange` (`parse` refuses them instead, as a
    /// likely typo).
    pub fn new(addr: IpAddr, bits: u8) -> Cidr {
        let width: u8 = if addr.is_ipv4() { 32 } else { 128 };
        let block = Cidr {
            addr,
            bits: bits.min(width),
        };
        let first = block.masked(addr);
        let addr = match addr {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(u32::try_from(first).unwrap_or(0))),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(first)),
        };
        Cidr { addr, ..block }
    }

    /// The address's bits under this block's mask.
    fn masked(&self, ip: IpAddr) -> u128 {
        let width = if ip.is_ipv4() { 32 } else { 128 };
        let shift = width - u32::from(self.bits);
        let bits = bits_of(ip);
        bits.checked_shr(shift)
            .map_or(0, |b| b.checked_shl(shift).unwrap_or(0))
    }

    /// The block's first address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length: 32 for one IPv4 address, 128 for one IPv6 address.
    pub fn bits(&self) -> u8 {
        self.bits
    }

    /// Whether `ip` is in this block (an IPv4-mapped IPv6 address counts as its IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.addr.is_ipv4() && self.masked(ip) == bits_of(self.addr)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.bits)
    }
}

fn bits_of(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// A route's `ip_allow` and `ip_deny`.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct IpFilter {
    pub allow: Vec<Cidr>,
    pub deny: Vec<Cidr>,
}

impl IpFilter {
    pub fn new(allow: Vec<Cidr>, deny: Vec<Cidr>) -> IpFilter {
        IpFilter { allow, deny }
    }

    /// Deny is checked first: an address in a denied block is refused; then, when
    /// `ip_allow` is given, only an address in one of its blocks is let in.
    pub fn allows(&self, ip: IpAddr) -> bool {
        if self.deny.iter().any(|c| c.contains(ip)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|c| c.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_contain_their_addresses() {
        let ten = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(ten.contains(ip("10.255.1.2")));
        assert!(!ten.contains(ip("11.0.0.1")));
        assert!(ten.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped");
        assert!(!ten.contains(ip("::1")));
        let one = Cidr::parse("127.0.0.1").unwrap();
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("1.2.3.4")) && !all.contains(ip("::2")));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:1::9")) && !v6.contains(ip("2001:db9::1")));
        assert!(Cidr::parse("::/0").unwrap().contains(ip("::1")));
        for bad in [
            "10.0.0.1/8",
            "10.0.0.0/33",
            "10.0.0.0/",
            "x/8",
            "::1/129",
            "10.0.0.0/+8",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn new_clears_the_bits_past_the_prefix() {
        let block = |s| Cidr::parse(s).unwrap();
        assert_eq!(Cidr::new(ip("10.1.2.3"), 8), block("10.0.0.0/8"));
        assert_eq!(Cidr::new(ip("10.1.2.3"), 8).addr(), ip("10.0.0.0"));
        assert_eq!(Cidr::new(ip("2001:db8::1"), 32), block("2001:db8::/32"));
        assert_eq!(Cidr::new(ip("10.1.2.3"), 0), block("0.0.0.0/0"));
        assert_eq!(Cidr::new(ip("10.1.2.3"), 128), block("10.1.2.3/32"));
    }

    #[test]
    fn deny_is_checked_before_allow() {
        let block = |s| Cidr::parse(s).unwrap();
        let f = IpFilter::new(vec![block("10.0.0.0/8")], vec![block("10.0.0.0/24")]);
        assert!(f.allows(ip("10.1.0.1")));
        assert!(!f.allows(ip("10.0.0.7")));
        assert!(!f.allows(ip("192.168.0.1")));
        let deny_only = IpFilter::new(vec![], vec![block("127.0.0.1/32")]);
        assert!(!deny_only.allows(ip("127.0.0.1")) && deny_only.allows(ip("127.0.0.2")));
    }

    #[test]
    fn rewrites_keep_the_query() {
        let prefix = Rewrite::new(
            Some(PathRewrite::Prefix {
                matched: "/api/orders/".into(),
                replacement: "/orders/".into(),
            }),
            None,
        );
        assert_eq!(
            prefix
                .target("/api/orders/7", "/api/orders/7?x=1&y")
                .as_deref(),
            Some("/orders/7?x=1&y")
        );
        assert_eq!(prefix.target("/other", "/other"), None);
        let regex = Rewrite::new(
            Some(PathRewrite::Regex {
                pattern: regex::Regex::new("^/api/(.*)$").unwrap(),
                substitution: "/${1}".into(),
            }),
            None,
        );
        assert_eq!(
            regex.target("/api/a/b", "/api/a/b?q").as_deref(),
            Some("/a/b?q")
        );
        assert_eq!(regex.target("/x", "/x"), None);
        let to_empty = PathRewrite::Prefix {
            matched: "/strip".into(),
            replacement: String::new(),
        };
        assert_eq!(to_empty.apply("/strip").as_deref(), Some("/"));
        assert_eq!(
            Rewrite::new(None, Some("h".into())).target("/a", "/a"),
            None
        );
    }

    #[test]
    fn locations_are_built_from_the_request() {
        let to_https = Redirect::new(Some("https".into()), None, None, None, false, 301);
        assert_eq!(
            to_https.location(false, Some("example.com:80"), "/a", "/a?b=1"),
            "https://example.com/a?b=1"
        );
        assert_eq!(
            to_https.location(false, Some("example.com:8080"), "/a", "/a"),
            "https://example.com/a"
        );
        let keep_port = Redirect::new(None, Some("new.example".into()), None, None, true, 302);
        assert_eq!(
            keep_port.location(false, Some("old.example:8080"), "/a", "/a?x"),
            "http://new.example:8080/a"
        );
        let whole = Redirect::new(
            None,
            None,
            Some(8443),
            Some(RedirectPath::Whole("/login".into())),
            false,
            307,
        );
        assert_eq!(
            whole.location(true, Some("[::1]:9000"), "/a", "/a?next=1"),
            "https://[::1]:8443/login?next=1"
        );
        let prefix = Redirect::new(
            None,
            None,
            None,
            Some(RedirectPath::Prefix(PathRewrite::Prefix {
                matched: "/old/".into(),
                replacement: "/new/".into(),
            })),
            false,
            308,
        );
        assert_eq!(
            prefix.location(true, Some("h:443"), "/old/x", "/old/x?q"),
            "https://h/new/x?q"
        );
        assert_eq!(prefix.location(false, None, "/old/x", "/old/x"), "/new/x");
    }

    #[test]
    fn origins_match_exactly_or_by_anchored_regex() {
        let cors = Cors::new(
            vec![
                Origin::Exact("https://app.example.com".into()),
                Origin::Regex(regex::Regex::new("^(?:https://[a-z]+\\.example\\.org)$").unwrap()),
            ],
            "GET, POST".into(),
            "authorization".into(),
            String::new(),
            Some(600),
            true,
        );
        assert!(cors.allows(b"https://app.example.com"));
        assert!(cors.allows(b"HTTPS://APP.example.com"));
        assert!(!cors.allows(b"https://app.example.com.evil"));
        assert!(cors.allows(b"https://shop.example.org"));
        assert!(!cors.allows(b"https://shop.example.org.evil"));
        assert!(!cors.allows(b"\xff"));
        let any = Cors::new(
            vec![Origin::Any],
            String::new(),
            String::new(),
            "x-id".into(),
            None,
            false,
        );
        assert!(any.allows(b"https://anything"));
    }
}
