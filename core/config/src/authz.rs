//! Authorization rule matching: does one `[[authz]]` rule apply to a request?
//!
//! Called by [`crate::model::Authz::decide`] (first matching rule wins, else the listener's
//! default). Pure and allocation-free: the engine asks once per request, after routing
//! input is known and before any upstream is contacted.

use crate::model::AuthzRule;

/// Every non-empty condition of `rule` holds for the request.
pub(crate) fn rule_matches<'h>(
    rule: &AuthzRule,
    principal: Option<&str>,
    method: &str,
    path: &str,
    header: &impl Fn(&str) -> Option<&'h [u8]>,
) -> bool {
    let principal_ok = rule.principals.is_empty()
        || principal.is_some_and(|p| rule.principals.iter().any(|want| principal_is(want, p)));
    principal_ok
        && (rule.paths.is_empty() || rule.paths.iter().any(|pre| path.starts_with(pre.as_str())))
        && (rule.methods.is_empty() || rule.methods.iter().any(|m| m == method))
        && rule
            .headers
            .iter()
            .all(|(name, value)| header(name) == Some(value.as_slice()))
}

/// `want` is an exact identity, or a prefix when it ends in `*`.
pub(crate) fn principal_is(want: &str, principal: &str) -> bool {
    match want.strip_suffix('*') {
        Some(prefix) => principal.starts_with(prefix),
        None => want == principal,
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{Authz, AuthzAction, AuthzRule};

    fn rule(action: AuthzAction) -> AuthzRule {
        AuthzRule {
            action,
            principals: Vec::new(),
            paths: Vec::new(),
            methods: Vec::new(),
            headers: Vec::new(),
            consumers: Vec::new(),
        }
    }

    fn no_headers(_: &str) -> Option<&'static [u8]> {
        None
    }

    const EVIL: &str = "spiffe://cluster.local/ns/shop/sa/evil";
    const CART: &str = "spiffe://cluster.local/ns/shop/sa/cart";

    #[test]
    fn first_matching_rule_wins_else_default() {
        let authz = Authz {
            rules: vec![
                AuthzRule {
                    principals: vec![EVIL.into()],
                    paths: vec!["/admin/".into()],
                    ..rule(AuthzAction::Deny)
                },
                AuthzRule {
                    principals: vec!["spiffe://cluster.local/ns/shop/*".into()],
                    ..rule(AuthzAction::Allow)
                },
            ],
            default: AuthzAction::Deny,
        };
        let d = |p, path| authz.decide(None, p, "GET", path, no_headers);
        assert_eq!(d(Some(EVIL), "/admin/users"), AuthzAction::Deny);
        assert_eq!(d(Some(EVIL), "/shop"), AuthzAction::Allow);
        assert_eq!(d(Some(CART), "/admin/users"), AuthzAction::Allow);
        assert_eq!(
            d(Some("spiffe://cluster.local/ns/other/sa/x"), "/"),
            AuthzAction::Deny
        );
        // No verified identity: principal rules never match.
        assert_eq!(d(None, "/admin/"), AuthzAction::Deny);
    }

    #[test]
    fn empty_rule_matches_everything_and_default_is_allow() {
        assert_eq!(
            Authz::default().decide(None, None, "POST", "/x", no_headers),
            AuthzAction::Allow
        );
        let deny_all = Authz {
            rules: vec![rule(AuthzAction::Deny)],
            default: AuthzAction::Allow,
        };
        assert_eq!(
            deny_all.decide(None, None, "GET", "/", no_headers),
            AuthzAction::Deny
        );
    }

    #[test]
    fn methods_and_headers_must_all_match() {
        let authz = Authz {
            rules: vec![AuthzRule {
                methods: vec!["GET".into(), "HEAD".into()],
                headers: vec![("x-env".into(), b"prod".to_vec())],
                ..rule(AuthzAction::Allow)
            }],
            default: AuthzAction::Deny,
        };
        let prod = |name: &str| (name == "x-env").then_some(&b"prod"[..]);
        let dev = |name: &str| (name == "x-env").then_some(&b"dev"[..]);
        assert_eq!(
            authz.decide(None, None, "GET", "/", prod),
            AuthzAction::Allow
        );
        assert_eq!(
            authz.decide(None, None, "HEAD", "/", prod),
            AuthzAction::Allow
        );
        assert_eq!(
            authz.decide(None, None, "get", "/", prod),
            AuthzAction::Deny
        );
        assert_eq!(
            authz.decide(None, None, "POST", "/", prod),
            AuthzAction::Deny
        );
        assert_eq!(authz.decide(None, None, "GET", "/", dev), AuthzAction::Deny);
        assert_eq!(
            authz.decide(None, None, "GET", "/", no_headers),
            AuthzAction::Deny
        );
    }

    #[test]
    fn a_lone_star_is_any_verified_identity() {
        let authz = Authz {
            rules: vec![AuthzRule {
                principals: vec!["*".into()],
                ..rule(AuthzAction::Allow)
            }],
            default: AuthzAction::Deny,
        };
        assert_eq!(
            authz.decide(None, Some(CART), "GET", "/", no_headers),
            AuthzAction::Allow
        );
        assert_eq!(
            authz.decide(None, None, "GET", "/", no_headers),
            AuthzAction::Deny
        );
    }
}
