//! CONNECT routes (`match.connect`, `match.ports`, `tunnel_to`): what a tunnel route may
//! say. A tunnel has no path, no method to choose, nothing to retry, copy or rewrite, and
//! no answer of the proxy's own but a refusal.

use super::Validator;
use crate::model::RouteAction;
use crate::raw::{FileMatch, FileRoute};

impl Validator {
    /// `match.connect` and `match.ports` of the route whose `match` is at `p`.
    pub(super) fn connect_match(&mut self, p: &str, m: &FileMatch) -> (bool, Vec<u16>) {
        let connect = m.connect.unwrap_or(false);
        let ports = m.ports.clone().unwrap_or_default();
        if m.ports.is_some() && !connect {
            self.err(
                format!("{p}.ports"),
                "only with connect = true (the port of a CONNECT's authority; other requests \
                 are routed by host alone)",
            );
        }
        if m.ports.as_ref().is_some_and(Vec::is_empty) {
            self.err(
                format!("{p}.ports"),
                "must not be empty (omit it for any port)",
            );
        }
        if ports.contains(&0) {
            self.err(format!("{p}.ports"), "ports are 1 to 65535, found 0");
        }
        if connect {
            let no_path = "a CONNECT has no path";
            self.not_on(
                p,
                "not valid with connect = true",
                [
                    ("path_prefix", m.path_prefix.is_some(), no_path),
                    ("path_exact", m.path_exact.is_some(), no_path),
                    ("path_regex", m.path_regex.is_some(), no_path),
                    ("method", m.method.is_some(), "the method is CONNECT"),
                ],
            );
        }
        (connect, ports)
    }

    /// The route-level rules of a route at `p` (`tunnel_to`, and what a CONNECT route may
    /// not have); `action` is what the route's `tunnel_to` makes of it, when it has one.
    pub(super) fn connect_route(&mut self, p: &str, r: &FileRoute) -> Option<RouteAction> {
        let connect = r.matcher.as_ref().and_then(|m| m.connect).unwrap_or(false);
        if connect {
            let somewhere = "a tunnel goes somewhere";
            let no_copy = "a tunnel's bytes are not kept";
            self.not_on(
                p,
                "not valid on a connect route",
                [
                    ("direct_response", r.direct_response.is_some(), somewhere),
                    ("redirect", r.redirect.is_some(), somewhere),
                    ("retry", r.retry.is_some(), no_copy),
                    ("mirror", r.mirror.is_some(), no_copy),
                    (
                        "rewrite",
                        r.rewrite.is_some(),
                        "a tunnel has no path to rewrite",
                    ),
                    ("cors", r.cors.is_some(), "a tunnel is no browser's request"),
                ],
            );
        }
        let to = r.tunnel_to.as_deref()?;
        if to != "authority" {
            return self.fail(
                format!("{p}.tunnel_to"),
                format!("unknown value {to:?}: the one value is \"authority\""),
            );
        }
        if !connect {
            return self.fail(
                format!("{p}.tunnel_to"),
                "only on a route with match.connect = true",
            );
        }
        let host = r.matcher.as_ref().and_then(|m| m.host.as_deref());
        let is_ip = host.is_some_and(|h| {
            let h = h
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(h);
            h.parse::<std::net::IpAddr>().is_ok()
        });
        if !is_ip {
            return self.fail(
                format!("{p}.tunnel_to"),
                "needs match.host to be an IP address (a worker does not resolve names: \
                 point the route at a cluster to reach a named host)",
            );
        }
        Some(RouteAction::Authority)
    }

