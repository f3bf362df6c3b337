//! A differential WebSocket conformance run (issue 15 §4; docs/hardening.md, "WebSocket
//! conformance"): every case of `tests/python/ws_cases.py` (framing, text and binary messages,
//! fragmentation, reserved bits and opcodes, ping and pong, the close handshake, UTF-8, large
//! messages, many small messages) is played by a raw-socket client once against a `websockets`
//! echo server directly, once through ringside over an HTTP/1.1 Upgrade, and once through
//! ringside over TLS. Each case must end the same way all three times: the same frames back,
//! the same close code and reason, and the same side closing the connection.
//!
//! The short case list runs here; `RINGSIDE_WS_FULL=1` runs the full one (16 MiB messages,
//! 10,000 small messages, every byte of 64 KiB frames written apart).

#![allow(clippy::unwrap_used)]

use ringside_tests::certs::TestPki;
use ringside_tests::python::{ws_conformance, PyServer};
use ringside_tests::*;

both_drivers!(
    fn every_case_ends_as_it_does_without_the_proxy(d) {
        let server = PyServer::websocket_plain();
        let pki = TestPki::new();
        let (cert, key) = pki.leaf("ringside", &["localhost"], &[]);
        let config = format!(
            "[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n\
             [[listeners]]\nname = \"tls\"\nbind = \"127.0.0.1:0\"\n\
             tls = {{ certificates = [ {{ cert = \"{}\", key = \"{}\" }} ] }}\n\
             [[routes]]\nlistener = \"in\"\nname = \"plain\"\ncluster = \"echo\"\n\
             [[routes]]\nlistener = \"tls\"\nname = \"tls\"\ncluster = \"echo\"\n\
             [[clusters]]\nname = \"echo\"\nendpoints = [\"{}\"]\n",
            cert.display(),
            key.display(),
            server.addr()
        );
        let p = Proxy::start(d, &config);
        let full = std::env::var_os("RINGSIDE_WS_FULL").is_some_and(|v| v == "1");
        let targets = [
            format!("direct={}", server.addr()),
            format!("ringside={}", p.addr("in")),
            format!("ringside-tls={}:tls", p.addr("tls")),
        ];
        let r = ws_conformance(&targets, Some(&pki.ca_path()), full);

        assert_eq!(r["differences"], serde_json::json!([]), "{r:#}");
        let cases = r["cases"].as_u64().unwrap();
        assert!(cases >= if full { 150 } else { 130 }, "the case list shrank: {r:#}");
        let categories = r["categories"].as_object().unwrap();
        assert_eq!(categories.len(), 9, "{r:#}");
        // The reference run itself is sound: every case got its handshake and ended with a
        // close the server sent, not a timeout.
        for (ending, n) in r["endings"].as_object().unwrap() {
            assert!(
                ending.starts_with("close ") && ending.ends_with(", server closed"),
                "{n} cases ended {ending:?}: {r:#}"
            );
        }
        for code in ["close 1000", "close 1002", "close 1007", "close 1009"] {
            assert!(
                r["endings"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .any(|e| e.starts_with(&format!("{code},"))),
                "no case ended with {code}: {r:#}"
            );
        }
        eprintln!("{}", serde_json::to_string(&r["categories"]).unwrap());
        eprintln!("{}", serde_json::to_string(&r["endings"]).unwrap());
    }
);
