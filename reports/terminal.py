"""What the ``tilesim`` command prints: its column specs and its lines, as strings.

Each function takes tables (pandas DataFrames) and plain values (dicts of numbers and
strings, such as a ModelResult's ``summary()``) and returns text; the command only
prints it. Imports nothing of tilesim's other packages (DESIGN §1), nor pandas at import.
"""
from __future__ import annotations

import shutil
import textwrap

from .tables import format_table, markdown_table, truncate, wrap
from .units import cell, fmt


def terminal_width() -> int:
    """Characters per line: ``$COLUMNS`` if set, else the terminal's width, else 80 (stdout
    not a terminal); at least 40."""
    return max(40, shutil.get_terminal_size(fallback=(80, 24)).columns)


def _table(markdown: bool):
    return markdown_table if markdown else format_table


#: short headers of result-table columns on the terminal (others: the column name);
#: every cell carries its unit
HEADERS = {"layer": "layer", "kind": "kind", "macs": "MACs", "vector_ops": "vector ops",
           "compute_cycles": "compute cyc", "stall_cycles": "stall cyc",
           "total_cycles": "cycles", "latency_ms": "latency", "utilization": "util",
           "dram_read_bytes": "DRAM rd", "dram_write_bytes": "DRAM wr", "energy_pj": "energy",
           "bound": "bound", "dataflow": "dataflow"}
#: ``tilesim run``: the columns shown by default (those the run has), chosen to fit 80
#: characters; ``--wide`` shows :data:`WIDE_COLUMNS`, ``--columns`` any layers.csv columns
DEFAULT_COLUMNS = ("layer", "kind", "macs", "latency_ms", "utilization", "dram_read_bytes",
                   "energy_pj", "bound")
WIDE_COLUMNS = ("layer", "kind", "macs", "compute_cycles", "stall_cycles", "total_cycles",
                "latency_ms", "utilization", "dram_read_bytes", "dram_write_bytes",
                "energy_pj", "bound")


def column_spec(columns) -> list:
    """A table spec of result-table ``columns``: header and the one formatter per cell."""
    return [(c, HEADERS.get(c, c), (lambda c: lambda v: cell(v, c))(c)) for c in columns]


def unknown_columns(asked, valid) -> str | None:
    """None when every column ``asked`` is one of ``valid``, else the message naming them."""
    bad = [c for c in asked if c not in valid]
    if not bad:
        return None
    return (f"--columns: no column {', '.join(map(repr, bad))}; valid columns (layers.csv): "
            + ", ".join(valid))


#: ``tilesim verify``: one row per MAC layer checked (``--wide``: all of them; by default
#: :data:`VERIFY_DEFAULT`, fitted to the terminal's width)
_exact = lambda v: fmt(v, "count", exact=True)  # noqa: E731
VERIFY_SPEC = [
    ("layer", "layer", ""), ("dataflow", "dataflow", ""), ("exec_shape", "executor on", ""),
    ("tiles", "tiles", _exact),
    ("exec_max_err", "exec max |err|", lambda v: fmt(v, "number")),
    ("tiles_fit", "tiles fit", lambda v: "yes" if v else "NO"),
    ("pe_shape", "PE model on", ""),
    ("pe_max_err", "PE max |err|", lambda v: fmt(v, "number")),
    ("pe_cycles", "PE cycles (last idx)", _exact),
    ("analytic_cycles", "analytic (last idx)", _exact),
    ("exec_bytes", "executor B moved", _exact),
    ("model_bytes", "cost model B", _exact),
    ("bytes_diff_pct", "B diff %", lambda v: f"{v:+.2f}" if v else "0"),
    ("density_bytes", "at densities B", _exact),
    ("density_diff_pct", "vs densities %", lambda v: f"{v:+.2f}" if v else "0"),
    ("status", "status", ""),
]
VERIFY_DEFAULT = ("layer", "status", "tiles", "exec_max_err", "tiles_fit", "pe_max_err",
                  "pe_cycles", "analytic_cycles")
_VERIFY_SHORT = {"exec_max_err": "exec err", "tiles_fit": "fits", "pe_max_err": "PE err",
                 "pe_cycles": "PE cycles", "analytic_cycles": "analytic"}

