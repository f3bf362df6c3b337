//! Endpoints by DNS name, against a real DNS server (`dnsmasq`, tests/src/dns.rs) whose
//! records the tests change: traffic follows a changed answer without a failed request
//! (`strict` and `logical`), a server that stops answering leaves the last good addresses in
//! use, and a name that never resolved answers 503 (counted) until it does. The origins
//! listen on 127.0.0.2 and 127.0.0.3 with the same port, so that one `host:port` endpoint
//! reaches either.

#![allow(clippy::unwrap_used)] // test helpers, like #[test] bodies

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringside_tests::dns::Dnsmasq;
use ringside_tests::*;

/// Origins "A" on 127.0.0.2 and "B" on 127.0.0.3, on one port.
fn origins() -> (Origin, Origin, u16) {
    let a = Origin::text_at("127.0.0.2:0".parse().unwrap(), "A");
    let port = a.addr().port();
    let b = Origin::text_at(SocketAddr::from(([127, 0, 0, 3], port)), "B");
    (a, b, port)
}

fn config(dns: &Dnsmasq, host: &str, port: u16, cluster: &str) -> String {
    format!(
        "workers = 2\n\
         [dns]\nservers = [ \"{}\" ]\nmax_ttl_s = 2\n\
         [[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n\
         [[routes]]\nlistener = \"in\"\nname = \"all\"\ncluster = \"app\"\n\
         [[clusters]]\nname = \"app\"\nendpoints = [ \"{host}:{port}\" ]\n{cluster}\n",
        dns.addr
    )
}

/// The bodies of `n` requests, each on a new connection.
fn bodies(addr: SocketAddr, n: usize) -> BTreeSet<String> {
    (0..n)
        .map(|_| Client::connect(addr).request(&get("/")).text())
        .collect()
}

fn only(body: &str) -> BTreeSet<String> {
    BTreeSet::from([body.to_string()])
}

