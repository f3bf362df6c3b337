//! Moving HTTP/2 bodies with flow control, never buffering one whole.
//!
//! A DATA frame's bytes are released back to the sender's window only after they have been
//! handed to the next hop, and the next hop only takes what its own window allows
//! (`reserve_capacity` / `poll_capacity`). So a slow reader on one side slows the writer on
//! the other, and what sits in the proxy is bounded by the two windows.

use std::cell::Cell;
use std::future::poll_fn;
use std::time::Duration;

use bytes::Bytes;
use h2::{RecvStream, SendStream};
use http::HeaderMap;

/// Why a relay stopped.
#[derive(Debug)]
pub(crate) enum RelayError {
    /// The side we read from failed (reset, connection error) or stalled past the timeout.
    From(Option<h2::Error>),
    /// The side we write to failed.
    To(Option<h2::Error>),
    /// The body went past the listener's `max_request_body_bytes`.
    TooLarge,
}

/// Sends `data` on `to`, waiting for window capacity as needed.
pub(crate) async fn send_all(to: &mut SendStream<Bytes>, mut data: Bytes) -> Result<(), h2::Error> {
    while !data.is_empty() {
        to.reserve_capacity(data.len());
        let cap = match poll_fn(|cx| to.poll_capacity(cx)).await {
            Some(Ok(n)) => n,
            Some(Err(e)) => return Err(e),
            None => return Err(h2::Error::from(h2::Reason::CANCEL)),
        };
        if cap == 0 {
            continue;
        }
        let chunk = data.split_to(cap.min(data.len()));
        to.send_data(chunk, false)?;
    }
    Ok(())
}

/// The next DATA frame of `from`, or `None` at the end of the body; bounded by `idle`.
pub(crate) async fn next_data(
    from: &mut RecvStream,
    idle: Duration,
) -> Result<Option<Bytes>, RelayError> {
    match crate::cx::io::within(idle, from.data()).await {
        Some(Some(Ok(b))) => Ok(Some(b)),
        Some(Some(Err(e))) => Err(RelayError::From(Some(e))),
        Some(None) => Ok(None),
        None => Err(RelayError::From(None)),
    }
}

/// The trailers that ended `from`'s body, if any.
pub(crate) async fn trailers(
    from: &mut RecvStream,
    idle: Duration,
) -> Result<Option<HeaderMap>, RelayError> {
    match crate::cx::io::within(idle, from.trailers()).await {
        Some(Ok(t)) => Ok(t),
        Some(Err(e)) => Err(RelayError::From(Some(e))),
        None => Err(RelayError::From(None)),
    }
}

/// Copies a whole body, then its trailers (or the end of the stream), from an HTTP/2 stream
/// to another. `moved` counts the body bytes; past `limit` the relay stops with `TooLarge`
/// before sending the frame that crosses it.
pub(crate) async fn h2_to_h2(
    from: &mut RecvStream,
    to: &mut SendStream<Bytes>,
    idle: Duration,
    moved: &Cell<u64>,
    limit: Option<u64>,
) -> Result<(), RelayError> {
    while let Some(data) = next_data(from, idle).await? {
        let n = data.len();
        if limit.is_some_and(|l| moved.get() + n as u64 > l) {
            return Err(RelayError::TooLarge);
        }
        send_all(to, data)
            .await
            .map_err(|e| RelayError::To(Some(e)))?;
        moved.set(moved.get() + n as u64);
        let _ = from.flow_control().release_capacity(n);
    }
    match trailers(from, idle).await? {
        Some(t) => to.send_trailers(t),
        None => to.send_data(Bytes::new(), true),
    }
    .map_err(|e| RelayError::To(Some(e)))
}
