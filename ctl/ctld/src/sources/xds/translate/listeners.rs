//! LDS (`Listener`) → `[[listeners]]`: one ringside listener per filter chain
//! (`chains.rs`). The chain with an empty match, else the `default_filter_chain`, is the
//! listener itself (`bind`; the `original_dst` listener filter → `transparent = true`); the
//! chains with a match (by destination, server name, transport, application protocols:
//! `chain_match.rs`) become its children (`parent`, `match`); with no chain for every
//! connection, the listener closes those no chain takes (`unmatched = "close"`), as Envoy
//! does. Envoy's `use_original_dst` hand-off: that listener is the parent
//! of every `bind_to_port: false` listener's chains, each taking the port (and, unless it is
//! unspecified, the address) the listener is at (`layout.rs` joins them).

use std::mem::take;
use std::net::SocketAddr;

use envoy_types::pb::envoy::config::listener::v3::{
    FilterChain, FilterChainMatch, Listener, ListenerFilter,
};
use ringside_config::Cidr;
use toml::Value;

use super::chains::{chain, TChain};
use super::endpoints::socket_address;
use super::{int, ms, name, string, Table};
use crate::sources::xds::ignore;
use crate::sources::xds::nack::{leftover, unsupported, Res};

pub use super::chains::RouteSource;

const ORIGINAL_DST: &str = "envoy.filters.listener.original_dst";

/// How a listener takes its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// It binds its address.
    Bound,
    /// `use_original_dst`: it binds, and hands each connection to the `bind_to_port: false`
    /// listener at its original destination.
    HandOff,
    /// `bind_to_port: false`: it serves what the hand-off listener gives it.
    Receiver,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TListener {
    pub role: Role,
    /// The chain serving what no other takes: the listener itself, with `bind`. A receiver
    /// has none (all its chains are children of the hand-off listener).
    pub own: Option<TChain>,
    /// Its chains with a non-empty match: children of `own`, or for a receiver of the
    /// hand-off listener's own.
    pub children: Vec<TChain>,
    /// `listener_filters_timeout` and `continue_on_listener_filters_timeout`, when it sets
    /// either: how a parent waits for first bytes.
    pub inspect: Option<InspectKeys>,
}

/// A parent's `inspect_timeout_ms` and `inspect_on_timeout`, from Envoy's listener filter
/// timeout (unset: Envoy's 15 s; 0: none, ringside's idle timeout) and
/// `continue_on_listener_filters_timeout` (unset: close).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InspectKeys {
    pub timeout_ms: u64,
    pub close: bool,
}

impl InspectKeys {
    /// Takes the two fields out of `l`.
    fn take(l: &mut Listener) -> Option<InspectKeys> {
        let timeout = l.listener_filters_timeout.take();
        let go_on = take(&mut l.continue_on_listener_filters_timeout);
        if timeout.is_none() && !go_on {
            return None;
        }
        let timeout_ms = timeout.map_or(15_000, |d| u64::try_from(ms(&d)).unwrap_or(0));
        Some(InspectKeys {
            timeout_ms,
            close: !go_on,
        })
    }

    /// Writes them into a transparent listener's table.
    pub fn write(self, t: &mut Table) {
        let timeout = i64::try_from(self.timeout_ms).unwrap_or(i64::MAX);
        t.insert("inspect_timeout_ms".into(), int(timeout));
        let on = if self.close { "close" } else { "continue" };
        t.insert("inspect_on_timeout".into(), string(on));
    }
}

impl TListener {
    /// Every chain: its ringside listeners.
    pub fn chains(&self) -> impl Iterator<Item = &TChain> {
        self.own.iter().chain(&self.children)
    }
}

/// What a listener's chains are translated with.
struct Ctx<'a> {
    at: &'a str,
    rname: &'a str,
    ignored: &'a mut Vec<String>,
}

