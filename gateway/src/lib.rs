//! The gateway role.
//!
//! Today `role = "gateway"` runs the same HTTP/1.1 and TCP pipeline as the sidecar and
//! differs only in its defaults (`workers` = number of cores instead of 1; see
//! `ringside_config::ProxySettings`). The gateway-only stages — authentication (JWT, API
//! keys), per-consumer rate limits, header/path rewriting, CORS — will live in this crate,
//! one file per stage, and be added to the role's pipeline here, reusing the sidecar's stages
//! rather than copying them (STYLE.md §1). This crate deliberately has no code until the
//! first of those stages exists.
