//! Per-worker connection limit (issue 15, "connection floods"): past `max_connections` a new
//! connection is accepted and closed at once, and counted in
//! `ringside_downstream_connections_overflow_total`; the connections already open keep being
//! served, and a slot freed is taken by the next newcomer.

use std::time::{Duration, Instant};

use ringside_tests::*;

fn overflow(p: &Proxy) -> u64 {
    p.listener_total("in", |l| l.overflow)
}

both_drivers!(
    fn a_flood_past_max_connections_is_closed_at_once_and_counted(d) {
        let o = Origin::text("ok");
        let extra = Extra { proxy: "workers = 1", listener: "max_connections = 4", ..Extra::default() };
        let p = Proxy::start(d, &basic_config(&[o.addr()], extra));
        let addr = p.addr("in");
        let mut open: Vec<Client> = (0..4).map(|_| Client::connect(addr)).collect();
        for c in &mut open {
            assert_eq!(c.request(&get("/")).status, 200);
        }

        // The flood: 4 threads × 100 connections, each sending a request at once.
        let started = Instant::now();
        let flood: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || {
                    let mut slow = 0;
                    for _ in 0..100 {
                        let mut c = Client::connect(addr);
                        let _ = c.try_send(&get("/"));
                        let t = Instant::now();
                        assert!(c.closed_within(WAIT), "a connection past the limit was answered");
                        if t.elapsed() > Duration::from_millis(500) {
                            slow += 1;
                        }
                    }
                    slow
                })
            })
            .collect();
        // Meanwhile the open connections are served, again and again.
        let mut served = 0;
        while flood.iter().any(|t| !t.is_finished()) && started.elapsed() < WAIT * 2 {
            for c in &mut open {
                assert_eq!(c.request(&get("/")).status, 200, "an open connection was not served");
                served += 1;
            }
        }
        let slow: usize = flood.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(slow, 0, "a refused connection waited over 500 ms to be closed");
        assert!(served >= 4, "the open connections were served during the flood");
        assert!(eventually(WAIT, || overflow(&p) == 400), "overflow counted: {}", overflow(&p));

        // A slot freed is the next newcomer's.
        drop(open.pop());
        assert!(eventually(WAIT, || {
            let mut c = Client::connect(addr);
            c.try_send(&get("/")).is_ok() && c.try_read_response("GET").is_ok_and(|r| r.status == 200)
        }));
    }
);

both_drivers!(
    fn two_workers_each_have_their_own_limit(d) {
        let o = Origin::text("ok");
        let extra = Extra { proxy: "workers = 2", listener: "max_connections = 1", ..Extra::default() };
        let p = Proxy::start(d, &basic_config(&[o.addr()], extra));
        assert_eq!(p.handle.workers(), 2);
        // SO_REUSEPORT hashes connections onto the two workers: open connections until two
        // are served at once (the limit allows one per worker), bounded; the others are
        // closed at once.
        let mut served = Vec::new();
        let mut closed = 0;
        for _ in 0..64 {
            let mut c = Client::connect(p.addr("in"));
            let _ = c.try_send(&get("/"));
            match c.try_read_response("GET") {
                Ok(r) => {
                    assert_eq!(r.status, 200);
                    served.push(c);
                    if served.len() == 2 {
                        break;
                    }
                }
                Err(_) => closed += 1,
            }
        }
        assert_eq!(served.len(), 2, "two workers served one connection each at once");
        for _ in 0..3 {
            let mut c = Client::connect(p.addr("in"));
            let _ = c.try_send(&get("/"));
            assert!(c.closed_within(WAIT), "a third connection was served at once");
            closed += 1;
        }
        assert!(eventually(WAIT, || overflow(&p) == closed), "{} != {closed}", overflow(&p));
        for c in &mut served {
            assert_eq!(c.request(&get("/")).status, 200);
        }
    }
);
