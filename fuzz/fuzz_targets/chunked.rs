//! Chunked bodies and their trailers: `ringside_codec::ChunkedScanner`, which validates a
//! chunked body forwarded verbatim and finds its end.
//!
//! Invariant: never panics on any bytes; a body it cannot accept is rejected with a
//! `ChunkError`. Property (`ringside_codec::fuzzing::check_chunked`): the same answer —
//! bytes consumed, whether the body ended, the chunk data and the trailer bytes, or a
//! rejection — whether the body arrives in one piece, in three pieces, or one byte at a time.
//!
//! Input: the first two bytes choose the two cut points (so the corpus's bodies are whole
//! after them); the rest is the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringside_codec::fuzzing::check_chunked;

fuzz_target!(|data: &[u8]| {
    let (cuts, body) = match data {
        [a, b, body @ ..] => ([usize::from(*a), usize::from(*b) * 16], body),
        _ => return,
    };
    check_chunked(body, &cuts);
});
