"""The depth-first schedule (``--fusion depth-first``): where residency spills, stacks of
consecutive layers run strip by strip (:mod:`sim.fusion`), so the tensors between them
stay on chip as rows.

Choosing the groups
===================
The schedule starts from the residency plan (:func:`sim.planner.plan`). Layers are
scanned in order; a group starts at a *fusable* layer (:mod:`sim.fusion`: a conv,
pointwise, grouped or depthwise conv, a pool, an add or a relu) whose output the
residency plan spills to DRAM although a later layer reads it. It grows over the next
fusable layers (at most :data:`MAX_GROUP`) and the longest stack that is a valid group
(:func:`sim.fusion.resolve`) and *fits* is taken, with the tallest strip that fits
(``tile_rows`` tried from the last layer's height down, halving; halos are ``cache``\\ d:
every row is loaded or computed once). Then the scan goes on after the group.

**It fits** when, at the activation level (the residency plan's), the group's rows at its
fullest step (:func:`sim.fusion.fused_costs`: ``peak_onchip_bytes`` less weights,
activations at the larger of the input and output precisions) plus the largest smallest
working set of a strip of its MAC layers (:func:`sim.planner.working_set` of the strip
layer; nothing resident, so an upper bound) plus the resident tensors made outside the
group and alive during it do not exceed the level; and when all of the group's weights
plus the largest strip working set there fit the level holding weights (the outermost
shared one; when it is the activation level, the weights count there too). A group's
weights stay on chip for the whole batch: an architecture without a shared level
holding weights gets no group (each strip would read every weight again).

A group is kept only when it lowers the network's score on the mapping objective
(:func:`judge`). The placement is then made again (first fit, as residency), with each group's layers
reserving ``reserve`` bytes (rows + strip working set [+ weights]) instead of their own
working sets, and the tensors between the group's layers placed ``fused``. A group's
external inputs and its outputs read after it are placed as any tensor: resident when
they fit, else DRAM.

Timing (both fidelities)
========================
A group runs image by image, strip by strip, layer by layer (the steps of
:func:`sim.fusion.schedule`). Each step that computes rows is a *strip layer*: the layer
with ``N = 1``, ``P`` the rows computed and the input rows they read (``H = (P-1) x
stride + (R-1) x dilation + 1``, vertical padding folded in). A MAC strip is mapped and
costed as any layer (:meth:`mapper.Mapper.map`), with its input resident (rows on chip),
its output resident unless the layer's output goes to DRAM, its weights resident in the
level holding weights except at the layer's first strip of the batch (which reads them
from DRAM: each weight byte once per batch), and the room the group leaves. A vector op's
strip is costed by :meth:`sim.cost.CostModel.op_result` (or the DES), reading nothing
from DRAM and writing its rows when its output goes there. The external rows a step loads
(when their tensor is in DRAM: the rows of :func:`sim.fusion.schedule`'s loads) are read
before it, serialised (:meth:`sim.cost.CostModel.staged`). A layer's result is the sum of
its strips (:func:`concat`): cycles back to back, bytes, MACs and energy added. No
cross-layer prefetch into, within or out of a group. The DES simulates each distinct
strip once and repeats its result (identical strips take identical cycles in the engine).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from tilesim.arch import Architecture
from tilesim.mapper import Residency
from tilesim.mapper.tiling import operand_bytes
from tilesim.workloads import MacLayer, Model
from tilesim.workloads.ir import NETWORK_INPUT

from .fusion import (FusedCosts, FusedGroup, FusionError, _check_layer, fused_costs, resolve,
                     schedule)
from .planner import DRAM, _room, weight_level, working_set
from .results import LayerResult

#: most layers in one depth-first group
MAX_GROUP = 8


@dataclass(frozen=True)
class Group:
    """A depth-first group the planner chose: the schedule, its exact costs
    (:func:`sim.fusion.fused_costs`, weights at the weight precision), the bytes it
    reserves at the activation level at each of its layers, and its weights' bytes."""
    group: FusedGroup
    costs: FusedCosts
    reserve: int
    weight_bytes: int
    rows: int = 0            # bytes of rows on chip at the fullest step
    inner: tuple = ()        # tensors (layer indices) that stay on chip as rows


