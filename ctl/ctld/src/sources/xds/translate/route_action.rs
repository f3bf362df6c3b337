//! A route's action: `route` (cluster or weighted_clusters, timeout, retry_policy,
//! request_mirror_policies, prefix/regex rewrite, host_rewrite_literal, hash_policy),
//! `redirect` and `direct_response`.

use std::mem::take;

use envoy_types::pb::envoy::config::core::v3::data_source::Specifier;
use envoy_types::pb::envoy::config::route::v3::redirect_action::{
    PathRewriteSpecifier, RedirectResponseCode, SchemeRewriteSpecifier,
};
use envoy_types::pb::envoy::config::route::v3::route_action::hash_policy::PolicySpecifier;
use envoy_types::pb::envoy::config::route::v3::route_action::{
    ClusterSpecifier, HashPolicy, HostRewriteSpecifier, RequestMirrorPolicy,
};
use envoy_types::pb::envoy::config::route::v3::{
    DirectResponseAction, RedirectAction, RetryPolicy, RouteAction,
};
use toml::Value;

use super::{int, ms, name, string, Table};
use crate::sources::xds::nack::{leftover, unsupported, Res};

/// Envoy's route timeout when none is given (0 turns it off).
const DEFAULT_TIMEOUT_MS: i64 = 15_000;
/// The `retry_on` conditions ringside knows by the same names.
const RETRY_ON: &[&str] = &[
    "5xx",
    "gateway-error",
    "reset",
    "connect-failure",
    "refused-stream",
    "retriable-status-codes",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
];
/// A hash policy as a ringside `hash_key` (a header, a cookie, the client's address) and,
/// for a cookie with a `ttl` (made for a client without it), the `hash_cookie`. Query
/// parameters and filter state are not.
fn hash_key(mut p: HashPolicy, at: &str) -> Res<(String, Option<Table>)> {
    let mut made = None;
    let key = match p.policy_specifier.take() {
        Some(PolicySpecifier::Header(mut h)) => {
            let name = take(&mut h.header_name).to_ascii_lowercase();
            leftover(&h, &format!("{at}.header"))?;
            format!("header:{name}")
        }
        Some(PolicySpecifier::Cookie(mut c)) => {
            let name = take(&mut c.name);
            let path = take(&mut c.path);
            if let Some(ttl) = c.ttl.take() {
                let mut t = Table::new();
                // Whole seconds: Max-Age counts seconds.
                t.insert("ttl_s".into(), int(ms(&ttl) / 1000));
                if !path.is_empty() {
                    t.insert("path".into(), string(path));
                }
                made = Some(t);
            }
            leftover(&c, &format!("{at}.cookie"))?;
            format!("cookie:{name}")
        }
        Some(PolicySpecifier::ConnectionProperties(cp)) if cp.source_ip => "source_ip".to_owned(),
        Some(PolicySpecifier::ConnectionProperties(_)) | None => {
            return Err(format!("{at}: a hash policy with nothing to hash"))
        }
        Some(PolicySpecifier::QueryParameter(_)) => {
            return Err(unsupported(
                &format!("{at}.query_parameter"),
                "hashing by a query parameter",
            ))
        }
        Some(PolicySpecifier::FilterState(_)) => {
            return Err(unsupported(
                &format!("{at}.filter_state"),
                "hashing by filter state",
            ))
        }
    };
    // With one policy, the first to give a hash is the last: `terminal` changes nothing.
    p.terminal = false;
    leftover(&p, at)?;
    Ok((key, made))
}

/// Envoy retries every method; ringside only those listed.
const RETRY_METHODS: &[&str] = &[
    "GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE", "POST", "PATCH",
];
/// The retry host predicate ringside always applies (a retry goes to an endpoint not tried).
const PREVIOUS_HOSTS: &str = "envoy.retry_host_predicates.previous_hosts";

/// A route's `hash_policy`: what the clusters it sends to hash requests by. ringside's hash
/// key is a cluster's (`hash_key`), so `build` gives a RING_HASH or MAGLEV cluster the one
/// key its routes agree on.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteHash {
    /// The xDS names of the clusters the route sends to (not its mirror's).
    pub clusters: Vec<String>,
    /// A ringside `hash_key`: `header:NAME`, `cookie:NAME` or `source_ip`.
    pub key: String,
    /// A cookie with a `ttl`: the cluster's `hash_cookie` (`ttl_s`, `path`), which gives a
    /// client without the cookie one.
    pub cookie: Option<Table>,
    /// The route, for errors.
    pub at: String,
}

