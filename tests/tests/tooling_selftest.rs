//! Self-tests of the interop tooling, with no proxy in between: the Python gRPC and WebSocket
//! peers talk to each other, curl and h2load talk to the test origins, and the test PKI
//! verifies with openssl. If these fail, the proxy tests built on the tooling cannot be
//! trusted. Needs `scripts/install-test-deps`.

#![allow(clippy::unwrap_used)] // test helpers, like #[test] bodies

use std::process::Command;

use ringside_tests::certs::TestPki;
use ringside_tests::python::{grpc_client, ws_client, PyServer};
use ringside_tests::tools::{curl, grpc_frame, h2load, run_bounded};
use ringside_tests::Origin;
use serde_json::{json, Value};

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn grpc_every_case_direct() {
    let server = PyServer::grpc();
    let target = server.addr().to_string();

    let v = grpc_client(&target, "unary", &["hi", "--metadata", "x-echo=abc"]);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["code"], "OK", "{v}");
    assert_eq!(strings(&v["responses"]), ["hi"], "{v}");
    assert_eq!(v["initial_metadata"]["x-echo"], "abc", "{v}");
    assert_eq!(v["trailing_metadata"]["x-trailer"], "abc", "{v}");

    let v = grpc_client(&target, "server_stream", &["4"]);
    assert_eq!(v["code"], "OK", "{v}");
    assert_eq!(
        strings(&v["responses"]),
        ["msg-0", "msg-1", "msg-2", "msg-3"],
        "{v}"
    );

    let v = grpc_client(&target, "client_stream", &["a", "bb", "ccc"]);
    assert_eq!(v["code"], "OK", "{v}");
    assert_eq!(strings(&v["responses"]), ["3:6"], "{v}");

    let v = grpc_client(&target, "bidi", &["x", "y", "z"]);
    assert_eq!(v["code"], "OK", "{v}");
    assert_eq!(
        strings(&v["responses"]),
        ["echo:x", "echo:y", "echo:z"],
        "{v}"
    );

    let v = grpc_client(&target, "slow", &["50"]);
    assert_eq!(v["code"], "OK", "{v}");
    let v = grpc_client(&target, "slow", &["3000", "--timeout", "0.5"]);
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["code"], "DEADLINE_EXCEEDED", "{v}");

    let v = grpc_client(
        &target,
        "fail",
        &["NOT_FOUND", "--metadata", "x-echo=still"],
    );
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["code"], "NOT_FOUND", "{v}");
    assert_eq!(v["details"], "failed on purpose", "{v}");
    assert_eq!(v["trailing_metadata"]["x-trailer"], "still", "{v}");
    let v = grpc_client(&target, "fail", &["14"]);
    assert_eq!(v["code"], "UNAVAILABLE", "{v}");
}

#[test]
fn grpc_unreachable_is_unavailable() {
    let closed = ringside_tests::closed_port().to_string();
    let v = grpc_client(&closed, "unary", &["--timeout", "5"]);
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["code"], "UNAVAILABLE", "{v}");
}

#[test]
fn grpc_over_tls_direct() {
    let pki = TestPki::new();
    let (cert, key) = pki.leaf("grpc-origin", &["localhost", "127.0.0.1"], &[]);
    let server = PyServer::grpc_tls(&cert, &key);
    let target = server.addr().to_string();
    let ca = pki.ca_path();
    let ca = ca.to_str().unwrap();

    let v = grpc_client(
        &target,
        "bidi",
        &["a", "b", "--tls-ca", ca, "--authority", "localhost"],
    );
    assert_eq!(v["code"], "OK", "{v}");
    assert_eq!(strings(&v["responses"]), ["echo:a", "echo:b"], "{v}");

    // A CA that did not sign the server's certificate: the handshake fails.
    let other = pki.other_ca_path();
    let v = grpc_client(
        &target,
        "unary",
        &[
            "--tls-ca",
            other.to_str().unwrap(),
            "--authority",
            "localhost",
            "--timeout",
            "5",
        ],
    );
    assert_eq!(v["code"], "UNAVAILABLE", "{v}");
}

#[test]
fn websocket_echo_direct() {
    let server = PyServer::websocket();
    let url = format!("ws://{}/some/path", server.addr());

    let v = ws_client(
        &url,
        &["--messages", "a", "b", "path", "--binary-size", "100000"],
    );
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(strings(&v["echoes"]), ["a", "b", "path:/some/path"], "{v}");
    assert_eq!(v["binary_ok"], true, "{v}");
    assert_eq!(v["close_code"], 1000, "{v}");

    let v = ws_client(&url, &["--messages", "hello", "close"]);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(strings(&v["echoes"]), ["hello"], "{v}");
    assert_eq!(v["close_code"], 4000, "{v}");
    assert_eq!(v["close_reason"], "bye", "{v}");

    let closed = format!("ws://{}/", ringside_tests::closed_port());
    let v = ws_client(&closed, &["--messages", "a"]);
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["echoes"], json!([]), "{v}");
}

