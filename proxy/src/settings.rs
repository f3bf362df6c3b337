//! Process settings: the `[proxy]` keys a process takes once, at start, and keeps until it
//! restarts (the worker count, the I/O driver, its sockets, its node id). A reload or a push
//! from ctld that changes one of them is applied in every other respect; the keys that wait
//! for a restart are named in the log, in the `ack` to ctld and so in `ringsidectl status`.
//!
//! Each key is compared as the process would use it: the `--ctld`, `--node-id` and
//! `--control-socket` flags override the file, so a pushed value under a flag waits for
//! nothing.

use std::net::SocketAddr;
use std::path::PathBuf;

use ringside_config::{Config, DriverChoice};

/// What the command line sets over the configuration.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub ctld: Option<PathBuf>,
    pub node_id: Option<String>,
    pub control_socket: Option<PathBuf>,
}

/// The process settings in force: fixed at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSettings {
    pub workers: usize,
    pub driver: DriverChoice,
    pub admin: Option<SocketAddr>,
    pub control_socket: PathBuf,
    pub ctld: Option<PathBuf>,
    pub node_id: String,
}

impl ProcessSettings {
    /// The settings a process started with `config` under these flags uses.
    pub fn of(flags: &Overrides, config: &Config) -> ProcessSettings {
        let p = &config.proxy;
        ProcessSettings {
            workers: p.workers,
            driver: p.driver,
            admin: p.admin,
            control_socket: flags
                .control_socket
                .clone()
                .or_else(|| p.control_socket.clone())
                .unwrap_or_else(ringside_wire::default_proxy_socket),
            ctld: flags.ctld.clone().or_else(|| p.ctld.clone()),
            node_id: flags
                .node_id
                .clone()
                .or_else(|| p.node_id.clone())
                .unwrap_or_else(host_name),
        }
    }

    /// The keys of `config` whose value differs from the one this process runs with, in
    /// the order of docs/config.md.
    pub fn pending(&self, flags: &Overrides, config: &Config) -> Vec<String> {
        let new = ProcessSettings::of(flags, config);
        [
            ("proxy.workers", self.workers != new.workers),
            ("proxy.driver", self.driver != new.driver),
            ("proxy.ctld", self.ctld != new.ctld),
            ("proxy.node_id", self.node_id != new.node_id),
            (
                "proxy.control_socket",
                self.control_socket != new.control_socket,
            ),
            ("proxy.admin", self.admin != new.admin),
        ]
        .into_iter()
        .filter(|(_, changed)| *changed)
        .map(|(key, _)| key.to_owned())
        .collect()
    }
}

/// The node id when neither `--node-id` nor `proxy.node_id` names one: the host name, if it
/// is a valid node id.
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let name = if rc == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(buf.get(..end).unwrap_or_default()).into_owned()
    } else {
        String::new()
    };
    if ringside_wire::validate_node_id(&name).is_ok() {
        name
    } else {
        "ringside".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(proxy: &str) -> Config {
        let text =
            format!("[proxy]\n{proxy}\n[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n");
        ringside_config::parse(&text).unwrap()
    }

    #[test]
    fn pending_names_the_changed_process_keys_only() {
        let flags = Overrides::default();
        let running = ProcessSettings::of(&flags, &config("workers = 1\nnode_id = \"a\""));
        let same = config("workers = 1\nnode_id = \"a\"\ntrace_sample_rate = 0.5");
        assert!(running.pending(&flags, &same).is_empty());
        let changed =
            config("workers = 2\nnode_id = \"a\"\ndriver = \"epoll\"\nadmin = \"127.0.0.1:9901\"");
        assert_eq!(
            running.pending(&flags, &changed),
            ["proxy.workers", "proxy.driver", "proxy.admin"]
        );
    }

    #[test]
    fn a_flag_overrides_the_pushed_value() {
        let flags = Overrides {
            node_id: Some("web-1".into()),
            control_socket: Some("/tmp/x.sock".into()),
            ..Overrides::default()
        };
        let running = ProcessSettings::of(&flags, &config("workers = 1"));
        let pushed = config("workers = 1\nnode_id = \"b\"\ncontrol_socket = \"/tmp/y.sock\"");
        assert!(running.pending(&flags, &pushed).is_empty());
        let unflagged = Overrides::default();
        assert_eq!(
            running.pending(&unflagged, &pushed),
            ["proxy.node_id", "proxy.control_socket"]
        );
    }
}
