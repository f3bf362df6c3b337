//! The listeners' chains as ringside listeners, parents first: which parent each child
//! has (its own listener's, or for a `bind_to_port: false` listener the `use_original_dst`
//! one's), and that no two children of a parent take the same connections.

use std::collections::{BTreeMap, HashMap};

use toml::Value;

use super::chains::TChain;
use super::listeners::{InspectKeys, Role, TListener};
use super::{string, Table};
use crate::sources::xds::nack::{unsupported, Res};
use ringside_config::{Cidr, Kind};

/// One ringside listener to write: a chain, and a child's parent (its ringside name).
pub struct Unit<'a> {
    pub xds: &'a str,
    pub chain: &'a TChain,
    pub parent: Option<&'a str>,
    role: Role,
    /// A parent's wait for first bytes.
    inspect: Option<InspectKeys>,
}

impl Unit<'_> {
    /// The `[[listeners]]` table: a child's with `parent` and `match`, a parent's with its
    /// `inspect_*` keys.
    pub fn table(&self) -> Table {
        let mut t = self.chain.table.clone();
        if let Some(p) = self.parent {
            t.insert("parent".into(), string(p));
            t.insert("match".into(), Value::Table(self.chain.matches.table()));
        } else if let Some(i) = self.inspect {
            i.write(&mut t);
        }
        t
    }
}

/// Every listener's chains as units, each parent before its children.
pub fn units(listeners: &BTreeMap<String, TListener>) -> Res<Vec<Unit<'_>>> {
    let hand_off = hand_off(listeners)?;
    // The hand-off listener's wait: its own, else its receivers' (Istio sets it on them).
    let received = listeners
        .values()
        .filter(|l| l.role == Role::Receiver)
        .find_map(|l| l.inspect);
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
                    let inspect = match role {
                        Role::HandOff => l.inspect.or(received),
                        _ => l.inspect,
                    };
                    parents.push(Unit {
                        xds,
                        chain,
                        parent: None,
                        role,
                        inspect,
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
            inspect: None,
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

/// Two children of one parent taking the same kind of connection (port, block, server
/// name, transport, application protocol: `ChainMatch::kinds`) fail, naming both chains.
fn distinct(children: &[Unit<'_>]) -> Res<()> {
    let mut taken: HashMap<(&str, Kind), &str> = HashMap::new();
    for u in children {
        for key in u.chain.matches.kinds() {
            let key = (u.parent.unwrap_or_default(), key);
            if let Some(other) = taken.get(&key) {
                return Err(format!(
                    "{}.filter_chain_match: takes {}, as {other} does (ringside hands those connections to one listener)",
                    u.chain.at,
                    key.1
                ));
            }
            taken.insert(key, &u.chain.at);
        }
    }
    Ok(())
}

/// Envoy hands a connection to the `bind_to_port: false` listener at its original
/// destination (at `IP:port`, else `0.0.0.0:port` or `[::]:port`) before the hand-off
/// listener's own chains are tried, whatever the connection opens with. A receiver's
/// children take their port and the block of its address (`/32`, or the family's `/0`);
/// a chain of the hand-off listener naming that port and a block of the family (at a
/// `0.0.0.0` receiver), or that same block (at one IP), would rank beside or above them in
/// ringside, so it fails.
fn handed_first(children: &[Unit<'_>]) -> Res<()> {
    let received: Vec<(&Unit<'_>, u16, Cidr)> = children
        .iter()
        .filter(|u| u.role == Role::Receiver)
        .filter_map(|u| Some((u, u.chain.matches.port?, *u.chain.matches.blocks.first()?)))
        .collect();
    for u in children.iter().filter(|u| u.role == Role::HandOff) {
        let Some(p) = u.chain.matches.port else {
            continue;
        };
        for &b in &u.chain.matches.blocks {
            let first = received.iter().find(|(_, rp, r)| {
                *rp == p && r.addr().is_ipv4() == b.addr().is_ipv4() && (r.bits() == 0 || *r == b)
            });
            if let Some((r, ..)) = first {
                return Err(unsupported(
                    &format!("{}.filter_chain_match", u.chain.at),
                    format!("the block {b} at port {p}, which Envoy hands to listener {:?} (bind_to_port false) before trying this chain,", r.xds),
                ));
            }
        }
    }
    Ok(())
}
