"""Pictures of a run, as hand-written SVG (no plotting library needed):

- latency.svg: one panel per scenario, latency (log scale) at p50, p90, p99, p99.9 and max,
  one line per proxy; the horizontal axis is spaced like an HdrHistogram percentile plot (each
  step is ten times rarer), so the tail gets as much room as the median.
- throughput.svg: requests/s per scenario as a fraction of the direct-to-origin run (1.0 = the
  ceiling of this placement), absolute req/s written on each bar.
- memory.svg: idle RSS, peak RSS under load, and memory per idle keep-alive connection, with
  ringside's targets drawn as dashed lines.
"""

import math
from xml.sax.saxutils import escape

COLORS = {"direct": "#888888", "ringside": "#d62728", "ringside-base": "#ff9896",
          "nginx": "#2ca02c",
          "haproxy": "#1f77b4", "envoy": "#9467bd",
          "ringside-gateway": "#ff7f0e", "ringside-gateway-key": "#bcbd22",
          "envoy-gateway": "#c5b0d5"}
FONT = "font-family='DejaVu Sans, Helvetica, Arial, sans-serif'"
PCTS = (("p50_us", "p50", 2), ("p90_us", "p90", 10), ("p99_us", "p99", 100),
        ("p999_us", "p99.9", 1000), ("max_us", "max", 10000))


def _color(name):
    return COLORS.get(name, "#444444")


class Svg:
    def __init__(self, width, height):
        self.w, self.h = width, height
        self.parts = []

    def add(self, s):
        self.parts.append(s)

    def text(self, x, y, s, size=11, anchor="start", color="#222", weight="normal", rotate=None):
        rot = f" transform='rotate({rotate} {x:.1f} {y:.1f})'" if rotate else ""
        self.add(f"<text x='{x:.1f}' y='{y:.1f}' font-size='{size}' text-anchor='{anchor}' "
                 f"fill='{color}' font-weight='{weight}' {FONT}{rot}>{escape(str(s))}</text>")

    def line(self, x1, y1, x2, y2, color="#ccc", width=1, dash=None):
        d = f" stroke-dasharray='{dash}'" if dash else ""
        self.add(f"<line x1='{x1:.1f}' y1='{y1:.1f}' x2='{x2:.1f}' y2='{y2:.1f}' "
                 f"stroke='{color}' stroke-width='{width}'{d}/>")

    def rect(self, x, y, w, h, color, opacity=1.0):
        self.add(f"<rect x='{x:.1f}' y='{y:.1f}' width='{max(w, 0):.1f}' height='{max(h, 0):.1f}'"
                 f" fill='{color}' fill-opacity='{opacity}'/>")

    def polyline(self, pts, color, width=2, dash=None):
        d = f" stroke-dasharray='{dash}'" if dash else ""
        p = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        self.add(f"<polyline points='{p}' fill='none' stroke='{color}' stroke-width='{width}'{d}/>")

    def circle(self, x, y, r, color):
        self.add(f"<circle cx='{x:.1f}' cy='{y:.1f}' r='{r}' fill='{color}'/>")

    def render(self):
        return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{self.w}' height='{self.h}' "
                f"viewBox='0 0 {self.w} {self.h}'>\n<rect width='100%' height='100%' "
                f"fill='white'/>\n" + "\n".join(self.parts) + "\n</svg>\n")


def _legend(svg, targets, x, y):
    for t in targets:
        svg.rect(x, y - 9, 14, 10, _color(t["name"]))
        svg.text(x + 18, y, t["label"], size=11)
        x += 26 + 7 * len(t["label"])


def _fmt_lat(us):
    if us >= 1000:
        ms = us / 1000
        return f"{ms:g} ms" if ms < 1000 else f"{ms / 1000:g} s"
    return f"{us:g} µs"


