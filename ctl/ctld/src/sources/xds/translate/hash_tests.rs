//! Consistent hashing: RING_HASH and MAGLEV clusters, the routes' hash policies, and the one
//! `hash_key` per cluster `build` writes from them.

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::cluster::v3::cluster::{
    ClusterDiscoveryType, DiscoveryType, LbConfig, LbPolicy, RingHashLbConfig,
};
use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::route::v3::route::Action;
use envoy_types::pb::envoy::config::route::v3::route_action::hash_policy::{
    ConnectionProperties, Cookie, Header, PolicySpecifier, QueryParameter,
};
use envoy_types::pb::envoy::config::route::v3::route_action::ClusterSpecifier;
use envoy_types::pb::envoy::config::route::v3::route_action::HashPolicy;
use envoy_types::pb::envoy::config::route::v3::{
    Route, RouteAction, RouteConfiguration, VirtualHost,
};
use envoy_types::pb::google::protobuf::{Duration, UInt64Value};

use super::chains_tests::{http, receiver, virtual_outbound};
use super::*;

fn cluster(name: &str, lb: LbPolicy, kind: DiscoveryType) -> Cluster {
    Cluster {
        name: name.into(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(kind as i32)),
        lb_policy: lb as i32,
        ..Cluster::default()
    }
}

fn policy(p: PolicySpecifier) -> HashPolicy {
    HashPolicy {
        policy_specifier: Some(p),
        ..HashPolicy::default()
    }
}

fn header(name: &str) -> HashPolicy {
    policy(PolicySpecifier::Header(Header {
        header_name: name.into(),
        ..Header::default()
    }))
}

/// Route configuration `name` with one route per `(prefix, cluster, hash policies)`.
fn routes(name: &str, rs: Vec<(&str, &str, Vec<HashPolicy>)>) -> RouteConfiguration {
    RouteConfiguration {
        name: name.into(),
        virtual_hosts: vec![VirtualHost {
            name: "v".into(),
            domains: vec!["*".into()],
            routes: rs
                .into_iter()
                .map(|(prefix, c, hash_policy)| Route {
                    r#match: Some(envoy_types::pb::envoy::config::route::v3::RouteMatch {
                        path_specifier: Some(
                            envoy_types::pb::envoy::config::route::v3::route_match::PathSpecifier::Prefix(
                                prefix.into(),
                            ),
                        ),
                        ..Default::default()
                    }),
                    action: Some(Action::Route(RouteAction {
                        cluster_specifier: Some(ClusterSpecifier::Cluster(c.into())),
                        hash_policy,
                        ..RouteAction::default()
                    })),
                    ..Route::default()
                })
                .collect(),
            ..VirtualHost::default()
        }],
        ..RouteConfiguration::default()
    }
}

/// What `build` makes of Istio's outbound listener for port 8080 (RDS `8080`), the route
/// configuration and the clusters: the `[[clusters]]` tables by name.
fn built(
    rc: RouteConfiguration,
    cs: Vec<Cluster>,
) -> Result<BTreeMap<String, toml::Table>, String> {
    let mut t = Translated::default();
    for l in [
        virtual_outbound("virtualOutbound"),
        receiver(
            "0.0.0.0_8080",
            "0.0.0.0",
            8080,
            vec![http("", "8080", None)],
        ),
    ] {
        t.listeners
            .insert(l.name.clone(), listeners::listener(l, &mut Vec::new())?);
    }
    for c in [
        cluster(
            "BlackHoleCluster",
            LbPolicy::RoundRobin,
            DiscoveryType::Static,
        ),
        cluster(
            "PassthroughCluster",
            LbPolicy::ClusterProvided,
            DiscoveryType::OriginalDst,
        ),
    ]
    .into_iter()
    .chain(cs)
    {
        t.clusters
            .insert(c.name.clone(), clusters::cluster(c, &mut Vec::new())?);
    }
    t.routes
        .insert(rc.name.clone(), routes::route_config(rc, &mut Vec::new())?);
    let Built::Ready(text) = build(&t)? else {
        panic!("not ready")
    };
    let doc: toml::Table = text.parse().unwrap();
    let clusters = doc["clusters"].as_array().unwrap();
    Ok(clusters
        .iter()
        .map(|c| {
            let c = c.as_table().unwrap().clone();
            (c["name"].as_str().unwrap().to_owned(), c)
        })
        .collect())
}

fn lb(c: &toml::Table) -> (Option<&str>, Option<&str>) {
    (
        c.get("lb").and_then(|v| v.as_str()),
        c.get("hash_key").and_then(|v| v.as_str()),
    )
}

