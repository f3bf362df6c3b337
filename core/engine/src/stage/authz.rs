//! `Authz`: the listener's `[[authz]]` policy decides before routing, so a denied client
//! learns nothing about the routes.
//!
//! Sits after `Limits` among the listener's stages. Reads the listener's rules and
//! `authz_default`; matches on the client's verified identity (mesh mTLS), method, path and
//! headers. A denial answers 403 (gRPC: PERMISSION_DENIED) and is counted in
//! `ringside_authz_denied_total`.
//!
//! Gateway role: a rule may name consumers, whom only the route's `AuthN` knows. A listener
//! with such a rule decides its whole policy (the same rules, in order) as a route stage
//! right after `AuthN` instead (`RouteStep::Authz`), as Envoy's RBAC runs after
//! `jwt_authn` and Kong's ACL after its auth plugins.

use ringside_config::AuthzAction;

use super::{Flow, Local, Req};
use crate::cx::error::ProxyError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Authz {
    pub(crate) policy: ringside_config::Authz,
}

impl Authz {
    pub(crate) fn request<'v>(&self, req: &mut Req<'_>) -> Flow<'v> {
        let head = req.head;
        let decision = self.policy.decide(
            req.consumer.as_ref().map(|c| c.id),
            req.conn.identity.as_deref(),
            head.method(),
            head.path(),
            |n| head.header(n),
        );
        match decision {
            AuthzAction::Allow => Flow::Next,
            AuthzAction::Deny => {
                req.stats.authz_denied.set(req.stats.authz_denied.get() + 1);
                Flow::Reply(Local::Error(ProxyError::Forbidden))
            }
        }
    }
}
