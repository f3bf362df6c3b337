//! [`ChunkedScanner`]: validates a chunked body (RFC 9112 §7.1) that the proxy forwards
//! verbatim, and finds where it ends.
//!
//! A byte-level state machine: input may be split anywhere, nothing is buffered, and chunk
//! data is reported as ranges of the caller's input (so an HTTP/1.0 client can be served the
//! de-chunked bytes). Refused: an empty or non-hex size, more than 16 hex digits or a size
//! above 2^63, a size line (size + extensions, CRLF excluded) over 4096 bytes, anything but
//! CRLF after chunk data, bare CR or LF, control bytes in extensions or trailers, malformed
//! trailer lines (no name, no colon, obs-fold) and a trailer section over 64 KiB (its final
//! CRLF included). Chunk extensions are checked for stray control bytes and otherwise skipped.
//! After an error the scanner stays failed.

use std::ops::Range;

use crate::header::{is_tchar, is_value_byte};
use crate::{ChunkError, Scan};

/// Longest chunk-size line: hex digits plus extensions, CRLF excluded.
pub const MAX_CHUNK_SIZE_LINE: u32 = 4096;
/// Largest trailer section: every trailer line and the final CRLF.
pub const MAX_TRAILER_BYTES: u32 = 64 * 1024;
const MAX_SIZE_DIGITS: u8 = 16;
const MAX_CHUNK_SIZE: u64 = 1 << 63;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// Hex digits of a chunk size (at least one).
    #[default]
    Size,
    /// Whitespace after the size: only allowed before `;` (BWS of a chunk extension).
    SizeWs,
    /// Inside chunk extensions, until CR.
    Ext,
    /// CR of the size line seen; LF must follow.
    SizeLf,
    /// Chunk data: `remaining` bytes to go.
    Data,
    /// After data: CR expected.
    DataCr,
    /// After data and CR: LF expected.
    DataLf,
    /// Start of a trailer field line, or the CR of the final empty line.
    TrailerLineStart,
    /// In a trailer field name.
    TrailerName,
    /// In a trailer field value, until CR.
    TrailerValue,
    /// CR of a trailer field line seen; LF must follow.
    TrailerLf,
    /// CR of the final empty line seen; LF must follow.
    EndLf,
    /// The body is complete.
    Done,
    /// An error was returned; every later call returns it again.
    Failed(&'static str),
}

/// Incremental validator for a chunked body; see the module docs.
#[derive(Debug, Default)]
pub struct ChunkedScanner {
    state: State,
    size: u64,
    digits: u8,
    line_len: u32,
    remaining: u64,
    data: u64,
    trailer_len: u32,
}

impl ChunkedScanner {
    pub fn new() -> Self {
        Self::default()
    }

    /// Consumes the part of `input` that belongs to the body, stopping right after the final
    /// CRLF of the trailer section, and reports chunk data as ranges of `input`.
    pub fn scan(
        &mut self,
        input: &[u8],
        on_data: impl FnMut(Range<usize>),
    ) -> Result<Scan, ChunkError> {
        self.scan_with_trailers(input, on_data, |_| {})
    }

    /// [`scan`](Self::scan), also handing every byte of the trailer field lines (each
    /// `name: value` and its CRLF, the final empty line excluded) to `on_trailer`, so that a
    /// proxy can carry trailers into another framing (HTTP/2 HEADERS).
    pub fn scan_with_trailers(
        &mut self,
        input: &[u8],
        mut on_data: impl FnMut(Range<usize>),
        mut on_trailer: impl FnMut(u8),
    ) -> Result<Scan, ChunkError> {
        let mut i = 0usize;
        while let Some(rest) = input.get(i..) {
            match self.state {
                State::Done => break,
                State::Failed(msg) => return Err(ChunkError::Invalid(msg)),
                State::Data => {
                    if rest.is_empty() {
                        break;
                    }
                    let take = usize::try_from(self.remaining)
                        .unwrap_or(usize::MAX)
                        .min(rest.len());
                    let end = i.saturating_add(take);
                    on_data(i..end);
                    let taken = take as u64;
                    self.remaining = self.remaining.saturating_sub(taken);
                    self.data = match self.data.checked_add(taken) {
                        Some(d) => d,
                        None => return self.fail("body size overflow"),
                    };
                    i = end;
                    if self.remaining == 0 {
                        self.state = State::DataCr;
                    }
                    continue;
                }
                _ => {}
            }
            let Some(&b) = rest.first() else { break };
            i = i.saturating_add(1);
            let before = self.state;
            if let Err(msg) = self.step(b) {
                return self.fail(msg);
            }
            let trailer = match before {
                State::TrailerLineStart => b != b'\r',
                State::TrailerName | State::TrailerValue | State::TrailerLf => true,
                _ => false,
            };
            if trailer {
                on_trailer(b);
            }
        }
        Ok(Scan {
            consumed: i,
            done: self.state == State::Done,
        })
    }

