//! The listeners' chains as ringside listeners, parents first: which parent each child
//! has (its own listener's, or for a `bind_to_port: false` listener the `use_original_dst`
//! one's), and that no two children of a parent take the same destination.

use std::collections::BTreeMap;

use toml::Value;

use super::chains::TChain;
use super::listeners::{Role, TListener};
use super::{int, string, Table};
use crate::sources::xds::nack::{unsupported, Res};

/// One ringside listener to write: a chain, and a child's parent (its ringside name).
pub struct Unit<'a> {
    pub xds: &'a str,
    pub chain: &'a TChain,
    pub parent: Option<&'a str>,
    role: Role,
}

impl Unit<'_> {
    /// The `[[listeners]]` table: a child's with `parent` and `match`.
    pub fn table(&self) -> Table {
        let mut t = self.chain.table.clone();
        if let Some(p) = self.parent {
            t.insert("parent".into(), string(p));
            t.insert("match".into(), Value::Table(destination(self.chain)));
        }
        t
    }
}

fn destination(c: &TChain) -> Table {
    let mut m = Table::new();
    if let Some(p) = c.dest.port {
        m.insert("ports".into(), Value::Array(vec![int(p)]));
    }
    if !c.dest.blocks.is_empty() {
        let blocks = c.dest.blocks.iter();
        let blocks = blocks
            .map(|(ip, len)| string(format!("{ip}/{len}")))
            .collect();
        m.insert("addresses".into(), Value::Array(blocks));
    }
    m
}

/// Every listener's chains as units, each parent before its children.
pub fn units(listeners: &BTreeMap<String, TListener>) -> Res<Vec<Unit<'_>>> {
    let hand_off = hand_off(listeners)?;
    let mut parents = Vec::new();
    let mut children = Vec::new();
    for (xds, l) in listeners {
        let parent =
            match (l.role, &l.own, hand_off) {
                (Role::Receiver, _, Some(h)) => h,
                (Role::Receiver, _, None) => return Err(unsupported(
                    &format!("listener {xds:?}.bind_to_port"),
                    "false without a listener with use_original_dst (none hands it connections)",
                )),
                (_, Some(own), _) => {
                    let (chain, role) = (own, l.role);
                    parents.push(Unit {
                        xds,
                        chain,
                        parent: None,
                        role,
                    });
                    own.name.as_str()
                }
                (_, None, _) => continue,
            };
        let each = l.children.iter();
        let role = l.role;
        children.extend(each.map(|chain| Unit {
            xds,
            chain,
            parent: Some(parent),
            role,
        }));
    }
    distinct(&children)?;
    handed_first(&children)?;
    parents.extend(children);
    Ok(parents)
}

/// The ringside name of the `use_original_dst` listener, if there is one; a second fails.
fn hand_off(listeners: &BTreeMap<String, TListener>) -> Res<Option<&str>> {
    let mut found: Option<(&str, &str)> = None;
    for (xds, l) in listeners {
        let (Role::HandOff, Some(own)) = (l.role, &l.own) else {
            continue;
        };
        if let Some((first, _)) = found {
            return Err(unsupported(
                &format!("listener {xds:?}.use_original_dst"),
                format!("a second listener with use_original_dst (listener {first:?} has it; the listeners that do not bind have one parent)"),
            ));
        }
        found = Some((xds, own.name.as_str()));
    }
    Ok(found.map(|(_, n)| n))
}

/// Two children of one parent taking the same port and block fail, naming both chains.
fn distinct(children: &[Unit<'_>]) -> Res<()> {
    let mut taken: BTreeMap<(&str, Option<u16>, Option<String>), &str> = BTreeMap::new();
    for u in children {
        let d = &u.chain.dest;
        let blocks: Vec<Option<String>> = match d.blocks.as_slice() {
            [] => vec![None],
            b => b
                .iter()
                .map(|(ip, len)| Some(format!("{ip}/{len}")))
                .collect(),
        };
        for block in blocks {
            let key = (u.parent.unwrap_or_default(), d.port, block);
            if let Some(other) = taken.get(&key) {
                let port = key
                    .1
                    .map_or_else(|| "any port".into(), |p| format!("port {p}"));
                let block = key.2.unwrap_or_else(|| "any address".into());
                return Err(format!(
                    "{}.filter_chain_match: takes {port} of {block}, as {other} does (ringside hands one destination to one listener)",
                    u.chain.at
                ));
            }
            taken.insert(key, &u.chain.at);
        }
    }
    Ok(())
}

/// Envoy hands a connection to the `bind_to_port: false` listener at `0.0.0.0:port` (or
/// `[::]:port`) before the hand-off listener's own chains are tried: one of those naming
/// that port and a block would win in ringside (the longer block), so it fails.
fn handed_first(children: &[Unit<'_>]) -> Res<()> {
    let wildcards: Vec<(&Unit<'_>, u16, bool)> = children
        .iter()
        .filter(|u| u.role == Role::Receiver)
        .filter_map(|u| {
            let p = u.chain.dest.port?;
            let v4 = u
                .chain
                .dest
                .blocks
                .iter()
                .find(|(_, len)| *len == 0)?
                .0
                .is_ipv4();
            Some((u, p, v4))
        })
        .collect();
    for u in children.iter().filter(|u| u.role == Role::HandOff) {
        let Some(p) = u.chain.dest.port else { continue };
        let family = |v4: bool| u.chain.dest.blocks.iter().any(|(ip, _)| ip.is_ipv4() == v4);
        if let Some((r, ..)) = wildcards.iter().find(|(_, rp, v4)| *rp == p && family(*v4)) {
            return Err(unsupported(
                &format!("{}.filter_chain_match", u.chain.at),
                format!("an address block at port {p}, which Envoy hands to listener {:?} (bind_to_port false) before trying this chain,", r.xds),
            ));
        }
    }
    Ok(())
}
