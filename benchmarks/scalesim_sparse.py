"""SCALE-Sim 3.0.0's sparsity mode on small layers: the oracle numbers behind
tests/test_scalesim_sparse.py and docs/sparsity_scalesim.md.

Usage:  python benchmarks/scalesim_sparse.py SCALESIM_PYTHON [--out CSV] [--quick]
        python benchmarks/scalesim_sparse.py --table [--out CSV]

``SCALESIM_PYTHON`` is the python of a scratch venv holding ``scalesim==3.0.0`` and
``numpy==1.26.4`` (SCALE-Sim 3.0.0 fails with numpy 2.x; see
tests/data/scalesim_v3_golden.md). SCALE-Sim is an oracle, never a tilesim dependency:
this script imports nothing from either; it writes each cfg, topology (with its N:M
column) and layout file into a temporary folder, runs SCALE-Sim's Python API there in a
subprocess of ``SCALESIM_PYTHON``, one run per (array, dataflow, SparseRep, support) with
every layer x N:M in one topology, and writes one CSV row per layer
(``benchmarks/data/scalesim_sparse.csv`` by default).

Columns: ``case`` (layer name in the topology), ``kind`` (conv | gemm: the topology
format), the layer's dims in SCALE-Sim's conv form (``ifmap_h, ifmap_w, filter_h,
filter_w, channels, num_filters, stride``; a GEMM M x K @ K x N row reads as
H = M, W = K, R = 1, S = K, C = 1, filters = N), ``nm`` (the topology's N:M column),
``array_rows, array_cols, dataflow``, ``sparsity_support`` (the cfg's
SparsitySupport), ``sparse_rep`` (SparseRep), then verbatim from SCALE-Sim's reports:
``total_cycles, stall_cycles, mapping_efficiency_percent`` (COMPUTE_REPORT.csv
``Total Cycles``, ``Stall Cycles``, ``Mapping Efficiency %``),
``sram_ifmap_reads, sram_filter_reads`` (DETAILED_ACCESS_REPORT.csv), and with sparsity
on ``original_filter_storage, new_storage, metadata_storage`` (SPARSE_REPORT.csv: 4-byte
words, see compute/compression.py), and ``scalesim_version``.

``--table`` runs no SCALE-Sim: it reads the CSV and prints the Markdown tables of
docs/sparsity_scalesim.md, SCALE-Sim's numbers next to tilesim's (``tilesim.simulate``
on the run's cfg and topology, the array's ``zeros: skip`` when SparsitySupport is true
and each layer's N:M set through the API, as tests/test_scalesim_sparse.py does).

A run that SCALE-Sim cannot complete (os and is in sparse mode, see the doc) becomes
rows with ``total_cycles`` empty and ``error`` holding its exception's last line.
"""
from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
from pathlib import Path

OUT = Path(__file__).parent / "data" / "scalesim_sparse.csv"

#: (name, kind, (ifmap_h, ifmap_w, filter_h, filter_w, channels, num_filters, stride));
#: GEMM rows in SCALE-Sim's conv form (H = M, W = K, R = 1, S = K, C = 1, filters = N).
#: Reductions (R*S*C): 30, 27, 9, 150, 27, 63, 20: several not multiples of M (N:M).
LAYERS = [
    ("g16x30x12", "gemm", (16, 30, 1, 30, 1, 12, 1)),    # M=16 K=30 N=12
    ("g20x27x40", "gemm", (20, 27, 1, 27, 1, 40, 1)),    # M=20 K=27 N=40: 2 col folds at 32
    ("g1x9x8", "gemm", (1, 9, 1, 9, 1, 8, 1)),           # one output row: the address-0 guard
    ("g64x150x40", "gemm", (64, 150, 1, 150, 1, 40, 1)),  # folds on 32x32 too
    ("c6x6_3x3x3_k10", "conv", (6, 6, 3, 3, 3, 10, 1)),   # P*Q = 16, RSC = 27
    ("c9x9_3x3x7_k24_s2", "conv", (9, 9, 3, 3, 7, 24, 2)),  # P*Q = 16, RSC = 63
    ("c4x4_1x1x20_k8", "conv", (4, 4, 1, 1, 20, 8, 1)),   # P*Q = 16, RSC = 20
]
NMS = ["1:4", "2:4", "1:2", "2:8", "4:4"]
#: (array_rows, array_cols, dataflow, SparseRep, SparsitySupport)
RUNS = [
    (8, 8, "ws", "ellpack_block", True),
    (8, 8, "ws", "csr", True),
    (32, 32, "ws", "ellpack_block", True),
    (32, 32, "ws", "csr", True),
    (8, 4, "ws", "ellpack_block", True),
    (8, 8, "ws", "ellpack_block", False),   # the N:M column without SparsitySupport
    (8, 8, "os", "ellpack_block", True),
    (8, 8, "is", "ellpack_block", True),
]