    /// Total chunk-data bytes seen so far.
    pub fn data_bytes(&self) -> u64 {
        self.data
    }

    /// Whether the whole body, trailers included, has been scanned.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    fn fail(&mut self, msg: &'static str) -> Result<Scan, ChunkError> {
        self.state = State::Failed(msg);
        Err(ChunkError::Invalid(msg))
    }

    /// One byte outside chunk data.
    fn step(&mut self, b: u8) -> Result<(), &'static str> {
        match self.state {
            State::Size | State::SizeWs | State::Ext => {
                self.line_len = self.line_len.saturating_add(1);
                if self.line_len > MAX_CHUNK_SIZE_LINE && b != b'\r' {
                    return Err("chunk size line too long");
                }
            }
            State::TrailerLineStart
            | State::TrailerName
            | State::TrailerValue
            | State::TrailerLf
            | State::EndLf => {
                self.trailer_len = self.trailer_len.saturating_add(1);
                if self.trailer_len > MAX_TRAILER_BYTES {
                    return Err("trailer section too large");
                }
            }
            _ => {}
        }
        self.state = match self.state {
            State::Size => match hex_value(b) {
                Some(v) => {
                    self.digits = self.digits.saturating_add(1);
                    if self.digits > MAX_SIZE_DIGITS {
                        return Err("chunk size has too many digits");
                    }
                    self.size = self
                        .size
                        .checked_mul(16)
                        .and_then(|s| s.checked_add(u64::from(v)))
                        .ok_or("chunk size overflow")?;
                    if self.size > MAX_CHUNK_SIZE {
                        return Err("chunk size overflow");
                    }
                    State::Size
                }
                None if self.digits == 0 => return Err("missing chunk size"),
                None => match b {
                    b'\r' => State::SizeLf,
                    b';' => State::Ext,
                    b' ' | b'\t' => State::SizeWs,
                    b'\n' => return Err("bare LF after chunk size"),
                    _ => return Err("invalid chunk size"),
                },
            },
            State::SizeWs => match b {
                b' ' | b'\t' => State::SizeWs,
                b';' => State::Ext,
                _ => return Err("invalid chunk size"),
            },
            State::Ext => match b {
                b'\r' => State::SizeLf,
                _ if is_value_byte(b) => State::Ext,
                _ => return Err("invalid byte in chunk extension"),
            },
            State::SizeLf => {
                if b != b'\n' {
                    return Err("bare CR in chunk size line");
                }
                let size = self.size;
                self.size = 0;
                self.digits = 0;
                self.line_len = 0;
                if size == 0 {
                    self.trailer_len = 0;
                    State::TrailerLineStart
                } else {
                    self.remaining = size;
                    State::Data
                }
            }
            State::DataCr => match b {
                b'\r' => State::DataLf,
                _ => return Err("missing CRLF after chunk data"),
            },
            State::DataLf => match b {
                b'\n' => State::Size,
                _ => return Err("missing CRLF after chunk data"),
            },
            State::TrailerLineStart => match b {
                b'\r' => State::EndLf,
                _ if is_tchar(b) => State::TrailerName,
                _ => return Err("invalid trailer field"),
            },
            State::TrailerName => match b {
                b':' => State::TrailerValue,
                _ if is_tchar(b) => State::TrailerName,
                _ => return Err("invalid trailer field name"),
            },
            State::TrailerValue => match b {
                b'\r' => State::TrailerLf,
                _ if is_value_byte(b) => State::TrailerValue,
                _ => return Err("invalid byte in trailer field"),
            },
            State::TrailerLf => match b {
                b'\n' => State::TrailerLineStart,
                _ => return Err("bare CR in trailer field"),
            },
            State::EndLf => match b {
                b'\n' => State::Done,
                _ => return Err("bare CR at end of trailers"),
            },
            // Handled by the caller; kept total so no input can reach a panic.
            State::Data | State::Done => self.state,
            State::Failed(msg) => return Err(msg),
        };
        Ok(())
    }
}

