//! One node's side of the ADS conversation, without I/O: what to ask for, and what each
//! response makes (an ACK or a NACK, a new configuration to propose, new subscriptions).
//!
//! Subscriptions follow Envoy's order: CDS and LDS are asked for at once (wildcard); EDS
//! for the clusters CDS named, RDS for the route configurations LDS named, SDS for the secrets
//! both name (`Secret`: certificates and CAs of TLS contexts), each re-asked when
//! that set changes. Each response is state of the world for its type: its resources replace
//! that type's. A response is ACKed when each of its resources translates and the
//! configuration they make with the others passes ringside's validation, or waits for a
//! resource not received yet; it is NACKed otherwise (`error_detail` names the resource and
//! the field, or the validation's path and reason), and the previous resources stay.
//!
//! Secrets of the local SDS server (istio-agent's socket, `--xds-sds`; see
//! `translate/secrets.rs`) arrive on a stream of their own ([`NodeState::on_local`]):
//! state of the world, answered and checked as an ADS response is, into the same
//! configuration.
//!
//! Incremental (delta) xDS (`--xds-delta`) carries the same conversation in other messages:
//! a response names the resources that changed and those removed; the node keeps the
//! accepted resources of each type by name, applies the change to a copy, and checks the
//! whole set of that type exactly as a state-of-the-world response (so both protocols share
//! one path); the copy replaces the kept set on ACK only. Subscriptions change by names
//! added and removed, and a new stream says which versions the node has.

use std::collections::BTreeMap;
use std::sync::Arc;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use envoy_types::pb::google::protobuf::Any;
use envoy_types::pb::google::rpc::Status;
use prost::{Message, Name};

use super::translate::{self, listeners::RouteSource, Built, Translated};

/// The five resource types, in the order Envoy subscribes to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Cds,
    Eds,
    Lds,
    Rds,
    Sds,
}

impl Kind {
    pub const ALL: [Kind; 5] = [Kind::Cds, Kind::Eds, Kind::Lds, Kind::Rds, Kind::Sds];

    pub fn type_url(self) -> String {
        match self {
            Kind::Cds => Cluster::type_url(),
            Kind::Eds => ClusterLoadAssignment::type_url(),
            Kind::Lds => Listener::type_url(),
            Kind::Rds => RouteConfiguration::type_url(),
            Kind::Sds => Secret::type_url(),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Kind::Cds => "cds",
            Kind::Eds => "eds",
            Kind::Lds => "lds",
            Kind::Rds => "rds",
            Kind::Sds => "sds",
        }
    }

    fn of(type_url: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.type_url() == type_url)
    }

    /// Wildcard types are asked for with no names.
    fn wildcard(self) -> bool {
        matches!(self, Kind::Cds | Kind::Lds)
    }
}

/// A request on the stream, in its protocol.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Sotw(DiscoveryRequest),
    Delta(DeltaDiscoveryRequest),
}

/// A response from the stream, in its protocol.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    Sotw(DiscoveryResponse),
    Delta(DeltaDiscoveryResponse),
}

impl Response {
    /// The version the server gives the response (logs, the configuration's history).
    pub fn version(&self) -> &str {
        match self {
            Response::Sotw(r) => &r.version_info,
            Response::Delta(r) => &r.system_version_info,
        }
    }
}

