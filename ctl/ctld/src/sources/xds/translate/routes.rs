//! RDS (`RouteConfiguration`, also inline in a `HttpConnectionManager`) → the `[[routes]]`
//! of a listener. Each virtual host's routes are written once per domain, with
//! `match.host`; hosts are tried as Envoy picks a virtual host: exact domains first, then
//! `*.suffix` wildcards, longest first, then `*`. Routes match by `prefix`, `path`,
//! `safe_regex` and exact `headers`. The configuration's own header edits become the
//! listener's.

use std::collections::HashSet;
use std::mem::take;

use envoy_types::pb::envoy::config::route::v3::header_matcher::HeaderMatchSpecifier;
use envoy_types::pb::envoy::config::route::v3::route::Action;
use envoy_types::pb::envoy::config::route::v3::route_match::PathSpecifier;
use envoy_types::pb::envoy::config::route::v3::{Route, RouteConfiguration, RouteMatch};
use envoy_types::pb::envoy::r#type::matcher::v3::string_matcher::MatchPattern;
use toml::Value;

use super::headers::{edits, Edits};
use super::{name, route_action, string, Table};
use crate::sources::xds::ignore;
use crate::sources::xds::nack::{leftover, unsupported, Res};

/// One route configuration, translated.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TRouteConfig {
    pub name: String,
    /// `[[routes]]` tables without `listener`, in the order they are tried.
    pub routes: Vec<Table>,
    /// The configuration's header edits, for its listeners.
    pub listener_edits: Table,
    /// The xDS names of every cluster the routes send to.
    pub clusters: Vec<String>,
    /// The routes' hash policies.
    pub hashes: Vec<route_action::RouteHash>,
}

pub fn route_config(mut rc: RouteConfiguration, ignored: &mut Vec<String>) -> Res<TRouteConfig> {
    let rc_name = take(&mut rc.name);
    let at = format!("route_config {rc_name:?}");
    let mut out = TRouteConfig {
        name: rc_name,
        ..TRouteConfig::default()
    };
    // (order class, -length, vhost index, domain) for each domain.
    let mut hosts: Vec<(u8, isize, usize, Option<String>)> = Vec::new();
    let mut vhost_routes: Vec<(String, Vec<Table>)> = Vec::new();
    for (i, mut vh) in take(&mut rc.virtual_hosts).into_iter().enumerate() {
        let vat = format!("{at}: virtual_hosts[{i}]");
        let mut seen: Vec<Option<String>> = Vec::new();
        for (j, d) in take(&mut vh.domains).into_iter().enumerate() {
            let host = domain(&d).ok_or_else(|| {
                unsupported(&format!("{vat}.domains[{j}]"), format!("domain {d:?}"))
            })?;
            if seen.contains(&host) {
                continue;
            }
            seen.push(host.clone());
            let class = match host.as_deref() {
                None => 2,
                Some(h) if h.starts_with("*.") => 1,
                Some(_) => 0,
            };
            let len = host.as_deref().map_or(0, str::len);
            hosts.push((class, -(len as isize), i, host));
        }
        let mut routes = Vec::new();
        for (k, r) in take(&mut vh.routes).into_iter().enumerate() {
            routes.push(route(
                r,
                &format!("{vat}.routes[{k}]"),
                &mut out.clusters,
                &mut out.hashes,
                ignored,
            )?);
        }
        let vname = name(&take(&mut vh.name));
        ignore::fields(ignored, &[("metadata", vh.metadata.take().is_some())]);
        leftover(&vh, &vat)?;
        vhost_routes.push((vname, routes));
    }
    hosts.sort_by_key(|h| (h.0, h.1));
    // A set: a route configuration may hold thousands of routes, each written once per domain.
    let mut names: HashSet<String> = HashSet::new();
    for (_, _, i, host) in hosts {
        let Some((vname, routes)) = vhost_routes.get(i) else {
            continue;
        };
        for (k, r) in routes.iter().enumerate() {
            let mut r = r.clone();
            let base = match r.remove("name") {
                Some(Value::String(n)) => n,
                _ => format!("{vname}.{k}"),
            };
            let mut n = base.clone();
            let mut dup = 1;
            while names.contains(&n) {
                dup += 1;
                n = format!("{base}.{dup}");
            }
            names.insert(n.clone());
            r.insert("name".into(), string(n));
            if let Some(h) = &host {
                let m = r
                    .entry("match")
                    .or_insert_with(|| Value::Table(Table::new()));
                if let Value::Table(m) = m {
                    m.insert("host".into(), string(h.clone()));
                }
            }
            out.routes.push(r);
        }
    }
    let e = Edits {
        request_add: take(&mut rc.request_headers_to_add),
        request_remove: take(&mut rc.request_headers_to_remove),
        response_add: take(&mut rc.response_headers_to_add),
        response_remove: take(&mut rc.response_headers_to_remove),
    };
    edits(e, &at, &mut out.listener_edits)?;
    // Envoy's own check of cluster names at load: ringside's validation makes it always.
    rc.validate_clusters = None;
    ignore::fields(ignored, &[("metadata", rc.metadata.take().is_some())]);
    leftover(&rc, &at)?;
    Ok(out)
}