def latency(data):
    scenarios = data["meta"]["scenarios"]
    targets = data["targets"]
    cols = 3
    pw, ph = 330, 230
    rows = math.ceil(len(scenarios) / cols)
    svg = Svg(cols * pw + 20, rows * ph + 70)
    svg.text(12, 22, "Latency by percentile (median of the rounds; log scale)", size=15,
             weight="bold")
    _legend(svg, targets, 12, 44)
    for i, sc in enumerate(scenarios):
        ox, oy = 10 + (i % cols) * pw, 60 + (i // cols) * ph
        x0, x1, y0, y1 = ox + 52, ox + pw - 14, oy + 30, oy + ph - 34
        per = data["summary"][sc["id"]]
        series = []
        for t in targets:
            e = per.get(t["name"], {})
            if e.get("na") or e.get("failed"):
                continue
            pts = [(k, e[k]["median"]) for k, _, _ in PCTS if e.get(k) and e[k]["median"] > 0]
            if pts:
                series.append((t, dict(pts)))
        svg.text(ox + 8, oy + 16, sc["title"], size=11, weight="bold")
        if not series:
            svg.text((x0 + x1) / 2, (y0 + y1) / 2, "no data", anchor="middle", color="#999")
            continue
        vals = [v for _, s in series for v in s.values()]
        lo = 10 ** math.floor(math.log10(min(vals)))
        hi = 10 ** math.ceil(math.log10(max(vals)))
        if hi <= lo:
            hi = lo * 10

        def ypos(v):
            return y1 - (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * (
                y1 - y0)

        def xpos(rank):
            return x0 + (math.log10(rank) - math.log10(2)) / (4 - math.log10(2)) * (x1 - x0)
        d = lo
        while d <= hi * 1.0001:
            for m in (1, 2, 5):
                v = d * m
                if lo <= v <= hi:
                    y = ypos(v)
                    svg.line(x0, y, x1, y, "#e5e5e5" if m > 1 else "#cccccc")
                    if m == 1 or (math.log10(hi) - math.log10(lo)) <= 2:
                        svg.text(x0 - 4, y + 4, _fmt_lat(v), size=9, anchor="end", color="#555")
            d *= 10
        for _, label, rank in PCTS:
            x = xpos(rank)
            svg.line(x, y0, x, y1, "#eeeeee")
            svg.text(x, y1 + 14, label, size=9, anchor="middle", color="#555")
        svg.line(x0, y1, x1, y1, "#999")
        svg.line(x0, y0, x0, y1, "#999")
        for t, s in series:
            pts = [(xpos(rank), ypos(s[k])) for k, _, rank in PCTS if k in s]
            dash = "5,3" if t["name"] == "direct" else None
            svg.polyline(pts, _color(t["name"]), 2, dash)
            for x, y in pts:
                svg.circle(x, y, 2.5, _color(t["name"]))
    return svg.render()


def throughput(data):
    scenarios = data["meta"]["scenarios"]
    targets = data["targets"]
    bar, gap = 13, 12
    left, width = 250, 520
    h = 70 + len(scenarios) * (len(targets) * bar + gap) + 30
    svg = Svg(left + width + 90, h)
    svg.text(12, 22, "Requests per second, as a fraction of direct-to-origin (median of the "
             "rounds)", size=15, weight="bold")
    _legend(svg, targets, 12, 44)
    ratios = []
    for sc in scenarios:
        for t in targets:
            e = data["summary"][sc["id"]].get(t["name"], {})
            r = e.get("ratios", {}).get("rps_of_direct") if t["name"] != "direct" else 1.0
            if e.get("rps") and r:
                ratios.append(r)
    top = max([1.2] + ratios)

    def xpos(v):
        return left + v / top * width
    y = 64
    y_start = y
    for sc in scenarios:
        svg.text(left - 8, y + len(targets) * bar / 2 + 4, sc["title"], size=10, anchor="end")
        for t in targets:
            e = data["summary"][sc["id"]].get(t["name"], {})
            if e.get("na"):
                svg.text(left + 4, y + bar - 3, f"{t['label']}: n/a", size=9, color="#999")
            elif e.get("failed") or not e.get("rps"):
                svg.text(left + 4, y + bar - 3, f"{t['label']}: failed", size=9, color="#c00")
            else:
                r = e["ratios"]["rps_of_direct"] if t["name"] != "direct" else 1.0
                if r is None:
                    r = 0
                svg.rect(left, y + 1, xpos(r) - left, bar - 2, _color(t["name"]), 0.85)
                rps = e["rps"]["median"]
                txt = f"{rps / 1000:.1f}k" if rps >= 1000 else f"{rps:.0f}"
                svg.text(xpos(r) + 4, y + bar - 3, txt, size=9, color="#333")
            y += bar
        y += gap
    for v in [i / 5 for i in range(int(top * 5) + 1)]:
        svg.line(xpos(v), y_start - 4, xpos(v), y, "#999" if v == 1 else "#e0e0e0",
                 1.5 if v == 1 else 1)
        svg.text(xpos(v), y + 14, f"{v:.1f}", size=9, anchor="middle", color="#555")
    return svg.render()


def memory(data):
    targets = [t for t in data["targets"] if t["is_proxy"] and data["memory"].get(t["name"])]
    n = data["meta"]["idle_conns"]
    panels = [("idle_kib", "Idle RSS (MiB)", 1 / 1024, 4),
              ("peak_kib", "Peak RSS under load (MiB)", 1 / 1024, 12),
              ("per_conn_bytes", f"Per idle keep-alive connection (KiB, {n:,} open)", 1 / 1024, 8)]
    bar = 22
    pw = 330
    ph = 60 + len(targets) * (bar + 6)
    svg = Svg(len(panels) * pw + 20, ph + 70)
    svg.text(12, 22, "Memory (median of the rounds; dashed: ringside's target)", size=15,
             weight="bold")
    _legend(svg, targets, 12, 44)
    for i, (key, title, scale, goal) in enumerate(panels):
        ox = 10 + i * pw
        left, right = ox + 80, ox + pw - 50
        top = 84
        svg.text(ox + 6, 72, title, size=11, weight="bold")
        vals = []
        for t in targets:
            st = data["memory"][t["name"]].get(key)
            vals.append(st["median"] * scale if st else None)
        vmax = max([v for v in vals if v is not None] + [goal]) * 1.1

        def xpos(v):
            return left + v / vmax * (right - left)
        for j, (t, v) in enumerate(zip(targets, vals)):
            y = top + j * (bar + 6)
            svg.text(left - 6, y + bar / 2 + 4, t["label"], size=10, anchor="end")
            if v is None:
                svg.text(left + 4, y + bar / 2 + 4, "—", size=10, color="#999")
                continue
            svg.rect(left, y, xpos(v) - left, bar, _color(t["name"]), 0.85)
            svg.text(xpos(v) + 4, y + bar / 2 + 4, f"{v:.1f}", size=10)
        bottom = top + len(targets) * (bar + 6)
        svg.line(left, top - 4, left, bottom, "#999")
        svg.line(xpos(goal), top - 6, xpos(goal), bottom, _color("ringside"), 1.5, "4,3")
        svg.text(xpos(goal), bottom + 12, f"target {goal}", size=9, anchor="middle",
                 color=_color("ringside"))
    return svg.render()


def write_all(data, out):
    (out / "latency.svg").write_text(latency(data))
    (out / "throughput.svg").write_text(throughput(data))
    (out / "memory.svg").write_text(memory(data))
