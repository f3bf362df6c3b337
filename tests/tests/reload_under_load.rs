//! A hundred reloads under load — weight shifts, endpoint adds and removes, route additions —
//! cost no request: every request the load sends gets a 200 from one of the answers the
//! configurations in force allow, no connection is reset, and after each reload both an open
//! keep-alive connection and a new one see the new routes.

#![allow(clippy::unwrap_used)] // test helpers, like #[test] bodies

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use ringside_tests::*;

fn config(step: u64, a: &Origin, b: &Origin, c: &Origin) -> String {
    // Weight shifts between v1 and v2 (including a weight of 0), endpoint sets that grow and
    // shrink, and a route that exists only on odd steps.
    let (w1, w2) = [(90, 10), (50, 50), (0, 100), (100, 0)][(step % 4) as usize];
    let v1_endpoints = match step % 3 {
        0 => format!("\"{}\"", a.addr()),
        1 => format!("\"{}\", \"{}\"", a.addr(), b.addr()),
        _ => format!("\"{}\"", b.addr()),
    };
    let extra_route = if step % 2 == 1 {
        format!(
            "[[routes]]\nlistener = \"in\"\nname = \"new\"\nmatch = {{ path_prefix = \"/new\" }}\n\
             direct_response = {{ status = 200, body = \"new-{step}\" }}\n"
        )
    } else {
        String::new()
    };
    format!(
        "workers = 2\n\
         [[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n\
         [[routes]]\nlistener = \"in\"\nname = \"probe\"\nmatch = {{ path_exact = \"/probe\" }}\n\
         direct_response = {{ status = 200, body = \"gen-{step}\" }}\n\
         {extra_route}\
         [[routes]]\nlistener = \"in\"\nname = \"api\"\nmatch = {{ path_prefix = \"/api\" }}\n\
         weighted = [ {{ cluster = \"v1\", weight = {w1} }}, {{ cluster = \"v2\", weight = {w2} }} ]\n\
         [[routes]]\nlistener = \"in\"\nname = \"rest\"\ndirect_response = {{ status = 200, body = \"rest\" }}\n\
         [[clusters]]\nname = \"v1\"\nendpoints = [{v1_endpoints}]\n\
         [[clusters]]\nname = \"v2\"\nendpoints = [\"{c}\"]\n",
        c = c.addr()
    )
}

both_drivers!(
    fn a_hundred_reloads_under_load_lose_nothing(d) {
        let (a, b, c) = (Origin::text("A"), Origin::text("B"), Origin::text("C"));
        let p = Proxy::start(d, &config(0, &a, &b, &c));
        let addr = p.addr("in");
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let load: Vec<_> = (0..4)
            .map(|i| {
                let (stop, ok, failures) = (stop.clone(), ok.clone(), failures.clone());
                std::thread::spawn(move || {
                    let paths = ["/api/x", "/new/y", "/api/z", "/other"];
                    let mut client = Client::connect(addr);
                    let mut n = i;
                    while !stop.load(Ordering::Relaxed) {
                        let path = paths[n % paths.len()];
                        n += 1;
                        let res = client.try_send(&get(path)).and_then(|()| client.try_read_response("GET"));
                        match res {
                            Ok(r) if r.status == 200 => {
                                let body = r.text();
                                let allowed = match path {
                                    "/api/x" | "/api/z" => ["A", "B", "C"].contains(&body.as_str()),
                                    "/new/y" => body.starts_with("new-") || body == "rest",
                                    _ => body == "rest",
                                };
                                if !allowed {
                                    failures.lock().unwrap().push(format!("{path}: unexpected body {body:?}"));
                                }
                                ok.fetch_add(1, Ordering::Relaxed);
                                if r.closes() {
                                    client = Client::connect(addr);
                                }
                            }
                            Ok(r) => failures.lock().unwrap().push(format!("{path}: status {}", r.status)),
                            Err(e) => {
                                failures.lock().unwrap().push(format!("{path}: {e}"));
                                client = Client::connect(addr);
                            }
                        }
                    }
                })
            })
            .collect();
        let mut keep = Client::connect(addr);
        for step in 1..=100u64 {
            let before = ok.load(Ordering::Relaxed);
            assert!(matches!(p.reload(&config(step, &a, &b, &c)), ringside_engine::Reloaded::Applied(_)));
            assert_eq!(keep.request(&get("/probe")).text(), format!("gen-{step}"), "open connection, step {step}");
            assert_eq!(Client::connect(addr).request(&get("/probe")).text(), format!("gen-{step}"), "new connection");
            let new = Client::connect(addr).request(&get("/new/q")).text();
            let expect = if step % 2 == 1 { format!("new-{step}") } else { "rest".to_string() };
            assert_eq!(new, expect, "route added or removed at step {step}");
            // Let the load make progress under every configuration.
            assert!(eventually(WAIT, || ok.load(Ordering::Relaxed) >= before + 20), "load stalled at step {step}");
        }
        stop.store(true, Ordering::Relaxed);
        for t in load {
            t.join().unwrap();
        }
        let failures = failures.lock().unwrap();
        assert!(failures.is_empty(), "{} failures, first: {:?}", failures.len(), failures.first());
        assert!(ok.load(Ordering::Relaxed) >= 2000);
        // Every origin served: the weights and endpoint sets really changed.
        assert!(!a.requests().is_empty() && !b.requests().is_empty() && !c.requests().is_empty());
    }
);
