//! Layer 4, the downstream protocols: what clients speak, read off the wire and answered.
//!
//! `detect` (plaintext, h2c preface, TLS handshake, permissive-mTLS sniffing), `inspect` (what
//! a parent listener's connection opens with, to choose its child listener), `http`
//! (HTTP/1.1 connection loop; one request through the pipeline in `route.rs`), `h2` (HTTP/2
//! server; one stream through the pipeline in `stream.rs`), `tcp` (TCP listeners), `mirror`
//! (which requests a route copies, and the tasks the copies run in). Each turns
//! its wire form into a `stage::Req`, runs `pipeline::decide`, and hands a forwarded request to
//! `upstream::call` with its side of the exchange (`upstream::Down`).
//!
//! [`Worker`] is what a connection's tasks share: the runtime context (layer 1), the
//! upstream connections (layer 2) and the view of the current snapshot (layer 3).

pub(crate) mod connect;
pub(crate) mod detect;
pub(crate) mod h2;
pub(crate) mod http;
pub(crate) mod inspect;
pub(crate) mod mirror;
pub(crate) mod tcp;

use ringside_config::Cluster;

use crate::cx::original_dst::OriginalDst;
use crate::cx::Cx;
use crate::pipeline::view::{View, Views};
use crate::upstream::{Client, Upstreams};

/// State one worker's connection tasks share (single-threaded).
pub(crate) struct Worker {
    pub(crate) cx: Cx,
    pub(crate) up: Upstreams,
    pub(crate) views: Views,
    /// Mirrored copies in flight (`mirror.rs`).
    pub(crate) mirrors: std::cell::Cell<usize>,
}

impl Worker {
    /// What an upstream client needs to call cluster `idx` of `view` for a client connection
    /// whose original destination is `original_dst` (`transparent` listeners): TLS settings
    /// are looked up only for a cluster that has them.
    pub(crate) fn client<'a>(
        &'a self,
        view: &'a View,
        cluster: &Cluster,
        idx: usize,
        original_dst: Option<OriginalDst>,
    ) -> Client<'a> {
        let tls = if cluster.tls.is_some() || cluster.mtls.is_some() {
            view.tls.client(idx)
        } else {
            None
        };
        Client {
            cx: &self.cx,
            up: &self.up,
            tls,
            original_dst,
        }
    }
}
