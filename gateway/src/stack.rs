//! The merged gateway-sidecar's pipeline: the sidecar's stages with the gateway's added at
//! their places, one stage per line.
//!
//! `role = "gateway"` runs this stack. Each gateway stage compiles to nothing on a route
//! that does not configure it, so a gateway route without gateway keys costs what a sidecar
//! route does. The stages live in `core/engine/src/stage/` (the engine dispatches stages
//! statically, through one enum); this file decides where they run. A request of a gateway
//! route meets:
//!
//! ```text
//! listener: Limits, IpFilter, Authz, RateLimit
//! route:    IpFilter, Cors, AuthN, Authz, ConsumerRateLimit, RateLimit, BodyLimit, Rewrite,
//!           HeaderEdits, Timeout, Fault, Direct, Redirect
//! ```
//! The listener's `Authz` moves to the route's, after `AuthN`, on a listener whose
//! `[[authz]]` rules name consumers (only `AuthN` knows the consumer).
//! `AuthN` checks a route's JWT (`stage/jwt.rs`) and API key. The route's `RateLimit` step is
//! a global limit kept in Redis when its `rate_limit` names a `[[redis]]`
//! (`stage/global_limit.rs`).

use ringside_engine::{ListenerStep, RouteStep, Stack};

/// The gateway's stages, built on the sidecar's (`ringside_proxy::stack::sidecar`).
pub fn gateway(sidecar: Stack) -> Stack {
    sidecar
        // The listener's address filter first of all but the limits that need no lookup:
        // a refused client learns nothing of the policy or the routes.
        .listener_after(ListenerStep::Limits, ListenerStep::IpFilter)
        // The route's address filter first of the route's stages: a refused client is
        // answered 403 before anything else of the route runs, and takes no token.
        .route_before(RouteStep::RateLimit, RouteStep::IpFilter)
        // CORS before any authentication: a preflight carries no credentials and is
        // answered here (204 with the allow fields, or 403), never forwarded.
        .route_after(RouteStep::IpFilter, RouteStep::Cors)
        // Authentication (a JWT, an API key) before any token is taken: a request that is
        // nobody's takes none of the route's bucket. Also removes a client's own
        // `x-consumer-name` (and the claim headers of the route's JWT providers).
        .route_after(RouteStep::Cors, RouteStep::AuthN)
        // `[[authz]]` rules that name consumers, once the consumer is known (a listener
        // without such rules decides before routing, as the sidecar does).
        .route_after(RouteStep::AuthN, RouteStep::Authz)
        // The consumer's own bucket right after it is known and allowed, before the route's
        // (which may be keyed by the consumer): a request its consumer may not make takes
        // no token of the route (and counts the consumer's requests).
        .route_after(RouteStep::Authz, RouteStep::ConsumerRateLimit)
        // The route's body limit lowers the listener's before anything is forwarded.
        .route_after(RouteStep::RateLimit, RouteStep::BodyLimit)
        // The upstream path and host, before the header edits, so that configured edits
        // can still change what the rewrite adds (x-original-path).
        .route_after(RouteStep::BodyLimit, RouteStep::Rewrite)
        // A redirect route answers last, like a direct response, after the header edits
        // and CORS, whose response fields it then carries.
        .route_after(RouteStep::Direct, RouteStep::Redirect)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateway_stack_runs_every_gateway_key() {
        let sidecar = Stack::new()
            .listener(ListenerStep::Limits)
            .route(RouteStep::RateLimit)
            .route(RouteStep::HeaderEdits)
            .route(RouteStep::Direct);
        assert!(sidecar.check_gateway().is_err());
        assert_eq!(gateway(sidecar).check_gateway(), Ok(()));
    }
}
