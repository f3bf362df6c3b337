//! The sidecar's pipeline, one stage per line, in the order a request meets them.
//!
//! The engine compiles this stack against every HTTP listener and route when a worker
//! builds its view of a snapshot; a stage whose configuration is absent costs nothing. What
//! each stage does, reads and emits is in its own file under `core/engine/src/stage/`; the
//! whole path of a request is docs/life-of-a-request.md.

use ringside_engine::{ListenerStep, RouteStep, Stack, Stacks};

/// The sidecar's stages.
pub fn sidecar() -> Stack {
    Stack::new()
        // Refuse what no route may serve (a declared body over the limit) before anything
        // else reads the request; hands the body limit to the relays.
        .listener(ListenerStep::Limits)
        // The listener's [[authz]] policy decides before routing: a denied client learns
        // nothing about the routes.
        .listener(ListenerStep::Authz)
        // The listener's token bucket, after authz: refused requests take no token, so a
        // flood of them cannot starve the clients that are allowed.
        .listener(ListenerStep::RateLimit)
        // The route's token bucket comes first among its stages: a request over the limit
        // costs nothing more, and faults are injected only into admitted requests.
        .route(RouteStep::RateLimit)
        // Header edits come before the route's answer so they reach direct responses too;
        // listener edits first, then the route's.
        .route(RouteStep::HeaderEdits)
        // The route's deadline (and a gRPC client's grpc-timeout) bounds the upstream call.
        .route(RouteStep::Timeout)
        // Fault injection after the deadline is set: a fault's delay is waited inside it
        // (it counts against the route timeout), and an abort answers without forwarding.
        .route(RouteStep::Fault)
        // A direct_response route answers here, without an upstream.
        .route(RouteStep::Direct)
}

/// Both roles' stacks: the sidecar's, and the gateway's built on it.
pub fn stacks() -> Stacks {
    Stacks {
        sidecar: sidecar(),
        gateway: ringside_gateway::stack::gateway(sidecar()),
    }
}
