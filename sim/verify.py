"""``tilesim verify``: prove the mapping and the cycle formula on real numbers.

For each MAC layer of a model (or the first ``layers`` of them):

1. **Executor**: random operands at the architecture's precisions (with zeros at a
   sparse layer's densities, N:M weights structured); the mapping the
   mapper chose is executed tile by tile (:mod:`sim.kernels.executor`; DRAM tiles
   encoded and decoded in DRAM's declared formats) and compared
   with the reference kernel (:func:`sim.kernels.conv2d_layer`). Integer precisions must
   agree bit for bit; float ones within the rounding bound ``n * eps32 * sum|x*w|`` per
   output (n = the reduction length + 1, eps32 = 2^-23). The tiles fetched must also fit
   the tile sizes the mapping charged to its buffers (``tiling.tile_bytes``; in a
   compressed DRAM format, the tile's bytes in it at the layer's densities).
2. **PE model**: the layer's GEMM runs on the register-level array model
   (:mod:`sim.pe`); its output is compared with the reference in the same way and its
   last-output cycle index with the cost model's compute cycles
   (:func:`sim.cost.mapping_compute_cycles`), which must be equal.
3. **Bytes**: the executor's bytes moved between levels (every transfer into and out
   of DRAM and each shared on-chip level, in each level's format, metadata included)
   must equal the cost model's transfers for the same mapping counted on the same
   operands (:mod:`mapper.actual`); the cost model's figure at the layer's densities
   (what ``tilesim run`` reports without data) is shown next to them.

A sparse layer gets zeros at its densities and N:M weights structured
(:func:`random_operands`), so that an array that skips N:M zeros runs them (a mapping
with ``skip``: :mod:`sim.pe.nm`).

Shrinking (documented in docs/outputs.md): a layer whose cost exceeds a budget is
replaced by a smaller copy of itself that keeps its kind, filter size R x S, stride,
padding and dilation: batch 1 first, then repeatedly the largest of its GEMM
dimensions is halved (rounding up) - output pixels M = P*Q (by halving the output
height or width, whichever is larger, and giving the input the size that produces
it), filters per group K/G, input channels per group C/G, or the group count G - until
the cost fits. The budgets: the executor runs layers up to ``exec_macs`` MACs (default
300 M); the PE model runs layers whose work (every array's cycles x PEs; with serial
preload folds x per-fold cycles x PEs) is at most
``pe_budget`` (default 100 M PE-cycles, about 0.4 s). A layer that cannot shrink enough
(an array so large that one fold exceeds the budget) is reported as PE "skipped".
The shrunk copy is mapped afresh by the same mapper (the PE budget is judged with the
full layer's dataflow; a configurable array may map the copy with another).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from tilesim._input import check_number
from tilesim.arch import Architecture
from tilesim.mapper import DATAFLOWS, Mapper
from tilesim.mapper.actual import Tensors
from tilesim.mapper.tiling import operand_bytes
from tilesim.mapper.dataflow import layer_dims
from tilesim.mapper.space import pe_entries
from tilesim.workloads import MacLayer, Model
from tilesim.workloads.ir import conv_out

from .cost import mapping_compute_cycles
from .kernels import conv2d_layer
from .kernels.executor import execute

INT_RANGES = {"int4": (-8, 8), "int8": (-128, 128), "uint8": (0, 256), "int16": (-32768, 32768),
              "int32": (-32768, 32768)}
EPS32 = 2.0 ** -23


@dataclass(frozen=True)
class LayerCheck:
    """The verification of one MAC layer. Cycle figures are last-cycle indices."""
    layer: str
    dataflow: str            # the dataflow of the mapping verified (searched when configurable)
    exec_shape: str          # "full" or the shrunk copy "NxCxHxW->K" the executor ran
    tiles: int               # tiles the executor ran
    exec_max_err: float      # max |executor - reference| over the outputs
    exec_ok: bool            # within tolerance (0 for integers) and tiles fit their buffers
    tiles_fit: bool
    pe_shape: str            # "full", a shrunk "NxCxHxW->K", or "skipped: why"
    pe_max_err: float | None
    pe_cycles: int | None    # the PE model's last-output cycle index
    analytic_cycles: int | None  # compute_cycles of the same (possibly shrunk) layer
    pe_ok: bool | None       # outputs within tolerance and cycles equal; None if skipped
    exec_bytes: int = 0      # bytes the executor moved between levels (DRAM and shared levels)
    model_bytes: int = 0     # the cost model's transfers between the same levels, on the same data
    density_bytes: int = 0   # the cost model's transfers at the layer's densities (no data)

    @property
    def bytes_ok(self) -> bool:
        """The cost model counted on the executor's data moves its bytes exactly."""
        return self.exec_bytes == self.model_bytes

    @property
    def ok(self) -> bool:
        return self.exec_ok and self.pe_ok is not False and self.bytes_ok


