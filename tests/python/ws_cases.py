"""The cases of the WebSocket conformance run (ws_conformance.py), by category.

Written for ringside from RFC 6455; the categories follow the ones the Autobahn test suite
covers (whose own cases cannot run here: see docs/hardening.md), none of its code or text.

A case is a list of writes, each a few frames sent in one write or one byte per write
(`chop`), or SYNC (wait for the echo of every message sent so far), and whether the client
ends it with its own close (1000). The client sends that close only once the echo of a last
marker message is back, and a case sends a bad frame only after a SYNC, because the server
takes a close or a bad frame as soon as it reads it, possibly before it has echoed the
messages read with it. A case whose last frame is invalid, or is itself a close, leaves the
ending to the server: nothing is sent after a frame the server fails on, so the server never
closes with unread bytes (its kernel would then reset the connection, and the outcome would
depend on timing).
"""

import struct

TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA
MASK = b"\x37\xfa\x21\x3d"
SYNC = None
MARKER = "end of case"


def frame(opcode, payload=b"", fin=True, rsv=0, mask=True, length=None):
    """One client frame. `length` forces a length encoding: 7, 16 or 64 (bits)."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload)
    length = length or (7 if n < 126 else 16 if n < 65536 else 64)
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    bit = 0x80 if mask else 0
    if length == 7:
        head += bytes([bit | n])
    elif length == 16:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    return head + MASK + bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))


def close_frame(code=None, reason=b"", raw=None):
    if raw is None:
        raw = b"" if code is None else struct.pack("!H", code) + reason
    return frame(CLOSE, raw)


class Case:
    def __init__(self, category, name, writes, tail_close=True, limit=10.0):
        self.category = category
        self.name = name
        # [(bytes, chop) or (SYNC, False)]: one write, or one write per byte when chop.
        self.writes = writes
        self.tail_close = tail_close
        self.limit = limit


def one(category, name, data, chop=False, tail_close=True, limit=10.0):
    return Case(category, name, [(data, chop)], tail_close, limit)


def payload(n, seed=0):
    return bytes((i * 31 + seed + (i >> 8)) & 0xFF for i in range(n))


def text_payload(n):
    return ("abcdefghijklmnopqrstuvwxyz0123456789" * (n // 36 + 1))[:n]


def framing(full):
    sizes = [0, 1, 125, 126, 127, 128, 65535, 65536]
    if full:
        sizes += [65537, 131072, 1 << 20]
    for n in sizes:
        chop = n <= 128 or (full and n <= 65536)
        yield one("framing", "text %d bytes" % n, frame(TEXT, text_payload(n)), chop)
        yield one("framing", "binary %d bytes" % n, frame(BINARY, payload(n)), chop)
    # A length in a longer encoding than needed (RFC 6455 5.2 asks for the minimal one).
    yield one("framing", "5 bytes, 16-bit length", frame(TEXT, "hello", length=16))
    yield one("framing", "5 bytes, 64-bit length", frame(TEXT, "hello", length=64))
    yield one("framing", "200 bytes, 64-bit length", frame(BINARY, payload(200), length=64))
    big = frame(BINARY, b"", length=64)[:2] + struct.pack("!Q", 1 << 63) + MASK
    yield one("framing", "64-bit length with its top bit set", big, tail_close=False)
    yield one("framing", "unmasked client frame", frame(TEXT, "hi", mask=False),
              tail_close=False)
    yield Case("framing", "three frames in one write, then each byte apart",
               [(frame(TEXT, "a") + frame(BINARY, b"b") + frame(TEXT, "c"), False),
                (frame(TEXT, "d") + frame(TEXT, "e"), True)])


def messages(full):
    yield one("messages", "text ascii", frame(TEXT, "Hello, world"))
    yield one("messages", "text multibyte", frame(TEXT, "κόσμε ☃ 𝄞 中文"))
    yield one("messages", "binary all byte values", frame(BINARY, bytes(range(256))))
    yield one("messages", "empty text then empty binary",
              frame(TEXT, "") + frame(BINARY, b""))
    yield one("messages", "text, binary, text interleaved",
              frame(TEXT, "one") + frame(BINARY, b"\x00\x01") + frame(TEXT, "three"), True)


def fragmentation(full):
    yield one("fragmentation", "text in 2 fragments",
              frame(TEXT, "frag", fin=False) + frame(CONT, "ment"))
    yield one("fragmentation", "binary in 3 fragments",
              frame(BINARY, b"\x01", fin=False) + frame(CONT, b"\x02", fin=False)
              + frame(CONT, b"\x03"))
    many = frame(TEXT, "x", fin=False) + b"".join(frame(CONT, c, fin=False) for c in "yz" * 20)
    yield one("fragmentation", "text in 42 one-byte fragments", many + frame(CONT, "!"), True)
    yield one("fragmentation", "empty fragments",
              frame(TEXT, "", fin=False) + frame(CONT, "", fin=False) + frame(CONT, ""))
    yield one("fragmentation", "ping between fragments",
              frame(TEXT, "be", fin=False) + frame(PING, "in-between") + frame(CONT, "fore"))
    yield one("fragmentation", "pong between fragments",
              frame(TEXT, "be", fin=False) + frame(PONG, "x") + frame(CONT, "fore"), True)
    yield one("fragmentation", "close between fragments",
              frame(TEXT, "be", fin=False) + close_frame(1000), tail_close=False)
    yield one("fragmentation", "continuation with nothing to continue",
              frame(CONT, "lost"), tail_close=False)
    yield Case("fragmentation", "final continuation with nothing to continue",
               [(frame(TEXT, "ok"), False), (SYNC, False), (frame(CONT, "lost", fin=False), False)],
               tail_close=False)
    yield one("fragmentation", "new text while a text is open",
              frame(TEXT, "a", fin=False) + frame(TEXT, "b"), tail_close=False)
    yield one("fragmentation", "new binary while a text is open",
              frame(TEXT, "a", fin=False) + frame(BINARY, b"b"), tail_close=False)
    yield one("fragmentation", "fragmented ping", frame(PING, "p", fin=False) + frame(CONT, "q"),
              tail_close=False)
    yield one("fragmentation", "fragmented close",
              frame(CLOSE, b"\x03\xe8", fin=False) + frame(CONT, b""), tail_close=False)
    if full:
        chunks = [payload(1000, i) for i in range(64)]
        msg = frame(BINARY, chunks[0], fin=False)
        msg += b"".join(frame(CONT, c, fin=False) for c in chunks[1:-1]) + frame(CONT, chunks[-1])
        yield one("fragmentation", "binary in 64 fragments of 1000 bytes", msg)


def reserved(full):
    for rsv in (1, 2, 4, 7):
        yield one("reserved", "RSV=%d on text" % rsv, frame(TEXT, "r", rsv=rsv), tail_close=False)
    yield one("reserved", "RSV=2 on ping", frame(PING, "r", rsv=2), tail_close=False)
    yield one("reserved", "RSV=4 on close", frame(CLOSE, struct.pack("!H", 1000), rsv=4),
              tail_close=False)
    yield Case("reserved", "RSV=1 after a good message",
               [(frame(TEXT, "ok"), False), (SYNC, False), (frame(TEXT, "r", rsv=1), False)],
               tail_close=False)
    for op in (3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF):
        yield one("reserved", "opcode %X" % op, frame(op, "?"), tail_close=False)
    yield Case("reserved", "opcode B after a good message",
               [(frame(TEXT, "ok"), False), (SYNC, False), (frame(0xB, ""), False)],
               tail_close=False)


def ping_pong(full):
    yield one("ping-pong", "empty ping", frame(PING))
    yield one("ping-pong", "ping with text", frame(PING, "Hello, world"))
    yield one("ping-pong", "ping with binary", frame(PING, bytes([0, 0xFF, 0xFE, 0xFD])))
    yield one("ping-pong", "ping of 125 bytes", frame(PING, payload(125)))
    yield one("ping-pong", "ping of 126 bytes", frame(PING, payload(126)), tail_close=False)
    yield one("ping-pong", "ping of 125 bytes, byte by byte", frame(PING, payload(125)), True)
    yield one("ping-pong", "unsolicited empty pong", frame(PONG))
    yield one("ping-pong", "unsolicited pong, then ping",
              frame(PONG, "unsolicited") + frame(PING, "solicited"))
    yield one("ping-pong", "ten pings", b"".join(frame(PING, "p%d" % i) for i in range(10)))
    yield one("ping-pong", "pong of 126 bytes", frame(PONG, payload(126)), tail_close=False)


def closing(full):
    yield one("close", "empty close", close_frame(), tail_close=False)
    yield one("close", "close of 1 byte", close_frame(raw=b"\x03"), tail_close=False)
    yield one("close", "1000 with a reason", close_frame(1000, b"done here"), tail_close=False)
    yield one("close", "1000 with a 123-byte reason", close_frame(1000, b"r" * 123),
              tail_close=False)
    yield one("close", "1000 with a 124-byte reason", close_frame(1000, b"r" * 124),
              tail_close=False)
    yield one("close", "reason not UTF-8", close_frame(1000, b"\xce\xba\xe1\xbd\xb9\xed\xa0\x80"),
              tail_close=False)
    yield one("close", "text after close", close_frame(1000) + frame(TEXT, "late"),
              tail_close=False)
    valid = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]
    invalid = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]
    if full:
        valid += [1012, 1013, 1014]
        invalid += [1, 1099, 1999]
    for code in valid:
        yield one("close", "code %d" % code, close_frame(code), tail_close=False)
    for code in invalid:
        yield one("close", "invalid code %d" % code, close_frame(code), tail_close=False)
    yield one("close", "close byte by byte", close_frame(1001, b"bye"), True, tail_close=False)


# Each an invalid UTF-8 sequence in a text message (RFC 3629).
INVALID_UTF8 = [
    ("lone continuation byte", b"\x80"),
    ("truncated 2-byte", b"\xc3"),
    ("truncated 3-byte", b"\xe2\x82"),
    ("truncated 4-byte", b"\xf0\x9d\x84"),
    ("overlong slash", b"\xc0\xaf"),
    ("overlong 3-byte NUL", b"\xe0\x80\x80"),
    ("surrogate U+D800", b"\xed\xa0\x80"),
    ("above U+10FFFF", b"\xf4\x90\x80\x80"),
    ("byte FE", b"\xfe"),
    ("byte FF", b"\xff"),
    ("valid then invalid", "κόσμε".encode() + b"\xed\xa0\x80edited"),
]


def utf8(full):
    valid = ["\u0080", "\u07ff", "\u0800", "\ufffd", "\uffff", "\U00010000", "\U0010ffff",
             "κόσμε", "𝄞𝄞"]
    for s in valid:
        yield one("utf-8", "valid U+%04X.." % ord(s[0]), frame(TEXT, s))
    for name, seq in INVALID_UTF8:
        yield one("utf-8", "invalid: %s" % name, frame(TEXT, b"ok " + seq), tail_close=False)
    clef = "x𝄞y".encode()
    for cut in range(1, len(clef)):
        yield one("utf-8", "valid 4-byte split after byte %d" % cut,
                  frame(TEXT, clef[:cut], fin=False) + frame(CONT, clef[cut:]))
    yield one("utf-8", "valid, one byte per fragment",
              frame(TEXT, clef[:1], fin=False)
              + b"".join(frame(CONT, clef[i:i + 1], fin=False) for i in range(1, len(clef) - 1))
              + frame(CONT, clef[-1:]))
    yield one("utf-8", "invalid across fragments",
              frame(TEXT, b"ok \xed", fin=False) + frame(CONT, b"\xa0\x80"), tail_close=False)
    yield one("utf-8", "truncated at the final fragment",
              frame(TEXT, b"ok", fin=False) + frame(CONT, b"\xe2\x82"), tail_close=False)
    yield one("utf-8", "invalid in binary is fine", frame(BINARY, b"\xed\xa0\x80\xff"))


def large(full):
    sizes = [1 << 20] + ([4 << 20, 16 << 20] if full else [])
    for n in sizes:
        yield one("large", "text %d MiB" % (n >> 20), frame(TEXT, text_payload(n)), limit=30)
        yield one("large", "binary %d MiB" % (n >> 20), frame(BINARY, payload(n)), limit=30)
        k = 65536
        parts = [payload(k, i) for i in range(n // k)]
        msg = frame(BINARY, parts[0], fin=False)
        msg += b"".join(frame(CONT, p, fin=False) for p in parts[1:-1]) + frame(CONT, parts[-1])
        yield one("large", "binary %d MiB in 64 KiB fragments" % (n >> 20), msg, limit=30)
    # Past the echo server's 64 MiB limit: announced in the header, which is all that is sent.
    over = frame(BINARY, b"", length=64)[:2] + struct.pack("!Q", (64 << 20) + 1) + MASK
    yield one("large", "header announcing 64 MiB + 1", over, tail_close=False)


def many_small(full):
    for n in [100, 1000] + ([10000] if full else []):
        yield one("many-small", "%d text messages of 10 bytes" % n,
                  b"".join(frame(TEXT, "m%09d" % i) for i in range(n)), limit=30)
        yield one("many-small", "%d binary messages of 1 byte" % n,
                  b"".join(frame(BINARY, bytes([i & 0xFF])) for i in range(n)), limit=30)
    yield one("many-small", "50 messages byte by byte",
              b"".join(frame(TEXT, "s%02d" % i) for i in range(50)), True)


CATEGORIES = [framing, messages, fragmentation, reserved, ping_pong, closing, utf8, large,
              many_small]


def all_cases(full):
    return [case for category in CATEGORIES for case in category(full)]
