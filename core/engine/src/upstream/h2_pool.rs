//! Upstream HTTP/2: this worker's multiplexed connections, per cluster and endpoint.
//!
//! Pipeline position: after Balance picked an endpoint, in place of the HTTP/1 pool. One
//! connection carries many requests at once, up to the number of concurrent streams the
//! upstream allows (its SETTINGS); a request that finds every connection to its endpoint
//! full opens another. A connection is driven by a task of its own, and closed after the
//! cluster's `idle_timeout` without streams, when the worker drains, or when the upstream
//! ends it (GOAWAY, error) — a later request then opens a fresh one.
//!
//! TLS clusters negotiate ALPN (`h2`); the handshake and the peer's identity check (mesh
//! mTLS) are the TLS contexts' job (`crate::cx::tls`).

use std::cell::{Cell, RefCell};
// Fx, not SipHash: looked up per request; keys are configured endpoints (or original
// destinations, `original_dst.rs`: `sweep` forgets those no connection is open to).
use rustc_hash::FxHashMap as HashMap;
use std::net::SocketAddr;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::client::SendRequest;
use monoio::net::TcpStream;
use ringside_config::Cluster;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::cx::error::ProxyError;
use crate::cx::event::Event;
use crate::upstream::breaker::ConnectionSlot;
use crate::upstream::cluster::ClusterState;

/// Flow-control windows we offer upstreams (they send response bodies).
const STREAM_WINDOW: u32 = 1024 * 1024;
const CONNECTION_WINDOW: u32 = 4 * 1024 * 1024;

/// One upstream HTTP/2 connection.
pub(crate) struct H2Conn {
    send: SendRequest<Bytes>,
    in_flight: Cell<usize>,
    closed: Cell<bool>,
    last_used: Cell<Instant>,
}

/// A request's share of a connection: counted in flight until dropped.
pub(crate) struct Lease {
    conn: Rc<H2Conn>,
}

impl Lease {
    pub(crate) fn sender(&self) -> SendRequest<Bytes> {
        self.conn.send.clone()
    }

    /// Passes a failed exchange's error through; when it says the upstream sent GOAWAY, the
    /// connection takes no new stream (its task still finishes the streams in flight).
    pub(crate) fn failed(&self, e: ProxyError) -> ProxyError {
        if e.unprocessed() {
            self.conn.closed.set(true);
        }
        e
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let c = &self.conn;
        c.in_flight.set(c.in_flight.get().saturating_sub(1));
        c.last_used.set(Instant::now());
    }
}

/// The connections to one endpoint of one cluster.
#[derive(Default)]
struct Endpoint {
    conns: Vec<Rc<H2Conn>>,
    /// Set while a connection is being opened: requests that find no free stream wait for
    /// it instead of each opening their own.
    connecting: Option<Rc<Event>>,
}

/// This worker's upstream HTTP/2 connections.
#[derive(Default)]
pub(crate) struct H2Pool {
    endpoints: RefCell<HashMap<(Rc<str>, SocketAddr), Endpoint>>,
}

/// What a request finds at an endpoint.
enum Found {
    Conn(Rc<H2Conn>),
    /// Another request is opening a connection: wait for it, then look again.
    Wait(Rc<Event>),
    /// Nothing usable: this request opens a connection (the event is set meanwhile).
    Open,
}

impl H2Pool {
    fn find(&self, cluster: &str, addr: SocketAddr) -> Found {
        let mut endpoints = self.endpoints.borrow_mut();
        let ep = endpoints.entry((Rc::from(cluster), addr)).or_default();
        ep.conns.retain(|c| !c.closed.get());
        let free = ep
            .conns
            .iter()
            .find(|c| c.in_flight.get() < c.send.current_max_send_streams().max(1));
        if let Some(c) = free {
            return Found::Conn(Rc::clone(c));
        }
        match &ep.connecting {
            Some(e) => Found::Wait(Rc::clone(e)),
            None => {
                ep.connecting = Some(Event::new());
                Found::Open
            }
        }
    }

    /// Forgets the endpoints no connection is open or opening to (once a second, from the
    /// worker's housekeeping): an `original_dst` cluster's destinations come and go.
    pub(crate) fn sweep(&self) {
        self.endpoints.borrow_mut().retain(|_, ep| {
            ep.conns.retain(|c| !c.closed.get());
            !ep.conns.is_empty() || ep.connecting.is_some()
        });
    }

    /// Ends a connection attempt (successful or not) and wakes the requests waiting on it.
    fn opened(&self, cluster: &str, addr: SocketAddr, conn: Option<Rc<H2Conn>>) {
        let mut endpoints = self.endpoints.borrow_mut();
        let ep = endpoints.entry((Rc::from(cluster), addr)).or_default();
        if let Some(c) = conn {
            ep.conns.push(c);
        }
        if let Some(e) = ep.connecting.take() {
            e.fire();
        }
    }
}

