//! Child listeners: a parent's connections handed on by destination (the original one, on a
//! transparent parent) and by what they open with.

use super::tests::{errors, ok};
use crate::model::ListenerKind;
use crate::Pick;

const PARENT: &str = r#"
[[listeners]]
name = "outbound"
bind = "127.0.0.1:15001"
transparent = true
protocol = "tcp"
cluster = "passthrough"

[[clusters]]
name = "passthrough"
kind = "original_dst"

[[clusters]]
name = "orders"
endpoints = [ "127.0.0.1:9001" ]
"#;

#[test]
fn children_take_their_destinations_and_the_parent_keeps_the_rest() {
    let c = ok(&format!(
        r#"{PARENT}
[[listeners]]
name = "http-8080"
parent = "outbound"
match = {{ ports = [ 8080 ] }}

[[routes]]
listener = "http-8080"
match = {{ ports = [ 8080 ] }}
cluster = "passthrough"

[[listeners]]
name = "orders-tcp"
parent = "outbound"
match = {{ ports = [ 9000, 9001 ], addresses = [ "10.96.0.7", "fd00::/8" ] }}
protocol = "tcp"
cluster = "orders"
"#
    ));
    let outbound = &c.listeners[0];
    let names: Vec<&str> = outbound
        .children
        .iter()
        .map(|c| c.listener.as_str())
        .collect();
    assert_eq!(names, ["http-8080", "orders-tcp"]);
    assert_eq!(
        outbound
            .children
            .pick("10.0.0.1:8080".parse().unwrap(), None),
        Pick::Child("http-8080")
    );
    assert_eq!(
        outbound
            .children
            .pick("10.96.0.7:9001".parse().unwrap(), None),
        Pick::Child("orders-tcp")
    );
    assert_eq!(
        outbound
            .children
            .pick("10.96.0.8:9001".parse().unwrap(), None),
        Pick::Parent
    );
    let child = &c.listeners[1];
    assert_eq!(child.parent.as_deref(), Some("outbound"));
    assert_eq!(child.bind, outbound.bind);
    assert!(
        child.transparent,
        "a child's connections carry their original destination"
    );
    assert!(child.children.is_empty());
    assert!(matches!(c.listeners[2].kind, ListenerKind::Tcp { .. }));
}

#[test]
fn every_mistake_is_named_by_its_path() {
    let e = errors(&format!(
        r#"{PARENT}
[[listeners]]
name = "plain"
bind = "127.0.0.1:8080"
match = {{ ports = [ 80 ] }}

[[listeners]]
name = "bound-child"
bind = "127.0.0.1:8081"
parent = "outbound"
match = {{ ports = [ 81 ] }}

[[listeners]]
name = "no-match"
parent = "outbound"

[[listeners]]
name = "orphan"
parent = "nowhere"
match = {{ ports = [ 82 ] }}

[[listeners]]
name = "of-plain"
parent = "plain"
match = {{ ports = [ 83 ] }}

[[listeners]]
name = "grandchild"
parent = "a"
match = {{ ports = [ 84 ] }}

[[listeners]]
name = "a"
parent = "outbound"
match = {{ ports = [ 85 ], addresses = [ "10.0.0.0/8" ] }}
transparent = true
max_connections = 5

[[listeners]]
name = "b"
parent = "outbound"
match = {{ ports = [ 86, 85, 0, 70000, 86 ], addresses = [ "10.0.0.0/8", "10.0.0.1/8", "10.0.0.0/8" ] }}

[[listeners]]
name = "c"
parent = "outbound"
match = {{ addresses = [ ] }}

[[listeners]]
name = "d"
parent = "outbound"
match = {{ }}

[[listeners]]
name = "e"
parent = "outbound"
match = {{ ports = [ 85 ], addresses = [ "10.0.0.0/8" ] }}

[[listeners]]
name = "nobind"
"#
    ));
    assert_eq!(
        e,
        [
            "listeners[1].match: only with parent (the connections a child listener takes from its parent)",
            "listeners[2].bind: not with parent: a child listener has no socket of its own (its parent accepts its connections)",
            "listeners[3].match: required with parent: the connections this listener takes (ports, addresses; transport, server_names, alpn)",
            "listeners[4].parent: unknown listener \"nowhere\"",
            "listeners[6].parent: listener \"a\": that listener has a parent itself (one level only: the parent is the listener that accepts)",
            "listeners[7].transparent: not with parent: the parent's transparent applies to the connections it hands this listener",
            "listeners[7].max_connections: not with parent: the parent's max_connections applies to the connections it hands this listener",
            "listeners[8].match.ports[2]: invalid port 0: 1 to 65535",
            "listeners[8].match.ports[3]: invalid port 70000: 1 to 65535",
            "listeners[8].match.ports[4]: duplicate port 86",
            "listeners[8].match.addresses[1]: \"10.0.0.1/8\" has bits set past its prefix length /8; write the block's first address",
            "listeners[8].match.addresses[2]: duplicate block \"10.0.0.0/8\"",
            "listeners[9].match.addresses: empty: omit it to take any",
            "listeners[10].match: needs at least one of ports, addresses, transport, server_names, alpn (a child that took every connection would leave its parent nothing)",
            "listeners[11].match: takes port 85 of 10.0.0.0/8 as listeners[7] does (children of \"outbound\" must not overlap exactly)",
            "listeners[12].bind: required (or parent, for a listener that serves connections another one accepts)",
        ]
    );
}

