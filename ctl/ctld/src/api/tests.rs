//! The CLI's requests end to end inside one process: a reconciler thread, a persist thread
//! on a temporary state directory, no sockets.

use std::time::Duration;

use ringside_wire::{PushOutcome, Reply, Request};

use super::*;
use crate::clock::Now;
use crate::desired::tests::config;
use crate::reconciler::{Event, Reconciler, Settings};
use crate::sessions::registry::Timing;

fn start(dir: &std::path::Path) -> Api {
    let store = Store::open(dir).unwrap();
    let (events, inbox) = crossbeam_channel::bounded(crate::reconciler::EVENTS);
    let (ops, ops_rx) = crossbeam_channel::unbounded();
    let done = events.clone();
    crate::persist::spawn(store.clone(), ops_rx, move |d| {
        let _ = done.send(Event::Persisted(d));
    })
    .unwrap();
    let settings = Settings {
        timing: Timing::new(Duration::from_secs(1)),
        keep: 50,
        forget_after: Duration::from_secs(3600),
    };
    let r = Reconciler::new(
        store.load_all().unwrap(),
        None,
        ops,
        settings,
        Now::system(),
    );
    std::thread::spawn(move || r.run(inbox));
    Api {
        handle: Handle { events },
        store,
    }
}

fn apply(api: &Api, body: &str) -> Reply {
    api.handle(Request::Apply {
        node: Some("a".into()),
        selector: None,
        config: config(body),
        no_wait: false,
    })
}

fn generation(reply: Reply) -> (u64, PushOutcome) {
    match reply {
        Reply::Applied { nodes } => (nodes[0].generation, nodes[0].outcome.clone()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn apply_rollback_and_get_read_old_generations_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let api = start(dir.path());
    let refused = api.handle(Request::Apply {
        node: Some("a".into()),
        selector: None,
        config: "[proxy]\nworkers = 0\n".into(),
        no_wait: false,
    });
    assert_eq!(
        refused,
        Reply::Error {
            message: "configuration refused (2 errors)".into(),
            errors: vec![
                "proxy.workers: must be from 1 to 1024, got 0".into(),
                "listeners: at least one is required".into(),
            ],
        }
    );
    assert_eq!(
        generation(apply(&api, "one")),
        (1, PushOutcome::NotConnected)
    );
    assert_eq!(
        generation(apply(&api, "two")),
        (2, PushOutcome::NotConnected)
    );
    let rolled = api.handle(Request::Rollback {
        node: None,
        selector: None,
        to: None,
    });
    assert_eq!(generation(rolled).0, 3);
    let get = api.handle(Request::GetConfig {
        node: None,
        generation: Some(2),
    });
    assert_eq!(
        get,
        Reply::Config {
            node: "a".into(),
            generation: 2,
            config: config("two"),
        }
    );
    let clear = api.handle(Request::ClearOverrides {
        node: Some("a".into()),
        selector: None,
        key: Some("endpoints v9".into()),
    });
    assert_eq!(
        clear,
        Reply::error("node a has no override \"endpoints v9\"")
    );
    match api.handle(Request::Status) {
        Reply::CtldStatus(s) => {
            assert_eq!(s.nodes[0].generation_desired, 3);
            assert_eq!(s.nodes[0].source.as_deref(), Some("rollback to 1"));
        }
        other => panic!("{other:?}"),
    }
    match api.handle(Request::Drain) {
        Reply::Error { message, .. } => assert_eq!(message, "drain is not served by ringside-ctld"),
        other => panic!("{other:?}"),
    }
}
