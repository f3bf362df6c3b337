//! Child listeners (`listeners[].parent`, `match`): a listener's connections handed to
//! another listener by their destination (the original one, on a transparent parent) and
//! what they open with.

use std::collections::HashMap;

use super::Validator;
use crate::destination::{alpn_protocol, Child, Children, Kind, ServerName, Transport};
use crate::edge::Cidr;
use crate::model::Listener;
use crate::raw::{FileListener, FileListenerMatch, FileTransport};
use crate::read::Slot;

impl Validator {
    /// Checks every `parent` and `match`, gives each parent its table of children and each
    /// child its parent's address.
    pub(super) fn children(
        &mut self,
        raw: &[Slot<FileListener>],
        ids: &HashMap<&str, usize>,
        built: &mut [Option<Listener>],
    ) {
        let mut tables: HashMap<usize, Vec<(usize, Child)>> = HashMap::new();
        let mut taken: HashMap<(usize, Kind), usize> = HashMap::new();
        for (i, slot) in raw.iter().enumerate() {
            let Slot::Ok(l) = slot else { continue };
            let p = format!("listeners[{i}]");
            let Some(parent) = &l.parent else {
                if l.destination.is_some() {
                    self.err(
                        format!("{p}.match"),
                        "only with parent (the connections a child listener takes from its parent)",
                    );
                }
                continue;
            };
            for (key, given) in [
                ("transparent", l.transparent.is_some()),
                ("max_connections", l.max_connections.is_some()),
            ] {
                if given {
                    self.err(
                        format!("{p}.{key}"),
                        format!("not with parent: the parent's {key} applies to the connections it hands this listener"),
                    );
                }
            }
            let parent_index = self.parent(&p, l, parent, raw, ids);
            let Some(m) = &l.destination else {
                self.err(
                    format!("{p}.match"),
                    "required with parent: the connections this listener takes (ports, addresses; transport, server_names, alpn)",
                );
                continue;
            };
            let (Some(j), Some(child)) = (parent_index, self.destination(&p, &l.name, m)) else {
                continue;
            };
            for kind in child.kinds() {
                if let Some(&other) = taken.get(&(j, kind.clone())) {
                    self.err(
                        format!("{p}.match"),
                        format!(
                            "takes {kind} as listeners[{other}] does (children of {parent:?} must not overlap exactly)"
                        ),
                    );
                    break;
                }
                taken.insert((j, kind), i);
            }
            tables.entry(j).or_default().push((i, child));
        }
        for (j, children) in tables {
            let parent = built.get(j).and_then(|l| l.as_ref());
            let (bind, transparent) = (
                parent.map(|l| l.bind),
                parent.is_some_and(|l| l.transparent),
            );
            for (i, _) in &children {
                if let (Some(bind), Some(Some(child))) = (bind, built.get_mut(*i)) {
                    child.bind = bind;
                    // Its connections carry an original destination when the parent's do.
                    child.transparent = transparent;
                }
            }
            if let Some(Some(parent)) = built.get_mut(j) {
                parent.children = Children::new(children.into_iter().map(|(_, c)| c).collect());
            }
        }
    }

    /// `listeners[i].parent`: the position of a listener that accepts (has no parent itself).
    fn parent(
        &mut self,
        p: &str,
        l: &FileListener,
        parent: &str,
        raw: &[Slot<FileListener>],
        ids: &HashMap<&str, usize>,
    ) -> Option<usize> {
        let at = format!("{p}.parent");
        let Some(&j) = ids.get(parent) else {
            self.err(at, format!("unknown listener {parent:?}"));
            return None;
        };
        let Some(Slot::Ok(pl)) = raw.get(j) else {
            return None; // its own errors are reported
        };
        let why = if pl.name == l.name {
            "a listener cannot be its own parent"
        } else if pl.parent.is_some() {
            "that listener has a parent itself (one level only: the parent is the listener that accepts)"
        } else {
            return Some(j);
        };
        self.err(at, format!("listener {parent:?}: {why}"));
        None
    }

    fn destination(&mut self, p: &str, name: &str, m: &FileListenerMatch) -> Option<Child> {
        let at = format!("{p}.match");
        let given = [
            m.ports.is_some(),
            m.addresses.is_some(),
            m.transport.is_some(),
            m.server_names.is_some(),
            m.alpn.is_some(),
        ];
        if !given.contains(&true) {
            self.err(at, "needs at least one of ports, addresses, transport, server_names, alpn (a child that took every connection would leave its parent nothing)");
            return None;
        }
        let mut ok = true;
        let mut ports = Vec::new();
        for (k, &port) in m.ports.iter().flatten().enumerate() {
            match u16::try_from(port).ok().filter(|p| *p != 0) {
                Some(p) if ports.contains(&p) => {
                    self.err(format!("{at}.ports[{k}]"), format!("duplicate port {p}"));
                    ok = false;
                }
                Some(p) => ports.push(p),
                None => {
                    self.err(
                        format!("{at}.ports[{k}]"),
                        format!("invalid port {port}: 1 to 65535"),
                    );
                    ok = false;
                }
            }
        }
        let mut addresses = Vec::new();
        for (k, a) in m.addresses.iter().flatten().enumerate() {
            match Cidr::parse(a) {
                Ok(c) if addresses.contains(&c) => {
                    self.err(
                        format!("{at}.addresses[{k}]"),
                        format!("duplicate block {a:?}"),
                    );
                    ok = false;
                }
                Ok(c) => addresses.push(c),
                Err(e) => {
                    self.err(format!("{at}.addresses[{k}]"), e);
                    ok = false;
                }
            }
        }
        let transport = m.transport.map(|t| match t {
            FileTransport::Tls => Transport::Tls,
            FileTransport::Plaintext => Transport::Plaintext,
        });
        let mut server_names = Vec::new();
        for (k, n) in m.server_names.iter().flatten().enumerate() {
            let at = format!("{at}.server_names[{k}]");
            match ServerName::parse(n) {
                Err(e) => self.err(at, e),
                Ok(_) if transport == Some(Transport::Plaintext) => self.err(
                    at,
                    "not with transport = \"plaintext\": only a TLS ClientHello names a server",
                ),
                Ok(s) if server_names.contains(&s) => {
                    self.err(at, format!("duplicate server name {n:?}"))
                }
                Ok(s) => {
                    server_names.push(s);
                    continue;
                }
            }
            ok = false;
        }
        let mut alpn: Vec<String> = Vec::new();
        for (k, a) in m.alpn.iter().flatten().enumerate() {
            let at = format!("{at}.alpn[{k}]");
            if let Err(e) = alpn_protocol(a) {
                self.err(at, e);
            } else if alpn.contains(a) {
                self.err(at, format!("duplicate protocol {a:?}"));
            } else {
                alpn.push(a.clone());
                continue;
            }
            ok = false;
        }
        let lists = [
            ("ports", m.ports.as_ref().map(Vec::len)),
            ("addresses", m.addresses.as_ref().map(Vec::len)),
            ("server_names", m.server_names.as_ref().map(Vec::len)),
            ("alpn", m.alpn.as_ref().map(Vec::len)),
        ];
        for (key, list) in lists {
            if list == Some(0) {
                self.err(format!("{at}.{key}"), "empty: omit it to take any");
                ok = false;
            }
        }
        let child = Child::new(name.to_string(), ports, addresses);
        ok.then(|| child.opening(transport, server_names, alpn))
    }
}
