//! ringside's data-plane engine: thread-per-core workers on monoio.
//!
//! [`start`] binds the configured listeners, starts one pinned worker thread per configured
//! worker (each with its own runtime on io_uring or epoll, its own `SO_REUSEPORT` sockets,
//! upstream pools and balancer state), and returns a [`ServerHandle`] to reload, drain and
//! wait. See ARCHITECTURE.md and docs/life-of-a-request.md for the map.

mod answer;
pub mod balance;
mod conn;
mod detect;
mod error;
mod event;
mod h2;
mod http;
mod io;
mod listen;
pub mod metrics;
mod pipeline;
mod pool;
mod runtime;
mod server;
mod stage;
mod state;
mod tcp;
pub mod telemetry;
mod tls;
mod trace;
mod tunnel;
mod upstream;
mod worker;

pub use runtime::ActiveDriver;
pub use server::{
    start, start_with, Inherited, ListenerSocket, ReloadError, Reloaded, ServerHandle, StartError,
    StartOptions,
};
pub use stage::{ListenerStep, RouteStep, Stack, Stacks};
