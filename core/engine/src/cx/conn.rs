//! A downstream connection's byte stream, whatever carries it.
//!
//! Plain HTTP/1 connections use monoio's completion-based TCP halves (on io_uring a read is
//! one submission, no readiness round trip). What needs a poll-style stream — TLS
//! (tokio-rustls) and HTTP/2 (the h2 crate) — runs over monoio's poll-io socket
//! (`TcpStreamPoll`, which implements tokio's `AsyncRead`/`AsyncWrite` traits; no tokio
//! runtime is involved). This module is the one place where the two styles meet:
//!
//! - [`Prefixed`] replays the bytes that protocol sniffing already read (an h2c preface, the
//!   first bytes of a permissive-mTLS connection) before reading the socket again.
//! - [`PollRead`] / [`PollWrite`] give a poll-style stream (TLS) the owned-buffer interface
//!   of the HTTP/1 code. A poll-style read copies bytes only once they are ready, so a read
//!   that a timer or a drain interrupts is simply dropped and loses nothing; rustls keeps
//!   whatever ciphertext it already took in its own state.
//! - [`ConnRead`] / [`ConnWrite`] are the two halves the HTTP/1 connection loop serves,
//!   plain or TLS.

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::io;
use std::mem::MaybeUninit;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::task::{ready, Context, Poll};

use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, OwnedReadHalf, OwnedWriteHalf};
use monoio::net::tcp::stream_poll::TcpStreamPoll;
use monoio::net::TcpStream;
use monoio::BufResult;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::cx::io::{until, Fill, ReadBuf, StopRead};

/// The poll-style socket of a sniffed connection.
pub(crate) type Sniffed = Prefixed<TcpStreamPoll>;
/// A downstream TLS connection.
pub(crate) type ServerTls = tokio_rustls::server::TlsStream<Sniffed>;
/// An upstream TLS connection.
pub(crate) type UpstreamTls = tokio_rustls::client::TlsStream<TcpStreamPoll>;

/// Turns a monoio socket into its poll-style form.
pub(crate) fn into_poll(stream: TcpStream) -> io::Result<TcpStreamPoll> {
    stream.try_into_poll_io().map_err(|(e, _)| e)
}

