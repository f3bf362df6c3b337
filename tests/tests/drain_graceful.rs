//! Graceful drain: after `begin_drain()` in-flight requests complete, idle keep-alive
//! connections are closed, new connections are refused, and `wait()` returns — early when the
//! last connection ends, at `drain_timeout_ms` at the latest.

use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ringside_tests::*;

/// An origin whose `/slow` answers only after `delay`.
fn slow_origin(delay: Duration) -> Origin {
    Origin::start(move |r| {
        if r.target == "/slow" {
            std::thread::sleep(delay);
        }
        ok("done")
    })
}

/// Runs `wait()` on another thread; the receiver fires when it returns.
fn wait_in_background(p: &std::sync::Arc<Proxy>) -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel();
    let p = p.clone();
    std::thread::spawn(move || {
        p.handle.wait();
        let _ = tx.send(());
    });
    rx
}

both_drivers!(
    fn in_flight_request_completes_after_begin_drain(d) {
        let o = slow_origin(Duration::from_millis(500));
        let extra = Extra { proxy: "drain_timeout_ms = 5000", ..Extra::default() };
        let p = std::sync::Arc::new(Proxy::start(d, &basic_config(&[o.addr()], extra)));
        let mut c = Client::connect(p.addr("in"));
        c.send(&get("/slow"));
        o.request(0); // the request is at the origin
        let t = Instant::now();
        p.handle.begin_drain();
        let waited = wait_in_background(&p);
        let r = c.read_response();
        assert_eq!((r.status, r.text().as_str()), (200, "done"), "the in-flight request finished");
        assert!(r.closes(), "its response says Connection: close: {}", r.head);
        assert!(c.closed_within(WAIT), "and the connection is closed after it");
        assert!(waited.recv_timeout(WAIT).is_ok(), "wait() returned");
        assert!(t.elapsed() < Duration::from_secs(4), "well before drain_timeout: {:?}", t.elapsed());
    }
);

both_drivers!(
    fn idle_keep_alive_connections_are_closed(d) {
        let o = Origin::text("hi");
        let extra = Extra { proxy: "drain_timeout_ms = 5000", ..Extra::default() };
        let p = Proxy::start(d, &basic_config(&[o.addr()], extra));
        let mut c = Client::connect(p.addr("in"));
        assert_eq!(c.request(&get("/")).status, 200);
        let t = Instant::now();
        p.handle.begin_drain();
        assert!(c.closed_within(WAIT), "the idle connection is closed");
        p.handle.wait();
        assert!(t.elapsed() < Duration::from_secs(3), "without waiting for drain_timeout: {:?}", t.elapsed());
    }
);

both_drivers!(
    fn idle_connections_past_their_hot_window_are_closed_too(d) {
        // Waiting longer than the hot window (100 ms), the connection holds no buffer and
        // waits for readiness; the drain must still reach it.
        let o = Origin::text("hi");
        let extra = Extra { proxy: "drain_timeout_ms = 5000", ..Extra::default() };
        let p = Proxy::start(d, &basic_config(&[o.addr()], extra));
        let mut c = Client::connect(p.addr("in"));
        assert_eq!(c.request(&get("/")).status, 200);
        std::thread::sleep(Duration::from_millis(300));
        let t = Instant::now();
        p.handle.begin_drain();
        assert!(c.closed_within(WAIT), "the idle connection is closed");
        p.handle.wait();
        assert!(t.elapsed() < Duration::from_secs(3), "without waiting for drain_timeout: {:?}", t.elapsed());
    }
);

both_drivers!(
    fn new_connections_are_refused_while_draining(d) {
        let o = slow_origin(Duration::from_millis(1500));
        let extra = Extra { proxy: "drain_timeout_ms = 5000", ..Extra::default() };
        let p = std::sync::Arc::new(Proxy::start(d, &basic_config(&[o.addr()], extra)));
        let addr = p.addr("in");
        let mut c = Client::connect(addr);
        c.send(&get("/slow"));
        o.request(0);
        p.handle.begin_drain();
        let waited = wait_in_background(&p);
        // While the slow request keeps the proxy alive, the port refuses new connections.
        assert!(eventually(WAIT, || TcpStream::connect(addr).is_err()), "still accepting during drain");
        assert!(waited.try_recv().is_err(), "wait() returned with a request in flight");
        assert_eq!(c.read_response().status, 200);
        assert!(waited.recv_timeout(WAIT).is_ok());
    }
);

both_drivers!(
    fn wait_returns_at_once_when_nothing_is_open(d) {
        let p = Proxy::start(d, &basic_config(&[], Extra { proxy: "drain_timeout_ms = 10000", ..Extra::default() }));
        let t = Instant::now();
        p.handle.shutdown();
        assert!(t.elapsed() < Duration::from_secs(2), "shutdown took {:?}", t.elapsed());
    }
);

both_drivers!(
    fn drain_timeout_bounds_the_wait(d) {
        let o = slow_origin(Duration::from_secs(4));
        let extra = Extra { proxy: "drain_timeout_ms = 300", ..Extra::default() };
        let p = Proxy::start(d, &basic_config(&[o.addr()], extra));
        let mut c = Client::connect(p.addr("in"));
        c.send(&get("/slow"));
        o.request(0);
        let t = Instant::now();
        p.handle.shutdown();
        assert!(t.elapsed() < Duration::from_secs(2), "shutdown waited {:?} past a 300 ms drain timeout", t.elapsed());
        assert!(c.closed_within(WAIT), "the unfinished connection is closed");
    }
);

both_drivers!(
    fn drain_with_two_workers(d) {
        let o = Origin::text("hi");
        let extra = Extra { proxy: "workers = 2\ndrain_timeout_ms = 5000", ..Extra::default() };
        let p = Proxy::start(d, &basic_config(&[o.addr()], extra));
        let mut clients: Vec<Client> = (0..6).map(|_| Client::connect(p.addr("in"))).collect();
        for c in &mut clients {
            assert_eq!(c.request(&get("/")).status, 200);
        }
        let t = Instant::now();
        p.handle.shutdown();
        assert!(t.elapsed() < Duration::from_secs(3), "shutdown took {:?}", t.elapsed());
        for c in &mut clients {
            assert!(c.closed_within(WAIT));
        }
    }
);
