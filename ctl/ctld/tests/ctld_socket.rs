//! The socket: mode 0600, the handshake, and robustness against bad peers.

#![allow(clippy::unwrap_used)] // test helpers, like #[test] bodies

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::*;
use ringside_wire::{Conn, Peer, Reply, Request};

#[test]
fn socket_is_mode_0600_in_a_0700_directory() {
    let dirs = Dirs::new();
    let ctld = Ctld::start(&dirs);
    let mode = std::fs::metadata(&ctld.socket)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let dir_mode = std::fs::metadata(ctld.socket.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);
}

#[test]
fn a_second_daemon_on_the_same_socket_refuses_to_start() {
    let dirs = Dirs::new();
    let _ctld = Ctld::start(&dirs);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringside-ctld"))
        .arg("--socket")
        .arg(dirs.socket())
        .arg("--config-dir")
        .arg(dirs.config())
        .arg("--state-dir")
        .arg(dirs.tmp.path().join("other-state"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another process is listening on it"), "{err}");
}

/// A CLI connection that said hello in protocol `version`, and the answer.
fn hello(ctld: &Ctld, version: u32) -> (Conn, Reply) {
    let mut c = Conn::connect(&ctld.socket).unwrap();
    c.set_read_timeout(Some(WAIT)).unwrap();
    let hello = Request::Hello {
        version,
        peer: Peer::Cli,
    };
    let reply = c.call(hello).unwrap();
    (c, reply)
}

#[test]
fn version_mismatch_is_refused() {
    let dirs = Dirs::new();
    let ctld = Ctld::start(&dirs);
    let (mut c, reply) = hello(&ctld, 3);
    assert_eq!(
        reply,
        Reply::error("unsupported protocol version 3 (this side speaks 1 to 2)")
    );
    assert!(c.recv().is_err(), "closed after the refusal");
}

#[test]
fn a_version_1_cli_is_answered_in_version_1() {
    let dirs = Dirs::new();
    let ctld = Ctld::start(&dirs);
    let (mut c, reply) = hello(&ctld, 1);
    assert!(
        matches!(reply, Reply::HelloOk { version: 1, .. }),
        "{reply:?}"
    );
    assert!(matches!(c.call(Request::Status), Ok(Reply::CtldStatus(_))));
}

#[test]
fn keys_waiting_for_a_restart_are_shown_in_version_2_only() {
    let dirs = Dirs::new();
    let ctld = Ctld::start(&dirs);
    let waiting = Behaviour::AckWaiting("proxy.workers");
    let _p = FakeProxy::connect_with(&ctld.socket, "n", 0, waiting);
    ctld.apply(Some("n"), &config("x"));
    let node = ctld.node("n").unwrap();
    assert_eq!(node.pending_restart, ["proxy.workers"]);
    // A version 1 CLI would refuse the unknown field: it is not sent.
    let (mut c, _) = hello(&ctld, 1);
    let Ok(Reply::CtldStatus(s)) = c.call(Request::Status) else {
        panic!("ctld_status expected")
    };
    assert!(s.nodes[0].pending_restart.is_empty());
    assert_eq!(s.nodes[0].generation_acked, Some(1));
}

#[test]
fn a_bad_node_id_is_refused_at_hello() {
    let dirs = Dirs::new();
    let ctld = Ctld::start(&dirs);
    let mut c = Conn::connect(&ctld.socket).unwrap();
    let err = ringside_wire::client_handshake(
        &mut c,
        Peer::Proxy {
            node_id: "../etc".into(),
            role: "sidecar".into(),
            generation: 0,
            labels: Default::default(),
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("invalid node id"), "{err}");
}

#[test]
fn garbage_and_oversize_frames_close_that_connection_only() {
    let dirs = Dirs::new();
    let ctld = Ctld::start(&dirs);
    for bytes in [
        &b"\xff\xff\xff\xffxxxx"[..],
        b"\x00\x00\x00\x05hello",
        b"GET / HTTP/1.1\r\n\r\n",
    ] {
        let mut s = UnixStream::connect(&ctld.socket).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.write_all(bytes).unwrap();
        let mut buf = Vec::new();
        // The daemon closes the connection (EOF), possibly after nothing at all.
        let _ = s.read_to_end(&mut buf);
    }
    // A connection that never says hello is dropped after the hello timeout, and does not
    // block anyone else meanwhile.
    let _silent = UnixStream::connect(&ctld.socket).unwrap();
    let started = std::time::Instant::now();
    ctld.status();
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn requests_for_a_proxy_are_refused_by_the_daemon() {
    let dirs = Dirs::new();
    let ctld = Ctld::start(&dirs);
    assert_eq!(
        ctld.call(Request::Drain),
        Reply::error("drain is not served by ringside-ctld")
    );
}
