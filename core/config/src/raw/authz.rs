//! `[[authz]]`: the authorization rules of an `http` listener, and the action they and a
//! listener's `authz_default` take.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `[[authz]]`: one authorization rule of an `http` listener. A listener's rules are tried
/// in file order; the first that matches a request decides; a request no rule matches gets
/// the listener's `authz_default`. Every condition given must hold; a rule without any
/// matches every request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAuthz {
    /// Required. The `http` listener the rule applies to.
    pub listener: String,
    /// Required. `"allow"` or `"deny"` (answered 403).
    pub action: FileAuthzAction,
    /// The client's verified identity (the URI SAN of its mTLS certificate) is one of these:
    /// exact strings, or a prefix when ending in `*` (`"spiffe://cluster.local/ns/shop/*"`).
    /// A request without a verified identity never matches a rule with `principals`.
    pub principals: Option<Vec<String>>,
    /// The path (without the query string) starts with one of these; each must start with
    /// `/`.
    pub paths: Option<Vec<String>>,
    /// The method is one of these tokens (case-sensitive: `"GET"`).
    pub methods: Option<Vec<String>>,
    /// Header name → value: each header must be present with exactly this first value.
    /// Names are case-insensitive.
    pub headers: Option<BTreeMap<String, String>>,
    /// Gateway role: `[[consumers]]` names; the request's consumer (as the matched route's
    /// `authn` identifies it) is one of these. A request without a consumer never matches
    /// a rule with `consumers`. When any rule of a listener has `consumers`, the listener's
    /// rules are decided after the route's `authn` instead of before routing.
    pub consumers: Option<Vec<String>>,
}

/// Values of `authz.action` and `listeners[].authz_default`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileAuthzAction {
    Allow,
    Deny,
}
