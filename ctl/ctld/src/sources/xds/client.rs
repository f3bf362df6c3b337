//! One node's ADS stream (state of the world, or incremental with `--xds-delta`): connect,
//! send the opening subscriptions, answer every response
//! (`state.rs` decides what), hand each new configuration to the reconciler. When the
//! stream fails or cannot be opened, wait (exponential backoff from [`BACKOFF_BASE`] to
//! [`BACKOFF_CAP`], each wait random in the upper half of its ceiling; back to the base once
//! a stream got a response) and open
//! a new one. The reconciler keeps serving the last configuration all along.
//!
//! With `--xds-sds`, the node's secrets of the local SDS server come on a second stream
//! (`local_sds.rs`), a task beside this one that shares the node's [`NodeState`] and ends
//! with it.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crossbeam_channel::Sender;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

use super::state::{NodeState, Request, Response};
use super::{Settings, Stats, Templates, Update};
use crate::reconciler::Event;

pub const BACKOFF_BASE: Duration = Duration::from_millis(250);
pub const BACKOFF_CAP: Duration = Duration::from_secs(30);
/// The largest response taken (tonic's default is 4 MiB; a mesh's CDS is bigger).
pub const MAX_RESPONSE: usize = 256 << 20;
/// Opening a connection to the server may take this long.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What a node's streams share.
pub struct Shared {
    pub node: String,
    pub settings: Arc<Settings>,
    pub state: Mutex<NodeState>,
    pub events: Sender<Event>,
    pub stats: Arc<Stats>,
    /// The names the local SDS stream asks for, set after each ADS response.
    pub local_names: watch::Sender<Vec<String>>,
}

impl Shared {
    /// The node's state (never held across an `await`).
    pub fn state(&self) -> MutexGuard<'_, NodeState> {
        // A panic while it was held leaves a state that was consistent before the step.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Tells the local SDS stream the names the configuration needs now.
    fn share_local_names(&self) {
        let names = self.state().local_names().to_vec();
        self.local_names.send_if_modified(|n| {
            let changed = *n != names;
            *n = names;
            changed
        });
    }
}

/// Aborts a task when dropped: the local SDS stream ends with its node's task.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs the node's stream until the task is aborted.
pub async fn run(
    node: String,
    settings: Arc<Settings>,
    mut templates: watch::Receiver<Templates>,
    events: Sender<Event>,
    stats: Arc<Stats>,
) {
    let template = templates.borrow_and_update().get(&node).cloned().flatten();
    let state = NodeState::new(settings.xds_node(&node), template, settings.delta)
        .with_local_sds(settings.sds.is_some());
    let (local_names, names) = watch::channel(Vec::new());
    let shared = Arc::new(Shared {
        node: node.clone(),
        settings: settings.clone(),
        state: Mutex::new(state),
        events,
        stats: stats.clone(),
        local_names,
    });
    let _local = settings
        .sds
        .is_some()
        .then(|| AbortOnDrop(tokio::spawn(super::local_sds::run(shared.clone(), names))));
    let mut rng = Jitter::new(&node);
    let mut failures = 0u32;
    loop {
        let got = stream(&shared, &mut templates).await;
        stats.connected(&node, false);
        stats.failure(&node);
        let (answered, error) = got;
        if answered {
            failures = 0;
        }
        failures = failures.saturating_add(1);
        let wait = rng.backoff(failures);
        tracing::warn!(node, error = %error, retry_in = ?wait, "xDS stream ended; the node keeps its configuration");
        tokio::time::sleep(wait).await;
    }
}

/// One stream, until it fails: whether any response came, and why it ended.
async fn stream(shared: &Shared, templates: &mut watch::Receiver<Templates>) -> (bool, String) {
    let (node, settings, events, stats) = (
        shared.node.as_str(),
        &shared.settings,
        &shared.events,
        &shared.stats,
    );
    let mut endpoint = match tonic::transport::Endpoint::from_shared(settings.address.clone()) {
        Ok(e) => e.connect_timeout(CONNECT_TIMEOUT),
        Err(e) => return (false, format!("address {}: {e}", settings.address)),
    };
    if let Some(tls) = &settings.tls {
        endpoint = match endpoint.tls_config(tls.clone()) {
            Ok(e) => e,
            Err(e) => return (false, format!("TLS settings: {}", super::tls::chain(&e))),
        };
    }
    let channel = match endpoint.connect().await {
        Ok(c) => c,
        Err(e) => {
            return (
                false,
                format!(
                    "cannot connect to {}: {}",
                    settings.address,
                    super::tls::chain(&e)
                ),
            )
        }
    };
    let mut client =
        AggregatedDiscoveryServiceClient::new(channel).max_decoding_message_size(MAX_RESPONSE);
    let opening = shared.state().opening();
    let (out, mut inbound) = match open(&mut client, settings.delta, opening).await {
        Ok(opened) => opened,
        Err(e) => return (false, format!("stream refused: {}", super::tls::chain(&e))),
    };
    stats.connected(node, true);
    tracing::info!(node, server = %settings.address, "xDS stream open");
    let mut answered = false;
    loop {
        tokio::select! {
            msg = inbound.message() => {
                let resp = match received(msg) {
                    Ok(r) => r,
                    Err(why) => return (answered, why),
                };
                answered = true;
                let version = resp.version().to_owned();
                let start = std::time::Instant::now();
                let step = shared.state().on(resp);
                shared.share_local_names();
                for r in settle(shared, step, &version, start) {
                    if !out.send(r).await {
                        return (answered, "the request stream closed".into());
                    }
                }
            }
            changed = templates.changed() => {
                if changed.is_err() {
                    return (answered, "ctld is stopping".into());
                }
                let template = templates.borrow_and_update().get(node).cloned().flatten();
                let made = shared.state().set_template(template);
                match made {
                    Some(Ok(text)) => propose(node, text, "template", events),
                    Some(Err(e)) => tracing::error!(node, error = %e, "the node's file with the xDS configuration is refused; the node keeps its configuration"),
                    None => {}
                }
            }
        }
    }
}

