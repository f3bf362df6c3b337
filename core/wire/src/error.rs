//! The one error type of the wire protocol.

use std::io;

/// Everything that can go wrong on a control connection. After any variant but
/// [`WireError::Remote`] the connection should be closed: the stream may be mid-frame.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The peer closed the connection (at a frame boundary).
    #[error("connection closed by peer")]
    Closed,
    /// No frame within the connection's read timeout.
    #[error("timed out waiting for the peer")]
    Timeout,
    /// A declared frame length above [`crate::MAX_FRAME`].
    #[error("frame of {len} bytes exceeds the limit of {max} bytes", max = crate::MAX_FRAME)]
    FrameTooLarge { len: usize },
    /// The body is not a valid frame (bad JSON, unknown message, missing field…).
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// A valid frame that the protocol does not allow here (wrong id, request instead of reply…).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The peers speak different protocol versions.
    #[error("unsupported protocol version {theirs} (this side speaks {min} to {ours})", min = crate::MIN_PROTOCOL_VERSION)]
    VersionMismatch { ours: u32, theirs: u32 },
    /// The connecting process's uid is neither root nor ours.
    #[error("peer uid {uid} is not allowed (only root and uid {ours})")]
    PeerRejected { uid: u32, ours: u32 },
    /// The peer answered with [`crate::Reply::Error`].
    #[error("{}", remote_text(.message, .errors))]
    Remote {
        message: String,
        errors: Vec<String>,
    },
}

fn remote_text(message: &str, errors: &[String]) -> String {
    let mut s = message.to_owned();
    for e in errors {
        s.push('\n');
        s.push_str(e);
    }
    s
}

impl WireError {
    /// Maps a read error: a timeout becomes [`WireError::Timeout`], a clean EOF [`WireError::Closed`].
    pub(crate) fn from_read(e: io::Error) -> WireError {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => WireError::Timeout,
            io::ErrorKind::UnexpectedEof => WireError::Closed,
            _ => WireError::Io(e),
        }
    }
}

/// `Result` with [`WireError`].
pub type Result<T, E = WireError> = std::result::Result<T, E>;
