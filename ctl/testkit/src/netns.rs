//! Proxies in network namespaces of their own, as in pods: every one binds the same port on
//! its own loopback, and reaches ctld through a Unix socket (the filesystem is shared). The
//! test reaches into a namespace from a thread of its own ([`in_netns`]): `setns(2)` moves
//! only the calling thread. Needs CAP_SYS_ADMIN (root, as the test command runs in CI).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::procs::{ringside_binary, terminate};
use crate::{wait_for, WAIT};

/// A `ringside` process in a new network namespace (loopback up); stopped on drop.
pub struct NsProxy {
    child: Option<Child>,
    pub node: String,
    pub control: PathBuf,
}

impl NsProxy {
    /// `ringside run --config CONFIG --node-id NODE --ctld CTLD --node-label L...` in a
    /// network namespace of its own; its control socket is `DIR/NODE.sock`.
    pub fn start(ctld: &Path, node: &str, labels: &[&str], config: &Path, dir: &Path) -> NsProxy {
        let control = dir.join(format!("{node}.sock"));
        let mut cmd = Command::new("unshare");
        cmd.args([
            "--net",
            "--",
            "sh",
            "-c",
            "ip link set lo up && exec \"$0\" \"$@\"",
        ])
        .arg(ringside_binary())
        .arg("run")
        .arg("--config")
        .arg(config)
        .args(["--node-id", node])
        .arg("--ctld")
        .arg(ctld)
        .arg("--control-socket")
        .arg(&control);
        for l in labels {
            cmd.args(["--node-label", l]);
        }
        let log = std::fs::File::create(dir.join(format!("{node}.log"))).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start ringside in a network namespace (unshare --net needs CAP_SYS_ADMIN)");
        let p = NsProxy {
            child: Some(child),
            node: node.to_owned(),
            control,
        };
        // Serving: its namespace is made (until then /proc/PID/ns/net may be ours).
        wait_for("the proxy's control socket", WAIT, || {
            std::os::unix::net::UnixStream::connect(&p.control).ok()
        });
        let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
        assert_ne!(
            std::fs::read_link(p.netns()).unwrap(),
            ours,
            "a namespace of its own"
        );
        p
    }

    /// The process's pid (unshare and sh exec into ringside: one pid throughout).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The process's network namespace.
    pub fn netns(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/net", self.pid()))
    }
}

impl Drop for NsProxy {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c);
        }
    }
}

/// Runs `f` on a new thread inside the network namespace `ns` (a `/proc/PID/ns/net` path).
pub fn in_netns<T: Send + 'static>(
    ns: &Path,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let file = std::fs::File::open(ns).unwrap_or_else(|e| panic!("{}: {e}", ns.display()));
    std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        // SAFETY: setns(2) on a namespace fd this thread owns; it moves only this thread.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        drop(file);
        f()
    })
}