/// What one response makes.
#[derive(Debug, Default)]
pub struct Step {
    /// To send, in order: the ACK or NACK, then any changed subscription.
    pub requests: Vec<Request>,
    /// A new configuration (the node's template and the xDS sections), validated.
    pub publish: Option<Arc<str>>,
    /// `(type, "ack" | "nack")`.
    pub outcome: Option<(Kind, &'static str)>,
    /// The NACK's error_detail, or what the configuration waits for.
    pub detail: Option<String>,
    /// Ignored filters and fields of the accepted resources, one entry per occurrence.
    pub ignored: Vec<String>,
}

#[derive(Debug, Default, Clone)]
struct Sub {
    /// Last accepted version and last nonce seen.
    version: String,
    nonce: String,
    names: Vec<String>,
}

pub struct NodeState {
    node: Node,
    /// Incremental xDS rather than state of the world.
    delta: bool,
    res: Translated,
    /// Delta only: the accepted resources of each type, by name, with their versions.
    raw: BTreeMap<Kind, BTreeMap<String, (String, Any)>>,
    subs: BTreeMap<Kind, Sub>,
    template: Option<Arc<str>>,
    /// The last configuration published.
    published: Option<Arc<str>>,
    /// The xDS sections last built (the template is laid before them).
    built: Option<String>,
    /// Whether ctld has a local SDS server (`--xds-sds`).
    local_sds: bool,
    /// The local SDS stream's subscription (the names of the secrets it serves).
    local: Sub,
}

impl NodeState {
    pub fn new(node: Node, template: Option<Arc<str>>, delta: bool) -> NodeState {
        NodeState {
            node,
            delta,
            res: Translated::default(),
            raw: BTreeMap::new(),
            subs: BTreeMap::new(),
            template,
            published: None,
            built: None,
            local_sds: false,
            local: Sub::default(),
        }
    }

    /// With a local SDS server (`--xds-sds`): secrets whose `sds_config` names
    /// `sds-grpc` are asked of it; without, they are refused (NACK).
    pub fn with_local_sds(mut self, on: bool) -> NodeState {
        self.local_sds = on;
        self
    }

    /// The names of the secrets the local SDS stream is to ask for.
    pub fn local_names(&self) -> &[String] {
        &self.local.names
    }

    /// The request that opens the local SDS stream, or asks for a changed set of names:
    /// the names, with the version accepted last.
    pub fn local_request(&mut self, opening: bool) -> DiscoveryRequest {
        if opening {
            self.local.nonce.clear();
        }
        request(&self.node, Kind::Sds, &self.local, None)
    }

    /// A response of the local SDS stream: every secret it serves now, checked with the
    /// rest of the configuration, then ACKed or NACKed on that stream.
    pub fn on_local(&mut self, resp: DiscoveryResponse) -> Step {
        let kind = Kind::Sds;
        self.local.nonce = resp.nonce;
        let mut next = self.res.clone();
        let applied = if resp.type_url == kind.type_url() {
            secrets_of(&resp.resources).and_then(|secrets| {
                next.secrets.local = secrets;
                self.check(&next, kind)
            })
        } else {
            Err(format!(
                "type {} on the SDS stream: only {} is",
                resp.type_url,
                kind.type_url()
            ))
        };
        let mut step = Step::default();
        match applied {
            Ok((built, publish)) => {
                self.local.version = resp.version_info;
                step.requests
                    .push(Request::Sotw(request(&self.node, kind, &self.local, None)));
                step.outcome = Some((kind, "ack"));
                self.accept(next, built, publish, &mut step);
            }
            Err(e) => {
                step.requests.push(Request::Sotw(request(
                    &self.node,
                    kind,
                    &self.local,
                    Some(e.clone()),
                )));
                step.outcome = Some((kind, "nack"));
                step.detail = Some(e);
            }
        }
        step
    }

    /// Keeps `next`, accepted, and what it built.
    fn accept(&mut self, next: Translated, built: Built, publish: Option<String>, step: &mut Step) {
        self.res = next;
        match built {
            Built::Ready(xds) => {
                self.built = Some(xds);
                step.publish = publish.and_then(|t| self.publish(t));
            }
            Built::Waiting(w) | Built::Missing(w) => step.detail = Some(w),
        }
    }

    /// The requests that open a stream: every subscription, with the versions accepted on
    /// earlier streams (a server may then skip what the node has).
    pub fn opening(&mut self) -> Vec<Request> {
        for k in [Kind::Cds, Kind::Lds] {
            self.subs.entry(k).or_default();
        }
        let mut out = Vec::new();
        for (k, s) in &mut self.subs {
            s.nonce.clear();
            if !k.wildcard() && s.names.is_empty() {
                continue;
            }
            out.push(if self.delta {
                let has = self.raw.get(k).into_iter().flatten();
                Request::Delta(DeltaDiscoveryRequest {
                    node: Some(self.node.clone()),
                    type_url: k.type_url(),
                    // None for a wildcard type: Envoy's "legacy" wildcard subscription.
                    resource_names_subscribe: if k.wildcard() {
                        Vec::new()
                    } else {
                        s.names.clone()
                    },
                    initial_resource_versions: has
                        .map(|(name, (v, _))| (name.clone(), v.clone()))
                        .collect(),
                    ..DeltaDiscoveryRequest::default()
                })
            } else {
                Request::Sotw(request(&self.node, *k, s, None))
            });
        }
        out
    }

