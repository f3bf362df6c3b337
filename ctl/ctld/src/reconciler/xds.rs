//! The reconciler's side of the xDS source (`sources/xds/`): it tells the xDS thread which
//! nodes exist and each one's template (its file), and takes the configurations it proposes.
//! A node's xDS configuration is its base, as a file's is without `--xds` (`apply_file`);
//! files are only templates then, and after a restart the persisted base is kept until xDS
//! sends another.

use std::collections::BTreeMap;

use tokio::sync::watch;

use super::Reconciler;
use crate::clock::Now;
use crate::sources::xds::{Templates, Update};

pub struct Link {
    templates: watch::Sender<Templates>,
    /// How many nodes the xDS thread was last told of.
    told: usize,
    /// The last proposal of each node.
    pub bases: BTreeMap<String, Update>,
}

impl Reconciler {
    /// Turns on the xDS source: `templates` is what its thread watches.
    pub fn with_xds(mut self, templates: watch::Sender<Templates>) -> Reconciler {
        self.xds = Some(Link {
            templates,
            told: 0,
            bases: BTreeMap::new(),
        });
        self.xds_publish();
        self
    }

    pub(super) fn on_xds(&mut self, update: Update, now: Now) {
        let id = update.node.clone();
        if !self.nodes.contains_key(&id) {
            // Forgotten since the xDS thread proposed it.
            return;
        }
        if let Some(link) = self.xds.as_mut() {
            link.bases.insert(id.clone(), update);
        }
        self.apply_file(&id, now);
    }

    /// After an event that may have added a node or changed a file (`membership`), or when
    /// the count of nodes changed (forgetting): [`Self::xds_publish`].
    pub(super) fn xds_nodes_changed(&mut self, membership: bool) {
        let count = self.nodes.len();
        if self
            .xds
            .as_ref()
            .is_some_and(|l| membership || l.told != count)
        {
            self.xds_publish();
        }
    }

    /// Sends the xDS thread the nodes and templates, when they changed (never blocks).
    fn xds_publish(&mut self) {
        let Some(link) = self.xds.as_mut() else {
            return;
        };
        link.told = self.nodes.len();
        link.bases.retain(|id, _| self.nodes.contains_key(id));
        let scan = &self.scan;
        let nodes = &self.nodes;
        link.templates.send_if_modified(|t| {
            // A file with errors is not a template: the previous one stays.
            let template = |id: &String| match scan.file_for(id) {
                Some(f) if f.errors.is_empty() => Some(f.text.clone()),
                Some(_) => t.get(id).cloned().flatten(),
                None => None,
            };
            let fresh: Templates = nodes.keys().map(|id| (id.clone(), template(id))).collect();
            if fresh == *t {
                return false;
            }
            *t = fresh;
            true
        });
    }
}
