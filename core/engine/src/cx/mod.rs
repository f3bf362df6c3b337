//! Layer 1, the runtime context: what every other layer of a worker stands on.
//!
//! [`Cx`] is one worker's context (its id, counters, telemetry queues, drain events, random
//! numbers); [`ClientConn`] what a request may need to know of its client's connection. The
//! modules: the I/O driver (`runtime`), cancel-safe I/O helpers and the bounded read buffer
//! (`io`), the one place owned-buffer and poll-style I/O meet (`conn`), the data path's error
//! type (`error`), the `Date` field of responses (`date`), worker-local events (`event`), per-worker counters (`metrics`), trace
//! context (`trace`), access-log and span export threads (`telemetry`), rustls contexts
//! (`tls`), listening socket groups (`listen`), an intercepted connection's original
//! destination (`original_dst`), what every worker shares for the whole
//! process (`shared`: breaker counters, token buckets, budgets, health marks), and the
//! memory ceiling (`memory`: the sampler thread and the level; `idle`: a worker's idle
//! connections, oldest first, which it sheds). Nothing here
//! imports a higher layer.

pub(crate) mod background;
pub(crate) mod conn;
pub(crate) mod date;
pub(crate) mod deadline;
pub(crate) mod error;
pub(crate) mod event;
pub(crate) mod idle;
pub(crate) mod io;
pub mod jwks;
pub(crate) mod listen;
pub mod memory;
pub mod metrics;
pub(crate) mod original_dst;
pub(crate) mod runtime;
pub mod shared;
pub mod telemetry;
pub(crate) mod tls;
pub(crate) mod trace;

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use event::Event;

/// One worker's runtime context (single-threaded: `Rc`, `Cell`).
pub(crate) struct Cx {
    pub(crate) id: usize,
    pub(crate) stats: metrics::WorkerStats,
    pub(crate) telemetry: telemetry::Telemetry,
    /// Fired once when draining starts.
    pub(crate) drain: Rc<Event>,
    /// Fired when the drain timeout expires: every connection still open is closed.
    pub(crate) abort: Rc<Event>,
    /// Notified whenever a connection closes (connection limits, drain completion).
    pub(crate) closed: Rc<Event>,
    pub(crate) connections: Cell<usize>,
    /// Accept loops still running; a drained worker waits for them to stop (and to take
    /// what is queued) before it counts connections.
    pub(crate) accepting: Cell<usize>,
    /// Open connections of this worker, readable by the control thread (status).
    pub(crate) gauge: Arc<std::sync::atomic::AtomicU64>,
    /// The process's memory figures and level (`memory.rs`).
    pub(crate) memory: Arc<memory::Memory>,
    rng: Cell<u64>,
}

impl Cx {
    pub(crate) fn new(
        id: usize,
        telemetry: telemetry::Telemetry,
        gauge: Arc<std::sync::atomic::AtomicU64>,
        memory: Arc<memory::Memory>,
        seed: u64,
    ) -> Cx {
        Cx {
            id,
            stats: metrics::WorkerStats::default(),
            telemetry,
            drain: Event::new(),
            abort: Event::new(),
            closed: Event::new(),
            connections: Cell::new(0),
            accepting: Cell::new(0),
            gauge,
            memory,
            rng: Cell::new(seed),
        }
    }

    pub(crate) fn draining(&self) -> bool {
        self.drain.is_fired()
    }

    /// A fast non-cryptographic random number (weighted route choice, request ids).
    pub(crate) fn random(&self) -> u64 {
        // wyrand
        let s = self.rng.get().wrapping_add(0xa076_1d64_78bd_642f);
        self.rng.set(s);
        let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64) ^ (t as u64)
    }
}

/// Facts about a client connection that its requests may need.
pub(crate) struct ClientConn {
    pub(crate) peer: SocketAddr,
    /// The connection is TLS (X-Forwarded-Proto `https`).
    pub(crate) tls: bool,
    /// The verified identity (URI SAN) of a client certificate (mesh mTLS).
    pub(crate) identity: Option<Rc<str>>,
    /// The X-Forwarded-Client-Cert element ringside writes for this verified client
    /// (`client_cert_details`, built at the handshake); `None` without a verified client
    /// certificate.
    pub(crate) xfcc: Option<Rc<str>>,
    /// Where the connection was going before iptables redirected it (`transparent`
    /// listeners only).
    pub(crate) original_dst: Option<original_dst::OriginalDst>,
}
