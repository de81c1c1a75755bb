"""Reports: result tables + plain metadata -> sections -> self-contained HTML or Markdown.

Never imports sim or mapper (DESIGN §1): a run is its ``layers.csv`` and ``summary.json``
(plus optional ``tensors.csv``, ``trace.json``, ``compare.csv``, ``compare_summary.json``);
a sweep is its ``results.csv`` and ``sweep.json``. :func:`load_dir` reads such a folder;
the façade adds the architecture's numbers the roofline and the memory plot need
(``roof``, ``capacities``) and calls :func:`build`.
"""
from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path

from . import plots
from .pareto import pareto
from .tables import is_number
from .units import cell, fmt

LABELS = {"latency_ms": "latency (ms)", "energy_uj": "energy (µJ)", "area_sq_mm": "area (mm²)",
          "edp_uj_ms": "EDP (µJ·ms)", "utilization": "utilisation (0-1)",
          "throughput_samples_per_s": "throughput (samples/s)", "tops_per_w": "TOPS/W",
          "avg_power_w": "power (W)", "pes": "PEs", "onchip_bytes": "on-chip (bytes)",
          "dram_gb_per_s": "DRAM (GB/s)", "clock_mhz": "clock (MHz)", "top1": "top-1 (%)",
          "edp": "EDP (µJ·ms)", "power_w": "power (W)"}


@dataclass
class Section:
    title: str
    items: list = field(default_factory=list)   # (kind, payload): cards|svg|table|text


@dataclass
class RunData:
    """One run folder: its tables and metadata."""
    name: str
    summary: dict
    layers: object                       # DataFrame
    trace: dict | None = None
    roof: dict = field(default_factory=dict)  # peak_ops_per_s, dram_bytes_per_s (or None)
    tensors: object = None               # DataFrame of tensors.csv (None: the run has none)
    capacities: dict = field(default_factory=dict)  # on-chip level -> size in bytes


def _read_json(p: Path):
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{p}: not valid JSON ({e}). Fix: write the folder again with "
                         "tilesim, or remove the file") from None


def _read_csv(p: Path):
    import pandas as pd
    try:
        return pd.read_csv(p)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ValueError(f"{p}: not a readable CSV ({str(e).splitlines()[0]}). Fix: write the "
                         "folder again with tilesim") from None


#: what a report needs of each table: (columns that must be there, number columns that
#: must hold a number in every row; in a sweep, in every feasible row)
NEEDS = {
    "layers.csv": (("layer", "kind"), ("macs", "compute_cycles", "stall_cycles", "total_cycles",
                                       "latency_ms", "utilization", "dram_read_bytes",
                                       "dram_write_bytes")),
    "results.csv": (("design", "model", "batch", "status"), ()),
    "compare.csv": (("layer", "design", "source"), ("latency_ms",)),
    "codesign results.csv": (("design", "network", "status"), ()),
    "tensors.csv": (("tensor", "placed", "reason"), ("bytes", "first", "last", "readers")),
}
#: summary.json keys a report reads as numbers (when present)
SUMMARY_NUMBERS = ("latency_ms", "throughput_samples_per_s", "utilization", "energy_uj",
                   "tops_per_w", "avg_power_w", "area_sq_mm", "dram_read_bytes",
                   "dram_write_bytes", "macs", "clock_hz", "total_cycles", "batch",
                   "peak_macs_per_cycle", "dram_saved_bytes", "performed_macs",
                   "sparse_layers")
FIX = "write the folder again with tilesim (run --out, sweep --out or compare --out)"


def _bad(p: Path, what: str) -> ValueError:
    return ValueError(f"{p}: {what}. Fix: {FIX}")


def check_table(df, p: Path, needs=None):
    """``df`` (read from ``p``) as a report reads it: the columns :data:`NEEDS` names are
    there; every number column (by its name's unit, ``units.unit_of``) holds numbers that
    are finite and not negative; the required ones hold one in every row (a sweep's: in
    every feasible row). A ValueError naming the file, the column and the row."""
    import numpy as np
    import pandas as pd

    from .units import unit_of
    cols, required = needs or NEEDS[p.name]
    missing = [c for c in (*cols, *required) if c not in df.columns]
    if missing:
        raise _bad(p, f"no column {missing[0]!r} (a report needs "
                   + ", ".join(dict.fromkeys((*cols, *required))) + ")")
    rows = df
    if p.name == "results.csv":
        rows = df[df["status"].astype(str) == "ok"]
        required = [c for c in ("latency_ms", "energy_uj", "total_cycles") if c in df.columns]
    for c in df.columns:
        if unit_of(str(c)) is None:
            continue
        col = rows[c]
        num = pd.to_numeric(col, errors="coerce")
        text = col[num.isna() & col.notna()]
        if len(text):
            i = text.index[0]
            raise _bad(p, f"column {c!r}, row {i + 2}: {str(text.iloc[0])!r} is not a number")
        v = num.to_numpy(dtype=float)
        for test, why in ((np.isinf(v), "is not finite"), (v < 0, "is negative"),
                          (np.isnan(v) & (c in required), "is empty (NaN)")):
            if test.any():
                i = int(np.flatnonzero(test)[0])
                raise _bad(p, f"column {c!r}, row {int(rows.index[i]) + 2}: {col.iloc[i]!r} "
                           + why)
        if p.name != "results.csv":
            df[c] = num
    return df


def check_tensors(df, p: Path):
    """A tensors.csv as a report reads it (:func:`check_table`, then): ``bytes`` and
    ``readers`` whole numbers >= 0, ``first`` and ``last`` layer indices >= -1 (-1: the
    network input, before the first layer) with ``first <= last``."""
    import numpy as np
    import pandas as pd
    df = check_table(df, p)
    for c, lo in (("bytes", 0), ("readers", 0), ("first", -1), ("last", -1)):
        v = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(v) | (v < lo) | (v != np.round(v))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise _bad(p, f"column {c!r}, row {i + 2}: {df[c].iloc[i]!r} is not a whole "
                       f"number >= {lo}")
        df[c] = v.astype(np.int64)
    bad = np.flatnonzero(df["first"].to_numpy() > df["last"].to_numpy())
    if len(bad):
        raise _bad(p, f"row {int(bad[0]) + 2}: first {df['first'].iloc[bad[0]]} is after "
                   f"last {df['last'].iloc[bad[0]]}")
    return df