@dataclass(frozen=True)
class VerifyResult:
    arch: str
    model: str
    precision: str
    seed: int
    mapper: str               # how layers were mapped, e.g. "searched (edp, heuristic)"
    checks: tuple[LayerCheck, ...]
    skipped_ops: int          # non-MAC layers (vector unit), not verified here

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def frame(self):
        import pandas as pd
        rows = []
        for c in self.checks:
            d = {k: getattr(c, k) for k in c.__dataclass_fields__}
            d["cycles_match"] = (None if c.pe_cycles is None
                                 else c.pe_cycles == c.analytic_cycles)
            d["bytes_ok"] = c.bytes_ok
            d["bytes_diff_pct"] = _pct(c.exec_bytes, c.model_bytes)
            d["density_diff_pct"] = _pct(c.exec_bytes, c.density_bytes)
            d["status"] = "pass" if c.ok else "FAIL"
            rows.append(d)
        return pd.DataFrame(rows)


def _pct(a: int, b: int) -> float:
    """``100 (a - b) / b``; 0 when equal."""
    return 0.0 if a == b else 100.0 * (a - b) / max(b, 1)


def _is_int(prec: str) -> bool:
    return prec in INT_RANGES


def _round_float(a: np.ndarray, prec: str) -> np.ndarray:
    """fp32 values rounded to ``prec`` (fp16, bf16, tf32; fp32 unchanged), round to nearest even."""
    a = a.astype(np.float32)
    if prec == "fp16":
        return a.astype(np.float16).astype(np.float32)
    drop = {"bf16": 16, "tf32": 13}.get(prec)
    if drop is None:
        return a
    u = a.view(np.uint32).astype(np.uint64)
    half = (1 << (drop - 1)) - 1
    u = (u + half + ((u >> drop) & 1)) >> drop << drop
    return u.astype(np.uint32).view(np.float32)


