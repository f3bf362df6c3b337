//! PEM material: bytes → certificate chains, private keys, trust stores, each fully checked.
//!
//! Used by validation (`validate/tls.rs`), which adds the path of the offending key to each
//! message. The checks are those a handshake would otherwise fail on much later: the PEM
//! parses, there is a certificate, exactly one private key that rustls's ring provider can
//! sign with and that matches the leaf, the leaf has not expired, a trust bundle holds at
//! least one usable CA.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::tls::san_names;

/// A certificate chain as read: its DER certificates, leaf first.
pub(crate) fn certificates(
    bytes: &[u8],
    what: &str,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut certs = Vec::new();
    for item in CertificateDer::pem_slice_iter(bytes) {
        match item {
            Ok(c) => certs.push(c),
            Err(e) => return Err(format!("invalid PEM in {what}: {e}")),
        }
    }
    if certs.is_empty() {
        return Err(format!(
            "no certificate found in {what} (expected PEM \"BEGIN CERTIFICATE\" blocks)"
        ));
    }
    Ok(certs)
}

/// The one private key of `bytes` (PKCS#8, PKCS#1 or SEC1 PEM).
pub(crate) fn private_key(bytes: &[u8], what: &str) -> Result<PrivateKeyDer<'static>, String> {
    let mut keys = Vec::new();
    for item in PrivateKeyDer::pem_slice_iter(bytes) {
        match item {
            Ok(k) => keys.push(k),
            Err(e) => return Err(format!("invalid PEM in {what}: {e}")),
        }
    }
    match keys.len() {
        1 => Ok(keys.remove(0)),
        0 => Err(format!(
            "no private key found in {what} (expected a PKCS#8, PKCS#1 or SEC1 PEM key)"
        )),
        n => Err(format!(
            "{n} private keys found in {what}, expected exactly one"
        )),
    }
}

/// What the leaf of a chain says about itself.
pub(crate) struct Leaf {
    pub dns_names: Vec<String>,
    pub uri_names: Vec<String>,
    pub not_after: SystemTime,
}

/// Parses the leaf and rejects it when expired (at `now`).
pub(crate) fn leaf(der: &[u8], what: &str, now: SystemTime) -> Result<Leaf, String> {
    use x509_parser::prelude::FromDer;

    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der)
        .map_err(|e| format!("invalid certificate in {what}: {e}"))?;
    let secs = cert.validity().not_after.timestamp();
    let not_after = match u64::try_from(secs) {
        Ok(s) => UNIX_EPOCH + Duration::from_secs(s),
        Err(_) => UNIX_EPOCH,
    };
    if not_after < now {
        return Err(format!(
            "the certificate in {what} expired on {} (not after)",
            rfc3339(secs)
        ));
    }
    let (dns_names, uri_names) = san_names(der).map_err(|e| format!("{e} in {what}"))?;
    Ok(Leaf {
        dns_names,
        uri_names,
        not_after,
    })
}

/// Builds the rustls key from a chain and its key; `key_what`/`cert_what` name their sources.
pub(crate) fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: &PrivateKeyDer<'static>,
    cert_what: &str,
    key_what: &str,
) -> Result<Arc<CertifiedKey>, String> {
    let signer = rustls::crypto::ring::sign::any_supported_type(key)
        .map_err(|e| format!("unsupported private key in {key_what}: {e}"))?;
    let certified = CertifiedKey::new(chain, signer);
    match certified.keys_match() {
        Ok(()) => Ok(Arc::new(certified)),
        // The key cannot tell its public half: nothing to compare, rustls accepts it too.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(Arc::new(certified))
        }
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => Err(
            format!("the private key in {key_what} does not match the certificate in {cert_what}"),
        ),
        Err(e) => Err(format!(
            "the private key in {key_what} cannot be checked against {cert_what}: {e}"
        )),
    }
}

/// A trust store from PEM CA certificates: every certificate must be a usable trust anchor.
pub(crate) fn roots(bytes: &[u8], what: &str) -> Result<RootCertStore, String> {
    let certs = certificates(bytes, what)?;
    let mut store = RootCertStore::empty();
    for (i, cert) in certs.into_iter().enumerate() {
        store.add(cert).map_err(|e| {
            format!(
                "certificate {} in {what} is not a usable CA certificate: {e}",
                i + 1
            )
        })?;
    }
    Ok(store)
}

/// `2024-01-31T23:59:59Z` from Unix seconds (proleptic Gregorian, UTC).
pub(crate) fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn rfc3339_renders_utc_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_704_067_199), "2023-12-31T23:59:59Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }
}
