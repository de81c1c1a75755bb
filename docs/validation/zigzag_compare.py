#!/usr/bin/env python3
"""Side by side: tilesim vs ZigZag 3.9.1 on ZigZag's tpu_like, eyeriss_like and
edge_tpu_like hardware, ResNet-18 and MobileNetV2 (regenerates docs/validation/zigzag.md).

Two halves, so that the tilesim side can be re-run whenever the model changes without
ZigZag installed:

1. ZigZag (optional, ``--zigzag``): run in a scratch virtual environment that has
   ``zigzag-dse==3.9.1 six`` (never a tilesim dependency)::

       python3 -m venv /work/zzvenv && /work/zzvenv/bin/pip install zigzag-dse==3.9.1 six
       python docs/validation/zigzag_compare.py --zigzag [--zigzag-venv /work/zzvenv]

   This script re-runs itself under that venv's python (``--worker``: only ZigZag and the
   standard library are imported) and writes ZigZag's per-layer results to
   ``docs/validation/data/zigzag_<hardware>_<network>.csv`` (committed: the record).
   Without a venv (none given, /work/zzvenv absent) it says so and uses the CSVs.

2. tilesim (always): matches the MAC layers of tilesim's zoo ``resnet18`` and
   ``mobilenet_v2`` one to one with the committed CSVs' layers by shape (the script stops
   if one is left over on either side), maps and prices them on
   ``examples/zigzag/<hardware>.yaml`` and writes ``docs/validation/zigzag.md``.

    python docs/validation/zigzag_compare.py            # tilesim side only, from the CSVs
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DATA = HERE / "data"
PAGE = HERE / "zigzag.md"
DEFAULT_VENV = Path("/work/zzvenv")
ZIGZAG_VERSION = "3.9.1"
HARDWARE = ("tpu_like", "eyeriss_like", "edge_tpu_like")
NETWORKS = ("resnet18", "mobilenetv2")
# the mapping file of ZigZag's wheel used for each hardware (eyeriss_like ships none: its
# default.yaml, K 32 x C 32, which ZigZag reduces to the array's 14 x 12)
MAPPING = {"tpu_like": "tpu_like", "eyeriss_like": "default", "edge_tpu_like": "edge_tpu_like"}
OPT = "EDP"          # ZigZag's reduce stage; tilesim's objective 'edp' is the same criterion
LPF_LIMIT = 6        # ZigZag's API default (loop prime factors in LOMA's temporal search)
DIMS = ("B", "K", "G", "C", "OX", "OY", "FX", "FY")


# --------------------------------------------------------------------------------------
# the ZigZag worker: runs under the zigzag venv's python; imports zigzag only
# --------------------------------------------------------------------------------------
def _worker(hw: str, net: str, out_csv: str) -> None:
    import logging
    import tempfile

    import zigzag
    from zigzag.api import get_hardware_performance_zigzag
    from zigzag.mapping.data_movement import DataDirection

    logging.disable(logging.WARNING)
    inputs = Path(zigzag.__file__).parent / "inputs"
    t0, c0 = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as dump:
        _, _, cmes = get_hardware_performance_zigzag(
            str(inputs / "workload" / f"{net}.onnx"), str(inputs / "hardware" / f"{hw}.yaml"),
            str(inputs / "mapping" / f"{MAPPING[hw]}.yaml"), opt=OPT, lpf_limit=LPF_LIMIT,
            dump_folder=dump, loma_show_progress_bar=False)
    runtime, cpu = time.perf_counter() - t0, time.process_time() - c0
    rows = []
    for idx, (cme, _) in enumerate(cmes[0][1]):
        lay = cme.layer
        sizes = {str(d): int(v) for d, v in lay.layer_dim_sizes.items()}
        row = {"index": idx, "layer": lay.name, "zigzag_layer_id": lay.id}
        row.update({d: sizes.get(d, 1) for d in DIMS})
        row["stride_x"], row["stride_y"] = _strides(lay)
        row["padding"] = str(lay.padding)
        row["macs"] = int(lay.total_mac_count)
        row["energy_pj"] = float(cme.energy_total)
        row["mac_energy_pj"] = float(cme.mac_energy)
        for op, levels in cme.mem_energy_breakdown_further.items():
            mem_op = cme.memory_operand_links.layer_to_mem_op(op)
            mls = cme.accelerator.memory_hierarchy.get_memory_levels(mem_op)
            for ae, ml in zip(levels, mls):
                name = ml.memory_instance.name
                rd = ae.get(DataDirection.RD_OUT_TO_HIGH) + ae.get(DataDirection.RD_OUT_TO_LOW)
                wr = ae.get(DataDirection.WR_IN_BY_HIGH) + ae.get(DataDirection.WR_IN_BY_LOW)
                row[f"{name}_{op}_read_pj"] = float(rd)
                row[f"{name}_{op}_write_pj"] = float(wr)
        row["latency_cycles"] = float(cme.latency_total2)
        row["compute_cycles"] = float(cme.latency_total0)
        row["onload_cycles"] = float(cme.latency_total1 - cme.latency_total0)
        row["offload_cycles"] = float(cme.latency_total2 - cme.latency_total1)
        row["ideal_cycles"] = float(cme.ideal_cycle)
        row["ideal_temporal_cycles"] = float(cme.ideal_temporal_cycle)
        row["spatial_utilization"] = float(cme.mac_spatial_utilization)
        row["spatial_mapping"] = str(cme.spatial_mapping_int)
        row["temporal_mapping"] = str(cme.temporal_mapping)
        rows.append(row)
    cols = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    with open(out_csv, "w", newline="") as f:
        f.write(f"# ZigZag {zigzag_version()} on {hw} (inputs/hardware/{hw}.yaml, mapping "
                f"inputs/mapping/{MAPPING[hw]}.yaml), {net} (inputs/workload/{net}.onnx); "
                f"opt={OPT}, lpf_limit={LPF_LIMIT}; runtime {runtime:.1f} s wall, cpu {cpu:.1f} s; energies in pJ "
                f"(read = to the level above + below, write = from above + below), cycles\n")
        w = csv.DictWriter(f, fieldnames=cols, restval="")
        w.writeheader()
        w.writerows(rows)
    print(json.dumps({"hw": hw, "net": net, "layers": len(rows), "runtime_s": runtime, "cpu_s": cpu}))


def _worker_hardware(out_json: str) -> None:
    """The facts of the three hardware files (ZigZag's units: bits, bits per cycle, pJ per
    access) as JSON: the record tests/test_zigzag_examples.py checks the transcriptions
    against."""
    import yaml

    import zigzag
    hw_dir = Path(zigzag.__file__).parent / "inputs" / "hardware"
    rec = {"zigzag_version": zigzag_version(), "hardware": {}}
    for hw in HARDWARE:
        d = yaml.safe_load((hw_dir / f"{hw}.yaml").read_text())
        mems = {}
        for name, m in d["memories"].items():
            mems[name] = {
                "size_bits": m["size"], "operands": m["operands"], "r_cost_pj": m["r_cost"],
                "w_cost_pj": m["w_cost"], "served_dimensions": m["served_dimensions"],
                "ports": [{"type": p["type"], "bandwidth_min_bits": p["bandwidth_min"],
                           "bandwidth_max_bits": p["bandwidth_max"]} for p in m["ports"]]}
        oa = d["operational_array"]
        rec["hardware"][hw] = {
            "file": f"zigzag/inputs/hardware/{hw}.yaml", "mapping": f"zigzag/inputs/mapping/{MAPPING[hw]}.yaml",
            "dimensions": oa["dimensions"], "sizes": oa["sizes"],
            "unit_energy_pj": oa["unit_energy"], "memories": mems}
    Path(out_json).write_text(json.dumps(rec, indent=1) + "\n")


def zigzag_version() -> str:
    from importlib.metadata import version
    return version("zigzag-dse")


def _strides(layer) -> tuple[int, int]:
    """(stride along OX, along OY) from ZigZag's pr scaling factors (IX = s*OX + d*FX)."""
    sx = sy = 1
    for dim, factors in getattr(layer, "pr_scaling_factors", {}).items():
        name = str(dim)
        f = dict((str(k), int(v)) for k, v in factors.items()) if isinstance(factors, dict) \
            else {str(k): int(v) for k, v in factors}
        if name == "IX":
            sx = f.get("OX", 1)
        elif name == "IY":
            sy = f.get("OY", 1)
    return sx, sy


