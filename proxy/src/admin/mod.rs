//! The admin endpoint (`[proxy] admin = "IP:port"`): metrics, readiness, the running
//! configuration, clusters, the log level and a status page, over plain HTTP/1.1 on a
//! listener of its own — never a data-plane port (docs/admin.md).
//!
//! It runs on threads of its own with blocking std I/O: an accept thread and one short-lived
//! thread per connection (at most [`MAX_CONNECTIONS`]; beyond that a connection is answered
//! 503 at once). One request per connection, bounded in size and time ([`http`]). Workers
//! are reached only through `ServerHandle` (a scrape is a command each worker answers), so
//! nothing here touches the request path.
//!
//! The listener is bound once at start, before the workers (a bind failure stops the start),
//! and a reload never rebinds it: changing `proxy.admin` takes a restart or a hot upgrade.
//!
//! | path | what | module |
//! |---|---|---|
//! | `GET /metrics` | Prometheus text 0.0.4, OpenMetrics 1.0 on request | [`prometheus`] |
//! | `GET /ready`, `GET /live` | readiness (503 while draining), liveness | [`routes`] |
//! | `GET /config` | the running configuration as JSON | [`json`] |
//! | `GET /clusters` | endpoints, connections, counters, health | [`json`] |
//! | `GET`/`POST /log-level` | read or change the log filter | [`log_level`] |
//! | `GET /`, `GET /stats` | the status page and the JSON it polls | `status.html`, [`json`] |
//!
//! Bound beyond loopback, only `/metrics`, `/ready` and `/live` are served (404 for the
//! rest) unless `proxy.admin_full_access = true`. `/config` never shows a secret: private
//! keys, API keys and JWKS secrets read `"[redacted]"` (`ringside_config::redact`);
//! `ringsidectl get config --show-secrets` over the control socket is the way to see them.

pub mod http;
pub mod json;
pub mod log_level;
pub mod process;
pub mod prometheus;
pub mod routes;
pub mod totals;

use std::io::Read;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Socket, Type};

use crate::control::Context;
pub use log_level::LogLevel;

/// Connections served at once; more are answered 503 and closed.
pub const MAX_CONNECTIONS: usize = 32;

/// What the admin threads read: the process context and the log filter handle.
pub struct Admin {
    pub ctx: Arc<Context>,
    /// `None` when logging could not be set up with a changeable filter.
    pub log: Option<Arc<LogLevel>>,
    /// The listener is bound to a loopback address (see [`loopback`]).
    pub loopback: bool,
}

impl Admin {
    /// Whether every path is served, or only [`PUBLIC_PATHS`]: beyond loopback, only with
    /// `proxy.admin_full_access = true` (read from the running snapshot, so a reload
    /// changes it).
    pub fn full_access(&self) -> bool {
        self.loopback || self.ctx.handle.snapshot().config.proxy.admin_full_access
    }
}

/// What an admin endpoint bound beyond loopback serves without `admin_full_access`: what a
/// scraper and a kubelet need, nothing that shows the configuration or changes the process.
pub const PUBLIC_PATHS: [&str; 3] = ["/metrics", "/ready", "/live"];

/// Whether the listener's address is loopback (`127.0.0.0/8`, `::1`, or `::ffff:127.x`).
/// `0.0.0.0` and `::` are not: they take connections from everywhere.
pub fn loopback(listener: &TcpListener) -> bool {
    listener
        .local_addr()
        .is_ok_and(|a| a.ip().to_canonical().is_loopback())
}

/// Binds the admin listener.
///
/// The socket has `SO_REUSEPORT` so that the new process of a hot upgrade (`joining`) can
/// bind the same port while the old one still serves it. A process that is not joining first
/// checks with a plain bind that nothing listens there, so a port that is in use is still a
/// startup error rather than a silent share.
pub fn bind(addr: SocketAddr, joining: bool) -> std::io::Result<TcpListener> {
    let socket = |reuseport: bool| -> std::io::Result<Socket> {
        let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        s.set_reuse_address(true)?;
        if reuseport {
            s.set_reuse_port(true)?;
        }
        s.set_cloexec(true)?;
        Ok(s)
    };
    let mut addr = addr;
    if !joining {
        let probe = socket(false)?;
        probe.bind(&addr.into())?;
        // Keep the port the probe got when the configuration says port 0.
        if let Some(a) = probe.local_addr()?.as_socket() {
            addr = a;
        }
    }
    let s = socket(true)?;
    s.bind(&addr.into())?;
    s.listen(128)?;
    Ok(s.into())
}

/// Starts the accept thread.
pub fn serve(listener: TcpListener, admin: Arc<Admin>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("ringside-admin".into())
        .spawn(move || accept_loop(&listener, &admin))?;
    Ok(())
}

fn accept_loop(listener: &TcpListener, admin: &Arc<Admin>) {
    let busy = Arc::new(AtomicUsize::new(0));
    loop {
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) => {
                // EMFILE and friends: do not spin.
                tracing::warn!(error = %e, "admin accept failed");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if busy.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            busy.fetch_sub(1, Ordering::AcqRel);
            let mut stream = stream;
            let _ = http::write_response(
                &mut stream,
                &http::Response::text(503, "admin endpoint busy"),
                false,
            );
            continue;
        }
        let (admin, done) = (admin.clone(), busy.clone());
        let spawned = std::thread::Builder::new()
            .name("ringside-admin-conn".into())
            .spawn(move || {
                connection(stream, &admin);
                done.fetch_sub(1, Ordering::AcqRel);
            });
        if let Err(e) = spawned {
            busy.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!(error = %e, "cannot start an admin connection thread");
        }
    }
}

fn connection(mut stream: TcpStream, admin: &Admin) {
    let _ = stream.set_nodelay(true);
    let (response, head_only) = match http::read_request(&mut stream) {
        Ok(req) => {
            let response = routes::handle(admin, &req);
            tracing::debug!(method = %req.method, path = %req.path, status = response.status, "admin request");
            (response, req.method == "HEAD")
        }
        Err(http::ReadError::Gone) => return,
        Err(http::ReadError::Reject(response)) => (response, false),
    };
    if http::write_response(&mut stream, &response, head_only).is_err() {
        return;
    }
    // Close politely: stop writing, then take what the client may still send (a body we
    // refused) for a moment, so that closing does not reset the connection under the answer.
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut sink = [0u8; 4096];
    let mut left: usize = 64 * 1024;
    while left > 0 {
        match stream.read(&mut sink) {
            Ok(n) if n > 0 => left = left.saturating_sub(n),
            _ => break,
        }
    }
}
