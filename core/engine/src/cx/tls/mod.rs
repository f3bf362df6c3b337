//! TLS: the rustls configurations a snapshot serves with, built once per snapshot.
//!
//! Where it sits: the control thread builds [`TlsContexts`] from each validated `Config`
//! (`listeners[].tls`/`mtls`, `clusters[].tls`/`mtls`, `[mesh].identity`, all loaded and
//! checked by ringside-config); workers take `Arc`s out of it per connection: a
//! `ServerConfig` for each TLS listener (accept side), a `ClientConfig` for each TLS cluster
//! (connect side). Nothing here does I/O on the data path.
//!
//! - Listeners with `tls` pick a certificate by SNI (`resolve.rs`); `mtls` listeners present
//!   the mesh identity and verify clients against the mesh trust bundle (required when
//!   strict, verified when presented when permissive).
//! - Session resumption (stateful cache and stateless tickets) is shared by every
//!   `ServerConfig` built for the same listener and mode, process-wide, so it survives
//!   reloads but a session from one listener never resumes on another (a ticket from a
//!   plain-TLS listener must not skip an mTLS listener's client-certificate check).
//! - Clusters with `mtls` verify the upstream's SPIFFE identity (`verify.rs`), not a DNS
//!   name.
//! - `watch.rs` notices rotated certificate files.
// Until the engine's accept and connect paths use every entry point (remove then).
#![allow(dead_code)]

mod resolve;
mod verify;
mod watch;
pub(crate) mod xfcc;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use ringside_config::{
    Cluster, Config, Listener, ListenerKind, MeshIdentity, MtlsMode, UpstreamProtocol,
};
use rustls::crypto::CryptoProvider;
use rustls::server::{ProducesTickets, StoresServerSessions, WebPkiClientVerifier};
use rustls::sign::SingleCertAndKey;
use rustls::{ClientConfig, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::{CertificateDer, ServerName};

#[allow(unused_imports)] // Until the control thread starts a watcher (remove then).
pub(crate) use watch::{spawn_watcher, Watcher};

/// TLS 1.3 first, TLS 1.2 for older peers.
const VERSIONS: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];
/// Sessions remembered per listener for stateful resumption (TLS 1.2 session ids).
const SESSION_CACHE_SIZE: usize = 4096;

/// The ring provider, shared.
fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    Arc::clone(PROVIDER.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider())))
}

/// One listener's resumption state: what every `ServerConfig` built for it shares.
#[derive(Clone)]
struct Resumption {
    cache: Arc<dyn StoresServerSessions>,
    tickets: Arc<dyn ProducesTickets>,
}

/// The resumption state of `key` (listener name and mode), created on first use and kept
/// for the life of the process. Only the control thread calls this, at build time.
fn resumption(key: String) -> Result<Resumption, String> {
    static STATES: OnceLock<Mutex<HashMap<String, Resumption>>> = OnceLock::new();
    let states = STATES.get_or_init(|| Mutex::new(HashMap::new()));
    let mut states = states.lock().map_err(|_| "resumption state poisoned")?;
    if let Some(r) = states.get(&key) {
        return Ok(r.clone());
    }
    let tickets = rustls::crypto::ring::Ticketer::new()
        .map_err(|e| format!("cannot create a session ticketer: {e}"))?;
    let r = Resumption {
        cache: rustls::server::ServerSessionMemoryCache::new(SESSION_CACHE_SIZE),
        tickets,
    };
    states.insert(key, r.clone());
    Ok(r)
}

