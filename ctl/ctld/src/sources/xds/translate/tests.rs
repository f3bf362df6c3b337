//! Translation of single resources, and [`build`]: what each xDS field becomes, and that what
//! ringside cannot honour fails naming its field.

#![allow(clippy::unwrap_used)]

use envoy_types::pb::envoy::config::cluster::v3::cluster::{
    ClusterDiscoveryType, DiscoveryType, LbPolicy,
};
use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::address::Address as Addr;
use envoy_types::pb::envoy::config::core::v3::socket_address::PortSpecifier;
use envoy_types::pb::envoy::config::core::v3::{Address, HealthStatus, Locality, SocketAddress};
use envoy_types::pb::envoy::config::endpoint::v3::cluster_load_assignment::Policy;
use envoy_types::pb::envoy::config::endpoint::v3::lb_endpoint::HostIdentifier;
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints,
};
use envoy_types::pb::envoy::config::route::v3::redirect_action::{
    PathRewriteSpecifier, RedirectResponseCode,
};
use envoy_types::pb::envoy::config::route::v3::route::Action;
use envoy_types::pb::envoy::config::route::v3::route_action::ClusterSpecifier;
use envoy_types::pb::envoy::config::route::v3::route_match::PathSpecifier;
use envoy_types::pb::envoy::config::route::v3::weighted_cluster::ClusterWeight;
use envoy_types::pb::envoy::config::route::v3::{
    RedirectAction, RetryPolicy, Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost,
    WeightedCluster,
};
use envoy_types::pb::google::protobuf::{Duration, UInt32Value};

use super::*;

fn addr(ip: &str, port: u32) -> Option<Address> {
    Some(Address {
        address: Some(Addr::SocketAddress(SocketAddress {
            address: ip.into(),
            port_specifier: Some(PortSpecifier::PortValue(port)),
            ..SocketAddress::default()
        })),
    })
}

fn lb(ip: &str, weight: Option<u32>, status: HealthStatus) -> LbEndpoint {
    LbEndpoint {
        host_identifier: Some(HostIdentifier::Endpoint(Endpoint {
            address: addr(ip, 80),
            ..Endpoint::default()
        })),
        load_balancing_weight: weight.map(|value| UInt32Value { value }),
        health_status: status as i32,
        ..LbEndpoint::default()
    }
}

#[test]
fn endpoints_keep_weight_and_zone_and_mark_unhealthy_ones_down() {
    let cla = ClusterLoadAssignment {
        cluster_name: "a".into(),
        endpoints: vec![LocalityLbEndpoints {
            locality: Some(Locality {
                zone: "z1".into(),
                ..Locality::default()
            }),
            lb_endpoints: vec![
                lb("10.0.0.1", Some(3), HealthStatus::Healthy),
                lb("10.0.0.2", None, HealthStatus::Unhealthy),
                lb("10.0.0.3", None, HealthStatus::Draining),
                lb("::1", None, HealthStatus::Unknown),
            ],
            ..LocalityLbEndpoints::default()
        }],
        ..ClusterLoadAssignment::default()
    };
    let eps = endpoints::load_assignment(cla, "eds").unwrap();
    assert_eq!(eps.overprovisioning, None);
    let shown: Vec<String> = eps.endpoints.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            r#"{ address = "10.0.0.1:80", weight = 3, zone = "z1" }"#,
            r#"{ address = "10.0.0.2:80", down = true, zone = "z1" }"#,
            r#"{ address = "10.0.0.3:80", down = true, zone = "z1" }"#,
            r#"{ address = "[::1]:80", zone = "z1" }"#
        ]
    );
}

