//! Per-worker connection limit: at `max_connections` a worker stops accepting until one of its
//! connections closes (the kernel queues the newcomer meanwhile).

use std::time::Duration;

use ringside_tests::*;

both_drivers!(
    fn max_connections_per_worker_holds_back_new_connections(d) {
        let o = Origin::text("ok");
        let extra = Extra { listener: "max_connections = 1", ..Extra::default() };
        let p = Proxy::start(d, &basic_config(&[o.addr()], extra));
        let mut first = Client::connect(p.addr("in"));
        assert_eq!(first.request(&get("/")).status, 200);

        let mut second = Client::connect(p.addr("in")); // queued by the kernel, not accepted
        second.send(&get("/"));
        assert!(second.silent_for(Duration::from_millis(400)), "a second connection was served at the limit");

        drop(first);
        assert_eq!(second.read_response().status, 200, "served once the first one closed");
    }
);

both_drivers!(
    fn two_workers_each_have_their_own_limit(d) {
        let o = Origin::text("ok");
        let extra = Extra { proxy: "workers = 2", listener: "max_connections = 1", ..Extra::default() };
        let p = Proxy::start(d, &basic_config(&[o.addr()], extra));
        assert_eq!(p.handle.workers(), 2);
        // SO_REUSEPORT hashes connections onto the two workers: open connections until two
        // are being served at once (the limit allows one per worker), bounded.
        let mut served = Vec::new();
        let mut waiting = Vec::new();
        for _ in 0..16 {
            let mut c = Client::connect(p.addr("in"));
            c.send(&get("/"));
            if c.silent_for(Duration::from_millis(300)) {
                waiting.push(c);
            } else {
                assert_eq!(c.read_response().status, 200);
                served.push(c);
                if served.len() == 2 {
                    break;
                }
            }
        }
        assert_eq!(served.len(), 2, "two workers served one connection each at once");
        for _ in 0..3 {
            let mut c = Client::connect(p.addr("in"));
            c.send(&get("/"));
            assert!(c.silent_for(Duration::from_millis(200)), "a third connection was served at once");
            waiting.push(c);
        }
    }
);
