use super::*;
use crate::message::{ListenerFd, Reply, Request};
use std::io::{Read, Seek, Write};
use std::os::fd::AsFd;
use std::thread;

fn pair() -> (Conn, Conn) {
    let (a, b) = UnixStream::pair().unwrap();
    (Conn::new(a), Conn::new(b))
}

#[test]
fn call_pairs_request_and_reply_by_id() {
    let (mut c, mut s) = pair();
    let server = thread::spawn(move || {
        for _ in 0..3 {
            let Frame::Request { id, request } = s.recv().unwrap() else {
                panic!("request expected")
            };
            assert_eq!(request, Request::Status);
            s.reply(id, Reply::ack(id)).unwrap();
        }
    });
    for want in 1..=3 {
        assert_eq!(c.call(Request::Status).unwrap(), Reply::ack(want));
    }
    server.join().unwrap();
}

#[test]
fn a_reply_with_another_id_is_a_protocol_error() {
    let (mut c, mut s) = pair();
    let server = thread::spawn(move || {
        let f = s.recv().unwrap();
        s.reply(f.id() + 5, Reply::Ok).unwrap();
    });
    assert!(matches!(
        c.call(Request::Status),
        Err(WireError::Protocol(_))
    ));
    server.join().unwrap();
}

#[test]
fn error_reply_check() {
    let r = Reply::Error {
        message: "configuration refused".into(),
        errors: vec!["proxy.workers: must be from 1 to 1024, got 0".into()],
    };
    let e = r.check().unwrap_err();
    assert_eq!(
        e.to_string(),
        "configuration refused\nproxy.workers: must be from 1 to 1024, got 0"
    );
    assert_eq!(Reply::Ok.check().unwrap(), Reply::Ok);
}

#[test]
fn recv_timeout_between_frames_keeps_the_connection() {
    let (mut c, mut s) = pair();
    c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    assert!(matches!(c.recv(), Err(WireError::Timeout)));
    assert!(!c.wait_readable(Some(Duration::from_millis(10))).unwrap());
    s.reply(1, Reply::Ok).unwrap();
    assert!(c.wait_readable(Some(Duration::from_secs(5))).unwrap());
    assert_eq!(
        c.recv().unwrap(),
        Frame::Reply {
            id: 1,
            reply: Reply::Ok
        }
    );
}

#[test]
fn peer_closing_is_closed() {
    let (mut c, s) = pair();
    drop(s);
    assert!(matches!(c.recv(), Err(WireError::Closed)));
    assert!(matches!(c.recv_with_fds(), Err(WireError::Closed)));
}

#[test]
fn oversize_length_from_a_peer_is_refused() {
    let (mut c, s) = pair();
    s.stream().write_all(&u32::MAX.to_be_bytes()).unwrap();
    assert!(matches!(c.recv(), Err(WireError::FrameTooLarge { .. })));
    s.stream().write_all(&u32::MAX.to_be_bytes()).unwrap();
    assert!(matches!(
        c.recv_with_fds(),
        Err(WireError::FrameTooLarge { .. })
    ));
}

fn temp_file_with(text: &str) -> std::fs::File {
    let mut f = tempfile::tempfile().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

fn read_back(fd: OwnedFd) -> String {
    let mut f = std::fs::File::from(fd);
    f.rewind().unwrap();
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    s
}

#[test]
fn fds_pass_over_a_socketpair_in_order() {
    let (mut c, mut s) = pair();
    let files = [temp_file_with("zero"), temp_file_with("one")];
    let frame = Frame::Reply {
        id: 9,
        reply: Reply::Listeners {
            listeners: vec![
                ListenerFd {
                    name: "a".into(),
                    address: "127.0.0.1:1".into(),
                    worker: 0,
                },
                ListenerFd {
                    name: "a".into(),
                    address: "127.0.0.1:1".into(),
                    worker: 1,
                },
            ],
            control_socket: false,
        },
    };
    let raw: Vec<RawFd> = files.iter().map(|f| f.as_raw_fd()).collect();
    s.send_with_fds(&frame, &raw).unwrap();
    let (got, fds) = c.recv_with_fds().unwrap();
    assert_eq!(got, frame);
    assert_eq!(fds.len(), 2);
    let texts: Vec<String> = fds.into_iter().map(read_back).collect();
    assert_eq!(texts, ["zero", "one"]);
}

#[test]
fn a_listening_socket_passes_and_still_accepts() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // A client connects before the handover: it must be accepted by the receiver.
    let _early = std::net::TcpStream::connect(addr).unwrap();
    let (mut c, mut s) = pair();
    s.send_with_fds(
        &Frame::Reply {
            id: 1,
            reply: Reply::Ok,
        },
        &[listener.as_raw_fd()],
    )
    .unwrap();
    drop(listener); // the sender closes its copy; the socket lives on in the receiver
    let (_, mut fds) = c.recv_with_fds().unwrap();
    let received = std::net::TcpListener::from(fds.remove(0));
    assert_eq!(received.local_addr().unwrap(), addr);
    let (_conn, _) = received.accept().unwrap();
}

