//! How a cluster balances, beyond `lb`: endpoints' `priority` and `down`, clusters'
//! `overprovisioning_percent` and ring hash's `hash_cookie`: what is accepted, and every
//! mistake with its path.

use super::tests::errors;
use crate::model::Config;
use crate::parse;

fn ok(text: &str) -> Config {
    parse(text).unwrap_or_else(|e| panic!("expected a valid config, got:\n{e}"))
}

const LISTENER: &str = "[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n";

#[test]
fn priorities_and_overprovisioning_are_read() {
    let c = ok(&format!(
        r#"{LISTENER}
[[clusters]]
name = "app"
overprovisioning_percent = 200
endpoints = [ "127.0.0.1:1001", {{ address = "127.0.0.1:1002", priority = 1 }}, {{ address = "127.0.0.1:1003", priority = 255, weight = 2 }} ]

[[clusters]]
name = "flat"
endpoints = [ {{ address = "127.0.0.1:1001", priority = 3 }}, {{ address = "127.0.0.1:1002", priority = 3 }} ]

[[clusters]]
name = "named"
endpoints = [ "127.0.0.1:1001", {{ address = "app.internal:80", priority = 1 }} ]
"#
    ));
    let app = &c.clusters[0];
    let levels: Vec<u8> = app.endpoints.iter().map(|e| e.priority).collect();
    assert_eq!(levels, [0, 1, 255]);
    assert_eq!(app.overprovisioning_percent, 200);
    assert!(app.has_priorities());
    // One level, whichever it is, is no levels at all.
    assert!(!c.clusters[1].has_priorities());
    assert_eq!(c.clusters[1].overprovisioning_percent, 140);
    // A name's addresses take its priority.
    let named = &c.clusters[2];
    assert!(named.has_priorities());
    assert_eq!(named.names[0].at([10, 0, 0, 1].into()).priority, 1);
}

#[test]
fn priorities_are_in_the_fingerprint() {
    let text = |priority: u8, over: u16| {
        format!(
            "{LISTENER}[[clusters]]\nname = \"app\"\noverprovisioning_percent = {over}\n\
             endpoints = [ \"127.0.0.1:1\", {{ address = \"127.0.0.1:2\", priority = {priority} }} ]\n"
        )
    };
    let fp = |priority, over| ok(&text(priority, over)).clusters[0].fingerprint;
    assert_eq!(fp(1, 140), fp(1, 140));
    assert_ne!(fp(1, 140), fp(2, 140));
    assert_ne!(fp(1, 140), fp(0, 140));
    assert_ne!(fp(1, 140), fp(1, 150));
}

#[test]
fn mistakes_carry_their_path_and_reason() {
    let e = errors(&format!(
        r#"[proxy]
zone = "z1"
{LISTENER}
[[clusters]]
name = "a"
overprovisioning_percent = 99
endpoints = [ {{ address = "127.0.0.1:1", priority = 256 }} ]

[[clusters]]
name = "b"
zone_aware = true
endpoints = [ {{ address = "127.0.0.1:1", zone = "z1" }}, {{ address = "127.0.0.1:2", zone = "z2", priority = 1 }} ]
"#
    ));
    assert_eq!(
        e,
        [
            "clusters[0].endpoints[0].priority: must be from 0 to 255, got 256",
            "clusters[0].overprovisioning_percent: must be from 100 to 1000, got 99",
            "clusters[1].zone_aware: cannot be used with endpoints of more than one priority: a priority level is chosen first, and zones are not weighed within it",
        ]
    );
    // Zone-aware with a single level, whatever its number, is fine.
    ok(&format!(
        "[proxy]\nzone = \"z1\"\n{LISTENER}[[clusters]]\nname = \"a\"\nzone_aware = true\n\
         endpoints = [ {{ address = \"127.0.0.1:1\", zone = \"z1\", priority = 2 }} ]\n"
    ));
}

#[test]
fn down_is_read_and_in_the_fingerprint() {
    let text = |down: bool| {
        format!(
            "{LISTENER}[[clusters]]\nname = \"app\"\n\
             endpoints = [ \"127.0.0.1:1\", {{ address = \"127.0.0.1:2\", down = {down} }}, {{ address = \"app.internal:80\", down = {down} }} ]\n"
        )
    };
    let c = ok(&text(true));
    let app = &c.clusters[0];
    let down: Vec<bool> = app.endpoints.iter().map(|e| e.down).collect();
    assert_eq!(down, [false, true]);
    assert!(app.names[0].at([10, 0, 0, 1].into()).down);
    let fp = |down| ok(&text(down)).clusters[0].fingerprint;
    assert_ne!(fp(true), fp(false));
    assert_eq!(fp(true), fp(true));
}

