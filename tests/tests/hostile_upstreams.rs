//! Upstream faults mid-exchange (issue 15, "hostile and broken peers"), with raw origins:
//! - an HTTP/1.1 origin that resets its connection in the middle of a response body: an
//!   HTTP/1.1 client sees the connection close before the declared length, an HTTP/2 client
//!   sees RST_STREAM, neither hangs, and the pooled connection is not used again;
//! - an HTTP/2 origin that sends GOAWAY while four streams are in flight: the two above its
//!   last stream ID are retried on a new connection, the two below finish on the old one.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringside_tests::*;

const DECLARED: usize = 100_000;
const SENT: usize = 10_000;

/// Reads one request head (up to the blank line) from `s`; its path, or None at EOF.
fn read_head(s: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => return None,
        }
    }
    let text = String::from_utf8_lossy(&head);
    text.split(' ').nth(1).map(str::to_string)
}

/// `/ok` is answered whole (keep-alive); `/reset` gets a head declaring 100,000 bytes, 10,000
/// of them, then a TCP reset.
fn resetting_origin() -> Origin {
    Origin::raw(|mut s| {
        while let Some(path) = read_head(&mut s) {
            if path == "/reset" {
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {DECLARED}\r\n\r\n");
                let _ = s.write_all(head.as_bytes());
                let _ = s.write_all(&vec![b'x'; SENT]);
                std::thread::sleep(Duration::from_millis(50));
                let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
                return; // dropped: RST
            }
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        }
    })
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// One frame: (type, flags, stream, payload), or None when the peer closed (or a read timed out).
fn read_frame(s: &mut TcpStream) -> Option<(u8, u8, u32, Vec<u8>)> {
    let mut h = [0u8; 9];
    s.read_exact(&mut h).ok()?;
    let len = (usize::from(h[0]) << 16) | (usize::from(h[1]) << 8) | usize::from(h[2]);
    let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).ok()?;
    Some((h[3], h[4], stream, payload))
}

/// HEADERS of `GET path` on `stream` (HPACK: :method GET, :scheme http, literal :path and
/// :authority).
fn h2_get(stream: u32, path: &str) -> Vec<u8> {
    let mut block = vec![0x82, 0x86, 0x04, path.len() as u8];
    block.extend_from_slice(path.as_bytes());
    block.extend_from_slice(&[0x01, 0x01, b'x']);
    frame(0x1, 0x5, stream, &block)
}

/// What an HTTP/2 client saw of stream 1: a response head, DATA bytes, END_STREAM, and the
/// RST_STREAM code if the stream was reset.
#[derive(Debug, Default)]
struct H2Seen {
    head: bool,
    data: usize,
    end: bool,
    reset: Option<u32>,
}

fn h2_client_get(addr: SocketAddr, path: &str) -> H2Seen {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
    s.write_all(&frame(0x4, 0, 0, &[])).unwrap();
    s.write_all(&h2_get(1, path)).unwrap();
    let mut seen = H2Seen::default();
    while let Some((kind, flags, stream, payload)) = read_frame(&mut s) {
        match (kind, stream) {
            (0x4, 0) if flags & 1 == 0 => s.write_all(&frame(0x4, 1, 0, &[])).unwrap(),
            (0x1, 1) => {
                seen.head = true;
                seen.end |= flags & 1 != 0;
            }
            (0x0, 1) => {
                seen.data += payload.len();
                seen.end |= flags & 1 != 0;
            }
            (0x3, 1) => {
                seen.reset = Some(u32::from_be_bytes([
                    payload[0], payload[1], payload[2], payload[3],
                ]));
            }
            _ => {}
        }
        if seen.end || seen.reset.is_some() {
            break;
        }
    }
    seen
}