    /// An error at `p.KEY` for each key given: `"{message} ({why})"`.
    fn not_on<const N: usize>(&mut self, p: &str, message: &str, keys: [(&str, bool, &str); N]) {
        for (key, given, why) in keys {
            if given {
                self.err(format!("{p}.{key}"), format!("{message} ({why})"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::model::RouteAction;

    fn config(route: &str) -> String {
        format!(
            "[[listeners]]\nname = \"l\"\nbind = \"127.0.0.1:0\"\n\
             [[clusters]]\nname = \"c\"\nendpoints = [\"127.0.0.1:9\"]\n\
             [[routes]]\nlistener = \"l\"\nname = \"r\"\n{route}\n"
        )
    }

    fn errors(route: &str) -> Vec<String> {
        match crate::parse(&config(route)) {
            Ok(_) => Vec::new(),
            Err(e) => e.to_string().lines().map(str::to_string).collect(),
        }
    }

    fn route(text: &str) -> crate::Route {
        let mut c = crate::parse(&config(text)).unwrap_or_else(|e| panic!("{e}"));
        let crate::ListenerKind::Http(mut http) = c.listeners.remove(0).kind else {
            panic!("not http")
        };
        http.routes.remove(0)
    }

    /// Every ```toml block of docs/https-proxy.md is a valid configuration.
    #[test]
    fn the_examples_of_docs_https_proxy_md_are_valid() {
        const DOC: &str = include_str!("../../../../docs/https-proxy.md");
        let blocks = super::super::edge::tests::toml_blocks(DOC);
        assert!(!blocks.is_empty(), "no example found");
        for body in &blocks {
            if let Err(e) = crate::parse(body) {
                panic!("docs example is invalid:\n{e}\n{body}");
            }
        }
    }

    #[test]
    fn a_connect_route_takes_a_cluster_or_its_authority() {
        let r = route("match = { connect = true, host = \"api.example.com\", ports = [443] }\ncluster = \"c\"");
        assert!(r.matcher.connect);
        assert_eq!(r.matcher.ports, [443]);
        let r = route("match = { connect = true, host = \"10.0.0.7\" }\ntunnel_to = \"authority\"");
        assert!(matches!(r.action, RouteAction::Authority));
        let r =
            route("match = { connect = true, host = \"[fd00::7]\" }\ntunnel_to = \"authority\"");
        assert!(matches!(r.action, RouteAction::Authority));
    }

    #[test]
    fn what_a_connect_route_may_not_say_is_reported_with_its_path() {
        let said = |route: &str, want: &str| {
            let errors = errors(route);
            assert!(
                errors.iter().any(|e| e.contains(want)),
                "{route}: wanted {want:?} in {errors:?}"
            );
        };
        said(
            "match = { ports = [443] }\ncluster = \"c\"",
            "routes[0].match.ports: only with connect = true",
        );
        said(
            "match = { connect = true, ports = [] }\ncluster = \"c\"",
            "routes[0].match.ports: must not be empty",
        );
        said(
            "match = { connect = true, ports = [0] }\ncluster = \"c\"",
            "routes[0].match.ports: ports are 1 to 65535",
        );
        said(
            "match = { connect = true, path_prefix = \"/\" }\ncluster = \"c\"",
            "routes[0].match.path_prefix: not valid with connect = true",
        );
        said(
            "match = { connect = true, method = \"GET\" }\ncluster = \"c\"",
            "routes[0].match.method: not valid with connect = true",
        );
        said(
            "match = { connect = true }\ndirect_response = { status = 403 }",
            "routes[0].direct_response: not valid on a connect route",
        );
        said(
            "match = { connect = true }\ncluster = \"c\"\nretry = {}",
            "routes[0].retry: not valid on a connect route",
        );
        said(
            "match = { connect = true, host = \"api.example.com\" }\ntunnel_to = \"authority\"",
            "routes[0].tunnel_to: needs match.host to be an IP address",
        );
        said(
            "match = { connect = true }\ntunnel_to = \"authority\"",
            "routes[0].tunnel_to: needs match.host to be an IP address",
        );
        said(
            "match = { host = \"10.0.0.7\" }\ntunnel_to = \"authority\"",
            "routes[0].tunnel_to: only on a route with match.connect = true",
        );
        said(
            "match = { connect = true, host = \"10.0.0.7\" }\ntunnel_to = \"anywhere\"",
            "routes[0].tunnel_to: unknown value \"anywhere\"",
        );
        said(
            "match = { connect = true, host = \"10.0.0.7\" }\ntunnel_to = \"authority\"\ncluster = \"c\"",
            "only one of cluster, weighted, direct_response, redirect may be given, found cluster, tunnel_to",
        );
    }
}
