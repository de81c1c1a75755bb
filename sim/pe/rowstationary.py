"""The row-stationary array (Eyeriss), register by register (numba).

It runs a conv layer pass by pass as :class:`mapper.dataflow.RowStationary` folds it
(the plan gives only the folding parameters: p, q, the set shape and the replication;
nothing here uses its cycle or access formulas) and returns the output, the index of
the cycle in which the last output is produced, and what it counted: buffer reads of
inputs and weights, partial-sum writes to the buffer, and scratchpad writes.

One pass on the ``Hc x E`` PEs in use (``Hc = stacked sets x filter rows``, ``E = side
sets x strip width``); PE (u, v) holds filter row ``frow[u]`` of the channels
``chan[u, :]`` (q of them: its stacked set's chunk) and filters ``filt[v, :]`` (p:
its side set's chunk) and reads input row ``inrow[u, v]`` (``j*sh + i*dh - ph`` for
output row j = ``outrow[v]``, filter row i; -1 for padding or an idle PE). Registers
per PE: the filter spad (p x q x S), the ifmap spad (a window of q x S values with
their column tags), an accumulator, and the upward partial-sum register with its tag
(x, f). One cycle: every PE reads the register of the PE below as it was at the end of
the previous cycle, then all registers update.

* cycles 0 .. S*p*q - 1: weight k = (f, c, s) goes out on every PE row's broadcast bus
  and is written into the filter spad of every PE of a real output row (the buffer is
  read once per row and side set);
* PE row u then computes from cycle ``S*p*q + Hc - 1 - u``: for output column x, filter
  f, channel c, tap s (s innermost) one MAC a cycle. At the start of column x the
  window takes the columns ``x*sw + s*dw - pw``; a value already in the window is
  kept, a real one missing is written (a scratchpad write) and read from the buffer
  unless another PE already read it for the same column x in this pass (multicast);
  padding is zero and costs nothing;
* at filter f's last MAC of column x the PE adds the sum handed up by the PE below
  (whose tag must be (x, f): a mismatch means the schedule is wrong) and puts the
  total in its upward register; the top row's total is added into the buffer's output
  (a partial-sum write).

Counted in the registers (:attr:`PEResult.registers`, real PEs only: a real filter
row, output row, filter and channel): spad writes as above; each real MAC reads its
filter and ifmap spad entries and writes the accumulator, which it reads unless it is
the first MAC of (x, f); the finished sum is read once as it is handed up (the upward
register is the link between PEs, not counted). Reads and writes of partial sums: one
per MAC each.

The pass ends with the top row's last output. Integer operands accumulate in int32
with wrap-around (bit-exact with the reference kernels).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from tilesim.mapper import DATAFLOWS
from tilesim.mapper.dataflow import layer_dims

from .systolic import PEResult

# cnt indices: buffer reads, partial-sum writes, spad writes; then the register reads
# (spads) and the psum register's reads and writes
IN_READS, W_READS, PSUM_WRITES, IN_SPAD, W_SPAD, IN_REG_R, W_REG_R, O_REG_R, O_REG_W, \
    PSUM_READS = range(10)


@njit(cache=True)
def _pass(xg, wg, og, inrow, chan, filt, frow, outrow, S, Q, p, q, sw, dw, pw, W, seen, cnt,
          stored):
    """One pass; returns its cycles (last-output cycle index + 1), -1 on a tag mismatch.
    ``stored`` marks the outputs of ``og`` the array has stored before (a store to one
    of them reads it back: read-add-write)."""
    Hc, E = inrow.shape
    F = S * p * q
    L = Q * F
    wsp = np.zeros((Hc, E, p, q, S), dtype=og.dtype)
    for t in range(F):                       # filter spads fill over the row buses
        f, c, s = t // (q * S), (t // S) % q, t % S
        for u in range(Hc):
            last = -2
            for v in range(E):
                n, ch, r = filt[v, f], chan[u, c], frow[u]
                if n < 0 or ch < 0 or r < 0 or outrow[v] < 0:
                    continue
                if n != last:                # a new side set: one buffer read
                    cnt[W_READS] += 1
                    last = n
                wsp[u, v, f, c, s] = wg[n, ch, r, s]
                cnt[W_SPAD] += 1
    win = np.zeros((Hc, E, q, S), dtype=og.dtype)
    wtag = np.full((Hc, E, q, S), -(1 << 40), dtype=np.int64)
    nwin = np.zeros((q, S), dtype=og.dtype)
    ntag = np.zeros((q, S), dtype=np.int64)
    acc = np.zeros((Hc, E), dtype=og.dtype)
    reg = np.zeros((Hc, E), dtype=og.dtype)
    rtag = np.full((Hc, E), -1, dtype=np.int64)
    last_out = -1
    t = F
    while True:
        busy = False
        for u in range(Hc):                  # top first: row u reads row u+1's last value
            k = t - F - (Hc - 1 - u)
            if k < 0 or k >= L:
                for v in range(E):
                    rtag[u, v] = -1
                continue
            busy = True
            x, rem = k // F, k % F
            f, c, s = rem // (q * S), (rem // S) % q, rem % S
            for v in range(E):
                if rem == 0:                 # column x's window
                    for cc in range(q):
                        for ss in range(S):
                            col = x * sw + ss * dw - pw
                            hit = -1
                            for s2 in range(S):
                                if wtag[u, v, cc, s2] == col:
                                    hit = s2
                            ntag[cc, ss] = col
                            if hit >= 0:
                                nwin[cc, ss] = win[u, v, cc, hit]
                                continue
                            nwin[cc, ss] = 0
                            ch, r = chan[u, cc], inrow[u, v]
                            if ch >= 0 and r >= 0 and 0 <= col < W:
                                nwin[cc, ss] = xg[ch, r, col]
                                cnt[IN_SPAD] += 1
                                if seen[ch, r, col] != x:
                                    seen[ch, r, col] = x
                                    cnt[IN_READS] += 1
                    for cc in range(q):
                        for ss in range(S):
                            win[u, v, cc, ss] = nwin[cc, ss]
                            wtag[u, v, cc, ss] = ntag[cc, ss]
                if rem % (q * S) == 0:
                    acc[u, v] = 0
                acc[u, v] += wsp[u, v, f, c, s] * win[u, v, c, s]
                real = frow[u] >= 0 and outrow[v] >= 0 and filt[v, f] >= 0
                if real and chan[u, c] >= 0:     # a real MAC: both spads read, the psum
                    cnt[IN_REG_R] += 1           # written (read unless it is the first
                    cnt[W_REG_R] += 1            # MAC of (x, f))
                    cnt[O_REG_W] += 1
                    if rem % (q * S) != 0:
                        cnt[O_REG_R] += 1
                if rem % (q * S) != q * S - 1:
                    rtag[u, v] = -1
                    continue
                if real and chan[u, 0] >= 0:     # the finished sum is read as it is
                    cnt[O_REG_R] += 1            # handed up
                tot = acc[u, v]
                if u + 1 < Hc:
                    if rtag[u + 1, v] != x * p + f:
                        return -1
                    tot += reg[u + 1, v]
                reg[u, v] = tot
                rtag[u, v] = x * p + f
                if u == 0:
                    last_out = t
                    n, o = filt[v, f], outrow[v]
                    if n >= 0 and o >= 0:
                        og[n, o, x] += tot
                        cnt[PSUM_WRITES] += 1
                        if stored[n, o, x]:
                            cnt[PSUM_READS] += 1
                        stored[n, o, x] = True
        if not busy:
            return last_out + 1
        t += 1


def simulate_rs(layer, x: np.ndarray, w: np.ndarray, rows: int, cols: int, count: int = 1,
                pe_entries: dict | None = None):
    """Run ``layer`` (input ``x`` (N, C, H, W), weights ``w`` (K, C/G, R, S)) row
    stationary on ``count`` arrays of ``rows`` x ``cols`` PEs whose scratchpads hold
    ``pe_entries`` values (:func:`mapper.space.pe_entries`). Returns (output (N, K, P,
    Q), a :class:`PEResult` whose ``counts`` are: operand -> buffer element reads
    (output: partial-sum writes), and "input spad" / "weight spad" -> scratchpad
    writes)."""
    dims = layer_dims(layer)
    plan = DATAFLOWS["rs"].plan(dims, rows, cols, pe_entries)
    d = dict(plan.detail)
    p, q, (Rh, e), tv, th = d["p"], d["q"], d["set"], d["stacked"], d["side"]
    nk, nc = d["filter chunks"], d["channel chunks"]
    G, B, P, Q, Kg, Cg, R, S = (dims[k] for k in ("G", "B", "P", "Q", "N", "C", "R", "S"))
    H, W, (sh, sw), (ph, pw), (dh, dw) = dims["geometry"]
    integer = np.issubdtype(x.dtype, np.integer)
    dt = np.int32 if integer else np.float32
    x, w = x.astype(dt), w.astype(dt)
    out = np.zeros((B, G, Kg, P, Q), dtype=dt)
    busy = np.zeros(count, dtype=np.int64)
    cnt = np.zeros(10, dtype=np.int64)
    stored = np.zeros((B, G, Kg, P, Q), dtype=np.bool_)
    Hc, E = tv * Rh, th * e
    seen = np.empty((Cg, H, W), dtype=np.int64)
    f = 0
    for g in range(G):
        wg = np.ascontiguousarray(w[g * Kg:(g + 1) * Kg])
        for b in range(B):
            xg = np.ascontiguousarray(x[b, g * Cg:(g + 1) * Cg])
            og = out[b, g]
            for st in range(plan.col_folds):
                for fi in range(plan.row_folds):
                    for kp in range(-(-nk // th)):
                        for cp in range(-(-nc // tv)):
                            frow = np.full(Hc, -1, dtype=np.int64)
                            chan = np.full((Hc, q), -1, dtype=np.int64)
                            for a in range(tv):
                                for i in range(Rh):
                                    u, r = a * Rh + i, fi * Rh + i
                                    frow[u] = r if r < R else -1
                                    for cc in range(q):
                                        ch = (cp * tv + a) * q + cc
                                        chan[u, cc] = ch if ch < Cg else -1
                            outrow = np.full(E, -1, dtype=np.int64)
                            filt = np.full((E, p), -1, dtype=np.int64)
                            for h in range(th):
                                for j in range(e):
                                    v, o = h * e + j, st * e + j
                                    outrow[v] = o if o < P else -1
                                    for ff in range(p):
                                        n = (kp * th + h) * p + ff
                                        filt[v, ff] = n if n < Kg else -1
                            inrow = np.full((Hc, E), -1, dtype=np.int64)
                            for u in range(Hc):
                                for v in range(E):
                                    if frow[u] >= 0 and outrow[v] >= 0 and filt[v, 0] >= 0:
                                        r = outrow[v] * sh + frow[u] * dh - ph
                                        inrow[u, v] = r if 0 <= r < H else -1
                            seen[:] = -1
                            n = _pass(xg, wg, og, inrow, chan, filt, frow, outrow, S, Q, p, q,
                                      sw, dw, pw, W, seen, cnt, stored[b, g])
                            if n < 0:
                                raise RuntimeError("PE model (rs): partial sums met out of "
                                                   "step (tag mismatch); the schedule is wrong")
                            busy[f % count] += n
                            f += 1
    o = out.reshape(B, G * Kg, P, Q)
    counts = {"input": int(cnt[IN_READS]), "weight": int(cnt[W_READS]),
              "output": int(cnt[PSUM_WRITES]), "input spad": int(cnt[IN_SPAD]),
              "weight spad": int(cnt[W_SPAD])}
    o = np.ascontiguousarray(o)
    regs = {"input": (int(cnt[IN_REG_R]), int(cnt[IN_SPAD])),
            "weight": (int(cnt[W_REG_R]), int(cnt[W_SPAD])),
            "output": (int(cnt[O_REG_R]), int(cnt[O_REG_W]))}
    return o, PEResult(output=o, last_cycle=int(busy.max()) - 1, folds=f,
                       array_cycles=tuple(int(v) for v in busy), counts=counts,
                       registers=regs,
                       buffer={"input": (counts["input"], 0), "weight": (counts["weight"], 0),
                               "output": (int(cnt[PSUM_READS]), counts["output"])})


def simulate_rs_mapping(mapping, x: np.ndarray, w: np.ndarray):
    """:func:`simulate_rs` of a Mapping (its array and its scratchpads' entries)."""
    return simulate_rs(mapping.layer, x, w, mapping.array_rows, mapping.array_cols,
                       mapping.array_count, dict(mapping.pe_entries))