def _fail(msg: str, code: int = 2):
    """One line on stderr, then exit (2: bad input or environment)."""
    print(f"zigzag_compare: {msg}", file=sys.stderr)
    sys.exit(code)


def _last_line(text: str) -> str:
    lines = [l for l in text.strip().splitlines() if l.strip()]
    return lines[-1].strip() if lines else "no output"


def zigzag_python(venv: str | None) -> Path | None:
    """The python of the ZigZag venv: ``venv`` if given (an error if it has none), else
    /work/zzvenv if present, else None."""
    if venv is not None:
        py = Path(venv) / "bin" / "python"
        if not py.exists():
            _fail(f"--zigzag-venv {venv}: no bin/python there; create it with "
                  f"python3 -m venv {venv} && {venv}/bin/pip install zigzag-dse=={ZIGZAG_VERSION} six")
        return py
    py = DEFAULT_VENV / "bin" / "python"
    return py if py.exists() else None


def run_zigzag(py: Path, hardware=HARDWARE, networks=NETWORKS) -> dict:
    """Run ZigZag (under ``py``) on every hardware x network; write the CSVs. Returns
    {(hw, net): runtime_s}."""
    ver = subprocess.run([str(py), "-c", "from importlib.metadata import version; "
                          "print(version('zigzag-dse'))"], capture_output=True, text=True)
    if ver.returncode or ver.stdout.strip() != ZIGZAG_VERSION:
        _fail(f"{py}: zigzag-dse {ZIGZAG_VERSION} is not installed there "
              f"({_last_line(ver.stdout or ver.stderr)}); run {py.parent}/pip install "
              f"zigzag-dse=={ZIGZAG_VERSION} six")
    DATA.mkdir(parents=True, exist_ok=True)
    p = subprocess.run([str(py), str(Path(__file__).resolve()), "--worker-hardware",
                        str(DATA / "zigzag_hardware.json")], capture_output=True, text=True)
    if p.returncode:
        _fail(f"reading ZigZag's hardware files failed: {_last_line(p.stderr)}", 1)
    times = {}
    for hw in hardware:
        for net in networks:
            out = DATA / f"zigzag_{hw}_{net}.csv"
            print(f"zigzag_compare: ZigZag {hw} x {net} ...", file=sys.stderr, flush=True)
            p = subprocess.run([str(py), str(Path(__file__).resolve()), "--worker", hw, net, str(out)],
                               capture_output=True, text=True)
            if p.returncode:
                _fail(f"ZigZag failed on {hw} x {net}: {_last_line(p.stderr)}", 1)
            times[(hw, net)] = json.loads(p.stdout.strip().splitlines()[-1])["runtime_s"]
            print(f"zigzag_compare:   {times[(hw, net)]:.1f} s wall", file=sys.stderr, flush=True)
    return times


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "--worker":
    _worker(sys.argv[2], sys.argv[3], sys.argv[4])
    sys.exit(0)
