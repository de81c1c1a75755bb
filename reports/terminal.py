"""What the ``tilesim`` command prints: its column specs and its lines, as strings.

Each function takes tables (pandas DataFrames) and plain values (dicts of numbers and
strings, such as a ModelResult's ``summary()``) and returns text; the command only
prints it. Imports nothing of tilesim's other packages (DESIGN §1), nor pandas at import.
"""
from __future__ import annotations

from .tables import format_table, markdown_table


def _dash(fmt):
    """``fmt`` for a value that may be missing (None or NaN), which shows as "-"."""
    return lambda v: "-" if v is None or v != v else fmt(v)


def _table(markdown: bool):
    return markdown_table if markdown else format_table


_MB = lambda v: f"{v / 1e6:,.3f}"  # noqa: E731
_UJ = lambda v: f"{v / 1e6:,.2f}"  # noqa: E731

#: ``tilesim run`` on an accelerator: one row per layer
LAYER_SPEC = [
    ("layer", "layer", ""), ("kind", "kind", ""),
    ("macs", "MACs (M)", lambda v: f"{v / 1e6:,.2f}"),
    ("compute_cycles", "compute (cyc)", ",d"), ("stall_cycles", "stall (cyc)", ",d"),
    ("total_cycles", "total (cyc)", ",d"), ("latency_ms", "latency (ms)", ".4f"),
    ("utilization", "util (%)", lambda v: f"{100 * v:.1f}"),
    ("dram_read_bytes", "DRAM rd (MB)", _MB), ("dram_write_bytes", "DRAM wr (MB)", _MB),
    ("bound", "bound", ""),
]
#: the energy column, before "bound", when the run has energy
ENERGY_COLUMN = ("energy_pj", "energy (uJ)", _UJ)

#: ``tilesim run`` on a GPU preset (the GPU latency model): one row per layer
GPU_LAYER_SPEC = [
    ("layer", "layer", ""), ("kind", "kind", ""),
    ("macs", "MACs (M)", lambda v: f"{v / 1e6:,.2f}"),
    ("latency_ms", "latency (ms)", ".4f"),
    ("utilization", "util (%)", lambda v: f"{100 * v:.1f}"),
    ("dram_read_bytes", "DRAM rd (MB)", _MB), ("dram_write_bytes", "DRAM wr (MB)", _MB),
    ENERGY_COLUMN, ("bound", "bound", ""),
]

#: ``tilesim verify``: one row per MAC layer checked
VERIFY_SPEC = [
    ("layer", "layer", ""), ("dataflow", "dataflow", ""), ("exec_shape", "executor on", ""),
    ("tiles", "tiles", ",d"),
    ("exec_max_err", "exec max |err|", lambda v: f"{v:.3g}"),
    ("tiles_fit", "tiles fit", lambda v: "yes" if v else "NO"),
    ("pe_shape", "PE model on", ""),
    ("pe_max_err", "PE max |err|", _dash(lambda v: f"{v:.3g}")),
    ("pe_cycles", "PE cycles (last idx)", _dash(lambda v: f"{int(v):,d}")),
    ("analytic_cycles", "analytic (last idx)", _dash(lambda v: f"{int(v):,d}")),
    ("status", "status", ""),
]

#: ``tilesim verify --torch-device``: the reference kernels against PyTorch
TORCH_SPEC = [
    ("layer", "layer", ""), ("torch_shape", "torch on", ""), ("torch_dtype", "torch dtype", ""),
    ("torch_max_err", "torch max |err|", lambda v: "-" if v != v else f"{v:.3g}"),
    ("torch_ok", "torch", lambda v: "pass" if v else "FAIL"),
]

#: ``tilesim baseline``: one row per measured layer
BASELINE_SPEC = [
    ("layer", "layer", ""), ("kind", "kind", ""), ("latency_ms", "median (ms)", ".4f"),
    ("latency_ms_min", "min (ms)", ".4f"), ("precision_measured", "measured at", ""),
    ("note", "note", ""),
]

#: ``tilesim compare``: one row per design (compare_summary.json's ``designs``)
COMPARE_SPEC = [
    ("design", "design", ""), ("source", "source", ""),
    ("latency_ms", "latency (ms)", ".4f"),
    ("throughput_samples_per_s", "throughput (samples/s)", ",.1f"),
    ("energy_uj", "energy (uJ)", _dash(lambda v: f"{v:,.1f}")),
    ("speedup_vs_gpu_model", "speed vs GPU model (x)", ".3f"),
    ("energy_ratio_vs_gpu_model", "energy vs GPU model (x)", _dash(lambda v: f"{v:.3f}")),
]


