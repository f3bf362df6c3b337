//! `tunnel`: a bidirectional byte copy between two connections, used by TCP listeners, by
//! HTTP upgrades (WebSocket) after `101 Switching Protocols` and by HTTP/1.1 `CONNECT`
//! tunnels; `h2_tunnel`: the same between an HTTP/2 stream's DATA frames and a connection,
//! for a WebSocket over HTTP/2 (RFC 8441) and an HTTP/2 `CONNECT` (RFC 9113 §8.5).
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

use bytes::Bytes;
use h2::{RecvStream, SendStream};
use monoio::io::AsyncWriteRent;
use monoio::time::Instant;

use crate::cx::io::{write_vec_timeout, Fill, ReadBuf, StopRead};
use crate::upstream::pool::Upstream;
use crate::upstream::relay::{next_data, send_all};
use crate::upstream::Progress;

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

/// Copies both ways until both directions end; returns the bytes moved each way (also
/// when an error or the idle timeout ended the tunnel) and how it ended.
pub(crate) async fn tunnel<AR, AW, BR, BW>(
    a: End<'_, AR, AW>,
    b: End<'_, BR, BW>,
    idle: Duration,
) -> (Moved, io::Result<()>)
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
    let ended = poll_fn(|cx| {
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
    .await;
    let moved = Moved {
        a_to_b: a_to_b.get(),
        b_to_a: b_to_a.get(),
    };
    (moved, ended)
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

/// Bytes both ways between an HTTP/2 stream (`body`, the client's DATA frames; `down`, the
/// stream's response) and an upstream connection. Each DATA frame's bytes are released to
/// the client's window once written upstream, and bytes go to the client only as its window
/// allows, so what waits in the proxy is bounded by the windows. `progress` counts the bytes
/// each way (`bytes_in` upstream, `bytes_out` to the client). Ends when both directions have
/// (the client's END_STREAM shuts the upstream's write half; the upstream's EOF ends the
/// stream), on an error or after `idle` without bytes in a direction.
pub(crate) async fn h2_tunnel(
    body: &mut RecvStream,
    mut down: SendStream<Bytes>,
    up: &mut Upstream,
    idle: Duration,
    progress: &Progress,
) {
    let Upstream { r, w, buf, .. } = up;
    let mut to_up = pin!(async {
        while let Ok(Some(data)) = next_data(body, idle).await {
            let n = data.len();
            if write_vec_timeout(w, data.to_vec(), idle).await.is_err() {
                break;
            }
            progress.bytes_in.set(progress.bytes_in.get() + n as u64);
            let _ = body.flow_control().release_capacity(n);
        }
        let _ = w.shutdown().await;
    });
    let mut to_client = pin!(async {
        loop {
            if !buf.is_empty() {
                let chunk = Bytes::copy_from_slice(buf.data());
                let n = chunk.len();
                if send_all(&mut down, chunk).await.is_err() {
                    return;
                }
                progress.bytes_out.set(progress.bytes_out.get() + n as u64);
                buf.consume(n);
            }
            match buf.fill(r, CHUNK, crate::cx::io::sleep(idle)).await {
                Ok(Fill::Data) | Ok(Fill::Full) => {}
                _ => break,
            }
        }
        let _ = down.send_data(Bytes::new(), true);
    });
    let (mut a, mut b) = (false, false);
    poll_fn(|cx| {
        if !a && to_up.as_mut().poll(cx).is_ready() {
            a = true;
        }
        if !b && to_client.as_mut().poll(cx).is_ready() {
            b = true;
        }
        if a && b {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
}
