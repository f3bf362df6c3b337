//! Layer 5, a worker: one pinned thread, one monoio runtime, its own listening sockets, pools,
//! balancer state and counters. Nothing on its request path is shared with another worker
//! except the published configuration (read through `Views`).
//!
//! The control thread talks to a worker with [`Command`]s over a crossbeam channel and wakes
//! it by writing a byte to a socketpair the worker reads with its own driver.

use std::cell::Cell;
use std::collections::HashMap;
use std::future::Future;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use crossbeam_channel::Receiver;
use monoio::io::AsyncReadRent;
use monoio::net::{TcpListener, TcpStream, UnixStream};
use monoio::time::Instant;
use ringside_config::{ListenerKind, Pick, Snapshot};

use crate::cx::event::Event;
use crate::cx::io::{either, is_canceled, until};
use crate::cx::memory::Level;
use crate::cx::original_dst::OriginalDst;
use crate::cx::Cx;
use crate::downstream::Worker;
use crate::pipeline::view::Views;
use crate::upstream::Upstreams;

/// Messages from the control thread.
pub(crate) enum Command {
    /// Stop accepting, finish in-flight requests, close idle connections, exit.
    Drain,
    /// Start accepting on a new listener (added by a reload).
    AddListener { name: String, socket: StdListener },
    /// Stop accepting on a listener (removed by a reload).
    RemoveListener { name: String },
    /// Send a copy of this worker's counters.
    Scrape(crossbeam_channel::Sender<crate::cx::metrics::WorkerReport>),
}

pub(crate) struct WorkerInit {
    pub(crate) id: usize,
    /// Open connections of this worker, readable by the control thread (status). Written
    /// only by this worker, once per connection open and close — never per request.
    pub(crate) gauge: Arc<std::sync::atomic::AtomicU64>,
    pub(crate) telemetry: crate::cx::telemetry::Telemetry,
    pub(crate) shared: Arc<ArcSwap<Snapshot>>,
    /// Each role's stages (`proxy/src/stack.rs`, `gateway/src/stack.rs`).
    pub(crate) stacks: Arc<crate::stage::Stacks>,
    /// The process's shared state (`cx/shared.rs`).
    pub(crate) registry: Arc<crate::cx::shared::Registry>,
    /// `StartOptions::trim`.
    pub(crate) trim: Option<fn()>,
    pub(crate) listeners: Vec<(String, StdListener)>,
    pub(crate) commands: Receiver<Command>,
    pub(crate) wake: StdUnixStream,
}

/// Counts an accepted connection in (the worker's connections, the accepting listener's
/// `open`) and, when its task ends however it ends, out again, with the serving listener's
/// open gauge once it has one.
pub(crate) struct ConnGuard {
    worker: Rc<Worker>,
    listener: Rc<Cell<usize>>,
    stats: Option<Rc<crate::cx::metrics::ListenerStats>>,
}

impl ConnGuard {
    fn new(worker: &Rc<Worker>, open: &Rc<Cell<usize>>) -> ConnGuard {
        let cx = &worker.cx;
        cx.connections.set(cx.connections.get() + 1);
        cx.gauge.store(
            cx.connections.get() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        open.set(open.get() + 1);
        cx.stats.accepted.set(cx.stats.accepted.get() + 1);
        ConnGuard {
            worker: worker.clone(),
            listener: open.clone(),
            stats: None,
        }
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.worker
            .cx
            .connections
            .set(self.worker.cx.connections.get().saturating_sub(1));
        self.listener.set(self.listener.get().saturating_sub(1));
        if let Some(stats) = &self.stats {
            stats.open.set(stats.open.get().saturating_sub(1));
        }
        self.worker.cx.closed.notify_all();
    }
}

/// The worker's main future: runs until drained.
pub(crate) async fn main(init: WorkerInit, ready: impl FnOnce()) {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ ((init.id as u64) << 48);
    let worker = Rc::new(Worker {
        cx: Cx::new(
            init.id,
            init.telemetry,
            init.gauge,
            init.registry
                .get(crate::cx::memory::KEY, crate::cx::memory::Memory::default),
            seed,
        ),
        up: Upstreams::default(),
        views: Views::new(init.shared, init.stacks, init.registry),
        mirrors: Cell::new(0),
    });
    let mut stops: HashMap<String, ListenerSlot> = HashMap::new();
    for (name, socket) in init.listeners {
        start_listener(&worker, name, socket, &mut stops);
    }
    monoio::spawn(housekeeping(worker.clone(), init.trim));
    ready();

    let mut wake = match UnixStream::from_std(init.wake) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::error!(worker = worker.cx.id, error = %e, "control channel unusable; draining");
            None
        }
    };
    let mut buf = vec![0u8; 64];
    'commands: while let Some(w) = wake.as_mut() {
        let (res, b) = w.read(buf).await;
        buf = b;
        if !matches!(res, Ok(n) if n > 0) {
            break; // the control side is gone: nothing can reach us any more
        }
        while let Ok(cmd) = init.commands.try_recv() {
            match cmd {
                Command::Drain => break 'commands,
                Command::AddListener { name, socket } => {
                    start_listener(&worker, name, socket, &mut stops)
                }
                Command::Scrape(reply) => {
                    let w = &worker;
                    let idle = |a| w.up.pool.idle_count(a) as u64;
                    let _ = reply.send(w.cx.stats.report(w.cx.id, idle));
                }
                Command::RemoveListener { name } => {
                    if let Some(slot) = stops.remove(&name) {
                        slot.stop.fire();
                    }
                }
            }
        }
    }

    drain(&worker).await;
}

