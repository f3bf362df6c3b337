//! Routes: the listener they belong to, their `match`, and their one action.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

use super::headers::EditKeys;
use super::{default, Validator};
use crate::check;
use crate::model::{ClusterId, DirectResponse, PathMatch, Route, RouteAction, RouteMatch};
use crate::raw::{
    FileDirectResponse, FileListener, FileMatch, FileProtocol, FileRoute, FileWeighted,
};
use crate::read::{key_segment, Slot};

/// Where a route's listener stands, by name.
#[derive(Debug, Clone, Copy)]
enum ListenerRef {
    /// Index in the file (and in `Config::listeners`).
    Http(usize),
    Tcp,
    /// Did not deserialize: its protocol is unknown.
    Broken,
}

impl Validator {
    /// The index of the http listener route `i` belongs to, when it has one.
    pub(super) fn route_listener(
        &mut self,
        i: usize,
        r: &FileRoute,
        ids: &HashMap<&str, usize>,
        listeners: &[Slot<FileListener>],
    ) -> Option<usize> {
        self.http_listener_ref(
            format!("routes[{i}].listener"),
            &r.listener,
            "routes",
            ids,
            listeners,
        )
    }

    /// The index of the http listener named `name` (routes and authz rules name theirs);
    /// `what` is what applies to http listeners only, for the message.
    pub(super) fn http_listener_ref(
        &mut self,
        path: String,
        name: &str,
        what: &str,
        ids: &HashMap<&str, usize>,
        listeners: &[Slot<FileListener>],
    ) -> Option<usize> {
        let target = ids.get(name).map(|&l| match listeners.get(l) {
            Some(Slot::Ok(fl)) if fl.protocol == Some(FileProtocol::Tcp) => ListenerRef::Tcp,
            Some(Slot::Ok(_)) => ListenerRef::Http(l),
            _ => ListenerRef::Broken,
        });
        match target {
            Some(ListenerRef::Http(l)) => Some(l),
            Some(ListenerRef::Broken) => None,
            Some(ListenerRef::Tcp) => {
                self.err(
                    path,
                    format!(
                        "listener {name:?} is a tcp listener; {what} apply to http listeners only"
                    ),
                );
                None
            }
            None => {
                self.err(path, format!("unknown listener {name:?}"));
                None
            }
        }
    }

