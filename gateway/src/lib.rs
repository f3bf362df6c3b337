//! The gateway role.
//!
//! `role = "gateway"` runs the pipeline assembled in [`stack`]: the sidecar's stages with the
//! gateway's own inserted at their places (client address filters, CORS, JWT and API-key
//! authentication and consumers, per-consumer and keyed rate limits, route body limits, path
//! and host rewrites, redirects; see `stack.rs` for the order and docs/gateway.md), and
//! different defaults (`workers` = number of cores instead of 1; see
//! `ringside_config::ProxySettings`).
//!
//! The gateway stages are compiled and dispatched by the engine like every stage (`Stage` is
//! one enum with static dispatch, in `core/engine/src/stage/`, one file each); this crate
//! decides where they run, reusing the sidecar's stages rather than copying them (STYLE.md
//! §1). Configuration refuses their keys unless `[proxy] role = "gateway"`, so a sidecar
//! never ignores them. Global (Redis) rate limits are not built yet.

// Nothing panics on input (ARCHITECTURE.md, "Invariants"); `unwrap_used` is the workspace's.
#![cfg_attr(
    not(test),
    deny(clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

pub mod stack;
