//! The gateway role.
//!
//! `role = "gateway"` runs the pipeline assembled in [`stack`]: the sidecar's stages with
//! the gateway's own added at their places (API-key authentication and consumers,
//! per-consumer rate limits; see `stack.rs` for the order), and different defaults
//! (`workers` = number of cores instead of 1; see `ringside_config::ProxySettings`).
//!
//! The gateway stages are compiled by the engine like every stage (`Stage` is one enum with
//! static dispatch, in `core/engine/src/stage/`: `authn.rs`, `consumer_limit.rs`, and the
//! keyed buckets of `ratelimit.rs`); this crate decides where they run. Configuration
//! refuses their keys unless `[proxy] role = "gateway"`, so a sidecar never ignores them.

pub mod stack;