    pub(super) fn route(
        &mut self,
        i: usize,
        r: &FileRoute,
        name: String,
        clusters: &HashMap<&str, usize>,
    ) -> Option<Route> {
        let p = format!("routes[{i}]");
        let built = self.clean(|v| {
            if let Some(written) = &r.name {
                v.route_name(format!("{p}.name"), written);
            }
            let matcher = v.matcher(&format!("{p}.match"), r.matcher.as_ref());

            let given: Vec<&str> = [
                ("cluster", r.cluster.is_some()),
                ("weighted", r.weighted.is_some()),
                ("direct_response", r.direct_response.is_some()),
                ("redirect", r.redirect.is_some()),
                ("tunnel_to", r.tunnel_to.is_some()),
            ]
            .into_iter()
            .filter_map(|(key, present)| present.then_some(key))
            .collect();
            match given.len() {
                0 => v.err(&*p, "needs one of cluster, weighted, direct_response, redirect"),
                1 => {}
                _ => v.err(
                    &*p,
                    format!(
                        "only one of cluster, weighted, direct_response, redirect may be given, found {}",
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
            }
            if let Some(redirect) = &r.redirect {
                action = v
                    .redirect(&format!("{p}.redirect"), redirect, r)
                    .map(RouteAction::Redirect);
            }
            if let Some(tunnel) = v.connect_route(&p, r) {
                action = Some(tunnel);
            }
            // A route that answers itself has no upstream to wait for, retry or copy to.
            let answers = match (&r.direct_response, &r.redirect) {
                (Some(_), _) => Some("direct_response"),
                (None, Some(_)) => Some("redirect"),
                (None, None) => None,
            };
            if let Some(kind) = answers {
                for (key, given, why) in [
                    ("timeout_ms", r.timeout_ms.is_some(), "no upstream to wait for"),
                    ("retry", r.retry.is_some(), "no upstream to retry"),
                    ("mirror", r.mirror.is_some(), "no request goes upstream"),
                ] {
                    if given {
                        v.err(
                            format!("{p}.{key}"),
                            format!("not valid on a {kind} route ({why})"),
                        );
                    }
                }
            }
            let timeout = r
                .timeout_ms
                .map(|ms| v.timeout(format!("{p}.timeout_ms"), Some(ms), 1));
            let headers = v.header_edits(
                &p,
                &EditKeys {
                    request_add: r.request_headers_to_add.as_deref(),
                    request_remove: r.request_headers_to_remove.as_deref(),
                    response_add: r.response_headers_to_add.as_deref(),
                    response_remove: r.response_headers_to_remove.as_deref(),
                },
            );
            let retry = match &r.retry {
                Some(policy) => Some(v.retry(&format!("{p}.retry"), policy)?),
                None => None,
            };
            let mirror = match &r.mirror {
                Some(m) => Some(v.mirror(&format!("{p}.mirror"), m, clusters)?),
                None => None,
            };
            let fault = r
                .fault
                .as_ref()
                .and_then(|f| v.fault(&format!("{p}.fault"), f));
            if let (Some(kind), Some(_)) = (answers, &r.fault) {
                v.err(
                    format!("{p}.fault"),
                    format!("not valid on a {kind} route (no request is forwarded)"),
                );
            }
            // A limit with `redis` is global: `global_rate_limit` (validate/redis.rs).
            let rate_limit = r
                .rate_limit
                .as_ref()
                .filter(|l| l.redis.is_none())
                .and_then(|l| v.rate_limit(&format!("{p}.rate_limit"), l));
            let edge = v.edge(&p, r);
            Some(Route {
                name,
                matcher: matcher?,
                action: action?,
                timeout,
                headers,
                retry,
                mirror,
                fault,
                rate_limit,
                // Set by `gateway_route` (validate/consumers.rs).
                rate_limit_key: crate::RateLimitKey::Route,
                // Set by `global_rate_limit` (validate/redis.rs).
                global_rate_limit: None,
                authn: None,
                edge,
            })
        });
        built.flatten()
    }

    /// A name written on a route: a name like any other; `/` is kept for the names of
    /// unnamed routes (`<listener>/<index>`).
    fn route_name(&mut self, path: String, written: &str) {
        if let Err(m) = check::name(written) {
            if written.contains('/') {
                self.err(
                    path,
                    format!("{m} (\"/\" is kept for the names of unnamed routes, LISTENER/INDEX)"),
                );
            } else {
                self.err(path, m);
            }
        }
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
            let headers = v.header_conditions(p, m.headers.as_ref());
            let principals = v.principals(&format!("{p}.principals"), m.principals.as_ref());
            let (connect, ports) = v.connect_match(p, m);
            RouteMatch {
                host,
                path,
                method,
                headers,
                principals,
                // Set by `gateway_route` (validate/consumers.rs).
                consumers: Vec::new(),
                connect,
                ports,
            }
        })
    }

    /// `headers` tables (of a route's `match` and of authz rules): name → exact value, names
    /// lower-cased, each at most once.
    pub(super) fn header_conditions(
        &mut self,
        p: &str,
        given: Option<&BTreeMap<String, String>>,
    ) -> Vec<(String, Vec<u8>)> {
        let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
        for (name, value) in given.into_iter().flatten() {
            let hp = format!("{p}.headers.{}", key_segment(name));
            if !check::is_token(name) {
                self.err(&*hp, format!("invalid header name {name:?}"));
                continue;
            }
            if !check::is_header_value(value) {
                self.err(
                    &*hp,
                    format!("invalid header value {value:?}: control characters are not allowed"),
                );
            } else if value.trim_matches([' ', '\t']) != value {
                self.err(
                &*hp,
                format!(
                    "header value {value:?} has leading or trailing whitespace, which a request's header value never has"
                ),
                );
            }
            let lower = name.to_ascii_lowercase();
            if headers.iter().any(|(n, _)| *n == lower) {
                self.err(
                    &*hp,
                    format!("duplicate header {lower:?} (header names are case-insensitive)"),
                );
            }
            headers.push((lower, value.as_bytes().to_vec()));
        }
        headers
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
}
