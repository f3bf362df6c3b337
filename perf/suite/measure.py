"""Running the load generators and reading what the kernel says about a proxy's processes.

Load generators: wrk (closed loop, requests/s and latency percentiles through a Lua `done`
hook that prints JSON), the suite's own fixedrate client (open loop at a fixed rate, latency
from each request's scheduled time: no coordinated omission), and h2load (h2c and TLS).
From /proc: CPU time (utime + stime of every process of a proxy, all threads included) and
memory (VmRSS now, VmHWM the peak) of the proxy's processes, shared pages counted once.
"""

import json
import os
import re
import resource
import socket
import subprocess
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
WRK_LUA = Path(__file__).resolve().parent / "wrk-report.lua"


# ---------------------------------------------------------------- /proc

def _stat_fields(pid):
    """Fields of /proc/PID/stat after the command name (field 3, `state`, is index 0)."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return data[data.rfind(")") + 2:].split()


def proc_starttime(pid):
    f = _stat_fields(pid)
    return int(f[19]) if f else None


def process_tree(root):
    """root and all its descendants."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            f = _stat_fields(entry)
            if f:
                children.setdefault(int(f[1]), []).append(int(entry))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pids):
    """utime + stime of the processes (each covers all of its threads), in seconds."""
    total = 0
    for p in pids:
        f = _stat_fields(p)
        if f:
            total += int(f[11]) + int(f[12])
    return total / CLK_TCK


def cpu_busy_seconds(cpus):
    """Time the CPUs were not idle: user + nice + system + irq + softirq (a process's stime
    includes the interrupt work done in its context, which /proc/stat files under irq and
    softirq) + steal (the hypervisor ran something else). Compared with the CPU time of the
    processes we started, it tells how much other work took those CPUs during a measurement."""
    total = 0
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu") and line[3].isdigit():
            f = line.split()
            if int(f[0][3:]) in cpus:
                total += sum(int(x) for x in f[1:4] + f[6:9])
    return total / CLK_TCK


def own_cpu_seconds():
    """CPU of this process and of its waited-for children (the load generators)."""
    a = resource.getrusage(resource.RUSAGE_SELF)
    b = resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def _status_kib(pid, key):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _private_kib(pid):
    total = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                total += int(line.split()[1])
    except OSError:
        pass
    return total


def _footprint(pids, key):
    """Memory of a group of processes without counting twice the pages they share: the
    largest process's `key` (VmRSS or VmHWM) plus the private memory of the others. For one
    process it is exactly its VmRSS/VmHWM. (nginx: the worker, plus what only the master
    holds; the master's shared pages are the libraries and configuration the worker maps too.)"""
    if not pids:
        return 0
    main = max(pids, key=lambda p: _status_kib(p, "VmRSS"))
    return _status_kib(main, key) + sum(_private_kib(p) for p in pids if p != main)


def rss_kib(pids):
    return _footprint(pids, "VmRSS")


def hwm_kib(pids):
    return _footprint(pids, "VmHWM")


def cpus_allowed(pid):
    """The CPUs each thread of the process may run on, as the kernel reports them."""
    out = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            for line in Path(f"/proc/{pid}/task/{tid}/status").read_text().splitlines():
                if line.startswith("Cpus_allowed_list:"):
                    out.add(line.split()[1])
        except OSError:
            pass
    return ",".join(sorted(out))


# ---------------------------------------------------------------- load generators

def _pinned(cpus):
    return lambda: os.sched_setaffinity(0, cpus)


class LoadError(RuntimeError):
    pass


def _run(argv, cpus, timeout):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                           preexec_fn=_pinned(cpus))
    except subprocess.TimeoutExpired as e:
        raise LoadError(f"{os.path.basename(argv[0])} did not finish in {timeout}s") from e
    if p.returncode != 0:
        raise LoadError(f"{' '.join(argv)} exited {p.returncode}: {p.stderr.strip()[-500:]}")
    return p.stdout


def _header_args(headers):
    """-H NAME: VALUE for each header (wrk and h2load take the same form)."""
    return [a for k, v in headers for a in ("-H", f"{k}: {v}")]


def run_wrk(tools, cpus, url, conns, duration, headers=()):
    """Closed loop: conns connections, each sending its next request when the last answered.
    headers: (name, value) pairs every request carries."""
    out = _run([tools.wrk, "-t1", f"-c{conns}", f"-d{duration}s", "--timeout", "5s",
                "--latency", *_header_args(headers), "-s", str(WRK_LUA), url], cpus,
               timeout=duration + 30)
    m = re.search(r"^RESULT (\{.*\})$", out, re.M)
    if not m:
        raise LoadError(f"wrk printed no result: {out[-500:]}")
    r = json.loads(m.group(1))
    errors = {k: r[k] for k in ("connect", "read", "write", "status", "timeout")}
    return {
        "requests": r["requests"],
        "duration_s": r["duration_us"] / 1e6,
        "rps": r["requests"] / (r["duration_us"] / 1e6),
        "errors": sum(errors.values()),
        "error_kinds": errors,
        **{k: r[k] for k in ("p50_us", "p90_us", "p99_us", "p999_us", "max_us", "mean_us")},
    }


