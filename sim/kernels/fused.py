"""The fused-schedule executor: runs a :class:`sim.fusion.FusedGroup` depth-first on integer
tensors, strip by strip, and measures what it moves, holds and computes.

:func:`run_fused` follows the steps of :func:`sim.fusion.schedule` (loads, compute, write,
free; the module docstring of :mod:`sim.fusion` states them) with real data:

* "DRAM" holds only the group's external input tensors (the network input and outputs
  of layers before the group, as given in ``inputs``) and the weights; reading anything
  else raises. Every element copied out of it is counted; the weights are read once.
* the chip is a store of row windows, one contiguous block ``(C, rows, W)`` per tensor of
  the image in flight. A layer computes its rows from the store only: the input rows
  its window needs (worked out here from the layer's geometry, independently of the
  plan) must all be on chip, else the executor raises. Rows appended to a tensor must
  follow the rows it holds. After each step the store keeps what the plan says, so a
  plan that frees a row too early fails at the next read.
* the on-chip bytes (the store's activation elements at ``act_bytes`` plus the group's
  weights at ``weight_bytes``) are measured at every step, after its loads and its
  compute; above ``onchip_limit`` the run raises :class:`sim.fusion.OnChipLimitError`.
* output rows go to the DRAM output tensors; writing an element twice raises, and an
  output left incomplete raises.
* MACs are counted from the products actually formed.

Numerics: every layer's output is int32 (two's-complement wrap-around, the accumulator's
width, as :mod:`sim.kernels.reference` computes), with the fused ``relu`` (max 0) or
``relu6`` (clip to 0..6) applied to it; products and sums are formed in int64 and wrapped
once, which equals the reference's int32 accumulation modulo 2^32 whatever the order.
``maxpool`` ignores padding; ``avgpool`` sums its window with padding as zeros and
floor-divides by ``R x S``; ``add`` wraps. :func:`reference_outputs` computes the same
layer by layer on whole tensors (convolutions on the reference kernels), so comparing
the two proves the schedule.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tilesim.workloads import MacLayer

from ..fusion import (FusedCosts, FusedGroup, FusionError, OnChipLimitError, nbytes, resolve,
                      schedule)
from .reference import conv2d_layer

_FILL_MAX = np.iinfo(np.int64).min


@dataclass(frozen=True)
class FusedRun:
    """What :func:`run_fused` produced: the tensors it wrote to DRAM (name -> (N, K, P, Q)
    int32) and its measured counts (equal to :func:`sim.fusion.fused_costs`)."""
    outputs: dict
    counts: FusedCosts


class _Chip:
    """The on-chip store of one image: tensor name -> (first row, (C, rows, W) block)."""

    def __init__(self):
        self.blocks: dict = {}

    def elems(self, skip=()) -> int:
        return sum(b.size for t, (_, b) in self.blocks.items() if t not in skip)

    def put(self, name: str, lo: int, rows: np.ndarray) -> None:
        if name not in self.blocks:
            self.blocks[name] = (lo, rows)
            return
        a, blk = self.blocks[name]
        if lo != a + blk.shape[1]:
            raise FusionError(f"executor: rows from {lo} of {name!r} do not follow the rows "
                              f"{a}..{a + blk.shape[1] - 1} on chip")
        self.blocks[name] = (a, np.concatenate([blk, rows], axis=1))

    def rows(self, name: str, lo: int, hi: int) -> np.ndarray:
        a, blk = self.blocks.get(name, (0, None))
        if blk is None or lo < a or hi > a + blk.shape[1]:
            have = "none" if blk is None else f"{a}..{a + blk.shape[1] - 1}"
            raise FusionError(f"executor: rows {lo}..{hi - 1} of {name!r} are not on chip "
                              f"(held: {have})")
        return blk[:, lo - a:hi - a]

    def keep(self, keep: dict) -> None:
        for name in list(self.blocks):
            if name not in keep:
                del self.blocks[name]
                continue
            lo, hi = keep[name]
            self.blocks[name] = (lo, self.rows(name, lo, hi).copy())


def _block(get, C, H, W, h0, span, left, width, fill) -> np.ndarray:
    """Input rows ``h0 .. h0 + span - 1`` (padding as ``fill``), columns shifted right by
    ``left`` in a block ``width`` wide, int64; the rows inside the tensor from ``get``."""
    blk = np.full((C, span, width), fill, dtype=np.int64)
    lo, hi = max(h0, 0), min(h0 + span, H)
    if lo < hi:
        blk[:, lo - h0:hi - h0, left:left + W] = get(lo, hi)
    return blk


def _window(l, a, b):
    """(first input row, rows spanned, block width) of output rows ``[a, b)``."""
    (sh, sw), (ph, pw) = l.stride, l.padding
    dh, dw = l.dilation if isinstance(l, MacLayer) else (1, 1)
    span = (b - a - 1) * sh + (l.R - 1) * dh + 1
    width = max(l.W + 2 * pw, (l.Q - 1) * sw + (l.S - 1) * dw + 1)
    return a * sh - ph, span, width


def _activate(y: np.ndarray, act) -> np.ndarray:
    if act == "relu":
        return np.maximum(y, 0)
    if act == "relu6":
        return np.clip(y, 0, 6)
    return y


def _compute(l, gets, w, a, b):
    """Output rows ``[a, b)`` of layer ``l`` of one image, (K, b - a, Q) int32, and the
    MACs formed; ``gets[k](lo, hi)`` gives rows of input k from the chip."""
    nr = b - a
    macs = 0
    if isinstance(l, MacLayer) or l.op in ("maxpool", "avgpool"):
        (sh, sw), pw = l.stride, l.padding[1]
        dh, dw = l.dilation if isinstance(l, MacLayer) else (1, 1)
        h0, span, width = _window(l, a, b)
        fill = _FILL_MAX if getattr(l, "op", None) == "maxpool" else 0
        x = _block(gets[0], l.C, l.H, l.W, h0, span, pw, width, fill)
        wins = [x[:, r * dh:r * dh + (nr - 1) * sh + 1:sh, s * dw:s * dw + (l.Q - 1) * sw + 1:sw]
                for r in range(l.R) for s in range(l.S)]
        if isinstance(l, MacLayer):
            G = l.groups
            Cg, Kg = l.C // G, l.K // G
            wg = w.astype(np.int64).reshape(G, Kg, Cg, l.R * l.S)
            y = np.zeros((G, Kg, nr, l.Q), dtype=np.int64)
            for i, win in enumerate(wins):
                xg = win.reshape(G, Cg, nr, l.Q)
                y += np.einsum("gchw,gkc->gkhw", xg, wg[..., i])
                macs += G * Kg * Cg * nr * l.Q
            y = y.reshape(l.K, nr, l.Q)
        elif l.op == "maxpool":
            y = np.max(np.stack(wins), axis=0)
        else:
            y = np.sum(np.stack(wins), axis=0) // (l.R * l.S)
    elif l.op == "add":
        y = sum(g(a, b).astype(np.int64) for g in gets)
    else:   # relu, relu6: the activation below
        y = gets[0](a, b).astype(np.int64)
        y = _activate(y.astype(np.int32), l.op)
    return _activate(y.astype(np.int32), l.activation), macs


def _check_inputs(plan, inputs, weights):
    N = plan.batch
    for t in plan.external:
        T = plan.tensors[t]
        want = (N, T.channels, T.height, T.width)
        x = inputs.get(t) if isinstance(inputs, dict) else None
        if x is None or tuple(x.shape) != want or not np.issubdtype(x.dtype, np.integer):
            got = "missing" if x is None else f"{x.dtype} {tuple(x.shape)}"
            raise FusionError(f"run_fused: inputs[{t!r}] must be an integer array of shape "
                              f"{want}; got {got}")
    for l in plan.layers:
        if isinstance(l, MacLayer):
            want = (l.K, l.C // l.groups, l.R, l.S)
            w = weights.get(l.name) if isinstance(weights, dict) else None
            if w is None or tuple(w.shape) != want or not np.issubdtype(w.dtype, np.integer):
                got = "missing" if w is None else f"{w.dtype} {tuple(w.shape)}"
                raise FusionError(f"run_fused: weights[{l.name!r}] must be an integer array "
                                  f"of shape {want}; got {got}")


def run_fused(model, group: FusedGroup, inputs: dict, weights: dict, onchip_limit=None,
              act_bytes=1, weight_bytes=1, resident=frozenset()) -> FusedRun:
    """Run ``group`` of ``model`` depth-first on ``inputs`` (external tensor name -> (N, C,
    H, W) integer array; ``""`` is the network input) and ``weights`` (layer name -> (K,
    C/groups, R, S) integer array); raise :class:`OnChipLimitError` if the chip ever holds
    more than ``onchip_limit`` bytes (module docstring). ``resident``: names of external
    inputs and written outputs a network plan holds whole on chip (``--fusion
    depth-first``): their rows are taken from / put into that copy, so they are neither
    DRAM reads or writes nor rows the group holds (the plan counts their bytes apart)."""
    plan = resolve(model, group)
    steps = schedule(plan)
    _check_inputs(plan, inputs, weights)
    dram = {t: inputs[t] for t in plan.external}      # all the DRAM the group may read
    wts = {l.name: weights[l.name] for l in plan.layers if isinstance(l, MacLayer)}
    welems = sum(w.size for w in wts.values())          # loaded once, resident throughout
    outs = {l.name: np.zeros((l.N, l.K, l.P, l.Q), dtype=np.int32)
            for l in plan.layers if l.name in plan.written}
    done = {t: np.zeros(o.shape, dtype=bool) for t, o in outs.items()}
    reads = writes = macs = peak = 0
    for n in range(plan.batch):
        chip = _Chip()
        for st in steps:
            l = plan.layers[st.layer]
            for t, (lo, hi) in st.loads:
                rows = np.array(dram[t][n, :, lo:hi])
                reads += 0 if t in resident else rows.size
                chip.put(t, lo, rows)
            if st.compute is not None:
                a, b = st.compute
                gets = [lambda lo, hi, t=t: chip.rows(t, lo, hi) for t in plan.reads[st.layer]]
                y, m = _compute(l, gets, wts.get(l.name), a, b)
                macs += m
                chip.put(l.name, a, y)
            held = nbytes(chip.elems(skip=resident) * act_bytes + welems * weight_bytes, 1)
            peak = max(peak, held)
            if onchip_limit is not None and held > onchip_limit:
                raise OnChipLimitError(f"run_fused: {held} B on chip at strip {st.strip}, layer "
                                       f"{l.name!r} (image {n}), above the limit {onchip_limit} B")
            if st.write is not None:
                a, b = st.write
                if done[l.name][n, :, a:b].any():
                    raise FusionError(f"executor: rows {a}..{b - 1} of {l.name!r} written twice")
                outs[l.name][n, :, a:b] = chip.rows(l.name, a, b)
                done[l.name][n, :, a:b] = True
                writes += 0 if l.name in resident else (b - a) * l.K * l.Q
            chip.keep(dict(st.keep))
    for t, d in done.items():
        if not d.all():
            raise FusionError(f"executor: output {t!r} is incomplete")
    counts = FusedCosts(strips=plan.strips, act_read_bytes=nbytes(reads, act_bytes),
                        weight_read_bytes=nbytes(welems, weight_bytes),
                        write_bytes=nbytes(writes, act_bytes), peak_onchip_bytes=peak,
                        macs=macs, layer_macs=sum(l.macs for l in plan.layers))
    return FusedRun(outs, counts)


# ---- the layer-by-layer reference ------------------------------------------------------
def _pool_whole(l, x: np.ndarray) -> np.ndarray:
    """maxpool / avgpool of a whole (N, C, H, W) tensor (sliding windows over a padded copy)."""
    (sh, sw), (ph, pw) = l.stride, l.padding
    Hp = max(l.H + 2 * ph, (l.P - 1) * sh + l.R)
    Wp = max(l.W + 2 * pw, (l.Q - 1) * sw + l.S)
    fill = _FILL_MAX if l.op == "maxpool" else 0
    xp = np.full((l.N, l.C, Hp, Wp), fill, dtype=np.int64)
    xp[:, :, ph:ph + l.H, pw:pw + l.W] = x
    v = np.lib.stride_tricks.sliding_window_view(xp, (l.R, l.S), axis=(2, 3))
    v = v[:, :, ::sh, ::sw][:, :, :l.P, :l.Q]
    if l.op == "maxpool":
        return v.max(axis=(-2, -1)).astype(np.int32)
    return (v.sum(axis=(-2, -1)) // (l.R * l.S)).astype(np.int32)


def reference_outputs(model, group: FusedGroup, inputs: dict, weights: dict) -> dict:
    """Every layer of ``group`` run layer by layer on whole tensors (convolutions on
    :func:`sim.kernels.reference.conv2d_layer`): layer name -> (N, K, P, Q) int32."""
    plan = resolve(model, group)
    _check_inputs(plan, inputs, weights)
    have = {t: inputs[t] for t in plan.external}
    for l, names in zip(plan.layers, plan.reads):
        xs = [have[t] for t in names]
        if isinstance(l, MacLayer):
            y = conv2d_layer(l, xs[0], weights[l.name]).astype(np.int32)
        elif l.op in ("maxpool", "avgpool"):
            y = _pool_whole(l, xs[0])
        elif l.op == "add":
            y = sum(x.astype(np.int64) for x in xs).astype(np.int32)
        else:
            y = _activate(xs[0].astype(np.int32), l.op)
        have[l.name] = _activate(y, l.activation)
    return {l.name: have[l.name] for l in plan.layers}