#[test]
fn hash_cookie_is_read_and_checked() {
    let text = |lb: &str, cookie: &str| {
        format!(
            "{LISTENER}[[clusters]]\nname = \"app\"\n{lb}hash_cookie = {cookie}\nendpoints = [ \"127.0.0.1:1\" ]\n"
        )
    };
    let ring = "lb = \"ring_hash\"\nhash_key = \"cookie:sticky\"\n";
    let c = ok(&text(ring, "{ ttl_s = 3600, path = \"/app\" }"));
    let hc = c.clusters[0].hash_cookie.clone().unwrap();
    assert_eq!(
        hc.set_cookie(0xab),
        "sticky=00000000000000ab; Max-Age=3600; Path=/app; HttpOnly"
    );
    // 0: a session cookie; no path: the browser's default.
    let c = ok(&text(ring, "{ ttl_s = 0 }"));
    let hc = c.clusters[0].hash_cookie.clone().unwrap();
    assert_eq!(hc.set_cookie(1), "sticky=0000000000000001; HttpOnly");

    let header = "lb = \"ring_hash\"\nhash_key = \"header:x-user\"\n";
    assert_eq!(
        errors(&text(header, "{ ttl_s = 1 }")),
        ["clusters[0].hash_cookie: only valid with lb = \"ring_hash\" and hash_key = \"cookie:NAME\" (the cookie it gives)"]
    );
    assert_eq!(
        errors(&text("", "{ ttl_s = 1 }")),
        ["clusters[0].hash_cookie: only valid with lb = \"ring_hash\" and hash_key = \"cookie:NAME\" (the cookie it gives)"]
    );
    assert_eq!(
        errors(&text(ring, "{ ttl_s = 315360001, path = \"a;b\" }")),
        [
            "clusters[0].hash_cookie.ttl_s: must be from 0 to 315360000, got 315360001",
            "clusters[0].hash_cookie.path: invalid cookie path \"a;b\": \"/\" and up to 1024 printable characters but \";\"",
        ]
    );
    assert_eq!(
        errors(&text(ring, "{ path = \"/\" }")),
        ["clusters[0].hash_cookie: missing field \"ttl_s\""]
    );
}

#[test]
fn zone_weights_are_read_and_checked() {
    let text = |keys: &str| {
        format!(
            "[proxy]\nzone = \"z1\"\n{LISTENER}[[clusters]]\nname = \"app\"\n{keys}\n\
             endpoints = [ {{ address = \"127.0.0.1:1\", zone = \"z1\" }}, {{ address = \"127.0.0.1:2\", zone = \"z2\" }} ]\n"
        )
    };
    let c = ok(&text(
        "zone_weights = { z2 = 20, z1 = 80, \"eu-west-1c\" = 5 }",
    ));
    let app = &c.clusters[0];
    // Indexed by zone; a zone no endpoint names yet is added.
    assert_eq!(app.zones, ["z1", "z2", "eu-west-1c"]);
    assert_eq!(app.zone_weights.as_deref(), Some(&[80, 20, 5][..]));
    assert_eq!(
        errors(&text("zone_weights = { z1 = 0, z2 = 10001 }")),
        [
            "clusters[0].zone_weights.z1: must be from 1 to 10000, got 0",
            "clusters[0].zone_weights.z2: must be from 1 to 10000, got 10001",
        ]
    );
    assert_eq!(
        errors(&text("zone_weights = {}")),
        ["clusters[0].zone_weights: empty: omit it to balance over every endpoint"]
    );
    assert_eq!(
        errors(&text("zone_aware = true\nzone_weights = { z1 = 1 }")),
        ["clusters[0].zone_weights: cannot be used with zone_aware (the proxy's own zone first, or each zone by its weight: one or the other)"]
    );
    assert_eq!(
        errors(&text("lb = \"ring_hash\"\nhash_key = \"source_ip\"\nzone_weights = { z1 = 1 }")),
        ["clusters[0].zone_weights: cannot be used with lb = \"ring_hash\": choosing a zone first would break the ring's consistency"]
    );
}
