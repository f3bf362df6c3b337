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
