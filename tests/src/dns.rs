//! A real DNS server for the endpoint-name tests: Debian's `dnsmasq` (package
//! `dnsmasq-base`; `scripts/install-test-deps` installs it), on an ephemeral loopback port,
//! answering only from a hosts file the test writes (`--no-resolv --no-hosts
//! --addn-hosts=FILE`, TTL 1 s). [`Dnsmasq::set`] rewrites the file and has the server read it
//! again (SIGHUP, which also clears its cache); [`Dnsmasq::stop`] kills it by its PID and
//! [`Dnsmasq::restart`] starts it again on the same port. Never the system's resolver.

use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};

use crate::{eventually, WAIT};

/// One `dnsmasq` process of a test.
pub struct Dnsmasq {
    child: Option<Child>,
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Dnsmasq {
    /// Starts a server on a free loopback port answering from `hosts` (`/etc/hosts` lines,
    /// e.g. `"127.0.0.2 app.test\n"`), and waits until it answers.
    pub fn start(hosts: &str) -> Dnsmasq {
        let addr = free_port();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        // dnsmasq started as root reads the file as `nobody`.
        let _ = std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        );
        let mut d = Dnsmasq {
            child: None,
            addr,
            dir,
        };
        d.write(hosts);
        // Another test may take the port meanwhile: then try another.
        for _ in 0..5 {
            if d.spawn() {
                return d;
            }
            d.addr = free_port();
        }
        panic!("dnsmasq did not start on a free port")
    }

    fn file(&self) -> std::path::PathBuf {
        self.dir.path().join("hosts")
    }

    fn write(&self, hosts: &str) {
        let tmp = self.dir.path().join("hosts.new");
        std::fs::write(&tmp, hosts).unwrap_or_else(|e| panic!("write hosts: {e}"));
        let _ = std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o644));
        std::fs::rename(&tmp, self.file()).unwrap_or_else(|e| panic!("rename hosts: {e}"));
    }

    /// Replaces the records with `hosts` and has the server read them (SIGHUP).
    pub fn set(&self, hosts: &str) {
        self.write(hosts);
        if let Some(child) = &self.child {
            let pid = child.id() as libc::pid_t;
            // SAFETY: signals the dnsmasq process this test started, by its PID.
            let rc = unsafe { libc::kill(pid, libc::SIGHUP) };
            assert_eq!(rc, 0, "SIGHUP to dnsmasq ({pid})");
        }
    }

    /// Starts the server again, after [`Dnsmasq::stop`], on the same port.
    pub fn restart(&mut self) {
        assert!(self.spawn(), "dnsmasq did not start again on {}", self.addr);
    }

    /// Starts the server on `self.addr`: whether it answers there.
    fn spawn(&mut self) -> bool {
        assert!(self.child.is_none(), "dnsmasq is already running");
        let binary = ["/usr/sbin/dnsmasq", "/sbin/dnsmasq"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("dnsmasq");
        let child = Command::new(binary)
            .args([
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--no-negcache",
                "--local-ttl=1",
                "--bind-interfaces",
                "--listen-address=127.0.0.1",
                "--pid-file=",
                "--log-facility=-",
            ])
            .arg(format!("--port={}", self.addr.port()))
            .arg(format!("--addn-hosts={}", self.file().display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start dnsmasq ({e}): run scripts/install-test-deps")
            });
        self.child = Some(child);
        let addr = self.addr;
        let up = eventually(WAIT, || {
            answers(addr)
                || self
                    .child
                    .as_mut()
                    .is_some_and(|c| !matches!(c.try_wait(), Ok(None)))
        }) && answers(addr);
        if !up {
            self.stop();
        }
        up
    }

    /// Kills the server (by its PID) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback port free for both UDP and TCP now (bound, then released): dnsmasq takes both.
fn free_port() -> SocketAddr {
    loop {
        let t = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = t.local_addr().unwrap_or_else(|e| panic!("addr: {e}"));
        if UdpSocket::bind(addr).is_ok() {
            return addr;
        }
    }
}

/// Whether a server on `addr` answers a query (for the root's NS: any answer will do).
fn answers(addr: SocketAddr) -> bool {
    let Ok(s) = UdpSocket::bind("127.0.0.1:0") else {
        return false;
    };
    let _ = s.set_read_timeout(Some(std::time::Duration::from_millis(200)));
    // Header: id 0x1234, recursion desired, one question; question: root, type NS, class IN.
    let query = [
        0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1,
    ];
    if s.send_to(&query, addr).is_err() {
        return false;
    }
    let mut buf = [0u8; 512];
    matches!(s.recv_from(&mut buf), Ok((n, _)) if n >= 12 && buf[0] == 0x12 && buf[1] == 0x34)
}
