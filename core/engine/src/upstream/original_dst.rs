//! Clusters of `kind = "original_dst"`: no endpoints of their own; each request or TCP
//! connection goes where its client connection was going before iptables redirected it to a
//! `transparent` listener (`cx/original_dst.rs`). The Balance loop (`try_endpoints`) asks
//! here instead of its balancer; pooled connections are keyed by that address like any
//! endpoint's.
//!
//! A destination that is the proxy's own address would loop (a client that connected to the
//! listener itself, or rules that send the proxy's own traffic back to it): it is refused
//! (502, or a closed TCP connection) and counted in
//! `ringside_original_dst_loops_total{cluster}`, as Envoy and Istio refuse it. A connection
//! with no original destination at all (nothing redirected it, no connection tracking) is
//! refused the same way, without being counted as a loop.

use std::net::SocketAddr;

use ringside_config::Cluster;

use crate::cx::error::ProxyError;
use crate::cx::original_dst::OriginalDst;
use crate::cx::Cx;

/// The endpoint index of an original destination: outside every cluster's endpoints, so no
/// per-endpoint state (balancer load, health marks) is kept for it.
pub(crate) const INDEX: usize = usize::MAX;

/// Where a request to the `original_dst` cluster `cluster` goes.
pub(crate) fn destination(
    cx: &Cx,
    cluster: &Cluster,
    dst: Option<OriginalDst>,
) -> Result<SocketAddr, ProxyError> {
    match dst {
        Some(d) if !d.to_self => Ok(d.addr),
        Some(d) => {
            cx.stats.cluster(&cluster.name).original_dst_loop();
            tracing::warn!(cluster = %cluster.name, original_dst = %d.addr, "refused: the original destination is the proxy itself (a loop)");
            Err(ProxyError::NoOriginalDst(
                "the original destination is the proxy itself",
            ))
        }
        None => {
            tracing::debug!(cluster = %cluster.name, "refused: the connection has no original destination");
            Err(ProxyError::NoOriginalDst(
                "the connection was not redirected",
            ))
        }
    }
}
