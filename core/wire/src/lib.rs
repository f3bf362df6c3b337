//! ringside's control-plane wire protocol, as documented in `docs/control-protocol.md`.
//!
//! ```text
//! ┌──────────────┬───────────────────────────────┐
//! │ length: u32  │ body: JSON (serde_json), one   │   length is big-endian, at most
//! │ big-endian   │ Frame {"id":…,"request"|"reply"}│   MAX_FRAME (16 MiB)
//! └──────────────┴───────────────────────────────┘
//! ```
//!
//! - [`frame`]: encoding and decoding one frame (`read_frame`, `write_frame`, `decode_body`).
//! - [`message`]: every [`Request`] and [`Reply`], closed with `deny_unknown_fields`.
//! - [`conn`]: [`Conn`], a blocking connection over a `UnixStream` (`send`, `recv`, `call`,
//!   fd passing with SCM_RIGHTS).
//! - `rollout`: the rollout's request and status shapes, and a proxy's traffic counters.
//! - [`handshake`]: the version handshake every connection starts with.
//! - [`socket`]: binding (mode 0600), peer credentials, default socket paths.
//!
//! The crate is runtime-free: blocking std I/O, no monoio, so `ctl/` and the proxy's control
//! thread share it. Nothing here panics on any byte sequence a peer sends.

// Nothing panics on input (ARCHITECTURE.md, "Invariants"); `unwrap_used` is the workspace's.
#![cfg_attr(
    not(test),
    deny(clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

pub mod conn;
pub mod error;
mod fd;
pub mod frame;
pub mod handshake;
pub mod message;
mod rollout;
pub mod socket;

pub use conn::Conn;
pub use error::WireError;
pub use frame::{decode_body, decode_len, encode, read_frame, write_frame};
pub use handshake::{
    client_handshake, client_handshake_at, is_version_refusal, server_handshake,
    server_handshake_with, HelloOk,
};
pub use message::*;
pub use socket::{
    bind_socket, check_peer, connect, default_ctld_socket, default_proxy_socket, find_socket,
    peer_uid,
};

/// The newest protocol version this build speaks; the first request of every connection
/// names the connecting side's. Version 2 added `ack.pending_restart` and
/// `node_status.pending_restart`.
pub const PROTOCOL_VERSION: u32 = 2;

/// The oldest protocol version this build still speaks: a server answers a version 1 hello
/// with version 1 and sends it nothing version 2 added.
pub const MIN_PROTOCOL_VERSION: u32 = 1;

/// Largest frame body in bytes (16 MiB). A peer that declares a larger one is disconnected.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

/// Most file descriptors one frame may carry (listening sockets during a hot upgrade).
pub const MAX_FDS: usize = 4096;

/// Environment variable through which an upgrading proxy tells the new process which
/// inherited file descriptor is its end of the upgrade connection (see the upgrade sequence
/// in `docs/control-protocol.md`).
pub const UPGRADE_FD_ENV: &str = "RINGSIDE_UPGRADE_FD";

/// A node id names a file (`<id>.toml`) and a state directory, so it is restricted to
/// 1 to 128 characters among `A-Z a-z 0-9 - _ .`, not starting with `.`.
pub fn validate_node_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 128 {
        return Err(format!(
            "invalid node id {id:?}: must be 1 to 128 characters"
        ));
    }
    if id.starts_with('.') {
        return Err(format!("invalid node id {id:?}: must not start with '.'"));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "invalid node id {id:?}: character {c:?} not allowed (use A-Z a-z 0-9 - _ .)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids() {
        assert!(validate_node_id("web-1.prod_a").is_ok());
        assert!(validate_node_id("").is_err());
        assert!(validate_node_id(".hidden").is_err());
        assert!(validate_node_id("a/b").is_err());
        assert!(validate_node_id("..").is_err());
        assert!(validate_node_id(&"x".repeat(129)).is_err());
    }
}
