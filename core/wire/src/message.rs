//! Every message of the protocol. JSON shapes (and which side sends what) are documented with
//! examples in `docs/control-protocol.md`; the two must change together.
//!
//! All enums are internally tagged (`"type": "snake_case_name"`) and every struct is closed
//! with `deny_unknown_fields`: an unknown message or field is a [`crate::WireError::Malformed`]
//! frame, never silently ignored. The one exception serde imposes: messages without fields
//! (`status`, `drain`, `ok`, `cli`…) ignore extra fields. Optional fields may be omitted.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::rollout::{
    GroupRate, Judgement, RolloutDecision, RolloutNode, RolloutSpec, RolloutStatus, Traffic,
};

/// A node's labels, or a selector (a node matches when it carries every pair), by key.
pub type Labels = BTreeMap<String, String>;

fn no_labels(l: &Labels) -> bool {
    l.is_empty()
}

/// One frame: a request or the reply to one. `id` pairs them: every request gets exactly one
/// reply carrying the same id. On the wire: `{"id":1,"request":{…}}` or `{"id":1,"reply":{…}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawFrame", into = "RawFrame")]
pub enum Frame {
    Request { id: u64, request: Request },
    Reply { id: u64, reply: Reply },
}

impl Frame {
    pub fn id(&self) -> u64 {
        match self {
            Frame::Request { id, .. } | Frame::Reply { id, .. } => *id,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFrame {
    id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request: Option<Request>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reply: Option<Reply>,
}

impl TryFrom<RawFrame> for Frame {
    type Error = String;
    fn try_from(raw: RawFrame) -> Result<Frame, String> {
        match (raw.request, raw.reply) {
            (Some(request), None) => Ok(Frame::Request {
                id: raw.id,
                request,
            }),
            (None, Some(reply)) => Ok(Frame::Reply { id: raw.id, reply }),
            (Some(_), Some(_)) => {
                Err("a frame has either \"request\" or \"reply\", not both".into())
            }
            (None, None) => Err("a frame needs \"request\" or \"reply\"".into()),
        }
    }
}

impl From<Frame> for RawFrame {
    fn from(f: Frame) -> RawFrame {
        match f {
            Frame::Request { id, request } => RawFrame {
                id,
                request: Some(request),
                reply: None,
            },
            Frame::Reply { id, reply } => RawFrame {
                id,
                request: None,
                reply: Some(reply),
            },
        }
    }
}

/// Who opened the connection, as said in [`Request::Hello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Peer {
    /// A ringside process: connecting to ctld, or (new process) to the old one during an upgrade.
    Proxy {
        node_id: String,
        /// `"sidecar"` or `"gateway"`.
        role: String,
        /// The ctld generation of the configuration it serves; 0 when it serves a
        /// configuration it did not receive from ctld (a file, the embedded default).
        generation: u64,
        /// The node's labels (`proxy.labels`, `--node-label`); selectors match them.
        #[serde(default, skip_serializing_if = "no_labels")]
        labels: Labels,
    },
    /// `ringsidectl` (or any operator tool).
    Cli,
}

/// How `Endpoints` edits a cluster's endpoint list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndpointOp {
    /// Replace the list with the given addresses.
    Set,
    /// Append the given addresses (each must not be there yet).
    Add,
    /// Remove the given addresses (each must be there).
    Remove,
}

/// One `CLUSTER=WEIGHT` of a `Weights` edit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightSpec {
    pub cluster: String,
    pub weight: u32,
}

