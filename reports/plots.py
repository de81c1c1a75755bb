"""Report figures as inline SVG strings (matplotlib's object API with the SVG canvas: no
pyplot, no global backend switch, no network). Each takes plain DataFrames and numbers.
Output is deterministic (fixed hash salt, no date).

Every figure passes through :func:`to_svg`, which first hides tick labels that would
overlap a neighbour on the same axis (measured from matplotlib's text extents);
:func:`tick_label_overlaps` is the check the tests run on every figure a report builds."""
from __future__ import annotations

import io
import math
import re

import numpy as np

from .units import fmt

OPERAND_SUFFIXES = ("_input", "_weight", "_output", "_psum")
PALETTE = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3",
           "#8C8C8C", "#CCB974", "#64B5CD"]
STALL_CAUSES = ("input", "weight", "psum", "writeback", "contention", "other")
LONG = 32          # layers beyond which a layer axis is labelled by block


def _literal_text(figure):
    """A figure function whose text is drawn as written: layer names, model names and
    varied values come from the user, and matplotlib would read ``$x^`` or ``$\\foo$`` in
    them as math text (and fail on it). No label of ours uses math text, so it is off
    (``text.parse_math``, ``text.usetex``) while the figure is built and drawn."""
    import functools

    @functools.wraps(figure)
    def draw(*args, **kwargs):
        import matplotlib
        with matplotlib.rc_context({"text.parse_math": False, "text.usetex": False}):
            return figure(*args, **kwargs)
    return draw


def _fig(w=12.0, h=3.4):
    from matplotlib.figure import Figure
    fig = Figure(figsize=(w, h), dpi=96)
    return fig


# ---- tick labels that do not overlap ----------------------------------------------------
def _renderer(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    canvas = FigureCanvasAgg(fig)
    fig.draw_without_rendering()
    return canvas.get_renderer()


def _labels(ax, which: str, renderer, minor: bool | None = None) -> list:
    """(label, extent) of the visible, non-empty tick labels of one axis (major, minor or
    both when ``minor`` is None), in axis order."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    lo, hi = sorted(ax.get_xlim() if which == "x" else ax.get_ylim())
    out = []
    kinds = {None: (False, True), False: (False,), True: (True,)}[minor]
    for ticks in (axis.get_minor_ticks() if m else axis.get_major_ticks() for m in kinds):
        for t in ticks:
            for lab in (t.label1, t.label2):
                if not (lab.get_visible() and lab.get_text().strip()):
                    continue
                loc = t.get_loc()
                if loc is None or not (lo - 1e-9 * abs(hi - lo) <= loc
                                       <= hi + 1e-9 * abs(hi - lo)):
                    continue
                out.append((lab, lab.get_window_extent(renderer)))
    k = 0 if which == "x" else 1
    return sorted(out, key=lambda p: (p[1].get_points()[0][k], p[0].get_text()))


def _overlap(a, b, pad: float = 0.5) -> bool:
    return (a.x0 < b.x1 - pad and b.x0 < a.x1 - pad and a.y0 < b.y1 - pad
            and b.y0 < a.y1 - pad)


def _crowded(a, b, which: str, gap: float = 4.0) -> bool:
    """Two labels of one axis closer than ``gap`` pixels along it (the labels of an axis
    sit side by side, so their extents across it do not matter)."""
    if which == "x":
        return a.x0 < b.x1 + gap and b.x0 < a.x1 + gap
    return a.y0 < b.y1 + gap and b.y0 < a.y1 + gap


def tick_label_overlaps(fig) -> list[tuple[str, str, str]]:
    """Every pair of visible tick labels of one axis whose text boxes overlap, as
    (axis, text, text); empty when the figure's axes are readable."""
    r = _renderer(fig)
    bad = []
    for i, ax in enumerate(fig.axes):
        for which in ("x", "y"):
            labs = _labels(ax, which, r)
            for j, (la, ea) in enumerate(labs):
                for lb, eb in labs[j + 1:]:
                    if _overlap(ea, eb):
                        bad.append((f"axes {i} {which}", la.get_text(), lb.get_text()))
    return bad


def declutter(fig) -> None:
    """Hide every tick label that would overlap one kept before it on its axis, major
    labels first (so a long layer axis shows every n-th name, and a log axis keeps its
    decades and drops the minor labels between them)."""
    r = _renderer(fig)
    for ax in fig.axes:
        for which in ("x", "y"):
            kept = []
            for minor in (False, True):
                for lab, ext in _labels(ax, which, r, minor):
                    if any(_crowded(ext, k, which) for k in kept):
                        lab.set_visible(False)
                    else:
                        kept.append(ext)


def to_svg(fig) -> str:
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    declutter(fig)
    FigureCanvasSVG(fig)
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "tilesim"}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    s = buf.getvalue()
    s = s[s.index("<svg"):]
    s = re.sub(r"<metadata>.*?</metadata>\s*", "", s, flags=re.S)  # RDF, creator URL
    return re.sub(r"<!--.*?-->", "", s, flags=re.S)