# ---- tilesim run ------------------------------------------------------------------------
def run_header(s: dict, description: str, array: tuple | None) -> str:
    """The first line: model, batch, layers and where it runs. ``s`` a run's summary;
    ``array`` (rows, cols, count, dataflow) for an accelerator, None for a GPU preset
    (then ``description`` and the GPU model's precision are shown)."""
    where = (f"{description}; GPU model at {s['gpu_precision']}" if array is None else
             f"{array[0]}x{array[1]}x{array[2]} {array[3]}, {s['clock_hz'] / 1e6:g} MHz")
    return f"# {s['model']} (batch {s['batch']}, {s['layers']} layers) on {s['arch']}: {where}"


def layer_table(df, s: dict, markdown: bool = False) -> str:
    """The per-layer table of ``tilesim run`` with its TOTAL row (``s``: the summary)."""
    table = _table(markdown)
    if "gpu_precision" in s:
        total = {"layer": "TOTAL", **{k: s[k] for k in ("macs", "latency_ms", "utilization",
                                                         "dram_read_bytes", "dram_write_bytes")},
                 "energy_pj": s["energy_uj"] * 1e6}
        return table(df, GPU_LAYER_SPEC, total)
    total = {"layer": "TOTAL", **{k: s[k] for k in (
        "macs", "compute_cycles", "stall_cycles", "total_cycles", "latency_ms", "utilization",
        "dram_read_bytes", "dram_write_bytes")}}
    spec = LAYER_SPEC
    if "energy_uj" in s:
        spec = LAYER_SPEC[:-1] + [ENERGY_COLUMN] + LAYER_SPEC[-1:]
        total["energy_pj"] = s["energy_uj"] * 1e6
    return (table(df, spec, total) + "\nlayer cycles are last-cycle indices (SCALE-Sim "
            "convention); the total counts cycles (sum of layer total + 1)")


def run_totals(s: dict) -> str:
    """The total line and the energy lines of ``tilesim run`` (printed even with --quiet)."""
    if "gpu_precision" in s:
        p = s["gpu_precision"]
        return (f"total: {s['latency_ms']:.4f} ms modelled on {s['arch']} at {p} | "
                f"{s['macs'] / 1e9:.4f} GMACs | utilization {100 * s['utilization']:.2f} % of "
                f"the dense {p} peak | throughput {s['throughput_samples_per_s']:,.1f} "
                f"samples/s\nenergy: {s['energy_uj']:,.1f} uJ, source: {s['energy_source']}")
    out = [f"total: {s['total_cycles']:,} cycles = {s['latency_ms']:.4f} ms at "
           f"{s['clock_hz'] / 1e6:g} MHz | {s['macs'] / 1e9:.4f} GMACs | "
           f"utilization {100 * s['utilization']:.2f} % | "
           f"throughput {s['throughput_samples_per_s']:.2f} samples/s | DRAM read "
           f"{s['dram_read_bytes'] / 1e6:.3f} MB, write {s['dram_write_bytes'] / 1e6:.3f} MB"]
    if "energy_uj" in s:
        out.append(f"energy: {s['energy_uj']:,.1f} uJ ({s['tops_per_w']:.3f} TOPS/W, average "
                   f"{s['avg_power_w']:.3f} W) | area ~{s['area_sq_mm']:.2f} mm^2 | mappings "
                   f"searched for {s['mapping_objective']} | energy and area sources: "
                   "arch/technology.py")
        tables = dict.fromkeys(part for src in s["energy_sources"].values()
                               for part in src.split(" + "))
        out.append(f"energy source tables: {'; '.join(tables)} (per column: summary.json "
                   "energy_sources)")
    return "\n".join(out)


def des_line(s: dict, events: int, seconds: float) -> str:
    """Stalls by cause of a DES run (its summary ``s``), and how fast it simulated."""
    causes = ("input", "weight", "psum", "writeback", "contention", "other")
    return ("des stalls (cycles): " + ", ".join(f"{c} {s[f'stall_{c}_cycles']:,}" for c in causes)
            + f" | {events:,} events in {seconds:.2f} s, mapping included "
            f"({events / max(seconds, 1e-9):,.0f} events/s)")


def trace_line(events: int, path, limit: int, dropped: int, truncated: bool) -> str:
    note = (f"; truncated at the limit of {limit:,} events, {dropped:,} more dropped "
            "(raise --trace-limit)" if truncated else "")
    return (f"trace: wrote {events:,} events to {path} (Chrome trace format, opens in "
            f"Perfetto){note}")


# ---- tilesim verify ---------------------------------------------------------------------
def verify_header(model: str, batch: int, arch: str, array: tuple, precision: str, seed: int,
                  mapper: str, layers: int, skipped: int) -> str:
    """``array``: (rows, cols, count, dataflow); ``layers`` MAC layers checked."""
    return (f"# verify {model} (batch {batch}) on {arch}: {array[0]}x{array[1]}x{array[2]} "
            f"{array[3]}, {precision}, seed {seed}, mappings: {mapper}: {layers} MAC layers "
            f"({skipped} vector-unit layers not verified)")