    /// A response of either protocol.
    pub fn on(&mut self, resp: Response) -> Step {
        match resp {
            Response::Sotw(r) => self.on_response(r),
            Response::Delta(r) => self.on_delta(r),
        }
    }

    /// An incremental response: its changes applied to a copy of the type's resources, the
    /// whole set then checked as a state-of-the-world response; the copy is kept on ACK.
    pub fn on_delta(&mut self, resp: DeltaDiscoveryResponse) -> Step {
        let Some(kind) = Kind::of(&resp.type_url) else {
            return self.unknown_type(resp.type_url, resp.nonce);
        };
        let mut next = self.raw.get(&kind).cloned().unwrap_or_default();
        for name in &resp.removed_resources {
            next.remove(name);
        }
        for r in resp.resources {
            match r.resource {
                Some(any) => {
                    next.insert(r.name, (r.version, any));
                }
                // A name the server has no resource for.
                None => {
                    next.remove(&r.name);
                }
            }
        }
        let all: Vec<Any> = next.values().map(|(_, any)| any.clone()).collect();
        let step = self.apply(kind, &all, resp.nonce, resp.system_version_info);
        if step.outcome == Some((kind, "ack")) {
            self.raw.insert(kind, next);
        }
        step
    }

    /// NACKs a response of a type ctld never asked for, so the server knows.
    fn unknown_type(&self, type_url: String, nonce: String) -> Step {
        let error = format!("type {type_url} is not supported by ringside");
        let r = if self.delta {
            Request::Delta(DeltaDiscoveryRequest {
                node: Some(self.node.clone()),
                type_url,
                response_nonce: nonce,
                error_detail: Some(status(error)),
                ..DeltaDiscoveryRequest::default()
            })
        } else {
            let mut r = request(&self.node, Kind::Cds, &Sub::default(), Some(error));
            r.type_url = type_url;
            r.response_nonce = nonce;
            Request::Sotw(r)
        };
        Step {
            requests: vec![r],
            ..Step::default()
        }
    }

    /// The ACK or NACK of the last response of `kind`.
    fn answer(&self, kind: Kind, error: Option<String>) -> Request {
        let sub = self.subs.get(&kind).cloned().unwrap_or_default();
        if self.delta {
            Request::Delta(DeltaDiscoveryRequest {
                node: Some(self.node.clone()),
                type_url: kind.type_url(),
                response_nonce: sub.nonce,
                error_detail: error.map(status),
                ..DeltaDiscoveryRequest::default()
            })
        } else {
            Request::Sotw(request(&self.node, kind, &sub, error))
        }
    }

    /// The node's template changed: the configuration is made again.
    pub fn set_template(&mut self, template: Option<Arc<str>>) -> Option<Result<Arc<str>, String>> {
        if self.template == template {
            return None;
        }
        self.template = template;
        let built = self.built.clone()?;
        match self.compose(&built) {
            Ok(text) => self.publish(text).map(Ok),
            Err(e) => Some(Err(e)),
        }
    }

    /// A state-of-the-world response.
    pub fn on_response(&mut self, resp: DiscoveryResponse) -> Step {
        let Some(kind) = Kind::of(&resp.type_url) else {
            return self.unknown_type(resp.type_url, resp.nonce);
        };
        self.apply(kind, &resp.resources, resp.nonce, resp.version_info)
    }

