//! The sidecar role and the `ringside` command line.
//!
//! `stack` assembles the sidecar's pipeline (and hands it to the gateway role's assembly).
//! `cli` parses arguments, loads and checks configuration, starts the engine, and maps
//! signals and control requests to operations: SIGTERM/SIGINT or `drain` drain gracefully,
//! SIGHUP re-reads the file. `start` starts a configured process (from a file, or ctld's
//! first push, for which `bootstrap` waits); `settings` are the process settings that only a
//! restart changes. `control` serves this process's control socket, `ctld` keeps
//! the connection to ringside-ctld, `upgrade` hands the listening sockets to a new binary,
//! `notify` speaks systemd's readiness protocol. `admin` serves the admin endpoint (metrics,
//! readiness, configuration, clusters, log level, status page).

// Nothing panics on input (ARCHITECTURE.md, "Invariants"); `unwrap_used` is the workspace's.
#![cfg_attr(
    not(test),
    deny(clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

pub mod admin;
mod bootstrap;
pub mod cli;
pub mod control;
pub mod ctld;
mod footprint;
pub mod notify;
mod settings;
pub mod stack;
mod start;
pub mod upgrade;
