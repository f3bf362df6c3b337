//! Configuration text → validate → snapshot: `ringside_config::parse_in`, then a
//! `Snapshot`, as the control thread does with a file or a control message.
//!
//! Invariant: never panics on any text; a configuration it cannot accept is rejected with a
//! non-empty `ConfigErrors`, each error with a message. Properties: validation is a function
//! of the text (validating it twice gives the same errors, or the same content and material
//! hashes), and an accepted configuration keeps its source text exactly and validates again
//! from it (`reload_material`) to the same hashes.
//!
//! Hermetic: relative certificate paths resolve against an empty directory, and a text that
//! could name a device or a kernel file (`dev`, `proc`, `sys`, or a TOML `\u` escape that might
//! spell one) is skipped, so an input never reads an endless file.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ringside_config::{parse_in, reload_material, Snapshot};

fn base_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // One empty directory shared by every run (nothing is ever written to it): libFuzzer
        // ends the process with exit(), so a per-process directory would be left behind.
        let dir = std::env::temp_dir().join("ringside-fuzz-config-empty");
        std::fs::create_dir_all(&dir).expect("create the fuzz base directory");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if ["dev", "proc", "sys", "\\u", "\\U"]
        .iter()
        .any(|s| text.contains(s))
    {
        return;
    }
    let first = parse_in(text, base_dir());
    let second = parse_in(text, base_dir());
    match (first, second) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.source, text);
            assert_eq!(a.content_hash, b.content_hash);
            assert_eq!(a.material_hash, b.material_hash);
            let _ = a.tls_files();
            let again = reload_material(&a).expect("an accepted configuration validates again");
            assert_eq!(again.content_hash, a.content_hash);
            assert_eq!(again.material_hash, a.material_hash);
            let snapshot = Snapshot {
                generation: 1,
                config: a,
            };
            for listener in &snapshot.config.listeners {
                assert!(snapshot.config.listener(&listener.name).is_some());
            }
        }
        (Err(a), Err(b)) => {
            assert!(!a.0.is_empty());
            assert!(a.0.iter().all(|e| !e.message.is_empty()));
            assert_eq!(a.to_string(), b.to_string());
        }
        (a, b) => panic!("validated twice, two answers: {a:?} / {b:?}"),
    }
});
