use super::*;

#[test]
fn round_trip_and_next_generation() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.write_generation("a", 1, "one").unwrap();
    store.write_generation("a", 2, "two").unwrap();
    let rec = NodeRecord {
        node_id: "a".into(),
        current: 2,
        history: vec![
            GenerationMeta {
                generation: 1,
                created_at: 1,
                source: "apply".into(),
            },
            GenerationMeta {
                generation: 2,
                created_at: 2,
                source: "apply".into(),
            },
        ],
        ..NodeRecord::default()
    };
    store.save_record(&rec).unwrap();
    // A crash after writing generation 3's text but before its record:
    store.write_generation("a", 3, "three").unwrap();
    let all = Store::open(dir.path()).unwrap().load_all().unwrap();
    assert_eq!(all["a"].record, rec);
    assert_eq!(all["a"].next_generation, 4);
    assert_eq!(all["a"].current_text.as_deref(), Some("two"));
    assert_eq!(all["a"].base_text.as_deref(), Some("two"));
    assert_eq!(store.read_generation("a", 2).unwrap(), "two");
    // Pruning keeps numbering: the files of 1 and 2 go, the next number stays 4.
    assert_eq!(store.prune("a", 3).unwrap(), 2);
    let all = store.load_all();
    assert!(all.is_err(), "the current generation's file is gone");
    store.write_generation("a", 2, "two").unwrap();
    assert_eq!(store.load_all().unwrap()["a"].next_generation, 4);
    store.forget("a").unwrap();
    assert!(store.load_all().unwrap().is_empty());
}

#[test]
fn acks_move_from_node_json_to_live_json() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let ack = AckRecord {
        generation: 0,
        at: 7,
    };
    let old = NodeRecord {
        node_id: "a".into(),
        acked: Some(ack),
        ..NodeRecord::default()
    };
    store.save_record(&old).unwrap();
    assert_eq!(store.load_all().unwrap()["a"].live.acked, Some(ack));
    let live = LiveRecord {
        acked: None,
        seen_at: 9,
    };
    store.save_live("a", &live).unwrap();
    assert_eq!(store.load_all().unwrap()["a"].live.seen_at, 9);
}

#[test]
fn corrupt_record_is_an_error_not_a_fresh_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    fs::create_dir_all(dir.path().join("nodes/a")).unwrap();
    fs::write(dir.path().join("nodes/a/node.json"), "{not json").unwrap();
    assert!(store.load_all().is_err());
}

#[test]
fn atomic_write_leaves_no_temporary() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f");
    atomic_write(&p, b"1").unwrap();
    atomic_write(&p, b"2").unwrap();
    assert_eq!(fs::read(&p).unwrap(), b"2");
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn fnv_is_stable() {
    assert_eq!(fnv64(""), "cbf29ce484222325");
    assert_eq!(fnv64("a"), "af63dc4c8601ec8c");
}
