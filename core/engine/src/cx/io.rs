//! I/O helpers over monoio's owned-buffer API, written once and used by every stage.
//!
//! - [`until`] runs a cancelable operation against a stop condition (timer, drain) and, when
//!   the stop wins, *cancels and then awaits* the operation: bytes it read or a socket it
//!   accepted are returned to the caller, never lost in a dropped future (DESIGN.md: "a
//!   cancelled read or write closes the connection rather than losing bytes silently").
//! - [`ReadBuf`] is a bounded read buffer that appends, compacts and grows up to a limit.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use monoio::buf::IoBufMut;
use monoio::io::{
    AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, CancelHandle, CancelableAsyncReadRent,
    Canceller,
};
use monoio::BufResult;

/// Runs `op` until it completes. If `stop` resolves first, the operation is cancelled and
/// awaited; the result then says whether the stop fired (`stopped = true`). An operation that
/// completed despite the cancel returns its real result.
pub(crate) async fn until<T, F, S>(op: impl FnOnce(CancelHandle) -> F, stop: S) -> (T, bool)
where
    F: Future<Output = T>,
    S: Future<Output = ()>,
{
    let canceller = Canceller::new();
    let mut op = pin!(op(canceller.handle()));
    let mut stop = pin!(stop);
    let mut canceller = Some(canceller);
    let mut stopped = false;
    let out = poll_fn(|cx| {
        if let Poll::Ready(v) = op.as_mut().poll(cx) {
            return Poll::Ready(v);
        }
        if let Some(c) = canceller.as_ref() {
            let _ = c;
            if stop.as_mut().poll(cx).is_ready() {
                stopped = true;
                if let Some(c) = canceller.take() {
                    drop(c.cancel());
                }
                return op.as_mut().poll(cx);
            }
        }
        Poll::Pending
    })
    .await;
    (out, stopped)
}

/// Resolves when either future does.
pub(crate) fn either<A: Future<Output = ()>, B: Future<Output = ()>>(a: A, b: B) -> Either<A, B> {
    Either { a, b }
}

pin_project_lite::pin_project! {
    /// The future of [`either`]: a struct rather than an `async fn`, so that each future is
    /// stored once (an `async fn` would keep its arguments and their pinned copies). It sits in
    /// the state of every idle connection.
    pub(crate) struct Either<A, B> {
        #[pin]
        a: A,
        #[pin]
        b: B,
    }
}

impl<A: Future<Output = ()>, B: Future<Output = ()>> Future for Either<A, B> {
    type Output = ();

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
        let this = self.project();
        if this.a.poll(cx).is_ready() || this.b.poll(cx).is_ready() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// A timer for the data path: coarse (a slot in the worker's table) when `d` is long,
/// precise otherwise; see `cx::deadline`. Never monoio's `Sleep` by value: it is 640 bytes
/// aligned to 128, and would bloat and over-align every state machine that holds it.
pub(crate) fn sleep(d: Duration) -> crate::cx::deadline::Deadline {
    crate::cx::deadline::sleep(d)
}

/// [`sleep`] until a deadline.
pub(crate) fn sleep_until(t: monoio::time::Instant) -> crate::cx::deadline::Deadline {
    crate::cx::deadline::sleep_until(t)
}

/// Runs `fut` for at most `limit`: `None` when the time ran out first (`fut` is dropped).
/// The timer is [`sleep`]'s: coarse for a long limit. Never `monoio::time::timeout` on the
/// data path: it holds a `Sleep` by value (640 bytes aligned to 128).
pub(crate) fn within<F: Future>(limit: Duration, fut: F) -> Within<F> {
    Within {
        fut,
        timer: sleep(limit),
    }
}

/// A precise timer whatever `d` is (route timeouts: a user who sets 1.5 s expects 1.5 s),
/// boxed, so that the future that holds it is not over-aligned.
pub(crate) fn precise_sleep(d: Duration) -> crate::cx::deadline::Deadline {
    crate::cx::deadline::Deadline::Precise(Box::pin(monoio::time::sleep(d)))
}

pin_project_lite::pin_project! {
    /// The future of [`within`]: a struct, so that `fut` (often the largest future of a
    /// request) is stored once, where an `async fn` would keep it twice.
    pub(crate) struct Within<F> {
        #[pin]
        fut: F,
        timer: crate::cx::deadline::Deadline,
    }
}

impl<F: Future> Future for Within<F> {
    type Output = Option<F::Output>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.fut.poll(cx) {
            return Poll::Ready(Some(v));
        }
        std::pin::Pin::new(this.timer).poll(cx).map(|()| None)
    }
}