/// Writes `a` into the route table `t`; the xDS names of the clusters it sends to go to
/// `clusters`; its hash policy, if any, is returned.
pub fn route(
    mut a: RouteAction,
    at: &str,
    t: &mut Table,
    clusters: &mut Vec<String>,
) -> Res<Option<RouteHash>> {
    let first = clusters.len();
    match a.cluster_specifier.take() {
        Some(ClusterSpecifier::Cluster(c)) => {
            t.insert("cluster".into(), string(name(&c)));
            clusters.push(c);
        }
        Some(ClusterSpecifier::WeightedClusters(mut w)) => {
            let mut out = Vec::new();
            for (i, mut cw) in take(&mut w.clusters).into_iter().enumerate() {
                let cat = format!("{at}.weighted_clusters.clusters[{i}]");
                let c = take(&mut cw.name);
                let weight = cw.weight.take().map_or(0, |v| v.value);
                leftover(&cw, &cat)?;
                let mut e = Table::new();
                e.insert("cluster".into(), string(name(&c)));
                e.insert("weight".into(), int(weight));
                out.push(Value::Table(e));
                clusters.push(c);
            }
            // A total is only the sum the weights are shares of.
            #[allow(deprecated)]
            {
                w.total_weight = None;
            }
            leftover(&w, &format!("{at}.weighted_clusters"))?;
            t.insert("weighted".into(), Value::Array(out));
        }
        _ => {
            return Err(format!(
                "{at}: a cluster or weighted_clusters is required by ringside"
            ))
        }
    }
    let hash = match take(&mut a.hash_policy).as_slice() {
        [] => None,
        [p] => {
            let (key, cookie) = hash_key(p.clone(), &format!("{at}.hash_policy[0]"))?;
            Some(RouteHash {
                clusters: clusters.get(first..).unwrap_or_default().to_vec(),
                key,
                cookie,
                at: at.to_owned(),
            })
        }
        _ => {
            return Err(unsupported(
                &format!("{at}.hash_policy"),
                "more than one hash policy (ringside hashes by one key)",
            ))
        }
    };
    match a.timeout.take().map(|d| ms(&d)) {
        None => {
            t.insert("timeout_ms".into(), int(DEFAULT_TIMEOUT_MS));
        }
        Some(0) => {}
        Some(n) => {
            t.insert("timeout_ms".into(), int(n));
        }
    }
    if let Some(r) = a.retry_policy.take() {
        if let Some(retry) = retry(r, &format!("{at}.retry_policy"))? {
            t.insert("retry".into(), Value::Table(retry));
        }
    }
    let mirrors = take(&mut a.request_mirror_policies);
    if mirrors.len() > 1 {
        return Err(unsupported(
            &format!("{at}.request_mirror_policies"),
            "more than one mirror",
        ));
    }
    if let Some(m) = mirrors.into_iter().next() {
        let (mirror, c) = mirror(m, &format!("{at}.request_mirror_policies[0]"))?;
        t.insert("mirror".into(), Value::Table(mirror));
        clusters.push(c);
    }
    let mut rewrite = Table::new();
    let prefix = take(&mut a.prefix_rewrite);
    if !prefix.is_empty() {
        rewrite.insert("prefix".into(), string(prefix));
    }
    if let Some(mut r) = a.regex_rewrite.take() {
        let pattern = r.pattern.take().map(|p| p.regex).unwrap_or_default();
        let mut re = Table::new();
        re.insert("pattern".into(), string(pattern));
        re.insert("substitution".into(), string(take(&mut r.substitution)));
        leftover(&r, &format!("{at}.regex_rewrite"))?;
        rewrite.insert("regex".into(), Value::Table(re));
    }
    match a.host_rewrite_specifier.take() {
        None => {}
        Some(HostRewriteSpecifier::HostRewriteLiteral(h)) => {
            rewrite.insert("host".into(), string(h));
        }
        Some(_) => {
            return Err(unsupported(
                &format!("{at}.host_rewrite_specifier"),
                "a host rewrite other than host_rewrite_literal",
            ))
        }
    }
    if !rewrite.is_empty() {
        t.insert("rewrite".into(), Value::Table(rewrite));
    }
    // WebSocket upgrades are relayed by every ringside route.
    a.upgrade_configs.retain(|u| {
        !(u.upgrade_type.eq_ignore_ascii_case("websocket")
            && u.enabled.as_ref().is_none_or(|e| e.value)
            && u.connect_config.is_none())
    });
    leftover(&a, at)?;
    Ok(hash)
}

