//! Listeners: bind addresses, protocol-specific keys, limits, TLS and HTTP/2 settings.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::headers::EditKeys;
use super::{default, Validator};
use crate::check;
use crate::model::{
    AccessLog, Authz, AuthzAction, CertDetails, ForwardClientCert, Http2Settings, HttpLimits,
    HttpListener, Inspect, Listener, ListenerKind, LogFormat,
};
use crate::raw::{
    FileCertDetail, FileEscapedSlashes, FileForwardClientCert, FileHttp2, FileInspectOnTimeout,
    FileListener, FileLogFormat, FileMtlsMode, FileProtocol, FileUnmatched,
};
use crate::tls::MtlsMode;
use ringside_codec::{EscapedSlashes, PathRules};

/// Largest HTTP/2 flow-control window (RFC 9113 §6.9.1).
const MAX_WINDOW: u64 = (1 << 31) - 1;
/// Smallest connection window: HTTP/2 starts every connection at 65535.
const MIN_CONNECTION_WINDOW: u64 = 65_535;
/// SETTINGS_MAX_FRAME_SIZE bounds (RFC 9113 §6.5.2).
const FRAME_SIZES: (u64, u64) = (16_384, (1 << 24) - 1);
use crate::read::Slot;

impl Validator {
    /// No two listeners may bind overlapping addresses: with `SO_REUSEPORT` the kernel would
    /// accept both and split connections between them.
    /// A proxy with no listener serves nothing: an empty or truncated file is a mistake,
    /// and a reload with one would close every listener. So at least one is required.
    pub(super) fn binds(&mut self, slots: &[Slot<FileListener>]) {
        if slots.is_empty() {
            self.err("listeners", "at least one is required");
        }
        let mut seen: Vec<(usize, SocketAddr)> = Vec::new();
        for (i, slot) in slots.iter().enumerate() {
            let Slot::Ok(l) = slot else { continue };
            let Some(Ok(addr)) = l.bind.as_deref().map(check::socket_addr) else {
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
        mesh_given: bool,
        parent: bool,
    ) -> Option<Listener> {
        let p = format!("listeners[{i}]");
        let built = self.clean(|v| {
            // A child's bind is its parent's, filled in by `children`.
            let unbound = SocketAddr::from(([0, 0, 0, 0], 0));
            let bind = match (&l.bind, &l.parent) {
                (Some(_), Some(_)) => {
                    v.err(
                        format!("{p}.bind"),
                        "not with parent: a child listener has no socket of its own (its parent accepts its connections)",
                    );
                    None
                }
                (None, Some(_)) => Some(unbound),
                (None, None) => {
                    v.err(
                        format!("{p}.bind"),
                        "required (or parent, for a listener that serves connections another one accepts)",
                    );
                    None
                }
                (Some(b), None) => match check::socket_addr(b) {
                    Ok(addr) => Some(addr),
                    Err(m) => {
                        v.err(format!("{p}.bind"), m);
                        None
                    }
                },
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
            let tls = l.tls.as_ref().and_then(|t| v.listener_tls(&format!("{p}.tls"), t));
            let mtls = l.mtls.map(|m| match m {
                FileMtlsMode::Strict => MtlsMode::Strict,
                FileMtlsMode::Permissive => MtlsMode::Permissive,
            });
            if mtls.is_some() && l.tls.is_some() {
                v.err(
                    format!("{p}.mtls"),
                    "cannot be set together with \"tls\": an mtls listener serves the [mesh] identity",
                );
            } else if mtls.is_some() && !mesh_given {
                v.err(
                    format!("{p}.mtls"),
                    "requires [mesh].identity (the certificate mtls presents and the trust bundle it verifies clients with)",
                );
            }
            Some(Listener {
                name: l.name.clone(),
                bind: bind?,
                kind: kind?,
                max_connections,
                idle_timeout,
                tls,
                mtls,
                // A child's is its parent's, filled in by `children`.
                transparent: l.transparent.unwrap_or(false),
                parent: l.parent.clone(),
                children: Default::default(),
                inspect: v.inspect(&p, l, parent, idle_timeout),
                close_unmatched: match l.unmatched {
                    Some(FileUnmatched::Close) if !parent => {
                        v.err(
                            format!("{p}.unmatched"),
                            "only on a parent listener (the connections none of its child listeners takes)",
                        );
                        false
                    }
                    u => u == Some(FileUnmatched::Close),
                },
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
            path: PathRules {
                normalize: l.normalize_path.unwrap_or(false),
                merge_slashes: l.merge_slashes.unwrap_or(false),
                escaped_slashes: match l.escaped_slashes {
                    None | Some(FileEscapedSlashes::Keep) => EscapedSlashes::Keep,
                    Some(FileEscapedSlashes::Reject) => EscapedSlashes::Reject,
                    Some(FileEscapedSlashes::Unescape) => EscapedSlashes::Unescape,
                },
            },
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
        let http2 = self.http2(&format!("{p}.http2"), l.http2.as_ref());
        let headers = self.header_edits(
            p,
            &EditKeys {
                request_add: l.request_headers_to_add.as_deref(),
                request_remove: l.request_headers_to_remove.as_deref(),
                response_add: l.response_headers_to_add.as_deref(),
                response_remove: l.response_headers_to_remove.as_deref(),
            },
        );
        let rate_limit = l.rate_limit.as_ref().and_then(|r| {
            let at = format!("{p}.rate_limit");
            self.unkeyed(&at, r, "the listener's one bucket");
            self.rate_limit(&at, r)
        });
        let ip = self.listener_ip_filter(p, l);
        Some(ListenerKind::Http(HttpListener {
            routes: Vec::new(),
            limits,
            access_log,
            authz: Authz {
                rules: Vec::new(),
                default: l
                    .authz_default
                    .map_or(AuthzAction::Allow, super::authz::action),
            },
            http2,
            headers,
            rate_limit,
            ip,
            cert_details: self.cert_details(p, l.client_cert_details.as_deref()),
            forward_client_cert: match l.forward_client_cert {
                None | Some(FileForwardClientCert::SanitizeSet) => ForwardClientCert::SanitizeSet,
                Some(FileForwardClientCert::Sanitize) => ForwardClientCert::Sanitize,
                Some(FileForwardClientCert::AppendForward) => ForwardClientCert::AppendForward,
                Some(FileForwardClientCert::ForwardOnly) => ForwardClientCert::ForwardOnly,
                Some(FileForwardClientCert::AlwaysForwardOnly) => {
                    ForwardClientCert::AlwaysForwardOnly
                }
            },
        }))
    }

    fn http2(&mut self, p: &str, h: Option<&FileHttp2>) -> Http2Settings {
        let d = Http2Settings::default();
        let Some(h) = h else { return d };
        let mut bounded = |key: &str, value: Option<u64>, default: u32, (lo, hi): (u64, u64)| {
            let Some(n) = value else { return default };
            match u32::try_from(n) {
                Ok(n32) if (lo..=hi).contains(&n) => n32,
                _ => {
                    self.err(
                        format!("{p}.{key}"),
                        format!("must be from {lo} to {hi}, got {n}"),
                    );
                    default
                }
            }
        };
        let settings = Http2Settings {
            max_concurrent_streams: bounded(
                "max_concurrent_streams",
                h.max_concurrent_streams,
                d.max_concurrent_streams,
                (1, MAX_WINDOW),
            ),
            initial_stream_window: bounded(
                "initial_stream_window_bytes",
                h.initial_stream_window_bytes,
                d.initial_stream_window,
                (1, MAX_WINDOW),
            ),
            initial_connection_window: bounded(
                "initial_connection_window_bytes",
                h.initial_connection_window_bytes,
                d.initial_connection_window,
                (MIN_CONNECTION_WINDOW, MAX_WINDOW),
            ),
            max_frame_size: bounded(
                "max_frame_bytes",
                h.max_frame_bytes,
                d.max_frame_size,
                FRAME_SIZES,
            ),
            max_resets_per_second: bounded(
                "max_resets_per_second",
                h.max_resets_per_second,
                d.max_resets_per_second,
                (1, u64::from(u32::MAX)),
            ),
            keepalive_interval: None,
            keepalive_timeout: None,
        };
        if h.keepalive_timeout_ms.is_some() && h.keepalive_interval_ms.is_none() {
            self.err(
                format!("{p}.keepalive_timeout_ms"),
                "requires keepalive_interval_ms (without it no PINGs are sent)",
            );
        }
        Http2Settings {
            keepalive_interval: h
                .keepalive_interval_ms
                .map(|ms| self.timeout(format!("{p}.keepalive_interval_ms"), Some(ms), ms.max(1))),
            keepalive_timeout: h
                .keepalive_timeout_ms
                .map(|ms| self.timeout(format!("{p}.keepalive_timeout_ms"), Some(ms), ms.max(1))),
            ..settings
        }
    }

    /// `inspect_timeout_ms` (0: the idle timeout), `inspect_on_timeout`: a parent's (only
    /// a parent reads first bytes to choose a child); `parent`: another listener names this
    /// one its parent.
    fn inspect(&mut self, p: &str, l: &FileListener, parent: bool, idle: Duration) -> Inspect {
        for (key, given) in [
            ("inspect_timeout_ms", l.inspect_timeout_ms.is_some()),
            ("inspect_on_timeout", l.inspect_on_timeout.is_some()),
        ] {
            if given && !parent && l.transparent != Some(true) {
                self.err(
                    format!("{p}.{key}"),
                    "only on a parent listener, or one with transparent = true (a parent reads a connection's first bytes to choose its child listener)",
                );
            }
        }
        let timeout = match l.inspect_timeout_ms {
            None => Duration::from_millis(default::INSPECT_TIMEOUT_MS),
            Some(0) => idle,
            Some(ms) => Duration::from_millis(ms),
        };
        Inspect {
            timeout,
            close_on_timeout: l.inspect_on_timeout == Some(FileInspectOnTimeout::Close),
        }
    }

    /// `client_cert_details`: each detail at most once; an empty list would write an empty
    /// element.
    fn cert_details(&mut self, p: &str, given: Option<&[FileCertDetail]>) -> CertDetails {
        let Some(given) = given else {
            return CertDetails::default();
        };
        let at = format!("{p}.client_cert_details");
        if given.is_empty() {
            self.err(at, "empty: omit it for the default [\"uri\"]");
            return CertDetails::default();
        }
        let mut d = CertDetails {
            uri: false,
            ..CertDetails::default()
        };
        for (i, detail) in given.iter().enumerate() {
            let flag = match detail {
                FileCertDetail::By => &mut d.by,
                FileCertDetail::Hash => &mut d.hash,
                FileCertDetail::Cert => &mut d.cert,
                FileCertDetail::Chain => &mut d.chain,
                FileCertDetail::Subject => &mut d.subject,
                FileCertDetail::Uri => &mut d.uri,
                FileCertDetail::Dns => &mut d.dns,
            };
            if *flag {
                self.err(
                    format!("{at}[{i}]"),
                    format!("duplicate detail {detail:?}").to_lowercase(),
                );
            }
            *flag = true;
        }
        d
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
            ("normalize_path", l.normalize_path.is_some()),
            ("merge_slashes", l.merge_slashes.is_some()),
            ("escaped_slashes", l.escaped_slashes.is_some()),
            ("forward_client_cert", l.forward_client_cert.is_some()),
            ("client_cert_details", l.client_cert_details.is_some()),
            ("access_log", l.access_log.is_some()),
            ("authz_default", l.authz_default.is_some()),
            ("http2", l.http2.is_some()),
            ("request_headers_to_add", l.request_headers_to_add.is_some()),
            (
                "request_headers_to_remove",
                l.request_headers_to_remove.is_some(),
            ),
            (
                "response_headers_to_add",
                l.response_headers_to_add.is_some(),
            ),
            (
                "response_headers_to_remove",
                l.response_headers_to_remove.is_some(),
            ),
            ("rate_limit", l.rate_limit.is_some()),
            ("ip_allow", l.ip_allow.is_some()),
            ("ip_deny", l.ip_deny.is_some()),
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
