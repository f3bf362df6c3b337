//! Passive and active health marks of endpoints, shared by every worker of the process.
//!
//! Each endpoint of a cluster has one [`EndpointMarks`] (by cluster name and address, from the
//! `cx/shared.rs` registry: a reload that keeps the endpoint keeps its marks, whatever else
//! changed). Workers record what their exchanges with it did ([`Outcome`]); an endpoint whose
//! run of failures reaches a threshold of the cluster's [`OutlierDetection`] is ejected for
//! `base_ejection × times ejected` (at most `max_ejection`), and the multiplier goes down by
//! one for every `interval` the endpoint spends back in rotation (Envoy's outlier detection,
//! computed when it is next ejected instead of by a timer). No more than
//! `max_ejection_percent` of a cluster is ejected at once, but one endpoint always may be.
//! The health prober (`health.rs`) writes each endpoint's check result into the same marks.
//!
//! Cost: a worker reads two relaxed atomics per endpoint it considers; a response resets the
//! runs with a load (and a store only when a run was going). Read-modify-writes happen on
//! failures only. Two workers ejecting two endpoints at the same instant can each pass the
//! percentage check and exceed the limit by one; an endpoint is never ejected twice at once
//! (compare-exchange on its deadline).
//!
//! [`ClusterMarks`] holds the cluster's counters (ejections, panic-mode requests, health
//! transitions, failed checks) that the admin endpoint reads directly.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ringside_config::OutlierDetection;

/// Milliseconds on the process's clock, never 0 (0 means "never" in the marks).
pub(crate) fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_millis())
        .unwrap_or(u64::MAX)
        .saturating_add(1)
}

/// The registry key of an endpoint's marks.
pub(crate) fn endpoint_key(cluster: &str, address: std::net::SocketAddr) -> String {
    format!("health/{cluster}/{address}")
}

/// The registry key of a cluster's counters.
pub(crate) fn cluster_key(cluster: &str) -> String {
    format!("health/{cluster}")
}

/// What an active health check last said about an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// Not checked yet (in rotation).
    Unknown,
    Healthy,
    /// Failed its checks: out of rotation until it passes again.
    Unhealthy,
}

/// What one exchange with an endpoint did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A connection was made.
    Connected,
    /// A response head with this status.
    Response(u16),
    /// A failed connect.
    ConnectFailure,
    /// A reset or timeout before any response.
    NoResponse,
}

/// One endpoint's marks, for the whole process.
#[derive(Default)]
pub(crate) struct EndpointMarks {
    run_5xx: AtomicU32,
    run_gateway: AtomicU32,
    run_connect: AtomicU32,
    /// When the last ejection ends (or ended), on [`now_ms`]'s clock; 0: never ejected.
    ejected_until: AtomicU64,
    /// The multiplier of the last ejection.
    times: AtomicU32,
    /// [`Checked`] as a byte.
    checked: AtomicU8,
}

impl Checked {
    /// `"unknown"`, `"healthy"` or `"unhealthy"`.
    pub fn name(self) -> &'static str {
        match self {
            Checked::Unknown => "unknown",
            Checked::Healthy => "healthy",
            Checked::Unhealthy => "unhealthy",
        }
    }
}

impl EndpointMarks {
    /// Whether the endpoint was ever ejected (else no clock is needed to know it is not now).
    pub(crate) fn ever_ejected(&self) -> bool {
        self.ejected_until.load(Relaxed) != 0
    }

    pub(crate) fn is_ejected(&self, now: u64) -> bool {
        self.ejected_until.load(Relaxed) > now
    }

    /// Milliseconds of ejection left.
    pub(crate) fn ejected_for(&self, now: u64) -> u64 {
        self.ejected_until.load(Relaxed).saturating_sub(now)
    }

    /// The ejection multiplier as it stands at `now` (decayed since the endpoint came back).
    pub(crate) fn times_ejected(&self, o: &OutlierDetection, now: u64) -> u32 {
        let until = self.ejected_until.load(Relaxed);
        if until > now {
            return self.times.load(Relaxed);
        }
        decayed(self.times.load(Relaxed), until, now, millis(o.interval))
    }

    pub(crate) fn checked(&self) -> Checked {
        match self.checked.load(Relaxed) {
            1 => Checked::Healthy,
            2 => Checked::Unhealthy,
            _ => Checked::Unknown,
        }
    }