#: ``tilesim verify --torch-device``: the reference kernels against PyTorch
TORCH_SPEC = [
    ("layer", "layer", ""), ("torch_shape", "torch on", ""), ("torch_dtype", "torch dtype", ""),
    ("torch_max_err", "torch max |err|", lambda v: fmt(v, "number")),
    ("torch_ok", "torch", lambda v: "pass" if v else "FAIL"),
]

#: ``tilesim baseline``: one row per measured layer
BASELINE_SPEC = [
    ("layer", "layer", ""), ("kind", "kind", ""), ("latency_ms", "median", "unit:ms"),
    ("latency_ms_min", "min", "unit:ms"), ("precision_measured", "measured at", ""),
    ("note", "note", ""),
]

#: ``tilesim compare``: one row per design (compare_summary.json's ``designs``)
COMPARE_SPEC = [
    ("design", "design", ""), ("source", "source", ""),
    ("latency_ms", "latency", "unit:ms"),
    ("throughput_samples_per_s", "samples/s", lambda v: fmt(v, "number")),
    ("energy_uj", "energy", "unit:uJ"),
    ("speedup_vs_gpu_model", "speedup", "unit:x"),            # against the GPU model
    ("energy_ratio_vs_gpu_model", "energy ratio", "unit:x"),  # (said under the table)
]


# ---- tilesim run ------------------------------------------------------------------------
def run_header(s: dict, description: str, array: tuple | None, width: int | None = None) -> str:
    """The first line: model, batch, layers and where it runs. ``s`` a run's summary;
    ``array`` (rows, cols, count, dataflow[, preload]) for an accelerator, None for a GPU
    preset (then ``description`` and the GPU model's precision are shown)."""
    where = (f"{description}; GPU model at {s['gpu_precision']}" if array is None else
             f"{_array_text(array)}, {fmt(s['clock_hz'], 'Hz')}")
    return wrap(f"# {s['model']} (batch {s['batch']}, {s['layers']} layers) on {s['arch']}: "
                f"{where}", width)


def _array_text(array: tuple) -> str:
    """``256x256x1 ws (overlapped preload)``: (rows, cols, count, dataflow[, preload]);
    the preload is left out when None (an os-only array)."""
    pre = array[4] if len(array) > 4 else None
    return (f"{array[0]}x{array[1]}x{array[2]} {array[3]}"
            + (f" ({pre} preload)" if pre else ""))


def layer_table(df, s: dict, markdown: bool = False, columns=None, width: int | None = None,
                wide: bool = False) -> str:
    """The per-layer table of ``tilesim run`` with its TOTAL row (``s``: the summary):
    ``columns`` (layers.csv names; default :data:`DEFAULT_COLUMNS`, ``wide``:
    :data:`WIDE_COLUMNS`), fitted to ``width`` characters unless ``wide`` or ``markdown``."""
    if columns is None:
        columns = [c for c in (WIDE_COLUMNS if wide else DEFAULT_COLUMNS) if c in df.columns]
    total = {"layer": "TOTAL", **{k: s[k] for k in (
        "macs", "vector_ops", "compute_cycles", "stall_cycles", "total_cycles", "latency_ms",
        "utilization", "dram_read_bytes", "dram_write_bytes") if k in s}}
    if "energy_uj" in s:
        total["energy_pj"] = s["energy_uj"] * 1e6
    spec = column_spec(columns)
    if markdown:
        text = markdown_table(df, spec, total)
    else:
        text = format_table(df, spec, total, None if wide else width,
                            hint="; --columns or --wide to choose")
    if {"compute_cycles", "total_cycles"} & set(columns):
        text += "\n" + wrap("layer cycles are last-cycle indices (SCALE-Sim convention); the "
                            "total counts cycles (sum of layer total + 1)", width)
    return text


def quiet_line(s: dict) -> str:
    """``tilesim run --quiet``: the one line of totals."""
    parts = [f"total: {fmt(s['latency_ms'], 'ms')}"]
    if "gpu_precision" not in s:
        parts[0] += f" ({fmt(s['total_cycles'], 'cycles', exact=True)} cycles)"
    parts += [f"{fmt(s['macs'], 'MACs', exact=True)} MACs",
              f"util {fmt(s['utilization'], 'fraction')}"]
    if "energy_uj" in s:
        parts.append(f"energy {fmt(s['energy_uj'], 'uJ')}")
    parts.append(f"DRAM {fmt(s['dram_read_bytes'] + s['dram_write_bytes'], 'B')}")
    return ", ".join(parts)


