//! A scripted HTTP/2 origin (h2c, prior knowledge) that records every request it received,
//! like [`crate::Origin`] does for HTTP/1.1: for clusters with `protocol = "http2"`.
//!
//! It runs the `h2` crate on a monoio runtime (epoll) on a thread of its own, one task per
//! connection and per stream. Each stream's head, body and trailers are read whole, recorded,
//! and handed to the handler, whose [`H2Reply`] says what to answer: a status, headers, a
//! body, trailers, after an optional delay, or a reset of the stream. Stops when dropped.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use h2::server::SendResponse;
use h2::{RecvStream, SendStream};

use crate::WAIT;

/// One request as the HTTP/2 origin received it.
#[derive(Debug, Clone, Default)]
pub struct H2Request {
    /// Connection number, in accept order from 0.
    pub conn: usize,
    pub method: String,
    /// `:path` (path and query).
    pub path: String,
    /// `:authority`, empty when absent.
    pub authority: String,
    /// `:scheme`, empty when absent.
    pub scheme: String,
    /// Regular header fields, in order (names lower-case, as HTTP/2 carries them).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
    /// The stream ended cleanly (END_STREAM); false when it was reset or the connection
    /// failed before the end of the body.
    pub complete: bool,
}

impl H2Request {
    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the origin answers to one stream.
#[derive(Debug, Clone, Default)]
pub struct H2Reply {
    pub status: u16,
    /// Header fields (lower-case names; connection-specific fields are not allowed in HTTP/2).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
    /// Wait this long before answering.
    pub delay: Duration,
    /// Reset the stream (INTERNAL_ERROR) instead of answering.
    pub reset: bool,
}

#[derive(Default)]
struct Recorded {
    requests: Mutex<Vec<H2Request>>,
    connections: AtomicUsize,
    stop: AtomicBool,
}

type Handler = dyn Fn(&H2Request) -> H2Reply + Send + Sync;

/// A scripted h2c origin on 127.0.0.1. Stops accepting (and closes its connections) when
/// dropped.
pub struct H2Origin {
    addr: SocketAddr,
    rec: Arc<Recorded>,
}

impl H2Origin {
    /// Starts an origin answering with `handler`.
    pub fn start(handler: impl Fn(&H2Request) -> H2Reply + Send + Sync + 'static) -> H2Origin {
        let rec = Arc::new(Recorded::default());
        let handler: Arc<Handler> = Arc::new(handler);
        let (tx, rx) = mpsc::channel();
        let r = rec.clone();
        std::thread::spawn(move || {
            let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                .enable_timer()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = monoio::net::TcpListener::bind("127.0.0.1:0").unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    if r.stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let conn = r.connections.fetch_add(1, Ordering::SeqCst);
                    monoio::spawn(serve(stream, conn, r.clone(), handler.clone()));
                }
            });
        });
        let addr = rx.recv_timeout(WAIT).expect("the h2 origin started");
        H2Origin { addr, rec }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far (complete or not), in the order their streams ended.
    pub fn requests(&self) -> Vec<H2Request> {
        self.rec.requests.lock().unwrap().clone()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.rec.connections.load(Ordering::SeqCst)
    }
}

impl Drop for H2Origin {
    fn drop(&mut self) {
        self.rec.stop.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(self.addr); // wake the accept loop
    }
}

async fn serve(
    stream: monoio::net::TcpStream,
    conn: usize,
    rec: Arc<Recorded>,
    handler: Arc<Handler>,
) {
    let Ok(io) = stream.try_into_poll_io() else {
        return;
    };
    let Ok(Ok(mut h2c)) = monoio::time::timeout(WAIT, h2::server::handshake(io)).await else {
        return;
    };
    while let Some(Ok((req, respond))) = h2c.accept().await {
        monoio::spawn(stream_task(
            req,
            respond,
            conn,
            rec.clone(),
            handler.clone(),
        ));
    }
}

fn fields(map: &http::HeaderMap) -> Vec<(String, String)> {
    map.iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

async fn stream_task(
    req: http::Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    conn: usize,
    rec: Arc<Recorded>,
    handler: Arc<Handler>,
) {
    let (parts, mut body) = req.into_parts();
    let mut seen = H2Request {
        conn,
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map_or(String::new(), |p| p.to_string()),
        authority: parts
            .uri
            .authority()
            .map_or(String::new(), |a| a.to_string()),
        scheme: parts.uri.scheme_str().unwrap_or("").to_string(),
        headers: fields(&parts.headers),
        ..H2Request::default()
    };
    let mut complete = true;
    loop {
        match monoio::time::timeout(WAIT, body.data()).await {
            Ok(Some(Ok(data))) => {
                let _ = body.flow_control().release_capacity(data.len());
                seen.body.extend_from_slice(&data);
            }
            Ok(None) => break,
            _ => {
                complete = false;
                break;
            }
        }
    }
    if complete {
        match monoio::time::timeout(WAIT, body.trailers()).await {
            Ok(Ok(t)) => seen.trailers = t.as_ref().map(fields).unwrap_or_default(),
            _ => complete = false,
        }
    }
    seen.complete = complete;
    rec.requests.lock().unwrap().push(seen.clone());
    if !complete {
        return;
    }
    let reply = handler(&seen);
    if !reply.delay.is_zero() {
        monoio::time::sleep(reply.delay).await;
    }
    if reply.reset {
        respond.send_reset(h2::Reason::INTERNAL_ERROR);
        return;
    }
    let mut resp = http::Response::new(());
    *resp.status_mut() = http::StatusCode::from_u16(reply.status).unwrap();
    for (n, v) in &reply.headers {
        resp.headers_mut().append(
            http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
            http::HeaderValue::from_str(v).unwrap(),
        );
    }
    let end = reply.body.is_empty() && reply.trailers.is_empty();
    let Ok(mut send) = respond.send_response(resp, end) else {
        return;
    };
    if end {
        return;
    }
    if !reply.body.is_empty()
        && send_all(
            &mut send,
            Bytes::from(reply.body),
            reply.trailers.is_empty(),
        )
        .await
        .is_err()
    {
        return;
    }
    if !reply.trailers.is_empty() {
        let mut map = http::HeaderMap::new();
        for (n, v) in &reply.trailers {
            map.append(
                http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                http::HeaderValue::from_str(v).unwrap(),
            );
        }
        let _ = send.send_trailers(map);
    }
}

/// Sends `data` on `to`, waiting for window capacity as needed; `end` ends the stream with
/// the last frame.
pub async fn send_all(
    to: &mut SendStream<Bytes>,
    mut data: Bytes,
    end: bool,
) -> Result<(), h2::Error> {
    while !data.is_empty() {
        to.reserve_capacity(data.len());
        let cap = match monoio::time::timeout(WAIT, poll_fn(|cx| to.poll_capacity(cx))).await {
            Ok(Some(Ok(n))) => n,
            Ok(Some(Err(e))) => return Err(e),
            Ok(None) | Err(_) => return Err(h2::Error::from(h2::Reason::CANCEL)),
        };
        if cap == 0 {
            continue;
        }
        let chunk = data.split_to(cap.min(data.len()));
        to.send_data(chunk, end && data.is_empty())?;
    }
    Ok(())
}
