"""Sparse operands on the hardware: storage formats, their bytes, and zero skipping.

One place for what a layer's :class:`workloads.sparsity.Sparsity` does on an
architecture that declares a memory level's ``format`` or an array's ``zeros``
(``arch/schema.py``); the tiling (:func:`mapper.tiling.score_points`), the mapspace, the
cost model, the discrete-event engine and the executor read it from here.

Formats: bits of ``E`` values of ``b`` bits of which ``Z`` are non-zero (density
``d = Z / E``), metadata included:

==========  ===========================================================================
dense       ``E b``
bitmask     ``Z b + E``: the non-zero values, and one presence bit per value
rle         ``(Z + X) (b + 5)``: each non-zero value with a 5-bit count of the zeros
            before it (Eyeriss, JSSC 2017: 5-bit runs); an extra entry (a zero value,
            run 31) stands for 32 zeros, so a non-zero after ``z`` zeros takes
            ``z // 32`` extra entries, ``X`` in all; zeros after the last non-zero are
            not stored (the length is known). For i.i.d. zeros
            ``E[X] = Z q^32 / (1 - q^32)``, ``q = 1 - d`` (a run is geometric)
csr         ``Z (b + ceil(log2 L)) + (E / L) ceil(log2(L + 1))``: per row of ``L``
            values (a filter's ``C/groups x R x S``; an input row of the ``W`` columns
            the layer reads, an output row of ``Q``), the non-zero values with their
            column, and the row's count;
            a tile holding part of a row stores that part as a row of its own
nm          ``E' (b + ceil(log2 M))``: N:M weights, ``E'`` = the kept values
            (:func:`workloads.sparsity.nm_kept` per filter; a block with fewer than N
            non-zeros keeps zeros at its lowest free offsets), each with its offset in
            its block (NVIDIA A100 whitepaper, 2020: 2-bit indices for 2:4); a tile
            moves every block its values touch
==========  ===========================================================================

The functional executor (:mod:`sim.kernels.formats`, :mod:`sim.kernels.executor`)
encodes, counts and decodes every DRAM tile in these layouts. Its bytes equal the cost
model's where the format's size is linear in the count and every value is fetched
equally often (1x1 layers; csr with whole rows; nm tiles on block boundaries). The
mapper proposes only tiles of whole blocks and rows (:func:`aligned_tiles`), so cut
rows and straddled blocks arise only in hand-made tilings; where they, halos or rle
runs break the rule, the differences are measured in
``benchmarks/bench_format_bytes.py`` (docs/sparsity.md). Given the operands' values,
:mod:`mapper.actual` counts the data-dependent formats on the real tiles instead, and the
two are equal for any tiling.

Traffic and energy use the expected bytes at the layer's densities (exact when a
density was counted from real weights and the format's size depends on the count only:
bitmask, csr and nm). Capacity (what a tile occupies in a buffer) uses the **worst case**
of data-dependent formats: a tile of a tensor may hold more non-zeros than the average
share, up to all of its values, so bitmask, rle and csr tiles are checked at density 1
(their values plus metadata); nm is deterministic (every block keeps N). Partial sums
(outputs at accumulator precision) are always dense: they are being summed.

Zeros (``compute.arrays[0].zeros``):

* ``none``: every MAC is computed and costs its energy.
* ``gate``: a MAC with a zero operand costs no MAC energy (its operands are still read
  and it still takes its cycle): MAC energy x ``d_w x d_in`` (Sparseloop, MICRO 2022:
  gating saves the compute energy, not the cycle; the zero detector is not charged).
* ``skip``: N:M weights under os, ws or is compute only the kept values: the array runs
  the GEMM whose reduction is the kept values (``nm_kept``), as SCALE-Sim v3's sparse
  mode and sparse tensor cores do; each PE picks its input among the M of its block
  with its weight's offset (a mux; every input value of a block is still read). Other
  zeros (unstructured weights, activations, other dataflows) cannot be skipped in a
  lockstep array without load imbalance and are gated.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from tilesim.arch import Architecture
from tilesim.workloads import MacLayer
from tilesim.workloads.sparsity import nm_kept

#: bits of an rle entry's zero-run count (Eyeriss v1's 5-bit runs)
RLE_RUN_BITS = 5
#: dataflows whose GEMM reduction runs along the array's rows or stream, where N:M
#: weights can be compressed along it (sim.pe runs them)
NM_DATAFLOWS = ("os", "ws", "is")


def _log2(n: int) -> int:
    return math.ceil(math.log2(n)) if n > 1 else 0


def rle_extra(z: float, d: float) -> float:
    """Expected extra rle entries for ``z`` non-zeros at density ``d`` (module doc)."""
    q32 = (1.0 - d) ** (1 << RLE_RUN_BITS)
    return z * q32 / (1.0 - q32) if q32 < 1.0 else 0.0


def format_bits(fmt: str, elems: float, bits: float, density: float, row: int = 1,
                kept: float | None = None, m: int = 1) -> float:
    """Bits of ``elems`` values of ``bits`` bits at ``density`` in format ``fmt`` (the
    module doc's table); ``row``: csr's row length; ``kept`` and ``m``: nm's kept values
    and block size."""
    z = elems * density
    if fmt == "dense":
        return elems * bits
    if fmt == "bitmask":
        return z * bits + elems
    if fmt == "rle":
        return (z + rle_extra(z, density)) * (bits + RLE_RUN_BITS)
    if fmt == "csr":
        return z * (bits + _log2(row)) + (elems / row) * _log2(row + 1)
    if fmt == "nm":
        return (elems if kept is None else kept) * (bits + _log2(m))
    raise ValueError(f"unknown format {fmt!r}")


def _rows(layer: MacLayer, op: str) -> int:
    """csr's row length of an operand: a filter's values for weights, a row of Q for
    outputs, and for inputs the row's columns the layer reads (W, less any columns
    past the last window that no output needs: the row a tile of whole rows fetches)."""
    if op == "weight":
        return (layer.C // layer.groups) * layer.R * layer.S
    if op == "output":
        return layer.Q
    (_, sw), (_, pw), (_, dw) = layer.stride, layer.padding, layer.dilation
    return max(1, min(layer.W, (layer.Q - 1) * sw - pw + (layer.S - 1) * dw + 1))


def density(layer: MacLayer, op: str) -> float:
    """Share of non-zero values of ``op`` (1 for a dense layer)."""
    s = layer.sparsity
    if s is None:
        return 1.0
    if op == "weight":
        return s.weight_density((layer.C // layer.groups) * layer.R * layer.S)
    return s.input if op == "input" else s.output


def declares(arch: Architecture) -> list[str]:
    """Key paths of ``arch`` that make sparsity count: formats other than dense, and an
    array's ``zeros`` other than none (empty: sparsity changes nothing there)."""
    out = [f"memory[{i}].format" for i, m in enumerate(arch.memory)
           if any(m.format_of(op) != "dense" for op in m.holds)]
    if (arch.array.zeros or "none") != "none":
        out.append("compute.arrays[0].zeros")
    return out


