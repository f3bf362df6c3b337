//! A rollout's arithmetic, without state or I/O: which nodes a step covers, a group's
//! traffic over a window from two samples of the proxies' counters, and the verdict.

use std::collections::BTreeMap;

use ringside_wire::{GroupRate, Judgement, RolloutSpec, Traffic};

/// One reading of every node's counters: by node, by process id.
pub type Sample = BTreeMap<String, BTreeMap<u32, Traffic>>;

/// What a judged window says.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Promote(Judgement, String),
    RollBack(Judgement, String),
    /// Not enough data, or counters that cannot be compared: pause, never promote.
    CannotJudge(Option<Judgement>, String),
}

/// Checks a spec before anything is committed.
pub fn check_spec(spec: &RolloutSpec) -> Result<(), String> {
    let s = &spec.steps;
    if s.is_empty() {
        return Err("name at least one step (e.g. --steps 10,50,100)".into());
    }
    if s.iter().any(|&p| p == 0 || p > 100) {
        return Err(format!("steps must be from 1 to 100 percent, got {s:?}"));
    }
    if s.windows(2).any(|w| w[0] >= w[1]) {
        return Err(format!("steps must increase, got {s:?}"));
    }
    if s.last() != Some(&100) {
        return Err(format!("the last step must be 100, got {s:?}"));
    }
    if spec.interval_ms < 100 {
        return Err("the interval must be at least 100ms".into());
    }
    let m = spec.max_error_increase;
    if !m.is_finite() || !(0.0..=100.0).contains(&m) {
        return Err(format!(
            "max error increase must be from 0 to 100 percentage points, got {m}"
        ));
    }
    if spec.min_requests == 0 {
        return Err("min requests must be at least 1: a rollout never promotes blind".into());
    }
    Ok(())
}

/// How many of `n` nodes step `step` (1-based) covers: its share, rounded up, at least one.
pub fn covered(steps: &[u32], step: u32, n: usize) -> usize {
    let pct = steps
        .get(step.saturating_sub(1) as usize)
        .copied()
        .unwrap_or(100);
    let share = (n * pct as usize).div_ceil(100);
    share.clamp(1, n.max(1))
}

/// The step after `step` that covers more nodes, if any.
pub fn next_step(steps: &[u32], step: u32, n: usize) -> Option<u32> {
    let now = covered(steps, step, n);
    (step + 1..=steps.len() as u32).find(|&s| covered(steps, s, n) > now)
}

/// A group's traffic between two samples: the sum over its nodes of each process's
/// increase. A node missing from a sample, a process that appeared (a restart) or counters
/// that went back make the window unjudgeable: the message says which node.
pub fn group(start: &Sample, end: &Sample, nodes: &[&str]) -> Result<GroupRate, String> {
    let mut g = GroupRate {
        nodes: u32::try_from(nodes.len()).unwrap_or(u32::MAX),
        ..GroupRate::default()
    };
    for node in nodes {
        let (Some(s), Some(e)) = (start.get(*node), end.get(*node)) else {
            return Err(format!("no counters from node {node}"));
        };
        for (pid, te) in e {
            let Some(ts) = s.get(pid) else {
                return Err(format!(
                    "node {node} has a process (pid {pid}) that started within the window"
                ));
            };
            if te.requests < ts.requests || te.responses_5xx < ts.responses_5xx {
                return Err(format!("the counters of node {node} went back"));
            }
            g.requests += te.requests - ts.requests;
            g.errors += te.responses_5xx - ts.responses_5xx;
        }
    }
    g.rate_pct = rate(g.errors, g.requests);
    Ok(g)
}

fn rate(errors: u64, requests: u64) -> f64 {
    if requests == 0 {
        0.0
    } else {
        errors as f64 * 100.0 / requests as f64
    }
}

/// One group as a log line: `2.50% (5 of 200 on 1 node)`.
pub fn describe(g: &GroupRate) -> String {
    let nodes = if g.nodes == 1 { "node" } else { "nodes" };
    format!(
        "{:.2}% ({} of {} on {} {nodes})",
        g.rate_pct, g.errors, g.requests, g.nodes
    )
}

