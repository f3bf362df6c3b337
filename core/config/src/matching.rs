//! Route matching: does one request satisfy one route's `match`? Runs per request, per route
//! tried, so it allocates nothing.
//!
//! Conditions are checked cheapest first: method, host, headers, then path (a regex last of
//! all). Every condition present must hold; an absent one holds for every request.

use crate::model::{PathMatch, RequestView, RouteMatch};

pub(crate) fn matches<'a, H>(m: &RouteMatch, req: &RequestView<'a, H>) -> bool
where
    H: Fn(&str) -> Option<&'a [u8]>,
{
    // A CONNECT only ever meets `connect` routes, and they nothing else.
    if m.connect != req.connect {
        return false;
    }
    if !m.ports.is_empty() && !req.port.is_some_and(|p| m.ports.contains(&p)) {
        return false;
    }
    if let Some(method) = &m.method {
        // Methods are case-sensitive (RFC 9110 §9.1).
        if req.method != method {
            return false;
        }
    }
    if let Some(pattern) = &m.host {
        match req.host {
            Some(host) if host_matches(pattern, host) => {}
            _ => return false,
        }
    }
    for (name, value) in &m.headers {
        if (req.header)(name) != Some(value.as_slice()) {
            return false;
        }
    }
    if !m.principals.is_empty()
        && !req.principal.is_some_and(|p| {
            m.principals
                .iter()
                .any(|want| crate::authz::principal_is(want, p))
        })
    {
        return false;
    }
    path_matches(&m.path, req.path)
}

/// `pattern` is lower-case without a port; `*.example.com` matches any name with at least one
/// more label (`a.example.com`, `a.b.example.com`) but not `example.com` itself.
fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix('*') {
        // `suffix` is `.example.com`: the host must end with it and have something before.
        Some(suffix) => {
            host.len() > suffix.len()
                && host
                    .len()
                    .checked_sub(suffix.len())
                    .and_then(|start| host.as_bytes().get(start..))
                    .is_some_and(|tail| tail.eq_ignore_ascii_case(suffix.as_bytes()))
        }
        None => host.eq_ignore_ascii_case(pattern),
    }
}

