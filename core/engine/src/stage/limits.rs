//! `Limits`: refuses, before anything else reads it, a request that no route may serve.
//!
//! Sits first among the listener's stages. Reads the listener's `max_request_body_bytes` and
//! answers 413 for a body declared larger (Content-Length on HTTP/1.1, `content-length` on
//! HTTP/2); a body that turns out larger while it streams is cut by the body relays with the
//! same limit (`Req::body_limit`). Head limits (414, 431, 408) are the protocols' own,
//! applied while the head is read. Counted in the listener's request metrics under the
//! status it answers. (A `CONNECT` is not refused here: only `match.connect` routes take
//! one, and the pipeline answers 403 when none does.)

use ringside_codec::BodyKind;

use super::{Flow, Local, Req};
use crate::cx::error::ProxyError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) max_body: Option<u64>,
}

impl Limits {
    pub(crate) fn request<'v>(&self, req: &mut Req<'_>) -> Flow<'v> {
        if declared_over(req, self.max_body) {
            return Flow::Reply(Local::Error(ProxyError::BodyTooLarge));
        }
        req.body_limit = self.max_body;
        Flow::Next
    }
}

/// A route's `max_request_body_bytes` (gateway role): sits among the route's stages after
/// the IP filter and CORS, and lowers the limit `Limits` set (the lower of the two applies):
/// 413 for a body declared larger, and the relays cut a streamed one at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BodyLimit {
    pub(crate) max_body: u64,
}

impl BodyLimit {
    pub(crate) fn request<'v>(&self, req: &mut Req<'_>) -> Flow<'v> {
        let max = req
            .body_limit
            .map_or(self.max_body, |l| l.min(self.max_body));
        if declared_over(req, Some(max)) {
            return Flow::Reply(Local::Error(ProxyError::BodyTooLarge));
        }
        req.body_limit = Some(max);
        Flow::Next
    }
}

/// Whether the request declares a body longer than `max`.
fn declared_over(req: &Req<'_>, max: Option<u64>) -> bool {
    matches!((req.head.body(), max), (BodyKind::Length(n), Some(max)) if n > max)
}
