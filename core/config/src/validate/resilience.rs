//! The resilience keys: a route's `fault`, the `rate_limit` of a listener or a route, and a
//! cluster's `circuit_breaker`.

use super::Validator;
use crate::check;
use crate::model::{CircuitBreaker, Fault, FaultAbort, FaultDelay, RateLimit};
use crate::raw::{FileCircuitBreaker, FileFault, FileRateLimit};

/// The most tokens a second a bucket refills (one every nanosecond).
const MAX_RATE: u64 = 1_000_000_000;

impl Validator {
    /// `routes[i].fault` at `p`.
    pub(super) fn fault(&mut self, p: &str, f: &FileFault) -> Option<Fault> {
        self.clean(|v| {
            let header_control = f.header_control.unwrap_or(false);
            if f.delay.is_none() && f.abort.is_none() {
                v.err(p, "needs delay, abort or both");
            }
            let delay = f.delay.as_ref().map(|d| {
                let dp = format!("{p}.delay");
                let fixed = d
                    .fixed_ms
                    .map(|ms| v.timeout(format!("{dp}.fixed_ms"), Some(ms), 1));
                if fixed.is_none() && !header_control {
                    v.err(
                        &*dp,
                        "missing field \"fixed_ms\", required unless header_control = true",
                    );
                }
                let percent = v.percent(format!("{dp}.percent"), d.percent);
                FaultDelay::new(fixed, percent)
            });
            let abort = f.abort.as_ref().map(|a| {
                let ap = format!("{p}.abort");
                if let Some(status) = a.status {
                    if !(200..=599).contains(&status) {
                        v.err(
                            format!("{ap}.status"),
                            format!("must be from 200 to 599, got {status}"),
                        );
                    }
                }
                if let Some(code) = a.grpc_status {
                    if code > 16 {
                        v.err(
                            format!("{ap}.grpc_status"),
                            format!("must be a gRPC status code from 0 to 16, got {code}"),
                        );
                    }
                }
                if a.status.is_none() && a.grpc_status.is_none() && !header_control {
                    v.err(
                        &*ap,
                        "needs status, grpc_status or both (or header_control = true)",
                    );
                }
                let percent = v.percent(format!("{ap}.percent"), a.percent);
                FaultAbort::new(a.status, a.grpc_status, percent)
            });
            Fault::new(delay, abort, header_control)
        })
    }

    /// A local `rate_limit` at `p` (a token bucket). A route's limit with `redis` is a
    /// global one instead (`global_rate_limit`, validate/redis.rs); anywhere else `redis` is
    /// an error.
    pub(super) fn rate_limit(&mut self, p: &str, r: &FileRateLimit) -> Option<RateLimit> {
        self.clean(|v| {
            if r.redis.is_some() {
                v.err(
                    format!("{p}.redis"),
                    "only a route's rate_limit can be global (kept in Redis)",
                );
            }
            for (key, given) in [
                ("requests_per_minute", r.requests_per_minute.is_some()),
                ("fail_closed", r.fail_closed.is_some()),
            ] {
                if given && r.redis.is_none() {
                    v.err(
                        format!("{p}.{key}"),
                        "only for a global limit (with redis = \"<name of a [[redis]]>\"); a local limit is requests_per_second and burst",
                    );
                }
            }
            let Some(rps) = r.requests_per_second else {
                v.err(p, "missing field \"requests_per_second\"");
                return RateLimit::new(1, 1);
            };
            if !(1..=MAX_RATE).contains(&rps) {
                v.err(
                    format!("{p}.requests_per_second"),
                    format!("must be from 1 to {MAX_RATE}, got {rps}"),
                );
            }
            let burst = r.burst.unwrap_or(rps);
            let burst = match u32::try_from(burst) {
                Ok(b) if b >= 1 => b,
                _ => {
                    v.err(
                        format!("{p}.burst"),
                        format!("must be from 1 to {}, got {burst}", u32::MAX),
                    );
                    1
                }
            };
            RateLimit::new(u32::try_from(rps).unwrap_or(1), burst)
        })
    }

    /// `clusters[i].circuit_breaker` at `p`.
    pub(super) fn circuit_breaker(
        &mut self,
        p: &str,
        b: &FileCircuitBreaker,
    ) -> Option<CircuitBreaker> {
        self.clean(|v| {
            let mut limit = |key: &str, value: Option<u64>| {
                let n = value?;
                match u32::try_from(n) {
                    Ok(n) if n >= 1 => Some(n),
                    _ => {
                        v.err(
                            format!("{p}.{key}"),
                            format!("must be from 1 to {}, got {n}", u32::MAX),
                        );
                        None
                    }
                }
            };
            CircuitBreaker::new(
                limit("max_connections", b.max_connections),
                limit("max_pending_requests", b.max_pending_requests),
                limit("max_requests", b.max_requests),
            )
        })
    }

    /// A percentage, 0.0 to 100.0.
    fn percent(&mut self, path: String, value: f64) -> f64 {
        match check::percent(value) {
            Ok(p) => p,
            Err(m) => {
                self.err(path, m);
                0.0
            }
        }
    }
}