def fusable(layer) -> bool:
    try:
        _check_layer(layer)
        return True
    except FusionError:
        return False


def strip_layer(layer, rows: tuple):
    """``layer`` computing output rows ``rows = (a, b)`` of one image (module docstring)."""
    n = rows[1] - rows[0]
    pw = layer.padding[1]
    if isinstance(layer, MacLayer):
        h = (n - 1) * layer.stride[0] + (layer.R - 1) * layer.dilation[0] + 1
        return replace(layer, N=1, P=n, H=h, padding=(0, pw), sources=())
    if layer.op in ("maxpool", "avgpool"):
        h = (n - 1) * layer.stride[0] + layer.R
        return replace(layer, N=1, P=n, H=h, padding=(0, pw), sources=())
    return replace(layer, N=1, P=n, H=n, sources=())


def _act_bytes(arch: Architecture) -> float:
    pb = arch.precision.bytes
    return max(pb["input"], pb["output"])


def _weight_bytes(layers, arch) -> int:
    return sum(int(l.weight_elems * operand_bytes(l, arch)["weight"]) for l in layers
               if isinstance(l, MacLayer))


def _strip_rows(steps, k) -> int:
    """Most rows group layer ``k`` computes in one step."""
    return max((s.compute[1] - s.compute[0] for s in steps if s.layer == k and s.compute),
               default=0)


def choose(model: Model, arch: Architecture, rp, working) -> tuple:
    """The depth-first groups of ``model`` from its residency plan ``rp`` (module
    docstring); ``working`` the planner's working-set rule."""
    L, WL = rp.level, weight_level(arch)
    if not L or not WL:
        return ()
    layers = model.layers
    n = len(layers)
    size, wsize = arch.memory[L].size, arch.memory[WL].size
    ab = _act_bytes(arch)
    tens = {j: rp.tensors[j + 1] for j in range(n)}      # tensor of layer j's output
    net_in = rp.tensors[0]
    # (a tensor a MatMul reads as its second operand is spilled too, but its reader cannot
    # join a group, so it is written by any group that makes it, never inner)
    spilled = [tens[j]["placed"] == DRAM and tens[j]["readers"] > 0 for j in range(n)]
    ok = [fusable(l) for l in layers]
    memo: dict = {}

    def ws(layer, lvl):
        key = (layer.nest, lvl)
        if key not in memo:
            memo[key] = working(layer, arch, lvl)[0]
        return memo[key]

    def outside(i, j) -> int:
        """Most bytes of resident tensors made outside layers i..j alive during them."""
        alive = [net_in] if net_in["placed"] != DRAM else []
        alive += [tens[t] for t in range(n) if not i <= t <= j and tens[t]["placed"] != DRAM]
        return max(sum(t["bytes"] for t in alive
                       if (t["first"] if t["first"] >= 0 else 0) <= k <= t["last"])
                   for k in range(i, j + 1))

    def attempt(i, j):
        """The Group i..j with the tallest strip that fits; False: invalid; None: no fit."""
        try:
            gp = resolve(model, FusedGroup(i, j, layers[j].P, "cache"))
        except FusionError:
            return False
        inner = tuple(k for k in range(i, j) if layers[k].name not in gp.written)
        if not any(spilled[k] for k in inner):
            return False
        gw = _weight_bytes(gp.layers, arch)
        # steady state: the group's weights already resident across inferences are in
        # rp.resident_weights; the others join them for the group's time
        extra = rp.resident_weights + _weight_bytes(
            [l for k, l in enumerate(gp.layers, i) if not rp.layers[k].res.weight], arch)
        base = outside(i, j)
        t = layers[j].P
        while True:
            g = FusedGroup(i, j, t, "cache")
            try:
                c = fused_costs(model, g, act_bytes=ab, weight_bytes=0)
                steps = schedule(resolve(model, g))
            except FusionError:
                return False
            strips = [strip_layer(l, (0, _strip_rows(steps, k)))
                      for k, l in enumerate(gp.layers)
                      if isinstance(l, MacLayer) and _strip_rows(steps, k)]
            w_act = max((ws(s, L) for s in strips), default=0)
            w_wt = max((ws(s, WL) for s in strips), default=0) if WL != L else 0
            reserve = c.peak_onchip_bytes + w_act + (extra if WL == L else 0)
            if base + reserve <= size and (WL == L or extra + w_wt <= wsize):
                wc = fused_costs(model, g, act_bytes=ab,
                                 weight_bytes=arch.precision.bytes["weight"])
                return Group(g, wc, reserve, gw, c.peak_onchip_bytes, inner)
            if t == 1:
                return None
            t = 1 << ((t - 1).bit_length() - 1)   # the next lower power of two

    groups, i = [], 0
    while i < n:
        if not (ok[i] and spilled[i]):
            i += 1
            continue
        best = None
        for j in range(i + 1, min(n, i + MAX_GROUP)):
            if not ok[j]:
                break
            g = attempt(i, j)
            if g is None:
                break
            if g:
                best = g
        if best:
            groups.append(best)
            i = best.group.last + 1
        else:
            i += 1
    return tuple(groups)


