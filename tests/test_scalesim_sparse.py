"""N:M weights on an array that skips them take the cycles SCALE-Sim 3.0.0's sparsity mode gives.

Golden data: benchmarks/data/scalesim_sparse.csv, 280 rows: 7 layers (4 GEMMs, 3 convs,
reductions 30, 27, 9, 150, 27, 63, 20: most not multiples of M) x N:M in 1:4, 2:4, 1:2,
2:8, 4:4 x 8 runs: ws on 8x8, 32x32 and 8x4 (SparseRep ellpack_block; csr too on 8x8 and
32x32), ws on 8x8 with SparsitySupport false, and os and is on 8x8. Written by

    python benchmarks/scalesim_sparse.py /work/ssvenv/bin/python

with ``scalesim==3.0.0`` and ``numpy==1.26.4`` in a scratch venv (never a tilesim
dependency, never run here), OptimizedMapping false, 64 MiB SRAMs and Bandwidth 1024
(no stalls: every row's stall_cycles is 0). The script's doc names the columns; they
are SCALE-Sim's COMPUTE_REPORT, DETAILED_ACCESS_REPORT and SPARSE_REPORT values verbatim.
docs/sparsity_scalesim.md has the side-by-side table and what differs by design.

Each run is fed to tilesim as a user would: the same .cfg (its [sparsity] section) and
topology (its N:M column). The readers of those two keys may not be in yet, so the array's
``zeros: skip`` (SparsitySupport true) and each layer's N:M are also set through the API;
a reader that sets them sets the same values.
"""
from __future__ import annotations

import csv
import math
import warnings
from dataclasses import replace
from pathlib import Path

import pytest

import tilesim
from tilesim.mapper import DATAFLOWS, sparse
from tilesim.mapper.dataflow import layer_dims
from tilesim.workloads import Model
from tilesim.workloads.sparsity import Sparsity, nm_kept, parse_nm

GOLDEN = Path(__file__).parents[1] / "benchmarks" / "data" / "scalesim_sparse.csv"
ROWS = list(csv.DictReader(GOLDEN.open()))
RUNS = sorted({(r["array_rows"], r["array_cols"], r["dataflow"], r["sparsity_support"],
                r["sparse_rep"]) for r in ROWS})
CFG = """[general]
run_name = {name}

[architecture_presets]
ArrayHeight = {rows}
ArrayWidth = {cols}
IfmapSramSzkB = 65536
FilterSramSzkB = 65536
OfmapSramSzkB = 65536
Dataflow = {df}
Bandwidth = 1024

[sparsity]
SparsitySupport = {support}
SparseRep = {rep}
OptimizedMapping = false
BlockSize = 8
RandomNumberGeneratorSeed = 40
"""
CONV = ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
        "Num Filter, Strides, Sparsity,\n")
GEMM = "Layer, M, N, K, Sparsity,\n"


def _name(r) -> str:
    return f"{r['case']}_{r['nm'].replace(':', 'of')}"


def _red(r) -> int:
    """The reduction of one filter (R x S x C)."""
    return int(r["filter_h"]) * int(r["filter_w"]) * int(r["channels"])


def _skips(r) -> bool:
    n, m = parse_nm(r["nm"])
    return r["sparsity_support"] == "true" and n < m


def _files(run, tmp_path, kind: str) -> tuple[Path, Path, list]:
    """The SCALE-Sim cfg and ``kind`` topology of one run (the script's, offsets and
    SRAM-bank keys left out: they change no cycle) and the golden rows they hold."""
    rows = [r for r in ROWS if (r["array_rows"], r["array_cols"], r["dataflow"],
                                r["sparsity_support"], r["sparse_rep"]) == run
            and r["kind"] == kind]
    name = f"{kind}_{run[0]}x{run[1]}_{run[2]}_{run[4]}_{run[3]}"
    cfg = tmp_path / f"{name}.cfg"
    cfg.write_text(CFG.format(name=name, rows=run[0], cols=run[1], df=run[2], support=run[3],
                              rep=run[4]))
    topo = tmp_path / f"{name}.csv"
    if kind == "gemm":   # SCALE-Sim's conv form back to M, N, K
        body = "".join(f"{_name(r)},{r['ifmap_h']},{r['num_filters']},{r['ifmap_w']},{r['nm']},\n"
                       for r in rows)
    else:
        body = "".join(",".join([_name(r)] + [r[k] for k in (
            "ifmap_h", "ifmap_w", "filter_h", "filter_w", "channels", "num_filters",
            "stride", "nm")]) + ",\n" for r in rows)
    topo.write_text((GEMM if kind == "gemm" else CONV) + body)
    return cfg, topo, rows


