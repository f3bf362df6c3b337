use super::*;
use crate::frame::decode_body;

fn json(f: &Frame) -> String {
    serde_json::to_string(f).unwrap()
}

fn round_trip(f: Frame) {
    let text = json(&f);
    assert_eq!(decode_body(text.as_bytes()).unwrap(), f, "{text}");
}

#[test]
fn documented_shapes() {
    let hello = Frame::Request {
        id: 1,
        request: Request::Hello {
            version: 1,
            peer: Peer::Proxy {
                node_id: "web-1".into(),
                role: "sidecar".into(),
                generation: 0,
                labels: Default::default(),
            },
        },
    };
    assert_eq!(
        json(&hello),
        r#"{"id":1,"request":{"type":"hello","version":1,"peer":{"type":"proxy","node_id":"web-1","role":"sidecar","generation":0}}}"#
    );
    let labelled = decode_body(
        br#"{"id":1,"request":{"type":"hello","version":1,"peer":{"type":"proxy","node_id":"web-1","role":"sidecar","generation":0,"labels":{"app":"web"}}}}"#,
    )
    .unwrap();
    let Frame::Request {
        request:
            Request::Hello {
                peer: Peer::Proxy { labels, .. },
                ..
            },
        ..
    } = labelled
    else {
        panic!("{labelled:?}");
    };
    assert_eq!(labels.get("app").map(String::as_str), Some("web"));
    let start = decode_body(
        br#"{"id":5,"request":{"type":"rollout_start","config":"x","selector":{"app":"web"},"steps":[10,50,100],"interval_ms":60000,"max_error_increase":1.0,"min_requests":200}}"#,
    )
    .unwrap();
    assert!(
        matches!(&start, Frame::Request { request: Request::RolloutStart(s), .. } if s.steps == [10, 50, 100]),
        "{start:?}"
    );
    let err = Frame::Reply {
        id: 2,
        reply: Reply::error("boom"),
    };
    assert_eq!(
        json(&err),
        r#"{"id":2,"reply":{"type":"error","message":"boom"}}"#
    );
    let ep = Frame::Request {
        id: 3,
        request: Request::Endpoints {
            op: EndpointOp::Add,
            cluster: "api".into(),
            addresses: vec!["10.0.0.1:80".into()],
            node: None,
            selector: None,
        },
    };
    assert_eq!(
        json(&ep),
        r#"{"id":3,"request":{"type":"endpoints","op":"add","cluster":"api","addresses":["10.0.0.1:80"],"node":null}}"#
    );
}

