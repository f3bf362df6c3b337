#!/usr/bin/env python3
"""A WebSocket echo test origin.

Echoes every text and binary message. Text "close" closes the connection with code 4000,
reason "bye"; text "path" is answered with "path:" + the request path of the handshake.

Usage: ws_server.py
Listens on 127.0.0.1, an ephemeral port; prints "PORT <n>" as its first line of stdout, then
serves until stdin closes or SIGTERM.
"""

import asyncio
import signal
import sys
import threading

from websockets.asyncio.server import serve


async def echo(ws):
    async for message in ws:
        if message == "close":
            await ws.close(4000, "bye")
            return
        if message == "path":
            await ws.send("path:" + ws.request.path)
            continue
        await ws.send(message)


async def main():
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, done.set)

    def wait_stdin():
        sys.stdin.read()
        loop.call_soon_threadsafe(done.set)

    # A daemon thread, not the loop's executor: exiting must not wait for a blocked read.
    threading.Thread(target=wait_stdin, daemon=True).start()
    async with serve(echo, "127.0.0.1", 0, max_size=64 << 20) as server:
        port = server.sockets[0].getsockname()[1]
        print("PORT %d" % port, flush=True)
        await done.wait()


if __name__ == "__main__":
    asyncio.run(main())
