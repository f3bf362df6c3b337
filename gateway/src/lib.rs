//! The gateway role.
//!
//! `role = "gateway"` runs the pipeline assembled in [`stack`]: for now the sidecar's stages
//! unchanged, with different defaults (`workers` = number of cores instead of 1; see
//! `ringside_config::ProxySettings`). The gateway-only stages — authentication (JWT, API
//! keys), per-consumer rate limits, header/path rewriting, CORS — will live in this crate,
//! one file per stage, and be added to the role's pipeline in `stack.rs`, reusing the
//! sidecar's stages rather than copying them (STYLE.md §1).

pub mod stack;