def check_summary(s, p: Path) -> dict:
    """A summary.json as a report reads it: a mapping whose numbers (:data:`SUMMARY_NUMBERS`)
    are finite and not negative."""
    import math
    if s is None:
        return {}
    if not isinstance(s, dict):
        raise _bad(p, "the top level is not a mapping of keys")
    for k in SUMMARY_NUMBERS:
        v = s.get(k)
        if v is None and k in s and k not in ("latency_ms", "energy_uj", "dram_read_bytes",
                                              "dram_write_bytes"):   # added up: never null
            continue
        if k in s and (isinstance(v, bool) or not isinstance(v, (int, float))
                       or not math.isfinite(v) or v < 0):
            raise _bad(p, f"key {k!r}: {v!r} is not a finite number >= 0")
    return s


def load_dir(path) -> dict:
    """The tables and metadata of an output folder (a run, a sweep or a compare),
    complete and checked: its ``manifest.json`` (written last by tilesim) must list every
    file read, each table must hold what a report needs (:func:`check_table`), and each
    file must match its size and sha256 in the manifest. Files the manifest does not list
    (left over from an earlier run into the same folder) are not read. A ValueError with
    the file, the column and the fix otherwise."""
    from .io import read_manifest, verify_manifest
    d = Path(path)
    if not d.is_dir():
        raise FileNotFoundError(2, "no such folder", str(d))
    if not any((d / n).is_file() for n in NEEDS if " " not in n):
        raise FileNotFoundError(2, "no layers.csv, results.csv or compare.csv in the folder "
                                "(make one with tilesim run --out, sweep --out or compare)",
                                str(d))
    listed = read_manifest(d)
    got = {"dir": str(d), "name": d.name}

    def json_of(name):
        return _read_json(d / name) if name in listed else None

    def csv_of(name):
        return check_table(_read_csv(d / name), d / name)
    if "layers.csv" in listed:
        got["run"] = RunData(d.name, check_summary(json_of("summary.json"), d / "summary.json"),
                             csv_of("layers.csv"), json_of("trace.json"))
        if "tensors.csv" in listed:
            got["run"].tensors = check_tensors(_read_csv(d / "tensors.csv"), d / "tensors.csv")
    if "codesign.json" in listed and "results.csv" in listed:
        got["codesign"] = (check_table(_read_csv(d / "results.csv"), d / "results.csv",
                                       NEEDS["codesign results.csv"]),
                           json_of("codesign.json"))
    elif "results.csv" in listed:
        got["sweep"] = (csv_of("results.csv"), json_of("sweep.json") or {})
    if "compare.csv" in listed:
        got["compare"] = (csv_of("compare.csv"), json_of("compare_summary.json") or {})
    if len(got) == 2:
        raise ValueError(f"{d / 'manifest.json'}: lists no layers.csv, results.csv or "
                         f"compare.csv. Fix: {FIX}")
    verify_manifest(d, listed)
    return got


# ---- formatting -------------------------------------------------------------------------
#: table headers where a cell carries its own unit (LABELS name the plots' axes)
TABLE_LABELS = {**LABELS, "latency_ms": "latency", "energy_uj": "energy",
                "utilization": "utilisation", "area_sq_mm": "area", "avg_power_w": "power",
                "onchip_bytes": "on-chip", "macs": "MACs", "energy_pj": "energy", "net": "network",
                "top1": "top-1", "power_w": "power"}


def _table(df, cols=None, headers=None, limit=None, units: dict | None = None) -> dict:
    """A table item: every number through the one formatter (reports/units.py), by its
    column's unit (``units``: column -> unit where the name does not say it)."""
    cols = [c for c in (cols or list(df.columns)) if c in df.columns]
    sub = df[cols] if limit is None else df[cols].head(limit)
    units = units or {}

    def one(v, c):
        return fmt(v, units[c]) if c in units else cell(v, c)
    return {"head": [(headers or TABLE_LABELS).get(c, TABLE_LABELS.get(c, c)) for c in cols],
            "rows": [[one(v, c) for v, c in zip(r, cols)] for r in sub.itertuples(index=False)],
            "more": 0 if limit is None else max(0, len(df) - limit)}


def _utilisation_table(L) -> dict:
    """Utilisation of the MAC layers: lowest, median, MAC-weighted mean, highest, and the
    layers at each end."""
    import pandas as pd
    mac = L[L["macs"] > 0] if "macs" in L.columns else L.iloc[:0]
    if not len(mac) or "utilization" not in mac.columns:
        return _table(pd.DataFrame({"note": ["no MAC layer"]}))
    u = mac["utilization"].astype(float)
    lo, hi = mac.loc[u.idxmin()], mac.loc[u.idxmax()]
    rows = [("MAC layers", len(mac), ""), ("lowest", lo["utilization"], lo["layer"]),
            ("median", u.median(), ""),
            ("MAC-weighted mean", float((u * mac["macs"]).sum() / mac["macs"].sum()), ""),
            ("highest", hi["utilization"], hi["layer"])]
    return {"head": ["utilisation", "value", "layer"],
            "rows": [[k, fmt(v, "count") if k == "MAC layers" else fmt(v, "fraction"), str(n)]
                     for k, v, n in rows], "more": 0}


