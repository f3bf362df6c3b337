//! Message bodies: where one ends, and copying them between connections with bounded memory.
//!
//! Bodies are never buffered whole: at most one read buffer (64 KiB) per direction is in
//! flight. Chunked bodies are validated as they pass and forwarded byte-for-byte (or
//! de-chunked for an HTTP/1.0 client); a length-delimited body is copied to the byte.

use std::time::Duration;

use monoio::io::AsyncWriteRent;
use ringside_codec::{BodyKind, ChunkError, ChunkedScanner};

use crate::cx::error::ProxyError;
use crate::cx::io::{write_vec_timeout, Fill, ReadBuf, StopRead};

/// Read-buffer limit while a body streams.
pub(crate) const BODY_CHUNK: usize = 64 * 1024;

/// How much of a body is still to come.
pub(crate) enum BodyState {
    Done,
    Length(u64),
    Chunked(ChunkedScanner),
    UntilClose,
}

impl BodyState {
    pub(crate) fn new(kind: BodyKind) -> BodyState {
        match kind {
            BodyKind::Empty | BodyKind::Length(0) => BodyState::Done,
            BodyKind::Length(n) => BodyState::Length(n),
            BodyKind::Chunked => BodyState::Chunked(ChunkedScanner::new()),
            BodyKind::UntilClose => BodyState::UntilClose,
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        matches!(self, BodyState::Done)
    }

    /// Bytes of payload seen so far are not tracked here; see [`BodyState::data_bytes`].
    /// Returns how many bytes at the start of `data` belong to the body (calling `on_data`
    /// with the payload ranges), and moves to `Done` when the body ends.
    pub(crate) fn take(
        &mut self,
        data: &[u8],
        on_data: impl FnMut(std::ops::Range<usize>),
    ) -> Result<usize, ChunkError> {
        let mut on_data = on_data;
        match self {
            BodyState::Done => Ok(0),
            BodyState::Length(left) => {
                let n = (*left).min(data.len() as u64) as usize;
                *left -= n as u64;
                on_data(0..n);
                if *left == 0 {
                    *self = BodyState::Done;
                }
                Ok(n)
            }
            BodyState::Chunked(scanner) => {
                let scan = scanner.scan(data, on_data)?;
                if scan.done {
                    *self = BodyState::Done;
                }
                Ok(scan.consumed)
            }
            BodyState::UntilClose => {
                on_data(0..data.len());
                Ok(data.len())
            }
        }
    }
}

impl BodyState {
    /// [`take`](Self::take), also collecting a chunked body's trailer field lines into
    /// `trailers` (bounded by the codec's trailer-section limit).
    pub(crate) fn take_with_trailers(
        &mut self,
        data: &[u8],
        on_data: impl FnMut(std::ops::Range<usize>),
        trailers: &mut Vec<u8>,
    ) -> Result<usize, ChunkError> {
        match self {
            BodyState::Chunked(scanner) => {
                let scan = scanner.scan_with_trailers(data, on_data, |b| trailers.push(b))?;
                if scan.done {
                    *self = BodyState::Done;
                }
                Ok(scan.consumed)
            }
            _ => self.take(data, on_data),
        }
    }
}

/// Trailer field lines (`name: value` CRLF...) as HTTP/2 trailers, without the fields that
/// must not travel in trailers (framing, routing, authentication: RFC 9110 §6.5.1).
pub(crate) fn trailer_map(lines: &[u8]) -> Option<http::HeaderMap> {
    let mut map = http::HeaderMap::new();
    for line in lines.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = line.split_at(colon);
        let value = value.get(1..).unwrap_or_default().trim_ascii();
        let name = name.to_ascii_lowercase();
        if matches!(
            name.as_slice(),
            b"content-length"
                | b"transfer-encoding"
                | b"host"
                | b"connection"
                | b"te"
                | b"trailer"
                | b"authorization"
                | b"set-cookie"
                | b"cookie"
        ) {
            continue;
        }
        if let (Ok(n), Ok(v)) = (
            http::header::HeaderName::from_bytes(&name),
            http::HeaderValue::from_bytes(value),
        ) {
            map.append(n, v);
        }
    }
    (!map.is_empty()).then_some(map)
}

/// Why copying a request body stopped.
pub(crate) enum SendError {
    /// The client went away or sent garbage: abort the exchange.
    Client(ProxyError),
    /// The body is larger than the listener allows (413).
    TooLarge,
    /// Writing to the upstream failed; it may still have answered.
    Upstream,
}

