//! Child listeners chosen by a connection's original destination (`listeners[].parent` and
//! `match`), and by what it opens with: Envoy's filter chain match (destination port, address,
//! server name, transport, application protocols) and its `use_original_dst` hand-off, as one
//! table per parent listener.

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::edge::Cidr;

/// What a connection opens with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// A TLS ClientHello.
    Tls,
    /// Anything else.
    Plaintext,
}

/// A server name a child takes: exact, or any subdomain of a suffix (`*.example.com` is kept
/// as `.example.com`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ServerName {
    Exact(String),
    Wildcard(String),
}

impl ServerName {
    /// `"*.example.com"` or `"api.example.com"`, lower case, unchecked ([`ServerName::parse`]
    /// checks it).
    pub fn new(s: &str) -> ServerName {
        match s.strip_prefix('*') {
            Some(suffix) => ServerName::Wildcard(suffix.to_string()),
            None => ServerName::Exact(s.to_string()),
        }
    }

    /// A server name to match, checked: lower-case DNS labels (1 to 63 letters, digits, `-`
    /// or `_`; 253 characters at most), or `*.` and labels. The error is the reason, quoting
    /// `s`; the caller adds the path. ctld lowers an xDS name first (Envoy compares without
    /// case).
    pub fn parse(s: &str) -> Result<ServerName, String> {
        let labels = s.strip_prefix("*.").unwrap_or(s);
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        };
        if s.len() > 253 || !labels.split('.').all(label_ok) {
            return Err(format!(
                "invalid server name {s:?}: lower-case DNS labels (\"api.example.com\"), or \"*.\" and labels for any subdomain"
            ));
        }
        Ok(ServerName::new(s))
    }
}

/// An application protocol a child takes (`match.alpn`, xDS `application_protocols`): 1 to
/// 255 printable ASCII characters, as ALPN carries them. The error is the reason, quoting
/// `a`; the caller adds the path.
pub fn alpn_protocol(a: &str) -> Result<(), String> {
    if a.is_empty() || a.len() > 255 || !a.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "invalid protocol {a:?}: 1 to 255 printable characters, e.g. \"h2\""
        ));
    }
    Ok(())
}

/// What the parent learnt from a connection's first bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub transport: Transport,
    /// The ClientHello's server name (SNI), lower case.
    pub server_name: Option<String>,
    /// The ClientHello's application protocols in the client's order; in plaintext,
    /// `h2c`, `http/1.1` or `http/1.0` when the bytes are one of those.
    pub alpn: Vec<String>,
}

/// What one child listener takes; an empty list takes any.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Child {
    /// The child listener's name.
    pub listener: String,
    pub ports: Vec<u16>,
    pub addresses: Vec<Cidr>,
    pub transport: Option<Transport>,
    pub server_names: Vec<ServerName>,
    pub alpn: Vec<String>,
}

impl Child {
    pub fn new(listener: String, ports: Vec<u16>, addresses: Vec<Cidr>) -> Child {
        Child {
            listener,
            ports,
            addresses,
            transport: None,
            server_names: Vec::new(),
            alpn: Vec::new(),
        }
    }

    /// The same child, also matching on what the connection opens with.
    pub fn opening(
        mut self,
        transport: Option<Transport>,
        server_names: Vec<ServerName>,
        alpn: Vec<String>,
    ) -> Child {
        self.transport = transport;
        self.server_names = server_names;
        self.alpn = alpn;
        self
    }

    /// Whether choosing this child needs the connection's first bytes.
    fn inspects(&self) -> bool {
        self.transport.is_some() || !self.server_names.is_empty() || !self.alpn.is_empty()
    }

    /// How specifically this child's addresses take `dst`: `None` when they do not, 0 when
    /// it names none (any address), else 1 + the longest containing block's prefix length.
    fn address_rank(&self, dst: SocketAddr) -> Option<u16> {
        if self.addresses.is_empty() {
            return Some(0);
        }
        self.addresses
            .iter()
            .filter(|c| c.contains(dst.ip()))
            .map(|c| u16::from(c.bits()) + 1)
            .max()
    }

