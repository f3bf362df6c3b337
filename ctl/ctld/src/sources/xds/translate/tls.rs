//! TLS transport sockets with their material inline, in files or from SDS over ADS:
//! `UpstreamTlsContext` on a cluster → `tls` (`cert`/`key`, `ca`, `sni`; inline PEM →
//! `cert_pem`, `key_pem`, `ca_pem`), `DownstreamTlsContext` on a listener's filter chain →
//! `tls.certificates` (and its validation context → `tls.ca`, `require_client_certificate`,
//! `client_identities`).
//! A `raw_buffer` socket is plaintext. A secret named by
//! `tls_certificate_sds_secret_configs` or `validation_context_sds_secret_config` is left as
//! a reference (`secrets.rs`) that [`super::build`] replaces with the `Secret` SDS gave.

use std::mem::take;

use envoy_types::pb::envoy::config::core::v3::data_source::Specifier;
use envoy_types::pb::envoy::config::core::v3::transport_socket::ConfigType;
use envoy_types::pb::envoy::config::core::v3::{DataSource, TransportSocket};
use envoy_types::pb::envoy::extensions::transport_sockets::raw_buffer::v3::RawBuffer;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::common_tls_context::ValidationContextType;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::subject_alt_name_matcher::SanType;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, CommonTlsContext, DownstreamTlsContext, TlsCertificate,
    UpstreamTlsContext,
};
use envoy_types::pb::envoy::r#type::matcher::v3::string_matcher::MatchPattern;
use envoy_types::pb::envoy::r#type::matcher::v3::StringMatcher;
use prost::{Message, Name};
use toml::Value;

use super::secrets::sds_reference;
use super::{string, Table};
use crate::sources::xds::nack::{leftover, unsupported, Res};

/// The ALPN protocols ringside negotiates itself (from the listener, or the cluster's
/// `protocol`): a context listing only these changes nothing.
const OWN_ALPN: &[&str] = &["h2", "http/1.1"];

/// A cluster's `tls` table; `None` for a plaintext (`raw_buffer`) socket.
pub fn upstream(ts: TransportSocket, at: &str) -> Res<Option<Table>> {
    let Some(mut u) = context::<UpstreamTlsContext>(ts, at)? else {
        return Ok(None);
    };
    let mut t = Table::new();
    let sni = take(&mut u.sni);
    if !sni.is_empty() {
        t.insert("sni".into(), string(sni));
    }
    if let Some(c) = u.common_tls_context.take() {
        let mut certs = common(
            c,
            &mut t,
            &format!("{at}.common_tls_context"),
            Side::Upstream,
        )?;
        if certs.len() > 1 {
            return Err(unsupported(
                &format!("{at}.common_tls_context.tls_certificates"),
                "more than one client certificate",
            ));
        }
        if let Some(cert) = certs.pop() {
            t.extend(cert);
        }
    }
    leftover(&u, at)?;
    Ok(Some(t))
}

/// A listener's `tls` table; `None` for a plaintext (`raw_buffer`) socket. A validation
/// context's CA (`trusted_ca`, or its SDS secret) becomes the listener's `ca` / `ca_pem`:
/// client certificates are asked for and verified, and required with
/// `require_client_certificate`; its URI SAN matchers become `client_identities`.
pub fn downstream(ts: TransportSocket, at: &str) -> Res<Option<Table>> {
    let Some(mut d) = context::<DownstreamTlsContext>(ts, at)? else {
        return Ok(None);
    };
    let require = d.require_client_certificate.take().is_some_and(|b| b.value);
    let mut t = Table::new();
    let certs = match d.common_tls_context.take() {
        Some(c) => common(
            c,
            &mut t,
            &format!("{at}.common_tls_context"),
            Side::Downstream,
        )?,
        None => Vec::new(),
    };
    if require {
        if t.is_empty() {
            return Err(unsupported(
                &format!("{at}.require_client_certificate"),
                "true without a validation context (the CA clients' certificates must chain to)",
            ));
        }
        t.insert("require_client_certificate".into(), Value::Boolean(true));
    }
    leftover(&d, at)?;
    t.insert(
        "certificates".into(),
        Value::Array(certs.into_iter().map(Value::Table).collect()),
    );
    Ok(Some(t))
}

