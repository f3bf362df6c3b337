//! The local SDS stream (`--xds-sds PATH`): the secrets a node's TLS contexts name with
//! `sds_config` → `envoy_grpc { cluster_name: "sds-grpc" }`, which an Istio sidecar's
//! bootstrap points at istio-agent's Unix socket, asked of the SDS server on that socket
//! (`SecretDiscoveryService.StreamSecrets`, state of the world), as Envoy asks istio-agent.
//!
//! One task per node, beside its ADS stream (`client.rs`), sharing its `NodeState`: the ADS
//! responses decide which names to ask for ([`Shared::local_names`]); each response of this
//! stream is checked with the rest of the configuration and ACKed or NACKed here
//! (`NodeState::on_local`). No stream is open while no secret is needed from it. A failed
//! stream is opened again with the ADS stream's backoff; the node keeps its configuration
//! meanwhile, and the ADS stream does not depend on this one (a certificate rotated by
//! istio-agent is applied while istiod is away, once this process had the names from ADS;
//! after a restart without istiod, nothing is asked until ADS answers).

use std::path::Path;
use std::sync::Arc;

use envoy_types::pb::envoy::service::secret::v3::secret_discovery_service_client::SecretDiscoveryServiceClient;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint, Uri};

use super::client::{received, settle, Jitter, Shared, CONNECT_TIMEOUT, MAX_RESPONSE};
use super::state::Request;

/// Runs the node's local SDS stream until the task is aborted.
pub async fn run(shared: Arc<Shared>, mut names: watch::Receiver<Vec<String>>) {
    let mut rng = Jitter::new(&shared.node);
    let mut failures = 0u32;
    loop {
        while names.borrow_and_update().is_empty() {
            if names.changed().await.is_err() {
                return;
            }
        }
        let (answered, error) = stream(&shared, &mut names).await;
        if names.borrow().is_empty() {
            // Ended because nothing is needed from it any more.
            failures = 0;
            continue;
        }
        if answered {
            failures = 0;
        }
        failures = failures.saturating_add(1);
        let wait = rng.backoff(failures);
        tracing::warn!(node = shared.node, error = %error, retry_in = ?wait,
            "local SDS stream ended; the node keeps its configuration");
        tokio::time::sleep(wait).await;
    }
}

/// One stream, until it fails or no name is left to ask for: whether any response came,
/// and why it ended.
async fn stream(shared: &Shared, names: &mut watch::Receiver<Vec<String>>) -> (bool, String) {
    let node = shared.node.as_str();
    let Some(path) = shared.settings.sds.as_deref() else {
        return (false, "no --xds-sds".into());
    };
    let channel = match connect(path).await {
        Ok(c) => c,
        Err(e) => {
            return (
                false,
                format!(
                    "cannot connect to {}: {}",
                    path.display(),
                    super::tls::chain(&e)
                ),
            )
        }
    };
    let mut client =
        SecretDiscoveryServiceClient::new(channel).max_decoding_message_size(MAX_RESPONSE);
    let (tx, rx) = mpsc::channel(16);
    names.borrow_and_update();
    let opening = shared.state().local_request(true);
    if tx.send(opening).await.is_err() {
        return (false, "the request stream closed".into());
    }
    let mut inbound = match client.stream_secrets(ReceiverStream::new(rx)).await {
        Ok(s) => s.into_inner(),
        Err(e) => return (false, format!("stream refused: {}", super::tls::chain(&e))),
    };
    tracing::info!(node, socket = %path.display(), "local SDS stream open");
    let mut answered = false;
    loop {
        tokio::select! {
            msg = inbound.message() => {
                let resp = match received(msg) {
                    Ok(r) => r,
                    Err(why) => return (answered, why),
                };
                answered = true;
                let version = resp.version_info.clone();
                let start = std::time::Instant::now();
                let step = shared.state().on_local(resp);
                for r in settle(shared, step, &version, start) {
                    // `on_local` answers in this stream's protocol only.
                    let Request::Sotw(r) = r else { continue };
                    if tx.send(r).await.is_err() {
                        return (answered, "the request stream closed".into());
                    }
                }
            }
            changed = names.changed() => {
                if changed.is_err() {
                    return (answered, "ctld is stopping".into());
                }
                if names.borrow_and_update().is_empty() {
                    return (answered, "no secret is needed from it".into());
                }
                let r = shared.state().local_request(false);
                if tx.send(r).await.is_err() {
                    return (answered, "the request stream closed".into());
                }
            }
        }
    }
}

/// A gRPC channel over the Unix socket at `path` (the URI's authority is not used).
async fn connect(path: &Path) -> Result<Channel, tonic::transport::Error> {
    let path = path.to_owned();
    Endpoint::from_static("http://localhost")
        .connect_timeout(CONNECT_TIMEOUT)
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                let unix = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(unix))
            }
        }))
        .await
}
