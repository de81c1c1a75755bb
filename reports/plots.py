"""Report figures as inline SVG strings (matplotlib's object API with the SVG canvas: no
pyplot, no global backend switch, no network). Each takes plain DataFrames and numbers.
Output is deterministic (fixed hash salt, no date)."""
from __future__ import annotations

import io
import re

import numpy as np

OPERAND_SUFFIXES = ("_input", "_weight", "_output", "_psum")
PALETTE = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3",
           "#8C8C8C", "#CCB974", "#64B5CD"]


def _fig(w=8.0, h=3.2):
    from matplotlib.figure import Figure
    fig = Figure(figsize=(w, h), dpi=96)
    return fig


def to_svg(fig) -> str:
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    FigureCanvasSVG(fig)
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "tilesim"}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    s = buf.getvalue()
    s = s[s.index("<svg"):]
    s = re.sub(r"<metadata>.*?</metadata>\s*", "", s, flags=re.S)  # RDF, creator URL
    return re.sub(r"<!--.*?-->", "", s, flags=re.S)


def energy_levels(columns) -> dict[str, list[str]]:
    """``<level>_<operand>_energy_pj`` (and ``mac``/``array``/``vector``/``leakage``)
    columns grouped by level, in column order."""
    out: dict[str, list[str]] = {}
    for c in columns:
        if not c.endswith("_energy_pj") or c == "energy_pj":
            continue
        lvl = c[:-len("_energy_pj")]
        for suf in OPERAND_SUFFIXES:
            if lvl.endswith(suf):
                lvl = lvl[:-len(suf)]
                break
        out.setdefault(lvl, []).append(c)
    return out


