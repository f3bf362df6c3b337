#!/usr/bin/env python3
"""A WebSocket echo test origin.

Echoes every text and binary message. Text "close" closes the connection with code 4000,
reason "bye"; text "path" is answered with "path:" + the request path of the handshake.

With --plain it is a pure echo (no special messages) that never pings on its own, for the
conformance run (ws_conformance.py), whose outcomes must not depend on a keepalive timer.

Usage: ws_server.py [--plain]
Listens on 127.0.0.1, an ephemeral port; prints "PORT <n>" as its first line of stdout, then
serves until stdin closes or SIGTERM.
"""

import asyncio
import signal
import sys
import threading

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed


async def echo(ws):
    async for message in ws:
        if message == "close":
            await ws.close(4000, "bye")
            return
        if message == "path":
            await ws.send("path:" + ws.request.path)
            continue
        await ws.send(message)


async def plain_echo(ws):
    try:
        async for message in ws:
            await ws.send(message)
    except ConnectionClosed:
        pass  # how it closed is the client's to see, not a failure of the server


async def main():
    plain = "--plain" in sys.argv[1:]
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, done.set)

    def wait_stdin():
        sys.stdin.read()
        loop.call_soon_threadsafe(done.set)

    # A daemon thread, not the loop's executor: exiting must not wait for a blocked read.
    threading.Thread(target=wait_stdin, daemon=True).start()
    handler, keepalive = (plain_echo, None) if plain else (echo, 20)
    async with serve(handler, "127.0.0.1", 0, max_size=64 << 20,
                     ping_interval=keepalive) as server:
        port = server.sockets[0].getsockname()[1]
        print("PORT %d" % port, flush=True)
        await done.wait()


if __name__ == "__main__":
    asyncio.run(main())
