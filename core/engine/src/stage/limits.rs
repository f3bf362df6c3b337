//! `Limits`: refuses, before anything else reads it, a request that no route may serve.
//!
//! Sits first among the listener's stages. Reads the listener's `max_request_body_bytes` and
//! answers 413 for a body declared larger (Content-Length on HTTP/1.1, `content-length` on
//! HTTP/2); a body that turns out larger while it streams is cut by the body relays with the
//! same limit (`Req::body_limit`). Answers 405 to `CONNECT` (ringside is not a forward proxy),
//! except an RFC 8441 extended CONNECT for a WebSocket over HTTP/2. Head limits (414, 431,
//! 408) are the protocols' own, applied while the head is read. Counted in the listener's
//! request metrics under the status it answers.

use ringside_codec::BodyKind;

use super::{Flow, Local, Req};
use crate::cx::error::ProxyError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) max_body: Option<u64>,
}

impl Limits {
    pub(crate) fn request<'v>(&self, req: &mut Req<'_>) -> Flow<'v> {
        let head = req.head;
        if head.method() == "CONNECT" && !req.websocket {
            return Flow::Reply(Local::Error(ProxyError::MethodNotAllowed));
        }
        if let (BodyKind::Length(n), Some(max)) = (head.body(), self.max_body) {
            if n > max {
                return Flow::Reply(Local::Error(ProxyError::BodyTooLarge));
            }
        }
        req.body_limit = self.max_body;
        Flow::Next
    }
}
