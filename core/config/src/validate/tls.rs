//! TLS keys: certificates with keys, trust stores, the mesh identity, listener `tls`/`mtls`
//! and cluster `tls`/`mtls`.
//!
//! Every file is read and checked here (through `crate::material`), so a configuration that
//! validates can be served without a handshake failing on its own material. Relative paths
//! resolve against `Validator::base_dir`; every byte read feeds `Validator::material`, the
//! hash that tells a rotation from an unchanged reload.

use std::path::PathBuf;
use std::sync::Arc;

use rustls_pki_types::ServerName;

use super::Validator;
use crate::material;
use crate::raw::{FileCertKey, FileClusterMtls, FileClusterTls, FileListenerTls, FileMeshIdentity};
use crate::tls::{self, CertKey, ListenerTls, MeshIdentity, UpstreamMtls, UpstreamTls};

/// The bytes of one file or inline PEM value, and how to name it in messages.
pub(super) struct Material {
    /// The resolved file; `None` for inline PEM.
    path: Option<PathBuf>,
    pub(super) bytes: Vec<u8>,
    /// `"a.pem"` as written, or `the inline PEM`.
    pub(super) what: String,
    /// The error path of the key it came from (`listeners[0].tls.certificates[0].cert`).
    at: String,
}

/// A `{ file, file_pem }` pair of keys: (file key, file value), (pem key, pem value).
pub(super) type Pair<'a> = ((&'a str, Option<&'a String>), (&'a str, Option<&'a String>));

impl Validator {
    /// `Ok(None)` when neither key of the pair is given; `Err` (recorded) when both are or
    /// the file cannot be read.
    pub(super) fn material(&mut self, p: &str, pair: Pair<'_>) -> Result<Option<Material>, ()> {
        let ((file_key, file), (pem_key, pem)) = pair;
        match (file, pem) {
            (None, None) => Ok(None),
            (Some(_), Some(_)) => {
                self.err(
                    p,
                    format!("give one of \"{file_key}\" and \"{pem_key}\", not both"),
                );
                Err(())
            }
            (None, Some(pem)) => {
                self.material.write(pem.as_bytes());
                Ok(Some(Material {
                    path: None,
                    bytes: pem.as_bytes().to_vec(),
                    what: "the inline PEM".into(),
                    at: format!("{p}.{pem_key}"),
                }))
            }
            (Some(file), None) => {
                let at = format!("{p}.{file_key}");
                if file.is_empty() || file.contains('\0') {
                    self.err(at, format!("invalid path {file:?}"));
                    return Err(());
                }
                let path = match &self.base_dir {
                    Some(base) => base.join(file),
                    None => PathBuf::from(file),
                };
                match std::fs::read(&path) {
                    Ok(bytes) => {
                        self.material.write(&bytes);
                        Ok(Some(Material {
                            path: Some(path),
                            bytes,
                            what: format!("{file:?}"),
                            at,
                        }))
                    }
                    Err(e) => {
                        self.err(at, format!("cannot read {file:?}: {e}"));
                        Err(())
                    }
                }
            }
        }
    }

    /// Like `material`, but one of the pair is required.
    fn required(&mut self, p: &str, pair: Pair<'_>) -> Option<Material> {
        let ((file_key, _), (pem_key, _)) = pair;
        match self.material(p, pair) {
            Ok(Some(m)) => Some(m),
            Ok(None) => {
                self.err(
                    p,
                    format!("missing field \"{file_key}\" (or \"{pem_key}\")"),
                );
                None
            }
            Err(()) => None,
        }
    }

