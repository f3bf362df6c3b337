//! Harness for ringsidectl's tests: run the real `ringsidectl` binary against the real
//! `ringside-ctld` (started on temporary directories) with fake proxies — threads speaking
//! the wire protocol — on the other side, or against a fake proxy control socket.
//! Every wait is bounded by [`WAIT`].

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ringside_wire::{Conn, Frame, Peer, Reply, Request};

pub const WAIT: Duration = Duration::from_secs(10);

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

/// The `ringside-ctld` binary. Cargo provides only this package's binary to its tests, so
/// the daemon is looked up beside it, and built first if it is not there yet.
pub fn ctld_binary() -> PathBuf {
    sibling_binary("ringside-ctld", "ringside-ctld")
}

/// The `ringside` proxy binary, found or built the same way.
pub fn ringside_binary() -> PathBuf {
    sibling_binary("ringside-proxy", "ringside")
}

fn sibling_binary(package: &str, bin: &str) -> PathBuf {
    let ctl = PathBuf::from(env!("CARGO_BIN_EXE_ringsidectl"));
    let path = ctl.with_file_name(bin);
    static BUILD: Mutex<()> = Mutex::new(());
    let _guard = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        // target/<profile>/ringsidectl → the target dir is two levels up.
        let profile_dir = ctl.parent().unwrap();
        let target_dir = profile_dir.parent().unwrap();
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", package, "--bin", bin])
            .env("CARGO_TARGET_DIR", target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if profile_dir.file_name().is_some_and(|p| p == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "cargo build -p {package} failed");
    }
    path
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

/// A fake proxy connected to ctld; acknowledges every push.
pub struct FakeProxy {
    pub pushes: Arc<Mutex<Vec<u64>>>,
    stream: UnixStream,
}

impl FakeProxy {
    pub fn connect(socket: &Path, node: &str) -> FakeProxy {
        let mut conn = Conn::connect(socket).unwrap();
        ringside_wire::client_handshake(
            &mut conn,
            Peer::Proxy {
                node_id: node.into(),
                role: "sidecar".into(),
                generation: 0,
            },
        )
        .unwrap();
        let stream = conn.stream().try_clone().unwrap();
        let pushes = Arc::new(Mutex::new(Vec::new()));
        let p = pushes.clone();
        thread::spawn(move || {
            while let Ok(Frame::Request { id, request }) = conn.recv() {
                let reply = match request {
                    Request::PushConfig { generation, .. } => {
                        p.lock().unwrap().push(generation);
                        Reply::Ack { generation }
                    }
                    _ => Reply::error("not served"),
                };
                if conn.reply(id, reply).is_err() {
                    return;
                }
            }
        });
        FakeProxy { pushes, stream }
    }
}

impl Drop for FakeProxy {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
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

pub fn config(body: &str) -> String {
    format!(
        r#"[[listeners]]
name = "inbound"
bind = "127.0.0.1:0"

[[routes]]
listener = "inbound"
name = "api"
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
