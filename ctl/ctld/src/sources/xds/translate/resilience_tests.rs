//! Circuit breakers, outlier detection and health checks of a cluster.

#![allow(clippy::unwrap_used)]

use envoy_types::pb::envoy::config::cluster::v3::circuit_breakers::Thresholds;
use envoy_types::pb::envoy::config::cluster::v3::{CircuitBreakers, Cluster, OutlierDetection};
use envoy_types::pb::envoy::config::core::v3::health_check::{HealthChecker, HttpHealthCheck};
use envoy_types::pb::envoy::config::core::v3::HealthCheck;
use envoy_types::pb::envoy::r#type::v3::Int64Range;
use envoy_types::pb::google::protobuf::{Duration, UInt32Value};

use super::super::clusters;

fn u32v(value: u32) -> Option<UInt32Value> {
    Some(UInt32Value { value })
}

fn secs(seconds: i64) -> Option<Duration> {
    Some(Duration { seconds, nanos: 0 })
}

#[test]
fn circuit_breakers_outlier_detection_and_health_checks() {
    let mut ignored = Vec::new();
    let istio = Thresholds {
        max_connections: u32v(u32::MAX),
        max_pending_requests: u32v(u32::MAX),
        max_requests: u32v(u32::MAX),
        max_retries: u32v(u32::MAX),
        track_remaining: true,
        ..Thresholds::default()
    };
    let cluster = |cb: CircuitBreakers| Cluster {
        name: "cb".into(),
        circuit_breakers: Some(cb),
        ..Cluster::default()
    };
    let t = clusters::cluster(
        cluster(CircuitBreakers {
            thresholds: vec![istio],
            ..Default::default()
        }),
        &mut ignored,
    )
    .unwrap();
    assert!(
        !t.table.contains_key("circuit_breaker"),
        "unlimited: {:?}",
        t.table
    );
    assert_eq!(ignored, ["field:track_remaining"]);
    let limited = Thresholds {
        max_requests: u32v(100),
        ..Thresholds::default()
    };
    let t = clusters::cluster(
        cluster(CircuitBreakers {
            thresholds: vec![limited],
            ..Default::default()
        }),
        &mut ignored,
    )
    .unwrap();
    assert_eq!(
        t.table["circuit_breaker"].to_string(),
        "{ max_connections = 1024, max_pending_requests = 1024, max_requests = 100 }"
    );
    let per_host = CircuitBreakers {
        per_host_thresholds: vec![Thresholds::default()],
        ..Default::default()
    };
    assert_eq!(
        clusters::cluster(cluster(per_host), &mut ignored).unwrap_err(),
        "cluster \"cb\".circuit_breakers.per_host_thresholds: not supported by ringside"
    );

    let outlier = |o: OutlierDetection| Cluster {
        name: "od".into(),
        outlier_detection: Some(o),
        ..Cluster::default()
    };
    let istio = OutlierDetection {
        consecutive_5xx: u32v(7),
        interval: secs(5),
        base_ejection_time: secs(15),
        max_ejection_percent: u32v(50),
        enforcing_success_rate: u32v(0),
        enforcing_consecutive_gateway_failure: u32v(100),
        consecutive_gateway_failure: u32v(3),
        ..OutlierDetection::default()
    };
    let t = clusters::cluster(outlier(istio), &mut ignored).unwrap();
    assert_eq!(
        t.table["outlier_detection"].to_string(),
        "{ base_ejection_ms = 15000, consecutive_5xx = 7, consecutive_gateway_failure = 3, interval_ms = 5000, max_ejection_ms = 300000, max_ejection_percent = 50 }"
    );
    assert_eq!(
        clusters::cluster(outlier(OutlierDetection::default()), &mut ignored).unwrap_err(),
        "cluster \"od\".outlier_detection.enforcing_success_rate: success-rate ejection (set enforcing_success_rate to 0) is not supported by ringside"
    );

    let checked = |h: HealthChecker| Cluster {
        name: "hc".into(),
        health_checks: vec![HealthCheck {
            interval: secs(2),
            timeout: secs(1),
            unhealthy_threshold: u32v(2),
            healthy_threshold: u32v(1),
            health_checker: Some(h),
            ..HealthCheck::default()
        }],
        ..Cluster::default()
    };
    let http = HttpHealthCheck {
        path: "/healthz".into(),
        expected_statuses: vec![Int64Range {
            start: 200,
            end: 202,
        }],
        ..HttpHealthCheck::default()
    };
    let t = clusters::cluster(checked(HealthChecker::HttpHealthCheck(http)), &mut ignored).unwrap();
    assert_eq!(
        t.table["health_check"].to_string(),
        "{ expected_statuses = [200, 201], healthy_threshold = 1, http_path = \"/healthz\", interval_ms = 2000, timeout_ms = 1000, unhealthy_threshold = 2 }"
    );
    let grpc = HealthChecker::GrpcHealthCheck(Default::default());
    assert_eq!(
        clusters::cluster(checked(grpc), &mut ignored).unwrap_err(),
        "cluster \"hc\".health_checks[0]: a health check other than http and tcp is not supported by ringside"
    );
}

