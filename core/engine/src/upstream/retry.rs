//! Retries: a route's `[routes.retry]` policy around the upstream call, for every client and
//! every downstream protocol.
//!
//! ```text
//! keep the body (≤ max_body_bytes) ─▶ try 1 ─▶ retriable? ─▶ budget? ─▶ backoff ─▶ try 2 ...
//!                                       └▶ response head not retriable, or last try ─▶ client
//! ```
//! - **What is kept.** A request body is read whole into memory before the first try when it
//!   fits the policy's `max_body_bytes` ([`Replay`]); every try sends it from there. A bigger
//!   body (declared, or found while reading) is sent once, streaming, and the request is not
//!   retried (counted, never an error of its own). A client that sent `Expect: 100-continue`
//!   is not waited for: its request is tried once.
//! - **When.** Only before a byte of the response went to the client. A response head is
//!   looked at by the client code (`h1.rs`, `h2.rs`) through the [`Gate`] before it is sent:
//!   a retriable status, header or gRPC status on a try that is not the last, within the
//!   budget, ends that try instead (`ProxyError::Retried`), and its connection is closed.
//!   The last try's response goes to the client as it came. Errors before a response head
//!   (connect failure, reset, refused stream, per-try timeout) are classified by
//!   [`reason_of`].
//! - **Where.** Each retry avoids the endpoints already tried when the cluster has others.
//! - **How fast.** Retry N waits a random time between `base_ms` and
//!   `min(max_ms, base_ms × 2^N)`; the route's `timeout_ms` bounds every try and wait.
//! - **How many.** Each try carries `x-ringside-attempt: N`. The cluster's [`Budget`] lets
//!   retries add at most `ratio` of the requests of the last 10 s, plus `min_per_second`,
//!   counted for the whole process with atomics (no lock).

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use ringside_codec::BodyKind;
use ringside_config::{Cluster, RetryBudget, RetryOn, RetryPolicy, RetryReason};

use super::body::{trailer_map, BodyState, BODY_CHUNK};
use super::cluster::ClusterState;
use super::relay::{next_data, trailers};
use super::{Client, Down, Ended, Exchange, Progress};
use crate::cx::error::ProxyError;
use crate::cx::io::Fill;
use crate::cx::metrics::RetryOutcome;

/// A request body kept in memory so that every try (and a mirror) can send it.
#[derive(Clone, Default)]
pub(crate) struct Replay {
    /// The payload, de-framed.
    pub(crate) chunks: Vec<Bytes>,
    /// An HTTP/1.1 chunked body's trailer section, or an HTTP/2 body's trailers.
    pub(crate) trailers: Option<http::HeaderMap>,
}

impl Replay {
    /// Nothing to send after the head.
    pub(crate) fn is_empty(&self) -> bool {
        self.chunks.iter().all(Bytes::is_empty) && self.trailers.is_none()
    }
}

/// What became of the request body before the first try.
enum Kept {
    /// No body, or all of it in memory.
    Whole(Option<Replay>),
    /// Too big to keep, or not read ahead: the request is tried once.
    Streamed,
}

/// The clients' look at a response head on behalf of the retry loop: whether this try's
/// response is to be dropped for another try.
pub(crate) struct Gate<'a> {
    policy: &'a RetryPolicy,
    budget: &'a Budget,
    grpc: bool,
    /// This try may not be retried (the last one, or the body was not kept).
    last: Cell<bool>,
    /// Why this try's response was dropped.
    reason: Cell<Option<RetryReason>>,
    /// Why this try's response went to the client although the policy retries it.
    declined: Cell<Option<Declined>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Declined {
    /// No try may follow this one.
    Last,
    /// The budget was spent.
    Budget,
}

impl Gate<'_> {
    /// Whether a response head with `status` (and fields looked up by `header`) is dropped
    /// for another try. Takes the retry from the budget when it says yes.
    pub(crate) fn retries<'h>(
        &self,
        status: u16,
        header: &dyn Fn(&str) -> Option<&'h [u8]>,
        progress: &Progress,
    ) -> bool {
        let Some(reason) = self.policy.wants_response(status, self.grpc, header) else {
            return false;
        };
        if self.last.get() {
            self.declined.set(Some(Declined::Last));
            return false;
        }
        if !self.budget.try_retry(now_s()) {
            self.declined.set(Some(Declined::Budget));
            return false;
        }
        self.reason.set(Some(reason));
        progress.retried.set(Some(status));
        true
    }
}

