//! A cluster's `circuit_breakers`, `outlier_detection`, `health_checks` and
//! `common_lb_config.healthy_panic_threshold` → ringside's `circuit_breaker`,
//! `outlier_detection`, `health_check` and `panic_threshold_percent`. Envoy's defaults are written
//! out where Envoy's and ringside's differ (a threshold left unset is 1024, gateway-failure
//! ejection is off unless enforced); what ringside has no equivalent of is NACKed by field.

use std::mem::take;

use envoy_types::pb::envoy::config::cluster::v3::circuit_breakers::Thresholds;
use envoy_types::pb::envoy::config::cluster::v3::cluster::common_lb_config::LocalityConfigSpecifier;
use envoy_types::pb::envoy::config::cluster::v3::cluster::CommonLbConfig;
use envoy_types::pb::envoy::config::cluster::v3::{CircuitBreakers, OutlierDetection};
use envoy_types::pb::envoy::config::core::v3::health_check::HealthChecker;
use envoy_types::pb::envoy::config::core::v3::{HealthCheck, RequestMethod, RoutingPriority};
use envoy_types::pb::google::protobuf::{Duration, UInt32Value};
use toml::Value;

use super::{int, ms, Table};
use crate::sources::xds::ignore;
use crate::sources::xds::nack::{leftover, unsupported, Res};

/// Envoy's limit for a threshold left unset.
const ENVOY_THRESHOLD: u32 = 1024;

fn value(v: Option<UInt32Value>, default: u32) -> u32 {
    v.map_or(default, |v| v.value)
}

fn millis(d: Option<Duration>, default: i64) -> i64 {
    d.map_or(default, |d| ms(&d))
}

/// `None`: no limit at all (every threshold is the maximum, as Istio writes "unlimited").
pub fn circuit_breaker(
    mut cb: CircuitBreakers,
    at: &str,
    ignored: &mut Vec<String>,
) -> Res<Option<Table>> {
    let mut out = None;
    for (i, t) in take(&mut cb.thresholds).into_iter().enumerate() {
        let tat = format!("{at}.thresholds[{i}]");
        if t.priority == RoutingPriority::High as i32 {
            // Only routes of priority HIGH use these, and a route's priority is NACKed.
            ignore::fields(ignored, &[("circuit_breakers.high_priority", true)]);
            continue;
        }
        out = Some(thresholds(t, &tat, ignored)?);
    }
    leftover(&cb, at)?;
    Ok(out.filter(|t: &Table| !t.is_empty()))
}

fn thresholds(mut t: Thresholds, at: &str, ignored: &mut Vec<String>) -> Res<Table> {
    let mut out = Table::new();
    let limits = [
        ("max_connections", t.max_connections.take()),
        ("max_pending_requests", t.max_pending_requests.take()),
        ("max_requests", t.max_requests.take()),
    ];
    for (key, v) in limits {
        let n = value(v, ENVOY_THRESHOLD);
        if n != u32::MAX {
            out.insert(key.into(), int(n));
        }
    }
    // Ringside caps retries with a budget, not a count in flight: only "unlimited" is honoured.
    if t.max_retries.take().is_some_and(|v| v.value != u32::MAX) {
        return Err(unsupported(
            &format!("{at}.max_retries"),
            "a limit of retries in flight",
        ));
    }
    ignore::fields(
        ignored,
        &[("track_remaining", take(&mut t.track_remaining))],
    );
    t.priority = 0;
    leftover(&t, at)?;
    Ok(out)
}

pub fn outlier_detection(mut o: OutlierDetection, at: &str) -> Res<Table> {
    let mut out = Table::new();
    let enforced = [
        (
            "enforcing_consecutive_5xx",
            value(o.enforcing_consecutive_5xx.take(), 100),
        ),
        (
            "enforcing_consecutive_gateway_failure",
            value(o.enforcing_consecutive_gateway_failure.take(), 0),
        ),
    ];
    for (field, pct) in enforced {
        if pct != 0 && pct != 100 {
            return Err(unsupported(
                &format!("{at}.{field}"),
                format!("enforcing {pct}% (ringside enforces 0 or 100)"),
            ));
        }
    }
    let five = value(o.consecutive_5xx.take(), 5);
    let gateway = value(o.consecutive_gateway_failure.take(), 5);
    out.insert(
        "consecutive_5xx".into(),
        int(if enforced[0].1 == 100 { five } else { 0 }),
    );
    out.insert(
        "consecutive_gateway_failure".into(),
        int(if enforced[1].1 == 100 { gateway } else { 0 }),
    );
    if value(o.enforcing_success_rate.take(), 100) != 0 {
        return Err(unsupported(
            &format!("{at}.enforcing_success_rate"),
            "success-rate ejection (set enforcing_success_rate to 0)",
        ));
    }
    // Not enforced, so without effect.
    o.success_rate_minimum_hosts = None;
    o.success_rate_request_volume = None;
    o.success_rate_stdev_factor = None;
    if value(o.enforcing_failure_percentage.take(), 0) != 0 {
        return Err(unsupported(
            &format!("{at}.enforcing_failure_percentage"),
            "failure-percentage ejection",
        ));
    }
    o.failure_percentage_threshold = None;
    o.failure_percentage_minimum_hosts = None;
    o.failure_percentage_request_volume = None;
    out.insert("interval_ms".into(), int(millis(o.interval.take(), 10_000)));
    out.insert(
        "base_ejection_ms".into(),
        int(millis(o.base_ejection_time.take(), 30_000)),
    );
    out.insert(
        "max_ejection_ms".into(),
        int(millis(o.max_ejection_time.take(), 300_000)),
    );
    out.insert(
        "max_ejection_percent".into(),
        int(value(o.max_ejection_percent.take(), 10)),
    );
    leftover(&o, at)?;
    Ok(out)
}

