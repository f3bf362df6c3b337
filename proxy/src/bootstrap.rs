//! A proxy started with `--ctld` and no `--config`: it binds nothing (no listener, no
//! control socket, no admin endpoint) until ringside-ctld pushes its first configuration,
//! then starts on it exactly as on a file (`start.rs`), process settings included.
//!
//! The ctld client thread (`ctld.rs`) connects, says hello and hands each valid push to this,
//! the main thread, which starts on it and answers whether it could. Meanwhile the main
//! thread logs that it waits (at once, then every [`WAIT_LOG_EVERY`]), exits on SIGTERM or
//! SIGINT, and, with `--bootstrap-timeout`, exits with an error when nothing has started by
//! then.

use std::path::Path;
use std::process::ExitCode;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGHUP, SIGUSR1};

use crate::admin::LogLevel;
use crate::cli::{Cli, Event};
use crate::control::Context;
use crate::start::Source;

/// How often the wait is logged again.
const WAIT_LOG_EVERY: Duration = Duration::from_secs(10);

/// Waits for ctld's first configuration and starts on it. `Err` is the exit code: a signal
/// (success) or the bootstrap timeout (failure).
pub fn wait(
    cli: &Cli,
    socket: &Path,
    tx: &Sender<Event>,
    rx: &Receiver<Event>,
    log: Option<Arc<LogLevel>>,
    trim: Option<fn()>,
) -> Result<Arc<Context>, ExitCode> {
    let node_id = cli
        .node_id
        .clone()
        .unwrap_or_else(crate::settings::host_name);
    let labels = cli.node_labels.iter().cloned().collect();
    crate::ctld::spawn_boot(socket.to_path_buf(), node_id.clone(), labels, tx.clone());
    let began = Instant::now();
    let deadline = cli.bootstrap_timeout.map(|t| began + t);
    let mut state = "connecting".to_owned();
    tracing::info!(ctld = %socket.display(), node = %node_id, "waiting for the first configuration from ringside-ctld; nothing is bound until it comes");
    let mut next_log = began + WAIT_LOG_EVERY;
    loop {
        let now = Instant::now();
        let wake = deadline.map_or(next_log, |d| d.min(next_log));
        let event = match rx.recv_timeout(wake.saturating_duration_since(now)) {
            Ok(e) => e,
            Err(RecvTimeoutError::Disconnected) => return Err(ExitCode::FAILURE),
            Err(RecvTimeoutError::Timeout) => {
                let now = Instant::now();
                if deadline.is_some_and(|d| now >= d) {
                    let waited = cli.bootstrap_timeout.unwrap_or_default();
                    eprintln!(
                        "ringside: no configuration from ringside-ctld at {} within {} (--bootstrap-timeout; ctld: {state}); exiting",
                        socket.display(),
                        shown(waited),
                    );
                    return Err(ExitCode::FAILURE);
                }
                if now >= next_log {
                    let waited = shown(now.duration_since(began));
                    tracing::info!(ctld = %socket.display(), node = %node_id, waited = %waited, state = %state, "still waiting for the first configuration from ringside-ctld");
                    next_log = now + WAIT_LOG_EVERY;
                }
                continue;
            }
        };
        match event {
            Event::CtldState(s) => state = s,
            Event::FirstConfig(first) => {
                let source = Source::Ctld {
                    generation: first.generation,
                    node_id: node_id.clone(),
                };
                let started =
                    crate::start::start(cli, first.config, &source, tx, log.clone(), trim);
                let result = match started {
                    Ok(ctx) => Ok(ctx),
                    Err(e) => {
                        tracing::error!(generation = first.generation, error = %e, "cannot start on ctld's configuration; still waiting");
                        state = format!("generation {} did not start: {e}", first.generation);
                        Err(e)
                    }
                };
                let ctx = result.as_ref().ok().cloned();
                let _ = first.started.send(result);
                if let Some(ctx) = ctx {
                    return Ok(ctx);
                }
            }
            Event::Signal(SIGHUP) | Event::Signal(SIGUSR1) => {
                tracing::info!("no configuration yet: nothing to reload or reopen");
            }
            Event::Signal(_) | Event::DrainRequested => {
                tracing::info!("stopped before any configuration came from ringside-ctld");
                return Err(ExitCode::SUCCESS);
            }
            Event::Drained => {}
        }
    }
}

/// `30s`, `1.5s`, `250ms`: as the flag is written.
fn shown(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else if d.as_secs() == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}
