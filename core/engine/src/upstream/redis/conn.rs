//! One worker's connection to a Redis server: RESP2 (the `redis-protocol` crate's codec)
//! over a monoio TCP stream. A batch of window counts goes out as one pipelined write —
//! `INCRBY key n` and `EXPIRE key ttl` per window — and its replies are read in order.
//!
//! The caller bounds every call with the server's `timeout_ms` and drops the connection
//! when one fails or runs out of time: a reply stream cut in the middle is never read again.

use std::io;
use std::net::SocketAddr;

use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use redis_protocol::resp2::decode::decode;
use redis_protocol::resp2::encode::encode_borrowed;
use redis_protocol::resp2::types::{BorrowedFrame, OwnedFrame};

use super::windows::Flush;

/// The most reply bytes a batch may bring before it is taken for garbage.
const MAX_REPLY_BYTES: usize = 1 << 20;

pub(crate) struct Conn {
    stream: TcpStream,
    /// Reply bytes read and not decoded yet.
    replies: Vec<u8>,
}

impl Conn {
    pub(crate) async fn connect(addr: SocketAddr) -> io::Result<Conn> {
        let stream = TcpStream::connect_addr(addr).await?;
        let _ = stream.set_nodelay(true);
        Ok(Conn {
            stream,
            replies: Vec::new(),
        })
    }

    /// Counts `batch` in Redis: the window totals after each `INCRBY`, in batch order.
    pub(crate) async fn incr(&mut self, batch: &[Flush]) -> io::Result<Vec<u64>> {
        let mut out = Vec::with_capacity(batch.len() * 96);
        for f in batch {
            let (n, ttl) = (f.n.to_string(), f.ttl.to_string());
            command(&mut out, &[b"INCRBY", &f.key, n.as_bytes()])?;
            command(&mut out, &[b"EXPIRE", &f.key, ttl.as_bytes()])?;
        }
        let (res, _) = self.stream.write_all(out).await;
        res?;
        let mut totals = Vec::with_capacity(batch.len());
        for i in 0..batch.len() * 2 {
            let reply = self.reply().await?;
            if i % 2 == 1 {
                continue; // EXPIRE's 1 or 0
            }
            match reply {
                OwnedFrame::Integer(total) => totals.push(u64::try_from(total).unwrap_or(0)),
                other => return Err(unexpected(&other)),
            }
        }
        Ok(totals)
    }

    /// The next reply frame; an error reply is an error.
    async fn reply(&mut self) -> io::Result<OwnedFrame> {
        loop {
            match decode(&self.replies) {
                Ok(Some((frame, used))) => {
                    self.replies.drain(..used.min(self.replies.len()));
                    if let OwnedFrame::Error(e) = &frame {
                        return Err(io::Error::other(format!("redis: {e}")));
                    }
                    return Ok(frame);
                }
                Ok(None) => {}
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
            }
            if self.replies.len() > MAX_REPLY_BYTES {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "redis: reply too long",
                ));
            }
            let (res, buf) = self.stream.read(vec![0u8; 4096]).await;
            let n = res?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.replies
                .extend_from_slice(buf.get(..n).unwrap_or_default());
        }
    }
}

/// Appends one command (an array of bulk strings) to `out`.
fn command(out: &mut Vec<u8>, args: &[&[u8]]) -> io::Result<()> {
    let parts: Vec<BorrowedFrame<'_>> = args.iter().map(|a| BorrowedFrame::BulkString(a)).collect();
    let frame = BorrowedFrame::Array(&parts);
    let at = out.len();
    out.resize(at + frame.encode_len(false), 0);
    let Some(tail) = out.get_mut(at..) else {
        return Err(io::Error::other("redis: encode"));
    };
    encode_borrowed(tail, &frame, false)
        .map(|_| ())
        .map_err(|e| io::Error::other(e.to_string()))
}

fn unexpected(frame: &OwnedFrame) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("redis: unexpected reply {frame:?}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_resp_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        command(&mut out, &[b"INCRBY", b"ringside:rl:a", b"12"]).unwrap();
        command(&mut out, &[b"EXPIRE", b"ringside:rl:a", b"120"]).unwrap();
        assert_eq!(
            out,
            b"*3\r\n$6\r\nINCRBY\r\n$13\r\nringside:rl:a\r\n$2\r\n12\r\n\
              *3\r\n$6\r\nEXPIRE\r\n$13\r\nringside:rl:a\r\n$3\r\n120\r\n"
        );
    }

    /// A scripted server on a loopback socket: the pipelined batch arrives whole, and its
    /// replies (split across reads) come back as totals; an error reply is an error.
    #[monoio::test_all(timer_enabled = true)]
    async fn a_batch_is_one_write_and_its_replies_are_read_in_order() {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 512];
            while got.iter().filter(|b| **b == b'*').count() < 4 {
                let n = s.read(&mut buf).unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            s.write_all(b":7\r\n:1\r\n:4").unwrap();
            s.flush().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(20));
            s.write_all(b"2\r\n:1\r\n").unwrap();
            let mut more = [0u8; 256];
            let _ = s.read(&mut more).unwrap();
            s.write_all(b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n")
                .unwrap();
            got
        });
        let mut c = Conn::connect(addr).await.unwrap();
        let batch = [
            Flush {
                key: b"a".as_slice().into(),
                n: 3,
                ttl: 2,
            },
            Flush {
                key: b"b".as_slice().into(),
                n: 5,
                ttl: 120,
            },
        ];
        assert_eq!(c.incr(&batch).await.unwrap(), [7, 42]);
        let err = c.incr(&batch[..1]).await.unwrap_err();
        assert!(err.to_string().contains("WRONGTYPE"), "{err}");
        let got = server.join().unwrap();
        assert!(got.starts_with(b"*3\r\n$6\r\nINCRBY\r\n$1\r\na\r\n$1\r\n3\r\n"));
    }
}
