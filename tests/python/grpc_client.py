#!/usr/bin/env python3
"""Calls the test.Echo service of grpc_server.py and prints the outcome as one JSON line.

Usage: grpc_client.py TARGET CASE [ARGS...] [--timeout S] [--metadata K=V]...
                      [--tls-ca CA --authority NAME]

TARGET is host:port. CASE and its ARGS:
  unary [PAYLOAD]          Unary with PAYLOAD (default "hello").
  server_stream [N]        ServerStream asking for N messages (default 3).
  client_stream [MSG...]   ClientStream sending each MSG (default "a" "bb" "ccc").
  bidi [MSG...]            Bidi ping-pong: sends each MSG only after the previous echo arrived
                           (default "one" "two" "three").
  slow [MS]                Slow: the server sleeps MS milliseconds (default 1000).
  fail [CODE]              Unary with metadata x-fail=CODE (default INVALID_ARGUMENT).

Prints {"ok", "code", "details", "responses", "initial_metadata", "trailing_metadata"} and
exits 0 whatever the RPC's status; nonzero only on a usage error or a crash.
"""

import argparse
import json
import os
import queue
import sys

import grpc

SERVICE = "/test.Echo/"
# --method: call another path than test.Echo's (unary cases), e.g. to reach no route.
METHOD = None


def text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def metadata_dict(metadata):
    return {k: text(v) for k, v in (metadata or ())}


def ping_pong(messages, responses, timeout):
    """Yields each message only once the previous one's echo arrived (or `timeout` passed)."""
    for i, message in enumerate(messages):
        if i > 0:
            try:
                responses.get(timeout=timeout)
            except queue.Empty:
                return
        yield message


def run(channel, case, args, call_options, responses):
    """Runs one case, appending to `responses` as they arrive; returns the finished call."""
    if case in ("unary", "fail", "slow"):
        default = {"unary": "hello", "fail": "fail", "slow": "1000"}[case]
        name = METHOD or SERVICE + ("Slow" if case == "slow" else "Unary")
        method = channel.unary_unary(name)
        payload = (args[0] if args and case != "fail" else default).encode()
        response, call = method.with_call(payload, **call_options)
        responses.append(response)
        return call
    if case == "client_stream":
        messages = [m.encode() for m in (args or ["a", "bb", "ccc"])]
        method = channel.stream_unary(SERVICE + "ClientStream")
        response, call = method.with_call(iter(messages), **call_options)
        responses.append(response)
        return call
    if case == "server_stream":
        payload = (args[0] if args else "3").encode()
        call = channel.unary_stream(SERVICE + "ServerStream")(payload, **call_options)
        responses.extend(call)
        return call
    # bidi
    messages = [m.encode() for m in (args or ["one", "two", "three"])]
    arrived = queue.Queue()
    requests = ping_pong(messages, arrived, call_options["timeout"])
    call = channel.stream_stream(SERVICE + "Bidi")(requests, **call_options)
    for response in call:
        responses.append(response)
        arrived.put(response)
    return call


def main():
    parser = argparse.ArgumentParser(description="test.Echo gRPC client; prints one JSON line")
    parser.add_argument("target")
    parser.add_argument(
        "case", choices=["unary", "server_stream", "client_stream", "bidi", "slow", "fail"]
    )
    parser.add_argument("args", nargs="*")
    parser.add_argument("--timeout", type=float, default=10.0, help="deadline in seconds")
    parser.add_argument("--metadata", action="append", default=[], metavar="K=V")
    parser.add_argument("--tls-ca", metavar="CA", help="PEM CA file: connect with TLS")
    parser.add_argument("--authority", metavar="NAME", help=":authority and TLS server name")
    parser.add_argument("--method", metavar="PATH", help="unary cases: call PATH instead")
    opts = parser.parse_args()
    global METHOD
    METHOD = opts.method

    metadata = []
    for item in opts.metadata:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error("--metadata wants K=V, got %r" % item)
        metadata.append((key.lower(), value))
    if opts.case == "fail":
        metadata.append(("x-fail", opts.args[0] if opts.args else "INVALID_ARGUMENT"))

    # Never go through an HTTP proxy from the environment: tests talk to loopback.
    options = [("grpc.enable_http_proxy", 0), ("grpc.enable_retries", 0)]
    if opts.authority:
        options.append(("grpc.default_authority", opts.authority))
    if opts.tls_ca:
        with open(opts.tls_ca, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        if opts.authority:
            options.append(("grpc.ssl_target_name_override", opts.authority))
        channel = grpc.secure_channel(opts.target, creds, options=options)
    else:
        channel = grpc.insecure_channel(opts.target, options=options)

    call_options = {"timeout": opts.timeout, "metadata": metadata}
    with channel:
        responses = []
        try:
            call = run(channel, opts.case, opts.args, call_options, responses)
        except grpc.RpcError as error:  # also a grpc.Call: it has the status and metadata
            call = error
        code = call.code()
        result = {
            "ok": code == grpc.StatusCode.OK,
            "code": code.name,
            "details": call.details() or "",
            "responses": [text(r) for r in responses],
            "initial_metadata": metadata_dict(call.initial_metadata()),
            "trailing_metadata": metadata_dict(call.trailing_metadata()),
        }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    for name in [k for k in os.environ if k.lower().endswith("_proxy")]:
        del os.environ[name]
    main()
    sys.exit(0)
