//! Harness for the daemon's tests: start the real `ringside-ctld` binary on temporary
//! directories, talk to it as a CLI over the wire protocol, and connect fake proxies — threads
//! that say hello as a `proxy` peer and acknowledge (or refuse, or ignore) every push.
//! Every wait is bounded by [`WAIT`].

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ringside_wire::{Conn, CtldStatus, Frame, NodeStatus, Peer, Reply, Request};

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

/// Temporary config dir, state dir and socket path.
pub struct Dirs {
    pub tmp: tempfile::TempDir,
}

impl Dirs {
    pub fn new() -> Dirs {
        Dirs {
            tmp: tempfile::tempdir().unwrap(),
        }
    }
    pub fn config(&self) -> PathBuf {
        self.tmp.path().join("config")
    }
    pub fn state(&self) -> PathBuf {
        self.tmp.path().join("state")
    }
    pub fn socket(&self) -> PathBuf {
        self.tmp.path().join("run/ctld.sock")
    }
    /// Writes a config-dir file atomically (temp file + rename), as a deploy tool would.
    pub fn write_config(&self, name: &str, text: &str) {
        std::fs::create_dir_all(self.config()).unwrap();
        let tmp = self.tmp.path().join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.config().join(name)).unwrap();
    }
}

/// A running `ringside-ctld`; stopped (SIGTERM) on drop.
pub struct Ctld {
    child: Option<Child>,
    pub socket: PathBuf,
    log: PathBuf,
}

impl Ctld {
    pub fn start(dirs: &Dirs) -> Ctld {
        Ctld::start_with(dirs, &[])
    }

    pub fn start_with(dirs: &Dirs, extra: &[&str]) -> Ctld {
        let log = dirs
            .tmp
            .path()
            .join(format!("ctld-{}.log", Instant::now().elapsed().as_nanos()));
        let child = Command::new(env!("CARGO_BIN_EXE_ringside-ctld"))
            .arg("--socket")
            .arg(dirs.socket())
            .arg("--config-dir")
            .arg(dirs.config())
            .arg("--state-dir")
            .arg(dirs.state())
            .args(extra)
            .env("RUST_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start ringside-ctld");
        let ctld = Ctld {
            child: Some(child),
            socket: dirs.socket(),
            log,
        };
        wait_for("ctld's socket", WAIT, || {
            UnixStream::connect(&ctld.socket).ok()
        });
        ctld
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A CLI connection (hello done).
    pub fn cli(&self) -> Conn {
        let mut c = Conn::connect(&self.socket).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        ringside_wire::client_handshake(&mut c, Peer::Cli).unwrap();
        c
    }

    pub fn call(&self, request: Request) -> Reply {
        self.cli().call(request).unwrap()
    }

    pub fn status(&self) -> CtldStatus {
        match self.call(Request::Status) {
            Reply::CtldStatus(s) => s,
            other => panic!("ctld_status expected, got {other:?}"),
        }
    }

    pub fn node(&self, id: &str) -> Option<NodeStatus> {
        self.status().nodes.into_iter().find(|n| n.node_id == id)
    }

    /// SIGTERM, then the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        terminate(&mut child)
    }
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    // SAFETY: kill(2) with a pid we spawned and still own (not yet waited for).
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return child.wait().unwrap();
        }
        thread::sleep(Duration::from_millis(10));
    }
}

impl Drop for Ctld {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c);
        }
    }
}

/// How a fake proxy answers pushes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Behaviour {
    Ack,
    Refuse,
    Ignore,
}

/// A fake proxy: a thread holding a connection to ctld as a `proxy` peer.
pub struct FakeProxy {
    pub pushes: Arc<Mutex<Vec<(u64, String, Instant)>>>,
    stream: UnixStream,
    thread: Option<thread::JoinHandle<()>>,
}

impl FakeProxy {
    pub fn connect(socket: &Path, node: &str, generation: u64) -> FakeProxy {
        FakeProxy::connect_with(socket, node, generation, Behaviour::Ack)
    }

    pub fn connect_with(
        socket: &Path,
        node: &str,
        generation: u64,
        behaviour: Behaviour,
    ) -> FakeProxy {
        let mut conn = Conn::connect(socket).unwrap();
        ringside_wire::client_handshake(
            &mut conn,
            Peer::Proxy {
                node_id: node.into(),
                role: "sidecar".into(),
                generation,
            },
        )
        .unwrap();
        let stream = conn.stream().try_clone().unwrap();
        let pushes = Arc::new(Mutex::new(Vec::new()));
        let p = pushes.clone();
        let thread = thread::spawn(move || loop {
            let Ok(Frame::Request { id, request }) = conn.recv() else {
                return;
            };
            let reply = match request {
                Request::PushConfig { generation, config } => {
                    p.lock().unwrap().push((generation, config, Instant::now()));
                    match behaviour {
                        Behaviour::Ack => Reply::Ack { generation },
                        Behaviour::Refuse => Reply::Error {
                            message: format!("generation {generation} not applied"),
                            errors: vec!["listeners[0].bind: address in use".into()],
                        },
                        Behaviour::Ignore => continue,
                    }
                }
                other => Reply::error(format!("{} is not served here", other.name())),
            };
            if conn.reply(id, reply).is_err() {
                return;
            }
        });
        FakeProxy {
            pushes,
            stream,
            thread: Some(thread),
        }
    }

    pub fn generations(&self) -> Vec<u64> {
        self.pushes.lock().unwrap().iter().map(|p| p.0).collect()
    }

    pub fn last(&self) -> Option<(u64, String)> {
        self.pushes
            .lock()
            .unwrap()
            .last()
            .map(|p| (p.0, p.1.clone()))
    }

    /// Waits until a push of `generation` arrived; returns its text and arrival time.
    pub fn wait_push(&self, generation: u64) -> (String, Instant) {
        wait_for(&format!("push of generation {generation}"), WAIT, || {
            self.pushes
                .lock()
                .unwrap()
                .iter()
                .find(|p| p.0 == generation)
                .map(|p| (p.1.clone(), p.2))
        })
    }

    pub fn close(mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for FakeProxy {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
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

pub const INVALID: &str = "[proxy]\nworkers = 0\n";

pub fn apply(ctld: &Ctld, node: Option<&str>, text: &str) -> Reply {
    ctld.call(Request::Apply {
        node: node.map(str::to_owned),
        config: text.to_owned(),
        no_wait: false,
    })
}

/// The `applied` entries, or panic.
pub fn applied(reply: Reply) -> Vec<ringside_wire::NodeApplied> {
    match reply {
        Reply::Applied { nodes } => nodes,
        other => panic!("applied expected, got {other:?}"),
    }
}
