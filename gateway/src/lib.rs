//! The gateway role.
//!
//! `role = "gateway"` runs the pipeline assembled in [`stack`]: the sidecar's stages with the
//! gateway's request shaping inserted (client address filters, CORS, route body limits,
//! path and host rewrites, redirects; docs/gateway.md), and different defaults (`workers` =
//! number of cores instead of 1; see `ringside_config::ProxySettings`). The stages are
//! compiled and dispatched by the engine (`core/engine/src/stage/`, one file each); this
//! crate places them, reusing the sidecar's stages rather than copying them (STYLE.md §1).
//! Authentication (JWT, API keys), consumers and per-consumer or global rate limits are not
//! built yet.

pub mod stack;