    /// How specifically this child's server names take `name`: `None` when they do not, 0
    /// when it names none, 1 + the suffix length for a wildcard, `usize::MAX` when exact.
    fn name_rank(&self, name: Option<&str>) -> Option<usize> {
        if self.server_names.is_empty() {
            return Some(0);
        }
        let name = name?;
        self.server_names
            .iter()
            .filter_map(|n| match n {
                ServerName::Exact(e) => (e == name).then_some(usize::MAX),
                ServerName::Wildcard(w) => name.ends_with(w.as_str()).then_some(w.len() + 1),
            })
            .max()
    }
}

/// One kind of connection a child takes: port, block, server name, transport, application
/// protocol (`None`: any). Two children of one parent must not share one (validation; ctld
/// checks the same before it writes them).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Kind {
    pub port: Option<u16>,
    pub block: Option<Cidr>,
    pub server_name: Option<ServerName>,
    pub transport: Option<Transport>,
    pub alpn: Option<String>,
}

impl Child {
    /// Every kind of connection this child takes (the product of its lists).
    pub fn kinds(&self) -> Vec<Kind> {
        fn any<T: Clone>(list: &[T]) -> Vec<Option<T>> {
            match list {
                [] => vec![None],
                l => l.iter().cloned().map(Some).collect(),
            }
        }
        let mut out = Vec::new();
        for port in any(&self.ports) {
            for block in any(&self.addresses) {
                for server_name in any(&self.server_names) {
                    for alpn in any(&self.alpn) {
                        out.push(Kind {
                            port,
                            block,
                            server_name: server_name.clone(),
                            transport: self.transport,
                            alpn,
                        });
                    }
                }
            }
        }
        out
    }
}

/// `port 8080 of 10.0.0.0/8, server name "a.example.com", over TLS, protocol "h2"`.
impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.port {
            Some(p) => write!(f, "port {p}")?,
            None => write!(f, "any port")?,
        }
        match self.block {
            Some(b) => write!(f, " of {b}")?,
            None => write!(f, " of any address")?,
        }
        match &self.server_name {
            Some(ServerName::Exact(e)) => write!(f, ", server name {e:?}")?,
            Some(ServerName::Wildcard(w)) => write!(f, ", server name \"*{w}\"")?,
            None => {}
        }
        match self.transport {
            Some(Transport::Tls) => write!(f, ", over TLS")?,
            Some(Transport::Plaintext) => write!(f, ", in plaintext")?,
            None => {}
        }
        if let Some(a) = &self.alpn {
            write!(f, ", protocol {a:?}")?;
        }
        Ok(())
    }
}

/// Which listener serves a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick<'a> {
    /// This child listener.
    Child(&'a str),
    /// The parent itself: no child takes it.
    Parent,
    /// The choice depends on the connection's first bytes: read them, and ask again.
    Inspect,
}

/// A parent listener's children, indexed by port.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Children {
    list: Vec<Child>,
    /// Positions in `list` of the children naming each port.
    by_port: HashMap<u16, Vec<usize>>,
    /// Positions of the children naming no port.
    any_port: Vec<usize>,
}