pub fn health_check(checks: Vec<HealthCheck>, at: &str) -> Res<Option<Table>> {
    if checks.len() > 1 {
        return Err(unsupported(at, "more than one health check"));
    }
    let Some(mut hc) = checks.into_iter().next() else {
        return Ok(None);
    };
    let at = format!("{at}[0]");
    let mut out = Table::new();
    match hc.health_checker.take() {
        Some(HealthChecker::HttpHealthCheck(mut h)) => {
            out.insert("http_path".into(), Value::String(take(&mut h.path)));
            let mut statuses = Vec::new();
            for r in take(&mut h.expected_statuses) {
                statuses.extend((r.start..r.end).map(Value::Integer));
            }
            if !statuses.is_empty() {
                out.insert("expected_statuses".into(), Value::Array(statuses));
            }
            if matches!(RequestMethod::try_from(h.method), Ok(RequestMethod::Get)) {
                h.method = 0;
            }
            leftover(&h, &format!("{at}.http_health_check"))?;
        }
        Some(HealthChecker::TcpHealthCheck(t)) => {
            leftover(&t, &format!("{at}.tcp_health_check"))?;
            out.insert("tcp".into(), Value::Boolean(true));
        }
        _ => return Err(unsupported(&at, "a health check other than http and tcp")),
    }
    if let Some(d) = hc.interval.take() {
        out.insert("interval_ms".into(), int(ms(&d)));
    }
    if let Some(d) = hc.timeout.take() {
        out.insert("timeout_ms".into(), int(ms(&d)));
    }
    for (key, v) in [
        ("unhealthy_threshold", hc.unhealthy_threshold.take()),
        ("healthy_threshold", hc.healthy_threshold.take()),
    ] {
        if let Some(v) = v {
            out.insert(key.into(), int(v.value));
        }
    }
    leftover(&hc, &at)?;
    Ok(Some(out))
}

#[cfg(test)]
#[path = "resilience_tests.rs"]
mod tests;

/// Envoy's `healthy_panic_threshold` when a cluster sets none.
const ENVOY_PANIC_THRESHOLD: u8 = 50;

/// What a cluster's `common_lb_config` says.
pub struct CommonLb {
    /// `panic_threshold_percent`.
    pub panic: u8,
    /// `locality_weighted_lb_config`: the localities' weights count (`zone_weights`).
    pub locality_weighted: bool,
}

/// `common_lb_config` → `panic_threshold_percent`: its `healthy_panic_threshold` (whole
/// percents), else Envoy's default of 50, written out because ringside's own default (panic
/// mode only when nothing is in rotation) differs; and whether it weighs localities
/// (`locality_weighted_lb_config`, Istio's locality load balancing, Envoy Gateway's
/// clusters). Anything else in it is NACKed.
pub fn common_lb(c: Option<CommonLbConfig>, at: &str) -> Res<CommonLb> {
    let Some(mut c) = c else {
        return Ok(CommonLb {
            panic: ENVOY_PANIC_THRESHOLD,
            locality_weighted: false,
        });
    };
    let locality_weighted = matches!(
        c.locality_config_specifier,
        Some(LocalityConfigSpecifier::LocalityWeightedLbConfig(_))
    );
    if locality_weighted {
        c.locality_config_specifier = None;
    }
    let threshold = match c.healthy_panic_threshold.take() {
        None => ENVOY_PANIC_THRESHOLD,
        Some(p) if p.value.fract() == 0.0 && (0.0..=100.0).contains(&p.value) => p.value as u8,
        Some(p) => {
            return Err(unsupported(
                &format!("{at}.healthy_panic_threshold"),
                format!("{} (ringside takes a whole percent from 0 to 100)", p.value),
            ))
        }
    };
    leftover(&c, at)?;
    Ok(CommonLb {
        panic: threshold,
        locality_weighted,
    })
}
