//! The memory ceiling (`[proxy] memory_limit_mib`, issue 15 §3) on the `ringside` binary: a
//! ceiling a few MiB above the process's own footprint, then 5,000 idle keep-alive
//! connections. The resident size, sampled from `/proc/PID/statm` while they are opened and
//! shed, stays under the ceiling; the oldest idle connections are the ones shed; `/metrics` shows the ceiling, the
//! level and the shed connections; and a client that arrives afterwards is served. A request
//! in flight while connections are shed is answered whole.
//!
//! Self-contained like admin.rs (its harness, std only).

#![allow(clippy::unwrap_used)]

#[allow(dead_code)] // admin.rs uses the rest of the harness
#[path = "admin/harness.rs"]
mod harness;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::*;

const MIB: u64 = 1 << 20;
const IDLE: usize = 5000;

/// The child's resident size in bytes.
fn resident(pid: u32) -> u64 {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// Sends one keep-alive request and reads its response: the connection, or `None` when the
/// proxy closed it (refused at the ceiling).
fn keep_alive(addr: SocketAddr) -> Option<TcpStream> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(b"GET /x HTTP/1.1\r\nhost: t\r\n\r\n").ok()?;
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while !got.windows(2).any(|w| w == b"ok") {
        match s.read(&mut buf) {
            Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => return None,
        }
    }
    Some(s)
}

/// Whether the proxy has closed `s` (a read finds EOF or a reset at once).
fn closed(s: &mut TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut b = [0u8; 1];
    let gone = !matches!(s.read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    s.set_nonblocking(false).unwrap();
    gone
}

fn config(limit_mib: Option<u64>, origin: SocketAddr, slow: SocketAddr) -> String {
    let limit = limit_mib.map_or(String::new(), |m| format!("memory_limit_mib = {m}\n"));
    format!(
        "{}{limit}\n[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\nidle_timeout_ms = 60000\n\
         max_connections = 20000\n\n\
         [[routes]]\nlistener = \"in\"\nmatch = {{ path_prefix = \"/slow\" }}\ncluster = \"slow\"\n\n\
         [[routes]]\nlistener = \"in\"\ncluster = \"app\"\n\n\
         [[clusters]]\nname = \"app\"\nendpoints = [\"{origin}\"]\n\n\
         [[clusters]]\nname = \"slow\"\nendpoints = [\"{slow}\"]\n",
        proxy_section(1)
    )
}

/// Sends `GET /slow` (answered after 200 ms) back to back on one connection until `stop`:
/// the connection is never idle, so it must never be shed. Returns the responses read.
fn busy(addr: SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let mut answered = 0;
        while !stop.load(SeqCst) {
            s.write_all(b"GET /slow HTTP/1.1\r\nhost: t\r\n\r\n")
                .unwrap();
            let r = read_response(&mut s, false);
            assert_eq!(
                (r.status, r.body.as_str()),
                (200, "slow"),
                "request {answered}"
            );
            answered += 1;
        }
        answered
    })
}

