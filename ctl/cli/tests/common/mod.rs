//! Harness for ringsidectl's tests: run the real `ringsidectl` binary against the real
//! `ringside-ctld` (started on temporary directories) with fake proxies on the other side,
//! or against a fake proxy control socket. The shared parts (binaries, `FakeProxy`,
//! `wait_for`, `config`) are in `ctl/testkit`.

#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub use ringside_ctl_testkit::{
    config, ctld_binary, free_port, ringside_binary, wait_for, FakeProxy, WAIT,
};
use ringside_wire::{Conn, Frame, Reply, Request};

/// One run of ringsidectl.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

/// Runs `ringsidectl ARGS` with `XDG_RUNTIME_DIR` pointing at `runtime` (so that default
/// socket paths stay inside the test's directory).
pub fn ctl_in(runtime: &Path, args: &[&str]) -> Run {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_ringsidectl"))
        .args(args)
        .env("XDG_RUNTIME_DIR", runtime)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Temporary directories and a running ringside-ctld; stopped on drop.
pub struct Env {
    pub tmp: tempfile::TempDir,
    child: Option<Child>,
}

impl Env {
    pub fn start() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let child = Command::new(ctld_binary())
            .arg("--socket")
            .arg(tmp.path().join("ringside/ctld.sock"))
            .arg("--config-dir")
            .arg(tmp.path().join("config"))
            .arg("--state-dir")
            .arg(tmp.path().join("state"))
            .arg("--ack-timeout-ms")
            .arg("2000")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let env = Env {
            tmp,
            child: Some(child),
        };
        let socket = env.socket();
        wait_for("ctld's socket", WAIT, || UnixStream::connect(&socket).ok());
        env
    }

    /// The daemon's socket: `$XDG_RUNTIME_DIR/ringside/ctld.sock`, the default path.
    pub fn socket(&self) -> PathBuf {
        self.tmp.path().join("ringside/ctld.sock")
    }

    pub fn socket_arg(&self) -> String {
        self.socket().to_string_lossy().into_owned()
    }

    /// Runs ringsidectl with this environment's runtime dir (so the default --socket is ours).
    pub fn ctl(&self, args: &[&str]) -> Run {
        ctl_in(self.tmp.path(), args)
    }

    pub fn write(&self, name: &str, text: &str) -> String {
        let p = self.tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on a child we spawned and have not waited for yet.
            unsafe {
                libc::kill(c.id() as libc::pid_t, libc::SIGTERM);
            }
            let deadline = Instant::now() + WAIT;
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(10));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A fake proxy control socket: answers `status`, `drain`, `upgrade` with scripted replies
/// and records every request.
pub struct FakeControl {
    pub path: PathBuf,
    pub requests: Arc<Mutex<Vec<Request>>>,
}

impl FakeControl {
    pub fn start(path: PathBuf) -> FakeControl {
        let listener = ringside_wire::bind_socket(&path).unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let r = requests.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let mut conn = Conn::new(stream);
                if ringside_wire::server_handshake(&mut conn, "ringside 0.1.0").is_err() {
                    continue;
                }
                while let Ok(Frame::Request { id, request }) = conn.recv() {
                    r.lock().unwrap().push(request.clone());
                    let reply = match request {
                        Request::Status => Reply::ProxyStatus(proxy_status()),
                        Request::Drain => Reply::Ok,
                        Request::Upgrade { .. } => Reply::Upgraded {
                            old_pid: 100,
                            new_pid: 200,
                        },
                        other => Reply::error(format!("{} is not served here", other.name())),
                    };
                    if conn.reply(id, reply).is_err() {
                        break;
                    }
                }
            }
        });
        FakeControl { path, requests }
    }
}

pub fn proxy_status() -> ringside_wire::ProxyStatus {
    ringside_wire::ProxyStatus {
        node_id: Some("web-1".into()),
        labels: Default::default(),
        traffic: None,
        role: "sidecar".into(),
        generation: 7,
        config_hash: "00000000deadbeef".into(),
        driver: "epoll".into(),
        workers: 2,
        listeners: vec![ringside_wire::ListenerStatus {
            name: "inbound".into(),
            address: "127.0.0.1:15006".into(),
            protocol: "http".into(),
        }],
        connections: 3,
        draining: false,
        ctld_connected: true,
        uptime_s: 125,
        pid: 100,
    }
}

/// A config with one listener on `port` whose `/hello` answers `body`.
pub fn site(port: u16, body: &str) -> String {
    format!(
        r#"[[listeners]]
name = "inbound"
bind = "127.0.0.1:{port}"

[[routes]]
listener = "inbound"
name = "hello"
match = {{ path_exact = "/hello" }}
direct_response = {{ status = 200, body = "{body}" }}
"#
    )
}

/// GET /hello through the proxy: the body of a 200, or None.
pub fn hello(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(WAIT)).ok()?;
    s.write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    if !out.starts_with("HTTP/1.1 200") {
        return None;
    }
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())
}
