#!/usr/bin/env python3
"""A gRPC test origin without protoc: service `test.Echo` over raw bytes.

Methods (requests and responses are plain bytes):
  Unary         echoes the request.
  ServerStream  request is an ASCII integer N: replies b"msg-0" .. b"msg-<N-1>".
  ClientStream  replies once with b"<count>:<total bytes>" of all request messages.
  Bidi          replies b"echo:" + message to each message as it arrives.
  Slow          request is an ASCII integer of milliseconds: sleeps that long, then echoes.

Every method also honours request metadata:
  x-fail: CODE  aborts with status CODE (a name like NOT_FOUND or a number) and the message
                "failed on purpose".
  x-echo: V     is sent back as initial metadata `x-echo: V` and trailing metadata
                `x-trailer: V` (on failures too).
  x-fail-first: CODE:KEY
                aborts with status CODE the first time KEY is seen (a retry then succeeds);
                every answer carries trailing metadata `x-tries: N`, the calls seen with KEY.

Usage: grpc_server.py [--tls CERT KEY]
Listens on 127.0.0.1, an ephemeral port, h2c (or TLS); prints "PORT <n>" as its first line of
stdout, then serves until stdin closes or SIGTERM.
"""

import argparse
import signal
import sys
import threading
import time
from concurrent import futures

import grpc


def status_code(text):
    """A grpc.StatusCode from a name ("NOT_FOUND") or a number ("5")."""
    text = text.strip()
    if text.isdigit():
        for code in grpc.StatusCode:
            if code.value[0] == int(text):
                return code
    return grpc.StatusCode[text.upper()]


SEEN = {}
SEEN_LOCK = threading.Lock()


def prologue(context):
    """Applies the x-echo, x-fail and x-fail-first request metadata; call before sending any
    response."""
    metadata = dict(context.invocation_metadata())
    if "x-echo" in metadata:
        context.send_initial_metadata([("x-echo", metadata["x-echo"])])
        context.set_trailing_metadata([("x-trailer", metadata["x-echo"])])
    if "x-fail" in metadata:
        context.abort(status_code(metadata["x-fail"]), "failed on purpose")
    if "x-fail-first" in metadata:
        code, _, key = metadata["x-fail-first"].partition(":")
        with SEEN_LOCK:
            SEEN[key] = SEEN.get(key, 0) + 1
            tries = SEEN[key]
        context.set_trailing_metadata([("x-tries", str(tries))])
        if tries == 1:
            context.abort(status_code(code), "failed on purpose")


def unary(request, context):
    prologue(context)
    return request


def server_stream(request, context):
    prologue(context)
    for i in range(int(request.decode())):
        yield b"msg-%d" % i


def client_stream(requests, context):
    prologue(context)
    messages = list(requests)
    return b"%d:%d" % (len(messages), sum(len(m) for m in messages))


def bidi(requests, context):
    prologue(context)
    for message in requests:
        yield b"echo:" + message


def slow(request, context):
    prologue(context)
    time.sleep(int(request.decode()) / 1000)
    return request


def main():
    parser = argparse.ArgumentParser(description="gRPC test.Echo server (raw bytes)")
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"), help="serve TLS")
    args = parser.parse_args()

    handler = grpc.method_handlers_generic_handler(
        "test.Echo",
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
            "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
            "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
            "Slow": grpc.unary_unary_rpc_method_handler(slow),
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32), handlers=[handler])
    if args.tls:
        with open(args.tls[0], "rb") as f:
            cert = f.read()
        with open(args.tls[1], "rb") as f:
            key = f.read()
        creds = grpc.ssl_server_credentials([(key, cert)])
        port = server.add_secure_port("127.0.0.1:0", creds)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print("PORT %d" % port, flush=True)

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    while not done.wait(0.5):
        pass
    server.stop(0).wait(5)


if __name__ == "__main__":
    main()