async fn drain(worker: &Rc<Worker>) {
    let timeout = worker.views.current().snap.config.proxy.drain_timeout;
    tracing::debug!(
        worker = worker.cx.id,
        connections = worker.cx.connections.get(),
        "draining"
    );
    worker.cx.drain.fire();
    worker.up.pool.clear();
    let deadline = Instant::now() + timeout;
    while (worker.cx.accepting.get() > 0 || worker.cx.connections.get() > 0)
        && Instant::now() < deadline
    {
        either(worker.cx.closed.wait(), monoio::time::sleep_until(deadline)).await;
    }
    if worker.cx.connections.get() > 0 {
        tracing::warn!(
            worker = worker.cx.id,
            connections = worker.cx.connections.get(),
            "drain timeout: closing remaining connections"
        );
        // Each connection task races its work against `abort`; firing it drops the work
        // (closing both sockets). Give the tasks a moment to run and release them.
        worker.cx.abort.fire();
        let grace = Instant::now() + Duration::from_millis(200);
        while worker.cx.connections.get() > 0 && Instant::now() < grace {
            either(worker.cx.closed.wait(), monoio::time::sleep_until(grace)).await;
        }
    }
}

/// One listener as a worker sees it: all its sockets here share the stop event and the
/// count of open connections (a hot upgrade can hand a worker several sockets of one listener).
struct ListenerSlot {
    stop: Rc<Event>,
    open: Rc<Cell<usize>>,
}

fn start_listener(
    worker: &Rc<Worker>,
    name: String,
    socket: StdListener,
    stops: &mut HashMap<String, ListenerSlot>,
) {
    let listener = match TcpListener::from_std(socket) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(worker = worker.cx.id, listener = %name, error = %e, "cannot adopt listening socket");
            return;
        }
    };
    let slot = stops.entry(name.clone()).or_insert_with(|| ListenerSlot {
        stop: Event::new(),
        open: Rc::new(Cell::new(0)),
    });
    monoio::spawn(accept_loop(
        worker.clone(),
        Rc::from(name),
        listener,
        slot.stop.clone(),
        slot.open.clone(),
    ));
}

