//! A real `redis-server` (Debian's package; `scripts/install-test-deps` installs it) for the
//! global rate limits' tests: started on an ephemeral loopback port with no persistence,
//! stopped by its PID, started again on the same port. Never the system's service.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{eventually, WAIT};

/// One `redis-server` process of a test.
pub struct Redis {
    child: Option<Child>,
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Redis {
    /// Starts a server on a free loopback port and waits until it answers `PING`.
    pub fn start() -> Redis {
        let addr = crate::free_port();
        let mut r = Redis {
            child: None,
            addr,
            dir: tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}")),
        };
        r.restart();
        r
    }

    /// Starts the server again on the same port (after [`Redis::stop`]); empty, since it
    /// keeps nothing on disk.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "redis-server is already running");
        let port = self.addr.port().to_string();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}): run scripts/install-test-deps")
            });
        self.child = Some(child);
        let addr = self.addr;
        assert!(
            eventually(WAIT, || ping(addr)),
            "redis-server did not answer PING on {addr}"
        );
    }

    /// Kills the server (by its PID) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends one inline command (`GET key`, `KEYS pattern`) and returns the reply's lines
    /// without their RESP type markers and lengths: `GET` gives `["12"]`, `KEYS` the names.
    pub fn command(&self, line: &str) -> Vec<String> {
        let mut s = TcpStream::connect(self.addr).unwrap_or_else(|e| panic!("redis: {e}"));
        s.set_read_timeout(Some(WAIT)).unwrap_or_default();
        s.write_all(format!("{line}\r\n").as_bytes())
            .unwrap_or_else(|e| panic!("redis: {e}"));
        let mut r = BufReader::new(s);
        let mut first = String::new();
        r.read_line(&mut first).unwrap_or_default();
        let first = first.trim_end();
        let read_bulk = |r: &mut BufReader<TcpStream>| {
            let mut len = String::new();
            r.read_line(&mut len).unwrap_or_default();
            if len.starts_with("$-1") {
                return None;
            }
            let mut value = String::new();
            r.read_line(&mut value).unwrap_or_default();
            Some(value.trim_end().to_owned())
        };
        match first.split_at(first.len().min(1)) {
            ("*", n) => {
                let n: usize = n.parse().unwrap_or(0);
                (0..n).filter_map(|_| read_bulk(&mut r)).collect()
            }
            ("$", "-1") => Vec::new(),
            ("$", _) => {
                let mut value = String::new();
                r.read_line(&mut value).unwrap_or_default();
                vec![value.trim_end().to_owned()]
            }
            (_, rest) => vec![rest.to_owned()],
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn ping(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).is_ok() && line.starts_with("+PONG")
}
