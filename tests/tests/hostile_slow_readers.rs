//! Slow readers (issue 15, "hostile and broken peers"): clients that ask for a large body and
//! never read it. The proxy holds its per-connection buffers, not the body — the process's
//! memory grows by far less than one body although the origin has a quarter GiB for each —
//! and closes each connection at the listener's `idle_timeout_ms` (1 s here) of no progress,
//! closing its upstream connection too.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringside_tests::*;

const CLIENTS: usize = 20;
const BODY: u64 = 256 << 20;

/// Resident memory of this process (the proxy runs in it), in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

fn open_connections(p: &Proxy) -> u64 {
    p.listener_total("in", |l| l.open)
}

/// Answers `GET /big` with a 256 MiB body, written until the proxy stops taking it, and
/// counts the connections whose writing ended (the proxy closed them); `/warm` gets `ok`.
fn huge_origin(ended: Arc<AtomicUsize>) -> Origin {
    Origin::raw(move |mut s| {
        let mut head = [0u8; 1024];
        let n = s.read(&mut head).unwrap_or(0);
        if head[..n].starts_with(b"GET /warm ") {
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
            return;
        }
        let _ = s.set_write_timeout(Some(WAIT * 3));
        let _ =
            s.write_all(format!("HTTP/1.1 200 OK\r\ncontent-length: {BODY}\r\n\r\n").as_bytes());
        let chunk = vec![b'z'; 64 * 1024];
        let mut sent = 0u64;
        while sent < BODY && s.write_all(&chunk).is_ok() {
            sent += chunk.len() as u64;
        }
        ended.fetch_add(1, Ordering::SeqCst);
    })
}

/// A client with a small receive buffer that sends `GET /big` and reads nothing.
fn stalled_client(addr: SocketAddr) -> std::net::TcpStream {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.set_recv_buffer_size(16 * 1024).unwrap();
    s.connect(&addr.into()).unwrap();
    let mut s: std::net::TcpStream = s.into();
    s.write_all(&get("/big")).unwrap();
    s
}

both_drivers!(
    fn slow_readers_hold_buffers_not_bodies_and_are_closed_at_the_idle_timeout(d) {
        let ended = Arc::new(AtomicUsize::new(0));
        let o = huge_origin(ended.clone());
        let extra = Extra { proxy: "workers = 1", listener: "idle_timeout_ms = 1000", ..Extra::default() };
        let p = Proxy::start(d, &basic_config(&[o.addr()], extra));
        let addr = p.addr("in");
        // Warm up (threads, pools), then take the baseline.
        assert_eq!(Client::connect(addr).request(&get("/warm")).status, 200);
        let before = rss();

        let started = Instant::now();
        let clients: Vec<_> = (0..CLIENTS).map(|_| stalled_client(addr)).collect();
        assert!(eventually(WAIT, || open_connections(&p) == CLIENTS as u64));
        // Well before the idle timeout, every one is still open and memory holds.
        std::thread::sleep(Duration::from_millis(600));
        assert_eq!(open_connections(&p), CLIENTS as u64, "closed before the idle timeout");
        let during = rss();
        // Closed at the idle timeout (1 s of no progress), with their upstream connections.
        assert!(eventually(WAIT, || open_connections(&p) == 0), "slow readers left open");
        let closed_after = started.elapsed();
        assert!(eventually(WAIT, || ended.load(Ordering::SeqCst) == CLIENTS), "upstream connections left open");
        let grew = during.saturating_sub(before);
        println!(
            "slow readers ({}): RSS grew {} KiB for {CLIENTS} stalled 256 MiB responses; closed after {closed_after:?}",
            d.toml(),
            grew / 1024
        );
        assert!(grew < 48 << 20, "memory grew by {} MiB", grew >> 20);
        assert!(
            closed_after >= Duration::from_millis(900) && closed_after < Duration::from_millis(3500),
            "closed after {closed_after:?}, not at the 1 s idle timeout"
        );
        drop(clients);
    }
);
