//! Endpoints by DNS name: the `[dns]` settings, a cluster's `host:port` endpoints, and how
//! an answer becomes endpoints (`strict`: every address; `logical`: one per name). No I/O
//! here: the engine's resolver thread (`core/engine/src/upstream/dns/`) looks the names up
//! and calls [`Config::set_resolved`] on the configuration it then publishes.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::hash::cluster_fingerprint;
use rustls_pki_types::ServerName;

use crate::model::{Cluster, Config, Endpoint};
use crate::tls::UpstreamTls;

/// `[dns]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DnsSettings {
    /// Name servers to ask; empty: `/etc/resolv.conf`, with `/etc/hosts` read first.
    pub servers: Vec<SocketAddr>,
    /// Shortest and longest time an answer is kept, whatever its TTL says.
    pub min_ttl: Duration,
    pub max_ttl: Duration,
}

impl DnsSettings {
    pub const DEFAULT_MIN_TTL_S: u64 = 1;
    pub const DEFAULT_MAX_TTL_S: u64 = 300;
    /// The largest `min_ttl_s` and `max_ttl_s` (one day).
    pub const MAX_TTL_S: u64 = 86_400;

    pub(crate) fn new(servers: Vec<SocketAddr>, min_ttl: Duration, max_ttl: Duration) -> Self {
        DnsSettings {
            servers,
            min_ttl,
            max_ttl,
        }
    }
}

impl Default for DnsSettings {
    fn default() -> Self {
        DnsSettings::new(
            Vec::new(),
            Duration::from_secs(Self::DEFAULT_MIN_TTL_S),
            Duration::from_secs(Self::DEFAULT_MAX_TTL_S),
        )
    }
}

/// `clusters[].dns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DnsMode {
    /// Every address of the answer is an endpoint (Envoy's STRICT_DNS).
    #[default]
    Strict,
    /// The answer's first address is the name's one endpoint (Envoy's LOGICAL_DNS).
    Logical,
}

/// One `"host:port"` endpoint of a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NamedEndpoint {
    /// Lower-cased, as looked up.
    pub host: String,
    /// What each address it resolves to becomes: the configured endpoint with the address
    /// `0.0.0.0:port` (its weight and every other attribute are copied).
    pub endpoint: Endpoint,
}

impl NamedEndpoint {
    pub(crate) fn new(host: String, endpoint: Endpoint) -> Self {
        NamedEndpoint { host, endpoint }
    }

    pub fn port(&self) -> u16 {
        self.endpoint.address.port()
    }

    /// The endpoint for one address of the answer.
    pub fn at(&self, ip: IpAddr) -> Endpoint {
        // `Endpoint` may gain attributes that are not `Copy`.
        #[allow(clippy::clone_on_copy)]
        let mut e = self.endpoint.clone();
        e.address = SocketAddr::new(ip, self.port());
        e
    }
}

impl std::fmt::Display for NamedEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port())
    }
}

impl Cluster {
    /// Whether the cluster names hosts and none has resolved (nor has it an `IP:port`
    /// endpoint): requests to it are answered 503.
    pub fn unresolved(&self) -> bool {
        !self.names.is_empty() && self.endpoints.is_empty()
    }

    /// The endpoints with those that came from `names` replaced by what `answer(host)`
    /// holds now (a host without an answer adds nothing): the `IP:port` endpoints first, an
    /// address already present not added twice.
    pub fn resolved_endpoints(
        &self,
        answer: &dyn Fn(&str) -> Option<Vec<IpAddr>>,
    ) -> Vec<Endpoint> {
        let written = self.endpoints.len().saturating_sub(self.resolved);
        let mut endpoints: Vec<Endpoint> = self.endpoints.iter().take(written).cloned().collect();
        let mut seen: HashSet<SocketAddr> = endpoints.iter().map(|e| e.address).collect();
        for n in &self.names {
            let Some(addresses) = answer(&n.host) else {
                continue;
            };
            let take = match self.dns {
                DnsMode::Strict => addresses.len(),
                DnsMode::Logical => 1,
            };
            for ip in addresses.into_iter().take(take) {
                let e = n.at(ip);
                if seen.insert(e.address) {
                    endpoints.push(e);
                }
            }
        }
        endpoints
    }

