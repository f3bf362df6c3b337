//! `[[authz]]` rules: the listener they belong to and their conditions.

use super::Validator;
use crate::check;
use crate::model::{AuthzAction, AuthzRule};
use crate::raw::{FileAuthz, FileAuthzAction};

pub(super) fn action(a: FileAuthzAction) -> AuthzAction {
    match a {
        FileAuthzAction::Allow => AuthzAction::Allow,
        FileAuthzAction::Deny => AuthzAction::Deny,
    }
}

impl Validator {
    /// Identity lists at key `key` (authz rules' and route matches' `principals`, a TLS
    /// listener's `client_identities`): exact identities, or prefixes ending in `*`.
    pub(super) fn principals(&mut self, key: &str, list: Option<&Vec<String>>) -> Vec<String> {
        let principals = list.cloned().unwrap_or_default();
        for (j, principal) in principals.iter().enumerate() {
            let star = principal.find('*');
            let bad_star = star.is_some_and(|s| s + 1 != principal.len());
            let bad_char = principal
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control());
            if principal.is_empty() || bad_star || bad_char {
                self.err(
                    format!("{key}[{j}]"),
                    format!(
                        "invalid principal {principal:?}: an identity such as \"spiffe://cluster.local/ns/NS/sa/SA\", or a prefix ending in \"*\""
                    ),
                );
            }
        }
        principals
    }

    /// Rule `i` with every condition checked (its listener is resolved by the caller).
    pub(super) fn authz_rule(&mut self, i: usize, a: &FileAuthz) -> Option<AuthzRule> {
        let p = format!("authz[{i}]");
        self.clean(|v| {
            let principals = v.principals(&format!("{p}.principals"), a.principals.as_ref());
            let paths = a.paths.clone().unwrap_or_default();
            for (j, path) in paths.iter().enumerate() {
                if !path.starts_with('/') {
                    v.err(
                        format!("{p}.paths[{j}]"),
                        format!("must start with \"/\", got {path:?}"),
                    );
                }
            }
            let methods = a.methods.clone().unwrap_or_default();
            for (j, method) in methods.iter().enumerate() {
                if !check::is_token(method) {
                    v.err(
                        format!("{p}.methods[{j}]"),
                        format!("invalid method {method:?}: must be an HTTP token such as \"GET\""),
                    );
                }
            }
            let headers = v.header_conditions(&p, a.headers.as_ref());
            AuthzRule {
                action: action(a.action),
                principals,
                paths,
                methods,
                headers,
                // Set by `authz_consumers` (validate/consumers.rs).
                consumers: Vec::new(),
            }
        })
    }
}
