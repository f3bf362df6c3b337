//! The version handshake: the first request on every connection is `Hello`, from the side
//! that connected, naming the newest protocol version it speaks; the other side answers
//! `HelloOk` with that version when it speaks it too (any of [`MIN_PROTOCOL_VERSION`] to
//! [`PROTOCOL_VERSION`]), or an `Error` ("unsupported protocol version N (this side speaks
//! 1 to 2)") and closes. Both sides keep the agreed version in their [`Conn`]
//! ([`Conn::version`]) and send a version 1 peer nothing version 2 added.

use crate::conn::Conn;
use crate::error::{Result, WireError};
use crate::message::{Frame, Peer, Reply, Request};
use crate::{MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};

/// What the server said in its `HelloOk`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloOk {
    pub version: u32,
    /// The server's software and version, e.g. `"ringside-ctld 0.1.0"`.
    pub server: String,
}

/// Says hello as `peer`, offering [`PROTOCOL_VERSION`]. An `Error` reply (e.g. a version
/// mismatch) is [`WireError::Remote`].
pub fn client_handshake(conn: &mut Conn, peer: Peer) -> Result<HelloOk> {
    client_handshake_at(conn, peer, PROTOCOL_VERSION)
}

/// [`client_handshake`] offering `version`: a client that an older server refused with
/// "unsupported protocol version" says hello again on a new connection with an older one.
pub fn client_handshake_at(conn: &mut Conn, peer: Peer, version: u32) -> Result<HelloOk> {
    let reply = conn.call(Request::Hello { version, peer })?;
    match reply.check()? {
        Reply::HelloOk { version: v, server } if (MIN_PROTOCOL_VERSION..=version).contains(&v) => {
            conn.set_version(v);
            Ok(HelloOk { version: v, server })
        }
        Reply::HelloOk { version: v, .. } => Err(WireError::VersionMismatch {
            ours: version,
            theirs: v,
        }),
        other => Err(WireError::Protocol(format!(
            "hello_ok expected, got {}",
            other.name()
        ))),
    }
}

/// Whether `err` is a server's refusal of the version a client offered (the server then
/// closed the connection): the client may try again with an older one.
pub fn is_version_refusal(err: &WireError) -> bool {
    matches!(err, WireError::Remote { message, .. } if message.starts_with("unsupported protocol version"))
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
            if !(MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&version) {
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
                    version,
                    server: server.to_owned(),
                },
            )?;
            conn.set_version(version);
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
                version: 3,
                peer: Peer::Cli,
            })
            .unwrap();
        assert_eq!(
            reply,
            Reply::error("unsupported protocol version 3 (this side speaks 1 to 2)")
        );
        assert!(matches!(
            server.join().unwrap(),
            Err(WireError::VersionMismatch { ours: 2, theirs: 3 })
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
            "unsupported protocol version 9 (this side speaks 1 to 2)"
        );
        server.join().unwrap();
    }

    #[test]
    fn a_version_1_client_is_answered_version_1() {
        let (mut c, mut s) = pair();
        let server = thread::spawn(move || {
            server_handshake(&mut s, "x").unwrap();
            s.version()
        });
        let ok = client_handshake_at(&mut c, Peer::Cli, 1).unwrap();
        assert_eq!((ok.version, c.version()), (1, 1));
        assert_eq!(server.join().unwrap(), 1);
    }

    #[test]
    fn a_version_1_server_refusal_is_recognised() {
        let (mut c, mut s) = pair();
        // What a server speaking only version 1 answers a version 2 hello.
        let server = thread::spawn(move || {
            let Frame::Request { id, .. } = s.recv().unwrap() else {
                panic!()
            };
            let msg = "unsupported protocol version 2 (this side speaks 1)";
            s.reply(id, Reply::error(msg)).unwrap();
        });
        let err = client_handshake(&mut c, Peer::Cli).unwrap_err();
        assert!(is_version_refusal(&err), "{err}");
        server.join().unwrap();
        assert!(!is_version_refusal(&WireError::Closed));
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