/// A stream that first yields `prefix`, then reads `inner`.
pub(crate) struct Prefixed<S> {
    prefix: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    pub(crate) fn new(prefix: Vec<u8>, inner: S) -> Prefixed<S> {
        Prefixed {
            prefix,
            pos: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(rest) = this.prefix.get(this.pos..).filter(|r| !r.is_empty()) {
            let n = rest.len().min(buf.remaining());
            buf.put_slice(rest.get(..n).unwrap_or(&[]));
            this.pos += n;
            if this.pos >= this.prefix.len() {
                this.prefix = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The read half of a poll-style stream, with monoio's owned-buffer interface.
pub(crate) struct PollRead<S>(Rc<RefCell<S>>);
/// The write half of a poll-style stream, with monoio's owned-buffer interface.
pub(crate) struct PollWrite<S>(Rc<RefCell<S>>);

/// Splits a poll-style stream. The halves borrow the stream only inside a poll, never across
/// an await, so they can be used by concurrent futures of one task.
pub(crate) fn split_poll<S>(s: S) -> (PollRead<S>, PollWrite<S>) {
    let s = Rc::new(RefCell::new(s));
    (PollRead(Rc::clone(&s)), PollWrite(s))
}

/// Polls one read into the unfilled part of `buf`, returning how many bytes it got.
fn poll_read_into<S: AsyncRead + Unpin, T: IoBufMut>(
    s: &RefCell<S>,
    buf: &mut T,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    let total = buf.bytes_total();
    // SAFETY: monoio's contract for IoBufMut is that `write_ptr` is valid for writes of
    // `bytes_total` bytes (the read ops of the runtime write there the same way). The slice
    // is handed to tokio's ReadBuf as uninitialised memory, which it never reads, and it
    // does not outlive this call.
    let dst =
        unsafe { std::slice::from_raw_parts_mut(buf.write_ptr().cast::<MaybeUninit<u8>>(), total) };
    let mut rb = tokio::io::ReadBuf::uninit(dst);
    let mut s = s.borrow_mut();
    ready!(Pin::new(&mut *s).poll_read(cx, &mut rb))?;
    let n = rb.filled().len();
    // SAFETY: tokio's ReadBuf guarantees its first `filled().len()` bytes were written.
    unsafe { buf.set_init(n) };
    Poll::Ready(Ok(n))
}

impl<S: AsyncRead + Unpin> AsyncReadRent for PollRead<S> {
    async fn read<T: IoBufMut>(&mut self, mut buf: T) -> BufResult<usize, T> {
        let res = poll_fn(|cx| poll_read_into(&self.0, &mut buf, cx)).await;
        (res, buf)
    }

    async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        (
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "vectored reads are not used on poll streams",
            )),
            buf,
        )
    }
}

impl<S: AsyncRead + Unpin> StopRead for PollRead<S> {
    async fn read_or_stop<T: IoBufMut, F: Future<Output = ()>>(
        &mut self,
        mut buf: T,
        stop: F,
    ) -> (BufResult<usize, T>, bool) {
        let mut stop = pin!(stop);
        let res = poll_fn(|cx| {
            if let Poll::Ready(r) = poll_read_into(&self.0, &mut buf, cx) {
                return Poll::Ready(Some(r));
            }
            if stop.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            Poll::Pending
        })
        .await;
        match res {
            Some(r) => ((r, buf), false),
            None => (
                (Err(io::Error::from_raw_os_error(libc::ECANCELED)), buf),
                true,
            ),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWriteRent for PollWrite<S> {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        // SAFETY: monoio's contract for IoBuf is that `read_ptr` is valid for `bytes_init`
        // bytes while the buffer is alive; `buf` is owned here for the whole call.
        let src = unsafe { std::slice::from_raw_parts(buf.read_ptr(), buf.bytes_init()) };
        let res = poll_fn(|cx| Pin::new(&mut *self.0.borrow_mut()).poll_write(cx, src)).await;
        // A TLS stream may hold the records it made; the owned-buffer contract is that a
        // finished write has reached the socket, as on plain TCP.
        let res = match res {
            Ok(n) => poll_fn(|cx| Pin::new(&mut *self.0.borrow_mut()).poll_flush(cx))
                .await
                .map(|()| n),
            Err(e) => Err(e),
        };
        (res, buf)
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        (
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "vectored writes are not used on poll streams",
            )),
            buf,
        )
    }

    async fn flush(&mut self) -> io::Result<()> {
        poll_fn(|cx| Pin::new(&mut *self.0.borrow_mut()).poll_flush(cx)).await
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        poll_fn(|cx| Pin::new(&mut *self.0.borrow_mut()).poll_shutdown(cx)).await
    }
}

/// The read half of a connection the HTTP/1 code and tunnels serve: a client's (plain or
/// TLS) or an upstream's (plain or TLS).
pub(crate) enum ConnRead {
    Plain(OwnedReadHalf<TcpStream>),
    Tls(PollRead<ServerTls>),
    TlsUp(PollRead<UpstreamTls>),
}

/// The write half matching [`ConnRead`].
pub(crate) enum ConnWrite {
    Plain(OwnedWriteHalf<TcpStream>),
    Tls(PollWrite<ServerTls>),
    TlsUp(PollWrite<UpstreamTls>),
}

impl AsyncReadRent for ConnRead {
    async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            ConnRead::Plain(r) => r.read(buf).await,
            ConnRead::Tls(r) => r.read(buf).await,
            ConnRead::TlsUp(r) => r.read(buf).await,
        }
    }

    async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            ConnRead::Plain(r) => r.readv(buf).await,
            ConnRead::Tls(r) => r.readv(buf).await,
            ConnRead::TlsUp(r) => r.readv(buf).await,
        }
    }
}

/// How many bytes a TLS connection reads when it wakes from an idle wait (see
/// [`ConnRead::wait_readable`]).
const TLS_WAKE_READ: usize = 64;

impl ConnRead {
    /// Waits, holding no read buffer, until the connection has bytes to read or the peer
    /// closed it (`Fill::Data`, `Fill::Eof`), or until `stop` fires (`Fill::Stopped`). `buf`
    /// must be empty: it is freed for the wait and allocated again, with `capacity` bytes,
    /// when bytes arrive.
    ///
    /// - A plain socket waits for readiness (one poll operation; the bytes stay in the
    ///   socket for the read that follows). Dropping the wait cancels the operation.
    /// - A TLS stream can only wait by reading: it reads up to 64 bytes of plaintext into the
    ///   future's own array, and they go into the new buffer.
    pub(crate) async fn wait_readable<S: Future<Output = ()>>(
        &mut self,
        buf: &mut ReadBuf,
        capacity: usize,
        mut stop: Pin<&mut S>,
    ) -> io::Result<Fill> {
        buf.release();
        let fill = match self {
            ConnRead::Plain(r) => {
                // SAFETY: the halves of a split monoio stream share it through this cell, and
                // monoio's own halves borrow it only for the duration of one call. Only a
                // shared borrow is taken here, and while a connection waits for a request
                // nothing else of its task uses the write half.
                let stream = unsafe { &*r.0.get() };
                let mut ready = pin!(stream.readable(false));
                poll_fn(|cx| {
                    if let Poll::Ready(r) = ready.as_mut().poll(cx) {
                        return Poll::Ready(r.map(|()| Fill::Data));
                    }
                    stop.as_mut().poll(cx).map(|()| Ok(Fill::Stopped))
                })
                .await?
            }
            ConnRead::Tls(r) => wake_read(&r.0, buf, stop).await?,
            ConnRead::TlsUp(r) => wake_read(&r.0, buf, stop).await?,
        };
        if matches!(fill, Fill::Data) {
            buf.reserve_idle(capacity);
        }
        Ok(fill)
    }
}