@dataclass(frozen=True)
class Ratios:
    """Per (level, operand): the bytes of the operand's values in the level's format
    over their dense bytes, for traffic (expected) and for capacity (worst case)."""
    traffic: dict
    capacity: dict

    def t(self, level: str, op: str) -> float:
        return self.traffic.get((level, op), 1.0)

    def c(self, level: str, op: str) -> float:
        return self.capacity.get((level, op), 1.0)


def ratios(layer: MacLayer, arch: Architecture, bytes_per: dict) -> Ratios | None:
    """:class:`Ratios` of ``layer`` on ``arch`` (``bytes_per``: bytes per value of each
    operand, :func:`mapper.tiling.operand_bytes`), or None when no level stores an
    operand in a format other than dense (the dense numbers, untouched). A dense layer
    in a compressed format pays the format's metadata."""
    if not any(m.format is not None for m in arch.memory):
        return None
    red = (layer.C // layer.groups) * layer.R * layer.S
    elems = {"input": layer.input_elems, "weight": layer.weight_elems,
             "output": layer.output_elems}
    nm = layer.sparsity.nm if layer.sparsity is not None else None
    traffic, capacity = {}, {}
    for m in arch.memory:
        for op in m.holds:
            f = m.format_of(op)
            if f == "dense":
                continue
            b = bytes_per[op] * 8
            d = density(layer, op)
            E = elems[op]
            row = _rows(layer, op)
            if f == "nm":
                if nm is None or op != "weight":   # not N:M: stored dense
                    continue
                kept = layer.K * nm_kept(red, *nm) * (layer.N if layer.weights_are_activations
                                                      else 1)
                r = format_bits("nm", E, b, d, kept=kept, m=nm[1]) / (E * b)
                traffic[(m.name, op)] = capacity[(m.name, op)] = r
                continue
            traffic[(m.name, op)] = format_bits(f, E, b, d, row=row) / (E * b)
            capacity[(m.name, op)] = format_bits(f, E, b, 1.0, row=row) / (E * b)
    if not traffic:
        return None
    return Ratios(traffic=traffic, capacity=capacity)


def aligned_tiles(layer: MacLayer, arch: Architecture, rsel: list, cts: list):
    """The candidate output blocks ``rsel`` and channel tiles ``cts``
    (:func:`mapper.tiling.grid_axes`) whose tiles hold whole units of every format a
    level declares, so that a tile's bytes are the format's definition on that tile:
    N:M weights (the layer's ``nm``, some level storing weights as ``nm``) only channel
    tiles of whole blocks (``c_tile R S`` a multiple of M, or every channel of a group:
    a filter's last block may be short); csr weights only whole filters (``c_tile`` =
    C/groups); csr inputs or outputs only whole rows (``cols`` = Q). Unchanged without
    such formats."""
    fmts = {op: {m.format_of(op) for m in arch.memory if op in m.holds}
            for op in ("input", "weight", "output")}
    cg, rs = layer.C // layer.groups, layer.R * layer.S
    nm = layer.sparsity.nm if layer.sparsity is not None else None
    if nm is not None and "nm" in fmts["weight"]:
        cts = [c for c in cts if c >= cg or (c * rs) % nm[1] == 0]
    if "csr" in fmts["weight"]:
        cts = [c for c in cts if c >= cg]
    if "csr" in fmts["input"] | fmts["output"]:
        rsel = [r for r in rsel if r[2] >= layer.Q]
    return rsel, cts


def skip_nm(layer: MacLayer, arch: Architecture, dataflow: str) -> tuple | None:
    """(N, M) when the array skips ``layer``'s N:M weight zeros under ``dataflow``
    (``zeros: skip``, N < M, a dataflow of :data:`NM_DATAFLOWS`), else None."""
    s = layer.sparsity
    if (s is None or s.nm is None or s.nm[0] == s.nm[1] or arch.array.zeros != "skip"
            or dataflow not in NM_DATAFLOWS or layer.weights_are_activations):
        return None
    return s.nm


def compute_dims(layer: MacLayer, dims: dict, nm: tuple | None) -> dict:
    """The dims the array computes (:func:`mapper.dataflow.layer_dims` ``dims``), or
    with N:M skipping (``nm``) the GEMM whose reduction is each filter's kept values."""
    if nm is None:
        return dims
    from .dataflow import gemm_dims
    red = dims["C"] * dims["R"] * dims["S"]
    kept = nm_kept(red, *nm)
    return gemm_dims(dims["G"], dims["B"] * dims["P"] * dims["Q"], dims["N"], kept)


def performed_macs(layer: MacLayer, arch: Architecture, nm: tuple | None) -> int:
    """MACs the array performs: the layer's, or with N:M skipping those of the kept
    weights (zeros kept in short blocks included)."""
    if nm is None:
        return layer.macs
    red = (layer.C // layer.groups) * layer.R * layer.S
    return layer.macs // red * nm_kept(red, *nm)


def energy_macs(layer: MacLayer, arch: Architecture, nm: tuple | None):
    """MACs that cost MAC energy (module doc): all performed ones under ``zeros: none``;
    with ``gate`` or ``skip`` those whose operands are both non-zero, in expectation (a
    float), the skipped N:M zeros left out."""
    macs = performed_macs(layer, arch, nm)
    if layer.sparsity is None or (arch.array.zeros or "none") == "none":
        return macs
    # skipping N:M: the kept weights are the performed ones (taken as non-zero)
    dw = 1.0 if nm is not None else density(layer, "weight")
    e = macs * dw * density(layer, "input")
    return macs if e == macs else e   # an int when nothing is gated


def plan(df, layer: MacLayer, dims: dict, rows: int, cols: int, pe_entries=None,
         count: int = 1, nm: tuple | None = None):
    """``df.plan`` of the dims the array computes (:func:`compute_dims`). With N:M
    skipping every input value of a block is still read (each PE picks its own among
    them): the plan's input accesses are the dense input's elements at the compressed
    plan's reads per element, plus, under ws and is, the blocks read again in every row
    fold that cuts them (:func:`split_block_reads`)."""
    comp = compute_dims(layer, dims, nm)
    p = df.plan(comp, rows, cols, pe_entries, count)
    if nm is None:
        return p
    from dataclasses import replace
    from .dataflow import elements
    acc = dict(p.accesses)
    red = dims["C"] * dims["R"] * dims["S"]
    extra = split_block_reads(red, *nm, rows) if df.name in ("ws", "is") else 0
    acc["input"] = elements(dims)["input"] // red * (red + extra) * p.reads["input"]
    return replace(p, accesses=acc)


def split_block_reads(red: int, n: int, m: int, rows: int) -> int:
    """Input values read again, per pixel and pass, where the array's row folds cut a
    block (ws, is: the kept rows of the reduction on the rows): a block whose kept rows
    lie in several row folds has its inputs fed in each of them (:mod:`sim.pe.nm`). Each
    fold boundary ``Ra, 2 Ra, ...`` inside a block adds the block's length (M, or the
    last block's ``red % M``)."""
    kept = nm_kept(red, n, m)
    full = (red // m) * n   # kept rows of the full blocks

    def block(j):
        return (j // n, m) if j < full else (red // m, red % m)
    return sum(block(b)[1] for b in range(rows, kept, rows) if block(b - 1)[0] == block(b)[0])