#[test]
fn the_panic_threshold_is_envoys_unless_set_and_zero_turns_panic_mode_off() {
    use envoy_types::pb::envoy::config::cluster::v3::cluster::common_lb_config::{
        LocalityConfigSpecifier, LocalityWeightedLbConfig,
    };
    use envoy_types::pb::envoy::config::cluster::v3::cluster::CommonLbConfig;
    use envoy_types::pb::envoy::r#type::v3::Percent;
    let with = |lb: Option<CommonLbConfig>| {
        let c = Cluster {
            name: "c".into(),
            common_lb_config: lb,
            ..Cluster::default()
        };
        clusters::cluster(c, &mut Vec::new())
            .map(|t| t.table["panic_threshold_percent"].as_integer().unwrap())
    };
    let threshold = |value: f64| CommonLbConfig {
        healthy_panic_threshold: Some(Percent { value }),
        ..CommonLbConfig::default()
    };
    assert_eq!(with(None), Ok(50), "Envoy's default, written out");
    // Istio sends an empty one, and a threshold of 0 with outlier detection.
    assert_eq!(with(Some(CommonLbConfig::default())), Ok(50));
    assert_eq!(with(Some(threshold(0.0))), Ok(0));
    assert_eq!(with(Some(threshold(100.0))), Ok(100));
    assert_eq!(
        with(Some(threshold(33.5))),
        Err("cluster \"c\".common_lb_config.healthy_panic_threshold: 33.5 (ringside takes a whole percent from 0 to 100) is not supported by ringside".into())
    );
    let weighted = CommonLbConfig {
        locality_config_specifier: Some(LocalityConfigSpecifier::LocalityWeightedLbConfig(
            LocalityWeightedLbConfig::default(),
        )),
        ..CommonLbConfig::default()
    };
    // Locality-weighted balancing (Istio's locality load balancing, Envoy Gateway's
    // clusters): the localities' weights become zone_weights.
    let c = Cluster {
        name: "c".into(),
        common_lb_config: Some(weighted),
        ..Cluster::default()
    };
    let t = clusters::cluster(c, &mut Vec::new()).unwrap();
    assert!(t.locality_weighted);
    assert_eq!(t.table["panic_threshold_percent"].as_integer(), Some(50));
    let zone_aware = CommonLbConfig {
        locality_config_specifier: Some(LocalityConfigSpecifier::ZoneAwareLbConfig(
            Default::default(),
        )),
        ..CommonLbConfig::default()
    };
    assert_eq!(
        with(Some(zone_aware)),
        Err(
            "cluster \"c\".common_lb_config.locality_config_specifier: not supported by ringside"
                .into()
        )
    );
}
