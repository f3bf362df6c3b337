//! Where configurations come from. Each source proposes configurations per node
//! ([`crate::desired::Proposal`]), with their provenance; the reconciler decides what they
//! make (`desired/precedence.rs`).
//!
//! - `files.rs`: the config directory (scanned and validated on its own thread);
//! - `cli.rs`: the operator's edits through ringsidectl (`endpoints`, `weights`), turned
//!   into overrides; `apply` and `rollback` are whole bases;
//! - `edit.rs`: the `toml_edit` surgery both need, comments kept.
//!
//! - `xds/`: an xDS management server (`--xds`), proposing bases like a file: per node, its
//!   listeners, routes and clusters laid after its file's other sections.

pub mod cli;
pub mod edit;
pub mod files;
pub mod xds;