/// The state a try needs beyond the exchange itself: the kept body, the gate and the
/// endpoints to avoid. Empty for a request without a retry policy.
#[derive(Clone, Copy, Default)]
pub(crate) struct Try<'a> {
    pub(crate) replay: Option<&'a Replay>,
    pub(crate) gate: Option<&'a Gate<'a>>,
    /// Endpoint indices of the previous tries.
    pub(crate) avoid: &'a [usize],
}

/// The name of the header that numbers the tries.
const ATTEMPT_HEADER: &str = "x-ringside-attempt";

/// Its values (at most 11 tries: `attempts` is at most 10).
const ATTEMPTS: [&str; 12] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"];

/// The replay buffer of a route with a mirror and no retry policy.
const MIRROR_BODY_BYTES: u64 = 64 * 1024;

/// Calls the cluster (`upstream::call`): once, or under the route's retry policy
/// (`x.retry`), copying the request to its mirror (`x.mirror`) first.
pub(crate) async fn call(
    client: Client<'_>,
    cluster: &Cluster,
    state: &ClusterState,
    x: &Exchange<'_>,
    down: &mut Down<'_>,
    progress: &Progress,
) -> Result<Ended, ProxyError> {
    if x.retry.is_none() && x.mirror.is_none() {
        return super::call_once(client, cluster, state, x, down, progress).await;
    }
    let policy = x.retry;
    let method_ok = policy.is_some_and(|p| p.allows_method(x.head.method()));
    let keep = policy.map_or(MIRROR_BODY_BYTES, |p| p.max_body_bytes);
    let kept = if method_ok || x.mirror.is_some() {
        match kept_at_once(down, x, keep) {
            Some(kept) => kept,
            None => keep_body(down, x, keep).await?,
        }
    } else {
        Kept::Streamed
    };
    let (replay, replayable) = match &kept {
        Kept::Whole(r) => (r.as_ref(), true),
        Kept::Streamed => (None, false),
    };
    if let Some(mirror) = x.mirror {
        mirror.send(x, replayable.then(|| replay.cloned().unwrap_or_default()));
    }
    let Some(policy) = policy else {
        let once = Exchange {
            attempt: Try {
                replay,
                ..x.attempt
            },
            ..*x
        };
        return super::call_once(client, cluster, state, &once, down, progress).await;
    };
    // Looked up only when something is counted (a map lookup per request otherwise).
    let stats = || client.cx.stats.cluster(&cluster.name);
    // Every cluster a retry route calls has a budget (`pipeline/view.rs`).
    let Some(budget) = state.retry_budget.as_deref() else {
        return super::call_once(client, cluster, state, x, down, progress).await;
    };
    budget.request(now_s());
    let gate = Gate {
        policy,
        budget,
        grpc: x.grpc,
        last: Cell::new(false),
        reason: Cell::new(None),
        declined: Cell::new(None),
    };
    // The endpoints of the tries so far (at most 11 tries: `attempts` is at most 10).
    let mut tried = [0usize; ATTEMPTS.len()];
    let mut tries_made = 0;
    let tries = if method_ok { policy.attempts + 1 } else { 1 };
    let mut n = 1u32;
    loop {
        // The proxy's fields and the attempt number, on the stack (this runs per request).
        let number = ATTEMPTS.get(n as usize).copied().unwrap_or("11");
        let mut fields = [("", &b""[..]); 8];
        let len = x.set.len().min(fields.len() - 1);
        for (to, from) in fields.iter_mut().zip(x.set) {
            *to = *from;
        }
        if let Some(last) = fields.get_mut(len) {
            *last = (ATTEMPT_HEADER, number.as_bytes());
        }
        let set = fields.get(..=len).unwrap_or_default();
        gate.last.set(n >= tries || !replayable);
        gate.reason.set(None);
        gate.declined.set(None);
        let attempt = Exchange {
            set,
            attempt: Try {
                replay,
                gate: Some(&gate),
                avoid: tried.get(..tries_made).unwrap_or_default(),
            },
            ..*x
        };
        progress.endpoint.set(None);
        // Without a per-try timeout the try is awaited as it is: wrapping it would move the
        // client's future (a memcpy of its whole size) twice per request.
        let result = match policy.per_try_timeout {
            None => super::call_once(client, cluster, state, &attempt, down, progress).await,
            limit => {
                let once = super::call_once(client, cluster, state, &attempt, down, progress);
                per_try(limit, progress, once).await
            }
        };
        if let (Some(ep), Some(slot)) = (progress.endpoint.get(), tried.get_mut(tries_made)) {
            *slot = ep;
            tries_made += 1;
        }
        let e = match result {
            Ok(ended) => {
                let skipped = if method_ok {
                    RetryOutcome::BodyTooLarge
                } else {
                    RetryOutcome::Method
                };
                let outcome = match gate.declined.get() {
                    Some(Declined::Budget) => Some(RetryOutcome::OverBudget),
                    Some(Declined::Last) if !replayable => Some(skipped),
                    Some(Declined::Last) => Some(RetryOutcome::Exhausted),
                    None => (n > 1).then_some(RetryOutcome::Succeeded),
                };
                if let Some(o) = outcome {
                    stats().retry_outcome(o);
                }
                return Ok(ended);
            }
            Err(e) => e,
        };
        if progress.head_sent.get() {
            return Err(e);
        }
        let reason = match &e {
            ProxyError::Retried => gate.reason.get(),
            e => reason_of(e, policy.on),
        };
        let Some(reason) = reason else { return Err(e) };
        if !matches!(e, ProxyError::Retried) {
            // An error, not a response: the gate was not asked; ask the same questions here.
            let declined = if !replayable {
                Some(if method_ok {
                    RetryOutcome::BodyTooLarge
                } else {
                    RetryOutcome::Method
                })
            } else if n >= tries {
                Some(RetryOutcome::Exhausted)
            } else if !budget.try_retry(now_s()) {
                Some(RetryOutcome::OverBudget)
            } else {
                None
            };
            if let Some(o) = declined {
                stats().retry_outcome(o);
                return Err(e);
            }
        }
        stats().retry(reason);
        tracing::debug!(cluster = %cluster.name, try_number = n, reason = reason.as_str(), error = %e, "retrying");
        crate::cx::io::sleep(backoff(policy, n, client.cx.random())).await;
        n += 1;
    }
}

