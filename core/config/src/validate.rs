//! Validation: raw types → [`Config`], collecting every error.
//!
//! Order of work: `[proxy]`, `[mesh]` (listeners and clusters with `mtls` need it), then
//! clusters (so names resolve to [`ClusterId`]s), then listeners, then routes and `[[authz]]`
//! rules (attached to their listener in file order). `[[consumers]]`, `[[jwt_providers]]` and
//! `[[redis]]` come before routes, whose `authn` shares the consumers' key table and names the
//! providers, and whose global `rate_limit` names a `[[redis]]`. TLS material is read and checked on the
//! way (`tls.rs`), relative paths resolved against the base directory. Each element is checked
//! in full even when an earlier one failed; an element that did not even deserialize still
//! lends its name, so references to it are not reported a second time as unknown. Errors are
//! finally sorted by section and element index, so `ringside check` reads like the file.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::check::{self, MAX_WORKERS};
use crate::error::{ConfigError, ConfigErrors};
use crate::hash::{fnv1a64, Fnv64};
use crate::model::{
    Cluster, ClusterId, Config, DriverChoice, Listener, ListenerKind, ProxySettings, Role,
};
use crate::raw::{FileCluster, FileDriver, FileListener, FileProxy, FileRole, FileRoute};
use crate::read::{self, Slot, SECTIONS};

/// Defaults, in the units of the file.
/// `proxy.memory_limit_mib`'s bounds: below 8 MiB the process's own start-up footprint is
/// over the ceiling; the top is 1 TiB.
const MIN_MEMORY_LIMIT_MIB: u64 = 8;
const MAX_MEMORY_LIMIT_MIB: u64 = 1 << 20;

mod default {
    pub const DRAIN_TIMEOUT_MS: u64 = 10_000;
    pub const MAX_CONNECTIONS: u64 = 10_000;
    pub const IDLE_TIMEOUT_MS: u64 = 60_000;
    /// How long a parent listener waits for a connection's first bytes (`inspect_timeout_ms`).
    pub const INSPECT_TIMEOUT_MS: u64 = 1_000;
    pub const REQUEST_HEAD_TIMEOUT_MS: u64 = 10_000;
    pub const MAX_HEADER_BYTES: u64 = 65_536;
    pub const MAX_HEADERS: u64 = 100;
    pub const MAX_URI_BYTES: u64 = 8_192;
    pub const CONTENT_TYPE: &str = "text/plain; charset=utf-8";
    pub const CONNECT_TIMEOUT_MS: u64 = 1_000;
    pub const MAX_IDLE_PER_ENDPOINT: u64 = 64;
    pub const POOL_IDLE_TIMEOUT_MS: u64 = 60_000;
    pub const FAIL_TIMEOUT_MS: u64 = 10_000;
    pub const OUTLIER_CONSECUTIVE: u64 = 5;
    pub const OUTLIER_INTERVAL_MS: u64 = 10_000;
    pub const BASE_EJECTION_MS: u64 = 30_000;
    pub const MAX_EJECTION_MS: u64 = 300_000;
    pub const MAX_EJECTION_PERCENT: u64 = 10;
    pub const HEALTH_INTERVAL_MS: u64 = 5_000;
    pub const HEALTH_TIMEOUT_MS: u64 = 1_000;
    pub const UNHEALTHY_THRESHOLD: u64 = 3;
    pub const HEALTHY_THRESHOLD: u64 = 2;
}

