//! TLS to the xDS server (`--xds https://`, `--xds-ca`, `--xds-cert`, `--xds-key`), end to
//! end: the real ADS server (`tests/xds/ads_server.py`) serving grpcio's TLS and requiring a
//! client certificate; ctld verifies it against its CA, presents its own certificate, and
//! the node's proxy serves what the server sent. A server whose certificate another CA
//! signed fails the stream with the certificate error in ctld's log, and the proxy keeps
//! serving.

#![allow(clippy::unwrap_used)]

mod common;
mod xds;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use common::*;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair,
};

/// A subject of its own (rcgen's default is the same for every certificate, which would
/// make a leaf look self-signed).
fn subject(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}
use xds::*;

fn ca(name: &str) -> (Certificate, KeyPair) {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name = subject(name);
    let key = KeyPair::generate().unwrap();
    (p.self_signed(&key).unwrap(), key)
}

/// A certificate for `san` signed by `ca`, written as `dir/name.pem` and `dir/name-key.pem`.
fn leaf(ca: &(Certificate, KeyPair), san: &str, dir: &Path, name: &str) -> [PathBuf; 2] {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(vec![san.to_owned()]).unwrap();
    p.distinguished_name = subject(name);
    let cert = p.signed_by(&key, &ca.0, &ca.1).unwrap();
    let paths = [
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}-key.pem")),
    ];
    std::fs::write(&paths[0], cert.pem()).unwrap();
    std::fs::write(&paths[1], key.serialize_pem()).unwrap();
    paths
}

fn wait_for_opt(mut f: impl FnMut() -> Option<()>) -> Option<()> {
    let deadline = std::time::Instant::now() + WAIT;
    while std::time::Instant::now() < deadline {
        if f().is_some() {
            return Some(());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    None
}

#[test]
fn xds_over_mtls_serves_and_a_server_of_another_ca_is_refused() {
    let dirs = Dirs::new();
    let dir = dirs.tmp.path();
    let (ca1, ca2) = (ca("ctld's CA"), ca("another CA"));
    let ca1_path = dir.join("ca1.pem");
    std::fs::write(&ca1_path, ca1.0.pem()).unwrap();
    let server = leaf(&ca1, "127.0.0.1", dir, "server");
    let client = leaf(&ca1, "ringside-ctld", dir, "client");
    let stranger = leaf(&ca2, "127.0.0.1", dir, "stranger");

    let args = |cert: &[PathBuf; 2], client_ca: Option<&Path>| {
        let mut a: Vec<&OsStr> = vec![
            OsStr::new("--tls"),
            cert[0].as_os_str(),
            cert[1].as_os_str(),
        ];
        if let Some(ca) = client_ca {
            a.extend([OsStr::new("--client-ca"), ca.as_os_str()]);
        }
        a.iter().map(|s| s.to_os_string()).collect::<Vec<_>>()
    };
    let start = |port: Option<u16>, a: Vec<std::ffi::OsString>| {
        let a: Vec<&OsStr> = a.iter().map(|s| s.as_os_str()).collect();
        Ads::start_with(port, &a)
    };
    let mut ads = start(None, args(&server, Some(&ca1_path)));
    let (a1, b) = (Origin::start("a1"), Origin::start("b"));
    let port = free_port();
    dirs.write_config("default.toml", "[proxy]\nworkers = 1\n");
    ads.set("v1", resources_v1(port, &a1, &b));
    let url = format!("https://127.0.0.1:{}", ads.port);
    let mut ctld_args = ctld_args(&url, free_port());
    for (flag, path) in [
        ("--xds-ca", &ca1_path),
        ("--xds-cert", &client[0]),
        ("--xds-key", &client[1]),
    ] {
        ctld_args.extend([flag.to_owned(), path.display().to_string()]);
    }
    let ctld = start_ctld(&dirs, &ctld_args);
    let _proxy = Proxy::start_from_ctld(&ctld.socket, "n1", dir);
    wait_for("the xDS routes served over mTLS", WAIT, || {
        (body(port, "/a/x").as_deref() == Some("a1")).then_some(())
    });
    wait_acked(&mut ads, "v1");
    assert_eq!(ads.state()["streams"].as_array().unwrap().len(), 1);

    // The same address, now a server whose certificate ctld's CA did not sign.
    let ads_port = ads.port;
    ads.kill();
    let _stranger = start(Some(ads_port), args(&stranger, None));
    let refused = wait_for_opt(|| {
        let log = ctld.log();
        let after = log.rsplit("xDS stream ended").next()?;
        (log.matches("xDS stream ended").count() >= 2 && after.contains("UnknownIssuer"))
            .then_some(())
    });
    let log = ctld.log();
    assert!(
        refused.is_some() && log.contains("invalid peer certificate"),
        "a clear error:\n{log}"
    );
    assert_eq!(
        body(port, "/a/x").as_deref(),
        Some("a1"),
        "the proxy keeps serving"
    );
}