    /// `resources`, every resource of `kind` now: translated, checked with the others, and
    /// answered.
    fn apply(&mut self, kind: Kind, resources: &[Any], nonce: String, version: String) -> Step {
        let mut step = Step::default();
        let mut next = self.res.clone();
        let mut ignored = Vec::new();
        let applied = replace(&mut next, kind, resources, &mut ignored)
            .and_then(|()| self.check(&next, kind));
        let sub = self.subs.entry(kind).or_default();
        sub.nonce = nonce;
        match applied {
            Ok((built, publish)) => {
                sub.version = version;
                step.requests.push(self.answer(kind, None));
                step.outcome = Some((kind, "ack"));
                step.ignored = ignored;
                self.accept(next, built, publish, &mut step);
                step.requests.extend(self.resubscribe());
            }
            Err(e) => {
                step.requests.push(self.answer(kind, Some(e.clone())));
                step.outcome = Some((kind, "nack"));
                step.detail = Some(e);
            }
        }
        step
    }

    /// Builds and validates what `next` makes. `Ok((Ready, Some(text)))`: a configuration
    /// to publish; `Ok((Waiting|Missing, None))`: accepted, incomplete. A missing cluster is
    /// an error when the resources naming it are the ones that arrived.
    fn check(&self, next: &Translated, kind: Kind) -> Result<(Built, Option<String>), String> {
        if !self.local_sds {
            if let Some((at, name)) = next.first_local_secret() {
                return Err(format!(
                    "{at}: secret {name:?} comes from the SDS server {:?} (istio-agent's), and \
                     ringside-ctld has no --xds-sds (its socket)",
                    translate::secrets::LOCAL_CLUSTER
                ));
            }
        }
        match translate::build(next)? {
            Built::Ready(xds) => {
                let text = self.compose(&xds)?;
                Ok((Built::Ready(xds), Some(text)))
            }
            Built::Missing(m) if matches!(kind, Kind::Lds | Kind::Rds) => Err(m),
            other => Ok((other, None)),
        }
    }