/// A request. See `docs/control-protocol.md` for which side may send each one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// First request on every connection, from the side that connected.
    Hello { version: u32, peer: Peer },
    /// Any peer → proxy (reply `ProxyStatus`) or CLI → ctld (reply `CtldStatus`).
    Status,
    /// ctld → proxy, down the connection the proxy opened: serve this configuration.
    /// Reply `Ack` once it is published, `Error` if refused.
    PushConfig { generation: u64, config: String },
    /// CLI → proxy: drain and exit. Reply `Ok` when draining has begun.
    Drain,
    /// CLI → proxy: start `binary` with `args` and hand it the listening sockets.
    /// Reply `Upgraded` once the new process serves, `Error` otherwise.
    Upgrade {
        binary: String,
        #[serde(default)]
        args: Vec<String>,
    },
    /// New process → old process during an upgrade. Reply `Listeners`, with the fds attached.
    TakeListeners,
    /// New process → old process: it accepts on every listener. Old replies `Ok`, then drains.
    ReadyToServe,
    /// CLI → ctld: make `config` the configuration of `node` (every known node if absent).
    /// With `no_wait`, the reply comes once the change is committed (durable), without
    /// waiting for the nodes' acknowledgements.
    Apply {
        #[serde(default)]
        node: Option<String>,
        /// Instead of `node`: every known node whose labels match.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        selector: Option<Labels>,
        config: String,
        #[serde(default, skip_serializing_if = "is_false")]
        no_wait: bool,
    },
    /// CLI → ctld: what `Apply` with the same arguments would change. Reply `Diff`, whose
    /// text shows secrets as `[redacted]` unless `show_secrets`.
    Diff {
        #[serde(default)]
        node: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        selector: Option<Labels>,
        config: String,
        #[serde(default, skip_serializing_if = "is_false")]
        show_secrets: bool,
    },
    /// CLI → ctld: a node's current configuration, or one of its history. Reply `Config`.
    GetConfig {
        #[serde(default)]
        node: Option<String>,
        #[serde(default)]
        generation: Option<u64>,
    },
    /// CLI → ctld: a new generation with the content of generation `to` (default: the one
    /// before the current one). Reply `Applied`.
    Rollback {
        #[serde(default)]
        node: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        selector: Option<Labels>,
        #[serde(default)]
        to: Option<u64>,
    },
    /// CLI → ctld: edit one cluster's endpoints. Reply `Applied`.
    Endpoints {
        op: EndpointOp,
        cluster: String,
        addresses: Vec<String>,
        #[serde(default)]
        node: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        selector: Option<Labels>,
    },
    /// CLI → ctld: set the weights of a weighted route. `listener` disambiguates a route name
    /// used on several listeners. Reply `Applied`.
    Weights {
        route: String,
        #[serde(default)]
        listener: Option<String>,
        weights: Vec<WeightSpec>,
        #[serde(default)]
        node: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        selector: Option<Labels>,
    },
    /// CLI → proxy: the health of every cluster's endpoints (outlier ejection, active health
    /// checks). Reply `Health`.
    Health,
    /// CLI → proxy: the log filter (`level` absent), or a new one (`"debug"`,
    /// `"info,ringside_engine=debug"`). Reply `LogLevel`, or an error for a bad filter.
    LogLevel {
        #[serde(default)]
        level: Option<String>,
    },
    /// CLI → ctld: remove the operator's overrides (`endpoints`, `weights` edits) of `node`
    /// (every known node if absent): the one named `key` (as `ctld_status` lists them), or
    /// all of them. Reply `Applied`.
    ClearOverrides {
        #[serde(default)]
        node: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        selector: Option<Labels>,
        #[serde(default)]
        key: Option<String>,
    },
    /// CLI → ctld: start a progressive rollout of `spec.config` (docs/ctld-rollout.md).
    /// Reply `Rollout` once the first step is committed.
    RolloutStart(RolloutSpec),
    /// CLI → ctld: the current (or last) rollout. Reply `Rollout`.
    RolloutStatus,
    /// CLI → ctld: hold the rollout at its step (no promotion, no judgement). Reply `Rollout`.
    RolloutPause,
    /// CLI → ctld: continue a paused rollout with a fresh window. Reply `Rollout`.
    RolloutResume,
    /// CLI → ctld: stop the rollout and give every node it changed its generation from
    /// before the rollout (as a new generation). Reply `Rollout`.
    RolloutAbort,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Request {
    /// The snake_case name of the request, as in its `"type"` field (for logs and errors).
    pub fn name(&self) -> &'static str {
        match self {
            Request::Hello { .. } => "hello",
            Request::Status => "status",
            Request::PushConfig { .. } => "push_config",
            Request::Drain => "drain",
            Request::Upgrade { .. } => "upgrade",
            Request::TakeListeners => "take_listeners",
            Request::ReadyToServe => "ready_to_serve",
            Request::Apply { .. } => "apply",
            Request::Diff { .. } => "diff",
            Request::GetConfig { .. } => "get_config",
            Request::Rollback { .. } => "rollback",
            Request::Endpoints { .. } => "endpoints",
            Request::Weights { .. } => "weights",
            Request::Health => "health",
            Request::LogLevel { .. } => "log_level",
            Request::ClearOverrides { .. } => "clear_overrides",
            Request::RolloutStart(_) => "rollout_start",
            Request::RolloutStatus => "rollout_status",
            Request::RolloutPause => "rollout_pause",
            Request::RolloutResume => "rollout_resume",
            Request::RolloutAbort => "rollout_abort",
        }
    }
}

