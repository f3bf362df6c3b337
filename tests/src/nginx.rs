//! A real nginx (Debian's `nginx`, which `scripts/install-test-deps` installs) as a reverse
//! proxy in front of one origin, for differential tests: started on a loopback port with a
//! generated configuration in a temporary directory, stopped by its PID when dropped.
//!
//! The configuration is what a production reverse proxy runs ([`NGINX_CONF`]): HTTP/1.1 to a
//! keep-alive upstream, the client's `Host` passed on, request bodies streamed (no request
//! buffering).

use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{eventually, free_port, WAIT};

/// The configuration, `$prefix`, `$port` and `$origin` filled in by [`Nginx::start`].
pub const NGINX_CONF: &str = "\
daemon off;
master_process on;
worker_processes 1;
pid $prefix/nginx.pid;
error_log $prefix/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $prefix/body;
    proxy_temp_path $prefix/proxy;
    fastcgi_temp_path $prefix/fastcgi;
    uwsgi_temp_path $prefix/uwsgi;
    scgi_temp_path $prefix/scgi;
    upstream origin {
        server $origin;
        keepalive 16;
    }
    server {
        listen 127.0.0.1:$port;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Host $host;
            proxy_request_buffering off;
        }
    }
}
";

/// A running nginx; stopped (SIGTERM, then SIGKILL) by its master's PID when dropped.
pub struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    pub addr: SocketAddr,
}

/// Where nginx is: `nginx` on `PATH`, else `/usr/sbin/nginx` (a non-login `PATH` may lack
/// `/usr/sbin`).
pub fn nginx_binary() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("nginx"))
        .find(|p| p.exists());
    on_path.unwrap_or_else(|| PathBuf::from("/usr/sbin/nginx"))
}

impl Nginx {
    /// Starts nginx proxying to `origin` on an ephemeral loopback port. The port is found
    /// free, released and given to nginx; another process may take it in between, so a start
    /// that does not come up is tried again on another port (three times in all).
    pub fn start(origin: SocketAddr) -> Nginx {
        let mut last = String::new();
        for _ in 0..3 {
            match Nginx::try_start(origin) {
                Ok(n) => return n,
                Err(e) => last = e,
            }
        }
        panic!("nginx did not start: {last} (run scripts/install-test-deps)")
    }

    fn try_start(origin: SocketAddr) -> Result<Nginx, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        // Run as root, nginx's worker is `nobody`: it must reach its temporary directories.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .map_err(|e| e.to_string())?;
        let addr = free_port();
        let conf = NGINX_CONF
            .replace("$prefix", &dir.path().display().to_string())
            .replace("$port", &addr.port().to_string())
            .replace("$origin", &origin.to_string());
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).map_err(|e| e.to_string())?;
        let child = Command::new(nginx_binary())
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", nginx_binary().display()))?;
        let mut nginx = Nginx { child, dir, addr };
        let up = eventually(WAIT, || {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
                || nginx.child.try_wait().ok().flatten().is_some()
        });
        if up && nginx.child.try_wait().ok().flatten().is_none() {
            return Ok(nginx);
        }
        Err(format!(
            "not listening on {addr}; error log:\n{}",
            nginx.error_log()
        ))
    }

    /// What nginx wrote to its error log so far.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// The configuration directory (the `-p` prefix).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // The master stops its worker on SIGTERM; SIGKILL only if it does not exit in time.
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) on our own child's PID, which we have not reaped yet.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let exited = eventually(WAIT, || self.child.try_wait().ok().flatten().is_some());
        if !exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