/// Runs one try, abandoning it when `limit` passes before its response head went to the
/// client (then `Err(PerTryTimeout)`; its connection is dropped, never pooled).
fn per_try<'p, F>(limit: Option<Duration>, progress: &'p Progress, fut: F) -> PerTry<'p, F> {
    PerTry {
        fut,
        timer: limit.map(crate::cx::io::sleep),
        progress,
    }
}

pin_project_lite::pin_project! {
    /// The future of [`per_try`]: a struct, so that the try (most of the retry loop's state)
    /// is stored once, where an `async fn` taking it would keep it twice.
    struct PerTry<'p, F> {
        #[pin]
        fut: F,
        timer: Option<crate::cx::deadline::Deadline>,
        progress: &'p Progress,
    }
}

impl<T, F: Future<Output = Result<T, ProxyError>>> Future for PerTry<'_, F> {
    type Output = Result<T, ProxyError>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(r) = this.fut.poll(cx) {
            return Poll::Ready(r);
        }
        let expired = match this.timer {
            Some(t) if !this.progress.head_sent.get() => std::pin::Pin::new(t).poll(cx).is_ready(),
            _ => false,
        };
        if expired {
            Poll::Ready(Err(ProxyError::PerTryTimeout))
        } else {
            Poll::Pending
        }
    }
}

/// Why an error before any response head is worth another try under `on`, if it is.
pub(crate) fn reason_of(e: &ProxyError, on: RetryOn) -> Option<RetryReason> {
    let five = on.any(RetryOn::FIVE_XX);
    let (reason, asked) = match e {
        ProxyError::Connect(_) => (
            RetryReason::ConnectFailure,
            on.any(RetryOn::CONNECT_FAILURE) || five,
        ),
        ProxyError::UpstreamStream(err) if err.reason() == Some(h2::Reason::REFUSED_STREAM) => {
            (RetryReason::RefusedStream, on.any(RetryOn::REFUSED_STREAM))
        }
        ProxyError::UpstreamClosedEarly
        | ProxyError::UpstreamIo(_)
        | ProxyError::UpstreamStream(_) => (RetryReason::Reset, on.any(RetryOn::RESET) || five),
        ProxyError::PerTryTimeout => (RetryReason::Timeout, five || on.any(RetryOn::GATEWAY_ERROR)),
        _ => return None,
    };
    asked.then_some(reason)
}

