//! `[routes.retry]`, `clusters[].retry_budget` and `routes[].mirror`: ranges, names and
//! patterns.

use std::time::Duration;

use super::Validator;
use crate::check;
use crate::model::{ClusterId, Mirror};
use crate::raw::{FileMirror, FileRetry, FileRetryBudget};
use crate::read::key_segment;
use crate::retry::{HeaderValueMatch, RetryBudget, RetryOn, RetryPolicy};

/// Most retries a policy may ask for.
const MAX_ATTEMPTS: u64 = 10;
/// Largest replay buffer a policy may ask for.
const MAX_REPLAY_BYTES: u64 = 16 * 1024 * 1024;

impl Validator {
    /// `p` is the policy's path (`routes[3].retry`).
    pub(super) fn retry(&mut self, p: &str, r: &FileRetry) -> Option<RetryPolicy> {
        self.clean(|v| {
            let attempts = r.attempts.unwrap_or(1);
            if !(1..=MAX_ATTEMPTS).contains(&attempts) {
                v.err(
                    format!("{p}.attempts"),
                    format!("must be from 1 to {MAX_ATTEMPTS}, got {attempts}"),
                );
            }
            let per_try_timeout = r
                .per_try_timeout_ms
                .map(|ms| v.timeout(format!("{p}.per_try_timeout_ms"), Some(ms), 1));
            let on = match &r.on {
                None => RetryOn::CONNECT_FAILURE
                    .with(RetryOn::REFUSED_STREAM)
                    .with(RetryOn::GRPC_UNAVAILABLE)
                    .with(RetryOn::GRPC_CANCELLED)
                    .with(RetryOn::STATUS_CODES),
                Some(names) => {
                    if names.is_empty() {
                        v.err(format!("{p}.on"), "must name at least one condition");
                    }
                    let mut on = RetryOn::NONE;
                    for (j, name) in names.iter().enumerate() {
                        match RetryOn::NAMES.iter().find(|(n, _)| n == name) {
                            Some((_, flag)) => on = on.with(*flag),
                            None => v.err(
                                format!("{p}.on[{j}]"),
                                format!(
                                    "unknown retry condition {name:?}; expected one of {}",
                                    RetryOn::NAMES.map(|(n, _)| n).join(", ")
                                ),
                            ),
                        }
                    }
                    on
                }
            };
            let mut status_codes = Vec::new();
            for (j, code) in r
                .status_codes
                .as_deref()
                .unwrap_or(&[503])
                .iter()
                .enumerate()
            {
                match u16::try_from(*code) {
                    Ok(c) if (100..=599).contains(&c) => status_codes.push(c),
                    _ => v.err(
                        format!("{p}.status_codes[{j}]"),
                        format!("must be a status from 100 to 599, got {code}"),
                    ),
                }
            }
            let mut response_headers = Vec::new();
            for (name, value) in r.response_headers.iter().flatten() {
                let hp = format!("{p}.response_headers.{}", key_segment(name));
                if !check::is_token(name) {
                    v.err(&*hp, format!("invalid header name {name:?}"));
                    continue;
                }
                let m = match value.strip_prefix("regex:") {
                    Some(re) => match regex::Regex::new(re) {
                        Ok(re) => HeaderValueMatch::Regex(re),
                        Err(e) => {
                            v.err(&*hp, format!("invalid regular expression {re:?}: {e}"));
                            continue;
                        }
                    },
                    None if check::is_header_value(value) => {
                        HeaderValueMatch::Exact(value.as_bytes().to_vec())
                    }
                    None => {
                        v.err(
                            &*hp,
                            format!(
                                "invalid header value {value:?}: control characters are not allowed"
                            ),
                        );
                        continue;
                    }
                };
                response_headers.push((name.to_ascii_lowercase(), m));
            }
            let base = r.backoff.as_ref().and_then(|b| b.base_ms).unwrap_or(25);
            let backoff_base = v.timeout(format!("{p}.backoff.base_ms"), Some(base), 25);
            let max = r
                .backoff
                .as_ref()
                .and_then(|b| b.max_ms)
                .unwrap_or(base.saturating_mul(10));
            let backoff_max = v.timeout(format!("{p}.backoff.max_ms"), Some(max), 250);
            if backoff_max < backoff_base {
                v.err(
                    format!("{p}.backoff.max_ms"),
                    format!("must be at least base_ms ({base}), got {max}"),
                );
            }
            let methods = r.methods.as_ref().map(|list| {
                for (j, m) in list.iter().enumerate() {
                    if !check::is_token(m) {
                        v.err(
                            format!("{p}.methods[{j}]"),
                            format!("invalid method {m:?}: must be an HTTP token such as \"POST\""),
                        );
                    }
                }
                list.clone()
            });
            let max_body_bytes = r.max_body_bytes.unwrap_or(64 * 1024);
            if max_body_bytes > MAX_REPLAY_BYTES {
                v.err(
                    format!("{p}.max_body_bytes"),
                    format!("must be at most {MAX_REPLAY_BYTES}, got {max_body_bytes}"),
                );
            }
            RetryPolicy {
                attempts: attempts.min(MAX_ATTEMPTS) as u32,
                per_try_timeout,
                on,
                status_codes,
                response_headers,
                backoff_base,
                backoff_max: backoff_max.max(Duration::from_millis(1)),
                methods,
                max_body_bytes,
            }
        })
    }

