//! SDS (`Secret`): a TLS context's `tls_certificate_sds_secret_configs` and
//! `validation_context_sds_secret_config` become references in the listener's or cluster's
//! `tls` table; [`resolve`] replaces each with the secret SDS gave (a `tls_certificate` →
//! `cert`/`key` or `cert_pem`/`key_pem`; a `validation_context` → `ca` or `ca_pem`). A new
//! version of a secret (rotation) makes a new configuration.
//!
//! A secret comes from one of two places ([`Source`]): the ADS stream (`sds_config.ads`:
//! [`CERT_REF`], [`CA_REF`]), or the node's local SDS server, which an Istio sidecar's
//! bootstrap calls [`LOCAL_CLUSTER`] (istio-agent's Unix socket, `--xds-sds`:
//! [`CERT_REF_LOCAL`], [`CA_REF_LOCAL`]). Their names are separate: `default` from one is
//! not `default` from the other.

use std::collections::BTreeMap;
use std::mem::take;

use envoy_types::pb::envoy::config::core::v3::api_config_source::ApiType;
use envoy_types::pb::envoy::config::core::v3::config_source::ConfigSourceSpecifier;
use envoy_types::pb::envoy::config::core::v3::grpc_service::TargetSpecifier;
use envoy_types::pb::envoy::config::core::v3::{ApiConfigSource, ApiVersion};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::secret::Type;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{SdsSecretConfig, Secret};
use toml::Value;

use super::{tls, Table};
use crate::sources::xds::nack::{leftover, unsupported, Res};

/// The key of a certificate table that stands for the SDS secret it names (from ADS).
pub const CERT_REF: &str = "sds_tls_certificate";
/// The key of a `tls` table that stands for the SDS validation context it names (from ADS).
pub const CA_REF: &str = "sds_validation_context";
/// [`CERT_REF`] for a secret of the local SDS server.
pub const CERT_REF_LOCAL: &str = "sds_local_tls_certificate";
/// [`CA_REF`] for a secret of the local SDS server.
pub const CA_REF_LOCAL: &str = "sds_local_validation_context";
/// The cluster an `sds_config` names for the local SDS server: Istio's name for
/// istio-agent's SDS socket in the sidecar's bootstrap.
pub const LOCAL_CLUSTER: &str = "sds-grpc";

/// Where a secret comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The ADS stream.
    Ads,
    /// The local SDS server ([`LOCAL_CLUSTER`], `--xds-sds`).
    Local,
}

impl Source {
    /// The keys of a certificate's and a validation context's reference.
    pub fn keys(self) -> (&'static str, &'static str) {
        match self {
            Source::Ads => (CERT_REF, CA_REF),
            Source::Local => (CERT_REF_LOCAL, CA_REF_LOCAL),
        }
    }
}

/// Every secret received, by source and name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Secrets {
    pub ads: BTreeMap<String, TSecret>,
    pub local: BTreeMap<String, TSecret>,
}

/// The names of the secrets a configuration refers to, by source, sorted, once each.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Names {
    pub ads: Vec<String>,
    pub local: Vec<String>,
}

/// A secret, translated.
#[derive(Debug, Clone, PartialEq)]
pub enum TSecret {
    /// `cert`/`key` (or `_pem`) keys.
    Certificate(Table),
    /// `ca` (or `ca_pem`).
    Ca(Table),
}