#[test]
fn ring_hash_and_maglev_hash_by_the_key_their_routes_give() {
    let mut ring = cluster("sticky", LbPolicy::RingHash, DiscoveryType::Static);
    // The ring's size is Envoy's own: ringside's ring is made its way.
    ring.lb_config = Some(LbConfig::RingHashLbConfig(RingHashLbConfig {
        minimum_ring_size: Some(UInt64Value { value: 2048 }),
        ..RingHashLbConfig::default()
    }));
    let rc = routes(
        "8080",
        vec![
            ("/a", "sticky", vec![header("X-User")]),
            ("/b", "sticky", vec![header("x-user")]),
            // No policy: hashes by the cluster's key too.
            ("/c", "sticky", vec![]),
            (
                "/d",
                "by-ip",
                vec![policy(PolicySpecifier::ConnectionProperties(
                    ConnectionProperties { source_ip: true },
                ))],
            ),
            (
                "/e",
                "by-cookie",
                vec![policy(PolicySpecifier::Cookie(Cookie {
                    name: "session".into(),
                    ..Cookie::default()
                }))],
            ),
        ],
    );
    let cs = vec![
        ring,
        cluster("by-ip", LbPolicy::Maglev, DiscoveryType::Static),
        cluster("by-cookie", LbPolicy::RingHash, DiscoveryType::Static),
        // No route hashes it: Envoy picks at random.
        cluster("unhashed", LbPolicy::RingHash, DiscoveryType::Static),
    ];
    let out = built(rc, cs).unwrap();
    assert_eq!(
        lb(&out["sticky"]),
        (Some("ring_hash"), Some("header:x-user"))
    );
    assert_eq!(lb(&out["by-ip"]), (Some("ring_hash"), Some("source_ip")));
    assert_eq!(
        lb(&out["by-cookie"]),
        (Some("ring_hash"), Some("cookie:session"))
    );
    assert_eq!(lb(&out["unhashed"]), (Some("random"), None));
}

#[test]
fn routes_hashing_one_cluster_by_different_keys_are_refused() {
    let rc = routes(
        "8080",
        vec![
            ("/a", "sticky", vec![header("x-user")]),
            ("/b", "sticky", vec![header("x-tenant")]),
        ],
    );
    let cs = vec![cluster("sticky", LbPolicy::RingHash, DiscoveryType::Static)];
    assert_eq!(
        built(rc, cs).unwrap_err(),
        "cluster \"sticky\": its routes hash it differently (route_config \"8080\": virtual_hosts[0].routes[0].route: header:x-user; route_config \"8080\": virtual_hosts[0].routes[1].route: header:x-tenant), and ringside's hash key is the cluster's"
    );
}

fn cookie(name: &str, ttl_s: Option<i64>, path: &str) -> HashPolicy {
    policy(PolicySpecifier::Cookie(Cookie {
        name: name.into(),
        ttl: ttl_s.map(|seconds| Duration { seconds, nanos: 0 }),
        path: path.into(),
        ..Cookie::default()
    }))
}

#[test]
fn a_cookie_with_a_ttl_is_made_for_a_client_without_it() {
    // Istio's consistentHash.httpCookie { name, path, ttl }.
    let rc = routes(
        "8080",
        vec![
            ("/a", "sticky", vec![cookie("session", Some(3600), "/")]),
            ("/b", "session", vec![cookie("s", Some(0), "")]),
        ],
    );
    let cs = vec![
        cluster("sticky", LbPolicy::RingHash, DiscoveryType::Static),
        cluster("session", LbPolicy::Maglev, DiscoveryType::Static),
    ];
    let out = built(rc, cs).unwrap();
    assert_eq!(
        lb(&out["sticky"]),
        (Some("ring_hash"), Some("cookie:session"))
    );
    assert_eq!(
        out["sticky"]["hash_cookie"].to_string(),
        "{ path = \"/\", ttl_s = 3600 }"
    );
    assert_eq!(out["session"]["hash_cookie"].to_string(), "{ ttl_s = 0 }");
    // One route makes the cookie, another only reads it: not the same hashing.
    let rc = routes(
        "8080",
        vec![
            ("/a", "sticky", vec![cookie("session", Some(60), "/")]),
            ("/b", "sticky", vec![cookie("session", None, "")]),
        ],
    );
    let cs = vec![cluster("sticky", LbPolicy::RingHash, DiscoveryType::Static)];
    assert_eq!(
        built(rc, cs).unwrap_err(),
        "cluster \"sticky\": its routes hash it differently (route_config \"8080\": virtual_hosts[0].routes[0].route: cookie:session made with { path = \"/\", ttl_s = 60 }; route_config \"8080\": virtual_hosts[0].routes[1].route: cookie:session), and ringside's hash key is the cluster's"
    );
}

#[test]
fn hash_policies_ringside_cannot_honour_are_refused_by_field() {
    let nack = |ps: Vec<HashPolicy>| {
        routes::route_config(routes("r", vec![("/", "c", ps)]), &mut Vec::new()).unwrap_err()
    };
    let at = "route_config \"r\": virtual_hosts[0].routes[0].route.hash_policy";
    let query = policy(PolicySpecifier::QueryParameter(QueryParameter {
        name: "u".into(),
    }));
    assert_eq!(
        nack(vec![query]),
        format!(
            "{at}[0].query_parameter: hashing by a query parameter is not supported by ringside"
        )
    );
    assert_eq!(
        nack(vec![header("a"), header("b")]),
        format!("{at}: more than one hash policy (ringside hashes by one key) is not supported by ringside")
    );
    assert_eq!(
        nack(vec![HashPolicy::default()]),
        format!("{at}[0]: a hash policy with nothing to hash")
    );
    // ORIGINAL_DST connects where the client was going: no ring to hash on.
    let od = cluster("od", LbPolicy::RingHash, DiscoveryType::OriginalDst);
    assert_eq!(
        clusters::cluster(od, &mut Vec::new()).unwrap_err(),
        "cluster \"od\".lb_policy: lb_policy RING_HASH is not supported by ringside"
    );
}