    /// `p` is the mirror's path (`routes[3].mirror`).
    pub(super) fn mirror(
        &mut self,
        p: &str,
        m: &FileMirror,
        clusters: &std::collections::HashMap<&str, usize>,
    ) -> Option<Mirror> {
        self.clean(|v| {
            let cluster = v.cluster_ref(format!("{p}.cluster"), &m.cluster, clusters);
            let percent = m.percent.unwrap_or(100.0);
            if !(0.0..=100.0).contains(&percent) {
                v.err(
                    format!("{p}.percent"),
                    format!("must be from 0.0 to 100.0, got {percent}"),
                );
            }
            if let Some(suffix) = &m.host_suffix {
                let host_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.';
                if suffix.is_empty() || !suffix.chars().all(host_char) {
                    v.err(
                        format!("{p}.host_suffix"),
                        format!(
                            "invalid host suffix {suffix:?}: letters, digits, '-' and '.' only"
                        ),
                    );
                }
            }
            let max_in_flight = m.max_in_flight.unwrap_or(64);
            if !(1..=65536).contains(&max_in_flight) {
                v.err(
                    format!("{p}.max_in_flight"),
                    format!("must be from 1 to 65536, got {max_in_flight}"),
                );
            }
            Mirror {
                cluster: cluster.unwrap_or(ClusterId(0)),
                percent,
                host_suffix: m.host_suffix.clone(),
                max_in_flight: max_in_flight.min(65536) as usize,
            }
        })
    }

