//! `--metrics ADDR`: ctld's figures in the Prometheus text format, on `GET /metrics`
//! (deploy/monitoring/ alerts on them). One thread, one connection at a time, each bounded
//! (8 KiB of request head, 2 s to send it); it asks the reconciler for a snapshot and never
//! holds it.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `ringside_ctld_node_connected` | gauge | `node` |
//! | `ringside_ctld_node_generation` | gauge | `node`, `state` (`desired`, `acked`) |
//! | `ringside_ctld_node_push_failing` | gauge | `node` |
//! | `ringside_ctld_pushes_total` | counter | `outcome` |
//! | `ringside_ctld_rollout_state` | gauge | `rollout`, `state` |
//! | `ringside_ctld_rollout_step` | gauge | `rollout` |
//! | `ringside_ctld_rollout_error_rate_percent` | gauge | `rollout`, `group` |
//! | `ringside_ctld_rollout_decisions_total` | counter | `action` |
//!
//! With `--xds`, the xDS source's figures follow (`sources/xds/stats.rs`).

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use std::sync::Arc;

use crate::persist::RolloutState;
use crate::reconciler::metrics::Metrics;
use crate::reconciler::{ApiCall, Handle};
use crate::sources::xds;

const MAX_HEAD: usize = 8 * 1024;

/// Serves `listener` until the process exits.
pub fn serve(handle: Handle, xds: Option<Arc<xds::Stats>>, listener: TcpListener) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        if let Err(e) = answer(&handle, xds.as_deref(), stream) {
            tracing::debug!(error = %e, "metrics request");
        }
    }
}

fn answer(handle: &Handle, xds: Option<&xds::Stats>, mut s: TcpStream) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(buf.get(..n).unwrap_or_default());
    }
    let line = String::from_utf8_lossy(&head);
    let target = line.split_whitespace().take(2).collect::<Vec<_>>();
    let (status, body) = match target.as_slice() {
        ["GET", "/metrics"] => match handle.ask(ApiCall::Metrics) {
            Ok(m) => {
                let mut body = render(&m);
                if let Some(x) = xds {
                    x.render(&mut body);
                }
                ("200 OK", body)
            }
            Err(e) => ("503 Service Unavailable", format!("{e}\n")),
        },
        _ => ("404 Not Found", "GET /metrics\n".to_owned()),
    };
    write!(
        s,
        "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )?;
    s.flush()
}

/// The exposition. Node ids and actions need no escaping (their characters are restricted).
pub fn render(m: &Metrics) -> String {
    let mut o = String::new();
    let family = |o: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    family(
        &mut o,
        "ringside_ctld_node_connected",
        "gauge",
        "1 while a process of the node is connected.",
    );
    for n in &m.nodes {
        let _ = writeln!(
            o,
            "ringside_ctld_node_connected{{node=\"{}\"}} {}",
            n.node,
            u8::from(n.connected)
        );
    }
    family(
        &mut o,
        "ringside_ctld_node_generation",
        "gauge",
        "The node's current generation in ctld (desired) and the one it last acknowledged (acked).",
    );
    for n in &m.nodes {
        let _ = writeln!(
            o,
            "ringside_ctld_node_generation{{node=\"{}\",state=\"desired\"}} {}",
            n.node, n.desired
        );
        if let Some(a) = n.acked {
            let _ = writeln!(
                o,
                "ringside_ctld_node_generation{{node=\"{}\",state=\"acked\"}} {a}",
                n.node
            );
        }
    }
    family(
        &mut o,
        "ringside_ctld_node_push_failing",
        "gauge",
        "1 while the node's last push was refused or not acknowledged.",
    );
    for n in &m.nodes {
        let _ = writeln!(
            o,
            "ringside_ctld_node_push_failing{{node=\"{}\"}} {}",
            n.node,
            u8::from(n.failing)
        );
    }
    family(&mut o, "ringside_ctld_pushes_total", "counter", "Pushes to proxies by outcome: acked, refused (the node rejected the configuration), timed_out, failed.");
    for (outcome, n) in &m.pushes {
        let _ = writeln!(o, "ringside_ctld_pushes_total{{outcome=\"{outcome}\"}} {n}");
    }
    if let Some(r) = &m.rollout {
        family(
            &mut o,
            "ringside_ctld_rollout_state",
            "gauge",
            "The current or last rollout's state (1 for the state it is in).",
        );
        for s in RolloutState::ALL {
            let v = u8::from(s.name() == r.state);
            let _ = writeln!(
                o,
                "ringside_ctld_rollout_state{{rollout=\"{}\",state=\"{}\"}} {v}",
                r.id,
                s.name()
            );
        }
        family(
            &mut o,
            "ringside_ctld_rollout_step",
            "gauge",
            "The rollout's current step (1-based).",
        );
        let _ = writeln!(
            o,
            "ringside_ctld_rollout_step{{rollout=\"{}\"}} {}",
            r.id, r.step
        );
        family(
            &mut o,
            "ringside_ctld_rollout_error_rate_percent",
            "gauge",
            "5xx answers over requests in the last window judged, canary and baseline.",
        );
        for (group, rate) in &r.rates {
            let _ = writeln!(o, "ringside_ctld_rollout_error_rate_percent{{rollout=\"{}\",group=\"{group}\"}} {rate}", r.id);
        }
    }
    family(
        &mut o,
        "ringside_ctld_rollout_decisions_total",
        "counter",
        "Rollout decisions since ctld started, by action.",
    );
    for (action, n) in &m.decisions {
        let _ = writeln!(
            o,
            "ringside_ctld_rollout_decisions_total{{action=\"{action}\"}} {n}"
        );
    }
    o
}
