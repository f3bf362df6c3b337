"""From raw runs to the summary (median, min, max over the rounds), the ratios (to nginx, to
the direct baseline), the issue's targets for ringside, and the markdown table."""

import statistics

METRICS = ("rps", "p50_us", "p90_us", "p99_us", "p999_us", "max_us", "mean_us", "cpu_s_per_1k")
MEM_METRICS = ("idle_kib", "peak_kib", "after_load_kib", "with_conns_kib", "per_conn_bytes")


def _stats(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def _med(summary, scenario, target, metric):
    s = summary.get(scenario, {}).get(target, {}).get(metric)
    return s["median"] if s else None


def _ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


def build(meta, targets, scenarios, runs, memory, failures):
    summary = {}
    for sc in scenarios:
        per = {}
        for t in targets:
            rs = [r for r in runs if r["scenario"] == sc.id and r["target"] == t.name]
            why = t.why_not(sc)
            if why is not None:
                per[t.name] = {"na": True, "why": why}
                continue
            if not rs:
                per[t.name] = {"failed": True}
                continue
            entry = {m: _stats([r.get(m) for r in rs]) for m in METRICS}
            entry["errors_total"] = sum(r["errors"] for r in rs)
            entry["requests_total"] = sum(r["requests"] for r in rs)
            per[t.name] = entry
        summary[sc.id] = per
    # Ratios from the medians.
    for sc in scenarios:
        per = summary[sc.id]
        for name, e in per.items():
            if e.get("na") or e.get("failed"):
                continue
            rps = _med(summary, sc.id, name, "rps")
            e["ratios"] = {
                "rps_x_nginx": _ratio(rps, _med(summary, sc.id, "nginx", "rps")),
                "rps_of_direct": _ratio(rps, _med(summary, sc.id, "direct", "rps")),
                "p99_x_nginx": _ratio(_med(summary, sc.id, name, "p99_us"),
                                      _med(summary, sc.id, "nginx", "p99_us")),
                "cpu_x_nginx": _ratio(_med(summary, sc.id, name, "cpu_s_per_1k"),
                                      _med(summary, sc.id, "nginx", "cpu_s_per_1k")),
            }
            d50 = _med(summary, sc.id, "direct", "p50_us")
            d99 = _med(summary, sc.id, "direct", "p99_us")
            p50 = _med(summary, sc.id, name, "p50_us")
            p99 = _med(summary, sc.id, name, "p99_us")
            e["added_p50_us"] = p50 - d50 if name != "direct" and d50 is not None else None
            e["added_p99_us"] = p99 - d99 if name != "direct" and d99 is not None else None
    mem = {}
    for t in targets:
        if not t.is_proxy:
            continue
        ms = [m for m in memory if m["target"] == t.name]
        if not ms:  # not measured in this run (--only h2c,tls)
            continue
        mem[t.name] = {k: _stats([m.get(k) for m in ms]) for k in MEM_METRICS}
        mem[t.name]["conns_open"] = min((m["conns_open"] for m in ms), default=0)
    noise_p = [r["other_load_proxy_cpu_pct"] for r in runs if "other_load_proxy_cpu_pct" in r]
    noise_l = [r["other_load_load_cpu_pct"] for r in runs if "other_load_load_cpu_pct" in r]
    meta["noise"] = {
        "proxy_cpu_pct_mean": statistics.mean(noise_p) if noise_p else None,
        "proxy_cpu_pct_max": max(noise_p, default=None),
        "load_cpu_pct_mean": statistics.mean(noise_l) if noise_l else None,
        "load_cpu_pct_max": max(noise_l, default=None),
        "noisy_runs": sum(1 for a, b in zip(noise_p, noise_l) if max(a, b) >= 10),
        "runs": len(noise_p),
    }
    data = {
        "meta": meta,
        "targets": [{"name": t.name, "label": t.label, "is_proxy": t.is_proxy,
                     "protocols": [c for c in t.caps if t.supports(c)],
                     "skipped": dict(t.skipped)} for t in targets],
        "summary": summary,
        "memory": mem,
        "runs": runs,
        "memory_runs": memory,
        "failures": failures,
    }
    data["goals"] = goals(data, scenarios)
    if any(t.name == BASE for t in targets):
        data["baseline"] = baseline(scenarios, runs, memory)
    gw = gateway(scenarios, runs, {t.name for t in targets})
    if gw:
        data["gateway"] = gw
    return data


# ---------------------------------------------------------------- gateway stages (issue 12)

# (gateway target, compared with, the limit on the CPU-per-request ratio or None)
GATEWAY_PAIRS = (
    ("ringside-gateway", "ringside", 1.15),
    ("ringside-gateway-key", "ringside", 1.15),
    ("ringside-gateway", "envoy-gateway", 1.0),
    ("ringside-gateway-key", "envoy-gateway", 1.0),
    ("envoy-gateway", "envoy", None),
)


def gateway(scenarios, runs, names):
    """The gateway targets against the plain route and against Envoy doing the same work:
    CPU per request and req/s, as _ab (medians, ratio of the medians, per-round ratios: the
    two of a pair ran in the same round, not back to back)."""
    out = {}
    for sc in scenarios:
        rows = []
        for a, b, limit in GATEWAY_PAIRS:
            if a not in names or b not in names:
                continue
            ra = [r for r in runs if r["scenario"] == sc.id and r["target"] == a]
            rb = [r for r in runs if r["scenario"] == sc.id and r["target"] == b]
            if not (ra and rb):
                continue
            cpu = _ab(ra, rb, "cpu_s_per_1k")
            met = None if limit is None or cpu["ratio"] is None else cpu["ratio"] <= limit
            rows.append({"target": a, "against": b, "limit": limit, "met": met, "cpu": cpu,
                         "rps": _ab(ra, rb, "rps")})
        if rows:
            out[sc.id] = rows
    return out


def gateway_markdown(data):
    gw = data.get("gateway")
    if not gw:
        return []
    hs = data["meta"].get("request_headers") or []
    lines = ["## Gateway stages (issue 12)", "",
             "Every request of every target carried " + "; ".join(f"`{h}`" for h in hs)
             + ". CPU: proxy CPU seconds per 1000 requests, median (min–max) of the rounds. "
             "*a/b*: ratio of the medians, then (lowest–highest) of the per-round ratios. "
             "Goals (issue 12): the gateway route at most 1.15× the plain route's CPU per "
             "request, and below Envoy's with the same work.", "",
             "| scenario | a | b | CPU s/1k a | CPU s/1k b | CPU a/b | goal | met | req/s a/b |",
             "|---|---|---|---|---|---|---|---|---|"]

    def cpu(st):
        return fmt_spread(st, lambda x: f"{x:.4f}")
    for sid, rows in gw.items():
        for r in rows:
            goal = "—" if r["limit"] is None else (
                f"≤ {r['limit']}×" if r["limit"] != 1.0 else "< 1×")
            met = "—" if r["met"] is None else ("yes" if r["met"] else "**no**")
            lines.append(f"| {sid} | {r['target']} | {r['against']} | "
                         f"{cpu(r['cpu']['new'])} | {cpu(r['cpu']['base'])} | "
                         f"**{fmt_ratio(r['cpu'])}** | {goal} | {met} | {fmt_ratio(r['rps'])} |")
    return lines + [""]


def gateway_summary(data):
    gw = data.get("gateway")
    if not gw:
        return []
    out = ["gateway CPU per request (ratio of medians; per-round min-max):"]
    for sid, rows in gw.items():
        for r in rows:
            out.append(f"  {sid:18s} {r['target']:20s} / {r['against']:16s} "
                       f"{fmt_ratio(r['cpu'])}")
    return out


# ---------------------------------------------------------------- --baseline: A/B

NEW, BASE = "ringside", "ringside-base"
AB_METRICS = ("rps", "p50_us", "p99_us", "cpu_s_per_1k")
AB_MEM = ("idle_kib", "with_conns_kib", "per_conn_bytes", "peak_kib")


def _ab(new_rows, base_rows, metric):
    """ringside against ringside-base on one metric: each side's median (min-max), the ratio
    new/base of the medians, and the ratios of the rounds (each round measured both back to
    back) with their median and min-max."""
    new = {r["round"]: r.get(metric) for r in new_rows if r.get(metric) is not None}
    base = {r["round"]: r.get(metric) for r in base_rows if r.get(metric) is not None}
    rounds = sorted(set(new) & set(base))
    n, b = _stats(list(new.values())), _stats(list(base.values()))
    return {"new": n, "base": b,
            "ratio": _ratio(n and n["median"], b and b["median"]),
            "per_round": _stats([_ratio(new[r], base[r]) for r in rounds])}


def baseline(scenarios, runs, memory):
    out = {"scenarios": {}, "memory": {}}
    for sc in scenarios:
        rn = [r for r in runs if r["scenario"] == sc.id and r["target"] == NEW]
        rb = [r for r in runs if r["scenario"] == sc.id and r["target"] == BASE]
        if rn or rb:
            out["scenarios"][sc.id] = {m: _ab(rn, rb, m) for m in AB_METRICS}
    mn = [m for m in memory if m["target"] == NEW]
    mb = [m for m in memory if m["target"] == BASE]
    if mn or mb:
        out["memory"] = {k: _ab(mn, mb, k) for k in AB_MEM}
    return out


def fmt_ratio(ab):
    """'1.03× (0.98–1.07)': the ratio of the medians, and the lowest and highest of the
    rounds' ratios when there are several rounds."""
    if ab["ratio"] is None:
        return "—"
    pr = ab["per_round"]
    if pr and pr["n"] > 1:
        return f"{ab['ratio']:.3f}× ({pr['min']:.3f}–{pr['max']:.3f})"
    return f"{ab['ratio']:.3f}×"


def baseline_markdown(data):
    ab = data.get("baseline")
    if not ab:
        return []
    meta = data["meta"]
    vs = meta["versions"]
    lines = ["## ringside against ringside-base (A/B)", "",
             f"ringside: {vs.get('ringside', '?')}; ringside-base: {vs.get('ringside-base', '?')}."
             " Same template and placement; in every round the two run back to back, each "
             "measurement in turn (ringside first in even rounds, ringside-base first in odd "
             "ones). Values: median (min–max) of the rounds. *new/base*: ratio of the medians, "
             "then (lowest–highest) of the per-round ratios; above 1 is more req/s, or more "
             "latency, CPU or memory.", "",
             "| scenario | req/s ringside | req/s ringside-base | req/s new/base | p50 new/base "
             "| p99 new/base | CPU s/1k ringside | CPU s/1k ringside-base | CPU new/base |",
             "|---|---|---|---|---|---|---|---|---|"]

    def cpu(st):
        return fmt_spread(st, lambda x: f"{x:.4f}")
    for sc in meta["scenarios"]:
        e = ab["scenarios"].get(sc["id"])
        if not e:
            continue
        lines.append(f"| {sc['id']} | {fmt_spread(e['rps']['new'])} | "
                     f"{fmt_spread(e['rps']['base'])} | **{fmt_ratio(e['rps'])}** | "
                     f"{fmt_ratio(e['p50_us'])} | {fmt_ratio(e['p99_us'])} | "
                     f"{cpu(e['cpu_s_per_1k']['new'])} | {cpu(e['cpu_s_per_1k']['base'])} | "
                     f"**{fmt_ratio(e['cpu_s_per_1k'])}** |")
    if ab.get("memory"):
        n = meta["idle_conns"]
        names = {"idle_kib": ("idle RSS", _mib), "with_conns_kib": (f"RSS with {n:,} idle "
                 "conns", _mib), "per_conn_bytes": ("per idle connection",
                                                    lambda x: f"{x / 1024:.2f} KiB"),
                 "peak_kib": ("peak RSS under load", _mib)}
        lines += ["", "| memory | ringside | ringside-base | new/base |", "|---|---|---|---|"]
        for k, (label, f) in names.items():
            e = ab["memory"][k]
            lines.append(f"| {label} | {fmt_spread(e['new'], f)} | {fmt_spread(e['base'], f)}"
                         f" | **{fmt_ratio(e)}** |")
    return lines + [""]


def baseline_summary(data):
    """A few lines for the terminal: ringside / ringside-base per scenario and memory."""
    ab = data.get("baseline")
    if not ab:
        return []
    out = ["ringside / ringside-base (ratio of medians; per-round min-max):"]
    for sid, e in ab["scenarios"].items():
        out.append(f"  {sid:22s} req/s {fmt_ratio(e['rps']):26s} CPU/req "
                   f"{fmt_ratio(e['cpu_s_per_1k']):26s} p99 {fmt_ratio(e['p99_us'])}")
    for k, label in (("idle_kib", "idle RSS"), ("per_conn_bytes", "per idle conn"),
                     ("peak_kib", "peak RSS")):
        if ab.get("memory"):
            out.append(f"  {label:22s} {fmt_ratio(ab['memory'][k])}")
    return out


def goals(data, scenarios):
    """The issue's targets for ringside, each with its measured value."""
    s, mem = data["summary"], data["memory"]
    ids = {sc.id for sc in scenarios}

    def ent(sid, t):
        return s.get(sid, {}).get(t, {})

    def med(sid, t, m):
        return _med(s, sid, t, m)

    out = []

    def add(goal, value, limit, better, unit="x", why_na=""):
        if value is None:
            met = None
        else:
            met = value >= limit if better == "higher" else value <= limit
        out.append({"goal": goal, "value": value, "limit": limit, "better": better, "unit": unit,
                    "met": met, "na": why_na if value is None else ""})

    c50, c1, b64 = "h1-c50-128B", "h1-c1-128B", "h1-c50-64KiB"
    if c50 in ids:
        add("HTTP/1.1 50 conns 128B: req/s vs direct", _ratio(med(c50, "ringside", "rps"),
            med(c50, "direct", "rps")), 0.9, "higher")
        add("HTTP/1.1 50 conns 128B: req/s vs nginx", _ratio(med(c50, "ringside", "rps"),
            med(c50, "nginx", "rps")), 1.12, "higher")
        add("HTTP/1.1 50 conns 128B: CPU per request vs nginx",
            _ratio(med(c50, "ringside", "cpu_s_per_1k"), med(c50, "nginx", "cpu_s_per_1k")),
            0.7, "lower")
        add("HTTP/1.1 50 conns 128B: p99 vs nginx", _ratio(med(c50, "ringside", "p99_us"),
            med(c50, "nginx", "p99_us")), 1.0, "lower")
    if c1 in ids:
        rs_add = ent(c1, "ringside").get("added_p50_us")
        ng_add = ent(c1, "nginx").get("added_p50_us")
        add("HTTP/1.1 1 conn: added p50 latency vs nginx's", _ratio(rs_add, ng_add), 0.8,
            "lower")
    if b64 in ids:
        add("HTTP/1.1 64 KiB bodies: req/s vs nginx", _ratio(med(b64, "ringside", "rps"),
            med(b64, "nginx", "rps")), 1.2, "higher")
    h2c = [sc.id for sc in scenarios if sc.port == "h2c"]
    if h2c:
        names = {t["name"] for t in data["targets"]}
        missing = [n for n in ("ringside", "haproxy") if n not in names]
        why = (f"{' and '.join(missing)} not in this run" if missing
               else "not measured (see the failures)")
        add("h2c: req/s vs HAProxy", _ratio(med(h2c[0], "ringside", "rps"),
            med(h2c[0], "haproxy", "rps")), 1.0, "higher", why_na=why)
    r = mem.get("ringside")
    if r:
        def mm(k):
            return r[k]["median"] if r.get(k) else None
        add("idle RSS", mm("idle_kib") and mm("idle_kib") / 1024, 4, "lower", "MiB")
        add("memory per idle keep-alive connection", mm("per_conn_bytes") and
            mm("per_conn_bytes") / 1024, 8, "lower", "KiB")
        add("peak RSS during the load runs", mm("peak_kib") and mm("peak_kib") / 1024, 12,
            "lower", "MiB")
    return out


# ---------------------------------------------------------------- formatting

def fmt_us(us):
    if us is None:
        return "—"
    if us < 0:
        return "−" + fmt_us(-us)
    if us < 1000:
        return f"{us:.0f} µs"
    if us < 100000:
        return f"{us / 1000:.2f} ms"
    return f"{us / 1000:.0f} ms"


def fmt_num(x):
    if x is None:
        return "—"
    if x >= 100000:
        return f"{x / 1000:.0f}k"
    if x >= 10000:
        return f"{x / 1000:.1f}k"
    return f"{x:,.0f}"


def fmt_x(x):
    return "—" if x is None else f"{x:.2f}×"


def fmt_spread(st, f=fmt_num):
    if not st:
        return "—"
    if st["n"] == 1:
        return f(st["median"])
    return f"{f(st['median'])} ({f(st['min'])}–{f(st['max'])})"


def _mib(kib):
    return "—" if kib is None else f"{kib / 1024:.1f} MiB"


def markdown(data):
    meta = data["meta"]
    m = meta["machine"]
    lines = [
        f"# ringside perf: {meta['mode']} run, {meta['date']}",
        "",
        f"- command: `{meta['command']}`",
        f"- machine: {m['nproc']} CPUs ({m['cpu']}), Linux {m['kernel']}",
        f"- {meta['placement_line']}",
        f"- {meta['repeats']} round(s) of every measurement, {meta['duration_s']} s each after "
        f"{meta['warmup_s']} s warm-up; figures are the median of the rounds, with (min–max) "
        "when there are several",
        "- versions: " + "; ".join(f"{k} {v}" for k, v in meta["versions"].items()),
        f"- took {meta.get('elapsed_s', 0) / 60:.1f} min",
    ]
    nz = meta.get("noise") or {}
    if nz.get("runs"):
        lines.append(
            f"- interference: processes outside the suite used on average "
            f"{nz['proxy_cpu_pct_mean']:.1f}% of the proxy CPU (max {nz['proxy_cpu_pct_max']:.0f}%)"
            f" and {nz['load_cpu_pct_mean']:.1f}% of the load CPUs (max "
            f"{nz['load_cpu_pct_max']:.0f}%) during the runs; {nz['noisy_runs']} of "
            f"{nz['runs']} runs had 10% or more (see other_load_* in results.json)")
    lines.append("")
    if data["failures"]:
        lines += ["**Failures:**", ""]
        lines += [f"- {f['target']}: {f.get('scenario', '')} {f['what']}" for f in
                  data["failures"]]
        lines.append("")
    if data["goals"]:
        lines += ["## ringside against the targets", "",
                  "| target | measured | goal | met |", "|---|---|---|---|"]
        for g in data["goals"]:
            if g["value"] is None:
                val, met = "n/a", g["na"] or "n/a (not measured)"
            else:
                val = (f"{g['value']:.2f}×" if g["unit"] == "x"
                       else f"{g['value']:.2f} {g['unit']}")
                met = "yes" if g["met"] else "**no**"
            op = "≥" if g["better"] == "higher" else "≤"
            lim = f"{g['limit']}×" if g["unit"] == "x" else f"{g['limit']} {g['unit']}"
            lines.append(f"| {g['goal']} | {val} | {op} {lim} | {met} |")
        lines.append("")
    lines += baseline_markdown(data)
    lines += gateway_markdown(data)
    targets = data["targets"]
    lines += ["## Throughput, latency, CPU", "",
              "req/s: median (min–max) of the rounds. × nginx and of direct: ratios of the "
              "medians. Latency: medians of each round's percentiles; *+p50* is the latency the "
              "proxy adds to the direct run's p50. CPU: proxy CPU seconds (user + system, all "
              "threads and processes) per 1000 requests. Errors: total over the rounds.", ""]
    for sc in meta["scenarios"]:
        per = data["summary"][sc["id"]]
        tool = {"wrk": "wrk, closed loop", "fixedrate": "fixed rate, open loop",
                "h2load": "h2load"}[sc["tool"]]
        lines += [f"### {sc['title']} ({tool})", "",
                  "| proxy | req/s | × nginx | of direct | p50 | p90 | p99 | p99.9 | max | +p50 "
                  "| CPU s/1k req | CPU × nginx | errors |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for t in targets:
            e = per.get(t["name"], {})
            if e.get("na"):
                why = f" ({e['why']})" if e.get("why") else ""
                lines.append(f"| {t['label']} | n/a{why} |" + " |" * 11)
                continue
            if e.get("failed"):
                lines.append(f"| {t['label']} | failed |" + " |" * 11)
                continue
            r = e["ratios"]
            med = {k: (e[k]["median"] if e.get(k) else None) for k in
                   ("p50_us", "p90_us", "p99_us", "p999_us", "max_us", "cpu_s_per_1k")}
            cpu = "—" if med["cpu_s_per_1k"] is None else f"{med['cpu_s_per_1k']:.4f}"
            lines.append(
                f"| {t['label']} | {fmt_spread(e['rps'])} | "
                f"{fmt_x(r['rps_x_nginx']) if t['name'] != 'nginx' else '1'} | "
                f"{fmt_x(r['rps_of_direct']) if t['name'] != 'direct' else '1'} | "
                f"{fmt_us(med['p50_us'])} | {fmt_us(med['p90_us'])} | {fmt_us(med['p99_us'])} | "
                f"{fmt_us(med['p999_us'])} | {fmt_us(med['max_us'])} | "
                f"{fmt_us(e.get('added_p50_us')) if e.get('added_p50_us') is not None else '—'}"
                f" | {cpu} | {fmt_x(r['cpu_x_nginx']) if t['name'] not in ('nginx', 'direct') else '—'}"
                f" | {e['errors_total']} |")
        lines.append("")
    n = meta["idle_conns"]
    if not data["memory"]:
        lines += ["## Memory", "", "Not measured in this run (no HTTP/1.1 scenario selected).",
                  ""]
    lines += [] if not data["memory"] else ["## Memory", "",
              "RSS of the proxy's processes, pages they share counted once (nginx: the worker "
              "plus the master's private memory). Idle: a fresh "
              "process that has served only the suite's start-up check (one request on "
              f"each listener it has). With idle conns: the same process with {n:,} "
              "keep-alive connections open, each having served one 128 B request; per "
              "connection = (that − idle) / connections. Peak: VmHWM of a second fresh "
              "process after every load scenario; after load: its RSS then.", "",
              f"| proxy | idle | with {n:,} idle conns | per idle conn | peak under load | "
              "after load |", "|---|---|---|---|---|---|"]
    for t in targets:
        mm = data["memory"].get(t["name"])
        if not mm:
            continue

        def g(k):
            return mm[k]["median"] if mm.get(k) else None
        per = g("per_conn_bytes")
        lines.append(f"| {t['label']} | {fmt_spread(mm['idle_kib'], _mib)} | "
                     f"{fmt_spread(mm['with_conns_kib'], _mib)} | "
                     f"{'—' if per is None else f'{per / 1024:.1f} KiB'} | "
                     f"{fmt_spread(mm['peak_kib'], _mib)} | {_mib(g('after_load_kib'))} |")
    lines += ["", "## Pictures", "",
              "![latency percentiles](latency.svg)", "", "![throughput](throughput.svg)", "",
              "![memory](memory.svg)", ""]
    return "\n".join(lines)
