#!/usr/bin/env python3
"""Talks to ws_server.py (directly or through a proxy) and prints the outcome as one JSON line.

Usage: ws_client.py URL [--messages A B ...] [--binary-size N] [--header K=V]...
                    [--tls-ca CA] [--timeout S]

Sends each text message and waits for its echo, then (with --binary-size) one binary message of
N random bytes and checks the echo is identical. Prints
  {"ok": bool, "echoes": [str...], "binary_ok": bool or null (no binary sent),
   "close_code": int or null, "close_reason": str, "error": str}
"ok" is true when nothing went wrong; a close by the server right after the text "close"
(which ws_server.py answers with 4000 "bye") is not an error. Exits 0 whatever happened;
nonzero only on a usage error or a crash.
"""

import argparse
import asyncio
import json
import os
import ssl
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


async def session(opts, result):
    context = ssl.create_default_context(cafile=opts.tls_ca) if opts.tls_ca else None
    headers = [tuple(h.split("=", 1)) for h in opts.header]
    async with connect(
        opts.url,
        ssl=context,
        additional_headers=headers,
        max_size=64 << 20,
        open_timeout=opts.timeout,
    ) as ws:
        try:
            for message in opts.messages:
                await ws.send(message)
                result["echoes"].append(await ws.recv())
            if opts.binary_size is not None:
                payload = os.urandom(opts.binary_size)
                await ws.send(payload)
                result["binary_ok"] = await ws.recv() == payload
        except ConnectionClosed as closed:
            if not opts.messages or opts.messages[-1] != "close" or closed.rcvd is None:
                result["error"] = "connection closed: %s" % closed
    result["close_code"] = ws.close_code
    result["close_reason"] = ws.close_reason or ""


def main():
    parser = argparse.ArgumentParser(description="WebSocket echo client; prints one JSON line")
    parser.add_argument("url")
    parser.add_argument("--messages", nargs="*", default=[])
    parser.add_argument("--binary-size", type=int, metavar="N")
    parser.add_argument("--header", action="append", default=[], metavar="K=V")
    parser.add_argument("--tls-ca", metavar="CA", help="PEM CA file for wss://")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds for everything")
    opts = parser.parse_args()

    result = {"ok": False, "echoes": [], "binary_ok": None, "close_code": None,
              "close_reason": "", "error": ""}
    try:
        asyncio.run(asyncio.wait_for(session(opts, result), opts.timeout))
    except asyncio.TimeoutError:
        result["error"] = "timed out after %ss" % opts.timeout
    except Exception as error:  # the handshake or connection failed: report, don't crash
        result["error"] = "%s: %s" % (type(error).__name__, error)
    result["ok"] = not result["error"]
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    for name in [k for k in os.environ if k.lower().endswith("_proxy")]:
        del os.environ[name]
    main()
    sys.exit(0)
