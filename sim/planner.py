"""The network-level planner: which activation tensors stay on chip between layers.

A network's activations are tensors over its layer graph (:func:`workloads.layer_sources`):
the network input and each layer's output, alive from the layer that writes it to the
last layer that reads it (a residual's shortcut stays alive across its block; the batch
is part of every size). Per schedule (``fusion``):

``none``
    every layer reads its inputs from DRAM and writes its output to DRAM, as SCALE-Sim
    does: the per-layer model of before, number for number.
``residency``
    a tensor stays in the *activation level* -- the outermost shared on-chip level that
    is the first holder of both inputs and outputs (tpu_v1's unified buffer,
    edge_tpu_like's activation buffer) -- when it fits there for its whole life, and its
    readers take it from there; the rest spill to DRAM. An architecture without such a
    level keeps every tensor in DRAM.
``depth-first``
    residency, and the fused groups :func:`sim.run.network_plan` hands in
    (:mod:`sim.depthfirst`): their layers reserve the group's rows and strip working set
    instead of their own working sets, and the tensors between them are placed ``fused``.

**The capacity rule.** Each MAC layer ``j`` reserves its smallest legal working set
``W_j`` of the activation level: the least room its tiles need there among the coarse
grid of tilings that fill the array and fit every level (:func:`working_set`; nothing
resident, so an upper bound of what it needs once some operands are resident). Vector
ops reserve nothing (they stream). Tensors are taken in the order they are produced and
each is placed when, at every layer of its life, the resident tensors already placed
plus it plus ``W_j`` fit the level (first fit: deterministic, no backtracking). Then each
MAC layer's mapping is searched (:meth:`mapper.Mapper.map`) with its input and output
where the plan put them (:class:`mapper.Residency`: a resident operand's tiles at the
activation level are views of the resident tensor and take no room) and the level's
size minus the resident bytes alive during it, so the search always finds at least the
working set it reserved. To share searches between layers of one shape, the room left is
rounded down to five significant bits (at most 1/16 lost, never below ``W_j``), and is
not a constraint at all when the layer's whole-layer tile fits in it.

The network input arrives in DRAM: when it fits for its life it is staged into the
activation level before the first layer (one DRAM read of its bytes, serialised:
:meth:`sim.cost.CostModel.staged`) and its readers take it from there; else they stream
it from DRAM as their tilings say. Never resident: the network outputs (tensors no
layer reads: they leave in DRAM), a tensor read as the second operand of a MatMul of two
activations (it moves as the w operand, from DRAM), and tensors of unknown producers
(a layer that names fewer sources than it reads).

**Steady state** (``steady_state=True``, ``--steady-state``): weights stay on chip across
inferences, as the Edge TPU caches parameters: each MAC layer's weights, in layer order,
are resident in the outermost on-chip level holding weights when the resident weights
plus the largest working set any layer needs there (beside the resident activations when
the two levels are one) fit; a resident layer reads no weights from DRAM
(:class:`mapper.Residency` ``weight``). The first (cold) inference loads them once: its
latency adds one DRAM transfer of every resident weight byte (``latency_cold_ms``).

**Cross-layer prefetch** (every schedule but ``none``): a MAC layer's first weight tile
loads during the previous layer's last step, as far as DRAM can move it in that step's
cycles (a vector op: its cycles DRAM is idle) and when weights are double-buffered (a free
slot): :func:`sim.run.prefetch` (:class:`mapper.Residency` ``prefetched``).

Bytes: a layer's output at output precision, the network input at input precision.
A MAC layer reading a resident input reads ``input_elems x input bytes`` from chip
(``onchip_read_bytes``); one writing a resident output keeps ``output_elems x output
bytes`` (``onchip_write_bytes``). A vector op's DRAM bytes are its usual read (every
input, :func:`sim.cost.op_bytes`) less the resident inputs' bytes, and its write unless
its output is resident.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tilesim.arch import Architecture
from tilesim.mapper import NO_RESIDENCY, Residency
from tilesim.mapper.dataflow import DATAFLOWS
from tilesim.mapper.mapping import ORDERS
from tilesim.mapper import sparse
from tilesim.mapper.tiling import fills_array, grid_axes, operand_bytes, score_points
from tilesim.workloads import MacLayer, Model, layer_sources

from .cost import op_bytes

#: the schedules ``--fusion`` offers
FUSIONS = ("none", "residency", "depth-first")
DRAM = "dram"
#: where a depth-first group keeps the tensors between its layers: on chip, as rows
FUSED = "fused"


@dataclass(frozen=True)
class LayerPlan:
    """One layer's part of a :class:`Plan`: its MAC residency (``res``), where its
    inputs come from and its output goes (``"dram"`` or the level's name), the
    activation bytes it reads from and writes to chip instead of DRAM, the bytes of
    resident tensors each level holds while it runs, and, for a vector op, its DRAM
    read and write bytes (None for a MAC layer)."""
    res: Residency = NO_RESIDENCY
    stage: int = 0               # network-input bytes staged on chip before this layer
    input_from: str = DRAM
    output_to: str = DRAM
    onchip_read: int = 0
    onchip_write: int = 0
    resident: dict = field(default_factory=dict)
    op_read: int | None = None
    op_write: int | None = None


@dataclass(frozen=True)
class Plan:
    """Where every activation tensor of a model lives (see the module docstring)."""
    fusion: str
    level: int                   # index into arch.memory of the activation level (0: none)
    layers: tuple                # LayerPlan per layer
    tensors: tuple               # one dict per tensor (sim.results.TENSOR_COLUMNS)
    weight_level: int = 0        # steady state: the level holding resident weights (0: none)
    resident_weights: int = 0    # steady state: bytes of weights resident across inferences
    groups: tuple = ()           # depth-first: the fused groups (sim.depthfirst.Group)


def activation_level(arch: Architecture) -> int:
    """Index (into ``arch.memory``) of the outermost shared on-chip level that is the
    first holder of both inputs and outputs; 0 when there is none."""
    first = {}
    for op in ("input", "output"):
        first[op] = next((i for i, m in enumerate(arch.memory)
                          if i and m.scope == "shared" and op in m.holds), 0)
    return first["input"] if first["input"] == first["output"] else 0


def _usage(layer: MacLayer, arch: Architecture, name: str, tiles, order) -> np.ndarray:
    ev = score_points(layer, arch, *tiles, order)
    return ev.usage[name], ev.fits


def working_set(layer: MacLayer, arch: Architecture, level: int) -> tuple[int, int]:
    """(W, U) of ``layer`` at ``arch.memory[level]``: the least room its tiles need
    there among the coarse grid of tilings (powers of two, multiples of the array's
    columns, full extents; every loop order) that fill the array under its own dataflow
    and fit every level (those fitting this level alone when none fits all), and the
    room of its whole-layer tile (the most any tiling needs). Bytes, double buffering
    included; nothing resident."""
    name = arch.memory[level].name
    layer = layer.nest
    rsel, kts, cts = grid_axes(layer, arch, 0)
    rsel = np.array(rsel, dtype=np.int64)
    o, r, k, c = (x.ravel() for x in np.meshgrid(np.arange(len(ORDERS)), np.arange(len(rsel)),
                                                 np.arange(len(kts)), np.arange(len(cts)),
                                                 indexing="ij"))
    nb, pt, qt = rsel[r].T
    kt, ct = np.array(kts, dtype=np.int64)[k], np.array(cts, dtype=np.int64)[c]
    df = next(d for d in [arch.array.dataflow] + list(arch.array.dataflows or [])
              if DATAFLOWS[d].applies(_dims(layer)))
    fill = fills_array(layer, arch, df, nb, pt, qt, kt, ct)
    if not fill.any():
        fill[:] = True
    u, fits = _usage(layer, arch, name, (nb[fill], pt[fill], qt[fill], kt[fill], ct[fill]), o[fill])
    ok = fits if fits.any() else u <= arch.memory[level].size
    w = int(np.ceil(u[ok].min())) if ok.any() else arch.memory[level].size
    i64 = lambda v: np.array([v], dtype=np.int64)  # noqa: E731
    whole, _ = _usage(layer, arch, name, (i64(layer.N), i64(layer.P), i64(layer.Q), i64(layer.K),
                                          i64(layer.C // layer.groups)), i64(0))
    return w, max(w, int(np.ceil(whole[0])))


def _dims(layer: MacLayer) -> dict:
    from tilesim.mapper.dataflow import layer_dims
    return layer_dims(layer)


def _room(avail: int, w: int, u: int, size: int) -> int:
    """The reserved bytes a layer's search sees: none when its whole-layer tile fits in
    ``avail``, else ``size`` less ``avail`` rounded down to five significant bits (never
    below the working set ``w``)."""
    if avail >= u:
        return 0
    e = max(0, avail.bit_length() - 5)
    return size - max((avail >> e) << e, w)


def weight_level(arch: Architecture) -> int:
    """Index (into ``arch.memory``) of the outermost shared on-chip level holding weights
    (0: none)."""
    return next((i for i, m in enumerate(arch.memory)
                 if i and m.scope == "shared" and "weight" in m.holds), 0)


def plan(model: Model, arch: Architecture, fusion: str = "residency",
         working=working_set, steady_state: bool = False, groups: tuple | None = None) -> Plan:
    """The :class:`Plan` of ``model`` on ``arch`` under schedule ``fusion`` (one of
    :data:`FUSIONS`); ``working(layer, arch, level) -> (W, U)`` the working-set rule
    (:func:`working_set`; a test may hand in its own); ``steady_state``: weights that fit
    stay on chip across inferences (see the module docstring); ``groups``: under
    ``depth-first``, the fused groups to run (:func:`sim.depthfirst.choose` proposes
    them, :func:`sim.run.network_plan` keeps those that pay; None: none)."""
    if fusion not in FUSIONS:
        raise ValueError(f"unknown fusion {fusion!r}; use one of {', '.join(FUSIONS)}")
    if fusion != "depth-first" or groups is None:
        groups = ()
    fused = {j: g for g in groups for j in range(g.group.first, g.group.last + 1)}
    inner = {t: g for g in groups for t in g.inner}
    layers = model.layers
    n = len(layers)
    srcs = layer_sources(model)
    index = {l.name: i for i, l in enumerate(layers)}
    pb = arch.precision.bytes
    L = activation_level(arch) if fusion != "none" else 0
    # tensors: -1 the network input, i the output of layer i
    # a tensor's bytes as the activation level stores it (compressed formats at the
    # densities: mapper/sparse.py, the producer's output density; the network input at
    # the first layer's input density), and dense (what vector ops read and write)
    lname = arch.memory[L].name if L else ""
    dense_of = {-1: int(_in_elems(layers[0]) * pb["input"])}
    size_of = {-1: _held(layers[0], arch, lname, "input", _in_elems(layers[0]) * pb["input"])}
    readers: dict = {t: [] for t in range(-1, n)}
    blocked: set = set()        # tensors some reader must take from DRAM
    for j, (l, ss) in enumerate(zip(layers, srcs)):
        dense_of[j] = int(_out_elems(l) * pb["output"])
        size_of[j] = _held(l, arch, lname, "output", _out_elems(l) * pb["output"])
        for pos, s in enumerate(ss):
            if s is None:
                continue
            t = -1 if s == "" else index[s]
            readers[t].append(j)
            if isinstance(l, MacLayer) and pos > 0:
                blocked.add(t)
    placed = {t: DRAM for t in readers}
    reason = {}
    occ = [0] * n
    W, U = [0] * n, [0] * n
    if L:
        size = arch.memory[L].size
        memo: dict = {}
        for j, l in enumerate(layers):
            if isinstance(l, MacLayer):
                key = l.nest
                if key not in memo:
                    memo[key] = working(l, arch, L)
                W[j], U[j] = memo[key]
            if j in fused:   # a depth-first group's layer reserves the group's rows and strips
                W[j] = U[j] = fused[j].reserve
    for t in range(-1, n):
        if not readers[t]:
            reason[t] = "network output: leaves in DRAM"
        elif not L:
            reason[t] = ("schedule none: every activation through DRAM" if fusion == "none"
                         else "no on-chip level is the first holder of both inputs and outputs")
        elif t in blocked:
            reason[t] = "read as a MatMul's second operand (moves as the w operand, from DRAM)"
        elif t in inner:
            g = inner[t]
            placed[t] = FUSED
            reason[t] = (f"depth-first group {layers[g.group.first].name!r}..."
                         f"{layers[g.group.last].name!r}: on chip as rows, strips of "
                         f"{g.group.tile_rows} rows ({g.costs.strips} per image)")
        else:
            life = range(max(t, 0), max(readers[t]) + 1)
            b = size_of[t]
            worst = max(life, key=lambda j: occ[j] + W[j])
            if occ[worst] + b + W[worst] <= size:
                placed[t] = arch.memory[L].name
                reason[t] = ("network input: staged from DRAM once, before the first layer"
                             if t == -1 else "fits beside every working set of its life")
                for j in life:
                    occ[j] += b
            else:
                reason[t] = ("network input: streamed from DRAM by its readers; " if t == -1
                             else "") + (f"capacity: needs {b} B beside {occ[worst] + W[worst]} B "
                             f"(resident + working set) at layer {layers[worst].name!r}")
    # steady state: each MAC layer's weights, in layer order, stay in the weight level for
    # the whole run when they fit beside every layer's working set there (and beside the
    # resident activations when that level is the activation level too)
    WL = weight_level(arch) if steady_state and fusion != "none" else 0
    w_res: set = set()
    w_occ = 0
    if WL:
        wsize = arch.memory[WL].size
        wmemo: dict = {}
        WW = [0] * n
        for j, l in enumerate(layers):
            if isinstance(l, MacLayer):
                if l.nest not in wmemo:
                    wmemo[l.nest] = working(l, arch, WL)
                WW[j] = wmemo[l.nest][0]
        base = [occ[j] if WL == L else 0 for j in range(n)]
        need = max(b + w for b, w in zip(base, WW))
        for j, l in enumerate(layers):
            if isinstance(l, MacLayer) and not l.weights_are_activations:
                b = _held(l, arch, arch.memory[WL].name, "weight",
                          l.weight_elems * operand_bytes(l, arch)["weight"])
                if w_occ + b + need <= wsize:
                    w_res.add(j)
                    w_occ += b
    out = []
    for j, (l, ss) in enumerate(zip(layers, srcs)):
        ts = [None if s is None else (-1 if s == "" else index[s]) for s in ss]
        where = [DRAM if t is None else placed[t] for t in ts]
        mine = placed[j]
        stage = _held(layers[0], arch, arch.dram.name, "input", dense_of[-1]) \
            if j == 0 and placed[-1] != DRAM else 0   # read from DRAM in its format
        on_in = [t for t, w in zip(ts, where) if w != DRAM]
        resident = {arch.memory[L].name: occ[j]} if L else {}
        if w_occ:
            wn = arch.memory[WL].name
            resident[wn] = resident.get(wn, 0) + w_occ
        if isinstance(l, MacLayer):
            res_in = bool(ts and ts[0] is not None and where[0] != DRAM)
            res_out = mine != DRAM
            res = NO_RESIDENCY
            if res_in or res_out or occ[j]:
                avail = arch.memory[L].size - occ[j]
                res = Residency(input=res_in, output=res_out,
                                reserved=_room(avail, W[j], U[j], arch.memory[L].size), level=L)
            if w_occ:
                res = Residency(input=res.input, output=res.output, reserved=res.reserved,
                                level=res.level, weight=j in w_res, w_reserved=w_occ,
                                w_level=WL)
            out.append(LayerPlan(
                res=res, input_from="+".join(where), output_to=mine, stage=stage,
                onchip_read=_held(l, arch, lname, "input",
                                  l.input_elems * operand_bytes(l, arch)["input"]) if res_in else 0,
                onchip_write=size_of[j] if res_out else 0, resident=resident))
        else:
            rd0, wr0 = op_bytes(l, arch)
            on_rd = min(rd0, sum(dense_of[t] for t in on_in))
            on_wr = wr0 if mine != DRAM else 0
            out.append(LayerPlan(input_from="+".join(where), output_to=mine, onchip_read=on_rd,
                                 stage=stage,
                                 onchip_write=on_wr, resident=resident,
                                 op_read=rd0 - on_rd, op_write=wr0 - on_wr))
    tensors = tuple({"tensor": "input" if t == -1 else layers[t].name, "bytes": size_of[t],
                     "placed": placed[t], "first": t,
                     "last": max(readers[t]) if readers[t] else t,
                     "readers": len(readers[t]), "reason": reason[t]}
                    for t in range(-1, n))
    return Plan(fusion=fusion, level=L, layers=tuple(out), tensors=tensors,
                weight_level=WL, resident_weights=w_occ, groups=groups)


def _held(layer, arch: Architecture, level: str, op: str, dense: float) -> int:
    """Bytes of a whole tensor (``dense`` bytes) of ``layer``'s operand ``op`` as
    ``level`` stores it: its format at the layer's densities (:mod:`mapper.sparse`; a
    whole tensor holds exactly its density's share of non-zeros, so no worst case);
    dense for a vector op or where no format is declared."""
    if not level or not isinstance(layer, MacLayer):
        return int(dense)
    rat = sparse.ratios(layer, arch, operand_bytes(layer, arch))
    return int(dense) if rat is None else int(dense * rat.t(level, op) + 1e-9)


def _in_elems(layer) -> int:
    return layer.input_elems if isinstance(layer, MacLayer) else layer.in_elems


def _out_elems(layer) -> int:
    return layer.output_elems if isinstance(layer, MacLayer) else layer.out_elems