def verify_table(df, markdown: bool = False) -> str:
    """The checks (one row per layer; ``status`` "pass" or "FAIL") and the verdict line."""
    passed = int((df["status"] == "pass").sum()) if len(df) else 0
    return "\n".join([
        _table(markdown)(df, VERIFY_SPEC),
        "errors are in output units (integer: LSBs, must be 0); cycles are last-cycle indices "
        "(SCALE-Sim convention); 'NxCxHxW->K' = run on a shrunk copy (see docs/outputs.md)",
        f"verify: {passed}/{len(df)} layers pass" + ("" if passed == len(df) else " - MISMATCH")])


def torch_table(df, device: str, markdown: bool = False) -> str:
    """The reference kernels against PyTorch (one row per layer, ``torch_ok``)."""
    n_ok = int(df["torch_ok"].sum()) if len(df) else 0
    return (_table(markdown)(df, TORCH_SPEC) + f"\ntorch ({device}): {n_ok}/{len(df)} layers "
            "agree with the reference kernels" + ("" if n_ok == len(df) else " - MISMATCH"))


# ---- tilesim map ------------------------------------------------------------------------
def map_text(layer: dict, model: str, arch: str, clock_hz: float, search: dict, nest: list,
             best: dict, energy: dict, sources: dict, runner_ups: list) -> str:
    """One layer's mapping: ``layer`` its dims (name, kind, N..Q, stride, groups);
    ``search`` (objective, strategy, evaluated, space_size, seconds, complete); ``nest``
    the loop-nest lines; ``best`` the cost of the best mapping (cycles, compute_cycles,
    bound, energy_pj, dram_read_bytes, dram_write_bytes); ``energy`` its pJ per
    ``*_energy_pj`` term and ``sources`` their tables; ``runner_ups`` [(mapping summary,
    cycles, energy_pj, DRAM bytes)], best first."""
    l, out = layer, []
    out.append(f"# layer {l['name']} ({l['kind']}: N={l['N']} C={l['C']} H={l['H']} W={l['W']} "
               f"K={l['K']} R={l['R']} S={l['S']} P={l['P']} Q={l['Q']}, stride "
               f"{l['stride'][0]}, groups {l['groups']}) of {model} on {arch}")
    sr = search
    out.append(f"# searched for {sr['objective']} ({sr['strategy']}): {sr['evaluated']:,} "
               f"of {sr['space_size']:,} candidate mappings scored in "
               f"{sr['seconds'] * 1e3:.1f} ms" + ("" if sr["complete"] else " (budget reached)"))
    out += nest
    b = best
    out.append(f"cost: {b['cycles']:,} cycles ({b['cycles'] / clock_hz * 1e3:.4f} ms, "
               f"{b['bound']}-bound, compute {b['compute_cycles'] + 1:,}), energy "
               f"{b['energy_pj'] / 1e6:,.3f} uJ, DRAM read {b['dram_read_bytes']:,} B, write "
               f"{b['dram_write_bytes']:,} B")
    out.append("energy by term:")
    for k, v in sorted(energy.items(), key=lambda kv: -kv[1]):
        if v:
            out.append(f"  {k[:-len('_energy_pj')]:34s} {v / 1e6:>12,.3f} uJ  "
                       f"[{sources.get(k, '')}]")
    if runner_ups:
        key = {"latency": lambda c, e, t: c, "energy": lambda c, e, t: e,
               "edp": lambda c, e, t: c * e, "traffic": lambda c, e, t: t}[sr["objective"]]
        out.append(f"runner-ups (next best under {sr['objective']}):")
        out.append(f"  {'#':>2}  {'mapping':58s} {'cycles':>12} {'energy (uJ)':>12} "
                   f"{'vs best':>8}")
        best_key = key(b["cycles"], b["energy_pj"], b["dram_read_bytes"] + b["dram_write_bytes"])
        for i, (summary, cyc, e_pj, traffic) in enumerate(runner_ups, 2):
            d = key(cyc, e_pj, traffic) / best_key - 1
            out.append(f"  {i:>2}  {summary:58s} {cyc:>12,} {e_pj / 1e6:>12,.3f} "
                       f"{100 * d:>+7.2f}%")
    return "\n".join(out)


