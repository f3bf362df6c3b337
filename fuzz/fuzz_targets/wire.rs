//! Control-protocol frames and messages from a peer on the control socket: `ringside_wire`'s
//! `read_frame` (4-byte length + JSON body) and `decode_body` (every `Request` and `Reply`).
//!
//! Invariant: never panics on any bytes; a frame it cannot accept is rejected with a
//! `WireError`, and a declared length above `MAX_FRAME` is refused before its body is read.
//! Properties: every frame decoded encodes and decodes back to the same frame (round trip);
//! a stream of frames reads the same — the same frames, then the same error — whether the
//! socket hands it over whole or a few bytes per read.
//!
//! Input: the whole input is tried as one frame body (JSON), and as a stream of frames.
#![no_main]

use std::io::{Cursor, Read};

use libfuzzer_sys::fuzz_target;
use ringside_wire::{decode_body, encode, read_frame, Frame, WireError};

/// A socket that returns at most `step` bytes per read.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        buf[..n].copy_from_slice(head);
        self.data = rest;
        Ok(n)
    }
}

/// The frames of a stream, then how it ended (`Closed`, malformed, truncated, too large).
fn read_all(r: &mut impl Read) -> (Vec<Frame>, String) {
    let mut frames = Vec::new();
    loop {
        match read_frame(r) {
            Ok(f) => frames.push(f),
            Err(e) => return (frames, end(&e)),
        }
    }
}

fn end(e: &WireError) -> String {
    match e {
        WireError::Io(io) => format!("io {:?}", io.kind()),
        other => other.to_string(),
    }
}

fn round_trip(frame: &Frame) {
    let _ = frame.id();
    match frame {
        Frame::Request { request, .. } => {
            let _ = request.name();
        }
        Frame::Reply { reply, .. } => {
            let _ = reply.name();
        }
    }
    let bytes = match encode(frame) {
        Ok(b) => b,
        // Only a body above MAX_FRAME is refused, and no decoded frame grows that much.
        Err(e) => panic!("a decoded frame does not encode: {e}"),
    };
    let back = read_frame(&mut Cursor::new(&bytes)).expect("an encoded frame decodes");
    assert_eq!(&back, frame);
}

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = decode_body(data) {
        round_trip(&frame);
    }
    let (frames, how) = read_all(&mut Cursor::new(data));
    for f in &frames {
        round_trip(f);
    }
    for step in [1, 3] {
        let (f2, how2) = read_all(&mut Trickle { data, step });
        assert_eq!(f2, frames, "{step} bytes per read");
        assert_eq!(how2, how, "{step} bytes per read");
    }
});