/// The source and name of the secret `sds` refers to: ADS, or the local SDS server by
/// Istio's cluster name ([`LOCAL_CLUSTER`]).
pub fn sds_reference(mut sds: SdsSecretConfig, at: &str) -> Res<(Source, String)> {
    let name = take(&mut sds.name);
    if name.is_empty() {
        return Err(format!("{at}.name: required by ringside"));
    }
    let at_config = format!("{at}.sds_config");
    let Some(mut c) = sds.sds_config.take() else {
        return Err(format!(
            "{at_config}: required by ringside (a secret from ADS or from {LOCAL_CLUSTER:?})"
        ));
    };
    let source = match c.config_source_specifier.take() {
        Some(ConfigSourceSpecifier::Ads(_)) => Source::Ads,
        Some(ConfigSourceSpecifier::ApiConfigSource(api)) => {
            local_source(api, &format!("{at_config}.api_config_source"))?
        }
        _ => {
            return Err(unsupported(
                &at_config,
                format!("a secret from elsewhere than ADS or the cluster {LOCAL_CLUSTER:?}"),
            ))
        }
    };
    c.resource_api_version = 0;
    // How long Envoy waits for the secret before serving without it: ringside never serves
    // a TLS context without its secret, so there is nothing to time out.
    c.initial_fetch_timeout = None;
    leftover(&c, &at_config)?;
    leftover(&sds, at)?;
    Ok((source, name))
}

/// An `api_config_source` that names the local SDS server: state-of-the-world gRPC (v3) to
/// the one cluster [`LOCAL_CLUSTER`], as istiod writes it.
fn local_source(mut api: ApiConfigSource, at: &str) -> Res<Source> {
    if api.api_type != ApiType::Grpc as i32 {
        return Err(unsupported(
            &format!("{at}.api_type"),
            "an SDS API other than GRPC (state of the world)",
        ));
    }
    if ![0, ApiVersion::V3 as i32].contains(&api.transport_api_version) {
        return Err(unsupported(
            &format!("{at}.transport_api_version"),
            "an xDS transport version other than V3",
        ));
    }
    let services = take(&mut api.grpc_services);
    let [service] = services.as_slice() else {
        return Err(format!(
            "{at}.grpc_services: one service (the cluster {LOCAL_CLUSTER:?}) is supported by ringside"
        ));
    };
    let mut service = service.clone();
    match service.target_specifier.take() {
        Some(TargetSpecifier::EnvoyGrpc(g)) if g.cluster_name == LOCAL_CLUSTER => {}
        Some(TargetSpecifier::EnvoyGrpc(g)) => {
            return Err(unsupported(
                &format!("{at}.grpc_services[0].envoy_grpc.cluster_name"),
                format!(
                    "a secret from the cluster {:?} (only {LOCAL_CLUSTER:?}, the local SDS server)",
                    g.cluster_name
                ),
            ))
        }
        _ => {
            return Err(unsupported(
                &format!("{at}.grpc_services[0]"),
                format!("a gRPC service other than envoy_grpc {LOCAL_CLUSTER:?}"),
            ))
        }
    }
    // The request timeout of each stream: ctld's stream has its own.
    service.timeout = None;
    leftover(&service, &format!("{at}.grpc_services[0]"))?;
    api.api_type = 0;
    api.transport_api_version = 0;
    // Whether the node is sent on the first request only: ctld sends it on each.
    api.set_node_on_first_message_only = false;
    leftover(&api, at)?;
    Ok(Source::Local)
}

/// An SDS `Secret`.
pub fn secret(mut s: Secret) -> Res<TSecret> {
    let at = format!("secret {:?}", s.name);
    s.name.clear();
    let out = match s.r#type.take() {
        Some(Type::TlsCertificate(mut tc)) => {
            TSecret::Certificate(tls::certificate(&mut tc, &format!("{at}.tls_certificate"))?)
        }
        Some(Type::ValidationContext(mut v)) => {
            let mut t = Table::new();
            tls::validation(
                &mut v,
                &mut t,
                &format!("{at}.validation_context"),
                tls::Side::Upstream,
            )?;
            TSecret::Ca(t)
        }
        Some(Type::SessionTicketKeys(_)) => {
            return Err(unsupported(
                &format!("{at}.session_ticket_keys"),
                "session ticket keys",
            ))
        }
        Some(Type::GenericSecret(_)) => {
            return Err(unsupported(
                &format!("{at}.generic_secret"),
                "a generic secret",
            ))
        }
        None => return Err(format!("{at}.type: required by ringside")),
    };
    leftover(&s, &at)?;
    Ok(out)
}

