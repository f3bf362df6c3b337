//! TLS material in the validated model: certificates with their keys, trust stores, and the
//! mesh identity.
//!
//! Everything here is loaded and checked by validation (`validate/tls.rs` with the PEM work
//! in `material.rs`): a `CertKey` holds a certificate chain whose key rustls's ring provider
//! can sign with and that matches the leaf, whose leaf has not expired. The engine builds its
//! rustls configurations from these values (core/engine/src/tls/) and never reads a file.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
use rustls_pki_types::ServerName;

/// A certificate chain and its private key, from files or inline PEM.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CertKey {
    /// The certificate file (resolved, absolute when the base directory is known); `None`
    /// when the chain was given inline (`cert_pem`).
    pub cert_path: Option<PathBuf>,
    /// The key file; `None` when the key was given inline (`key_pem`).
    pub key_path: Option<PathBuf>,
    /// The chain (leaf first) and a signing key for it, ready for rustls.
    pub key: Arc<CertifiedKey>,
    /// DNS subject alternative names of the leaf, lower-case (may start with `*.`).
    pub dns_names: Vec<String>,
    /// URI subject alternative names of the leaf (SPIFFE ids), as written.
    pub uri_names: Vec<String>,
    /// End of the leaf's validity.
    pub not_after: SystemTime,
}

/// `listeners[].tls`: TLS termination with one or more certificates.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ListenerTls {
    /// Picked by SNI against each leaf's DNS names; the first is the default. Never empty.
    pub certificates: Vec<CertKey>,
    /// `ca` / `ca_pem`: client certificates are asked for and verified against these roots.
    pub client_roots: Option<Arc<RootCertStore>>,
    /// The `ca` file; `None` when given inline or absent.
    pub ca_path: Option<PathBuf>,
    /// `require_client_certificate`: a client without a verified certificate is refused.
    pub require_client_certificate: bool,
    /// `client_identities`: exact URI SANs, or prefixes ending in `*`, of which a presented
    /// client certificate must carry one; empty: any. Only with `client_roots`.
    pub client_identities: Vec<String>,
}

/// Whether a certificate with these URI SANs passes an identity list (a TLS listener's
/// `client_identities`): one of them is one of the identities, or starts with one of the
/// prefixes (those ending in `*`); Envoy's SAN matching, any SAN against any matcher. Always
/// with an empty list.
pub fn identities_accept(identities: &[String], uri_names: &[String]) -> bool {
    identities.is_empty()
        || uri_names.iter().any(|uri| {
            identities
                .iter()
                .any(|want| crate::authz::principal_is(want, uri))
        })
}

/// `listeners[].mtls`: mesh mutual TLS with the `[mesh]` identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MtlsMode {
    /// Every connection must be TLS with a client certificate from the mesh trust bundle.
    Strict,
    /// mTLS when the client speaks TLS (a client certificate is verified when presented),
    /// plaintext otherwise: for migrating a service into the mesh.
    Permissive,
}

/// `[mesh].identity`: this proxy's workload identity and the roots its peers chain to.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MeshIdentity {
    /// The identity certificate (with a URI SAN) and its key.
    pub identity: CertKey,
    /// The trust bundle file; `None` when given inline (`trust_bundle_pem`).
    pub trust_bundle_path: Option<PathBuf>,
    /// The mesh's CA certificates (at least one).
    pub roots: Arc<RootCertStore>,
    /// The identity's URI SAN: the first starting with `spiffe://`, else the first.
    pub spiffe_id: String,
}

/// `clusters[].tls`: TLS towards the upstream, verified against `roots`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UpstreamTls {
    /// Server name to send and verify; `None`: the endpoint's IP address is verified and no
    /// SNI is sent (rustls sends none for IP addresses).
    pub sni: Option<ServerName<'static>>,
    /// The `ca` file; `None` when given inline or when the system roots are used.
    pub ca_path: Option<PathBuf>,
    /// `true` when no `ca`/`ca_pem` was given and `roots` are the system's.
    pub system_roots: bool,
    /// The roots the upstream's certificate must chain to.
    pub roots: Arc<RootCertStore>,
    /// A client certificate to present, if configured.
    pub client: Option<CertKey>,
    /// `identities`: URI SANs of which the upstream's certificate must carry one, checked
    /// instead of the server name. Empty: the server name is verified.
    pub identities: Vec<String>,
}

/// `clusters[].mtls`: mesh mTLS towards the upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UpstreamMtls {
    /// The identity (URI SAN) the upstream's certificate must carry.
    pub peer: String,
}

/// The operating system's trust store, loaded once per process (rustls-native-certs) and
/// shared; empty when none is found (then every TLS upstream without `ca` fails to verify).
pub fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    Arc::clone(ROOTS.get_or_init(|| {
        let mut store = RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        store.add_parsable_certificates(found.certs);
        Arc::new(store)
    }))
}

/// The identity among URI SANs: the first `spiffe://` one, else the first one.
pub fn identity_of(uri_names: &[String]) -> Option<&str> {
    uri_names
        .iter()
        .find(|u| u.starts_with("spiffe://"))
        .or_else(|| uri_names.first())
        .map(String::as_str)
}

/// The subject alternative names of a DER certificate: (DNS names lower-cased, URIs).
/// An error when the certificate does not parse.
pub fn san_names(der: &[u8]) -> Result<(Vec<String>, Vec<String>), String> {
    use x509_parser::extensions::GeneralName;
    use x509_parser::prelude::FromDer;

    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der)
        .map_err(|e| format!("invalid certificate: {e}"))?;
    let mut dns = Vec::new();
    let mut uris = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => dns.push(d.to_ascii_lowercase()),
                GeneralName::URI(u) => uris.push((*u).to_owned()),
                _ => {}
            }
        }
    }
    Ok((dns, uris))
}

/// The SPIFFE identity (URI SAN, `spiffe://` preferred) of a DER certificate.
pub fn identity_of_der(der: &[u8]) -> Option<String> {
    let (_, uris) = san_names(der).ok()?;
    identity_of(&uris).map(str::to_owned)
}
