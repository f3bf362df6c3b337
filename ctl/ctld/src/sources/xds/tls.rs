//! TLS to the xDS server: `--xds https://HOST:PORT` verifies the server against `--xds-ca`
//! (else the system's roots) and, with `--xds-cert`/`--xds-key`, presents a client
//! certificate (mTLS), with tonic's rustls (the `ring` provider, as the proxy's TLS).
//! The files are read once at start: a missing or unreadable one stops ctld with its path.

use std::path::Path;

use anyhow::Context;
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

/// The TLS settings of the stream to `address`; `None` for `http://`.
pub fn client_config(
    address: &str,
    ca: Option<&Path>,
    identity: Option<(&Path, &Path)>,
) -> anyhow::Result<Option<ClientTlsConfig>> {
    if !address.starts_with("https://") {
        anyhow::ensure!(
            ca.is_none() && identity.is_none(),
            "--xds-ca, --xds-cert and --xds-key need an https:// --xds server"
        );
        return Ok(None);
    }
    let mut config = ClientTlsConfig::new();
    config = match ca {
        Some(path) => config.ca_certificate(Certificate::from_pem(read(path, "--xds-ca")?)),
        None => config.with_native_roots(),
    };
    if let Some((cert, key)) = identity {
        config = config.identity(Identity::from_pem(
            read(cert, "--xds-cert")?,
            read(key, "--xds-key")?,
        ));
    }
    Ok(Some(config))
}

fn read(path: &Path, flag: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{flag} {}", path.display()))
}

/// `e` and its sources, `: `-separated (tonic's transport error alone says only
/// "transport error"; the source says which certificate check failed).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let text = s.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = s.source();
    }
    out
}
