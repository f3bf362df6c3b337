//! Per-worker view of the published configuration (layer 3: it holds the compiled stages).
//!
//! Workers never lock to read configuration: the process publishes `Arc<Snapshot>` through an
//! `ArcSwap`, and each worker keeps an `arc_swap::Cache` (one pointer compare per request).
//! When the pointer changes, the worker builds a new [`View`]: the snapshot plus its own
//! per-cluster state (balancer, handles on the endpoints' process-wide health marks, taken
//! from the registry here). State of a cluster whose fingerprint did not change is carried
//! over, so a reload that touches one route does not reset every round-robin position (a
//! cluster whose endpoints changed gets a new balancer that takes over what the old one knew
//! of the endpoints that stay: `Balancer::carry`); an
//! ejected endpoint stays ejected through any reload that keeps it (its marks are keyed by
//! cluster name and address).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use arc_swap::cache::Cache;
use arc_swap::ArcSwap;
use ringside_config::{HttpListener, Listener, ListenerKind, Role, RouteAction, Snapshot};

use crate::cx::shared::Registry;
use crate::stage::{Compiled, Stacks};
use crate::upstream::cluster::ClusterState;

/// One generation as this worker sees it.
pub(crate) struct View {
    pub(crate) snap: Arc<Snapshot>,
    /// Indexed like `snap.config.clusters`.
    pub(crate) clusters: Vec<Rc<ClusterState>>,
    /// rustls contexts of this generation's TLS listeners and clusters.
    pub(crate) tls: crate::cx::tls::TlsContexts,
    /// The role's stages compiled for each HTTP listener and its routes; indexed like
    /// `snap.config.listeners` (`None` for TCP listeners).
    compiled: Vec<Option<Compiled>>,
}

impl View {
    fn build(
        snap: Arc<Snapshot>,
        previous: Option<&View>,
        stacks: &Stacks,
        registry: &Registry,
    ) -> View {
        let mut old: HashMap<&str, &Rc<ClusterState>> = HashMap::new();
        if let Some(p) = previous {
            for (c, s) in p.snap.config.clusters.iter().zip(&p.clusters) {
                old.insert(c.name.as_str(), s);
            }
        }
        let retried = retried_clusters(&snap);
        let clusters = snap
            .config
            .clusters
            .iter()
            .zip(retried)
            .map(|(c, retried)| match old.get(c.name.as_str()) {
                Some(s) if s.fits(c, retried) => Rc::clone(s),
                Some(s) => {
                    let mut state = ClusterState::new(c, registry, retried);
                    state.balancer.carry(&s.balancer);
                    Rc::new(state)
                }
                None => Rc::new(ClusterState::new(c, registry, retried)),
            })
            .collect();
        let tls = crate::cx::tls::TlsContexts::build(&snap.config);
        let stack = match snap.config.proxy.role {
            Role::Sidecar => &stacks.sidecar,
            Role::Gateway => &stacks.gateway,
        };
        let compiled = snap
            .config
            .listeners
            .iter()
            .map(|l| {
                let ListenerKind::Http(http) = &l.kind else {
                    return None;
                };
                let mut compiled = Compiled::build(stack, l, http, registry);
                if let Some((old, old_http)) = previous.and_then(|p| p.http_compiled(&l.name)) {
                    compiled.carry(old, &route_names(old_http), &route_names(http));
                }
                Some(compiled)
            })
            .collect();
        View {
            snap,
            clusters,
            tls,
            compiled,
        }
    }

    pub(crate) fn listener(&self, name: &str) -> Option<&Listener> {
        self.snap.config.listener(name)
    }

    /// An HTTP listener by name, with its compiled stages.
    pub(crate) fn http(&self, name: &str) -> Option<(&Listener, &HttpListener, &Compiled)> {
        let i = self
            .snap
            .config
            .listeners
            .iter()
            .position(|l| l.name == name)?;
        let l = self.snap.config.listeners.get(i)?;
        let ListenerKind::Http(http) = &l.kind else {
            return None;
        };
        Some((l, http, self.compiled.get(i)?.as_ref()?))
    }