both_drivers!(
    fn an_origin_reset_mid_body_ends_the_response_early_and_its_connection_is_dropped(d) {
        let o = resetting_origin();
        let p = Proxy::start(d, &basic_config(&[o.addr()], Extra::default()));
        let addr = p.addr("in");

        // HTTP/1.1: a pooled connection first, then the reset on it.
        let mut c = Client::connect(addr);
        assert_eq!(c.request(&get("/ok")).status, 200);
        assert_eq!(o.connections(), 1);
        let mut c = Client::connect(addr);
        c.send(&get("/reset"));
        let started = Instant::now();
        let all = c.read_to_close();
        let text = String::from_utf8_lossy(&all);
        assert!(text.starts_with("HTTP/1.1 200"), "{text:.200}");
        assert!(text.to_ascii_lowercase().contains(&format!("content-length: {DECLARED}")));
        let body = all.len() - text.find("\r\n\r\n").unwrap() - 4;
        assert!(body < DECLARED, "the whole body arrived ({body} bytes)");
        assert!(started.elapsed() < WAIT, "the client was left hanging");

        // The reset connection is gone: the next request opens another.
        let mut c = Client::connect(addr);
        assert_eq!(c.request(&get("/ok")).status, 200);
        assert_eq!(o.connections(), 2, "the reset connection was pooled again");

        // HTTP/2 (h2c): the stream is reset, after the head and part of the body.
        let seen = h2_client_get(addr, "/reset");
        assert!(seen.head && !seen.end, "{seen:?}");
        assert!(seen.data < DECLARED, "{seen:?}");
        assert!(seen.reset.is_some(), "no RST_STREAM: {seen:?}");
        let mut c = Client::connect(addr);
        assert_eq!(c.request(&get("/ok")).status, 200);
    }
);

/// An h2c origin. Its first connection waits for four streams, sends GOAWAY with the second
/// one as the last stream ID, answers the first two `first` and leaves the others; later
/// connections answer every stream `second`. Records each stream's connection.
/// (connection, stream) of each HEADERS the origin received.
type Streams = Arc<Mutex<Vec<(usize, u32)>>>;

fn goaway_origin() -> (Origin, Streams) {
    let conns = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let o = Origin::raw(move |mut s| {
        let conn = conns.fetch_add(1, Ordering::SeqCst);
        let mut preface = [0u8; 24];
        if s.read_exact(&mut preface).is_err() {
            return;
        }
        let _ = s.write_all(&frame(0x4, 0, 0, &[]));
        let answer = |s: &mut TcpStream, stream: u32, body: &[u8]| {
            let _ = s.write_all(&frame(0x1, 0x4, stream, &[0x88]));
            let _ = s.write_all(&frame(0x0, 0x1, stream, body));
        };
        let mut streams = Vec::new();
        let mut went_away = false;
        // Until the proxy closes the connection (or the origin's read timeout).
        while let Some(f) = read_frame(&mut s) {
            match f {
                (0x4, flags, 0, _) if flags & 1 == 0 => {
                    let _ = s.write_all(&frame(0x4, 1, 0, &[]));
                }
                (0x6, flags, 0, p) if flags & 1 == 0 => {
                    let _ = s.write_all(&frame(0x6, 1, 0, &p));
                }
                (0x1, _, stream, _) => {
                    log.lock().unwrap().push((conn, stream));
                    if conn > 0 {
                        answer(&mut s, stream, b"second");
                        continue;
                    }
                    streams.push(stream);
                    if streams.len() == 4 && !went_away {
                        went_away = true;
                        let last = streams[1];
                        let mut p = last.to_be_bytes().to_vec();
                        p.extend_from_slice(&0u32.to_be_bytes());
                        let _ = s.write_all(&frame(0x7, 0, 0, &p));
                        std::thread::sleep(Duration::from_millis(100));
                        answer(&mut s, streams[0], b"first");
                        answer(&mut s, streams[1], b"first");
                    }
                }
                _ => {}
            }
        }
    });
    (o, seen)
}

both_drivers!(
    fn an_h2_goaway_retries_the_streams_it_did_not_process(d) {
        let (o, seen) = goaway_origin();
        let extra = Extra { proxy: "workers = 1", cluster: "protocol = \"http2\"", ..Extra::default() };
        let p = Proxy::start(d, &basic_config(&[o.addr()], extra));
        let addr = p.addr("in");
        // Four requests at once: one connection carries them (the first opens it, the
        // others wait for it).
        let clients: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || {
                    let mut c = Client::connect(addr);
                    let r = c.request(&get("/x"));
                    (r.status, r.text())
                })
            })
            .collect();
        let answers: Vec<(u16, String)> = clients.into_iter().map(|t| t.join().unwrap()).collect();
        let seen = seen.lock().unwrap().clone();
        let mut bodies: Vec<&str> = answers.iter().map(|(_, b)| b.as_str()).collect();
        bodies.sort_unstable();
        assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?} (origin saw {seen:?})");
        assert_eq!(bodies, ["first", "first", "second", "second"], "origin saw {seen:?}");
        assert_eq!(o.connections(), 2, "origin saw {seen:?}");
        let first: Vec<u32> = seen.iter().filter(|(c, _)| *c == 0).map(|(_, s)| *s).collect();
        assert_eq!(first.len(), 4, "the four streams shared the first connection: {seen:?}");
        assert_eq!(seen.iter().filter(|(c, _)| *c == 1).count(), 2, "{seen:?}");
    }
);
