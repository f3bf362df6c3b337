//! HTTP/2: h2c by preface on an ordinary HTTP listener (curl `--http2-prior-knowledge`,
//! h2load), every translation between HTTP/1.1 and HTTP/2 (the upstream side chosen by the
//! cluster's `protocol`), multiplexing of upstream HTTP/2 connections, and bodies larger
//! than every flow-control window.

#![allow(clippy::unwrap_used)]

use ringside_tests::tools::{curl, h2load};
use ringside_tests::*;

/// Writes `body` to a file for `curl --data-binary @file` (too big for an argument).
fn body_file(body: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("body");
    std::fs::write(&path, body).unwrap();
    let arg = format!("@{}", path.display());
    (dir, arg)
}

/// A second ringside serving h2c in front of `origin`: an HTTP/2 upstream for the first.
fn h2_hop(d: Driver, origin: std::net::SocketAddr) -> Proxy {
    Proxy::start(d, &basic_config(&[origin], Extra::default()))
}

both_drivers!(
    fn h2c_prior_knowledge_to_an_http1_upstream(d) {
        let o = Origin::echo();
        let p = Proxy::start(d, &basic_config(&[o.addr()], Extra::default()));
        let url = format!("http://{}/hello?x=1", p.addr("in"));
        let r = curl(&["--http2-prior-knowledge", &url]);
        assert_eq!(r.status, Some(200), "{r:?}");
        assert_eq!(r.http_version, "2");
        let seen = o.request(0);
        assert_eq!(seen.target, "/hello?x=1");
        assert!(seen.header("host").is_some_and(|h| h.starts_with("127.0.0.1")));
        assert_eq!(seen.header("x-forwarded-proto"), Some("http"));

        // A body without a length reaches the HTTP/1.1 upstream chunked, whole.
        let body: String = (0..200_000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        let (_dir, file) = body_file(&body);
        let r = curl(&["--http2-prior-knowledge", "--data-binary", &file, &url]);
        assert_eq!(r.status, Some(200), "{r:?}");
        assert_eq!(r.stdout, body, "echoed body");
        // And plain HTTP/1.1 still works on the same port.
        let r = curl(&["--http1.1", &url]);
        assert_eq!(r.status, Some(200));
        assert_eq!(r.http_version, "1.1");
    }
);

both_drivers!(
    fn h1_and_h2_clients_through_an_h2_upstream(d) {
        let o = Origin::echo();
        let inner = h2_hop(d, o.addr());
        let outer = Proxy::start(
            d,
            &basic_config(
                &[inner.addr("in")],
                Extra { cluster: "protocol = \"http2\"", ..Extra::default() },
            ),
        );
        let url = format!("http://{}/a", outer.addr("in"));
        // HTTP/1.1 client → HTTP/2 upstream → HTTP/1.1 origin.
        let r = curl(&["--http1.1", &url]);
        assert_eq!(r.status, Some(200), "{r:?}");
        assert_eq!(r.http_version, "1.1");
        let big = "z".repeat(3 << 20);
        let (_dir, file) = body_file(&big);
        let r = curl(&["--http1.1", "--data-binary", &file, &url]);
        assert_eq!(r.status, Some(200), "{r:?}");
        assert_eq!(r.stdout.len(), big.len(), "a 3 MiB body crosses the h2 hop both ways");
        // HTTP/2 client → HTTP/2 upstream.
        let r = curl(&["--http2-prior-knowledge", "--data-binary", &file, &url]);
        assert_eq!(r.status, Some(200), "{r:?}");
        assert_eq!(r.stdout.len(), big.len());
        assert_eq!(r.http_version, "2");
    }
);

both_drivers!(
    fn upstream_h2_connections_are_multiplexed(d) {
        let o = Origin::text("hi");
        let inner = h2_hop(d, o.addr());
        let outer = Proxy::start(
            d,
            &basic_config(
                &[inner.addr("in")],
                Extra { cluster: "protocol = \"http2\"", ..Extra::default() },
            ),
        );
        let url = format!("http://{}/", outer.addr("in"));
        let s = h2load(&["-n", "2000", "-c", "4", "-m", "10", &url]);
        assert_eq!(s.status_2xx, 2000, "{s:?}");
        assert_eq!(s.failed + s.errored, 0, "{s:?}");
        // Four clients, 40 streams at once: one upstream connection per worker carries them.
        let metrics = inner.handle.metrics();
        let accepted: u64 = metrics.iter().map(|w| w.accepted).sum();
        assert!(accepted <= 2, "the inner proxy saw {accepted} connections");
    }
);

both_drivers!(
    fn h2load_many_streams_on_h2c(d) {
        let o = Origin::text("ok");
        let p = Proxy::start(d, &basic_config(&[o.addr()], Extra::default()));
        let url = format!("http://{}/", p.addr("in"));
        let s = h2load(&["-n", "5000", "-c", "10", "-m", "20", &url]);
        assert_eq!(s.status_2xx, 5000, "{s:?}");
        assert_eq!(s.failed + s.errored, 0, "{s:?}");
    }
);

both_drivers!(
    fn errors_and_direct_responses_over_h2(d) {
        let p = Proxy::start(
            d,
            "[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n\
             [[routes]]\nlistener = \"in\"\nname = \"hi\"\nmatch = { path_prefix = \"/hi\" }\n\
             direct_response = { status = 200, body = \"hello\" }\n\
             [[routes]]\nlistener = \"in\"\nname = \"down\"\nmatch = { path_prefix = \"/down\" }\ncluster = \"dead\"\n\
             [[clusters]]\nname = \"dead\"\nendpoints = [\"127.0.0.1:1\"]\n",
        );
        let base = format!("http://{}", p.addr("in"));
        let r = curl(&["--http2-prior-knowledge", &format!("{base}/hi")]);
        assert_eq!((r.status, r.stdout.as_str()), (Some(200), "hello"));
        let r = curl(&["--http2-prior-knowledge", &format!("{base}/nothing")]);
        assert_eq!(r.status, Some(404));
        let r = curl(&["--http2-prior-knowledge", &format!("{base}/down")]);
        assert_eq!(r.status, Some(502), "{r:?}");
    }
);

both_drivers!(
    fn chunked_trailers_cross_h2_hops_both_ways(d) {
        use std::io::{Read, Write};
        use std::sync::{Arc, Mutex};
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        let o = Origin::raw(move |mut s| {
            let mut got = Vec::new();
            let mut b = [0u8; 4096];
            while got.windows(4).filter(|w| *w == b"\r\n\r\n").nth(1).is_none() {
                match s.read(&mut b) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&b[..n]),
                }
            }
            record.lock().unwrap().extend_from_slice(&got);
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n\
                  2\r\nok\r\n0\r\nx-checksum: abc\r\n\r\n",
            );
        });
        // h1 client -> outer (cluster http2) -> inner (h2c listener) -> h1 origin.
        let inner = h2_hop(d, o.addr());
        let outer = Proxy::start(
            d,
            &basic_config(
                &[inner.addr("in")],
                Extra { cluster: "protocol = \"http2\"", ..Extra::default() },
            ),
        );
        let mut c = std::net::TcpStream::connect(outer.addr("in")).unwrap();
        c.set_read_timeout(Some(WAIT)).unwrap();
        c.write_all(
            b"POST /t HTTP/1.1\r\nHost: t\r\nTE: trailers\r\nConnection: close\r\n\
              Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nx-req-trailer: 1\r\n\r\n",
        )
        .unwrap();
        let mut resp = Vec::new();
        let _ = c.read_to_end(&mut resp);
        let resp = String::from_utf8_lossy(&resp).to_lowercase();
        assert!(resp.starts_with("http/1.1 200"), "{resp}");
        assert!(resp.contains("\r\n0\r\nx-checksum: abc\r\n\r\n"), "response trailer: {resp}");
        let req = String::from_utf8_lossy(&seen.lock().unwrap()).to_lowercase();
        assert!(req.contains("x-req-trailer: 1\r\n"), "request trailer reached the origin: {req}");
    }
);