/// The secrets a `tls` table refers to, added to `out` (unsorted).
pub fn names(tls: &Table, out: &mut Names) {
    let certs = tls.get("certificates").and_then(Value::as_array);
    let tables = certs
        .into_iter()
        .flatten()
        .filter_map(Value::as_table)
        .chain(std::iter::once(tls));
    for t in tables {
        for (source, list) in [(Source::Ads, &mut out.ads), (Source::Local, &mut out.local)] {
            let (cert, ca) = source.keys();
            for key in [cert, ca] {
                if let Some(n) = t.get(key).and_then(Value::as_str) {
                    list.push(n.to_owned());
                }
            }
        }
    }
}

/// Replaces the references of a `tls` table by the secrets. `Ok(Err(what))`: that secret is
/// not received yet.
pub fn resolve(tls: &mut Table, secrets: &Secrets, at: &str) -> Res<Result<(), String>> {
    if let Some(Value::Array(certs)) = tls.get_mut("certificates") {
        for c in certs.iter_mut().filter_map(Value::as_table_mut) {
            if let Err(missing) = one(c, secrets, at)? {
                return Ok(Err(missing));
            }
        }
    }
    one(tls, secrets, at)
}

fn one(t: &mut Table, secrets: &Secrets, at: &str) -> Res<Result<(), String>> {
    for (source, map) in [(Source::Ads, &secrets.ads), (Source::Local, &secrets.local)] {
        let (cert_key, ca_key) = source.keys();
        let from = match source {
            Source::Ads => String::new(),
            Source::Local => format!(" from {LOCAL_CLUSTER:?}"),
        };
        for (key, is_cert) in [(cert_key, true), (ca_key, false)] {
            let Some(Value::String(name)) = t.remove(key) else {
                continue;
            };
            match (is_cert, map.get(&name)) {
                (_, None) => return Ok(Err(format!("secret {name:?}{from}"))),
                (true, Some(TSecret::Certificate(c))) | (false, Some(TSecret::Ca(c))) => {
                    t.extend(c.clone());
                }
                (true, _) => {
                    return Err(format!(
                        "{at}: secret {name:?}{from} is not a tls_certificate"
                    ))
                }
                (false, _) => {
                    return Err(format!(
                        "{at}: secret {name:?}{from} is not a validation_context"
                    ))
                }
            }
        }
    }
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(pairs: &[(&str, &str)]) -> Table {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
            .collect()
    }

    #[test]
    fn a_clusters_certificate_and_ca_come_from_their_secrets() {
        let mut tls = table(&[(CERT_REF, "client"), (CA_REF_LOCAL, "ROOTCA"), ("sni", "a")]);
        let mut names = Names::default();
        super::names(&tls, &mut names);
        assert_eq!(names.ads, ["client"]);
        assert_eq!(names.local, ["ROOTCA"]);
        let mut secrets = Secrets::default();
        secrets.ads.insert(
            "client".to_owned(),
            TSecret::Certificate(table(&[("cert_pem", "C"), ("key_pem", "K")])),
        );
        // The same name from the other source is another secret.
        secrets.ads.insert(
            "ROOTCA".to_owned(),
            TSecret::Ca(table(&[("ca", "/wrong.pem")])),
        );
        let mut waiting = tls.clone();
        assert_eq!(
            resolve(&mut waiting, &secrets, "c"),
            Ok(Err("secret \"ROOTCA\" from \"sds-grpc\"".into()))
        );
        secrets.local.insert(
            "ROOTCA".to_owned(),
            TSecret::Ca(table(&[("ca", "/ca.pem")])),
        );
        assert_eq!(resolve(&mut tls, &secrets, "c"), Ok(Ok(())));
        assert_eq!(
            tls,
            table(&[
                ("ca", "/ca.pem"),
                ("cert_pem", "C"),
                ("key_pem", "K"),
                ("sni", "a")
            ])
        );
        let mut crossed = table(&[(CA_REF, "client")]);
        assert_eq!(
            resolve(&mut crossed, &secrets, "cluster \"c\""),
            Err("cluster \"c\": secret \"client\" is not a validation_context".into())
        );
    }
}
