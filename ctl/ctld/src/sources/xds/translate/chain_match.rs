//! A filter chain's `filter_chain_match` → what its child listener takes ([`ChainMatch`],
//! written as `match`): the original destination (`destination_port` → `ports`,
//! `prefix_ranges` → `addresses`) and what the connection opens with (`transport_protocol`
//! → `transport`, `server_names`, `application_protocols` → `alpn`). The source matches,
//! the address suffix and any other field are NACKed by name. [`ChainMatch::kinds`] lists the
//! kinds of connection a match takes with ringside's own code, so that two chains taking the
//! same ones are NACKed naming both (`layout.rs`).

use std::mem::take;
use std::net::IpAddr;

use envoy_types::pb::envoy::config::core::v3::CidrRange;
use envoy_types::pb::envoy::config::listener::v3::FilterChainMatch;
use ringside_config::destination::alpn_protocol;
use ringside_config::{Child, Cidr, Kind, ServerName, Transport};
use toml::Value;

use super::{int, string, Table};
use crate::sources::xds::nack::{leftover, unsupported, Res};

/// What a filter chain takes; an empty field takes any. One port at most; server names lower
/// case, exact or `*.` and a suffix; each list without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainMatch {
    pub port: Option<u16>,
    pub blocks: Vec<Cidr>,
    pub transport: Option<Transport>,
    pub server_names: Vec<String>,
    pub alpn: Vec<String>,
}

impl ChainMatch {
    /// Whether it takes every connection (the listener itself, not a child).
    pub fn is_empty(&self) -> bool {
        *self == ChainMatch::default()
    }

    /// The child listener's `match` table.
    pub fn table(&self) -> Table {
        let strings = |l: &[String]| Value::Array(l.iter().map(string).collect());
        let mut m = Table::new();
        if let Some(p) = self.port {
            m.insert("ports".into(), Value::Array(vec![int(p)]));
        }
        if !self.blocks.is_empty() {
            let blocks = self.blocks.iter().map(|b| string(b.to_string())).collect();
            m.insert("addresses".into(), Value::Array(blocks));
        }
        if let Some(t) = self.transport {
            m.insert("transport".into(), string(transport_name(t)));
        }
        if !self.server_names.is_empty() {
            m.insert("server_names".into(), strings(&self.server_names));
        }
        if !self.alpn.is_empty() {
            m.insert("alpn".into(), strings(&self.alpn));
        }
        m
    }

    /// Every kind of connection it takes, counted by ringside's own code (a child listener
    /// named `listener` with this match).
    pub fn kinds(&self) -> Vec<Kind> {
        let port = self.port.into_iter().collect();
        let child = Child::new(String::new(), port, self.blocks.clone());
        let names = self
            .server_names
            .iter()
            .map(|n| ServerName::new(n))
            .collect();
        child
            .opening(self.transport, names, self.alpn.clone())
            .kinds()
    }
}

fn transport_name(t: Transport) -> &'static str {
    match t {
        Transport::Tls => "tls",
        Transport::Plaintext => "plaintext",
    }
}

/// `filter_chain_match` at `at` (the chain's path); any field ringside cannot match on fails
/// by name (`…filter_chain_match.source_prefix_ranges: not supported by ringside`).
pub fn chain_match(mut m: FilterChainMatch, at: &str) -> Res<ChainMatch> {
    let mat = format!("{at}.filter_chain_match");
    let port =
        match m.destination_port.take().map(|p| p.value) {
            None => None,
            Some(p) => Some(u16::try_from(p).ok().filter(|p| *p != 0).ok_or_else(|| {
                format!("{mat}.destination_port: {p} is not a port (1 to 65535)")
            })?),
        };
    let mut blocks = Vec::new();
    for (k, r) in take(&mut m.prefix_ranges).into_iter().enumerate() {
        let b = block(r, &format!("{mat}.prefix_ranges[{k}]"))?;
        if !blocks.contains(&b) {
            blocks.push(b);
        }
    }
    let transport = match take(&mut m.transport_protocol).as_str() {
        "" => None,
        "tls" => Some(Transport::Tls),
        "raw_buffer" => Some(Transport::Plaintext),
        other => {
            return Err(unsupported(
                &format!("{mat}.transport_protocol"),
                format!("{other:?} (ringside tells \"tls\" from \"raw_buffer\")"),
            ))
        }
    };
    let mut server_names = Vec::new();
    for (k, n) in take(&mut m.server_names).into_iter().enumerate() {
        let n = server_name(&n, &format!("{mat}.server_names[{k}]"))?;
        if !server_names.contains(&n) {
            server_names.push(n);
        }
    }
    if !server_names.is_empty() && transport == Some(Transport::Plaintext) {
        return Err(format!(
            "{mat}.server_names: with transport_protocol \"raw_buffer\": only a TLS ClientHello names a server, the chain could never take a connection"
        ));
    }
    let mut alpn: Vec<String> = Vec::new();
    for (k, a) in take(&mut m.application_protocols).into_iter().enumerate() {
        alpn_protocol(&a).map_err(|e| format!("{mat}.application_protocols[{k}]: {e}"))?;
        if !alpn.contains(&a) {
            alpn.push(a);
        }
    }
    // Left: the source matches (`source_type` other than ANY, its default), the address
    // suffix; each fails by name.
    leftover(&m, &mat)?;
    Ok(ChainMatch {
        port,
        blocks,
        transport,
        server_names,
        alpn,
    })
}

/// A server name as ringside matches it: lower case (Envoy compares without case), DNS
/// labels, or `*.` and labels (Envoy's only wildcard, any subdomain; any other is
/// unsupported rather than invalid).
fn server_name(n: &str, at: &str) -> Res<String> {
    let n = n.to_ascii_lowercase();
    let labels = n.strip_prefix("*.").unwrap_or(&n);
    if labels.contains('*') {
        return Err(unsupported(
            at,
            format!(
                "{n:?}: a wildcard other than a leading \"*.\" (any subdomain, \"*.example.com\")"
            ),
        ));
    }
    ServerName::parse(&n).map_err(|e| format!("{at}: {e}"))?;
    Ok(n)
}

/// A `CidrRange` as a block. Bits past `prefix_len` are cleared, as Envoy does.
fn block(r: CidrRange, at: &str) -> Res<Cidr> {
    let ip: IpAddr = r.address_prefix.parse().map_err(|_| {
        format!(
            "{at}.address_prefix: {:?} is not an IP address",
            r.address_prefix
        )
    })?;
    let len = r.prefix_len.map_or(0, |l| l.value);
    let width = if ip.is_ipv4() { 32 } else { 128 };
    match u8::try_from(len).ok().filter(|l| u32::from(*l) <= width) {
        Some(len) => Ok(Cidr::new(ip, len)),
        None => Err(format!(
            "{at}.prefix_len: {len} is longer than the address ({width} bits)"
        )),
    }
}
