"""The closed-form timing model: compute from the fold formula, memory from the
mapping's traffic, combined under double buffering.

Per-fold compute (cycle-exact with SCALE-Sim v3; proven against its reports in
``tests/test_scalesim_golden.py``). With an Ra x Ca array and T the length of the
streamed GEMM dim (see :mod:`mapper.dataflow`):

* os: ``T + Ra + Ca - 2``  - operands skew in over Ra - 1 cycles, stream T cycles,
  the last partial sums ripple through Ca - 1 columns; outputs stay in the PEs.
* ws / is: ``T + 2 Ra + Ca - 2`` - the same plus Ra cycles to shift the stationary
  operand (weights / inputs) down the Ra rows before streaming.

Partial folds cost as much as full ones (the skew does not shrink), folds do not
overlap, and ``compute_cycles = folds_per_array * per_fold - 1`` (the index of the
last cycle, counting from 0: SCALE-Sim's convention). ``folds_per_array`` is
ceil(groups * row_folds * col_folds / count) when ``count`` arrays share the layer.

Memory: DRAM moves the mapping's traffic at the DRAM bandwidth, ``memory_cycles =
ceil(bytes / bytes_per_cycle)``. The first input + weight tile must arrive before
compute starts and the last output tile leaves after it ends. Traffic of an operand
whose on-chip levels are all double-buffered overlaps compute, except that first
tile (inputs, weights) or last tile (outputs); any other operand's whole traffic is
serialised with compute (``exposed``). So the layer occupies

    max(first_tiles + (compute_cycles + 1) + exposed + last_tile,
        max(memory_cycles, reads + tile_compute + last_tile,
            first_reads + max(tile_compute, next_reads) + rest),
        vector-unit cycles of a fused activation, each on-chip level's bytes / bandwidth)

where ``reads`` is every DRAM read in cycles and ``tile_compute`` is
``(compute_cycles + 1) // tiles``. When DRAM is the bottleneck the reads stream back to
back, but the last tile's compute cannot start before its operands (the last reads)
have landed, and the last output tile cannot leave before that compute ends, so neither
is hidden (the drain). Symmetrically at the start (the head): ``first_reads`` (the first
input + weight tile) must land before anything computes, and while the first tile
computes DRAM can only prefetch ``next_reads`` = min(first_reads, the other reads),
since no output exists yet to write back; ``rest`` is the remaining traffic. The
discrete-event engine (:mod:`sim.des`) shows both; they matter on layers of few tiles.

cycles, and ``stall_cycles`` is what that adds to the compute cycles. With unlimited
bandwidth the layer takes exactly its compute cycles.
"""
from __future__ import annotations

import math

from tilesim.arch import Architecture
from tilesim.mapper import Mapping
from tilesim.workloads import OpLayer

from .results import LayerResult


def fold_cycles(dataflow: str, rows: int, cols: int, stream: int) -> int:
    """Cycles of one fold on a rows x cols array streaming ``stream`` elements."""
    if dataflow == "os":
        return stream + rows + cols - 2
    return stream + 2 * rows + cols - 2


def compute_cycles(m: Mapping) -> int:
    """Last-cycle index of the array for the whole layer (SCALE-Sim's Total Cycles)."""
    return m.folds_per_array * fold_cycles(m.dataflow.name, m.array_rows, m.array_cols,
                                           m.stream_len) - 1


def _cyc(nbytes: float, bpc: float | None) -> int:
    return 0 if not nbytes or bpc is None or math.isinf(bpc) else math.ceil(nbytes / bpc)


def buffer_bytes(m: Mapping, arch: Architecture) -> dict:
    """Bytes read and written at each on-chip level.

    The innermost level holding an operand feeds the array: it is read once per array
    access (stationary operands once, streamed ones once per fold across them); the
    innermost output level takes every partial sum at accumulator precision. Every
    level holding an operand is written by the DRAM fills of it and read by the
    write-back of outputs.
    """
    pb = arch.precision.bytes
    g = m.groups
    elems = {"input": g * m.M * m.K, "weight": g * m.N * m.K, "output": g * m.M * m.N}
    out = {lvl.name: {"read": 0, "write": 0} for lvl in arch.onchip}
    t = m.traffic
    fills = {"input": t.read_input, "weight": t.read_weight, "output": t.read_psum}
    for op in ("input", "weight", "output"):
        holders = [l for l in arch.onchip if op in l.holds]
        inner = holders[-1].name
        f = m.dataflow.reads_per_element(op, m.row_folds, m.col_folds)
        if op == "output":
            out[inner]["write"] += int(elems[op] * f * pb["accumulator"])
            out[inner]["read"] += int(elems[op] * (f - 1) * pb["accumulator"])
        else:
            out[inner]["read"] += int(elems[op] * f * pb[op])
        for l in holders:
            out[l.name]["write"] += fills[op]
            if op == "output":
                out[l.name]["read"] += t.write_output
    return out


