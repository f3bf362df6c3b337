//! Upgrade (WebSocket-style): the upstream's `101 Switching Protocols` is relayed and the
//! connection becomes a byte tunnel both ways, half-close included.

use std::time::Duration;

use ringside_tests::*;

const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

both_drivers!(
    fn upgrade_then_bytes_flow_both_ways(d) {
        let o = Origin::upgrade_echo();
        let p = Proxy::start(d, &basic_config(&[o.addr()], Extra::default()));
        let mut c = Client::connect(p.addr("in"));
        let r = c.request(UPGRADE);
        assert_eq!(r.status, 101);
        assert_eq!(r.header("upgrade"), Some("websocket"));
        assert!(r.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("upgrade")), "{}", r.head);
        let seen = o.request(0);
        assert_eq!(seen.header("upgrade"), Some("websocket"), "an upgrade request keeps Upgrade");
        assert_eq!(seen.header("sec-websocket-key"), Some("dGhlIHNhbXBsZSBub25jZQ=="));

        for msg in [&b"ping"[..], &[0u8, 1, 2, 255, 13, 10], &pattern(0, 200_000)] {
            c.send(msg);
            assert!(c.read_exact_bytes(msg.len()) == msg, "echo of {} bytes", msg.len());
        }
        c.shutdown_write();
        assert_eq!(c.read_to_close(), b"bye\n", "half-close reaches the upstream; its reply comes back");
    }
);

both_drivers!(
    fn bytes_sent_right_after_the_upgrade_request_are_not_lost(d) {
        let o = Origin::upgrade_echo();
        let p = Proxy::start(d, &basic_config(&[o.addr()], Extra::default()));
        let mut c = Client::connect(p.addr("in"));
        c.send(&[UPGRADE, b"early"].concat());
        assert_eq!(c.read_response().status, 101);
        assert_eq!(c.read_exact_bytes(5), b"early");
    }
);

both_drivers!(
    fn tunnel_is_closed_after_the_idle_timeout(d) {
        let o = Origin::upgrade_echo();
        let extra = Extra { listener: "idle_timeout_ms = 300", ..Extra::default() };
        let p = Proxy::start(d, &basic_config(&[o.addr()], extra));
        let mut c = Client::connect(p.addr("in"));
        assert_eq!(c.request(UPGRADE).status, 101);
        c.send(b"x");
        assert_eq!(c.read_exact_bytes(1), b"x");
        assert!(c.closed_within(Duration::from_secs(5)), "a silent tunnel is closed");
    }
);
