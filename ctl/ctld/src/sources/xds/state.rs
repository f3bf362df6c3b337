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

use std::collections::BTreeMap;
use std::sync::Arc;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
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

/// What one response makes.
#[derive(Debug, Default)]
pub struct Step {
    /// To send, in order: the ACK or NACK, then any changed subscription.
    pub requests: Vec<DiscoveryRequest>,
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
    res: Translated,
    subs: BTreeMap<Kind, Sub>,
    template: Option<Arc<str>>,
    /// The last configuration published.
    published: Option<Arc<str>>,
    /// The xDS sections last built (the template is laid before them).
    built: Option<String>,
}

impl NodeState {
    pub fn new(node: Node, template: Option<Arc<str>>) -> NodeState {
        NodeState {
            node,
            res: Translated::default(),
            subs: BTreeMap::new(),
            template,
            published: None,
            built: None,
        }
    }

    /// The requests that open a stream: every subscription, with the versions accepted on
    /// earlier streams (a server may then skip what the node has).
    pub fn opening(&mut self) -> Vec<DiscoveryRequest> {
        for k in [Kind::Cds, Kind::Lds] {
            self.subs.entry(k).or_default();
        }
        let mut out = Vec::new();
        for (k, s) in &mut self.subs {
            s.nonce.clear();
            if k.wildcard() || !s.names.is_empty() {
                out.push(request(&self.node, *k, s, None));
            }
        }
        out
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

    pub fn on_response(&mut self, resp: DiscoveryResponse) -> Step {
        let mut step = Step::default();
        let Some(kind) = Kind::of(&resp.type_url) else {
            // A type ctld never asked for: NACK it so the server knows.
            let s = Sub::default();
            let mut r = request(
                &self.node,
                Kind::Cds,
                &s,
                Some(format!(
                    "type {} is not supported by ringside",
                    resp.type_url
                )),
            );
            r.type_url = resp.type_url;
            r.response_nonce = resp.nonce;
            step.requests.push(r);
            return step;
        };
        let mut next = self.res.clone();
        let mut ignored = Vec::new();
        let applied = replace(&mut next, kind, &resp.resources, &mut ignored)
            .and_then(|()| self.check(&next, kind));
        let sub = self.subs.entry(kind).or_default();
        sub.nonce = resp.nonce.clone();
        match applied {
            Ok((built, publish)) => {
                sub.version = resp.version_info.clone();
                step.requests.push(request(&self.node, kind, sub, None));
                step.outcome = Some((kind, "ack"));
                step.ignored = ignored;
                self.res = next;
                match built {
                    Built::Ready(xds) => {
                        self.built = Some(xds);
                        step.publish = publish.and_then(|t| self.publish(t));
                    }
                    Built::Waiting(w) | Built::Missing(w) => step.detail = Some(w),
                }
                step.requests.extend(self.resubscribe());
            }
            Err(e) => {
                step.requests
                    .push(request(&self.node, kind, sub, Some(e.clone())));
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

    /// EDS and RDS requests for a changed set of names.
    fn resubscribe(&mut self) -> Vec<DiscoveryRequest> {
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
            .filter_map(|l| match &l.routes {
                RouteSource::Rds(n) => Some(n.clone()),
                _ => None,
            })
            .collect();
        rds.sort();
        rds.dedup();
        let sds = self.res.secret_names();
        let mut out = Vec::new();
        for (k, names) in [(Kind::Eds, eds), (Kind::Rds, rds), (Kind::Sds, sds)] {
            let sub = self.subs.entry(k).or_default();
            if sub.names != names {
                sub.names = names;
                out.push(request(&self.node, k, sub, None));
            }
        }
        out
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
        error_detail: error.map(|message| Status {
            // INVALID_ARGUMENT, as Envoy sends.
            code: 3,
            message,
            details: Vec::new(),
        }),
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
        Kind::Sds => {
            t.secrets.clear();
            each(resources, |s: Secret| {
                let xds_name = s.name.clone();
                t.secrets.insert(xds_name, translate::secrets::secret(s)?);
                Ok(())
            })?;
        }
    }
    Ok(())
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