/// A read that a stop condition (timer, drain) can interrupt without losing bytes.
///
/// Completion-based reads (io_uring) own their buffer while in flight: they are cancelled
/// and then awaited ([`until`]), so bytes that arrived anyway are kept. Poll-based reads
/// (TLS, see `conn`) copy bytes only when they are ready, so dropping one loses nothing.
/// The result says whether the stop fired (`true`) — the read then failed with `ECANCELED`
/// or still returned its bytes.
pub(crate) trait StopRead: AsyncReadRent {
    fn read_or_stop<T: IoBufMut, S: Future<Output = ()>>(
        &mut self,
        buf: T,
        stop: S,
    ) -> impl Future<Output = (BufResult<usize, T>, bool)>;
}

impl<R: StopRead> StopRead for &mut R {
    async fn read_or_stop<T: IoBufMut, S: Future<Output = ()>>(
        &mut self,
        buf: T,
        stop: S,
    ) -> (BufResult<usize, T>, bool) {
        (**self).read_or_stop(buf, stop).await
    }
}

impl StopRead for monoio::io::OwnedReadHalf<monoio::net::TcpStream> {
    async fn read_or_stop<T: IoBufMut, S: Future<Output = ()>>(
        &mut self,
        buf: T,
        stop: S,
    ) -> (BufResult<usize, T>, bool) {
        until(|h| self.cancelable_read(buf, h), stop).await
    }
}

impl StopRead for monoio::net::TcpStream {
    async fn read_or_stop<T: IoBufMut, S: Future<Output = ()>>(
        &mut self,
        buf: T,
        stop: S,
    ) -> (BufResult<usize, T>, bool) {
        until(|h| self.cancelable_read(buf, h), stop).await
    }
}

/// Whether an I/O error is the cancellation `until` caused.
pub(crate) fn is_canceled(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ECANCELED) || e.kind() == io::ErrorKind::Interrupted
}

/// A bounded read buffer: data lives in `buf[pos..]`; reads append after it.
pub(crate) struct ReadBuf {
    buf: Vec<u8>,
    pos: usize,
}

/// What one `ReadBuf::fill` produced.
pub(crate) enum Fill {
    /// New bytes were appended.
    Data,
    /// The peer closed its side (read returned 0).
    Eof,
    /// The stop condition fired before any byte arrived.
    Stopped,
    /// The buffer is at its limit and holds only unconsumed data.
    Full,
}

impl ReadBuf {
    pub(crate) fn with_capacity(n: usize) -> ReadBuf {
        ReadBuf {
            buf: Vec::with_capacity(n),
            pos: 0,
        }
    }