def _read(run, tmp_path, kind: str):
    """(arch, model, rows) of one run read from its files, with ``zeros: skip`` and each
    layer's N:M set through the API as the cfg and topology say."""
    cfg, topo, rows = _files(run, tmp_path, kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # SCALE-Sim keys tilesim does not model
        arch = tilesim.load_arch(str(cfg))
        model = tilesim.load_model(str(topo))
    if run[3] == "true":
        arch = arch.replace("compute.arrays[0].zeros", "skip")
    nms = {_name(r): parse_nm(r["nm"]) for r in rows}
    model = Model(model.name, tuple(replace(l, sparsity=Sparsity(nm=nms[l.name]))
                                    for l in model.layers), model.batch, model.source)
    return arch, model, rows


def _simulate(arch, model) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = tilesim.simulate(arch, model)
    return {l.layer: l for l in res.layers}


@pytest.mark.parametrize("kind", ["gemm", "conv"])
@pytest.mark.parametrize("run", RUNS, ids=lambda r: "_".join(r))
def test_compute_cycles_match_scalesim_sparse(run, kind, tmp_path):
    """compute_cycles == SCALE-Sim's Total Cycles for every layer x N:M of a run."""
    arch, model, rows = _read(run, tmp_path, kind)
    got = _simulate(arch, model)
    assert rows and all(r["stall_cycles"] == "0" for r in rows)
    assert {_name(r): got[_name(r)].compute_cycles for r in rows} == \
        {_name(r): int(r["total_cycles"]) for r in rows}


def test_planned_cycles_and_filter_reads_match_scalesim_sparse(tmp_path):
    """The dataflow's plan of the kept-weight GEMM (mapper.sparse.plan, serial preload)
    chained over its folds, minus 1 (SCALE-Sim counts the last cycle's index), is
    SCALE-Sim's Total Cycles, and its weight accesses are its SRAM Filter Reads: every row."""
    seen = 0
    for arch, layer, df, nm, r in _rows(tmp_path):
        assert (nm is not None) == _skips(r)
        p = sparse.plan(df, layer, layer_dims(layer), arch.array.rows,
                        arch.array.cols, nm=nm)
        assert arch.array.preload == "serial"
        assert df.chain(p, p.folds, arch.array.rows) - 1 == int(r["total_cycles"])
        assert p.accesses["weight"] == int(r["sram_filter_reads"])
        seen += 1
    assert seen == len(ROWS) == 280


def _rows(tmp_path):
    """(arch, layer, dataflow, skipped N:M or None, CSV row) of every recorded row, read
    by tilesim from the run's own cfg and topology."""
    for run in RUNS:
        for kind in ("gemm", "conv"):
            arch, model, rows = _read(run, tmp_path, kind)
            by = {l.name: l for l in model.layers}
            for r in rows:
                layer = by[_name(r)]
                yield (arch, layer, DATAFLOWS[r["dataflow"]],
                       sparse.skip_nm(layer, arch, r["dataflow"]), r)


def _run_key(r) -> tuple:
    return (r["case"], r["array_rows"], r["array_cols"], r["dataflow"], r["sparsity_support"],
            r["sparse_rep"])


def test_closed_form_with_kept_reduction():
    """SCALE-Sim's dense closed form (tests/data/scalesim_v3_golden.md) with R*S*C
    replaced by the kept values nm_kept(R*S*C, N, M) when it skips (hand formula), every
    row."""
    for row in ROWS:
        ra, ca = int(row["array_rows"]), int(row["array_cols"])
        h, w, r_, s_, k, st = (int(row[x]) for x in ("ifmap_h", "ifmap_w", "filter_h",
                                                     "filter_w", "num_filters", "stride"))
        pq = math.ceil((h - r_ + st) / st) * math.ceil((w - s_ + st) / st)
        rsc = nm_kept(_red(row), *parse_nm(row["nm"])) if _skips(row) else _red(row)
        sr, sc, t = {"os": (pq, k, rsc), "ws": (rsc, k, pq),
                     "is": (rsc, pq, k)}[row["dataflow"]]
        fold = t + ra + ca - 2 + (ra if row["dataflow"] != "os" else 0)
        assert math.ceil(sr / ra) * math.ceil(sc / ca) * fold - 1 == \
            int(row["total_cycles"]), _name(row)


def test_skipping_saves_cycles_somewhere():
    """The golden set is not all dense-equivalent: skipping N:M zeros cuts SCALE-Sim's
    cycles below the same layer's 4:4 run on 156 rows, on every dataflow, and
    SparsitySupport false leaves every N:M at the dense cycles."""
    dense = {_run_key(r): int(r["total_cycles"]) for r in ROWS if r["nm"] == "4:4"}
    faster = [r for r in ROWS if int(r["total_cycles"]) < dense[_run_key(r)]]
    assert len(faster) == 156 and {r["dataflow"] for r in faster} == {"os", "ws", "is"}
    assert all(_skips(r) for r in faster)
    assert all(int(r["total_cycles"]) == dense[_run_key(r)] for r in ROWS
               if r["sparsity_support"] == "false")


@pytest.mark.parametrize("rep", ["ellpack_block", "csr"])
def test_storage_matches_tilesim_kept_values(rep):
    """SCALE-Sim's compressed filter holds tilesim's kept weights: ellpack_block's values
    are K x nm_kept and its size in 4-byte words x 32 is tilesim's nm format at 32-bit
    values (metadata ceil(log2 M) bits a value); csr's non-zeros are the same count (its
    metadata differs by design: row pointers along the reduction, one word per index)."""
    rows = [r for r in ROWS if r["sparse_rep"] == rep and r["sparsity_support"] == "true"]
    assert len(rows) >= 35 * 2
    for r in rows:
        n, m = parse_nm(r["nm"])
        red, k = _red(r), int(r["num_filters"])
        kept = k * nm_kept(red, n, m)
        new, meta = float(r["new_storage"]), float(r["metadata_storage"])
        assert float(r["original_filter_storage"]) == red * k
        assert new - meta == kept
        if rep == "ellpack_block":
            bits = sparse.format_bits("nm", red * k, 32, kept / (red * k), kept=kept, m=m)
            assert new * 32 == bits
            assert meta * 32 == kept * (m - 1).bit_length()   # ceil(log2 M) bits a value
        else:
            assert meta == kept + red + 1


def test_input_reads_differ_by_design(tmp_path):
    """tilesim reads every input of a block (each PE picks its own weights' inputs):
    the dense input count. SCALE-Sim's one pattern for all filters lets os and is read
    only the kept inputs (the compressed plan's count), and its ws charges the kept
    inputs x M/N: the dense count where M divides R*S*C, more where the last block is short."""
    for arch, layer, df, nm, r in _rows(tmp_path):
        ra, ca = arch.array.rows, arch.array.cols
        ours = sparse.plan(df, layer, layer_dims(layer), ra, ca, nm=nm)
        packed = df.plan(sparse.compute_dims(layer, layer_dims(layer), nm), ra, ca)
        theirs = float(r["sram_ifmap_reads"])
        if nm is None:
            assert ours.accesses["input"] == theirs
        elif r["dataflow"] == "ws":
            n, m = nm
            assert theirs == packed.accesses["input"] * m / n
            assert (theirs == ours.accesses["input"]) == (_red(r) % m == 0)
        else:
            assert theirs == packed.accesses["input"] < ours.accesses["input"]


def test_scalesim_files_alone_give_scalesim_cycles(tmp_path):
    """The cfg's SparsitySupport and the topology's N:M column, read by tilesim with no
    API help, give SCALE-Sim's cycles: every run, layer and N:M."""
    for run in sorted(RUNS, key=lambda r: r != ("8", "8", "ws", "true", "ellpack_block")):
        for kind in ("gemm", "conv"):
            cfg, topo, rows = _files(run, tmp_path, kind)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = tilesim.simulate(str(cfg), str(topo))
            got = {l.layer: l.compute_cycles for l in res.layers}
            assert got == {_name(r): int(r["total_cycles"]) for r in rows}, run