#[test]
fn a_child_may_use_what_only_transparent_listeners_may() {
    ok(&format!(
        r#"{PARENT}
[[listeners]]
name = "passthrough-80"
parent = "outbound"
match = {{ ports = [ 80 ] }}
protocol = "tcp"
cluster = "passthrough"
"#
    ));
}

#[test]
fn children_by_what_the_connection_opens_with() {
    let c = ok(&format!(
        r#"{PARENT}
[[listeners]]
name = "mtls-http"
parent = "outbound"
match = {{ ports = [ 8080 ], transport = "tls", alpn = [ "istio-http/1.1", "istio-h2" ] }}
protocol = "tcp"
cluster = "orders"

[[listeners]]
name = "plain-http"
parent = "outbound"
match = {{ ports = [ 8080 ], transport = "plaintext", alpn = [ "http/1.1", "h2c" ] }}

[[listeners]]
name = "api"
parent = "outbound"
match = {{ ports = [ 443 ], server_names = [ "api.example.com", "*.api.example.com" ] }}
protocol = "tcp"
cluster = "orders"
"#
    ));
    let outbound = &c.listeners[0];
    let to = "10.0.0.1:8080".parse().unwrap();
    assert_eq!(outbound.children.pick(to, None), Pick::Inspect);
    let plain = crate::Hello {
        transport: crate::Transport::Plaintext,
        server_name: None,
        alpn: vec!["h2c".into()],
    };
    assert_eq!(
        outbound.children.pick(to, Some(&plain)),
        Pick::Child("plain-http")
    );
    let sni = crate::Hello {
        transport: crate::Transport::Tls,
        server_name: Some("v1.api.example.com".into()),
        alpn: vec![],
    };
    let to = "10.0.0.1:443".parse().unwrap();
    assert_eq!(outbound.children.pick(to, Some(&sni)), Pick::Child("api"));
}

#[test]
fn mistakes_in_what_the_connection_opens_with() {
    let e = errors(&format!(
        r#"{PARENT}
[[listeners]]
name = "a"
parent = "outbound"
match = {{ transport = "plaintext", server_names = [ "x.example.com" ] }}

[[listeners]]
name = "b"
parent = "outbound"
match = {{ server_names = [ "API.example.com", "*.a.b", "*.a.b", "*", "a..b" ], alpn = [ "h2", "", "h2", "a b" ] }}

[[listeners]]
name = "c"
parent = "outbound"
match = {{ server_names = [ ], alpn = [ ] }}

[[listeners]]
name = "d"
parent = "outbound"
match = {{ ports = [ 80 ], transport = "tls", alpn = [ "h2", "http/1.1" ] }}

[[listeners]]
name = "e"
parent = "outbound"
match = {{ ports = [ 80 ], transport = "tls", alpn = [ "http/1.1" ] }}

[[listeners]]
name = "f"
parent = "outbound"
match = {{ transport = "quic" }}
"#
    ));
    assert_eq!(
        e,
        [
            "listeners[1].match.server_names[0]: not with transport = \"plaintext\": only a TLS ClientHello names a server",
            "listeners[2].match.server_names[0]: invalid server name \"API.example.com\": lower-case DNS labels (\"api.example.com\"), or \"*.\" and labels for any subdomain",
            "listeners[2].match.server_names[2]: duplicate server name \"*.a.b\"",
            "listeners[2].match.server_names[3]: invalid server name \"*\": lower-case DNS labels (\"api.example.com\"), or \"*.\" and labels for any subdomain",
            "listeners[2].match.server_names[4]: invalid server name \"a..b\": lower-case DNS labels (\"api.example.com\"), or \"*.\" and labels for any subdomain",
            "listeners[2].match.alpn[1]: invalid protocol \"\": 1 to 255 printable characters, e.g. \"h2\"",
            "listeners[2].match.alpn[2]: duplicate protocol \"h2\"",
            "listeners[2].match.alpn[3]: invalid protocol \"a b\": 1 to 255 printable characters, e.g. \"h2\"",
            "listeners[3].match.server_names: empty: omit it to take any",
            "listeners[3].match.alpn: empty: omit it to take any",
            "listeners[5].match: takes port 80 of any address, over TLS, protocol \"http/1.1\" as listeners[4] does (children of \"outbound\" must not overlap exactly)",
            "listeners[6].match.transport: unknown variant \"quic\", expected \"tls\" or \"plaintext\"",
        ]
    );
}