# ---- helpers ----------------------------------------------------------------------------
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


def block_of(name: str) -> str:
    """The block a layer belongs to: ``layer1.0.conv1`` -> ``layer1.0``; ``conv1`` ->
    ``conv1``."""
    parts = str(name).split(".")
    return ".".join(parts[:2]) if len(parts) >= 3 else parts[0]


def _layer_axis(ax, names, label: str = "layer") -> None:
    """Layer names on x: every layer for short networks; for long ones one label per block
    (``layer2.1``) with a minor tick per layer and faint block separators, or every n-th
    name when the names have no blocks. Overlapping labels are dropped by declutter."""
    names = [str(s) for s in names]
    n = len(names)
    ax.set_xlim(-0.6, n - 0.4)
    if n <= LONG:
        ax.set_xticks(range(n))
        ax.set_xticklabels(names, rotation=90, fontsize=7)
        ax.set_xlabel(label, fontsize=8)
        return
    blocks = [block_of(s) for s in names]
    starts = [i for i in range(n) if i == 0 or blocks[i] != blocks[i - 1]]
    if len(starts) <= 40:
        ends = starts[1:] + [n]
        ax.set_xticks([(a + b - 1) / 2 for a, b in zip(starts, ends)])
        ax.set_xticklabels([blocks[a] for a in starts], rotation=90, fontsize=7)
        for a in starts[1:]:
            ax.axvline(a - 0.5, color="#ddd", lw=0.6, zorder=0)
        ax.set_xlabel(f"{label} ({n}, grouped by block)", fontsize=8)
    else:
        step = math.ceil(n / 40)
        ax.set_xticks(range(0, n, step))
        ax.set_xticklabels(names[::step], rotation=90, fontsize=7)
        ax.set_xlabel(f"{label} (every {step}th of {n} named)", fontsize=8)
    ax.set_xticks(range(n), minor=True)
    ax.xaxis.remove_overlapping_locs = False     # a tick mark for every layer
    ax.tick_params(axis="x", which="minor", length=2)


def _time_unit(max_ms: float) -> tuple[str, float]:
    """('ms', 1) for values of a millisecond or more, else ('µs', 1000)."""
    return ("ms", 1.0) if max_ms >= 1 else ("µs", 1e3)