/// The wait before retry `n` (1 for the first retry): full jitter between the base and
/// `min(max, base × 2^n)`.
pub(crate) fn backoff(policy: &RetryPolicy, n: u32, random: u64) -> Duration {
    let base = policy.backoff_base.as_millis() as u64;
    let ceiling = base
        .saturating_mul(1u64 << n.min(20))
        .min(policy.backoff_max.as_millis() as u64)
        .max(base);
    Duration::from_millis(base + random % (ceiling - base + 1))
}

/// What [`keep_body`] decides from the head alone, without reading (most requests have no
/// body: they skip the read-ahead and its future); `None` when the body has to be read.
fn kept_at_once(down: &Down<'_>, x: &Exchange<'_>, max: u64) -> Option<Kept> {
    let head = x.head;
    match (down, head.body()) {
        (Down::Discard, _) => Some(Kept::Whole(None)),
        (Down::H2(d), _) if d.websocket => Some(Kept::Streamed),
        // An HTTP/2 request's head has no body when its HEADERS frame ended the stream
        // (`convert::request_to_h1`); with a `content-length: 0` the stream is asked.
        (Down::H2(_), BodyKind::Empty) => Some(Kept::Whole(None)),
        (Down::H1(_), BodyKind::Empty | BodyKind::Length(0)) => Some(Kept::Whole(None)),
        (_, BodyKind::Length(n)) if n > max => Some(Kept::Streamed),
        (Down::H1(_), _) if head.expects_continue() || head.upgrade().is_some() => {
            Some(Kept::Streamed)
        }
        _ => None,
    }
}

/// Reads the request body ahead when it can be kept whole within `max` bytes (after
/// [`kept_at_once`] found that it has to be read).
async fn keep_body(down: &mut Down<'_>, x: &Exchange<'_>, max: u64) -> Result<Kept, ProxyError> {
    let head = x.head;
    let limit = x.body_limit;
    match down {
        Down::Discard => Ok(Kept::Whole(None)),
        Down::H1(d) => {
            let kind = head.body();
            // Read until the body is complete in the buffer, consuming nothing until then: a
            // body that turns out too big is still all there to stream.
            let cap = usize::try_from(max)
                .unwrap_or(usize::MAX)
                .saturating_add(16 * 1024);
            loop {
                let mut scan = BodyState::new(kind);
                let mut payload = 0u64;
                let mut lines = Vec::new();
                let used = scan
                    .take_with_trailers(d.buf.data(), |r| payload += r.len() as u64, &mut lines)
                    .map_err(|e| ProxyError::BadRequest(e.to_string()))?;
                if limit.is_some_and(|l| payload > l) {
                    return Err(ProxyError::BodyTooLarge);
                }
                if payload > max {
                    return Ok(Kept::Streamed);
                }
                if scan.is_done() {
                    let mut chunks = Vec::new();
                    let mut state = BodyState::new(kind);
                    let data = d.buf.data();
                    state
                        .take(data, |r| {
                            chunks.push(Bytes::copy_from_slice(data.get(r).unwrap_or_default()))
                        })
                        .map_err(|e| ProxyError::BadRequest(e.to_string()))?;
                    d.buf.consume(used);
                    return Ok(Kept::Whole(Some(Replay {
                        chunks,
                        trailers: trailer_map(&lines),
                    })));
                }
                match d
                    .buf
                    .fill(&mut *d.r, cap.max(BODY_CHUNK), crate::cx::io::sleep(x.idle))
                    .await
                {
                    Ok(Fill::Data) => {}
                    Ok(Fill::Full) => return Ok(Kept::Streamed),
                    Ok(Fill::Eof) => return Err(ProxyError::ClientGone),
                    Ok(Fill::Stopped) => {
                        return Err(ProxyError::BadRequest("request body timeout".into()))
                    }
                    Err(e) => return Err(ProxyError::ClientIo(e)),
                }
            }
        }
        Down::H2(d) => {
            if d.body.is_end_stream() {
                return Ok(Kept::Whole(None));
            }
            let mut replay = Replay::default();
            let mut size = 0u64;
            let client_err = |e| match e {
                super::relay::RelayError::From(Some(e)) => ProxyError::ClientStream(e),
                _ => ProxyError::BadRequest("request body timeout".into()),
            };
            while let Some(data) = next_data(d.body, x.idle).await.map_err(client_err)? {
                size += data.len() as u64;
                let _ = d.body.flow_control().release_capacity(data.len());
                if limit.is_some_and(|l| size > l) {
                    return Err(ProxyError::BodyTooLarge);
                }
                replay.chunks.push(data);
                if size > max {
                    // Too big after all: what was read goes first, the rest streams.
                    d.pending = std::mem::take(&mut replay.chunks);
                    return Ok(Kept::Streamed);
                }
            }
            replay.trailers = trailers(d.body, x.idle).await.map_err(client_err)?;
            Ok(Kept::Whole(Some(replay)))
        }
    }
}

