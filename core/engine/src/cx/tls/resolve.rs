//! SNI certificate selection for `listeners[].tls`.
//!
//! The ClientHello's server name is compared with each certificate's DNS SANs in
//! configuration order: exact match (case-insensitive) or `*.` wildcard standing for
//! exactly one label. No match, or no SNI at all: the first certificate, the default.

use std::sync::Arc;

use ringside_config::CertKey;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Picks a listener's certificate by SNI.
#[derive(Debug)]
pub(super) struct BySni {
    /// (lower-case DNS names, key), in configuration order; never empty.
    certs: Vec<(Vec<String>, Arc<CertifiedKey>)>,
}

impl BySni {
    /// `None` when `certs` is empty (validation never lets that through).
    pub(super) fn new(certs: &[CertKey]) -> Option<BySni> {
        if certs.is_empty() {
            return None;
        }
        Some(BySni {
            certs: certs
                .iter()
                .map(|c| (c.dns_names.clone(), Arc::clone(&c.key)))
                .collect(),
        })
    }

    /// Index of the certificate served for `sni`.
    pub(super) fn pick(&self, sni: Option<&str>) -> usize {
        pick(self.certs.iter().map(|(names, _)| names.as_slice()), sni)
    }
}

/// Index of the first certificate, among each one's DNS names, covering `sni`; 0 (the
/// default) without a match or an SNI.
pub(super) fn pick<'a>(mut certs: impl Iterator<Item = &'a [String]>, sni: Option<&str>) -> usize {
    let Some(sni) = sni else { return 0 };
    let sni = sni.trim_end_matches('.').to_ascii_lowercase();
    certs
        .position(|names| names.iter().any(|n| name_matches(n, &sni)))
        .unwrap_or(0)
}

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let i = self.pick(hello.server_name());
        self.certs.get(i).map(|(_, key)| Arc::clone(key))
    }
}

/// `pattern` (a lower-case SAN) covers `host` (lower-case): equal, or `*.rest` where `host`
/// is one label followed by `.rest`.
pub(super) fn name_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(rest) => host
            .split_once('.')
            .is_some_and(|(label, tail)| !label.is_empty() && tail == rest),
        None => pattern == host,
    }
}
