//! HTTP/2 abuse, with raw frames: a client that opens and resets streams as fast as it can
//! (Rapid Reset, CVE-2023-44487) and one that floods PINGs are cut off with GOAWAY
//! ENHANCE_YOUR_CALM or closed, while a well-behaved client on another connection is served
//! throughout. The upstream is slow, so every reset stream has an exchange in flight.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use ringside_tests::tools::curl;
use ringside_tests::*;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// HEADERS for `GET /slow` (HPACK: static-table indices, a literal authority).
fn get(stream: u32) -> Vec<u8> {
    let block = [
        0x82, 0x86, 0x04, 0x05, b'/', b's', b'l', b'o', b'w', 0x01, 0x01, b'x',
    ];
    frame(0x1, 0x5, stream, &block)
}

/// Reads frames until the peer closes; returns the GOAWAY error code if one came.
fn goaway_code(s: TcpStream) -> Option<u32> {
    goaway_within(s, WAIT)
}

/// Reads frames until the peer closes or `limit` passes; the GOAWAY error code if one came.
fn goaway_within(mut s: TcpStream, limit: Duration) -> Option<u32> {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break,
        }
    }
    let mut i = 0;
    let mut code = None;
    while i + 9 <= buf.len() {
        let len =
            (usize::from(buf[i]) << 16) | (usize::from(buf[i + 1]) << 8) | usize::from(buf[i + 2]);
        if buf[i + 3] == 0x7 && i + 9 + 8 <= buf.len() {
            let p = &buf[i + 9..];
            code = Some(u32::from_be_bytes([p[4], p[5], p[6], p[7]]));
        }
        i += 9 + len;
    }
    code
}

fn slow_origin() -> Origin {
    Origin::raw(|mut s| {
        let mut b = [0u8; 1024];
        let _ = s.read(&mut b);
        std::thread::sleep(Duration::from_secs(3));
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    })
}

both_drivers!(
    fn rapid_reset_is_cut_off_and_others_are_served(d) {
        let o = slow_origin();
        let p = Proxy::start(
            d,
            &basic_config(&[o.addr()], Extra { listener: "http2 = { max_resets_per_second = 50 }", ..Extra::default() }),
        );
        let mut s = TcpStream::connect(p.addr("in")).unwrap();
        s.write_all(PREFACE).unwrap();
        s.write_all(&frame(0x4, 0, 0, &[])).unwrap();
        let mut flood = Vec::new();
        for i in 0..2000u32 {
            let id = 1 + 2 * i;
            flood.extend(get(id));
            flood.extend(frame(0x3, 0, id, &8u32.to_be_bytes()));
        }
        // The proxy may close while we still write: that is the point.
        let _ = s.write_all(&flood);
        let good = curl(&["--http2-prior-knowledge", &format!("http://{}/hi", p.addr("in"))]);
        let code = goaway_code(s);
        assert_eq!(code, Some(0xb), "GOAWAY ENHANCE_YOUR_CALM");
        assert_eq!(good.status, Some(200), "another client is served: {good:?}");
    }
);

both_drivers!(
    fn ping_flood_does_not_grow_memory_or_block_others(d) {
        let o = Origin::text("ok");
        let p = Proxy::start(d, &basic_config(&[o.addr()], Extra::default()));
        let mut s = TcpStream::connect(p.addr("in")).unwrap();
        s.write_all(PREFACE).unwrap();
        s.write_all(&frame(0x4, 0, 0, &[])).unwrap();
        // 100k PINGs and we never read the acks: the proxy must not queue them without bound.
        s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        let ping = frame(0x6, 0, 0, &[1, 2, 3, 4, 5, 6, 7, 8]);
        let burst: Vec<u8> = ping.iter().copied().cycle().take(ping.len() * 1000).collect();
        for _ in 0..100 {
            if s.write_all(&burst).is_err() {
                break; // the proxy stopped reading (back-pressure) or closed: both fine
            }
        }
        let good = curl(&["--http2-prior-knowledge", &format!("http://{}/", p.addr("in"))]);
        assert_eq!(good.status, Some(200), "{good:?}");
    }
);

