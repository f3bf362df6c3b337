"""The origin and the proxies under test, each started from its config template in templates/
and stopped by PID.

Every proxy gets the same treatment: one worker, pinned with the rest of its threads and
processes to the proxy CPUs, access logs off, one upstream (the origin's plain HTTP/1.1 port)
with an idle keep-alive pool big enough for the largest scenario. Each proxy listens on up to
three ports: plain HTTP/1.1 (`h1`), h2 with prior knowledge (`h2c`) and TLS with ALPN h2 and
http/1.1 (`tls`); a proxy that does not speak a protocol has no port for it and its scenarios
report n/a.
"""

import os
import re
import resource
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path
from string import Template

from . import log
from .measure import proc_starttime, process_tree

TEMPLATES = Path(__file__).resolve().parent / "templates"
POOL = 1024  # idle upstream connections each proxy may keep (> the 500-connection scenario)
HOST = "127.0.0.1"


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def render(template, dest, listeners=("h1", "h2c", "tls"), **values):
    """Fills a template's ${names}, keeping the lines between "#{NAME" and "#}NAME" only when
    NAME is one of `listeners` (so a run that needs only HTTP/1.1 configures no TLS)."""
    out, skip = [], None
    for line in (TEMPLATES / template).read_text().splitlines():
        if line.startswith("#{"):
            if line[2:].strip() not in listeners:
                skip = line[2:].strip()
            continue
        if line.startswith("#}"):
            if line[2:].strip() == skip:
                skip = None
            continue
        if skip is None:
            out.append(line)
    text = Template("\n".join(out) + "\n").substitute(**values)
    Path(dest).write_text(text)
    return str(dest)


class Process:
    """A started process, its log file, and the PIDs of its tree (recorded once it is up)."""

    def __init__(self, name, argv, cpus, log_path):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.popen = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            preexec_fn=lambda: os.sched_setaffinity(0, cpus), cwd=os.path.dirname(log_path))
        self.pid = self.popen.pid
        self.tree = {}  # pid -> starttime, to never signal a recycled PID

    def alive(self):
        return self.popen.poll() is None

    def record_tree(self):
        self.tree = {p: proc_starttime(p) for p in process_tree(self.pid)}
        return list(self.tree)

    def pids(self):
        return [p for p, st in self.tree.items() if proc_starttime(p) == st] or [self.pid]

    def stop(self, timeout=5.0):
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warn(f"{self.name} (pid {self.pid}) ignored SIGTERM for {timeout}s; killing it")
                self.popen.kill()
                self.popen.wait(5)
        # Children that outlived their parent (an nginx worker after its master was killed).
        for pid, st in self.tree.items():
            if pid != self.pid and st is not None and proc_starttime(pid) == st:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self._log.close()


def wait_listening(proc, ports, timeout=20.0):
    deadline = time.monotonic() + timeout
    for port in ports:
        while True:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited at start (code {proc.popen.returncode}); "
                                   f"see {proc.log_path}")
            try:
                with socket.create_connection((HOST, port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{proc.name} is not listening on {port} after {timeout}s; "
                                       f"see {proc.log_path}")
                time.sleep(0.05)


def http_get(port, path, timeout=5.0, tls=False, headers=()):
    """One HTTP/1.1 GET over a fresh connection (tls: over TLS with ALPN http/1.1, the
    certificate not verified), with `headers` (name, value) added; returns (status, body
    length)."""
    with socket.create_connection((HOST, port), timeout=timeout) as raw:
        s = raw
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["http/1.1"])
            s = ctx.wrap_socket(raw, server_hostname="localhost")
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n{extra}Connection: close\r\n\r\n"
                  .encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.") else 0
    return status, len(body)