    pub(crate) fn data(&self) -> &[u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    pub(crate) fn len(&self) -> usize {
        // Saturating: if a future holding the buffer in flight was dropped (a route timeout),
        // the buffer is gone and `pos` may point past it; the connection is then closed.
        self.buf.len().saturating_sub(self.pos)
    }

    /// Appends bytes read elsewhere (sniffing) to the buffer.
    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.len());
        self.pos = (self.pos + n).min(self.buf.len());
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
    }

    /// Gives back memory grown for a large head or body once nothing is buffered, so an
    /// idle keep-alive connection costs little.
    pub(crate) fn shrink_idle(&mut self, to: usize) {
        if self.is_empty() && self.buf.capacity() > to.saturating_mul(4) {
            self.buf = Vec::with_capacity(to);
            self.pos = 0;
        }
    }

    /// While nothing is buffered, grows the buffer to `n` bytes so a large body is read in
    /// few, large reads (a 64 KiB body in one instead of four).
    pub(crate) fn grow_empty(&mut self, n: usize) {
        if self.is_empty() && self.buf.capacity() < n {
            self.buf = Vec::with_capacity(n);
            self.pos = 0;
        }
    }

    /// While nothing is buffered, gives back memory beyond `n` bytes (a pooled connection
    /// keeps a small buffer, whatever it last relayed).
    pub(crate) fn shrink_empty(&mut self, n: usize) {
        if self.is_empty() && self.buf.capacity() > n {
            self.buf = Vec::with_capacity(n);
            self.pos = 0;
        }
    }

    /// Makes room for at least one more byte, compacting first and growing up to `limit`.
    fn make_room(&mut self, limit: usize) -> bool {
        if self.pos >= self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        if self.buf.len() < self.buf.capacity() {
            return true;
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos.., 0);
            self.buf.truncate(self.buf.len() - self.pos);
            self.pos = 0;
            return true;
        }
        let cap = self.buf.capacity();
        if cap >= limit {
            return false;
        }
        let want = (cap.max(4096) * 2).min(limit);
        self.buf.reserve_exact(want - self.buf.len());
        true
    }

    /// The free part of the buffer, taken out of it for one read (the caller puts the buffer
    /// back with `slice.into_inner()`), after making room up to `limit`; `None` when the
    /// buffer is full of unconsumed data at `limit`.
    fn spare(&mut self, limit: usize) -> Option<monoio::buf::SliceMut<Vec<u8>>> {
        if !self.make_room(limit) {
            return None;
        }
        let vec = std::mem::take(&mut self.buf);
        let (start, end) = (vec.len(), vec.capacity());
        Some(vec.slice_mut(start..end))
    }

    /// Reads once from `r`, appending. Grows the buffer up to `limit` bytes.
    pub(crate) async fn fill<R, S>(&mut self, r: &mut R, limit: usize, stop: S) -> io::Result<Fill>
    where
        R: StopRead,
        S: Future<Output = ()>,
    {
        let Some(spare) = self.spare(limit) else {
            return Ok(Fill::Full);
        };
        let ((res, slice), stopped) = r.read_or_stop(spare, stop).await;
        self.buf = slice.into_inner();
        match res {
            Ok(0) => Ok(Fill::Eof),
            Ok(_) => Ok(Fill::Data),
            Err(e) if stopped && is_canceled(&e) => Ok(Fill::Stopped),
            Err(e) => Err(e),
        }
    }

    /// [`ReadBuf::fill`] for a connection that is closed if `stop` fires: the read is then
    /// dropped in flight instead of cancelled and awaited, and what it would have read is
    /// lost with the buffer. It spares the cancellation's bookkeeping (two hash-map updates
    /// in monoio per read), which matters for the upstream reads every request makes.
    pub(crate) async fn fill_or_abandon<R, S>(
        &mut self,
        r: &mut R,
        limit: usize,
        stop: S,
    ) -> io::Result<Fill>
    where
        R: AsyncReadRent,
        S: Future<Output = ()>,
    {
        let Some(spare) = self.spare(limit) else {
            return Ok(Fill::Full);
        };
        let mut read = pin!(r.read(spare));
        let mut stop = pin!(stop);
        let done = poll_fn(|cx| {
            if let Poll::Ready(r) = read.as_mut().poll(cx) {
                return Poll::Ready(Some(r));
            }
            stop.as_mut().poll(cx).map(|()| None)
        })
        .await;
        let Some((res, slice)) = done else {
            return Ok(Fill::Stopped);
        };
        self.buf = slice.into_inner();
        match res {
            Ok(0) => Ok(Fill::Eof),
            Ok(_) => Ok(Fill::Data),
            Err(e) => Err(e),
        }
    }

    /// Frees the buffer, which must be empty (an idle connection holds none).
    pub(crate) fn release(&mut self) {
        debug_assert!(self.is_empty());
        self.buf = Vec::new();
        self.pos = 0;
    }

    /// Makes sure the buffer has room for `n` bytes in all (after [`ReadBuf::release`]).
    pub(crate) fn reserve_idle(&mut self, n: usize) {
        if self.buf.capacity() < n {
            self.buf.reserve_exact(n - self.buf.len());
        }
    }

    /// Writes the first `n` buffered bytes to `w` and consumes them.
    pub(crate) async fn write_out<W: AsyncWriteRent>(
        &mut self,
        w: &mut W,
        n: usize,
    ) -> io::Result<()> {
        use monoio::buf::IoBuf;
        let n = n.min(self.len());
        if n == 0 {
            return Ok(());
        }
        let vec = std::mem::take(&mut self.buf);
        let (res, slice) = w.write_all(vec.slice(self.pos..self.pos + n)).await;
        self.buf = slice.into_inner();
        res?;
        self.consume(n);
        Ok(())
    }
}

