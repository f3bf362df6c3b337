//! Mirroring, the downstream half: which requests of a route are copied, and the task each
//! copy runs in (`upstream/mirror.rs` makes and sends the copy).
//!
//! A route's `mirror` copies `percent` of its requests (not upgrades or CONNECTs) to another
//! cluster, fire-and-forget: the copy runs in a task of its own on the same worker, after the
//! request's body was kept and before its first try, and its answer is read and dropped. At
//! most `max_in_flight` copies run at once on a worker; one more is dropped and counted, as
//! is a request whose body was too big to keep. The copy's outcome is counted on the mirror
//! cluster (`ringside_mirror_requests_total`), and its exchange like any other of that
//! cluster's.

use std::rc::Rc;
use std::time::Duration;

use ringside_codec::RequestHead;
use ringside_config::Route;

use crate::cx::metrics::MirrorResult;
use crate::downstream::Worker;
use crate::upstream::mirror::{run, Copy, Mirror};
use crate::upstream::retry::Replay;
use crate::upstream::{Exchange, UPSTREAM_READ_TIMEOUT};

/// A request of a mirrored route that is to be copied.
pub(crate) struct MirrorTo {
    worker: Rc<Worker>,
    cluster: String,
    host_suffix: Option<String>,
    max_in_flight: usize,
    /// The copy's whole exchange: the route's timeout, else the upstream read timeout.
    limit: Duration,
}

/// Whether this request of `route` is copied: the route has a mirror, the request is one of
/// its share, and it is not an upgrade or a CONNECT.
pub(crate) fn choose(
    worker: &Rc<Worker>,
    route: &Route,
    head: &RequestHead,
    websocket: bool,
) -> Option<MirrorTo> {
    let m = route.mirror.as_ref()?;
    let copyable = head.upgrade().is_none() && head.method() != "CONNECT" && !websocket;
    let view = worker.views.current();
    let cluster = view.snap.config.clusters.get(m.cluster.0)?;
    let picked = (worker.cx.random() % 10_000) < (m.percent * 100.0) as u64;
    (copyable && picked).then(|| MirrorTo {
        worker: Rc::clone(worker),
        cluster: cluster.name.clone(),
        host_suffix: m.host_suffix.clone(),
        max_in_flight: m.max_in_flight,
        limit: route.timeout.unwrap_or(UPSTREAM_READ_TIMEOUT),
    })
}

/// One copy in flight on its worker, for as long as it lives.
struct InFlight(Rc<Worker>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let n = &self.0.mirrors;
        n.set(n.get().saturating_sub(1));
    }
}

impl Mirror for MirrorTo {
    fn send(&self, x: &Exchange<'_>, body: Option<Replay>) {
        let worker = &self.worker;
        let stats = worker.cx.stats.cluster(&self.cluster);
        let Some(body) = body else {
            stats.mirror(MirrorResult::BodyTooLarge);
            return;
        };
        if worker.mirrors.get() >= self.max_in_flight {
            stats.mirror(MirrorResult::Busy);
            return;
        }
        let copy = match Copy::of(x, body, self.host_suffix.as_deref()) {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(cluster = %self.cluster, error = %e, "request not mirrored");
                stats.mirror(MirrorResult::Failed);
                return;
            }
        };
        worker.mirrors.set(worker.mirrors.get() + 1);
        let in_flight = InFlight(Rc::clone(worker));
        let (cluster, limit) = (self.cluster.clone(), self.limit);
        monoio::spawn(async move {
            let worker = Rc::clone(&in_flight.0);
            // The current view: a reload may have moved or removed the cluster since.
            let view = worker.views.current();
            let found = view
                .snap
                .config
                .clusters
                .iter()
                .position(|c| c.name == cluster);
            let result = match found
                .and_then(|i| Some((i, view.snap.config.clusters.get(i)?, view.clusters.get(i)?)))
            {
                Some((i, c, state)) => {
                    match run(worker.client(&view, c, i, None), c, state, &copy, limit).await {
                        Ok(_) => MirrorResult::Answered,
                        Err(e) => {
                            tracing::debug!(cluster = %cluster, error = %e, "mirrored request failed");
                            MirrorResult::Failed
                        }
                    }
                }
                None => MirrorResult::Failed,
            };
            worker.cx.stats.cluster(&cluster).mirror(result);
            drop(in_flight);
        });
    }
}