    /// Sets the endpoints to [`Cluster::resolved_endpoints`]: whether they changed.
    pub fn set_resolved(&mut self, answer: &dyn Fn(&str) -> Option<Vec<IpAddr>>) -> bool {
        if self.names.is_empty() {
            return false;
        }
        let written = self.endpoints.len().saturating_sub(self.resolved);
        let endpoints = self.resolved_endpoints(answer);
        let changed = endpoints != self.endpoints;
        self.resolved = endpoints.len() - written;
        self.endpoints = endpoints;
        self.fingerprint = cluster_fingerprint(self);
        changed
    }
}

impl Config {
    /// [`Cluster::set_resolved`] for every cluster: whether any cluster's endpoints changed.
    pub fn set_resolved(&mut self, answer: &dyn Fn(&str) -> Option<Vec<IpAddr>>) -> bool {
        let mut changed = false;
        for c in &mut self.clusters {
            changed |= c.set_resolved(answer);
        }
        changed
    }

    /// Whether [`Config::set_resolved`] would change any cluster's endpoints.
    pub fn resolution_differs(&self, answer: &dyn Fn(&str) -> Option<Vec<IpAddr>>) -> bool {
        self.clusters
            .iter()
            .any(|c| !c.names.is_empty() && c.resolved_endpoints(answer) != c.endpoints)
    }

    /// Every host name an endpoint names, each once.
    pub fn dns_hosts(&self) -> Vec<&str> {
        let mut seen: HashSet<&str> = HashSet::new();
        self.clusters
            .iter()
            .flat_map(|c| &c.names)
            .map(|n| n.host.as_str())
            .filter(|h| seen.insert(h))
            .collect()
    }
}

/// `tls` without `sni` for a cluster whose endpoints all name one host (and no `IP:port`):
/// that host is sent and verified, as a client connecting by that name would.
pub(crate) fn default_sni(
    mut tls: UpstreamTls,
    endpoints: &[Endpoint],
    names: &[NamedEndpoint],
) -> UpstreamTls {
    let Some(first) = names.first() else {
        return tls;
    };
    if tls.sni.is_none() && endpoints.is_empty() && names.iter().all(|n| n.host == first.host) {
        let host = first.host.strip_suffix('.').unwrap_or(&first.host);
        tls.sni = ServerName::try_from(host.to_string()).ok();
    }
    tls
}

/// Whether `value` is an address `clusters[].endpoints` accepts: `"IP:port"` or
/// `"host:port"` (port 0 aside, which validation rejects with its own message).
pub fn is_endpoint_address(value: &str) -> bool {
    value.parse::<SocketAddr>().is_ok() || endpoint_name(value).is_some()
}

/// `"host:port"` as an endpoint: the lower-cased host and the port, when the host is a DNS
/// name (labels of `A-Z a-z 0-9 - _`, 1 to 63 characters, not starting or ending with `-`;
/// 253 characters at most; an optional final dot; a last label not all digits, so that a
/// mistyped IPv4 address is not taken for a name).
pub(crate) fn endpoint_name(value: &str) -> Option<(String, u16)> {
    let (host, port) = value.rsplit_once(':')?;
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let port = port.parse::<u16>().ok()?;
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.is_empty() || host.len() > 253 {
        return None;
    }
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !name.split('.').all(label_ok) {
        return None;
    }
    if name
        .rsplit('.')
        .next()
        .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    Some((host.to_ascii_lowercase(), port))
}