/// Accepts until drained or removed. The accept is cancelled — not dropped — on stop, so a
/// connection the kernel handed over at that moment is still served (no leaked fd).
async fn accept_loop(
    worker: Rc<Worker>,
    name: Rc<str>,
    listener: TcpListener,
    stop: Rc<Event>,
    open: Rc<Cell<usize>>,
) {
    worker.cx.accepting.set(worker.cx.accepting.get() + 1);
    loop {
        if worker.cx.draining() || stop.is_fired() {
            break;
        }
        let (res, _) = until(
            |h| listener.cancelable_accept(h),
            either(worker.cx.drain.wait(), stop.wait()),
        )
        .await;
        match res {
            Ok((stream, peer)) => {
                // Past `max_connections` a newcomer is closed at once and counted, rather
                // than left in the kernel's queue where it would wait, unanswered, for a
                // slot that a flood keeps taking; the open connections go on being served.
                let limit = worker
                    .views
                    .current()
                    .listener(&name)
                    .map_or(0, |l| l.max_connections);
                if open.get() >= limit.max(1) {
                    let stats = worker.cx.stats.listener(&name);
                    stats.overflow.set(stats.overflow.get() + 1);
                    drop(stream);
                } else if worker.cx.memory.level() == Level::Refuse {
                    // At the memory ceiling: closed at once, like an overflow.
                    let refused = &worker.cx.stats.memory_refused;
                    refused.set(refused.get() + 1);
                    drop(stream);
                } else {
                    spawn_connection(&worker, &name, &open, stream, peer);
                }
            }
            Err(e) if is_canceled(&e) => break,
            Err(e) => {
                // EMFILE/ENFILE/ENOBUFS: back off instead of spinning on the error.
                tracing::warn!(worker = worker.cx.id, listener = %name, error = %e, "accept failed");
                monoio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    // Connections the kernel already completed sit in this socket's accept queue; closing
    // the socket would reset them after their clients sent a request. Take them first and
    // serve them (their responses say `Connection: close` while draining).
    let mut taken = 0;
    while let Some((stream, peer)) = accept_queued(&listener) {
        spawn_connection(&worker, &name, &open, stream, peer);
        taken += 1;
    }
    drop(listener);
    tracing::debug!(worker = worker.cx.id, listener = %name, queued = taken, "stopped accepting");
    worker
        .cx
        .accepting
        .set(worker.cx.accepting.get().saturating_sub(1));
    worker.cx.closed.notify_all();
}

/// One connection from the accept queue without waiting (`accept4` with `SOCK_NONBLOCK`), or
/// `None` when the queue is empty.
fn accept_queued(listener: &TcpListener) -> Option<(TcpStream, SocketAddr)> {
    use std::os::fd::FromRawFd;
    // SAFETY: accept4 on our listening fd with null address pointers returns a new fd or -1;
    // nothing else is read or written.
    let fd = unsafe {
        libc::accept4(
            listener.as_raw_fd(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        )
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: `fd` was just returned by accept4 and is owned by nobody else.
    let std_stream = unsafe { std::net::TcpStream::from_raw_fd(fd) };
    let peer = std_stream.peer_addr().ok()?;
    let stream = TcpStream::from_std(std_stream).ok()?;
    Some((stream, peer))
}

fn spawn_connection(
    worker: &Rc<Worker>,
    name: &Rc<str>,
    open: &Rc<Cell<usize>>,
    stream: TcpStream,
    peer: SocketAddr,
) {
    let view = worker.views.current();
    let Some(listener) = view.listener(name) else {
        return; // removed by a reload in the meantime: close
    };
    // Once per connection, and only on a listener that asks for it (`transparent`).
    let dst = if listener.transparent {
        let local = stream.local_addr().ok();
        local.and_then(|local| OriginalDst::of(stream.as_raw_fd(), local))
    } else {
        None
    };
    // A parent hands the connection to the child listener its destination picks
    // (`listeners[].parent`), or, when its children are told apart by what the connection
    // opens with, the one its first bytes pick. The destination is the original one on a
    // transparent parent, else the address the connection came in on (Envoy's without
    // `use_original_dst`): read only when the listener has children. The parent's `open`
    // counts it throughout: `max_connections` is the parent's.
    let at = match dst {
        Some(d) => Some(d.addr),
        None if !listener.children.is_empty() => stream.local_addr().ok(),
        None => None,
    };
    let pick = at.map_or(Pick::Parent, |a| listener.children.pick(a, None));
    if pick == Pick::Parent && listener.close_unmatched {
        unmatched(worker, name);
        return;
    }
    let inspect = pick == Pick::Inspect;
    let how = listener.inspect;
    let chosen: Rc<str> = match pick {
        Pick::Child(child) => Rc::from(child),
        Pick::Parent | Pick::Inspect => name.clone(),
    };
    drop(view);
    let mut guard = ConnGuard::new(worker, open);
    let abort = worker.cx.abort.clone();
    if let (true, Some(at)) = (inspect, at) {
        let worker = worker.clone();
        let inspected = async move {
            let mut stream = stream;
            let Some((first, hello)) = crate::downstream::inspect::inspect(&mut stream, how).await
            else {
                return; // closed before a byte
            };
            let view = worker.views.current();
            let chosen: Rc<str> = match view.listener(&chosen) {
                None => return, // removed by a reload meanwhile
                Some(l) => match l.children.pick(at, Some(&hello)) {
                    Pick::Child(child) => Rc::from(child),
                    Pick::Parent | Pick::Inspect if l.close_unmatched => {
                        unmatched(&worker, &chosen);
                        return;
                    }
                    Pick::Parent | Pick::Inspect => chosen,
                },
            };
            drop(view);
            let serve = serve_as(&worker, &chosen, stream, peer, dst, first, &mut guard);
            serve.await;
            drop(guard);
        };
        monoio::spawn(async move {
            either(Box::pin(inspected), abort.wait()).await;
        });
        return;
    }
    let serve = serve_as(worker, &chosen, stream, peer, dst, Vec::new(), &mut guard);
    // Each connection races its work against the worker's abort event (drain timeout):
    // when it fires the work is dropped, closing both sockets; the guard then counts it out.
    monoio::spawn(async move {
        either(serve, abort.wait()).await;
        drop(guard);
    });
}

/// Counts a connection parent listener `name` closes because no child took it.
fn unmatched(worker: &Worker, name: &Rc<str>) {
    let stats = worker.cx.stats.listener(name);
    stats.unmatched.set(stats.unmatched.get() + 1);
    tracing::debug!(listener = %name, "no child listener takes the connection: closed (unmatched = \"close\")");
}

/// The work of a connection served by listener `name`, counted among its open connections
/// (the guard counts it out), boxed at the size of the path it takes. `first`: bytes already
/// read from the client (a parent's inspection), served before the rest.
fn serve_as(
    worker: &Rc<Worker>,
    name: &Rc<str>,
    stream: TcpStream,
    peer: SocketAddr,
    dst: Option<OriginalDst>,
    first: Vec<u8>,
    guard: &mut ConnGuard,
) -> Pin<Box<dyn Future<Output = ()>>> {
    let view = worker.views.current();
    let Some(listener) = view.listener(name) else {
        return Box::pin(std::future::ready(()));
    };
    let stats = worker.cx.stats.listener(name);
    stats.open.set(stats.open.get() + 1);
    guard.stats = Some(stats.clone());
    match &listener.kind {
        ListenerKind::Http(_) => {
            drop(view);
            crate::downstream::detect::serve_http(
                worker.clone(),
                name.clone(),
                stream,
                peer,
                dst,
                stats,
                first,
            )
        }
        ListenerKind::Tcp { .. } => {
            drop(view);
            let _ = stream.set_nodelay(true);
            Box::pin(crate::downstream::detect::serve_tcp(
                worker.clone(),
                name.clone(),
                stream,
                peer,
                dst,
                stats,
                first,
            ))
        }
    }
}

/// Every tick (`cx::deadline::TICK`, 100 ms) fires the worker's due coarse deadlines and
/// trims the allocator's cache (`StartOptions::trim`: connections that just went idle give
/// their buffers back within a tick or two); once a second it also closes pooled upstream
/// connections past their idle timeout. It runs until the worker ends: while draining,
/// deadlines (the idle connections' drain grace) still have to fire.
async fn housekeeping(worker: Rc<Worker>, trim: Option<fn()>) {
    let per_second = (1000 / crate::cx::deadline::TICK.as_millis()).max(1);
    let mut ticks: u128 = 0;
    // The generation whose clusters and endpoints the counters were last pruned to.
    let mut counted = 0;
    loop {
        monoio::time::sleep(crate::cx::deadline::TICK).await;
        crate::cx::deadline::fire(monoio::time::Instant::now());
        if let Some(trim) = trim {
            trim();
        }
        shed(&worker);
        ticks += 1;
        if ticks.is_multiple_of(per_second) && !worker.cx.draining() {
            worker.up.pool.sweep();
            worker.up.h2.sweep();
            let view = worker.views.current();
            if view.snap.generation != counted {
                counted = view.snap.generation;
                worker.cx.stats.retain(&view.snap.config);
            }
        }
    }
}

/// While memory is short (`cx/memory.rs`), closes this worker's longest-idle connections: an
/// eighth of them per tick, at least [`SHED_AT_LEAST`], so the resident size falls within a
/// few ticks and the next sample decides whether to go on.
fn shed(worker: &Worker) {
    if worker.cx.memory.level() < Level::Shed {
        return;
    }
    let idle = crate::cx::idle::live();
    if idle == 0 {
        return;
    }
    let n = crate::cx::idle::shed_oldest((idle / 8).max(SHED_AT_LEAST));
    let shed = &worker.cx.stats.memory_shed;
    shed.set(shed.get() + n as u64);
    tracing::debug!(
        worker = worker.cx.id,
        shed = n,
        idle,
        "memory ceiling: idle connections shed"
    );
}

/// The fewest idle connections a worker sheds per tick while memory is short.
const SHED_AT_LEAST: usize = 16;