#[test]
fn locality_weights_become_zone_weights_for_a_cluster_that_weighs_localities() {
    let group = |zone: &str, weight: Option<u32>, priority: u32, ip: &str| LocalityLbEndpoints {
        locality: Some(Locality {
            zone: zone.into(),
            ..Locality::default()
        }),
        lb_endpoints: vec![lb(ip, None, HealthStatus::Healthy)],
        load_balancing_weight: weight.map(|value| UInt32Value { value }),
        priority,
        ..LocalityLbEndpoints::default()
    };
    let cla = |groups: Vec<LocalityLbEndpoints>| ClusterLoadAssignment {
        cluster_name: "a".into(),
        endpoints: groups,
        ..ClusterLoadAssignment::default()
    };
    let filled = |a: &endpoints::Assignment, weighted: bool| {
        let mut t = Table::new();
        a.fill(&mut t, weighted, "eds")
            .map(|()| t.get("zone_weights").map(ToString::to_string))
    };
    // Istio's failover with locality weights: zones weighed within each level.
    let a = endpoints::load_assignment(
        cla(vec![
            group("z1", Some(3), 0, "10.0.0.1"),
            group("z2", Some(1), 0, "10.0.0.2"),
            group("z3", Some(2), 1, "10.0.0.3"),
        ]),
        "eds",
    )
    .unwrap();
    assert_eq!(
        filled(&a, true),
        Ok(Some("{ z1 = 3, z2 = 1, z3 = 2 }".into()))
    );
    // A cluster that does not weigh localities ignores the weights, as Envoy does.
    assert_eq!(filled(&a, false), Ok(None));
    // One locality: its weight picks nothing.
    let one =
        endpoints::load_assignment(cla(vec![group("z1", Some(3), 0, "10.0.0.1")]), "eds").unwrap();
    assert_eq!(filled(&one, true), Ok(None));
    // ringside weighs zones: a locality needs one, and a zone one weight.
    let unnamed = endpoints::load_assignment(
        cla(vec![
            group("", Some(1), 0, "10.0.0.1"),
            group("z2", Some(1), 0, "10.0.0.2"),
        ]),
        "eds",
    )
    .unwrap();
    assert_eq!(
        filled(&unnamed, true),
        Err("eds.endpoints[0].locality: a weighted locality without a zone (ringside weighs zones) is not supported by ringside".into())
    );
    let twice = endpoints::load_assignment(
        cla(vec![
            group("z1", Some(1), 0, "10.0.0.1"),
            group("z1", Some(2), 0, "10.0.0.2"),
        ]),
        "eds",
    )
    .unwrap();
    assert_eq!(
        filled(&twice, true),
        Err("eds.endpoints[1].load_balancing_weight: a weight for zone \"z1\" other than endpoints[0]'s (ringside weighs zones, not regions or sub-zones) is not supported by ringside".into())
    );
}

#[test]
fn priorities_and_the_overprovisioning_factor_become_levels() {
    let group = |priority: u32, zone: &str, ip: &str| LocalityLbEndpoints {
        locality: Some(Locality {
            zone: zone.into(),
            ..Locality::default()
        }),
        lb_endpoints: vec![lb(ip, None, HealthStatus::Healthy)],
        priority,
        ..LocalityLbEndpoints::default()
    };
    let cla = |factor: Option<u32>, priorities: [u32; 3]| ClusterLoadAssignment {
        cluster_name: "a".into(),
        endpoints: vec![
            group(priorities[0], "z1", "10.0.0.1"),
            group(priorities[1], "z2", "10.0.0.2"),
            group(priorities[2], "z3", "10.0.0.3"),
        ],
        policy: Some(Policy {
            overprovisioning_factor: factor.map(|value| UInt32Value { value }),
            ..Policy::default()
        }),
        ..ClusterLoadAssignment::default()
    };
    // Istio's locality failover: the proxy's zone first, then its region, then the rest.
    let a = endpoints::load_assignment(cla(Some(200), [0, 1, 2]), "eds").unwrap();
    let shown: Vec<String> = a.endpoints.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            r#"{ address = "10.0.0.1:80", zone = "z1" }"#,
            r#"{ address = "10.0.0.2:80", priority = 1, zone = "z2" }"#,
            r#"{ address = "10.0.0.3:80", priority = 2, zone = "z3" }"#,
        ]
    );
    assert_eq!(a.overprovisioning, Some(200));
    let mut table = Table::new();
    a.fill(&mut table, false, "eds").unwrap();
    assert_eq!(table["overprovisioning_percent"].as_integer(), Some(200));
    // Envoy's default factor says nothing.
    let a = endpoints::load_assignment(cla(Some(140), [0, 0, 1]), "eds").unwrap();
    assert_eq!(a.overprovisioning, None);
    assert_eq!(
        endpoints::load_assignment(cla(Some(99), [0, 0, 0]), "cla \"a\"").unwrap_err(),
        "cla \"a\".policy.overprovisioning_factor: 99 (ringside takes 100 to 1000) is not supported by ringside"
    );
    assert_eq!(
        endpoints::load_assignment(cla(None, [0, 256, 0]), "cla \"a\"").unwrap_err(),
        "cla \"a\".endpoints[1].priority: priority 256 (ringside's levels are 0 to 255) is not supported by ringside"
    );
    // What ringside's validation makes of it: three levels, the factor.
    table.insert("name".into(), "a".into());
    let mut doc = Table::new();
    doc.insert("clusters".into(), vec![toml::Value::Table(table)].into());
    let text = format!(
        "[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n{}",
        toml::to_string(&doc).unwrap()
    );
    let config = ringside_config::parse(&text).unwrap();
    let c = &config.clusters[0];
    assert!(c.has_priorities());
    assert_eq!(c.overprovisioning_percent, 200);
}