def run_totals(s: dict, width: int | None = None) -> str:
    """The total line and the energy lines of ``tilesim run``, wrapped to ``width``."""
    if "gpu_precision" in s:
        p = s["gpu_precision"]
        return wrap(
            f"total: {fmt(s['latency_ms'], 'ms')} modelled on {s['arch']} at {p} | "
            f"{fmt(s['macs'], 'MACs')} MACs | utilization {fmt(s['utilization'], 'fraction')} "
            f"of the dense {p} peak | throughput "
            f"{fmt(s['throughput_samples_per_s'], 'samples/s')}\nenergy: "
            f"{fmt(s['energy_uj'], 'uJ')}, source: {s['energy_source']}", width)
    out = [f"total: {fmt(s['total_cycles'], 'cycles', exact=True)} cycles = "
           f"{fmt(s['latency_ms'], 'ms')} at {fmt(s['clock_hz'], 'Hz')} | "
           f"{fmt(s['macs'], 'MACs')} MACs | utilization {fmt(s['utilization'], 'fraction')} | "
           f"throughput {fmt(s['throughput_samples_per_s'], 'samples/s')} | DRAM read "
           f"{fmt(s['dram_read_bytes'], 'B')}, write {fmt(s['dram_write_bytes'], 'B')}"]
    if "fusion" in s:
        line = (f"schedule: {s['fusion']} | activation bytes kept on chip instead of DRAM "
                f"{fmt(s.get('dram_saved_bytes', 0), 'B')}")
        if s.get("steady_state"):
            line += (f" | steady state (weights resident): first inference "
                     f"{fmt(s['latency_cold_ms'], 'ms')}")
        out.append(line)
    if s.get("sparse_layers") or s.get("performed_macs", s["macs"]) < s["macs"]:
        skipped = s["macs"] - s["performed_macs"]
        out.append(f"sparsity: {s['sparse_layers']} sparse MAC layers | MACs performed "
                   f"{fmt(s['performed_macs'], 'MACs')} of {fmt(s['macs'], 'MACs')} "
                   f"({fmt(skipped / s['macs'] if s['macs'] else 0.0, 'fraction')} skipped) | "
                   "formats and zeros: arch.yaml (docs/sparsity.md)")
    if "energy_uj" in s:
        out.append(f"energy: {fmt(s['energy_uj'], 'uJ')} ({fmt(s['tops_per_w'], 'TOPS/W')}, "
                   f"average {fmt(s['avg_power_w'], 'W')}) | area "
                   f"~{fmt(s['area_sq_mm'], 'mm2')} | mappings searched for "
                   f"{s['mapping_objective']} | energy and area sources: arch/technology.py")
        tables = dict.fromkeys(part for src in s["energy_sources"].values()
                               for part in src.split(" + "))
        out.append(f"energy source tables: {'; '.join(tables)} (per column: summary.json "
                   "energy_sources)")
    return wrap("\n".join(out), width)


def des_line(s: dict, events: int, seconds: float, width: int | None = None) -> str:
    """Stalls by cause of a DES run (its summary ``s``), and how fast it simulated."""
    causes = ("input", "weight", "psum", "writeback", "contention", "other")
    return wrap("des stalls (cycles): " + ", ".join(
        f"{c} {fmt(s[f'stall_{c}_cycles'], 'cycles', exact=True)}" for c in causes)
        + f" | {events:,} events in {seconds:.2f} s, mapping included "
        f"({events / max(seconds, 1e-9):,.0f} events/s)", width)


def trace_line(events: int, path, limit: int, dropped: int, truncated: bool,
               width: int | None = None) -> str:
    note = (f"; truncated at the limit of {limit:,} events, {dropped:,} more dropped "
            "(raise --trace-limit)" if truncated else "")
    return wrap(f"trace: wrote {events:,} events to {path} (Chrome trace format, opens in "
                f"Perfetto){note}", width)


# ---- tilesim verify ---------------------------------------------------------------------
def verify_header(model: str, batch: int, arch: str, array: tuple, precision: str, seed: int,
                  mapper: str, layers: int, skipped: int, width: int | None = None) -> str:
    """``array``: (rows, cols, count, dataflow[, preload]); ``layers`` MAC layers checked."""
    return wrap(f"# verify {model} (batch {batch}) on {arch}: {_array_text(array)}, "
                f"{precision}, seed {seed}, mappings: {mapper}: {layers} MAC layers "
                f"({skipped} vector-unit layers not verified)", width)