CFG = """[general]
run_name = {name}

[run_presets]
InterfaceBandwidth = USER
UseRamulatorTrace = False

[architecture_presets]
ArrayHeight = {rows}
ArrayWidth = {cols}
IfmapSramSzkB = 65536
FilterSramSzkB = 65536
OfmapSramSzkB = 65536
IfmapOffset = 0
FilterOffset = 10000000
OfmapOffset = 20000000
Dataflow = {df}
ReadRequestBuffer = 32
WriteRequestBuffer = 32
Bandwidth = 1024

[layout]
IfmapCustomLayout = False
FilterCustomLayout = False
IfmapSRAMBankBandwidth = 1024
IfmapSRAMBankNum = 1
IfmapSRAMBankPort = 2
FilterSRAMBankBandwidth = 1024
FilterSRAMBankNum = 1
FilterSRAMBankPort = 2

[sparsity]
SparsitySupport = {support}
SparseRep = {rep}
OptimizedMapping = false
BlockSize = 8
RandomNumberGeneratorSeed = 40
"""
CONV_HEAD = ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
             "Num Filter, Strides, Sparsity,\n")
GEMM_HEAD = "Layer, M, N, K, Sparsity,\n"
LAYOUT = ("Layer name, IFMAP Height Intraline Factor, IFMAP Width Intraline Factor, Channel "
          "Intraline Factor, Num Filter Intraline Factor, IFMAP Height Intraline Order, IFMAP "
          "Width Intraline Order, Channel Intraline Order, IFMAP Height Interline Order, IFMAP "
          "Width Interline Order, Channel Interline Order, Num Filter Intraline Order, Channel "
          "Intraline Order, Filter Height Intraline Order, Filter Width Intraline Order, Num "
          "Filter Interline Order, Channel Interline Order, Filter Height Interline Order, "
          "Filter Width Interline Order,\n"
          "L0, 1, 1, 1, 1, 0, 1, 2, 0, 1, 2, 0, 1, 2, 3, 0, 1, 2, 3,\n")
#: runs in SCALE-Sim's python: prints the version, then the exception's last line if any
DRIVER = """
import sys, traceback, importlib.metadata as md
print("VERSION", md.version("scalesim"), flush=True)
from scalesim.scale_sim import scalesim
cfg, topo, layout, out, gemm = sys.argv[1:6]
try:
    sim = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo,
                   layout=layout, input_type_gemm=gemm == "1")
    sim.run_scale(top_path=out)
except Exception as e:
    print("ERROR", traceback.format_exc().strip().splitlines()[-1], flush=True)
"""
COLUMNS = ["case", "kind", "ifmap_h", "ifmap_w", "filter_h", "filter_w", "channels",
           "num_filters", "stride", "nm", "array_rows", "array_cols", "dataflow",
           "sparsity_support", "sparse_rep", "total_cycles", "stall_cycles",
           "mapping_efficiency_percent", "sram_ifmap_reads", "sram_filter_reads",
           "original_filter_storage", "new_storage", "metadata_storage", "scalesim_version",
           "error"]
DIMS = COLUMNS[2:9]


def _report(path: Path) -> list[dict]:
    """Rows of a SCALE-Sim report CSV (its header and values have stray spaces and a
    trailing comma)."""
    if not path.exists():
        return []
    lines = [ln.rstrip().rstrip(",") for ln in path.read_text().splitlines() if ln.strip()]
    head = [h.strip() for h in lines[0].split(",")]
    return [dict(zip(head, (v.strip() for v in ln.split(",")))) for ln in lines[1:]]


def _topology(kind: str, layers: list) -> str:
    if kind == "gemm":   # Layer, M, N, K, N:M
        return GEMM_HEAD + "".join(f"{n}_{nm.replace(':', 'of')},{d[0]},{d[5]},{d[1]},{nm},\n"
                                   for n, _, d, nm in layers)
    return CONV_HEAD + "".join(f"{n}_{nm.replace(':', 'of')}," + ",".join(map(str, d))
                               + f",{nm},\n" for n, _, d, nm in layers)