both_drivers!(
    fn keepalive_pings_close_a_silent_client(d) {
        let o = Origin::text("ok");
        let p = Proxy::start(
            d,
            &basic_config(&[o.addr()], Extra { listener: "http2 = { keepalive_interval_ms = 200 }", ..Extra::default() }),
        );
        let mut s = TcpStream::connect(p.addr("in")).unwrap();
        s.write_all(PREFACE).unwrap();
        s.write_all(&frame(0x4, 0, 0, &[])).unwrap();
        // We read (and see the PING) but never answer it.
        let started = Instant::now();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match s.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("not closed: {e}"),
            }
        }
        assert!(started.elapsed() < Duration::from_secs(3), "closed after a missed PONG");
        assert!(got.windows(2).any(|w| w == [0x06, 0x00]), "a PING frame was sent");
    }
);

both_drivers!(
    fn keepalive_waits_its_timeout_for_the_pong(d) {
        let o = Origin::text("ok");
        let listener = "http2 = { keepalive_interval_ms = 200, keepalive_timeout_ms = 1500 }";
        let p = Proxy::start(d, &basic_config(&[o.addr()], Extra { listener, ..Extra::default() }));
        let mut s = TcpStream::connect(p.addr("in")).unwrap();
        s.write_all(PREFACE).unwrap();
        s.write_all(&frame(0x4, 0, 0, &[])).unwrap();
        let started = Instant::now();
        s.set_read_timeout(Some(Duration::from_secs(6))).unwrap();
        let mut chunk = [0u8; 4096];
        let mut pinged = None;
        loop {
            match s.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    if pinged.is_none() && chunk[..n].windows(2).any(|w| w == [0x06, 0x00]) {
                        pinged = Some(started.elapsed());
                    }
                }
                Err(e) => panic!("not closed: {e}"),
            }
        }
        let closed = started.elapsed();
        let pinged = pinged.expect("a PING frame was sent");
        assert!(pinged < Duration::from_secs(1), "the PING after the 200 ms interval: {pinged:?}");
        assert!(
            closed >= pinged + Duration::from_millis(1400) && closed < Duration::from_secs(4),
            "closed 1.5 s after the unanswered PING, not one interval after it: PING at {pinged:?}, closed at {closed:?}"
        );
    }
);

/// Opens streams in batches, lets the proxy accept them (each one is waiting on the slow
/// upstream), then resets them: h2's own Rapid Reset guard only counts streams reset
/// *before* they are accepted, so what cuts this client off is ringside's per-second limit.
fn paced_resets(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(PREFACE).unwrap();
    s.write_all(&frame(0x4, 0, 0, &[])).unwrap();
    let mut id = 1u32;
    for _ in 0..6 {
        let first = id;
        for _ in 0..10 {
            if s.write_all(&get(id)).is_err() {
                return s;
            }
            id += 2;
        }
        std::thread::sleep(Duration::from_millis(100));
        for sid in (first..id).step_by(2) {
            if s.write_all(&frame(0x3, 0, sid, &8u32.to_be_bytes()))
                .is_err()
            {
                return s;
            }
        }
    }
    s
}

both_drivers!(
    fn resets_of_accepted_streams_past_the_limit_are_cut_off(d) {
        let o = slow_origin();
        let strict = Proxy::start(
            d,
            &basic_config(&[o.addr()], Extra { listener: "http2 = { max_resets_per_second = 20 }", ..Extra::default() }),
        );
        let s = paced_resets(strict.addr("in"));
        assert_eq!(goaway_within(s, Duration::from_secs(3)), Some(0xb), "60 resets in under a second, limit 20");
        // The same client under a limit it stays within is not cut off.
        let lenient = Proxy::start(
            d,
            &basic_config(&[o.addr()], Extra { listener: "http2 = { max_resets_per_second = 1000 }", ..Extra::default() }),
        );
        let s = paced_resets(lenient.addr("in"));
        assert_eq!(goaway_within(s, Duration::from_secs(2)), None);
    }
);