/// Load on `threads` keep-alive connections until stopped: counts answers and keeps every
/// failure (a status other than 200, an I/O error).
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failures: Arc<Mutex<Vec<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(addr: SocketAddr, threads: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..threads)
            .map(|i| {
                let (stop, ok, failures) = (stop.clone(), ok.clone(), failures.clone());
                std::thread::spawn(move || {
                    let mut client = Client::connect(addr);
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        // Every fourth request of thread 0 on a new connection.
                        if i == 0 && n.is_multiple_of(4) {
                            client = Client::connect(addr);
                        }
                        let res = client
                            .try_send(&get("/"))
                            .and_then(|()| client.try_read_response("GET"));
                        match res {
                            Ok(r) if r.status == 200 => {
                                ok.fetch_add(1, Ordering::Relaxed);
                                if r.closes() {
                                    client = Client::connect(addr);
                                }
                            }
                            Ok(r) => failures
                                .lock()
                                .unwrap()
                                .push(format!("status {}", r.status)),
                            Err(e) => {
                                failures.lock().unwrap().push(e.to_string());
                                client = Client::connect(addr);
                            }
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            ok,
            failures,
            threads,
        }
    }

    /// Waits until `more` answers came after this call.
    fn progress(&self, more: u64) {
        let before = self.ok.load(Ordering::Relaxed);
        assert!(
            eventually(WAIT, || self.ok.load(Ordering::Relaxed) >= before + more),
            "load stalled"
        );
    }

    /// Stops the load and asserts that nothing failed.
    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        let failures = self.failures.lock().unwrap();
        assert!(
            failures.is_empty(),
            "{} failed requests, first: {:?}",
            failures.len(),
            failures.first()
        );
        self.ok.load(Ordering::Relaxed)
    }
}

fn dns_stats(p: &Proxy, host: &str) -> ringside_engine::DnsStats {
    p.handle
        .dns()
        .into_iter()
        .find(|d| d.host == host)
        .unwrap_or_else(|| panic!("no dns stats for {host}"))
}

both_drivers!(
    fn strict_answers_that_change_move_traffic_without_a_failure(d) {
        let (_a, _b, port) = origins();
        let dns = Dnsmasq::start("127.0.0.2 app.test\n");
        let p = Proxy::start(d, &config(&dns, "app.test", port, ""));
        let addr = p.addr("in");
        assert_eq!(bodies(addr, 4), only("A"), "resolved before serving");
        let load = Load::start(addr, 3);
        load.progress(50);
        // The name moves to B's address.
        dns.set("127.0.0.3 app.test\n");
        assert!(eventually(WAIT, || bodies(addr, 4) == only("B")), "traffic did not move to B");
        load.progress(50);
        // A reload (one more cluster) keeps the resolved addresses: no request finds the
        // cluster empty in between.
        let generation = p.handle.generation();
        let reloaded = format!(
            "{}[[clusters]]\nname = \"spare\"\nendpoints = [ \"127.0.0.1:1\" ]\n",
            config(&dns, "app.test", port, "")
        );
        assert_eq!(p.reload(&reloaded), Reloaded::Applied(generation + 1));
        assert_eq!(bodies(addr, 4), only("B"), "resolved addresses kept by the reload");
        // Both addresses: strict makes each an endpoint.
        dns.set("127.0.0.2 app.test\n127.0.0.3 app.test\n");
        assert!(
            eventually(WAIT, || bodies(addr, 6) == BTreeSet::from(["A".into(), "B".into()])),
            "traffic did not spread over both addresses"
        );
        load.progress(50);
        let ok = load.finish();
        assert!(ok >= 150, "{ok} requests");
        let s = dns_stats(&p, "app.test");
        assert_eq!(s.addresses.len(), 2, "{s:?}");
        assert!(s.changes >= 2 && s.lookups >= 3, "{s:?}");
        let app = p.handle.snapshot();
        let cluster = &app.config.clusters[0];
        assert_eq!(cluster.endpoints.len(), 2);
        assert!(cluster.endpoints.iter().all(|e| e.address.port() == port));
    }
);

both_drivers!(
    fn logical_uses_one_address_until_the_answer_drops_it(d) {
        let (_a, _b, port) = origins();
        let dns = Dnsmasq::start("127.0.0.2 app.test\n");
        let p = Proxy::start(d, &config(&dns, "app.test", port, "dns = \"logical\""));
        let addr = p.addr("in");
        assert_eq!(bodies(addr, 4), only("A"));
        let load = Load::start(addr, 2);
        // B's address joins the answer: logical keeps the address it has.
        dns.set("127.0.0.2 app.test\n127.0.0.3 app.test\n");
        assert!(eventually(WAIT, || dns_stats(&p, "app.test").addresses.len() == 2));
        assert_eq!(bodies(addr, 8), only("A"), "logical: one address");
        // A's address leaves it: the next one takes over.
        dns.set("127.0.0.3 app.test\n");
        assert!(eventually(WAIT, || bodies(addr, 4) == only("B")), "traffic did not move to B");
        load.progress(50);
        load.finish();
    }
);

both_drivers!(
    fn a_server_that_stops_answering_leaves_the_last_good_addresses(d) {
        let (_a, _b, port) = origins();
        let mut dns = Dnsmasq::start("127.0.0.2 app.test\n");
        let p = Proxy::start(d, &config(&dns, "app.test", port, ""));
        let addr = p.addr("in");
        assert_eq!(bodies(addr, 2), only("A"));
        let load = Load::start(addr, 2);
        dns.stop();
        assert!(
            eventually(WAIT, || dns_stats(&p, "app.test").failures >= 1),
            "lookups did not fail: {:?}",
            dns_stats(&p, "app.test")
        );
        load.progress(50);
        assert_eq!(bodies(addr, 4), only("A"), "the last good address serves");
        // The server comes back with a new answer: it is followed again.
        dns.restart();
        dns.set("127.0.0.3 app.test\n");
        assert!(eventually(WAIT, || bodies(addr, 4) == only("B")), "traffic did not move to B");
        load.finish();
        assert_eq!(dns_stats(&p, "app.test").addresses.len(), 1);
    }
);

both_drivers!(
    fn a_name_that_never_resolved_answers_503_until_it_does(d) {
        let (_a, _b, port) = origins();
        let dns = Dnsmasq::start("127.0.0.2 other.test\n");
        let started = Instant::now();
        let p = Proxy::start(d, &config(&dns, "app.test", port, ""));
        assert!(started.elapsed() < Duration::from_secs(5), "start waited {:?}", started.elapsed());
        let addr = p.addr("in");
        let r = Client::connect(addr).request(&get("/"));
        assert_eq!(r.status, 503);
        let s = dns_stats(&p, "app.test");
        assert!(s.failures >= 1 && s.addresses.is_empty(), "{s:?}");
        let unresolved: u64 = p
            .handle
            .metrics()
            .iter()
            .flat_map(|w| &w.clusters)
            .filter(|c| c.cluster == "app")
            .map(|c| c.unresolved)
            .sum();
        assert_eq!(unresolved, 1, "counted per cluster");
        // The name appears: the cluster serves.
        dns.set("127.0.0.2 other.test\n127.0.0.3 app.test\n");
        assert!(eventually(WAIT, || bodies(addr, 1) == only("B")), "never served after resolving");
    }
);

both_drivers!(
    fn tls_to_a_named_host_verifies_that_name(d) {
        // The upstream: ringside terminating TLS with a certificate for app.test only (no IP
        // SAN), in front of an origin.
        let pki = ringside_tests::certs::TestPki::new();
        let (cert, key) = pki.leaf("app", &["app.test"], &[]);
        let origin = Origin::text("over tls");
        let tls = format!(
            "tls = {{ certificates = [ {{ cert = \"{}\", key = \"{}\" }} ] }}",
            cert.display(),
            key.display()
        );
        let upstream = Proxy::start(
            d,
            &basic_config(&[origin.addr()], Extra { listener: &tls, ..Extra::default() }),
        );
        let dns = Dnsmasq::start("127.0.0.1 app.test\n");
        // No `sni`: the one host the endpoints name is sent and verified.
        let cluster = format!("tls = {{ ca = \"{}\" }}", pki.ca_path().display());
        let p = Proxy::start(d, &config(&dns, "app.test", upstream.addr("in").port(), &cluster));
        let r = Client::connect(p.addr("in")).request(&get("/"));
        assert_eq!((r.status, r.text()), (200, "over tls".to_string()));
    }
);

both_drivers!(
    fn without_servers_the_system_resolver_is_used(d) {
        // No [dns] servers: /etc/resolv.conf and /etc/hosts. `localhost.` (a final dot: no
        // search domain is tried) is answered by the resolver itself (RFC 6761), so nothing
        // leaves the machine; `logical` takes its IPv4 address first.
        let origin = Origin::text("local");
        let text = format!(
            "[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n\
             [[routes]]\nlistener = \"in\"\nname = \"all\"\ncluster = \"app\"\n\
             [[clusters]]\nname = \"app\"\ndns = \"logical\"\nendpoints = [ \"localhost.:{}\" ]\n",
            origin.addr().port()
        );
        let p = Proxy::start(d, &text);
        let r = Client::connect(p.addr("in")).request(&get("/"));
        assert_eq!((r.status, r.text()), (200, "local".to_string()));
        let s = dns_stats(&p, "localhost.");
        assert_eq!(s.addresses.first(), Some(&"127.0.0.1".parse().unwrap()), "{s:?}");
    }
);

both_drivers!(
    fn a_reload_that_names_the_first_host_starts_resolving_it(d) {
        // No host name at start: the process starts its resolver thread only when a reload
        // names one.
        let (_a, _b, port) = origins();
        let dns = Dnsmasq::start("127.0.0.3 app.test\n");
        let p = Proxy::start(d, &config(&dns, "127.0.0.2", port, ""));
        let addr = p.addr("in");
        assert_eq!(bodies(addr, 2), only("A"));
        let generation = p.handle.generation();
        assert_eq!(
            p.reload(&config(&dns, "app.test", port, "")),
            Reloaded::Applied(generation + 1)
        );
        assert!(eventually(WAIT, || bodies(addr, 2) == only("B")), "app.test never resolved");
        assert_eq!(dns_stats(&p, "app.test").addresses.len(), 1);
    }
);
