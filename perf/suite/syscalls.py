"""perf/syscalls: system calls, and io_uring submissions and completions, per request of each
proxy under the same fixed amount of work.

For each scenario and proxy: a fresh proxy (perf/run's templates and placement, only the
listener the scenario needs), a warm-up of --warmup-requests (upstream pools filled), then
`perf stat` attached to the proxy's processes (all their threads) counts, over exactly
--requests requests sent by h2load (HTTP/1.1 with --h1 for the HTTP/1.1 scenarios, the
scenario's connections and streams):

    raw_syscalls:sys_enter            every system call
    syscalls:sys_enter_<name>         each system call by name
    io_uring:io_uring_submit_req      each SQE the kernel takes from the ring (older kernels
                                      call it io_uring_submit_sqe)
    io_uring:io_uring_complete        each CQE posted
    context-switches

perf stat starts with its events disabled and is switched on and off through its --control
pipes right around the h2load run, so neither the warm-up nor the idle time counts. Counting
tracepoints costs the proxy a little CPU; the counts themselves are exact.
"""

import argparse
import datetime
import json
import statistics
import sys
from pathlib import Path

from . import log, measure, profiling, tools
from .bench import Bench, scenario

DEFAULT_SCENARIOS = "h1-c50-128B,h2c-c50x10-128B"
DEFAULT_PROXIES = "ringside,nginx,haproxy"

# Columns of the main table: a family of system calls each.
FAMILIES = [
    ("io_uring_enter", ("io_uring_enter",)),
    ("epoll_wait", ("epoll_wait", "epoll_pwait", "epoll_pwait2")),
    ("epoll_ctl", ("epoll_ctl",)),
    ("read/recv", ("read", "readv", "recvfrom", "recvmsg", "recvmmsg", "pread64", "preadv",
                   "preadv2")),
    ("write/send", ("write", "writev", "sendto", "sendmsg", "sendmmsg", "sendfile64",
                    "pwrite64", "pwritev", "pwritev2", "splice")),
    ("accept", ("accept", "accept4")),
]


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="perf/syscalls",
        description="System calls and io_uring SQEs/CQEs per request of each proxy, counted "
        "by perf stat over a fixed number of requests.")
    p.add_argument("--requests", type=int, default=200000,
                   help="requests counted per proxy and scenario (200000)")
    p.add_argument("--warmup-requests", type=int, default=20000,
                   help="requests sent before counting (20000)")
    p.add_argument("--scenarios", default=DEFAULT_SCENARIOS,
                   help=f"comma-separated scenario ids (perf/run --list; default "
                   f"{DEFAULT_SCENARIOS}); h2load sends each one's connections and streams")
    p.add_argument("--proxies", default=DEFAULT_PROXIES,
                   help=f"comma-separated (default {DEFAULT_PROXIES}; envoy works too)")
    p.add_argument("--repeats", type=int, default=1,
                   help="fresh processes per proxy and scenario; the medians are reported (1)")
    p.add_argument("--ringside", help="count this ringside binary instead of building one")
    p.add_argument("--proxy-cpus", help="CPUs for the proxy (default: the first allowed CPU)")
    p.add_argument("--load-cpus", help="CPUs for the load generator and origin (default: the "
                   "rest)")
    p.add_argument("--top", type=int, default=8,
                   help="system calls listed one by one per proxy (8)")
    p.add_argument("--out", help="output directory (default perf/results/syscalls-<time>)")
    return p.parse_args(argv)


def parse_stat(text):
    """perf stat -x, output: {event: count} (None for <not counted>/<not supported>)."""
    out = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        f = line.split(",")
        if len(f) < 3:
            continue
        try:
            out[f[2]] = int(float(f[0]))
        except ValueError:
            out[f[2]] = None
    return out