def random_operands(layer: MacLayer, arch: Architecture, rng: np.random.Generator):
    """Input (N, C, H, W) and weights (K, C/G, R, S) at the architecture's precisions."""
    p = arch.precision
    shapes = {"input": (layer.N, layer.C, layer.H, layer.W),
              "weight": (layer.K, layer.C // layer.groups, layer.R, layer.S)}
    precs = {"input": p.input, "weight": p.input if layer.weights_are_activations else p.weight}
    out = []
    for op in ("input", "weight"):
        prec = precs[op]
        if _is_int(prec):
            lo, hi = INT_RANGES[prec]
            dt = (np.uint8 if prec == "uint8" else
                  np.int16 if prec in ("int16", "int32") else np.int8)
            out.append(rng.integers(lo, hi, shapes[op], dtype=dt))
        else:
            out.append(_round_float(rng.standard_normal(shapes[op], dtype=np.float32), prec))
    if _is_int(precs["input"]) != _is_int(precs["weight"]):  # mixed: compute in float
        out = [o.astype(np.float32) for o in out]
    return _sparsify(layer, out[0], out[1], rng)


def _sparsify(layer: MacLayer, x: np.ndarray, w: np.ndarray, rng: np.random.Generator):
    """Zeros at the layer's sparsity (none for a dense layer, which draws nothing more):
    inputs kept i.i.d. with probability ``input``; weights N:M (each block of M along a
    filter's flattened (c, r, s), from its first value, keeps N random positions) or
    kept i.i.d. with probability ``weight``."""
    s = layer.sparsity
    if s is None:
        return x, w
    if s.input < 1:
        x = np.where(rng.random(x.shape) < s.input, x, 0).astype(x.dtype)
    if s.nm is not None and not layer.weights_are_activations:
        n, m = s.nm
        K, red = w.shape[0], w[0].size
        nb = -(-red // m)
        keys = rng.random((K, nb * m))
        keys[:, red:] = 2.0   # past the filter's end: never among a block's N
        rank = np.argsort(np.argsort(keys.reshape(K, nb, m), axis=2), axis=2)
        keep = (rank < n).reshape(K, nb * m)[:, :red].reshape(w.shape)
        w = np.where(keep, w, 0).astype(w.dtype)
    elif s.weight < 1:
        w = np.where(rng.random(w.shape) < s.weight, w, 0).astype(w.dtype)
    return x, w


def _compare(got, ref, layer, x, w) -> tuple[float, bool]:
    if np.issubdtype(ref.dtype, np.integer):
        err = int(np.max(np.abs(got.astype(np.int64) - ref.astype(np.int64)), initial=0))
        return float(err), err == 0
    bound = conv2d_layer(layer, np.abs(x), np.abs(w)).astype(np.float64)
    n = (layer.C // layer.groups) * layer.R * layer.S + 1
    diff = np.abs(got.astype(np.float64) - ref.astype(np.float64))
    return float(diff.max(initial=0.0)), bool(np.all(diff <= n * EPS32 * bound + 1e-30))


def _rebuild(layer: MacLayer, n, g, cg, kg, p, q) -> MacLayer:
    (sh, sw), (ph, pw), (dh, dw) = layer.stride, layer.padding, layer.dilation
    if (p, q) == (layer.P, layer.Q):
        h, w = layer.H, layer.W
    else:
        h = max(1, (p - 1) * sh + (layer.R - 1) * dh + 1 - 2 * ph)
        w = max(1, (q - 1) * sw + (layer.S - 1) * dw + 1 - 2 * pw)
        p, q = max(1, conv_out(h, layer.R, sh, ph, dh)), max(1, conv_out(w, layer.S, sw, pw, dw))
    return replace(layer, name=layer.name, N=n, C=g * cg, K=g * kg, groups=g, H=h, W=w, P=p, Q=q)


def shrink(layer: MacLayer, cost, budget: float) -> MacLayer:
    """The layer itself if ``cost(layer) <= budget``, else a smaller copy (module doc)."""
    if cost(layer) <= budget:
        return layer
    n, g, cg, kg, p, q = (1, layer.groups, layer.C // layer.groups, layer.K // layer.groups,
                          layer.P, layer.Q)
    cur = _rebuild(layer, n, g, cg, kg, p, q)
    while cost(cur) > budget:
        dims = {"M": cur.P * cur.Q if cur.P * cur.Q > 1 else 0, "K": kg if kg > 1 else 0,
                "C": cg * cur.R * cur.S if cg > 1 else 0, "G": g if g > 1 else 0}
        big = max(dims, key=lambda d: dims[d])
        if dims[big] == 0:
            break
        p, q = cur.P, cur.Q
        if big == "M":
            if p >= q:
                p = -(-p // 2)
            else:
                q = -(-q // 2)
        elif big == "K":
            kg = -(-kg // 2)
        elif big == "C":
            cg = -(-cg // 2)
        else:
            g = -(-g // 2)
        nxt = _rebuild(layer, n, g, cg, kg, p, q)
        if big == "M" and (nxt.P, nxt.Q) == (cur.P, cur.Q):
            break  # padding keeps the output from shrinking further
        cur = nxt
    return cur


def describe(layer: MacLayer, orig: MacLayer) -> str:
    if layer is orig:
        return "full"
    return f"{layer.N}x{layer.C}x{layer.H}x{layer.W}->{layer.K}"


def pe_work(layer: MacLayer, arch: Architecture, dataflow: str) -> int:
    """PE-cycle updates of the PE model for ``layer`` with ``dataflow`` (every array's
    cycles x PEs, :func:`sim.pe.array_work`), from the GEMM dims alone (no mapping
    needed)."""
    from .pe import array_work
    a = arch.array
    df = DATAFLOWS[dataflow]
    p = df.plan(layer_dims(layer), a.rows, a.cols, pe_entries(layer, arch), a.count)
    return array_work(df, p, a.rows, a.cols, a.count, a.preload)


def verify_layer(layer: MacLayer, arch: Architecture, mapper, rng,
                 exec_macs: float = 3e8, pe_budget: float = 1e8) -> LayerCheck:
    """Check one MAC layer (see the module doc); ``mapper.map`` gives its mappings."""
    from .pe import simulate_mapping, work
    layer = layer.nest  # a MatMul of two activations: its batch folded into the groups
    pb = operand_bytes(layer, arch)
    el = shrink(layer, lambda l: l.macs, exec_macs)
    m = mapper.map(el)
    x, w = random_operands(el, arch, rng)
    ref = conv2d_layer(el, x, w)
    tb = m.tiling.tile_bytes
    ex = execute(m, x, w, arch=arch)
    # each operand's largest tile where it first lands on chip, in DRAM's format at the
    # layer's densities (tile_bytes truncates), inner tilings included
    from tilesim.mapper.sparse import ratios
    rat = ratios(el, arch, pb)
    r = {op: 1.0 if rat is None else rat.t(arch.dram.name, op) for op in pb}
    fit = (ex.max_tile_elems["input"] * pb["input"] * r["input"] < tb["input"] + 1
           and ex.max_tile_elems["weight"] * pb["weight"] * r["weight"] < tb["weight"] + 1
           and ex.max_tile_elems["output"] * pb["accumulator"] <= tb["output"]
           and ex.tiles == m.tiling.n_tiles)
    err, ok = _compare(ex.output, ref, el, x, w)
    df = m.dataflow.name
    pl = shrink(layer, lambda l: pe_work(l, arch, df), pe_budget)
    pm = mapper.map(pl) if pl is not el else m
    tiles = ex.nest_tiles if m.tiling.inner and ex.nest_tiles else ex.tiles   # innermost
    head = (layer.name, pm.dataflow.name, describe(el, layer), tiles, err, ok and fit, fit)
    moved = _bytes_moved(m, arch, ex, Tensors(x, w, ref))
    if work(pm) > pe_budget:
        return LayerCheck(*head, f"skipped: {work(pm):.2g} PE-cycles > budget {pe_budget:.2g}",
                          None, None, mapping_compute_cycles(pm, arch), None, *moved)
    if pl is not el:
        x, w = random_operands(pl, arch, rng)
        ref = conv2d_layer(pl, x, w)
    out, r = simulate_mapping(pm, x, w)
    perr, pok = _compare(out, ref, pl, x, w)
    ana = mapping_compute_cycles(pm, arch)
    return LayerCheck(*head, describe(pl, layer), perr, r.last_cycle, ana,
                      pok and r.last_cycle == ana, *moved)


def _bytes_moved(m, arch: Architecture, ex, data) -> tuple[int, int, int]:
    """(executor, cost model on ``data``, cost model at the densities) bytes moved
    between levels for mapping ``m``: the executor's ``level_bits`` (every transfer into
    and out of DRAM and the shared on-chip levels, in each level's format; each entry
    in whole bytes, as the cost model counts) and the cost model's transfers between
    the same levels (:func:`mapper.tiling.score_points`), counted on the executor's
    operands (:mod:`mapper.actual`) and at the layer's densities, each summed over
    operands, reads and writes. Zeros when the executor walked no levels (k tiles
    cutting groups)."""
    if not ex.level_bits:
        return 0, 0, 0
    from tilesim.mapper import points_of

    def total(t):
        return sum(int(t[k][0][0]) + int(t[k][1][0]) for k in ex.level_bits if k in t)
    got = sum(r // 8 + w // 8 for r, w in ex.level_bits.values())
    return (int(got), total(points_of(m, arch, data).tiles.transfers),
            total(points_of(m, arch).tiles.transfers))


def verify_model(model: Model, arch: Architecture, layers: int | None = None, seed: int = 0,
                 exec_macs: float = 3e8, pe_budget: float = 1e8, progress=None,
                 mapper=None) -> VerifyResult:
    """Verify the first ``layers`` MAC layers of ``model`` (all if None) on ``arch``.

    ``mapper`` (anything with ``.map(layer) -> Mapping``) defaults to a
    :class:`mapper.Mapper` for the ``traffic`` objective; the API and CLI pass the mapper that
    ``tilesim run`` uses, so the mappings verified are the ones simulated."""
    seed = check_number(seed, "seed", lambda m, fix: ValueError(f"{m}; {fix}"), lo=0,
                        integer=True)   # numpy takes no negative seed
    rng = np.random.default_rng(seed)
    if mapper is None:
        from .run import make_mapper
        mapper = make_mapper(arch, "traffic")
    macs = model.mac_layers[:layers] if layers is not None else model.mac_layers
    checks = []
    for i, l in enumerate(macs):
        if progress:
            progress(i, len(macs), l.name)
        checks.append(verify_layer(l, arch, mapper, rng, exec_macs, pe_budget))
    p = arch.precision
    how = (f"searched ({mapper.objective}, {mapper.strategy})" if isinstance(mapper, Mapper)
           else type(mapper).__name__)
    return VerifyResult(arch=arch.name, model=model.name,
                        precision=f"{p.input} x {p.weight} -> {p.accumulator}", seed=seed,
                        mapper=how, checks=tuple(checks),
                        skipped_ops=len(model.layers) - len(model.mac_layers))