/// The request side of a stream, in its protocol.
enum Outbound {
    Sotw(mpsc::Sender<DiscoveryRequest>),
    Delta(mpsc::Sender<DeltaDiscoveryRequest>),
}

impl Outbound {
    /// Queues `r`: `false` once the stream is gone. (`NodeState` makes requests of the
    /// stream's own protocol only.)
    async fn send(&self, r: Request) -> bool {
        match (self, r) {
            (Outbound::Sotw(tx), Request::Sotw(r)) => tx.send(r).await.is_ok(),
            (Outbound::Delta(tx), Request::Delta(r)) => tx.send(r).await.is_ok(),
            _ => false,
        }
    }
}

/// The response side of a stream.
enum Inbound {
    Sotw(tonic::Streaming<DiscoveryResponse>),
    Delta(tonic::Streaming<DeltaDiscoveryResponse>),
}

impl Inbound {
    async fn message(&mut self) -> Result<Option<Response>, tonic::Status> {
        match self {
            Inbound::Sotw(s) => Ok(s.message().await?.map(Response::Sotw)),
            Inbound::Delta(s) => Ok(s.message().await?.map(Response::Delta)),
        }
    }
}

/// Opens the ADS stream of the protocol asked for, its opening requests queued first.
async fn open(
    client: &mut AggregatedDiscoveryServiceClient<tonic::transport::Channel>,
    delta: bool,
    opening: Vec<Request>,
) -> Result<(Outbound, Inbound), tonic::Status> {
    if delta {
        let (tx, rx) = mpsc::channel(64);
        let out = Outbound::Delta(tx);
        for r in opening {
            out.send(r).await;
        }
        let stream = client
            .delta_aggregated_resources(ReceiverStream::new(rx))
            .await?;
        Ok((out, Inbound::Delta(stream.into_inner())))
    } else {
        let (tx, rx) = mpsc::channel(64);
        let out = Outbound::Sotw(tx);
        for r in opening {
            out.send(r).await;
        }
        let stream = client
            .stream_aggregated_resources(ReceiverStream::new(rx))
            .await?;
        Ok((out, Inbound::Sotw(stream.into_inner())))
    }
}

/// A stream's next message, or why the stream ended.
pub fn received<T>(msg: Result<Option<T>, tonic::Status>) -> Result<T, String> {
    match msg {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err("the server closed the stream".into()),
        Err(e) => Err(format!("{e}")),
    }
}

/// What a response of either stream made: counted and logged, a new configuration proposed
/// to the reconciler; returns the requests to send back (the ACK or NACK first).
pub fn settle(
    shared: &Shared,
    step: super::state::Step,
    version: &str,
    start: std::time::Instant,
) -> Vec<Request> {
    let node = shared.node.as_str();
    if let Some((kind, outcome)) = step.outcome {
        shared
            .stats
            .response(kind.label(), outcome, start.elapsed());
        shared.stats.ignored(&step.ignored);
        match (outcome, &step.detail) {
            ("nack", Some(d)) => {
                tracing::warn!(node, r#type = kind.label(), version, error = %d, "xDS response refused (NACK)")
            }
            (_, Some(d)) => {
                tracing::info!(node, r#type = kind.label(), version, waiting_for = %d, "xDS response accepted; the configuration is not complete yet")
            }
            _ => tracing::debug!(
                node,
                r#type = kind.label(),
                version,
                "xDS response accepted"
            ),
        }
    }
    if let Some(text) = step.publish {
        propose(node, text, version, &shared.events);
    }
    step.requests
}

fn propose(node: &str, text: Arc<str>, version: &str, events: &Sender<Event>) {
    tracing::info!(node, version, "xDS configuration complete; proposing it");
    let _ = events.send(Event::Xds(Update {
        node: node.to_owned(),
        text,
        version: version.to_owned(),
    }));
}

/// xorshift64*, seeded per node and start time: enough to spread reconnects.
pub struct Jitter(u64);

impl Jitter {
    pub fn new(node: &str) -> Jitter {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in node.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        Jitter((h ^ t) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// The wait after the `n`th failure in a row: uniform in [ceiling/2, ceiling], the
    /// ceiling doubling from the base up to the cap.
    pub fn backoff(&mut self, n: u32) -> Duration {
        let ceiling = BACKOFF_BASE
            .saturating_mul(1u32 << n.saturating_sub(1).min(16))
            .min(BACKOFF_CAP);
        let ms = ceiling.as_millis() as u64;
        let half = ms / 2;
        Duration::from_millis(half + self.next() % (ms - half + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let mut j = Jitter::new("n1");
        for n in 1..40u32 {
            let ceiling = BACKOFF_BASE
                .saturating_mul(1u32 << (n - 1).min(16))
                .min(BACKOFF_CAP);
            let w = j.backoff(n);
            assert!(
                w <= ceiling && w >= ceiling / 2,
                "{n}: {w:?} of {ceiling:?}"
            );
        }
        let waits: std::collections::BTreeSet<_> = (0..20).map(|_| j.backoff(30)).collect();
        assert!(waits.len() > 10, "jittered: {waits:?}");
    }
}
