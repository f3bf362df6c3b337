//! The engine's layers import only downward (ARCHITECTURE.md, "Layers"):
//!
//! ```text
//! 1 cx          runtime context: driver, I/O helpers, events, connections, errors, metrics,
//!               traces, telemetry, TLS contexts, balancers
//! 2 upstream    the two upstream clients (HTTP/1.1, HTTP/2), pools, body relays, tunnels
//! 3 stage,      the stages, the pipeline that runs them, the answers the proxy makes itself,
//!   pipeline    and the worker's view of a snapshot
//! 4 downstream  the protocols clients speak: HTTP/1.1, HTTP/2, detection, TCP listeners
//! 5 worker,     the accept loops and the control thread's side
//!   server
//! ```
//!
//! This test reads every source file of the crate and fails on a `crate::` path that points
//! to a higher layer than the file's own, naming the file, the line and both layers.

use std::path::{Path, PathBuf};

/// The layer of a top-level module of the crate.
fn layer(module: &str) -> Option<u8> {
    Some(match module {
        "cx" => 1,
        "upstream" => 2,
        "stage" | "pipeline" => 3,
        "downstream" => 4,
        "worker" | "server" => 5,
        _ => return None,
    })
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn layers_import_only_downward() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut unknown = Vec::new();
    let mut upward = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).expect("under src");
        let top = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .map(|s| s.trim_end_matches(".rs"))
            .unwrap_or_default();
        if top == "lib" {
            continue;
        }
        let Some(own) = layer(top) else {
            unknown.push(rel.display().to_string());
            continue;
        };
        let text = std::fs::read_to_string(file).expect("read source");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for (i, _) in code.match_indices("crate::") {
                let rest = code.get(i + "crate::".len()..).unwrap_or_default();
                let module: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                match layer(&module) {
                    Some(l) if l > own => upward.push(format!(
                        "{}:{}: layer {own} ({top}) imports layer {l} (crate::{module})",
                        rel.display(),
                        n + 1
                    )),
                    Some(_) => {}
                    None => unknown.push(format!("{}:{}: crate::{module}", rel.display(), n + 1)),
                }
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "modules outside the layer table (add them to `layer`):\n{}",
        unknown.join("\n")
    );
    assert!(
        upward.is_empty(),
        "imports that point up:\n{}",
        upward.join("\n")
    );
}
