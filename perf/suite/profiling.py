"""What perf/flamegraph and perf/syscalls share: finding `perf` (Debian's linux-perf), the
sampling event this machine supports, and `perf stat` / `perf record` attached to a running
proxy, started and stopped by PID."""

import os
import signal
import subprocess

from . import log, tools


def perf_binary():
    """perf, installed from Debian's linux-perf when missing; checked by counting one event."""
    perf = tools.find_or_apt("perf", "linux-perf")
    p = subprocess.run([perf, "stat", "-e", "cpu-clock", "true"], capture_output=True,
                       text=True, timeout=60)
    if p.returncode != 0:
        raise SystemExit(f"`perf stat -e cpu-clock true` failed: {p.stderr.strip()[-500:]} "
                         "(perf_event_paranoid is "
                         f"{_read('/proc/sys/kernel/perf_event_paranoid')}; run as root)")
    return perf


def sampling_event(perf):
    """`cycles` where the CPU's counters reach this machine, else `cpu-clock` (a timer:
    virtual machines often expose no hardware counters)."""
    p = subprocess.run([perf, "stat", "-x,", "-e", "cycles", "true"], capture_output=True,
                       text=True, timeout=60)
    if p.returncode == 0 and "<not supported>" not in p.stderr and "<not counted>" not in p.stderr:
        return "cycles"
    return "cpu-clock"


def tracepoints(perf, pattern):
    """The tracepoints `perf list` knows that match pattern (e.g. 'io_uring:*')."""
    p = subprocess.run([perf, "list", pattern], capture_output=True, text=True, timeout=60)
    out = []
    for line in p.stdout.splitlines():
        parts = line.split()
        if parts and ":" in parts[0] and "Tracepoint" in line:
            out.append(parts[0])
    return out


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return "?"


class Attached:
    """A `perf stat` or `perf record` attached to processes (-p) and started disabled; enable()
    and disable() bracket exactly the window measured (perf's --control pipes, acknowledged),
    stop() ends it with SIGINT by its PID."""

    def __init__(self, perf, sub, args, pids, cpus, log_path):
        self._ctl_r, self._ctl_w = os.pipe()
        self._ack_r, self._ack_w = os.pipe()
        self.argv = [perf, sub, "-D", "-1", "--control", f"fd:{self._ctl_r},{self._ack_w}",
                     *args, "-p", ",".join(str(p) for p in pids)]
        self._log = open(log_path, "wb")
        self.popen = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                      stderr=subprocess.STDOUT, pass_fds=(self._ctl_r, self._ack_w),
                                      preexec_fn=lambda: os.sched_setaffinity(0, cpus))
        os.close(self._ctl_r)
        os.close(self._ack_w)
        self.log_path = log_path

    def command(self):
        """The command as a person would type it (without the control pipes)."""
        argv = [a for a in self.argv if not a.startswith("fd:")]
        i = argv.index("--control")
        del argv[i]
        j = argv.index("-D")
        del argv[j:j + 2]
        argv[0] = "perf"
        return " ".join(a if a and not any(c in a for c in " *'\"") else f"'{a}'" for a in argv)

    def _cmd(self, what):
        os.write(self._ctl_w, (what + "\n").encode())
        ack = b""
        # perf answers "ack\n" once the events are switched (or exits on error).
        while b"ack" not in ack:
            chunk = os.read(self._ack_r, 64)
            if not chunk:
                raise RuntimeError(f"perf exited instead of acknowledging {what!r}; see "
                                   f"{self.log_path}")
            ack += chunk

    def enable(self):
        self._cmd("enable")

    def disable(self):
        self._cmd("disable")

    def stop(self, timeout=600):
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warn(f"perf (pid {self.popen.pid}) still running {timeout}s after SIGINT; "
                         "killing it")
                self.popen.kill()
                self.popen.wait(10)
        for fd in (self._ctl_w, self._ack_r):
            try:
                os.close(fd)
            except OSError:
                pass
        self._log.close()
        return self.popen.returncode
