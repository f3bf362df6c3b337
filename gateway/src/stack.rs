//! The merged gateway-sidecar's pipeline: the sidecar's stages with the gateway's added at
//! their places, one stage per line.
//!
//! `role = "gateway"` runs this stack. Today it is the sidecar's unchanged; the gateway
//! stages (JWT and API-key authentication, rate limits, rewrites, CORS) go in here as they
//! are built, each between the sidecar stages it must follow and precede.

use ringside_engine::Stack;

/// The gateway's stages, built on the sidecar's (`ringside_proxy::stack::sidecar`).
pub fn gateway(sidecar: Stack) -> Stack {
    // Nothing of the gateway's own yet: the sidecar's stages serve the gateway role as they
    // are (limits, authz, rate limits, header edits, timeout, fault injection, direct
    // responses).
    sidecar
}