impl Children {
    pub fn new(list: Vec<Child>) -> Children {
        let mut by_port: HashMap<u16, Vec<usize>> = HashMap::new();
        let mut any_port = Vec::new();
        for (i, c) in list.iter().enumerate() {
            if c.ports.is_empty() {
                any_port.push(i);
            }
            for p in &c.ports {
                by_port.entry(*p).or_default().push(i);
            }
        }
        Children {
            list,
            by_port,
            any_port,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Child> {
        self.list.iter()
    }

    /// The listener serving a connection to `dst` that opened with `hello` (`None`: not
    /// read yet). In Envoy's order: the children naming the port first; among them those
    /// with the longest block containing the address (naming none ranks below any block);
    /// among those, the server name (exact, then the longest wildcard, then none), the
    /// transport (named, then none) and the first application protocol the client offers
    /// that one takes (then none). Only when the children naming the port take nothing, the
    /// children naming no port, the same way; then the parent. Validation keeps two children
    /// from taking the same connections, so the choice is unique.
    pub fn pick(&self, dst: SocketAddr, hello: Option<&Hello>) -> Pick<'_> {
        let named = self.by_port.get(&dst.port()).map_or(&[][..], Vec::as_slice);
        for group in [named, &self.any_port] {
            let set = self.by_address(group, dst);
            if set.is_empty() {
                continue;
            }
            let Some(hello) = hello else {
                if set.iter().any(|c| c.inspects()) {
                    return Pick::Inspect;
                }
                // Nothing past the address to tell them apart: validation leaves one.
                match set.first() {
                    Some(c) => return Pick::Child(&c.listener),
                    None => continue,
                }
            };
            if let Some(c) = by_hello(set, hello) {
                return Pick::Child(&c.listener);
            }
        }
        Pick::Parent
    }

    /// The children of `group` with the longest block containing `dst`'s address.
    fn by_address(&self, group: &[usize], dst: SocketAddr) -> Vec<&Child> {
        let ranked: Vec<(u16, &Child)> = group
            .iter()
            .filter_map(|&i| self.list.get(i))
            .filter_map(|c| Some((c.address_rank(dst)?, c)))
            .collect();
        let best = ranked.iter().map(|(r, _)| *r).max();
        ranked
            .into_iter()
            .filter(|(r, _)| Some(*r) == best)
            .map(|(_, c)| c)
            .collect()
    }
}

/// Among children of one port and block: server name, then transport, then application
/// protocol, each level keeping its most specific matches.
fn by_hello<'a>(set: Vec<&'a Child>, hello: &Hello) -> Option<&'a Child> {
    let name = hello.server_name.as_deref();
    let ranked: Vec<(usize, &Child)> = set
        .into_iter()
        .filter_map(|c| Some((c.name_rank(name)?, c)))
        .collect();
    let best = ranked.iter().map(|(r, _)| *r).max()?;
    let named: Vec<&Child> = ranked
        .into_iter()
        .filter(|(r, _)| *r == best)
        .map(|(_, c)| c)
        .collect();
    let by_transport: Vec<&Child> = {
        let exact: Vec<&Child> = named
            .iter()
            .copied()
            .filter(|c| c.transport == Some(hello.transport))
            .collect();
        if exact.is_empty() {
            named
                .into_iter()
                .filter(|c| c.transport.is_none())
                .collect()
        } else {
            exact
        }
    };
    for offered in &hello.alpn {
        if let Some(c) = by_transport.iter().find(|c| c.alpn.contains(offered)) {
            return Some(c);
        }
    }
    by_transport.into_iter().find(|c| c.alpn.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child(name: &str, ports: &[u16], addresses: &[&str]) -> Child {
        Child::new(
            name.into(),
            ports.to_vec(),
            addresses.iter().map(|a| Cidr::parse(a).unwrap()).collect(),
        )
    }

    fn picked<'a>(c: &'a Children, to: &str, hello: Option<&Hello>) -> Option<&'a str> {
        match c.pick(to.parse().unwrap(), hello) {
            Pick::Child(name) => Some(name),
            Pick::Parent => None,
            Pick::Inspect => Some("(inspect)"),
        }
    }

    fn hello(transport: Transport, sni: Option<&str>, alpn: &[&str]) -> Hello {
        Hello {
            transport,
            server_name: sni.map(str::to_string),
            alpn: alpn.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn the_port_first_then_the_longest_block_then_the_parent() {
        let c = Children::new(vec![
            child("port-8080", &[8080], &[]),
            child("svc-a", &[8080], &["10.96.0.10"]),
            child("pods", &[8080], &["10.244.0.0/16"]),
            child("any-port-net", &[], &["10.96.0.0/12"]),
            child("blackhole", &[15001], &[]),
            child("v6", &[443], &["fd00::/8"]),
        ]);
        let pick = |to: &str| picked(&c, to, None);
        assert_eq!(pick("10.96.0.10:8080"), Some("svc-a"));
        assert_eq!(pick("10.244.3.4:8080"), Some("pods"));
        assert_eq!(pick("192.168.1.1:8080"), Some("port-8080"));
        // The port's children take it even where a no-port child has a longer block.
        assert_eq!(pick("10.96.0.11:8080"), Some("port-8080"));
        assert_eq!(pick("10.96.0.11:9090"), Some("any-port-net"));
        assert_eq!(pick("127.0.0.1:15001"), Some("blackhole"));
        assert_eq!(pick("[fd00::1]:443"), Some("v6"));
        // An IPv4-mapped address is its IPv4 address.
        assert_eq!(pick("[::ffff:10.96.0.10]:8080"), Some("svc-a"));
        assert_eq!(pick("192.168.1.1:9090"), None);
        assert_eq!(pick("[fd00::1]:444"), None);
    }

    #[test]
    fn a_port_whose_children_take_no_address_falls_back_to_the_no_port_ones() {
        let c = Children::new(vec![
            child("svc", &[80], &["10.0.0.1"]),
            child("catch", &[], &[]),
        ]);
        assert_eq!(picked(&c, "10.0.0.1:80", None), Some("svc"));
        assert_eq!(picked(&c, "10.0.0.2:80", None), Some("catch"));
        assert_eq!(picked(&Children::default(), "10.0.0.2:80", None), None);
    }

    /// Istio's inbound chains for one port under PERMISSIVE mTLS, and a TLS port by name.
    #[test]
    fn then_the_server_name_the_transport_and_the_application_protocol() {
        let istio = ["istio-http/1.0", "istio-http/1.1", "istio-h2"];
        let c = Children::new(vec![
            child("mtls-http", &[8080], &[]).opening(
                Some(Transport::Tls),
                vec![],
                istio.iter().map(|a| a.to_string()).collect(),
            ),
            child("tls-tcp", &[8080], &[]).opening(Some(Transport::Tls), vec![], vec![]),
            child("plain-http", &[8080], &[]).opening(
                Some(Transport::Plaintext),
                vec![],
                vec!["http/1.1".into(), "h2c".into()],
            ),
            child("plain-tcp", &[8080], &[]).opening(Some(Transport::Plaintext), vec![], vec![]),
            child("api", &[443], &[]).opening(
                None,
                vec![ServerName::new("api.example.com")],
                vec![],
            ),
            child("wild", &[443], &[]).opening(
                None,
                vec![ServerName::new("*.example.com")],
                vec![],
            ),
            child("deeper", &[443], &[]).opening(
                None,
                vec![ServerName::new("*.eu.example.com")],
                vec![],
            ),
            child("no-name", &[443], &[]),
            child("unrelated", &[9000], &[]),
        ]);
        let to = "10.0.0.1:8080";
        assert_eq!(picked(&c, to, None), Some("(inspect)"));
        let tls = |alpn: &[&str]| hello(Transport::Tls, None, alpn);
        let plain = |alpn: &[&str]| hello(Transport::Plaintext, None, alpn);
        assert_eq!(
            picked(&c, to, Some(&tls(&["istio-h2", "h2"]))),
            Some("mtls-http")
        );
        assert_eq!(
            picked(&c, to, Some(&tls(&["h2", "istio-http/1.1"]))),
            Some("mtls-http")
        );
        assert_eq!(picked(&c, to, Some(&tls(&["h2"]))), Some("tls-tcp"));
        assert_eq!(picked(&c, to, Some(&tls(&[]))), Some("tls-tcp"));
        assert_eq!(picked(&c, to, Some(&plain(&["h2c"]))), Some("plain-http"));
        assert_eq!(picked(&c, to, Some(&plain(&[]))), Some("plain-tcp"));
        // A port without inspecting children needs no bytes.
        assert_eq!(picked(&c, "10.0.0.1:9000", None), Some("unrelated"));

        let to = "10.0.0.1:443";
        let sni = |name: Option<&str>| hello(Transport::Tls, name, &[]);
        assert_eq!(
            picked(&c, to, Some(&sni(Some("api.example.com")))),
            Some("api")
        );
        assert_eq!(
            picked(&c, to, Some(&sni(Some("www.example.com")))),
            Some("wild")
        );
        assert_eq!(
            picked(&c, to, Some(&sni(Some("a.eu.example.com")))),
            Some("deeper")
        );
        assert_eq!(
            picked(&c, to, Some(&sni(Some("example.com")))),
            Some("no-name")
        );
        assert_eq!(picked(&c, to, Some(&sni(None))), Some("no-name"));
        assert_eq!(
            picked(&c, to, Some(&hello(Transport::Plaintext, None, &[]))),
            Some("no-name")
        );
    }

    #[test]
    fn a_level_that_takes_nothing_falls_back_to_the_no_port_children_then_the_parent() {
        let c = Children::new(vec![
            child("tls-only", &[8080], &[]).opening(Some(Transport::Tls), vec![], vec![]),
            child("any", &[], &["10.0.0.0/8"]),
        ]);
        let plain = hello(Transport::Plaintext, None, &[]);
        assert_eq!(picked(&c, "10.0.0.1:8080", Some(&plain)), Some("any"));
        assert_eq!(picked(&c, "192.168.0.1:8080", Some(&plain)), None);
    }
}
