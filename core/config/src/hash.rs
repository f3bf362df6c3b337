//! FNV-1a 64: the content hash of a file and the fingerprint of a cluster.
//!
//! Chosen for being tiny, dependency-free and stable across builds and platforms (unlike
//! `std`'s `DefaultHasher`), so hashes can be compared between processes and logged.

use std::fmt;

use crate::model::{Cluster, HashKey, Lb, UpstreamProtocol};
use crate::tls::CertKey;

const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// An FNV-1a 64 hasher; also a `fmt::Write` so canonical renderings need no allocation.
pub(crate) struct Fnv64(u64);

impl Fnv64 {
    pub(crate) fn new() -> Self {
        Fnv64(OFFSET_BASIS)
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(PRIME);
        }
    }

    pub(crate) fn finish(&self) -> u64 {
        self.0
    }
}

impl fmt::Write for Fnv64 {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write(s.as_bytes());
        Ok(())
    }
}

pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h = Fnv64::new();
    h.write(bytes);
    h.finish()
}

/// Fingerprint of every field of `cluster` except the fingerprint itself. Strings are
/// length-prefixed so that no two different clusters render the same.
pub(crate) fn cluster_fingerprint(cluster: &Cluster) -> u64 {
    use fmt::Write as _;

    let mut h = Fnv64::new();
    let lb = match cluster.lb {
        Lb::RoundRobin => "round_robin",
        Lb::LeastRequest => "least_request",
        Lb::Random => "random",
        Lb::RingHash => "ring_hash",
    };
    // Writing into an Fnv64 cannot fail.
    let _ = write!(
        h,
        "name={}:{};lb={lb};connect_timeout_ms={};max_idle_per_endpoint={};idle_timeout_ms={};fail_timeout_ms={};",
        cluster.name.len(),
        cluster.name,
        cluster.connect_timeout.as_millis(),
        cluster.max_idle_per_endpoint,
        cluster.idle_timeout.as_millis(),
        cluster.fail_timeout.as_millis(),
    );
    let _ = match &cluster.hash_key {
        None => write!(h, "hash_key=none;"),
        Some(HashKey::SourceIp) => write!(h, "hash_key=source_ip;"),
        Some(HashKey::Header(n)) => write!(h, "hash_key=header:{}:{n};", n.len()),
        Some(HashKey::Cookie(n)) => write!(h, "hash_key=cookie:{}:{n};", n.len()),
    };
    if cluster.original_dst {
        h.write(b"kind=original_dst;");
    }
    let _ = write!(h, "endpoints={};", cluster.endpoints.len());
    for e in &cluster.endpoints {
        let _ = write!(h, "{}*{};", e.address, e.weight);
        if let Some(z) = e.zone {
            let _ = write!(h, "zone={};", z.0);
        }
        if e.priority != 0 {
            let _ = write!(h, "priority={};", e.priority);
        }
        if e.down {
            h.write(b"down;");
        }
    }
    let _ = write!(h, "overprovisioning={};", cluster.overprovisioning_percent);
    if let Some(w) = &cluster.zone_weights {
        let _ = write!(h, "zone_weights={w:?};");
    }
    let _ = write!(h, "zones={};", cluster.zones.len());
    for z in &cluster.zones {
        let _ = write!(h, "{}:{z};", z.len());
    }
    if let Some(z) = cluster.zone_aware {
        let local = z.local.map_or(-1, |l| i32::from(l.0));
        let _ = write!(h, "zone_aware={local}/{};", z.min_healthy_percent);
    }
    let _ = write!(h, "names={};dns={:?};", cluster.names.len(), cluster.dns);
    for n in &cluster.names {
        let _ = write!(
            h,
            "{}:{n}*{}/{}{};",
            n.host.len(),
            n.endpoint.weight,
            n.endpoint.priority,
            if n.endpoint.down { "/down" } else { "" }
        );
    }
    let protocol = match cluster.protocol {
        UpstreamProtocol::Http1 => "http1",
        UpstreamProtocol::Http2 => "http2",
        UpstreamProtocol::Auto => "auto",
    };
    let _ = write!(h, "protocol={protocol};");
    match &cluster.tls {
        None => h.write(b"tls=none;"),
        Some(t) => {
            let sni = t.sni.as_ref().map(|s| s.to_str().into_owned());
            let sni = sni.as_deref().unwrap_or("");
            let _ = write!(
                h,
                "tls=sni:{}:{sni};roots:{};",
                sni.len(),
                t.roots.roots.len()
            );
            // The trust anchors themselves: a changed CA is a different cluster.
            for anchor in &t.roots.roots {
                let _ = write!(h, "{}:", anchor.subject.len());
                h.write(&anchor.subject);
                let _ = write!(h, "{}:", anchor.subject_public_key_info.len());
                h.write(&anchor.subject_public_key_info);
            }
            match &t.client {
                None => h.write(b"client=none;"),
                Some(k) => cert_chain(&mut h, k),
            }
        }
    }
    match &cluster.mtls {
        None => h.write(b"mtls=none;"),
        Some(m) => {
            let _ = write!(h, "mtls=peer:{}:{};", m.peer.len(), m.peer);
        }
    }
    match &cluster.circuit_breaker {
        None => h.write(b"circuit_breaker=none;"),
        Some(b) => {
            let _ = write!(
                h,
                "circuit_breaker={:?},{:?},{:?};",
                b.max_connections, b.max_pending_requests, b.max_requests
            );
        }
    }
    // Debug quotes and escapes the one string (the check's path): unambiguous.
    let _ = write!(
        h,
        "outlier={:?};health_check={:?};",
        cluster.outlier, cluster.health_check
    );
    h.finish()
}

/// A certificate chain, length-prefixed (the key is implied by the certificate).
fn cert_chain(h: &mut Fnv64, k: &CertKey) {
    use fmt::Write as _;

    let _ = write!(h, "client={};", k.key.cert.len());
    for c in &k.key.cert {
        let _ = write!(h, "{}:", c.len());
        h.write(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_the_reference_vectors() {
        // From the FNV reference test suite.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
