//! `Rewrite`: a route's `rewrite` (gateway role): the path (`prefix`, `regex`) and the host
//! the upstream request carries.
//!
//! Sits among a gateway route's stages after the checks that may refuse the request (IP
//! filter, CORS, body limit) and before the header edits, so configured edits can still
//! change or remove what it adds. Builds the request's upstream head once
//! (`RequestHead::retarget`: the new target with the query kept, the new authority, every
//! other field as it came) into `Req::rewritten`, which the exchange carries to whichever
//! upstream client writes it (HTTP/1.1 or HTTP/2, from either downstream protocol). When the
//! path changes, the original path and query go upstream in `x-original-path` (replacing
//! any the client sent). Route matching and the other stages keep seeing the request as it
//! came. No metrics; a rewritten head the codec refuses (none the configuration allows)
//! answers 400.

use super::{Flow, Local, Req};
use crate::cx::error::ProxyError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rewrite {
    pub(crate) rule: ringside_config::Rewrite,
}

impl Rewrite {
    pub(crate) fn request<'v>(&self, req: &mut Req<'_>) -> Flow<'v> {
        // What the upstream would get so far (an earlier stage may have changed the target:
        // a credential taken out of the query).
        let head = req.upstream_head();
        let target = self.rule.target(head.path(), head.path_and_query());
        if target.is_none() && self.rule.host.is_none() {
            return Flow::Next;
        }
        let original = head.path_and_query().to_owned();
        match head.retarget(target.as_deref(), self.rule.host.as_deref()) {
            Ok(rewritten) => req.rewritten = Some(Box::new(rewritten)),
            Err(e) => return Flow::Reply(Local::Error(ProxyError::from(e))),
        }
        if target.is_some() {
            req.edits.overwrite(
                bytes::Bytes::from_static(b"x-original-path"),
                bytes::Bytes::copy_from_slice(original.as_bytes()),
            );
        }
        Flow::Next
    }
}