/// The address a [`NamedEndpoint`]'s endpoint carries until it is resolved.
pub(crate) fn placeholder(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_names_with_a_port() {
        assert_eq!(
            endpoint_name("Orders.Internal:8080"),
            Some(("orders.internal".into(), 8080))
        );
        assert_eq!(
            endpoint_name("localhost:80"),
            Some(("localhost".into(), 80))
        );
        assert_eq!(
            endpoint_name("svc.ns.svc.cluster.local.:80").map(|n| n.1),
            Some(80)
        );
        for bad in [
            "orders",
            "orders:",
            "orders:x",
            "orders:70000",
            ":80",
            "-a.b:80",
            "a..b:80",
            "a b:80",
            "10.0.0.256:80",
            "1.2.3:80",
            "[::1]:80",
            "::1:80",
        ] {
            assert_eq!(endpoint_name(bad), None, "{bad}");
        }
        assert_eq!(endpoint_name(&format!("{}:80", "a".repeat(64))), None);
    }

    /// `text` with a listener (a configuration needs one).
    fn cluster(text: &str) -> Config {
        crate::parse(&format!(
            "{text}\n[[listeners]]\nname = \"l\"\nbind = \"127.0.0.1:1\"\n"
        ))
        .unwrap()
    }

    #[test]
    fn answers_become_endpoints_after_the_written_ones() {
        let mut config = cluster(
            r#"
            [[clusters]]
            name = "c"
            endpoints = [ "10.0.0.1:80", "a.test:80", { address = "b.test:81", weight = 5, zone = "z1" } ]
            "#,
        );
        assert!(!config.clusters[0].unresolved());
        let before = config.clusters[0].fingerprint;
        let answer = |h: &str| match h {
            "a.test" => Some(vec![
                "10.0.0.2".parse().unwrap(),
                "10.0.0.1".parse().unwrap(),
            ]),
            "b.test" => Some(vec!["10.0.0.3".parse().unwrap()]),
            _ => None,
        };
        assert!(config.set_resolved(&answer));
        let c = &config.clusters[0];
        let got: Vec<(String, u32)> = c
            .endpoints
            .iter()
            .map(|e| (e.address.to_string(), e.weight))
            .collect();
        assert_eq!(
            got,
            [
                ("10.0.0.1:80".into(), 1),
                ("10.0.0.2:80".into(), 1),
                ("10.0.0.3:81".into(), 5)
            ]
        );
        assert_eq!(c.resolved, 2);
        let zone = |i: usize| {
            c.endpoints[i]
                .zone
                .map(|z| c.zones[usize::from(z.0)].as_str())
        };
        assert_eq!(
            (zone(1), zone(2)),
            (None, Some("z1")),
            "the configured zone is kept"
        );
        assert_ne!(c.fingerprint, before);
        assert!(!config.set_resolved(&answer), "same answer, same endpoints");
        assert!(config.set_resolved(&|_| None));
        assert_eq!(config.clusters[0].endpoints.len(), 1);
        assert_eq!(config.clusters[0].fingerprint, before);
    }

    #[test]
    fn tls_to_one_named_host_verifies_that_name() {
        let sni = |endpoints: &str, tls: &str| {
            let text = format!(
                "[[clusters]]\nname = \"c\"\nendpoints = [ {endpoints} ]\ntls = {{ {tls} }}\n"
            );
            cluster(&text).clusters[0]
                .tls
                .as_ref()
                .unwrap()
                .sni
                .as_ref()
                .map(|s| s.to_str().into_owned())
        };
        assert_eq!(
            sni(
                r#""API.example.com:443", { address = "api.example.com:8443", weight = 2 }"#,
                ""
            ),
            Some("api.example.com".into())
        );
        assert_eq!(
            sni(r#""api.example.com:443""#, ""),
            Some("api.example.com".into())
        );
        assert_eq!(sni(r#""a.example.com:443", "b.example.com:443""#, ""), None);
        assert_eq!(sni(r#""a.example.com:443", "10.0.0.1:443""#, ""), None);
        assert_eq!(
            sni(r#""a.example.com:443""#, r#"sni = "other.example""#),
            Some("other.example".into())
        );
    }

    #[test]
    fn logical_takes_the_first_address_and_unresolved_is_known() {
        let mut config = cluster(
            r#"
            [[clusters]]
            name = "c"
            dns = "logical"
            endpoints = [ "a.test:80" ]
            "#,
        );
        assert!(config.clusters[0].unresolved());
        assert_eq!(config.dns_hosts(), ["a.test"]);
        config.set_resolved(&|_| {
            Some(vec![
                "10.0.0.2".parse().unwrap(),
                "10.0.0.3".parse().unwrap(),
            ])
        });
        let c = &config.clusters[0];
        assert_eq!(c.endpoints.len(), 1);
        assert_eq!(c.endpoints[0].address.to_string(), "10.0.0.2:80");
        assert!(!c.unresolved());
    }
}
