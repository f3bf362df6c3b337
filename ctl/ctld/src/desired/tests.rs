//! Generations, retention and precedence between sources, without a disk.

use std::sync::Arc;

use super::*;
use crate::persist::Op;

pub fn config(body: &str) -> String {
    format!(
        r#"[[listeners]]
name = "inbound"
bind = "127.0.0.1:0"

[[routes]]
listener = "inbound"
name = "hello"
match = {{ path_exact = "/hello" }}
direct_response = {{ status = 200, body = "{body}" }}

[[routes]]
listener = "inbound"
name = "api"
cluster = "v1"

[[clusters]]
name = "v1"
endpoints = [ "127.0.0.1:9001" ]
"#
    )
}

fn file(name: &str, text: &str) -> Proposal {
    Proposal::Base {
        text: Arc::from(text),
        source: format!("file {name}"),
        file: Some(FileSeen {
            name: name.into(),
            hash: crate::persist::store::fnv64(text),
        }),
        validated: true,
    }
}

fn apply(text: &str) -> Proposal {
    Proposal::Base {
        text: Arc::from(text),
        source: "apply".into(),
        file: None,
        validated: true,
    }
}

fn endpoints(value: &str) -> Proposal {
    Proposal::Override(Override {
        target: Target::Endpoints {
            cluster: "v1".into(),
        },
        value: value.into(),
    })
}

fn change(n: &mut NodeDesired, p: Proposal, keep: usize) -> (Committed, Vec<Op>) {
    let plan = n.plan(p, "test").unwrap();
    n.commit(plan, 1_000, keep)
}

#[test]
fn identical_text_is_no_generation_and_numbers_go_on() {
    let mut n = NodeDesired::new("a");
    let (c, ops) = change(&mut n, apply(&config("one")), 50);
    assert_eq!(
        c,
        Committed {
            generation: 1,
            changed: true
        }
    );
    assert!(
        matches!(ops[0], Op::Generation { generation: 1, .. }),
        "text before record"
    );
    assert!(ops
        .iter()
        .any(|o| matches!(o, Op::Record(r) if r.current == 1)));
    let (c, ops) = change(&mut n, apply(&config("one")), 50);
    assert_eq!(
        c,
        Committed {
            generation: 1,
            changed: false
        }
    );
    assert!(ops.is_empty());
}

#[test]
fn retention_keeps_the_last_generations_and_prunes_the_files() {
    let mut n = NodeDesired::new("a");
    let mut prunes = Vec::new();
    for i in 0..10 {
        let (_, ops) = change(&mut n, apply(&config(&i.to_string())), 3);
        prunes.extend(ops.into_iter().filter_map(|o| match o {
            Op::Prune { keep_from, .. } => Some(keep_from),
            _ => None,
        }));
    }
    let kept: Vec<u64> = n.record.history.iter().map(|g| g.generation).collect();
    assert_eq!(kept, [8, 9, 10]);
    assert_eq!(prunes, [2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(n.next_generation, 11);
    assert_eq!(n.previous().unwrap(), 9);
    assert!(!n.has(7));
    assert_eq!(n.range(), "it has 8 to 10");
}

#[test]
fn an_override_survives_a_file_change_and_apply_clears_it() {
    let mut n = NodeDesired::new("a");
    change(&mut n, file("a.toml", &config("file")), 50);
    let (c, _) = change(&mut n, endpoints(r#"["127.0.0.1:7001"]"#), 50);
    assert_eq!(c.generation, 2);
    assert!(n.text.as_deref().unwrap().contains("7001"));
    assert_eq!(n.record.base_source.as_deref(), Some("file a.toml"));
    assert_eq!(n.record.overrides.len(), 1);

    // The file changes: the new base, with the operator's endpoints on top.
    let (c, _) = change(&mut n, file("a.toml", &config("file 2")), 50);
    assert_eq!(c.generation, 3);
    let text = n.text.clone().unwrap();
    assert!(text.contains("file 2") && text.contains("7001"), "{text}");

    // Clearing the override gives the file's own configuration back.
    let clear = Proposal::ClearOverrides {
        key: Some("endpoints v1".into()),
    };
    change(&mut n, clear, 50);
    assert_eq!(n.text.as_deref(), Some(config("file 2").as_str()));
    let missing = Proposal::ClearOverrides {
        key: Some("endpoints v1".into()),
    };
    assert!(matches!(
        n.plan(missing, "x"),
        Err(CtldError::NoOverride { .. })
    ));

    // An apply is the whole configuration: it takes the base and clears the overrides.
    change(&mut n, endpoints("[]"), 50);
    change(&mut n, apply(&config("mine")), 50);
    assert_eq!(n.record.base_source.as_deref(), Some("apply"));
    assert!(n.record.overrides.is_empty());
    assert_eq!(n.text.as_deref(), Some(config("mine").as_str()));
}

#[test]
fn an_override_that_breaks_the_configuration_is_refused() {
    let mut n = NodeDesired::new("a");
    change(&mut n, apply(&config("x")), 50);
    let bad = endpoints(r#"["nowhere"]"#);
    match n.plan(bad, "x") {
        Err(CtldError::Invalid { errors, .. }) => {
            assert!(errors[0].contains("invalid socket address"), "{errors:?}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(n.current(), 1);
}
