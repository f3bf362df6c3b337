//! Clusters: balancing policy, endpoints, pool and health settings, upstream protocol and
//! TLS, fingerprint.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::{default, Validator};
use crate::check::{self, MAX_ENDPOINT_WEIGHT};
use crate::dns::{self, DnsMode, NamedEndpoint};
use crate::hash::cluster_fingerprint;
use crate::model::{
    Cluster, Endpoint, HashCookie, HashKey, Lb, UpstreamProtocol, ZoneAware, ZoneId,
};
use crate::raw::{
    FileCluster, FileDnsMode, FileEndpoint, FileHashCookie, FileLb, FileUpstreamProtocol,
};

/// `zone_min_healthy_percent`'s default (Envoy's overprovisioning factor of 1.4, inverted).
const DEFAULT_ZONE_MIN_HEALTHY_PERCENT: u64 = 70;
/// `overprovisioning_percent`'s default (Envoy's overprovisioning factor of 1.4).
const DEFAULT_OVERPROVISIONING_PERCENT: u16 = 140;
/// The longest `hash_cookie.ttl_s`: ten years.
const MAX_COOKIE_TTL_S: u64 = 315_360_000;
/// The highest `endpoints[].priority`.
const MAX_PRIORITY: u32 = 255;

impl Validator {
    pub(super) fn cluster(
        &mut self,
        i: usize,
        c: &FileCluster,
        mesh_given: bool,
        proxy_zone: Option<&str>,
    ) -> Option<Cluster> {
        let p = format!("clusters[{i}]");
        let mut cluster = self.clean(|v| {
            let lb = match c.lb {
                None | Some(FileLb::RoundRobin) => Lb::RoundRobin,
                Some(FileLb::LeastRequest) => Lb::LeastRequest,
                Some(FileLb::Random) => Lb::Random,
                Some(FileLb::RingHash) => Lb::RingHash,
            };
            let (endpoints, names, mut zones) =
                v.endpoints(&p, c.endpoints.as_deref().unwrap_or_default());
            let zone_aware = v.zone_aware(&p, c, lb, &zones, proxy_zone);
            let zone_weights = v.zone_weights(&p, c, lb, &mut zones);
            let hash_key = match (lb, &c.hash_key) {
                (Lb::RingHash, None) => {
                    v.err(
                        &*p,
                        "missing field \"hash_key\", required when lb = \"ring_hash\"",
                    );
                    None
                }
                (Lb::RingHash, Some(key)) => match check::hash_key(key) {
                    Ok(key) => Some(key),
                    Err(m) => {
                        v.err(format!("{p}.hash_key"), m);
                        None
                    }
                },
                (_, Some(_)) => {
                    v.err(
                        format!("{p}.hash_key"),
                        "only valid with lb = \"ring_hash\"",
                    );
                    None
                }
                (_, None) => None,
            };
            let hash_cookie = c
                .hash_cookie
                .as_ref()
                .and_then(|hc| v.hash_cookie(&p, hc, hash_key.as_ref()));
            let max_idle_per_endpoint = match check::count(
                c.max_idle_per_endpoint
                    .unwrap_or(default::MAX_IDLE_PER_ENDPOINT),
            ) {
                Ok(n) => n,
                Err(m) => {
                    v.err(format!("{p}.max_idle_per_endpoint"), m);
                    0
                }
            };
            let protocol = match c.protocol {
                None | Some(FileUpstreamProtocol::Http1) => UpstreamProtocol::Http1,
                Some(FileUpstreamProtocol::Http2) => UpstreamProtocol::Http2,
                Some(FileUpstreamProtocol::Auto) => UpstreamProtocol::Auto,
            };
            let tls = c
                .tls
                .as_ref()
                .and_then(|t| v.upstream_tls(&format!("{p}.tls"), t))
                .map(|t| dns::default_sni(t, &endpoints, &names));
            let mtls = c.mtls.as_ref().and_then(|m| v.upstream_mtls(&format!("{p}.mtls"), m));
            if c.mtls.is_some() && c.tls.is_some() {
                v.err(
                    format!("{p}.mtls"),
                    "cannot be set together with \"tls\": mtls uses the [mesh] identity and trust bundle",
                );
            } else if c.mtls.is_some() && !mesh_given {
                v.err(
                    format!("{p}.mtls"),
                    "requires [mesh].identity (the certificate mtls presents and the trust bundle it verifies the upstream with)",
                );
            }
            let fail_timeout = v.timeout(
                format!("{p}.fail_timeout_ms"),
                c.fail_timeout_ms,
                default::FAIL_TIMEOUT_MS,
            );
            Cluster {
                name: c.name.clone(),
                lb,
                endpoints,
                names,
                dns: match c.dns {
                    None | Some(FileDnsMode::Strict) => DnsMode::Strict,
                    Some(FileDnsMode::Logical) => DnsMode::Logical,
                },
                resolved: 0,
                connect_timeout: v.timeout(
                    format!("{p}.connect_timeout_ms"),
                    c.connect_timeout_ms,
                    default::CONNECT_TIMEOUT_MS,
                ),
                hash_key,
                hash_cookie,
                max_idle_per_endpoint,
                idle_timeout: v.timeout(
                    format!("{p}.idle_timeout_ms"),
                    c.idle_timeout_ms,
                    default::POOL_IDLE_TIMEOUT_MS,
                ),
                fail_timeout,
                outlier: v.outlier(&p, c, fail_timeout),
                health_check: v.health_check(&p, c, protocol),
                protocol,
                tls,
                mtls,
                retry_budget: v.retry_budget(&p, c.retry_budget.as_ref()),
                circuit_breaker: c
                    .circuit_breaker
                    .as_ref()
                    .and_then(|b| v.circuit_breaker(&format!("{p}.circuit_breaker"), b)),
                zones,
                zone_aware,
                zone_weights,
                fingerprint: 0,
                original_dst: v.original_dst_kind(&p, c),
                panic_threshold_percent: c.panic_threshold_percent.and_then(|n| {
                    match u8::try_from(n) {
                        Ok(n) if n <= 100 => Some(n),
                        _ => {
                            v.err(
                                format!("{p}.panic_threshold_percent"),
                                format!("must be from 0 to 100, got {n}"),
                            );
                            None
                        }
                    }
                }),
                overprovisioning_percent: match c.overprovisioning_percent {
                    None => DEFAULT_OVERPROVISIONING_PERCENT,
                    Some(n) => match u16::try_from(n) {
                        Ok(n) if (100..=1000).contains(&n) => n,
                        _ => {
                            v.err(
                                format!("{p}.overprovisioning_percent"),
                                format!("must be from 100 to 1000, got {n}"),
                            );
                            DEFAULT_OVERPROVISIONING_PERCENT
                        }
                    },
                },
            }
        })?;
        if cluster.zone_aware.is_some() && cluster.has_priorities() {
            self.err(
                format!("{p}.zone_aware"),
                "cannot be used with endpoints of more than one priority: a priority level is chosen first, and zones are not weighed within it",
            );
            return None;
        }
        cluster.fingerprint = cluster_fingerprint(&cluster);
        Some(cluster)
    }