/// The rustls server configuration of listener `l`; `Ok(None)` when it has neither `tls`
/// nor `mtls`. `alpn_http`: offer `h2` and `http/1.1` (HTTP listeners); no ALPN otherwise.
pub(crate) fn server_config(
    l: &Listener,
    mesh: Option<&MeshIdentity>,
    alpn_http: bool,
) -> Result<Option<Arc<ServerConfig>>, String> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| format!("listener {:?}: {e}", l.name))?;
    let (mut config, mode) = match (&l.tls, l.mtls) {
        (None, None) => return Ok(None),
        (Some(tls), _) => {
            let resolver = resolve::BySni::new(&tls.certificates)
                .ok_or_else(|| format!("listener {:?}: no certificate", l.name))?;
            // `ca`: a client certificate is asked for and verified (required or not).
            let (verifier, mode) = match &tls.client_roots {
                None => (WebPkiClientVerifier::no_client_auth(), "tls".to_owned()),
                Some(roots) => {
                    let v =
                        WebPkiClientVerifier::builder_with_provider(Arc::clone(roots), provider());
                    let v = if tls.require_client_certificate {
                        v
                    } else {
                        v.allow_unauthenticated()
                    };
                    let mut v = v
                        .build()
                        .map_err(|e| format!("listener {:?}: client verifier: {e}", l.name))?;
                    if !tls.client_identities.is_empty() {
                        v = Arc::new(verify::ClientIdentities {
                            inner: v,
                            identities: tls.client_identities.clone(),
                        });
                    }
                    // A new CA or identity list starts new sessions: resumed ones skip
                    // client verification.
                    let mode = format!(
                        "tls-clients-{}-{}-{:?}",
                        tls.require_client_certificate,
                        roots_hash(roots),
                        tls.client_identities
                    );
                    (v, mode)
                }
            };
            let config = builder
                .with_client_cert_verifier(verifier)
                .with_cert_resolver(Arc::new(resolver));
            (config, mode)
        }
        (None, Some(mode)) => {
            let mesh = mesh
                .ok_or_else(|| format!("listener {:?}: mtls without a [mesh] identity", l.name))?;
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::clone(&mesh.roots), provider());
            let verifier = match mode {
                MtlsMode::Strict => verifier,
                MtlsMode::Permissive => verifier.allow_unauthenticated(),
            }
            .build()
            .map_err(|e| format!("listener {:?}: client verifier: {e}", l.name))?;
            let config = builder
                .with_client_cert_verifier(verifier)
                .with_cert_resolver(Arc::new(SingleCertAndKey::from(Arc::clone(
                    &mesh.identity.key,
                ))));
            // A new trust bundle starts new sessions: resumed ones skip client verification.
            let mode = format!("mtls-{mode:?}-{}", roots_hash(&mesh.roots));
            (config, mode)
        }
    };
    let resumption = resumption(format!("{}\u{0}{mode}", l.name))?;
    config.session_storage = resumption.cache;
    config.ticketer = resumption.tickets;
    if alpn_http {
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    }
    Ok(Some(Arc::new(config)))
}

/// The client settings of a JWKS fetch (`cx/jwks/`): the server's certificate must chain
/// to `roots`; HTTP/1.1 only.
pub(crate) fn jwks_client(roots: Arc<rustls::RootCertStore>) -> Result<Arc<ClientConfig>, String> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The rustls client configuration of cluster `c`; `Ok(None)` for a plaintext cluster.
pub(crate) fn client_config(
    c: &Cluster,
    mesh: Option<&MeshIdentity>,
) -> Result<Option<Arc<ClientConfig>>, String> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| format!("cluster {:?}: {e}", c.name))?;
    let mut config = match (&c.tls, &c.mtls) {
        (None, None) => return Ok(None),
        (Some(tls), _) if !tls.identities.is_empty() => {
            // `identities`: the chain to `ca` and one of these URI SANs, not the name.
            let verifier = verify::SpiffeVerifier::new(
                Arc::clone(&tls.roots),
                tls.identities.clone(),
                &provider(),
            );
            let builder = builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier));
            match &tls.client {
                None => builder.with_no_client_auth(),
                Some(k) => builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(
                    Arc::clone(&k.key),
                ))),
            }
        }
        (Some(tls), _) => {
            let builder = builder.with_root_certificates(Arc::clone(&tls.roots));
            match &tls.client {
                None => builder.with_no_client_auth(),
                Some(k) => builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(
                    Arc::clone(&k.key),
                ))),
            }
        }
        (None, Some(mtls)) => {
            let mesh = mesh
                .ok_or_else(|| format!("cluster {:?}: mtls without a [mesh] identity", c.name))?;
            let verifier = verify::SpiffeVerifier::new(
                Arc::clone(&mesh.roots),
                vec![mtls.peer.clone()],
                &provider(),
            );
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_client_cert_resolver(Arc::new(SingleCertAndKey::from(Arc::clone(
                    &mesh.identity.key,
                ))))
        }
    };
    config.alpn_protocols = match c.protocol {
        UpstreamProtocol::Http1 => vec![b"http/1.1".to_vec()],
        UpstreamProtocol::Http2 => vec![b"h2".to_vec()],
        UpstreamProtocol::Auto => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
    };
    Ok(Some(Arc::new(config)))
}

/// The server name to connect to `addr` of cluster `c` with: the configured `sni`, else the
/// IP address (verified against the certificate's IP SANs; rustls sends no SNI for it).
pub(crate) fn sni_for(c: &Cluster, addr: SocketAddr) -> ServerName<'static> {
    c.tls
        .as_ref()
        .and_then(|t| t.sni.clone())
        .unwrap_or_else(|| ServerName::IpAddress(addr.ip().into()))
}