/// A virtual host domain as `match.host`: `None` for `*`; ports are dropped (ringside
/// matches hosts without them). `None` outside: a pattern ringside cannot match.
fn domain(d: &str) -> Option<Option<String>> {
    if d == "*" {
        return Some(None);
    }
    let host = match d.rsplit_once(':') {
        Some((h, p))
            if !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (!h.contains(':') || h.ends_with(']')) =>
        {
            h
        }
        _ => d,
    };
    let wildcard_ok = match host.find('*') {
        None => true,
        Some(0) => host.starts_with("*.") && !host[1..].contains('*'),
        Some(_) => false,
    };
    wildcard_ok.then(|| Some(host.to_ascii_lowercase()))
}

fn route(
    mut r: Route,
    at: &str,
    clusters: &mut Vec<String>,
    hashes: &mut Vec<route_action::RouteHash>,
    ignored: &mut Vec<String>,
) -> Res<Table> {
    let mut t = Table::new();
    let n = take(&mut r.name);
    if !n.is_empty() {
        t.insert("name".into(), string(name(&n)));
    }
    if let Some(m) = r.r#match.take() {
        let m = route_match(m, &format!("{at}.match"))?;
        if !m.is_empty() {
            t.insert("match".into(), Value::Table(m));
        }
    }
    match r.action.take() {
        Some(Action::Route(a)) => {
            if let Some(h) = route_action::route(a, &format!("{at}.route"), &mut t, clusters)? {
                hashes.push(h);
            }
        }
        Some(Action::Redirect(a)) => {
            let red = route_action::redirect(a, &format!("{at}.redirect"))?;
            t.insert("redirect".into(), Value::Table(red));
        }
        Some(Action::DirectResponse(a)) => {
            let d = route_action::direct(a, &format!("{at}.direct_response"))?;
            t.insert("direct_response".into(), Value::Table(d));
        }
        _ => {
            return Err(format!(
                "{at}: an action (route, redirect, direct_response) is required by ringside"
            ))
        }
    }
    let e = Edits {
        request_add: take(&mut r.request_headers_to_add),
        request_remove: take(&mut r.request_headers_to_remove),
        response_add: take(&mut r.response_headers_to_add),
        response_remove: take(&mut r.response_headers_to_remove),
    };
    edits(e, at, &mut t)?;
    let fields = [
        ("decorator", r.decorator.take().is_some()),
        ("metadata", r.metadata.take().is_some()),
        ("stat_prefix", !take(&mut r.stat_prefix).is_empty()),
    ];
    ignore::fields(ignored, &fields);
    leftover(&r, at)?;
    Ok(t)
}

fn route_match(mut m: RouteMatch, at: &str) -> Res<Table> {
    let mut t = Table::new();
    match m.path_specifier.take() {
        None => {}
        // Every path starts with "/": that prefix is no condition.
        Some(PathSpecifier::Prefix(p)) if p == "/" || p.is_empty() => {}
        Some(PathSpecifier::Prefix(p)) => {
            t.insert("path_prefix".into(), string(p));
        }
        Some(PathSpecifier::Path(p)) => {
            t.insert("path_exact".into(), string(p));
        }
        Some(PathSpecifier::SafeRegex(r)) => {
            t.insert("path_regex".into(), string(r.regex));
        }
        Some(_) => {
            return Err(unsupported(
                &format!("{at}.path_specifier"),
                "a path match other than prefix, path and safe_regex",
            ))
        }
    }
    if m.case_sensitive.take().is_some_and(|b| !b.value) {
        return Err(unsupported(
            &format!("{at}.case_sensitive"),
            "case-insensitive matching",
        ));
    }
    let mut headers = Table::new();
    for (i, mut h) in take(&mut m.headers).into_iter().enumerate() {
        let hat = format!("{at}.headers[{i}]");
        // exact_match is deprecated for string_match, and servers still send it.
        #[allow(deprecated)]
        let value = match h.header_match_specifier.take() {
            Some(HeaderMatchSpecifier::ExactMatch(v)) => v,
            Some(HeaderMatchSpecifier::StringMatch(mut s)) => match s.match_pattern.take() {
                Some(MatchPattern::Exact(v)) if !s.ignore_case => v,
                _ => return Err(unsupported(&hat, "a header match other than exact")),
            },
            _ => return Err(unsupported(&hat, "a header match other than exact")),
        };
        headers.insert(take(&mut h.name), string(value));
        leftover(&h, &hat)?;
    }
    if !headers.is_empty() {
        t.insert("headers".into(), Value::Table(headers));
    }
    leftover(&m, at)?;
    Ok(t)
}