#[test]
fn clusters_by_discovery_type_and_lb_policy() {
    let mut ignored = Vec::new();
    let eds = Cluster {
        name: "outbound|80||a.svc".into(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32)),
        lb_policy: LbPolicy::LeastRequest as i32,
        connect_timeout: Some(Duration {
            seconds: 2,
            nanos: 0,
        }),
        ..Cluster::default()
    };
    let t = clusters::cluster(eds, &mut ignored).unwrap();
    assert_eq!(t.name, "outbound_80__a.svc");
    assert_eq!(t.eds.as_deref(), Some("outbound|80||a.svc"));
    assert_eq!(
        toml::to_string(&t.table).unwrap(),
        "connect_timeout_ms = 2000\nlb = \"least_request\"\nname = \"outbound_80__a.svc\"\npanic_threshold_percent = 50\n"
    );
    let dns = Cluster {
        name: "ext".into(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::LogicalDns as i32)),
        ..Cluster::default()
    };
    assert_eq!(
        clusters::cluster(dns, &mut ignored).unwrap().table["dns"].as_str(),
        Some("logical")
    );
    let od = Cluster {
        name: "passthrough".into(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(
            DiscoveryType::OriginalDst as i32,
        )),
        lb_policy: LbPolicy::ClusterProvided as i32,
        ..Cluster::default()
    };
    assert_eq!(
        clusters::cluster(od, &mut ignored).unwrap().table["kind"].as_str(),
        Some("original_dst")
    );
    let ring = Cluster {
        name: "r".into(),
        lb_policy: LbPolicy::RingHash as i32,
        ..Cluster::default()
    };
    assert!(clusters::cluster(ring, &mut ignored).unwrap().consistent);
}

fn route(m: PathSpecifier, action: Action) -> Route {
    Route {
        r#match: Some(RouteMatch {
            path_specifier: Some(m),
            ..RouteMatch::default()
        }),
        action: Some(action),
        ..Route::default()
    }
}

fn to_cluster(c: &str) -> RouteAction {
    RouteAction {
        cluster_specifier: Some(ClusterSpecifier::Cluster(c.into())),
        timeout: Some(Duration::default()),
        ..RouteAction::default()
    }
}

#[test]
fn virtual_hosts_become_hosts_in_envoys_order() {
    let vh = |name: &str, domains: &[&str], c: &str| VirtualHost {
        name: name.into(),
        domains: domains.iter().map(|d| d.to_string()).collect(),
        routes: vec![route(
            PathSpecifier::Prefix("/".into()),
            Action::Route(to_cluster(c)),
        )],
        ..VirtualHost::default()
    };
    let rc = RouteConfiguration {
        name: "r1".into(),
        virtual_hosts: vec![
            vh("any", &["*"], "d"),
            vh("wild", &["*.b.example"], "c"),
            vh("wilder", &["*.example"], "c"),
            vh("exact", &["a.example", "a.example:80"], "a"),
            // A route written once per domain: the copies' names are made unique.
            vh("two", &["x.example", "y.example"], "a"),
        ],
        ..RouteConfiguration::default()
    };
    let t = routes::route_config(rc, &mut Vec::new()).unwrap();
    let hosts: Vec<String> = t
        .routes
        .iter()
        .map(|r| {
            let host = r
                .get("match")
                .and_then(|m| m.get("host"))
                .and_then(|h| h.as_str());
            format!("{} {}", r["name"].as_str().unwrap(), host.unwrap_or("*"))
        })
        .collect();
    assert_eq!(
        hosts,
        [
            "exact.0 a.example",
            "two.0 x.example",
            "two.0.2 y.example",
            "wild.0 *.b.example",
            "wilder.0 *.example",
            "any.0 *"
        ]
    );
    assert_eq!(t.clusters, ["d", "c", "c", "a", "a"]);
    let bad = RouteConfiguration {
        name: "r2".into(),
        virtual_hosts: vec![vh("v", &["a.*"], "a")],
        ..RouteConfiguration::default()
    };
    assert_eq!(
        routes::route_config(bad, &mut Vec::new()).unwrap_err(),
        "route_config \"r2\": virtual_hosts[0].domains[0]: domain \"a.*\" is not supported by ringside"
    );
}

