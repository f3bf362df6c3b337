//! The version handshake: the first request on every connection is `Hello`, from the side
//! that connected; the other side answers `HelloOk` or, for another protocol version, an
//! `Error` ("unsupported protocol version N (this side speaks 1)") and closes.

use crate::conn::Conn;
use crate::error::{Result, WireError};
use crate::message::{Frame, Peer, Reply, Request};
use crate::PROTOCOL_VERSION;

/// What the server said in its `HelloOk`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloOk {
    pub version: u32,
    /// The server's software and version, e.g. `"ringside-ctld 0.1.0"`.
    pub server: String,
}

/// Says hello as `peer`. An `Error` reply (e.g. a version mismatch) is [`WireError::Remote`].
pub fn client_handshake(conn: &mut Conn, peer: Peer) -> Result<HelloOk> {
    let reply = conn.call(Request::Hello {
        version: PROTOCOL_VERSION,
        peer,
    })?;
    match reply.check()? {
        Reply::HelloOk { version, server } if version == PROTOCOL_VERSION => {
            Ok(HelloOk { version, server })
        }
        Reply::HelloOk { version, .. } => Err(WireError::VersionMismatch {
            ours: PROTOCOL_VERSION,
            theirs: version,
        }),
        other => Err(WireError::Protocol(format!(
            "hello_ok expected, got {}",
            other.name()
        ))),
    }
}

/// Waits for the peer's `Hello` and answers it, naming this side `server` (e.g.
/// `"ringside-ctld 0.1.0"`). On a wrong version or a first frame that is not `Hello`, the
/// peer is told why and the error is returned: close the connection then.
pub fn server_handshake(conn: &mut Conn, server: &str) -> Result<Peer> {
    server_handshake_with(conn, server, |_| Ok(()))
}

/// Like [`server_handshake`], with a check of the peer before accepting it: when `admit`
/// returns `Err(message)`, the peer is answered `error` with that message and the call
/// returns [`WireError::Protocol`].
pub fn server_handshake_with(
    conn: &mut Conn,
    server: &str,
    admit: impl FnOnce(&Peer) -> std::result::Result<(), String>,
) -> Result<Peer> {
    match conn.recv()? {
        Frame::Request {
            id,
            request: Request::Hello { version, peer },
        } => {
            if version != PROTOCOL_VERSION {
                let err = WireError::VersionMismatch {
                    ours: PROTOCOL_VERSION,
                    theirs: version,
                };
                // Best effort: the peer may already be gone.
                let _ = conn.reply(id, Reply::error(err.to_string()));
                return Err(err);
            }
            if let Err(message) = admit(&peer) {
                let _ = conn.reply(id, Reply::error(message.clone()));
                return Err(WireError::Protocol(message));
            }
            conn.reply(
                id,
                Reply::HelloOk {
                    version: PROTOCOL_VERSION,
                    server: server.to_owned(),
                },
            )?;
            Ok(peer)
        }
        Frame::Request { id, request } => {
            let msg = format!("the first request must be hello, got {}", request.name());
            let _ = conn.reply(id, Reply::error(msg.clone()));
            Err(WireError::Protocol(msg))
        }
        Frame::Reply { reply, .. } => Err(WireError::Protocol(format!(
            "the first frame must be a hello request, got a {} reply",
            reply.name()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;
    use std::thread;

    fn pair() -> (Conn, Conn) {
        let (a, b) = UnixStream::pair().unwrap();
        (Conn::new(a), Conn::new(b))
    }

    #[test]
    fn hello_ok() {
        let (mut c, mut s) = pair();
        let server = thread::spawn(move || server_handshake(&mut s, "test-server 1").unwrap());
        let ok = client_handshake(
            &mut c,
            Peer::Proxy {
                node_id: "n1".into(),
                role: "sidecar".into(),
                generation: 4,
                labels: Default::default(),
            },
        )
        .unwrap();
        assert_eq!(ok.server, "test-server 1");
        assert_eq!(ok.version, PROTOCOL_VERSION);
        assert_eq!(
            server.join().unwrap(),
            Peer::Proxy {
                node_id: "n1".into(),
                role: "sidecar".into(),
                generation: 4,
                labels: Default::default(),
            }
        );
    }

    #[test]
    fn version_mismatch_is_refused_with_the_documented_message() {
        let (mut c, mut s) = pair();
        let server = thread::spawn(move || {
            let r = server_handshake(&mut s, "x");
            drop(s); // the server closes
            r
        });
        let reply = c
            .call(Request::Hello {
                version: 2,
                peer: Peer::Cli,
            })
            .unwrap();
        assert_eq!(
            reply,
            Reply::error("unsupported protocol version 2 (this side speaks 1)")
        );
        assert!(matches!(
            server.join().unwrap(),
            Err(WireError::VersionMismatch { ours: 1, theirs: 2 })
        ));
        assert!(matches!(c.recv(), Err(WireError::Closed)));
    }

    #[test]
    fn client_sees_a_server_of_another_version() {
        let (mut c, mut s) = pair();
        let server = thread::spawn(move || {
            let Frame::Request { id, .. } = s.recv().unwrap() else {
                panic!()
            };
            s.reply(
                id,
                Reply::HelloOk {
                    version: 9,
                    server: "future".into(),
                },
            )
            .unwrap();
        });
        let err = client_handshake(&mut c, Peer::Cli).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unsupported protocol version 9 (this side speaks 1)"
        );
        server.join().unwrap();
    }

    #[test]
    fn admit_can_refuse_a_peer() {
        let (mut c, mut s) = pair();
        let server = thread::spawn(move || {
            server_handshake_with(&mut s, "x", |p| match p {
                Peer::Cli => Err("only proxies here".into()),
                _ => Ok(()),
            })
        });
        let err = client_handshake(&mut c, Peer::Cli).unwrap_err();
        assert_eq!(err.to_string(), "only proxies here");
        assert!(server.join().unwrap().is_err());
    }

    #[test]
    fn first_request_must_be_hello() {
        let (mut c, mut s) = pair();
        let server = thread::spawn(move || server_handshake(&mut s, "x"));
        let reply = c.call(Request::Status).unwrap();
        assert_eq!(
            reply,
            Reply::error("the first request must be hello, got status")
        );
        assert!(matches!(
            server.join().unwrap(),
            Err(WireError::Protocol(_))
        ));
    }
}