    /// `hash_cookie`: only with `hash_key = "cookie:NAME"` (so only with ring hash).
    fn hash_cookie(
        &mut self,
        p: &str,
        hc: &FileHashCookie,
        key: Option<&HashKey>,
    ) -> Option<HashCookie> {
        let p = format!("{p}.hash_cookie");
        let Some(HashKey::Cookie(name)) = key else {
            self.err(p, "only valid with lb = \"ring_hash\" and hash_key = \"cookie:NAME\" (the cookie it gives)");
            return None;
        };
        let mut ok = true;
        if hc.ttl_s > MAX_COOKIE_TTL_S {
            self.err(
                format!("{p}.ttl_s"),
                format!("must be from 0 to {MAX_COOKIE_TTL_S}, got {}", hc.ttl_s),
            );
            ok = false;
        }
        if let Some(path) = &hc.path {
            let fits = path.starts_with('/')
                && path.len() <= 1024
                && path.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b';');
            if !fits {
                self.err(
                    format!("{p}.path"),
                    format!("invalid cookie path {path:?}: \"/\" and up to 1024 printable characters but \";\""),
                );
                ok = false;
            }
        }
        ok.then(|| HashCookie {
            name: name.clone(),
            ttl_s: (hc.ttl_s > 0).then_some(hc.ttl_s),
            path: hc.path.clone(),
        })
    }

    /// The `IP:port` endpoints, the `host:port` ones, and the zones they name (each once).
    fn endpoints(
        &mut self,
        p: &str,
        raw: &[FileEndpoint],
    ) -> (Vec<Endpoint>, Vec<NamedEndpoint>, Vec<String>) {
        let mut endpoints: Vec<Endpoint> = Vec::with_capacity(raw.len());
        let mut names: Vec<NamedEndpoint> = Vec::new();
        let mut zones: Vec<String> = Vec::new();
        let mut first_index: HashMap<SocketAddr, usize> = HashMap::new();
        let mut first_name: HashMap<(String, u16), usize> = HashMap::new();
        for (j, e) in raw.iter().enumerate() {
            let (ap, weight) = match e {
                FileEndpoint::Address(_) => (format!("{p}.endpoints[{j}]"), 1),
                FileEndpoint::Table(t) => {
                    let weight = t.weight.unwrap_or(1);
                    if !(1..=MAX_ENDPOINT_WEIGHT).contains(&weight) {
                        self.err(
                            format!("{p}.endpoints[{j}].weight"),
                            format!("must be from 1 to {MAX_ENDPOINT_WEIGHT}, got {weight}"),
                        );
                    }
                    (format!("{p}.endpoints[{j}].address"), weight)
                }
            };
            let (address, host) = match check::socket_addr(e.address()) {
                Ok(a) => (a, None),
                Err(m) => match dns::endpoint_name(e.address()) {
                    Some((host, port)) => (dns::placeholder(port), Some(host)),
                    None => {
                        self.err(ap, m);
                        continue;
                    }
                },
            };
            if address.port() == 0 {
                self.err(
                    &*ap,
                    format!(
                        "invalid endpoint {:?}: port 0 cannot be connected to",
                        e.address()
                    ),
                );
            }
            let zone = match e {
                FileEndpoint::Table(t) => t
                    .zone
                    .as_deref()
                    .and_then(|z| self.zone_id(format!("{p}.endpoints[{j}].zone"), z, &mut zones)),
                FileEndpoint::Address(_) => None,
            };
            let priority = match e {
                FileEndpoint::Table(t) => t.priority.unwrap_or(0),
                FileEndpoint::Address(_) => 0,
            };
            let priority = u8::try_from(priority)
                .ok()
                .filter(|&n| u32::from(n) <= MAX_PRIORITY)
                .unwrap_or_else(|| {
                    self.err(
                        format!("{p}.endpoints[{j}].priority"),
                        format!("must be from 0 to {MAX_PRIORITY}, got {priority}"),
                    );
                    0
                });
            let down = match e {
                FileEndpoint::Table(t) => t.down.unwrap_or(false),
                FileEndpoint::Address(_) => false,
            };
            let endpoint = Endpoint {
                address,
                weight,
                zone,
                priority,
                down,
            };
            if let Some(host) = host {
                let key = (host.clone(), address.port());
                if let Some(first) = first_name.get(&key) {
                    self.err(
                        ap,
                        format!(
                            "duplicate endpoint {}:{} (also endpoints[{first}])",
                            key.0, key.1
                        ),
                    );
                } else {
                    first_name.insert(key, j);
                }
                names.push(NamedEndpoint::new(host, endpoint));
                continue;
            }
            if let Some(first) = first_index.get(&address) {
                self.err(
                    ap,
                    format!("duplicate endpoint {address} (also endpoints[{first}])"),
                );
            } else {
                first_index.insert(address, j);
            }
            endpoints.push(endpoint);
        }
        (endpoints, names, zones)
    }

    /// The index of `zone` in `zones`, added if new.
    fn zone_id(&mut self, path: String, zone: &str, zones: &mut Vec<String>) -> Option<ZoneId> {
        if let Err(m) = check::name(zone) {
            self.err(path, m);
            return None;
        }
        let i = match zones.iter().position(|z| z == zone) {
            Some(i) => i,
            None => {
                zones.push(zone.to_owned());
                zones.len() - 1
            }
        };
        // At most one zone per endpoint, and endpoints are far fewer than 65536.
        u16::try_from(i).ok().map(ZoneId)
    }

    /// `zone_weights`, indexed by zone; a zone no endpoint names yet is added to `zones`.
    fn zone_weights(
        &mut self,
        p: &str,
        c: &FileCluster,
        lb: Lb,
        zones: &mut Vec<String>,
    ) -> Option<Vec<u32>> {
        let given = c.zone_weights.as_ref()?;
        let at = format!("{p}.zone_weights");
        if c.zone_aware == Some(true) {
            self.err(&*at, "cannot be used with zone_aware (the proxy's own zone first, or each zone by its weight: one or the other)");
            return None;
        }
        if lb == Lb::RingHash {
            self.err(&*at, "cannot be used with lb = \"ring_hash\": choosing a zone first would break the ring's consistency");
            return None;
        }
        if given.is_empty() {
            self.err(&*at, "empty: omit it to balance over every endpoint");
            return None;
        }
        let mut weights: Vec<(ZoneId, u32)> = Vec::new();
        for (zone, &w) in given {
            let zat = format!("{at}.{zone}");
            let id = self.zone_id(zat.clone(), zone, zones)?;
            match u32::try_from(w) {
                Ok(w) if (1..=MAX_ENDPOINT_WEIGHT).contains(&w) => weights.push((id, w)),
                _ => self.err(
                    zat,
                    format!("must be from 1 to {MAX_ENDPOINT_WEIGHT}, got {w}"),
                ),
            }
        }
        let mut out = vec![0; zones.len()];
        for (id, w) in weights {
            if let Some(slot) = out.get_mut(usize::from(id.0)) {
                *slot = w;
            }
        }
        Some(out)
    }

    /// `zone_aware` and `zone_min_healthy_percent`.
    fn zone_aware(
        &mut self,
        p: &str,
        c: &FileCluster,
        lb: Lb,
        zones: &[String],
        proxy_zone: Option<&str>,
    ) -> Option<ZoneAware> {
        if c.zone_aware != Some(true) {
            if c.zone_min_healthy_percent.is_some() {
                self.err(
                    format!("{p}.zone_min_healthy_percent"),
                    "only valid with zone_aware = true",
                );
            }
            return None;
        }
        let percent = c
            .zone_min_healthy_percent
            .unwrap_or(DEFAULT_ZONE_MIN_HEALTHY_PERCENT);
        let min_healthy_percent = match u8::try_from(percent) {
            Ok(n) if n <= 100 => n,
            _ => {
                self.err(
                    format!("{p}.zone_min_healthy_percent"),
                    format!("must be from 0 to 100, got {percent}"),
                );
                return None;
            }
        };
        if lb == Lb::RingHash {
            self.err(
                format!("{p}.zone_aware"),
                "cannot be used with lb = \"ring_hash\": choosing a zone first would break the ring's consistency",
            );
            return None;
        }
        let Some(own) = proxy_zone else {
            self.err(
                format!("{p}.zone_aware"),
                "requires [proxy] zone (the zone this proxy runs in)",
            );
            return None;
        };
        let local = zones
            .iter()
            .position(|z| z == own)
            .and_then(|i| u16::try_from(i).ok())
            .map(ZoneId);
        Some(ZoneAware {
            local,
            min_healthy_percent,
        })
    }
}
