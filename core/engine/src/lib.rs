//! ringside's data-plane engine: thread-per-core workers on monoio.
//!
//! [`start`] binds the configured listeners, starts one pinned worker thread per configured
//! worker (each with its own runtime on io_uring or epoll, its own `SO_REUSEPORT` sockets,
//! upstream pools and balancer state), and returns a [`ServerHandle`] to reload, drain and
//! wait. See ARCHITECTURE.md and docs/life-of-a-request.md for the map.

// Layers, each importing only the ones above it in this list (ARCHITECTURE.md, "Layers";
// tests/layers.rs checks it).
mod cx;
mod downstream;
mod pipeline;
mod server;
mod stage;
mod upstream;
mod worker;

pub use cx::jwks::JwksStats;
pub use cx::runtime::ActiveDriver;
pub use cx::{metrics, telemetry};
pub use server::{
    start, start_with, Inherited, ListenerSocket, ReloadError, Reloaded, ServerHandle, StartError,
    StartOptions,
};
pub use stage::{ListenerStep, RouteStep, Stack, Stacks};
pub use upstream::balance;
pub use upstream::health::{ClusterHealth, EndpointHealth};
pub use upstream::outlier::Checked;
pub use upstream::redis::RedisHealth;