def verify_table(df, markdown: bool = False, width: int | None = None,
                 wide: bool = False) -> str:
    """The checks (one row per layer; ``status`` "pass" or "FAIL") and the verdict line;
    on the terminal the :data:`VERIFY_DEFAULT` columns fitted to ``width`` unless ``wide``."""
    passed = int((df["status"] == "pass").sum()) if len(df) else 0
    if markdown or wide:
        table = _table(markdown)(df, VERIFY_SPEC)
    else:
        by = {c: (c, _VERIFY_SHORT.get(c, h), f) for c, h, f in VERIFY_SPEC}
        table = format_table(df, [by[c] for c in VERIFY_DEFAULT], width=width,
                             hint="; --wide shows all")
    return "\n".join([
        table,
        wrap("errors are in output units (integer: LSBs, must be 0); cycles are last-cycle "
             "indices (SCALE-Sim convention); 'NxCxHxW->K' = run on a shrunk copy (see "
             "docs/outputs.md); status also needs the bytes the executor moves to equal "
             "the cost model's on the same operands" + (
                 "" if markdown or wide else "; --wide adds the dataflow, the shapes run "
                 "and the bytes"), None if markdown else width),
        f"verify: {passed}/{len(df)} layers pass" + ("" if passed == len(df) else " - MISMATCH")])


def torch_table(df, device: str, markdown: bool = False, width: int | None = None) -> str:
    """The reference kernels against PyTorch (one row per layer, ``torch_ok``)."""
    n_ok = int(df["torch_ok"].sum()) if len(df) else 0
    table = markdown_table(df, TORCH_SPEC) if markdown else format_table(df, TORCH_SPEC,
                                                                         width=width)
    return (table + f"\ntorch ({device}): {n_ok}/{len(df)} layers "
            "agree with the reference kernels" + ("" if n_ok == len(df) else " - MISMATCH"))


# ---- tilesim map ------------------------------------------------------------------------
def _wrap_code(line: str, width: int | None) -> str:
    """A loop-nest line fitted to ``width``: its ``# comment`` wrapped under itself."""
    if not width or len(line) <= width:
        return line
    i = line.find("  # ")
    if i < 0:
        return wrap(line, width, indent="    ")
    code, comment = line[:i + 2], line[i + 4:]
    if len(code) > width - 24:   # the comment goes on lines of its own, under the code
        lead = " " * (len(line) - len(line.lstrip()) + 4)
        return "\n".join([wrap(code.rstrip(), width, indent="    ")] + textwrap.wrap(
            comment, width, initial_indent=lead + "# ", subsequent_indent=lead + "# "))
    return "\n".join(textwrap.wrap(comment, width, initial_indent=code + "# ",
                                   subsequent_indent=" " * len(code) + "# "))


