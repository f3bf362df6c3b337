use super::*;

const BASE: &str = r#"# the api
[[listeners]]
name = "inbound"
bind = "127.0.0.1:15006"

[[routes]]
listener = "inbound"
name = "api"
# canary split
weighted = [ { cluster = "api-v1", weight = 90 }, { cluster = "api-v2", weight = 10 } ]

[[routes]]
listener = "inbound"
name = "web"
cluster = "api-v1"

[[routes]]
listener = "inbound"
name = "ping"
direct_response = { status = 200 }

[[clusters]]
name = "api-v1" # stable
endpoints = [ "127.0.0.1:9001", { address = "127.0.0.1:9002", weight = 2 } ]

[[clusters]]
name = "api-v2"
"#;

fn ok(r: Result<String, String>) -> String {
    let text = r.unwrap();
    ringside_config::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    text
}

#[test]
fn add_remove_set_endpoints_keep_comments() {
    let t = ok(endpoints(
        BASE,
        EndpointOp::Add,
        "api-v1",
        &["127.0.0.1:9003".into()],
    ));
    assert!(t.contains("# the api") && t.contains("# stable") && t.contains("# canary split"));
    assert!(
        t.contains(r#"endpoints = [ "127.0.0.1:9001", { address = "127.0.0.1:9002", weight = 2 }, "127.0.0.1:9003" ]"#),
        "{t}"
    );
    let t = ok(endpoints(
        &t,
        EndpointOp::Remove,
        "api-v1",
        &["127.0.0.1:9002".into()],
    ));
    assert!(
        t.contains(r#"endpoints = [ "127.0.0.1:9001", "127.0.0.1:9003" ]"#),
        "{t}"
    );
    let t = ok(endpoints(
        &t,
        EndpointOp::Remove,
        "api-v1",
        &["127.0.0.1:9003".into()],
    ));
    assert!(t.contains(r#"endpoints = [ "127.0.0.1:9001" ]"#), "{t}");
    let t = ok(endpoints(
        &t,
        EndpointOp::Add,
        "api-v1",
        &["127.0.0.1:9004".into()],
    ));
    let t = ok(endpoints(
        &t,
        EndpointOp::Remove,
        "api-v1",
        &["127.0.0.1:9001".into()],
    ));
    assert!(t.contains(r#"endpoints = [ "127.0.0.1:9004" ]"#), "{t}");
    let t = ok(endpoints(
        &t,
        EndpointOp::Set,
        "api-v2",
        &["127.0.0.1:9011".into(), "127.0.0.1:9012".into()],
    ));
    assert!(
        t.contains(r#"endpoints = ["127.0.0.1:9011", "127.0.0.1:9012"]"#),
        "{t}"
    );
}

#[test]
fn endpoint_errors() {
    assert_eq!(
        endpoints(BASE, EndpointOp::Add, "nope", &[]).unwrap_err(),
        "no cluster named \"nope\""
    );
    assert_eq!(
        endpoints(BASE, EndpointOp::Add, "api-v1", &["127.0.0.1:9001".into()]).unwrap_err(),
        "cluster \"api-v1\" already has endpoint 127.0.0.1:9001"
    );
    assert_eq!(
        endpoints(BASE, EndpointOp::Remove, "api-v1", &["127.0.0.1:1".into()]).unwrap_err(),
        "cluster \"api-v1\" has no endpoint 127.0.0.1:1"
    );
}

fn w(c: &str, weight: u32) -> WeightSpec {
    WeightSpec {
        cluster: c.into(),
        weight,
    }
}

#[test]
fn weights_shift_and_add() {
    let t = ok(weights(
        BASE,
        "api",
        None,
        &[w("api-v1", 50), w("api-v2", 50)],
    ));
    assert!(t.contains(r#"{ cluster = "api-v1", weight = 50 }"#), "{t}");
    assert!(t.contains(r#"{ cluster = "api-v2", weight = 50 }"#), "{t}");
    assert!(t.contains("# canary split"));
    let t = ok(weights(&t, "api", Some("inbound"), &[w("api-v2", 0)]));
    assert!(t.contains(r#"{ cluster = "api-v2", weight = 0 }"#), "{t}");
}

#[test]
fn weights_turn_a_single_cluster_route_into_a_split() {
    let t = ok(weights(BASE, "web", None, &[w("api-v2", 3)]));
    let cfg = ringside_config::parse(&t).unwrap();
    let _ = cfg;
    assert!(
        t.contains(
            r#"weighted = [{ cluster = "api-v1", weight = 1 }, { cluster = "api-v2", weight = 3 }]"#
        ),
        "{t}"
    );
}

#[test]
fn weight_errors() {
    assert!(weights(BASE, "ping", None, &[w("a", 1)])
        .unwrap_err()
        .contains("direct_response"));
    assert_eq!(
        weights(BASE, "nope", None, &[]).unwrap_err(),
        "no route named \"nope\""
    );
    assert_eq!(
        weights(BASE, "api", Some("other"), &[]).unwrap_err(),
        "no route named \"api\" on listener \"other\""
    );
    let two = format!(
        "{BASE}\n[[listeners]]\nname = \"second\"\nbind = \"127.0.0.1:15007\"\n\n[[routes]]\nlistener = \"second\"\nname = \"api\"\ncluster = \"api-v1\"\n"
    );
    assert!(weights(&two, "api", None, &[w("api-v1", 1)])
        .unwrap_err()
        .contains("is used on listeners inbound, second"));
    ok(weights(&two, "api", Some("second"), &[w("api-v2", 1)]));
}

#[test]
fn weights_reach_an_unnamed_route_by_its_default_name() {
    // The second route of "inbound" has no name: it is "inbound/1" (`ringsidectl weights
    // inbound/1 ...` passes listener "inbound" and route "1").
    let text = BASE.replace("name = \"web\"\n", "");
    let t = ok(weights(&text, "1", Some("inbound"), &[w("api-v2", 3)]));
    assert!(
        t.contains(
            r#"weighted = [{ cluster = "api-v1", weight = 1 }, { cluster = "api-v2", weight = 3 }]"#
        ),
        "{t}"
    );
    // Without the listener, or with an index that is a named route's, nothing matches.
    assert!(weights(&text, "1", None, &[w("api-v2", 3)]).is_err());
    assert!(weights(&text, "0", Some("inbound"), &[w("api-v2", 3)]).is_err());
}

#[test]
fn a_list_is_read_and_replaced_whole() {
    let ep = Field::Endpoints { cluster: "api-v1" };
    let v = get_value(BASE, ep).unwrap();
    assert_eq!(
        v,
        r#"[ "127.0.0.1:9001", { address = "127.0.0.1:9002", weight = 2 } ]"#
    );
    let t = set_value(BASE, ep, r#"["127.0.0.1:1"]"#).unwrap();
    assert!(t.contains("endpoints = [\"127.0.0.1:1\"]\n"), "{t}");
    assert!(
        t.contains("name = \"api-v1\" # stable"),
        "comments kept: {t}"
    );

    // A route with one cluster becomes a weighted one.
    let web = Field::Weighted {
        listener: "inbound",
        route: "web",
    };
    let t = set_value(BASE, web, r#"[{ cluster = "api-v2", weight = 1 }]"#).unwrap();
    assert!(!t.contains("cluster = \"api-v1\"\n\n"), "{t}");
    assert_eq!(
        get_value(&t, web).unwrap(),
        r#"[{ cluster = "api-v2", weight = 1 }]"#
    );

    let ping = Field::Weighted {
        listener: "inbound",
        route: "ping",
    };
    assert!(set_value(BASE, ping, "[]")
        .unwrap_err()
        .contains("direct_response"));
    let gone = Field::Endpoints { cluster: "nope" };
    assert_eq!(get_value(BASE, gone).unwrap_err(), "no cluster \"nope\"");
    assert_eq!(
        resolve_route(BASE, "api", None).unwrap(),
        "inbound".to_owned()
    );
}
