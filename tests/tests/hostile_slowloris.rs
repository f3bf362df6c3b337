//! Slowloris (issue 15, "hostile and broken peers"): 2,000 clients each send one byte of a
//! request head per second. Each is answered 408 and closed at the listener's
//! `request_head_timeout_ms` (2 s here), and a 50-connection keep-alive load on the same
//! listener meanwhile sees no error. The load's req/s alone and with the slow clients are
//! printed (`--nocapture`); `perf/slowloris` measures the same with the release binary and wrk.
//!
//! `SLOWLORIS_CLIENTS` and `SLOWLORIS_LOAD_MS` change the counts (defaults 2000 and 2000).

#![allow(clippy::unwrap_used)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringside_tests::*;

const HEAD_TIMEOUT: Duration = Duration::from_secs(2);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Raises this process's open-files limit to `want` (or the hard limit): the proxy runs in
/// this process, so each slow client is two descriptors here.
fn raise_nofile(want: u64) {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write and read the one struct given.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl), 0);
        if rl.rlim_cur < want {
            rl.rlim_cur = want.min(rl.rlim_max);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &rl), 0);
        }
    }
    assert!(
        rl.rlim_cur >= want,
        "RLIMIT_NOFILE is {} (hard), {want} needed",
        rl.rlim_max
    );
}

/// What a load of keep-alive clients got: answers, errors (anything but a 200), and req/s.
struct Load {
    ok: u64,
    errors: u64,
    rps: f64,
}

/// `clients` keep-alive connections sending GETs back to back for `run`.
fn load(addr: SocketAddr, clients: usize, run: Duration) -> Load {
    let start = Instant::now();
    let until = start + run;
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            std::thread::spawn(move || {
                let (mut ok, mut errors) = (0u64, 0u64);
                let mut c = Client::connect(addr);
                while Instant::now() < until {
                    match c
                        .try_send(&get("/"))
                        .and_then(|()| c.try_read_response("GET"))
                    {
                        Ok(r) if r.status == 200 => ok += 1,
                        _ => {
                            errors += 1;
                            c = Client::connect(addr);
                        }
                    }
                }
                (ok, errors)
            })
        })
        .collect();
    let (ok, errors) = threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    Load {
        ok,
        errors,
        rps: ok as f64 / start.elapsed().as_secs_f64(),
    }
}

/// One slow client: when it connected, what it received, when the proxy closed it.
struct Slow {
    s: TcpStream,
    connected: Instant,
    got: Vec<u8>,
    closed: Option<Instant>,
}

/// Opens `n` connections, then sends each one byte of a never-ending head per second and
/// reads what comes back, until every one is closed (or a bound passes).
fn slowloris(addr: SocketAddr, n: usize, connected: &AtomicBool) -> Vec<Slow> {
    let head = b"GET / HTTP/1.1\r\nHost: slow\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut all: Vec<Slow> = (0..n)
        .map(|_| {
            let s = TcpStream::connect_timeout(&addr, WAIT).unwrap();
            s.set_nonblocking(true).unwrap();
            Slow {
                s,
                connected: Instant::now(),
                got: Vec::new(),
                closed: None,
            }
        })
        .collect();
    connected.store(true, Ordering::SeqCst);
    let start = Instant::now();
    let mut next_byte = start;
    let mut sent = 0;
    let mut chunk = [0u8; 512];
    while all.iter().any(|c| c.closed.is_none()) && start.elapsed() < HEAD_TIMEOUT + WAIT {
        let now = Instant::now();
        if now >= next_byte {
            let byte = [head[sent % head.len()]];
            for c in all.iter_mut().filter(|c| c.closed.is_none()) {
                let _ = c.s.write(&byte);
            }
            sent += 1;
            next_byte += Duration::from_secs(1);
        }
        for c in all.iter_mut().filter(|c| c.closed.is_none()) {
            loop {
                match c.s.read(&mut chunk) {
                    Ok(0) => c.closed = Some(Instant::now()),
                    Ok(k) => {
                        c.got.extend_from_slice(&chunk[..k]);
                        continue;
                    }
                    Err(e)
                        if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                    Err(_) => c.closed = Some(Instant::now()),
                }
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    all
}

both_drivers!(
    fn slowloris_clients_get_408_at_the_head_timeout_while_a_load_is_served(d) {
        let n = env_or("SLOWLORIS_CLIENTS", 2000) as usize;
        let run = Duration::from_millis(env_or("SLOWLORIS_LOAD_MS", 2000));
        raise_nofile(2 * n as u64 + 1024);
        let o = Origin::text("ok");
        let extra = Extra {
            proxy: "workers = 2",
            listener: "request_head_timeout_ms = 2000",
            ..Extra::default()
        };
        let p = Proxy::start(d, &basic_config(&[o.addr()], extra));
        let addr = p.addr("in");

        let alone = load(addr, 50, run);
        assert_eq!(alone.errors, 0, "the load alone failed");

        let connected = Arc::new(AtomicBool::new(false));
        let flag = connected.clone();
        let slow = std::thread::spawn(move || slowloris(addr, n, &flag));
        assert!(eventually(WAIT * 3, || connected.load(Ordering::SeqCst)), "slow clients connected");
        let with = load(addr, 50, run.min(HEAD_TIMEOUT));
        let slow = slow.join().unwrap();
        println!(
            "slowloris ({}): load alone {:.0} req/s ({} answers), with {n} slow clients {:.0} req/s ({} answers)",
            d.toml(), alone.rps, alone.ok, with.rps, with.ok
        );
        assert_eq!(with.errors, 0, "the load failed during the slowloris");

        let mut late = Vec::new();
        for (i, c) in slow.iter().enumerate() {
            let text = String::from_utf8_lossy(&c.got);
            assert!(text.starts_with("HTTP/1.1 408"), "slow client {i} got {text:?}");
            let closed = c.closed.unwrap_or_else(|| panic!("slow client {i} was never closed"));
            let after = closed - c.connected;
            if after < HEAD_TIMEOUT - Duration::from_millis(100) || after > HEAD_TIMEOUT + Duration::from_millis(1500) {
                late.push((i, after));
            }
        }
        assert!(late.is_empty(), "closed away from the 2 s head timeout: {:?}", &late[..late.len().min(10)]);
    }
);