def map_text(layer: dict, model: str, arch: str, clock_hz: float, search: dict, nest: list,
             best: dict, energy: dict, sources: dict, runner_ups: list,
             width: int | None = None) -> str:
    """One layer's mapping: ``layer`` its dims (name, kind, N..Q, stride, groups);
    ``search`` (objective, strategy, evaluated, space_size, seconds, complete); ``nest``
    the loop-nest lines; ``best`` the cost of the best mapping (cycles, compute_cycles,
    bound, energy_pj, dram_read_bytes, dram_write_bytes); ``energy`` its pJ per
    ``*_energy_pj`` term and ``sources`` their tables; ``runner_ups`` [(mapping summary,
    cycles, energy_pj, DRAM bytes)], best first. Lines fit ``width`` (None: as they come)."""
    l, out = layer, []
    out.append(wrap(f"# layer {l['name']} ({l['kind']}: N={l['N']} C={l['C']} H={l['H']} "
                    f"W={l['W']} K={l['K']} R={l['R']} S={l['S']} P={l['P']} Q={l['Q']}, stride "
                    f"{l['stride'][0]}, groups {l['groups']}) of {model} on {arch}", width))
    sr = search
    out.append(wrap(f"# searched for {sr['objective']} ({sr['strategy']}): {sr['evaluated']:,} "
                    f"of {sr['space_size']:,} candidate mappings scored in "
                    f"{fmt(sr['seconds'], 's')}" + ("" if sr["complete"] else " (budget reached)"),
                    width))
    out += [_wrap_code(x, width) for x in nest]
    b = best
    out.append(wrap(f"cost: {fmt(b['cycles'], 'cycles', exact=True)} cycles "
                    f"({fmt(b['cycles'] / clock_hz, 's')}, {b['bound']}-bound, compute "
                    f"{fmt(b['compute_cycles'] + 1, 'cycles', exact=True)}), energy "
                    f"{fmt(b['energy_pj'], 'pJ')}, DRAM read {fmt(b['dram_read_bytes'], 'B')}, "
                    f"write {fmt(b['dram_write_bytes'], 'B')}", width))
    out.append("energy by term:")
    terms = [(k, v) for k, v in sorted(energy.items(), key=lambda kv: -kv[1]) if v]
    tw = max((len(k) - len("_energy_pj") for k, _ in terms), default=0)
    for k, v in terms:
        out.append(wrap(f"  {k[:-len('_energy_pj')]:{tw}s}  {fmt(v, 'pJ'):>9}  "
                        f"[{sources.get(k, '')}]", width, indent=" " * (tw + 13)))
    if runner_ups:
        key = {"latency": lambda c, e, t: c, "energy": lambda c, e, t: e,
               "edp": lambda c, e, t: c * e, "traffic": lambda c, e, t: t}[sr["objective"]]
        out.append(f"runner-ups (next best under {sr['objective']}):")
        best_key = key(b["cycles"], b["energy_pj"], b["dram_read_bytes"] + b["dram_write_bytes"])
        rows = [(str(i), summary, fmt(cyc, "cycles", exact=True), fmt(e_pj, "pJ"),
                 f"{100 * (key(cyc, e_pj, traffic) / best_key - 1):+.2f}%")
                for i, (summary, cyc, e_pj, traffic) in enumerate(runner_ups, 2)]
        head = ("#", "mapping", "cycles", "energy", "vs best")
        w = [max(len(r[j]) for r in [head, *rows]) for j in range(5)]
        if width:   # the mapping column takes what is left (at least 20)
            w[1] = max(20, min(w[1], width - 2 - sum(w) + w[1] - 8))
        for r in [head, *rows]:
            out.append("  " + "  ".join(
                (truncate(c, w[j]).ljust(w[j]) if j == 1 else c.rjust(w[j]))
                for j, c in enumerate(r)).rstrip())
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


def compare_text(df, s: dict, gpu: str, accelerator_source: str, quiet: bool = False,
                 width: int | None = None) -> str:
    """``tilesim compare``: per-layer latency of every design (``df``: compare.csv's long
    table) unless ``quiet``, the totals per design and the GPU model's error (``s``:
    compare_summary.json); fitted to ``width`` characters (None: as wide as it comes)."""
    import pandas as pd
    out = [wrap(f"# {s['model']} (batch {s['batch']}): {len(s['designs'])} designs; GPU model of "
           f"{s['gpu']} at {s['gpu_precision']}, fusion: {s['gpu_model_fusion']}", width)]
    if not quiet:
        wide = df.pivot_table(index="layer", columns="design", values="latency_ms",
                              sort=False).reset_index()
        out.append(format_table(wide, [("layer", "layer", "")] + [   # "-": not measured
            (d["design"], d["design"], "unit:ms") for d in s["designs"]], width=width))
    tot = pd.DataFrame(s["designs"]).fillna({"energy_uj": float("nan")})
    out.append(format_table(tot, COMPARE_SPEC, width=width))
    out.append("speedup: the GPU model's latency / the design's; energy ratio: the design's "
               "energy / the GPU model's")
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
    return wrap("\n".join(out), width)


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


def codesign_start_line(name: str, points: int, archs: int, nets: int, method: str,
                        evaluations: int, executor: str, out) -> str:
    return (f"# codesign {name}: {points:,} points ({archs:,} architectures x {nets} "
            f"networks); {method} search of up to {evaluations:,} evaluations on {executor}; "
            f"store {out}/results.sqlite")


#: headers of the co-design columns (every cell carries its unit)
CODESIGN_HEADERS = {"top1": "top-1", "latency_ms": "latency", "energy_uj": "energy",
                    "area_sq_mm": "area", "edp": "EDP (µJ·ms)", "power_w": "power"}