/// The seconds of the window a budget counts over.
const WINDOW_S: u64 = 10;

/// A cluster's retry budget for the whole process: requests and retries per second over the
/// last [`WINDOW_S`] seconds, in a ring of one-second slots of atomics. A slot is reset by
/// whichever worker first finds it holding an old second; a count that races with the reset
/// may be lost, which only errs by one request either way.
pub(crate) struct Budget {
    settings: RetryBudget,
    slots: [Slot; WINDOW_S as usize],
}

#[derive(Default)]
struct Slot {
    second: AtomicU64,
    requests: AtomicU64,
    retries: AtomicU64,
}

impl Budget {
    pub(crate) fn new(settings: RetryBudget) -> Budget {
        Budget {
            settings,
            slots: Default::default(),
        }
    }

    pub(crate) fn settings(&self) -> RetryBudget {
        self.settings
    }

    /// The key of a cluster's budget in the process's registry.
    pub(crate) fn key(cluster: &Cluster) -> String {
        let b = cluster.retry_budget;
        format!(
            "retry-budget/{}/{}/{}",
            cluster.name, b.ratio, b.min_per_second
        )
    }

    fn slot(&self, now: u64) -> &Slot {
        // `slots` has WINDOW_S elements and the index is taken modulo WINDOW_S.
        #[allow(clippy::indexing_slicing)]
        let slot = &self.slots[(now % WINDOW_S) as usize];
        let seen = slot.second.load(Relaxed);
        if seen != now
            && slot
                .second
                .compare_exchange(seen, now, Relaxed, Relaxed)
                .is_ok()
        {
            slot.requests.store(0, Relaxed);
            slot.retries.store(0, Relaxed);
        }
        slot
    }

    /// Counts a request that may be retried.
    pub(crate) fn request(&self, now: u64) {
        self.slot(now).requests.fetch_add(1, Relaxed);
    }

    /// Takes one retry if the budget allows it.
    pub(crate) fn try_retry(&self, now: u64) -> bool {
        let (mut requests, mut retries) = (0u64, 0u64);
        for s in &self.slots {
            let second = s.second.load(Relaxed);
            if second + WINDOW_S > now && second <= now {
                requests += s.requests.load(Relaxed);
                retries += s.retries.load(Relaxed);
            }
        }
        let allowed = self.settings.ratio * requests as f64
            + f64::from(self.settings.min_per_second) * WINDOW_S as f64;
        if (retries + 1) as f64 > allowed {
            return false;
        }
        self.slot(now).retries.fetch_add(1, Relaxed);
        true
    }
}

