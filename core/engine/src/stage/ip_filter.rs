//! `IpFilter`: a listener's or a route's `ip_allow` and `ip_deny` (gateway role).
//!
//! Sits among the listener's stages right after `Limits` (before `[[authz]]` and routing;
//! counted under the route `""`), and first among a gateway route's own stages, right after
//! the route's token bucket.
//! Reads the route's address blocks (`ringside_config::IpFilter`: deny checked first, then
//! allow when given) and the connection's peer address (`Req::conn.peer`; a forwarded
//! `X-Forwarded-For` is never trusted here). A refused client is answered 403 (gRPC
//! PERMISSION_DENIED) and counted in `ringside_gateway_events_total{event="ip_denied"}`.

use super::{Flow, Local, Req};
use crate::cx::error::ProxyError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IpFilter {
    pub(crate) route: Box<str>,
    pub(crate) filter: ringside_config::IpFilter,
}

impl IpFilter {
    pub(crate) fn request<'v>(&self, req: &mut Req<'_>) -> Flow<'v> {
        if self.filter.allows(req.conn.peer.ip()) {
            return Flow::Next;
        }
        req.stats.gateway(&self.route, "ip_denied");
        Flow::Reply(Local::Error(ProxyError::Refused(
            if self.route.is_empty() {
                "the client's address is not allowed on this listener"
            } else {
                "the client's address is not allowed on this route"
            },
        )))
    }
}
