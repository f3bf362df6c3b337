//! Precedence between the sources of a node's configuration. The rules (also in
//! `ctl/README.md`):
//!
//! 1. **The base** is one whole configuration, owned by one source at a time: the node's file
//!    in the config directory (`<node>.toml`, else `default.toml`), or the operator's `apply`
//!    or `rollback`. The last to change wins; a file takes the base back only when its
//!    content changes (ctld remembers the content it last took from it). xDS, when it comes,
//!    owns the base the way a file does.
//! 2. **Overrides** are the operator's `endpoints` and `weights` edits, one per key: a
//!    cluster's `endpoints` list (`endpoints api`), a route's `weighted` list
//!    (`weights inbound/api`). They are layered on whichever base is in force, so a file (or
//!    xDS) change does not undo them. The latest edit of a key replaces that key's override.
//! 3. An override is cleared by the `clear_overrides` request, or by an `apply` or a
//!    `rollback` (which set the whole configuration). An override whose key the new base no
//!    longer has is dropped, with a log line.
//!
//! The node's configuration is `layer(base, overrides)`; `ringsidectl status` shows the
//! base's source and the overrides' keys.

use serde::{Deserialize, Serialize};

use crate::sources::edit::{self, Field};

/// The part of a configuration an override replaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Target {
    /// A cluster's `endpoints` list.
    Endpoints { cluster: String },
    /// A route's `weighted` list (its listener resolved).
    Weights { listener: String, route: String },
}

impl Target {
    /// The key shown in status and named by `overrides clear`.
    pub fn key(&self) -> String {
        match self {
            Target::Endpoints { cluster } => format!("endpoints {cluster}"),
            Target::Weights { listener, route } => format!("weights {listener}/{route}"),
        }
    }

    pub fn field(&self) -> Field<'_> {
        match self {
            Target::Endpoints { cluster } => Field::Endpoints { cluster },
            Target::Weights { listener, route } => Field::Weighted { listener, route },
        }
    }
}

/// One operator override: `target` set to `value` (a TOML array).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    pub target: Target,
    pub value: String,
}

/// `base` with every override laid on it, in order. An override that does not fit (its key
/// is gone from the base) is left out and returned in `dropped` with the reason.
pub fn layer(base: &str, overrides: &[Override]) -> Layered {
    let mut text = base.to_owned();
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for o in overrides {
        match edit::set_value(&text, o.target.field(), &o.value) {
            Ok(t) => {
                text = t;
                kept.push(o.clone());
            }
            Err(e) => dropped.push((o.target.key(), e)),
        }
    }
    Layered {
        text,
        kept,
        dropped,
    }
}

pub struct Layered {
    pub text: String,
    pub kept: Vec<Override>,
    pub dropped: Vec<(String, String)>,
}

/// `overrides` with `o` in place of the override of the same key (or added last).
pub fn with_override(overrides: &[Override], o: Override) -> Vec<Override> {
    let mut out: Vec<Override> = overrides
        .iter()
        .filter(|x| x.target != o.target)
        .cloned()
        .collect();
    out.push(o);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"[[listeners]]
name = "inbound"
bind = "127.0.0.1:0"

[[routes]]
listener = "inbound"
name = "api"
cluster = "v1"

[[clusters]]
name = "v1"
endpoints = [ "127.0.0.1:9001" ]

[[clusters]]
name = "v2"
endpoints = [ "127.0.0.1:9002" ]
"#;

    fn endpoints(cluster: &str, value: &str) -> Override {
        Override {
            target: Target::Endpoints {
                cluster: cluster.into(),
            },
            value: value.into(),
        }
    }

    #[test]
    fn overrides_layer_on_any_base_and_missing_keys_are_dropped() {
        let weights = Override {
            target: Target::Weights {
                listener: "inbound".into(),
                route: "api".into(),
            },
            value: r#"[{ cluster = "v1", weight = 1 }, { cluster = "v2", weight = 3 }]"#.into(),
        };
        let ovs = vec![endpoints("v1", r#"["127.0.0.1:7001"]"#), weights.clone()];
        let l = layer(BASE, &ovs);
        assert!(l.dropped.is_empty(), "{:?}", l.dropped);
        assert!(
            l.text.contains(r#"endpoints = ["127.0.0.1:7001"]"#),
            "{}",
            l.text
        );
        assert!(l.text.contains("weight = 3") && !l.text.contains("cluster = \"v1\"\n"));
        crate::error::validate(&l.text).unwrap();

        // A new base (a file change) keeps the overrides; one whose cluster is gone drops.
        let new_base = BASE
            .replace("9002", "9102")
            .replace("name = \"v1\"", "name = \"v3\"");
        let l = layer(&new_base, &ovs);
        assert_eq!(l.kept, [weights]);
        assert_eq!(l.dropped[0].0, "endpoints v1");
        assert!(l.text.contains("9102"));
    }

    #[test]
    fn the_latest_edit_of_a_key_replaces_its_override() {
        let a = endpoints("v1", "[]");
        let b = endpoints("v2", "[]");
        let a2 = endpoints("v1", r#"["127.0.0.1:1"]"#);
        let out = with_override(&with_override(&[a], b.clone()), a2.clone());
        assert_eq!(out, [b, a2]);
        assert_eq!(out[1].target.key(), "endpoints v1");
    }
}
