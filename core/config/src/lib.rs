//! ringside's configuration: one way in, one way out.
//!
//! ```text
//! TOML text ──parse──▶ raw types (`raw`, closed with deny_unknown_fields)
//!           ──validate()──▶ `Config` (model, immutable) ──▶ `Snapshot` (+ generation)
//! ```
//!
//! This crate never depends on the runtime: `ctl/`, fuzz targets and config tests build
//! without monoio.

// Nothing panics on input (ARCHITECTURE.md, "Invariants"); `unwrap_used` is the workspace's.
#![cfg_attr(
    not(test),
    deny(clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

mod authz;
mod check;
pub mod consumers;
pub mod destination;
pub mod dns;
pub mod duration;
pub mod edge;
pub mod error;
mod hash;
pub mod headers;
pub mod jwt;
pub mod labels;
mod matching;
mod material;
pub mod model;
pub mod raw;
mod read;
pub mod redact;
pub mod retry;
pub mod tls;
mod validate;

pub use consumers::{ApiKeyAuthn, Authn, Consumer, ConsumerId, Consumers, RateLimitKey};
pub use destination::{Child, Children, Hello, Kind, Pick, ServerName, Transport};
pub use dns::{DnsMode, DnsSettings, NamedEndpoint};
pub use edge::{Cidr, Cors, Edge, IpFilter, Origin, PathRewrite, Redirect, RedirectPath, Rewrite};
pub use error::{ConfigError, ConfigErrors};
pub use headers::{HeaderAction, HeaderAdd, HeaderEdits, TemplateInput, ValuePart, ValueTemplate};
pub use jwt::{ClaimHeader, JwksSource, JwtProvider, KeySet, RemoteJwks, TokenSource};
pub use model::*;
pub use retry::{HeaderValueMatch, RetryBudget, RetryOn, RetryPolicy, RetryReason};
pub use tls::{CertKey, ListenerTls, MeshIdentity, MtlsMode, UpstreamMtls, UpstreamTls};

use std::path::{Path, PathBuf};

/// The configuration `ringside run` serves when given no file (documented in the README).
pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

/// Parses and validates TOML text. On failure returns **every** error found, each with the
/// path of the offending value (`clusters[1].endpoints[0]: invalid socket address "10.0.0.1"`).
/// Relative certificate, key and CA paths resolve against the current directory.
pub fn parse(text: &str) -> Result<Config, ConfigErrors> {
    validate::parse_and_validate(text, std::env::current_dir().ok())
}

/// Like [`parse`], with relative certificate, key and CA paths resolved against `base_dir`
/// (made absolute against the current directory when relative).
pub fn parse_in(text: &str, base_dir: &Path) -> Result<Config, ConfigErrors> {
    validate::parse_and_validate(text, Some(absolute(base_dir)))
}

/// Reads and parses a file; an unreadable file is one error whose path is the file name.
/// Relative certificate, key and CA paths resolve against the file's directory.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            parse_in(&text, dir)
        }
        Err(e) => Err(ConfigErrors::single(
            path.display().to_string(),
            format!("cannot read: {e}"),
        )),
    }
}

/// Validates `config`'s own text again with the same base directory, reading every
/// certificate, key and CA file anew: the configuration to publish after files were
/// rotated (compare [`Config::material_hash`] to see whether anything changed).
pub fn reload_material(config: &Config) -> Result<Config, ConfigErrors> {
    validate::parse_and_validate(&config.source, config.base_dir.clone())
}

fn absolute(dir: &Path) -> PathBuf {
    if dir.is_absolute() {
        return dir.to_path_buf();
    }
    match std::env::current_dir() {
        Ok(cwd) => cwd.join(dir),
        Err(_) => dir.to_path_buf(),
    }
}

/// A published configuration: what workers read per request.
#[derive(Debug)]
pub struct Snapshot {
    /// Increases by one on every change a process applies; starts at 1.
    pub generation: u64,
    pub config: Config,
}