    pub(crate) fn set_checked(&self, c: Checked) {
        let byte = match c {
            Checked::Unknown => 0,
            Checked::Healthy => 1,
            Checked::Unhealthy => 2,
        };
        self.checked.store(byte, Relaxed);
    }

    /// Records an outcome; true when a run reached its threshold (the endpoint should go).
    pub(crate) fn record(&self, o: &OutlierDetection, outcome: Outcome) -> bool {
        // For each run: Some(true) extends it, Some(false) ends it, None leaves it.
        let (is_5xx, is_gateway, is_connect) = match outcome {
            Outcome::Connected => (None, None, Some(false)),
            Outcome::Response(s) => (Some(s >= 500), Some(matches!(s, 502..=504)), Some(false)),
            Outcome::ConnectFailure => (Some(true), Some(true), Some(true)),
            // The connect worked: a run of failed connects is neither ended nor extended.
            Outcome::NoResponse => (Some(true), Some(true), None),
        };
        let mut reached = false;
        for (run, threshold, failed) in [
            (&self.run_5xx, o.consecutive_5xx, is_5xx),
            (&self.run_gateway, o.consecutive_gateway_failure, is_gateway),
            (&self.run_connect, o.consecutive_connect_failure, is_connect),
        ] {
            match (threshold, failed) {
                (Some(threshold), Some(true)) => {
                    reached |= run.fetch_add(1, Relaxed).saturating_add(1) >= threshold;
                }
                (Some(_), Some(false)) => reset(run),
                _ => {}
            }
        }
        reached
    }

    /// Ejects the endpoint unless it already is; returns the ejection's length.
    pub(crate) fn eject(&self, o: &OutlierDetection, now: u64) -> Option<Duration> {
        let until = self.ejected_until.load(Relaxed);
        if until > now {
            return None;
        }
        let base = millis(o.base_ejection);
        let max = millis(o.max_ejection);
        let times = next_multiplier(self.times.load(Relaxed), until, now, o);
        let length = base.saturating_mul(u64::from(times)).min(max);
        self.ejected_until
            .compare_exchange(until, now.saturating_add(length), Relaxed, Relaxed)
            .ok()?;
        self.times.store(times, Relaxed);
        for run in [&self.run_5xx, &self.run_gateway, &self.run_connect] {
            reset(run);
        }
        Some(Duration::from_millis(length))
    }
}

/// A cluster's counters, for the whole process.
#[derive(Default)]
pub(crate) struct ClusterMarks {
    pub(crate) ejections: AtomicU64,
    pub(crate) panic_requests: AtomicU64,
    pub(crate) check_failures: AtomicU64,
    pub(crate) became_unhealthy: AtomicU64,
    pub(crate) became_healthy: AtomicU64,
}

