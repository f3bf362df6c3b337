//! Reloading routes: open keep-alive connections follow the new table at once, identical
//! content is a no-op, an invalid file never gets to `reload` and the old config keeps
//! serving, and pooled upstream connections of unchanged clusters survive.

use ringside_tests::*;

fn route_to(o: &Origin, body_route: &str) -> String {
    toml(
        r#"
[[listeners]]
name = "in"
bind = "127.0.0.1:0"
[[routes]]
listener = "in"
name = "direct"
match = { path_exact = "/direct" }
direct_response = { status = 200, body = "$body" }
[[routes]]
listener = "in"
name = "all"
cluster = "app"
[[clusters]]
name = "app"
endpoints = ["$o"]
"#,
        &[("o", &o.addr()), ("body", &body_route)],
    )
}

both_drivers!(
    fn keep_alive_connection_follows_the_new_route(d) {
        let (a, b) = (Origin::text("a"), Origin::text("b"));
        let p = Proxy::start(d, &route_to(&a, "one"));
        let mut c = Client::connect(p.addr("in"));
        assert_eq!(c.request(&get("/")).text(), "a");
        assert_eq!(c.request(&get("/direct")).text(), "one");
        assert_eq!(p.handle.generation(), 1);

        assert_eq!(p.reload(&route_to(&b, "two")), Reloaded::Applied(2));
        assert_eq!(p.handle.generation(), 2);
        assert_eq!(c.request(&get("/")).text(), "b", "the open connection uses the new route");
        assert_eq!(c.request(&get("/direct")).text(), "two");
        assert_eq!(Client::connect(p.addr("in")).request(&get("/")).text(), "b");
    }
);

both_drivers!(
    fn identical_content_is_unchanged(d) {
        let a = Origin::text("a");
        let p = Proxy::start(d, &route_to(&a, "one"));
        assert_eq!(p.reload(&route_to(&a, "one")), Reloaded::Unchanged(1));
        assert_eq!(p.handle.generation(), 1);
    }
);

both_drivers!(
    fn invalid_config_is_rejected_with_paths_and_the_old_one_keeps_serving(d) {
        let a = Origin::text("a");
        let p = Proxy::start(d, &route_to(&a, "one"));
        let mut c = Client::connect(p.addr("in"));
        assert_eq!(c.request(&get("/")).text(), "a");
        let bad = full_config(
            d,
            r#"
[[listeners]]
name = "in"
bind = "127.0.0.1:0"
[[routes]]
listener = "in"
name = "all"
cluster = "missing"
[[clusters]]
name = "app"
endpoints = ["10.0.0.1"]
"#,
        );
        let errors = ringside_config::parse(&bad).expect_err("an invalid config must not parse");
        let text = errors.to_string();
        assert!(errors.0.len() >= 2, "every error is reported: {text}");
        assert!(text.contains("routes[0].cluster"), "{text}");
        assert!(text.contains("clusters[0].endpoints[0]"), "{text}");
        assert_eq!(p.handle.generation(), 1);
        assert_eq!(c.request(&get("/")).text(), "a", "still serving the old config");
        assert_eq!(c.request(&get("/direct")).text(), "one");
    }
);

both_drivers!(
    fn pooled_connections_of_an_unchanged_cluster_survive_a_reload(d) {
        let a = Origin::text("a");
        let p = Proxy::start(d, &route_to(&a, "one"));
        let mut c = Client::connect(p.addr("in"));
        assert_eq!(c.request(&get("/")).text(), "a");
        assert_eq!(p.reload(&route_to(&a, "two")), Reloaded::Applied(2));
        assert_eq!(c.request(&get("/")).text(), "a");
        assert_eq!(Client::connect(p.addr("in")).request(&get("/")).text(), "a");
        assert_eq!(a.connections(), 1, "the pooled upstream connection was kept across the reload");
    }
);

both_drivers!(
    fn several_reloads_in_a_row(d) {
        let a = Origin::text("a");
        let p = Proxy::start(d, &route_to(&a, "v1"));
        let mut c = Client::connect(p.addr("in"));
        for v in 2..=6 {
            assert_eq!(p.reload(&route_to(&a, &format!("v{v}"))), Reloaded::Applied(v));
            assert_eq!(c.request(&get("/direct")).text(), format!("v{v}"));
        }
    }
);
