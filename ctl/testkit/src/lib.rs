//! The harness shared by `ctl/ctld/tests` and `ctl/cli/tests`: the real binaries (found
//! beside the running test, built when missing), a running
//! `ringside-ctld` on temporary directories, fake proxies (threads speaking the protocol),
//! the real `ringside` proxy as a process that can be frozen or run in a network namespace of
//! its own, and bounded waits. Every wait
//! is bounded by [`WAIT`]; every process is stopped by its pid.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test harness: a failure is a panic

mod fake;
mod netns;
mod procs;

use std::thread;
use std::time::{Duration, Instant};

pub use fake::{Behaviour, FakeProxy};
pub use netns::{in_netns, NsProxy};
pub use procs::{applied, binary, ctld_binary, ringside_binary, signal, Ctld, Dirs, Proxy};

pub const WAIT: Duration = Duration::from_secs(10);

/// Polls `f` until it returns `Some`, or panics after `timeout` naming `what`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// A valid configuration whose one direct response says `body`.
pub fn config(body: &str) -> String {
    format!(
        r#"# served by a test
[[listeners]]
name = "inbound"
bind = "127.0.0.1:0"

[[routes]]
listener = "inbound"
name = "api"
# the split
weighted = [ {{ cluster = "v1", weight = 90 }}, {{ cluster = "v2", weight = 10 }} ]

[[routes]]
listener = "inbound"
name = "hello"
match = {{ path_exact = "/hello" }}
direct_response = {{ status = 200, body = "{body}" }}

[[clusters]]
name = "v1"
endpoints = [ "127.0.0.1:9001" ]

[[clusters]]
name = "v2"
endpoints = [ "127.0.0.1:9002" ]
"#
    )
}

/// A configuration that does not validate, for one reason (`proxy.workers`).
pub const INVALID: &str =
    "[proxy]\nworkers = 0\n[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n";

/// A free TCP port on loopback (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
