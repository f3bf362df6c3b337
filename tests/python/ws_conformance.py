#!/usr/bin/env python3
"""A differential WebSocket conformance run: every case of ws_cases.py against each target,
with the outcomes compared to the first target's (the echo server reached directly).

Usage: ws_conformance.py --target NAME=HOST:PORT[:tls] [--target ...] [--ca CA] [--full]
                         [--category NAME]...

A raw-socket client: it opens the HTTP/1.1 Upgrade itself, writes each case's frames (one
byte per write where the case says so; see ws_cases.py for SYNC and the marker message that
comes before the client's own close) while it reads, in one thread with non-blocking I/O, and
records the outcome without timing: the handshake status, every frame the server sent (a
message as its type, length and digest, a pong with its payload, a close with its code and
reason), and how the connection ended ("server closed" for an end of stream or a reset,
"client gave up" when nothing ended it within the case's limit). The client answers a
server's close with its own, as RFC 6455 5.5.1 asks.

Prints one JSON line:
  {"cases": N, "full": bool, "targets": [NAME...],
   "categories": {CATEGORY: {"cases": n, "identical": n, "different": n}},
   "endings": {ENDING: n}   (how the reference target's cases ended, e.g. "close 1002"),
   "differences": [{"category", "case", "outcomes": {NAME: outcome}}]}
Exits 0 whatever the outcomes; nonzero only on a usage error or a crash.
"""

import argparse
import base64
import hashlib
import json
import os
import select
import socket
import ssl
import struct
import sys
import time

import ws_cases

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
DATA_OPCODES = (ws_cases.TEXT, ws_cases.BINARY, ws_cases.CONT)
MARKER = ws_cases.MARKER.encode()