def group_results(model: Model, arch: Architecture, mapper, cost, p, g: Group,
                  mac=None, op=None) -> list:
    """The LayerResults of group ``g``'s layers (module docstring). ``mac(m)`` and
    ``op(layer, rd, wr)`` time one strip (default: the cost model's; the DES passes its
    own)."""
    mac = mac or cost.mac_result
    op = op or (lambda layer, rd, wr: cost.op_result(layer, rd, wr))
    gp = resolve(model, g.group)
    steps = schedule(gp)
    L, WL = p.level, p.weight_level or weight_level(arch)
    lname = arch.memory[L].name
    pb = arch.precision.bytes
    where = {t["tensor"]: t["placed"] for t in p.tensors}
    where[NETWORK_INPUT] = where.pop("input")
    first = g.group.first
    # bytes of weights the weight level holds during the group: every weight resident
    # across inferences (steady state) and the group's others
    held = p.resident_weights + _weight_bytes(
        [l for k, l in enumerate(gp.layers, first) if not p.layers[k].res.weight], arch)
    units: dict = {}
    memo: dict = {}
    wmemo: dict = {}
    loaded = set()
    for _image in range(gp.batch):
        for st in steps:
            k = st.layer
            layer = gp.layers[k]
            lp = p.layers[first + k]
            load = math.ceil(sum((hi - lo) * gp.tensors[t].row_elems
                                 * (pb["input"] if t == NETWORK_INPUT else pb["output"])
                                 for t, (lo, hi) in st.loads if where[t] == DRAM))
            if st.compute is None:
                if load:
                    raise FusionError(f"internal: a step of {layer.name!r} loads rows but "
                                      "computes none (the schedule caches what it loads)")
                continue
            rows = st.compute[1] - st.compute[0]
            out_dram = where[layer.name] == DRAM
            cold = isinstance(layer, MacLayer) and k not in loaded and not lp.res.weight
            loaded.add(k)
            key = (k, rows, cold, load)
            if key not in memo:
                sl = strip_layer(layer, st.compute)
                if isinstance(layer, MacLayer):
                    occ = lp.resident.get(lname, 0)
                    avail = (arch.memory[L].size - occ - g.rows
                             - (held - p.resident_weights if WL == L else 0))
                    if sl.nest not in wmemo:
                        wmemo[sl.nest] = working_set(sl, arch, L)
                    w, u = wmemo[sl.nest]
                    room = _room(max(avail, 0), w, u, arch.memory[L].size)
                    own = int(layer.weight_elems * operand_bytes(layer, arch)["weight"])
                    res = Residency(input=True, output=not out_dram, reserved=room, level=L,
                                    weight=not cold, w_level=WL,
                                    w_reserved=(held - (own if cold else 0))
                                    if WL != L else 0)
                    r = mac(mapper.map(sl, res))
                else:
                    wr = int(sl.out_elems * pb["output"]) if out_dram else 0
                    r = op(sl, 0, wr)
                if load:
                    r = cost.staged(r, load, lname)
                memo[key] = r
            units.setdefault(k, []).append(memo[key])
    return [concat(units[k], layer, arch) for k, layer in enumerate(gp.layers)]