pub fn listener(mut l: Listener, ignored: &mut Vec<String>) -> Res<TListener> {
    let xds_name = take(&mut l.name);
    let at = format!("listener {xds_name:?}");
    let rname = name(&xds_name);
    if l.filter_chain_matcher.is_some() {
        return Err(unsupported(
            &format!("{at}.filter_chain_matcher"),
            "the filter chain matcher (ringside takes filter_chain_match)",
        ));
    }
    let bind = socket_address(l.address.take(), &format!("{at}.address"))?;
    let original_dst = listener_filters(take(&mut l.listener_filters), &at, ignored)?;
    let role = role(&mut l, &at)?;
    let inspect = InspectKeys::take(&mut l);
    let chains = take(&mut l.filter_chains);
    let default = l.default_filter_chain.take();
    let mut cx = Ctx {
        at: &at,
        rname: &rname,
        ignored,
    };
    let out = match role {
        Role::Receiver => receiver(chains, default, &bind, &mut cx)?,
        Role::Bound | Role::HandOff => {
            let transparent = original_dst || role == Role::HandOff;
            bound(chains, default, &bind, transparent, &mut cx)?
        }
    };
    // Informational: the direction Istio gives its listeners.
    l.traffic_direction = 0;
    let fields = [
        ("stat_prefix", !take(&mut l.stat_prefix).is_empty()),
        ("metadata", l.metadata.take().is_some()),
    ];
    ignore::fields(cx.ignored, &fields);
    leftover(&l, &at)?;
    // Only a parent reads first bytes (a receiver's apply to its hand-off listener,
    // `layout.rs`); elsewhere the timeout has nothing to time.
    let parent = !out.children.is_empty()
        || out
            .own
            .as_ref()
            .is_some_and(|o| o.table.contains_key("transparent"));
    let inspect = match inspect {
        Some(_) if !parent && role != Role::Receiver => {
            cx.ignored.push("field:listener_filters_timeout".into());
            None
        }
        i => i,
    };
    Ok(TListener {
        role,
        inspect,
        ..out
    })
}

/// Whether the `original_dst` filter is there; the others are ignored (counted) or fail.
fn listener_filters(
    filters: Vec<ListenerFilter>,
    at: &str,
    ignored: &mut Vec<String>,
) -> Res<bool> {
    let mut original_dst = false;
    for (i, f) in filters.into_iter().enumerate() {
        if f.name == ORIGINAL_DST {
            original_dst = true;
        } else if ignore::LISTENER_FILTERS.contains(&f.name.as_str()) {
            ignored.push(ignore::filter("listener_filter", &f.name));
        } else {
            return Err(unsupported(
                &format!("{at}.listener_filters[{i}]"),
                format!("filter {:?}", f.name),
            ));
        }
    }
    Ok(original_dst)
}

fn role(l: &mut Listener, at: &str) -> Res<Role> {
    let hand_off = l.use_original_dst.take().is_some_and(|b| b.value);
    let binds = l.bind_to_port.take().is_none_or(|b| b.value);
    match (hand_off, binds) {
        (true, true) => Ok(Role::HandOff),
        (false, true) => Ok(Role::Bound),
        (false, false) => Ok(Role::Receiver),
        (true, false) => Err(unsupported(
            &format!("{at}.bind_to_port"),
            "false with use_original_dst (the listener that hands connections on accepts them)",
        )),
    }
}

/// The ringside names of a listener's chains (those `named` selects; the others' entries are
/// unused): `<listener>.<chain name>`, or `<listener>.<index>` for a chain without one. A
/// name several of them share (Istio names each of a port's inbound chains after the port)
/// gets what its match says of the opening (`.tls.istio-http_1.0`, `.plaintext`): stable
/// when istiod adds or removes other chains, so a push does not rename (and so close the
/// connections of) a child whose chain did not change. Only names still equal after that
/// take their index.
fn chain_names(
    rname: &str,
    chains: &[FilterChain],
    named: impl Fn(&FilterChain) -> bool,
) -> Vec<String> {
    let shared = shared(chains.iter().filter(|c| named(c)));
    let mut names: Vec<String> = chains
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if c.name.is_empty() {
                format!("{rname}.{i}")
            } else if shared.contains(&c.name) {
                format!("{rname}.{}{}", name(&c.name), opening(c))
            } else {
                format!("{rname}.{}", name(&c.name))
            }
        })
        .collect();
    let mut counts: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (n, c) in names.iter().zip(chains) {
        if named(c) {
            *counts.entry(n.clone()).or_default() += 1;
        }
    }
    for (i, n) in names.iter_mut().enumerate() {
        if counts.get(n.as_str()).is_some_and(|k| *k > 1) {
            n.push_str(&format!(".{i}"));
        }
    }
    names
}