if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--worker-hardware":
    _worker_hardware(sys.argv[2])
    sys.exit(0)


# --------------------------------------------------------------------------------------
# the tilesim side: runs in tilesim's environment, reads only the committed CSVs
# --------------------------------------------------------------------------------------
ZOO = {"resnet18": "resnet18", "mobilenetv2": "mobilenet_v2"}
TITLE = {"resnet18": "ResNet-18", "mobilenetv2": "MobileNetV2"}
FAR = 2.0            # a layer more than this factor apart (either way) is listed
# the second comparison: tilesim free to pick any of its dataflows per layer
EVERY_DATAFLOW = ("kc", "kcr", "kco", "ws", "os", "is", "dw", "rs")
BOUND = 0.25         # issue 14: each network's energy and latency within 25 % of ZigZag's


def read_zigzag(hw: str, net: str) -> tuple[str, list[dict]]:
    """(the CSV's provenance line, its rows with numbers as floats)."""
    path = DATA / f"zigzag_{hw}_{net}.csv"
    if not path.exists():
        _fail(f"{path.relative_to(ROOT)} is missing; run with --zigzag "
              "(needs a venv with zigzag-dse==3.9.1) to create it")
    with open(path, newline="") as f:
        head = f.readline().lstrip("# ").strip()
        rows = list(csv.DictReader(f))
    for r in rows:
        for k, v in r.items():
            if k not in ("layer", "padding", "spatial_mapping", "temporal_mapping") and v != "":
                r[k] = float(v)
    return head, rows


def signature(K, C, P, Q, R, S, groups, sh, sw) -> tuple:
    """A MAC layer's shape as both tools see it: total K and C, output rows x cols, window,
    groups, stride."""
    return tuple(int(x) for x in (K, C, P, Q, R, S, groups, sh, sw))


def zz_signature(r: dict) -> tuple:
    # ZigZag's K and C are per group; its OY is tilesim's P (rows), OX is Q (columns)
    g = r["G"]
    return signature(r["K"] * g, r["C"] * g, r["OY"], r["OX"], r["FY"], r["FX"], g,
                     r["stride_y"], r["stride_x"])


def same_name(zz_name: str, ts_name: str) -> bool:
    """Whether ZigZag's ONNX node name ("/layer2/layer2.0/downsample/downsample.0/Conv")
    names tilesim's zoo layer ("layer2.0.downsample.0"): the zoo name's dotted parts appear
    in order among the node's (its scopes, the operator type dropped)."""
    zz = [t for p in zz_name.split("/")[1:-1] for t in p.split(".")]
    it = iter(zz)
    return all(any(t == z for z in it) for t in ts_name.split("."))


def match_layers(zrows: list[dict], model) -> tuple[list, int]:
    """For each ZigZag layer (in its order) the tilesim zoo MacLayer of the same shape:
    the unused one whose name matches, else the first unused one of that shape. Every
    ZigZag layer and every tilesim MAC layer must be matched exactly once. Returns the
    layers and how many of them the names confirm."""
    from tilesim.workloads import MacLayer
    macs = [l for l in model.layers if isinstance(l, MacLayer)]
    used = [False] * len(macs)
    out, by_name = [], 0
    for r in zrows:
        sig = zz_signature(r)
        cands = [i for i, l in enumerate(macs) if not used[i] and signature(
            l.K, l.C, l.P, l.Q, l.R, l.S, l.groups, *l.stride) == sig]
        if not cands:
            _fail(f"ZigZag layer {r['layer']} {sig} has no tilesim layer of that shape in "
                  f"{model.name}; the zoo model and ZigZag's ONNX differ", 1)
        named = [i for i in cands if same_name(r["layer"], macs[i].name)]
        i = (named or cands)[0]
        by_name += bool(named)
        used[i] = True
        out.append(macs[i])
    if not all(used):
        left = [l.name for l, u in zip(macs, used) if not u]
        _fail(f"tilesim layers with no ZigZag counterpart: {left}", 1)
    return out, by_name


def run_tilesim(hw: str, net: str, zrows: list[dict], every_dataflow: bool = False
                ) -> tuple[list, float, object, int]:
    """tilesim's LayerResults for the layers matched to ``zrows`` (fused activations
    stripped: ZigZag prices MACs and memories only), the run time, the architecture and
    how many layer matches the names confirm. ``every_dataflow``: the transcription with
    every tilesim dataflow offered (:data:`EVERY_DATAFLOW`; the search picks per layer)
    instead of ZigZag's K x C unrolling alone."""
    from dataclasses import replace

    import tilesim.api as ts
    from tilesim import arch as ts_arch
    from tilesim.workloads import Model
    arch = ts.load_arch(str(ROOT / "examples" / "zigzag" / f"{hw}.yaml"))
    if every_dataflow:
        d = arch.to_yaml_dict()
        own = d["compute"]["arrays"][0]["dataflow"]
        d["compute"]["arrays"][0]["dataflows"] = [own] + [x for x in EVERY_DATAFLOW if x != own]
        arch = ts_arch.from_dict(d, source=f"{hw}.yaml with every dataflow")
    matched, by_name = match_layers(zrows, ts.load_model(ZOO[net]))
    layers = [replace(l, activation=None, sources=()) for l in matched]
    t0 = time.perf_counter()
    res = ts.simulate(arch, Model(f"{net}_mac_layers", tuple(layers), 1, "zoo"), objective="edp")
    return list(res.layers), time.perf_counter() - t0, arch, by_name


