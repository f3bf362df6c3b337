//! SDS over ADS (`Secret`): a TLS context's `tls_certificate_sds_secret_configs` and
//! `validation_context_sds_secret_config` become references in the listener's or cluster's
//! `tls` table ([`CERT_REF`], [`CA_REF`]); [`resolve`] replaces each with the secret SDS gave
//! (a `tls_certificate` → `cert`/`key` or `cert_pem`/`key_pem`; a `validation_context` →
//! `ca` or `ca_pem`). A new version of a secret (rotation) makes a new configuration.

use std::collections::BTreeMap;
use std::mem::take;

use envoy_types::pb::envoy::config::core::v3::config_source::ConfigSourceSpecifier;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::secret::Type;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{SdsSecretConfig, Secret};
use toml::Value;

use super::{tls, Table};
use crate::sources::xds::nack::{leftover, unsupported, Res};

/// The key of a certificate table that stands for the SDS secret it names.
pub const CERT_REF: &str = "sds_tls_certificate";
/// The key of a `tls` table that stands for the SDS validation context it names.
pub const CA_REF: &str = "sds_validation_context";

/// A secret, translated.
#[derive(Debug, Clone, PartialEq)]
pub enum TSecret {
    /// `cert`/`key` (or `_pem`) keys.
    Certificate(Table),
    /// `ca` (or `ca_pem`).
    Ca(Table),
}

/// The name of the secret `sds` refers to; it must come over ADS.
pub fn sds_reference(mut sds: SdsSecretConfig, at: &str) -> Res<String> {
    let name = take(&mut sds.name);
    if name.is_empty() {
        return Err(format!("{at}.name: required by ringside"));
    }
    match sds.sds_config.take() {
        Some(mut c)
            if matches!(
                c.config_source_specifier,
                Some(ConfigSourceSpecifier::Ads(_))
            ) =>
        {
            c.config_source_specifier = None;
            c.resource_api_version = 0;
            c.initial_fetch_timeout = None;
            leftover(&c, &format!("{at}.sds_config"))?;
        }
        _ => {
            return Err(unsupported(
                &format!("{at}.sds_config"),
                "a secret from elsewhere than ADS",
            ))
        }
    }
    leftover(&sds, at)?;
    Ok(name)
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

/// The secrets a `tls` table refers to.
pub fn names(tls: &Table, out: &mut Vec<String>) {
    let certs = tls.get("certificates").and_then(Value::as_array);
    let tables = certs
        .into_iter()
        .flatten()
        .filter_map(Value::as_table)
        .chain(std::iter::once(tls));
    for t in tables {
        for key in [CERT_REF, CA_REF] {
            if let Some(n) = t.get(key).and_then(Value::as_str) {
                out.push(n.to_owned());
            }
        }
    }
}

/// Replaces the references of a `tls` table by the secrets. `Ok(Err(name))`: that secret is
/// not received yet.
pub fn resolve(
    tls: &mut Table,
    secrets: &BTreeMap<String, TSecret>,
    at: &str,
) -> Res<Result<(), String>> {
    if let Some(Value::Array(certs)) = tls.get_mut("certificates") {
        for c in certs.iter_mut().filter_map(Value::as_table_mut) {
            if let Err(missing) = one(c, secrets, at)? {
                return Ok(Err(missing));
            }
        }
    }
    one(tls, secrets, at)
}

fn one(t: &mut Table, secrets: &BTreeMap<String, TSecret>, at: &str) -> Res<Result<(), String>> {
    for key in [CERT_REF, CA_REF] {
        let Some(Value::String(name)) = t.remove(key) else {
            continue;
        };
        match (key, secrets.get(&name)) {
            (_, None) => return Ok(Err(name)),
            (CERT_REF, Some(TSecret::Certificate(c))) | (CA_REF, Some(TSecret::Ca(c))) => {
                t.extend(c.clone());
            }
            (CERT_REF, _) => return Err(format!("{at}: secret {name:?} is not a tls_certificate")),
            _ => return Err(format!("{at}: secret {name:?} is not a validation_context")),
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
        let mut tls = table(&[(CERT_REF, "client"), (CA_REF, "ROOTCA"), ("sni", "a")]);
        let mut names = Vec::new();
        super::names(&tls, &mut names);
        assert_eq!(names, ["client", "ROOTCA"]);
        let mut secrets = BTreeMap::new();
        secrets.insert(
            "client".to_owned(),
            TSecret::Certificate(table(&[("cert_pem", "C"), ("key_pem", "K")])),
        );
        let mut waiting = tls.clone();
        assert_eq!(
            resolve(&mut waiting, &secrets, "c"),
            Ok(Err("ROOTCA".into()))
        );
        secrets.insert(
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
