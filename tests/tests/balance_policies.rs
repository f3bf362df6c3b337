//! Load balancing among a cluster's endpoints: round robin (plain and weighted), random,
//! least_request, ring_hash (same key → same endpoint, also across endpoint changes), and a
//! dead endpoint skipped.

use std::collections::HashMap;

use ringside_tests::*;

fn three() -> (Origin, Origin, Origin) {
    (Origin::text("a"), Origin::text("b"), Origin::text("c"))
}

fn count(seen: &HashMap<String, usize>, who: &str) -> usize {
    seen.get(who).copied().unwrap_or(0)
}

both_drivers!(
    fn round_robin_spreads_evenly(d) {
        let (a, b, c) = three();
        let p = Proxy::start(d, &basic_config(&[a.addr(), b.addr(), c.addr()], Extra::default()));
        let seen = spread(&p, 30, |_| get("/"));
        assert_eq!((count(&seen, "a"), count(&seen, "b"), count(&seen, "c")), (10, 10, 10), "{seen:?}");
    }
);

both_drivers!(
    fn weighted_round_robin_follows_endpoint_weights(d) {
        let (a, b) = (Origin::text("a"), Origin::text("b"));
        let p = Proxy::start(
            d,
            &toml(
                r#"
[[listeners]]
name = "in"
bind = "127.0.0.1:0"
[[routes]]
listener = "in"
name = "all"
cluster = "app"
[[clusters]]
name = "app"
lb = "round_robin"
endpoints = [ "$a", { address = "$b", weight = 3 } ]
"#,
                &[("a", &a.addr()), ("b", &b.addr())],
            ),
        );
        let seen = spread(&p, 40, |_| get("/"));
        assert_eq!((count(&seen, "a"), count(&seen, "b")), (10, 30), "{seen:?}");
    }
);

both_drivers!(
    fn random_reaches_every_endpoint(d) {
        let (a, b, c) = three();
        let extra = Extra { cluster: "lb = \"random\"", ..Extra::default() };
        let p = Proxy::start(d, &basic_config(&[a.addr(), b.addr(), c.addr()], extra));
        let seen = spread(&p, 90, |_| get("/"));
        for who in ["a", "b", "c"] {
            // Expect 30 each; 10 is more than 4 sd below.
            assert!(count(&seen, who) >= 10, "{seen:?}");
        }
    }
);

both_drivers!(
    fn least_request_avoids_the_busy_endpoint(d) {
        // a holds its request until told; b answers at once.
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let release_rx = std::sync::Mutex::new(release_rx);
        let a = Origin::start(move |r| {
            if r.target == "/hold" {
                let _ = release_rx.lock().unwrap().recv_timeout(WAIT);
            }
            ok("a")
        });
        let b = Origin::text("b");
        let extra = Extra { cluster: "lb = \"least_request\"", ..Extra::default() };
        let p = Proxy::start(d, &basic_config(&[a.addr(), b.addr()], extra));
        // Ties are broken at random: send /hold until a is the one holding it.
        let mut holder = None;
        for _ in 0..30 {
            let mut c = Client::connect(p.addr("in"));
            c.send(&get("/hold"));
            if eventually(std::time::Duration::from_millis(300), || !a.requests().is_empty()) {
                holder = Some(c);
                break;
            }
            assert_eq!(c.read_response().text(), "b");
        }
        let mut holder = holder.expect("endpoint a never got a request in 30 tries");
        // While a is busy with one request, every new request goes to b.
        let seen = spread(&p, 10, |_| get("/"));
        assert_eq!(count(&seen, "b"), 10, "{seen:?}");
        release_tx.send(()).unwrap();
        assert_eq!(holder.read_response().text(), "a");
    }
);

both_drivers!(
    fn ring_hash_sends_the_same_key_to_the_same_endpoint(d) {
        let (a, b, c) = three();
        let extra = Extra { cluster: "lb = \"ring_hash\"\nhash_key = \"header:x-user\"", ..Extra::default() };
        let p = Proxy::start(d, &basic_config(&[a.addr(), b.addr(), c.addr()], extra));
        let mut client = Client::connect(p.addr("in"));
        let mut owner = HashMap::new();
        for round in 0..3 {
            for user in 0..30 {
                let r = client.request(format!("GET / HTTP/1.1\r\nHost: t\r\nX-User: user-{user}\r\n\r\n").as_bytes());
                assert_eq!(r.status, 200);
                let first = owner.entry(user).or_insert_with(|| r.text());
                assert_eq!(*first, r.text(), "user-{user} moved in round {round}");
            }
        }
        let used: std::collections::HashSet<_> = owner.values().collect();
        assert!(used.len() >= 2, "30 keys all landed on one endpoint: {owner:?}");
    }
);

