//! [`Conn`]: one control connection over a blocking `UnixStream`.
//!
//! Requests and replies are paired by id: [`Conn::call`] assigns the next id, sends the
//! request and waits for the reply with that id. A server loop is `recv` → handle →
//! [`Conn::reply`]. File descriptors travel as SCM_RIGHTS ancillary data attached to the
//! frame's bytes ([`Conn::send_with_fds`], [`Conn::recv_with_fds`]).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::error::{Result, WireError};
use crate::fd;
use crate::frame::{self, decode_body, decode_len, HEADER_LEN};
use crate::message::{Frame, Reply, Request};
use crate::MAX_FDS;

/// A control connection. Blocking; timeouts are the socket's (`set_read_timeout`,
/// `set_write_timeout`). After any error other than [`WireError::Timeout`] (which only
/// happens between frames) or [`WireError::Remote`], drop the connection.
#[derive(Debug)]
pub struct Conn {
    stream: UnixStream,
    next_id: u64,
    /// The protocol version agreed in the handshake ([`crate::PROTOCOL_VERSION`] before it).
    version: u32,
}

impl Conn {
    pub fn new(stream: UnixStream) -> Conn {
        Conn {
            stream,
            next_id: 1,
            version: crate::PROTOCOL_VERSION,
        }
    }

    /// The protocol version agreed in the handshake: what this side may send the peer.
    pub fn version(&self) -> u32 {
        self.version
    }

    pub(crate) fn set_version(&mut self, version: u32) {
        self.version = version;
    }

