//! `[proxy] zone`, endpoints' `zone` and clusters' `zone_aware`: what is accepted, and every
//! mistake with its path.

use super::tests::errors;
use crate::model::{Config, ZoneId};
use crate::parse;

fn ok(text: &str) -> Config {
    parse(text).unwrap_or_else(|e| panic!("expected a valid config, got:\n{e}"))
}

const LISTENER: &str = "[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n";

#[test]
fn zones_and_zone_awareness_are_read() {
    let c = ok(&format!(
        r#"[proxy]
zone = "z1"
{LISTENER}
[[clusters]]
name = "app"
zone_aware = true
endpoints = [ {{ address = "127.0.0.1:1001", zone = "z2" }}, {{ address = "127.0.0.1:1002", zone = "z1", weight = 3 }}, "127.0.0.1:1003", {{ address = "127.0.0.1:1004", zone = "z2" }} ]

[[clusters]]
name = "counted"
zone_aware = true
zone_min_healthy_percent = 0
endpoints = [ {{ address = "127.0.0.1:1001", zone = "z3" }} ]
"#
    ));
    assert_eq!(c.proxy.zone.as_deref(), Some("z1"));
    let app = &c.clusters[0];
    assert_eq!(app.zones, ["z2", "z1"]);
    let zones: Vec<Option<ZoneId>> = app.endpoints.iter().map(|e| e.zone).collect();
    assert_eq!(
        zones,
        [Some(ZoneId(0)), Some(ZoneId(1)), None, Some(ZoneId(0))]
    );
    let aware = app.zone_aware.unwrap();
    assert_eq!(
        (aware.local, aware.min_healthy_percent),
        (Some(ZoneId(1)), 70)
    );
    // No endpoint in the proxy's zone: valid, every request goes elsewhere.
    let counted = c.clusters[1].zone_aware.unwrap();
    assert_eq!((counted.local, counted.min_healthy_percent), (None, 0));
}

#[test]
fn zones_without_zone_awareness_only_label_the_endpoints() {
    let c = ok(&format!(
        "{LISTENER}[[clusters]]\nname = \"app\"\nendpoints = [ {{ address = \"127.0.0.1:1\", zone = \"a\" }} ]\n"
    ));
    assert_eq!(c.clusters[0].zones, ["a"]);
    assert!(c.clusters[0].zone_aware.is_none());
}

#[test]
fn zone_awareness_is_in_the_fingerprint() {
    let text = |zone: &str, min: u8| {
        format!(
            "[proxy]\nzone = \"{zone}\"\n{LISTENER}[[clusters]]\nname = \"app\"\nzone_aware = true\n\
             zone_min_healthy_percent = {min}\nendpoints = [ {{ address = \"127.0.0.1:1\", zone = \"a\" }} ]\n"
        )
    };
    let fp = |zone, min| ok(&text(zone, min)).clusters[0].fingerprint;
    assert_eq!(fp("a", 70), fp("a", 70));
    assert_ne!(fp("a", 70), fp("b", 70));
    assert_ne!(fp("a", 70), fp("a", 50));
}

#[test]
fn mistakes_carry_their_path_and_reason() {
    let e = errors(&format!(
        r#"[proxy]
zone = "no spaces"
{LISTENER}
[[clusters]]
name = "a"
zone_min_healthy_percent = 50
endpoints = [ {{ address = "127.0.0.1:1", zone = "" }} ]

[[clusters]]
name = "b"
zone_aware = true
zone_min_healthy_percent = 101
endpoints = [ "127.0.0.1:1" ]

[[clusters]]
name = "c"
zone_aware = true
lb = "ring_hash"
hash_key = "source_ip"
endpoints = [ "127.0.0.1:1" ]
"#
    ));
    let expect = [
        "proxy.zone: invalid name \"no spaces\"",
        "clusters[0].endpoints[0].zone: invalid name \"\"",
        "clusters[0].zone_min_healthy_percent: only valid with zone_aware = true",
        "clusters[1].zone_min_healthy_percent: must be from 0 to 100, got 101",
        "clusters[2].zone_aware: cannot be used with lb = \"ring_hash\"",
    ];
    for want in expect {
        assert!(e.iter().any(|m| m.starts_with(want)), "{want}\n in {e:#?}");
    }
    let e = errors(&format!(
        "{LISTENER}[[clusters]]\nname = \"a\"\nzone_aware = true\nendpoints = [ \"127.0.0.1:1\" ]\n"
    ));
    assert_eq!(
        e,
        ["clusters[0].zone_aware: requires [proxy] zone (the zone this proxy runs in)"]
    );
    let e = errors(&format!(
        "{LISTENER}[[clusters]]\nname = \"a\"\nendpoints = [ {{ address = \"127.0.0.1:1\", region = \"x\" }} ]\n"
    ));
    assert_eq!(
        e,
        ["clusters[0].endpoints[0].region: unknown field \"region\", expected one of \"address\", \"weight\", \"zone\", \"priority\", \"down\""]
    );
}

#[test]
fn panic_threshold_percent_is_read_and_bounded() {
    let text = |v: u64| {
        format!("{LISTENER}[[clusters]]\nname = \"app\"\npanic_threshold_percent = {v}\nendpoints = [ \"127.0.0.1:1\" ]\n")
    };
    assert_eq!(ok(&text(0)).clusters[0].panic_threshold_percent, Some(0));
    assert_eq!(
        ok(&text(100)).clusters[0].panic_threshold_percent,
        Some(100)
    );
    assert_eq!(
        ok(&format!("{LISTENER}[[clusters]]\nname = \"app\"\n")).clusters[0]
            .panic_threshold_percent,
        None
    );
    assert_eq!(
        errors(&text(101)),
        ["clusters[0].panic_threshold_percent: must be from 0 to 100, got 101"]
    );
}
