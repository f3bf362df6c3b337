//! Choosing and connecting to an endpoint: the Balance stage and its passive health.
//!
//! The balancer picks among endpoints that are not ejected and not yet tried for this
//! request; a connect failure ejects the endpoint for the cluster's `fail_timeout` (never the
//! only endpoint of a cluster, whose outage would otherwise outlive itself) and moves on to
//! another, up to `MAX_CONNECT_ATTEMPTS`. When nothing is left to try before any attempt the
//! answer is 503 (no healthy endpoint); after failed attempts it is 502.

use std::time::Instant;

use ringside_config::Cluster;

use crate::error::ProxyError;
use crate::pool::{UpTls, Upstream};
use crate::state::ClusterState;
use crate::worker::Worker;

/// Connect attempts (distinct endpoints) per request.
const MAX_CONNECT_ATTEMPTS: usize = 3;

/// A connection to some endpoint of `cluster`: pooled if `pooled`, else fresh.
pub(crate) async fn acquire(
    worker: &Worker,
    cluster: &Cluster,
    cluster_idx: usize,
    state: &ClusterState,
    hash: Option<u64>,
    pooled: bool,
) -> Result<(Upstream, usize), ProxyError> {
    // TLS settings are keyed by the cluster's fingerprint (which covers them): a pooled
    // connection is only reused under the settings it was made with.
    let tls = if cluster.tls.is_some() || cluster.mtls.is_some() {
        worker.views.current().tls.client(cluster_idx).cloned()
    } else {
        None
    };
    let tls_key = if tls.is_some() {
        cluster.fingerprint | 1
    } else {
        0
    };
    let tls = tls.as_ref();
    try_endpoints(worker, cluster, state, hash, |_, addr| async move {
        if pooled {
            if let Some(conn) = worker.pool.take(addr, tls_key) {
                return Ok(conn);
            }
        }
        let up_tls = tls.map(|config| UpTls {
            config: std::sync::Arc::clone(config),
            name: crate::tls::sni_for(cluster, addr),
            key: tls_key,
        });
        Upstream::connect_with(addr, cluster.connect_timeout, up_tls)
            .await
            .map_err(ProxyError::Connect)
    })
    .await
}

/// The Balance loop shared by every kind of upstream connection (HTTP/1 pool, HTTP/2,
/// TCP): picks an endpoint that is neither ejected nor tried yet, runs `connect` on it, and
/// on failure counts it, ejects the endpoint (unless it is the only one) and tries another,
/// up to `MAX_CONNECT_ATTEMPTS`. Returns the connection and the endpoint's index.
pub(crate) async fn try_endpoints<T, F, Fut>(
    worker: &Worker,
    cluster: &Cluster,
    state: &ClusterState,
    hash: Option<u64>,
    mut connect: F,
) -> Result<(T, usize), ProxyError>
where
    F: FnMut(usize, std::net::SocketAddr) -> Fut,
    Fut: std::future::Future<Output = Result<T, ProxyError>>,
{
    let mut tried: Vec<usize> = Vec::new();
    let mut last_err = None;
    loop {
        let now = Instant::now();
        let single = cluster.endpoints.len() == 1;
        let pick = state.balancer.pick(hash, |i| {
            !tried.contains(&i) && (single || !state.is_ejected(i, now))
        });
        let Some(idx) = pick else {
            return Err(last_err.unwrap_or(ProxyError::NoHealthyEndpoint));
        };
        let Some(ep) = cluster.endpoints.get(idx) else {
            return Err(ProxyError::NoHealthyEndpoint);
        };
        match connect(idx, ep.address).await {
            Ok(conn) => {
                state.restore(idx);
                return Ok((conn, idx));
            }
            Err(e) => {
                worker
                    .stats
                    .cluster(&cluster.name)
                    .connect_failure(ep.address);
                tracing::warn!(cluster = %cluster.name, endpoint = %ep.address, error = %e, "connect failed");
                if !single {
                    state.eject(idx, now + cluster.fail_timeout);
                }
                tried.push(idx);
                if tried.len() >= MAX_CONNECT_ATTEMPTS {
                    return Err(e);
                }
                last_err = Some(e);
            }
        }
    }
}

/// A fresh connection (TCP listeners never pool).
pub(crate) async fn connect_any(
    worker: &Worker,
    cluster: &Cluster,
    cluster_idx: usize,
    state: &ClusterState,
    hash: Option<u64>,
) -> Result<(Upstream, usize), ProxyError> {
    acquire(worker, cluster, cluster_idx, state, hash, false).await
}