def zz_parts(r: dict) -> dict:
    """ZigZag's energy of one layer by (memory, operand) -> pJ, plus ("MAC", "") ."""
    out = {("MAC", ""): r["mac_energy_pj"]}
    for k, v in r.items():
        if k.endswith("_read_pj") and v != "":
            mem, op = k[:-len("_read_pj")].rsplit("_", 1)
            out[(mem, op)] = out.get((mem, op), 0.0) + v + (r.get(f"{mem}_{op}_write_pj") or 0.0)
    return out


TS_OP = {"input": "I", "weight": "W", "output": "O"}


def ts_parts(lr) -> dict:
    """tilesim's energy of one layer by (level, operand) -> pJ, plus ("MAC", "")."""
    out = {("MAC", ""): lr.energy_breakdown.get("mac_energy_pj", 0.0)}
    for col, v in lr.energy_breakdown.items():
        for op, z in TS_OP.items():
            if col.endswith(f"_{op}_energy_pj"):
                out[(col[:-len(f"_{op}_energy_pj")], z)] = v
    extra = sum(lr.energy_breakdown.get(c, 0.0) for c in
                ("array_energy_pj", "vector_energy_pj", "leakage_energy_pj"))
    if extra:
        out[("other", "")] = extra
    return out


def is_register(name: str) -> bool:
    return name.startswith("rf_") or name.endswith("_rf")


def _share(parts: dict, total: float) -> str:
    regs = sum(v for (m, _), v in parts.items() if is_register(m))
    return f"{100 * regs / total:.0f} %" if total else "-"


def _fmt_parts(parts: dict, total: float, n: int = 3) -> str:
    top = sorted(parts.items(), key=lambda kv: -kv[1])[:n]
    return ", ".join(f"{m}{'.' + o if o else ''} {100 * v / total:.0f} %" for (m, o), v in top)


def _energy_cause(zp: dict, tp: dict, top: tuple) -> str:
    """The cause behind the (memory, operand) term that differs most."""
    mem, op = top
    z, t = zp.get(top, 0.0), tp.get(top, 0.0)
    if is_register(mem):
        return "**register accesses**"
    if op == "O" and t > z and mem != "dram":
        return "**psums in SRAM**"
    if mem == "dram":
        return "**DRAM tiling**"
    return f"**{mem} accesses of {op or 'MACs'}**"


def explain(zr: dict, lr, arch) -> str:
    """Why one layer is far apart, read from the two breakdowns: a cause in bold, then the
    numbers it comes from."""
    notes = []
    ze, te = zr["energy_pj"], lr.energy_pj
    zc, tc = zr["latency_cycles"], lr.cycles
    if max(ze, te) > FAR * min(ze, te):
        zp, tp = zz_parts(zr), ts_parts(lr)
        keys = set(zp) | set(tp)
        diffs = sorted(keys, key=lambda k: -abs(tp.get(k, 0.0) - zp.get(k, 0.0)))[:2]
        notes.append("energy: " + _energy_cause(zp, tp, diffs[0]) + ": " + "; ".join(
            f"{m}{'.' + o if o else ''} ZZ {zp.get((m, o), 0.0) / 1e6:.3g} vs ts "
            f"{tp.get((m, o), 0.0) / 1e6:.3g} uJ" for m, o in diffs))
    if max(zc, tc) > FAR * min(zc, tc):
        pes = arch.peak_macs_per_cycle
        zu, tu = zr["spatial_utilization"], lr.macs / (pes * (lr.compute_cycles + 1))
        causes = []
        if tc < zc and zu < 0.5 * tu:
            causes.append("**ZZ spatial underfill**")
        if tc > zc and lr.bound.endswith(" bandwidth"):
            causes.append("**ts SRAM port**")
        elif tc > zc and tu < 0.5 * zu:
            causes.append("**ts fold overhead**")
        elif tc > zc and lr.bound == "memory":
            causes.append("**ts DRAM-bound**")
        bits = [f"spatial util ZZ {_pct(zu)} vs ts compute util {_pct(tu)}"]
        if lr.bound != "compute":
            bits.append(f"ts bound by {lr.bound} ({lr.cycles:,} vs {lr.compute_cycles + 1:,} "
                        "compute cycles)")
        zt = zr["ideal_temporal_cycles"]
        if zt > 1.5 * zr["ideal_cycles"]:
            bits.append(f"ZZ temporal loops {zt:,.0f} cycles = {zt / zr['ideal_cycles']:.1f}x "
                        "MACs / PEs")
        if zc > 1.25 * zt:
            bits.append(f"ZZ stalls + on/offload {zc - zt:,.0f} cycles")
        notes.append("latency: " + ("; ".join(causes) + ": " if causes else "") + "; ".join(bits))
    return ". ".join(notes)


def _pct(x: float) -> str:
    return f"{100 * x:.2g} %" if x < 0.1 else f"{100 * x:.0f} %"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "-"


