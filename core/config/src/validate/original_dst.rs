//! Traffic interception: clusters of `kind = "original_dst"` have no endpoints of their own
//! (each connection goes where it was going before iptables redirected it), so they are used
//! only from listeners with `transparent = true`, whose connections carry that destination;
//! so is `match.ports` outside CONNECT routes (the original destination's port).

use std::collections::{HashMap, HashSet};

use super::Validator;
use crate::raw::{FileCluster, FileClusterKind, FileListener, FileProtocol};
use crate::read::{RawFile, Slot};

impl Validator {
    /// `clusters[i].kind`: whether the cluster forwards to original destinations. Such a
    /// cluster takes none of the keys that describe endpoints of its own.
    pub(super) fn original_dst_kind(&mut self, p: &str, c: &FileCluster) -> bool {
        if c.kind != Some(FileClusterKind::OriginalDst) {
            return false;
        }
        let own_endpoints = [
            (
                "endpoints",
                c.endpoints.as_ref().is_some_and(|e| !e.is_empty()),
            ),
            ("lb", c.lb.is_some()),
            ("health_check", c.health_check.is_some()),
            ("zone_aware", c.zone_aware.is_some()),
        ];
        for (key, present) in own_endpoints {
            if present {
                self.err(
                    format!("{p}.{key}"),
                    "not valid with kind = \"original_dst\": each connection goes to its original destination",
                );
            }
        }
        true
    }

    /// What only a `transparent` listener's connections have, an original destination, may
    /// be used only there: a tcp listener or a route that names an `original_dst` cluster
    /// (a mirror never goes to one: a copy would go where the request already went), and
    /// `match.ports` outside CONNECT routes (the original destination's port).
    pub(super) fn transparent_only(&mut self, raw: &RawFile) {
        let original: HashSet<&str> = raw
            .clusters
            .iter()
            .filter_map(|s| match s {
                Slot::Ok(c) if c.kind == Some(FileClusterKind::OriginalDst) => Some(&*c.name),
                _ => None,
            })
            .collect();
        let listeners: HashMap<&str, &FileListener> = raw
            .listeners
            .iter()
            .filter_map(|s| match s {
                Slot::Ok(l) => Some((&*l.name, l)),
                Slot::Broken { .. } => None,
            })
            .collect();
        // A child listener's connections come from its parent: transparent if it is.
        let transparent = |l: &FileListener| {
            let parent = l.parent.as_deref().and_then(|p| listeners.get(p));
            l.transparent == Some(true) || parent.is_some_and(|p| p.transparent == Some(true))
        };
        for (i, slot) in raw.listeners.iter().enumerate() {
            let Slot::Ok(l) = slot else { continue };
            let tcp = l.protocol == Some(FileProtocol::Tcp);
            match &l.cluster {
                Some(c) if tcp && original.contains(&**c) && !transparent(l) => self.err(
                    format!("listeners[{i}].cluster"),
                    needs_transparent(c, &l.name),
                ),
                _ => {}
            }
        }
        for (i, slot) in raw.routes.iter().enumerate() {
            let Slot::Ok(r) = slot else { continue };
            let p = format!("routes[{i}]");
            if let Some(m) = &r.mirror {
                if original.contains(&*m.cluster) {
                    self.err(
                        format!("{p}.mirror.cluster"),
                        format!("cluster {:?} has kind = \"original_dst\": a mirror needs endpoints of its own", m.cluster),
                    );
                }
            }
            // An unknown listener is reported where routes are checked.
            let Some(l) = listeners.get(&*r.listener) else {
                continue;
            };
            if transparent(l) {
                continue;
            }
            let ports = r.matcher.as_ref().filter(|m| m.connect != Some(true));
            if ports.is_some_and(|m| m.ports.is_some()) {
                self.err(
                    format!("{p}.match.ports"),
                    "only with connect = true, or on a listener with transparent = true (the port \
                     of a CONNECT's authority, or of an intercepted connection's original \
                     destination; other requests are routed by host alone)",
                );
            }
            if let Some(c) = r.cluster.as_ref().filter(|c| original.contains(&***c)) {
                self.err(format!("{p}.cluster"), needs_transparent(c, &l.name));
            }
            for (j, w) in r.weighted.iter().flatten().enumerate() {
                if original.contains(&*w.cluster) {
                    let message = needs_transparent(&w.cluster, &l.name);
                    self.err(format!("{p}.weighted[{j}].cluster"), message);
                }
            }
        }
    }
}

fn needs_transparent(cluster: &str, listener: &str) -> String {
    format!(
        "cluster {cluster:?} has kind = \"original_dst\", which only a listener with transparent = true can use (listener {listener:?} is not)"
    )
}