def count(b, perf, name, sc, args, events, uring):
    """One fresh proxy: warm-up, then the counted requests; returns the counts."""
    target = b.start(name, sc.port)
    try:
        if args.warmup_requests:
            b.load_n(target, sc, args.warmup_requests)
        pids = target.pids()
        stat_file = b.work / f"stat-{name}-{sc.id}.csv"
        st = profiling.Attached(perf, "stat", ["-x,", "-o", str(stat_file), *events], pids,
                                b.load_cpus, str(b.work / f"stat-{name}-{sc.id}.log"))
        try:
            st.enable()
            r = b.load_n(target, sc, args.requests)
            st.disable()
        finally:
            st.stop()
        alive = target.proc.alive()
    finally:
        b.stop(target)
    if not alive:
        raise RuntimeError(f"{name} died during the run")
    c = parse_stat(stat_file.read_text())
    n = r["requests"]
    syscalls = {}
    for ev, v in c.items():
        if ev.startswith("syscalls:sys_enter_") and v:
            syscalls[ev[len("syscalls:sys_enter_"):]] = v
    url = sc.url(target.ports[sc.port])
    return {
        "proxy": name, "scenario": sc.id, "requests": n, "errors": r["errors"],
        "rps": r["rps"], "pids": pids,
        "syscalls_total": c.get("raw_syscalls:sys_enter"),
        "syscalls": syscalls,
        "sqes": c.get(uring[0]) if uring[0] else None,
        "cqes": c.get(uring[1]) if uring[1] else None,
        "context_switches": c.get("context-switches"),
        "perf_stat": st.command().replace(str(stat_file), f"stat-{name}-{sc.id}.csv"),
        "h2load": " ".join(measure.h2load_argv("h2load", url, sc.conns, sc.streams, None,
                                               requests=args.requests, h1=sc.tool == "wrk")),
    }


def _median(rs, f):
    vals = [f(r) for r in rs]
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def summarize(runs):
    """Per (scenario, proxy): per-request medians over the repeats."""
    groups = {}
    for r in runs:
        groups.setdefault((r["scenario"], r["proxy"]), []).append(r)
    rows = []
    for (sid, proxy), rs in groups.items():
        names = sorted({k for r in rs for k in r["syscalls"]})
        per = {k: _median(rs, lambda r, k=k: r["syscalls"].get(k, 0) / r["requests"])
               for k in names}
        fam = {}
        for label, members in FAMILIES:
            fam[label] = sum(per.get(m, 0) for m in members)
        total = _median(rs, lambda r: r["syscalls_total"] / r["requests"]
                        if r["syscalls_total"] is not None else None)
        fam["other"] = total - sum(fam.values()) if total is not None else None
        rows.append({
            "scenario": sid, "proxy": proxy, "repeats": len(rs),
            "requests": rs[0]["requests"], "errors": sum(r["errors"] for r in rs),
            "syscalls_per_req": total, "families": fam, "per_syscall": per,
            "sqes_per_req": _median(rs, lambda r: r["sqes"] / r["requests"]
                                    if r["sqes"] is not None else None),
            "cqes_per_req": _median(rs, lambda r: r["cqes"] / r["requests"]
                                    if r["cqes"] is not None else None),
            "cs_per_req": _median(rs, lambda r: r["context_switches"] / r["requests"]
                                  if r["context_switches"] is not None else None),
            "rps_while_counted": _median(rs, lambda r: r["rps"]),
        })
    return rows


def _f(x, digits=2):
    return "—" if x is None else f"{x:.{digits}f}"