def _layer_axis(ax, names):
    n = len(names)
    step = max(1, n // 40)
    ax.set_xticks(range(0, n, step))
    ax.set_xticklabels([names[i] for i in range(0, n, step)], rotation=90, fontsize=6)
    ax.set_xlim(-0.6, n - 0.4)


def latency_breakdown(layers, clock_hz: float) -> str:
    """Per-layer latency (ms) stacked: compute, then memory stall."""
    fig = _fig()
    ax = fig.add_subplot()
    x = np.arange(len(layers))
    comp = (layers["compute_cycles"].to_numpy() + 1) / clock_hz * 1e3
    stall = layers["stall_cycles"].to_numpy() / clock_hz * 1e3
    ax.bar(x, comp, color=PALETTE[0], label="compute")
    ax.bar(x, stall, bottom=comp, color=PALETTE[3], label="memory stall")
    ax.set_ylabel("latency (ms)")
    ax.set_title("Latency per layer")
    ax.legend(fontsize=7)
    _layer_axis(ax, list(layers["layer"]))
    return to_svg(fig)


def energy_breakdown(layers) -> str:
    """Per-layer energy (µJ) stacked by level."""
    fig = _fig()
    ax = fig.add_subplot()
    x = np.arange(len(layers))
    bottom = np.zeros(len(layers))
    for i, (lvl, cols) in enumerate(energy_levels(layers.columns).items()):
        v = layers[cols].fillna(0).to_numpy(dtype=float).sum(axis=1) * 1e-6
        ax.bar(x, v, bottom=bottom, color=PALETTE[i % len(PALETTE)], label=lvl)
        bottom += v
    ax.set_ylabel("energy (µJ)")
    ax.set_title("Energy per layer, by level")
    ax.legend(fontsize=7, ncol=3)
    _layer_axis(ax, list(layers["layer"]))
    return to_svg(fig)


def utilization(layers) -> str:
    fig = _fig(8, 2.6)
    ax = fig.add_subplot()
    x = np.arange(len(layers))
    ax.bar(x, layers["utilization"].to_numpy() * 100, color=PALETTE[2])
    ax.set_ylabel("PE utilisation (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Utilisation per layer")
    _layer_axis(ax, list(layers["layer"]))
    return to_svg(fig)


def roofline(layers, peak_ops_per_s: float, dram_bytes_per_s: float | None) -> str:
    """MAC layers on the roofline: operational intensity (ops per DRAM byte) against
    achieved ops/s; 2 ops per MAC."""
    fig = _fig(6, 3.6)
    ax = fig.add_subplot()
    mac = layers[layers["macs"] > 0]
    byts = (mac["dram_read_bytes"] + mac["dram_write_bytes"]).to_numpy(dtype=float)
    ops = 2 * mac["macs"].to_numpy(dtype=float)
    oi = ops / np.maximum(byts, 1)
    perf = ops / (mac["latency_ms"].to_numpy(dtype=float) * 1e-3)
    lo, hi = max(min(oi.min(initial=1.0), 1.0) / 4, 1e-3), max(oi.max(initial=10.0) * 4, 10.0)
    xs = np.logspace(np.log10(lo), np.log10(hi), 200)
    roof = np.full_like(xs, peak_ops_per_s)
    if dram_bytes_per_s:
        roof = np.minimum(roof, xs * dram_bytes_per_s)
        ax.axvline(peak_ops_per_s / dram_bytes_per_s, color="#999", lw=0.6, ls=":")
    ax.plot(xs, roof / 1e9, color="k", lw=1.2, label="roof")
    ax.scatter(oi, perf / 1e9, s=14, color=PALETTE[0], label="MAC layers", zorder=3)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("operational intensity (ops / DRAM byte)")
    ax.set_ylabel("performance (GOPS)")
    ax.set_title("Roofline")
    ax.legend(fontsize=7)
    return to_svg(fig)


def timeline(trace: dict, bins: int = 1200) -> str:
    """A DES timeline from a Chrome trace dict: one row per track, busy intervals merged at
    the plot's resolution (so a 100,000-event trace stays a small SVG)."""
    ev = [e for e in trace.get("traceEvents", []) if e.get("ph") == "X"]
    names = {e["tid"]: e["args"]["name"] for e in trace.get("traceEvents", [])
             if e.get("ph") == "M" and e.get("name") == "thread_name"}
    tids = sorted({e["tid"] for e in ev})
    fig = _fig(8, 0.45 * max(len(tids), 1) + 1.0)
    ax = fig.add_subplot()
    if ev:
        end = max(e["ts"] + e["dur"] for e in ev)
        w = end / bins if end > 0 else 1.0
        for row, tid in enumerate(tids):
            busy = np.zeros(bins + 1, dtype=bool)
            for e in ev:
                if e["tid"] == tid:
                    a, b = int(e["ts"] / w), int((e["ts"] + e["dur"]) / w)
                    busy[a:b + 1] = True
            edges = np.flatnonzero(np.diff(np.concatenate(([0], busy.astype(int), [0]))))
            spans = [(s * w, (t - s) * w) for s, t in zip(edges[::2], edges[1::2])]
            ax.broken_barh(spans, (row - 0.4, 0.8), color=PALETTE[row % len(PALETTE)])
        ax.set_xlim(0, end)
    ax.set_yticks(range(len(tids)))
    ax.set_yticklabels([names.get(t, str(t)) for t in tids], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("time (µs)")
    ax.set_title("DES timeline (busy intervals per track)")
    return to_svg(fig)


def bars(labels, series: dict, ylabel: str, title: str, log: bool = False) -> str:
    """Grouped bars: one group per label, one bar per series."""
    fig = _fig(8, 3.0)
    ax = fig.add_subplot()
    x = np.arange(len(labels))
    k = max(len(series), 1)
    for i, (name, vals) in enumerate(series.items()):
        ax.bar(x + (i - (k - 1) / 2) * 0.8 / k, vals, width=0.8 / k,
               color=PALETTE[i % len(PALETTE)], label=name)
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if len(labels) > 12:
        _layer_axis(ax, [str(s) for s in labels])
    else:
        ax.set_xticks(x)
        ax.set_xticklabels([str(s) for s in labels], fontsize=7, rotation=20)
    ax.legend(fontsize=7)
    return to_svg(fig)


def pareto_scatter(df, front, x: str, y: str, color: str, title: str,
                   labels: dict | None = None, line: bool = True) -> str:
    """All feasible points, coloured by ``color`` (numeric: colour bar; text: legend), the
    front's points ringed (and joined when ``line``)."""
    labels = labels or {}

    def lab(c):
        return labels.get(c, c)
    fig = _fig(7, 4.2)
    ax = fig.add_subplot()
    c = df[color]
    from pandas.api.types import is_bool_dtype, is_numeric_dtype
    if is_numeric_dtype(c) and not is_bool_dtype(c):
        sc = ax.scatter(df[x], df[y], c=c, cmap="viridis", s=12, alpha=0.8, zorder=2)
        fig.colorbar(sc, ax=ax, label=lab(color))
    else:
        # a missing value is a group of its own, "(none)": groupby would drop those points
        keys = c.astype(object).where(c.notna(), "(none)").astype(str)
        for i, (val, g) in enumerate(df.groupby(keys, sort=True)):
            ax.scatter(g[x], g[y], s=12, alpha=0.8, color=PALETTE[i % len(PALETTE)],
                       label=f"{color}={val}", zorder=2)
        ax.legend(fontsize=7)
    f = front.sort_values([x, y])
    if line:   # the staircase only means something for a two-objective front
        ax.step(f[x], f[y], where="post", color="k", lw=0.8, zorder=3)
    ax.scatter(f[x], f[y], s=40, facecolors="none", edgecolors="k", lw=1.0, zorder=4,
               label="Pareto front")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(lab(x))
    ax.set_ylabel(lab(y))
    ax.set_title(title, fontsize=9)
    return to_svg(fig)
