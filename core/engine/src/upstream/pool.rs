//! `Pool`: this worker's idle upstream HTTP/1 connections, keyed by endpoint address.
//!
//! Sits between Balance (which picked the endpoint) and the upstream exchange. Connections are
//! reused last-in first-out (the warmest first); each endpoint keeps at most the cluster's
//! `max_idle_per_endpoint` idle connections and drops them after its `idle_timeout`. Before a
//! connection is handed out it is checked with a non-blocking `MSG_PEEK`: one the upstream
//! has closed (or that holds unexpected bytes) is discarded instead of failing a request.
//! For a request that is repeated on a new connection if the pooled one turns out closed
//! (a bodyless idempotent one, `upstream/h1.rs`), a connection idle for less than [`FRESH`]
//! skips the check: a busy pool's connections come back within milliseconds, and the check
//! is a system call per request.
//! Because the key is the address, pooled connections survive any reload that keeps the
//! endpoint. Per worker, so no lock: a process holds at most `workers × max_idle` per endpoint.

use std::cell::RefCell;
use std::collections::VecDeque;

// Fx, not SipHash: looked up twice per request; keys are configured endpoints.
use rustc_hash::FxHashMap as HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use std::sync::Arc;

use monoio::io::Splitable;
use monoio::net::TcpStream;

use crate::cx::conn::{ConnRead, ConnWrite};
use crate::cx::io::ReadBuf;

/// Response-side buffer of an upstream connection.
const UPSTREAM_BUF: usize = 16 * 1024;

/// One upstream connection, split so that request and response can flow at the same time.
pub(crate) struct Upstream {
    pub(crate) r: ConnRead,
    pub(crate) w: ConnWrite,
    pub(crate) buf: ReadBuf,
    pub(crate) addr: SocketAddr,
    /// Taken from the pool rather than freshly connected.
    pub(crate) reused: bool,
    /// 0 for plaintext; for TLS, what identifies the TLS settings (pooled connections are
    /// only reused under the same ones).
    tls_key: u64,
    fd: RawFd,
    /// The connection's place under its cluster's `max_connections`, given back when it
    /// closes (pooled, it keeps its place).
    pub(crate) slot: Option<super::breaker::ConnectionSlot>,
}

/// TLS towards an upstream: the client context, the name to verify, and the settings' key.
pub(crate) struct UpTls {
    pub(crate) config: Arc<rustls::ClientConfig>,
    pub(crate) name: rustls_pki_types::ServerName<'static>,
    pub(crate) key: u64,
}

impl Upstream {
    /// Connects with a deadline; sets TCP_NODELAY.
    pub(crate) async fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<Upstream> {
        Upstream::connect_with(addr, timeout, None).await
    }

    /// Connects (and with `tls`, completes the TLS handshake) within `timeout`.
    pub(crate) async fn connect_with(
        addr: SocketAddr,
        timeout: Duration,
        tls: Option<UpTls>,
    ) -> io::Result<Upstream> {
        let fut = async {
            let stream = TcpStream::connect_addr(addr).await?;
            let _ = stream.set_nodelay(true);
            let fd = stream.as_raw_fd();
            let Some(tls) = tls else {
                let (r, w) = stream.into_split();
                return Ok::<_, io::Error>((ConnRead::Plain(r), ConnWrite::Plain(w), fd, 0));
            };
            let poll = crate::cx::conn::into_poll(stream)?;
            let stream = tokio_rustls::TlsConnector::from(tls.config)
                .connect(tls.name, poll)
                .await?;
            let (r, w) = crate::cx::conn::split_poll(stream);
            Ok((ConnRead::TlsUp(r), ConnWrite::TlsUp(w), fd, tls.key))
        };
        let (r, w, fd, tls_key) = match crate::cx::io::within(timeout, fut).await {
            Some(r) => r?,
            None => return Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
        };
        Ok(Upstream {
            r,
            w,
            buf: ReadBuf::with_capacity(UPSTREAM_BUF),
            addr,
            reused: false,
            tls_key,
            fd,
            slot: None,
        })
    }