def _roofline_tables(L, peak: float, bw: float | None) -> list:
    """The roof (peak ops/s, DRAM bytes/s, ridge point) and each MAC layer's operational
    intensity, attainable and achieved ops/s (2 ops per MAC, DRAM bytes read + written)."""
    import pandas as pd
    roof = pd.DataFrame({"quantity": ["peak compute", "DRAM bandwidth", "ridge point"],
                         "value": [fmt(peak, "ops/s"), fmt(bw, "B/s") if bw else "unlimited",
                                   fmt(peak / bw, "ops/B") if bw else "-"]})
    mac = L[L["macs"] > 0]
    ops = 2 * mac["macs"].astype(float)
    byts = (mac["dram_read_bytes"] + mac["dram_write_bytes"]).astype(float)
    oi = ops / byts.where(byts > 0)
    attain = oi * bw if bw else oi * 0 + peak
    attain = attain.where(attain < peak, peak).fillna(peak)
    achieved = ops / (mac["latency_ms"].astype(float) * 1e-3)
    per = pd.DataFrame({"layer": mac["layer"], "intensity": oi, "attainable": attain,
                        "achieved": achieved, "of attainable": achieved / attain})
    return [_table(roof), _table(per, units={"intensity": "ops/B", "attainable": "ops/s",
                                             "achieved": "ops/s",
                                             "of attainable": "fraction"})]


#: per-layer plots and tables of a network with more layers than this show it in bins of
#: consecutive layers (plots) or its slowest layers (tables), and say so; layers.csv keeps all
MAX_LAYERS = 200


