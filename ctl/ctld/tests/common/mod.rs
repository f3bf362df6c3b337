//! The daemon's tests use the shared harness (`ctl/testkit`): the real `ringside-ctld` on
//! temporary directories, a CLI over the wire protocol, fake proxies.

#![allow(dead_code, unused_imports, clippy::unwrap_used)]

pub use ringside_ctl_testkit::*;
use ringside_wire::Reply;

pub fn apply(ctld: &Ctld, node: Option<&str>, text: &str) -> Reply {
    ctld.apply(node, text)
}
