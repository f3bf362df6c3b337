//! ringside's configuration: one way in, one way out.
//!
//! ```text
//! TOML text ──parse──▶ raw types (`raw`, closed with deny_unknown_fields)
//!           ──validate()──▶ `Config` (model, immutable) ──▶ `Snapshot` (+ generation)
//! ```
//!
//! This crate never depends on the runtime: `ctl/`, fuzz targets and config tests build
//! without monoio.

mod check;
pub mod error;
mod hash;
mod matching;
pub mod model;
pub mod raw;
mod read;
mod validate;

pub use error::{ConfigError, ConfigErrors};
pub use model::*;

/// The configuration `ringside run` serves when given no file (documented in the README).
pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

/// Parses and validates TOML text. On failure returns **every** error found, each with the
/// path of the offending value (`clusters[1].endpoints[0]: invalid socket address "10.0.0.1"`).
pub fn parse(text: &str) -> Result<Config, ConfigErrors> {
    validate::parse_and_validate(text)
}

/// Reads and parses a file; an unreadable file is one error whose path is the file name.
pub fn load_file(path: &std::path::Path) -> Result<Config, ConfigErrors> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text),
        Err(e) => Err(ConfigErrors::single(
            path.display().to_string(),
            format!("cannot read: {e}"),
        )),
    }
}

/// A published configuration: what workers read per request.
#[derive(Debug)]
pub struct Snapshot {
    /// Increases by one on every change a process applies; starts at 1.
    pub generation: u64,
    pub config: Config,
}
