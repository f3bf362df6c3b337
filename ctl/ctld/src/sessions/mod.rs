//! Proxies' sessions: `registry.rs` holds every session's push state (owned by the
//! reconciler, pure), `session.rs` one connection's I/O threads.

pub mod registry;
pub mod session;
