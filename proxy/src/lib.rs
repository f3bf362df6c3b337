//! The sidecar role and the `ringside` command line.
//!
//! `stack` assembles the sidecar's pipeline (and hands it to the gateway role's assembly).
//! `cli` parses arguments, loads and checks configuration, starts the engine, and maps
//! signals and control requests to operations: SIGTERM/SIGINT or `drain` drain gracefully,
//! SIGHUP re-reads the file. `control` serves this process's control socket, `ctld` keeps
//! the connection to ringside-ctld, `upgrade` hands the listening sockets to a new binary,
//! `notify` speaks systemd's readiness protocol. `admin` serves the admin endpoint (metrics,
//! readiness, configuration, clusters, log level, status page).

// Nothing panics on input (ARCHITECTURE.md, "Invariants"); `unwrap_used` is the workspace's.
#![cfg_attr(
    not(test),
    deny(clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

pub mod admin;
pub mod cli;
pub mod control;
pub mod ctld;
mod footprint;
pub mod notify;
pub mod stack;
pub mod upgrade;
