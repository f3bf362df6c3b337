//! Child listeners (`listeners[].parent`, `match`): a transparent listener's connections
//! handed to another listener by their original destination.

use std::collections::HashMap;

use super::Validator;
use crate::destination::{Child, Children};
use crate::edge::Cidr;
use crate::model::Listener;
use crate::raw::{FileListener, FileListenerMatch};
use crate::read::Slot;

/// One (port, block) a child takes; `None`: any.
type Key = (Option<u16>, Option<Cidr>);

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
        let mut taken: HashMap<(usize, Key), usize> = HashMap::new();
        for (i, slot) in raw.iter().enumerate() {
            let Slot::Ok(l) = slot else { continue };
            let p = format!("listeners[{i}]");
            let Some(parent) = &l.parent else {
                if l.destination.is_some() {
                    self.err(
                        format!("{p}.match"),
                        "only with parent (the original destinations a child listener takes from its parent)",
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
                    "required with parent: the original destinations (ports, addresses) this listener takes",
                );
                continue;
            };
            let (Some(j), Some((ports, addresses))) = (parent_index, self.destination(&p, m))
            else {
                continue;
            };
            for key in keys(&ports, &addresses) {
                if let Some(&other) = taken.get(&(j, key)) {
                    self.err(
                        format!("{p}.match"),
                        format!(
                            "takes {} as listeners[{other}] does (children of {parent:?} must not overlap exactly)",
                            describe(key)
                        ),
                    );
                    break;
                }
                taken.insert((j, key), i);
            }
            tables
                .entry(j)
                .or_default()
                .push((i, Child::new(l.name.clone(), ports, addresses)));
        }
        for (j, children) in tables {
            let bind = built.get(j).and_then(|l| l.as_ref()).map(|l| l.bind);
            for (i, _) in &children {
                if let (Some(bind), Some(Some(child))) = (bind, built.get_mut(*i)) {
                    child.bind = bind;
                }
            }
            if let Some(Some(parent)) = built.get_mut(j) {
                parent.children = Children::new(children.into_iter().map(|(_, c)| c).collect());
            }
        }
    }

    /// `listeners[i].parent`: the position of a listener that binds and reads original
    /// destinations.
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
        } else if pl.transparent != Some(true) {
            "that listener needs transparent = true (a child is chosen by the connection's original destination, which only a transparent listener reads)"
        } else {
            return Some(j);
        };
        self.err(at, format!("listener {parent:?}: {why}"));
        None
    }

    fn destination(&mut self, p: &str, m: &FileListenerMatch) -> Option<(Vec<u16>, Vec<Cidr>)> {
        let at = format!("{p}.match");
        if m.ports.is_none() && m.addresses.is_none() {
            self.err(at, "needs ports, addresses or both (a child that took every connection would leave its parent nothing)");
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
        for (key, list) in [
            ("ports", m.ports.as_ref().map(Vec::len)),
            ("addresses", m.addresses.as_ref().map(Vec::len)),
        ] {
            if list == Some(0) {
                self.err(format!("{at}.{key}"), "empty: omit it to take any");
                ok = false;
            }
        }
        ok.then_some((ports, addresses))
    }
}

fn keys(ports: &[u16], addresses: &[Cidr]) -> Vec<Key> {
    let ports: Vec<Option<u16>> = match ports {
        [] => vec![None],
        p => p.iter().copied().map(Some).collect(),
    };
    let blocks: Vec<Option<Cidr>> = match addresses {
        [] => vec![None],
        a => a.iter().copied().map(Some).collect(),
    };
    ports
        .iter()
        .flat_map(|p| blocks.iter().map(move |b| (*p, *b)))
        .collect()
}

fn describe((port, block): Key) -> String {
    let port = port.map_or_else(|| "any port".to_string(), |p| format!("port {p}"));
    let block = block.map_or_else(|| "any address".to_string(), |b| format!("{b}"));
    format!("{port} of {block}")
}