def _wide_range(v) -> bool:
    """True when the positive values span more than a factor of 30."""
    v = np.asarray(v, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    return len(v) > 1 and v.max() / v.min() > 30


def _log_axis(ax, which: str = "y") -> None:
    """A log scale labelled with plain numbers (0.01, 1, 300), minor ticks labelled only
    when the axis spans less than two decades (declutter thins them)."""
    from matplotlib.ticker import FuncFormatter, NullFormatter
    axis = ax.yaxis if which == "y" else ax.xaxis
    (ax.set_yscale if which == "y" else ax.set_xscale)("log")
    fmt = FuncFormatter(lambda v, _: f"{v:g}")
    axis.set_major_formatter(fmt)
    lo, hi = ax.get_ylim() if which == "y" else ax.get_xlim()
    axis.set_minor_formatter(fmt if lo > 0 and hi / lo < 100 else NullFormatter())


def stall_columns(layers) -> list[str]:
    return [f"stall_{c}_cycles" for c in STALL_CAUSES if f"stall_{c}_cycles" in layers.columns]


# ---- one run ----------------------------------------------------------------------------
@_literal_text
def latency_breakdown(layers, clock_hz: float) -> str:
    """Per-layer latency stacked: compute, then memory stall."""
    fig = _fig()
    ax = fig.add_subplot()
    x = np.arange(len(layers))
    comp = (layers["compute_cycles"].to_numpy() + 1) / clock_hz * 1e3
    stall = layers["stall_cycles"].to_numpy() / clock_hz * 1e3
    unit, f = _time_unit(float((comp + stall).max(initial=0)))
    ax.bar(x, comp * f, color=PALETTE[0], label="compute")
    ax.bar(x, stall * f, bottom=comp * f, color=PALETTE[3], label="memory stall")
    ax.set_ylabel(f"latency ({unit})")
    ax.set_title("Latency per layer")
    ax.legend(fontsize=7)
    _layer_axis(ax, list(layers["layer"]))
    return to_svg(fig)


@_literal_text
def stall_by_cause(layers, clock_hz: float) -> str:
    """Per-layer time stacked: compute, then each stall cause the DES attributes."""
    fig = _fig()
    ax = fig.add_subplot()
    x = np.arange(len(layers))
    comp = layers["compute_cycles"].to_numpy(dtype=float)
    parts = [("compute", comp, PALETTE[0])]
    colors = dict(zip(STALL_CAUSES, PALETTE[1:]))
    for c in stall_columns(layers):
        v = layers[c].fillna(0).to_numpy(dtype=float)
        if v.sum() > 0:
            cause = c[len("stall_"):-len("_cycles")]
            parts.append((f"stall: {cause}", v, colors[cause]))
    tot = sum(p[1] for p in parts)
    unit, f = _time_unit(float(tot.max(initial=0)) / clock_hz * 1e3)
    bottom = np.zeros(len(layers))
    for lab, v, col in parts:
        y = v / clock_hz * 1e3 * f
        ax.bar(x, y, bottom=bottom, color=col, label=lab)
        bottom += y
    ax.set_ylabel(f"time ({unit})")
    ax.set_title("Compute and stalls by cause, per layer")
    ax.legend(fontsize=7, ncol=min(len(parts), 4))
    _layer_axis(ax, list(layers["layer"]))
    return to_svg(fig)


@_literal_text
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


@_literal_text
def utilization(layers, overall: float | None = None) -> str:
    """PE utilisation per layer (%), the axis scaled to the data; the run's overall
    utilisation as a dashed line when given."""
    fig = _fig(12, 3.0)
    ax = fig.add_subplot()
    x = np.arange(len(layers))
    u = layers["utilization"].fillna(0).to_numpy(dtype=float) * 100
    ax.bar(x, u, color=PALETTE[2], label="layer")
    top = max(float(u.max(initial=0)), (overall or 0) * 100)
    if overall is not None:
        ax.axhline(overall * 100, color="k", ls="--", lw=0.9,
                   label=f"whole run: {overall * 100:.3g} %")
        ax.legend(fontsize=7)
    ax.set_ylim(0, min(100.0, top * 1.15) if top > 0 else 1.0)
    ax.set_ylabel("PE utilisation (%)")
    ax.set_title("Utilisation per layer" + (" (axis scaled to the data)" if top < 80 else ""))
    _layer_axis(ax, list(layers["layer"]))
    return to_svg(fig)


def _roof_points(layers):
    mac = layers[layers["macs"] > 0]
    byts = (mac["dram_read_bytes"] + mac["dram_write_bytes"]).to_numpy(dtype=float)
    ops = 2 * mac["macs"].to_numpy(dtype=float)
    oi = ops / np.maximum(byts, 1)
    perf = ops / (mac["latency_ms"].to_numpy(dtype=float) * 1e-3)
    return oi, perf


@_literal_text
def roofline(layers, peak_ops_per_s: float, dram_bytes_per_s: float | None) -> str:
    """MAC layers on the roofline: operational intensity (ops per DRAM byte) against
    achieved ops/s; 2 ops per MAC."""
    return roofline_runs({"MAC layers": (layers, {"peak_ops_per_s": peak_ops_per_s,
                                                  "dram_bytes_per_s": dram_bytes_per_s})})


@_literal_text
def roofline_runs(runs: dict) -> str:
    """One roofline plot for several runs: ``{name: (layers, roof)}`` with roof
    ``{"peak_ops_per_s", "dram_bytes_per_s"}``; each run's points and roof in its colour
    (a single run: the roof in red, labelled)."""
    fig = _fig(7, 4.0)
    ax = fig.add_subplot()
    pts = {k: _roof_points(L) for k, (L, _) in runs.items()}
    ois = np.concatenate([p[0] for p in pts.values()] + [np.array([1.0, 10.0])])
    perfs = np.concatenate([p[1] for p in pts.values()])
    perfs = perfs[np.isfinite(perfs) & (perfs > 0)]
    peaks = [r["peak_ops_per_s"] for _, r in runs.values()]
    ridges = [r["peak_ops_per_s"] / r["dram_bytes_per_s"] for _, r in runs.values()
              if r.get("dram_bytes_per_s")]
    # the flat compute roof always shows: the axis runs well past every ridge point
    lo, hi = max(ois.min() / 4, 1e-3), max([ois.max() * 4] + [r * 8 for r in ridges])
    xs = np.logspace(np.log10(lo), np.log10(hi), 200)
    one = len(runs) == 1
    shared: dict = {}        # one line per distinct roof, naming the runs that share it
    for i, (name, (L, rf)) in enumerate(runs.items()):
        key = (rf["peak_ops_per_s"], rf.get("dram_bytes_per_s"))
        shared.setdefault(key, (PALETTE[i % len(PALETTE)], []))[1].append(name)
    for (peak, bw), (col, who) in shared.items():
        roof = np.full_like(xs, peak)
        if bw:
            roof = np.minimum(roof, xs * bw)
            ax.axvline(peak / bw, color="#999", lw=0.6, ls=":")
        ax.plot(xs, roof / 1e9, color=PALETTE[3] if one else col, lw=2.4, alpha=0.9,
                label=(f"roof: {peak / 1e12:.3g} TOPS" + (f", DRAM {bw / 1e9:.3g} GB/s" if bw
                                                           else "")
                       + ("" if one else f" ({', '.join(who)})")), zorder=2)
    for i, (name, (L, rf)) in enumerate(runs.items()):
        col = PALETTE[i % len(PALETTE)]
        oi, perf = pts[name]
        ax.scatter(oi, perf / 1e9, s=14, color=PALETTE[0] if one else col,
                   label=name if not one else f"{name} ({len(oi)})", zorder=3,
                   edgecolors="white", linewidths=0.3)
    ax.set_xlim(lo, hi)
    ymin = (perfs.min() / 3 if len(perfs) else min(peaks) / 1e3) / 1e9
    ax.set_ylim(ymin, max(peaks) * 3 / 1e9)
    _log_axis(ax, "x")
    _log_axis(ax, "y")
    ax.set_xlabel("operational intensity (ops / DRAM byte)")
    ax.set_ylabel("performance (GOPS)")
    ax.set_title("Roofline")
    ax.grid(True, which="major", color="#eee", lw=0.6)
    ax.legend(fontsize=7, loc="lower right")
    return to_svg(fig)


@_literal_text
def timeline(trace: dict | None, layers=None, clock_hz: float | None = None,
             bins: int = 1200) -> str:
    """A DES timeline over the whole run: one row per trace track (busy intervals merged at
    the plot's resolution, so a 100,000-event trace stays a small SVG) and, from the layer
    table, one row of layers (alternating colours per block) from the first cycle to the
    last. Where the trace stopped at its event limit, the rest of its rows is hatched."""
    trace = trace or {}
    te = trace.get("traceEvents", [])
    ev = [e for e in te if e.get("ph") == "X"]
    names = {e["tid"]: e["args"]["name"] for e in te
             if e.get("ph") == "M" and e.get("name") == "thread_name"}
    have_layers = layers is not None and clock_hz and "total_cycles" in layers.columns
    tids = sorted({e["tid"] for e in ev if not (have_layers and names.get(e["tid"]) == "layers")})
    rows = (["layers"] if have_layers else []) + [names.get(t, str(t)) for t in tids]
    fig = _fig(12, 0.42 * max(len(rows), 1) + 1.1)
    ax = fig.add_subplot()
    ts = np.array([e["ts"] for e in ev], dtype=float)
    dur = np.array([e["dur"] for e in ev], dtype=float)
    tid = np.array([e["tid"] for e in ev])
    trace_end = float((ts + dur).max()) if len(ev) else 0.0
    end = trace_end
    row = 0
    if have_layers:
        cyc = layers["total_cycles"].to_numpy(dtype=float)
        starts = np.concatenate(([0.0], np.cumsum(cyc)[:-1])) / clock_hz * 1e6
        widths = cyc / clock_hz * 1e6
        blocks = [block_of(s) for s in layers["layer"]]
        shade, k = [], 0
        for i, b in enumerate(blocks):
            k += i > 0 and b != blocks[i - 1]
            shade.append(PALETTE[4] if k % 2 else PALETTE[9])
        ax.broken_barh(list(zip(starts, widths)), (row - 0.4, 0.8), facecolors=shade,
                       edgecolor="white", lw=0.2)
        end = max(end, float((starts + widths).max(initial=0)))
        row += 1
    if len(ev) and end > 0:
        w = end / bins
        for t in tids:
            m = tid == t
            a = (ts[m] / w).astype(int)
            b = ((ts[m] + dur[m]) / w).astype(int)
            cover = np.zeros(bins + 2, dtype=int)
            np.add.at(cover, a, 1)
            np.add.at(cover, b + 1, -1)
            busy = np.cumsum(cover)[:bins + 1] > 0
            edges = np.flatnonzero(np.diff(np.concatenate(([0], busy.astype(int), [0]))))
            spans = [(s * w, (e - s) * w) for s, e in zip(edges[::2], edges[1::2])]
            ax.broken_barh(spans, (row - 0.4, 0.8), color=PALETTE[row % len(PALETTE)])
            row += 1
    od = trace.get("otherData", {})
    if od.get("truncated") and tids and end > trace_end:
        first = 1 if have_layers else 0
        ax.broken_barh([(trace_end, end - trace_end)], (first - 0.5, len(tids)),
                       facecolor="#f4f4f4", edgecolor="#bbb", hatch="///", lw=0)
        ax.text((trace_end + end) / 2, first - 0.5 + len(tids) / 2,
                f"not in the trace: its limit of {od.get('limit', '?'):,} events was reached"
                if isinstance(od.get("limit"), int) else "not in the trace (limit reached)",
                ha="center", va="center", fontsize=8, color="#444",
                bbox={"facecolor": "white", "edgecolor": "#bbb", "lw": 0.5})
    if end > 0:
        ax.set_xlim(0, end)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(rows, fontsize=7)
    ax.set_xlabel("time (µs)")
    ax.set_title("DES timeline over the whole run (busy intervals per track)")
    return to_svg(fig)


# ---- several runs -----------------------------------------------------------------------
@_literal_text
def overlay(names, series: dict, ylabel: str, title: str, log: bool | None = None,
            ylim0: bool = True) -> str:
    """Per-layer values of several runs in one plot: one line (with markers) per run over
    the layer axis ``names`` (or layer index when ``names`` is None). ``log``: None picks
    a log axis when the values span more than a factor of 30."""
    fig = _fig(12, 3.4)
    ax = fig.add_subplot()
    allv = np.concatenate([np.asarray(v, dtype=float) for v in series.values()]) \
        if series else np.zeros(0)
    if log is None:
        log = _wide_range(allv)
    for i, (name, vals) in enumerate(series.items()):
        v = np.asarray(vals, dtype=float)
        if log:
            v = np.where(v > 0, v, np.nan)
        ax.plot(np.arange(len(v)), v, marker="o", ms=2.5, lw=1.0, alpha=0.85,
                color=PALETTE[i % len(PALETTE)], label=name)
    if log:
        _log_axis(ax)
    elif ylim0:
        ax.set_ylim(0, None)
    ax.set_ylabel(ylabel)
    ax.set_title(title + (" (log axis)" if log else ""))
    ax.legend(fontsize=7)
    if names is not None:
        _layer_axis(ax, list(names))
    else:
        ax.set_xlabel("layer index")
    return to_svg(fig)


@_literal_text
def bars(labels, series: dict, ylabel: str, title: str, log: bool | None = False,
         color_by_label: bool = False) -> str:
    """Grouped bars: one group per label, one bar per series (``color_by_label``: one
    series, each bar in its label's colour, as the runs are elsewhere). ``log``: None picks
    a log axis when the values span more than a factor of 30."""
    fig = _fig(12, 3.0)
    ax = fig.add_subplot()
    x = np.arange(len(labels))
    k = max(len(series), 1)
    if log is None:
        log = _wide_range(np.concatenate([np.asarray(v, dtype=float)
                                          for v in series.values()]))
    for i, (name, vals) in enumerate(series.items()):
        col = ([PALETTE[j % len(PALETTE)] for j in range(len(labels))] if color_by_label
               else PALETTE[i % len(PALETTE)])
        ax.bar(x + (i - (k - 1) / 2) * 0.8 / k, vals, width=0.8 / k, color=col, label=name)
    if log:
        _log_axis(ax)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if len(labels) > 12:
        _layer_axis(ax, [str(s) for s in labels])
    else:
        ax.set_xticks(x)
        ax.set_xticklabels([str(s) for s in labels], fontsize=7, rotation=20, ha="right")
    if k > 1:
        ax.legend(fontsize=7)
    return to_svg(fig)


@_literal_text
def pareto_scatter(df, front, x: str, y: str, color: str, title: str,
                   labels: dict | None = None, line: bool = True) -> str:
    """All feasible points, coloured by ``color`` (numeric: colour bar; text: legend), the
    front's points ringed (and joined when ``line``)."""
    labels = labels or {}

    def lab(c):
        return labels.get(c, c)
    fig = _fig(10, 4.8)
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
    _log_axis(ax, "x")
    _log_axis(ax, "y")
    ax.set_xlabel(lab(x))
    ax.set_ylabel(lab(y))
    ax.set_title(title, fontsize=9)
    return to_svg(fig)


# ---- network memory ---------------------------------------------------------------------
def byte_unit(most: float) -> tuple[str, float]:
    """(label, factor) that shows byte values up to ``most`` in B, kB, MB or GB (SI, as the
    one formatter)."""
    for label, f in (("GB", 1e-9), ("MB", 1e-6), ("kB", 1e-3)):
        if most >= 1 / f:
            return label, f
    return "B", 1.0


def on_chip(tensors):
    """Boolean mask of the rows of a tensor table placed whole on an on-chip level (not
    ``dram``, not ``fused`` -- held as rows inside a depth-first group -- not empty)."""
    placed = tensors["placed"].astype(str)
    return tensors["placed"].notna() & ~placed.isin(["dram", "fused", ""])


def occupancy(tensors, n: int) -> dict:
    """{level: (tensor names, bytes matrix [tensor, layer])} of the tensors a tensor table
    (``tensors.csv``: tensor, bytes, placed, first, last) places on chip: each occupies its
    level from layer ``first`` (its producer; the network input, -1, from layer 0) to layer
    ``last`` (its last reader), both included; ``n`` layers. Levels in order of their
    first tensor; tensors in network order within a level."""
    on = tensors[on_chip(tensors)]
    out = {}
    for lvl, g in on.groupby(on["placed"].astype(str), sort=False):
        m = np.zeros((len(g), n))
        for i, (b, f, last) in enumerate(zip(g["bytes"], g["first"], g["last"])):
            a, z = max(int(f), 0), min(int(last), n - 1)
            if a <= z:
                m[i, a:z + 1] = float(b)
        out[str(lvl)] = (list(g["tensor"].astype(str)), m)
    return out


def _peak_columns(total, names, most: int):
    """(columns, labels) of a layer axis of ``len(names)`` layers shown as at most
    ``most`` bins of consecutive layers, each bin drawn at its layer of largest ``total``
    (its peak) and named as :func:`report.binned` names a bin ("conv7 +49")."""
    n = len(names)
    if n <= most:
        return np.arange(n), [str(s) for s in names]
    size = -(-n // most)
    cols, labels = [], []
    for a in range(0, n, size):
        z = min(a + size, n)
        cols.append(a + int(np.argmax(total[a:z])))
        labels.append(f"{names[a]} +{z - a - 1}" if z - a > 1 else str(names[a]))
    return np.array(cols), labels


@_literal_text
def memory_occupancy(names, tensors, capacities: dict | None = None,
                     most: int = 200) -> str:
    """On-chip occupancy over the network: one panel per on-chip level that holds a
    resident tensor, the tensors stacked band by band (each from its producer to its last
    reader, in network order), the level's capacity as a dashed line. ``names``: the
    layers in order; ``tensors``: the tensor table; ``capacities``: {level: bytes}. A
    network of more than ``most`` layers is shown in bins of consecutive layers, each at
    its layer of peak occupancy."""
    capacities = capacities or {}
    occ = occupancy(tensors, len(names))
    total = sum((m.sum(axis=0) for _, m in occ.values()), np.zeros(len(names)))
    cols, labels = _peak_columns(total, list(names), most)
    k = max(len(occ), 1)
    fig = _fig(12, 2.9 * k + 0.5)
    axes = fig.subplots(k, 1, squeeze=False)[:, 0]
    for li, (ax, (lvl, (tnames, m))) in enumerate(zip(axes, occ.items())):
        v = m[:, cols]
        cap = capacities.get(lvl) or 0
        peak = float(v.sum(axis=0).max(initial=0))
        # the axis shows the capacity unless the tensors would be a sliver under it
        # (peak below a quarter of it): then it is scaled to the data, and says so
        shown = bool(cap) and peak >= cap / 4
        unit, f = byte_unit(max(peak, cap) if shown else peak)
        bottom = np.zeros(len(cols))
        for i, name in enumerate(tnames):
            alive = np.flatnonzero(v[i] > 0)
            if not len(alive):
                continue   # alive only at layers a bin does not show
            lo, hi = bottom[alive] * f, (bottom[alive] + v[i, alive]) * f
            xs = np.repeat(alive, 2) + np.tile([-0.5, 0.5], len(alive))
            ax.fill(np.concatenate([xs, xs[::-1]]),
                    np.concatenate([np.repeat(hi, 2), np.repeat(lo, 2)[::-1]]),
                    facecolor=PALETTE[i % len(PALETTE)], edgecolor="white", lw=0.4,
                    label=name if len(tnames) <= 8 else None, gid=f"tensor-{li}-{i}")
            bottom[alive] += v[i, alive]
        if cap:
            ax.axhline(cap * f, color="k", ls="--", lw=1.0, gid=f"capacity-{li}",
                       label=f"{lvl} capacity ({fmt(cap, 'B')})" + (
                           "" if shown else ": above the axis"))
        ax.set_ylim(0, (max(peak, cap) if shown else peak) * f * 1.12 or 1.0)
        ax.set_ylabel(f"resident ({unit})", fontsize=8)
        share = f", {fmt(peak / cap, 'fraction')} of capacity" if cap else ", capacity unknown"
        ax.set_title(f"On-chip occupancy, {lvl}: {len(tnames)} resident activation tensors, "
                     f"peak {fmt(peak, 'B')}{share}"
                     + ("" if shown or not cap else " (axis scaled to the data)"), fontsize=9)
        ax.legend(fontsize=7, loc="upper right", ncol=3)
        _layer_axis(ax, labels)
        if li < k - 1:
            ax.tick_params(axis="x", which="both", labelbottom=False)
            ax.set_xlabel("")
    return to_svg(fig)


@_literal_text
def dram_saved(layers) -> str:
    """Per layer, the activation bytes read from and written to on-chip residency instead
    of DRAM (``onchip_read_bytes``, ``onchip_write_bytes``), stacked."""
    fig = _fig(12, 3.0)
    ax = fig.add_subplot()
    x = np.arange(len(layers))
    rd = layers["onchip_read_bytes"].fillna(0).to_numpy(dtype=float)
    wr = layers["onchip_write_bytes"].fillna(0).to_numpy(dtype=float)
    unit, f = byte_unit(float((rd + wr).max(initial=0)))
    ax.bar(x, rd * f, color=PALETTE[0], label="input read from chip")
    ax.bar(x, wr * f, bottom=rd * f, color=PALETTE[2], label="output kept on chip")
    ax.set_ylabel(f"DRAM traffic saved ({unit})")
    ax.set_title(f"DRAM traffic saved per layer (total {fmt((rd + wr).sum(), 'B')})")
    ax.legend(fontsize=7)
    _layer_axis(ax, list(layers["layer"]))
    return to_svg(fig)
