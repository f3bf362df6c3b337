//! Hot binary upgrade, both halves (docs/control-protocol.md, "Hot upgrade").
//!
//! Old process ([`run`]): on `upgrade`, start the new binary with one end of a socketpair in
//! `RINGSIDE_UPGRADE_FD`, hand it duplicates of every listening socket over SCM_RIGHTS, and
//! once it says `ready_to_serve`, drain. The sockets are never closed and bound again, so
//! connections queued in them are accepted by the new process, not refused.
//!
//! New process ([`inherit`], [`ready`]): take the sockets before starting the workers, start
//! on them, then tell the old process to go.

use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ringside_engine::Inherited;
use ringside_wire::{
    client_handshake, server_handshake, Conn, Frame, ListenerFd, Peer, Reply, Request,
    UPGRADE_FD_ENV,
};

use crate::control::Context;

/// One upgrade at a time.
static UPGRADING: AtomicBool = AtomicBool::new(false);
/// Set once a new process serves: the control socket file is then its.
static HANDED_OVER: AtomicBool = AtomicBool::new(false);

/// Whether this process handed its sockets to a successor.
pub fn handed_over() -> bool {
    HANDED_OVER.load(Ordering::SeqCst)
}

/// How long the new process may take to start serving.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Old side. Returns the reply for ringsidectl and whether this process must now drain.
pub fn run(ctx: &Context, binary: &str, args: Vec<String>) -> (Reply, bool) {
    if ctx.handle.draining() {
        return (Reply::error("this proxy is draining"), false);
    }
    if UPGRADING.swap(true, Ordering::SeqCst) {
        return (Reply::error("an upgrade is already in progress"), false);
    }
    let result = hand_over(ctx, binary, args);
    UPGRADING.store(false, Ordering::SeqCst);
    match result {
        Ok(new_pid) => {
            HANDED_OVER.store(true, Ordering::SeqCst);
            tracing::info!(new_pid, "upgrade: the new process serves; draining");
            (
                Reply::Upgraded {
                    old_pid: std::process::id(),
                    new_pid,
                },
                true,
            )
        }
        Err(message) => {
            tracing::error!(error = %message, "upgrade failed; this process keeps serving");
            (Reply::error(format!("upgrade failed: {message}")), false)
        }
    }
}

fn hand_over(ctx: &Context, binary: &str, args: Vec<String>) -> Result<u32, String> {
    let (ours, theirs) = UnixStream::pair().map_err(|e| format!("socketpair: {e}"))?;
    set_cloexec(theirs.as_raw_fd(), false).map_err(|e| format!("socketpair: {e}"))?;
    let args = if args.is_empty() {
        std::env::args().skip(1).collect()
    } else {
        args
    };
    let keep = theirs.as_raw_fd();
    let mut command = Command::new(binary);
    command
        .args(&args)
        .env(UPGRADE_FD_ENV, keep.to_string())
        .stdin(Stdio::null());
    // The new process inherits the handover socket and nothing else. Sockets io_uring
    // accepted have no close-on-exec flag (its accept takes no SOCK_CLOEXEC), and a client
    // connection inherited by the new process would outlive the old process's close: the
    // client would never see it end.
    // SAFETY: the closure runs in the forked child before exec and only makes system calls
    // that are async-signal-safe (close_range, fcntl); it allocates nothing.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, move || {
            cloexec_all_but(keep);
            Ok(())
        });
    }
    let child = command
        .spawn()
        .map_err(|e| format!("cannot start {binary}: {e}"))?;
    drop(theirs);
    let mut child = KillOnFailure(Some(child));
    let new_pid = child.0.as_ref().map_or(0, Child::id);
    let mut conn = Conn::new(ours);
    let timeout = Some(READY_TIMEOUT.max(ctx.handle.snapshot().config.proxy.drain_timeout));
    conn.set_read_timeout(timeout).map_err(|e| e.to_string())?;
    server_handshake(
        &mut conn,
        &format!("ringside {}", env!("CARGO_PKG_VERSION")),
    )
    .map_err(|e| format!("the new process did not say hello: {e}"))?;
    loop {
        let (id, request) = match conn.recv() {
            Ok(Frame::Request { id, request }) => (id, request),
            Ok(Frame::Reply { .. }) => continue,
            Err(e) => return Err(format!("the new process went away before serving: {e}")),
        };
        match request {
            Request::TakeListeners => {
                let sockets = ctx.handle.listener_sockets().map_err(|e| e.to_string())?;
                let listeners = sockets
                    .iter()
                    .map(|s| ListenerFd {
                        name: s.name.clone(),
                        address: s.address.to_string(),
                        worker: s.worker,
                    })
                    .collect();
                let fds: Vec<RawFd> = sockets.iter().map(|s| s.socket.as_raw_fd()).collect();
                let reply = Frame::Reply {
                    id,
                    reply: Reply::Listeners {
                        listeners,
                        control_socket: false,
                    },
                };
                conn.send_with_fds(&reply, &fds)
                    .map_err(|e| e.to_string())?;
                // `sockets` (our duplicates) close here; the new process holds its own.
            }
            Request::ReadyToServe => {
                conn.reply(id, Reply::Ok).map_err(|e| e.to_string())?;
                child.0 = None; // it serves: let it live
                return Ok(new_pid);
            }
            other => {
                let _ = conn.reply(
                    id,
                    Reply::error(format!("{} is not served here", other.name())),
                );
            }
        }
    }
}

