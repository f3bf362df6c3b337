//! `protocol = "tcp"` listeners: bytes relayed both ways to a cluster endpoint, half-close
//! honoured, idle timeout, balancing across endpoints, unreachable cluster.

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ringside_tests::*;

fn tcp_config(endpoints: &[SocketAddr], listener_extra: &str) -> String {
    let eps: Vec<String> = endpoints.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        "[[listeners]]\nname = \"db\"\nbind = \"127.0.0.1:0\"\nprotocol = \"tcp\"\ncluster = \"db\"\n{listener_extra}\n\
         [[clusters]]\nname = \"db\"\nendpoints = [{}]\n",
        eps.join(", ")
    )
}

both_drivers!(
    fn bytes_flow_both_ways(d) {
        let echo = TcpEcho::start();
        let p = Proxy::start(d, &tcp_config(&[echo.addr()], ""));
        let mut c = Client::connect(p.addr("db"));
        c.send(b"hello");
        assert_eq!(c.read_exact_bytes(5), b"hello");
        // 4 MiB while reading concurrently: neither direction may stall the other.
        let data = pattern(7, 4 << 20);
        let mut w = c.stream().try_clone().unwrap();
        let sent = data.clone();
        let writer = std::thread::spawn(move || w.write_all(&sent).unwrap());
        assert!(c.read_exact_bytes(data.len()) == data, "4 MiB echoed intact");
        writer.join().unwrap();
    }
);

both_drivers!(
    fn half_close_still_delivers_the_reply(d) {
        let echo = TcpEcho::start();
        let p = Proxy::start(d, &tcp_config(&[echo.addr()], ""));
        let mut c = Client::connect(p.addr("db"));
        c.send(b"last words");
        c.shutdown_write();
        assert_eq!(c.read_to_close(), b"last wordsbye\n", "the server's reply after our FIN arrives");
    }
);

both_drivers!(
    fn idle_connection_is_closed(d) {
        let echo = TcpEcho::start();
        let p = Proxy::start(d, &tcp_config(&[echo.addr()], "idle_timeout_ms = 300"));
        let mut c = Client::connect(p.addr("db"));
        c.send(b"x");
        assert_eq!(c.read_exact_bytes(1), b"x");
        let t = Instant::now();
        assert!(c.closed_within(Duration::from_secs(5)), "an idle TCP connection is closed");
        assert!(t.elapsed() >= Duration::from_millis(200), "not before the idle timeout: {:?}", t.elapsed());
    }
);

both_drivers!(
    fn active_connection_outlives_the_idle_timeout(d) {
        let echo = TcpEcho::start();
        let p = Proxy::start(d, &tcp_config(&[echo.addr()], "idle_timeout_ms = 300"));
        let mut c = Client::connect(p.addr("db"));
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(900) {
            c.send(b"tick");
            assert_eq!(c.read_exact_bytes(4), b"tick");
            assert!(c.silent_for(Duration::from_millis(100)));
        }
    }
);

both_drivers!(
    fn connections_are_balanced_across_endpoints(d) {
        let (e1, e2) = (TcpEcho::start(), TcpEcho::start());
        let p = Proxy::start(d, &tcp_config(&[e1.addr(), e2.addr()], ""));
        for i in 0..4 {
            let mut c = Client::connect(p.addr("db"));
            c.send(b"ping");
            assert_eq!(c.read_exact_bytes(4), b"ping", "connection {i}");
        }
        assert_eq!((e1.connections(), e2.connections()), (2, 2), "round robin over connections");
    }
);

both_drivers!(
    fn unreachable_cluster_closes_the_connection(d) {
        let dead = closed_port();
        let p = Proxy::start(d, &tcp_config(&[dead], ""));
        let mut c = Client::connect(p.addr("db"));
        assert!(c.closed_within(Duration::from_secs(5)), "nothing to relay to: closed");
    }
);