/// Copies the rest of a request body from the client to the upstream.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn send_request_body<R: StopRead, W: AsyncWriteRent>(
    cr: &mut R,
    rbuf: &mut ReadBuf,
    upw: &mut W,
    state: &mut BodyState,
    limit: Option<u64>,
    sent: &mut u64,
    idle: Duration,
) -> Result<(), SendError> {
    while !state.is_done() {
        if rbuf.is_empty() {
            match rbuf.fill(cr, BODY_CHUNK, crate::cx::io::sleep(idle)).await {
                Ok(Fill::Data) => {}
                Ok(Fill::Eof) => return Err(SendError::Client(ProxyError::ClientGone)),
                Ok(Fill::Stopped) => {
                    return Err(SendError::Client(ProxyError::BadRequest(
                        "request body timeout".into(),
                    )))
                }
                Ok(Fill::Full) => {}
                Err(e) => return Err(SendError::Client(ProxyError::ClientIo(e))),
            }
        }
        let mut payload = 0u64;
        let n = state
            .take(rbuf.data(), |r| payload += r.len() as u64)
            .map_err(|e| SendError::Client(ProxyError::BadRequest(e.to_string())))?;
        *sent += payload;
        if limit.is_some_and(|l| *sent > l) {
            return Err(SendError::TooLarge);
        }
        match crate::cx::io::within(idle, rbuf.write_out(upw, n)).await {
            Some(Ok(())) => {}
            Some(Err(_)) | None => return Err(SendError::Upstream),
        }
    }
    Ok(())
}

/// Why relaying a response body stopped.
pub(crate) enum RelayError {
    Upstream(ProxyError),
    Client(ProxyError),
}

/// Sends `first` (the response head) and then the response body from the upstream to the
/// client. `dechunk`: strip chunked framing (HTTP/1.0 client).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn relay_response_body<R: StopRead, W: AsyncWriteRent>(
    upr: &mut R,
    upbuf: &mut ReadBuf,
    cw: &mut W,
    state: &mut BodyState,
    dechunk: bool,
    first: Vec<u8>,
    read_timeout: Duration,
    write_timeout: Duration,
    written: &std::cell::Cell<u64>,
) -> Result<(), RelayError> {
    let mut out = first;
    loop {
        if !upbuf.is_empty() && !state.is_done() {
            if dechunk || !out.is_empty() {
                // Gather into `out`: the head goes out with the first body bytes in one write.
                let data = upbuf.data();
                let mut ranges: Vec<std::ops::Range<usize>> = Vec::new();
                let n = state.take(data, |r| ranges.push(r)).map_err(|e| {
                    RelayError::Upstream(ProxyError::UpstreamInvalid(e.to_string()))
                })?;
                if dechunk {
                    for r in ranges {
                        out.extend_from_slice(data.get(r).unwrap_or(&[]));
                    }
                } else {
                    out.extend_from_slice(data.get(..n).unwrap_or(&[]));
                }
                upbuf.consume(n);
            } else {
                let n = state.take(upbuf.data(), |_| {}).map_err(|e| {
                    RelayError::Upstream(ProxyError::UpstreamInvalid(e.to_string()))
                })?;
                match crate::cx::io::within(write_timeout, upbuf.write_out(cw, n)).await {
                    Some(Ok(())) => written.set(written.get() + n as u64),
                    Some(Err(e)) => return Err(RelayError::Client(ProxyError::ClientIo(e))),
                    None => return Err(RelayError::Client(ProxyError::ClientGone)),
                }
            }
        }
        if !out.is_empty() {
            let v = std::mem::take(&mut out);
            let n = v.len() as u64;
            write_vec_timeout(cw, v, write_timeout)
                .await
                .map_err(|e| RelayError::Client(ProxyError::ClientIo(e)))?;
            written.set(written.get() + n);
        }
        if state.is_done() {
            return Ok(());
        }
        let large = match state {
            BodyState::Length(left) => *left > upbuf.capacity() as u64,
            BodyState::Chunked(_) | BodyState::UntilClose => true,
            BodyState::Done => false,
        };
        if large {
            upbuf.grow_empty(BODY_CHUNK);
        }
        // Abandoned on timeout: the upstream connection is then dropped, never pooled.
        match upbuf
            .fill_or_abandon(upr, BODY_CHUNK, crate::cx::io::sleep(read_timeout))
            .await
        {
            Ok(Fill::Data) | Ok(Fill::Full) => {}
            Ok(Fill::Eof) => {
                if matches!(state, BodyState::UntilClose) {
                    *state = BodyState::Done;
                    return Ok(());
                }
                return Err(RelayError::Upstream(ProxyError::UpstreamInvalid(
                    "upstream closed the connection mid-body".into(),
                )));
            }
            Ok(Fill::Stopped) => return Err(RelayError::Upstream(ProxyError::Timeout)),
            Err(e) => return Err(RelayError::Upstream(ProxyError::UpstreamIo(e))),
        }
    }
}