fn path_matches(m: &PathMatch, path: &str) -> bool {
    match m {
        PathMatch::Any => true,
        PathMatch::Prefix(prefix) => path.starts_with(prefix.as_str()),
        PathMatch::Exact(exact) => path == exact,
        // Compiled as `^(?:…)$`, so a match is a full match.
        PathMatch::Regex(re) => re.is_match(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A route's matcher from a TOML `match` table, through the real parser.
    fn matcher(table: &str) -> RouteMatch {
        let text = format!(
            "[[listeners]]\nname = \"l\"\nbind = \"127.0.0.1:0\"\n\
             [[routes]]\nlistener = \"l\"\nname = \"r\"\nmatch = {table}\n\
             cluster = \"c\"\n[[clusters]]\nname = \"c\"\nendpoints = [\"127.0.0.1:9\"]\n"
        );
        let mut config = crate::parse(&text).unwrap_or_else(|e| panic!("{e}"));
        let listener = config.listeners.remove(0);
        let crate::ListenerKind::Http(mut http) = listener.kind else {
            panic!("not http")
        };
        http.routes.remove(0).matcher
    }

    struct Req<'a> {
        method: &'a str,
        host: Option<&'a str>,
        path: &'a str,
        headers: &'a [(&'a str, &'a str)],
        port: Option<u16>,
    }

    const GET: Req<'static> = Req {
        method: "GET",
        host: None,
        path: "/",
        headers: &[],
        port: None,
    };

    fn check(m: &RouteMatch, r: &Req<'_>) -> bool {
        let headers = r.headers;
        let view = RequestView {
            method: r.method,
            host: r.host,
            path: r.path,
            header: |name: &str| {
                headers
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.as_bytes())
            },
            principal: None,
            connect: r.method == "CONNECT",
            port: r.port,
        };
        m.matches(&view)
    }

    #[test]
    fn empty_match_takes_everything() {
        let m = matcher("{}");
        assert!(check(&m, &GET));
        assert!(check(
            &m,
            &Req {
                method: "DELETE",
                host: Some("x"),
                path: "/a/b",
                ..GET
            }
        ));
    }

    #[test]
    fn exact_host_ignores_case() {
        let m = matcher(r#"{ host = "API.local:8080" }"#);
        assert!(check(
            &m,
            &Req {
                host: Some("api.local"),
                ..GET
            }
        ));
        assert!(check(
            &m,
            &Req {
                host: Some("API.LOCAL"),
                ..GET
            }
        ));
        assert!(!check(
            &m,
            &Req {
                host: Some("api.local.evil"),
                ..GET
            }
        ));
        assert!(!check(
            &m,
            &Req {
                host: Some("x.api.local"),
                ..GET
            }
        ));
        assert!(
            !check(&m, &Req { host: None, ..GET }),
            "no host never matches a host matcher"
        );
    }

    #[test]
    fn wildcard_host_matches_subdomains_only() {
        let m = matcher(r#"{ host = "*.example.com" }"#);
        assert!(check(
            &m,
            &Req {
                host: Some("a.example.com"),
                ..GET
            }
        ));
        assert!(check(
            &m,
            &Req {
                host: Some("a.b.example.com"),
                ..GET
            }
        ));
        assert!(check(
            &m,
            &Req {
                host: Some("A.Example.COM"),
                ..GET
            }
        ));
        assert!(!check(
            &m,
            &Req {
                host: Some("example.com"),
                ..GET
            }
        ));
        assert!(!check(
            &m,
            &Req {
                host: Some(".example.com"),
                ..GET
            }
        ));
        assert!(!check(
            &m,
            &Req {
                host: Some("aexample.com"),
                ..GET
            }
        ));
        assert!(!check(
            &m,
            &Req {
                host: Some("a.example.com.evil"),
                ..GET
            }
        ));
        assert!(!check(&m, &Req { host: None, ..GET }));
    }

    #[test]
    fn path_prefix_and_exact() {
        let prefix = matcher(r#"{ path_prefix = "/v1/" }"#);
        assert!(check(
            &prefix,
            &Req {
                path: "/v1/users",
                ..GET
            }
        ));
        assert!(check(
            &prefix,
            &Req {
                path: "/v1/",
                ..GET
            }
        ));
        assert!(!check(&prefix, &Req { path: "/v1", ..GET }));
        assert!(!check(
            &prefix,
            &Req {
                path: "/V1/users",
                ..GET
            }
        ));

        let exact = matcher(r#"{ path_exact = "/ping" }"#);
        assert!(check(
            &exact,
            &Req {
                path: "/ping",
                ..GET
            }
        ));
        assert!(!check(
            &exact,
            &Req {
                path: "/ping/",
                ..GET
            }
        ));
        assert!(!check(
            &exact,
            &Req {
                path: "/pin",
                ..GET
            }
        ));
    }

    #[test]
    fn path_regex_must_match_the_whole_path() {
        let m = matcher(r#"{ path_regex = "/users/[0-9]+" }"#);
        assert!(check(
            &m,
            &Req {
                path: "/users/42",
                ..GET
            }
        ));
        assert!(
            !check(
                &m,
                &Req {
                    path: "/users/42/posts",
                    ..GET
                }
            ),
            "anchored at the end"
        );
        assert!(
            !check(
                &m,
                &Req {
                    path: "/api/users/42",
                    ..GET
                }
            ),
            "anchored at the start"
        );
        assert!(!check(
            &m,
            &Req {
                path: "/users/",
                ..GET
            }
        ));

        // The anchors wrap the whole alternation, not just its ends.
        let alt = matcher(r#"{ path_regex = "/a|/b" }"#);
        assert!(check(&alt, &Req { path: "/a", ..GET }));
        assert!(check(&alt, &Req { path: "/b", ..GET }));
        assert!(!check(
            &alt,
            &Req {
                path: "/a/x",
                ..GET
            }
        ));
        assert!(!check(
            &alt,
            &Req {
                path: "/x/b",
                ..GET
            }
        ));
    }

    #[test]
    fn method_is_compared_exactly() {
        let m = matcher(r#"{ method = "GET" }"#);
        assert!(check(&m, &GET));
        assert!(!check(
            &m,
            &Req {
                method: "POST",
                ..GET
            }
        ));
        assert!(
            !check(
                &m,
                &Req {
                    method: "get",
                    ..GET
                }
            ),
            "methods are case-sensitive"
        );
    }

    #[test]
    fn every_header_must_be_present_with_that_exact_value() {
        let m = matcher(r#"{ headers = { "X-Canary" = "1", "x-team" = "Blue" } }"#);
        let both = [("x-canary", "1"), ("x-team", "Blue")];
        assert!(check(
            &m,
            &Req {
                headers: &both,
                ..GET
            }
        ));
        assert!(!check(
            &m,
            &Req {
                headers: &[("x-canary", "1")],
                ..GET
            }
        ));
        assert!(!check(
            &m,
            &Req {
                headers: &[("x-canary", "1"), ("x-team", "blue")],
                ..GET
            }
        ));
        assert!(!check(
            &m,
            &Req {
                headers: &[("x-canary", "11"), ("x-team", "Blue")],
                ..GET
            }
        ));
        assert!(!check(&m, &GET));
    }

    #[test]
    fn connect_routes_take_connect_only_and_on_their_ports() {
        let tunnel =
            matcher(r#"{ connect = true, host = "api.example.com", ports = [443, 8443] }"#);
        let plain = matcher("{}");
        let connect = |host: &'static str, port: u16| Req {
            method: "CONNECT",
            host: Some(host),
            path: "",
            port: Some(port),
            ..GET
        };
        assert!(check(&tunnel, &connect("api.example.com", 443)));
        assert!(check(&tunnel, &connect("api.example.com", 8443)));
        assert!(!check(&tunnel, &connect("api.example.com", 22)));
        assert!(!check(&tunnel, &connect("other.example.com", 443)));
        // A route without `connect` never takes a CONNECT, even one that takes everything;
        // a CONNECT route takes nothing else.
        assert!(!check(&plain, &connect("api.example.com", 443)));
        assert!(!check(
            &tunnel,
            &Req {
                host: Some("api.example.com"),
                ..GET
            }
        ));
        let any_port = matcher(r#"{ connect = true }"#);
        assert!(check(&any_port, &connect("x", 1)));
    }

    #[test]
    fn all_conditions_must_hold() {
        let m = matcher(
            r#"{ host = "api.local", path_prefix = "/v1/", method = "GET", headers = { "x-canary" = "1" } }"#,
        );
        let hit = Req {
            method: "GET",
            host: Some("api.local"),
            path: "/v1/x",
            headers: &[("x-canary", "1")],
            port: None,
        };
        assert!(check(&m, &hit));
        assert!(!check(
            &m,
            &Req {
                method: "PUT",
                ..hit
            }
        ));
        assert!(!check(
            &m,
            &Req {
                host: Some("web.local"),
                ..hit
            }
        ));
        assert!(!check(
            &m,
            &Req {
                path: "/v2/x",
                ..hit
            }
        ));
        assert!(!check(
            &m,
            &Req {
                headers: &[],
                ..hit
            }
        ));
    }
}
