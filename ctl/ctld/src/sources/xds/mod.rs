//! The xDS source: `ringside-ctld --xds http://HOST:PORT` (or `https://`, `tls.rs`) takes every node's listeners,
//! routes and clusters from an xDS management server (istiod, Envoy Gateway, any
//! go-control-plane server), as istio-agent does for Envoy: the proxies keep their Unix
//! socket protocol and never speak gRPC.
//!
//! - One thread (`xds`) with its own current-thread tokio runtime, as the proxy's DNS thread
//!   has; tonic and prost live in ctld only.
//! - One ADS stream (state of the world, or incremental with `--xds-delta`) per node ctld
//!   knows (`client.rs`), with the node's
//!   id (or `--xds-node-id` made of it), `--xds-cluster` and `--xds-metadata` as an Istio
//!   sidecar sends them.
//! - With `--xds-sds PATH`, a second stream per node to the local SDS server on that Unix
//!   socket (istio-agent's) for the secrets Istio's resources name by its `sds-grpc`
//!   cluster (`local_sds.rs`).
//! - Each response is translated (`translate/`), checked (`state.rs`: ACK, or NACK naming the
//!   resource and the field, `nack.rs`; filters that only feed Envoy's telemetry are
//!   ignored and counted, `ignore.rs`), laid after the node's file as a template (its
//!   `[proxy]`, `[dns]`, `[mesh]`...), validated as a file is, and proposed to the reconciler
//!   as the node's base ([`Update`] → `Event::Xds`): persisted and pushed like any other.
//!
//! The reconciler tells this thread which nodes exist and their templates through a
//! [`watch`] channel; a node forgotten ends its stream. docs/xds.md is the user's guide.

pub mod client;
pub mod ignore;
pub mod local_sds;
pub mod nack;
pub mod state;
pub mod stats;
pub mod tls;
pub mod translate;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crossbeam_channel::Sender;
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::google::protobuf::{value::Kind as ValueKind, Struct, Value};
use tokio::sync::watch;

pub use stats::Stats;

use crate::reconciler::Event;

/// Each known node's template: the text of its file (its own or `default.toml`), if any.
pub type Templates = BTreeMap<String, Option<Arc<str>>>;

/// The name an xDS base is recorded under as the node's "file" (`persist::FileSeen`, with
/// the hash of its text): a new proposal is applied when that hash changes.
pub const SOURCE_NAME: &str = "xds";

/// Validation errors of a config-dir file as a template: the file as the xDS source uses it
/// (without its listeners, routes, clusters and authz), with one listener standing for
/// those xDS gives.
pub fn template_errors(text: &str) -> Vec<String> {
    let stand_in = "[[listeners]]\nname = \"xds\"\nbind = \"127.0.0.1:0\"\n";
    match ringside_config::parse(&translate::compose(Some(text), stand_in)) {
        Ok(_) => Vec::new(),
        Err(errs) => errs.0.iter().map(ToString::to_string).collect(),
    }
}

/// `--xds` and its companions.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `http://host:port` or `https://host:port`.
    pub address: String,
    /// With `https://`: the server's verification and the client certificate (`tls.rs`).
    pub tls: Option<tonic::transport::ClientTlsConfig>,
    /// The xDS node id, `{node}` replaced by the ringside node id.
    pub node_id: String,
    /// The xDS node's cluster.
    pub cluster: String,
    /// The xDS node's metadata (string values).
    pub metadata: Vec<(String, String)>,
    /// Incremental xDS (`DeltaAggregatedResources`) rather than state of the world.
    pub delta: bool,
    /// The local SDS server's Unix socket (`--xds-sds`, istio-agent's).
    pub sds: Option<std::path::PathBuf>,
}

impl Settings {
    /// The `Node` sent on `node`'s stream.
    pub fn xds_node(&self, node: &str) -> Node {
        let mut fields: HashMap<String, Value> = self
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), string_value(v)))
            .collect();
        fields
            .entry("RINGSIDE_NODE_ID".into())
            .or_insert_with(|| string_value(node));
        Node {
            id: self.node_id.replace("{node}", node),
            cluster: self.cluster.clone(),
            metadata: Some(Struct { fields }),
            user_agent_name: "ringside-ctld".into(),
            user_agent_version_type: Some(
                envoy_types::pb::envoy::config::core::v3::node::UserAgentVersionType::UserAgentVersion(
                    env!("CARGO_PKG_VERSION").into(),
                ),
            ),
            ..Node::default()
        }
    }
}

fn string_value(s: &str) -> Value {
    Value {
        kind: Some(ValueKind::StringValue(s.to_owned())),
    }
}

/// A node's new configuration from xDS, validated.
#[derive(Debug, Clone)]
pub struct Update {
    pub node: String,
    pub text: Arc<str>,
    /// The version of the response that completed it (for the history's source line).
    pub version: String,
}

/// Starts the xDS thread: one stream per node of `templates`, started and ended as nodes
/// come and go.
pub fn spawn(
    settings: Settings,
    templates: watch::Receiver<Templates>,
    events: Sender<Event>,
    stats: Arc<Stats>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("xds".into())
        .spawn(move || runtime.block_on(supervise(Arc::new(settings), templates, events, stats)))
}

async fn supervise(
    settings: Arc<Settings>,
    mut templates: watch::Receiver<Templates>,
    events: Sender<Event>,
    stats: Arc<Stats>,
) {
    let mut tasks: BTreeMap<String, tokio::task::JoinHandle<()>> = BTreeMap::new();
    loop {
        let nodes: Vec<String> = templates.borrow_and_update().keys().cloned().collect();
        tasks.retain(|node, task| {
            let keep = nodes.contains(node);
            if !keep {
                tracing::info!(node, "node forgotten: its xDS stream ends");
                task.abort();
                stats.forget(node);
            }
            keep
        });
        for node in nodes {
            if tasks.contains_key(&node) {
                continue;
            }
            let task = tokio::spawn(client::run(
                node.clone(),
                settings.clone(),
                templates.clone(),
                events.clone(),
                stats.clone(),
            ));
            tasks.insert(node, task);
        }
        if templates.changed().await.is_err() {
            return;
        }
    }
}
