"""perf/flamegraph: where ringside spends its CPU under one of perf/run's scenarios.

For each scenario: a fresh ringside (perf/run's template and placement, only the listener the
scenario needs), one second of the scenario's load as warm-up, then `perf record` attached to
the ringside process alone while the scenario's load runs for --seconds; `perf script` and
inferno turn the samples into folded stacks and an SVG flamegraph. --top prints the functions
with the most self time (the leaf of each sampled stack) from folded stacks.
"""

import argparse
import collections
import datetime
import gzip
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from . import log, profiling, tools
from .bench import Bench, scenario, scenarios

DEFAULT = "h1-c50-128B,h1-c50-64KiB,h2c-c50x10-128B,tls-h1-c50-128B"


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="perf/flamegraph",
        description="CPU flamegraphs of ringside under perf/run's scenarios (perf record + "
        "inferno), or the top self-time functions of folded stacks (--top).")
    p.add_argument("scenarios", nargs="*",
                   help=f"scenario ids, as perf/run --list prints them (default: {DEFAULT})")
    p.add_argument("--seconds", type=int, default=10, help="seconds of load sampled (10)")
    p.add_argument("--freq", type=int, default=999, help="samples per second (-F, 999)")
    p.add_argument("--call-graph", default="fp", choices=("fp", "dwarf", "lbr"),
                   help="how perf unwinds stacks: fp (default: frame pointers; on the release "
                   "build about 85%% of samples unwind to the thread's start), dwarf (copies "
                   "16 KiB of stack per sample: more inlined frames, but more broken stacks and "
                   "perf itself takes CPU from the load generator), lbr (Intel, bare metal)")
    p.add_argument("--event", help="sampling event (default: cycles where the CPU exposes it, "
                   "else cpu-clock)")
    p.add_argument("--ringside", help="profile this ringside binary instead of building one")
    p.add_argument("--proxy-cpus", help="CPUs for ringside (default: the first allowed CPU)")
    p.add_argument("--load-cpus", help="CPUs for the load generator and origin (default: the "
                   "rest)")
    p.add_argument("--out", help="output directory (default perf/results/flamegraph-<time>)")
    p.add_argument("--keep-data", action="store_true", help="keep perf.data of each scenario")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument("--top", nargs="+", metavar="FOLDED",
                   help="measure nothing: print the top self-time functions of these folded "
                   "stack files (.folded or .folded.gz)")
    p.add_argument("-n", type=int, default=10, help="--top: how many functions (10)")
    p.add_argument("--share", action="append", metavar="REGEX", default=[],
                   help="--top: also the share of samples whose stack (frames joined by ';') "
                   "matches REGEX, e.g. --share io_uring_enter --share '__libc_recv' "
                   "(repeatable)")
    return p.parse_args(argv)


# ---------------------------------------------------------------- folded stacks

def read_folded(path):
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        for line in f:
            stack, _, n = line.rstrip("\n").rpartition(" ")
            if stack and n.isdigit():
                yield stack.split(";"), int(n)


_GENERIC = re.compile(r"::h[0-9a-f]{16}$")


def short(frame):
    """A frame without the Rust symbol hash."""
    return _GENERIC.sub("", frame)


def top(path, n=10):
    """[(function, self samples, share of all samples)] for the n functions that are most
    often the leaf of a sampled stack, plus totals: samples, and the share whose leaf is in
    the kernel (inferno marks kernel frames with a _[k] suffix)."""
    self_ = collections.Counter()
    total = kernel = 0
    for frames, count in read_folded(path):
        leaf = short(frames[-1])
        self_[leaf] += count
        total += count
        if leaf.endswith("_[k]") and not leaf.startswith("__vdso"):
            kernel += count
    rows = [(f, c, c / total) for f, c in self_.most_common(n)] if total else []
    return rows, {"samples": total, "kernel_share": kernel / total if total else 0.0}


def shares(path, patterns):
    """{regex: share of the samples whose whole stack matches it} (inclusive time)."""
    compiled = [(p, re.compile(p)) for p in patterns]
    hits = dict.fromkeys(patterns, 0)
    total = 0
    for frames, count in read_folded(path):
        stack = ";".join(frames)
        total += count
        for p, rx in compiled:
            if rx.search(stack):
                hits[p] += count
    return {p: (h / total if total else 0.0) for p, h in hits.items()}


