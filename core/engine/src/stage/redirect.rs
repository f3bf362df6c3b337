//! `Redirect`: a route whose action is `redirect` answers here with a `Location` built from
//! the request (gateway role).
//!
//! Sits last among a gateway route's stages, after the header edits and CORS, so their
//! response fields reach the redirect too. Reads the route's `redirect`
//! (`ringside_config::Redirect::location`: scheme, host, port, path or prefix replaced as
//! given, the query kept unless `strip_query`) and whether the connection is TLS (the
//! request's own scheme). The answer (`Local::Redirect`: the status, `location`, an empty
//! body) is written by `answer.rs` for every protocol. Counted in
//! `ringside_gateway_events_total{event="redirect"}`.

use super::{Flow, Local, Req};

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Redirect {
    pub(crate) route: Box<str>,
    pub(crate) rule: ringside_config::Redirect,
}

impl Redirect {
    pub(crate) fn request<'v>(&self, req: &mut Req<'_>) -> Flow<'v> {
        let head = req.head;
        let location = self.rule.location(
            req.conn.tls,
            head.authority(),
            head.path(),
            head.path_and_query(),
        );
        req.stats.gateway(&self.route, "redirect");
        Flow::Reply(Local::Redirect {
            status: self.rule.status,
            location,
        })
    }
}