def run_fixedrate(tools, cpus, port, path, conns, rate, duration, warmup):
    """Open loop at `rate` requests/s over `conns` connections (see loadgen/fixedrate.c)."""
    out = _run([tools.fixedrate, "-c", str(conns), "-r", str(rate), "-d", str(duration),
                "-w", str(warmup), "-t", "5", "127.0.0.1", str(port), path],
               cpus, timeout=duration + warmup + 30)
    r = json.loads(out.strip().splitlines()[-1])
    kinds = {k: r[k] for k in ("errors_connect", "errors_status", "errors_parse", "timeouts")}
    return {
        "requests": r["requests"],
        "requests_total": r["requests_total"],
        "duration_s": r["duration_s"],
        "rps": r["rate_achieved"],
        "errors": sum(kinds.values()),
        "error_kinds": kinds,
        **{k: r[k] for k in ("p50_us", "p90_us", "p99_us", "p999_us", "max_us", "mean_us")},
    }


def _percentile(sorted_values, p):
    if not sorted_values:
        return 0.0
    i = min(len(sorted_values) - 1, int(p / 100.0 * len(sorted_values)))
    return float(sorted_values[i])


def _seconds(d):
    if isinstance(d, str) and d.endswith("ms"):
        return float(d[:-2]) / 1000
    return float(d)


def h2load_argv(h2load, url, conns, streams, duration, log_file=None, requests=None, h1=False,
                headers=()):
    # -N: a connection stuck (e.g. in its TLS handshake) is dropped instead of holding h2load
    # past its duration.
    amount = ["-n", str(requests)] if requests else ["-D", str(duration)]
    logging = ["--log-file", str(log_file)] if log_file else []
    return [h2load, "-t1", f"-c{conns}", f"-m{streams}", *amount, "-N5s",
            *(["--h1"] if h1 else []), *_header_args(headers), *logging, url]


def run_h2load(tools, cpus, url, conns, streams, duration, log_file, requests=None, h1=False,
               headers=()):
    """h2 (h2c with prior knowledge for http://, ALPN h2 for https://), conns x streams.
    duration: seconds, or a string with a unit ("200ms"). requests: instead of a duration,
    exactly that many requests (-n). h1: HTTP/1.1 instead of h2 (--h1). headers: (name,
    value) pairs every request carries."""
    timeout = 600 if requests else _seconds(duration) + 20
    out = _run(h2load_argv(tools.h2load, url, conns, streams, duration, log_file, requests, h1,
                           headers), cpus, timeout=timeout)
    m = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", out)
    req = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                    r"(\d+) failed, (\d+) errored, (\d+) timeout", out)
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    if not (m and req and codes):
        raise LoadError(f"h2load output not understood: {out[-800:]}")
    secs = float(m.group(1)) / (1000.0 if m.group(2) == "ms" else 1.0)
    lat = []
    with open(log_file) as f:
        for line in f:
            parts = line.split("\t")
            if len(parts) >= 3 and parts[1] != "-1":
                lat.append(int(parts[2]))
    lat.sort()
    os.unlink(log_file)  # can be large; the percentiles are what we keep
    kinds = {"failed": int(req.group(5)), "errored": int(req.group(6)),
             "timeout": int(req.group(7)),
             "status": int(codes.group(3)) + int(codes.group(4))}
    succeeded = int(req.group(4))
    return {
        "requests": succeeded,
        "duration_s": secs,
        "rps": float(m.group(3)),
        "errors": sum(kinds.values()),
        "error_kinds": kinds,
        "p50_us": _percentile(lat, 50), "p90_us": _percentile(lat, 90),
        "p99_us": _percentile(lat, 99), "p999_us": _percentile(lat, 99.9),
        "max_us": float(lat[-1]) if lat else 0.0,
        "mean_us": sum(lat) / len(lat) if lat else 0.0,
    }


# ---------------------------------------------------------------- idle connections

def _read_response(sock):
    """Reads one HTTP/1.1 response with a Content-Length; returns its status."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise OSError("closed before the response head")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    left = (int(m.group(1)) if m else 0) - len(body)
    while left > 0:
        chunk = sock.recv(min(left, 65536))
        if not chunk:
            raise OSError("closed in the body")
        left -= len(chunk)
    return int(head.split(b" ", 2)[1])


def open_idle_connections(port, count, path, batch=200, deadline_s=120, headers=()):
    """Opens `count` keep-alive connections, sends one request (with `headers`) on each and
    reads its answer, and leaves them open. Returns (sockets, failures). The caller closes
    the sockets."""
    socks, failures = [], 0
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers)
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}\r\n".encode()
    end = time.monotonic() + deadline_s
    while len(socks) + failures < count and time.monotonic() < end:
        group = []
        for _ in range(min(batch, count - len(socks) - failures)):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=10)
                s.sendall(request)
                group.append(s)
            except OSError:
                failures += 1
        for s in group:
            try:
                if _read_response(s) == 200:
                    socks.append(s)
                    continue
            except OSError:
                pass
            failures += 1
            s.close()
    return socks, failures
