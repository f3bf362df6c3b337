//! Human output: aligned tables, times, and the one-line summaries of each reply.

mod rollout;

pub use rollout::rollout;

use ringside_wire::{ClusterHealth, CtldStatus, NodeApplied, NodeStatus, ProxyStatus, PushOutcome};

/// Left-aligned columns separated by two spaces; the header row first.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let n = cells.len();
        for (i, cell) in cells.into_iter().enumerate() {
            out.push_str(cell);
            if i + 1 < n {
                let pad = widths.get(i).copied().unwrap_or(0)
                    - cell
                        .chars()
                        .count()
                        .min(widths.get(i).copied().unwrap_or(0));
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push('\n');
    };
    line(header.to_vec(), &mut out);
    for row in rows {
        line(row.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

pub fn ctld_status(s: &CtldStatus) -> String {
    let mut out = String::new();
    if s.nodes.is_empty() {
        out.push_str("no node is known yet\n");
    } else {
        let rows: Vec<Vec<String>> = s
            .nodes
            .iter()
            .map(|n| {
                let acked = match n.generation_acked {
                    Some(g) if g == n.generation_desired => format!("{g}"),
                    Some(g) => format!("{g} (behind)"),
                    None => "-".into(),
                };
                let labels = match n.labels.is_empty() {
                    true => "-".to_owned(),
                    false => ringside_config::labels::format_labels(&n.labels),
                };
                vec![
                    n.node_id.clone(),
                    labels,
                    n.role.clone().unwrap_or_else(|| "-".into()),
                    if n.connected { "yes" } else { "no" }.into(),
                    if n.generation_desired == 0 {
                        "-".into()
                    } else {
                        n.generation_desired.to_string()
                    },
                    acked,
                    n.acked_at.map_or_else(|| "-".into(), utc),
                    source(n),
                    n.last_error.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                "NODE",
                "LABELS",
                "ROLE",
                "CONNECTED",
                "GENERATION",
                "ACKED",
                "ACKED AT",
                "SOURCE",
                "LAST ERROR",
            ],
            &rows,
        ));
    }
    let procs: Vec<Vec<String>> = s
        .nodes
        .iter()
        .flat_map(|n| n.processes.iter().map(move |p| (n, p)))
        .map(|(n, p)| {
            vec![
                n.node_id.clone(),
                p.pid.to_string(),
                p.generation.to_string(),
                p.config_hash.clone(),
                p.connections.to_string(),
                duration(p.uptime_s),
            ]
        })
        .collect();
    if !procs.is_empty() {
        out.push('\n');
        let header = [
            "NODE",
            "PID",
            "SERVES",
            "CONFIG HASH",
            "CONNECTIONS",
            "UPTIME",
        ];
        out.push_str(&table(&header, &procs));
    }
    let restart: Vec<&NodeStatus> = s
        .nodes
        .iter()
        .filter(|n| !n.pending_restart.is_empty())
        .collect();
    if !restart.is_empty() {
        out.push_str("\nkeys waiting for a restart (the node runs the values it started with):\n");
        for n in restart {
            let keys = n.pending_restart.join(", ");
            out.push_str(&format!("  {}: {keys}\n", n.node_id));
        }
    }
    if !s.config_dir_errors.is_empty() {
        out.push_str("\nrejected config files (nodes keep their configuration):\n");
        for f in &s.config_dir_errors {
            for e in &f.errors {
                out.push_str(&format!("  {}: {e}\n", f.file));
            }
        }
    }
    out
}

/// Who set a node's configuration, and the overrides on it: `file web-1.toml + endpoints api`.
fn source(n: &NodeStatus) -> String {
    let mut out = n.source.clone().unwrap_or_else(|| "-".into());
    for o in &n.overrides {
        out.push_str(" + ");
        out.push_str(o);
    }
    out
}

pub fn proxy_status(s: &ProxyStatus) -> String {
    let mut out = String::new();
    let generation = if s.generation == 0 {
        "0 (not from ctld)".to_owned()
    } else {
        s.generation.to_string()
    };
    let kv: Vec<(&str, String)> = vec![
        ("node", s.node_id.clone().unwrap_or_else(|| "-".into())),
        ("role", s.role.clone()),
        ("pid", s.pid.to_string()),
        ("generation", generation),
        ("config hash", s.config_hash.clone()),
        ("driver", s.driver.clone()),
        ("workers", s.workers.to_string()),
        ("connections", s.connections.to_string()),
        ("draining", yes_no(s.draining)),
        ("ctld connected", yes_no(s.ctld_connected)),
        ("uptime", duration(s.uptime_s)),
    ];
    for (k, v) in kv {
        out.push_str(&format!("{:<16}{v}\n", format!("{k}:")));
    }
    if !s.listeners.is_empty() {
        out.push('\n');
        let rows: Vec<Vec<String>> = s
            .listeners
            .iter()
            .map(|l| vec![l.name.clone(), l.protocol.clone(), l.address.clone()])
            .collect();
        out.push_str(&table(&["LISTENER", "PROTOCOL", "ADDRESS"], &rows));
    }
    out
}

/// One line per node of an `applied` reply.
/// `endpoints show`: one row per endpoint, then the cluster's counters.
pub fn health(c: &ClusterHealth) -> String {
    let rows: Vec<Vec<String>> = c
        .endpoints
        .iter()
        .map(|e| {
            vec![
                e.address.clone(),
                e.health.clone(),
                if e.ejected_ms == 0 {
                    "-".into()
                } else {
                    format!("{:.1} s", e.ejected_ms as f64 / 1000.0)
                },
                e.times_ejected.to_string(),
                e.check.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "ENDPOINT",
            "HEALTH",
            "EJECTED FOR",
            "TIMES EJECTED",
            "CHECK",
        ],
        &rows,
    );
    out.push_str(&format!(
        "cluster {}: {} ejections, {} requests in panic mode\n",
        c.name, c.ejections, c.panic_requests
    ));
    out
}

pub fn applied(nodes: &[NodeApplied]) -> String {
    let mut out = String::new();
    for n in nodes {
        let what = if n.changed {
            format!("generation {}", n.generation)
        } else {
            format!("generation {} (unchanged)", n.generation)
        };
        let outcome = match &n.outcome {
            PushOutcome::Acked => "acknowledged".to_owned(),
            PushOutcome::NotConnected => "not connected (pushed when it connects)".to_owned(),
            PushOutcome::Committed => "committed (not waited for)".to_owned(),
            PushOutcome::Refused { message } => format!("REFUSED: {message}"),
            PushOutcome::TimedOut { message } => format!("TIMED OUT: {message}"),
            PushOutcome::Failed { message } => format!("FAILED: {message}"),
        };
        out.push_str(&format!("{}: {what}, {outcome}\n", n.node));
    }
    out
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

fn duration(s: u64) -> String {
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86399 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86400, (s % 86400) / 3600),
    }
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SSZ` (UTC).
pub fn utc(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // Howard Hinnant's days-from-civil, inverted.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00Z");
        assert_eq!(utc(1_767_225_600), "2026-01-01 00:00:00Z");
        assert_eq!(utc(951_782_400 + 3661), "2000-02-29 01:01:01Z");
    }

    #[test]
    fn tables_align() {
        let t = table(&["A", "BB"], &[vec!["xyz".into(), "1".into()]]);
        assert_eq!(t, "A    BB\nxyz  1\n");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(5), "5s");
        assert_eq!(duration(125), "2m05s");
        assert_eq!(duration(7260), "2h01m");
        assert_eq!(duration(90000), "1d01h");
    }
}
