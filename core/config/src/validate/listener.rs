//! Listeners: bind addresses, protocol-specific keys and limits.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::{default, Validator};
use crate::check;
use crate::model::{AccessLog, HttpLimits, HttpListener, Listener, ListenerKind, LogFormat};
use crate::raw::{FileListener, FileLogFormat, FileProtocol};
use crate::read::Slot;

impl Validator {
    /// No two listeners may bind overlapping addresses: with `SO_REUSEPORT` the kernel would
    /// accept both and split connections between them.
    pub(super) fn binds(&mut self, slots: &[Slot<FileListener>]) {
        let mut seen: Vec<(usize, SocketAddr)> = Vec::new();
        for (i, slot) in slots.iter().enumerate() {
            let Slot::Ok(l) = slot else { continue };
            let Ok(addr) = check::socket_addr(&l.bind) else {
                continue;
            };
            if let Some(&(first, other)) = seen.iter().find(|(_, other)| overlaps(addr, *other)) {
                let message = if addr == other {
                    format!("duplicate bind address {addr} (also listeners[{first}].bind)")
                } else {
                    format!("bind address {addr} overlaps {other} (listeners[{first}].bind)")
                };
                self.err(format!("listeners[{i}].bind"), message);
            } else {
                seen.push((i, addr));
            }
        }
    }

    pub(super) fn listener(
        &mut self,
        i: usize,
        l: &FileListener,
        clusters: &HashMap<&str, usize>,
    ) -> Option<Listener> {
        let p = format!("listeners[{i}]");
        let built = self.clean(|v| {
            let bind = match check::socket_addr(&l.bind) {
                Ok(addr) => Some(addr),
                Err(m) => {
                    v.err(format!("{p}.bind"), m);
                    None
                }
            };
            let max_connections = v.positive(
                format!("{p}.max_connections"),
                l.max_connections,
                default::MAX_CONNECTIONS,
            );
            let idle_timeout = v.timeout(
                format!("{p}.idle_timeout_ms"),
                l.idle_timeout_ms,
                default::IDLE_TIMEOUT_MS,
            );
            let kind = match l.protocol.unwrap_or(FileProtocol::Http) {
                FileProtocol::Http => v.http_listener(&p, l),
                FileProtocol::Tcp => v.tcp_listener(&p, l, clusters),
            };
            Some(Listener {
                name: l.name.clone(),
                bind: bind?,
                kind: kind?,
                max_connections,
                idle_timeout,
            })
        });
        built.flatten()
    }

    fn http_listener(&mut self, p: &str, l: &FileListener) -> Option<ListenerKind> {
        if l.cluster.is_some() {
            self.err(
                format!("{p}.cluster"),
                "only valid on protocol = \"tcp\" listeners (an http listener's routes name clusters)",
            );
        }
        let limits = HttpLimits {
            max_header_bytes: self.positive(
                format!("{p}.max_header_bytes"),
                l.max_header_bytes,
                default::MAX_HEADER_BYTES,
            ),
            max_headers: self.positive(
                format!("{p}.max_headers"),
                l.max_headers,
                default::MAX_HEADERS,
            ),
            max_uri_bytes: self.positive(
                format!("{p}.max_uri_bytes"),
                l.max_uri_bytes,
                default::MAX_URI_BYTES,
            ),
            request_head_timeout: self.timeout(
                format!("{p}.request_head_timeout_ms"),
                l.request_head_timeout_ms,
                default::REQUEST_HEAD_TIMEOUT_MS,
            ),
            max_request_body_bytes: l.max_request_body_bytes,
        };
        let access_log = l.access_log.as_ref().and_then(|a| {
            if a.path.is_empty() || a.path.contains('\0') {
                self.err(
                    format!("{p}.access_log.path"),
                    format!("invalid path {:?}", a.path),
                );
                return None;
            }
            Some(AccessLog {
                path: std::path::PathBuf::from(&a.path),
                format: match a.format {
                    None | Some(FileLogFormat::Json) => LogFormat::Json,
                    Some(FileLogFormat::Combined) => LogFormat::Combined,
                },
            })
        });
        Some(ListenerKind::Http(HttpListener {
            routes: Vec::new(),
            limits,
            access_log,
        }))
    }

    fn tcp_listener(
        &mut self,
        p: &str,
        l: &FileListener,
        clusters: &HashMap<&str, usize>,
    ) -> Option<ListenerKind> {
        let http_only = [
            (
                "request_head_timeout_ms",
                l.request_head_timeout_ms.is_some(),
            ),
            ("max_header_bytes", l.max_header_bytes.is_some()),
            ("max_headers", l.max_headers.is_some()),
            ("max_uri_bytes", l.max_uri_bytes.is_some()),
            ("max_request_body_bytes", l.max_request_body_bytes.is_some()),
            ("access_log", l.access_log.is_some()),
        ];
        for (key, present) in http_only {
            if present {
                self.err(
                    format!("{p}.{key}"),
                    "only valid on protocol = \"http\" listeners",
                );
            }
        }
        let Some(cluster) = &l.cluster else {
            self.err(
                p,
                "missing field \"cluster\", required when protocol = \"tcp\"",
            );
            return None;
        };
        let id = self.cluster_ref(format!("{p}.cluster"), cluster, clusters)?;
        Some(ListenerKind::Tcp { cluster: id })
    }
}

/// Two binds that the kernel would both accept (with `SO_REUSEPORT`) yet that compete for
/// the same connections. Port 0 never overlaps: each bind gets its own ephemeral port.
fn overlaps(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port()
        && a.port() != 0
        && a.is_ipv4() == b.is_ipv4()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}
