//! `tunnel`: a bidirectional byte copy between two connections, used by TCP listeners and
//! by HTTP upgrades (WebSocket) after `101 Switching Protocols`.
//!
//! Half-close is honoured: when one side finishes sending (EOF), the other side's write half
//! is shut down and the opposite direction keeps flowing until it ends too. The idle timeout
//! counts silence in *both* directions. A read that times out is cancelled and awaited, so no
//! byte is lost; an error in either direction ends both.

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use monoio::io::AsyncWriteRent;
use monoio::time::Instant;

use crate::cx::io::{Fill, ReadBuf, StopRead};

const CHUNK: usize = 64 * 1024;

/// One side of a tunnel: its halves and any bytes already read from it.
pub(crate) struct End<'a, R, W> {
    pub(crate) r: &'a mut R,
    pub(crate) w: &'a mut W,
    pub(crate) buf: &'a mut ReadBuf,
}

/// Bytes moved each way.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Moved {
    pub(crate) a_to_b: u64,
    pub(crate) b_to_a: u64,
}

pub(crate) async fn tunnel<AR, AW, BR, BW>(
    a: End<'_, AR, AW>,
    b: End<'_, BR, BW>,
    idle: Duration,
) -> io::Result<Moved>
where
    AR: StopRead,
    AW: AsyncWriteRent,
    BR: StopRead,
    BW: AsyncWriteRent,
{
    let activity = Cell::new(Instant::now());
    let a_to_b = Cell::new(0u64);
    let b_to_a = Cell::new(0u64);
    let mut up = pin!(copy(a.r, a.buf, b.w, &activity, idle, &a_to_b));
    let mut down = pin!(copy(b.r, b.buf, a.w, &activity, idle, &b_to_a));
    let mut up_done = false;
    let mut down_done = false;
    poll_fn(|cx| {
        if !up_done {
            match up.as_mut().poll(cx) {
                Poll::Ready(Ok(())) => up_done = true,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
        }
        if !down_done {
            match down.as_mut().poll(cx) {
                Poll::Ready(Ok(())) => down_done = true,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
        }
        if up_done && down_done {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    })
    .await?;
    Ok(Moved {
        a_to_b: a_to_b.get(),
        b_to_a: b_to_a.get(),
    })
}

async fn copy<R: StopRead, W: AsyncWriteRent>(
    from: &mut R,
    buf: &mut ReadBuf,
    to: &mut W,
    activity: &Cell<Instant>,
    idle: Duration,
    moved: &Cell<u64>,
) -> io::Result<()> {
    loop {
        if !buf.is_empty() {
            let n = buf.len();
            buf.write_out(to, n).await?;
            moved.set(moved.get() + n as u64);
            activity.set(Instant::now());
        }
        let deadline = activity.get() + idle;
        match buf
            .fill(from, CHUNK, crate::cx::io::sleep_until(deadline))
            .await?
        {
            Fill::Data | Fill::Full => activity.set(Instant::now()),
            Fill::Eof => {
                let _ = to.shutdown().await;
                return Ok(());
            }
            Fill::Stopped => {
                if activity.get() + idle <= Instant::now() {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "tunnel idle timeout",
                    ));
                }
            }
        }
    }
}