both_drivers!(
    fn ring_hash_on_a_cookie(d) {
        let (a, b, c) = three();
        let extra = Extra { cluster: "lb = \"ring_hash\"\nhash_key = \"cookie:session\"", ..Extra::default() };
        let p = Proxy::start(d, &basic_config(&[a.addr(), b.addr(), c.addr()], extra));
        let mut client = Client::connect(p.addr("in"));
        let mut owners = std::collections::HashSet::new();
        for s in 0..20 {
            let req = |other: &str| {
                format!("GET / HTTP/1.1\r\nHost: t\r\nCookie: {other}session=s{s}; theme=dark\r\n\r\n").into_bytes()
            };
            let first = client.request(&req("")).text();
            let again = client.request(&req("lang=en; ")).text();
            assert_eq!(first, again, "session s{s}: other cookies do not change the endpoint");
            owners.insert(first);
        }
        assert!(owners.len() >= 2, "20 sessions all on one endpoint");
    }
);

both_drivers!(
    fn ring_hash_gives_a_client_without_the_cookie_one_and_keeps_it_there(d) {
        let (a, b, c) = three();
        let extra = Extra {
            cluster: "lb = \"ring_hash\"\nhash_key = \"cookie:sticky\"\nhash_cookie = { ttl_s = 3600, path = \"/\" }",
            ..Extra::default()
        };
        let p = Proxy::start(d, &basic_config(&[a.addr(), b.addr(), c.addr()], extra));
        let mut owners = std::collections::HashSet::new();
        for client in 0..20 {
            // Each client on a connection of its own: its own address and port, its own cookie.
            let mut conn = Client::connect(p.addr("in"));
            let first = conn.request(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
            let set = first.header("set-cookie").unwrap_or_else(|| panic!("client {client}: no cookie: {}", first.head));
            let (pair, attributes) = set.split_once("; ").unwrap();
            assert_eq!(attributes, "Max-Age=3600; Path=/; HttpOnly", "{set}");
            let value = pair.strip_prefix("sticky=").unwrap();
            assert!(value.len() == 16 && value.bytes().all(|b| b.is_ascii_hexdigit()), "{set}");
            // Back with the cookie, on new connections (another port): the same endpoint,
            // and no new cookie.
            for _ in 0..3 {
                let again = Client::connect(p.addr("in")).request(
                    format!("GET / HTTP/1.1\r\nHost: t\r\nCookie: lang=en; {pair}\r\n\r\n").as_bytes(),
                );
                assert_eq!(again.text(), first.text(), "client {client} moved");
                assert_eq!(again.header("set-cookie"), None);
            }
            owners.insert(first.text());
        }
        assert!(owners.len() >= 2, "20 clients all on one endpoint");
    }
);

both_drivers!(
    fn ring_hash_keeps_keys_in_place_when_an_endpoint_leaves(d) {
        let (a, b, c) = three();
        let config = |eps: &[std::net::SocketAddr]| {
            basic_config(eps, Extra { cluster: "lb = \"ring_hash\"\nhash_key = \"header:x-user\"", ..Extra::default() })
        };
        let p = Proxy::start(d, &config(&[a.addr(), b.addr(), c.addr()]));
        let ask = |user: usize| {
            let mut client = Client::connect(p.addr("in"));
            client.request(format!("GET / HTTP/1.1\r\nHost: t\r\nX-User: u{user}\r\n\r\n").as_bytes()).text()
        };
        let before: Vec<String> = (0..40).map(ask).collect();
        assert!(before.iter().any(|o| o == "c"), "some key lived on c: {before:?}");
        assert!(matches!(p.reload(&config(&[a.addr(), b.addr()])), Reloaded::Applied(2)));
        let after: Vec<String> = (0..40).map(ask).collect();
        for (user, (was, is)) in before.iter().zip(&after).enumerate() {
            if was != "c" {
                assert_eq!(was, is, "u{user} moved although its endpoint stayed");
            } else {
                assert_ne!(is, "c", "u{user} still sent to a removed endpoint");
            }
        }
    }
);

both_drivers!(
    fn a_dead_endpoint_is_skipped(d) {
        let dead = closed_port();
        let alive = Origin::text("alive");
        let p = Proxy::start(d, &basic_config(&[dead, alive.addr()], Extra::default()));
        let seen = spread(&p, 10, |_| get("/"));
        assert_eq!(count(&seen, "alive"), 10, "{seen:?}");
    }
);

both_drivers!(
    fn ring_hash_on_the_source_ip_pins_a_client(d) {
        let (a, b, c) = three();
        let extra = Extra { cluster: "lb = \"ring_hash\"\nhash_key = \"source_ip\"", ..Extra::default() };
        let p = Proxy::start(d, &basic_config(&[a.addr(), b.addr(), c.addr()], extra));
        let owners: std::collections::HashSet<String> =
            (0..12).map(|_| Client::connect(p.addr("in")).request(&get("/")).text()).collect();
        assert_eq!(owners.len(), 1, "one client IP, one endpoint: {owners:?}");
    }
);