# ---- tilesim baseline, compare, list, sweep ----------------------------------------------
def baseline_text(df, m: dict) -> str:
    """A measurement's table; ``m``: model, batch, torch_version, device_name, precision,
    timer, repeats, warmup, device."""
    return "\n".join(
        [f"# {m['model']} (batch {m['batch']}) measured with PyTorch {m['torch_version']} on "
         f"{m['device_name']}, requested {m['precision']}, timer {m['timer']}, median of "
         f"{m['repeats']} runs after {m['warmup']} warm-up"]
        + (["# this is a CPU measurement, not a GPU one"] if m["device"] == "cpu" else [])
        + [format_table(df, BASELINE_SPEC)])


def compare_text(df, s: dict, gpu: str, accelerator_source: str, quiet: bool = False) -> str:
    """``tilesim compare``: per-layer latency of every design (``df``: compare.csv's long
    table) unless ``quiet``, the totals per design and the GPU model's error (``s``:
    compare_summary.json)."""
    import pandas as pd
    out = [f"# {s['model']} (batch {s['batch']}): {len(s['designs'])} designs; GPU model of "
           f"{s['gpu']} at {s['gpu_precision']}, fusion: {s['gpu_model_fusion']}"]
    if not quiet:
        wide = df.pivot_table(index="layer", columns="design", values="latency_ms",
                              sort=False).reset_index()
        fmt = _dash(lambda v: f"{v:.4f}")   # "-": not measured
        out.append(format_table(wide, [("layer", "layer", "")] + [
            (d["design"], f"{d['design']} (ms)", fmt) for d in s["designs"]]))
    tot = pd.DataFrame(s["designs"]).fillna({"energy_uj": float("nan")})
    out.append(format_table(tot, COMPARE_SPEC))
    e = s["gpu_model_error"]
    out.append(f"energy sources: accelerators {accelerator_source}; GPU model {gpu}: TDP x "
               "modelled time (an upper bound)"
               + ("; measurement: not measured" if e is not None else ""))
    if e is not None:
        if e["mape_pct"] is None:
            out.append("GPU model vs measurement: no layer in common")
        else:
            r2 = "n/a" if e["r2"] is None else f"{e['r2']:.3f}"
            out.append(f"GPU model vs measurement ({e['measured_device_name']}, measured at "
                       f"{e['measured_precision']}): per-layer MAPE {e['mape_pct']:.1f} % over "
                       f"{e['layers_compared']} layers (worst {e['worst_layer']}), R^2 {r2}; "
                       f"whole model {e['model_latency_error_pct']:+.1f} %")
        if e["measured_device"] != "cuda":
            out.append("note: the measurement is of a CPU, not of the GPU modelled; its error "
                       "figures say nothing about the GPU model's accuracy")
    return "\n".join(out)


def list_text(archs: list, gpus: list, models: list) -> str:
    """``tilesim list``: ``archs`` [(name, description)], ``gpus`` [(name, description,
    precisions)], ``models`` [(name, layers, macs, params)] at batch 1."""
    out = ["architectures (presets):"] + [f"  {n:18s} {d}" for n, d in archs]
    out.append("GPU presets (tilesim run --arch GPU --precision P; tilesim compare --gpu GPU):")
    out += [f"  {n:18s} {d}; precisions {', '.join(p)}" for n, d, p in gpus]
    out.append("models (zoo):")
    out += [f"  {n:18s} {k:4d} layers, {macs / 1e9:8.3f} GMACs, {par / 1e6:8.3f} M params "
            "(batch 1)" for n, k, macs, par in models]
    out.append("also: --arch PATH.yaml | PATH.cfg (SCALE-Sim), --model PATH.csv (SCALE-Sim "
               "topology) | PATH.yaml (layer table) | PATH.onnx | PATH.py:FACTORY (PyTorch, "
               "with --input-shape)")
    return "\n".join(out)


def sweep_start_line(name: str, designs: int, models: int, rows: int, executor: str,
                     out) -> str:
    return (f"# sweep {name}: {designs:,} design points x {models} model(s) = {rows:,} rows "
            f"on {executor}; store {out}/results.sqlite")


def sweep_done_text(df, m: dict, seconds: float, out) -> str:
    """After a sweep: rows feasible and not (``df``: results), computed and resumed
    (``m``: sweep.json's metadata), and the files written to ``out``."""
    ok = int((df["status"] == "ok").sum()) if len(df) else 0
    return (f"sweep {m['name']}: {m['rows']:,} rows ({m['designs']:,} design points), "
            f"{ok:,} feasible, {m['rows'] - ok:,} infeasible; computed {m['computed']:,}, "
            f"resumed {m['resumed']:,} from the store, in {seconds:.1f} s "
            f"({m['computed'] / max(seconds, 1e-9):.2f} rows/s)\n"
            f"wrote {out}/results.csv, {out}/sweep.json, {out}/base_arch.yaml "
            f"(store {out}/results.sqlite)")
