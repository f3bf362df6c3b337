//! `Cors`: a route's `[routes.cors]` (gateway role): browsers' cross-origin requests.
//!
//! Sits among a gateway route's stages before any authentication (a preflight carries no
//! credentials), right after the IP filter. A preflight (`OPTIONS` with `Origin` and
//! `Access-Control-Request-Method`) never goes upstream: from an allowed origin it is
//! answered 204 here (`Local::Direct` of an empty 204) and the response hook adds the allow
//! fields (`access-control-allow-origin` echoing the origin, `-allow-methods`,
//! `-allow-headers`, `-max-age`, `-allow-credentials`, `vary: origin`); from any other
//! origin it is answered 403 without them (gRPC PERMISSION_DENIED). Any other request goes
//! on; its response, when the origin is allowed, gets `access-control-allow-origin`,
//! `-expose-headers`, `-allow-credentials` (each replacing the upstream's) and `vary:
//! origin` (beside the upstream's `vary`); a disallowed origin gets nothing added. Reads the
//! route's `ringside_config::Cors`. Counted in `ringside_gateway_events_total` as
//! `cors_preflight` (answered) and `cors_origin_rejected` (a request whose origin is not
//! allowed, preflight or not).

use bytes::Bytes;
use ringside_codec::{Edits, RequestHead};
use ringside_config::DirectResponse;

use super::{Flow, Local, Req};
use crate::cx::error::ProxyError;

#[derive(Debug, Clone)]
pub(crate) struct Cors {
    pub(crate) route: Box<str>,
    pub(crate) policy: ringside_config::Cors,
    /// `max_age_s` as text.
    max_age: Option<Bytes>,
    /// The policy's lists as the fields carry them (empty: the field is not sent).
    allow_methods: Bytes,
    allow_headers: Bytes,
    expose_headers: Bytes,
    /// The preflight's answer: 204, no body.
    preflight: DirectResponse,
}

impl PartialEq for Cors {
    fn eq(&self, other: &Self) -> bool {
        self.route == other.route && self.policy == other.policy
    }
}

/// `OPTIONS` with `Origin` and `Access-Control-Request-Method`.
fn is_preflight(head: &RequestHead) -> bool {
    head.method() == "OPTIONS"
        && head.header("origin").is_some()
        && head.header("access-control-request-method").is_some()
}

impl Cors {
    pub(crate) fn compile(route: &str, policy: &ringside_config::Cors) -> Cors {
        Cors {
            route: route.into(),
            policy: policy.clone(),
            max_age: policy.max_age_s.map(|s| Bytes::from(s.to_string())),
            allow_methods: Bytes::copy_from_slice(policy.allow_methods.as_bytes()),
            allow_headers: Bytes::copy_from_slice(policy.allow_headers.as_bytes()),
            expose_headers: Bytes::copy_from_slice(policy.expose_headers.as_bytes()),
            preflight: DirectResponse::new(204, bytes::Bytes::new(), String::new()),
        }
    }

    pub(crate) fn request<'v>(&'v self, req: &mut Req<'_>) -> Flow<'v> {
        let head = req.head;
        let Some(origin) = head.header("origin") else {
            return Flow::Next;
        };
        let allowed = self.policy.allows(origin);
        if !allowed {
            req.stats.gateway(&self.route, "cors_origin_rejected");
        }
        if !is_preflight(head) {
            return Flow::Next;
        }
        if allowed {
            req.stats.gateway(&self.route, "cors_preflight");
            return Flow::Reply(Local::Direct(&self.preflight));
        }
        Flow::Reply(Local::Error(ProxyError::Refused(
            "CORS preflight from an origin this route does not allow",
        )))
    }

    /// The CORS fields of the response to a request from an allowed origin.
    pub(crate) fn response(&self, req: &Req<'_>, edits: &mut Edits) {
        let head = req.head;
        let Some(origin) = head.header("origin") else {
            return;
        };
        if !self.policy.allows(origin) {
            return;
        }
        let preflight = is_preflight(head);
        edits.overwrite(
            Bytes::from_static(b"access-control-allow-origin"),
            Bytes::copy_from_slice(origin),
        );
        if self.policy.allow_credentials {
            edits.overwrite(
                Bytes::from_static(b"access-control-allow-credentials"),
                Bytes::from_static(b"true"),
            );
        }
        let lists: &[(&'static str, &Bytes)] = if preflight {
            &[
                ("access-control-allow-methods", &self.allow_methods),
                ("access-control-allow-headers", &self.allow_headers),
            ]
        } else {
            &[("access-control-expose-headers", &self.expose_headers)]
        };
        for (name, value) in lists {
            if !value.is_empty() {
                edits.overwrite(Bytes::from_static(name.as_bytes()), Bytes::clone(value));
            }
        }
        if let (true, Some(age)) = (preflight, &self.max_age) {
            edits.overwrite(
                Bytes::from_static(b"access-control-max-age"),
                Bytes::clone(age),
            );
        }
        edits
            .add
            .push((Bytes::from_static(b"vary"), Bytes::from_static(b"origin")));
    }
}