def _git_commit() -> str:
    try:
        sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--",
                                "arch", "mapper", "sim", "workloads", "tilesim", "examples/zigzag"],
                               capture_output=True, text=True).stdout.strip()
        return sha + (" (with uncommitted changes to the model)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def _runtime(head: str) -> str:
    import re
    m = re.search(r"cpu ([0-9.]+) s", head)
    return m.group(1) if m else "-"


def write_page() -> int:
    import tilesim
    summary, far_rows, shares, named, best, psums = [], [], [], {}, [], []
    for net in NETWORKS:
        for hw in HARDWARE:
            head, zrows = read_zigzag(hw, net)
            lrs, ts_s, arch, by_name = run_tilesim(hw, net, zrows)
            ze = sum(r["energy_pj"] for r in zrows)
            te = sum(l.energy_pj for l in lrs)
            zc = sum(r["latency_cycles"] for r in zrows)
            tc = sum(l.cycles for l in lrs)
            summary.append((net, hw, len(zrows), ze, te, zc, tc, _runtime(head), ts_s))
            blrs = run_tilesim(hw, net, zrows, every_dataflow=True)[0]
            picked: dict = {}
            for l in blrs:
                picked[l.dataflow] = picked.get(l.dataflow, 0) + 1
            best.append((net, hw, ze, sum(l.energy_pj for l in blrs), zc,
                         sum(l.cycles for l in blrs), picked))
            named[net] = (by_name, len(zrows))
            zp_all, tp_all = {}, {}
            for zr, lr in zip(zrows, lrs):
                for k, v in zz_parts(zr).items():
                    zp_all[k] = zp_all.get(k, 0.0) + v
                for k, v in ts_parts(lr).items():
                    tp_all[k] = tp_all.get(k, 0.0) + v
                er = lr.energy_pj / zr["energy_pj"]
                cr = lr.cycles / zr["latency_cycles"]
                if max(er, 1 / er) > FAR or max(cr, 1 / cr) > FAR:
                    far_rows.append((net, hw, lr.layer, lr, zr, er, cr, explain(zr, lr, arch)))
            shares.append((net, hw, ze, te, zp_all, tp_all))
            out = [l.name for l in arch.onchip if "output" in l.holds][-1]
            excess = tp_all.get((out, "O"), 0.0) - zp_all.get((out, "O"), 0.0)
            psums.append((net, hw, out, excess, (te - excess) / ze))
    PAGE.write_text(_page(summary, far_rows, shares, named, best, psums, tilesim.__version__))
    print(f"zigzag_compare: wrote {PAGE}", file=sys.stderr)
    return 0




CAUSES = """\
- **psums in SRAM**: tilesim's kcr (tpu_like, eyeriss_like) keeps a pixel's sum in the
  column's output register over the taps, but writes it to the innermost shared output
  level once per row fold (channel block) and the next fold reads it back; kco
  (edge_tpu_like) keeps it over the channel blocks and taps of the tile feeding the array
  and writes it once per channel tile. ZigZag's temporal mapping runs C, FY and FX
  innermost and keeps each partial sum in the PE's output register (rf_2B, rf_16B) until
  the reduction completes (or as long as its buffers allow), so the SRAM sees little
  more than the final outputs.
- **register accesses**: both tools price every MAC's register accesses, but count them
  differently: tilesim charges each MAC a read of its weight and input and a read and a
  write of its partial sum, a moving operand's write into every PE it reaches, and a
  stationary weight's write into every register of its column's chain it passes as it
  is loaded (kcr: rows x taps registers, so late layers of few pixels pay more for
  loading weights than for reading them); ZigZag models no shift chain, skips re-reading
  a word its innermost loop already holds (`access_same_data_considered_as_no_access`)
  and rounds a 16-bit partial sum up to one
  24-bit access of eyeriss_like's rf_16B (tilesim: 16 / 24 of one).
- **DRAM tiling**: the DRAM traffic differs because the two searches tile differently.
- **ZZ spatial underfill**: ZigZag's array dimensions unroll K and C (edge_tpu_like: also OX
  and OY), the filter window in time; a depthwise group (K = C = 1) or the 3-channel first
  layer leaves most PEs idle (ZigZag's spatial utilisation), where the tilesim mapping
  compared fills more of them.
- **ts SRAM port**: tilesim's cycles are set by an SRAM's bandwidth: the partial sums of
  every fold (kcr: every channel block beyond the array's rows, so 1x1 layers with many
  channels) cross the port of the innermost output level
  twice (write, then read back by the next fold); eyeriss_like's sram_8KB has 16 B/cycle.
  ZigZag's partial sums stay in rf_16B over the reduction (see psums in SRAM).
- **ts fold overhead**: few elements stream per fold (a fully connected layer streams one
  pixel x its taps under kcr), so tilesim's per-fold systolic preload, fill and drain
  (kcr: t rows + T + rows + cols - 2 for t taps a PE; kco: T + rows + cols - 2) dominate;
  ZigZag's latency has no fill or drain per fold.
- **ts DRAM-bound**: tilesim's cycles are set by the DRAM traffic.
"""


DESIGN_DIFFERENCES = """\
## What differs by design

- **Temporal order under the K x C unrolling.** Both sides unroll K x C with the filter
  window in time and keep per-PE registers (`scope: pe`). ZigZag's temporal mappings for
  these layers run the reduction (C, FY, FX) innermost below the output register. tilesim's
  kcr (tpu_like, eyeriss_like: their rf_128B and rf_64B_W hold a PE's R x S weights, up to
  7 x 7) streams the pixels x taps through each fold and keeps a pixel's sum in the
  column's output register over the taps, so partial sums leave the array once per pixel
  per channel block; the channel blocks beyond the array's rows remain folds whose partial
  sums meet in the buffer (eyeriss_like's 1x1 layers with many channels: its 16 B/cycle
  sram_8KB carries them, the remaining latency gap). edge_tpu_like's rf_1B holds one
  weight, where ZigZag re-reads the weights from sram_32KB inside the reduction; tilesim's
  kco does the same (one read a (K, C) position and cycle, shared by the 16 pixel lanes)
  and keeps a pixel's sum in the column's output register over the channel blocks and
  taps of the tile feeding the array. That tile holds at most 16 KiB of weights (half of
  the double-buffered sram_32KB), which splits the channels of ResNet-18's layer3 and
  layer4 3x3 convs (the search splits a few other layers' where that lowers energy x
  delay), whose sums then meet in sram_2MB; ZigZag, with all 32 KiB, splits FX out of
  the reduction of those layers instead. (kc, the taps as folds, would write every tap's
  partial sums to the 2 MiB SRAM at 416 pJ per 2048 b and read them back: 1.86x
  ZigZag's energy on ResNet-18 before kco.)
- **tpu_like's weights.** ZigZag keeps them only in the per-PE rf_128B; tilesim's schema
  needs a shared on-chip level for every operand (a `scope: pe` level holds one value per
  PE and is filled from one), so the transcription adds a shared `weight_rf` with the
  registers' summed capacity (1,024 x 128 B) and bandwidth at 0 pJ, next to the per-PE
  rf_128B at ZigZag's 0.095 pJ.
- **edge_tpu_like's shared registers.** ZigZag shares rf_1B over the 4 x 4 OX x OY PEs
  and rf_2B along C; `scope: pe` means one per PE (same size and energy per access, more
  instances). tilesim therefore charges every MAC a weight write and read in rf_1B and a
  partial-sum read and write in rf_2B, where ZigZag charges a weight access per 16 MACs
  and a partial-sum access per column's 8: most of edge_tpu_like's remaining energy
  excess on ResNet-18 (see *register accesses*).
- **One tiling level.** tilesim chooses one tile, at the DRAM boundary, and every shared
  on-chip level holding an operand must hold that whole tile (double-buffered: half the
  level); `scope: pe` levels hold one value per PE and are not tiled. On eyeriss_like the
  8 KiB output buffer therefore caps the output tile, which raises DRAM re-reads of inputs
  and weights; ZigZag sizes each level's tile on its own.
- **Spatial unrolling.** tilesim's arrays are 2-D: edge_tpu_like's OX x OY dimensions (D3,
  D4) become 16 arrays of 8 x 8 that kco runs as pixel lanes, each pixel step 16
  consecutive pixels in raster order rather than a 4 x 4 square. ZigZag's
  spatial mappings (its CSVs' `spatial_mapping`) balance the folds and may use fewer rows
  or columns than the array has (eyeriss_like: K 13 x C 11 of 14 x 12 on most ResNet-18
  layers; edge_tpu_like: OX 3 x OY 3 of 4 x 4 on 14 x 14 and 7 x 7 outputs), where
  tilesim folds by the full array.
- **Array timing.** tilesim counts each fold's systolic preload, fill and drain
  (kcr: t R + T + R + C - 2, its t taps' weights shifted down the rows first, serial
  preload as SCALE-Sim's convention; kco: T + R + C - 2, no preload) with no
  overlap between folds; ZigZag's latency is the temporal loop count plus the stalls its
  memory-port model finds, plus data on/off-loading at the start and end (eyeriss_like
  and edge_tpu_like declare no systolic dimensions, so they have no fill/drain at all).
- **Memory bandwidth.** tilesim bounds a layer by each level's total bytes moved over its
  bandwidth (a `scope: pe` level's per PE); ZigZag checks port activity per memory and
  operand against the mapping's update windows.
- **Access granularity.** ZigZag rounds each transfer up to the port's `bandwidth_min` and
  prices it per `bandwidth_max` word; tilesim prices bytes linearly (per `access_bits`).
  `access_same_data_considered_as_no_access` (ZigZag's API sets it) makes repeated reads of
  a word held at the innermost level's output free in ZigZag.
- **Search.** ZigZag (LOMA, loop-prime-factor limit 6) searches temporal orderings per
  level and keeps the best by EDP; tilesim's heuristic search over its single-level tiling
  minimises EDP too. Neither side is guaranteed optimal for the other's model.
- **Not modelled by ZigZag 3.9.1**, so set to zero in the transcriptions: inter-PE
  forwarding (tilesim's `hop_energy`) and static power (`leakage`). ZigZag's ONNX parser
  skips non-MAC operators (pooling, adds); the comparison covers the MAC layers only and
  strips tilesim's fused activations (vector unit).
"""


def _page(summary, far_rows, shares, named, best, psums, version) -> str:
    L = ["# tilesim vs ZigZag 3.9.1", "",
         "Generated by `docs/validation/zigzag_compare.py` (do not edit by hand) from tilesim "
         f"{version}, commit {_git_commit()}, and ZigZag's per-layer results cached in "
         "`docs/validation/data/zigzag_<hardware>_<network>.csv` (`--zigzag` re-runs "
         f"ZigZag {ZIGZAG_VERSION} in a scratch venv and rewrites them).", "",
         "Hardware: ZigZag's `tpu_like`, `eyeriss_like` and `edge_tpu_like` (in its wheel, "
         "`zigzag/inputs/hardware/`), transcribed into `examples/zigzag/<hardware>.yaml` with "
         "the provenance of every number; mappings: the wheel's `tpu_like.yaml`, "
         "`edge_tpu_like.yaml` and (eyeriss_like has none) `default.yaml`. Networks: ZigZag's "
         "`resnet18.onnx` and `mobilenetv2.onnx` (its MAC layers: Conv and Gemm), matched one "
         "to one with the MAC layers of tilesim's zoo `resnet18` and `mobilenet_v2` by shape "
         "(total K and C, output rows x cols, window, groups, stride; ZigZag's K and C are per "
         "group, its OY/OX are tilesim's P/Q), the node name breaking ties; the script stops "
         "if any layer on either side is left unmatched. The names confirm "
         + ", ".join(f"{a} of {n} {TITLE[net]} layers" for net, (a, n) in named.items())
         + " (the rest are matched by shape and order; layers of one shape share their results). Both tools pick each layer's "
         "mapping for the least energy x delay (ZigZag `opt=\"EDP\"`, tilesim "
         "`--objective edp`). Batch 1. Energy in uJ (ZigZag's pJ / 10^6), latency in cycles "
         "(ZigZag gives no clock; the transcriptions' 1 GHz is nominal, so cycles are the "
         "comparable figure). Ratio = tilesim / ZigZag.", "",
         "Like with like: every transcription has ZigZag's per-PE register files as "
         "`scope: pe` levels, and its array runs one K x C dataflow alone: K on the columns "
         "and C on the rows with the filter window in time, the spatial unrolling of "
         "ZigZag's mappings on all three (eyeriss_like's `default.yaml` included: it is "
         "K x C, not row stationary). tpu_like and eyeriss_like run `kcr` (`dataflow: "
         "kcr`): each PE's weight register file (rf_128B, rf_64B_W) holds its R x S "
         "weights, the taps stream inside the fold and a pixel's partial sum stays in the "
         "column's output register over them, as ZigZag's temporal mappings keep it in "
         "rf_2B / rf_16B over FX and FY. edge_tpu_like runs `kco` (`dataflow: kco`): its "
         "rf_1B holds one weight (kcr would be kc there, one tap a fold, every tap's partial "
         "sums through sram_2MB), so, as in ZigZag's mapping, each PE gets its weight from "
         "sram_32KB at every use, one read shared by the 16 arrays, which run in lockstep "
         "as pixel lanes (ZigZag's OX x OY unrolling, whose PEs share one rf_1B), and a "
         "pixel's partial sum stays in the column's output register over the whole "
         "reduction (channel blocks and taps). A second table gives tilesim with every one "
         "of its dataflows offered to the search, which picks per layer.", "",
         "## Per network and hardware", "",
         _verdict(summary), "",
         "| network | hardware | layers | ZigZag energy (uJ) | tilesim energy (uJ) | ratio "
         "| ZigZag latency (cycles) | tilesim latency (cycles) | ratio | ZigZag run time (CPU s) "
         "| tilesim run time (s) |",
         "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for net, hw, n, ze, te, zc, tc, zs, tsec in summary:
        L.append(f"| {TITLE[net]} | {hw} | {n} | {ze / 1e6:,.1f} | {te / 1e6:,.1f} | "
                 f"{_ratio(te, ze)} | {zc:,.0f} | {tc:,} | {_ratio(tc, zc)} | {zs} | {tsec:.2f} |")
    L += ["", "ZigZag's run time is the CPU time of its whole run for the network (parsing, "
          "spatial and LOMA temporal mapping search, cost model; one process), from the "
          "CSV's header line, which also has the wall time on the shared 2-core machine it "
          "ran on. tilesim's is the wall time of `simulate()` on the same layers, its "
          "mapping search included.", "",
          "The partial sums at the innermost shared output level (see *psums in SRAM* "
          "below): tilesim's kcr (tpu_like, eyeriss_like) writes a pixel's partial sum there "
          "once per channel block beyond the array's rows and reads it back, kco "
          "(edge_tpu_like) once per channel tile feeding the array (once, complete, where "
          "the tile holds every channel); ZigZag keeps it in the PE's output register until "
          "the reduction completes, or as long as its buffers allow. tilesim's excess of "
          "that term over ZigZag's, and tilesim / ZigZag energy without it: "
          + "; ".join(f"{TITLE[net]} on {hw} {r:.2f} (excess at {out}: {x / 1e6:,.0f} uJ)"
                      for net, hw, out, x, r in psums) + ".", "",
          "### tilesim with its own best dataflows", "",
          "The same transcriptions with `dataflows: [" + ", ".join(EVERY_DATAFLOW) + "]` "
          "(`kcr` is kc with the taps inside the fold, where the weight registers hold them; "
          "`kco` streams the weights with the partial sums in the array, the arrays as pixel "
          "lanes: on tpu_like, one array, its weights come from the capacity-only "
          "`weight_rf` at 0 pJ, the per-PE rf_128B reads priced per MAC as always; "
          "`dw` is channel-parallel depthwise, which ZigZag's K x C unrolling lacks: it "
          "leaves a depthwise layer's array nearly idle; `rs` is row stationary, `os`/`ws`/"
          "`is` the GEMM lowerings); the search picks each layer's for the least energy x "
          "delay. Not a like-with-like comparison: it shows what the hardware could do "
          "under tilesim's other spatial mappings.", "",
          _verdict([(n, h, 0, ze, te, zc, tc, "", 0) for n, h, ze, te, zc, tc, _ in best]), "",
          "| network | hardware | tilesim energy (uJ) | ratio | tilesim latency (cycles) "
          "| ratio | dataflows picked (layers) |",
          "|---|---|---:|---:|---:|---:|---|"]
    for net, hw, ze, te, zc, tc, picked in best:
        L.append(f"| {TITLE[net]} | {hw} | {te / 1e6:,.1f} | {_ratio(te, ze)} | {tc:,} | "
                 f"{_ratio(tc, zc)} | " + ", ".join(f"{d} {n}" for d, n in sorted(
                     picked.items(), key=lambda kv: -kv[1])) + " |")
    L += ["",
          "## Where the energy goes", "",
          "Share of each network's energy (like with like: `kcr`, edge_tpu_like `kco`): MAC, registers (the "
          "`rf_*` levels of both; tilesim's capacity-only `weight_rf` on tpu_like costs "
          "nothing), and the three largest (memory, operand) terms.", "",
          "| network | hardware | ZigZag: MAC | ZigZag: registers | ZigZag: largest terms "
          "| tilesim: MAC | tilesim: registers | tilesim: largest terms |",
          "|---|---|---:|---:|---|---:|---:|---|"]
    for net, hw, ze, te, zp, tp in shares:
        L.append(f"| {TITLE[net]} | {hw} | {100 * zp[('MAC', '')] / ze:.0f} % | {_share(zp, ze)} "
                 f"| {_fmt_parts(zp, ze)} | {100 * tp[('MAC', '')] / te:.0f} % | {_share(tp, te)} "
                 f"| {_fmt_parts(tp, te)} |")
    L += ["", f"## Layers more than {FAR:g}x apart", "",
          f"Every layer whose energy or latency differs by more than {FAR:g}x (either way); "
          "layers of the same shape, which get the same results from both tools, share a row. "
          "The explanation is read from the two breakdowns: for energy, the two (memory, "
          "operand) terms that differ most (ZZ = ZigZag, ts = tilesim); for latency, "
          "ZigZag's spatial utilisation against tilesim's compute utilisation (MACs / "
          "(PEs x compute cycles)), what bounds tilesim's cycles, and ZigZag's stalls. The "
          "cause in bold is chosen from these numbers by fixed rules (`explain()` in the "
          "script):", "", CAUSES, "",
          "| network | hardware | layer | shape | energy ZZ (uJ) | energy ts (uJ) | ratio "
          "| cycles ZZ | cycles ts | ratio | explanation |",
          "|---|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
    groups: dict = {}
    for row in far_rows:
        net, hw, name, lr, zr, er, cr, why = row
        key = (net, hw, _shape_of(lr, zr), zr["energy_pj"], lr.energy_pj)
        groups.setdefault(key, []).append(row)
    for rows in groups.values():
        net, hw, _, lr, zr, er, cr, why = rows[0]
        names = ", ".join(r[2] for r in rows)
        if len(rows) > 1:
            names += f" ({len(rows)} layers, each)"
        L.append(f"| {TITLE[net]} | {hw} | {names} | {_shape_of(lr, zr)} | "
                 f"{zr['energy_pj'] / 1e6:,.2f} | {lr.energy_pj / 1e6:,.2f} | {er:.2f} | "
                 f"{zr['latency_cycles']:,.0f} | {lr.cycles:,} | {cr:.2f} | {why} |")
    if not far_rows:
        L.append("| (none) | | | | | | | | | | |")
    L += ["", DESIGN_DIFFERENCES]
    return "\n".join(L)


def _verdict(summary) -> str:
    """How many network x hardware pairs are within issue 14's bound (25 %)."""
    def within(a, b):
        return abs(a / b - 1) <= BOUND
    n = len(summary)
    e = sum(within(te, ze) for _, _, _, ze, te, _, _, _, _ in summary)
    c = sum(within(tc, zc) for _, _, _, _, _, zc, tc, _, _ in summary)
    er = [te / ze for _, _, _, ze, te, _, _, _, _ in summary]
    cr = [tc / zc for _, _, _, _, _, zc, tc, _, _ in summary]
    return (f"Within {100 * BOUND:.0f} % of ZigZag (issue 14's bound): energy {e} of {n} pairs, latency "
            f"{c} of {n}. tilesim / ZigZag ranges over {min(er):.2f}-{max(er):.2f} in energy and "
            f"{min(cr):.2f}-{max(cr):.2f} in latency.")


def _shape_of(lr, zr) -> str:
    g = int(zr["G"])
    s = (f"K{int(zr['K'] * g)} C{int(zr['C'] * g)} {int(zr['OY'])}x{int(zr['OX'])} "
         f"{int(zr['FY'])}x{int(zr['FX'])}")
    if zr["stride_x"] != 1:
        s += f" s{int(zr['stride_x'])}"
    if g > 1:
        s += f" g{g}"
    return s


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zigzag", action="store_true",
                    help="re-run ZigZag (needs a venv with zigzag-dse==3.9.1) and rewrite the CSVs")
    ap.add_argument("--zigzag-venv", default=None,
                    help=f"the ZigZag venv (default {DEFAULT_VENV} if present)")
    ap.add_argument("--hardware", nargs="*", default=list(HARDWARE), choices=HARDWARE)
    ap.add_argument("--networks", nargs="*", default=list(NETWORKS), choices=NETWORKS)
    ap.add_argument("--zigzag-only", action="store_true", help="stop after writing the CSVs")
    a = ap.parse_args(argv)
    if a.zigzag:
        py = zigzag_python(a.zigzag_venv)
        if py is None:
            print(f"zigzag_compare: no ZigZag venv ({DEFAULT_VENV} absent, --zigzag-venv not given); "
                  "skipping the ZigZag run, using the committed CSVs in "
                  f"{DATA.relative_to(ROOT)}", file=sys.stderr)
        else:
            run_zigzag(py, a.hardware, a.networks)
    if a.zigzag_only:
        return 0
    return write_page()


if __name__ == "__main__":
    sys.exit(main())