/// `.tls`, `.plaintext`, then the first application protocol and server name of a chain's
/// match, as name characters; empty when it names none of them.
fn opening(c: &FilterChain) -> String {
    let Some(m) = &c.filter_chain_match else {
        return String::new();
    };
    let transport = match m.transport_protocol.as_str() {
        "raw_buffer" => "plaintext",
        other => other,
    };
    let parts = [
        transport,
        m.application_protocols.first().map_or("", String::as_str),
        m.server_names.first().map_or("", String::as_str),
    ];
    parts
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| format!(".{}", name(p)))
        .collect()
}

/// The names that several of `chains` have.
fn shared<'c>(chains: impl Iterator<Item = &'c FilterChain>) -> Vec<String> {
    let mut seen: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for c in chains.filter(|c| !c.name.is_empty()) {
        if seen.contains(&c.name.as_str()) {
            out.push(c.name.clone());
        }
        seen.push(&c.name);
    }
    out
}

/// Whether a chain takes every connection (its match empty: the listener itself).
fn takes_all(c: &FilterChain) -> bool {
    c.filter_chain_match
        .as_ref()
        .is_none_or(|m| *m == FilterChainMatch::default())
}

/// A listener that binds: its empty-match (or default) chain is itself, the others its
/// children.
fn bound(
    chains: Vec<FilterChain>,
    default: Option<FilterChain>,
    bind: &str,
    transparent: bool,
    cx: &mut Ctx<'_>,
) -> Res<TListener> {
    let mut own: Option<TChain> = None;
    let mut children = Vec::new();
    let mut names = chain_names(cx.rname, &chains, |c| !takes_all(c)).into_iter();
    for (i, c) in chains.into_iter().enumerate() {
        let cat = format!("{}.filter_chains[{i}]", cx.at);
        let rname = names.next().unwrap_or_default();
        let tc = chain(c, rname, cat, cx.ignored)?;
        if !tc.matches.is_empty() {
            children.push(tc);
        } else if let Some(o) = &own {
            return Err(format!(
                "{}.filter_chain_match: empty, as that of {}: two filter chains with the same match (Envoy refuses them too)",
                tc.at, o.at
            ));
        } else {
            own = Some(tc.named(cx.rname.to_owned()));
        }
    }
    if let Some(d) = default {
        if own.is_some() {
            // A chain with an empty match takes every connection: Envoy never uses it.
            cx.ignored.push("field:default_filter_chain".into());
        } else {
            own = Some(default_chain(d, cx.rname.to_owned(), cx)?);
        }
    }
    let mut own = match own {
        Some(own) => own,
        // No chain takes every connection: Envoy closes those no chain takes, and so does
        // a parent with `unmatched = "close"` (a gateway port with a chain per server name).
        None if !children.is_empty() => closing(cx),
        None => {
            return Err(format!(
                "{}.filter_chains: none (a listener serves with its filter chains)",
                cx.at
            ))
        }
    };
    own.table.insert("bind".into(), string(bind));
    if transparent {
        own.table.insert("transparent".into(), Value::Boolean(true));
    }
    Ok(TListener {
        role: Role::Bound,
        own: Some(own),
        children,
        inspect: None,
    })
}