    /// A chain and its key, both read and checked against each other.
    fn cert_key(&mut self, cert: Material, key: Material) -> Option<CertKey> {
        // Both halves are checked before giving up, so both mistakes show at once.
        let chain = material::certificates(&cert.bytes, &cert.what)
            .map_err(|m| self.err(&*cert.at, m))
            .ok();
        let private = material::private_key(&key.bytes, &key.what)
            .map_err(|m| self.err(&*key.at, m))
            .ok();
        let (chain, private) = (chain?, private?);
        let leaf_der = chain.first()?;
        let leaf = match material::leaf(leaf_der, &cert.what, self.now) {
            Ok(l) => l,
            Err(m) => return self.fail(cert.at, m),
        };
        let certified = match material::certified_key(chain, &private, &cert.what, &key.what) {
            Ok(k) => k,
            Err(m) => return self.fail(key.at, m),
        };
        Some(CertKey {
            cert_path: cert.path,
            key_path: key.path,
            key: certified,
            dns_names: leaf.dns_names,
            uri_names: leaf.uri_names,
            not_after: leaf.not_after,
        })
    }

    fn file_cert_key(&mut self, p: &str, c: &FileCertKey) -> Option<CertKey> {
        let cert = self.required(
            p,
            (("cert", c.cert.as_ref()), ("cert_pem", c.cert_pem.as_ref())),
        );
        let key = self.required(
            p,
            (("key", c.key.as_ref()), ("key_pem", c.key_pem.as_ref())),
        );
        self.cert_key(cert?, key?)
    }

    /// A trust store of at least one CA, with the file it came from.
    fn roots(&mut self, m: Material) -> Option<(Option<PathBuf>, Arc<rustls::RootCertStore>)> {
        match material::roots(&m.bytes, &m.what) {
            Ok(store) => Some((m.path, Arc::new(store))),
            Err(msg) => self.fail(m.at, msg),
        }
    }

    pub(super) fn mesh_identity(&mut self, m: &FileMeshIdentity) -> Option<MeshIdentity> {
        let p = "mesh.identity";
        let cert = self.required(
            p,
            (("cert", m.cert.as_ref()), ("cert_pem", m.cert_pem.as_ref())),
        );
        let key = self.required(
            p,
            (("key", m.key.as_ref()), ("key_pem", m.key_pem.as_ref())),
        );
        let bundle = self.required(
            p,
            (
                ("trust_bundle", m.trust_bundle.as_ref()),
                ("trust_bundle_pem", m.trust_bundle_pem.as_ref()),
            ),
        );
        let roots = bundle.and_then(|b| self.roots(b));
        let (cert_at, cert_what) = cert.as_ref().map(|c| (c.at.clone(), c.what.clone()))?;
        let identity = self.cert_key(cert?, key?)?;
        let Some(spiffe_id) = tls::identity_of(&identity.uri_names).map(str::to_owned) else {
            self.err(
                cert_at,
                format!(
                    "the certificate in {cert_what} has no URI subject alternative name (the SPIFFE id, e.g. \"spiffe://cluster.local/ns/NS/sa/SA\")"
                ),
            );
            return None;
        };
        let (trust_bundle_path, roots) = roots?;
        Some(MeshIdentity {
            identity,
            trust_bundle_path,
            roots,
            spiffe_id,
        })
    }

    pub(super) fn listener_tls(&mut self, p: &str, t: &FileListenerTls) -> Option<ListenerTls> {
        if t.certificates.is_empty() {
            self.err(
                format!("{p}.certificates"),
                "at least one certificate is required",
            );
            return None;
        }
        let certificates: Vec<Option<CertKey>> = t
            .certificates
            .iter()
            .enumerate()
            .map(|(j, c)| self.file_cert_key(&format!("{p}.certificates[{j}]"), c))
            .collect();
        let ca = self.material(p, (("ca", t.ca.as_ref()), ("ca_pem", t.ca_pem.as_ref())));
        let require = t.require_client_certificate.unwrap_or(false);
        let client = match ca {
            Ok(Some(m)) => Some(self.roots(m).map(|(path, roots)| (path, Some(roots)))),
            Ok(None) if require => self.fail(
                format!("{p}.require_client_certificate"),
                "needs \"ca\" or \"ca_pem\" (the CA clients' certificates must chain to)",
            ),
            Ok(None) => Some(Some((None, None))),
            Err(()) => None,
        };
        let pc = format!("{p}.client_identities");
        let client_identities = self.principals(&pc, t.client_identities.as_ref());
        match &t.client_identities {
            Some(list) if list.is_empty() => {
                self.err(pc, "must not be empty (leave it out for any identity)")
            }
            Some(_) if matches!(client, Some(Some((None, None)))) => self.err(
                pc,
                "needs \"ca\" or \"ca_pem\" (the CA clients' certificates must chain to)",
            ),
            _ => {}
        }
        let (ca_path, client_roots) = client.flatten()?;
        Some(ListenerTls {
            certificates: certificates.into_iter().collect::<Option<Vec<_>>>()?,
            client_roots,
            ca_path,
            require_client_certificate: require,
            client_identities,
        })
    }