    /// Connects to the socket at `path` (no handshake; see [`crate::client_handshake`]).
    pub fn connect(path: impl AsRef<std::path::Path>) -> io::Result<Conn> {
        crate::socket::connect(path.as_ref()).map(Conn::new)
    }

    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }

    pub fn into_stream(self) -> UnixStream {
        self.stream
    }

    /// A second handle on the same socket (e.g. one thread reads, another writes). Both
    /// handles number their requests independently: let only one of them send requests.
    pub fn try_clone(&self) -> io::Result<Conn> {
        Ok(Conn {
            stream: self.stream.try_clone()?,
            next_id: self.next_id,
            version: self.version,
        })
    }

    /// `None` blocks forever. A `recv` that times out before a frame starts returns
    /// [`WireError::Timeout`].
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.stream.set_read_timeout(t)
    }

    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.stream.set_write_timeout(t)
    }

    /// Waits until a frame (or EOF) can be read, up to `timeout` (`None`: forever).
    /// Returns false on timeout.
    pub fn wait_readable(&self, timeout: Option<Duration>) -> io::Result<bool> {
        fd::wait_readable(self.stream.as_raw_fd(), timeout)
    }

    /// The id the next [`Conn::call`] will use, and reserves it (for callers that send a
    /// request with [`Conn::send`] and collect the reply themselves).
    pub fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    pub fn send(&mut self, frame: &Frame) -> Result<()> {
        frame::write_frame(&mut &self.stream, frame)
    }

    pub fn recv(&mut self) -> Result<Frame> {
        frame::read_frame(&mut &self.stream)
    }

    /// Sends the reply to request `id`.
    pub fn reply(&mut self, id: u64, reply: Reply) -> Result<()> {
        self.send(&Frame::Reply { id, reply })
    }

    /// Sends `request` and waits for its reply. An `Error` reply is returned as a reply (use
    /// [`Reply::check`] to make it an error). A request or a reply with another id arriving
    /// meanwhile is a [`WireError::Protocol`] error: on a connection, only one side sends
    /// requests at a time.
    pub fn call(&mut self, request: Request) -> Result<Reply> {
        let (reply, _fds) = self.call_inner(request, false)?;
        Ok(reply)
    }

    /// Like [`Conn::call`], for a reply that carries file descriptors (`TakeListeners`).
    pub fn call_with_fds(&mut self, request: Request) -> Result<(Reply, Vec<OwnedFd>)> {
        self.call_inner(request, true)
    }

    fn call_inner(&mut self, request: Request, with_fds: bool) -> Result<(Reply, Vec<OwnedFd>)> {
        let id = self.next_id();
        let name = request.name();
        self.send(&Frame::Request { id, request })?;
        let (frame, fds) = if with_fds {
            self.recv_with_fds()?
        } else {
            (self.recv()?, Vec::new())
        };
        match frame {
            Frame::Reply { id: got, reply } if got == id => Ok((reply, fds)),
            Frame::Reply { id: got, .. } => Err(WireError::Protocol(format!(
                "reply to {name} (id {id}) expected, got a reply with id {got}"
            ))),
            Frame::Request { request, .. } => Err(WireError::Protocol(format!(
                "reply to {name} (id {id}) expected, got a {} request",
                request.name()
            ))),
        }
    }

    /// Sends `frame` with `fds` attached (SCM_RIGHTS). The descriptors stay open here; the
    /// receiver gets duplicates. At most [`MAX_FDS`].
    pub fn send_with_fds(&mut self, frame: &Frame, fds: &[RawFd]) -> Result<()> {
        if fds.len() > MAX_FDS {
            return Err(WireError::Protocol(format!(
                "{} file descriptors in one frame, at most {MAX_FDS}",
                fds.len()
            )));
        }
        let bytes = frame::encode(frame)?;
        // The kernel takes at most MAX_FDS_PER_MSG descriptors per sendmsg: attach each group
        // to its own piece of the frame (one byte each, the rest with the last group).
        let groups: Vec<&[RawFd]> = fds.chunks(fd::MAX_FDS_PER_MSG).collect();
        if groups.len() > bytes.len() {
            return Err(WireError::Protocol(
                "frame too short for its descriptors".into(),
            ));
        }
        let sock = self.stream.as_raw_fd();
        let mut off = 0;
        for (i, group) in groups.iter().enumerate() {
            let end = if i + 1 == groups.len() {
                bytes.len()
            } else {
                off + 1
            };
            off += write_some(sock, bytes.get(off..end).unwrap_or_default(), group)?;
        }
        while off < bytes.len() {
            off += write_some(sock, bytes.get(off..).unwrap_or_default(), &[])?;
        }
        Ok(())
    }

    /// Receives one frame and every descriptor attached to it (close-on-exec, in order).
    pub fn recv_with_fds(&mut self) -> Result<(Frame, Vec<OwnedFd>)> {
        let sock = self.stream.as_raw_fd();
        let mut fds = Vec::new();
        let mut header = [0u8; HEADER_LEN];
        let mut got = 0;
        while got < HEADER_LEN {
            let rest = header.get_mut(got..).unwrap_or_default();
            let n = fd::recvmsg(sock, rest, &mut fds).map_err(|e| {
                if got == 0 && fds.is_empty() {
                    WireError::from_read(e)
                } else {
                    WireError::Io(e)
                }
            })?;
            if n == 0 {
                return Err(if got == 0 {
                    WireError::Closed
                } else {
                    eof_inside_frame()
                });
            }
            got += n;
            check_fd_count(&fds)?;
        }
        let len = decode_len(header)?;
        let mut body = vec![0u8; len];
        let mut got = 0;
        while got < len {
            let rest = body.get_mut(got..).unwrap_or_default();
            let n = fd::recvmsg(sock, rest, &mut fds).map_err(WireError::Io)?;
            if n == 0 {
                return Err(eof_inside_frame());
            }
            got += n;
            check_fd_count(&fds)?;
        }
        Ok((decode_body(&body)?, fds))
    }
}

fn write_some(sock: RawFd, data: &[u8], fds: &[RawFd]) -> Result<usize> {
    match fd::sendmsg(sock, data, fds) {
        Ok(0) => Err(WireError::Io(io::ErrorKind::WriteZero.into())),
        Ok(n) => Ok(n),
        Err(e) => Err(WireError::Io(e)),
    }
}

fn eof_inside_frame() -> WireError {
    WireError::Io(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "connection closed inside a frame",
    ))
}

fn check_fd_count(fds: &[OwnedFd]) -> Result<()> {
    if fds.len() > MAX_FDS {
        return Err(WireError::Protocol(format!(
            "more than {MAX_FDS} file descriptors in one frame"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
