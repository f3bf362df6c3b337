//! The original destination of a connection that iptables `REDIRECT`ed to a `transparent`
//! listener (traffic interception, deploy/interception/): `getsockopt(SO_ORIGINAL_DST)` for
//! IPv4, `IP6T_SO_ORIGINAL_DST` for IPv6, answered by the kernel's connection tracking. No
//! capability is needed (unlike TPROXY). Read once per accepted connection, and only on
//! listeners with `transparent = true`; clusters with `kind = "original_dst"` forward to it
//! and the access log records it.

use std::io;
use std::mem::{size_of, MaybeUninit};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// Where an intercepted connection was going.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OriginalDst {
    pub(crate) addr: SocketAddr,
    /// The destination is the proxy's own address (the connection was not redirected: a
    /// client connected to the listener itself, or rules that send the proxy's own traffic
    /// back to it). Forwarding there would loop.
    pub(crate) to_self: bool,
}

impl OriginalDst {
    /// The original destination of the accepted socket `fd` whose local address is `local`;
    /// `None` when the kernel tracks no translation for it (no `nf_conntrack`, or a socket
    /// that is not TCP over IP).
    pub(crate) fn of(fd: RawFd, local: SocketAddr) -> Option<OriginalDst> {
        match read(fd, local.is_ipv6()) {
            Ok(addr) => Some(OriginalDst {
                addr,
                // IP and port: an IPv6 address's flow label and scope are not the place.
                to_self: addr.ip() == local.ip() && addr.port() == local.port(),
            }),
            Err(e) => {
                tracing::debug!(%local, error = %e, "no original destination");
                None
            }
        }
    }
}

/// `getsockopt(SOL_IP, SO_ORIGINAL_DST)` or `getsockopt(SOL_IPV6, IP6T_SO_ORIGINAL_DST)`
/// (listening sockets are `IPV6_V6ONLY`: an IPv6 socket never carries an IPv4 connection).
fn read(fd: RawFd, v6: bool) -> io::Result<SocketAddr> {
    if v6 {
        let a: libc::sockaddr_in6 = getsockopt(fd, libc::SOL_IPV6, libc::IP6T_SO_ORIGINAL_DST)?;
        Ok(SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::from(a.sin6_addr.s6_addr),
            u16::from_be(a.sin6_port),
            a.sin6_flowinfo,
            a.sin6_scope_id,
        )))
    } else {
        let a: libc::sockaddr_in = getsockopt(fd, libc::SOL_IP, libc::SO_ORIGINAL_DST)?;
        Ok(SocketAddr::V4(SocketAddrV4::new(
            Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
            u16::from_be(a.sin_port),
        )))
    }
}

/// A socket option whose value is a plain C struct `T` (a `sockaddr_in` or `sockaddr_in6`).
fn getsockopt<T: Copy>(fd: RawFd, level: libc::c_int, name: libc::c_int) -> io::Result<T> {
    let mut value = MaybeUninit::<T>::zeroed();
    let mut len = size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` is a writable buffer of `len` bytes that lives across the call; the
    // kernel writes at most `len` bytes and sets `len` to what it wrote. `fd` is a socket the
    // caller owns for the duration of the call.
    let rc = unsafe { libc::getsockopt(fd, level, name, value.as_mut_ptr().cast(), &mut len) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if len as usize != size_of::<T>() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "short original destination",
        ));
    }
    // SAFETY: zero-initialised and then fully written by the kernel (`len` checked above);
    // `sockaddr_in`/`sockaddr_in6` are plain C structs valid for any bytes.
    Ok(unsafe { value.assume_init() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    /// A connection nothing redirected: its original destination, when the kernel tracks
    /// it, is the listener's own address (so the proxy would loop to itself); without
    /// connection tracking there is none. Both families. (Redirected connections are tested
    /// end to end in a network namespace: tests/tests/interception.rs.)
    #[test]
    fn an_unredirected_connection_goes_to_the_proxy_itself() {
        for bind in ["127.0.0.1:0", "[::1]:0"] {
            let Ok(l) = std::net::TcpListener::bind(bind) else {
                continue; // no IPv6 on this host
            };
            let _c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let (s, _) = l.accept().unwrap();
            let local = s.local_addr().unwrap();
            match OriginalDst::of(s.as_raw_fd(), local) {
                None => {}
                Some(d) => assert_eq!(
                    d,
                    OriginalDst {
                        addr: local,
                        to_self: true
                    }
                ),
            }
        }
    }
}