/// The TLS side of [`ConnRead::wait_readable`].
async fn wake_read<S: AsyncRead + Unpin, F: Future<Output = ()>>(
    s: &RefCell<S>,
    buf: &mut ReadBuf,
    mut stop: Pin<&mut F>,
) -> io::Result<Fill> {
    let mut bytes = [0u8; TLS_WAKE_READ];
    let n = poll_fn(|cx| {
        let mut rb = tokio::io::ReadBuf::new(&mut bytes);
        if let Poll::Ready(r) = Pin::new(&mut *s.borrow_mut()).poll_read(cx, &mut rb) {
            return Poll::Ready(r.map(|()| Some(rb.filled().len())));
        }
        stop.as_mut().poll(cx).map(|()| Ok(None))
    })
    .await?;
    Ok(match n {
        None => Fill::Stopped,
        Some(0) => Fill::Eof,
        Some(n) => {
            buf.extend(bytes.get(..n).unwrap_or(&[]));
            Fill::Data
        }
    })
}

impl StopRead for ConnRead {
    async fn read_or_stop<T: IoBufMut, F: Future<Output = ()>>(
        &mut self,
        buf: T,
        stop: F,
    ) -> (BufResult<usize, T>, bool) {
        match self {
            ConnRead::Plain(r) => {
                use monoio::io::CancelableAsyncReadRent;
                until(|h| r.cancelable_read(buf, h), stop).await
            }
            ConnRead::Tls(r) => r.read_or_stop(buf, stop).await,
            ConnRead::TlsUp(r) => r.read_or_stop(buf, stop).await,
        }
    }
}

impl AsyncWriteRent for ConnWrite {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            ConnWrite::Plain(w) => w.write(buf).await,
            ConnWrite::Tls(w) => w.write(buf).await,
            ConnWrite::TlsUp(w) => w.write(buf).await,
        }
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            ConnWrite::Plain(w) => w.writev(buf).await,
            ConnWrite::Tls(w) => w.writev(buf).await,
            ConnWrite::TlsUp(w) => w.writev(buf).await,
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        match self {
            ConnWrite::Plain(w) => w.flush().await,
            ConnWrite::Tls(w) => w.flush().await,
            ConnWrite::TlsUp(w) => w.flush().await,
        }
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            ConnWrite::Plain(w) => w.shutdown().await,
            ConnWrite::Tls(w) => w.shutdown().await,
            ConnWrite::TlsUp(w) => w.shutdown().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::time::Duration;

    use monoio::io::AsyncWriteRentExt;

    use super::*;
    use crate::cx::io::{Fill, ReadBuf};

    async fn pair() -> (TcpStream, std::net::TcpStream) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let s = TcpStream::connect_addr(l.local_addr().unwrap())
            .await
            .unwrap();
        let (peer, _) = l.accept().unwrap();
        (s, peer)
    }

    #[monoio::test_all(timer_enabled = true)]
    async fn prefix_then_socket_and_stopped_reads_lose_nothing() {
        let (s, mut peer) = pair().await;
        let poll = Prefixed::new(b"PRI".to_vec(), into_poll(s).unwrap());
        let (mut r, mut w) = split_poll(poll);
        let mut buf = ReadBuf::with_capacity(16);
        assert!(matches!(
            buf.fill(&mut r, 64, std::future::pending()).await.unwrap(),
            Fill::Data
        ));
        assert_eq!(buf.data(), b"PRI");
        // Nothing to read: the stop wins, and the next read still gets every byte.
        let stop = monoio::time::sleep(Duration::from_millis(10));
        assert!(matches!(
            buf.fill(&mut r, 64, stop).await.unwrap(),
            Fill::Stopped
        ));
        peer.write_all(b" * HTTP").unwrap();
        let mut got = Vec::new();
        while got.len() < 7 {
            assert!(matches!(
                buf.fill(&mut r, 64, std::future::pending()).await.unwrap(),
                Fill::Data
            ));
            got = buf.data().get(3..).unwrap_or_default().to_vec();
        }
        assert_eq!(buf.data(), b"PRI * HTTP");
        let (res, _) = w.write_all(b"pong".to_vec()).await;
        res.unwrap();
        let mut four = [0u8; 4];
        peer.read_exact(&mut four).unwrap();
        assert_eq!(&four, b"pong");
        drop(peer);
        assert!(matches!(
            buf.fill(&mut r, 64, std::future::pending()).await.unwrap(),
            Fill::Eof
        ));
    }
}
