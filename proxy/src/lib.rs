//! The sidecar role and the `ringside` command line.
//!
//! `cli` parses arguments, loads and checks configuration, starts the engine, and maps
//! signals to operations: SIGTERM/SIGINT drain gracefully, SIGHUP re-reads the file.

pub mod cli;
