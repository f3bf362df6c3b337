//! WebSocket through ringside to a real server (Python `websockets`): the HTTP/1.1 Upgrade
//! with the `websockets` client, and RFC 8441 extended CONNECT over HTTP/2 (an `h2` client
//! sending `:protocol = websocket`), which ringside turns into an HTTP/1.1 upgrade upstream.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use ringside_tests::python::{ws_client, PyServer};
use ringside_tests::*;

both_drivers!(
    fn http1_upgrade_with_a_real_client_and_server(d) {
        let server = PyServer::websocket();
        let p = Proxy::start(d, &basic_config(&[server.addr()], Extra::default()));
        let url = format!("ws://{}/chat", p.addr("in"));
        let r = ws_client(&url, &["--messages", "hello", "path", "--binary-size", "100000"]);
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(r["echoes"][0], "hello");
        assert_eq!(r["echoes"][1], "path:/chat");
        assert_eq!(r["binary_ok"], true, "{r}");
    }
);

/// A masked client frame (RFC 6455 §5.2) with a short payload.
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mask = [0x12u8, 0x34, 0x56, 0x78];
    let mut f = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

both_drivers!(
    fn rfc8441_extended_connect_over_h2(d) {
        let server = PyServer::websocket();
        let p = Proxy::start(d, &basic_config(&[server.addr()], Extra::default()));
        let addr = p.addr("in");
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        let echoed = rt.block_on(async move {
            let s = monoio::net::TcpStream::connect_addr(addr).await.unwrap();
            let io = s.try_into_poll_io().map_err(|(e, _)| e).unwrap();
            let (client, conn) = h2::client::handshake(io).await.unwrap();
            monoio::spawn(async move {
                let _ = conn.await;
            });
            // The server's SETTINGS (with ENABLE_CONNECT_PROTOCOL) arrive after the handshake.
            let deadline = Instant::now() + WAIT;
            let mut client = client.ready().await.unwrap();
            while !client.is_extended_connect_protocol_enabled() {
                assert!(Instant::now() < deadline, "no SETTINGS_ENABLE_CONNECT_PROTOCOL");
                monoio::time::sleep(Duration::from_millis(10)).await;
                client = client.ready().await.unwrap();
            }
            let mut req = http::Request::builder()
                .method("CONNECT")
                .uri(format!("http://{addr}/chat"))
                .header("sec-websocket-version", "13")
                .body(())
                .unwrap();
            req.extensions_mut()
                .insert(h2::ext::Protocol::from_static("websocket"));
            let (resp, mut send) = client.send_request(req, false).unwrap();
            let resp = resp.await.unwrap();
            assert_eq!(resp.status(), 200, "extended CONNECT is answered 200");
            let mut body = resp.into_body();
            send.send_data(Bytes::from(client_frame(0x1, b"hello")), false)
                .unwrap();
            send.send_data(Bytes::from(client_frame(0x1, b"path")), false)
                .unwrap();
            let mut got = Vec::new();
            // Two unmasked server frames: "hello" and "path:/chat".
            while got.len() < 2 + 5 + 2 + 10 {
                let chunk = monoio::time::timeout(WAIT, body.data())
                    .await
                    .expect("echo in time")
                    .expect("stream open")
                    .unwrap();
                let _ = body.flow_control().release_capacity(chunk.len());
                got.extend_from_slice(&chunk);
            }
            got
        });
        assert_eq!(&echoed[..2], &[0x81, 5]);
        assert_eq!(&echoed[2..7], b"hello");
        assert_eq!(&echoed[7..9], &[0x81, 10]);
        assert_eq!(&echoed[9..19], b"path:/chat");
    }
);