fn context<M: Message + Name + Default>(ts: TransportSocket, at: &str) -> Res<Option<M>> {
    let Some(ConfigType::TypedConfig(any)) = ts.config_type else {
        return Err(format!("{at}.typed_config: required by ringside"));
    };
    if any.type_url == RawBuffer::type_url() {
        return Ok(None);
    }
    if any.type_url != M::type_url() {
        return Err(unsupported(
            at,
            format!("transport socket {}", any.type_url),
        ));
    }
    M::decode(any.value.as_slice())
        .map(Some)
        .map_err(|e| format!("{at}.typed_config: cannot decode: {e}"))
}

/// Whose certificate a validation context checks: the upstream's (a cluster's `identities`,
/// exact) or clients' (a listener's `client_identities`, exact or by prefix).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    Upstream,
    Downstream,
}

/// The certificates (`cert`/`key` tables) of `c`; its CA goes into `t` (`ca`, `ca_pem`).
fn common(mut c: CommonTlsContext, t: &mut Table, at: &str, side: Side) -> Res<Vec<Table>> {
    let mut certs = Vec::new();
    for (i, mut tc) in take(&mut c.tls_certificates).into_iter().enumerate() {
        certs.push(certificate(
            &mut tc,
            &format!("{at}.tls_certificates[{i}]"),
        )?);
    }
    for (i, sds) in take(&mut c.tls_certificate_sds_secret_configs)
        .into_iter()
        .enumerate()
    {
        let at = format!("{at}.tls_certificate_sds_secret_configs[{i}]");
        let (source, name) = sds_reference(sds, &at)?;
        let mut cert = Table::new();
        cert.insert(source.keys().0.into(), string(name));
        certs.push(cert);
    }
    match c.validation_context_type.take() {
        None => {}
        Some(ValidationContextType::ValidationContextSdsSecretConfig(sds)) => {
            let at = format!("{at}.validation_context_sds_secret_config");
            let (source, name) = sds_reference(sds, &at)?;
            t.insert(source.keys().1.into(), string(name));
        }
        Some(ValidationContextType::ValidationContext(mut v)) => {
            validation(&mut v, t, &format!("{at}.validation_context"), side)?;
        }
        // Istio's outbound clusters: SAN matchers here, the root CA from SDS.
        Some(ValidationContextType::CombinedValidationContext(mut cv)) => {
            let at = format!("{at}.combined_validation_context");
            let mut v = cv.default_validation_context.take().unwrap_or_default();
            let v_at = format!("{at}.default_validation_context");
            if v.trusted_ca.is_some() {
                return Err(unsupported(
                    &format!("{v_at}.trusted_ca"),
                    "a CA besides the SDS one",
                ));
            }
            san_matchers(&mut v, t, &v_at, side)?;
            leftover(&v, &v_at)?;
            let sds = cv
                .validation_context_sds_secret_config
                .take()
                .ok_or_else(|| {
                    format!("{at}.validation_context_sds_secret_config: required by ringside")
                })?;
            let sds_at = format!("{at}.validation_context_sds_secret_config");
            let (source, name) = sds_reference(sds, &sds_at)?;
            t.insert(source.keys().1.into(), string(name));
            leftover(&cv, &at)?;
        }
        Some(_) => {
            return Err(unsupported(
                &format!("{at}.validation_context_type"),
                "a combined validation context or a provider",
            ))
        }
    }
    if c.alpn_protocols
        .iter()
        .all(|p| OWN_ALPN.contains(&p.as_str()))
    {
        c.alpn_protocols.clear();
    }
    leftover(&c, at)?;
    Ok(certs)
}

/// A validation context's trusted CA → `ca` / `ca_pem` in `t`; its URI SAN matchers →
/// `identities` (a cluster's) or `client_identities` (a listener's).
pub(super) fn validation(
    v: &mut CertificateValidationContext,
    t: &mut Table,
    at: &str,
    side: Side,
) -> Res<()> {
    material(
        v.trusted_ca.take(),
        ("ca", "ca_pem"),
        t,
        &format!("{at}.trusted_ca"),
    )?;
    san_matchers(v, t, at, side)?;
    leftover(v, at)
}