def binned(L, most: int = MAX_LAYERS):
    """``L`` (a layer table) as at most ``most`` rows, each the sum of a run of consecutive
    layers, named after the first with the count ("conv7 +49"): cycle columns keep the
    last-index convention (a bin of layers taking t1+1, t2+1, ... cycles reads
    sum(t+1) - 1), fractions (utilisation, busy_*) are weighted by each layer's cycles, the
    other number columns summed. ``L`` itself when it is short enough."""
    import numpy as np
    import pandas as pd

    from .units import unit_of
    n = len(L)
    if n <= most:
        return L
    size = -(-n // most)
    g = np.arange(n) // size
    span = (L["total_cycles"].astype(float) + 1) if "total_cycles" in L.columns else None
    out = {}
    firsts = L.groupby(g, sort=True).head(1)
    counts = np.bincount(g)
    out["layer"] = [f"{name} +{c - 1}" if c > 1 else str(name)
                    for name, c in zip(firsts["layer"].astype(str), counts)]
    for c in L.columns:
        if c == "layer":
            continue
        unit = unit_of(str(c))
        if unit is None:
            out[c] = firsts[c].to_numpy()
            continue
        v = pd.to_numeric(L[c], errors="coerce").astype(float)
        if unit == "fraction" and span is not None:
            w = (v * span).groupby(g).sum(min_count=1) / span.groupby(g).sum()
            out[c] = w.to_numpy()
        elif c in ("compute_cycles", "total_cycles"):
            out[c] = ((v + 1).groupby(g).sum() - 1).to_numpy()
        else:
            out[c] = v.groupby(g).sum(min_count=1).to_numpy()
    return pd.DataFrame(out)


def slowest(L, most: int = MAX_LAYERS):
    """The ``most`` layers of ``L`` with the longest latency, in network order (``L`` itself
    when it is short enough)."""
    if len(L) <= most or "latency_ms" not in L.columns:
        return L
    return L.loc[sorted(L["latency_ms"].astype(float).nlargest(most).index)]


def _sampling_note(L) -> str | None:
    n = len(L)
    if n <= MAX_LAYERS:
        return None
    size = -(-n // MAX_LAYERS)
    return (f"This network has {n:,} layers: the per-layer plots show them in "
            f"{-(-n // size):,} bins of {size} consecutive layers (each named after its first "
            f"layer, '+k' the layers after it; times, bytes and energies summed, utilisation "
            f"weighted by time), and the per-layer tables the {MAX_LAYERS} slowest layers in "
            "network order; layers.csv holds every layer.")


def _cards(summary: dict) -> list:
    s = summary
    c = [("model", f"{s.get('model', '?')} (batch {s.get('batch', '?')})"),
         ("architecture", str(s.get("arch", "?"))), ("fidelity", str(s.get("fidelity", "")))]
    if "latency_ms" in s:
        c.append(("latency", fmt(s['latency_ms'], "ms")))
    if "throughput_samples_per_s" in s:
        c.append(("throughput", fmt(s['throughput_samples_per_s'], "samples/s")))
    if "utilization" in s:
        c.append(("utilisation", fmt(s['utilization'], "fraction")))
    if "energy_uj" in s:
        src = s.get("energy_source") or (  # GPU runs: TDP x time; accelerators: per term
            "access counts x technology tables; each term's source in energy_sources"
            if s.get("energy_sources") else None)
        c.append(("energy", fmt(s['energy_uj'], "uJ") + (f" ({src})" if src else "")))
    if "tops_per_w" in s:
        c.append(("efficiency", fmt(s['tops_per_w'], "TOPS/W")))
    if "avg_power_w" in s:
        c.append(("average power", fmt(s['avg_power_w'], "W")))
    if "area_sq_mm" in s:
        c.append(("area", "~" + fmt(s['area_sq_mm'], "mm2")))
    if "dram_read_bytes" in s:
        c.append(("DRAM traffic", fmt(s['dram_read_bytes'] + s['dram_write_bytes'], "B")))
    if s.get("dram_saved_bytes"):
        c.append(("DRAM traffic saved", fmt(s["dram_saved_bytes"], "B")
                  + f" (fusion {s.get('fusion', '?')})"))
    if "macs" in s:
        c.append(("work", fmt(s['macs'], "MACs") + " MACs"))
    if s.get("sparse_layers") or s.get("performed_macs", s.get("macs")) != s.get("macs"):
        done, macs = s.get("performed_macs", s.get("macs", 0)), s.get("macs", 0)
        c.append(("sparsity", f"{s.get('sparse_layers', 0)} sparse MAC layers; "
                  + fmt(done, "MACs") + " MACs performed ("
                  + fmt((macs - done) / macs if macs else 0.0, "fraction") + " skipped)"))
    return c


# ---- sections ---------------------------------------------------------------------------
def _sources_text(s: dict) -> str | None:
    src = s.get("energy_sources") or {}
    return ("Energy sources: " + "; ".join(f"{k}: {v}" for k, v in sorted(src.items()))
            if src else None)


def _stall_share_text(L) -> str | None:
    causes = plots.stall_columns(L)
    if not causes or L[causes].fillna(0).to_numpy().sum() <= 0:
        return None
    tot = {c[len("stall_"):-len("_cycles")]: float(L[c].fillna(0).sum()) for c in causes}
    whole = float(L["total_cycles"].sum()) or 1.0
    return ("Share of the run's cycles: compute "
            f"{100 * float(L['compute_cycles'].sum()) / whole:.1f} %; " + "; ".join(
                f"{k} {100 * v / whole:.1f} %" for k, v in tot.items() if v > 0) + ".")


def _roof_text(rf: dict) -> str | None:
    if not rf.get("peak_ops_per_s"):
        return None
    bw = rf.get("dram_bytes_per_s")
    return (f"Peak {fmt(rf['peak_ops_per_s'], 'ops/s')} (2 ops per MAC); DRAM "
            + (fmt(bw, "B/s") if bw else "unlimited")
            + "; one point per MAC layer (DRAM bytes read + written).")


def _title(run: RunData) -> str:
    return f"{run.summary.get('model', run.name)} on {run.summary.get('arch', '?')}"


def run_sections(run: RunData) -> list[Section]:
    s, full = run.summary, run.layers
    out = [Section(_title(run), [("cards", _cards(s))])]
    if _sampling_note(full):
        out[0].items.append(("text", _sampling_note(full)))
    L = binned(full)
    clock = float(s.get("clock_hz") or 1.0)
    lat = Section("Per-layer latency and energy")
    lat.items.append(("svg", plots.latency_breakdown(L, clock)))
    if plots.energy_levels(L.columns):
        lat.items.append(("svg", plots.energy_breakdown(L)))
        if _sources_text(s):
            lat.items.append(("text", _sources_text(s)))
    out.append(lat)
    if _stall_share_text(L):
        out.append(Section("Stalls by cause", [("svg", plots.stall_by_cause(L, clock)),
                                               ("text", _stall_share_text(L))]))
    out.append(Section("Utilisation per layer", [("svg", plots.utilization(
        L, s.get("utilization"))), ("table", _utilisation_table(full))]))
    if run.roof.get("peak_ops_per_s"):
        rf = run.roof
        out.append(Section("Roofline", [
            ("svg", plots.roofline(L, rf["peak_ops_per_s"], rf.get("dram_bytes_per_s"))),
            ("text", _roof_text(rf)),
            *[("table", t) for t in _roofline_tables(slowest(full), rf["peak_ops_per_s"],
                                                     rf.get("dram_bytes_per_s"))]]))
    out += run_details(run)
    return out


def run_summary(run: RunData, suffix: str) -> Section:
    """One run's cards and notes (energy sources, stall shares, roof) without its plots,
    for a report whose plots overlay several runs."""
    s, L = run.summary, run.layers
    notes = [t for t in (_sources_text(s) if plots.energy_levels(L.columns) else None,
                         _stall_share_text(L), _roof_text(run.roof)) if t]
    sec = Section(_title(run) + suffix, [("cards", _cards(s))] + [("text", t) for t in notes])
    sec.items.append(("table", _utilisation_table(L)))
    if run.roof.get("peak_ops_per_s"):
        sec.items += [("table", t) for t in _roofline_tables(
            slowest(L), run.roof["peak_ops_per_s"], run.roof.get("dram_bytes_per_s"))]
    return sec


def run_details(run: RunData, suffix: str = "") -> list[Section]:
    """The DES timeline (when the run has a trace) and the layer table of one run."""
    s, L = run.summary, run.layers
    clock = float(s.get("clock_hz") or 1.0)
    out = []
    if run.trace:
        od = run.trace.get("otherData", {})
        note = (f"{od.get('events', '?'):,} events" if isinstance(od.get("events"), int)
                else "") + (" (truncated at the trace limit)" if od.get("truncated") else "")
        out.append(Section("DES timeline" + suffix, [
            ("svg", plots.timeline(run.trace, L, clock if "clock_hz" in s else None)),
            ("text", f"From trace.json: {note}. The layers row comes from the layer "
                     "table and spans the whole run.")]))
    mem = memory_section(run, suffix)
    if mem is not None:
        out.append(mem)
    cols = ["layer", "kind", "macs", "total_cycles", "latency_ms", "utilization",
            "dram_read_bytes", "dram_write_bytes", "energy_pj", "bound", "dataflow"]
    heads = {**TABLE_LABELS, "total_cycles": "cycles (last index)",
             "dram_read_bytes": "DRAM read", "dram_write_bytes": "DRAM write"}
    sec = Section("Layers" + suffix, [("table", _table(slowest(L), cols, heads))])
    if len(L) > MAX_LAYERS:
        sec.items.insert(0, ("text", f"The {MAX_LAYERS} slowest of {len(L):,} layers, in "
                                     "network order (layers.csv holds every layer)."))
    out.append(sec)
    return out


def memory_section(run: RunData, suffix: str = "") -> Section | None:
    """Network-level memory of one run (its tensors table): where the activation tensors
    live, on-chip occupancy per level over the network tensor by tensor with each level's
    capacity, and the DRAM traffic saved. One sentence when every activation goes through
    DRAM; None when the run has no tensors table (a GPU run, a folder from before it)."""
    import pandas as pd
    T, L, s = run.tensors, run.layers, run.summary
    if T is None or not len(T):
        return None
    fusion = str(s.get("fusion", "?"))
    placed = T["placed"].astype(str)
    on = T[plots.on_chip(T)]
    fused = T[placed == "fused"]
    one = len(fused) == 1
    rows_note = (f" {len(fused)} more ({fmt(float(fused['bytes'].sum()), 'B')}) never "
                 f"{'leaves' if one else 'leave'} the chip but {'is' if one else 'are'} held "
                 "only as rows, strip by strip, inside depth-first groups (placed fused; "
                 "each group reserves its rows at the activation level: docs/fusion.md)."
                 if len(fused) else "")
    if not len(on) and len(fused):
        return Section("Memory" + suffix, [("text", f"Fusion {fusion}: no activation tensor "
                                                    "stays on chip whole." + rows_note)])
    if not len(on):
        why = "fusion none" if fusion == "none" else (
            f"fusion {fusion}: no activation tensor stays on chip; tensors.csv gives each "
            "one's reason")
        return Section("Memory" + suffix, [("text", "Every activation goes through DRAM "
                                                    f"({why}).")])
    names = list(L["layer"].astype(str))
    saved = s.get("dram_saved_bytes")
    if saved is None and {"onchip_read_bytes", "onchip_write_bytes"} <= set(L.columns):
        saved = float(L["onchip_read_bytes"].sum() + L["onchip_write_bytes"].sum())
    traffic = (float(L["dram_read_bytes"].sum() + L["dram_write_bytes"].sum())
               if "dram_read_bytes" in L.columns else None)
    sec = Section("Memory" + suffix, [("text", (
        f"Fusion {fusion}: {len(on)} of {len(T)} activation tensors "
        f"({fmt(float(on['bytes'].sum()), 'B')} of {fmt(float(T['bytes'].sum()), 'B')}) stay "
        "on chip from the layer that writes them to the last that reads them; the others go "
        "through DRAM. DRAM traffic saved: "
        + (fmt(saved, "B") if saved is not None else "-")
        + " (activation bytes read from and written to on-chip residency instead of DRAM: "
        "onchip_read_bytes + onchip_write_bytes, summed over the layers)"
        + (f"; the run's DRAM traffic: {fmt(traffic, 'B')}." if traffic is not None
           else ".") + rows_note)),
        ("svg", plots.memory_occupancy(names, T, run.capacities, MAX_LAYERS))])
    if len(names) > MAX_LAYERS:
        sec.items.append(("text", "The occupancy plot shows the layers in bins of consecutive "
                          "layers, each at its layer of peak occupancy."))
    if {"onchip_read_bytes", "onchip_write_bytes"} <= set(L.columns) and saved:
        sec.items.append(("svg", plots.dram_saved(binned(L))))
    occ = plots.occupancy(T, len(names))
    rows = []
    for lvl, (tn, m) in occ.items():
        tot = m.sum(axis=0)
        j = int(tot.argmax()) if len(tot) else 0
        cap = run.capacities.get(lvl)
        rows.append({"level": lvl, "capacity": cap, "resident tensors": len(tn),
                     "resident bytes": float(m.max(axis=1).sum()),
                     "peak": float(tot.max(initial=0)),
                     "peak at layer": names[j] if names else "-",
                     "peak of capacity": float(tot.max(initial=0)) / cap if cap else None})
    sec.items.append(("table", _table(pd.DataFrame(rows), units={
        "capacity": "B", "resident tensors": "count", "resident bytes": "B", "peak": "B",
        "peak of capacity": "fraction"})))

    def layer_name(i):
        i = int(i)
        return "(before the first layer)" if i < 0 else names[i] if i < len(names) else str(i)
    tab = pd.DataFrame({"tensor": T["tensor"].astype(str), "bytes": T["bytes"],
                        "placed": placed, "from layer": T["first"].map(layer_name),
                        "to layer": T["last"].map(layer_name), "readers": T["readers"],
                        "reason": T["reason"].astype(str)})
    if len(tab) > MAX_LAYERS:
        sec.items.append(("text", f"The {MAX_LAYERS} largest of {len(tab):,} tensors, in "
                                  "network order (tensors.csv holds every tensor)."))
        tab = tab.loc[sorted(tab["bytes"].astype(float).nlargest(MAX_LAYERS).index)]
    sec.items.append(("table", _table(tab, units={"bytes": "B", "readers": "count"})))
    return sec


def design_comparison(runs: list[RunData]) -> Section:
    """Runs side by side: one column per run."""
    import pandas as pd
    keys = [("arch", "architecture"), ("model", "model"), ("batch", "batch"),
            ("latency_ms", "latency"), ("throughput_samples_per_s", "throughput"),
            ("utilization", "utilisation"), ("energy_uj", "energy"),
            ("tops_per_w", "efficiency"), ("avg_power_w", "power"),
            ("area_sq_mm", "area"), ("dram_read_bytes", "DRAM read"),
            ("dram_write_bytes", "DRAM write"), ("fusion", "fusion"),
            ("dram_saved_bytes", "DRAM traffic saved"),
            ("peak_macs_per_cycle", "peak MACs/cycle"), ("fidelity", "fidelity")]
    rows = [{"metric": lab, **{r.name: cell(r.summary.get(k), k) for r in runs}}
            for k, lab in keys
            if any(k in r.summary for r in runs)]
    sec = Section("Design comparison", [("table", _table(pd.DataFrame(rows)))])
    names = [r.name for r in runs]
    series = {"latency (ms)": [r.summary.get("latency_ms", 0) for r in runs]}
    sec.items.append(("svg", plots.bars(names, series, "latency (ms)", "Latency by design", log=None,
                                        color_by_label=True)))
    if all("energy_uj" in r.summary for r in runs):
        sec.items.append(("svg", plots.bars(names, {"energy (µJ)": [r.summary["energy_uj"]
                                                                   for r in runs]},
                                            "energy (µJ)", "Energy by design", log=None,
                                            color_by_label=True)))
    return sec


def overlay_sections(runs: list[RunData]) -> list[Section]:
    """Several runs in shared plots, one series per run: per-layer latency, energy and
    utilisation, time by cause, and one roofline."""
    import numpy as np
    from dataclasses import replace
    whole = runs
    runs = [replace(r, layers=binned(r.layers)) for r in runs]   # per-layer overlays
    names = [list(r.layers["layer"].astype(str)) for r in runs]
    same = all(n == names[0] for n in names)
    axis = names[0] if same else None
    label = {r.name: r.name for r in runs}
    sec = Section("Per-layer comparison (one series per run)", [(
        "text", "Per-layer latency, energy and utilisation, whole-run time by cause and the "
        "roofline of " + ", ".join(r.name for r in runs) + " (plots in the HTML report).")])
    if not same:
        sec.items.append(("text", "The runs have different layers: plotted by layer index."))

    def ms(r, col):
        return r.layers[col].to_numpy(dtype=float) / float(r.summary.get("clock_hz") or 1.0) * 1e3
    lat = {label[r.name]: r.layers["latency_ms"].to_numpy(dtype=float) for r in runs}
    unit, f = plots._time_unit(max(float(np.nanmax(v, initial=0)) for v in lat.values()))
    sec.items.append(("svg", plots.overlay(axis, {k: v * f for k, v in lat.items()},
                                           f"latency ({unit})", "Latency per layer")))
    if all("energy_pj" in r.layers.columns for r in runs):
        sec.items.append(("svg", plots.overlay(
            axis, {label[r.name]: r.layers["energy_pj"].to_numpy(dtype=float) * 1e-6
                   for r in runs}, "energy (µJ)", "Energy per layer")))
    if all("utilization" in r.layers.columns for r in runs):
        sec.items.append(("svg", plots.overlay(
            axis, {label[r.name]: r.layers["utilization"].to_numpy(dtype=float) * 100
                   for r in runs}, "PE utilisation (%)", "Utilisation per layer", log=False)))
    runs = whole   # whole-run totals and the roofline from every layer
    causes = ["compute"]
    for r in runs:
        causes += [c[len("stall_"):-len("_cycles")] for c in plots.stall_columns(r.layers)
                   if r.layers[c].fillna(0).sum() > 0]
    causes = list(dict.fromkeys(causes))
    split = {r.name: bool(plots.stall_columns(r.layers)) and
             r.layers[plots.stall_columns(r.layers)].fillna(0).to_numpy().sum() > 0
             for r in runs}
    if not all(split.values()):
        causes.append("memory stall (cause not split)")
    series = {}
    for r in runs:
        v = []
        for c in causes:
            if c == "compute":
                v.append(ms(r, "compute_cycles").sum())
            elif c.startswith("memory stall"):
                v.append(0.0 if split[r.name] else ms(r, "stall_cycles").sum())
            else:
                col = f"stall_{c}_cycles"
                v.append(ms(r, col).sum() if col in r.layers.columns else 0.0)
        series[label[r.name]] = v
    sec.items.append(("svg", plots.bars([c if c == "compute" or c.startswith("memory")
                                         else f"stall: {c}" for c in causes], series,
                                        "time (ms)", "Whole-run time by cause", log=None)))
    roofs = {label[r.name]: (r.layers, r.roof) for r in runs if r.roof.get("peak_ops_per_s")}
    if roofs:
        sec.items.append(("svg", plots.roofline_runs(roofs)))
    return [sec]


def compare_sections(df, summary: dict) -> list[Section]:
    """Accelerator vs GPU from a long table: layer, design, source, latency_ms, energy_uj."""
    need = {"layer", "design", "source", "latency_ms"}
    if not need <= set(df.columns):
        return [Section("Accelerator vs GPU", [("text", "compare.csv lacks columns "
                                                + ", ".join(sorted(need - set(df.columns))))])]
    df = df.copy()
    df["series"] = df["design"].astype(str) + " / " + df["source"].astype(str)
    metrics = [c for c in ("latency_ms", "energy_uj") if c in df.columns]
    designs = summary.get("designs") if summary else None
    if isinstance(designs, list) and designs and all(
            isinstance(d, dict) and {"design", "source", "latency_ms"} <= set(d) for d in designs):
        # compare_summary.json's totals: a measurement's whole-model time, not the sum of
        # its layers; each energy with its source
        keep = ("design", "source", "latency_ms", "latency_basis", "throughput_samples_per_s",
                "energy_uj", "energy_source")
        import pandas as pd
        tot = pd.DataFrame([{k: d.get(k) for k in keep if k in d} for d in designs])
        summary = {k: v for k, v in summary.items() if k != "designs"}
    else:
        tot = df.groupby(["design", "source"], sort=False)[metrics].sum(min_count=1).reset_index()
    sec = Section("Accelerator vs GPU", [("table", _table(
        tot, headers={**TABLE_LABELS, "latency_basis": "latency basis",
                      "energy_source": "energy source"}))])
    order = list(dict.fromkeys(df["layer"]))
    piv = df.pivot_table(index="layer", columns="series", values="latency_ms", sort=False)
    piv = piv.reindex(order)
    sec.items.append(("svg", plots.bars(order, {c: piv[c].fillna(0).to_numpy() for c in piv},
                                        "latency (ms)", "Latency per layer", log=True)))
    sec.items.append(("svg", plots.bars(list(tot["design"].astype(str) + " / " + tot["source"]),
                                        {"latency (ms)": tot["latency_ms"].to_numpy()},
                                        "latency (ms)", "Total latency")))
    flat = piv.reset_index()
    flat.columns = ["layer"] + [f"{c} latency" for c in piv.columns]
    sec.items.append(("table", _table(flat, units={c: "ms" for c in flat.columns[1:]})))
    if summary:
        rows = [(k, json.dumps(v) if isinstance(v, (dict, list)) else cell(v, k.split(".")[-1]))
                for k, v in _flatten(summary)]
        import pandas as pd
        sec.items.append(("table", _table(pd.DataFrame(rows, columns=["key", "value"]))))
    return [sec]


def _flatten(d, prefix=""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _flatten(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def sweep_sections(df, meta: dict, color: str | None = None,
                   objectives=("latency_ms", "energy_uj")) -> list[Section]:
    params = [p for p in meta.get("params", []) if p in df.columns]
    ok = df[df["status"] == "ok"] if "status" in df.columns else df
    bad = df[df["status"] != "ok"] if "status" in df.columns else df.iloc[:0]
    cards = [("sweep", str(meta.get("name", "?"))), ("design points", f"{df['design'].nunique():,}"),
             ("rows", f"{len(df):,}"), ("feasible", f"{len(ok):,}"),
             ("infeasible", f"{len(bad):,}"),
             ("models", ", ".join(map(str, dict.fromkeys(df["model"])))),
             ("objective", str(meta.get("settings", {}).get("objective", ""))),
             ("fidelity", str(meta.get("settings", {}).get("fidelity", "")))]
    out = [Section(f"Sweep {meta.get('name', '')}", [("cards", cards),
                                                    ("text", "Varied: " + ", ".join(params))])]
    color = color or ("area_sq_mm" if "area_sq_mm" in df.columns else objectives[0])
    if color not in df.columns:
        raise ValueError(f"cannot colour by {color!r}: no such column; use one of "
                         + ", ".join(map(str, df.columns)))
    objectives = tuple(objectives)
    front = pareto(df, objectives, by=["model", "batch"])
    x, y = objectives[:2]
    extra = "" if len(objectives) == 2 else " (front over " + ", ".join(
        LABELS.get(o, o) for o in objectives) + ")"
    for (model, batch), g in ok.groupby(["model", "batch"], sort=False):
        f = front[(front["model"] == model) & (front["batch"] == batch)]
        sec = Section(f"Pareto front: {model} (batch {batch})")
        sec.items.append(("svg", plots.pareto_scatter(
            g, f, x, y, color, f"{LABELS.get(y, y)} vs {LABELS.get(x, x)}, colour: "
            f"{LABELS.get(color, color)} ({len(f)} of {len(g)} on the front{extra})", LABELS,
            line=len(objectives) == 2)))
        cols = ["design", *params, *objectives, "area_sq_mm", "utilization", "tops_per_w"]
        cols = list(dict.fromkeys(cols))
        sec.items.append(("text", f"{len(f)} designs on the front (minimising "
                          + ", ".join(LABELS.get(o, o) for o in objectives) + "; ties kept):"))
        sec.items.append(("table", _table(f.sort_values(x), cols)))
        out.append(sec)
    if len(bad):
        import pandas as pd
        reasons = bad.groupby("reason").size().sort_values(ascending=False).head(10)
        out.append(Section("Infeasible design points", [("table", _table(pd.DataFrame(
            {"reason": reasons.index, "rows": reasons.to_numpy()})))]))
    return out


SEARCH_NAMES = {"joint": "joint search", "network_only": "best network, default hardware",
                "hardware_only": "best hardware, default network"}


def codesign_sections(df, meta: dict) -> list[Section]:
    """A co-design run (``df``: results.csv, every evaluated point of every search;
    ``meta``: codesign.json): the joint front with accuracy on the y axis, each front
    point's hardware and network, the single-sided optima against the joint front, and
    the answer of a --fix-arch / --fix-network run."""
    import pandas as pd
    objectives = list(meta.get("objectives", ["top1", "latency_ms"]))
    spec = meta.get("spec_dict", {})
    knobs = [k for k in [*spec.get("arch", {}), *spec.get("tie", {})] if k in df.columns]
    ok = df[(df["status"] == "ok") & df["feasible"].astype(bool)]
    joint = ok[ok["search"] == "joint"]
    front = joint[joint["on_front"].astype(bool)]
    cards = [("co-design", str(meta.get("name", "?"))),
             ("space", f"{meta['space']['points']:,} points"),
             ("architectures", f"{meta['space']['architectures']:,}"),
             ("networks", f"{meta['space']['networks']:,}"),
             ("search", str(meta.get("method", ""))),
             ("evaluated", f"{int((df['search'] == 'joint').sum()):,}"),
             ("front", f"{len(front):,} points"),
             ("constraints", ", ".join(meta.get("constraints", [])) or "none")]
    out = [Section(f"Co-design {meta.get('name', '')}", [
        ("cards", cards),
        ("text", "Architecture knobs: " + (", ".join(knobs) or "none (fixed)")
         + ". Networks: " + ", ".join(dict.fromkeys(df["network"])) + "."),
        ("text", "Accuracy: " + str(meta.get("accuracy_note", "")) + ". Each network's "
         "top-1 is its published ImageNet-1k accuracy; the table below cites the source of "
         "every one.")])]
    if len(joint):
        x2 = next((o for o in objectives if o not in ("top1", "latency_ms")), "energy_uj")
        sec = Section("Pareto front: accuracy against latency and "
                      + LABELS.get(x2, x2).split(" (")[0])
        sec.items.append(("svg", plots.pareto_scatter(
            joint, front, "latency_ms", "top1", "area_sq_mm" if "area_sq_mm" in joint else
            x2, f"top-1 vs latency, colour: area ({len(front)} of {len(joint)} feasible "
            "points on the front over " + ", ".join(objectives) + ")", LABELS, line=False)))
        sec.items.append(("svg", plots.pareto_scatter(
            joint, front, x2, "top1", "family", f"top-1 vs {LABELS.get(x2, x2)}, colour: "
            "network family", LABELS, line=False)))
        tied = set(spec.get("tie", {}))
        cols = ["net" if "net" in front.columns else "network",
                *[k for k in knobs if k not in tied], *objectives, "area_sq_mm", "power_w"]
        cols = [c for c in dict.fromkeys(cols) if c in front.columns]
        sec.items.append(("text", f"The {len(front)} points of the joint front, each with "
                          "its hardware (architecture knobs) and network, most accurate first:"))
        sec.items.append(("table", _table(front.sort_values(["top1", "latency_ms"],
                                                            ascending=[False, True]), cols)))
        out.append(sec)
    cmp = meta.get("single_sided")
    if cmp:
        sec = Section("Joint front against the single-sided optima")
        sides = df[(df["status"] == "ok") & df["feasible"].astype(bool)]
        from .pareto import pareto as _pareto
        obj_cols = objectives
        mx = [o for o in objectives if o == "top1"]
        parts = []
        for name in ("joint", "network_only", "hardware_only"):
            g = sides[sides["search"] == name]
            if len(g):
                f = _pareto(g, obj_cols, maximize=mx, feasible_only=False).copy()
                f["front of"] = SEARCH_NAMES[name]
                parts.append(f)
        allf = pd.concat(parts) if parts else sides.iloc[:0]
        if len(allf):
            sec.items.append(("svg", plots.pareto_scatter(
                allf, allf[allf["front of"] == SEARCH_NAMES["joint"]], "latency_ms", "top1",
                "front of", "the three fronts: top-1 vs latency (joint front ringed)", LABELS,
                line=False)))
        rows = pd.DataFrame([
            {"front": SEARCH_NAMES[n], "points": cmp[n]["points"],
             "hypervolume": round(cmp[n]["hypervolume"], 4),
             "weakly dominated by the joint front": (
                 f"{cmp[n]['weakly_dominated_by_joint']} of {cmp[n]['points']}"
                 if n != "joint" else "-")} for n in ("joint", "network_only", "hardware_only")])
        sec.items.append(("table", _table(rows)))
        sec.items.append(("text", f"Default hardware: {meta.get('default_hardware')}; default "
                          f"network: {meta.get('default_network')}. Hypervolume of the "
                          "objectives min-max normalised over the "
                          f"{cmp['normalised_over']} feasible evaluations of the three searches "
                          f"(top-1 flipped to be minimised), reference point "
                          f"{cmp['reference_point']:g} in each; larger is better. The joint "
                          "front dominates both single-sided optima: "
                          + ("yes" if cmp["joint_dominates_both"] else "no") + "."))
        out.append(sec)
    ans = meta.get("answer")
    if ans:
        text = (f"{ans['question']}: " + (f"{ans['network']}" + (
            " on " + ", ".join(f"{k} = {v}" for k, v in ans["arch"].items())
            if ans["arch"] else "") + f" (top-1 {ans['top1']:g} %, latency "
            f"{ans['latency_ms']:.3g} ms, area {ans['area_sq_mm']:.3g} mm²)"
            if ans["found"] else "none of the evaluated points"))
        out.append(Section("Answer", [("text", text)]))
    src = df.drop_duplicates("network")[["network", "top1", "top1_precision", "top1_source"]]
    out.append(Section("Accuracy sources", [("table", _table(src))]))
    return out


def build(title: str, runs=(), sweeps=(), compares=(), color: str | None = None,
          objectives=("latency_ms", "energy_uj"), codesigns=()) -> list[Section]:
    """All sections: runs (and their side-by-side comparison when several), sweeps
    ((df, meta) pairs), compares ((df, summary) pairs)."""
    secs: list[Section] = []
    runs = list(runs)
    if len(runs) > 1:      # overlaid in shared plots, then each run's timeline and table
        secs.append(design_comparison(runs))
        secs += overlay_sections(runs)
        for r in runs:
            secs += [run_summary(r, f": {r.name}"), *run_details(r, f": {r.name}")]
    elif runs:
        secs += run_sections(runs[0])
    for df, meta in sweeps:
        secs += sweep_sections(df, meta, color, objectives)
    for df, summ in compares:
        secs += compare_sections(df, summ)
    for df, meta in codesigns:
        secs += codesign_sections(df, meta)
    return secs


# ---- rendering --------------------------------------------------------------------------
CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px;color:#222;
max-width:1240px}
h1{font-size:1.6em}h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:120px;background:#fafafa}
.card .k{font-size:.75em;color:#666;text-transform:uppercase}.card .v{font-size:1.1em;font-weight:600}
table{border-collapse:collapse;font-size:.8em;margin:8px 0}
td,th{border:1px solid #ddd;padding:3px 6px;overflow-wrap:break-word}
th{background:#f0f0f0;font-weight:600;vertical-align:bottom}td.n{text-align:right;white-space:nowrap}
.tw{overflow-x:auto;max-width:100%}figure{margin:8px 0}svg{max-width:100%;height:auto}
p{overflow-wrap:anywhere}p.meta{color:#666;font-size:.8em}
"""


def _isnum(s: str) -> bool:
    """A number, with or without its unit label ("1.98 ms"): right-aligned."""
    return is_number(s)


def _breakable(h: str) -> str:
    """A header that may wrap after a dot or before a bracket (``compute.arrays[0].rows``),
    so a wide table fits the page without breaking words."""
    return h.replace(".", ".<wbr>").replace("[", "<wbr>[")


def to_html(sections: list[Section], title: str, meta: str = "") -> str:
    e = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{e(title)}</title>", f"<style>{CSS}</style></head><body>",
             f"<h1>{e(title)}</h1>"]
    if meta:
        parts.append(f'<p class="meta">{e(meta)}</p>')
    for s in sections:
        parts.append(f"<section><h2>{e(s.title)}</h2>")
        for kind, p in s.items:
            if kind == "cards":
                parts.append('<div class="cards">' + "".join(
                    f'<div class="card"><div class="k">{e(k)}</div><div class="v">{e(v)}</div></div>'
                    for k, v in p) + "</div>")
            elif kind == "svg":
                parts.append(f"<figure>{p}</figure>")
            elif kind == "text":
                parts.append(f"<p>{e(p)}</p>")
            elif kind == "table":
                head = "".join(f"<th>{_breakable(e(h))}</th>" for h in p["head"])
                body = "".join("<tr>" + "".join(
                    f'<td class="n">{e(c)}</td>' if _isnum(c) else f"<td>{e(c)}</td>"
                    for c in r) + "</tr>" for r in p["rows"])
                parts.append(f'<div class="tw"><table><thead><tr>{head}</tr></thead>'
                             f"<tbody>{body}</tbody></table></div>")
                if p["more"]:
                    parts.append(f"<p>... {p['more']} more rows</p>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def to_markdown(sections: list[Section], title: str, meta: str = "") -> str:
    out = [f"# {title}", ""]
    if meta:
        out += [f"_{meta}_", ""]
    for s in sections:
        out += [f"## {s.title}", ""]
        for kind, p in s.items:
            if kind == "cards":
                out += [f"- **{k}**: {v}" for k, v in p] + [""]
            elif kind == "text":
                out += [p, ""]
            elif kind == "table":
                esc = [[c.replace("|", "\\|") for c in r] for r in p["rows"]]
                num = [all(_isnum(r[i]) for r in esc if r[i]) and any(r[i] for r in esc)
                       for i in range(len(p["head"]))]
                out.append("| " + " | ".join(h.replace("|", "\\|") for h in p["head"]) + " |")
                out.append("|" + "|".join("---:" if n else "---" for n in num) + "|")
                out += ["| " + " | ".join(r) + " |" for r in esc]
                if p["more"]:
                    out.append(f"\n... {p['more']} more rows")
                out.append("")
            # plots (svg) are in the HTML report only
    return "\n".join(out).rstrip() + "\n"