/// The identity of a verified peer: the URI SAN of its leaf certificate (`spiffe://`
/// preferred). `None` without certificates or without a URI SAN.
pub(crate) fn peer_identity(certs: &[CertificateDer<'_>]) -> Option<String> {
    ringside_config::tls::identity_of_der(certs.first()?)
}

/// Every TLS configuration of one snapshot, built once on the control thread.
pub(crate) struct TlsContexts {
    /// By listener name; only listeners with `tls` or `mtls`.
    servers: HashMap<String, Arc<ServerConfig>>,
    /// The certificates each of those listeners serves, as X-Forwarded-Client-Cert's `By=`
    /// needs them.
    served: HashMap<String, Arc<xfcc::Served>>,
    /// By cluster index; `None` for plaintext clusters.
    clients: Vec<Option<Arc<ClientConfig>>>,
}

impl TlsContexts {
    /// Builds every configuration of `config`, or names the first listener or cluster
    /// whose configuration cannot be built (for the control thread, to refuse a snapshot).
    pub(crate) fn try_build(config: &Config) -> Result<TlsContexts, String> {
        let mesh = config.mesh.as_ref();
        let mut servers = HashMap::new();
        for l in &config.listeners {
            let http = matches!(l.kind, ListenerKind::Http(_));
            if let Some(server) = server_config(l, mesh, http)? {
                servers.insert(l.name.clone(), server);
            }
        }
        let clients = config
            .clusters
            .iter()
            .map(|c| client_config(c, mesh))
            .collect::<Result<Vec<_>, _>>()?;
        let served = served(config);
        Ok(TlsContexts {
            servers,
            served,
            clients,
        })
    }

    /// Builds every configuration of `config`, failing closed: a listener or cluster whose
    /// configuration cannot be built (validation makes that unexpected) gets one that fails
    /// every handshake, logged once here; never plaintext in place of TLS.
    pub(crate) fn build(config: &Config) -> TlsContexts {
        let mesh = config.mesh.as_ref();
        let mut servers = HashMap::new();
        for l in &config.listeners {
            let http = matches!(l.kind, ListenerKind::Http(_));
            match server_config(l, mesh, http) {
                Ok(Some(server)) => {
                    servers.insert(l.name.clone(), server);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, "TLS listener refuses every handshake");
                    servers.insert(l.name.clone(), refusing_server());
                }
            }
        }
        let clients = config
            .clusters
            .iter()
            .map(|c| {
                client_config(c, mesh).unwrap_or_else(|e| {
                    tracing::error!(error = %e, "TLS cluster refuses every upstream");
                    Some(refusing_client())
                })
            })
            .collect();
        let served = served(config);
        TlsContexts {
            servers,
            served,
            clients,
        }
    }

    /// The certificates listener `listener` serves (`tls` or `mtls`).
    pub(crate) fn served(&self, listener: &str) -> Option<&Arc<xfcc::Served>> {
        self.served.get(listener)
    }

    /// The server configuration of a listener with `tls` or `mtls`.
    pub(crate) fn server(&self, listener: &str) -> Option<&Arc<ServerConfig>> {
        self.servers.get(listener)
    }

    /// The client configuration of the cluster at `cluster_index` (a `ClusterId`'s index),
    /// when it has `tls` or `mtls`.
    pub(crate) fn client(&self, cluster_index: usize) -> Option<&Arc<ClientConfig>> {
        self.clients.get(cluster_index).and_then(Option::as_ref)
    }
}

/// What each TLS listener serves, for `By=`.
fn served(config: &Config) -> HashMap<String, Arc<xfcc::Served>> {
    let mesh = config.mesh.as_ref();
    config
        .listeners
        .iter()
        .filter_map(|l| {
            let served = match (&l.tls, l.mtls, mesh) {
                (Some(tls), _, _) => xfcc::Served::of_listener(&tls.certificates),
                (None, Some(_), Some(mesh)) => xfcc::Served::of_mesh(mesh),
                _ => return None,
            };
            Some((l.name.clone(), Arc::new(served)))
        })
        .collect()
}

/// A server configuration without a certificate: every handshake fails.
fn refusing_server() -> Arc<ServerConfig> {
    #[derive(Debug)]
    struct NoCertificate;
    impl rustls::server::ResolvesServerCert for NoCertificate {
        fn resolve(
            &self,
            _: rustls::server::ClientHello<'_>,
        ) -> Option<Arc<rustls::sign::CertifiedKey>> {
            None
        }
    }
    Arc::new(
        ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap_or_else(|_| ServerConfig::builder_with_protocol_versions(VERSIONS))
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(NoCertificate)),
    )
}

/// A client configuration that trusts nothing: every upstream fails verification.
fn refusing_client() -> Arc<ClientConfig> {
    Arc::new(
        ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap_or_else(|_| ClientConfig::builder_with_protocol_versions(VERSIONS))
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
    )
}

/// FNV-1a over a trust store's anchors: tells one trust bundle from another.
fn roots_hash(roots: &rustls::RootCertStore) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for anchor in &roots.roots {
        for part in [&anchor.subject[..], &anchor.subject_public_key_info[..]] {
            for &b in part
                .iter()
                .chain(&u64::try_from(part.len()).unwrap_or(0).to_le_bytes())
            {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
    }
    h
}
