//! Listening sockets: one `SO_REUSEPORT` socket per listener per worker.
//!
//! Sockets are created by the control thread (never by a worker) and handed to workers, so
//! that an ephemeral port (`:0`) resolves once and every worker listens on the same port, and
//! so that a later hot upgrade can pass the very same sockets to a new process.

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

/// Accept queue length per socket (the kernel caps it at `net.core.somaxconn`).
const BACKLOG: i32 = 4096;

pub(crate) fn bind_one(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Binds `count` sockets sharing one address; returns them and the bound address (the real
/// port when `addr` asked for port 0).
pub(crate) fn bind_group(
    addr: SocketAddr,
    count: usize,
) -> io::Result<(Vec<TcpListener>, SocketAddr)> {
    let first = bind_one(addr)?;
    let bound = first.local_addr()?;
    let mut group = vec![first];
    for _ in 1..count.max(1) {
        group.push(bind_one(bound)?);
    }
    Ok((group, bound))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ephemeral_port_is_shared_by_the_group() {
        let (group, bound) = bind_group("127.0.0.1:0".parse().unwrap(), 3).unwrap();
        assert_eq!(group.len(), 3);
        assert_ne!(bound.port(), 0);
        for l in &group {
            assert_eq!(l.local_addr().unwrap(), bound);
        }
    }

    #[test]
    fn a_taken_port_is_an_error() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        assert!(bind_group(addr, 1).is_err());
    }
}
