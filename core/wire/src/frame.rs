//! Framing: a 4-byte big-endian length, then that many bytes of JSON (one [`Frame`]).
//!
//! The decoding half is sans-io ([`decode_len`], [`decode_body`]) so it is tested on plain
//! bytes; [`read_frame`] and [`write_frame`] run it over any `Read`/`Write`. Never panics:
//! every byte sequence becomes a frame or a [`WireError`].

use std::io::{Read, Write};

use crate::error::{Result, WireError};
use crate::message::Frame;
use crate::MAX_FRAME;

/// Length of the prefix.
pub const HEADER_LEN: usize = 4;

/// The body length a prefix declares, or [`WireError::FrameTooLarge`].
pub fn decode_len(header: [u8; HEADER_LEN]) -> Result<usize> {
    let len = u32::from_be_bytes(header) as usize;
    if len > MAX_FRAME {
        return Err(WireError::FrameTooLarge { len });
    }
    Ok(len)
}

/// Parses one frame body.
pub fn decode_body(body: &[u8]) -> Result<Frame> {
    serde_json::from_slice(body).map_err(|e| WireError::Malformed(e.to_string()))
}

/// Encodes a frame, prefix included. A body above [`MAX_FRAME`] is refused here too, so a
/// sender learns of it before its peer disconnects.
pub fn encode(frame: &Frame) -> Result<Vec<u8>> {
    let mut out = vec![0u8; HEADER_LEN];
    serde_json::to_writer(&mut out, frame).map_err(|e| WireError::Malformed(e.to_string()))?;
    let len = out.len() - HEADER_LEN;
    if len > MAX_FRAME {
        return Err(WireError::FrameTooLarge { len });
    }
    let prefix = (len as u32).to_be_bytes();
    if let Some(head) = out.get_mut(..HEADER_LEN) {
        head.copy_from_slice(&prefix);
    }
    Ok(out)
}

/// Reads one frame. EOF before the first byte is [`WireError::Closed`]; EOF inside a frame
/// is an I/O error (`UnexpectedEof`); a read timeout before the first byte is
/// [`WireError::Timeout`] (the connection stays usable), inside a frame an I/O error.
pub fn read_frame(r: &mut impl Read) -> Result<Frame> {
    let mut header = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        match r.read(header.get_mut(got..).unwrap_or_default()) {
            Ok(0) if got == 0 => return Err(WireError::Closed),
            Ok(0) => {
                return Err(WireError::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "connection closed inside a frame",
                )))
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // A timeout before the first byte leaves the connection usable; inside a frame
            // it does not (the stream is mid-frame), so it is an I/O error.
            Err(e) if got == 0 => return Err(WireError::from_read(e)),
            Err(e) => return Err(WireError::Io(e)),
        }
    }
    let len = decode_len(header)?;
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => WireError::Io(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed inside a frame",
        )),
        _ => WireError::Io(e),
    })?;
    decode_body(&body)
}

/// Writes one frame (one `write_all` of prefix and body).
pub fn write_frame(w: &mut impl Write, frame: &Frame) -> Result<()> {
    let bytes = encode(frame)?;
    w.write_all(&bytes).map_err(WireError::from_read)?;
    w.flush().map_err(WireError::from_read)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Reply, Request};
    use std::io::Cursor;

    fn framed(body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn round_trip() {
        let f = Frame::Request {
            id: 7,
            request: Request::Status,
        };
        let bytes = encode(&f).unwrap();
        assert_eq!(&bytes[4..], br#"{"id":7,"request":{"type":"status"}}"#);
        assert_eq!(read_frame(&mut Cursor::new(bytes)).unwrap(), f);
    }

    #[test]
    fn two_frames_back_to_back() {
        let a = Frame::Reply {
            id: 1,
            reply: Reply::Ok,
        };
        let b = Frame::Reply {
            id: 2,
            reply: Reply::ack(3),
        };
        let mut bytes = encode(&a).unwrap();
        bytes.extend(encode(&b).unwrap());
        let mut c = Cursor::new(bytes);
        assert_eq!(read_frame(&mut c).unwrap(), a);
        assert_eq!(read_frame(&mut c).unwrap(), b);
        assert!(matches!(read_frame(&mut c), Err(WireError::Closed)));
    }

    #[test]
    fn oversize_declared_length_is_refused_before_reading() {
        let header = ((MAX_FRAME + 1) as u32).to_be_bytes();
        let err = read_frame(&mut Cursor::new(header.to_vec())).unwrap_err();
        assert!(matches!(err, WireError::FrameTooLarge { len } if len == MAX_FRAME + 1));
        assert!(decode_len(u32::MAX.to_be_bytes()).is_err());
        assert_eq!(
            decode_len((MAX_FRAME as u32).to_be_bytes()).unwrap(),
            MAX_FRAME
        );
    }

    #[test]
    fn oversize_body_is_refused_when_encoding() {
        let f = Frame::Request {
            id: 1,
            request: Request::Apply {
                node: None,
                selector: None,
                config: "x".repeat(MAX_FRAME),
                no_wait: false,
            },
        };
        assert!(matches!(encode(&f), Err(WireError::FrameTooLarge { .. })));
    }

    #[test]
    fn bad_json_and_unknown_messages_are_malformed() {
        for body in [
            &b"not json"[..],
            br#"{"id":1}"#,
            br#"{"id":1,"request":{"type":"status"},"reply":{"type":"ok"}}"#,
            br#"{"id":1,"request":{"type":"launch_missiles"}}"#,
            br#"{"id":1,"request":{"type":"push_config","generation":1,"config":"","x":1}}"#,
            br#"{"id":-1,"request":{"type":"status"}}"#,
            br#"{"id":1,"request":{"type":"push_config","generation":1}}"#,
            br#"{"id":1,"reply":{"type":"ok"},"x":2}"#,
            b"",
        ] {
            let err = read_frame(&mut Cursor::new(framed(body))).unwrap_err();
            assert!(matches!(err, WireError::Malformed(_)), "{body:?}: {err:?}");
        }
    }

    #[test]
    fn truncated_frames() {
        assert!(matches!(
            read_frame(&mut Cursor::new(vec![0, 0])),
            Err(WireError::Io(_))
        ));
        let mut bytes = framed(br#"{"id":1,"reply":{"type":"ok"}}"#);
        bytes.truncate(10);
        assert!(matches!(
            read_frame(&mut Cursor::new(bytes)),
            Err(WireError::Io(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let mut c = Cursor::new(bytes);
            // Read until the input is exhausted or rejected: must return, never panic.
            for _ in 0..64 {
                if read_frame(&mut c).is_err() { break; }
            }
        }

        #[test]
        fn random_bodies_never_panic(body in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = decode_body(&body);
            let _ = read_frame(&mut Cursor::new(framed(&body)));
        }

        #[test]
        fn json_like_bodies_never_panic(s in r#"\{"id":[0-9]{1,3},"(request|reply)":\{"type":"[a-z_]{0,16}"(,"[a-z_]{1,12}":("[a-z]*"|[0-9]{1,5}|null|true|\[\]|\{\}))*\}\}"#) {
            let _ = decode_body(s.as_bytes());
        }
    }
}
