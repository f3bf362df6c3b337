"""One proxy at a time under one scenario's load, outside perf/run's loop of rounds: what
perf/flamegraph and perf/syscalls share with perf/run. The same tools, the same placement
(proxy alone on the first CPU, origin and load generator on the others), the same origin,
the same configuration templates and the same load generators; nothing is copied from
perf/run, only called.

    with Bench(ringside=None) as b:          # finds or installs the tools, starts the origin
        target = b.start("ringside", "h1")   # a fresh proxy with only the listener it needs
        b.load(target, scenario, seconds=10) # the scenario's own load generator
        b.stop(target)

Every process is stopped by its PID when the block ends, also on Ctrl-C or SIGTERM.
"""

import argparse
import os
import shutil
import signal
import tempfile
from pathlib import Path

from . import gateway, log, measure, tools
from .main import make_bodies, make_cert, placement, raise_fd_limit, run_load
from .proxies import PROXIES, Origin
from .scenarios import BODIES, FULL, full_list


def scenarios():
    """perf/run's scenarios, as `perf/run --list` prints them (full mode's rates)."""
    return full_list(FULL.rate_c50, FULL.rate_c1)


def scenario(sid):
    for s in scenarios():
        if s.id == sid:
            return s
    raise SystemExit(f"unknown scenario {sid!r}; perf/run --list prints them: "
                     + ", ".join(s.id for s in scenarios()))


def _interrupt(signum, frame):
    raise KeyboardInterrupt


class Bench:
    def __init__(self, ringside=None, proxy_cpus=None, load_cpus=None, need_envoy=False):
        args = argparse.Namespace(ringside=ringside, envoy=None, proxy_cpus=proxy_cpus,
                                  load_cpus=load_cpus)
        self.proxy_cpus, self.load_cpus = placement(args)
        self.args = args
        self.need_envoy = need_envoy
        self.targets = []
        self.origin = None
        self.work = None
        # Made when a gateway target is first started; from then on every load carries them.
        self.extra, self.headers = {}, ()

    def __enter__(self):
        signal.signal(signal.SIGTERM, _interrupt)
        os.sched_setaffinity(0, self.load_cpus)  # stay off the proxy's CPU, like perf/run
        raise_fd_limit(0)
        self.tl = tools.ensure(self.args, need_envoy=self.need_envoy)
        self.work = Path(tempfile.mkdtemp(prefix="ringside-bench-"))
        self.work.chmod(0o755)  # nginx workers run unprivileged and read bodies and certs
        try:
            self.cert, self.key, self.pem = make_cert(self.tl, self.work)
            self.origin = Origin(self.tl, self.work, self.load_cpus, make_bodies(self.work),
                                 self.cert, self.key)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        log.info(f"placement: proxy on cpu {sorted(self.proxy_cpus)}, origin and load "
                 f"generator on cpu {sorted(self.load_cpus)}")
        return self

    def __exit__(self, *exc):
        for t in self.targets:
            t.stop()
        self.targets = []
        if self.origin:
            self.origin.stop()
            self.origin = None
        if self.work:
            shutil.rmtree(self.work, ignore_errors=True)
            self.work = None
        return False

    def start(self, name, listener):
        """A fresh `name` proxy (a key of proxies.PROXIES) with the HTTP/1.1 listener every
        template has and `listener` ("h1", "h2c" or "tls"), checked with one request in the
        protocol the scenarios use on each."""
        target = PROXIES[name]()
        target.configure(self.tl)
        if not target.supports(listener):
            raise RuntimeError(f"{name} does not serve {listener} here: "
                               f"{target.skipped.get(listener, 'not one of its protocols')}")
        if target.gateway and not self.headers:
            creds = gateway.Credentials(self.tl.openssl, self.work)
            self.extra, self.headers = creds.values(), tuple(creds.headers())
        self.targets.append(target)
        try:
            # Room for the largest scenario's connections (500) on both sides, as perf/run.
            target.start(self.tl, self.work, self.proxy_cpus, self.origin, self.cert,
                         self.key, self.pem, tuple(dict.fromkeys(("h1", listener))),
                         max_conns=1500, extra=self.extra)
            target.check("/128B", BODIES["128B"], self.tl, self.headers)
        except RuntimeError as e:
            tail = ""
            if target.proc:
                try:
                    tail = Path(target.proc.log_path).read_text(errors="replace")[-600:]
                except OSError:
                    pass
            self.stop(target)
            raise RuntimeError(f"{e}{': ' + tail.strip() if tail.strip() else ''}") from e
        return target

    def stop(self, target):
        target.stop()
        if target in self.targets:
            self.targets.remove(target)

    def load(self, target, sc, seconds, warmup=0.0):
        """The scenario's load, as perf/run sends it, for `seconds`; returns the load
        generator's figures (requests, rps, latency percentiles, errors)."""
        return run_load(self.tl, self.load_cpus, target, sc, seconds, warmup, self.work,
                        self.headers)()

    def load_n(self, target, sc, requests):
        """Exactly `requests` requests with h2load (over HTTP/1.1 with --h1 where the scenario
        is HTTP/1.1): the same connections and streams as the scenario, a fixed amount of
        work."""
        if sc.tool == "fixedrate":
            raise SystemExit(f"{sc.id}: a fixed-rate scenario has no fixed number of requests; "
                             "pick a closed-loop one")
        url = sc.url(target.ports[sc.port])
        return measure.run_h2load(self.tl, self.load_cpus, url, sc.conns, sc.streams, None,
                                  self.work / "h2load.log", requests=requests,
                                  h1=sc.tool == "wrk", headers=self.headers)
