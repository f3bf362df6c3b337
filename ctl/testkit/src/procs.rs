//! Processes: the binaries, a running `ringside-ctld`, a running `ringside` proxy. Each is
//! stopped by its own pid (SIGCONT, SIGTERM, then SIGKILL after [`WAIT`]) when dropped.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use ringside_wire::{Conn, CtldStatus, NodeStatus, Peer, Reply, Request};

use crate::{wait_for, WAIT};

/// The binary `bin` of `package`, beside the running test (`target/<profile>/`), built
/// first if it is not there or older than a source file it is made from (Cargo gives a
/// test the path of its own package's binaries only). Built only then: a build from here
/// resolves features without the dev-dependencies and makes the next `cargo test` build it
/// again, once. `cargo test -p ringside-ctld -p ringsidectl` builds both daemons' binaries
/// itself; the `ringside` proxy is built here when a test of another package needs it, and
/// again when the engine, config or proxy sources changed since (a test never runs an old
/// proxy against new code without saying so).
pub fn binary(package: &str, bin: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> → target/<profile>
    let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let path = profile_dir.join(bin);
    // The binaries this process checked (and built if they needed it): once each.
    static CHECKED: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut checked = CHECKED.lock().unwrap_or_else(|p| p.into_inner());
    if checked.iter().any(|b| b == bin) {
        return path;
    }
    checked.push(bin.to_owned());
    let stale = |built: std::time::SystemTime| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let dirs: &[&str] = if package == "ringside-proxy" {
            &["core", "proxy", "gateway"]
        } else {
            &["core", "ctl"]
        };
        dirs.iter().any(|d| newer_source(&root.join(d), built))
    };
    let built = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
    if built.is_none_or(stale) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let target_dir = profile_dir.parent().unwrap();
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "-p", package, "--bin", bin])
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

/// Whether a `.rs` or `.toml` file under `dir` (not in a `target` directory) was changed
/// after `than`.
fn newer_source(dir: &Path, than: std::time::SystemTime) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let p = e.path();
        let Ok(kind) = e.file_type() else {
            return false;
        };
        if kind.is_dir() {
            return p.file_name().is_some_and(|n| n != "target") && newer_source(&p, than);
        }
        let source = p.extension().is_some_and(|x| x == "rs" || x == "toml");
        source
            && e.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|m| m > than)
    })
}

pub fn ctld_binary() -> PathBuf {
    binary("ringside-ctld", "ringside-ctld")
}

pub fn ringside_binary() -> PathBuf {
    binary("ringside-proxy", "ringside")
}

/// Sends `sig` to `pid`.
pub fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on a pid this harness spawned and has not waited for yet.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// SIGTERM, then SIGKILL after [`WAIT`]; the exit status.
pub(crate) fn terminate(child: &mut Child) -> std::process::ExitStatus {
    signal(child.id(), libc::SIGCONT);
    signal(child.id(), libc::SIGTERM);
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

/// Temporary config dir, state dir and socket path.
pub struct Dirs {
    pub tmp: tempfile::TempDir,
}

impl Default for Dirs {
    fn default() -> Dirs {
        Dirs::new()
    }
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
    /// Writes a file in the temporary directory; its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
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
        Ctld::start_at(dirs, &dirs.socket(), extra)
    }

    /// With the socket at `socket`.
    pub fn start_at(dirs: &Dirs, socket: &Path, extra: &[&str]) -> Ctld {
        static N: Mutex<u32> = Mutex::new(0);
        let n = {
            let mut n = N.lock().unwrap_or_else(|p| p.into_inner());
            *n += 1;
            *n
        };
        let log = dirs.tmp.path().join(format!("ctld-{n}.log"));
        let child = Command::new(ctld_binary())
            .arg("--socket")
            .arg(socket)
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
            socket: socket.to_path_buf(),
            log,
        };
        wait_for("ctld's socket", WAIT, || {
            UnixStream::connect(&ctld.socket).ok()
        });
        ctld
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
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

    pub fn apply(&self, node: Option<&str>, text: &str) -> Reply {
        self.call(Request::Apply {
            node: node.map(str::to_owned),
            selector: None,
            config: text.to_owned(),
            no_wait: false,
        })
    }

    /// SIGTERM, then the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        terminate(&mut child)
    }
}

impl Drop for Ctld {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c);
        }
    }
}

/// The `applied` entries of a reply, or panic.
pub fn applied(reply: Reply) -> Vec<ringside_wire::NodeApplied> {
    match reply {
        Reply::Applied { nodes } => nodes,
        other => panic!("applied expected, got {other:?}"),
    }
}

/// A running `ringside` proxy connected to ctld; stopped (SIGCONT, SIGTERM) on drop.
pub struct Proxy {
    child: Option<Child>,
    pub control: PathBuf,
}

impl Proxy {
    /// `ringside run --config CONFIG --node-id NODE --ctld CTLD --control-socket DIR/NODE.sock`.
    pub fn start(ctld: &Path, node: &str, config: &Path, dir: &Path) -> Proxy {
        Proxy::spawn(ctld, node, Some(config), dir)
    }

    /// Without `--config`: it binds nothing until ctld's first push, and takes its process
    /// settings (`[proxy] driver`, `workers`) from it.
    pub fn start_from_ctld(ctld: &Path, node: &str, dir: &Path) -> Proxy {
        Proxy::spawn(ctld, node, None, dir)
    }

    fn spawn(ctld: &Path, node: &str, config: Option<&Path>, dir: &Path) -> Proxy {
        let control = dir.join(format!("{node}.sock"));
        let mut cmd = Command::new(ringside_binary());
        cmd.arg("run");
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        let child = cmd
            .args(["--node-id", node])
            .arg("--ctld")
            .arg(ctld)
            .arg("--control-socket")
            .arg(&control)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ringside");
        Proxy {
            child: Some(child),
            control,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// SIGSTOP: the process stops reading its sockets.
    pub fn freeze(&self) {
        signal(self.pid(), libc::SIGSTOP);
    }

    pub fn thaw(&self) {
        signal(self.pid(), libc::SIGCONT);
    }

    pub fn stop(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        terminate(&mut child)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c);
        }
    }
}