/// Validates `text`; relative material paths resolve against `base_dir` (used as written
/// when `None`).
pub(crate) fn parse_and_validate(
    text: &str,
    base_dir: Option<PathBuf>,
) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();
    let Some(raw) = read::read(text, &mut errors) else {
        return Err(ConfigErrors(errors));
    };
    let mut v = Validator {
        errors,
        base_dir,
        material: Fnv64::new(),
        now: SystemTime::now(),
        gateway: false,
    };

    let proxy = v.proxy(&raw.proxy);
    v.gateway = proxy.role == Role::Gateway;
    // `mesh_given`: an identity was written, even a broken one, so that `mtls` elsewhere is
    // not also reported as lacking it.
    let (mesh, mesh_given) = match &raw.mesh {
        None => (None, false),
        Some(Slot::Broken { .. }) => (None, true),
        Some(Slot::Ok(m)) => match &m.identity {
            None => (None, false),
            Some(identity) => (v.mesh_identity(identity), true),
        },
    };
    let cluster_ids = v.names("clusters", "cluster", &raw.clusters, |c: &FileCluster| {
        &c.name
    });
    let clusters: Vec<Option<Cluster>> = raw
        .clusters
        .iter()
        .enumerate()
        .map(|(i, slot)| match slot {
            Slot::Ok(c) => v.cluster(i, c, mesh_given, proxy.zone.as_deref()),
            Slot::Broken { .. } => None,
        })
        .collect();

    let consumers = std::sync::Arc::new(v.consumers(proxy.role, &raw.consumers));
    let providers = v.jwt_providers(proxy.role, &raw.jwt_providers);
    let redis = v.redis_servers(proxy.role, &raw.redis);
    let dns = v.dns(&raw.dns);

    let listener_ids = v.names(
        "listeners",
        "listener",
        &raw.listeners,
        |l: &FileListener| &l.name,
    );
    v.binds(&raw.listeners);
    let parents: HashSet<&str> = raw
        .listeners
        .iter()
        .filter_map(|s| match s {
            Slot::Ok(l) => l.parent.as_deref(),
            Slot::Broken { .. } => None,
        })
        .collect();
    let mut listeners: Vec<Option<Listener>> = raw
        .listeners
        .iter()
        .enumerate()
        .map(|(i, slot)| match slot {
            Slot::Ok(l) => {
                let parent = parents.contains(&*l.name);
                v.listener(i, l, &cluster_ids, mesh_given, parent)
            }
            Slot::Broken { .. } => None,
        })
        .collect();
    v.children(&raw.listeners, &listener_ids, &mut listeners);

    // Route names are unique per listener. An unnamed route is named `<listener>/<index>`,
    // its position among the routes of that listener in file order.
    let mut positions: HashMap<&str, usize> = HashMap::new();
    let mut route_names: HashMap<(usize, String), usize> = HashMap::new();
    for (i, slot) in raw.routes.iter().enumerate() {
        let Slot::Ok(r) = slot else { continue };
        let position = positions.entry(r.listener.as_str()).or_insert(0);
        let name = match &r.name {
            Some(name) => name.clone(),
            None => format!("{}/{position}", r.listener),
        };
        *position += 1;
        let target = v.route_listener(i, r, &listener_ids, &raw.listeners);
        if let Some(l) = target {
            let first = *route_names.entry((l, name.clone())).or_insert(i);
            if first != i {
                let (path, why) = match &r.name {
                    Some(_) => (format!("routes[{i}].name"), ""),
                    None => (
                        format!("routes[{i}]"),
                        "; this route has no name, so it is named after its position",
                    ),
                };
                let other = match raw.routes.get(first) {
                    Some(Slot::Ok(FileRoute { name: None, .. })) => {
                        format!("routes[{first}], unnamed")
                    }
                    _ => format!("routes[{first}].name"),
                };
                v.err(
                    path,
                    format!(
                        "duplicate route name {name:?} on listener {:?} (also {other}){why}",
                        r.listener
                    ),
                );
            }
        }
        let gateway = v.gateway_route(i, r, &name, proxy.role, &consumers, &providers);
        let global = r.rate_limit.as_ref().and_then(|l| {
            v.global_rate_limit(&format!("routes[{i}].rate_limit"), l, proxy.role, &redis)
        });
        let route = v.route(i, r, name, &cluster_ids).map(|mut route| {
            route.authn = gateway.authn;
            route.rate_limit_key = gateway.rate_limit_key;
            route.matcher.consumers = gateway.consumers;
            route.global_rate_limit = global;
            route
        });
        if let (Some(l), Some(route)) = (target, route) {
            if let Some(Some(Listener {
                kind: ListenerKind::Http(http),
                ..
            })) = listeners.get_mut(l)
            {
                http.routes.push(route);
            }
        }
    }

    for (i, slot) in raw.authz.iter().enumerate() {
        let Slot::Ok(a) = slot else { continue };
        let target = v.http_listener_ref(
            format!("authz[{i}].listener"),
            &a.listener,
            "authz rules",
            &listener_ids,
            &raw.listeners,
        );
        let rule = v.authz_rule(i, a).map(|mut rule| {
            rule.consumers = v.authz_consumers(i, a, proxy.role, &consumers);
            rule
        });
        if let (Some(l), Some(rule)) = (target, rule) {
            if let Some(Some(Listener {
                kind: ListenerKind::Http(http),
                ..
            })) = listeners.get_mut(l)
            {
                http.authz.rules.push(rule);
            }
        }
    }

    v.transparent_only(&raw);

    let material_hash = v.material.finish();
    let base_dir = v.base_dir;
    let mut errors = v.errors;
    if !errors.is_empty() {
        // Stable: within one element, errors keep the order they were found in.
        errors.sort_by_key(|e| sort_key(&e.path));
        return Err(ConfigErrors(errors));
    }
    match (
        listeners.into_iter().collect::<Option<Vec<_>>>(),
        clusters.into_iter().collect::<Option<Vec<_>>>(),
    ) {
        (Some(listeners), Some(clusters)) => Ok(Config {
            proxy,
            listeners,
            clusters,
            content_hash: fnv1a64(text.as_bytes()),
            source: text.to_string(),
            mesh,
            base_dir,
            material_hash,
            consumers,
            jwt_providers: {
                let mut list: Vec<_> = providers.into_values().flatten().collect();
                list.sort_by(|a, b| a.name.cmp(&b.name));
                list
            },
            redis: redis.list(&raw.redis),
            dns,
        }),
        // Every element that failed recorded an error: unreachable, but never a panic.
        _ => Err(ConfigErrors::single(
            "",
            "internal error: an invalid element left no error",
        )),
    }
}

