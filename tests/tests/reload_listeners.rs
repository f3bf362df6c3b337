//! Reloading listeners: a new listener is bound and accepts; a removed one stops accepting
//! while the others keep serving.

use std::net::TcpStream;

use ringside_tests::*;

const ONE: &str = r#"
[[listeners]]
name = "first"
bind = "127.0.0.1:0"
[[routes]]
listener = "first"
name = "hello"
direct_response = { status = 200, body = "first" }
"#;

const TWO: &str = r#"
[[listeners]]
name = "first"
bind = "127.0.0.1:0"
[[listeners]]
name = "second"
bind = "127.0.0.1:0"
[[routes]]
listener = "first"
name = "hello"
direct_response = { status = 200, body = "first" }
[[routes]]
listener = "second"
name = "hello"
direct_response = { status = 200, body = "second" }
"#;

both_drivers!(
    fn a_listener_added_by_reload_accepts(d) {
        let p = Proxy::start(d, ONE);
        let first = p.addr("first");
        assert!(p.handle.local_addr("second").is_none());
        assert_eq!(p.reload(TWO), Reloaded::Applied(2));
        let second = p.addr("second");
        assert_ne!(second.port(), 0);
        assert_eq!(Client::connect(second).request(&get("/")).text(), "second");
        assert_eq!(p.addr("first"), first, "an unchanged listener keeps its socket");
        assert_eq!(Client::connect(first).request(&get("/")).text(), "first");
    }
);

both_drivers!(
    fn a_listener_removed_by_reload_stops_accepting(d) {
        let p = Proxy::start(d, TWO);
        let second = p.addr("second");
        assert_eq!(Client::connect(second).request(&get("/")).text(), "second");
        assert_eq!(p.reload(ONE), Reloaded::Applied(2));
        assert!(p.handle.local_addr("second").is_none());
        assert!(
            eventually(WAIT, || TcpStream::connect(second).is_err()),
            "the removed listener's port still accepts connections"
        );
        assert_eq!(Client::connect(p.addr("first")).request(&get("/")).text(), "first");
    }
);

both_drivers!(
    fn a_listener_added_by_reload_exists_on_every_worker(d) {
        let p = Proxy::start(d, &format!("workers = 2\n{ONE}"));
        assert_eq!(p.reload(&format!("workers = 2\n{TWO}")), Reloaded::Applied(2));
        // Connections spread over both workers' sockets; every one must be served.
        for i in 0..12 {
            let r = Client::connect(p.addr("second")).request(&get("/"));
            assert_eq!(r.text(), "second", "connection {i}");
        }
    }
);