    /// The template and the xDS sections, validated as a file is.
    fn compose(&self, xds: &str) -> Result<String, String> {
        let text = translate::compose(self.template.as_deref(), xds);
        match ringside_config::parse(&text) {
            Ok(_) => Ok(text),
            Err(errs) => Err(format!(
                "the configuration is refused by ringside's validation: {}",
                errs.0
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
        }
    }

    fn publish(&mut self, text: String) -> Option<Arc<str>> {
        if self.published.as_deref() == Some(text.as_str()) {
            return None;
        }
        let text: Arc<str> = text.into();
        self.published = Some(text.clone());
        Some(text)
    }

    /// EDS, RDS and SDS requests for a changed set of names.
    fn resubscribe(&mut self) -> Vec<Request> {
        let mut eds: Vec<String> = self
            .res
            .clusters
            .values()
            .filter_map(|c| c.eds.clone())
            .collect();
        eds.sort();
        eds.dedup();
        let mut rds: Vec<String> = self
            .res
            .listeners
            .values()
            .flat_map(|l| l.chains())
            .filter_map(|c| match &c.routes {
                RouteSource::Rds(n) => Some(n.clone()),
                _ => None,
            })
            .collect();
        rds.sort();
        rds.dedup();
        let secret_names = self.res.secret_names();
        let sds = secret_names.ads;
        self.local.names = secret_names.local;
        let mut out = Vec::new();
        for (k, names) in [(Kind::Eds, eds), (Kind::Rds, rds), (Kind::Sds, sds)] {
            let sub = self.subs.entry(k).or_default();
            if sub.names == names {
                continue;
            }
            let old = std::mem::replace(&mut sub.names, names.clone());
            if !self.delta {
                out.push(Request::Sotw(request(&self.node, k, sub, None)));
                continue;
            }
            let added: Vec<String> = names.iter().filter(|n| !old.contains(n)).cloned().collect();
            let gone: Vec<String> = old.into_iter().filter(|n| !names.contains(n)).collect();
            // What the node no longer asks for is forgotten: a server says nothing more of it.
            for n in &gone {
                if let Some(kept) = self.raw.get_mut(&k) {
                    kept.remove(n);
                }
                forget(&mut self.res, k, n);
            }
            out.push(Request::Delta(DeltaDiscoveryRequest {
                type_url: k.type_url(),
                resource_names_subscribe: added,
                resource_names_unsubscribe: gone,
                ..DeltaDiscoveryRequest::default()
            }));
        }
        out
    }
}

/// Drops the translated resource `name` of a type subscribed by name.
fn forget(t: &mut Translated, kind: Kind, name: &str) {
    match kind {
        Kind::Eds => {
            t.endpoints.remove(name);
        }
        Kind::Rds => {
            t.routes.remove(name);
        }
        Kind::Sds => {
            t.secrets.ads.remove(name);
        }
        Kind::Cds | Kind::Lds => {}
    }
}

/// A NACK's `error_detail`: INVALID_ARGUMENT, as Envoy sends.
fn status(message: String) -> Status {
    Status {
        code: 3,
        message,
        details: Vec::new(),
    }
}

fn request(node: &Node, kind: Kind, s: &Sub, error: Option<String>) -> DiscoveryRequest {
    DiscoveryRequest {
        version_info: s.version.clone(),
        node: Some(node.clone()),
        resource_names: if kind.wildcard() {
            Vec::new()
        } else {
            s.names.clone()
        },
        type_url: kind.type_url(),
        response_nonce: s.nonce.clone(),
        error_detail: error.map(status),
        ..DiscoveryRequest::default()
    }
}

/// Translates a response's resources into `t`, replacing that type's.
fn replace(
    t: &mut Translated,
    kind: Kind,
    resources: &[Any],
    ignored: &mut Vec<String>,
) -> Result<(), String> {
    let url = kind.type_url();
    for (i, any) in resources.iter().enumerate() {
        if any.type_url != url {
            return Err(format!(
                "resources[{i}]: type {} in a response of type {url}",
                any.type_url
            ));
        }
    }
    match kind {
        Kind::Cds => {
            t.clusters.clear();
            each(resources, |c: Cluster| {
                let xds_name = c.name.clone();
                let tc = translate::clusters::cluster(c, ignored)?;
                t.clusters.insert(xds_name, tc);
                Ok(())
            })?;
        }
        Kind::Eds => {
            t.endpoints.clear();
            each(resources, |cla: ClusterLoadAssignment| {
                let xds_name = cla.cluster_name.clone();
                let at = format!("cluster_load_assignment {xds_name:?}");
                let eps = translate::endpoints::load_assignment(cla, &at)?;
                t.endpoints.insert(xds_name, eps);
                Ok(())
            })?;
        }
        Kind::Lds => {
            t.listeners.clear();
            each(resources, |l: Listener| {
                let xds_name = l.name.clone();
                let tl = translate::listeners::listener(l, ignored)?;
                t.listeners.insert(xds_name, tl);
                Ok(())
            })?;
        }
        Kind::Rds => {
            t.routes.clear();
            each(resources, |rc: RouteConfiguration| {
                let xds_name = rc.name.clone();
                let tr = translate::routes::route_config(rc, ignored)?;
                t.routes.insert(xds_name, tr);
                Ok(())
            })?;
        }
        Kind::Sds => t.secrets.ads = secrets_of(resources)?,
    }
    Ok(())
}

/// The secrets of an SDS response, translated, by name.
fn secrets_of(resources: &[Any]) -> Result<BTreeMap<String, translate::secrets::TSecret>, String> {
    let url = Kind::Sds.type_url();
    if let Some((i, any)) = resources
        .iter()
        .enumerate()
        .find(|(_, a)| a.type_url != url)
    {
        return Err(format!(
            "resources[{i}]: type {} in a response of type {url}",
            any.type_url
        ));
    }
    let mut out = BTreeMap::new();
    each(resources, |s: Secret| {
        let xds_name = s.name.clone();
        out.insert(xds_name, translate::secrets::secret(s)?);
        Ok(())
    })?;
    Ok(out)
}

/// Decodes each resource and hands it to `f`; a resource that does not decode fails by its
/// index.
fn each<M: Message + Default>(
    resources: &[Any],
    mut f: impl FnMut(M) -> Result<(), String>,
) -> Result<(), String> {
    for (i, any) in resources.iter().enumerate() {
        let m = M::decode(any.value.as_slice())
            .map_err(|_| format!("resources[{i}]: cannot decode: {}", any.type_url))?;
        f(m)?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