fn retry(mut r: RetryPolicy, at: &str) -> Res<Option<Table>> {
    let attempts = r.num_retries.take().map_or(1, |n| n.value);
    let mut t = Table::new();
    let on: Vec<String> = take(&mut r.retry_on)
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(bad) = on.iter().find(|c| !RETRY_ON.contains(&c.as_str())) {
        return Err(unsupported(&format!("{at}.retry_on"), format!("{bad:?}")));
    }
    t.insert("attempts".into(), int(attempts));
    t.insert(
        "on".into(),
        Value::Array(on.into_iter().map(string).collect()),
    );
    if let Some(d) = r.per_try_timeout.take() {
        t.insert("per_try_timeout_ms".into(), int(ms(&d)));
    }
    let codes = take(&mut r.retriable_status_codes);
    if !codes.is_empty() {
        t.insert(
            "status_codes".into(),
            Value::Array(codes.into_iter().map(int).collect()),
        );
    }
    if let Some(mut b) = r.retry_back_off.take() {
        let mut backoff = Table::new();
        if let Some(d) = b.base_interval.take() {
            backoff.insert("base_ms".into(), int(ms(&d)));
        }
        if let Some(d) = b.max_interval.take() {
            backoff.insert("max_ms".into(), int(ms(&d)));
        }
        leftover(&b, &format!("{at}.retry_back_off"))?;
        t.insert("backoff".into(), Value::Table(backoff));
    }
    r.retry_host_predicate.retain(|p| p.name != PREVIOUS_HOSTS);
    r.host_selection_retry_max_attempts = 0;
    t.insert(
        "methods".into(),
        Value::Array(RETRY_METHODS.iter().map(|m| string(*m)).collect()),
    );
    leftover(&r, at)?;
    Ok((attempts > 0).then_some(t))
}

fn mirror(mut m: RequestMirrorPolicy, at: &str) -> Res<(Table, String)> {
    let c = take(&mut m.cluster);
    if c.is_empty() {
        return Err(format!("{at}.cluster: required by ringside"));
    }
    let mut t = Table::new();
    t.insert("cluster".into(), string(name(&c)));
    if let Some(mut f) = m.runtime_fraction.take() {
        let pct = f.default_value.take().map_or(0.0, |p| {
            let scale = match p.denominator {
                0 => 1.0,
                1 => 0.01,
                _ => 0.0001,
            };
            f64::from(p.numerator) * scale
        });
        f.runtime_key.clear();
        leftover(&f, &format!("{at}.runtime_fraction"))?;
        t.insert("percent".into(), toml::Value::Float(pct.min(100.0)));
    }
    if !take(&mut m.disable_shadow_host_suffix_append) {
        t.insert("host_suffix".into(), string("-shadow"));
    }
    m.trace_sampled = None;
    leftover(&m, at)?;
    Ok((t, c))
}

pub fn redirect(mut r: RedirectAction, at: &str) -> Res<Table> {
    let mut t = Table::new();
    match r.scheme_rewrite_specifier.take() {
        Some(SchemeRewriteSpecifier::HttpsRedirect(true)) => {
            t.insert("scheme".into(), string("https"));
        }
        Some(SchemeRewriteSpecifier::SchemeRedirect(s)) => {
            t.insert("scheme".into(), string(s));
        }
        _ => {}
    }
    let host = take(&mut r.host_redirect);
    if !host.is_empty() {
        t.insert("host".into(), string(host));
    }
    let port = take(&mut r.port_redirect);
    if port != 0 {
        t.insert("port".into(), int(port));
    }
    match r.path_rewrite_specifier.take() {
        None => {}
        Some(PathRewriteSpecifier::PathRedirect(p)) => {
            t.insert("path".into(), string(p));
        }
        Some(PathRewriteSpecifier::PrefixRewrite(p)) => {
            t.insert("prefix".into(), string(p));
        }
        Some(_) => {
            return Err(unsupported(
                &format!("{at}.regex_rewrite"),
                "a regex or path template redirect",
            ))
        }
    }
    if take(&mut r.strip_query) {
        t.insert("strip_query".into(), Value::Boolean(true));
    }
    let status = match RedirectResponseCode::try_from(take(&mut r.response_code)) {
        Ok(RedirectResponseCode::MovedPermanently) => 301,
        Ok(RedirectResponseCode::Found) => 302,
        Ok(RedirectResponseCode::SeeOther) => 303,
        Ok(RedirectResponseCode::TemporaryRedirect) => 307,
        Ok(RedirectResponseCode::PermanentRedirect) => 308,
        Err(_) => return Err(unsupported(&format!("{at}.response_code"), "this code")),
    };
    t.insert("status".into(), int(status));
    leftover(&r, at)?;
    Ok(t)
}

pub fn direct(mut d: DirectResponseAction, at: &str) -> Res<Table> {
    let mut t = Table::new();
    t.insert("status".into(), int(take(&mut d.status)));
    if let Some(mut body) = d.body.take() {
        let text = match body.specifier.take() {
            Some(Specifier::InlineString(s)) => s,
            Some(Specifier::InlineBytes(b)) => {
                String::from_utf8(b).map_err(|_| format!("{at}.body.inline_bytes: not UTF-8"))?
            }
            _ => {
                return Err(unsupported(
                    &format!("{at}.body"),
                    "a body that is not inline",
                ))
            }
        };
        leftover(&body, &format!("{at}.body"))?;
        t.insert("body".into(), string(text));
    }
    leftover(&d, at)?;
    Ok(t)
}