def codesign_table(df, knobs, objectives, width: int | None = None,
                   markdown: bool = False) -> str:
    """Points of a co-design run: the network (``net``: family and knob values), the objective
    columns with units, then the architecture knobs (key paths, ``compute.`` left out of
    the header; ``compute.arrays[0].`` too)."""
    import re
    cols = ["net", *[o for o in objectives if o in df.columns],
            *[k for k in knobs if k in df.columns]]
    heads = {"net": "network", **CODESIGN_HEADERS}
    spec = [(c, heads.get(c, re.sub(r"^compute\.arrays\[0\]\.", "", str(c))),
             (lambda c: lambda v: cell(v, c))(c)) for c in cols]
    return markdown_table(df, spec) if markdown else format_table(df, spec, width=width)


def codesign_comparison_lines(cmp: dict, default_hardware: str, default_network: str) -> list:
    """The single-sided optima against the joint front, with the numbers of
    codesign.json's ``single_sided`` (what tests/test_codesign.py checks against the store)."""
    j, n, h = cmp["joint"], cmp["network_only"], cmp["hardware_only"]
    yes = "yes" if cmp["joint_dominates_both"] else "no"
    return [f"single-sided optima vs the joint front (hypervolume of the normalised "
            f"objectives {', '.join(cmp['objectives'])}: min-max over the "
            f"{cmp['normalised_over']} feasible evaluations of the three searches, top-1 "
            f"flipped, reference point {cmp['reference_point']:g}; larger is better):",
            f"  joint front: {j['points']} points, hypervolume {j['hypervolume']:.4f}",
            f"  best network for the default hardware ({default_hardware}): {n['points']} "
            f"points, hypervolume {n['hypervolume']:.4f}; {n['weakly_dominated_by_joint']} of "
            f"{n['points']} weakly dominated by the joint front",
            f"  best hardware for the default network ({default_network}): {h['points']} "
            f"points, hypervolume {h['hypervolume']:.4f}; {h['weakly_dominated_by_joint']} of "
            f"{h['points']} weakly dominated by the joint front",
            f"  the joint front dominates both single-sided optima: {yes}"]


def codesign_answer_lines(a: dict) -> list:
    if not a["found"]:
        return [f"answer: none found: no evaluated point is {a['question']}"]
    arch = ", ".join(f"{k} = {v}" for k, v in a["arch"].items())
    return [f"answer: {a['question']}: {a['network']}" + (f" on {arch}" if arch else "")
            + f": top-1 {fmt(a['top1'], '%')}, latency {fmt(a['latency_ms'], 'ms')}, "
            f"energy {fmt(a['energy_uj'], 'uJ')}, area {fmt(a['area_sq_mm'], 'mm2')}, "
            f"power {fmt(a['power_w'], 'W')}",
            f"  top-1 source: {a['top1_source']}"]


def codesign_text(front, meta: dict, knobs, seconds: float, out,
                  width: int | None = None) -> str:
    """After ``tilesim codesign``: the joint front, the accuracy note, the single-sided
    comparison or the answer, and the files written."""
    ev = meta["evaluated"]
    out_lines = [wrap(f"codesign {meta['name']}: {meta['space']['points']:,} points "
                      f"({meta['space']['architectures']:,} architectures x "
                      f"{meta['space']['networks']} networks); {meta['method']} search: "
                      + ", ".join(f"{k} {v:,}" for k, v in ev.items())
                      + f" evaluated ({meta['computed']:,} computed, the rest from the store) "
                      f"in {seconds:.1f} s", width),
                 wrap(f"Pareto front of the joint search (top-1 maximised; "
                      f"{', '.join(o for o in meta['objectives'] if o != 'top1')} minimised; "
                      + (f"constraints {', '.join(meta['constraints'])}"
                         if meta["constraints"] else "no constraints")
                      + f"): {len(front)} points", width)]
    if len(front):
        out_lines.append(codesign_table(front, knobs, meta["objectives"], width))
    out_lines.append(wrap("note: " + meta["accuracy_note"], width))
    if "single_sided" in meta:
        out_lines += [wrap(x, width) for x in codesign_comparison_lines(
            meta["single_sided"], meta["default_hardware"], meta["default_network"])]
    if meta.get("answer"):
        out_lines += [wrap(x, width) for x in codesign_answer_lines(meta["answer"])]
    if out is not None:
        out_lines.append(f"wrote {out}/results.csv, {out}/front.csv, {out}/codesign.json, "
                         f"{out}/base_arch.yaml (store {out}/results.sqlite)")
    return "\n".join(out_lines)
