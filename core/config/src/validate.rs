//! Validation: raw types → [`Config`], collecting every error.
//!
//! Order of work: `[proxy]`, then clusters (so names resolve to [`ClusterId`]s), then
//! listeners, then routes (attached to their listener in file order). Each element is checked
//! in full even when an earlier one failed; an element that did not even deserialize still
//! lends its name, so references to it are not reported a second time as unknown. Errors are
//! finally sorted by section and element index, so `ringside check` reads like the file.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use crate::check::{self, MAX_ENDPOINT_WEIGHT, MAX_WORKERS};
use crate::error::{ConfigError, ConfigErrors};
use crate::hash::{cluster_fingerprint, fnv1a64};
use crate::model::{
    Cluster, ClusterId, Config, DirectResponse, DriverChoice, Endpoint, HttpLimits, HttpListener,
    Lb, Listener, ListenerKind, PathMatch, ProxySettings, Role, Route, RouteAction, RouteMatch,
};
use crate::raw::{
    FileCluster, FileDirectResponse, FileDriver, FileEndpoint, FileLb, FileListener, FileMatch,
    FileProtocol, FileProxy, FileRole, FileRoute, FileWeighted,
};
use crate::read::{self, key_segment, Slot, SECTIONS};

/// Defaults, in the units of the file.
mod default {
    pub const DRAIN_TIMEOUT_MS: u64 = 10_000;
    pub const MAX_CONNECTIONS: u64 = 10_000;
    pub const IDLE_TIMEOUT_MS: u64 = 60_000;
    pub const REQUEST_HEAD_TIMEOUT_MS: u64 = 10_000;
    pub const MAX_HEADER_BYTES: u64 = 65_536;
    pub const MAX_HEADERS: u64 = 100;
    pub const MAX_URI_BYTES: u64 = 8_192;
    pub const CONTENT_TYPE: &str = "text/plain; charset=utf-8";
    pub const CONNECT_TIMEOUT_MS: u64 = 1_000;
    pub const MAX_IDLE_PER_ENDPOINT: u64 = 64;
    pub const POOL_IDLE_TIMEOUT_MS: u64 = 60_000;
    pub const FAIL_TIMEOUT_MS: u64 = 10_000;
}

pub(crate) fn parse_and_validate(text: &str) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();
    let Some(raw) = read::read(text, &mut errors) else {
        return Err(ConfigErrors(errors));
    };
    let mut v = Validator { errors };

    let proxy = v.proxy(&raw.proxy);
    let cluster_ids = v.names("clusters", "cluster", &raw.clusters, |c: &FileCluster| {
        &c.name
    });
    let clusters: Vec<Option<Cluster>> = raw
        .clusters
        .iter()
        .enumerate()
        .map(|(i, slot)| match slot {
            Slot::Ok(c) => v.cluster(i, c),
            Slot::Broken { .. } => None,
        })
        .collect();

    let listener_ids = v.names(
        "listeners",
        "listener",
        &raw.listeners,
        |l: &FileListener| &l.name,
    );
    v.binds(&raw.listeners);
    let mut listeners: Vec<Option<Listener>> = raw
        .listeners
        .iter()
        .enumerate()
        .map(|(i, slot)| match slot {
            Slot::Ok(l) => v.listener(i, l, &cluster_ids),
            Slot::Broken { .. } => None,
        })
        .collect();

    let mut route_names: HashMap<(usize, &str), usize> = HashMap::new();
    for (i, slot) in raw.routes.iter().enumerate() {
        let Slot::Ok(r) = slot else { continue };
        let target = v.route_listener(i, r, &listener_ids, &raw.listeners);
        if let Some(l) = target {
            let first = *route_names.entry((l, r.name.as_str())).or_insert(i);
            if first != i {
                v.err(
                    format!("routes[{i}].name"),
                    format!(
                        "duplicate route name {:?} on listener {:?} (also routes[{first}].name)",
                        r.name, r.listener
                    ),
                );
            }
        }
        let route = v.route(i, r, &cluster_ids);
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
        }),
        // Every element that failed recorded an error: unreachable, but never a panic.
        _ => Err(ConfigErrors::single(
            "",
            "internal error: an invalid element left no error",
        )),
    }
}