_SUM = ("macs", "vector_ops", "memory_cycles", "dram_read_bytes", "dram_write_bytes",
        "dram_read_input_bytes", "dram_read_weight_bytes", "dram_read_psum_bytes", "folds",
        "row_folds", "col_folds", "energy_pj", "performed_macs")
_STALLS = ("stall_input_cycles", "stall_weight_cycles", "stall_psum_cycles",
           "stall_writeback_cycles", "stall_contention_cycles", "stall_other_cycles", "events")


def concat(rs: list, layer, arch: Architecture) -> LayerResult:
    """One layer's result from its strips, run back to back: cycles, bytes, MACs, energy
    and stalls added; busy fractions weighted by cycles; bound and tiling of the strip
    that takes the most cycles (its tiling prefixed by the strip count)."""
    cycles = sum(r.cycles for r in rs)
    comp = sum(r.compute_cycles + 1 for r in rs)
    top = max(rs, key=lambda r: r.cycles)
    kw = {f: sum(getattr(r, f) for r in rs) for f in _SUM}
    for f in _STALLS:
        v = [getattr(r, f) for r in rs]
        kw[f] = None if any(x is None for x in v) else sum(v)
    bb: dict = {}
    for r in rs:
        for lvl, rw in r.buffer_bytes.items():
            d = bb.setdefault(lvl, {"read": 0, "write": 0})
            d["read"] += rw["read"]
            d["write"] += rw["write"]
    eb: dict = {}
    for r in rs:
        for k, v in r.energy_breakdown.items():
            eb[k] = eb.get(k, 0.0) + v
    busy: dict = {}
    for r in rs:
        for k, v in r.busy.items():
            busy[k] = busy.get(k, 0.0) + v * r.cycles / cycles
    util = (kw["performed_macs"] / (arch.peak_macs_per_cycle * cycles)) if kw["macs"] else 0.0
    return replace(top, layer=layer.name, kind=layer.kind, compute_cycles=comp - 1,
                   stall_cycles=cycles - comp, total_cycles=cycles - 1, utilization=util,
                   tiling=f"df {len(rs)} strips; {top.tiling}".rstrip("; "),
                   buffer_bytes=bb, energy_breakdown=eb, busy=busy, **kw)


def totals(rs: list) -> tuple:
    """(cycles, energy pJ, DRAM bytes) of layers ``rs``."""
    return (sum(r.cycles for r in rs), sum(r.energy_pj for r in rs),
            sum(r.dram_read_bytes + r.dram_write_bytes for r in rs))


def score(t: tuple, objective: str) -> float:
    """Totals ``t`` (:func:`totals`) on the mapper's ``objective``: cycles (latency),
    energy (energy), their product (edp) or DRAM bytes (traffic); lower is better."""
    cyc, pj, dram = t
    return {"latency": float(cyc), "energy": pj, "traffic": float(dram)}.get(objective,
                                                                             cyc * pj)


def judge(model: Model, arch: Architecture, mapper, cost, p, base: list) -> tuple:
    """The groups of depth-first plan ``p`` that improve the network's score on the
    mapper's objective (:func:`score`; ``edp`` when it has none): starting from the
    residency plan's analytic totals, each group in turn replaces its layers' residency
    results by its depth-first ones, and stays when the network's score drops (a group
    that saves energy but costs more time than the product allows goes). Analytic
    results (``base``: the residency plan's LayerResults); both fidelities run the
    groups kept."""
    objective = getattr(mapper, "objective", "edp") or "edp"
    now = totals(base)
    keep = []
    for g in p.groups:
        a, b = g.group.first, g.group.last + 1
        old, new = totals(base[a:b]), totals(group_results(model, arch, mapper, cost, p, g))
        cand = tuple(x - o + n for x, o, n in zip(now, old, new))
        if score(cand, objective) < score(now, objective):
            keep.append(g)
            now = cand
    return tuple(keep)