def run(py: str, work: Path, rows: int, cols: int, df: str, rep: str, support: bool,
        layers: list) -> list[dict]:
    """SCALE-Sim on every (layer, N:M) of ``layers``, both topology kinds: CSV rows."""
    out = []
    for kind in ("gemm", "conv"):
        these = [x for x in layers if x[1] == kind]
        if not these:
            continue
        name = f"{kind}_{rows}x{cols}_{df}_{rep}_{'sp' if support else 'dense'}"
        d = work / name
        d.mkdir()
        (d / "a.cfg").write_text(CFG.format(name=name, rows=rows, cols=cols, df=df,
                                            support=str(support).lower(), rep=rep))
        (d / "topo.csv").write_text(_topology(kind, these))
        (d / "layout.csv").write_text(LAYOUT)
        r = subprocess.run([py, "-c", DRIVER, str(d / "a.cfg"), str(d / "topo.csv"),
                            str(d / "layout.csv"), str(d / "out"), "1" if kind == "gemm" else "0"],
                           capture_output=True, text=True, cwd=d)
        said = dict(ln.split(" ", 1) for ln in r.stdout.splitlines()
                    if ln.startswith(("VERSION ", "ERROR ")))
        if "VERSION" not in said:
            sys.exit(f"{py}: SCALE-Sim did not start: {r.stderr.strip().splitlines()[-1:]}")
        err = said.get("ERROR", "" if r.returncode == 0 else f"exit {r.returncode}")
        comp = _report(d / "out" / name / "COMPUTE_REPORT.csv")
        det = _report(d / "out" / name / "DETAILED_ACCESS_REPORT.csv")
        spr = _report(d / "out" / name / "SPARSE_REPORT.csv")
        for i, (n, k, dims, nm) in enumerate(these):
            row = dict(zip(DIMS, dims), case=n, kind=k, nm=nm, array_rows=rows,
                       array_cols=cols, dataflow=df, sparsity_support=str(support).lower(),
                       sparse_rep=rep, scalesim_version=said["VERSION"], error="")
            if i < len(comp):
                row.update(total_cycles=comp[i]["Total Cycles"],
                           stall_cycles=comp[i]["Stall Cycles"],
                           mapping_efficiency_percent=comp[i]["Mapping Efficiency %"],
                           sram_ifmap_reads=det[i]["SRAM IFMAP Reads"],
                           sram_filter_reads=det[i]["SRAM Filter Reads"])
                if i < len(spr):
                    row.update(original_filter_storage=spr[i]["Original Filter Storage"],
                               new_storage=spr[i]["New Storage (Filter+Metadata)"],
                               metadata_storage=spr[i]["Filter Metadata Storage"])
            else:
                row["error"] = err or "no report row"
            out.append(row)
        print(f"{name}: {len(comp)}/{len(these)} layers" + (f" ({err})" if err else ""),
              flush=True)
    return out


def tilesim_side(rows: list[dict]) -> dict:
    """(row's key) -> tilesim's LayerResult and Mapping inputs for every CSV row: the
    run's cfg and topology (N:M column and [sparsity] section included) read by
    tilesim, ``zeros: skip`` and the N:M set through the API."""
    import warnings
    from dataclasses import replace

    import tilesim
    from tilesim.workloads import Model
    from tilesim.workloads.sparsity import Sparsity, parse_nm
    out = {}
    runs = sorted({(r["array_rows"], r["array_cols"], r["dataflow"], r["sparsity_support"],
                    r["sparse_rep"], r["kind"]) for r in rows})
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for ra, ca, df, sup, rep, kind in runs:
            these = [r for r in rows if (r["array_rows"], r["array_cols"], r["dataflow"],
                                         r["sparsity_support"], r["sparse_rep"], r["kind"])
                     == (ra, ca, df, sup, rep, kind)]
            cfg, topo = Path(tmp) / "a.cfg", Path(tmp) / "t.csv"
            cfg.write_text(CFG.format(name="t", rows=ra, cols=ca, df=df, support=sup, rep=rep))
            topo.write_text(_topology(kind, [(r["case"], kind, tuple(r[k] for k in DIMS),
                                              r["nm"]) for r in these]))
            arch = tilesim.load_arch(str(cfg))
            if sup == "true":
                arch = arch.replace("compute.arrays[0].zeros", "skip")
            model = tilesim.load_model(str(topo))
            nms = {f"{r['case']}_{r['nm'].replace(':', 'of')}": parse_nm(r["nm"]) for r in these}
            model = Model(model.name, tuple(replace(l, sparsity=Sparsity(nm=nms[l.name]))
                                            for l in model.layers), 1, model.source)
            res = {l.layer: l for l in tilesim.simulate(arch, model).layers}
            for r in these:
                out[_key(r)] = res[f"{r['case']}_{r['nm'].replace(':', 'of')}"]
    return out