/// Where a route's listener stands, by name.
#[derive(Debug, Clone, Copy)]
enum ListenerRef {
    /// Index in the file (and in `Config::listeners`).
    Http(usize),
    Tcp,
    /// Did not deserialize: its protocol is unknown.
    Broken,
}

struct Validator {
    errors: Vec<ConfigError>,
}

impl Validator {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError {
            path: path.into(),
            message: message.into(),
        });
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
        ProxySettings {
            role,
            workers,
            driver,
            drain_timeout,
        }
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

    /// No two listeners may bind overlapping addresses: with `SO_REUSEPORT` the kernel would
    /// accept both and split connections between them.
    fn binds(&mut self, slots: &[Slot<FileListener>]) {
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

    fn listener(
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
        Some(ListenerKind::Http(HttpListener {
            routes: Vec::new(),
            limits,
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

    /// The index of the http listener route `i` belongs to, when it has one.
    fn route_listener(
        &mut self,
        i: usize,
        r: &FileRoute,
        ids: &HashMap<&str, usize>,
        listeners: &[Slot<FileListener>],
    ) -> Option<usize> {
        let target = ids
            .get(r.listener.as_str())
            .map(|&l| match listeners.get(l) {
                Some(Slot::Ok(fl)) if fl.protocol == Some(FileProtocol::Tcp) => ListenerRef::Tcp,
                Some(Slot::Ok(_)) => ListenerRef::Http(l),
                _ => ListenerRef::Broken,
            });
        let path = format!("routes[{i}].listener");
        match target {
            Some(ListenerRef::Http(l)) => Some(l),
            Some(ListenerRef::Broken) => None,
            Some(ListenerRef::Tcp) => {
                self.err(
                    path,
                    format!(
                        "listener {:?} is a tcp listener; routes apply to http listeners only",
                        r.listener
                    ),
                );
                None
            }
            None => {
                self.err(path, format!("unknown listener {:?}", r.listener));
                None
            }
        }
    }

    fn route(&mut self, i: usize, r: &FileRoute, clusters: &HashMap<&str, usize>) -> Option<Route> {
        let p = format!("routes[{i}]");
        let built = self.clean(|v| {
            v.name(format!("{p}.name"), &r.name);
            let matcher = v.matcher(&format!("{p}.match"), r.matcher.as_ref());

            let given: Vec<&str> = [
                ("cluster", r.cluster.is_some()),
                ("weighted", r.weighted.is_some()),
                ("direct_response", r.direct_response.is_some()),
            ]
            .into_iter()
            .filter_map(|(key, present)| present.then_some(key))
            .collect();
            match given.len() {
                0 => v.err(&*p, "needs one of cluster, weighted, direct_response"),
                1 => {}
                _ => v.err(
                    &*p,
                    format!(
                        "only one of cluster, weighted, direct_response may be given, found {}",
                        given.join(", ")
                    ),
                ),
            }
            // Check every action given, so each of its mistakes is reported too.
            let mut action = None;
            if let Some(name) = &r.cluster {
                action = v
                    .cluster_ref(format!("{p}.cluster"), name, clusters)
                    .map(RouteAction::Cluster);
            }
            if let Some(targets) = &r.weighted {
                action = v.weighted(&format!("{p}.weighted"), targets, clusters);
            }
            if let Some(direct) = &r.direct_response {
                action = v
                    .direct(&format!("{p}.direct_response"), direct)
                    .map(RouteAction::Direct);
                if r.timeout_ms.is_some() {
                    v.err(
                        format!("{p}.timeout_ms"),
                        "not valid on a direct_response route (no upstream to wait for)",
                    );
                }
            }
            let timeout = r
                .timeout_ms
                .map(|ms| v.timeout(format!("{p}.timeout_ms"), Some(ms), 1));
            Some(Route {
                name: r.name.clone(),
                matcher: matcher?,
                action: action?,
                timeout,
            })
        });
        built.flatten()
    }

    fn matcher(&mut self, p: &str, m: Option<&FileMatch>) -> Option<RouteMatch> {
        let empty = FileMatch::default();
        let m = m.unwrap_or(&empty);
        self.clean(|v| {
            let host = m.host.as_ref().and_then(|h| match check::host(h) {
                Ok(h) => Some(h),
                Err(msg) => {
                    v.err(format!("{p}.host"), msg);
                    None
                }
            });
            let path = v.path_match(p, m);
            let method = m.method.clone();
            if let Some(method) = &method {
                if !check::is_token(method) {
                    v.err(
                        format!("{p}.method"),
                        format!("invalid method {method:?}: must be an HTTP token such as \"GET\""),
                    );
                }
            }
            let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
            for (name, value) in m.headers.iter().flatten() {
                let hp = format!("{p}.headers.{}", key_segment(name));
                if !check::is_token(name) {
                    v.err(&*hp, format!("invalid header name {name:?}"));
                    continue;
                }
                if !check::is_header_value(value) {
                    v.err(
                        &*hp,
                        format!("invalid header value {value:?}: control characters are not allowed"),
                    );
                } else if value.trim_matches([' ', '\t']) != value {
                    v.err(
                        &*hp,
                        format!(
                            "header value {value:?} has leading or trailing whitespace, which a request's header value never has"
                        ),
                    );
                }
                let lower = name.to_ascii_lowercase();
                if headers.iter().any(|(n, _)| *n == lower) {
                    v.err(
                        &*hp,
                        format!("duplicate header {lower:?} (header names are case-insensitive)"),
                    );
                }
                headers.push((lower, value.as_bytes().to_vec()));
            }
            RouteMatch { host, path, method, headers }
        })
    }

    fn path_match(&mut self, p: &str, m: &FileMatch) -> PathMatch {
        let given: Vec<&str> = [
            ("path_prefix", m.path_prefix.is_some()),
            ("path_exact", m.path_exact.is_some()),
            ("path_regex", m.path_regex.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, present)| present.then_some(key))
        .collect();
        if given.len() > 1 {
            self.err(
                p,
                format!(
                    "at most one of path_prefix, path_exact, path_regex may be given, found {}",
                    given.join(", ")
                ),
            );
        }
        let mut path = PathMatch::Any;
        for (key, value) in [
            ("path_prefix", &m.path_prefix),
            ("path_exact", &m.path_exact),
        ] {
            let Some(value) = value else { continue };
            if !value.starts_with('/') {
                self.err(
                    format!("{p}.{key}"),
                    format!("must start with \"/\", got {value:?}"),
                );
            } else if key == "path_prefix" {
                path = PathMatch::Prefix(value.clone());
            } else {
                path = PathMatch::Exact(value.clone());
            }
        }
        if let Some(re) = &m.path_regex {
            // Checked alone first: `a)|(b` is invalid, yet `^(?:a)|(b)$` would compile.
            let anchored =
                regex::Regex::new(re).and_then(|_| regex::Regex::new(&format!("^(?:{re})$")));
            match anchored {
                Ok(compiled) => path = PathMatch::Regex(compiled),
                Err(e) => self.err(
                    format!("{p}.path_regex"),
                    format!("invalid regex {re:?}: {}", check::regex_error(&e)),
                ),
            }
        }
        path
    }

    fn weighted(
        &mut self,
        p: &str,
        targets: &[FileWeighted],
        clusters: &HashMap<&str, usize>,
    ) -> Option<RouteAction> {
        self.clean(|v| {
            if targets.is_empty() {
                v.err(p, "must list at least one cluster");
            }
            let mut resolved: Vec<(ClusterId, u32)> = Vec::with_capacity(targets.len());
            let mut total: u64 = 0;
            for (j, t) in targets.iter().enumerate() {
                let cp = format!("{p}[{j}].cluster");
                if let Some(first) = targets.iter().take(j).position(|o| o.cluster == t.cluster) {
                    v.err(
                        &*cp,
                        format!(
                            "cluster {:?} listed twice (also weighted[{first}])",
                            t.cluster
                        ),
                    );
                }
                if let Some(id) = v.cluster_ref(cp, &t.cluster, clusters) {
                    resolved.push((id, t.weight));
                }
                total += u64::from(t.weight);
            }
            if !targets.is_empty() && total == 0 {
                v.err(p, "weights sum to 0: at least one must be greater than 0");
            }
            RouteAction::Weighted {
                targets: resolved,
                total,
            }
        })
    }

    fn direct(&mut self, p: &str, d: &FileDirectResponse) -> Option<DirectResponse> {
        self.clean(|v| {
            if !(200..=599).contains(&d.status) {
                let why = if (100..=199).contains(&d.status) {
                    " (a 1xx status is not a final response)"
                } else {
                    ""
                };
                v.err(
                    format!("{p}.status"),
                    format!("must be from 200 to 599, got {}{why}", d.status),
                );
            }
            let content_type = d.content_type.as_deref().unwrap_or(default::CONTENT_TYPE);
            if content_type.is_empty() || !check::is_header_value(content_type) {
                v.err(
                    format!("{p}.content_type"),
                    format!("invalid header value {content_type:?}"),
                );
            }
            DirectResponse {
                status: d.status,
                body: Bytes::from(d.body.clone().unwrap_or_default()),
                content_type: content_type.to_owned(),
            }
        })
    }

    fn cluster(&mut self, i: usize, c: &FileCluster) -> Option<Cluster> {
        let p = format!("clusters[{i}]");
        let mut cluster = self.clean(|v| {
            let lb = match c.lb {
                None | Some(FileLb::RoundRobin) => Lb::RoundRobin,
                Some(FileLb::LeastRequest) => Lb::LeastRequest,
                Some(FileLb::Random) => Lb::Random,
                Some(FileLb::RingHash) => Lb::RingHash,
            };
            let endpoints = v.endpoints(&p, c.endpoints.as_deref().unwrap_or_default());
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
            Cluster {
                name: c.name.clone(),
                lb,
                endpoints,
                connect_timeout: v.timeout(
                    format!("{p}.connect_timeout_ms"),
                    c.connect_timeout_ms,
                    default::CONNECT_TIMEOUT_MS,
                ),
                hash_key,
                max_idle_per_endpoint,
                idle_timeout: v.timeout(
                    format!("{p}.idle_timeout_ms"),
                    c.idle_timeout_ms,
                    default::POOL_IDLE_TIMEOUT_MS,
                ),
                fail_timeout: v.timeout(
                    format!("{p}.fail_timeout_ms"),
                    c.fail_timeout_ms,
                    default::FAIL_TIMEOUT_MS,
                ),
                fingerprint: 0,
            }
        })?;
        cluster.fingerprint = cluster_fingerprint(&cluster);
        Some(cluster)
    }

    fn endpoints(&mut self, p: &str, raw: &[FileEndpoint]) -> Vec<Endpoint> {
        let mut endpoints: Vec<Endpoint> = Vec::with_capacity(raw.len());
        let mut first_index: HashMap<SocketAddr, usize> = HashMap::new();
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
            let address = match check::socket_addr(e.address()) {
                Ok(a) => a,
                Err(m) => {
                    self.err(ap, m);
                    continue;
                }
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
            if let Some(first) = first_index.get(&address) {
                self.err(
                    ap,
                    format!("duplicate endpoint {address} (also endpoints[{first}])"),
                );
            } else {
                first_index.insert(address, j);
            }
            endpoints.push(Endpoint { address, weight });
        }
        endpoints
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

/// Two binds that the kernel would both accept (with `SO_REUSEPORT`) yet that compete for
/// the same connections. Port 0 never overlaps: each bind gets its own ephemeral port.
fn overlaps(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port()
        && a.port() != 0
        && a.is_ipv4() == b.is_ipv4()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
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

#[cfg(test)]
mod tests;
