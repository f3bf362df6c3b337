//! `Direct`: a route whose action is `direct_response` answers here, without an upstream.
//!
//! Sits last among a route's stages, after the header edits (so the route's response
//! headers apply to its direct answers too). Reads the route's `direct_response` (status,
//! body, content type). The answer is written by `answer.rs` for every protocol: no body and
//! no `Content-Length` on 204, no body on 304 and HEAD.

use ringside_config::DirectResponse;

use super::{Flow, Local, Req};

#[derive(Debug, Clone)]
pub(crate) struct Direct {
    pub(crate) response: DirectResponse,
}

impl PartialEq for Direct {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (&self.response, &other.response);
        a.status == b.status && a.body == b.body && a.content_type == b.content_type
    }
}

impl Direct {
    pub(crate) fn request<'v>(&'v self, _req: &mut Req<'_>) -> Flow<'v> {
        Flow::Reply(Local::Direct(&self.response))
    }
}