/// The parent of a listener whose chains all have a match: it serves nothing itself and
/// closes the connections none of them takes.
fn closing(cx: &Ctx<'_>) -> TChain {
    let mut table = Table::new();
    table.insert("name".into(), string(cx.rname));
    table.insert("unmatched".into(), string("close"));
    TChain {
        name: cx.rname.to_owned(),
        at: cx.at.to_owned(),
        matches: Default::default(),
        table,
        routes: RouteSource::None,
        tcp_cluster: None,
    }
}

/// Envoy ignores a default chain's match.
fn default_chain(mut d: FilterChain, rname: String, cx: &mut Ctx<'_>) -> Res<TChain> {
    d.filter_chain_match = None;
    chain(
        d,
        rname,
        format!("{}.default_filter_chain", cx.at),
        cx.ignored,
    )
}

/// A `bind_to_port: false` listener: each chain a child of the hand-off listener, taking
/// the listener's port and address (its family's whole block when unspecified).
fn receiver(
    chains: Vec<FilterChain>,
    default: Option<FilterChain>,
    bind: &str,
    cx: &mut Ctx<'_>,
) -> Res<TListener> {
    let aat = format!("{}.address", cx.at);
    let addr: SocketAddr = bind.parse().map_err(|_| {
        format!("{aat}: {bind:?}: a listener with bind_to_port false needs an IP address")
    })?;
    if addr.port() == 0 {
        return Err(format!(
            "{aat}.port_value: 0: a listener with bind_to_port false takes the connections to its port"
        ));
    }
    let whole = match addr.ip() {
        ip if !ip.is_unspecified() => Cidr::new(ip, if ip.is_ipv4() { 32 } else { 128 }),
        ip => Cidr::new(ip, 0),
    };
    let single = chains.len() + usize::from(default.is_some()) == 1;
    let mut names = chain_names(cx.rname, &chains, |_| true).into_iter();
    let mut children = Vec::new();
    let mut catch_all = false;
    for (i, c) in chains.into_iter().enumerate() {
        let cat = format!("{}.filter_chains[{i}]", cx.at);
        let rname = names.next().unwrap_or_default();
        let rname = if single { cx.rname.to_owned() } else { rname };
        let mut tc = chain(c, rname, cat, cx.ignored)?;
        catch_all |= tc.matches.is_empty();
        at_address(&mut tc, addr, whole)?;
        children.push(tc);
    }
    if let Some(d) = default {
        if catch_all {
            cx.ignored.push("field:default_filter_chain".into());
        } else {
            let rname = if single {
                cx.rname.to_owned()
            } else {
                format!("{}.default", cx.rname)
            };
            let mut tc = default_chain(d, rname, cx)?;
            at_address(&mut tc, addr, whole)?;
            children.push(tc);
        }
    }
    Ok(TListener {
        role: Role::Receiver,
        own: None,
        children,
        inspect: None,
    })
}

/// A receiver's chain takes the listener's port, and its blocks within the listener's
/// address (all of it when it names none). A chain that could never match fails.
fn at_address(tc: &mut TChain, addr: SocketAddr, whole: Cidr) -> Res<()> {
    let mat = format!("{}.filter_chain_match", tc.at);
    if let Some(p) = tc.matches.port.filter(|p| *p != addr.port()) {
        return Err(format!(
            "{mat}.destination_port: {p}, and the listener is at port {}: the chain could never take a connection",
            addr.port()
        ));
    }
    tc.matches.port = Some(addr.port());
    if tc.matches.blocks.is_empty() || whole.bits() == 0 {
        if tc.matches.blocks.is_empty() {
            tc.matches.blocks.push(whole);
        }
        return Ok(());
    }
    // The listener's address, of the block's own family (no IPv4-mapped reading, unlike
    // `Cidr::contains`).
    let holds = |b: &Cidr| Cidr::new(addr.ip(), b.bits()) == *b;
    if !tc.matches.blocks.iter().any(holds) {
        return Err(format!(
            "{mat}.prefix_ranges: none holds the listener's address {}: the chain could never take a connection",
            addr.ip()
        ));
    }
    tc.matches.blocks = vec![whole];
    Ok(())
}