/// The value of one hex digit (either case); also the path rules' escapes (`path.rs`).
pub(crate) fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailer_bytes_are_reported_in_any_split() {
        let input = b"3\r\nabc\r\n0\r\ngrpc-status: 0\r\nx-t: a b\r\n\r\nNEXT";
        for step in [1, 2, 5, input.len()] {
            let mut s = ChunkedScanner::new();
            let mut trailers = Vec::new();
            let mut at = 0;
            while at < input.len() && !s.is_done() {
                let piece = &input[at..(at + step).min(input.len())];
                let scan = s
                    .scan_with_trailers(piece, |_| {}, |b| trailers.push(b))
                    .unwrap();
                at += scan.consumed;
            }
            assert!(s.is_done());
            assert_eq!(&input[at..], b"NEXT");
            assert_eq!(trailers, b"grpc-status: 0\r\nx-t: a b\r\n", "step {step}");
        }
    }

    /// Scans `input` whole; returns (scan, de-chunked data).
    fn whole(input: &[u8]) -> Result<(Scan, Vec<u8>, u64), ChunkError> {
        let mut s = ChunkedScanner::new();
        let mut data = Vec::new();
        let scan = s.scan(input, |r| data.extend_from_slice(&input[r]))?;
        Ok((scan, data, s.data_bytes()))
    }

    /// Scans `input` one byte per call; returns (consumed, done, data).
    fn bytewise(input: &[u8]) -> Result<(usize, bool, Vec<u8>), ChunkError> {
        let mut s = ChunkedScanner::new();
        let mut data = Vec::new();
        let mut consumed = 0;
        for i in 0..input.len() {
            let piece = &input[i..i + 1];
            let scan = s.scan(piece, |r| data.extend_from_slice(&piece[r]))?;
            consumed += scan.consumed;
            if scan.done {
                return Ok((consumed, true, data));
            }
            assert_eq!(scan.consumed, 1);
        }
        Ok((consumed, false, data))
    }

    fn invalid(input: &[u8]) {
        assert!(
            whole(input).is_err(),
            "{:?}",
            String::from_utf8_lossy(input)
        );
        assert!(
            bytewise(input).is_err(),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }

    const BODY: &[u8] = b"5\r\nhello\r\n1A;name=value;x=\"q s\"\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Sum: 1\r\nY:\r\n\r\nNEXT";

    #[test]
    fn whole_body_with_extensions_and_trailers() {
        let (scan, data, n) = whole(BODY).unwrap();
        assert_eq!(scan.consumed, BODY.len() - 4);
        assert!(scan.done);
        assert_eq!(data, b"helloabcdefghijklmnopqrstuvwxyz");
        assert_eq!(n, 31);
    }

    #[test]
    fn byte_at_a_time_equals_whole() {
        let (consumed, done, data) = bytewise(BODY).unwrap();
        assert!(done);
        assert_eq!(consumed, BODY.len() - 4);
        assert_eq!(data, b"helloabcdefghijklmnopqrstuvwxyz");
    }

    #[test]
    fn every_two_way_split_equals_whole() {
        for cut in 0..=BODY.len() {
            let mut s = ChunkedScanner::new();
            let mut data = Vec::new();
            let (a, b) = BODY.split_at(cut);
            let s1 = s.scan(a, |r| data.extend_from_slice(&a[r])).unwrap();
            assert_eq!(s1.consumed, a.len().min(BODY.len() - 4));
            let total = if s1.done {
                s1.consumed
            } else {
                let s2 = s.scan(b, |r| data.extend_from_slice(&b[r])).unwrap();
                assert!(s2.done);
                s1.consumed + s2.consumed
            };
            assert_eq!(total, BODY.len() - 4, "cut {cut}");
            assert_eq!(data, b"helloabcdefghijklmnopqrstuvwxyz");
            assert_eq!(s.data_bytes(), 31);
        }
    }

    #[test]
    fn done_consumes_nothing_more() {
        let mut s = ChunkedScanner::new();
        assert!(s.scan(b"0\r\n\r\n", |_| {}).unwrap().done);
        assert!(s.is_done());
        let again = s
            .scan(b"5\r\nhello", |_| panic!("no data after done"))
            .unwrap();
        assert_eq!(
            again,
            Scan {
                consumed: 0,
                done: true
            }
        );
    }

    #[test]
    fn empty_input_and_incomplete() {
        let mut s = ChunkedScanner::new();
        assert_eq!(
            s.scan(b"", |_| {}).unwrap(),
            Scan {
                consumed: 0,
                done: false
            }
        );
        let r = s.scan(b"5\r\nhel", |_| {}).unwrap();
        assert_eq!(
            r,
            Scan {
                consumed: 6,
                done: false
            }
        );
        assert!(!s.is_done());
        assert_eq!(s.data_bytes(), 3);
    }

    #[test]
    fn sizes() {
        assert_eq!(whole(b"00a\r\n0123456789\r\n0\r\n\r\n").unwrap().2, 10);
        assert_eq!(whole(b"A\r\n0123456789\r\n0\r\n\r\n").unwrap().2, 10);
        assert!(whole(b"0000000000000000\r\n\r\n").unwrap().0.done);
        invalid(b"00000000000000000\r\n\r\n"); // 17 digits
        invalid(b"10000000000000000\r\n"); // 2^64
        invalid(b"8000000000000001\r\n"); // just above 2^63
        assert!(whole(b"8000000000000000\r\nxx").is_ok()); // 2^63 itself
        invalid(b"\r\n\r\n");
        invalid(b";ext\r\n");
        invalid(b"-1\r\n");
        invalid(b"+1\r\nx\r\n0\r\n\r\n");
        invalid(b"0x1\r\nx\r\n0\r\n\r\n");
        invalid(b"g\r\n");
        invalid(b" 1\r\nx\r\n0\r\n\r\n");
        invalid(b"1 \r\nx\r\n0\r\n\r\n");
        invalid(b"1 x\r\nx\r\n0\r\n\r\n");
        assert!(whole(b"1 ;a\r\nx\r\n0\r\n\r\n").unwrap().0.done);
        assert!(whole(b"1\t; a = b\r\nx\r\n0\r\n\r\n").unwrap().0.done);
    }

    #[test]
    fn line_endings() {
        invalid(b"1\nx\r\n0\r\n\r\n");
        invalid(b"1\rx\r\n0\r\n\r\n");
        invalid(b"1;a\nx\r\n0\r\n\r\n");
        invalid(b"1\r\nx\n0\r\n\r\n");
        invalid(b"1\r\nx\r0\r\n\r\n");
        invalid(b"1\r\nxy\r\n0\r\n\r\n");
        invalid(b"1\r\nx0\r\n\r\n");
        invalid(b"0\r\n\n");
        invalid(b"0\r\n\rx");
        invalid(b"0\r\nX: 1\n\r\n");
        invalid(b"0\r\nX: 1\rY\r\n\r\n");
    }

    #[test]
    fn extensions() {
        invalid(b"1;a\x00\r\nx\r\n0\r\n\r\n");
        invalid(b"1;a\x7f\r\nx\r\n0\r\n\r\n");
        let mut long = b"1;".to_vec();
        long.extend(std::iter::repeat_n(b'a', MAX_CHUNK_SIZE_LINE as usize - 2));
        long.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
        assert!(whole(&long).unwrap().0.done);
        let mut longer = b"1;".to_vec();
        longer.extend(std::iter::repeat_n(b'a', MAX_CHUNK_SIZE_LINE as usize - 1));
        longer.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
        invalid(&longer);
        // an endless extension is refused without waiting for its end
        let mut s = ChunkedScanner::new();
        let endless = vec![b'a'; 10_000];
        assert!(s.scan(b"1;", |_| {}).is_ok());
        assert!(s.scan(&endless, |_| {}).is_err());
    }

    #[test]
    fn trailers() {
        assert!(whole(b"0\r\nA: 1\r\nB-c: x y\t\r\n\r\n").unwrap().0.done);
        assert!(whole(b"0\r\nA:\r\n\r\n").unwrap().0.done);
        invalid(b"0\r\n: 1\r\n\r\n");
        invalid(b"0\r\nA 1\r\n\r\n");
        invalid(b"0\r\nA : 1\r\n\r\n");
        invalid(b"0\r\nA: 1\r\n 2\r\n\r\n");
        invalid(b"0\r\n A: 1\r\n\r\n");
        invalid(b"0\r\nA: \x01\r\n\r\n");
        invalid(b"0\r\nA(: 1\r\n\r\n");
        let mut big = b"0\r\nX: ".to_vec();
        big.extend(std::iter::repeat_n(b'v', MAX_TRAILER_BYTES as usize - 6));
        big.extend_from_slice(b"\r\n\r\n");
        invalid(&big);
        let mut fits = b"0\r\nX: ".to_vec();
        fits.extend(std::iter::repeat_n(b'v', MAX_TRAILER_BYTES as usize - 7));
        fits.extend_from_slice(b"\r\n\r\n");
        assert!(whole(&fits).unwrap().0.done);
    }

    #[test]
    fn failure_is_sticky() {
        let mut s = ChunkedScanner::new();
        assert!(s.scan(b"z", |_| {}).is_err());
        assert!(s.scan(b"0\r\n\r\n", |_| {}).is_err());
    }

    #[test]
    fn large_chunk_across_calls() {
        let mut s = ChunkedScanner::new();
        let r = s.scan(b"100000\r\n", |_| {}).unwrap();
        assert_eq!(r.consumed, 8);
        let block = vec![b'z'; 4096];
        let mut seen = 0usize;
        for _ in 0..256 {
            let r = s.scan(&block, |r| seen += r.len()).unwrap();
            assert_eq!(r.consumed, 4096);
        }
        assert_eq!(seen, 0x100000);
        let r = s.scan(b"\r\n0\r\n\r\n", |_| panic!("no data")).unwrap();
        assert!(r.done);
        assert_eq!(s.data_bytes(), 0x100000);
    }
}
