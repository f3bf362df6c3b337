//! A throwaway PKI for TLS tests (rcgen): a CA, leaves it signs, an expired leaf, and a leaf
//! from a second CA nobody trusts. Everything is written as PEM files in a temporary directory
//! that is removed when the [`TestPki`] is dropped.
//!
//! ```ignore
//! let pki = TestPki::new();
//! let (cert, key) = pki.leaf("origin", &["localhost", "127.0.0.1"], &[]);
//! // curl --cacert pki.ca_path() ...; grpc_client.py --tls-ca <ca> --authority localhost
//! ```
//!
//! Keys are ECDSA P-256. Leaves carry both the serverAuth and clientAuth extended key usages,
//! so one can serve as a server certificate or as an mTLS client certificate.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    date_time_ymd, BasicConstraints, Certificate, CertificateParams, DnType,
    ExtendedKeyUsagePurpose, Ia5String, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use tempfile::TempDir;

/// A certificate authority: its certificate and key.
struct Ca {
    cert: Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2100, 1, 1);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }
}

/// A CA (and a second, untrusted one) with PEM files in a temporary directory.
pub struct TestPki {
    dir: TempDir,
    ca: Ca,
    other_ca: Ca,
}

impl Default for TestPki {
    fn default() -> Self {
        TestPki::new()
    }
}

impl TestPki {
    /// Makes both CAs and writes `ca.crt` and `other-ca.crt`.
    pub fn new() -> TestPki {
        let pki = TestPki {
            dir: tempfile::Builder::new()
                .prefix("ringside-pki-")
                .tempdir()
                .unwrap(),
            ca: Ca::new("ringside test CA"),
            other_ca: Ca::new("ringside untrusted CA"),
        };
        std::fs::write(pki.ca_path(), pki.ca.cert.pem()).unwrap();
        std::fs::write(pki.other_ca_path(), pki.other_ca.cert.pem()).unwrap();
        pki
    }

    /// The directory holding every file.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA certificate (PEM): what clients trust (`curl --cacert`, `--tls-ca`).
    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// The CA certificate as PEM text (Python's grpc wants the bytes).
    pub fn ca_pem(&self) -> String {
        self.ca.cert.pem()
    }

    /// The second CA's certificate (PEM), which signs [`TestPki::other_ca_leaf`].
    pub fn other_ca_path(&self) -> PathBuf {
        self.dir.path().join("other-ca.crt")
    }

    /// A leaf signed by the CA, valid 2020–2099, with subject CN `name` and subject alternative
    /// names `dns` (an entry that parses as an IP address becomes an IP SAN) and `uri` (e.g.
    /// SPIFFE IDs). Writes `NAME.crt` and `NAME.key` (PEM); returns (cert, key).
    pub fn leaf(&self, name: &str, dns: &[&str], uri: &[&str]) -> (PathBuf, PathBuf) {
        self.write_leaf(&self.ca, name, name, dns, uri, false)
    }

    /// Like [`TestPki::leaf`], but it expired in 2001 (valid 2000-01-01 to 2001-01-01). Writes
    /// `NAME.expired.crt` and `NAME.expired.key`.
    pub fn expired_leaf(&self, name: &str, dns: &[&str], uri: &[&str]) -> (PathBuf, PathBuf) {
        let file = format!("{name}.expired");
        self.write_leaf(&self.ca, name, &file, dns, uri, true)
    }

    /// Like [`TestPki::leaf`], but signed by the other CA, which no client trusts. Writes
    /// `NAME.other-ca.crt` and `NAME.other-ca.key`.
    pub fn other_ca_leaf(&self, name: &str, dns: &[&str], uri: &[&str]) -> (PathBuf, PathBuf) {
        let file = format!("{name}.other-ca");
        self.write_leaf(&self.other_ca, name, &file, dns, uri, false)
    }

    fn write_leaf(
        &self,
        ca: &Ca,
        name: &str,
        file: &str,
        dns: &[&str],
        uri: &[&str],
        expired: bool,
    ) -> (PathBuf, PathBuf) {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.subject_alt_names = dns
            .iter()
            .map(|d| match d.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(Ia5String::try_from(*d).unwrap()),
            })
            .chain(
                uri.iter()
                    .map(|u| SanType::URI(Ia5String::try_from(*u).unwrap())),
            )
            .collect();
        params.is_ca = IsCa::NoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        (params.not_before, params.not_after) = if expired {
            (date_time_ymd(2000, 1, 1), date_time_ymd(2001, 1, 1))
        } else {
            (date_time_ymd(2020, 1, 1), date_time_ymd(2099, 1, 1))
        };
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca.cert, &ca.key).unwrap();
        let cert_path = self.dir.path().join(format!("{file}.crt"));
        let key_path = self.dir.path().join(format!("{file}.key"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }
}
