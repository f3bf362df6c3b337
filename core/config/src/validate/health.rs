//! A cluster's passive health (`outlier_detection`, or the `fail_timeout_ms` it replaces)
//! and its active health checks (`health_check`).

use std::time::Duration;

use super::{default, Validator};
use crate::model::{HealthCheck, HealthCheckKind, OutlierDetection, UpstreamProtocol};
use crate::raw::{FileCluster, FileHealthCheck, FileOutlierDetection};

/// Highest consecutive-failure count or health-check threshold.
const MAX_THRESHOLD: u64 = 1_000_000;

impl Validator {
    /// `outlier_detection`, or what `fail_timeout_ms` means without it.
    pub(super) fn outlier(
        &mut self,
        p: &str,
        c: &FileCluster,
        fail_timeout: Duration,
    ) -> OutlierDetection {
        let Some(o) = &c.outlier_detection else {
            return OutlierDetection::from_fail_timeout(fail_timeout);
        };
        let p = format!("{p}.outlier_detection");
        if c.fail_timeout_ms.is_some() {
            self.err(
                &*p,
                "cannot be set together with \"fail_timeout_ms\" (deprecated: outlier_detection replaces it)",
            );
        }
        self.outlier_detection(&p, o)
    }

    fn outlier_detection(&mut self, p: &str, o: &FileOutlierDetection) -> OutlierDetection {
        let trigger = |v: &mut Self, key: &str, value: Option<u64>| {
            let n = v.threshold(format!("{p}.{key}"), value, default::OUTLIER_CONSECUTIVE, 0);
            (n > 0).then_some(n)
        };
        let consecutive_5xx = trigger(self, "consecutive_5xx", o.consecutive_5xx);
        let consecutive_gateway_failure = trigger(
            self,
            "consecutive_gateway_failure",
            o.consecutive_gateway_failure,
        );
        let interval = self.timeout(
            format!("{p}.interval_ms"),
            o.interval_ms,
            default::OUTLIER_INTERVAL_MS,
        );
        let base_ejection = self.timeout(
            format!("{p}.base_ejection_ms"),
            o.base_ejection_ms,
            default::BASE_EJECTION_MS,
        );
        let max_ejection = self.timeout(
            format!("{p}.max_ejection_ms"),
            o.max_ejection_ms,
            default::MAX_EJECTION_MS.max(o.base_ejection_ms.unwrap_or(0)),
        );
        if max_ejection < base_ejection {
            self.err(
                format!("{p}.max_ejection_ms"),
                format!(
                    "must be at least base_ejection_ms ({}), got {}",
                    base_ejection.as_millis(),
                    max_ejection.as_millis()
                ),
            );
        }
        let percent = o
            .max_ejection_percent
            .unwrap_or(default::MAX_EJECTION_PERCENT);
        let max_ejection_percent = match u8::try_from(percent) {
            Ok(n) if n <= 100 => n,
            _ => {
                self.err(
                    format!("{p}.max_ejection_percent"),
                    format!("must be from 0 to 100, got {percent}"),
                );
                0
            }
        };
        OutlierDetection {
            consecutive_5xx,
            consecutive_gateway_failure,
            consecutive_connect_failure: None,
            interval,
            base_ejection,
            max_ejection,
            max_ejection_percent,
        }
    }

    /// `health_check`, if any.
    pub(super) fn health_check(
        &mut self,
        p: &str,
        c: &FileCluster,
        protocol: UpstreamProtocol,
    ) -> Option<HealthCheck> {
        let h: &FileHealthCheck = c.health_check.as_ref()?;
        let p = format!("{p}.health_check");
        let kind = match (&h.http_path, h.tcp) {
            (Some(path), None | Some(false)) => {
                if !path.starts_with('/') || !path.bytes().all(|b| b.is_ascii_graphic()) {
                    self.err(
                        format!("{p}.http_path"),
                        format!(
                            "invalid path {path:?}: it starts with / and holds visible ASCII only"
                        ),
                    );
                }
                if protocol == UpstreamProtocol::Http2 {
                    self.err(
                        format!("{p}.http_path"),
                        "HTTP checks speak HTTP/1.1, which a protocol = \"http2\" cluster may not serve: use tcp = true",
                    );
                }
                let expected = self.expected_statuses(&p, h.expected_statuses.as_deref());
                HealthCheckKind::Http {
                    path: path.clone(),
                    expected,
                }
            }
            (None, Some(true)) => {
                if h.expected_statuses.is_some() {
                    self.err(
                        format!("{p}.expected_statuses"),
                        "only valid with http_path (a tcp check has no status)",
                    );
                }
                HealthCheckKind::Tcp
            }
            (Some(_), Some(true)) => {
                return self.fail(&*p, "set one of \"http_path\" and \"tcp = true\", not both")
            }
            (None, _) => {
                return self.fail(
                    &*p,
                    "missing \"http_path\" or \"tcp = true\": say what the check is",
                )
            }
        };
        let interval = self.timeout(
            format!("{p}.interval_ms"),
            h.interval_ms,
            default::HEALTH_INTERVAL_MS,
        );
        let timeout = self.timeout(
            format!("{p}.timeout_ms"),
            h.timeout_ms,
            default::HEALTH_TIMEOUT_MS
                .min(interval.as_millis() as u64 / 2)
                .max(1),
        );
        if timeout >= interval {
            self.err(
                format!("{p}.timeout_ms"),
                format!(
                    "must be less than interval_ms ({}), got {}",
                    interval.as_millis(),
                    timeout.as_millis()
                ),
            );
        }
        Some(HealthCheck {
            kind,
            interval,
            timeout,
            unhealthy_threshold: self.threshold(
                format!("{p}.unhealthy_threshold"),
                h.unhealthy_threshold,
                default::UNHEALTHY_THRESHOLD,
                1,
            ),
            healthy_threshold: self.threshold(
                format!("{p}.healthy_threshold"),
                h.healthy_threshold,
                default::HEALTHY_THRESHOLD,
                1,
            ),
        })
    }

    fn expected_statuses(&mut self, p: &str, raw: Option<&[u16]>) -> Vec<u16> {
        let Some(raw) = raw else {
            return vec![200];
        };
        if raw.is_empty() {
            self.err(
                format!("{p}.expected_statuses"),
                "must list at least one status",
            );
        }
        for (i, s) in raw.iter().enumerate() {
            if !(100..=599).contains(s) {
                self.err(
                    format!("{p}.expected_statuses[{i}]"),
                    format!("must be from 100 to 599, got {s}"),
                );
            }
        }
        raw.to_vec()
    }

    /// A count from `min` to [`MAX_THRESHOLD`].
    fn threshold(&mut self, path: String, value: Option<u64>, default: u64, min: u64) -> u32 {
        let n = value.unwrap_or(default);
        match u32::try_from(n) {
            Ok(v) if (min..=MAX_THRESHOLD).contains(&n) => v,
            _ => {
                self.err(
                    path,
                    format!("must be from {min} to {MAX_THRESHOLD}, got {n}"),
                );
                1
            }
        }
    }
}