fn reset(run: &AtomicU32) {
    if run.load(Relaxed) != 0 {
        run.store(0, Relaxed);
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `times` less one per whole `interval` since `let_back` (0: never ejected).
fn decayed(times: u32, let_back: u64, now: u64, interval: u64) -> u32 {
    if let_back == 0 {
        return 0;
    }
    let periods = now.saturating_sub(let_back) / interval.max(1);
    times.saturating_sub(u32::try_from(periods).unwrap_or(u32::MAX))
}

/// The multiplier of an ejection at `now`: the decayed one plus this ejection, no higher
/// than what reaches `max_ejection` (so that decay starts from the cap).
fn next_multiplier(times: u32, let_back: u64, now: u64, o: &OutlierDetection) -> u32 {
    let base = millis(o.base_ejection).max(1);
    let cap = millis(o.max_ejection).div_ceil(base).max(1);
    let next = decayed(times, let_back, now, millis(o.interval)).saturating_add(1);
    next.min(u32::try_from(cap).unwrap_or(u32::MAX))
}

/// Whether one more of `endpoints` may be ejected while `ejected` are: within
/// `percent`, or the first one.
pub(crate) fn may_eject(ejected: usize, endpoints: usize, percent: u8) -> bool {
    ejected == 0 || (ejected + 1) * 100 <= usize::from(percent) * endpoints
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> OutlierDetection {
        let mut o = OutlierDetection::from_fail_timeout(Duration::from_millis(100));
        o.consecutive_connect_failure = None;
        o.consecutive_5xx = Some(3);
        o.consecutive_gateway_failure = Some(2);
        o.interval = Duration::from_millis(1_000);
        o.base_ejection = Duration::from_millis(300);
        o.max_ejection = Duration::from_millis(1_000);
        o.max_ejection_percent = 50;
        o
    }

    #[test]
    fn runs_count_consecutive_failures_only() {
        let o = policy();
        let m = EndpointMarks::default();
        assert!(!m.record(&o, Outcome::Response(500)));
        assert!(!m.record(&o, Outcome::Response(500)));
        assert!(
            !m.record(&o, Outcome::Response(200)),
            "a success ends the run"
        );
        assert!(!m.record(&o, Outcome::Response(500)));
        assert!(!m.record(&o, Outcome::Response(500)));
        assert!(m.record(&o, Outcome::Response(500)), "third 5xx in a row");
        let mut g = policy();
        g.consecutive_5xx = None;
        let m = EndpointMarks::default();
        assert!(!m.record(&g, Outcome::Response(503)));
        assert!(
            !m.record(&g, Outcome::Response(500)),
            "a 500 ends a gateway run"
        );
        assert!(!m.record(&g, Outcome::Response(502)));
        assert!(
            m.record(&g, Outcome::NoResponse),
            "a reset or timeout is a gateway failure"
        );
        // A connect that works does not end a run of failed responses.
        let m = EndpointMarks::default();
        assert!(!m.record(&g, Outcome::Response(504)));
        assert!(!m.record(&g, Outcome::Connected));
        assert!(m.record(&g, Outcome::Response(504)));
    }

    #[test]
    fn the_default_policy_counts_failed_connects_only() {
        let o = OutlierDetection::from_fail_timeout(Duration::from_millis(100));
        let m = EndpointMarks::default();
        for _ in 0..10 {
            assert!(!m.record(&o, Outcome::Response(503)));
        }
        assert!(
            !m.record(&o, Outcome::NoResponse),
            "a timeout is no failed connect"
        );
        assert!(m.record(&o, Outcome::ConnectFailure));
        assert_eq!(m.eject(&o, 10), Some(Duration::from_millis(100)));
        // Every ejection lasts fail_timeout.
        assert_eq!(m.eject(&o, 111), Some(Duration::from_millis(100)));
    }

    #[test]
    fn ejections_grow_with_the_multiplier_up_to_the_cap() {
        let o = policy();
        let m = EndpointMarks::default();
        let mut now = 1;
        let mut lengths = Vec::new();
        for _ in 0..5 {
            let length = m.eject(&o, now).unwrap();
            assert!(m.is_ejected(now) && m.is_ejected(now + millis(length) - 1));
            assert!(m.eject(&o, now + 1).is_none(), "already ejected");
            now += millis(length);
            assert!(!m.is_ejected(now), "let back when the time is up");
            lengths.push(millis(length));
        }
        assert_eq!(lengths, [300, 600, 900, 1000, 1000]);
        assert_eq!(
            m.times_ejected(&o, now),
            4,
            "the multiplier stops at the cap"
        );
    }

    #[test]
    fn the_multiplier_decays_one_per_interval_back_in_rotation() {
        let o = policy();
        let m = EndpointMarks::default();
        assert_eq!(m.eject(&o, 1), Some(Duration::from_millis(300)));
        assert_eq!(m.eject(&o, 301), Some(Duration::from_millis(600)));
        // Back at 901: one interval (1000 ms) later the multiplier is 1 ...
        assert_eq!(m.times_ejected(&o, 1_900), 2);
        assert_eq!(m.times_ejected(&o, 1_901), 1);
        // ... two intervals later it is 0: the next ejection is a first one again.
        assert_eq!(m.times_ejected(&o, 2_901), 0);
        assert_eq!(m.eject(&o, 1_901), Some(Duration::from_millis(600)));
        assert_eq!(m.eject(&o, 10_000), Some(Duration::from_millis(300)));
    }

    #[test]
    fn at_most_the_percentage_but_always_one() {
        assert!(may_eject(0, 3, 0), "the first ejection is always allowed");
        assert!(may_eject(0, 1, 10));
        assert!(!may_eject(1, 3, 50), "2 of 3 is more than 50%");
        assert!(may_eject(1, 4, 50));
        assert!(!may_eject(2, 4, 50));
        assert!(may_eject(2, 3, 100));
        assert!(!may_eject(1, 10, 10));
    }

    #[test]
    fn check_results_round_trip() {
        let m = EndpointMarks::default();
        assert_eq!(m.checked(), Checked::Unknown);
        for c in [Checked::Unhealthy, Checked::Healthy, Checked::Unknown] {
            m.set_checked(c);
            assert_eq!(m.checked(), c);
        }
    }
}