/// Seconds on a monotonic clock, offset by a window so that a fresh slot (second 0) is never
/// counted as current: the worker's coarse clock (a thread-local load, no clock read).
fn now_s() -> u64 {
    crate::cx::deadline::coarse_seconds() + WINDOW_S
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(text: &str) -> RetryPolicy {
        let config = ringside_config::parse(&format!(
            r#"
            [[listeners]]
            name = "in"
            bind = "127.0.0.1:1"
            [[routes]]
            listener = "in"
            cluster = "c"
            [routes.retry]
            {text}
            [[clusters]]
            name = "c"
            "#
        ))
        .unwrap();
        let ringside_config::ListenerKind::Http(http) = &config.listeners[0].kind else {
            panic!("http listener")
        };
        http.routes[0].retry.clone().unwrap()
    }

    #[test]
    fn backoff_grows_from_the_base_to_the_cap_with_jitter() {
        let p = policy("backoff = { base_ms = 25, max_ms = 250 }");
        let ms = |n, r| backoff(&p, n, r).as_millis() as u64;
        // Retry 1: between 25 and 50; retry 2: 25..=100; retry 4 and later: 25..=250.
        assert_eq!(ms(1, 0), 25);
        assert_eq!(ms(1, 25), 50);
        assert_eq!(ms(1, 26), 25);
        assert_eq!(ms(2, 75), 100);
        assert_eq!(ms(4, 225), 250);
        assert_eq!(ms(9, 225), 250);
        for r in 0..1000 {
            assert!((25..=250).contains(&ms(30, r * 7919)));
        }
    }

    #[test]
    fn errors_are_retried_only_under_their_conditions() {
        let reset = ProxyError::UpstreamClosedEarly;
        let refused = ProxyError::UpstreamStream(h2::Error::from(h2::Reason::REFUSED_STREAM));
        let connect = ProxyError::Connect(std::io::ErrorKind::ConnectionRefused.into());
        let on = |names: &str| policy(&format!("on = [{names}]")).on;
        assert_eq!(reason_of(&reset, on("\"reset\"")), Some(RetryReason::Reset));
        assert_eq!(reason_of(&reset, on("\"connect-failure\"")), None);
        assert_eq!(
            reason_of(&refused, on("\"refused-stream\"")),
            Some(RetryReason::RefusedStream)
        );
        assert_eq!(reason_of(&refused, on("\"5xx\"")), None);
        assert_eq!(
            reason_of(&connect, on("\"5xx\"")),
            Some(RetryReason::ConnectFailure)
        );
        assert_eq!(
            reason_of(&ProxyError::PerTryTimeout, on("\"gateway-error\"")),
            Some(RetryReason::Timeout)
        );
        assert_eq!(reason_of(&ProxyError::PerTryTimeout, on("\"reset\"")), None);
        // The route's own deadline is never retried.
        assert_eq!(reason_of(&ProxyError::Timeout, on("\"5xx\"")), None);
    }

    #[test]
    fn responses_are_retried_by_status_header_and_grpc_status() {
        let p = policy(
            r#"on = ["gateway-error", "retriable-status-codes", "unavailable"]
            status_codes = [409]
            response_headers = { "x-retryable" = "regex:^(yes|true)$", "x-exact" = "1" }"#,
        );
        let none = |_: &str| None;
        assert_eq!(
            p.wants_response(503, false, &none),
            Some(RetryReason::Status)
        );
        assert_eq!(p.wants_response(500, false, &none), None);
        assert_eq!(
            p.wants_response(409, false, &none),
            Some(RetryReason::Status)
        );
        let yes = |n: &str| (n == "x-retryable").then_some(&b"true"[..]);
        let maybe = |n: &str| (n == "x-retryable").then_some(&b"yes please"[..]);
        let exact = |n: &str| (n == "x-exact").then_some(&b"1"[..]);
        assert_eq!(
            p.wants_response(200, false, &yes),
            Some(RetryReason::Header)
        );
        assert_eq!(p.wants_response(200, false, &maybe), None);
        assert_eq!(
            p.wants_response(200, false, &exact),
            Some(RetryReason::Header)
        );
        let unavailable = |n: &str| (n == "grpc-status").then_some(&b"14"[..]);
        let internal = |n: &str| (n == "grpc-status").then_some(&b"13"[..]);
        assert_eq!(
            p.wants_response(200, true, &unavailable),
            Some(RetryReason::Grpc)
        );
        assert_eq!(p.wants_response(200, false, &unavailable), None);
        assert_eq!(p.wants_response(200, true, &internal), None);
        // Only idempotent methods by default.
        assert!(p.allows_method("GET") && p.allows_method("PUT"));
        assert!(!p.allows_method("POST"));
        assert!(policy("methods = [\"POST\"]").allows_method("POST"));
    }

    #[test]
    fn the_budget_allows_a_share_of_the_requests_plus_a_floor() {
        let b = Budget::new(RetryBudget::new(0.2, 1));
        let t = 100;
        // The floor alone: 1 per second over the 10 s window.
        for _ in 0..10 {
            assert!(b.try_retry(t));
        }
        assert!(!b.try_retry(t));
        // 50 requests add 10 more.
        for _ in 0..50 {
            b.request(t);
        }
        for _ in 0..10 {
            assert!(b.try_retry(t + 1));
        }
        assert!(!b.try_retry(t + 1));
        // Ten seconds later the window has moved past them.
        assert!(b.try_retry(t + 11));
    }

    #[test]
    fn the_budget_counts_both_workers() {
        let b = std::sync::Arc::new(Budget::new(RetryBudget::new(0.0, 100)));
        let granted: u64 = (0..2)
            .map(|_| {
                let b = b.clone();
                std::thread::spawn(move || (0..1000).filter(|_| b.try_retry(500)).count() as u64)
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        // 1000 in the window; two threads racing may each take the last one.
        assert!((1000..=1001).contains(&granted), "{granted}");
    }
}
