//! The gateway's keys: consumers and API keys, `authn`, keyed rate limits — what is
//! accepted, and every mistake with its path (the role check, duplicate keys, bad digests,
//! `match.consumers`).

use super::tests::{errors, ok};
use crate::consumers::sha256;
use crate::model::{ListenerKind, RateLimit};
use crate::{ConsumerId, RateLimitKey};

const BASE: &str = r#"
[[listeners]]
name = "public"
bind = "127.0.0.1:0"

[[clusters]]
name = "local-app"
endpoints = [ "127.0.0.1:9001" ]
"#;

/// The issue's contract for the API-key slice, as written (JWT: `jwt_tests.rs`).
const CONTRACT: &str = r#"
[proxy]
role = "gateway"

[[consumers]]
name = "mobile-app"
api_keys = [ { sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" } ]
rate_limit = { requests_per_second = 50, burst = 100 }

[[consumers]]
name = "web"
api_keys = [ { key = "web-key-1" }, { key = "web-key-2" } ]

[[routes]]
listener = "public"
name = "orders-api"
match = { path_prefix = "/api/orders/" }
authn = { api_key = { header = "x-api-key", query = "apikey" } }
rate_limit = { key = "consumer", requests_per_second = 10, burst = 20 }
cluster = "local-app"

[[routes]]
listener = "public"
name = "by-tenant"
rate_limit = { key = "header:X-Tenant", requests_per_second = 10 }
cluster = "local-app"
"#;

#[test]
fn the_contract_keys_are_accepted() {
    let c = ok(&format!("{BASE}{CONTRACT}"));
    let names: Vec<&str> = c.consumers.list().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["mobile-app", "web"]);
    assert_eq!(
        c.consumers.list()[0].rate_limit,
        Some(RateLimit::new(50, 100))
    );
    // sha256("test") is mobile-app's; plain keys are hashed when the file is read.
    assert_eq!(c.consumers.by_api_key(b"test"), Some(ConsumerId(0)));
    assert_eq!(c.consumers.by_api_key(b"web-key-2"), Some(ConsumerId(1)));
    assert_eq!(c.consumers.by_api_key(b"web-key-3"), None);
    let ListenerKind::Http(http) = &c.listeners[0].kind else {
        panic!("http listener")
    };
    let orders = &http.routes[0];
    let authn = orders.authn.as_ref().expect("authn");
    let key = authn.api_key.as_ref().expect("api_key");
    assert_eq!(key.header, "x-api-key");
    assert_eq!(key.query.as_deref(), Some("apikey"));
    assert!(key.hide_credentials);
    assert_eq!(authn.realm, "orders-api");
    assert_eq!(orders.rate_limit_key, RateLimitKey::Consumer);
    assert_eq!(orders.rate_limit, Some(RateLimit::new(10, 20)));
    assert_eq!(
        http.routes[1].rate_limit_key,
        RateLimitKey::Header("x-tenant".into())
    );
    assert!(http.routes[1].authn.is_none());
}

#[test]
fn defaults_header_x_api_key_and_hidden_credentials() {
    let c = ok(&format!(
        "{BASE}[proxy]\nrole = \"gateway\"\n[[routes]]\nlistener = \"public\"\ncluster = \"local-app\"\nauthn = {{ api_key = {{}} }}\n"
    ));
    let ListenerKind::Http(http) = &c.listeners[0].kind else {
        panic!("http listener")
    };
    let a = http.routes[0]
        .authn
        .as_ref()
        .expect("authn")
        .api_key
        .as_ref()
        .expect("api_key");
    assert_eq!(
        (a.header.as_str(), a.query.as_deref(), a.hide_credentials),
        ("x-api-key", None, true)
    );
    assert_eq!(http.routes[0].rate_limit_key, RateLimitKey::Route);
}

#[test]
fn gateway_keys_need_the_gateway_role() {
    let sidecar = CONTRACT.replace("role = \"gateway\"", "role = \"sidecar\"");
    assert_eq!(
        errors(&format!("{BASE}{sidecar}")),
        [
            "routes[0].authn: needs [proxy] role = \"gateway\": the sidecar's pipeline has no stage that reads it",
            "routes[0].rate_limit.key: needs [proxy] role = \"gateway\": the sidecar's pipeline has no stage that reads it",
            "routes[1].rate_limit.key: needs [proxy] role = \"gateway\": the sidecar's pipeline has no stage that reads it",
            "consumers[0]: needs [proxy] role = \"gateway\": the sidecar's pipeline has no stage that reads it",
            "consumers[1]: needs [proxy] role = \"gateway\": the sidecar's pipeline has no stage that reads it",
        ]
    );
    // No [proxy] at all is a sidecar too; `key = "route"` is what a sidecar does anyway.
    let text = format!(
        "{BASE}[[routes]]\nlistener = \"public\"\ncluster = \"local-app\"\nrate_limit = {{ key = \"route\", requests_per_second = 1 }}\n"
    );
    ok(&text);
}

#[test]
fn duplicate_and_malformed_keys() {
    let text = format!(
        r#"{BASE}
[proxy]
role = "gateway"

[[consumers]]
name = "a"
api_keys = [ {{ key = "test" }}, {{ sha256 = "XYZ" }}, {{ key = "has space" }}, {{ }}, {{ key = "k", sha256 = "{hex}" }} ]

[[consumers]]
name = "b"
api_keys = [ {{ sha256 = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08" }}, {{ key = "" }} ]

[[consumers]]
name = "a"
"#,
        hex = "00".repeat(32)
    );
    assert_eq!(
        errors(&text),
        [
            "consumers[0].api_keys[1].sha256: must be 64 hexadecimal digits (a SHA-256 digest, e.g. from `printf %s \"$KEY\" | sha256sum`)",
            "consumers[0].api_keys[2].key: must be 1 to 256 visible ASCII characters, without spaces",
            "consumers[0].api_keys[3]: needs exactly one of sha256 and key",
            "consumers[0].api_keys[4]: needs exactly one of sha256 and key",
            // The digest of "test", in capitals: the same key. The message never shows it.
            "consumers[1].api_keys[0]: duplicate API key (also consumers[0].api_keys[0]): a key names one consumer",
            "consumers[1].api_keys[1].key: must be 1 to 256 visible ASCII characters, without spaces",
            "consumers[2].name: duplicate consumer name \"a\" (also consumers[0].name)",
        ]
    );
    assert_eq!(sha256(b"test")[0], 0x9f);
}

/// `match.consumers`: resolved to consumer ids on a gateway route with `authn`.
#[test]
fn match_consumers_names_known_consumers() {
    let text = format!(
        r#"{BASE}
[proxy]
role = "gateway"

[[redis]]
name = "limits"
address = "127.0.0.1:6379"

[[consumers]]
name = "mobile-app"

[[consumers]]
name = "web"

[[routes]]
listener = "public"
match = {{ consumers = [ "web", "mobile-app" ] }}
authn = {{ api_key = {{ header = "x-api-key" }} }}
rate_limit = {{ key = "consumer", requests_per_minute = 600, redis = "limits" }}
cluster = "local-app"

[[routes]]
listener = "public"
authn = {{ api_key = {{ header = "x-api-key" }} }}
cluster = "local-app"
"#
    );
    let config = ok(&text);
    let ListenerKind::Http(http) = &config.listeners[0].kind else {
        panic!("an http listener")
    };
    assert_eq!(
        http.routes[0].matcher.consumers,
        [ConsumerId(1), ConsumerId(0)]
    );
    assert!(http.routes[1].matcher.consumers.is_empty());
}

#[test]
fn match_consumers_mistakes() {
    let gateway = |route: &str| {
        format!(
            r#"{BASE}
[proxy]
role = "gateway"

[[consumers]]
name = "web"

[[routes]]
listener = "public"
{route}
cluster = "local-app"
"#
        )
    };
    let path = "routes[0].match.consumers";
    let cases = [
        (
            gateway(r#"match = { consumers = [ "web" ] }"#),
            format!("{path}: matching on the consumer needs the route's authn"),
        ),
        (
            gateway(
                r#"match = { consumers = [] }
authn = { api_key = {} }"#,
            ),
            format!("{path}: must name at least one consumer"),
        ),
        (
            gateway(
                r#"match = { consumers = [ "web", "nobody" ] }
authn = { api_key = {} }"#,
            ),
            format!("{path}[1]: unknown consumer \"nobody\""),
        ),
        (
            format!(
                r#"{BASE}
[[routes]]
listener = "public"
match = {{ consumers = [ "web" ] }}
cluster = "local-app"
"#
            ),
            format!("{path}: needs [proxy] role = \"gateway\""),
        ),
    ];
    for (text, want) in cases {
        let found = errors(&text);
        assert!(
            found.iter().any(|e| e.starts_with(&want)),
            "{want} in {found:#?}"
        );
        assert_eq!(found.len(), 1, "{found:#?}");
    }
}

#[test]
fn authn_and_key_mistakes() {
    let text = format!(
        r#"{BASE}
[proxy]
role = "gateway"

[[consumers]]
name = "c"
rate_limit = {{ key = "ip", requests_per_second = 1 }}

[[listeners]]
name = "other"
bind = "127.0.0.1:0"
rate_limit = {{ key = "ip", requests_per_second = 1 }}

[[routes]]
listener = "public"
authn = {{ }}
cluster = "local-app"

[[routes]]
listener = "public"
authn = {{ api_key = {{ header = "bad header", query = "a&b" }} }}
cluster = "local-app"

[[routes]]
listener = "public"
rate_limit = {{ key = "consumer", requests_per_second = 1 }}
cluster = "local-app"

[[routes]]
listener = "public"
rate_limit = {{ key = "cookie:x", requests_per_second = 1 }}
cluster = "local-app"
"#
    );
    assert_eq!(
        errors(&text),
        [
            "listeners[1].rate_limit.key: only a route's rate_limit has a key; this is the listener's one bucket",
            "routes[0].authn: needs api_key, jwt, or both",
            "routes[1].authn.api_key.header: invalid header name \"bad header\": must be an HTTP token such as \"x-env\"",
            "routes[2].rate_limit.key: a bucket per consumer needs the route's authn (nothing else says who the consumer is)",
            "routes[3].rate_limit.key: unknown key \"cookie:x\", expected \"route\", \"consumer\", \"ip\" or \"header:<name>\"",
            "consumers[0].rate_limit.key: only a route's rate_limit has a key; this is a consumer's own bucket",
        ]
    );
}

/// `[[authz]] consumers`: resolved on a gateway; the listener's policy then names consumers.
#[test]
fn authz_rules_name_consumers() {
    let text = format!(
        r#"{BASE}
[proxy]
role = "gateway"

[[consumers]]
name = "mobile-app"

[[consumers]]
name = "web"

[[authz]]
listener = "public"
action = "deny"
consumers = [ "web" ]

[[routes]]
listener = "public"
authn = {{ api_key = {{}} }}
cluster = "local-app"
"#
    );
    let config = ok(&text);
    let ListenerKind::Http(http) = &config.listeners[0].kind else {
        panic!("an http listener")
    };
    assert_eq!(http.authz.rules[0].consumers, [ConsumerId(1)]);
    assert!(http.authz.names_consumers());
    use crate::AuthzAction::{Allow, Deny};
    let decide = |c| http.authz.decide(c, None, "GET", "/", |_| None);
    assert_eq!(decide(Some(ConsumerId(1))), Deny);
    assert_eq!(decide(Some(ConsumerId(0))), Allow);
    assert_eq!(decide(None), Allow);

    let found = errors(&text.replace("[ \"web\" ]", "[ \"web\", \"nobody\" ]"));
    assert_eq!(
        found,
        ["authz[0].consumers[1]: unknown consumer \"nobody\""],
        "{found:#?}"
    );
    let sidecar = format!(
        r#"{BASE}
[[authz]]
listener = "public"
action = "deny"
consumers = [ "web" ]
"#
    );
    let found = errors(&sidecar);
    assert!(
        found
            .iter()
            .any(|e| e.starts_with("authz[0].consumers: needs [proxy] role = \"gateway\"")),
        "{found:#?}"
    );
}
