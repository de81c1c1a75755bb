"""The analytic model, vectorised over many candidate mappings at once (numpy).

:class:`VectorCost` is the cost function the mapper's search is handed: given a batch
of mapspace points (:class:`mapper.Points`) it returns, per point, the layer's cycles
(a count: :func:`sim.analytic.simulate_mac`'s ``total_cycles + 1``) and its energy in pJ
(:mod:`sim.energy`'s total). It is the same closed form as the scalar model, written
over arrays; ``tests/test_vcost.py`` checks both agree exactly on cycles and traffic
(and energy to rounding) for every point of several mapspaces, so a change to either
is caught.
"""
from __future__ import annotations

import math

import numpy as np

from tilesim.arch import Architecture
from tilesim.mapper import Points
from tilesim.workloads import MacLayer

from .analytic import fold_cycles
from .energy import HOPS_PER_MAC, OPERANDS, energy_table


def _int(a):
    """int() of every element (truncation), as the scalar model's int() does."""
    a = np.asarray(a)
    return a if a.dtype.kind in "iu" else np.trunc(a).astype(np.int64)


def _cyc(nbytes, bpc):
    if bpc is None or math.isinf(bpc):
        return np.zeros(np.shape(nbytes), dtype=np.int64)
    return np.ceil(np.asarray(nbytes) / bpc).astype(np.int64)


class VectorCost:
    """``cost(layer, points) -> (cycles, energy_pj)`` for one architecture."""

    def __init__(self, arch: Architecture):
        self.arch = arch
        self.tab = energy_table(arch)
        self.dram_bpc = arch.bytes_per_cycle(arch.dram)
        self.hidden = {op: all(l.double_buffered for l in arch.onchip if op in l.holds)
                       for op in OPERANDS}

    def __call__(self, layer: MacLayer, pts: Points):
        cycles, _ = self.evaluate(layer, pts)
        return cycles, self.energy(layer, pts, cycles)

    def evaluate(self, layer: MacLayer, pts: Points):
        """(cycles count, {level: (read_bytes, write_bytes)} on chip) per point."""
        arch, ev = self.arch, pts.ev
        a = arch.array
        n = len(pts)
        comp = np.empty(n, dtype=np.int64)
        folds = layer.groups * pts.row_folds * pts.col_folds
        per_array = -(-folds // a.count)
        for d in np.unique(pts.dataflow):
            sel = pts.dataflow == d
            fc = fold_cycles(pts.dataflows[int(d)], a.rows, a.cols, int(pts.stream_len[sel][0]))
            comp[sel] = per_array[sel] * fc - 1
        ri, rw, rp, wo = (_int(ev[k]) for k in ("read_input", "read_weight", "read_psum",
                                                 "write_output"))
        mem = _cyc(ri + rw + rp + wo, self.dram_bpc)
        by_op = {"input": ri, "weight": rw, "output": rp + wo}
        exposed = sum(b for op, b in by_op.items() if not self.hidden[op]) + np.zeros(n, np.int64)
        first = sum(_int(ev["tile_bytes"][op]) for op in ("input", "weight") if self.hidden[op])
        first = first + np.zeros(n, np.int64)
        last = _int(ev["last_store"]) if self.hidden["output"] else np.zeros(n, np.int64)
        bpc = self.dram_bpc
        overlap = _cyc(first, bpc) + comp + 1 + _cyc(exposed, bpc) + _cyc(last, bpc)
        act_ops = layer.output_elems if layer.activation else 0
        # memory-bound drain (as sim.analytic.simulate_mac): the last tile computes only
        # after every read has landed, and its output leaves only after that compute
        tile_comp = (comp + 1) // (ev["Tr"] * ev["Tk"] * ev["Tc"])
        drain = _cyc(ri + rw + rp, bpc) + tile_comp + _cyc(_int(ev["last_store"]), bpc)
        # ... and the head: the first tile's reads, then only the next tile's reads overlap
        # the first tile's compute (sim.analytic.simulate_mac)
        f0 = _int(ev["tile_bytes"]["input"]) + _int(ev["tile_bytes"]["weight"])
        nxt = np.maximum(0, np.minimum(f0, ri + rw + rp - f0))
        head = (_cyc(f0, bpc) + np.maximum(tile_comp, _cyc(nxt, bpc))
                + _cyc(np.maximum(0, ri + rw + rp + wo - f0 - nxt), bpc))
        total = np.maximum(overlap, np.maximum(np.maximum(mem, drain), head))
        total = np.maximum(total, math.ceil(act_ops / arch.compute.vector.lanes))
        bb = self.buffer_bytes(layer, pts, ri, rw, rp, wo)
        for lvl in arch.onchip:
            r, w = bb[lvl.name]
            total = np.maximum(total, _cyc(r + w, arch.bytes_per_cycle(lvl)))
        return total, bb

    def buffer_bytes(self, layer: MacLayer, pts: Points, ri, rw, rp, wo, by_operand=False):
        """Vectorised :func:`sim.analytic.buffer_bytes` (``by_operand``: keyed (level, op))."""
        arch = self.arch
        pb = arch.precision.bytes
        g, M, N, K = layer.gemm
        elems = {"input": g * M * K, "weight": g * N * K, "output": g * M * N}
        n = len(pts)
        zero = np.zeros(n, dtype=np.int64)
        out = {(l.name, op): [zero, zero] for l in arch.onchip for op in l.holds}
        fills = {"input": ri, "weight": rw, "output": rp}
        for op in OPERANDS:
            holders = [l for l in arch.onchip if op in l.holds]
            inner = holders[-1].name
            f = pts.reads[op]
            r, w = out[(inner, op)]
            if op == "output":
                w = w + _int(elems[op] * f * pb["accumulator"])
                r = r + _int(elems[op] * (f - 1) * pb["accumulator"])
            else:
                r = r + _int(elems[op] * f * pb[op])
            out[(inner, op)] = [r, w]
            for l in holders:
                r, w = out[(l.name, op)]
                w = w + fills[op]
                if op == "output":
                    r = r + wo
                out[(l.name, op)] = [r, w]
        if by_operand:
            return out
        tot = {}
        for (name, _), (r, w) in out.items():
            pr, pw = tot.get(name, (zero, zero))
            tot[name] = (pr + r, pw + w)
        return tot

    def energy(self, layer: MacLayer, pts: Points, cycles) -> np.ndarray:
        """Total pJ per point, the sum of :mod:`sim.energy`'s terms."""
        arch, tab, ev = self.arch, self.tab, pts.ev
        macs = layer.macs
        act_ops = layer.output_elems if layer.activation else 0
        e = np.full(len(pts), macs * tab.mac.value + HOPS_PER_MAC * macs * tab.hop.value
                    + act_ops * tab.vector_op.value)
        ri, rw, rp, wo = (_int(ev[k]) for k in ("read_input", "read_weight", "read_psum",
                                                 "write_output"))
        d = arch.dram.name
        e = e + (ri + rw + rp) * tab.read[d].value + wo * tab.write[d].value
        for (name, _), (r, w) in self.buffer_bytes(layer, pts, ri, rw, rp, wo,
                                                   by_operand=True).items():
            e = e + r * tab.read[name].value + w * tab.write[name].value
        return e + tab.leakage_w * np.asarray(cycles) / tab.clock_hz * 1e12