    pub(super) fn upstream_tls(&mut self, p: &str, t: &FileClusterTls) -> Option<UpstreamTls> {
        let ca = self.material(p, (("ca", t.ca.as_ref()), ("ca_pem", t.ca_pem.as_ref())));
        let roots = match ca {
            Ok(Some(m)) => self.roots(m).map(|(path, roots)| (path, roots, false)),
            Ok(None) => Some((None, tls::system_roots(), true)),
            Err(()) => None,
        };
        let sni = match &t.sni {
            None => Ok(None),
            Some(s) => ServerName::try_from(s.clone()).map(Some).map_err(|_| {
                self.err(
                    format!("{p}.sni"),
                    format!("invalid server name {s:?}: must be a DNS name or an IP address"),
                );
            }),
        };
        let cert = self.material(
            p,
            (("cert", t.cert.as_ref()), ("cert_pem", t.cert_pem.as_ref())),
        );
        let key = self.material(
            p,
            (("key", t.key.as_ref()), ("key_pem", t.key_pem.as_ref())),
        );
        let client = match (cert, key) {
            (Ok(None), Ok(None)) => Some(None),
            (Ok(Some(c)), Ok(Some(k))) => self.cert_key(c, k).map(Some),
            (Ok(Some(_)), Ok(None)) | (Ok(None), Ok(Some(_))) => self.fail(
                    p,
                    "a client certificate needs both \"cert\" (or \"cert_pem\") and \"key\" (or \"key_pem\")",
                ),
            _ => None,
        };
        let identities = t.identities.clone().unwrap_or_default();
        if t.identities.as_ref().is_some_and(Vec::is_empty) {
            self.err(
                format!("{p}.identities"),
                "at least one identity, or leave it out",
            );
        }
        for (i, id) in identities.iter().enumerate() {
            if !is_identity_uri(id) {
                self.err(
                    format!("{p}.identities[{i}]"),
                    format!(
                        "{id:?} is not a URI (e.g. \"spiffe://cluster.local/ns/shop/sa/orders\")"
                    ),
                );
            }
        }
        let (ca_path, roots, system_roots) = roots?;
        Some(UpstreamTls {
            sni: sni.ok()?,
            ca_path,
            system_roots,
            roots,
            client: client?,
            identities,
        })
    }

    pub(super) fn upstream_mtls(&mut self, p: &str, m: &FileClusterMtls) -> Option<UpstreamMtls> {
        if !is_identity_uri(&m.peer) {
            self.err(
                format!("{p}.peer"),
                format!(
                    "invalid identity {:?}: must be a URI such as \"spiffe://cluster.local/ns/NS/sa/SA\"",
                    m.peer
                ),
            );
            return None;
        }
        Some(UpstreamMtls {
            peer: m.peer.clone(),
        })
    }
}

/// Whether `s` can be a certificate's URI SAN identity: a scheme, no whitespace or control.
fn is_identity_uri(s: &str) -> bool {
    s.contains(':')
        && !s
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
}