#[test]
fn route_actions() {
    let weighted = RouteAction {
        cluster_specifier: Some(ClusterSpecifier::WeightedClusters(WeightedCluster {
            clusters: vec![
                ClusterWeight {
                    name: "a".into(),
                    weight: Some(UInt32Value { value: 90 }),
                    ..ClusterWeight::default()
                },
                ClusterWeight {
                    name: "b".into(),
                    weight: Some(UInt32Value { value: 10 }),
                    ..ClusterWeight::default()
                },
            ],
            ..WeightedCluster::default()
        })),
        retry_policy: Some(RetryPolicy {
            retry_on: "5xx,reset".into(),
            num_retries: Some(UInt32Value { value: 3 }),
            per_try_timeout: Some(Duration {
                seconds: 0,
                nanos: 250_000_000,
            }),
            ..RetryPolicy::default()
        }),
        prefix_rewrite: "/v2/".into(),
        ..RouteAction::default()
    };
    let rc = RouteConfiguration {
        name: "r".into(),
        virtual_hosts: vec![VirtualHost {
            name: "v".into(),
            domains: vec!["*".into()],
            routes: vec![
                route(
                    PathSpecifier::Prefix("/v1/".into()),
                    Action::Route(weighted),
                ),
                route(
                    PathSpecifier::Path("/old".into()),
                    Action::Redirect(RedirectAction {
                        path_rewrite_specifier: Some(PathRewriteSpecifier::PathRedirect(
                            "/new".into(),
                        )),
                        response_code: RedirectResponseCode::PermanentRedirect as i32,
                        ..RedirectAction::default()
                    }),
                ),
            ],
            ..VirtualHost::default()
        }],
        ..RouteConfiguration::default()
    };
    let t = routes::route_config(rc, &mut Vec::new()).unwrap();
    let text = toml::to_string(&t.routes[0]).unwrap();
    for want in [
        "timeout_ms = 15000",
        "[[weighted]]\ncluster = \"a\"\nweight = 90\n\n[[weighted]]\ncluster = \"b\"\nweight = 10",
        "[match]\npath_prefix = \"/v1/\"",
        "[rewrite]\nprefix = \"/v2/\"",
        "attempts = 3",
        "on = [\"5xx\", \"reset\"]",
        "per_try_timeout_ms = 250",
    ] {
        assert!(text.contains(want), "{want:?} in\n{text}");
    }
    let text = toml::to_string(&t.routes[1]).unwrap();
    assert!(
        text.contains("[redirect]\npath = \"/new\"\nstatus = 308"),
        "{text}"
    );
}

#[test]
fn a_template_needs_no_listener_but_must_otherwise_validate() {
    use crate::sources::xds::template_errors;
    assert!(template_errors("[proxy]\nworkers = 1\n").is_empty());
    assert!(template_errors("").is_empty());
    let with_bad_listener = "[[listeners]]\nname = \"x y\"\nbind = \"nowhere\"\n";
    assert!(
        template_errors(with_bad_listener).is_empty(),
        "its listeners are xDS's"
    );
    assert_eq!(
        template_errors("[proxy]\nworkers = 0\n"),
        ["proxy.workers: must be from 1 to 1024, got 0"]
    );
}

#[test]
fn compose_keeps_the_templates_process_settings_only() {
    let template =
        "[proxy]\nworkers = 2\n\n[[listeners]]\nname = \"old\"\nbind = \"127.0.0.1:1\"\n";
    let text = compose(Some(template), "[[clusters]]\nname = \"a\"\n");
    assert_eq!(text, "[proxy]\nworkers = 2\n[[clusters]]\nname = \"a\"\n");
    assert_eq!(compose(None, "x"), "x");
}