def top_markdown(path, n=10, title=None, share=()):
    rows, tot = top(path, n)
    lines = [f"### {title or Path(path).name}", "",
             f"{tot['samples']:,} samples; {tot['kernel_share']:.0%} with the kernel on top "
             "(`_[k]`; the vDSO is not counted as kernel)", "",
             "| # | self | function |", "|---|---|---|"]
    for i, (f, _, sh) in enumerate(rows, 1):
        lines.append(f"| {i} | {sh:.1%} | `{f}` |")
    if share:
        lines += ["", "| stacks matching | share of samples |", "|---|---|"]
        for p, v in shares(path, share).items():
            cell = p.replace("|", "\\|")  # a | would end the markdown cell
            lines.append(f"| `{cell}` | {v:.1%} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- profiling one scenario

def profile(b, perf, event, sc, args, out, collapse, flame):
    target = b.start("ringside", sc.port)
    try:
        pids = target.pids()
        b.load(target, sc, 1)  # warm-up: pools filled, buffers allocated
        data = b.work / f"{sc.id}.perf.data"
        cg = {"dwarf": "dwarf,16384", "fp": "fp", "lbr": "lbr"}[args.call_graph]
        rec = profiling.Attached(perf, "record",
                                 ["-F", str(args.freq), "-e", event, "--call-graph", cg,
                                  "-o", str(data)],
                                 pids, b.load_cpus, str(b.work / f"{sc.id}.perf.log"))
        try:
            rec.enable()
            r = b.load(target, sc, args.seconds)
            rec.disable()
        finally:
            rc = rec.stop()
        if not data.exists():
            raise RuntimeError(f"perf record wrote nothing (exit {rc}): "
                               + Path(rec.log_path).read_text()[-500:])
    finally:
        b.stop(target)
    folded = out / f"{sc.id}.folded"
    log.info(f"{sc.id}: {r['rps']:,.0f} req/s while sampled; perf script | inferno")
    # No `period` field: inferno then counts samples (with it, cpu-clock samples would weigh
    # their nanoseconds).
    script = subprocess.Popen([perf, "script", "-i", str(data), "-F",
                               "comm,pid,tid,time,event,ip,sym,dso"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    with open(folded, "wb") as f:
        subprocess.run([collapse, "--all"], stdin=script.stdout, stdout=f, check=True,
                       timeout=1800)
    script.stdout.close()
    script.wait(60)
    samples = sum(c for _, c in read_folded(folded))
    title = (f"ringside {sc.id}: {args.seconds:g} s, {samples:,} samples "
             f"({event} at {args.freq} Hz, call graph {args.call_graph})")
    with open(out / f"{sc.id}.svg", "wb") as f:
        subprocess.run([flame, "--title", title, "--width", "1400", str(folded)], stdout=f,
                       check=True, timeout=600)
    if args.keep_data:
        data.rename(out / data.name)
    else:
        data.unlink()
    return {"scenario": sc.id, "title": sc.title, "samples": samples,
            "rps_while_sampled": r["rps"], "requests": r["requests"], "errors": r["errors"],
            "perf_record": rec.command()}


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.list:
        for s in scenarios():
            print(f"{s.id:24s} {s.title}")
        return 0
    if args.top:
        for f in args.top:
            print(top_markdown(f, args.n, share=args.share))
        return 0
    chosen = [scenario(s) for sc in (args.scenarios or [DEFAULT]) for s in sc.split(",") if s]
    perf = profiling.perf_binary()
    event = args.event or profiling.sampling_event(perf)
    collapse, flame = tools.inferno()
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else tools.PERF_DIR / "results" / f"flamegraph-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    log.info(f"sampling event {event} at {args.freq} Hz, call graph {args.call_graph}; "
             f"output in {out}")
    done, failed = [], []
    with Bench(ringside=args.ringside, proxy_cpus=args.proxy_cpus,
               load_cpus=args.load_cpus) as b:
        meta = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                "command": " ".join(["perf/flamegraph", *(sys.argv[1:] if argv is None
                                                          else argv)]),
                "ringside": tools._version(b.tl.ringside, "--version")
                + ("" if args.ringside else f" (git {tools.git_describe()})"),
                "ringside_binary": b.tl.ringside, "event": event, "freq": args.freq,
                "call_graph": args.call_graph, "seconds": args.seconds,
                "placement": {"proxy_cpus": sorted(b.proxy_cpus),
                              "load_cpus": sorted(b.load_cpus)},
                "perf": tools._version(perf, "--version")}
        for sc in chosen:
            try:
                t0 = time.monotonic()
                done.append(profile(b, perf, event, sc, args, out, collapse, flame))
                log.info(f"{sc.id}: {out / (sc.id + '.svg')} ({time.monotonic() - t0:.0f} s)")
            except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                failed.append({"scenario": sc.id, "what": str(e)})
                log.warn(f"{sc.id}: {e}")
    meta["profiles"], meta["failures"] = done, failed
    (out / "flamegraph.json").write_text(json.dumps(meta, indent=1))
    md = [f"# ringside flamegraphs, {meta['date']}", "",
          f"- command: `{meta['command']}`", f"- ringside: {meta['ringside']}",
          f"- {event} sampled at {args.freq} Hz for {args.seconds:g} s per scenario, call "
          f"graph {args.call_graph}, ringside only (perf record -p)", ""]
    for p in done:
        md += [f"- `{p['perf_record']}`"]
    md.append("")
    for p in done:
        md.append(top_markdown(out / f"{p['scenario']}.folded", args.n,
                               f"{p['scenario']} ({p['rps_while_sampled']:,.0f} req/s while "
                               "sampled)"))
    (out / "top.md").write_text("\n".join(md))
    print("\n".join(md))
    for f in failed:
        log.warn(f"FAILED: {f['scenario']}: {f['what']}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