/// An attempt to open a connection; ends it when dropped.
struct Opening<'a> {
    pool: &'a H2Pool,
    cluster: &'a str,
    addr: SocketAddr,
    conn: Option<Rc<H2Conn>>,
}

impl Drop for Opening<'_> {
    fn drop(&mut self) {
        self.pool.opened(self.cluster, self.addr, self.conn.take());
    }
}

/// A stream's worth of an HTTP/2 connection to some endpoint of `cluster` (not one in
/// `avoid` when there are others).
pub(crate) async fn acquire(
    client: super::Client<'_>,
    cluster: &Cluster,
    state: &ClusterState,
    hash: Option<u64>,
    avoid: &[usize],
) -> Result<(Lease, usize, SocketAddr), ProxyError> {
    let ((conn, addr), idx) =
        crate::upstream::try_endpoints(client, cluster, state, hash, avoid, |_, addr| async move {
            loop {
                match client.up.h2.find(&cluster.name, addr) {
                    Found::Conn(c) => return Ok((c, addr)),
                    Found::Wait(e) => e.wait().await,
                    Found::Open => {
                        // A guard, so that a request dropped mid-connect (its deadline)
                        // still wakes the others.
                        let mut opening = Opening {
                            pool: &client.up.h2,
                            cluster: &cluster.name,
                            addr,
                            conn: None,
                        };
                        let slot = crate::upstream::connection_slot(client.cx, cluster, state)?;
                        let r = connect(client, cluster, addr, slot).await;
                        opening.conn = r.as_ref().ok().map(Rc::clone);
                        return r.map(|c| (c, addr));
                    }
                }
            }
        })
        .await?;
    conn.in_flight.set(conn.in_flight.get() + 1);
    conn.last_used.set(Instant::now());
    Ok((Lease { conn }, idx, addr))
}

/// Opens a connection (TCP, TLS when the cluster has it, the HTTP/2 handshake) and starts
/// the task that drives it.
async fn connect(
    client: super::Client<'_>,
    cluster: &Cluster,
    addr: SocketAddr,
    slot: Option<ConnectionSlot>,
) -> Result<Rc<H2Conn>, ProxyError> {
    let tls = client.tls.cloned();
    let fut = async {
        let stream = TcpStream::connect_addr(addr)
            .await
            .map_err(ProxyError::Connect)?;
        let _ = stream.set_nodelay(true);
        let poll = crate::cx::conn::into_poll(stream).map_err(ProxyError::Connect)?;
        match tls {
            None => handshake(&client.cx.drain, cluster, addr, poll, slot).await,
            Some(cfg) => {
                let name = crate::cx::tls::sni_for(cluster, addr);
                let tls = tokio_rustls::TlsConnector::from(Arc::clone(&cfg))
                    .connect(name, poll)
                    .await
                    .map_err(ProxyError::Connect)?;
                if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
                    return Err(ProxyError::UpstreamInvalid(
                        "the upstream did not negotiate h2 (ALPN)".into(),
                    ));
                }
                handshake(&client.cx.drain, cluster, addr, tls, slot).await
            }
        }
    };
    match crate::cx::io::within(cluster.connect_timeout, fut).await {
        Some(r) => r,
        None => Err(ProxyError::Connect(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "connect timed out",
        ))),
    }
}

async fn handshake<T>(
    drain: &Rc<Event>,
    cluster: &Cluster,
    addr: SocketAddr,
    io: T,
    slot: Option<ConnectionSlot>,
) -> Result<Rc<H2Conn>, ProxyError>
where
    T: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let (send, connection) = h2::client::Builder::new()
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_send_buffer_size(256 * 1024)
        .handshake::<_, Bytes>(io)
        .await
        .map_err(ProxyError::UpstreamStream)?;
    let conn = Rc::new(H2Conn {
        send,
        in_flight: Cell::new(0),
        closed: Cell::new(false),
        last_used: Cell::new(Instant::now()),
    });
    let idle = cluster.idle_timeout;
    let watched = Rc::clone(&conn);
    let drain = Rc::clone(drain);
    monoio::spawn(async move {
        // The connection's place under `max_connections` lives as long as this task.
        let _slot = slot;
        let mut connection = pin!(connection);
        loop {
            match monoio::time::timeout(Duration::from_secs(1), connection.as_mut()).await {
                Ok(Ok(())) => break,
                Ok(Err(e)) => {
                    tracing::debug!(endpoint = %addr, error = %e, "upstream h2 connection ended");
                    break;
                }
                Err(_) => {
                    let unused = watched.in_flight.get() == 0;
                    if unused && (drain.is_fired() || watched.last_used.get().elapsed() >= idle) {
                        break;
                    }
                }
            }
        }
        watched.closed.set(true);
    });
    Ok(conn)
}
