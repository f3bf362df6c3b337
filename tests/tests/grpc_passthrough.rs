//! gRPC through ringside with a real client and server (Python grpcio, over h2c): the four
//! call shapes with metadata and trailers intact, gRPC errors from the proxy itself in
//! trailers-only form, and `grpc-timeout` as the request deadline.

#![allow(clippy::unwrap_used)]

use ringside_tests::python::{grpc_client, PyServer};
use ringside_tests::*;

fn grpc_proxy(d: Driver, server: &PyServer, route_extra: &str) -> Proxy {
    Proxy::start(
        d,
        &basic_config(
            &[server.addr()],
            Extra {
                cluster: "protocol = \"http2\"",
                route: route_extra,
                ..Extra::default()
            },
        ),
    )
}

both_drivers!(
    fn all_four_call_shapes_pass_through(d) {
        let server = PyServer::grpc();
        let p = grpc_proxy(d, &server, "");
        let target = p.addr("in").to_string();

        let r = grpc_client(&target, "unary", &["hello", "--metadata", "x-echo=abc"]);
        assert_eq!(r["code"], "OK", "{r}");
        assert_eq!(r["responses"][0], "hello");
        assert_eq!(r["initial_metadata"]["x-echo"], "abc", "{r}");
        assert_eq!(r["trailing_metadata"]["x-trailer"], "abc", "trailers intact: {r}");

        let r = grpc_client(&target, "server_stream", &["50"]);
        assert_eq!(r["code"], "OK", "{r}");
        assert_eq!(r["responses"].as_array().unwrap().len(), 50);
        assert_eq!(r["responses"][49], "msg-49");

        let r = grpc_client(&target, "client_stream", &["aa", "bbb", "cccc"]);
        assert_eq!(r["code"], "OK", "{r}");
        assert_eq!(r["responses"][0], "3:9");

        let r = grpc_client(&target, "bidi", &["one", "two", "three"]);
        assert_eq!(r["code"], "OK", "{r}");
        assert_eq!(r["responses"], serde_json::json!(["echo:one", "echo:two", "echo:three"]));

        // A status set by the server reaches the client with its message.
        let r = grpc_client(&target, "fail", &["NOT_FOUND"]);
        assert_eq!(r["code"], "NOT_FOUND", "{r}");
        assert_eq!(r["details"], "failed on purpose");
    }
);

both_drivers!(
    fn proxy_failures_are_grpc_statuses(d) {
        let server = PyServer::grpc();
        let p = Proxy::start(
            d,
            &format!(
                "[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n\
                 [[routes]]\nlistener = \"in\"\nname = \"echo\"\nmatch = {{ path_prefix = \"/test.Echo/\" }}\ncluster = \"app\"\n\
                 [[routes]]\nlistener = \"in\"\nname = \"down\"\nmatch = {{ path_prefix = \"/down.\" }}\ncluster = \"dead\"\n\
                 [[clusters]]\nname = \"app\"\nprotocol = \"http2\"\nendpoints = [\"{}\"]\n\
                 [[clusters]]\nname = \"dead\"\nprotocol = \"http2\"\nendpoints = [\"127.0.0.1:1\"]\n",
                server.addr()
            ),
        );
        let target = p.addr("in").to_string();
        // No route: UNIMPLEMENTED, as a gRPC server says for an unknown method.
        let r = grpc_client(&target, "unary", &["x", "--method", "/other.Svc/Call"]);
        assert_eq!(r["code"], "UNIMPLEMENTED", "{r}");
        // Upstream down: UNAVAILABLE.
        let r = grpc_client(&target, "unary", &["x", "--method", "/down.Svc/Call"]);
        assert_eq!(r["code"], "UNAVAILABLE", "{r}");
        // grpc-timeout is the deadline: the proxy answers DEADLINE_EXCEEDED.
        let r = grpc_client(&target, "slow", &["3000", "--timeout", "0.3"]);
        assert_eq!(r["code"], "DEADLINE_EXCEEDED", "{r}");
        let r = grpc_client(&target, "slow", &["10"]);
        assert_eq!(r["code"], "OK", "{r}");
    }
);

both_drivers!(
    fn a_route_timeout_is_deadline_exceeded(d) {
        let server = PyServer::grpc();
        let p = grpc_proxy(d, &server, "timeout_ms = 200");
        let r = grpc_client(&p.addr("in").to_string(), "slow", &["2000"]);
        assert_eq!(r["code"], "DEADLINE_EXCEEDED", "{r}");
    }
);

both_drivers!(
    fn an_authorization_denial_is_permission_denied(d) {
        let server = PyServer::grpc();
        let p = Proxy::start(
            d,
            &format!(
                "[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\nauthz_default = \"deny\"\n\
                 [[authz]]\nlistener = \"in\"\naction = \"allow\"\npaths = [\"/test.Echo/Unary\"]\n\
                 [[routes]]\nlistener = \"in\"\nname = \"all\"\ncluster = \"app\"\n\
                 [[clusters]]\nname = \"app\"\nprotocol = \"http2\"\nendpoints = [\"{}\"]\n",
                server.addr()
            ),
        );
        let target = p.addr("in").to_string();
        let r = grpc_client(&target, "unary", &["ok"]);
        assert_eq!(r["code"], "OK", "{r}");
        let r = grpc_client(&target, "server_stream", &["3"]);
        assert_eq!(r["code"], "PERMISSION_DENIED", "{r}");
    }
);