class Target:
    def __init__(self, spec, ca):
        name, addr = spec.split("=", 1)
        parts = addr.split(":")
        self.name, self.host, self.port = name, parts[0], int(parts[1])
        self.tls = len(parts) > 2 and parts[2] == "tls"
        self.context = ssl.create_default_context(cafile=ca) if self.tls else None

    def connect(self):
        sock = socket.create_connection((self.host, self.port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls:
            sock = self.context.wrap_socket(sock, server_hostname="localhost")
        return sock


def handshake(sock, host):
    """Sends the Upgrade request; returns (outcome, bytes read past the head)."""
    key = base64.b64encode(os.urandom(16))
    sock.sendall(b"GET /conformance HTTP/1.1\r\nHost: " + host.encode()
                 + b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "
                 + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return "handshake: closed before a response", b""
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0].split(" ")[1] if " " in lines[0] else lines[0]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
    if status != "101" or headers.get("sec-websocket-accept") != accept:
        return "handshake: %s accept %s" % (status, headers.get("sec-websocket-accept")), rest
    return "101", rest


def parse_frames(buf):
    """Server frames at the front of buf: ([(fin, rsv, opcode, payload)], rest)."""
    frames = []
    while len(buf) >= 2:
        b0, b1 = buf[0], buf[1]
        n, at = b1 & 0x7F, 2
        if n == 126:
            if len(buf) < 4:
                break
            n, at = struct.unpack("!H", buf[2:4])[0], 4
        elif n == 127:
            if len(buf) < 10:
                break
            n, at = struct.unpack("!Q", buf[2:10])[0], 10
        if b1 & 0x80:
            at += 4  # servers do not mask; if one did, the payload is recorded masked
        if len(buf) < at + n:
            break
        frames.append((bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF, buf[at:at + n]))
        buf = buf[at + n:]
    return frames, buf


def describe(kind, data):
    if kind == "text" and len(data) <= 40:
        try:
            return "text %r" % data.decode()
        except UnicodeDecodeError:
            pass
    return "%s %d %s" % (kind, len(data), hashlib.sha256(data).hexdigest()[:12])


class Session:
    """One case's connection after the handshake: one thread, non-blocking I/O (an SSL
    object must not be read and written from two threads at once)."""

    def __init__(self, sock, case, buf):
        self.sock, self.case, self.buf = sock, case, buf
        self.outcome = []
        self.writes = list(case.writes)
        if case.tail_close:
            self.writes.append((ws_cases.frame(ws_cases.TEXT, ws_cases.MARKER), False))
        sent, _ = parse_frames(b"".join(d for d, _ in case.writes if d is not ws_cases.SYNC))
        # A case that sends its own close must not answer the server's.
        self.close_sent = any(fin and op == ws_cases.CLOSE for fin, _, op, _ in sent)
        self.out, self.chop = b"", False
        self.expected = self.received = 0
        self.writing = True
        self.message, self.kind = [], None

    def next_write(self):
        """Moves the next write into self.out, unless a SYNC still waits for echoes."""
        while not self.out and self.writes:
            data, chop = self.writes[0]
            if data is ws_cases.SYNC:
                if self.received < self.expected:
                    return
                self.writes.pop(0)
                continue
            self.writes.pop(0)
            self.out, self.chop = data, chop
            frames, _ = parse_frames(data)
            self.expected += sum(1 for fin, _, op, _ in frames if fin and op in DATA_OPCODES)

    def queue(self, data):
        """A frame written after everything the case writes (an answer to the server)."""
        self.writes.append((data, False))

    def on_frame(self, fin, rsv, opcode, data):
        if rsv:
            self.outcome.append("frame with RSV=%d" % rsv)
        if opcode in DATA_OPCODES:
            if opcode != ws_cases.CONT:
                self.kind = "text" if opcode == ws_cases.TEXT else "binary"
            self.message.append(data)
            if not fin:
                return
            whole = b"".join(self.message)
            self.outcome.append(describe(self.kind, whole))
            self.message = []
            self.received += 1
            if self.case.tail_close and self.kind == "text" and whole == MARKER:
                self.close_sent = True
                self.queue(ws_cases.close_frame(1000))
        elif opcode == ws_cases.PONG:
            more = "..%d" % len(data) if len(data) > 16 else ""
            self.outcome.append("pong %s%s" % (data[:16].hex(), more))
        elif opcode == ws_cases.PING:
            self.outcome.append("ping %s" % data.hex())
            self.queue(ws_cases.frame(ws_cases.PONG, data))
        elif opcode == ws_cases.CLOSE:
            code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else None
            self.outcome.append("close %s %r" % (code, data[2:].decode("utf-8", "replace")))
            if not self.close_sent:
                self.close_sent = True
                self.queue(ws_cases.close_frame(code) if code else ws_cases.close_frame())
        else:
            self.outcome.append("frame with opcode %X" % opcode)

    def write_some(self):
        try:
            n = self.sock.send(self.out[:1] if self.chop else self.out[:1 << 20])
            self.out = self.out[n:]
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
            pass
        except OSError:
            # The server failed the connection: the reads tell what happened.
            self.writing, self.out, self.writes = False, b"", []

    def read_some(self):
        """False at the end of the stream (or a reset: the server closed too)."""
        try:
            chunk = self.sock.recv(1 << 20)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return True
        except OSError:
            return False
        if not chunk:
            return False
        frames, self.buf = parse_frames(self.buf + chunk)
        for frame in frames:
            self.on_frame(*frame)
        return True

    def run(self):
        frames, self.buf = parse_frames(self.buf)
        for frame in frames:
            self.on_frame(*frame)
        self.sock.setblocking(False)
        deadline = time.monotonic() + self.case.limit
        ending = "client gave up"
        while True:
            if self.writing:
                self.next_write()
            left = deadline - time.monotonic()
            if left <= 0:
                break
            pending = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()
            readable, writable, _ = select.select(
                [self.sock], [self.sock] if self.out else [], [], 0 if pending else left)
            if writable:
                self.write_some()
            if (readable or pending) and not self.read_some():
                ending = "server closed"
                break
        if self.buf:
            self.outcome.append("%d bytes of an incomplete frame" % len(self.buf))
        self.outcome.append(ending)
        return self.outcome


def run_case(target, case):
    """The outcome of one case against one target: a list of strings."""
    try:
        sock = target.connect()
    except OSError as error:
        return ["connect: %s" % type(error).__name__]
    try:
        status, buf = handshake(sock, target.host)
        if status != "101":
            return [status]
        return [status] + Session(sock, case, buf).run()
    except OSError as error:
        return ["handshake: %s" % type(error).__name__]
    finally:
        sock.close()


def main():
    parser = argparse.ArgumentParser(description="differential WebSocket conformance run")
    parser.add_argument("--target", action="append", required=True,
                        metavar="NAME=HOST:PORT[:tls]", help="the first is the reference")
    parser.add_argument("--ca", help="PEM CA for :tls targets")
    parser.add_argument("--full", action="store_true", help="the full case list")
    parser.add_argument("--category", action="append", default=[])
    opts = parser.parse_args()
    targets = [Target(spec, opts.ca) for spec in opts.target]
    cases = [c for c in ws_cases.all_cases(opts.full)
             if not opts.category or c.category in opts.category]

    categories, endings, differences = {}, {}, []
    for case in cases:
        outcomes = {t.name: run_case(t, case) for t in targets}
        reference = outcomes[targets[0].name]
        same = all(o == reference for o in outcomes.values())
        tally = categories.setdefault(case.category, {"cases": 0, "identical": 0, "different": 0})
        tally["cases"] += 1
        tally["identical" if same else "different"] += 1
        closes = [e.split(" ")[1] for e in reference if e.startswith("close ")]
        ending = ("close %s" % closes[0] if closes else "no close") + ", " + reference[-1]
        endings[ending] = endings.get(ending, 0) + 1
        if not same:
            differences.append({"category": case.category, "case": case.name,
                                "outcomes": outcomes})
    print(json.dumps({"cases": len(cases), "full": opts.full,
                      "targets": [t.name for t in targets], "categories": categories,
                      "endings": endings, "differences": differences}), flush=True)


if __name__ == "__main__":
    for name in [k for k in os.environ if k.lower().endswith("_proxy")]:
        del os.environ[name]
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
    sys.exit(0)
