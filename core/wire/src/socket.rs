//! Unix sockets of the control plane: binding with mode 0600, the peer's uid, default paths.

use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use crate::error::WireError;
use crate::fd;

/// Binds a listening socket at `path`, mode 0600. A missing parent directory is created with
/// mode 0700. A leftover socket file that nobody listens on any more is removed; a socket
/// someone still listens on is `AddrInUse`, and a path that is not a socket is never removed.
pub fn bind_socket(path: &Path) -> io::Result<UnixListener> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|e| annotate(parent, e))?;
        }
    }
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => match UnixStream::connect(path) {
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{}: another process is listening on it", path.display()),
                ))
            }
            Err(_) => fs::remove_file(path).map_err(|e| annotate(path, e))?,
        },
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{}: exists and is not a socket", path.display()),
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(annotate(path, e)),
    }
    let listener = UnixListener::bind(path).map_err(|e| annotate(path, e))?;
    // Between bind and chmod the file has the umask's mode; connections are checked by
    // `check_peer` regardless.
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(|e| annotate(path, e))?;
    Ok(listener)
}

/// Connects to the socket at `path`; the error names the path.
pub fn connect(path: &Path) -> io::Result<UnixStream> {
    UnixStream::connect(path).map_err(|e| annotate(path, e))
}

fn annotate(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// The uid of the process at the other end (SO_PEERCRED).
pub fn peer_uid(stream: &UnixStream) -> io::Result<u32> {
    fd::peer_uid(stream.as_raw_fd())
}

/// Admits root and processes running as this process's effective uid; returns the peer's uid.
pub fn check_peer(stream: &UnixStream) -> Result<u32, WireError> {
    let uid = peer_uid(stream)?;
    let ours = fd::euid();
    if uid == 0 || uid == ours {
        Ok(uid)
    } else {
        Err(WireError::PeerRejected { uid, ours })
    }
}

/// Waits until `fd` is readable (data, EOF or error) or `timeout` passes (`None`: forever);
/// false on timeout. For descriptors that are not a [`crate::Conn`] (inotify, a wake pipe).
pub fn wait_readable(
    fd: std::os::fd::BorrowedFd<'_>,
    timeout: Option<std::time::Duration>,
) -> io::Result<bool> {
    fd::wait_readable(fd.as_raw_fd(), timeout)
}

/// `$XDG_RUNTIME_DIR/ringside` when that variable is set (and absolute), else `/run/ringside`.
pub fn runtime_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if Path::new(&d).is_absolute() => Path::new(&d).join("ringside"),
        _ => PathBuf::from("/run/ringside"),
    }
}

/// Where a client looks for a socket named `name` by default: under [`runtime_dir`], unless
/// nothing is there and the system directory has it — so a root login shell (whose
/// `XDG_RUNTIME_DIR` is `/run/user/0`) still finds the system services' sockets. Servers
/// bind at [`runtime_dir`] without this fallback.
pub fn find_socket(name: &str) -> PathBuf {
    let preferred = runtime_dir().join(name);
    let system = Path::new("/run/ringside").join(name);
    if !preferred.exists() && system.exists() {
        system
    } else {
        preferred
    }
}

/// ringside-ctld's default socket: `<runtime_dir>/ctld.sock`.
pub fn default_ctld_socket() -> PathBuf {
    runtime_dir().join("ctld.sock")
}

/// A ringside process's default control socket: `<runtime_dir>/proxy.sock`.
pub fn default_proxy_socket() -> PathBuf {
    runtime_dir().join("proxy.sock")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_creates_parent_0700_and_socket_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/ctld.sock");
        let _l = bind_socket(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dmode, 0o700);
    }

    #[test]
    fn stale_socket_is_replaced_live_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let live = bind_socket(&path).unwrap();
        let err = bind_socket(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        drop(live); // the file stays behind, nobody listens
        assert!(path.exists());
        let _again = bind_socket(&path).unwrap();
    }

    #[test]
    fn a_regular_file_is_never_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("precious");
        fs::write(&path, "data").unwrap();
        assert!(bind_socket(&path).is_err());
        assert_eq!(fs::read_to_string(&path).unwrap(), "data");
    }

    #[test]
    fn peer_uid_is_ours_and_allowed() {
        let (a, _b) = UnixStream::pair().unwrap();
        assert_eq!(peer_uid(&a).unwrap(), fd::euid());
        assert_eq!(check_peer(&a).unwrap(), fd::euid());
    }

    #[test]
    fn connect_error_names_the_path() {
        let err = connect(Path::new("/nonexistent/ringside/x.sock")).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/ringside/x.sock"),
            "{err}"
        );
    }

    #[test]
    fn default_paths_end_in_ringside() {
        assert!(default_ctld_socket().ends_with("ringside/ctld.sock"));
        assert!(default_proxy_socket().ends_with("ringside/proxy.sock"));
    }
}