struct Validator {
    errors: Vec<ConfigError>,
    /// Where relative material paths resolve.
    base_dir: Option<PathBuf>,
    /// Hash of every certificate, key and CA byte read.
    material: Fnv64,
    /// Leaf certificates expired before this are rejected.
    now: SystemTime,
    /// `[proxy] role = "gateway"`: the gateway's route keys are allowed.
    gateway: bool,
}

impl Validator {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Records an error and gives up: `return self.fail(path, message)`.
    fn fail<T>(&mut self, path: impl Into<String>, message: impl Into<String>) -> Option<T> {
        self.err(path, message);
        None
    }

    /// Runs `f`; `Some` of its value only if it recorded no error.
    fn clean<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> Option<T> {
        let before = self.errors.len();
        let value = f(self);
        (self.errors.len() == before).then_some(value)
    }

    /// A timeout key: its value, or `default_ms`; an error (and the default) when out of range.
    fn timeout(&mut self, path: String, value: Option<u64>, default_ms: u64) -> Duration {
        match check::timeout_ms(value.unwrap_or(default_ms)) {
            Ok(d) => d,
            Err(m) => {
                self.err(path, m);
                Duration::from_millis(default_ms)
            }
        }
    }

    /// A size or count key that must be at least 1.
    fn positive(&mut self, path: String, value: Option<u64>, default: u64) -> usize {
        match check::positive(value.unwrap_or(default)) {
            Ok(n) => n,
            Err(m) => {
                self.err(path, m);
                1
            }
        }
    }

