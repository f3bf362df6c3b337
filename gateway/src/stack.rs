//! The merged gateway-sidecar's pipeline: the sidecar's stages with the gateway's added at
//! their places, one stage per line.
//!
//! `role = "gateway"` runs this stack: every sidecar stage (limits, authz, rate limits,
//! header edits, timeout, fault injection, direct responses), and the gateway's own stages
//! each between the sidecar stages it must follow and precede. A route's stages in a
//! gateway, in order:
//!
//! ```text
//! (CORS preflight) ─▶ AuthN ─▶ ConsumerRateLimit ─▶ RateLimit ─▶ HeaderEdits ─▶ Timeout ─▶ Fault ─▶ Direct
//! ```

use ringside_engine::{RouteStep, Stack};

/// The gateway's stages, built on the sidecar's (`ringside_proxy::stack::sidecar`).
pub fn gateway(sidecar: Stack) -> Stack {
    sidecar
        // Authentication before any token is taken: a request that is nobody's takes none of
        // the route's bucket. Inserted right before the route's rate limit, so that a stage
        // put in front of it earlier (a CORS preflight, which carries no credential) stays in
        // front. Also removes a client's own `x-consumer-name` on every gateway route.
        .route_before(RouteStep::RateLimit, RouteStep::AuthN)
        // The consumer's own bucket right after it is known, before the route's: a request
        // its consumer may not make takes no token of the route (and counts the consumer's
        // requests).
        .route_after(RouteStep::AuthN, RouteStep::ConsumerRateLimit)
}