#[test]
fn how_long_a_parent_reads_first_bytes() {
    let c = ok(&format!(
        r#"{PARENT}
[[listeners]]
name = "default"
bind = "127.0.0.1:15002"
transparent = true

[[listeners]]
name = "istio"
bind = "127.0.0.1:15003"
transparent = true
idle_timeout_ms = 5000
inspect_timeout_ms = 0
inspect_on_timeout = "continue"

[[listeners]]
name = "envoy"
bind = "127.0.0.1:15004"
transparent = true
inspect_timeout_ms = 15000
inspect_on_timeout = "close"
"#
    ));
    let how: Vec<(u64, bool)> = c.listeners[1..]
        .iter()
        .map(|l| {
            let ms = u64::try_from(l.inspect.timeout.as_millis()).unwrap();
            (ms, l.inspect.close_on_timeout)
        })
        .collect();
    assert_eq!(how, [(1000, false), (5000, false), (15000, true)]);
    assert_eq!(
        errors(&format!(
            "{PARENT}\n[[listeners]]\nname = \"plain\"\nbind = \"127.0.0.1:8080\"\ninspect_timeout_ms = 5\ninspect_on_timeout = \"close\"\n"
        )),
        [
            "listeners[1].inspect_timeout_ms: only on a parent listener, or one with transparent = true (a parent reads a connection's first bytes to choose its child listener)",
            "listeners[1].inspect_on_timeout: only on a parent listener, or one with transparent = true (a parent reads a connection's first bytes to choose its child listener)",
        ]
    );
}

#[test]
fn a_parent_that_is_not_transparent_hands_on_by_what_connections_open_with() {
    // A gateway's port 443: one certificate per host, and a TCP passthrough by server name.
    let c = ok(r#"
[[listeners]]
name = "https"
bind = "127.0.0.1:8443"
inspect_timeout_ms = 2000

[[listeners]]
name = "api"
parent = "https"
match = { server_names = [ "api.example.com" ] }

[[listeners]]
name = "legacy"
parent = "https"
match = { server_names = [ "*.legacy.example.com" ] }
protocol = "tcp"
cluster = "legacy"

[[clusters]]
name = "legacy"
endpoints = [ "127.0.0.1:9443" ]
"#);
    let https = &c.listeners[0];
    assert!(!https.transparent && !c.listeners[1].transparent && !c.listeners[2].transparent);
    assert_eq!(https.inspect.timeout.as_millis(), 2000);
    let at = "127.0.0.1:8443".parse().unwrap();
    assert_eq!(https.children.pick(at, None), Pick::Inspect);
    let tls = |name: &str| crate::Hello {
        transport: crate::Transport::Tls,
        server_name: Some(name.into()),
        alpn: vec![],
    };
    assert_eq!(
        https.children.pick(at, Some(&tls("api.example.com"))),
        Pick::Child("api")
    );
    assert_eq!(
        https
            .children
            .pick(at, Some(&tls("old.legacy.example.com"))),
        Pick::Child("legacy")
    );
    assert_eq!(
        https.children.pick(at, Some(&tls("other.example.com"))),
        Pick::Parent
    );
    // What only an original destination gives stays a transparent parent's children's.
    let e = errors(
        r#"
[[listeners]]
name = "https"
bind = "127.0.0.1:8443"

[[listeners]]
name = "passthrough"
parent = "https"
match = { server_names = [ "a.example.com" ] }
protocol = "tcp"
cluster = "anywhere"

[[clusters]]
name = "anywhere"
kind = "original_dst"
"#,
    );
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(e[0].starts_with("listeners[1].cluster: "), "{e:#?}");
}
