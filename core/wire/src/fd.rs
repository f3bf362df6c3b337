//! The few system calls std does not wrap: sendmsg/recvmsg with SCM_RIGHTS ancillary data,
//! SO_PEERCRED, poll and geteuid. Every `unsafe` block is here, each with its `// SAFETY:`
//! comment; the tests in `conn.rs` and `socket.rs` exercise each one.

use std::io;
use std::mem;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::ptr;
use std::time::Duration;

/// The kernel's limit of descriptors in one SCM_RIGHTS message (`SCM_MAX_FD`).
pub(crate) const MAX_FDS_PER_MSG: usize = 253;

const FD_SIZE: usize = mem::size_of::<RawFd>();

/// Bytes of control buffer for `n` descriptors.
fn cmsg_space(n: usize) -> usize {
    // SAFETY: CMSG_SPACE is a pure size computation with no memory access; `n` is at most
    // MAX_FDS_PER_MSG, so the product fits in u32.
    unsafe { libc::CMSG_SPACE((n * FD_SIZE) as u32) as usize }
}

/// One `sendmsg` of (a prefix of) `data`, with `fds` attached when non-empty. Returns the
/// number of bytes the kernel took (at least 1 for non-empty data on a blocking socket).
pub(crate) fn sendmsg(sock: RawFd, data: &[u8], fds: &[RawFd]) -> io::Result<usize> {
    if fds.len() > MAX_FDS_PER_MSG {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "too many file descriptors for one message",
        ));
    }
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let space = if fds.is_empty() {
        0
    } else {
        cmsg_space(fds.len())
    };
    // u64 elements: the control buffer must be aligned for `cmsghdr`.
    let mut control = vec![0u64; space.div_ceil(8)];
    // SAFETY: msghdr is a plain C struct for which all-zero is a valid (empty) value.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: msg_control points to `space` bytes (>= CMSG_SPACE(fds)), zeroed and aligned
        // for cmsghdr, so CMSG_FIRSTHDR returns a non-null pointer to a header that lies
        // inside the buffer; CMSG_DATA of it has room for exactly `fds.len()` descriptors,
        // and the copy is bytewise so its alignment does not matter.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            if cmsg.is_null() {
                return Err(io::Error::other("no room for the control message"));
            }
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN((fds.len() * FD_SIZE) as u32) as _;
            ptr::copy_nonoverlapping(
                fds.as_ptr().cast::<u8>(),
                libc::CMSG_DATA(cmsg),
                fds.len() * FD_SIZE,
            );
        }
    }
    loop {
        // SAFETY: `msg` points to `iov` (valid for data.len() bytes, only read) and to
        // `control`, both alive for the call. MSG_NOSIGNAL turns a closed peer into EPIPE
        // instead of SIGPIPE.
        let n = unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// One `recvmsg` into `buf`; descriptors that arrive are appended to `fds` (close-on-exec).
/// Returns the number of bytes read (0 at EOF).
pub(crate) fn recvmsg(sock: RawFd, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<usize> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let space = cmsg_space(MAX_FDS_PER_MSG);
    let mut control = vec![0u64; space.div_ceil(8)];
    // SAFETY: msghdr is a plain C struct for which all-zero is a valid (empty) value.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    let n = loop {
        // SAFETY: `msg` points to `iov` (valid for buf.len() writable bytes) and `control`
        // (`space` writable bytes), both alive for the call.
        let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    // Take ownership of every descriptor received before anything else, so that each is
    // closed even if this message turns out to be unusable.
    // SAFETY: after a successful recvmsg the kernel has filled `control` with
    // `msg.msg_controllen` bytes of well-formed cmsghdr records; CMSG_FIRSTHDR/CMSG_NXTHDR
    // walk them within that length and return null at the end. For SCM_RIGHTS the data holds
    // (cmsg_len - CMSG_LEN(0)) / FD_SIZE descriptors that are now open in this process and
    // owned by no one else; they are read unaligned.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg);
                let len = ((*cmsg).cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
                for i in 0..len / FD_SIZE {
                    let fd = ptr::read_unaligned(data.add(i * FD_SIZE).cast::<RawFd>());
                    fds.push(OwnedFd::from_raw_fd(fd));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(io::Error::other(
            "file descriptors were lost (control message truncated)",
        ));
    }
    Ok(n)
}

/// The uid of the process at the other end of a connected Unix socket (SO_PEERCRED).
pub(crate) fn peer_uid(sock: RawFd) -> io::Result<u32> {
    // SAFETY: ucred is a plain C struct; all-zero is valid.
    let mut cred: libc::ucred = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` is writable for `len` bytes and `len` is a valid in/out pointer.
    let rc = unsafe {
        libc::getsockopt(
            sock,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cred.uid)
}

/// This process's effective uid.
pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Waits until `sock` is readable (data, EOF or error); `None` waits forever.
pub(crate) fn wait_readable(sock: RawFd, timeout: Option<Duration>) -> io::Result<bool> {
    let ms: libc::c_int = match timeout {
        None => -1,
        Some(t) => t.as_millis().min(libc::c_int::MAX as u128) as libc::c_int,
    };
    let mut pfd = libc::pollfd {
        fd: sock,
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: `pfd` is one valid pollfd, and nfds is 1.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc >= 0 {
            return Ok(rc > 0);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}