def _key(r: dict) -> tuple:
    return (r["case"], r["nm"], r["array_rows"], r["array_cols"], r["dataflow"],
            r["sparsity_support"], r["sparse_rep"])


def table(path: Path) -> None:
    """Print the cycle and storage tables of docs/sparsity_scalesim.md."""
    import math

    from tilesim.mapper.sparse import format_bits
    from tilesim.workloads.sparsity import nm_kept, parse_nm
    rows = [r for r in csv.DictReader(path.open()) if r["total_cycles"]]
    ts = tilesim_side(rows)
    by = {_key(r): r for r in rows}
    cols = [("8", "8", "ws", "true", "ellpack_block"), ("32", "32", "ws", "true", "ellpack_block"),
            ("8", "4", "ws", "true", "ellpack_block"), ("8", "8", "os", "true", "ellpack_block"),
            ("8", "8", "is", "true", "ellpack_block"), ("8", "8", "ws", "false", "ellpack_block")]
    same = sum(int(r["total_cycles"]) == ts[_key(r)].compute_cycles for r in rows)
    print(f"Compute cycles, SCALE-Sim {rows[0]['scalesim_version']} Total Cycles / tilesim "
          f"compute_cycles ({same} of {len(rows)} rows equal; csr runs equal the "
          "ellpack_block ones and are left out):\n")
    print("| layer | R*S*C | N:M | kept | " + " | ".join(
        f"{c[2]} {c[0]}x{c[1]}" + ("" if c[3] == "true" else " no support") for c in cols)
        + " |")
    print("|---|---:|---|---:|" + "---:|" * len(cols))
    for name, _, _ in LAYERS:
        for nm in NMS:
            any_row = by[(name, nm) + cols[0]]
            red = int(any_row["filter_h"]) * int(any_row["filter_w"]) * int(any_row["channels"])
            cells = []
            for c in cols:
                r = by[(name, nm) + c]
                a, b = int(r["total_cycles"]), ts[_key(r)].compute_cycles
                cells.append(f"{a:,} / {b:,}" + ("" if a == b else " **differs**"))
            print(f"| {name} | {red} | {nm} | {nm_kept(red, *parse_nm(nm))} | "
                  + " | ".join(cells) + " |")
    print("\nFilter storage (ws 8x8 runs; SCALE-Sim in its 4-byte words; tilesim's formats "
          "in bits / 32 at 32-bit values, and in bytes at the cfg's int8):\n")
    print("| layer | N:M | K x kept | ellpack_block words (metadata) | tilesim nm, 32-bit "
          "values, /32 | tilesim nm, int8, bytes | csr words (metadata) | tilesim csr, "
          "int8, bytes |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name, _, _ in LAYERS:
        for nm in NMS:
            e = by[(name, nm, "8", "8", "ws", "true", "ellpack_block")]
            c = by[(name, nm, "8", "8", "ws", "true", "csr")]
            n, m = parse_nm(nm)
            red = int(e["filter_h"]) * int(e["filter_w"]) * int(e["channels"])
            k = int(e["num_filters"])
            kept = k * nm_kept(red, n, m)
            d = kept / (red * k)
            nm32 = format_bits("nm", red * k, 32, d, kept=kept, m=m) / 32
            nm8 = format_bits("nm", red * k, 8, d, kept=kept, m=m) / 8
            csr8 = format_bits("csr", red * k, 8, d, row=red) / 8
            print(f"| {name} | {nm} | {kept} | {float(e['new_storage']):g} "
                  f"({float(e['metadata_storage']):g}) | {nm32:g} | {nm8:g} | "
                  f"{float(c['new_storage']):g} ({float(c['metadata_storage']):g}) | "
                  f"{math.ceil(csr8):g} |")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("python", nargs="?",
                   help="python of a venv with scalesim==3.0.0 and numpy 1.26")
    p.add_argument("--out", type=Path, default=OUT, help=f"CSV to write (default {OUT})")
    p.add_argument("--quick", action="store_true", help="8x8 ws ellpack_block only")
    p.add_argument("--table", action="store_true",
                   help="print the doc's tables from the CSV (runs no SCALE-Sim)")
    a = p.parse_args()
    if a.table:
        table(a.out)
        return 0
    if not a.python:
        p.error("give the python of SCALE-Sim's venv (or --table)")
    layers = [(n, k, d, nm) for n, k, d in LAYERS for nm in NMS]
    rows = []
    with tempfile.TemporaryDirectory(prefix="scalesim_sparse_") as tmp:
        for spec in RUNS[:1] if a.quick else RUNS:
            rows += run(a.python, Path(tmp), *spec, layers)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    with a.out.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    print(f"{a.out}: {len(rows)} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