    fn name(&mut self, path: String, value: &str) {
        if let Err(m) = check::name(value) {
            self.err(path, m);
        }
    }

    fn proxy(&mut self, p: &FileProxy) -> ProxySettings {
        let role = match p.role {
            None | Some(FileRole::Sidecar) => Role::Sidecar,
            Some(FileRole::Gateway) => Role::Gateway,
        };
        let workers = match p.workers {
            None => default_workers(role),
            Some(n) => match usize::try_from(n) {
                Ok(w) if (1..=MAX_WORKERS).contains(&n) => w,
                _ => {
                    self.err(
                        "proxy.workers",
                        format!("must be from 1 to {MAX_WORKERS}, got {n}"),
                    );
                    1
                }
            },
        };
        let driver = match p.driver {
            None | Some(FileDriver::Auto) => DriverChoice::Auto,
            Some(FileDriver::IoUring) => DriverChoice::IoUring,
            Some(FileDriver::Epoll) => DriverChoice::Epoll,
        };
        let drain_timeout = self.timeout(
            "proxy.drain_timeout_ms".into(),
            p.drain_timeout_ms,
            default::DRAIN_TIMEOUT_MS,
        );
        let ctld = self.socket_path("proxy.ctld", p.ctld.as_deref());
        let control_socket = self.socket_path("proxy.control_socket", p.control_socket.as_deref());
        if let Some(id) = &p.node_id {
            if let Err(m) = crate::check::name(id) {
                self.err("proxy.node_id", m);
            }
        }
        let memory_limit = p.memory_limit_mib.and_then(|mib| {
            if (MIN_MEMORY_LIMIT_MIB..=MAX_MEMORY_LIMIT_MIB).contains(&mib) {
                Some(mib << 20)
            } else {
                self.err(
                    "proxy.memory_limit_mib",
                    format!(
                        "must be from {MIN_MEMORY_LIMIT_MIB} to {MAX_MEMORY_LIMIT_MIB}, got {mib}"
                    ),
                );
                None
            }
        });
        if let Some(zone) = &p.zone {
            if let Err(m) = crate::check::name(zone) {
                self.err("proxy.zone", m);
            }
        }
        let labels = p.labels.clone().unwrap_or_default();
        if labels.len() > crate::labels::MAX_LABELS {
            let max = crate::labels::MAX_LABELS;
            self.err("proxy.labels", format!("at most {max} labels"));
        }
        for (k, v) in &labels {
            if let Err(m) = crate::labels::check_label(k, v) {
                self.err(format!("proxy.labels.{k}"), m);
            }
        }
        let admin = p
            .admin
            .as_deref()
            .and_then(|a| match a.parse::<std::net::SocketAddr>() {
                Ok(addr) => Some(addr),
                Err(_) => {
                    self.err("proxy.admin", format!("invalid socket address {a:?}"));
                    None
                }
            });
        let trace_sample_rate = match p.trace_sample_rate {
            None => 1.0,
            Some(r) if (0.0..=1.0).contains(&r) => r,
            Some(r) => {
                self.err(
                    "proxy.trace_sample_rate",
                    format!("must be from 0.0 to 1.0, got {r}"),
                );
                1.0
            }
        };
        let otlp_endpoint =
            p.otlp_endpoint
                .as_deref()
                .and_then(|a| match a.parse::<std::net::SocketAddr>() {
                    Ok(addr) => Some(addr),
                    Err(_) => {
                        self.err(
                            "proxy.otlp_endpoint",
                            format!("invalid socket address {a:?}"),
                        );
                        None
                    }
                });
        ProxySettings {
            role,
            workers,
            driver,
            drain_timeout,
            ctld,
            node_id: p.node_id.clone(),
            zone: p.zone.clone(),
            memory_limit,
            labels,
            control_socket,
            admin,
            admin_full_access: p.admin_full_access.unwrap_or(false),
            trace_sample_rate,
            otlp_endpoint,
        }
    }

