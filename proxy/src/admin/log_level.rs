//! The log filter, changeable at run time (`GET`/`POST /log-level`).
//!
//! `cli::init_logging` installs the filter behind a `tracing_subscriber::reload` layer and
//! keeps its handle here. Changing it rebuilds tracing's callsite interest cache, so a
//! disabled event still costs one cached "never" check and never reaches the layer's lock.

use std::sync::Mutex;

use tracing_subscriber::{reload, EnvFilter, Registry};

/// The running log filter and the handle that replaces it.
pub struct LogLevel {
    handle: reload::Handle<EnvFilter, Registry>,
    /// The filter as last set, in tracing's own spelling (`EnvFilter`'s `Display`).
    current: Mutex<String>,
}

impl LogLevel {
    pub fn new(handle: reload::Handle<EnvFilter, Registry>, current: String) -> LogLevel {
        LogLevel {
            handle,
            current: Mutex::new(current),
        }
    }

    pub fn current(&self) -> String {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the filter; returns the new one as tracing spells it.
    pub fn set(&self, spec: &str) -> Result<String, String> {
        let filter = parse(spec)?;
        let shown = filter.to_string();
        // Hold the lock across the swap so that concurrent changes cannot leave `current`
        // naming a filter other than the one installed.
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        self.handle
            .reload(filter)
            .map_err(|e| format!("cannot change the log filter: {e}"))?;
        *current = shown.clone();
        Ok(shown)
    }
}

const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

fn is_level(s: &str) -> bool {
    LEVELS.iter().any(|l| l.eq_ignore_ascii_case(s.trim()))
}

/// A level (`debug`) or a comma-separated list of tracing directives whose every part names
/// a level (`info,ringside_engine=debug`). Stricter than `EnvFilter`, which would take a
/// misspelt level such as `debg` for a target name and silently enable everything in it.
pub fn parse(spec: &str) -> Result<EnvFilter, String> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Err("empty log level; expected one of off, error, warn, info, debug, trace".into());
    }
    for directive in spec.split(',') {
        let level = match directive.rsplit_once('=') {
            Some((target, level)) if !target.trim().is_empty() => level,
            Some(_) => {
                return Err(format!(
                    "{directive:?}: a directive needs a target before '='"
                ))
            }
            None => directive,
        };
        if !is_level(level) {
            return Err(format!(
                "{directive:?}: {level:?} is not a log level (off, error, warn, info, debug, trace)"
            ));
        }
    }
    EnvFilter::try_new(spec).map_err(|e| format!("{spec:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_levels_and_directives() {
        for ok in [
            "debug",
            "WARN",
            " info ",
            "info,ringside_engine=debug",
            "ringside_proxy::admin=trace",
        ] {
            assert!(parse(ok).is_ok(), "{ok:?} rejected");
        }
    }

    #[test]
    fn rejects_what_is_not_a_level() {
        for bad in [
            "",
            "debg",
            "loud",
            "=debug",
            "info,ringside_engine=verbose",
            "info,",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
