//! A route's gateway keys: `redirect`, `rewrite`, `ip_allow`, `ip_deny`,
//! `max_request_body_bytes` and `[routes.cors]`. Only `role = "gateway"` runs them, so a
//! sidecar configuration that gives one is refused (a sidecar would silently ignore it).

use super::Validator;
use crate::check;
use crate::edge::{
    Cidr, Cors, Edge, IpFilter, Origin, PathRewrite, Redirect, RedirectPath, Rewrite,
};
use crate::raw::{FileCors, FileListener, FileRedirect, FileRewrite, FileRoute};

/// The gateway keys of a route, and whether each is given.
fn gateway_keys(r: &FileRoute) -> [(&'static str, bool); 6] {
    [
        ("redirect", r.redirect.is_some()),
        ("rewrite", r.rewrite.is_some()),
        ("ip_allow", r.ip_allow.is_some()),
        ("ip_deny", r.ip_deny.is_some()),
        ("max_request_body_bytes", r.max_request_body_bytes.is_some()),
        ("cors", r.cors.is_some()),
    ]
}

/// The route's `match.path_prefix`, which `prefix` keys replace.
fn path_prefix(r: &FileRoute) -> Option<&str> {
    r.matcher.as_ref()?.path_prefix.as_deref()
}

impl Validator {
    /// Each key given (`keys`: name, given) is an error unless the role is the gateway's.
    fn gateway_only(&mut self, p: &str, keys: &[(&'static str, bool)]) {
        if self.gateway {
            return;
        }
        for (key, given) in keys {
            if *given {
                self.err(
                    format!("{p}.{key}"),
                    format!("only the gateway role runs {key}; set [proxy] role = \"gateway\""),
                );
            }
        }
    }

    /// `ip_allow` and `ip_deny` of a route or a listener (`p`).
    fn ip_filter(
        &mut self,
        p: &str,
        allow: &Option<Vec<String>>,
        deny: &Option<Vec<String>>,
    ) -> Option<IpFilter> {
        let mut blocks = |key: &str, given: &Option<Vec<String>>| -> Vec<Cidr> {
            let mut out = Vec::new();
            for (j, s) in given.iter().flatten().enumerate() {
                match Cidr::parse(s) {
                    Ok(c) => out.push(c),
                    Err(m) => self.err(format!("{p}.{key}[{j}]"), m),
                }
            }
            if given.as_ref().is_some_and(Vec::is_empty) {
                self.err(format!("{p}.{key}"), "must list at least one address block");
            }
            out
        };
        let allow = blocks("ip_allow", allow);
        let deny = blocks("ip_deny", deny);
        (!allow.is_empty() || !deny.is_empty()).then(|| IpFilter::new(allow, deny))
    }

    /// An http listener's `ip_allow` and `ip_deny` (`p`: `listeners[i]`).
    pub(super) fn listener_ip_filter(&mut self, p: &str, l: &FileListener) -> Option<IpFilter> {
        self.gateway_only(
            p,
            &[
                ("ip_allow", l.ip_allow.is_some()),
                ("ip_deny", l.ip_deny.is_some()),
            ],
        );
        self.ip_filter(p, &l.ip_allow, &l.ip_deny)
    }

    /// The route's edge settings (`p`: `routes[i]`); keys given on a sidecar are errors.
    pub(super) fn edge(&mut self, p: &str, r: &FileRoute) -> Edge {
        self.gateway_only(p, &gateway_keys(r));
        let rewrite = r
            .rewrite
            .as_ref()
            .and_then(|w| self.rewrite(&format!("{p}.rewrite"), w, r));
        let ip = self.ip_filter(p, &r.ip_allow, &r.ip_deny);
        let cors = r
            .cors
            .as_ref()
            .and_then(|c| self.cors(&format!("{p}.cors"), c));
        Edge::new(cors, rewrite, ip, r.max_request_body_bytes)
    }

    /// A redirect route's `redirect`.
    pub(super) fn redirect(
        &mut self,
        p: &str,
        d: &FileRedirect,
        r: &FileRoute,
    ) -> Option<Redirect> {
        self.clean(|v| {
            let scheme = d.scheme.clone();
            if let Some(s) = &scheme {
                if s != "http" && s != "https" {
                    v.err(
                        format!("{p}.scheme"),
                        format!("must be \"http\" or \"https\", got {s:?}"),
                    );
                }
            }
            let host = d.host.as_ref().map(|h| {
                match check::host(h) {
                    Ok(clean) if clean == h.to_ascii_lowercase() && !clean.starts_with("*.") => {}
                    _ => v.err(
                        format!("{p}.host"),
                        format!(
                            "invalid host {h:?}: a host name or IP address without port (see port)"
                        ),
                    ),
                }
                h.to_ascii_lowercase()
            });
            let port = d.port.and_then(|n| match u16::try_from(n) {
                Ok(port) if port > 0 => Some(port),
                _ => v.fail(
                    format!("{p}.port"),
                    format!("must be from 1 to 65535, got {n}"),
                ),
            });
            let path = match (&d.path, &d.prefix) {
                (Some(_), Some(_)) => v.fail(p, "at most one of path, prefix may be given"),
                (Some(path), None) => {
                    v.target_path(&format!("{p}.path"), path);
                    Some(RedirectPath::Whole(path.clone()))
                }
                (None, Some(prefix)) => v
                    .prefix_rewrite(&format!("{p}.prefix"), prefix, r)
                    .map(RedirectPath::Prefix),
                (None, None) => None,
            };
            let status = d.status.unwrap_or(301);
            if ![301, 302, 303, 307, 308].contains(&status) {
                v.err(
                    format!("{p}.status"),
                    format!("must be 301, 302, 303, 307 or 308, got {status}"),
                );
            }
            Redirect::new(
                scheme,
                host,
                port,
                path,
                d.strip_query.unwrap_or(false),
                status,
            )
        })
    }

    fn rewrite(&mut self, p: &str, w: &FileRewrite, r: &FileRoute) -> Option<Rewrite> {
        self.clean(|v| {
            if w.prefix.is_none() && w.regex.is_none() && w.host.is_none() {
                v.err(p, "needs at least one of prefix, regex, host");
            }
            if r.direct_response.is_some() || r.redirect.is_some() {
                v.err(
                    p,
                    "not valid on a route that answers itself (no request goes upstream)",
                );
            }
            let path = match (&w.prefix, &w.regex) {
                (Some(_), Some(_)) => v.fail(p, "at most one of prefix, regex may be given"),
                (Some(prefix), None) => v.prefix_rewrite(&format!("{p}.prefix"), prefix, r),
                (None, Some(re)) => {
                    let pattern = match regex::Regex::new(&re.pattern) {
                        Ok(compiled) => Some(compiled),
                        Err(e) => v.fail(
                            format!("{p}.regex.pattern"),
                            format!("invalid regex {:?}: {}", re.pattern, check::regex_error(&e)),
                        ),
                    };
                    let groups = pattern.as_ref().map_or(10, regex::Regex::captures_len);
                    let substitution = match substitution(&re.substitution, groups) {
                        Ok(s) => Some(s),
                        Err(m) => v.fail(format!("{p}.regex.substitution"), m),
                    };
                    pattern
                        .zip(substitution)
                        .map(|(pattern, substitution)| PathRewrite::Regex {
                            pattern,
                            substitution,
                        })
                }
                (None, None) => None,
            };
            let host = w.host.as_ref().map(|h| {
                if !matches!(check::host(h), Ok(clean) if !clean.starts_with("*.")) {
                    v.err(
                        format!("{p}.host"),
                        format!(
                            "invalid host {h:?}: a host name or IP address, with an optional port"
                        ),
                    );
                }
                h.to_ascii_lowercase()
            });
            Rewrite::new(path, host)
        })
    }

    /// A `prefix` key: replaces the route's `path_prefix`, so the route must have one.
    fn prefix_rewrite(&mut self, p: &str, prefix: &str, r: &FileRoute) -> Option<PathRewrite> {
        self.target_path(p, prefix);
        match path_prefix(r) {
            Some(matched) => Some(PathRewrite::Prefix {
                matched: matched.to_owned(),
                replacement: prefix.to_owned(),
            }),
            None => self.fail(
                p,
                "replaces the route's match.path_prefix, and this route does not match by path_prefix (use regex or path)",
            ),
        }
    }

    /// A path written in the file: starts with `/`, no query or fragment, and bytes a
    /// request target may carry.
    fn target_path(&mut self, p: &str, path: &str) {
        if !path.starts_with('/') {
            self.err(p, format!("must start with \"/\", got {path:?}"));
        } else if path.contains(['?', '#']) || !path.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            self.err(
                p,
                format!("invalid path {path:?}: no query, fragment, space or non-ASCII byte"),
            );
        }
    }

    fn cors(&mut self, p: &str, c: &FileCors) -> Option<Cors> {
        self.clean(|v| {
            if c.allow_origins.is_empty() {
                v.err(format!("{p}.allow_origins"), "must list at least one origin");
            }
            let mut origins = Vec::with_capacity(c.allow_origins.len());
            for (j, o) in c.allow_origins.iter().enumerate() {
                let op = format!("{p}.allow_origins[{j}]");
                if o == "*" {
                    origins.push(Origin::Any);
                } else if let Some(re) = o.strip_prefix("regex:") {
                    // Checked alone first: `a)|(b` is invalid, yet `^(?:a)|(b)$` would compile.
                    let anchored = regex::Regex::new(re)
                        .and_then(|_| regex::Regex::new(&format!("^(?:{re})$")));
                    match anchored {
                        Ok(compiled) => origins.push(Origin::Regex(compiled)),
                        Err(e) => v.err(
                            op,
                            format!("invalid regex {re:?}: {}", check::regex_error(&e)),
                        ),
                    }
                } else if o == "null" || is_origin(o) {
                    origins.push(Origin::Exact(o.clone()));
                } else {
                    v.err(
                        op,
                        format!("invalid origin {o:?}: scheme://host[:port] (no path), \"*\", \"null\" or \"regex:…\""),
                    );
                }
            }
            let credentials = c.allow_credentials.unwrap_or(false);
            if credentials && c.allow_origins.iter().any(|o| o == "*") {
                v.err(
                    format!("{p}.allow_credentials"),
                    "cannot be true with \"*\" in allow_origins (browsers refuse credentials for a wildcard origin); list the origins",
                );
            }
            let mut list = |key: &str, given: &Option<Vec<String>>| -> String {
                let given = given.as_deref().unwrap_or_default();
                for (j, t) in given.iter().enumerate() {
                    if !check::is_token(t) {
                        v.err(format!("{p}.{key}[{j}]"), format!("invalid token {t:?}"));
                    }
                }
                given.join(", ")
            };
            let allow_methods = list("allow_methods", &c.allow_methods);
            let allow_headers = list("allow_headers", &c.allow_headers).to_ascii_lowercase();
            let expose_headers = list("expose_headers", &c.expose_headers).to_ascii_lowercase();
            if let Some(age) = c.max_age_s {
                if age > 86_400 {
                    v.err(
                        format!("{p}.max_age_s"),
                        format!("must be from 0 to 86400, got {age}"),
                    );
                }
            }
            Cors::new(
                origins,
                allow_methods,
                allow_headers,
                expose_headers,
                c.max_age_s,
                credentials,
            )
        })
    }
}

/// `scheme://host[:port]`, as a browser's `Origin` field carries it.
fn is_origin(o: &str) -> bool {
    let Some((scheme, authority)) = o.split_once("://") else {
        return false;
    };
    !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        && !authority.contains('/')
        && matches!(check::host(authority), Ok(h) if !h.starts_with("*."))
}

/// A substitution as written (`\1` for a group, `\\` for a backslash) in the regex crate's
/// syntax (`${1}`, `$$` for a dollar); `groups`: the pattern's capture groups, 0 included.
fn substitution(written: &str, groups: usize) -> Result<String, String> {
    if !written.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(format!(
            "invalid substitution {written:?}: no space, control or non-ASCII character"
        ));
    }
    let mut out = String::with_capacity(written.len() + 8);
    let mut chars = written.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(d @ '0'..='9') => {
                    let n = d as usize - '0' as usize;
                    if n >= groups {
                        return Err(format!(
                            "\\{n} names a capture group the pattern does not have (it has {})",
                            groups.saturating_sub(1)
                        ));
                    }
                    out.push_str(&format!("${{{n}}}"));
                }
                Some('\\') => out.push('\\'),
                _ => {
                    return Err(format!(
                        "invalid substitution {written:?}: a backslash is followed by a digit (a group) or another backslash"
                    ))
                }
            },
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::substitution;

    /// The ```toml blocks of a Markdown document. A block may sit indented in a list item:
    /// it ends at its closing fence, and its lines lose the fence's indentation.
    pub(crate) fn toml_blocks(doc: &str) -> Vec<String> {
        doc.split("```toml\n")
            .skip(1)
            .map(|b| {
                let lines: Vec<&str> = b.lines().take_while(|l| l.trim() != "```").collect();
                let indent = lines
                    .iter()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| l.len() - l.trim_start().len())
                    .min()
                    .unwrap_or(0);
                lines
                    .iter()
                    .map(|l| l.get(indent..).unwrap_or(""))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .collect()
    }

    /// Every ```toml block of docs/gateway.md is a valid configuration.
    #[test]
    fn the_examples_of_docs_gateway_md_are_valid() {
        const DOC: &str = include_str!("../../../../docs/gateway.md");
        let blocks = toml_blocks(DOC);
        assert!(blocks.len() >= 4, "{} blocks", blocks.len());
        for b in &blocks {
            if let Err(e) = crate::parse(&crate::validate::tests::with_listener(b)) {
                panic!("docs/gateway.md example is invalid:\n{e}\n{b}");
            }
        }
    }

    const GATEWAY: &str = "[proxy]\nrole = \"gateway\"\n[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:1\"\n[[clusters]]\nname = \"app\"\nendpoints = [ \"127.0.0.1:2\" ]\n";

    /// The errors of a gateway file with these routes (on listener `in`, cluster `app`).
    fn route_errors(routes: &str) -> Vec<String> {
        crate::validate::tests::errors(&format!("{GATEWAY}{routes}"))
    }

    #[test]
    fn every_mistake_is_reported_with_its_path() {
        let e = route_errors(
            r#"
[[routes]]
listener = "in"
match = { path_prefix = "/a/" }
redirect = { scheme = "ftp", host = "h:80", port = 0, path = "/x", prefix = "/y/", status = 200 }

[[routes]]
listener = "in"
match = { path_exact = "/b" }
rewrite = { prefix = "/c/", regex = { pattern = "(", substitution = "/" } }
cluster = "app"

[[routes]]
listener = "in"
rewrite = { regex = { pattern = "^/(a)$", substitution = '/\2x' }, host = "*.h" }
ip_allow = []
ip_deny = [ "10.0.0.0/33", "nope" ]
cluster = "app"

[[routes]]
listener = "in"
direct_response = { status = 200 }
rewrite = {}

[[routes]]
listener = "in"
redirect = { path = "no-slash" }
cluster = "app"
timeout_ms = 5

[[routes]]
listener = "in"
cluster = "app"

[routes.cors]
allow_origins = [ "https://a.example/path", "regex:(", "*" ]
allow_methods = [ "GET POST" ]
max_age_s = 86401
allow_credentials = true

[[routes]]
listener = "in"
cluster = "app"

[routes.cors]
allow_origins = []

[[routes]]
listener = "in"
match = { path_exact = "/p" }
rewrite = { prefix = "/q/" }
cluster = "app"

[[routes]]
listener = "in"
rewrite = { regex = { pattern = "(", substitution = "/" } }
cluster = "app"
"#,
        );
        let want = [
            "routes[0].redirect.scheme: must be \"http\" or \"https\", got \"ftp\"",
            "routes[0].redirect.host: invalid host \"h:80\": a host name or IP address without port (see port)",
            "routes[0].redirect.port: must be from 1 to 65535, got 0",
            "routes[0].redirect: at most one of path, prefix may be given",
            "routes[0].redirect.status: must be 301, 302, 303, 307 or 308, got 200",
            "routes[1].rewrite: at most one of prefix, regex may be given",
            "routes[2].rewrite.regex.substitution: \\2 names a capture group the pattern does not have (it has 1)",
            "routes[2].rewrite.host: invalid host \"*.h\": a host name or IP address, with an optional port",
            "routes[2].ip_allow: must list at least one address block",
            "routes[2].ip_deny[0]: invalid prefix length in \"10.0.0.0/33\": 0 to 32",
            "routes[2].ip_deny[1]: invalid address block \"nope\": expected e.g. \"10.0.0.0/8\"",
            "routes[3].rewrite: needs at least one of prefix, regex, host",
            "routes[3].rewrite: not valid on a route that answers itself (no request goes upstream)",
            "routes[4]: only one of cluster, weighted, direct_response, redirect may be given, found cluster, redirect",
            "routes[4].timeout_ms: not valid on a redirect route (no upstream to wait for)",
            "routes[4].redirect.path: must start with \"/\", got \"no-slash\"",
            "routes[5].cors.allow_origins[0]: invalid origin \"https://a.example/path\": scheme://host[:port] (no path), \"*\", \"null\" or \"regex:…\"",
            "routes[5].cors.allow_origins[1]: invalid regex \"(\": unclosed group",
            "routes[5].cors.allow_credentials: cannot be true with \"*\" in allow_origins (browsers refuse credentials for a wildcard origin); list the origins",
            "routes[5].cors.allow_methods[0]: invalid token \"GET POST\"",
            "routes[5].cors.max_age_s: must be from 0 to 86400, got 86401",
            "routes[6].cors.allow_origins: must list at least one origin",
            "routes[7].rewrite.prefix: replaces the route's match.path_prefix, and this route does not match by path_prefix (use regex or path)",
            "routes[8].rewrite.regex.pattern: invalid regex \"(\": unclosed group",
        ];
        for w in want {
            assert!(
                e.iter().any(|got| got == w),
                "missing {w:?} in:\n{}",
                e.join("\n")
            );
        }
        assert_eq!(e.len(), want.len(), "{}", e.join("\n"));
    }

    #[test]
    fn listeners_filter_addresses_too() {
        let e = crate::validate::tests::errors(
            "[proxy]\nrole = \"gateway\"\n[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:1\"\nip_allow = [ \"::1/200\" ]\nip_deny = []\n[[listeners]]\nname = \"t\"\nbind = \"127.0.0.1:2\"\nprotocol = \"tcp\"\ncluster = \"app\"\nip_deny = [ \"::1\" ]\n[[clusters]]\nname = \"app\"\nendpoints = [ \"127.0.0.1:3\" ]\n",
        );
        assert_eq!(
            e,
            [
                "listeners[0].ip_allow[0]: invalid prefix length in \"::1/200\": 0 to 128",
                "listeners[0].ip_deny: must list at least one address block",
                "listeners[1].ip_deny: only valid on protocol = \"http\" listeners",
            ]
        );
        let c = crate::parse(
            "[proxy]\nrole = \"gateway\"\n[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:1\"\nip_deny = [ \"10.0.0.0/8\" ]\n",
        )
        .unwrap();
        let crate::ListenerKind::Http(http) = &c.listeners[0].kind else {
            panic!("http")
        };
        assert!(!http
            .ip
            .as_ref()
            .unwrap()
            .allows("10.1.2.3".parse().unwrap()));
    }

    #[test]
    fn valid_keys_make_the_model() {
        let c = crate::parse(&format!(
            "{GATEWAY}{}",
            r#"
[[routes]]
listener = "in"
match = { path_prefix = "/api/" }
rewrite = { regex = { pattern = "^/api/(.*)$", substitution = '/\1' }, host = "Up.Internal:81" }
ip_deny = [ "::1" ]
max_request_body_bytes = 0
cluster = "app"

[routes.cors]
allow_origins = [ "null", "regex:https://x" ]
allow_headers = [ "X-Token" ]

[[routes]]
listener = "in"
match = { path_prefix = "/old/" }
redirect = { prefix = "/new/", strip_query = true }
"#
        ))
        .unwrap();
        let crate::ListenerKind::Http(http) = &c.listeners[0].kind else {
            panic!("http")
        };
        let edge = &http.routes[0].edge;
        let rewrite = edge.rewrite.as_ref().unwrap();
        assert_eq!(rewrite.host.as_deref(), Some("up.internal:81"));
        assert_eq!(
            rewrite.target("/api/a/b", "/api/a/b?q").as_deref(),
            Some("/a/b?q")
        );
        assert!(!edge.ip.as_ref().unwrap().allows("::1".parse().unwrap()));
        assert_eq!(edge.max_request_body_bytes, Some(0));
        let cors = edge.cors.as_ref().unwrap();
        assert!(cors.allows(b"null") && cors.allows(b"https://x") && !cors.allows(b"https://xy"));
        assert_eq!(cors.allow_headers, "x-token");
        let crate::RouteAction::Redirect(r) = &http.routes[1].action else {
            panic!("redirect")
        };
        assert_eq!((r.status, r.strip_query), (301, true));
        assert_eq!(
            r.location(false, Some("h"), "/old/a", "/old/a?x"),
            "http://h/new/a"
        );
    }

    #[test]
    fn substitutions_become_the_regex_crates() {
        assert_eq!(substitution("/\\1", 2).unwrap(), "/${1}");
        assert_eq!(substitution("/a$\\\\\\0", 1).unwrap(), "/a$$\\${0}");
        assert!(substitution("/\\2", 2).is_err());
        assert!(substitution("/\\x", 2).is_err());
        assert!(substitution("/a b", 2).is_err());
    }
}