    fn http_compiled(&self, name: &str) -> Option<(&Compiled, &HttpListener)> {
        self.http(name).map(|(_, http, c)| (c, http))
    }
}

/// For each cluster, whether a route with a retry policy calls it (it then needs a budget).
fn retried_clusters(snap: &Snapshot) -> Vec<bool> {
    let mut retried = vec![false; snap.config.clusters.len()];
    for l in &snap.config.listeners {
        let ListenerKind::Http(http) = &l.kind else {
            continue;
        };
        for route in http.routes.iter().filter(|r| r.retry.is_some()) {
            let ids: Vec<usize> = match &route.action {
                RouteAction::Cluster(id) => vec![id.0],
                RouteAction::Weighted { targets, .. } => targets.iter().map(|t| t.0 .0).collect(),
                RouteAction::Direct(_) | RouteAction::Redirect(_) | RouteAction::Authority => {
                    Vec::new()
                }
            };
            for id in ids {
                if let Some(r) = retried.get_mut(id) {
                    *r = true;
                }
            }
        }
    }
    retried
}

fn route_names(http: &HttpListener) -> Vec<&str> {
    http.routes.iter().map(|r| r.name.as_str()).collect()
}

/// The worker's cache of the published snapshot.
pub(crate) struct Views {
    cache: RefCell<Cache<Arc<ArcSwap<Snapshot>>, Arc<Snapshot>>>,
    current: RefCell<Rc<View>>,
    stacks: Arc<Stacks>,
    /// The process's shared state (stages and clusters take theirs when a view is built).
    registry: Arc<Registry>,
}

impl Views {
    pub(crate) fn new(
        shared: Arc<ArcSwap<Snapshot>>,
        stacks: Arc<Stacks>,
        registry: Arc<Registry>,
    ) -> Views {
        let snap = shared.load_full();
        Views {
            cache: RefCell::new(Cache::new(shared)),
            current: RefCell::new(Rc::new(View::build(snap, None, &stacks, &registry))),
            stacks,
            registry,
        }
    }

    /// The current generation's view (cheap: a pointer compare when nothing changed).
    pub(crate) fn current(&self) -> Rc<View> {
        let mut cache = self.cache.borrow_mut();
        let latest = cache.load();
        let mut current = self.current.borrow_mut();
        if !Arc::ptr_eq(latest, &current.snap) {
            let next = View::build(
                Arc::clone(latest),
                Some(&current),
                &self.stacks,
                &self.registry,
            );
            *current = Rc::new(next);
        }
        Rc::clone(&current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::{ListenerStep, RouteStep, Stack};

    fn view(role: &str, stacks: &Stacks) -> View {
        let text = format!(
            r#"
            [proxy]
            role = "{role}"

            [[listeners]]
            name = "in"
            bind = "127.0.0.1:1"
            max_request_body_bytes = 10

            [[routes]]
            listener = "in"
            match = {{ path_prefix = "/" }}
            direct_response = {{ status = 200, body = "ok" }}
            "#
        );
        let config = ringside_config::parse(&text).unwrap();
        View::build(
            Arc::new(Snapshot {
                generation: 1,
                config,
            }),
            None,
            stacks,
            &Registry::default(),
        )
    }

    #[test]
    fn the_role_picks_its_stack() {
        let sidecar = Stack::new()
            .listener(ListenerStep::Limits)
            .route(RouteStep::Direct);
        let gateway = Stack::new().route(RouteStep::Direct);
        let stacks = Stacks { sidecar, gateway };
        let stages = |v: &View| {
            let (_, _, c) = v.http("in").unwrap();
            (c.listener.len(), c.routes[0].len())
        };
        assert_eq!(stages(&view("sidecar", &stacks)), (1, 1));
        assert_eq!(stages(&view("gateway", &stacks)), (0, 1));
    }
}