    /// `p` is the cluster's path (`clusters[0]`).
    pub(super) fn retry_budget(&mut self, p: &str, b: Option<&FileRetryBudget>) -> RetryBudget {
        let default = RetryBudget::default();
        let Some(b) = b else { return default };
        let ratio = b.ratio.unwrap_or(default.ratio);
        if !(0.0..=100.0).contains(&ratio) {
            self.err(
                format!("{p}.retry_budget.ratio"),
                format!("must be from 0.0 to 100.0, got {ratio}"),
            );
        }
        let min = b
            .min_per_second
            .unwrap_or(u64::from(default.min_per_second));
        let min_per_second = match u32::try_from(min) {
            Ok(n) if n <= 1_000_000 => n,
            _ => {
                self.err(
                    format!("{p}.retry_budget.min_per_second"),
                    format!("must be at most 1000000, got {min}"),
                );
                0
            }
        };
        RetryBudget {
            ratio: ratio.clamp(0.0, 100.0),
            min_per_second,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::errors;
    use crate::RetryOn;

    const ROUTE: &str = "[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:1\"\n[[clusters]]\nname = \"c\"\n[[routes]]\nlistener = \"in\"\ncluster = \"c\"\n";

    fn policy(text: &str) -> crate::RetryPolicy {
        let config = crate::parse(&format!("{ROUTE}[routes.retry]\n{text}")).unwrap();
        let crate::ListenerKind::Http(http) = &config.listeners[0].kind else {
            panic!("http listener")
        };
        http.routes[0].retry.clone().unwrap()
    }

    #[test]
    fn defaults_follow_istio_and_envoy() {
        let p = policy("");
        assert_eq!(p.attempts, 1);
        assert_eq!(p.per_try_timeout, None);
        for name in [
            "connect-failure",
            "refused-stream",
            "unavailable",
            "cancelled",
            "retriable-status-codes",
        ] {
            let flag = RetryOn::NAMES.iter().find(|(n, _)| *n == name).unwrap().1;
            assert!(p.on.any(flag), "{name}");
        }
        assert!(!p.on.any(RetryOn::FIVE_XX) && !p.on.any(RetryOn::RESET));
        assert_eq!(p.status_codes, [503]);
        assert_eq!(p.backoff_base.as_millis(), 25);
        assert_eq!(p.backoff_max.as_millis(), 250);
        assert_eq!(p.max_body_bytes, 65536);
        assert!(p.methods.is_none());
        let b = crate::parse(ROUTE).unwrap().clusters[0].retry_budget;
        assert_eq!((b.ratio, b.min_per_second), (0.2, 10));
    }

    #[test]
    fn every_mistake_is_reported_with_its_path() {
        let got = errors(&format!(
            "{ROUTE}[routes.retry]\nattempts = 0\nper_try_timeout_ms = 0\non = [\"5xx\", \"sometimes\"]\nstatus_codes = [99]\nresponse_headers = {{ \"x y\" = \"1\", \"x-ok\" = \"regex:(\" }}\nbackoff = {{ base_ms = 100, max_ms = 10 }}\nmethods = [\"GE T\"]\nmax_body_bytes = 16777217\n"
        ));
        let want = [
            "routes[0].retry.attempts: must be from 1 to 10, got 0",
            "routes[0].retry.per_try_timeout_ms: must be greater than 0",
            "routes[0].retry.on[1]: unknown retry condition \"sometimes\"",
            "routes[0].retry.status_codes[0]: must be a status from 100 to 599, got 99",
            "routes[0].retry.response_headers.\"x y\": invalid header name \"x y\"",
            "routes[0].retry.response_headers.x-ok: invalid regular expression \"(\"",
            "routes[0].retry.backoff.max_ms: must be at least base_ms (100), got 10",
            "routes[0].retry.methods[0]: invalid method \"GE T\"",
            "routes[0].retry.max_body_bytes: must be at most 16777216, got 16777217",
        ];
        for w in want {
            assert!(
                got.iter().any(|g| g.starts_with(w)),
                "missing {w:?} in {got:#?}"
            );
        }
        assert_eq!(got.len(), want.len(), "{got:#?}");
        assert_eq!(
            errors("[[clusters]]\nname = \"c\"\nretry_budget = { ratio = -1.0, min_per_second = 5000000 }\n"),
            [
                "clusters[0].retry_budget.ratio: must be from 0.0 to 100.0, got -1",
                "clusters[0].retry_budget.min_per_second: must be at most 1000000, got 5000000",
            ]
        );
        let direct = "[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:1\"\n[[routes]]\nlistener = \"in\"\ndirect_response = { status = 200 }\n[routes.retry]\nattempts = 1\n";
        assert_eq!(
            errors(direct),
            ["routes[0].retry: not valid on a direct_response route (no upstream to retry)"]
        );
    }
}
