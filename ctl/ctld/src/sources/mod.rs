//! Where configurations come from. Each source proposes configurations per node
//! ([`crate::desired::Proposal`]), with their provenance; the reconciler decides what they
//! make (`desired/precedence.rs`).
//!
//! - `files.rs`: the config directory (scanned and validated on its own thread);
//! - `cli.rs`: the operator's edits through ringsidectl (`endpoints`, `weights`), turned
//!   into overrides; `apply` and `rollback` are whole bases;
//! - `edit.rs`: the `toml_edit` surgery both need, comments kept.
//!
//! xDS, when it comes, is one more source here (`xds/`), proposing bases like a file.

pub mod cli;
pub mod edit;
pub mod files;