#[test]
fn curl_and_h2load_direct() {
    let origin = Origin::text("hello");
    let url = format!("http://{}/x", origin.addr());

    let out = curl(&[&url]);
    assert!(out.success(), "{out:?}");
    assert_eq!(out.status, Some(200), "{out:?}");
    assert_eq!(out.http_version, "1.1", "{out:?}");
    assert_eq!(out.stdout, "hello", "{out:?}");

    let out = curl(&[&format!("http://{}/", ringside_tests::closed_port())]);
    assert_eq!(out.status, None, "{out:?}");
    assert_eq!(out.exit_code, Some(7), "{out:?}");

    let s = h2load(&["--h1", "-n", "20", "-c", "2", &url]);
    assert_eq!(s.requests_done, 20, "{}", s.stdout);
    assert_eq!(s.succeeded, 20, "{}", s.stdout);
    assert_eq!(s.status_2xx, 20, "{}", s.stdout);
    assert_eq!((s.failed, s.errored), (0, 0), "{}", s.stdout);

    // HTTP/2 with prior knowledge, against the only h2c server at hand: a gRPC unary call to
    // Python's gRPC server (trailers included, with -i).
    let grpc = PyServer::grpc();
    let dir = tempfile::tempdir().unwrap();
    let frame = dir.path().join("frame");
    std::fs::write(&frame, grpc_frame(b"hi")).unwrap();
    let frame = frame.to_str().unwrap();
    let url = format!("http://{}/test.Echo/Unary", grpc.addr());
    let grpc_headers = ["-H", "content-type: application/grpc", "-H", "te: trailers"];
    let data = format!("@{frame}");
    let mut args = vec!["--http2-prior-knowledge", "-i", "--data-binary", &data];
    args.extend(grpc_headers);
    args.push(&url);
    let out = curl(&args);
    assert!(out.success(), "{out:?}");
    assert_eq!(out.status, Some(200), "{out:?}");
    assert_eq!(out.http_version, "2", "{out:?}");
    assert!(out.stdout.contains("\0\0\0\0\x02hi"), "{out:?}");
    assert!(out.stdout.contains("grpc-status: 0"), "{out:?}");

    let mut args = vec!["-n", "10", "-c", "1", "-d", frame];
    args.extend(grpc_headers);
    args.push(&url);
    let s = h2load(&args);
    assert_eq!((s.requests_done, s.status_2xx), (10, 10), "{}", s.stdout);
}

#[test]
fn pki_verifies_with_openssl() {
    let pki = TestPki::new();
    let (cert, key) = pki.leaf(
        "origin",
        &["localhost", "127.0.0.1"],
        &["spiffe://test/origin"],
    );
    let (expired, _) = pki.expired_leaf("old", &["localhost"], &[]);
    let (foreign, _) = pki.other_ca_leaf("foreign", &["localhost"], &[]);
    for f in [
        &cert,
        &key,
        &expired,
        &foreign,
        &pki.ca_path(),
        &pki.other_ca_path(),
    ] {
        assert!(f.is_file(), "{} missing", f.display());
    }
    assert!(pki.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));

    let verify = |ca: &std::path::Path, leaf: &std::path::Path| {
        let out = run_bounded(
            Command::new("openssl")
                .arg("verify")
                .arg("-CAfile")
                .arg(ca)
                .arg(leaf),
            std::time::Duration::from_secs(10),
        );
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, text) = verify(&pki.ca_path(), &cert);
    assert!(ok, "{text}");
    let (ok, text) = verify(&pki.other_ca_path(), &foreign);
    assert!(ok, "{text}");
    let (ok, text) = verify(&pki.ca_path(), &expired);
    assert!(!ok && text.contains("expired"), "{text}");
    let (ok, text) = verify(&pki.ca_path(), &foreign);
    assert!(!ok, "{text}");

    let out = run_bounded(
        Command::new("openssl")
            .args(["x509", "-noout", "-text", "-in"])
            .arg(&cert),
        std::time::Duration::from_secs(10),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "DNS:localhost",
        "IP Address:127.0.0.1",
        "URI:spiffe://test/origin",
    ] {
        assert!(text.contains(want), "{want} not in\n{text}");
    }
}