/// A reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Reply {
    /// The handshake succeeded. `server` names the software, e.g. `"ringside-ctld 0.1.0"`.
    HelloOk { version: u32, server: String },
    /// Done, nothing to report.
    Ok,
    /// The request failed. `message` is one line; `errors` lists configuration errors, each
    /// `path: message` (as `ringside check` prints them), when there are any.
    Error {
        message: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        errors: Vec<String>,
    },
    /// A proxy's state.
    ProxyStatus(ProxyStatus),
    /// ctld's view of every node.
    CtldStatus(CtldStatus),
    /// The outcome of `Apply`, `Rollback`, `Endpoints` or `Weights`, one entry per target node.
    Applied { nodes: Vec<NodeApplied> },
    /// A readable line diff (unified format); empty when nothing would change.
    Diff { text: String },
    /// One configuration of one node.
    Config {
        node: String,
        generation: u64,
        config: String,
    },
    /// The proxy serves `generation` (reply to `PushConfig`). `pending_restart` names the
    /// keys of it that wait for a restart (`proxy.workers`…): the process still runs with
    /// the values it started with. Protocol version 2; never sent to a version 1 peer.
    Ack {
        generation: u64,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pending_restart: Vec<String>,
    },
    /// Reply to `TakeListeners`; the fds travel as SCM_RIGHTS ancillary data, in this order:
    /// one per element of `listeners`, then the control socket's if `control_socket`.
    Listeners {
        listeners: Vec<ListenerFd>,
        #[serde(default)]
        control_socket: bool,
    },
    /// Reply to `Upgrade`: the new process is serving, the old one drains.
    Upgraded { old_pid: u32, new_pid: u32 },
    /// Reply to `Health`: every cluster of the served configuration, in its order.
    Health { clusters: Vec<ClusterHealth> },
    /// Reply to the `rollout_*` requests: the current rollout, else the last one (None when
    /// there never was one).
    Rollout { rollout: Option<Box<RolloutStatus>> },
    /// Reply to `LogLevel`: the filter in force (after the change, if one was asked).
    LogLevel { level: String },
}

impl Reply {
    /// Shorthand for an error reply without configuration errors.
    pub fn error(message: impl Into<String>) -> Reply {
        Reply::Error {
            message: message.into(),
            errors: Vec::new(),
        }
    }

    /// An `Ack` of `generation` with no key waiting for a restart.
    pub fn ack(generation: u64) -> Reply {
        Reply::Ack {
            generation,
            pending_restart: Vec::new(),
        }
    }

    /// Turns `Error` into [`crate::WireError::Remote`], passing every other reply through.
    pub fn check(self) -> Result<Reply, crate::WireError> {
        match self {
            Reply::Error { message, errors } => Err(crate::WireError::Remote { message, errors }),
            other => Ok(other),
        }
    }

    /// The snake_case name of the reply, as in its `"type"` field.
    pub fn name(&self) -> &'static str {
        match self {
            Reply::HelloOk { .. } => "hello_ok",
            Reply::Ok => "ok",
            Reply::Error { .. } => "error",
            Reply::ProxyStatus(_) => "proxy_status",
            Reply::CtldStatus(_) => "ctld_status",
            Reply::Applied { .. } => "applied",
            Reply::Diff { .. } => "diff",
            Reply::Config { .. } => "config",
            Reply::Ack { .. } => "ack",
            Reply::Listeners { .. } => "listeners",
            Reply::Upgraded { .. } => "upgraded",
            Reply::Health { .. } => "health",
            Reply::Rollout { .. } => "rollout",
            Reply::LogLevel { .. } => "log_level",
        }
    }
}

/// One listening socket handed over during an upgrade. Each worker has its own
/// `SO_REUSEPORT` socket per listener, so a listener appears once per worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerFd {
    pub name: String,
    /// The bound address, `IP:port` (the real port when the config said port 0).
    pub address: String,
    pub worker: usize,
}

/// A proxy's state, the reply to `Status` sent to a proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyStatus {
    /// Absent when the proxy was started without a node id.
    #[serde(default)]
    pub node_id: Option<String>,
    /// The node's labels.
    #[serde(default, skip_serializing_if = "no_labels")]
    pub labels: Labels,
    /// Request counters since the process started (what a rollout judges by).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<Traffic>,
    pub role: String,
    /// The ctld generation served, 0 when the configuration did not come from ctld.
    pub generation: u64,
    /// The served configuration's content hash, 16 lowercase hex digits.
    pub config_hash: String,
    /// `"io_uring"` or `"epoll"`.
    pub driver: String,
    pub workers: usize,
    pub listeners: Vec<ListenerStatus>,
    /// Open downstream connections, all workers together.
    pub connections: u64,
    pub draining: bool,
    pub ctld_connected: bool,
    pub uptime_s: u64,
    pub pid: u32,
}

