//! Global rate limits with two `ringside` processes (the binary) sharing one real
//! `redis-server`: together they let through the limit plus at most the documented
//! overshoot (docs/gateway.md, "Global rate limits"), and `/metrics` shows the syncs, the
//! refusals, and — once Redis is killed — the failures and the requests let through
//! uncounted. (tests/tests/gateway_global_limits.rs covers the rest with in-process engines.)
//!
//! Self-contained like admin.rs (its harness, std only): redis-server is started here on a
//! free loopback port with no persistence and killed by its PID.

#![allow(clippy::unwrap_used)]

#[allow(dead_code)] // admin.rs uses the rest of the harness
#[path = "admin/harness.rs"]
mod harness;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use harness::*;

/// A `redis-server` on a free loopback port; killed on drop.
struct Redis {
    child: Child,
    addr: SocketAddr,
    _dir: TempDir,
}

impl Redis {
    fn start() -> Redis {
        // A port free a moment ago (redis-server binds it itself).
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let dir = TempDir::new();
        let child = Command::new("redis-server")
            .args(["--port", &addr.port().to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(&dir.0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}): run scripts/install-test-deps")
            });
        let r = Redis {
            child,
            addr,
            _dir: dir,
        };
        eventually("redis-server to answer PING", || {
            let mut s = TcpStream::connect(addr).ok()?;
            s.write_all(b"PING\r\n").ok()?;
            let mut line = String::new();
            BufReader::new(s).read_line(&mut line).ok()?;
            line.starts_with("+PONG").then_some(())
        });
        r
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

const LIMIT: u64 = 300;
const WORKERS: u64 = 2;

fn config(origin: SocketAddr, redis: SocketAddr) -> String {
    format!(
        "{proxy}role = \"gateway\"\n\
         [[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n\
         [[routes]]\nlistener = \"in\"\nname = \"all\"\ncluster = \"app\"\n\
         rate_limit = {{ key = \"header:x-tenant\", requests_per_minute = {LIMIT}, redis = \"limits\" }}\n\
         [[clusters]]\nname = \"app\"\nendpoints = [\"{origin}\"]\n\
         [[redis]]\nname = \"limits\"\naddress = \"{redis}\"\ntimeout_ms = 1000\n",
        proxy = proxy_section(WORKERS as usize),
    )
}

/// Waits, when needed, until `room` is left in the current wall-clock minute: one window.
fn wait_for_room_in_the_minute(room: Duration) {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap();
    let into = Duration::from_millis(u64::try_from(now.as_millis() % 60_000).unwrap());
    if into + room > Duration::from_secs(60) {
        std::thread::sleep(Duration::from_secs(60) - into + Duration::from_millis(200));
    }
}

/// `clients` threads sending `GET /` with `x-tenant: tenant` (a connection each time) to
/// `addr` until `until`: (200s, 429s).
fn hammer(addr: SocketAddr, clients: usize, until: Instant, tenant: &'static str) -> (u64, u64) {
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            std::thread::spawn(move || {
                let (mut ok, mut limited) = (0, 0);
                while Instant::now() < until {
                    match send(addr, "GET", "/", &[("x-tenant", tenant)], "").status {
                        200 => ok += 1,
                        429 => limited += 1,
                        s => panic!("status {s}"),
                    }
                }
                (ok, limited)
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

#[test]
fn two_processes_share_one_limit_and_show_redis_in_their_metrics() {
    on_both_drivers(|| {
        let mut redis = Redis::start();
        let origin = Origin::start(|_| (200, "hi".into()));
        let (da, db) = (TempDir::new(), TempDir::new());
        let mut a = Ringside::start(&da, &config(origin.addr, redis.addr), &[]);
        let mut b = Ringside::start(&db, &config(origin.addr, redis.addr), &[]);
        let (in_a, in_b) = (a.listener("in"), b.listener("in"));
        let (admin_a, admin_b) = (a.admin(), b.admin());

        wait_for_room_in_the_minute(Duration::from_secs(10));
        let until = Instant::now() + Duration::from_millis(1500);
        let ta = std::thread::spawn(move || hammer(in_a, 6, until, "t0"));
        let tb = std::thread::spawn(move || hammer(in_b, 6, until, "t0"));
        let ((pa, la), (pb, lb)) = (ta.join().unwrap(), tb.join().unwrap());
        let passed = pa + pb;
        let workers = 2 * WORKERS;
        let bound = workers * (LIMIT.div_ceil(64) + 20);
        eprintln!(
            "{}: two processes, {workers} workers, limit {LIMIT}/min: {passed} let through \
             ({pa} + {pb}), overshoot {}, {} refused; bound {bound}",
            driver(),
            passed.saturating_sub(LIMIT),
            la + lb
        );
        assert!(
            passed >= LIMIT,
            "{passed} let through, the limit is {LIMIT}"
        );
        assert!(
            passed <= LIMIT + bound,
            "{passed} let through, at most {} expected",
            LIMIT + bound
        );
        for (admin, limited) in [(admin_a, la), (admin_b, lb)] {
            let (_, m) = scrape(admin);
            assert_eq!(
                sum(&m, "ringside_rate_limited_total", &[("route", "all")]),
                limited as f64
            );
            assert!(
                value(
                    &m,
                    "ringside_ratelimit_redis_syncs_total",
                    &[("redis", "limits")]
                ) > 0.0
            );
            assert_eq!(
                value(
                    &m,
                    "ringside_ratelimit_redis_failures_total",
                    &[("redis", "limits")]
                ),
                0.0
            );
            assert!(
                value(
                    &m,
                    "ringside_ratelimit_redis_connected_workers",
                    &[("redis", "limits")]
                ) >= 1.0
            );
        }

        // Redis gone: a worker finds out at its next sync; from then on requests pass, and
        // /metrics says so.
        redis.kill();
        eventually("failures and fail-open decisions in /metrics", || {
            assert_eq!(
                send(in_a, "GET", "/", &[("x-tenant", "t1")], "").status,
                200
            );
            let (_, m) = scrape(admin_a);
            let failures = value(
                &m,
                "ringside_ratelimit_redis_failures_total",
                &[("redis", "limits")],
            );
            let open = sum(
                &m,
                "ringside_gateway_events_total",
                &[("event", "ratelimit_fail_open")],
            );
            (failures > 0.0 && open > 0.0).then_some(())
        });
        drop((a, b));
    });
}