def simulate_mac(m: Mapping, arch: Architecture) -> LayerResult:
    layer = m.layer
    comp = compute_cycles(m)
    dram_bpc = arch.bytes_per_cycle(arch.dram)
    t = m.traffic
    mem = _cyc(t.total, dram_bpc)
    by_op = {"input": t.read_input, "weight": t.read_weight, "output": t.read_psum + t.write_output}
    hidden = {op: all(l.double_buffered for l in arch.onchip if op in l.holds) for op in by_op}
    exposed = sum(b for op, b in by_op.items() if not hidden[op])
    tb = m.tiling.tile_bytes
    first = sum(tb[op] for op in ("input", "weight") if hidden[op])
    last = t.last_store if hidden["output"] else 0
    overlap = (_cyc(first, dram_bpc) + comp + 1 + _cyc(exposed, dram_bpc) + _cyc(last, dram_bpc))
    act_ops = layer.output_elems if layer.activation else 0
    # memory-bound: the last tile computes only after every read has landed, and its
    # output leaves only after that compute
    tile_comp = (comp + 1) // m.tiling.n_tiles
    drain = _cyc(t.read, dram_bpc) + tile_comp + _cyc(t.last_store, dram_bpc)
    # ... and at the start, while the first tile computes, DRAM can only prefetch the next
    # tile's operands (at most one tile's worth): no output exists yet to write back
    f0 = tb["input"] + tb["weight"]
    nxt = max(0, min(f0, t.read - f0))
    head = (_cyc(f0, dram_bpc) + max(tile_comp, _cyc(nxt, dram_bpc))
            + _cyc(max(0, t.total - f0 - nxt), dram_bpc))
    bounds = {"compute": overlap, "memory": max(mem, drain, head),
              "vector": math.ceil(act_ops / arch.compute.vector.lanes)}
    bb = buffer_bytes(m, arch)
    for lvl in arch.onchip:
        bounds[f"{lvl.name} bandwidth"] = _cyc(bb[lvl.name]["read"] + bb[lvl.name]["write"],
                                               arch.bytes_per_cycle(lvl))
    bound = max(bounds, key=lambda k: (bounds[k], k == "compute"))
    if bounds[bound] == bounds["compute"]:
        bound = "compute" if overlap == comp + 1 else "memory"
    total = max(bounds.values()) - 1
    tl = m.tiling
    r_desc = (f"{tl.images}img" if tl.rows == layer.P else
              f"{tl.rows}row" if tl.cols == layer.Q else f"1row,{tl.cols}col")
    return LayerResult(
        layer=layer.name, kind=layer.kind, macs=layer.macs, vector_ops=act_ops,
        compute_cycles=comp, stall_cycles=total - comp, total_cycles=total, memory_cycles=mem,
        utilization=layer.macs / (arch.peak_macs_per_cycle * (total + 1)),
        dram_read_bytes=t.read, dram_write_bytes=t.write_output,
        dram_read_input_bytes=t.read_input, dram_read_weight_bytes=t.read_weight,
        dram_read_psum_bytes=t.read_psum, bound=bound, folds=m.folds,
        row_folds=m.row_folds, col_folds=m.col_folds,
        tiling=f"r:{r_desc} k:{tl.k_tile} c:{tl.c_tile} order {'>'.join(tl.order)}",
        buffer_bytes=bb)


def simulate_op(layer: OpLayer, arch: Architecture) -> LayerResult:
    """A non-MAC op on the vector unit: its input read from and output written to DRAM.

    On chip, the input passes through every level that holds inputs (written by the
    fill, read by the vector unit) and the output through every level that holds
    outputs (written by the vector unit, read by the write-back)."""
    pb = arch.precision.bytes
    rd = int(layer.in_elems * pb["output"])
    wr = int(layer.out_elems * pb["output"])
    vec = math.ceil(layer.ops / arch.compute.vector.lanes)
    mem = _cyc(rd + wr, arch.bytes_per_cycle(arch.dram))
    busy = max(vec, mem, 1)
    return LayerResult(
        layer=layer.name, kind=layer.kind, macs=0, vector_ops=layer.ops,
        compute_cycles=max(vec, 1) - 1, stall_cycles=busy - max(vec, 1), total_cycles=busy - 1,
        memory_cycles=mem, utilization=0.0, dram_read_bytes=rd, dram_write_bytes=wr,
        dram_read_input_bytes=rd, bound="vector" if vec >= mem else "memory",
        buffer_bytes={l.name: {"read": rd * ("input" in l.holds) + wr * ("output" in l.holds),
                               "write": rd * ("input" in l.holds) + wr * ("output" in l.holds)}
                      for l in arch.onchip})