#[test]
fn optional_fields_may_be_omitted() {
    let f = decode_body(br#"{"id":4,"request":{"type":"get_config"}}"#).unwrap();
    assert_eq!(
        f,
        Frame::Request {
            id: 4,
            request: Request::GetConfig {
                node: None,
                generation: None
            }
        }
    );
    let f = decode_body(br#"{"id":4,"request":{"type":"upgrade","binary":"/usr/bin/ringside"}}"#)
        .unwrap();
    assert!(matches!(
        f,
        Frame::Request {
            request: Request::Upgrade { ref args, .. },
            ..
        } if args.is_empty()
    ));
}

#[test]
fn unknown_fields_are_refused_in_nested_structs() {
    for body in [
        r#"{"id":1,"request":{"type":"hello","version":1,"peer":{"type":"proxy","node_id":"a","role":"sidecar","generation":0,"x":1}}}"#,
        r#"{"id":1,"reply":{"type":"ctld_status","nodes":[],"config_dir_errors":[],"x":1}}"#,
        r#"{"id":1,"reply":{"type":"applied","nodes":[{"node":"a","generation":1,"changed":true,"outcome":{"type":"acked"},"x":0}]}}"#,
        r#"{"id":1,"request":{"type":"weights","route":"r","weights":[{"cluster":"c","weight":1,"x":1}]}}"#,
    ] {
        assert!(decode_body(body.as_bytes()).is_err(), "{body}");
    }
}

#[test]
fn every_message_round_trips() {
    let requests = vec![
        Request::Hello {
            version: 1,
            peer: Peer::Cli,
        },
        Request::Status,
        Request::PushConfig {
            generation: 3,
            config: "[proxy]\n".into(),
        },
        Request::Drain,
        Request::Upgrade {
            binary: "/bin/ringside".into(),
            args: vec!["run".into()],
        },
        Request::TakeListeners,
        Request::ReadyToServe,
        Request::Apply {
            node: Some("a".into()),
            selector: None,
            config: String::new(),
            no_wait: false,
        },
        Request::Apply {
            node: None,
            selector: None,
            config: "x".into(),
            no_wait: true,
        },
        Request::ClearOverrides {
            node: Some("a".into()),
            selector: None,
            key: Some("endpoints api".into()),
        },
        Request::Diff {
            node: None,
            selector: None,
            config: "x".into(),
            show_secrets: true,
        },
        Request::GetConfig {
            node: Some("a".into()),
            generation: Some(2),
        },
        Request::Rollback {
            node: None,
            selector: None,
            to: Some(1),
        },
        Request::Endpoints {
            op: EndpointOp::Set,
            cluster: "c".into(),
            addresses: vec![],
            node: None,
            selector: None,
        },
        Request::Weights {
            route: "r".into(),
            listener: Some("l".into()),
            weights: vec![WeightSpec {
                cluster: "c".into(),
                weight: 0,
            }],
            node: None,
            selector: None,
        },
        Request::Health,
        Request::Apply {
            node: None,
            selector: Some([("app".to_owned(), "web".to_owned())].into()),
            config: "x".into(),
            no_wait: false,
        },
        Request::RolloutStart(RolloutSpec {
            config: "x".into(),
            selector: [("zone".to_owned(), "a".to_owned())].into(),
            steps: vec![10, 50, 100],
            interval_ms: 60_000,
            max_error_increase: 1.5,
            min_requests: 200,
        }),
        Request::RolloutStatus,
        Request::RolloutPause,
        Request::RolloutResume,
        Request::RolloutAbort,
        Request::LogLevel { level: None },
        Request::LogLevel {
            level: Some("info,ringside_engine=debug".into()),
        },
    ];
    for (i, request) in requests.into_iter().enumerate() {
        round_trip(Frame::Request {
            id: i as u64,
            request,
        });
    }
    let replies = vec![
        Reply::Rollout { rollout: None },
        Reply::Rollout {
            rollout: Some(Box::new(RolloutStatus {
                id: 1,
                state: "rolled_back".into(),
                reason: Some("canary 5.0% > baseline 0.0% + 1.0".into()),
                step: 1,
                steps: vec![50, 100],
                selector: Labels::new(),
                interval_ms: 1000,
                max_error_increase: 1.0,
                min_requests: 10,
                started_at: 1_700_000_000,
                window_left_ms: None,
                nodes: vec![RolloutNode {
                    node: "a".into(),
                    before: 1,
                    after: Some(2),
                    restored: Some(3),
                    acked: Some(3),
                }],
                last_judgement: Some(Judgement {
                    step: 1,
                    window_ms: 1000,
                    canary: GroupRate {
                        nodes: 1,
                        requests: 20,
                        errors: 1,
                        rate_pct: 5.0,
                    },
                    baseline: None,
                }),
                decisions: vec![RolloutDecision {
                    at: 1,
                    action: "rollback".into(),
                    reason: "r".into(),
                }],
            })),
        },
        Reply::HelloOk {
            version: 1,
            server: "s".into(),
        },
        Reply::Ok,
        Reply::Error {
            message: "m".into(),
            errors: vec!["a: b".into()],
        },
        Reply::ProxyStatus(ProxyStatus {
            node_id: None,
            labels: [("app".to_owned(), "web".to_owned())].into(),
            traffic: Some(Traffic {
                requests: 10,
                responses_5xx: 1,
                upstream_requests: 9,
                upstream_5xx: 1,
            }),
            role: "sidecar".into(),
            generation: 0,
            config_hash: "00000000000000ff".into(),
            driver: "epoll".into(),
            workers: 2,
            listeners: vec![ListenerStatus {
                name: "in".into(),
                address: "127.0.0.1:80".into(),
                protocol: "http".into(),
            }],
            connections: 5,
            draining: false,
            ctld_connected: true,
            uptime_s: 9,
            pid: 42,
        }),
        Reply::CtldStatus(CtldStatus {
            nodes: vec![NodeStatus {
                node_id: "a".into(),
                role: Some("sidecar".into()),
                labels: Default::default(),
                rollout: None,
                connected: true,
                generation_desired: 2,
                generation_acked: Some(2),
                acked_at: Some(1_700_000_000),
                last_error: None,
                source: Some("file a.toml".into()),
                overrides: vec!["endpoints api".into()],
                pending_restart: vec!["proxy.workers".into()],
                sessions: 1,
                processes: Vec::new(),
            }],
            config_dir_errors: vec![FileErrors {
                file: "a.toml".into(),
                errors: vec!["x: y".into()],
            }],
        }),
        Reply::Applied {
            nodes: vec![NodeApplied {
                node: "a".into(),
                generation: 2,
                changed: true,
                outcome: PushOutcome::Failed {
                    message: "m".into(),
                },
            }],
        },
        Reply::Applied {
            nodes: vec![
                NodeApplied {
                    node: "b".into(),
                    generation: 3,
                    changed: true,
                    outcome: PushOutcome::TimedOut {
                        message: "t".into(),
                    },
                },
                NodeApplied {
                    node: "c".into(),
                    generation: 1,
                    changed: false,
                    outcome: PushOutcome::Refused {
                        message: "r".into(),
                    },
                },
                NodeApplied {
                    node: "d".into(),
                    generation: 1,
                    changed: true,
                    outcome: PushOutcome::Committed,
                },
            ],
        },
        Reply::Health {
            clusters: vec![ClusterHealth {
                name: "c".into(),
                ejections: 2,
                panic_requests: 1,
                endpoints: vec![EndpointHealth {
                    address: "127.0.0.1:9".into(),
                    health: "ejected".into(),
                    ejected_ms: 250,
                    times_ejected: 2,
                    check: Some("healthy".into()),
                }],
            }],
        },
        Reply::LogLevel {
            level: "warn".into(),
        },
        Reply::Diff {
            text: "-a\n+b\n".into(),
        },
        Reply::Config {
            node: "a".into(),
            generation: 1,
            config: "".into(),
        },
        Reply::ack(7),
        Reply::Ack {
            generation: 8,
            pending_restart: vec!["proxy.workers".into(), "proxy.driver".into()],
        },
        Reply::Listeners {
            listeners: vec![],
            control_socket: false,
        },
        Reply::Upgraded {
            old_pid: 1,
            new_pid: 2,
        },
    ];
    for (i, reply) in replies.into_iter().enumerate() {
        round_trip(Frame::Reply {
            id: i as u64,
            reply,
        });
    }
}

#[test]
fn unit_messages_tolerate_extra_fields() {
    // serde cannot close the unit variants of an internally tagged enum (`status`, `ok`,
    // `cli`…): extra fields there are ignored. Documented in docs/control-protocol.md.
    assert!(decode_body(br#"{"id":1,"request":{"type":"status","x":1}}"#).is_ok());
}

/// Version 2 only adds fields: an `ack` without keys waiting for a restart is the version 1
/// frame, byte for byte, and a version 1 `ack` reads as one with none.
#[test]
fn version_2_acks_read_and_write_as_version_1_when_nothing_waits() {
    let v1 = r#"{"type":"ack","generation":7}"#;
    assert_eq!(serde_json::to_string(&Reply::ack(7)).unwrap(), v1);
    assert_eq!(serde_json::from_str::<Reply>(v1).unwrap(), Reply::ack(7));
    let v2 = r#"{"type":"ack","generation":7,"pending_restart":["proxy.workers"]}"#;
    assert_eq!(
        serde_json::from_str::<Reply>(v2).unwrap(),
        Reply::Ack {
            generation: 7,
            pending_restart: vec!["proxy.workers".into()],
        }
    );
}
