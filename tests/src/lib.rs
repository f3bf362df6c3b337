//! The end-to-end harness: start origins, start ringside with a config, send requests, assert.
//!
//! ```text
//! Client (std TcpStream) ──▶ Proxy (ringside_engine, in-process) ──▶ Origin (std threads)
//! ```
//!
//! - [`both_drivers!`] turns one test body into two tests, `<name>::io_uring` and
//!   `<name>::epoll`.
//! - [`Proxy::start`] runs the engine on a config and shuts it down (gracefully) on drop.
//! - [`origin::Origin`] is a scripted HTTP/1.1 server that records every request it received
//!   and counts its connections; [`h2origin::H2Origin`] is its HTTP/2 (h2c) counterpart;
//!   [`origin::TcpEcho`] is a raw TCP echo server.
//! - [`redis::Redis`] is a real `redis-server` on a loopback port (global rate limits),
//!   stopped and started again at will.
//! - [`client::Client`] sends exact bytes and reads one response at a time.
//! - [`nginx::Nginx`] is a real nginx reverse proxy in front of an origin, for differential
//!   tests (`tests/http1_against_nginx.rs`); [`differential::play`] records what the origin
//!   and the client saw of one exchange through a proxy.
//! - [`table`] runs the behaviour table (`tests/behaviour_table.rs`): every row over every
//!   downstream and upstream protocol.
//!
//! Everything listens on 127.0.0.1 with ephemeral ports; every wait is bounded.

#![allow(clippy::unwrap_used)]

pub mod certs;
pub mod client;
pub mod differential;
pub mod dns;
pub mod h2origin;
pub mod jwt;
pub mod nginx;
pub mod origin;
pub mod python;
pub mod redis;
pub mod table;
pub mod tools;

use std::fmt::Display;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub use client::{get, hammer, Client, Response};
pub use origin::{http_response, ok, Origin, Reply, Request, TcpEcho};
pub use ringside_engine::{ActiveDriver, Reloaded, ServerHandle};

/// How long any single wait in a test may take before it counts as a failure.
pub const WAIT: Duration = Duration::from_secs(10);

/// The I/O driver a test runs the proxy on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    IoUring,
    Epoll,
}

impl Driver {
    /// The value of `proxy.driver` in a config file.
    pub fn toml(self) -> &'static str {
        match self {
            Driver::IoUring => "io_uring",
            Driver::Epoll => "epoll",
        }
    }

    pub fn active(self) -> ActiveDriver {
        match self {
            Driver::IoUring => ActiveDriver::IoUring,
            Driver::Epoll => ActiveDriver::Epoll,
        }
    }
}

/// Defines one test per driver:
///
/// ```ignore
/// both_drivers!(fn keep_alive_reuses_upstream(d) { let p = Proxy::start(d, "..."); ... });
/// ```
/// expands to the tests `keep_alive_reuses_upstream::io_uring` and
/// `keep_alive_reuses_upstream::epoll`.
#[macro_export]
macro_rules! both_drivers {
    ($(#[$meta:meta])* fn $name:ident($d:ident) $body:block) => {
        $(#[$meta])*
        #[allow(clippy::unwrap_used)] // a test's body, like a #[test] fn
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn run($d: $crate::Driver) $body

            #[test]
            fn io_uring() {
                run($crate::Driver::IoUring)
            }

            #[test]
            fn epoll() {
                run($crate::Driver::Epoll)
            }
        }
    };
}

/// Replaces `$name` placeholders in a config template, e.g.
/// `toml("endpoints = [\"$a\"]", &[("a", &origin.addr())])`. Longer names are replaced first
/// so that `$a` never eats the start of `$ab`.
pub fn toml(template: &str, vars: &[(&str, &dyn Display)]) -> String {
    let mut vars: Vec<_> = vars.iter().collect();
    vars.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
    let mut text = template.to_string();
    for (name, value) in vars {
        text = text.replace(&format!("${name}"), &value.to_string());
    }
    text
}

/// Extra keys for [`basic_config`], each a few `key = value` lines.
#[derive(Debug, Default, Clone, Copy)]
pub struct Extra<'a> {
    /// Lines added to the `[proxy]` table (e.g. `workers = 2`).
    pub proxy: &'a str,
    /// Lines added to the listener `in` (e.g. `max_uri_bytes = 64`).
    pub listener: &'a str,
    /// Lines added to the route `all` (e.g. `timeout_ms = 300`).
    pub route: &'a str,
    /// Lines added to the cluster `app` (e.g. `lb = "ring_hash"`).
    pub cluster: &'a str,
}

/// The common shape: one HTTP listener `in`, one catch-all route `all` to cluster `app`
/// whose endpoints are `endpoints`.
pub fn basic_config(endpoints: &[SocketAddr], extra: Extra<'_>) -> String {
    let endpoints: Vec<String> = endpoints.iter().map(|a| format!("\"{a}\"")).collect();
    endpoints_config(&endpoints, extra)
}

/// A cluster's HTTP health check of `/healthz` every 100 ms, one result deciding (see
/// [`Origin::health_checked`]): the last lines of a cluster's keys.
pub const HEALTH_CHECK: &str = "[clusters.health_check]\nhttp_path = \"/healthz\"\ninterval_ms = 100\ntimeout_ms = 80\nunhealthy_threshold = 1\nhealthy_threshold = 1\n";

