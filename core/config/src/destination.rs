//! Child listeners chosen by a connection's original destination (`listeners[].parent` and
//! `match`): Envoy's filter chain match on destination port and address, and its
//! `use_original_dst` hand-off, as one table per parent listener.

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::edge::Cidr;

/// What one child listener takes: any of `ports` (empty: any port) and any of `addresses`
/// (empty: any address).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Child {
    /// The child listener's name.
    pub listener: String,
    pub ports: Vec<u16>,
    pub addresses: Vec<Cidr>,
}

impl Child {
    pub fn new(listener: String, ports: Vec<u16>, addresses: Vec<Cidr>) -> Child {
        Child {
            listener,
            ports,
            addresses,
        }
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

    /// The child listener serving a connection to `dst`, or `None` for the parent itself.
    /// As Envoy orders filter chains: the children naming the port first, and among them
    /// the longest address block (naming none ranks below any block); only when none of
    /// those takes it, the children naming no port, the same way. Validation keeps two
    /// children from taking the same port and block, so the choice is unique.
    pub fn pick(&self, dst: SocketAddr) -> Option<&str> {
        let named = self.by_port.get(&dst.port()).map_or(&[][..], Vec::as_slice);
        self.best(named, dst)
            .or_else(|| self.best(&self.any_port, dst))
    }

    fn best(&self, candidates: &[usize], dst: SocketAddr) -> Option<&str> {
        candidates
            .iter()
            .filter_map(|&i| self.list.get(i))
            .filter_map(|c| Some((c.address_rank(dst)?, c)))
            .max_by_key(|(rank, _)| *rank)
            .map(|(_, c)| c.listener.as_str())
    }
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

    fn dst(s: &str) -> SocketAddr {
        s.parse().unwrap()
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
        assert_eq!(c.pick(dst("10.96.0.10:8080")), Some("svc-a"));
        assert_eq!(c.pick(dst("10.244.3.4:8080")), Some("pods"));
        assert_eq!(c.pick(dst("192.168.1.1:8080")), Some("port-8080"));
        // The port's children take it even where a no-port child has a longer block.
        assert_eq!(c.pick(dst("10.96.0.11:8080")), Some("port-8080"));
        assert_eq!(c.pick(dst("10.96.0.11:9090")), Some("any-port-net"));
        assert_eq!(c.pick(dst("127.0.0.1:15001")), Some("blackhole"));
        assert_eq!(c.pick(dst("[fd00::1]:443")), Some("v6"));
        // An IPv4-mapped address is its IPv4 address.
        assert_eq!(c.pick(dst("[::ffff:10.96.0.10]:8080")), Some("svc-a"));
        assert_eq!(c.pick(dst("192.168.1.1:9090")), None);
        assert_eq!(c.pick(dst("[fd00::1]:444")), None);
    }

    #[test]
    fn a_port_whose_children_take_no_address_falls_back_to_the_no_port_ones() {
        let c = Children::new(vec![
            child("svc", &[80], &["10.0.0.1"]),
            child("catch", &[], &[]),
        ]);
        assert_eq!(c.pick(dst("10.0.0.1:80")), Some("svc"));
        assert_eq!(c.pick(dst("10.0.0.2:80")), Some("catch"));
        assert!(Children::default().pick(dst("10.0.0.2:80")).is_none());
    }
}