/// Judges step `step`'s window: the canary nodes (on the new generation) against the
/// baseline (still on the old one).
pub fn judge(
    spec: &RolloutSpec,
    step: u32,
    window_ms: u64,
    canary: Result<GroupRate, String>,
    baseline: Result<GroupRate, String>,
) -> Verdict {
    let (canary, baseline) = match (canary, baseline) {
        (Ok(c), Ok(b)) => (c, b),
        (Err(e), _) | (_, Err(e)) => {
            return Verdict::CannotJudge(None, format!("cannot judge step {step}: {e}"))
        }
    };
    let j = Judgement {
        step,
        window_ms,
        canary,
        baseline: Some(baseline),
    };
    let min = spec.min_requests;
    for (name, g) in [("canary", &canary), ("baseline", &baseline)] {
        if g.requests < min {
            let why = format!(
                "cannot judge step {step}: the {name} nodes served {} requests in the window, fewer than {min}",
                g.requests
            );
            return Verdict::CannotJudge(Some(j), why);
        }
    }
    let increase = canary.rate_pct - baseline.rate_pct;
    let numbers = format!(
        "step {step}: canary {} vs baseline {}: {increase:+.2} points",
        describe(&canary),
        describe(&baseline)
    );
    let max = spec.max_error_increase;
    if increase > max {
        Verdict::RollBack(j, format!("{numbers}, more than the {max} allowed"))
    } else {
        Verdict::Promote(j, format!("{numbers}, within the {max} allowed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(steps: &[u32]) -> RolloutSpec {
        RolloutSpec {
            config: String::new(),
            selector: Default::default(),
            steps: steps.to_vec(),
            interval_ms: 1000,
            max_error_increase: 1.0,
            min_requests: 100,
        }
    }

    fn traffic(requests: u64, responses_5xx: u64) -> Traffic {
        Traffic {
            requests,
            responses_5xx,
            ..Traffic::default()
        }
    }

    fn sample(rows: &[(&str, u32, u64, u64)]) -> Sample {
        let mut s = Sample::new();
        for &(node, pid, r, e) in rows {
            s.entry(node.into()).or_default().insert(pid, traffic(r, e));
        }
        s
    }

    #[test]
    fn specs_are_checked() {
        assert!(check_spec(&spec(&[10, 50, 100])).is_ok());
        assert!(check_spec(&spec(&[100])).is_ok());
        for bad in [&[][..], &[50, 50, 100], &[10, 50], &[0, 100], &[50, 101]] {
            assert!(check_spec(&spec(bad)).is_err(), "{bad:?}");
        }
        let mut s = spec(&[100]);
        s.min_requests = 0;
        assert!(check_spec(&s).unwrap_err().contains("never promotes blind"));
        s.min_requests = 1;
        s.max_error_increase = f64::NAN;
        assert!(check_spec(&s).is_err());
    }

    #[test]
    fn steps_cover_at_least_one_node_and_skip_steps_that_add_none() {
        let steps = [10, 50, 100];
        assert_eq!(covered(&steps, 1, 10), 1);
        assert_eq!(covered(&steps, 2, 10), 5);
        assert_eq!(covered(&steps, 3, 10), 10);
        assert_eq!(covered(&steps, 1, 4), 1);
        assert_eq!(covered(&steps, 2, 4), 2);
        assert_eq!(covered(&steps, 1, 1), 1);
        assert_eq!(next_step(&steps, 1, 10), Some(2));
        assert_eq!(next_step(&steps, 3, 10), None);
        // Two nodes: 10% and 50% are both one node; the second step adds none.
        assert_eq!(next_step(&steps, 1, 2), Some(3));
        assert_eq!(next_step(&steps, 1, 1), None);
    }

    #[test]
    fn groups_sum_increases_and_refuse_restarts() {
        let start = sample(&[("a", 1, 100, 1), ("b", 2, 50, 0), ("b", 3, 10, 0)]);
        let end = sample(&[("a", 1, 300, 3), ("b", 2, 150, 10), ("b", 3, 10, 0)]);
        let g = group(&start, &end, &["a", "b"]).unwrap();
        assert_eq!((g.nodes, g.requests, g.errors), (2, 300, 12));
        assert!((g.rate_pct - 4.0).abs() < 1e-9);
        let restarted = sample(&[("a", 9, 5, 0)]);
        assert!(group(&start, &restarted, &["a"])
            .unwrap_err()
            .contains("pid 9"));
        let back = sample(&[("a", 1, 50, 0)]);
        assert!(group(&start, &back, &["a"])
            .unwrap_err()
            .contains("went back"));
        assert!(group(&start, &end, &["c"]).unwrap_err().contains("node c"));
    }

    #[test]
    fn verdicts() {
        let s = spec(&[10, 100]);
        let g = |requests, errors| {
            Ok(GroupRate {
                nodes: 1,
                requests,
                errors,
                rate_pct: rate(errors, requests),
            })
        };
        assert!(matches!(
            judge(&s, 1, 1000, g(200, 2), g(200, 0)),
            Verdict::Promote(..)
        ));
        match judge(&s, 1, 1000, g(200, 60), g(400, 0)) {
            Verdict::RollBack(j, why) => {
                assert_eq!(j.canary.errors, 60);
                assert_eq!(
                    why,
                    "step 1: canary 30.00% (60 of 200 on 1 node) vs baseline 0.00% (0 of 400 on 1 node): +30.00 points, more than the 1 allowed"
                );
            }
            other => panic!("{other:?}"),
        }
        // Too few requests on either side: pause, even when the canary looks bad.
        assert!(matches!(
            judge(&s, 1, 1000, g(99, 99), g(400, 0)),
            Verdict::CannotJudge(Some(_), _)
        ));
        assert!(matches!(
            judge(&s, 1, 1000, g(400, 0), g(10, 0)),
            Verdict::CannotJudge(Some(_), _)
        ));
        assert!(matches!(
            judge(&s, 1, 1000, Err("x".into()), g(400, 0)),
            Verdict::CannotJudge(None, _)
        ));
    }
}
