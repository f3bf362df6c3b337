"""Progress output: everything the suite says while it runs goes to stderr, so stdout carries
only the final markdown table."""

import sys
import time

_start = time.monotonic()


def _stamp():
    s = int(time.monotonic() - _start)
    return f"{s // 60:3d}:{s % 60:02d}"


def info(msg):
    print(f"[{_stamp()}] {msg}", file=sys.stderr, flush=True)


def warn(msg):
    print(f"[{_stamp()}] WARNING: {msg}", file=sys.stderr, flush=True)


class Progress:
    """Counts planned steps and estimates the time left from the planned seconds per step."""

    def __init__(self, planned_seconds, steps):
        self.total_s = max(planned_seconds, 1.0)
        self.steps = steps
        self.done_s = 0.0
        self.done = 0
        self.t0 = time.monotonic()

    def info(self, msg):
        info(msg)

    def step(self, planned_s, label):
        self.done += 1
        self.done_s += planned_s
        elapsed = time.monotonic() - self.t0
        # Scale the remaining plan by how fast the plan has gone so far.
        speed = elapsed / self.done_s if self.done_s else 1.0
        left = max(0.0, (self.total_s - self.done_s) * speed)
        pct = 100.0 * self.done_s / self.total_s
        info(f"[{self.done:3d}/{self.steps} {pct:3.0f}% eta {int(left) // 60}m{int(left) % 60:02d}s] "
             f"{label}")