#[test]
fn received_fds_are_close_on_exec() {
    let (mut c, mut s) = pair();
    let f = temp_file_with("x");
    s.send_with_fds(
        &Frame::Reply {
            id: 1,
            reply: Reply::Ok,
        },
        &[f.as_raw_fd()],
    )
    .unwrap();
    let (_, fds) = c.recv_with_fds().unwrap();
    let fd = fds[0].as_fd().as_raw_fd();
    // SAFETY: fcntl(F_GETFD) on a descriptor we own has no memory effects.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    assert!(flags & libc::FD_CLOEXEC != 0);
}

#[test]
fn more_fds_than_one_message_holds() {
    let (mut c, mut s) = pair();
    let f = temp_file_with("many");
    let dups: Vec<OwnedFd> = (0..600)
        .map(|_| f.as_fd().try_clone_to_owned().unwrap())
        .collect();
    let raw: Vec<RawFd> = dups.iter().map(|d| d.as_raw_fd()).collect();
    let frame = Frame::Reply {
        id: 3,
        reply: Reply::Ok,
    };
    let sender = thread::spawn(move || {
        s.send_with_fds(&frame, &raw).unwrap();
        drop(dups);
        s
    });
    let (got, fds) = c.recv_with_fds().unwrap();
    assert_eq!(got.id(), 3);
    assert_eq!(fds.len(), 600);
    sender.join().unwrap();
}

#[test]
fn fds_sent_to_a_plain_recv_are_dropped_not_leaked_into_the_frame() {
    let (mut c, mut s) = pair();
    let f = temp_file_with("x");
    s.send_with_fds(
        &Frame::Reply {
            id: 1,
            reply: Reply::Ok,
        },
        &[f.as_raw_fd()],
    )
    .unwrap();
    assert_eq!(c.recv().unwrap().id(), 1);
}

#[test]
fn too_many_fds_is_refused_before_sending() {
    let (_c, mut s) = pair();
    let raw = vec![0; MAX_FDS + 1];
    assert!(s
        .send_with_fds(
            &Frame::Reply {
                id: 1,
                reply: Reply::Ok
            },
            &raw
        )
        .is_err());
}

#[test]
fn call_with_fds() {
    let (mut c, mut s) = pair();
    let f = temp_file_with("listener");
    let server = thread::spawn(move || {
        let Frame::Request { id, request } = s.recv().unwrap() else {
            panic!()
        };
        assert_eq!(request, Request::TakeListeners);
        s.send_with_fds(
            &Frame::Reply {
                id,
                reply: Reply::Listeners {
                    listeners: vec![],
                    control_socket: true,
                },
            },
            &[f.as_raw_fd()],
        )
        .unwrap();
    });
    let (reply, fds) = c.call_with_fds(Request::TakeListeners).unwrap();
    assert!(matches!(
        reply,
        Reply::Listeners {
            control_socket: true,
            ..
        }
    ));
    assert_eq!(read_back(fds.into_iter().next().unwrap()), "listener");
    server.join().unwrap();
}

proptest::proptest! {
    #[test]
    fn random_bytes_on_a_socket_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
        let (mut c, s) = pair();
        s.stream().write_all(&bytes).unwrap();
        drop(s);
        for _ in 0..16 {
            if c.recv_with_fds().is_err() { break; }
        }
    }
}