def markdown(meta, rows, failures, top_n):
    lines = [f"# System calls per request, {meta['date']}", "",
             f"- command: `{meta['command']}`",
             f"- versions: " + "; ".join(f"{k} {v}" for k, v in meta["versions"].items()),
             f"- {meta['placement_line']}",
             f"- per proxy and scenario: a fresh process, {meta['warmup_requests']:,} requests "
             f"of warm-up, then {meta['requests']:,} requests counted; "
             f"{meta['repeats']} repeat(s), medians",
             f"- io_uring tracepoints: SQEs = `{meta['uring_events'][0]}`, CQEs = "
             f"`{meta['uring_events'][1]}`", ""]
    if failures:
        lines += ["**Failures:**", ""] + [f"- {f['proxy']} {f['scenario']}: {f['what']}"
                                          for f in failures] + [""]
    fam = [label for label, _ in FAMILIES] + ["other"]
    lines += ["## Per request", "",
              "Counts over the measured requests divided by the requests; *other* is every "
              "system call not in a column. req/s: h2load's rate while counted (the tracepoints "
              "slow the proxy down a little).", "",
              "| scenario | proxy | requests | syscalls/req | " + " | ".join(fam)
              + " | SQEs/req | CQEs/req | ctx switches/req | req/s |",
              "|---|---|---|---|" + "---|" * len(fam) + "---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['scenario']} | {r['proxy']} | {r['requests']:,} | "
                     f"**{_f(r['syscalls_per_req'])}** | "
                     + " | ".join(_f(r["families"][k]) for k in fam)
                     + f" | {_f(r['sqes_per_req'])} | {_f(r['cqes_per_req'])} | "
                     f"{_f(r['cs_per_req'], 3)} | {r['rps_while_counted']:,.0f} |")
    lines += ["", f"## The {top_n} most frequent system calls", "",
              "| scenario | proxy | system calls per request |", "|---|---|---|"]
    for r in rows:
        top = sorted(r["per_syscall"].items(), key=lambda kv: -kv[1])[:top_n]
        lines.append(f"| {r['scenario']} | {r['proxy']} | "
                     + ", ".join(f"{k} {v:.3f}" for k, v in top if v >= 0.0005) + " |")
    lines += ["", "## Commands", "",
              "Each proxy's processes were counted with (PIDs and ports of that run):", ""]
    for c in meta["commands"]:
        lines += [f"- {c['proxy']} {c['scenario']}:", f"  `{c['perf_stat']}`",
                  f"  while `{c['h2load']}`"]
    return "\n".join(lines) + "\n"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    chosen = [scenario(s) for s in args.scenarios.split(",") if s]
    names = [n for n in args.proxies.split(",") if n]
    perf = profiling.perf_binary()
    submit = [t for t in ("io_uring:io_uring_submit_req", "io_uring:io_uring_submit_sqe")
              if t in profiling.tracepoints(perf, "io_uring:*")]
    complete = "io_uring:io_uring_complete"
    uring = (submit[0] if submit else None,
             complete if complete in profiling.tracepoints(perf, "io_uring:*") else None)
    if not all(uring):
        log.warn("this kernel lacks the io_uring tracepoints "
                 f"(perf list 'io_uring:*'): SQEs/CQEs are not counted")
    events = ["-e", "raw_syscalls:sys_enter", "-e", "syscalls:sys_enter_*",
              "-e", "context-switches"]
    for ev in uring:
        if ev:
            events += ["-e", ev]
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else tools.PERF_DIR / "results" / f"syscalls-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    runs, failures = [], []
    with Bench(ringside=args.ringside, proxy_cpus=args.proxy_cpus, load_cpus=args.load_cpus,
               need_envoy="envoy" in names) as b:
        meta = {
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": " ".join(["perf/syscalls", *argv]),
            "requests": args.requests, "warmup_requests": args.warmup_requests,
            "repeats": args.repeats, "uring_events": list(uring),
            "versions": {"ringside": tools._version(b.tl.ringside, "--version")
                         + ("" if args.ringside else f" (git {tools.git_describe()})"),
                         "nginx": tools._version(b.tl.nginx, "-v", stderr=True),
                         "haproxy": tools._version(b.tl.haproxy, "-v"),
                         "h2load": tools._version(b.tl.h2load, "--version"),
                         "perf": tools._version(perf, "--version")},
            "placement_line": f"placement: proxy on cpu {sorted(b.proxy_cpus)}; origin (nginx, "
                              f"1 worker) and h2load on cpu {sorted(b.load_cpus)}",
            "commands": [],
        }
        for rep in range(args.repeats):
            for sc in chosen:
                for name in names:
                    where = f"{rep + 1}/{args.repeats} {name} {sc.id}"
                    try:
                        r = count(b, perf, name, sc, args, events, uring)
                    except (RuntimeError, OSError, measure.LoadError) as e:
                        failures.append({"proxy": name, "scenario": sc.id, "what": str(e)})
                        log.warn(f"{where}: {e}")
                        continue
                    runs.append(r)
                    if rep == 0:
                        meta["commands"].append({k: r[k] for k in
                                                 ("proxy", "scenario", "perf_stat", "h2load")})
                    per = r["syscalls_total"] / r["requests"] if r["syscalls_total"] else 0
                    log.info(f"{where}: {per:.2f} syscalls/req"
                             + (f", {r['sqes'] / r['requests']:.2f} SQEs/req, "
                                f"{r['cqes'] / r['requests']:.2f} CQEs/req"
                                if r["sqes"] else "") + (f", {r['errors']} ERRORS"
                                                         if r["errors"] else ""))
    rows = summarize(runs)
    order = {(s.id, n): i for i, (s, n) in enumerate((s, n) for s in chosen for n in names)}
    rows.sort(key=lambda r: order.get((r["scenario"], r["proxy"]), 0))
    (out / "syscalls.json").write_text(json.dumps({"meta": meta, "summary": rows, "runs": runs,
                                                   "failures": failures}, indent=1))
    md = markdown(meta, rows, failures, args.top)
    (out / "syscalls.md").write_text(md)
    print(md)
    log.info(f"results in {out}/: syscalls.md, syscalls.json")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