    /// A Unix socket path: non-empty, no NUL, at most 107 bytes (sun_path).
    fn socket_path(&mut self, path: &str, value: Option<&str>) -> Option<std::path::PathBuf> {
        let v = value?;
        if v.is_empty() || v.contains('\0') || v.len() > 107 {
            self.err(
                path,
                format!("invalid socket path {v:?}: must be 1 to 107 bytes without NUL"),
            );
            return None;
        }
        Some(std::path::PathBuf::from(v))
    }

    /// Checks the names of one array of tables and maps each name to the index of its first
    /// definition (broken elements included, when they had a name).
    fn names<'a, T>(
        &mut self,
        section: &str,
        what: &str,
        slots: &'a [Slot<T>],
        name_of: impl Fn(&'a T) -> &'a String,
    ) -> HashMap<&'a str, usize> {
        let mut ids: HashMap<&'a str, usize> = HashMap::new();
        for (i, slot) in slots.iter().enumerate() {
            let name = match slot {
                Slot::Ok(item) => {
                    let name = name_of(item);
                    self.name(format!("{section}[{i}].name"), name);
                    name.as_str()
                }
                Slot::Broken { name: Some(name) } => name.as_str(),
                Slot::Broken { name: None } => continue,
            };
            if let Some(&first) = ids.get(name) {
                self.err(
                    format!("{section}[{i}].name"),
                    format!("duplicate {what} name {name:?} (also {section}[{first}].name)"),
                );
            } else {
                ids.insert(name, i);
            }
        }
        ids
    }

    fn cluster_ref(
        &mut self,
        path: String,
        name: &str,
        clusters: &HashMap<&str, usize>,
    ) -> Option<ClusterId> {
        match clusters.get(name) {
            Some(&i) => Some(ClusterId(i)),
            None => {
                self.err(path, format!("unknown cluster {name:?}"));
                None
            }
        }
    }
}

/// 1 for a sidecar; the cores available to the process for a gateway.
fn default_workers(role: Role) -> usize {
    match role {
        Role::Sidecar => 1,
        Role::Gateway => std::thread::available_parallelism()
            .map_or(1, std::num::NonZeroUsize::get)
            .min(usize::try_from(MAX_WORKERS).unwrap_or(1)),
    }
}

/// Errors sort by section (syntax, unknown top-level keys, then proxy, listeners, routes,
/// clusters as in the file) and element index.
fn sort_key(path: &str) -> (usize, usize) {
    let end = path.find(['.', '[']).unwrap_or(path.len());
    let section = path.get(..end).unwrap_or(path);
    let rank = if path.is_empty() {
        0
    } else {
        SECTIONS
            .iter()
            .position(|s| *s == section)
            .map_or(1, |p| p + 2)
    };
    let index = path
        .get(end..)
        .and_then(|rest| rest.strip_prefix('['))
        .and_then(|rest| rest.split(']').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    (rank, index)
}

mod authz;
#[cfg(test)]
mod balance_tests;
mod children;
#[cfg(test)]
mod children_tests;
mod cluster;
mod connect;
mod consumers;
#[cfg(test)]
mod consumers_tests;
mod dns;
mod edge;
mod headers;
#[cfg(test)]
mod headers_tests;
mod health;
#[cfg(test)]
mod health_tests;
mod jwt;
#[cfg(test)]
mod jwt_tests;
mod listener;
#[cfg(test)]
mod listener_tests;
mod original_dst;
#[cfg(test)]
mod original_dst_tests;
mod redis;
#[cfg(test)]
mod redis_tests;
mod resilience;
#[cfg(test)]
mod resilience_tests;
mod retry;
mod route;
#[cfg(test)]
mod tests;
mod tls;
#[cfg(test)]
mod tls_tests;
#[cfg(test)]
mod zones_tests;