/// URI SAN matchers → `identities` in `t` (upstream: exact ones), or `client_identities`
/// (downstream: exact ones, and prefixes written with ringside's trailing `*`).
fn san_matchers(
    v: &mut CertificateValidationContext,
    t: &mut Table,
    at: &str,
    side: Side,
) -> Res<()> {
    let mut identities = Vec::new();
    for (i, m) in take(&mut v.match_typed_subject_alt_names)
        .into_iter()
        .enumerate()
    {
        let at = format!("{at}.match_typed_subject_alt_names[{i}]");
        if m.san_type != SanType::Uri as i32 {
            return Err(unsupported(
                &format!("{at}.san_type"),
                "a SAN other than URI (ringside checks URI SANs)",
            ));
        }
        identities.push(matcher(m.matcher, &format!("{at}.matcher"), side)?);
    }
    // Deprecated, and what older istiods send: matched against URI SANs here.
    #[allow(deprecated)]
    let untyped = take(&mut v.match_subject_alt_names);
    for (i, m) in untyped.into_iter().enumerate() {
        identities.push(matcher(
            Some(m),
            &format!("{at}.match_subject_alt_names[{i}]"),
            side,
        )?);
    }
    if !identities.is_empty() {
        let key = match side {
            Side::Upstream => "identities",
            Side::Downstream => "client_identities",
        };
        t.insert(
            key.into(),
            Value::Array(identities.into_iter().map(Value::String).collect()),
        );
    }
    Ok(())
}

/// A case-sensitive string matcher as an identity: an exact value, or (downstream) a prefix
/// with ringside's trailing `*`. A `*` in the value itself would be read as a prefix: NACKed.
fn matcher(m: Option<StringMatcher>, at: &str, side: Side) -> Res<String> {
    let Some(mut m) = m else {
        return Err(format!("{at}: required by ringside"));
    };
    let pattern = m.match_pattern.take();
    let identity = match pattern {
        _ if m.ignore_case => None,
        Some(MatchPattern::Exact(s)) if !s.is_empty() && !s.contains('*') => Some(s),
        Some(MatchPattern::Prefix(s))
            if side == Side::Downstream && !s.is_empty() && !s.contains('*') =>
        {
            Some(format!("{s}*"))
        }
        _ => None,
    };
    let Some(identity) = identity else {
        let what = match side {
            Side::Upstream => "a matcher other than a case-sensitive exact one without `*`",
            Side::Downstream => {
                "a matcher other than a case-sensitive exact or prefix one without `*`"
            }
        };
        return Err(unsupported(at, what));
    };
    leftover(&m, at)?;
    Ok(identity)
}

pub(super) fn certificate(tc: &mut TlsCertificate, at: &str) -> Res<Table> {
    let mut t = Table::new();
    let chain = tc.certificate_chain.take();
    material(
        chain,
        ("cert", "cert_pem"),
        &mut t,
        &format!("{at}.certificate_chain"),
    )?;
    let key = tc.private_key.take();
    material(
        key,
        ("key", "key_pem"),
        &mut t,
        &format!("{at}.private_key"),
    )?;
    leftover(tc, at)?;
    Ok(t)
}

/// A file name → `keys.0`, inline PEM → `keys.1`.
pub(super) fn material(
    ds: Option<DataSource>,
    keys: (&str, &str),
    t: &mut Table,
    at: &str,
) -> Res<()> {
    let Some(mut ds) = ds else {
        return Err(format!("{at}: required by ringside"));
    };
    let (key, value) = match ds.specifier.take() {
        Some(Specifier::Filename(f)) => (keys.0, f),
        Some(Specifier::InlineString(s)) => (keys.1, s),
        Some(Specifier::InlineBytes(b)) => (
            keys.1,
            String::from_utf8(b).map_err(|_| format!("{at}.inline_bytes: not PEM text"))?,
        ),
        _ => return Err(unsupported(at, "material from the environment")),
    };
    leftover(&ds, at)?;
    t.insert(key.into(), string(value));
    Ok(())
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