def h2_get(tools, url, headers=()):
    """One h2 GET with h2load (prior knowledge for http://, ALPN h2 for https://), with
    `headers` added; returns (200 or the failure, body bytes). h2load prints the application
    data it received."""
    hs = [a for k, v in headers for a in ("-H", f"{k}: {v}")]
    try:
        p = subprocess.run([tools.h2load, "-n1", "-c1", "-t1", "-N5s", *hs, url],
                           capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "no answer in 20 s", 0
    ok = re.search(r"requests: 1 total, 1 started, 1 done, 1 succeeded", p.stdout)
    codes = re.search(r"status codes: 1 2xx", p.stdout)
    data = re.search(r"traffic: .*\((\d+)\) data", p.stdout)
    if not (ok and codes and data):
        lines = [ln for ln in (p.stdout + p.stderr).splitlines() if ln.strip()]
        return "h2load: " + " / ".join(lines[-3:])[-300:], 0
    return 200, int(data.group(1))


class Origin:
    """nginx serving the fixed bodies, on the load CPUs."""

    def __init__(self, tools, work, cpus, bodies_dir, cert, key):
        self.ports = {"h1": free_port(), "h2c": free_port(), "tls": free_port()}
        cfg = render("origin-nginx.conf", work / "origin-nginx.conf", work=work,
                     bodies=bodies_dir, cert=cert, key=key, nofile=nofile_limit(),
                     port_h1=self.ports["h1"], port_h2c=self.ports["h2c"],
                     port_tls=self.ports["tls"])
        self.proc = Process("origin nginx", [tools.nginx, "-c", cfg, "-p", str(work),
                                              "-e", str(work / "origin-error.log")],
                            cpus, str(work / "origin.log"))
        wait_listening(self.proc, self.ports.values())
        self.proc.record_tree()

    def stop(self):
        self.proc.stop()


class Target:
    """Something the load generator sends requests to: a proxy, or the origin itself."""

    name = ""
    label = ""
    caps = ("h1",)
    is_proxy = True
    # A gateway target (ringside-gateway, envoy-gateway, ...) admits only requests with the
    # run's credentials (gateway.py): a run with one sends them to every target.
    gateway = False

    def __init__(self):
        self.ports = {}
        self.proc = None
        self.skipped = {}  # protocol -> why this build cannot serve it (reported beside n/a)

    def configure(self, tools):
        """Called once the tools are found: drops the protocols this build cannot serve."""

    def supports(self, proto):
        return proto in self.caps and proto not in self.skipped

    def why_not(self, sc):
        """None when this target runs scenario `sc`, else why not (reported beside n/a)."""
        if not self.supports(sc.port):
            return self.skipped.get(sc.port, "")
        if self.gateway and sc.tool == "fixedrate":
            return "the fixed-rate client sends no credentials"
        return None

    def pids(self):
        return self.proc.pids() if self.proc else []

    def start(self, tools, work, cpus, origin, cert, key, pem, listeners=None, max_conns=2000,
              extra=None):
        """Starts the proxy with a listener for each protocol in `listeners` it serves (all
        of them by default) and waits until every listener accepts connections. max_conns:
        the client connections it must accept (nginx preallocates that many slots, so it
        is the run's need, not a large round number). extra: more template values (the
        gateway credentials' values)."""
        self.ports = {cap: free_port() for cap in self.caps
                      if self.supports(cap) and (listeners is None or cap in listeners)}
        values = dict(listeners=tuple(self.ports), work=work, origin=f"{HOST}:{origin.ports['h1']}", origin_ip=HOST,
                      origin_port=origin.ports["h1"], cert=cert, key=key, pem=pem, pool=POOL,
                      max_conns=max_conns, nofile=nofile_limit(),
                      haproxy_maxconn=min(max_conns, (nofile_limit() - 100) // 2),
                      port_h1=self.ports.get("h1", 0), port_h2c=self.ports.get("h2c", 0),
                      port_tls=self.ports.get("tls", 0), name=self.name, **(extra or {}))
        argv = self.command(tools, work, values)
        self.proc = Process(self.name, argv, cpus, str(work / f"{self.name}.log"))
        wait_listening(self.proc, self.ports.values())
        time.sleep(0.3)  # let worker processes and threads finish starting
        self.proc.record_tree()

    def check(self, path, size, tools=None, headers=()):
        """One request (with `headers`) on every listener it has, in the protocol the
        scenarios use there: HTTP/1.1 on h1; h2 with prior knowledge on h2c; on TLS, HTTP/1.1
        (ALPN http/1.1) and h2 (ALPN h2). A listener that answers wrongly fails the run
        instead of producing a table full of errors."""
        hs = headers
        checks = [("h1", "HTTP/1.1", lambda p: http_get(p, path, headers=hs))]
        if tools is not None:
            checks += [("h2c", "h2c", lambda p: h2_get(tools, f"http://{HOST}:{p}{path}", hs)),
                       ("tls", "HTTP/1.1 over TLS",
                        lambda p: http_get(p, path, tls=True, headers=hs)),
                       ("tls", "h2 over TLS",
                        lambda p: h2_get(tools, f"https://{HOST}:{p}{path}", hs))]
        for port, what, get in checks:
            if port not in self.ports:
                continue
            status, n = get(self.ports[port])
            if status != 200 or n != size:
                raise RuntimeError(f"{self.name}: {what} GET {path} answered {status} with {n} "
                                   f"bytes, expected 200 with {size}")

    def stop(self):
        if self.proc:
            self.proc.stop()
            self.proc = None

    def command(self, tools, work, values):
        raise NotImplementedError

    def render(self, template, work, values, stem=None):
        """The config for this start, named after its listeners: nginx-h1.conf, ..."""
        tstem, ext = template.rsplit(".", 1)
        dest = work / f"{stem or tstem}-{'-'.join(values['listeners'])}.{ext}"
        return render(template, dest, **values)


class Direct(Target):
    name = "direct"
    label = "direct (no proxy)"
    caps = ("h1", "h2c", "tls")
    is_proxy = False

    def start(self, tools, work, cpus, origin, cert, key, pem, listeners=None, max_conns=0,
              extra=None):
        self.ports = {k: v for k, v in origin.ports.items()
                      if listeners is None or k in listeners}

    def pids(self):
        return []


class Ringside(Target):
    name = "ringside"
    label = "ringside"
    caps = ("h1", "h2c", "tls")  # h2c by the connection preface; TLS with ALPN h2, http/1.1

    def command(self, tools, work, values):
        cfg = self.render("ringside.toml", work, values)
        return [tools.ringside, "run", "--config", cfg, "--log-level", "warn"]


class RingsideBase(Ringside):
    """The baseline build (perf/run --baseline BIN or --baseline-rev REV): the same template,
    placement and treatment as `ringside`, another binary; the report sets the two side by
    side. Only perf/run adds it, when a baseline is given."""

    name = "ringside-base"
    label = "ringside-base"

    def command(self, tools, work, values):
        cfg = self.render("ringside.toml", work, values, stem=self.name)
        return [tools.ringside_base, "run", "--config", cfg, "--log-level", "warn"]


class RingsideObs(Ringside):
    """ringside with a JSON access log and every trace sampled (no collector): its distance to
    `ringside` is the cost of that observability. Not in the default set of proxies."""

    name = "ringside-obs"
    label = "ringside (access log + tracing)"

    def command(self, tools, work, values):
        cfg = self.render("ringside-obs.toml", work, values)
        return [tools.ringside, "run", "--config", cfg, "--log-level", "warn"]


class RingsideResilience(Ringside):
    """ringside with a retry policy, a token bucket, a circuit breaker and outlier detection
    configured but never triggered: its distance to `ringside` is what those policies cost a
    request that nothing goes wrong with. Not in the default set of proxies."""

    name = "ringside-resilience"
    label = "ringside (retry, rate limit, breaker, outlier detection)"

    def command(self, tools, work, values):
        cfg = self.render("ringside-resilience.toml", work, values)
        return [tools.ringside, "run", "--config", cfg, "--log-level", "warn"]


class RingsideGateway(Ringside):
    """ringside with a gateway route (issue 12): `role = "gateway"`, a JWT provider and an API
    key on the route (`authn`, either admits), a consumer, a local token bucket far above the
    load and CORS. The run's requests carry a valid token, the key and an allowed Origin; the
    token admits (a cached check: SHA-256 and one lookup after the first request) and names
    the consumer. Its distance to `ringside` (a plain route) is the gateway's cost per
    request. Not in the default set of proxies."""

    name = "ringside-gateway"
    label = "ringside (gateway: JWT + API key route, rate limit, CORS)"
    gateway = True
    authn = '{ jwt = [ "perf" ], api_key = { header = "x-api-key" } }'
    authn_what = ("a JWT (provider `perf`) or an API key (`x-api-key`), either admits: the"
                  "\n#   requests carry both and the token admits, the key is not looked up")

    def command(self, tools, work, values):
        values = dict(values, authn=self.authn, authn_what=self.authn_what)
        cfg = self.render("ringside-gateway.toml", work, values, stem=self.name)
        return [tools.ringside, "run", "--config", cfg, "--log-level", "warn"]


class RingsideGatewayKey(RingsideGateway):
    """ringside-gateway with only the API key on the route: the key (from the same requests)
    is hashed, looked up and removed; the token goes to the origin unread. Not in the default
    set of proxies."""

    name = "ringside-gateway-key"
    label = "ringside (gateway: API-key route, rate limit, CORS)"
    authn = '{ api_key = { header = "x-api-key" } }'
    authn_what = ("an API key (`x-api-key`): hashed, looked up, removed; the token the requests"
                  "\n#   also carry goes to the origin unread")


class Nginx(Target):
    name = "nginx"
    label = "nginx"
    caps = ("h1", "h2c", "tls")

    def configure(self, tools):
        # h2c and h2 need the http_v2 module (nginx-light has it). `listen ... http2` is
        # the form every version with it accepts (1.25.1+ prefers `http2 on;` and warns).
        try:
            v = subprocess.run([tools.nginx, "-V"], capture_output=True, text=True,
                               timeout=20).stderr
        except (OSError, subprocess.TimeoutExpired):
            v = ""
        if "http_v2_module" not in v:
            why = "this nginx is built without the http_v2 module"
            self.skipped = {"h2c": why, "tls": why}

    def command(self, tools, work, values):
        cfg = self.render("nginx.conf", work, values)
        return [tools.nginx, "-c", cfg, "-p", str(work), "-e", str(work / "nginx-error.log")]


class Haproxy(Target):
    name = "haproxy"
    label = "HAProxy"
    caps = ("h1", "h2c", "tls")

    def command(self, tools, work, values):
        cfg = self.render("haproxy.cfg", work, values)
        return [tools.haproxy, "-f", cfg, "-db"]


class Envoy(Target):
    name = "envoy"
    label = "Envoy"
    caps = ("h1", "h2c", "tls")

    def command(self, tools, work, values):
        cfg = self.render("envoy.yaml", work, values)
        return [tools.envoy, "-c", cfg, "--concurrency", "1", "--disable-hot-restart",
                "-l", "warn", "--log-path", str(work / "envoy-error.log")]


class EnvoyGateway(Envoy):
    """Envoy doing the gateway route's work (templates/envoy-gateway.yaml): cors, jwt_authn
    (local JWKS, verified tokens cached), an RBAC header match for the API key,
    local_ratelimit. Not in the default set of proxies."""

    name = "envoy-gateway"
    label = "Envoy (gateway: jwt_authn, RBAC API key, local_ratelimit, cors)"
    gateway = True

    def command(self, tools, work, values):
        cfg = self.render("envoy-gateway.yaml", work, values)
        return [tools.envoy, "-c", cfg, "--concurrency", "1", "--disable-hot-restart",
                "-l", "warn", "--log-path", str(work / "envoy-gateway-error.log")]


PROXIES = {"ringside": Ringside, "nginx": Nginx, "haproxy": Haproxy, "envoy": Envoy,
           "ringside-obs": RingsideObs, "ringside-resilience": RingsideResilience,
           "ringside-gateway": RingsideGateway, "ringside-gateway-key": RingsideGatewayKey,
           "envoy-gateway": EnvoyGateway}


def nofile_limit():
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
