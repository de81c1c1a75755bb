"""A cycle-level, register-by-register model of an Ra x Ca systolic array (numba).

It runs the GEMM view of a layer (per group ``out[M, N] = a[M, K] @ b[K, N]``, see
:mod:`mapper.dataflow`) fold by fold and returns the output and the index of the cycle
in which the last output is produced. It proves :meth:`mapper.Dataflow.fold_cycles` and
:meth:`mapper.Dataflow.compute_cycles`: nothing in here uses those formulas; every fold
runs until its last output appears.

Registers and moves (one cycle = every PE reads its neighbours' registers as they were
at the end of the previous cycle, then all registers update at once):

* **os** (rows = M, cols = N, streams K; outputs stationary). The left-edge feeder of
  row i pushes ``a[i, k]`` at cycle ``i + k`` into PE(i, 0); a-registers move one PE
  right per cycle. The top-edge feeder of column j pushes ``b[k, j]`` at cycle
  ``j + k``; b-registers move one PE down per cycle. Every operand carries its k as a
  tag; a PE holding a valid a and b checks the tags agree, multiplies and adds into its
  accumulator. An output is produced when its PE has done its K-th MAC (it stays in
  the PE: the drain is not on the critical path, as in SCALE-Sim). The last one is
  PE(Ra-1, Ca-1) at cycle ``T-1 + Ra-1 + Ca-1``: per fold ``T + Ra + Ca - 2`` cycles.
* **ws** / **is** (rows = K, cols = N resp. M, streams M resp. N). First the
  stationary operand (weights w[k, n] resp. inputs a[m, k]) is shifted in from the top,
  one row per cycle, over Ra cycles. Then the row-i feeder pushes the streamed operand
  for stream index t at cycle ``Ra + t + i``; it moves right one PE per cycle; each PE
  adds its product to the partial sum arriving from the PE above (tags checked) and
  passes it down; a finished output leaves the bottom row of column j at cycle
  ``Ra + t + Ra-1 + j``. Per fold ``T + 2 Ra + Ca - 2`` cycles.
* **dw** (rows = K = R*S taps, cols = G x N channels, streams M; weights stationary).
  The weights are shifted in from the top as in ws (Ra cycles). Columns hold different
  channels, so no operand moves sideways: column j's own feeder pushes its channel's
  operand for pixel m into PE(i, j) at cycle ``Ra + m + i``; partial sums move down as
  in ws (tags checked) and pixel m's output leaves the bottom row of every column at
  ``Ra + m + Ra-1``. Per fold ``T + 2 Ra - 1`` cycles.
* **kc** (rows = C channels, cols = N filters, streams M; the R*S taps and the groups
  loop over folds). Every fold is a ws fold over the C x N weights of one tap (r, s):
  the feeder of row i streams the im2col column of (channel i, tap (r, s)); the fold's
  outputs are added into the output buffer, tap after tap. Per fold ``T + 2 Ra + Ca - 2``.
* **kcr** (rows = C, cols = N, streams M pixels x t taps, taps innermost; t from
  :func:`mapper.dataflow.kcr_taps`). Each column's Ra x t weight registers form one
  shift chain filled from the top, one value a cycle, over t Ra cycles. Then the row-i
  feeder pushes element e = m t + u (pixel m, tap u) at cycle ``t Ra + e + i``, tagged
  e; it moves right; PE(i, j) multiplies it by its register u (u = tag mod t), adds the
  partial sum from the PE above (tags checked) and passes it down; the column's bottom
  accumulator register takes the sum of tap 0 and adds taps 1 .. t-1 (checking it holds
  the previous element of the same pixel), and after tap t-1 the pixel's sum leaves.
  Per fold ``t Ra + T + Ra + Ca - 2`` cycles.
* **kco** (rows = C, cols = N; the ``count`` arrays are pixel lanes run in lockstep,
  lane l on pixels ``s count + l``; each streams Mp pixel steps x E = ceil(C/Ra) R S
  reduction steps, taps innermost). No preload. Row i's feeder of every lane pushes
  element e = s E + u at cycle ``e + i``, tagged e; it moves right. PE(i, j)'s weight
  bus, on its own schedule, reads w[step (t - i - j) mod E] from the buffer at cycle t
  and writes it into the one-weight register of PE(i, j) of every lane (one read, all
  lanes); the PE checks the register's tag against the input's (and lane 0's), adds
  the product to the partial sum from above (tags checked) and passes it down; the
  column's output register takes u = 0 and adds u = 1 .. E-1, then the output leaves.
  Per fold ``T + Ra + Ca - 2`` cycles on every array at once; the model counts the
  buffer's input and weight reads and the output writes. A mapping whose buffer tiles
  split a group's C channels runs each channel tile as a pass of its own (E from the
  tile's channels: ceil(ct/Ra) R S), one after another, each pass's outputs leaving the
  column registers (a store each) when it ends: :func:`channel_ranges`.
* **ws** / **is** with ``preload: overlapped`` (:func:`_chain_stationary`): an array's
  folds run as one schedule. Every PE has an active and a shadow stationary register
  (value, fold tag, and for the shadow the row the value is for). Each cycle: (1) the
  row-0 feeder issues the current fold's next element, or the next fold's first once the
  current fold's last has been issued and column 0's shadow load of the next fold is
  complete; row i is fed what row 0 got i cycles earlier; (2) streamed operands move
  right; (3) a PE meeting a fold's first element copies its shadow (as of the previous
  cycle) into its active register, checking that the shadow holds that fold's value for
  its row, then multiplies with the active register and passes the partial sum down
  (tags checked); (4) shadow values in transit move one row down with the load's front,
  and column j pushes the next fold's values into row 0 (row Ra-1's first) from the
  cycle PE(0, j) took the previous fold's. Overwriting a shadow value its PE has not yet
  taken is a hazard, as is switching to a shadow not yet loaded: either fails the run.
  Nothing schedules by formula; :mod:`mapper.dataflow` derives what this gives,
  ``(F - 1) max(T, Ra) + T + 2 Ra + Ca - 2`` cycles for F folds on one array.

N:M weights (``simulate_gemm(..., skip=(N, M))``, a mapping's ``skip``; os, ws, is, both
preloads; :mod:`mapper.sparse`): each filter's reduction is cut into blocks of M rows
from row 0 (a last block of L < M rows keeps min(N, L)); the weights are compressed per
filter and block to their kept values, each with its offset in its block
(:func:`sim.pe.nm.compress`), and the array runs the GEMM whose reduction is the K' kept
rows (:func:`workloads.sparsity.nm_kept`) on exactly the schedule above: the same
registers, moves, tags and fold order as a dense GEMM of reduction K', so the cycles are
:mod:`mapper.dataflow`'s on K'. What changes is the input path. Kept row k' belongs to
block ``k' // N`` (for full blocks); the array row (ws, is) or stream step (os) of k'
carries the block's M input values, an M-wide input register, and the PE multiplies its
weight by the lane its weight's offset selects (an M:1 mux per PE; the offset, ceil(log2
M) bits, travels with its weight value: down the column under os, preloaded with it under
ws, right along the row under is):

* **os**: row i's a-register at step k' holds pixel i's block of k'; the b-register
  carries its offset down; PE(i, j) takes lane ``off(b)``. The feeder reads a block's
  values once, at the block's first kept step, and holds them for its N steps.
* **ws**: row i (kept row r0 + i) carries, for pixel m, its block's M values; PE(i, j)
  takes lane ``off(w[i, j])`` of its stationary weight. A block's values are read once
  per pixel and fold and go to all of the block's kept rows in the fold.
* **is**: PE(i, j) holds pixel j's block of its kept row (preloaded: the M-wide
  stationary register); the streamed weight of filter n carries its offset right along
  row i; every PE of the row takes that lane. The preload reads a block's values once per
  column and fold, for all of the block's kept rows in the fold.

The model keeps the M-wide register as its tag: it reads the lane from the block the
feeder pushed for that tag (os: ``AL[i, k']``, ws: ``XL[m, i]``, is: ``SL[i, j]`` of the
fold in the PE's active register), which is what a register moved unchanged from the
feeder holds; the tags are checked as in a dense run. ``simulate_gemm`` refuses weights
that are not N:M (a block with more than N non-zeros): ValueError naming the layer, the
filter and the block.

What it counts against what the cost model charges (:func:`mapper.sparse.plan`):

* Buffer: the weights read (kept values and their offsets, one element each) and the
  outputs stored are the compressed plan's ``accesses``. Inputs: the model reads each
  block once per fold it is used in, so a block whose kept rows fall into two row folds
  (ws, is) is read in both (e.g. ws, 2:4, K = 11, Ra = 3, 7 pixels, 3 column folds: 315
  reads, where charging each input once per column fold gives 7 x 11 x 3 = 231). The
  plan counts exactly this: the dense input elements x the compressed plan's reads per
  element x (K + X) / K, X the rows of the blocks a row-fold boundary cuts
  (:func:`mapper.sparse.split_block_reads`; above X = 4: 7 x 3 x 15 = 315);
  ``tests/test_pe_sparse.py`` holds the two equal.
* Registers (``registers``): those of the dense GEMM of the K' kept rows, i.e. the
  compressed plan's ``pe_writes`` and one read of each operand and partial sum per kept
  MAC: the moving input is counted as one latch per MAC (the lane the PE uses), the is
  stationary block as one value per register it passes. An M-wide input register
  latching its whole block would write M values where one is counted (os, ws: M x the
  kept MACs; is: M x the shift writes). :func:`sim.cost.pe_access` charges the input
  and weight writes as counted here, but the operands' reads and the partial sums'
  reads and writes per MAC of the dense layer (``layer.macs``), not per kept MAC: for a
  skip mapping those are K / K' times the counts here (e.g. 2:4, C = 4, 3 x 3, 4 x 4
  outputs, 4 filters: 2,304 charged, 1,152 counted).

Conventions (the same as SCALE-Sim's and :mod:`sim.cost`'s):

* Feeders run the whole Ra x Ca schedule in every fold: rows/columns of a partial
  (edge) fold are fed zeros, so an edge fold takes as long as a full one.
* With serial preload (and os) folds run back to back without overlap; fold f of the
  layer (outer dims such as groups outermost, then row folds, then column folds) runs on
  array ``f % count`` (with overlapped preload too).
* The cycle returned is the **index** of the cycle in which the layer's last output is
  produced, the first cycle being 0 (SCALE-Sim's "Total Cycles"), i.e. the number of
  cycles minus one; with several arrays, the latest over the arrays.

Counted (:attr:`PEResult.registers`: operand -> (reads, writes), summed over the PEs;
what :func:`sim.cost.pe_access` prices at the ``scope: pe`` levels). Only the real PEs
of a fold count (rows and columns within the layer; kcr: taps within the filter): an
edge fold's padding PEs are fed zeros and idle. A register *write* is every latch of a
real value: a moving operand into each PE it reaches (once per MAC), a stationary value
into each register of the column chain it passes during preload (r + 1 for row r; kcr:
q + 1 for chain register q; overlapped: the shadow chain, the switch being a bank
select). A *read*: each MAC reads its two operands, and the partial sum it adds to
unless it is the first MAC of the output's run (os: the output's first in its PE; ws,
is, dw, kc, kcr: row 0 of the column); the run's finished sum is read once more as it
leaves (os: from the accumulator; the others: from the last real row). So partial sums
are read and written once per MAC. kcr's column output register is not counted (it is
no PE's).

Integer operands multiply-accumulate in int32 with wrap-around (bit-exact with the
reference kernels); float operands in fp32 (partial sums of a ws/is fold are added in
row order, and fold results added fold by fold, so agreement is to rounding).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from tilesim.mapper import DATAFLOWS
from tilesim.mapper.dataflow import PRELOADS, gemm_dims, kcr_taps

OS, WS, IS, DW, KC, KCR, KCO = 0, 1, 2, 3, 4, 5, 6
# register-access counters (numba boundary): reads and writes of each operand's registers
IN_R, IN_W, W_R, W_W, O_R, O_W = range(6)
# ... and the array's reads of the innermost shared level (feeders and preloads); a fold's
# outputs stored into it are counted per element by the runners (``stores``)
B_IN, B_W = 6, 7            # = B_IN + operand read slot // 2
N_COUNTS = 8
REGISTER_SLOTS = {"input": IN_R, "weight": W_R, "output": O_R}   # + 1: the writes
DATAFLOW_CODE = {"os": OS, "ws": WS, "is": IS, "dw": DW, "kc": KC, "kcr": KCR,
                 "kco": KCO}   # numba boundary: codes


@njit(cache=True)
def _fold_os(A, B, T, Ra, Ca, out, nr, nc, cnt, AL, BO, AR):
    """One os fold. A (Ra, T) rows' operands, B (T, Ca); out (Ra, Ca) += A @ B; the
    first ``nr`` rows and ``nc`` columns are real (the rest an edge fold's padding).
    Adds the real PEs' register accesses to ``cnt`` (module doc, *Counted*). Returns the
    fold's cycle count (last-output cycle index + 1), -1 on a tag mismatch.

    N:M skipping (module doc, *N:M weights*) when ``AL`` (Ra, T, M) has lanes: row i's
    a-register at step k holds the block AL[i, k], B's values carry offsets BO (T, Ca)
    (moving down with them), a PE multiplies lane BO of its block; a real row's feeder
    reads AR[k] input values at step k. Dense: AL, BO, AR empty."""
    lanes = AL.shape[2] > 0
    bo = np.zeros((Ra, Ca), dtype=np.int64)         # the b-registers' offsets (N:M)
    a = np.zeros((Ra, Ca), dtype=out.dtype)
    b = np.zeros((Ra, Ca), dtype=out.dtype)
    a_tag = np.full((Ra, Ca), -1, dtype=np.int64)   # -1: no valid operand
    b_tag = np.full((Ra, Ca), -1, dtype=np.int64)
    done = np.zeros((Ra, Ca), dtype=np.int64)
    remaining = Ra * Ca
    n_a = n_b = n_mac = n_or = n_ba = n_bb = 0       # counts (locals: flushed at the end)
    t = 0
    while True:
        # registers move: a one PE right, b one PE down (in place, far end first)
        for i in range(Ra):
            for j in range(Ca - 1, 0, -1):
                a[i, j] = a[i, j - 1]
                a_tag[i, j] = a_tag[i, j - 1]
            k = t - i
            if 0 <= k < T:
                a[i, 0] = A[i, k]
                a_tag[i, 0] = k
                if i < nr:                       # a real row's feeder reads the buffer
                    n_ba += AR[k] if lanes else 1
            else:
                a_tag[i, 0] = -1
        for j in range(Ca):
            for i in range(Ra - 1, 0, -1):
                b[i, j] = b[i - 1, j]
                b_tag[i, j] = b_tag[i - 1, j]
                if lanes:
                    bo[i, j] = bo[i - 1, j]
            k = t - j
            if 0 <= k < T:
                b[0, j] = B[k, j]
                b_tag[0, j] = k
                if lanes:
                    bo[0, j] = BO[k, j]
                n_bb += j < nc
            else:
                b_tag[0, j] = -1
        # every PE with two valid operands multiplies and accumulates
        for i in range(Ra):
            for j in range(Ca):
                at, bt = a_tag[i, j], b_tag[i, j]
                real = i < nr and j < nc
                if real:                         # real PEs latch the operands reaching them
                    n_a += at >= 0
                    n_b += bt >= 0
                if at >= 0 and bt >= 0:
                    if at != bt:
                        return -1
                    if lanes:                    # the lane b's offset selects
                        out[i, j] += AL[i, at, bo[i, j]] * b[i, j]
                    else:
                        out[i, j] += a[i, j] * b[i, j]
                    done[i, j] += 1
                    if real:                     # the first MAC writes without reading;
                        n_mac += 1               # the finished output is read as it leaves
                        n_or += (done[i, j] > 1) + (done[i, j] == T)
                    if done[i, j] == T:
                        remaining -= 1
                        if remaining == 0:
                            cnt[IN_W] += n_a
                            cnt[W_W] += n_b
                            cnt[IN_R] += n_mac
                            cnt[W_R] += n_mac
                            cnt[O_W] += n_mac
                            cnt[O_R] += n_or
                            cnt[B_IN] += n_ba
                            cnt[B_W] += n_bb
                            return t + 1
        t += 1


@njit(cache=True)
def _preload(S, Ra, Ca, nr, nc, s, cnt, so, rd):
    """Serial preload of the stationary operand S (Ra, Ca) into ``s``: it enters at the
    top and shifts down one row a cycle, row Ra-1's value first. Every real value (row
    < ``nr``, column < ``nc``) latched by a register counts as a write of operand ``so``
    (a value for row r is latched by the r + 1 registers it passes). The top feeder reads
    one value of the buffer per real value, or ``rd[r]`` for row r when ``rd`` is given
    (N:M inputs under is: a block's values, read once for its kept rows)."""
    tag = np.full((Ra, Ca), -1, dtype=np.int64)   # the row each register's value is for
    for t in range(Ra):
        for i in range(Ra - 1, 0, -1):
            for j in range(Ca):
                s[i, j] = s[i - 1, j]
                tag[i, j] = tag[i - 1, j]
        for j in range(Ca):
            s[0, j] = S[Ra - 1 - t, j]
            tag[0, j] = Ra - 1 - t
            if Ra - 1 - t < nr and j < nc:
                cnt[B_IN + so // 2] += rd[Ra - 1 - t] if len(rd) else 1
        for i in range(nr):
            for j in range(nc):
                if 0 <= tag[i, j] < nr:
                    cnt[so + 1] += 1


@njit(cache=True)
def _mac_counts(i, nr, so, xo, cnt):
    """A real MAC of a column chain (ws, is, dw, kc, kcr): reads its stationary and
    streamed operands, writes its partial sum, reads the one from above (not row 0: the
    chain's first MAC) and, in the last real row, the sum is read as it leaves."""
    cnt[so] += 1
    cnt[xo] += 1
    cnt[O_W] += 1
    cnt[O_R] += (i > 0) + (i == nr - 1)


@njit(cache=True)
def _chain_totals(cnt, so, xo, n_mac, n_or, n_bx):
    """A chain run's totals into ``cnt``: ``n_mac`` real MACs (each latches its streamed
    value and reads both operands, writes its partial sum), ``n_or`` partial-sum reads,
    ``n_bx`` streamed values the feeders read from the buffer."""
    cnt[xo + 1] += n_mac
    cnt[so] += n_mac
    cnt[xo] += n_mac
    cnt[O_W] += n_mac
    cnt[O_R] += n_or
    cnt[B_IN + xo // 2] += n_bx


@njit(cache=True)
def _fold_stationary(S, X, T, Ra, Ca, out, nr, nc, so, xo, cnt, SL, SO, XL, XO, RD):
    """One ws/is fold. S (Ra, Ca) stationary, X (T, Ra) streamed; out (T, Ca) += X @ S;
    the first ``nr`` rows and ``nc`` columns are real. Adds the real PEs' register
    accesses to ``cnt`` (``so``, ``xo``: the stationary and streamed operands' read
    slots). Returns the fold's cycle count (last-output cycle index + 1), -1 on a tag
    mismatch.

    N:M skipping (module doc, *N:M weights*): ws, ``XL`` (T, Ra, M) the blocks row i
    carries for stream index t, ``SO`` (Ra, Ca) the stationary weights' offsets; is,
    ``SL`` (Ra, Ca, M) the stationary input blocks, ``XO`` (T, Ra) the streamed weights'
    offsets. ``RD`` (Ra,): input values of the buffer row i's feeder reads (its block's
    for the block's first row in the fold, else none). Dense: all empty."""
    sl, xl = SL.shape[2] > 0, XL.shape[2] > 0
    s = np.zeros((Ra, Ca), dtype=out.dtype)
    _preload(S, Ra, Ca, nr, nc, s, cnt, so, RD if sl else RD[:0])
    x = np.zeros((Ra, Ca), dtype=out.dtype)
    x_tag = np.full((Ra, Ca), -1, dtype=np.int64)
    p = np.zeros((Ra, Ca), dtype=out.dtype)
    p_tag = np.full((Ra, Ca), -1, dtype=np.int64)
    remaining = T * Ca
    n_mac = n_or = n_bx = 0                      # counts (locals: flushed at the end)
    t = Ra
    while True:
        for i in range(Ra - 1, -1, -1):          # bottom row first: psums move down
            for j in range(Ca - 1, -1, -1):      # right column first: operands move right
                if j > 0:
                    x[i, j] = x[i, j - 1]
                    x_tag[i, j] = x_tag[i, j - 1]
                else:
                    m = t - Ra - i
                    if 0 <= m < T:
                        x[i, 0] = X[m, i]
                        x_tag[i, 0] = m
                        if i < nr:
                            n_bx += RD[i] if xl else 1
                    else:
                        x_tag[i, 0] = -1
                tag = x_tag[i, j]
                if tag < 0:
                    p_tag[i, j] = -1
                    continue
                sv, xv = s[i, j], x[i, j]
                if sl:                           # is, N:M: the streamed weight's lane
                    sv = SL[i, j, XO[tag, i]]
                elif xl:                         # ws, N:M: the stationary weight's lane
                    xv = XL[tag, i, SO[i, j]]
                if i == 0:
                    p[i, j] = xv * sv
                else:
                    if p_tag[i - 1, j] != tag:
                        return -1
                    p[i, j] = p[i - 1, j] + xv * sv
                p_tag[i, j] = tag
                if i < nr and j < nc:            # a real MAC, its streamed value
                    n_mac += 1                   # latched here (see _mac_counts)
                    n_or += (i > 0) + (i == nr - 1)
                if i == Ra - 1:                  # leaves the array at the bottom
                    out[tag, j] += p[i, j]
                    remaining -= 1
                    if remaining == 0:
                        _chain_totals(cnt, so, xo, n_mac, n_or, n_bx)
                        return t + 1
        t += 1


@njit(cache=True)
def _fold_dw(S, X, T, Ra, Ca, out, nr, nc, cnt):
    """One dw fold. S (Ra, Ca) stationary, X (T, Ra, Ca) each column's own stream;
    out (T, Ca)[m, j] += X[m, :, j] . S[:, j]; the first ``nr`` rows and ``nc`` columns
    are real. Adds the real PEs' register accesses to ``cnt``. Returns the fold's cycle
    count (last-output cycle index + 1), -1 on a tag mismatch."""
    s = np.zeros((Ra, Ca), dtype=out.dtype)
    _preload(S, Ra, Ca, nr, nc, s, cnt, W_R, np.zeros(0, dtype=np.int64))
    x = np.zeros((Ra, Ca), dtype=out.dtype)
    x_tag = np.full((Ra, Ca), -1, dtype=np.int64)
    p = np.zeros((Ra, Ca), dtype=out.dtype)
    p_tag = np.full((Ra, Ca), -1, dtype=np.int64)
    remaining = T * Ca
    t = Ra
    while True:
        for i in range(Ra - 1, -1, -1):          # bottom row first: psums move down
            for j in range(Ca):
                m = t - Ra - i                   # column j's feeder, row i: no sideways move
                if 0 <= m < T:
                    x[i, j] = X[m, i, j]
                    x_tag[i, j] = m
                    cnt[B_IN] += i < nr and j < nc
                else:
                    x_tag[i, j] = -1
                tag = x_tag[i, j]
                if tag < 0:
                    p_tag[i, j] = -1
                    continue
                if i == 0:
                    p[i, j] = x[i, j] * s[i, j]
                else:
                    if p_tag[i - 1, j] != tag:
                        return -1
                    p[i, j] = p[i - 1, j] + x[i, j] * s[i, j]
                p_tag[i, j] = tag
                if i < nr and j < nc:
                    cnt[IN_W] += 1               # the column feeder's value latched here
                    _mac_counts(i, nr, W_R, IN_R, cnt)
                if i == Ra - 1:                  # leaves the array at the bottom
                    out[tag, j] += p[i, j]
                    remaining -= 1
                    if remaining == 0:
                        return t + 1
        t += 1


@njit(cache=True)
def _run_folds_dw(a, b, Ra, Ca, count, out, busy, cnt, stores):
    """All folds of a grouped GEMM under dw: rows K, columns the flattened (group,
    filter) pairs q = g * N + n, stream M. a (G, M, K), b (G, K, N), out (G, M, N)."""
    G, M, K = a.shape
    N = b.shape[2]
    T = M
    rf, cf = (K + Ra - 1) // Ra, (G * N + Ca - 1) // Ca
    f = 0
    for ri in range(rf):
        r0, r1 = ri * Ra, min(K, ri * Ra + Ra)
        for ci in range(cf):
            c0, c1 = ci * Ca, min(G * N, ci * Ca + Ca)
            S = np.zeros((Ra, Ca), dtype=out.dtype)
            X = np.zeros((T, Ra, Ca), dtype=out.dtype)
            for q in range(c0, c1):
                g, n = q // N, q % N
                S[:r1 - r0, q - c0] = b[g, r0:r1, n]
                X[:, :r1 - r0, q - c0] = a[g, :, r0:r1]
            o = np.zeros((T, Ca), dtype=out.dtype)
            L = _fold_dw(S, X, T, Ra, Ca, o, r1 - r0, c1 - c0, cnt)
            if L < 0:
                return -1
            for q in range(c0, c1):
                out[q // N, :, q % N] += o[:, q - c0]
                stores[q // N, :, q % N] += 1
            busy[f % count] += L
            f += 1
    return 0


@njit(cache=True)
def _dense_lanes(dt):
    """The empty N:M operands of :func:`_fold_stationary` (a dense fold)."""
    return (np.zeros((0, 0, 0), dtype=dt), np.zeros((0, 0), dtype=np.int64),
            np.zeros((0, 0, 0), dtype=dt), np.zeros((0, 0), dtype=np.int64),
            np.zeros(0, dtype=np.int64))


@njit(cache=True)
def _run_folds_kc(a, b, RS, Ra, Ca, count, out, busy, cnt, stores):
    """All folds of a grouped GEMM under kc: the reduction index is c * RS + t (channel
    c, tap t); for every group and tap, rows C, columns N, stream M (ws folds)."""
    G, M, K = a.shape
    N = b.shape[2]
    C = K // RS
    T = M
    rf, cf = (C + Ra - 1) // Ra, (N + Ca - 1) // Ca
    f = 0
    for g in range(G):
        for tap in range(RS):
            for ri in range(rf):
                r0, r1 = ri * Ra, min(C, ri * Ra + Ra)
                for ci in range(cf):
                    c0, c1 = ci * Ca, min(N, ci * Ca + Ca)
                    S = np.zeros((Ra, Ca), dtype=out.dtype)
                    X = np.zeros((T, Ra), dtype=out.dtype)
                    for i in range(r1 - r0):
                        k = (r0 + i) * RS + tap
                        S[i, :c1 - c0] = b[g, k, c0:c1]
                        X[:, i] = a[g, :, k]
                    o = np.zeros((T, Ca), dtype=out.dtype)
                    L = _fold_stationary(S, X, T, Ra, Ca, o, r1 - r0, c1 - c0, W_R, IN_R,
                                         cnt, *_dense_lanes(out.dtype))
                    if L < 0:
                        return -1
                    out[g, :, c0:c1] += o[:, :c1 - c0]
                    stores[g, :, c0:c1] += 1
                    busy[f % count] += L
                    f += 1
    return 0


@njit(cache=True)
def _fold_kcr(Wt, X, Mp, tp, Ra, Ca, out, nr, nc, tr, cnt):
    """One kcr fold. Wt (Ra, tp, Ca): PE(i, j)'s weight for tap u is Wt[i, u, j]; X (Mp,
    tp, Ra): row i's input for pixel m, tap u; out (Mp, Ca)[m, j] += sum over u, i of
    X[m, u, i] Wt[i, u, j]; the first ``nr`` rows, ``nc`` columns and ``tr`` taps are
    real (the rest padding). Adds the real PEs' register accesses to ``cnt``. Returns the
    fold's cycle count (last-output cycle index + 1), -1 on a tag mismatch."""
    L = Ra * tp
    w = np.zeros((L, Ca), dtype=out.dtype)      # per column: chain of Ra x tp registers
    wq = np.full((L, Ca), -1, dtype=np.int64)   # the register each value ends in
    # preload: one value a cycle into the chain's head, the deepest register's first;
    # every register passes its value one place down (a real value, one for a real row
    # and tap, is latched by every register it passes: all in real PEs)
    for t in range(L):
        for q in range(L - 1, 0, -1):
            for j in range(Ca):
                w[q, j] = w[q - 1, j]
                wq[q, j] = wq[q - 1, j]
        q = L - 1 - t                           # the register this value ends in
        for j in range(Ca):
            w[0, j] = Wt[q // tp, q % tp, j]
            wq[0, j] = q
            cnt[B_W] += q // tp < nr and q % tp < tr and j < nc
        for r in range(L):
            for j in range(nc):
                v = wq[r, j]
                if v >= 0 and v // tp < nr and v % tp < tr:
                    cnt[W_W] += 1
    T = Mp * tp
    x = np.zeros((Ra, Ca), dtype=out.dtype)
    x_tag = np.full((Ra, Ca), -1, dtype=np.int64)
    p = np.zeros((Ra, Ca), dtype=out.dtype)
    p_tag = np.full((Ra, Ca), -1, dtype=np.int64)
    acc = np.zeros(Ca, dtype=out.dtype)         # the column's output register
    acc_tag = np.full(Ca, -1, dtype=np.int64)
    remaining = Mp * Ca
    t = L
    while True:
        for i in range(Ra - 1, -1, -1):          # bottom row first: psums move down
            for j in range(Ca - 1, -1, -1):      # right column first: operands move right
                if j > 0:
                    x[i, j] = x[i, j - 1]
                    x_tag[i, j] = x_tag[i, j - 1]
                else:
                    e = t - L - i
                    if 0 <= e < T:
                        x[i, 0] = X[e // tp, e % tp, i]
                        x_tag[i, 0] = e
                        cnt[B_IN] += i < nr and e % tp < tr
                    else:
                        x_tag[i, 0] = -1
                tag = x_tag[i, j]
                if tag < 0:
                    p_tag[i, j] = -1
                    continue
                u = tag % tp
                if i == 0:
                    p[i, j] = x[i, j] * w[i * tp + u, j]
                else:
                    if p_tag[i - 1, j] != tag:
                        return -1
                    p[i, j] = p[i - 1, j] + x[i, j] * w[i * tp + u, j]
                p_tag[i, j] = tag
                if i < nr and j < nc and u < tr:
                    cnt[IN_W] += 1
                    _mac_counts(i, nr, W_R, IN_R, cnt)
                if i == Ra - 1:                  # into the column's output register
                    if u == 0:
                        acc[j] = p[i, j]
                    else:
                        if acc_tag[j] != tag - 1:
                            return -1
                        acc[j] += p[i, j]
                    acc_tag[j] = tag
                    if u == tp - 1:              # the pixel's sum leaves the array
                        out[tag // tp, j] += acc[j]
                        remaining -= 1
                        if remaining == 0:
                            return t + 1
        t += 1


@njit(cache=True)
def _run_folds_kcr(a, b, RS, tp, Ra, Ca, count, out, busy, cnt, stores):
    """All folds of a grouped GEMM under kcr: the reduction index is c * RS + tap; taps
    in chunks of ``tp`` (the last padded with zero taps); for every group and chunk,
    rows C, columns N, stream M x tp."""
    G, M, K = a.shape
    N = b.shape[2]
    C = K // RS
    chunks = (RS + tp - 1) // tp
    rf, cf = (C + Ra - 1) // Ra, (N + Ca - 1) // Ca
    f = 0
    for g in range(G):
        for ch in range(chunks):
            for ri in range(rf):
                r0, r1 = ri * Ra, min(C, ri * Ra + Ra)
                for ci in range(cf):
                    c0, c1 = ci * Ca, min(N, ci * Ca + Ca)
                    Wt = np.zeros((Ra, tp, Ca), dtype=out.dtype)
                    X = np.zeros((M, tp, Ra), dtype=out.dtype)
                    for i in range(r1 - r0):
                        for u in range(tp):
                            tap = ch * tp + u
                            if tap < RS:
                                k = (r0 + i) * RS + tap
                                Wt[i, u, :c1 - c0] = b[g, k, c0:c1]
                                X[:, u, i] = a[g, :, k]
                    o = np.zeros((M, Ca), dtype=out.dtype)
                    L = _fold_kcr(Wt, X, M, tp, Ra, Ca, o, r1 - r0, c1 - c0,
                                  min(tp, RS - ch * tp), cnt)
                    if L < 0:
                        return -1
                    out[g, :, c0:c1] += o[:, :c1 - c0]
                    stores[g, :, c0:c1] += 1
                    busy[f % count] += L
                    f += 1
    return 0


@njit(cache=True)
def _fold_kco(Wt, X, Mp, E, Ra, Ca, real_rows, real_cols, real_pix, out, counts, cnt):
    """One kco fold on all L lanes (arrays) at once. Wt (E, Ra, Ca): PE(i, j)'s weight for
    reduction step u; X (L, Mp, E, Ra): lane l's row-i input for pixel step s, step u;
    out (L, Mp, Ca)[l, s, j] += sum over u, i of X[l, s, u, i] Wt[u, i, j]. ``real_rows``
    (E,): rows holding a real channel at step u; ``real_cols``: columns holding a real
    filter; ``real_pix`` (L,): lane l's real pixel steps. Adds to ``counts`` the buffer's
    element reads of inputs (feeder pushes) and weights (bus reads) and the outputs
    written, real elements only, and to ``cnt`` the real PEs' register accesses (module
    doc, *Counted*: a real MAC is one of a real row, column and lane pixel step; it reads
    its input and weight registers, writes its partial sum and reads the one from above
    (not in row 0), and the last real row's sum is read once more as it leaves for the
    column's output register; the weight bus's latch into a lane idling on a padding
    pixel step is not counted, as an edge fold's padding PEs are not). Returns the fold's
    cycle count (last-output cycle index + 1), -1 on a tag mismatch or lanes out of
    step."""
    L = X.shape[0]
    T = Mp * E
    x = np.zeros((L, Ra, Ca), dtype=out.dtype)
    x_tag = np.full((L, Ra, Ca), -1, dtype=np.int64)
    p = np.zeros((L, Ra, Ca), dtype=out.dtype)
    p_tag = np.full((L, Ra, Ca), -1, dtype=np.int64)
    w = np.zeros((L, Ra, Ca), dtype=out.dtype)    # each PE's one-weight register
    w_tag = np.full((L, Ra, Ca), -1, dtype=np.int64)
    acc = np.zeros((L, Ca), dtype=out.dtype)      # each column's output register
    acc_tag = np.full((L, Ca), -1, dtype=np.int64)
    remaining = L * Mp * Ca
    t = 0
    while True:
        for i in range(Ra - 1, -1, -1):           # bottom row first: psums move down
            for j in range(Ca - 1, -1, -1):       # right column first: inputs move right
                # PE(i, j)'s weight bus: its own schedule (element t - i - j), one buffer
                # read written into the weight register of PE(i, j) of every lane
                eb = t - i - j
                if 0 <= eb < T:
                    wv = Wt[eb % E, i, j]
                    if i < real_rows[eb % E] and j < real_cols:
                        counts[1] += 1
                    for l in range(L):
                        w[l, i, j] = wv
                        w_tag[l, i, j] = eb
                else:
                    for l in range(L):
                        w_tag[l, i, j] = -1
                for l in range(L):
                    if j > 0:
                        x[l, i, j] = x[l, i, j - 1]
                        x_tag[l, i, j] = x_tag[l, i, j - 1]
                    else:
                        e = t - i
                        if 0 <= e < T:
                            x[l, i, 0] = X[l, e // E, e % E, i]
                            x_tag[l, i, 0] = e
                            if e // E < real_pix[l] and i < real_rows[e % E]:
                                counts[0] += 1
                        else:
                            x_tag[l, i, 0] = -1
                    tag = x_tag[l, i, j]
                    if tag < 0:
                        p_tag[l, i, j] = -1
                        continue
                    if w_tag[l, i, j] != tag or tag != x_tag[0, i, j]:
                        return -1                 # weight and input out of step
                    if i == 0:
                        p[l, i, j] = x[l, i, j] * w[l, i, j]
                    else:
                        if p_tag[l, i - 1, j] != tag:
                            return -1
                        p[l, i, j] = p[l, i - 1, j] + x[l, i, j] * w[l, i, j]
                    p_tag[l, i, j] = tag
                    if tag // E < real_pix[l] and i < real_rows[tag % E] and j < real_cols:
                        cnt[IN_W] += 1            # latched on its way right
                        cnt[W_W] += 1             # the bus's latch for this lane
                        cnt[IN_R] += 1
                        cnt[W_R] += 1
                        cnt[O_W] += 1
                        if i > 0:
                            cnt[O_R] += 1         # the partial sum from above
                        if i == real_rows[tag % E] - 1:
                            cnt[O_R] += 1         # read as it leaves the last real row
                    if i == Ra - 1:               # into the column's output register
                        u = tag % E
                        if u == 0:
                            acc[l, j] = p[l, i, j]
                        else:
                            if acc_tag[l, j] != tag - 1:
                                return -1
                            acc[l, j] += p[l, i, j]
                        acc_tag[l, j] = tag
                        if u == E - 1:            # the output is complete: it leaves
                            s = tag // E
                            out[l, s, j] += acc[l, j]
                            if s < real_pix[l] and j < real_cols:
                                counts[2] += 1
                            remaining -= 1
                            if remaining == 0:
                                return t + 1
        t += 1


@njit(cache=True)
def _run_folds_kco(a, b, RS, Ra, Ca, count, tiles, out, busy, counts, cnt, stores):
    """All folds of a grouped GEMM under kco: the reduction index is c * RS + tap. For
    every channel tile (``tiles``: (first, end) channels of a group; one pass each),
    group and column fold the ``count`` arrays run at once, lane l on pixels
    s * count + l, streaming pixel steps x the tile's channel blocks x taps (taps
    innermost); each pass's outputs leave the column registers when it ends and are
    added into the buffer (one store per output per channel tile)."""
    G, M, K = a.shape
    N = b.shape[2]
    Mp = (M + count - 1) // count
    cf = (N + Ca - 1) // Ca
    real_pix = np.zeros(count, dtype=np.int64)
    for l in range(count):
        real_pix[l] = (M - l + count - 1) // count if l < M else 0
    f = 0
    for ti in range(tiles.shape[0]):
        ch0, C = tiles[ti, 0], tiles[ti, 1] - tiles[ti, 0]
        cb = (C + Ra - 1) // Ra
        E = cb * RS
        real_rows = np.zeros(E, dtype=np.int64)
        for blk in range(cb):
            for tap in range(RS):
                real_rows[blk * RS + tap] = min(Ra, C - blk * Ra)
        for g in range(G):
            for ci in range(cf):
                c0, c1 = ci * Ca, min(N, ci * Ca + Ca)
                Wt = np.zeros((E, Ra, Ca), dtype=out.dtype)
                X = np.zeros((count, Mp, E, Ra), dtype=out.dtype)
                for blk in range(cb):
                    for i in range(min(Ra, C - blk * Ra)):
                        for tap in range(RS):
                            k = (ch0 + blk * Ra + i) * RS + tap
                            u = blk * RS + tap
                            Wt[u, i, :c1 - c0] = b[g, k, c0:c1]
                            for m in range(M):
                                X[m % count, m // count, u, i] = a[g, m, k]
                o = np.zeros((count, Mp, Ca), dtype=out.dtype)
                L = _fold_kco(Wt, X, Mp, E, Ra, Ca, real_rows, c1 - c0, real_pix, o, counts,
                              cnt)
                if L < 0:
                    return -1
                for m in range(M):
                    out[g, m, c0:c1] += o[m % count, m // count, :c1 - c0]
                    stores[g, m, c0:c1] += 1      # each output leaves its column once a pass
                for l in range(count):            # every array runs this fold on its lane
                    busy[f % count] += L
                    f += 1
    return 0


def channel_ranges(C: int, c_tiles) -> np.ndarray:
    """(first, end) of each channel tile of a group's ``C`` channels that the innermost
    on-chip level feeds the array, in the order the nest visits them, when the levels'
    tiles hold ``c_tiles`` channels (outermost first): each level splits every tile of
    the level above into tiles of its size, the last the rest (the executor's walk,
    :mod:`sim.kernels.nest`)."""
    rngs = [(0, C)]
    for t in c_tiles:
        rngs = [(s, min(s + t, e)) for a, e in rngs for s in range(a, e, t)]
    return np.array(rngs, dtype=np.int64).reshape(-1, 2)




@njit(cache=True)
def _chain_stationary(S, X, Ra, Ca, O, variant=0):
    """:func:`_chain_counted` of folds with every row and column real, counts dropped."""
    F = S.shape[0]
    full = np.full(F, Ra, dtype=np.int64)
    dt = O.dtype
    return _chain_counted(S, X, Ra, Ca, O, full, np.full(F, Ca, dtype=np.int64), W_R, IN_R,
                          np.zeros(N_COUNTS, dtype=np.int64), np.zeros((0, 0, 0, 0), dtype=dt),
                          np.zeros((0, 0, 0), dtype=np.int64), np.zeros((0, 0, 0, 0), dtype=dt),
                          np.zeros((0, 0, 0), dtype=np.int64), np.zeros((0, 0), dtype=np.int64),
                          variant)


@njit(cache=True)
def _chain_counted(S, X, Ra, Ca, O, nr, nc, so, xo, cnt, SL, SO, XL, XO, RD, variant=0):
    """Overlapped preload: the ws/is folds S (F, Ra, Ca) stationary, X (F, T, Ra) streamed
    run back to back on one array with shadow registers; O (F, T, Ca) += X[f] @ S[f].
    Returns the cycle count (last-output cycle index + 1), -1 on a hazard (a shadow value
    overwritten before its PE took it, a PE switching to a shadow not yet loaded) or a
    tag mismatch, -2 if it runs longer than serial preload would (a stuck schedule).

    ``variant`` 0 is the design (module doc). Two broken designs exist only to show that
    the hazard checks bite (tests): 1 loads every column in lockstep, as soon as PE(0, 0)
    has switched; 2 shifts a loading column's whole shadow chain every cycle instead of
    moving values with the load's front.

    Fold f's first ``nr[f]`` rows and ``nc[f]`` columns are real; the real PEs' register
    accesses are added to ``cnt`` (``so``, ``xo``: the stationary and streamed operands'
    read slots): a shadow register latching a real value counts as a write (a value for
    row r is latched by the r + 1 shadows it passes); the switch to the shadow is a bank
    select, no access.

    N:M skipping: as :func:`_fold_stationary`, each with the fold first: ``SL`` (F, Ra,
    Ca, M), ``SO`` (F, Ra, Ca), ``XL`` (F, T, Ra, M), ``XO`` (F, T, Ra), ``RD`` (F, Ra);
    a PE reads the lanes of the fold its active register holds. Dense: all empty."""
    sl, xl = SL.shape[3] > 0, XL.shape[3] > 0
    F, T = X.shape[0], X.shape[1]
    dt = O.dtype
    x = np.zeros((Ra, Ca), dtype=dt)              # streamed operand, moves right
    xf = np.full((Ra, Ca), -1, dtype=np.int64)    # its fold (-1: none) and stream index
    xm = np.full((Ra, Ca), -1, dtype=np.int64)
    p = np.zeros((Ra, Ca), dtype=dt)              # partial sum, moves down
    pf = np.full((Ra, Ca), -1, dtype=np.int64)
    pm = np.full((Ra, Ca), -1, dtype=np.int64)
    wa = np.zeros((Ra, Ca), dtype=dt)             # active stationary value and its fold
    af = np.full((Ra, Ca), -1, dtype=np.int64)
    wsh = np.zeros((Ra, Ca), dtype=dt)            # shadow: value, fold, row it is for
    sf = np.full((Ra, Ca), -1, dtype=np.int64)
    sr = np.full((Ra, Ca), -1, dtype=np.int64)    # -1: empty (or taken by the PE)
    lf = np.zeros(Ca, dtype=np.int64)             # per column: fold being (next) loaded
    lu = np.zeros(Ca, dtype=np.int64)             # ... and its values pushed so far
    loaded0 = -1                                  # last fold fully loaded into column 0
    ring_f = np.full(Ra, -1, dtype=np.int64)      # row-0 issues of the last Ra cycles:
    ring_m = np.full(Ra, -1, dtype=np.int64)      # row i is fed what row 0 got i cycles ago
    cur_f, cur_m = -1, -1                         # last element issued into row 0
    remaining = F * T * Ca
    limit = F * (T + 2 * Ra + Ca) + 16
    n_mac = n_or = n_bx = n_sw = n_bs = 0         # counts (locals: flushed at the end)
    t = 0
    while t < limit:
        # 1. issue into row 0: the fold's next element, or the next fold's first once
        #    the current one has entered and column 0's shadows hold the next fold
        nf, nm = -1, -1
        if cur_f >= 0 and cur_m + 1 < T:
            nf, nm = cur_f, cur_m + 1
        elif cur_f + 1 < F and loaded0 >= cur_f + 1:
            nf, nm = cur_f + 1, 0
        if nf >= 0:
            cur_f, cur_m = nf, nm
        ring_f[t % Ra] = nf
        ring_m[t % Ra] = nm
        # 2. streamed operands move one PE right; row i's edge gets row 0's issue of t - i
        for i in range(Ra):
            for j in range(Ca - 1, 0, -1):
                x[i, j] = x[i, j - 1]
                xf[i, j] = xf[i, j - 1]
                xm[i, j] = xm[i, j - 1]
            f = -1
            if t - i >= 0:
                f = ring_f[(t - i) % Ra]
            xf[i, 0] = f
            if f >= 0:
                xm[i, 0] = ring_m[(t - i) % Ra]
                x[i, 0] = X[f, xm[i, 0], i]
                if i < nr[f]:
                    n_bx += RD[f, i] if xl else 1
        # 3. PEs (bottom row first: partial sums move down). A PE meeting a new fold's
        #    first element takes its shadow (as it was last cycle) into its active register
        for i in range(Ra - 1, -1, -1):
            for j in range(Ca):
                f = xf[i, j]
                if f < 0:
                    pf[i, j] = -1
                    continue
                m = xm[i, j]
                if af[i, j] != f:
                    if m != 0 or sr[i, j] != i or sf[i, j] != f:
                        return -1                     # the shadow is not this fold's yet
                    wa[i, j] = wsh[i, j]
                    af[i, j] = f
                    sr[i, j] = -1
                sv, xv = wa[i, j], x[i, j]
                if sl:                                # is, N:M: the streamed weight's lane
                    sv = SL[f, i, j, XO[f, m, i]]
                elif xl:                              # ws, N:M: the active weight's lane
                    xv = XL[f, m, i, SO[f, i, j]]
                if i == 0:
                    p[i, j] = xv * sv
                else:
                    if pf[i - 1, j] != f or pm[i - 1, j] != m:
                        return -1
                    p[i, j] = p[i - 1, j] + xv * sv
                pf[i, j] = f
                pm[i, j] = m
                if i < nr[f] and j < nc[f]:           # a real MAC, its streamed value
                    n_mac += 1                        # latched here (see _mac_counts)
                    n_or += (i > 0) + (i == nr[f] - 1)
                if i == Ra - 1:                       # leaves the array at the bottom
                    O[f, m, j] += p[i, j]
                    remaining -= 1
                    if remaining == 0:
                        _chain_totals(cnt, so, xo, n_mac, n_or, n_bx)
                        cnt[so + 1] += n_sw
                        cnt[B_IN + so // 2] += n_bs
                        return t + 1
        # 4. shadow chains (bottom first): a value in transit moves down one row; column
        #    j pushes the next fold's values (row Ra-1's first) into row 0 from the cycle
        #    PE(0, j) took the previous fold's (fold 0: from cycle 0)
        for j in range(Ca):
            f = lf[j]
            load = f < F and (lu[j] > 0 or f == 0 or af[0, 0 if variant == 1 else j] == f - 1)
            for i in range(Ra - 1, 0, -1):
                if sr[i - 1, j] > i - 1 or (variant == 2 and load):
                    if sr[i, j] == i:
                        return -1                     # would overwrite a value not yet taken
                    g = sf[i - 1, j]
                    if g >= 0 and 0 <= sr[i - 1, j] < nr[g] and j < nc[g]:
                        n_sw += 1
                    wsh[i, j] = wsh[i - 1, j]
                    sf[i, j] = sf[i - 1, j]
                    sr[i, j] = sr[i - 1, j]
                elif sr[i, j] > i:
                    sr[i, j] = -1                     # moved down, nothing follows
            if load:
                if sr[0, j] == 0:
                    return -1
                u = lu[j]
                wsh[0, j] = S[f, Ra - 1 - u, j]
                sf[0, j] = f
                sr[0, j] = Ra - 1 - u
                if Ra - 1 - u < nr[f] and j < nc[f]:
                    n_sw += 1
                    n_bs += RD[f, Ra - 1 - u] if sl else 1   # read from the buffer
                lu[j] = u + 1
                if lu[j] == Ra:
                    lf[j] = f + 1
                    lu[j] = 0
                    if j == 0:
                        loaded0 = f
            elif sr[0, j] > 0:
                sr[0, j] = -1
        t += 1
    return -2


@njit(cache=True)
def _operands(a, b, df, g, r0, r1, c0, c1, S, X):
    """Fill fold (g, rows r0:r1, cols c0:c1)'s stationary S (Ra, Ca) and streamed X
    (T, Ra) of a ws or is fold (zeros outside the fold: partial folds)."""
    if df == WS:     # rows: K, cols: N, stream M; weights stationary
        S[:r1 - r0, :c1 - c0] = b[g, r0:r1, c0:c1]
        X[:, :r1 - r0] = a[g, :, r0:r1]
    else:            # rows: K, cols: M, stream N; inputs stationary
        S[:r1 - r0, :c1 - c0] = a[g, c0:c1, r0:r1].T
        X[:, :r1 - r0] = b[g, r0:r1, :].T


@njit(cache=True)
def _scatter(df, g, c0, c1, o, out, stores):
    """Add a ws/is fold's outputs o (T, Ca) to out (G, M, N) (and count the stores)."""
    if df == WS:
        out[g, :, c0:c1] += o[:, :c1 - c0]
        stores[g, :, c0:c1] += 1
    else:
        out[g, c0:c1, :] += o[:, :c1 - c0].T
        stores[g, c0:c1, :] += 1


@njit(cache=True)
def _feeds(bid, bsz, r0, r1, rd):
    """Input values a feeder reads for kept rows r0:r1 (N:M, :func:`sim.pe.nm.feeds`):
    the block's rows for the first kept row of each block in the range, else 0."""
    for i in range(r0, r1):
        rd[i - r0] = bsz[bid[i]] if i == r0 or bid[i] != bid[i - 1] else 0


@njit(cache=True)
def _nm_operands(al, bo, bid, bsz, df, g, r0, r1, c0, c1, SL, SO, XL, XO, RD):
    """Fill the N:M operands of ws/is fold (g, rows r0:r1, cols c0:c1) for
    :func:`_fold_stationary` (zeros outside the fold): ws, the input blocks XL and the
    weights' offsets SO; is, the input blocks SL and the weights' offsets XO; RD, the
    input values each row's feeder reads."""
    nr, nc = r1 - r0, c1 - c0
    if df == WS:
        XL[:, :nr, :] = al[g, :, r0:r1, :]
        SO[:nr, :nc] = bo[g, r0:r1, c0:c1]
    else:
        for i in range(nr):
            for j in range(nc):
                SL[i, j, :] = al[g, c0 + j, r0 + i, :]
        XO[:, :nr] = bo[g, r0:r1, :].T
    _feeds(bid, bsz, r0, r1, RD)


@njit(cache=True)
def _run_folds(a, b, df, Ra, Ca, count, overlapped, out, busy, cnt, stores, al, bo, bid,
               bsz):
    """All folds of a grouped GEMM: a (G, M, K), b (G, K, N), out (G, M, N) += a @ b.
    ``busy[arr]`` accumulates each array's cycles. ``overlapped``: ws/is folds of each
    array run back to back with shadow preload (:func:`_chain_stationary`). Returns -1 on
    a tag mismatch or hazard.

    N:M skipping (module doc) when ``al`` (G, M, K, lanes) has lanes: K is the kept
    rows, ``al`` each kept row's input block, ``bo`` (G, K, N) the weights' offsets,
    ``bid`` (K,) each kept row's block and ``bsz`` each block's rows (``a`` is then not
    read). Dense: all four empty."""
    G, M, K = a.shape
    N = b.shape[2]
    nl = al.shape[3]                            # lanes: 0 dense, M under N:M
    if df == OS:
        rdim, cdim, T = M, N, K
    elif df == WS:
        rdim, cdim, T = K, N, M
    else:
        rdim, cdim, T = K, M, N
    ls = nl if df == IS else 0                  # the stationary operand's lanes
    lx = nl if df == WS else 0                  # the streamed operand's lanes
    rf, cf = (rdim + Ra - 1) // Ra, (cdim + Ca - 1) // Ca
    F = G * rf * cf
    so, xo = (W_R, IN_R) if df == WS else (IN_R, W_R)   # stationary, streamed operand
    chain = overlapped and df != OS
    Fc = F if chain else 0                      # chained folds' operands, gathered first
    S_all = np.zeros((Fc, Ra, Ca), dtype=out.dtype)
    X_all = np.zeros((Fc, T, Ra), dtype=out.dtype)
    Fl = Fc if nl > 0 else 0                    # ... and their N:M operands
    SL_all = np.zeros((Fl, Ra, Ca, ls), dtype=out.dtype)
    SO_all = np.zeros((Fl, Ra, Ca), dtype=np.int64)
    XL_all = np.zeros((Fl, T, Ra, lx), dtype=out.dtype)
    XO_all = np.zeros((Fl, T, Ra), dtype=np.int64)
    RD_all = np.zeros((Fl, Ra), dtype=np.int64)
    where = np.zeros((Fc, 3), dtype=np.int64)   # (g, c0, c1) of each fold
    ext = np.zeros((2, Fc), dtype=np.int64)      # its real rows and columns
    AR = np.zeros(K if df == OS and nl > 0 else 0, dtype=np.int64)
    if len(AR):                                 # os, N:M: the stream's block reads
        _feeds(bid, bsz, 0, K, AR)
    f = 0
    for g in range(G):
        for ri in range(rf):
            r0, r1 = ri * Ra, min(rdim, ri * Ra + Ra)
            for ci in range(cf):
                c0, c1 = ci * Ca, min(cdim, ci * Ca + Ca)
                if chain:
                    _operands(a, b, df, g, r0, r1, c0, c1, S_all[f], X_all[f])
                    if nl > 0:
                        _nm_operands(al, bo, bid, bsz, df, g, r0, r1, c0, c1, SL_all[f],
                                     SO_all[f], XL_all[f], XO_all[f], RD_all[f])
                    where[f, 0] = g
                    where[f, 1] = c0
                    where[f, 2] = c1
                    ext[0, f] = r1 - r0
                    ext[1, f] = c1 - c0
                    f += 1
                    continue
                if df == OS:     # rows: M, cols: N, stream K
                    A = np.zeros((Ra, T), dtype=out.dtype)
                    B = np.zeros((T, Ca), dtype=out.dtype)
                    A[:r1 - r0, :] = a[g, r0:r1, :]
                    B[:, :c1 - c0] = b[g, :, c0:c1]
                    AL = np.zeros((Ra if nl > 0 else 0, T, nl), dtype=out.dtype)
                    BO = np.zeros((T, Ca if nl > 0 else 0), dtype=np.int64)
                    if nl > 0:
                        AL[:r1 - r0] = al[g, r0:r1]
                        BO[:, :c1 - c0] = bo[g, :, c0:c1]
                    o = np.zeros((Ra, Ca), dtype=out.dtype)
                    L = _fold_os(A, B, T, Ra, Ca, o, r1 - r0, c1 - c0, cnt, AL, BO, AR)
                    out[g, r0:r1, c0:c1] += o[:r1 - r0, :c1 - c0]
                    stores[g, r0:r1, c0:c1] += 1
                else:
                    S = np.zeros((Ra, Ca), dtype=out.dtype)
                    X = np.zeros((T, Ra), dtype=out.dtype)
                    _operands(a, b, df, g, r0, r1, c0, c1, S, X)
                    SL = np.zeros((Ra, Ca, ls), dtype=out.dtype)   # empty when dense
                    SO = np.zeros((Ra if lx else 0, Ca), dtype=np.int64)
                    XL = np.zeros((T, Ra, lx), dtype=out.dtype)
                    XO = np.zeros((T if ls else 0, Ra), dtype=np.int64)
                    RD = np.zeros(Ra if nl else 0, dtype=np.int64)
                    if nl > 0:
                        _nm_operands(al, bo, bid, bsz, df, g, r0, r1, c0, c1, SL, SO, XL,
                                     XO, RD)
                    o = np.zeros((T, Ca), dtype=out.dtype)
                    L = _fold_stationary(S, X, T, Ra, Ca, o, r1 - r0, c1 - c0, so, xo, cnt,
                                         SL, SO, XL, XO, RD)
                    _scatter(df, g, c0, c1, o, out, stores)
                if L < 0:
                    return -1
                busy[f % count] += L
                f += 1
    if chain:
        O_all = np.zeros((Fc, T, Ca), dtype=out.dtype)
        for arr in range(min(count, F)):     # array arr runs folds arr, arr + count, ...
            n = (F - arr + count - 1) // count
            nq = n if nl > 0 else 0
            Sa = np.empty((n, Ra, Ca), dtype=out.dtype)
            Xa = np.empty((n, T, Ra), dtype=out.dtype)
            SLa = np.empty((nq, Ra, Ca, ls), dtype=out.dtype)
            SOa = np.empty((nq, Ra, Ca), dtype=np.int64)
            XLa = np.empty((nq, T, Ra, lx), dtype=out.dtype)
            XOa = np.empty((nq, T, Ra), dtype=np.int64)
            RDa = np.empty((nq, Ra), dtype=np.int64)
            nra = np.empty(n, dtype=np.int64)
            nca = np.empty(n, dtype=np.int64)
            for q in range(n):
                Sa[q] = S_all[arr + q * count]
                Xa[q] = X_all[arr + q * count]
                if nl > 0:
                    SLa[q] = SL_all[arr + q * count]
                    SOa[q] = SO_all[arr + q * count]
                    XLa[q] = XL_all[arr + q * count]
                    XOa[q] = XO_all[arr + q * count]
                    RDa[q] = RD_all[arr + q * count]
                nra[q] = ext[0, arr + q * count]
                nca[q] = ext[1, arr + q * count]
            O = np.zeros((n, T, Ca), dtype=out.dtype)
            L = _chain_counted(Sa, Xa, Ra, Ca, O, nra, nca, so, xo, cnt, SLa, SOa, XLa, XOa,
                               RDa)
            if L < 0:
                return -1
            busy[arr] += L
            for q in range(n):
                O_all[arr + q * count] = O[q]
        for f in range(F):                   # fold results added in fold order
            _scatter(df, where[f, 0], where[f, 1], where[f, 2], O_all[f], out, stores)
    return 0


@dataclass(frozen=True)
class PEResult:
    """Output of the PE model: the GEMM outputs and the last-output cycle index."""
    output: np.ndarray      # (G, M, N) at accumulator precision
    last_cycle: int         # index of the cycle the last output is produced (first cycle 0)
    folds: int
    array_cycles: tuple     # cycles each array is busy (counts, not indices)
    counts: dict | None = None  # what the model counted (rs: buffer reads, spad writes)
    registers: dict | None = None   # operand -> (reads, writes) of the PE registers, all PEs
    buffer: dict | None = None      # operand -> (reads, writes) of the innermost shared level


def register_counts(cnt) -> dict:
    """The counter array of a run -> operand -> (reads, writes) of its registers."""
    return {op: (int(cnt[i]), int(cnt[i + 1])) for op, i in REGISTER_SLOTS.items()}


def buffer_counts(cnt, stores) -> dict:
    """operand -> (reads, writes) elements of the array's own accesses to the innermost
    shared level holding it: the real values its feeders and preloads read, and the
    partial sums it stores, each read back (read-add-write) unless it is the output's
    first (``stores``: per output, how often the array stored it)."""
    n = int(stores.sum())
    return {"input": (int(cnt[B_IN]), 0), "weight": (int(cnt[B_W]), 0),
            "output": (n - int(np.count_nonzero(stores)), n)}


def simulate_gemm(a: np.ndarray, b: np.ndarray, dataflow: str, rows: int, cols: int,
                  count: int = 1, rs: int = 1, preload: str = "serial",
                  pe_entries: dict | None = None, c_tiles: tuple = (), skip: tuple = (),
                  name: str = "gemm") -> PEResult:
    """Run ``a`` (G, M, K) @ ``b`` (G, K, N) (or 2-D, one group) on ``count`` arrays of
    ``rows`` x ``cols`` PEs with ``dataflow`` os, ws, is, dw, kc, kcr or kco (dw only where
    it applies, :meth:`mapper.Dataflow.applies`: one filter per group). The reduction K is
    K / ``rs`` channels x ``rs`` filter taps, channel outermost (what kc, kcr and kco
    unroll); ``pe_entries`` (:func:`mapper.space.pe_entries`) sets the taps a kcr PE
    holds. Under kco the ``count`` arrays are its pixel lanes, and ``counts`` gives the
    buffer's element reads of inputs and weights and the outputs written, as counted;
    ``c_tiles`` (kco only: the on-chip levels' channel tiles, outermost first, as a
    mapping's tiling has them) runs each channel tile the innermost level feeds the
    array as a pass of its own (:func:`channel_ranges`; none: one tile, every channel).
    ``preload`` serial or overlapped: overlapped chains the folds of each array with
    shadow registers where the dataflow supports it (:attr:`mapper.Dataflow.overlaps`:
    ws, is); elsewhere it has no effect.

    ``skip`` (N, M): the array skips the zeros of N:M weights (os, ws, is; module doc,
    *N:M weights*): ``b`` must be N:M along K (ValueError naming ``name``, the filter and
    the block otherwise); the array runs the GEMM of the kept rows, K' =
    :func:`workloads.sparsity.nm_kept` (K, N, M), each PE picking its input by its
    weight's offset."""
    if dataflow not in DATAFLOW_CODE:
        raise ValueError(f"dataflow {dataflow!r}: use one of {', '.join(DATAFLOW_CODE)}")
    if preload not in PRELOADS:
        raise ValueError(f"preload {preload!r}: use one of {', '.join(PRELOADS)}")
    if a.ndim == 2:
        a, b = a[None], b[None]
    integer = np.issubdtype(a.dtype, np.integer)
    dt = np.int32 if integer else np.float32
    a = np.ascontiguousarray(a, dtype=dt)
    b = np.ascontiguousarray(b, dtype=dt)
    out = np.zeros((a.shape[0], a.shape[1], b.shape[2]), dtype=dt)
    busy = np.zeros(count, dtype=np.int64)
    cnt = np.zeros(N_COUNTS, dtype=np.int64)
    stores = np.zeros(out.shape, dtype=np.int64)   # per output: times the array stored it
    G, M, K = a.shape
    if K % rs:
        raise ValueError(f"reduction K = {K} is not a multiple of rs = {rs}")
    dims = gemm_dims(G, M, b.shape[2], K, rs)
    df = DATAFLOWS[dataflow]
    if skip:
        from tilesim.mapper.sparse import NM_DATAFLOWS
        from . import nm
        if dataflow not in NM_DATAFLOWS:
            raise ValueError(f"dataflow {dataflow!r} cannot skip N:M zeros: use one of "
                             f"{', '.join(NM_DATAFLOWS)}")
        n, mm = skip
        bc, bo = nm.compress(b, n, mm, name)
        al = nm.lanes(a, n, mm)
        _, bid, bsz = nm.block_rows(K, n, mm)
        b = bc
        a = np.zeros((G, M, bc.shape[1]), dtype=dt)   # not read: al carries the inputs
        dims = gemm_dims(G, M, b.shape[2], bc.shape[1])
    else:
        al = np.zeros((0, 0, 0, 0), dtype=dt)
        bo = np.zeros((0, 0, 0), dtype=np.int64)
        bid = bsz = np.zeros(0, dtype=np.int64)
    if not df.applies(dims):
        raise ValueError(f"dataflow {dataflow!r} does not apply to a GEMM of {dims}")
    code = DATAFLOW_CODE[dataflow]
    counts = None
    if code == DW:
        rc = _run_folds_dw(a, b, rows, cols, count, out, busy, cnt, stores)
    elif code == KC:
        rc = _run_folds_kc(a, b, rs, rows, cols, count, out, busy, cnt, stores)
    elif code == KCR:
        rc = _run_folds_kcr(a, b, rs, kcr_taps(rs, pe_entries)[0], rows, cols, count,
                            out, busy, cnt, stores)
    elif code == KCO:
        tally = np.zeros(3, dtype=np.int64)
        tiles = channel_ranges(K // rs, c_tiles)
        rc = _run_folds_kco(a, b, rs, rows, cols, count, tiles, out, busy, tally, cnt, stores)
        counts = dict(zip(("input", "weight", "output"), (int(v) for v in tally)))
        cnt[B_IN], cnt[B_W] = tally[0], tally[1]   # the array's reads of the buffer
    else:
        rc = _run_folds(a, b, code, rows, cols, count,
                        preload == "overlapped" and df.overlaps, out, busy, cnt, stores,
                        al, bo, bid, bsz)
    if rc < 0:
        raise RuntimeError("PE model: operands met out of step (tag mismatch); "
                           "the systolic schedule is wrong")
    folds = df.plan(dims, rows, cols, pe_entries, count).folds
    return PEResult(output=out, last_cycle=int(busy.max()) - 1, folds=folds,
                    array_cycles=tuple(int(v) for v in busy), counts=counts,
                    registers=register_counts(cnt), buffer=buffer_counts(cnt, stores))


def lower(layer, x: np.ndarray, w: np.ndarray):
    """The GEMM view of a MAC layer: a (G, M, K) im2col inputs and b (G, K, N) weights,
    M = N*P*Q, K = C/G*R*S (c, r, s order), N = K/G (see :attr:`workloads.MacLayer.gemm`)."""
    (sh, sw), (ph, pw), (dh, dw) = layer.stride, layer.padding, layer.dilation
    G, Cg, Kg = layer.groups, layer.C // layer.groups, layer.K // layer.groups
    P, Q, R, S = layer.P, layer.Q, layer.R, layer.S
    Hp = max(layer.H + 2 * ph, (P - 1) * sh + (R - 1) * dh + 1)
    Wp = max(layer.W + 2 * pw, (Q - 1) * sw + (S - 1) * dw + 1)
    xp = np.zeros((layer.N, layer.C, Hp, Wp), dtype=x.dtype)
    xp[:, :, ph:ph + layer.H, pw:pw + layer.W] = x
    cols = np.empty((layer.N, layer.C, R, S, P, Q), dtype=x.dtype)
    for r in range(R):
        for s in range(S):
            cols[:, :, r, s] = xp[:, :, r * dh:r * dh + (P - 1) * sh + 1:sh,
                                  s * dw:s * dw + (Q - 1) * sw + 1:sw]
    # (N, G, Cg, R, S, P, Q) -> (G, N, P, Q, Cg, R, S)
    cols = cols.reshape(layer.N, G, Cg, R, S, P, Q).transpose(1, 0, 5, 6, 2, 3, 4)
    a = cols.reshape(G, layer.N * P * Q, Cg * R * S)
    b = w.reshape(G, Kg, Cg * R * S).transpose(0, 2, 1)
    return np.ascontiguousarray(a), np.ascontiguousarray(b)


def unlower(layer, out: np.ndarray) -> np.ndarray:
    """(G, M, N) GEMM outputs back to the layer's (N, K, P, Q)."""
    G, Kg = layer.groups, layer.K // layer.groups
    o = out.reshape(G, layer.N, layer.P, layer.Q, Kg).transpose(1, 0, 4, 2, 3)
    return np.ascontiguousarray(o.reshape(layer.N, layer.K, layer.P, layer.Q))


def simulate_mapping(mapping, x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, PEResult]:
    """Run a mapped MAC layer on the PE model: (output (N, K, P, Q), PEResult). Under kco
    the channel tiles of the mapping's on-chip levels run as passes of their own. A
    mapping that skips N:M zeros (``mapping.skip``) runs the compressed GEMM: ``w`` must
    be N:M (ValueError otherwise; :func:`sim.pe.nm.prune` makes it so)."""
    a, b = lower(mapping.layer, x, w)
    t = mapping.tiling
    levels = (t.top,) + tuple(t.inner)
    r = simulate_gemm(a, b, mapping.dataflow.name, mapping.array_rows, mapping.array_cols,
                      mapping.array_count, rs=mapping.layer.R * mapping.layer.S,
                      preload=mapping.preload, pe_entries=dict(mapping.pe_entries),
                      c_tiles=tuple(lt.c_tile for lt in levels),
                      skip=tuple(mapping.skip), name=mapping.layer.name)
    return unlower(mapping.layer, r.output), r


def work(mapping) -> int:
    """PE-cycle updates the model performs for ``mapping`` (cycles of every array x PEs):
    what its run time is proportional to (a few ns each)."""
    m = mapping
    return array_work(m.dataflow, m.plan, m.array_rows, m.array_cols, m.array_count,
                      m.preload)


def array_work(dataflow, fold, rows: int, cols: int, count: int, preload: str) -> int:
    """PE-cycle updates of a planned :class:`mapper.dataflow.Fold`'s folds dealt
    round-robin to ``count`` arrays: the sum over the arrays of
    :meth:`mapper.Dataflow.chain` x PEs."""
    total = 0
    folds = fold.folds
    for arr in range(min(count, folds)):
        n = folds // count + (arr < folds % count)
        total += int(dataflow.chain(fold, n, rows, preload))
    return total * rows * cols
