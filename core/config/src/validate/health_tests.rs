//! `outlier_detection` and `health_check`: defaults, explicit values, every error with its path.

use std::time::Duration;

use super::tests::errors;
use crate::model::{HealthCheckKind, OutlierDetection};
use crate::parse;

const CLUSTER: &str = "[[clusters]]\nname = \"c\"\nendpoints = [ \"127.0.0.1:1\" ]\n";

fn cluster(extra: &str) -> crate::Cluster {
    let text = super::tests::with_listener(&format!("{CLUSTER}{extra}"));
    match parse(&text) {
        Ok(mut c) => c.clusters.remove(0),
        Err(e) => panic!("expected a valid config, got:\n{e}\n{text}"),
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn without_outlier_detection_a_failed_connect_ejects_for_fail_timeout() {
    let c = cluster("");
    assert_eq!(c.outlier, OutlierDetection::from_fail_timeout(ms(10_000)));
    assert_eq!(c.outlier.consecutive_connect_failure, Some(1));
    assert_eq!(
        (
            c.outlier.consecutive_5xx,
            c.outlier.consecutive_gateway_failure
        ),
        (None, None)
    );
    assert_eq!(c.outlier.max_ejection_percent, 100);
    assert_eq!(c.health_check, None);
    let c = cluster("fail_timeout_ms = 250\n");
    assert_eq!(
        (c.outlier.base_ejection, c.outlier.max_ejection),
        (ms(250), ms(250))
    );
}

#[test]
fn outlier_detection_defaults_are_envoys() {
    let c = cluster("[clusters.outlier_detection]\n");
    let o = c.outlier;
    assert_eq!(o.consecutive_5xx, Some(5));
    assert_eq!(o.consecutive_gateway_failure, Some(5));
    assert_eq!(o.consecutive_connect_failure, None);
    assert_eq!(o.interval, ms(10_000));
    assert_eq!((o.base_ejection, o.max_ejection), (ms(30_000), ms(300_000)));
    assert_eq!(o.max_ejection_percent, 10);
    // A base longer than the default maximum raises the default maximum.
    let o = cluster("[clusters.outlier_detection]\nbase_ejection_ms = 400000\n").outlier;
    assert_eq!(o.max_ejection, ms(400_000));
}

#[test]
fn the_issues_sample_is_taken_as_written() {
    let c = cluster(
        r#"
[clusters.outlier_detection]
consecutive_5xx = 5
consecutive_gateway_failure = 0
interval_ms = 10000
base_ejection_ms = 30000
max_ejection_ms = 300000
max_ejection_percent = 50
[clusters.health_check]
http_path = "/healthz"
interval_ms = 5000
timeout_ms = 1000
unhealthy_threshold = 3
healthy_threshold = 2
expected_statuses = [ 200, 204 ]
"#,
    );
    assert_eq!(
        c.outlier.consecutive_gateway_failure, None,
        "0 turns it off"
    );
    assert_eq!(c.outlier.max_ejection_percent, 50);
    let h = c.health_check.unwrap();
    assert_eq!(
        h.kind,
        HealthCheckKind::Http {
            path: "/healthz".into(),
            expected: vec![200, 204]
        }
    );
    assert_eq!((h.interval, h.timeout), (ms(5000), ms(1000)));
    assert_eq!((h.unhealthy_threshold, h.healthy_threshold), (3, 2));
    let h = cluster("[clusters.health_check]\ntcp = true\ninterval_ms = 100\n")
        .health_check
        .unwrap();
    assert_eq!(h.kind, HealthCheckKind::Tcp);
    assert_eq!(
        h.timeout,
        ms(50),
        "the default timeout fits in a short interval"
    );
    assert_eq!((h.unhealthy_threshold, h.healthy_threshold), (3, 2));
}

#[test]
fn every_out_of_range_value_is_named() {
    let text = format!(
        "{CLUSTER}fail_timeout_ms = 5\n[clusters.outlier_detection]\nconsecutive_5xx = 1000001\n\
         interval_ms = 0\nbase_ejection_ms = 500\nmax_ejection_ms = 100\nmax_ejection_percent = 101\n"
    );
    assert_eq!(
        errors(&text),
        [
            "clusters[0].outlier_detection: cannot be set together with \"fail_timeout_ms\" (deprecated: outlier_detection replaces it)",
            "clusters[0].outlier_detection.consecutive_5xx: must be from 0 to 1000000, got 1000001",
            "clusters[0].outlier_detection.interval_ms: must be greater than 0",
            "clusters[0].outlier_detection.max_ejection_ms: must be at least base_ejection_ms (500), got 100",
            "clusters[0].outlier_detection.max_ejection_percent: must be from 0 to 100, got 101",
        ]
    );
    let text = format!(
        "{CLUSTER}[clusters.health_check]\nhttp_path = \"healthz\"\ninterval_ms = 100\ntimeout_ms = 100\n\
         unhealthy_threshold = 0\nhealthy_threshold = 0\nexpected_statuses = [ 200, 99, 600 ]\n"
    );
    assert_eq!(
        errors(&text),
        [
            "clusters[0].health_check.http_path: invalid path \"healthz\": it starts with / and holds visible ASCII only",
            "clusters[0].health_check.expected_statuses[1]: must be from 100 to 599, got 99",
            "clusters[0].health_check.expected_statuses[2]: must be from 100 to 599, got 600",
            "clusters[0].health_check.timeout_ms: must be less than interval_ms (100), got 100",
            "clusters[0].health_check.unhealthy_threshold: must be from 1 to 1000000, got 0",
            "clusters[0].health_check.healthy_threshold: must be from 1 to 1000000, got 0",
        ]
    );
}

#[test]
fn a_check_is_exactly_one_of_http_and_tcp() {
    let hc = |body: &str| errors(&format!("{CLUSTER}[clusters.health_check]\n{body}"));
    assert_eq!(
        hc("tcp = true\nhttp_path = \"/h\"\n"),
        ["clusters[0].health_check: set one of \"http_path\" and \"tcp = true\", not both"]
    );
    assert_eq!(
        hc("interval_ms = 100\n"),
        ["clusters[0].health_check: missing \"http_path\" or \"tcp = true\": say what the check is"]
    );
    assert_eq!(
        hc("tcp = false\n"),
        ["clusters[0].health_check: missing \"http_path\" or \"tcp = true\": say what the check is"]
    );
    assert_eq!(
        hc("tcp = true\nexpected_statuses = [ 200 ]\n"),
        ["clusters[0].health_check.expected_statuses: only valid with http_path (a tcp check has no status)"]
    );
    assert_eq!(
        hc("http_path = \"/h\"\nexpected_statuses = []\n"),
        ["clusters[0].health_check.expected_statuses: must list at least one status"]
    );
    let typo = hc("http_path = \"/h\"\ntypo = 1\n");
    assert!(
        typo.len() == 1 && typo[0].starts_with("clusters[0].health_check.typo: unknown field"),
        "{typo:?}"
    );
    assert_eq!(
        errors(&format!(
            "{CLUSTER}protocol = \"http2\"\n[clusters.health_check]\nhttp_path = \"/h\"\n"
        )),
        ["clusters[0].health_check.http_path: HTTP checks speak HTTP/1.1, which a protocol = \"http2\" cluster may not serve: use tcp = true"]
    );
}

#[test]
fn health_settings_are_part_of_the_fingerprint() {
    let fp = |extra: &str| cluster(extra).fingerprint;
    let base = fp("");
    let changed = [
        "[clusters.outlier_detection]\n",
        "[clusters.outlier_detection]\nmax_ejection_percent = 50\n",
        "[clusters.health_check]\ntcp = true\n",
        "[clusters.health_check]\nhttp_path = \"/a\"\n",
    ];
    let mut seen = vec![base];
    for extra in changed {
        let f = fp(extra);
        assert!(!seen.contains(&f), "fingerprint not distinct for:\n{extra}");
        seen.push(f);
    }
}