/// [`basic_config`] with each endpoint as written in the file (`"IP:port"`, or a table
/// such as `{ address = "IP:port", zone = "z1" }`).
pub fn endpoints_config(endpoints: &[String], extra: Extra<'_>) -> String {
    format!(
        "{proxy}\n\
         [[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n{listener}\n\
         [[routes]]\nlistener = \"in\"\nname = \"all\"\ncluster = \"app\"\n{route}\n\
         [[clusters]]\nname = \"app\"\nendpoints = [{eps}]\n{cluster}\n",
        proxy = extra.proxy,
        listener = extra.listener,
        route = extra.route,
        cluster = extra.cluster,
        eps = endpoints.join(", "),
    )
}

/// Builds the whole file from a test's text: a `[proxy]` table selecting `driver` comes
/// first, so any `key = value` lines at the top of `text` (before its first table) are
/// `[proxy]` keys. `drain_timeout_ms` defaults to 3000 here so a failing test never hangs
/// on drop.
pub fn full_config(driver: Driver, text: &str) -> String {
    let drain = if text.contains("drain_timeout_ms") {
        ""
    } else {
        "drain_timeout_ms = 3000\n"
    };
    format!("[proxy]\ndriver = \"{}\"\n{drain}{text}", driver.toml())
}

/// Parses a config the way a test means it: panics with every error if it is invalid.
pub fn parse(driver: Driver, text: &str) -> ringside_config::Config {
    let full = full_config(driver, text);
    match ringside_config::parse(&full) {
        Ok(c) => c,
        Err(e) => panic!("test config is invalid:\n{e}\n--- config ---\n{full}"),
    }
}

/// A running engine, shut down gracefully when dropped.
pub struct Proxy {
    pub handle: ServerHandle,
    pub driver: Driver,
}

impl Proxy {
    /// Starts the engine on `text` (see [`full_config`]) with the given driver.
    pub fn start(driver: Driver, text: &str) -> Proxy {
        let handle =
            match ringside_engine::start(parse(driver, text), ringside_proxy::stack::stacks()) {
                Ok(h) => h,
                Err(e) => panic!("ringside did not start on {}: {e}", driver.toml()),
            };
        assert_eq!(
            handle.driver(),
            driver.active(),
            "the driver asked for is the driver running"
        );
        Proxy { handle, driver }
    }

    /// The bound address of a listener.
    pub fn addr(&self, listener: &str) -> SocketAddr {
        self.handle
            .local_addr(listener)
            .unwrap_or_else(|| panic!("no listener named {listener:?}"))
    }

    /// A listener's counter or gauge summed over the workers, e.g.
    /// `p.listener_total("in", |l| l.open)`.
    pub fn listener_total(
        &self,
        listener: &str,
        f: impl Fn(&ringside_engine::metrics::ListenerReport) -> u64,
    ) -> u64 {
        self.handle
            .metrics()
            .iter()
            .flat_map(|w| w.listeners.iter())
            .filter(|l| l.listener == listener)
            .map(f)
            .sum()
    }

    /// What the active health checks last found of endpoint `i` of `cluster`.
    pub fn checked(&self, cluster: &str, i: usize) -> Option<ringside_engine::Checked> {
        let health = self.handle.health();
        let c = health.iter().find(|c| c.cluster == cluster);
        let c = c.unwrap_or_else(|| panic!("no cluster named {cluster:?}"));
        c.endpoints[i].checked
    }

    /// Reloads with `text` on the same driver.
    pub fn reload(&self, text: &str) -> Reloaded {
        match self.handle.reload(parse(self.driver, text)) {
            Ok(r) => r,
            Err(e) => panic!("reload failed: {e}"),
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// Polls `cond` until it holds or `timeout` passes; returns whether it held.
pub fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// An address on 127.0.0.1 where nothing listens, and nothing will for the rest of the test
/// process: connecting to it is refused.
///
/// The port stays reserved by a socket that is bound without `SO_REUSEADDR` and never
/// listens, so no listener of this process or of another (another test's proxy, an origin, a
/// redis) can take it between the moment it is picked and the moment a request goes to it. A
/// port bound and then released is not dead: tests run in parallel, and the kernel hands
/// released ports out again.
pub fn closed_port() -> SocketAddr {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    // Held until the process exits: one descriptor per dead port.
    std::mem::forget(socket);
    addr
}

/// A port on 127.0.0.1 that was free a moment ago, for a server started by a test (nginx,
/// redis) that must bind it itself. Another process can take it first; callers that care
/// retry.
pub fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A deterministic byte pattern for large bodies: `pattern_byte(i)` is the i-th byte.
pub fn pattern_byte(i: u64) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ (i as u8)
}

/// `len` bytes of [`pattern_byte`] starting at `offset`.
pub fn pattern(offset: u64, len: usize) -> Vec<u8> {
    (0..len as u64).map(|i| pattern_byte(offset + i)).collect()
}

/// `read`, retried when a signal interrupts it (`EINTR`): the engine's io_uring set-up can
/// interrupt a blocking read of the thread that started it.
pub fn read_retrying(s: &mut impl std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match s.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// How many of `n` requests, sent one after another on one connection to listener `in`,
/// each origin answered, by body (every answer must be 200).
pub fn spread(
    p: &Proxy,
    n: usize,
    request: impl Fn(usize) -> Vec<u8>,
) -> std::collections::HashMap<String, usize> {
    let mut c = Client::connect(p.addr("in"));
    let mut seen = std::collections::HashMap::new();
    for i in 0..n {
        let r = c.request(&request(i));
        assert_eq!(r.status, 200, "request {i}: {}", r.text());
        *seen.entry(r.text()).or_insert(0) += 1;
    }
    seen
}