/// Writes a whole vector, giving it back (cleared) for reuse.
pub(crate) async fn write_vec<W: AsyncWriteRent>(
    w: &mut W,
    v: Vec<u8>,
) -> (io::Result<()>, Vec<u8>) {
    if v.is_empty() {
        return (Ok(()), v);
    }
    let (res, mut v) = w.write_all(v).await;
    v.clear();
    (res.map(|_| ()), v)
}

/// Writes with a deadline; a write that cannot finish in time is an error (the caller closes).
/// A plain function returning a struct: as an `async fn` it moved the write's future twice
/// per call (into [`within`], then into its own state), 128 instructions per request.
pub(crate) fn write_vec_timeout<W: AsyncWriteRent>(
    w: &mut W,
    v: Vec<u8>,
    limit: Duration,
) -> TimedWrite<impl Future<Output = (io::Result<()>, Vec<u8>)> + '_> {
    TimedWrite {
        write: within(limit, write_vec(w, v)),
    }
}

pin_project_lite::pin_project! {
    /// The future of [`write_vec_timeout`].
    pub(crate) struct TimedWrite<F> {
        #[pin]
        write: Within<F>,
    }
}

impl<F: Future<Output = (io::Result<()>, Vec<u8>)>> Future for TimedWrite<F> {
    type Output = io::Result<()>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        self.project().write.poll(cx).map(|done| match done {
            Some((res, _)) => res,
            None => Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out")),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use monoio::net::TcpStream;

    use super::*;

    async fn pair() -> (TcpStream, std::net::TcpStream) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let s = TcpStream::connect_addr(l.local_addr().unwrap())
            .await
            .unwrap();
        let (peer, _) = l.accept().unwrap();
        (s, peer)
    }

    #[monoio::test_all(timer_enabled = true)]
    async fn stopped_read_loses_nothing() {
        let (mut s, mut peer) = pair().await;
        let mut buf = ReadBuf::with_capacity(16);
        let stop = monoio::time::sleep(Duration::from_millis(10));
        assert!(matches!(
            buf.fill(&mut s, 64, stop).await.unwrap(),
            Fill::Stopped
        ));
        peer.write_all(b"hello").unwrap();
        let never = std::future::pending::<()>();
        assert!(matches!(
            buf.fill(&mut s, 64, never).await.unwrap(),
            Fill::Data
        ));
        assert_eq!(buf.data(), b"hello");
        drop(peer);
        let never = std::future::pending::<()>();
        assert!(matches!(
            buf.fill(&mut s, 64, never).await.unwrap(),
            Fill::Eof
        ));
        assert_eq!(buf.data(), b"hello", "EOF keeps buffered bytes");
    }

    #[monoio::test_all(timer_enabled = true)]
    async fn grows_to_the_limit_then_reports_full() {
        let (mut s, mut peer) = pair().await;
        peer.write_all(&[7u8; 100]).unwrap();
        let mut buf = ReadBuf::with_capacity(8);
        let mut got = 0;
        while got < 64 {
            match buf
                .fill(&mut s, 64, std::future::pending::<()>())
                .await
                .unwrap()
            {
                Fill::Data => got = buf.len(),
                Fill::Full => break,
                other => panic!("unexpected {}", matches!(other, Fill::Eof)),
            }
        }
        assert_eq!(buf.len(), 64);
        assert!(matches!(
            buf.fill(&mut s, 64, std::future::pending::<()>())
                .await
                .unwrap(),
            Fill::Full
        ));
        buf.consume(60);
        assert_eq!(buf.len(), 4);
        // Compacts instead of growing past the limit.
        assert!(matches!(
            buf.fill(&mut s, 64, std::future::pending::<()>())
                .await
                .unwrap(),
            Fill::Data
        ));
        assert!(buf.len() > 4);
        buf.consume(buf.len());
        buf.shrink_idle(8);
        assert!(buf.is_empty());
    }
}