    /// True when the peer has not closed the connection and sent nothing unexpected.
    fn looks_alive(&self) -> bool {
        let mut byte = 0u8;
        // SAFETY: `fd` is owned by `self.r`/`self.w`, which are alive; recv writes at most one
        // byte into `byte`, and MSG_PEEK|MSG_DONTWAIT neither consumes data nor blocks.
        let n = unsafe {
            libc::recv(
                self.fd,
                (&mut byte as *mut u8).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error().raw_os_error();
            return e == Some(libc::EAGAIN) || e == Some(libc::EWOULDBLOCK);
        }
        false // 0 = closed by peer; >0 = bytes nobody asked for
    }
}

/// A connection idle for less than this is reused without the `MSG_PEEK` check.
const FRESH: Duration = Duration::from_millis(500);

struct Idle {
    conn: Upstream,
    since: Instant,
    expires: Instant,
}

#[derive(Default)]
pub(crate) struct Pool {
    idle: RefCell<HashMap<(SocketAddr, u64), VecDeque<Idle>>>,
}

impl Pool {
    /// The most recently returned live connection to `addr`, if any. `trust_fresh`: a
    /// connection idle for less than [`FRESH`] is not checked.
    pub(crate) fn take(
        &self,
        addr: SocketAddr,
        tls_key: u64,
        trust_fresh: bool,
    ) -> Option<Upstream> {
        let mut idle = self.idle.borrow_mut();
        let list = idle.get_mut(&(addr, tls_key))?;
        let now = Instant::now();
        while let Some(entry) = list.pop_back() {
            let fresh = trust_fresh && now.saturating_duration_since(entry.since) < FRESH;
            if entry.expires > now && (fresh || entry.conn.looks_alive()) {
                let mut conn = entry.conn;
                conn.reused = true;
                return Some(conn);
            }
        }
        None
    }

    /// Returns a connection for reuse; the oldest is dropped beyond `max_idle`.
    pub(crate) fn put(&self, mut conn: Upstream, max_idle: usize, idle_timeout: Duration) {
        if max_idle == 0 || !conn.buf.is_empty() {
            return;
        }
        conn.buf.shrink_empty(UPSTREAM_BUF);
        let mut idle = self.idle.borrow_mut();
        let list = idle.entry((conn.addr, conn.tls_key)).or_default();
        while list.len() >= max_idle {
            list.pop_front();
        }
        let now = Instant::now();
        list.push_back(Idle {
            conn,
            since: now,
            expires: now + idle_timeout,
        });
    }

    /// Closes every connection past its idle timeout.
    pub(crate) fn sweep(&self) {
        let now = Instant::now();
        let mut idle = self.idle.borrow_mut();
        idle.retain(|_, list| {
            list.retain(|e| e.expires > now);
            !list.is_empty()
        });
    }

    /// Closes everything (drain).
    pub(crate) fn clear(&self) {
        self.idle.borrow_mut().clear();
    }

    pub(crate) fn idle_count(&self, addr: SocketAddr) -> usize {
        self.idle.borrow().get(&(addr, 0)).map_or(0, VecDeque::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pair() -> (Upstream, std::net::TcpStream) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let up = Upstream::connect(addr, Duration::from_secs(1))
            .await
            .unwrap();
        let (peer, _) = l.accept().unwrap();
        (up, peer)
    }

    #[monoio::test_all(timer_enabled = true)]
    async fn reuses_live_and_discards_closed() {
        let pool = Pool::default();
        let (a, peer_a) = pair().await;
        let addr = a.addr;
        pool.put(a, 4, Duration::from_secs(60));
        assert_eq!(pool.idle_count(addr), 1);
        let got = pool
            .take(addr, 0, false)
            .expect("live connection is reused");
        assert!(got.reused);
        pool.put(got, 4, Duration::from_secs(60));
        drop(peer_a); // upstream closes the idle connection
        monoio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            pool.take(addr, 0, false).is_none(),
            "closed connection must not be handed out"
        );
    }

    #[monoio::test_all(timer_enabled = true)]
    async fn only_a_connection_idle_a_while_is_checked_for_a_repeatable_request() {
        let pool = Pool::default();
        let (a, peer_a) = pair().await;
        let addr = a.addr;
        pool.put(a, 4, Duration::from_secs(60));
        drop(peer_a);
        monoio::time::sleep(Duration::from_millis(20)).await;
        let got = pool.take(addr, 0, true);
        assert!(
            got.is_some(),
            "fresh: handed out unchecked (the request repeats if it fails)"
        );
        pool.put(got.unwrap(), 4, Duration::from_secs(60));
        if let Some(idle) = pool.idle.borrow_mut().get_mut(&(addr, 0)) {
            for e in idle.iter_mut() {
                e.since -= FRESH; // as if it had waited that long
            }
        }
        assert!(
            pool.take(addr, 0, true).is_none(),
            "idle a while: checked, and closed"
        );
    }

    #[monoio::test_all(timer_enabled = true)]
    async fn idle_limit_and_timeout() {
        let pool = Pool::default();
        let mut peers = Vec::new();
        let mut addr = None;
        for _ in 0..3 {
            let (c, p) = pair().await;
            peers.push(p);
            // All three go to distinct listeners; re-key them onto one address for the test.
            let mut c = c;
            let a = *addr.get_or_insert(c.addr);
            c.addr = a;
            pool.put(c, 2, Duration::from_millis(30));
        }
        let a = addr.unwrap();
        assert_eq!(pool.idle_count(a), 2);
        monoio::time::sleep(Duration::from_millis(50)).await;
        pool.sweep();
        assert_eq!(pool.idle_count(a), 0);
    }
}