/// Kills and reaps the new process unless the upgrade succeeded.
struct KillOnFailure(Option<Child>);

impl Drop for KillOnFailure {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// New side: the connection to the old process and the sockets it handed over.
pub struct Handover {
    conn: Conn,
    pub inherited: Vec<Inherited>,
}

/// Takes the listening sockets from the old process when this process was started by an
/// upgrade (`RINGSIDE_UPGRADE_FD` set); `Ok(None)` otherwise.
pub fn inherit(node_id: &str, role: &str) -> Result<Option<Handover>, String> {
    let Some(value) = std::env::var_os(UPGRADE_FD_ENV) else {
        return Ok(None);
    };
    std::env::remove_var(UPGRADE_FD_ENV);
    let fd: RawFd = value
        .to_str()
        .and_then(|v| v.parse().ok())
        .filter(|fd| *fd > 2)
        .ok_or_else(|| format!("{UPGRADE_FD_ENV}={value:?} is not a file descriptor"))?;
    set_cloexec(fd, true).map_err(|e| format!("{UPGRADE_FD_ENV}={fd}: {e}"))?;
    // SAFETY: the old process started us with this descriptor open, for us alone, and we
    // checked above that it exists (fcntl succeeded); nothing else in this process owns it.
    let stream = unsafe { UnixStream::from_raw_fd(fd) };
    let mut conn = Conn::new(stream);
    conn.set_read_timeout(Some(READY_TIMEOUT))
        .map_err(|e| e.to_string())?;
    client_handshake(
        &mut conn,
        Peer::Proxy {
            node_id: node_id.into(),
            role: role.into(),
            generation: 0,
            labels: Default::default(),
        },
    )
    .map_err(|e| format!("upgrade handshake: {e}"))?;
    let (reply, fds) = conn
        .call_with_fds(Request::TakeListeners)
        .map_err(|e| format!("take_listeners: {e}"))?;
    let Reply::Listeners { listeners, .. } = reply.check().map_err(|e| e.to_string())? else {
        return Err("take_listeners: unexpected reply".into());
    };
    if listeners.len() > fds.len() {
        return Err(format!(
            "take_listeners: {} sockets announced, {} received",
            listeners.len(),
            fds.len()
        ));
    }
    let inherited = listeners
        .into_iter()
        .zip(fds)
        .map(|(l, fd)| Inherited {
            name: l.name,
            socket: std::net::TcpListener::from(fd),
        })
        .collect::<Vec<_>>();
    tracing::info!(
        sockets = inherited.len(),
        "upgrade: took over the listening sockets"
    );
    Ok(Some(Handover { conn, inherited }))
}

impl Handover {
    /// Tells the old process that this one serves (it then drains).
    pub fn ready(mut self) -> Result<(), String> {
        self.conn
            .call(Request::ReadyToServe)
            .and_then(Reply::check)
            .map(drop)
            .map_err(|e| e.to_string())
    }

    pub fn take_sockets(&mut self) -> Vec<Inherited> {
        std::mem::take(&mut self.inherited)
    }
}

/// Marks every descriptor from 3 up close-on-exec except `keep` (in a forked child, before
/// exec): `close_range(CLOSE_RANGE_CLOEXEC)` (Linux 5.11), else each descriptor under the
/// open-files limit in turn.
fn cloexec_all_but(keep: RawFd) {
    // SAFETY: close_range and fcntl only change descriptor flags; invalid descriptors are
    // reported, not faulted on.
    unsafe {
        let ranged = libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC as libc::c_uint,
        ) == 0;
        if !ranged {
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            let top = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
                RawFd::try_from(limit.rlim_cur).unwrap_or(RawFd::MAX)
            } else {
                1024
            };
            for fd in 3..top.min(1 << 20) {
                if fd != keep {
                    let flags = libc::fcntl(fd, libc::F_GETFD);
                    if flags >= 0 {
                        libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
                    }
                }
            }
        }
        let flags = libc::fcntl(keep, libc::F_GETFD);
        if flags >= 0 {
            libc::fcntl(keep, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
        }
    }
}

fn set_cloexec(fd: RawFd, on: bool) -> std::io::Result<()> {
    // SAFETY: F_GETFD/F_SETFD only read and write the descriptor's flags; an invalid fd is
    // reported as EBADF.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let flags = if on {
            flags | libc::FD_CLOEXEC
        } else {
            flags & !libc::FD_CLOEXEC
        };
        if libc::fcntl(fd, libc::F_SETFD, flags) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
