//! Traffic interception: `transparent` listeners and `kind = "original_dst"` clusters, what
//! is accepted and every mistake with its path.

use super::tests::{errors, ok};
use crate::model::ListenerKind;

const BASE: &str = r#"
[[listeners]]
name = "outbound"
bind = "127.0.0.1:15001"
transparent = true

[[listeners]]
name = "plain"
bind = "127.0.0.1:8080"

[[clusters]]
name = "passthrough"
kind = "original_dst"

[[clusters]]
name = "orders"
endpoints = [ "127.0.0.1:9001" ]
"#;

#[test]
fn a_transparent_listener_routes_to_an_original_dst_cluster() {
    let c = ok(&format!(
        r#"{BASE}
[[routes]]
listener = "outbound"
match = {{ host = "orders.internal" }}
cluster = "orders"

[[routes]]
listener = "outbound"
match = {{ ports = [ 8080, 8443 ] }}
cluster = "passthrough"

[[routes]]
listener = "outbound"
cluster = "passthrough"

[[listeners]]
name = "tcp-out"
bind = "127.0.0.1:15002"
protocol = "tcp"
cluster = "passthrough"
transparent = true
"#
    ));
    let transparent: Vec<bool> = c.listeners.iter().map(|l| l.transparent).collect();
    assert_eq!(transparent, [true, false, true]);
    let kinds: Vec<bool> = c.clusters.iter().map(|c| c.original_dst).collect();
    assert_eq!(kinds, [true, false]);
    assert!(c.clusters[0].endpoints.is_empty());
    assert!(matches!(c.listeners[2].kind, ListenerKind::Tcp { .. }));
    let ListenerKind::Http(http) = &c.listeners[0].kind else {
        panic!("http")
    };
    assert_eq!(http.routes[1].matcher.ports, [8080, 8443]);
    // Changing the kind changes the fingerprint (per-worker state is not carried over).
    let other = ok(&BASE.replace("kind = \"original_dst\"", "kind = \"static\""));
    assert!(!other.clusters[0].original_dst);
    assert_ne!(c.clusters[0].fingerprint, other.clusters[0].fingerprint);
}

#[test]
fn an_original_dst_cluster_has_no_endpoints_of_its_own() {
    let e = errors(&format!(
        r#"[proxy]
zone = "z1"
{BASE}
[[clusters]]
name = "bad"
kind = "original_dst"
endpoints = [ "127.0.0.1:9002" ]
lb = "random"
health_check = {{ tcp = true }}
zone_aware = true
"#
    ));
    let why =
        "not valid with kind = \"original_dst\": each connection goes to its original destination";
    assert_eq!(
        e,
        [
            format!("clusters[2].endpoints: {why}"),
            format!("clusters[2].lb: {why}"),
            format!("clusters[2].health_check: {why}"),
            format!("clusters[2].zone_aware: {why}"),
        ]
    );
}

#[test]
fn only_a_transparent_listener_may_use_an_original_dst_cluster() {
    let e = errors(&format!(
        r#"{BASE}
[[routes]]
listener = "plain"
cluster = "passthrough"

[[routes]]
listener = "plain"
weighted = [ {{ cluster = "orders", weight = 1 }}, {{ cluster = "passthrough", weight = 1 }} ]

[[routes]]
listener = "outbound"
cluster = "orders"
mirror = {{ cluster = "passthrough" }}

[[routes]]
listener = "plain"
match = {{ ports = [ 8080 ] }}
cluster = "orders"

[[listeners]]
name = "tcp-plain"
bind = "127.0.0.1:15003"
protocol = "tcp"
cluster = "passthrough"
"#
    ));
    let needs = |l: &str| {
        format!("cluster \"passthrough\" has kind = \"original_dst\", which only a listener with transparent = true can use (listener {l:?} is not)")
    };
    assert_eq!(
        e,
        [
            format!("listeners[2].cluster: {}", needs("tcp-plain")),
            format!("routes[0].cluster: {}", needs("plain")),
            format!("routes[1].weighted[1].cluster: {}", needs("plain")),
            "routes[2].mirror.cluster: cluster \"passthrough\" has kind = \"original_dst\": a mirror needs endpoints of its own".to_string(),
            "routes[3].match.ports: only with connect = true, or on a listener with transparent = true (the port of a CONNECT's authority, or of an intercepted connection's original destination; other requests are routed by host alone)".to_string(),
        ]
    );
}

#[test]
fn kind_and_transparent_take_only_their_values() {
    let e = errors(&BASE.replace("kind = \"original_dst\"", "kind = \"dynamic\""));
    assert_eq!(
        e,
        ["clusters[0].kind: unknown variant \"dynamic\", expected \"static\" or \"original_dst\""]
    );
    let e = errors(&BASE.replace("transparent = true", "transparent = \"yes\""));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("listeners[0].transparent: "), "{e:?}");
}