#[test]
fn idle_connections_are_shed_under_the_ceiling_and_newcomers_served() {
    on_both_drivers(|| {
        let origin = Origin::start(|_| (200, "ok".into()));
        let slow = Origin::start(|_| {
            std::thread::sleep(Duration::from_millis(200));
            (200, "slow".into())
        });
        let dir = TempDir::new();
        let mut rs = Ringside::start(&dir, &config(Some(1024), origin.addr, slow.addr), &[]);
        let admin = rs.admin();
        let addr = rs.listener("in");
        let pid = rs.child.id();
        // The footprint with a few connections served and the code of a reload run once
        // (the executable's pages count in the resident size: start-up's were given back,
        // `footprint.rs`, and a reload faults its own in), then a ceiling 7 MiB above it.
        for _ in 0..20 {
            assert!(keep_alive(addr).is_some());
        }
        let _ = scrape(admin);
        dir.write("ringside.toml", &config(Some(1023), origin.addr, slow.addr));
        rs.signal("HUP");
        eventually("the reload", || {
            (rs.count_log("configuration reloaded") == 1).then_some(())
        });
        std::thread::sleep(Duration::from_millis(300));
        let base = resident(pid);
        let limit_mib = base / MIB + 7;
        let limit = limit_mib * MIB;
        dir.write(
            "ringside.toml",
            &config(Some(limit_mib), origin.addr, slow.addr),
        );
        rs.signal("HUP");
        eventually("the ceiling in /metrics", || {
            let (_, s) = scrape(admin);
            (value(&s, "ringside_memory_limit_bytes", &[]) == limit as f64).then_some(())
        });

        // Sample the resident size all along, with requests in flight all along.
        let stop = Arc::new(AtomicBool::new(false));
        let in_flight = busy(addr, stop.clone());
        let peak = Arc::new(AtomicU64::new(0));
        let sampler = {
            let (stop, peak) = (stop.clone(), peak.clone());
            std::thread::spawn(move || {
                while !stop.load(SeqCst) {
                    peak.fetch_max(resident(pid), SeqCst);
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };

        // 5,000 idle keep-alive connections, 50 every 50 ms (a connection keeps its read
        // buffer for its first 100 ms: a faster burst is mostly buffers, not idle
        // connections, and nothing idle can be shed to make room for it).
        let mut conns: Vec<TcpStream> = Vec::with_capacity(IDLE);
        let mut refused = 0;
        let started = Instant::now();
        while conns.len() + refused < IDLE {
            for _ in 0..50 {
                match keep_alive(addr) {
                    Some(s) => conns.push(s),
                    None => refused += 1,
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Let the shedding settle.
        if let Ok(Some(status)) = rs.child.try_wait() {
            panic!("ringside exited ({status}); log:\n{}", rs.log_text());
        }
        let (_, samples) = eventually("shedding in /metrics", || {
            let (text, s) = scrape(admin);
            (value(&s, "ringside_memory_shed_connections_total", &[]) > 0.0).then_some((text, s))
        });
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, SeqCst);
        sampler.join().unwrap();
        let answered = in_flight.join().unwrap();
        assert!(answered > 3, "{answered} slow requests answered");
        let peak = peak.load(SeqCst);
        let shed = value(&samples, "ringside_memory_shed_connections_total", &[]);
        eprintln!(
            "{}: base {:.1} MiB, ceiling {limit_mib} MiB, peak {:.1} MiB, {} kept + {refused} refused in {:?}, {shed} shed",
            driver(),
            base as f64 / MIB as f64,
            peak as f64 / MIB as f64,
            conns.len(),
            started.elapsed()
        );
        assert!(peak < limit, "peak {peak} over the ceiling {limit}");
        assert!(shed > 0.0);

        // The oldest went first: of the connections still open by us, those the proxy closed
        // are the earliest ones.
        let gone: Vec<bool> = conns.iter_mut().map(closed).collect();
        let first_kept = gone.iter().position(|g| !g).unwrap_or(gone.len());
        let shed_later = gone.iter().skip(first_kept).filter(|g| **g).count();
        let shed_count = gone.iter().filter(|g| **g).count();
        assert!(shed_count > 0, "no connection of ours was closed");
        // Connections shed on different ticks interleave only within a tick's batch.
        assert!(
            shed_later <= shed_count / 4,
            "{shed_later} of {shed_count} closed connections came after the first one kept"
        );

        // A newcomer is served once the idle ones are gone.
        drop(conns);
        eventually("a newcomer served", || keep_alive(addr).map(|_| ()));
        rs.signal("TERM");
        assert!(rs.wait_exit().success());
    });
}

#[test]
fn a_ceiling_under_the_minimum_is_refused_with_its_path() {
    let dir = TempDir::new();
    let path = dir.write(
        "bad.toml",
        "[proxy]\nmemory_limit_mib = 4\n[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringside"))
        .arg("check")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("proxy.memory_limit_mib: must be from 8 to 1048576, got 4"),
        "{text}"
    );
}

/// Opens an h2c connection (prior knowledge) with no stream: the preface and an empty
/// SETTINGS frame.
fn h2c_idle(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .unwrap();
    s
}

/// Reads frames until a GOAWAY (type 7) arrives: its error code, or `None` when the
/// connection ends without one or nothing comes within `WAIT`.
fn goaway(s: &mut TcpStream) -> Option<u32> {
    s.set_read_timeout(Some(WAIT)).unwrap();
    loop {
        let mut head = [0u8; 9];
        s.read_exact(&mut head).ok()?;
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0u8; len];
        s.read_exact(&mut payload).ok()?;
        if head[3] == 7 && len >= 8 {
            return Some(u32::from_be_bytes([
                payload[4], payload[5], payload[6], payload[7],
            ]));
        }
    }
}

#[test]
fn idle_h2_connections_are_shed_with_a_goaway() {
    on_both_drivers(|| {
        let origin = Origin::start(|_| (200, "ok".into()));
        let dir = TempDir::new();
        let mut rs = Ringside::start(&dir, &config(Some(1024), origin.addr, origin.addr), &[]);
        let admin = rs.admin();
        let addr = rs.listener("in");
        let pid = rs.child.id();
        let mut conns: Vec<TcpStream> = (0..200).map(|_| h2c_idle(addr)).collect();
        // Idle past the server's first tick without streams (250 ms).
        std::thread::sleep(Duration::from_millis(600));
        // A ceiling just above the resident size: past 90% of it, so idle connections go.
        let limit_mib = (resident(pid) as f64 / 0.95 / MIB as f64).ceil() as u64;
        dir.write(
            "ringside.toml",
            &config(Some(limit_mib), origin.addr, origin.addr),
        );
        rs.signal("HUP");
        eventually("shedding in /metrics", || {
            let (_, s) = scrape(admin);
            (value(&s, "ringside_memory_shed_connections_total", &[]) > 0.0).then_some(())
        });
        // The oldest connection was shed first: it gets a GOAWAY with NO_ERROR.
        assert_eq!(goaway(&mut conns[0]), Some(0), "{}", driver());
        drop(conns);
        rs.signal("TERM");
        assert!(rs.wait_exit().success());
    });
}
