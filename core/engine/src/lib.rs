//! ringside's data-plane engine: thread-per-core workers on monoio.
//!
//! [`start`] binds the configured listeners, starts one pinned worker thread per configured
//! worker (each with its own runtime on io_uring or epoll, its own `SO_REUSEPORT` sockets,
//! upstream pools and balancer state), and returns a [`ServerHandle`] to reload, drain and
//! wait. See ARCHITECTURE.md and docs/life-of-a-request.md for the map.

// Nothing panics on input (ARCHITECTURE.md, "Invariants"); `unwrap_used` is the workspace's.
#![cfg_attr(
    not(test),
    deny(clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

// Layers, each importing only the ones above it in this list (ARCHITECTURE.md, "Layers";
// tests/layers.rs checks it).
mod cx;
mod downstream;
mod pipeline;
mod server;
mod stage;
mod upstream;
mod worker;

pub use cx::date::imf_fixdate;
pub use cx::jwks::JwksStats;
pub use cx::memory::{Level as MemoryLevel, MemoryReport};
pub use cx::runtime::ActiveDriver;
pub use cx::{metrics, telemetry};
pub use server::{
    start, start_with, Inherited, ListenerSocket, ReloadError, Reloaded, ServerHandle, StartError,
    StartOptions,
};
pub use stage::{ListenerStep, RouteStep, Stack, Stacks};
pub use upstream::balance;
pub use upstream::dns::DnsStats;
pub use upstream::health::{ClusterHealth, EndpointHealth};
pub use upstream::outlier::Checked;
pub use upstream::redis::RedisHealth;

/// Entry points for the cargo-fuzz targets in `fuzz/` (not an API: no stability, hidden from
/// the docs). They reach, without a runtime or a connection, the HTTP/2 ⇄ HTTP/1.1 head
/// conversion (`upstream/convert.rs`), which sees a client's or an upstream's fields, and the
/// JWT check (`stage/jwt.rs`), which sees a client's token; errors are returned as text.
#[doc(hidden)]
pub mod fuzzing {
    use ringside_codec::{Edits, Limits, RequestHead, ResponseHead};

    use crate::upstream::convert;

    /// A client's JWT checked against `provider` (its keys from the configuration) as a route
    /// checks it; on success, the claim headers it would send upstream.
    pub fn jwt_verify(
        provider: &std::sync::Arc<ringside_config::JwtProvider>,
        consumers: &ringside_config::Consumers,
        token: &[u8],
    ) -> Result<Vec<(String, Vec<u8>)>, String> {
        let registry = crate::cx::shared::Registry::default();
        crate::stage::check_token(provider, &registry, consumers, token)
            .map_err(|e| format!("{e:?}"))
    }

    /// An HTTP/2 request head (as the h2 crate hands it over) → the neutral HTTP/1.1 head.
    pub fn request_to_h1(
        parts: &http::request::Parts,
        body: bool,
        websocket: Option<&[u8]>,
        limits: &Limits,
    ) -> Result<RequestHead, String> {
        convert::request_to_h1(parts, body, websocket, limits).map_err(|e| e.to_string())
    }

    /// A neutral head → an HTTP/2 request for an HTTP/2 upstream.
    pub fn request_from_h1(
        head: &RequestHead,
        scheme: &str,
        set: &[(&'static str, &[u8])],
    ) -> Result<http::Request<()>, String> {
        convert::request_from_h1(head, scheme, set, &Edits::NONE).map_err(|e| e.to_string())
    }

    /// An HTTP/2 request forwarded to an HTTP/2 upstream, `head` being its neutral form.
    pub fn request_h2_to_h2(
        parts: &http::request::Parts,
        head: &RequestHead,
        scheme: &str,
    ) -> Result<http::Request<()>, String> {
        convert::request_h2_to_h2(parts, head, scheme, &[], &Edits::NONE).map_err(|e| e.to_string())
    }

    /// An HTTP/1.1 response head → its HTTP/2 form.
    pub fn response_from_h1(resp: &ResponseHead) -> Result<http::Response<()>, String> {
        convert::response_from_h1(resp, &Edits::NONE).map_err(|e| e.to_string())
    }

    /// An HTTP/2 response head written as HTTP/1.1 (`chunked`, `close` as the writer is told).
    pub fn write_h1_response_head(
        out: &mut Vec<u8>,
        parts: &http::response::Parts,
        chunked: bool,
        close: bool,
    ) {
        convert::write_h1_response_head(out, parts, &Edits::NONE, chunked, close);
    }
}
