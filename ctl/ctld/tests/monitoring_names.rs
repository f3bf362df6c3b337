//! deploy/monitoring names only metrics that exist: every `ringside_…` name in the alert
//! rules, their tests and the Grafana dashboard is one the proxy's admin endpoint
//! (`proxy/src/admin/prometheus.rs`) or ctld's `--metrics` (`ctl/ctld/src/api/metrics.rs`)
//! exports. (The queries' syntax and the rules' behaviour are checked by promtool:
//! `deploy/monitoring/check`.)

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;

fn read(rel: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Every `ringside_…` token, without a histogram's `_bucket`/`_sum`/`_count`.
fn names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("ringside_") {
        let tail = rest.get(i..).unwrap_or_default();
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = tail.get(..end).unwrap_or_default();
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        out.insert(base.to_owned());
        rest = tail.get(end..).unwrap_or_default();
    }
    out
}

#[test]
fn every_metric_deploy_monitoring_names_is_exported() {
    let proxy = read("proxy/src/admin/prometheus.rs");
    let ctld = read("ctl/ctld/src/api/metrics.rs");
    let exported = |n: &str| {
        proxy.contains(&format!("\"{n}\""))
            || ctld.contains(&format!("\"{n}\""))
            || ctld.contains(&format!("{n}{{{{"))
    };
    let dashboard = read("deploy/monitoring/grafana-dashboard.json");
    let _: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    let mut seen = 0;
    for file in [
        "deploy/monitoring/alerts.yml",
        "deploy/monitoring/alerts_test.yml",
        "deploy/monitoring/grafana-dashboard.json",
    ] {
        for n in names(&read(file)) {
            assert!(exported(&n), "{file} names {n}, which nothing exports");
            seen += 1;
        }
    }
    assert!(seen > 20, "only {seen} names found");
    // And the check itself catches a name nobody exports.
    assert!(!exported("ringside_no_such_metric_total"));
    assert_eq!(
        names("rate(ringside_a_bucket{x=\"1\"}[5m]) / ringside_b"),
        ["ringside_a".to_owned(), "ringside_b".to_owned()].into()
    );
}