/// One cluster of a [`Reply::Health`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterHealth {
    pub name: String,
    /// Endpoints ejected by outlier detection since the cluster appeared.
    pub ejections: u64,
    /// Requests sent while no endpoint was in rotation (panic mode).
    pub panic_requests: u64,
    /// In configuration order.
    pub endpoints: Vec<EndpointHealth>,
}

/// One endpoint of a [`ClusterHealth`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointHealth {
    /// `IP:port`.
    pub address: String,
    /// `"healthy"`, `"down"` (by configuration), `"ejected"` (by outlier detection) or
    /// `"unhealthy"` (failing its checks).
    pub health: String,
    /// Milliseconds of ejection left (0: not ejected).
    pub ejected_ms: u64,
    /// The ejection multiplier as it stands.
    pub times_ejected: u32,
    /// The active check's verdict (`"unknown"`, `"healthy"`, `"unhealthy"`); absent when the
    /// cluster has no health check.
    #[serde(default)]
    pub check: Option<String>,
}

/// One listener of a [`ProxyStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerStatus {
    pub name: String,
    /// The bound address, `IP:port`.
    pub address: String,
    /// `"http"` or `"tcp"`.
    pub protocol: String,
}

/// ctld's state, the reply to `Status` sent to ctld.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CtldStatus {
    /// Every known node, sorted by id.
    pub nodes: Vec<NodeStatus>,
    /// Files of the config directory that were rejected (and so are not in force).
    pub config_dir_errors: Vec<FileErrors>,
}

/// One node as ctld knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeStatus {
    pub node_id: String,
    /// From the node's last hello; absent if it never connected.
    #[serde(default)]
    pub role: Option<String>,
    /// From the node's last hello (kept in the state directory).
    #[serde(default, skip_serializing_if = "no_labels")]
    pub labels: Labels,
    /// The rollout holding this node, when one is under way: `"new"` (serves the rolled-out
    /// configuration) or `"old"` (waits for a later step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<String>,
    pub connected: bool,
    /// The node's current generation in ctld (0: ctld has no configuration for it).
    pub generation_desired: u64,
    /// The generation the node last acknowledged (or reported in its hello).
    #[serde(default)]
    pub generation_acked: Option<u64>,
    /// When it did, in seconds since the Unix epoch.
    #[serde(default)]
    pub acked_at: Option<u64>,
    /// The last push failure (refusal, timeout), cleared by the next acknowledgement.
    #[serde(default)]
    pub last_error: Option<String>,
    /// Who set the node's configuration (its base): `file web-1.toml`, `file default.toml`,
    /// `apply`, `rollback to 3`. Absent while it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The operator's overrides layered on the base, by key: `endpoints api`,
    /// `weights inbound/api`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<String>,
    /// Keys of the acknowledged configuration that wait for the node's restart (from its
    /// last `ack`). Protocol version 2; never sent to a version 1 peer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_restart: Vec<String>,
    /// Connected processes of the node (two during a hot upgrade).
    #[serde(default)]
    pub sessions: u32,
    /// The last status (stats) each connected process reported, as ctld polls it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<ProxyStatus>,
}

/// A rejected file of ctld's config directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileErrors {
    pub file: String,
    pub errors: Vec<String>,
}

/// What a configuration change did to one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeApplied {
    pub node: String,
    /// The node's generation after the change.
    pub generation: u64,
    /// False when the content was identical to the current one (no new generation).
    pub changed: bool,
    pub outcome: PushOutcome,
}

/// Whether a node serves a new generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum PushOutcome {
    /// The node acknowledged the generation (or already served it).
    Acked,
    /// The generation is committed (durable); nobody waited for the node (`no_wait`).
    Committed,
    /// The node is not connected; it receives the generation when it connects.
    NotConnected,
    /// The node refused the configuration; it keeps its previous one. ctld retries with
    /// backoff.
    Refused { message: String },
    /// The node did not answer within the deadline. Its answer is still taken when it comes,
    /// and it is pushed the latest generation then.
    TimedOut { message: String },
    /// Anything else: the node disconnected before answering, the state directory failed.
    Failed { message: String },
}

impl PushOutcome {
    /// Acked, committed or not connected: nothing went wrong.
    pub fn is_ok(&self) -> bool {
        matches!(
            self,
            PushOutcome::Acked | PushOutcome::Committed | PushOutcome::NotConnected
        )
    }
}

#[cfg(test)]
mod tests;
