//! A rollout's text rendering: its state, the numbers of its last window, its nodes, its
//! decisions.

use ringside_wire::{GroupRate, RolloutStatus};

use super::{table, utc};

/// A rollout: its state, the numbers of its last judgement, its nodes, its decisions.
pub fn rollout(r: &RolloutStatus) -> String {
    let steps: Vec<String> = r.steps.iter().map(|s| format!("{s}%")).collect();
    let selector = match r.selector.is_empty() {
        true => "every node".to_owned(),
        false => ringside_config::labels::format_labels(&r.selector),
    };
    let mut kv: Vec<(&str, String)> = vec![
        ("rollout", r.id.to_string()),
        ("state", r.state.clone()),
        (
            "step",
            format!("{} of {} ({})", r.step, r.steps.len(), steps.join(", ")),
        ),
        ("selector", selector),
        (
            "judged by",
            format!(
                "{} ms windows, at most +{} points, at least {} requests",
                r.interval_ms, r.max_error_increase, r.min_requests
            ),
        ),
        ("started", utc(r.started_at)),
    ];
    if let Some(reason) = &r.reason {
        kv.push(("reason", reason.clone()));
    }
    if let Some(left) = r.window_left_ms {
        kv.push(("window left", format!("{left} ms")));
    }
    let mut out = String::new();
    for (k, v) in kv {
        out.push_str(&format!("{k:<12} {v}\n"));
    }
    if let Some(j) = &r.last_judgement {
        out.push_str(&format!(
            "\nlast window (step {}, {} ms):\n",
            j.step, j.window_ms
        ));
        let mut rows = vec![group("canary", &j.canary)];
        if let Some(b) = &j.baseline {
            rows.push(group("baseline", b));
        }
        out.push_str(&table(
            &["GROUP", "NODES", "REQUESTS", "5XX", "RATE"],
            &rows,
        ));
    }
    let nodes: Vec<Vec<String>> = r
        .nodes
        .iter()
        .map(|n| {
            let gen = |g: Option<u64>| g.map_or_else(|| "-".into(), |g| g.to_string());
            let on = match (n.restored, n.after) {
                (Some(_), _) => "restored",
                (None, Some(_)) => "new",
                (None, None) => "old",
            };
            vec![
                n.node.clone(),
                on.into(),
                n.before.to_string(),
                gen(n.after),
                gen(n.restored),
                gen(n.acked),
            ]
        })
        .collect();
    out.push('\n');
    let header = ["NODE", "ON", "BEFORE", "NEW", "RESTORED", "ACKED"];
    out.push_str(&table(&header, &nodes));
    out.push_str("\ndecisions:\n");
    for d in &r.decisions {
        out.push_str(&format!("  {}  {:<8}  {}\n", utc(d.at), d.action, d.reason));
    }
    out
}

fn group(name: &str, g: &GroupRate) -> Vec<String> {
    vec![
        name.into(),
        g.nodes.to_string(),
        g.requests.to_string(),
        g.errors.to_string(),
        format!("{:.2}%", g.rate_pct),
    ]
}

#[cfg(test)]
mod tests {
    use ringside_wire::{Judgement, RolloutDecision, RolloutNode};

    use super::*;

    #[test]
    fn a_rolled_back_rollout_reads_in_one_screen() {
        let g = |nodes, requests, errors, rate_pct| GroupRate {
            nodes,
            requests,
            errors,
            rate_pct,
        };
        let node = |name: &str, after, restored| RolloutNode {
            node: name.into(),
            before: 1,
            after,
            restored,
            acked: restored.or(Some(1)),
        };
        let r = RolloutStatus {
            id: 3,
            state: "rolled_back".into(),
            reason: Some("step 1: canary 48.50% …".into()),
            step: 1,
            steps: vec![10, 50, 100],
            selector: [("app".to_owned(), "web".to_owned())].into(),
            interval_ms: 2000,
            max_error_increase: 1.0,
            min_requests: 50,
            started_at: 1_767_225_600,
            window_left_ms: None,
            nodes: vec![node("web-1", Some(2), Some(3)), node("web-2", None, None)],
            last_judgement: Some(Judgement {
                step: 1,
                window_ms: 2003,
                canary: g(1, 200, 97, 48.5),
                baseline: Some(g(8, 1612, 0, 0.0)),
            }),
            decisions: vec![RolloutDecision {
                at: 1_767_225_602,
                action: "rollback".into(),
                reason: "step 1: canary 48.50% …".into(),
            }],
        };
        assert_eq!(
            rollout(&r),
            "rollout      3
state        rolled_back
step         1 of 3 (10%, 50%, 100%)
selector     app=web
judged by    2000 ms windows, at most +1 points, at least 50 requests
started      2026-01-01 00:00:00Z
reason       step 1: canary 48.50% …

last window (step 1, 2003 ms):
GROUP     NODES  REQUESTS  5XX  RATE
canary    1      200       97   48.50%
baseline  8      1612      0    0.00%

NODE   ON        BEFORE  NEW  RESTORED  ACKED
web-1  restored  1       2    3         3
web-2  old       1       -    -         1

decisions:
  2026-01-01 00:00:02Z  rollback  step 1: canary 48.50% …
"
        );
    }
}
