//! Upstream verification for `clusters[].mtls` and `clusters[].tls.identities`: chain to the
//! roots, then the expected SPIFFE identity. Downstream, [`ClientIdentities`] adds a TLS
//! listener's `client_identities` to rustls's client verifier.
//!
//! SPIFFE certificates name their workload in a URI SAN and usually carry no DNS name, so
//! rustls's WebPKI verifier (which checks the server name) cannot be used. This verifier
//! checks the chain with rustls-webpki for server-auth usage at the handshake's time, then
//! requires a URI SAN equal to the cluster's `mtls.peer`. Handshake signatures are checked
//! with rustls's own functions and the ring provider's algorithms.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, RootCertStore,
    SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// Accepts a server whose chain reaches the mesh roots and whose identity is `peer`.
#[derive(Debug)]
pub(super) struct SpiffeVerifier {
    roots: Arc<RootCertStore>,
    /// The certificate must carry one of these URI SANs.
    peers: Vec<String>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl SpiffeVerifier {
    pub(super) fn new(
        roots: Arc<RootCertStore>,
        peers: Vec<String>,
        provider: &CryptoProvider,
    ) -> Self {
        SpiffeVerifier {
            roots,
            peers,
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

/// The upstream is someone else than the cluster expects. Its `Debug` is its message:
/// rustls renders the error inside `CertificateError::Other` with `Debug`.
struct PeerMismatch {
    found: Option<String>,
    expected: String,
}

impl fmt::Display for PeerMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.found {
            Some(found) => write!(f, "peer identity {found}, expected {}", self.expected),
            None => write!(
                f,
                "peer has no URI SAN identity, expected {}",
                self.expected
            ),
        }
    }
}

impl fmt::Debug for PeerMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for PeerMismatch {}

impl ServerCertVerifier for SpiffeVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = webpki::EndEntityCert::try_from(end_entity).map_err(pki_error)?;
        cert.verify_for_usage(
            self.algorithms.all,
            &self.roots.roots,
            intermediates,
            now,
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .map_err(pki_error)?;
        check_identity(end_entity, &self.peers, |uris| {
            self.peers.iter().any(|p| uris.contains(p))
        })?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A TLS listener's client verifier with `client_identities`: rustls's verifier checks the
/// chain, then the certificate must carry a URI SAN the listener accepts
/// (`tls::identities_accept`). Whether a certificate is asked for or required is the
/// inner verifier's.
#[derive(Debug)]
pub(super) struct ClientIdentities {
    pub(super) inner: Arc<dyn ClientCertVerifier>,
    /// Exact URI SANs, or prefixes ending in `*`; never empty.
    pub(super) identities: Vec<String>,
}

impl ClientCertVerifier for ClientIdentities {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        check_identity(end_entity, &self.identities, |uris| {
            ringside_config::tls::identities_accept(&self.identities, uris)
        })?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The verified certificate's URI SANs pass `accept`, else the handshake fails naming the
/// identity found and the `expected` ones.
fn check_identity(
    end_entity: &CertificateDer<'_>,
    expected: &[String],
    accept: impl Fn(&[String]) -> bool,
) -> Result<(), rustls::Error> {
    let (_, uris) = ringside_config::tls::san_names(end_entity)
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
    if accept(&uris) {
        return Ok(());
    }
    let mismatch = PeerMismatch {
        found: ringside_config::tls::identity_of(&uris).map(str::to_owned),
        expected: expected.join(" or "),
    };
    Err(rustls::Error::InvalidCertificate(CertificateError::Other(
        OtherError(Arc::new(mismatch)),
    )))
}

/// A rustls-webpki chain error as the rustls error a handshake reports.
fn pki_error(e: webpki::Error) -> rustls::Error {
    use webpki::Error as E;
    let kind = match e {
        E::BadDer | E::BadDerTime => CertificateError::BadEncoding,
        E::CertExpired { .. } | E::InvalidCertValidity => CertificateError::Expired,
        E::CertNotValidYet { .. } => CertificateError::NotValidYet,
        E::CertRevoked => CertificateError::Revoked,
        E::UnknownIssuer | E::CaUsedAsEndEntity | E::EndEntityUsedAsCa => {
            CertificateError::UnknownIssuer
        }
        E::InvalidSignatureForPublicKey
        | E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => CertificateError::BadSignature,
        other => CertificateError::Other(OtherError(Arc::new(other))),
    };
    rustls::Error::InvalidCertificate(kind)
}
