//! Message bodies both ways: Content-Length, chunked, close-delimited, a large streamed body,
//! HEAD, 204/304, 1xx interim responses and `Expect: 100-continue`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use ringside_tests::*;

/// An origin that answers a Content-Length request with the same length and streams the
/// body back as it arrives (it never holds the whole body).
fn streaming_echo() -> Origin {
    Origin::raw(|mut s: TcpStream| {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if !matches!(read_retrying(&mut s, &mut byte), Ok(1)) {
                return;
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
        let len: u64 = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let reply = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n");
        if s.write_all(reply.as_bytes()).is_err() {
            return;
        }
        let mut left = len;
        let mut buf = vec![0u8; 256 * 1024];
        while left > 0 {
            let want = buf.len().min(left as usize);
            match read_retrying(&mut s, &mut buf[..want]) {
                Ok(n) if n > 0 => {
                    if s.write_all(&buf[..n]).is_err() {
                        return;
                    }
                    left -= n as u64;
                }
                _ => return,
            }
        }
    })
}

both_drivers!(
    fn content_length_body_is_forwarded(d) {
        let o = Origin::echo();
        let p = Proxy::start(d, &basic_config(&[o.addr()], Extra::default()));
        let mut c = Client::connect(p.addr("in"));
        let r = c.request(b"POST /in HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world");
        assert_eq!((r.status, r.text().as_str()), (200, "hello world"));
        let seen = o.request(0);
        assert_eq!(seen.header("content-length"), Some("11"));
        assert_eq!(seen.body, b"hello world");
        let r = c.request(b"PUT /empty HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
        assert_eq!((r.status, r.body.len()), (200, 0));
    }
);

both_drivers!(
    fn chunked_request_reaches_the_upstream_as_valid_chunked(d) {
        let o = Origin::echo();
        let p = Proxy::start(d, &basic_config(&[o.addr()], Extra::default()));
        let mut c = Client::connect(p.addr("in"));
        c.send(b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5;name=val\r\nhello\r\n");
        c.send(b"6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n");
        let r = c.read_response();
        assert_eq!((r.status, r.text().as_str()), (200, "hello world"));
        let seen = o.request(0);
        assert_eq!(seen.framing_error, None, "raw body: {:?}", String::from_utf8_lossy(&seen.raw_body));
        assert_eq!(seen.body, b"hello world");
        assert_eq!(seen.header("transfer-encoding"), Some("chunked"));
        assert!(!seen.has_header("content-length"));

        // A bigger one, in many chunks of different sizes, on the same connection.
        let data = pattern(0, 1 << 20);
        let mut req = b"POST /big HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        let mut at = 0;
        for size in [1usize, 100, 4096, 65536, 7].iter().cycle() {
            let end = (at + size).min(data.len());
            req.extend_from_slice(format!("{:x}\r\n", end - at).as_bytes());
            req.extend_from_slice(&data[at..end]);
            req.extend_from_slice(b"\r\n");
            at = end;
            if at == data.len() {
                break;
            }
        }
        req.extend_from_slice(b"0\r\n\r\n");
        let r = c.request(&req);
        assert_eq!(r.status, 200);
        assert!(r.body == data, "echoed {} bytes, want {}", r.body.len(), data.len());
        assert_eq!(o.request(1).framing_error, None);
    }
);

both_drivers!(
    fn chunked_response_is_relayed(d) {
        let o = Origin::start(|_| {
            Reply::Send(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                  5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n"
                    .to_vec(),
            )
        });
        let p = Proxy::start(d, &basic_config(&[o.addr()], Extra::default()));
        let mut c = Client::connect(p.addr("in"));
        for _ in 0..2 {
            let r = c.request(&get("/"));
            assert_eq!((r.status, r.text().as_str()), (200, "hello world"));
        }
        assert_eq!(o.connections(), 1, "a chunked response ends cleanly: the upstream is reused");
    }
);

both_drivers!(
    fn close_delimited_response_is_relayed_whole(d) {
        let o = Origin::start(|_| {
            Reply::SendClose(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the server closes".to_vec())
        });
        let p = Proxy::start(d, &basic_config(&[o.addr()], Extra::default()));
        for _ in 0..2 {
            let mut c = Client::connect(p.addr("in"));
            let r = c.request(&get("/"));
            assert_eq!((r.status, r.text().as_str()), (200, "until the server closes"));
        }
    }
);

both_drivers!(
    fn http10_client_gets_a_chunked_response_without_chunk_framing(d) {
        let o = Origin::start(|_| {
            Reply::Send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_vec())
        });
        let p = Proxy::start(d, &basic_config(&[o.addr()], Extra::default()));
        let mut c = Client::connect(p.addr("in"));
        let r = c.request(b"GET / HTTP/1.0\r\nHost: t\r\n\r\n");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("transfer-encoding"), None, "HTTP/1.0 has no chunked coding");
        assert_eq!(r.text(), "hello");
    }
);

both_drivers!(
    fn large_body_streams_through_both_ways(d) {
        const LEN: u64 = 64 << 20;
        let o = streaming_echo();
        let p = Proxy::start(d, &basic_config(&[o.addr()], Extra::default()));
        let mut c = Client::connect(p.addr("in"));
        let t = Instant::now();
        let mut w = c.stream().try_clone().unwrap();
        let writer = std::thread::spawn(move || {
            let head = format!("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: {LEN}\r\n\r\n");
            w.write_all(head.as_bytes()).unwrap();
            let piece = 1 << 20;
            for i in 0..LEN / piece {
                w.write_all(&pattern(i * piece, piece as usize)).unwrap();
            }
        });
        let r = c.read_response();
        writer.join().unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body.len() as u64, LEN);
        let bad = r.body.iter().enumerate().position(|(i, b)| *b != pattern_byte(i as u64));
        assert_eq!(bad, None, "first corrupted byte");
        assert!(t.elapsed() < Duration::from_secs(60), "64 MiB each way took {:?}", t.elapsed());
    }
);

both_drivers!(
    fn head_response_has_no_body(d) {
        let o = Origin::start(|r| {
            if r.method == "HEAD" {
                Reply::Send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n".to_vec())
            } else {
                ok("after")
            }
        });
        let p = Proxy::start(d, &basic_config(&[o.addr()], Extra::default()));
        let mut c = Client::connect(p.addr("in"));
        c.send(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n");
        let r = c.read_response_to("HEAD");
        assert_eq!((r.status, r.header("content-length")), (200, Some("100")));
        let r = c.request(&get("/"));
        assert_eq!(r.text(), "after", "no body was sent after the HEAD response");
        assert_eq!(o.connections(), 1, "nor expected from the upstream");
    }
);

both_drivers!(
    fn no_body_for_204_and_304(d) {
        let o = Origin::start(|r| match r.target.as_str() {
            "/204" => Reply::Send(b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n".to_vec()),
            "/304" => Reply::Send(b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 50\r\n\r\n".to_vec()),
            _ => ok("after"),
        });
        let p = Proxy::start(d, &basic_config(&[o.addr()], Extra::default()));
        let mut c = Client::connect(p.addr("in"));
        let r = c.request(&get("/204"));
        assert_eq!((r.status, r.header("x-a")), (204, Some("1")));
        let r = c.request(&get("/304"));
        assert_eq!((r.status, r.header("etag")), (304, Some("\"v1\"")));
        assert_eq!(c.request(&get("/")).text(), "after", "neither response carried a body");
        assert_eq!(o.connections(), 1);
    }
);

both_drivers!(
    fn expect_100_continue_gets_100_then_the_final_response(d) {
        let o = Origin::echo(); // answers 100 Continue itself when asked
        let p = Proxy::start(d, &basic_config(&[o.addr()], Extra::default()));
        let mut c = Client::connect(p.addr("in"));
        c.send(b"POST /up HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
        let interim = c.read_response();
        assert_eq!(interim.status, 100, "the client waits for 100 before sending the body");
        c.send(b"hello");
        let r = c.read_response();
        assert_eq!((r.status, r.text().as_str()), (200, "hello"));
        assert_eq!(o.request(0).body, b"hello");
    }
);

both_drivers!(
    fn interim_103_is_relayed_before_the_final_response(d) {
        let o = Origin::start(|_| {
            let mut out = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n".to_vec();
            out.extend_from_slice(&http_response(200, &[], b"final"));
            Reply::Send(out)
        });
        let p = Proxy::start(d, &basic_config(&[o.addr()], Extra::default()));
        let mut c = Client::connect(p.addr("in"));
        c.send(&get("/"));
        let interim = c.read_response();
        assert_eq!((interim.status, interim.header("link")), (103, Some("</a.css>; rel=preload")));
        let r = c.read_response();
        assert_eq!((r.status, r.text().as_str()), (200, "final"));
    }
);

both_drivers!(
    fn upstream_answering_before_reading_the_body_does_not_hang(d) {
        // The origin rejects at once without reading the 1 MiB body it was sent.
        let o = Origin::raw(|mut s: TcpStream| {
            let mut buf = [0u8; 1024];
            let _ = read_retrying(&mut s, &mut buf);
            let _ = s.write_all(&http_response(413, &[("Connection", "close")], b"too big for me"));
            let _ = s.shutdown(std::net::Shutdown::Write);
            let mut sink = [0u8; 65536];
            while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
        });
        let p = Proxy::start(d, &basic_config(&[o.addr()], Extra::default()));
        let mut c = Client::connect(p.addr("in"));
        let mut w = c.stream().try_clone().unwrap();
        let writer = std::thread::spawn(move || {
            let _ = w.write_all(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1048576\r\n\r\n");
            let _ = w.write_all(&vec![b'x'; 1 << 20]);
        });
        let r = c.read_response();
        assert_eq!((r.status, r.text().as_str()), (413, "too big for me"));
        let _ = c.stream().shutdown(std::net::Shutdown::Both);
        writer.join().unwrap();
    }
);
