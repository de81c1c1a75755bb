"""Depth-first layer fusion: a stack of consecutive layers computed strip by strip, so that
the tensors between them never leave the chip, and the exact costs of doing so.

The schedule
============
A :class:`FusedGroup` names layers ``first..last`` of a :class:`workloads.Model` (indices
into ``model.layers``), a strip height ``tile_rows`` in output rows of the group's *last*
layer and what happens to the halos (``"recompute"`` or ``"cache"``). The images of the
batch run one after the other; within an image, the last layer's output rows are cut into
``ceil(P_last / tile_rows)`` strips, the last one possibly shorter. For each strip the
rows every layer must produce follow backwards from the last layer: a layer's *need* is
the hull (lowest to highest row) of the input rows its consumers in the group read for
their needs. A conv or pool of stride ``sh``, padding ``ph``, dilation ``dh``, ``R`` rows,
making output rows ``[a, b)``, reads input rows ``[a*sh - ph, (b-1)*sh - ph + (R-1)*dh + 1)``
clipped to ``[0, H)`` (rows outside are padding, never fetched); an elementwise op
(``add``, ``relu``, ``relu6``) reads rows ``[a, b)`` of each input. Whole rows are
computed: every column, every channel.

The strip is then computed layer by layer, in the model's order (one *step* per layer):

1. **load**: before the first step of the strip that reads an *external* tensor (the
   network input, or a layer's output produced before ``first``), its rows for the strip
   (the hull over its readers in the group) are read from DRAM, except rows already on chip;
2. **compute**: the layer computes its need, except rows already on chip;
3. **write**: rows of a layer whose output is read after the group (and every row of the
   last layer) go to DRAM once each, when first computed;
4. **free**: every tensor on chip keeps only the rows from the lowest one a later step of
   this strip reads (or, with ``cache``, the next strip reads) up to its highest; a tensor
   nobody reads again leaves the chip.

``recompute`` keeps nothing from one strip to the next: each strip loads and computes its
whole windows, so the rows shared by neighbouring strips (the halos) are read again and
computed again. ``cache`` keeps them (a line buffer per tensor): every row of every tensor
is loaded or computed at most once.

Counting rules (all exact, all plain ints)
==========================================
- ``act_read_bytes``: the external rows loaded, per image, times the batch. With a single
  strip (``tile_rows >= P_last``) this is each external tensor once, whole when the layers
  read all its rows (a ``1x1`` stride-2 conv alone skips rows and so reads less).
- ``weight_read_bytes``: the group's weights (the MAC layers' ``w`` operands,
  ``weight_elems``; bias and folded BatchNorm parameters are not counted, as in the
  per-layer model), read once for the whole batch.
- ``write_bytes``: the outputs of the layers read after the group, and the last layer's,
  whole, once each.
- ``peak_onchip_bytes``: the largest, over every step, of the weights (all of the group's,
  resident throughout) plus the rows of every tensor on chip during the step: the held
  rows of intermediates and external inputs, the rows loaded for the step and the rows
  the step computes (a step's inputs and outputs coexist; freeing happens after it).
  Activations count at ``act_bytes`` per element whatever the accumulator width (the
  executor keeps int32 values for exactness; hardware requantises).
- ``macs``: the MACs of the rows computed. With ``recompute`` and halos it is above
  ``layer_macs`` (the layers' own MACs); with ``cache`` it equals it when every row of
  every layer is needed (rows a stride or the floor rule skip are not computed: then less).

Bytes are ``ceil(elements x bytes per element)`` of the totals (``act_bytes`` 0.5 for
int4), the peak ``ceil`` of activation plus weight bytes at its step.

:func:`fused_costs` computes these from the schedule's row intervals alone, no tensor data
(a loop over strips x layers); :func:`sim.kernels.fused.run_fused` runs the schedule on
integer tensors and measures the same numbers from what it moves and holds.

Supported layers: convolutions of any stride, padding, dilation and groups (conv,
pointwise, grouped, depthwise; written as convs, not fc / gemm / matmul), ``maxpool`` and
``avgpool``, ``add`` (two or more named sources), standalone ``relu`` / ``relu6``, each with
no activation or a fused ``relu`` / ``relu6``. Anything else raises :class:`FusionError`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from tilesim.workloads import MacLayer, Model, OpLayer, layer_sources
from tilesim.workloads.ir import NETWORK_INPUT

HALOS = ("recompute", "cache")
#: OpLayer ops a group may hold
FUSABLE_OPS = ("maxpool", "avgpool", "add", "relu", "relu6")
#: fused activations a group's layer may carry
FUSABLE_ACTIVATIONS = (None, "relu", "relu6")


class FusionError(ValueError):
    """A group that cannot be fused as given (the message names the layer and the fix)."""


class OnChipLimitError(RuntimeError):
    """The executor held more bytes on chip than the limit it was given."""


@dataclass(frozen=True)
class FusedGroup:
    """Layers ``first..last`` (indices into ``model.layers``, both included) run depth-first
    in strips of ``tile_rows`` output rows of the last layer; halos ``recompute``d or
    ``cache``d (see the module docstring)."""

    first: int
    last: int
    tile_rows: int
    halo: str = "recompute"

    def __post_init__(self):
        for f in ("first", "last", "tile_rows"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int):
                raise FusionError(f"FusedGroup.{f} = {v!r} must be an int")
        if self.first < 0 or self.last < self.first:
            raise FusionError(f"FusedGroup: first = {self.first}, last = {self.last}: need "
                              "0 <= first <= last")
        if self.tile_rows < 1:
            raise FusionError(f"FusedGroup.tile_rows = {self.tile_rows} must be >= 1")
        if self.halo not in HALOS:
            raise FusionError(f"FusedGroup.halo = {self.halo!r}: use one of {', '.join(HALOS)}")


@dataclass(frozen=True)
class FusedCosts:
    """What a fused group costs: DRAM bytes, on-chip peak, MACs (module docstring)."""

    strips: int              # strips per image
    act_read_bytes: int      # external activation rows read from DRAM (all images)
    weight_read_bytes: int   # the group's weights, read once
    write_bytes: int         # outputs read after the group, and the last layer's
    peak_onchip_bytes: int   # weights + rows on chip, at the fullest step
    macs: int                # MACs performed (halo recomputation included)
    layer_macs: int          # the layers' own MACs (layer by layer)

    @property
    def dram_read_bytes(self) -> int:
        return self.act_read_bytes + self.weight_read_bytes

    @property
    def dram_bytes(self) -> int:
        return self.dram_read_bytes + self.write_bytes


def nbytes(elems: int, per_elem) -> int:
    """``ceil(elems x per_elem)`` bytes (``per_elem`` 0.5 for 4-bit values)."""
    return int(math.ceil(elems * per_elem))


# ---- the group, resolved ---------------------------------------------------------------
@dataclass(frozen=True)
class Tensor:
    """A tensor the group reads or makes: per image ``channels x height x width``."""
    name: str        # its producer's name (NETWORK_INPUT for the network input)
    channels: int
    height: int
    width: int
    external: bool   # produced outside the group (read from DRAM)

    @property
    def row_elems(self) -> int:
        return self.channels * self.width


@dataclass(frozen=True)
class GroupPlan:
    """A group resolved against its model: the layers, what each reads, what is written."""
    layers: tuple            # the group's layers, in order
    reads: tuple             # per layer, the names of the tensors it reads
    tensors: dict            # name -> Tensor (external inputs and the layers' outputs)
    written: frozenset       # names of the layers whose outputs go to DRAM
    batch: int
    tile_rows: int
    halo: str

    @property
    def external(self) -> tuple:
        """Names of the external tensors, in the order the group first reads them."""
        seen = []
        for names in self.reads:
            seen += [t for t in names if self.tensors[t].external and t not in seen]
        return tuple(seen)

    @property
    def strips(self) -> int:
        return -(-self.layers[-1].P // self.tile_rows)

    @property
    def weight_elems(self) -> int:
        return sum(l.weight_elems for l in self.layers if isinstance(l, MacLayer))


def _cannot(layer, why: str, fix: str) -> FusionError:
    return FusionError(f"layer {layer.name!r} cannot be fused: {why}; {fix}")


def _check_layer(l) -> None:
    if isinstance(l, MacLayer):
        if l.origin != "conv" or l.weights_are_activations:
            raise _cannot(l, f"{l.origin} layers have no rows to tile",
                          "end the group before it")
    elif isinstance(l, OpLayer):
        if l.op not in FUSABLE_OPS:
            raise _cannot(l, f"op {l.op!r} is not one of {', '.join(FUSABLE_OPS)}",
                          "end the group before it")
        if l.op in ("add", "relu", "relu6") and (l.P, l.Q, l.K) != (l.H, l.W, l.C):
            raise _cannot(l, f"elementwise {l.op} changes the shape", "fix the layer's shape")
    else:
        raise FusionError(f"{l!r} is not a layer")
    if l.activation not in FUSABLE_ACTIVATIONS:
        raise _cannot(l, f"activation {l.activation!r} is not relu or relu6",
                      "end the group before it")


def resolve(model, group: FusedGroup) -> GroupPlan:
    """The group's layers, what each reads and what it writes; raises :class:`FusionError`
    for a group that cannot be fused. ``model`` is a :class:`workloads.Model` or a
    sequence of layers."""
    if not isinstance(model, Model):
        model = Model(name="layers", layers=tuple(model))
    layers = model.layers
    if not isinstance(group, FusedGroup):
        raise FusionError(f"{group!r} is not a FusedGroup")
    if group.last >= len(layers):
        raise FusionError(f"FusedGroup.last = {group.last}: the model has {len(layers)} layers "
                          f"(indices 0..{len(layers) - 1})")
    sources = layer_sources(model)
    index = {l.name: i for i, l in enumerate(layers)}
    mine = layers[group.first:group.last + 1]
    tensors: dict = {}
    reads = []
    for i, l in zip(range(group.first, group.last + 1), mine):
        _check_layer(l)
        names = sources[i]
        if None in names:
            raise _cannot(l, f"it reads {len(names)} tensors and names {names.index(None)}",
                          "name every input in its sources")
        want = l.inputs if isinstance(l, OpLayer) else 1
        if len(names) != want:
            raise _cannot(l, f"it names {len(names)} sources for {want} input(s)",
                          "give one source per input")
        for t in names:
            if t != NETWORK_INPUT and (t not in index or index[t] >= i):
                raise _cannot(l, f"source {t!r} is not an earlier layer of the model",
                              "name layers that come before it")
            if t != NETWORK_INPUT:
                p = layers[index[t]]
                if (p.K, p.P, p.Q) != (l.C, l.H, l.W):
                    raise _cannot(l, f"it reads {l.C}x{l.H}x{l.W} but {t!r} makes "
                                  f"{p.K}x{p.P}x{p.Q}", "fix the shapes or the sources")
            ext = t == NETWORK_INPUT or index[t] < group.first
            known = tensors.setdefault(t, Tensor(t, l.C, l.H, l.W, ext))
            if (known.channels, known.height, known.width) != (l.C, l.H, l.W):
                raise _cannot(l, f"it reads {t or 'the network input'!r} as {l.C}x{l.H}x{l.W}, "
                              f"another layer as {known.channels}x{known.height}x"
                              f"{known.width}", "fix the shapes or the sources")
        if l.N != mine[-1].N:
            raise _cannot(l, f"its batch {l.N} differs from the group's {mine[-1].N}",
                          "use one batch")
        reads.append(tuple(names))
        tensors[l.name] = Tensor(l.name, l.K, l.P, l.Q, False)
    readers = {}
    for i, names in enumerate(sources):
        for t in names:
            readers.setdefault(t, []).append(i)
    written = {mine[-1].name}
    for i, l in zip(range(group.first, group.last), mine[:-1]):
        r = readers.get(l.name, [])
        if not any(j <= group.last for j in r):
            raise _cannot(l, "no later layer of the group reads its output",
                          f"end the group at it (last = {i})")
        if any(j > group.last for j in r):
            written.add(l.name)
    return GroupPlan(tuple(mine), tuple(reads), tensors, frozenset(written), mine[-1].N,
                     group.tile_rows, group.halo)


# ---- row windows -----------------------------------------------------------------------
def input_rows(layer, rows):
    """The rows ``[lo, hi)`` of each input ``layer`` reads to make its output ``rows``
    ``(a, b)``, clipped to the input (None: all padding, or no rows asked)."""
    if rows is None:
        return None
    a, b = rows
    if isinstance(layer, OpLayer) and layer.op in ("add", "relu", "relu6"):
        return (a, b)
    sh, ph = layer.stride[0], layer.padding[0]
    dh = layer.dilation[0] if isinstance(layer, MacLayer) else 1
    lo = max(0, a * sh - ph)
    hi = min(layer.H, (b - 1) * sh - ph + (layer.R - 1) * dh + 1)
    return (lo, hi) if lo < hi else None


def _hull(x, y):
    if x is None:
        return y
    if y is None:
        return x
    return (min(x[0], y[0]), max(x[1], y[1]))


def strip_needs(plan: GroupPlan, s: int):
    """Strip ``s``'s windows: per layer, the rows ``(lo, hi)`` it must make (None: none),
    and per layer, per input, the rows it reads of that input."""
    L = len(plan.layers)
    P = plan.layers[-1].P
    out = [None] * L
    edges = [None] * L
    out[-1] = (s * plan.tile_rows, min(P, (s + 1) * plan.tile_rows))
    pos = {l.name: j for j, l in enumerate(plan.layers)}
    for j in reversed(range(L)):
        rows = input_rows(plan.layers[j], out[j])
        edges[j] = tuple(rows for _ in plan.reads[j])
        for t in plan.reads[j]:
            if not plan.tensors[t].external:
                out[pos[t]] = _hull(out[pos[t]], rows)
    return out, edges


@dataclass(frozen=True)
class Step:
    """One layer's step of one strip (per image): rows ``(lo, hi)`` or None."""
    strip: int
    layer: int                 # position in the group
    loads: tuple               # (tensor name, (lo, hi)) read from DRAM before the step
    compute: tuple | None      # rows the layer computes
    write: tuple | None        # rows of its output written to DRAM
    held: tuple                # (tensor name, (lo, hi)) on chip during the step
    keep: tuple                # (tensor name, (lo, hi)) on chip after the step


def schedule(plan: GroupPlan):
    """The steps of one image, in order (module docstring); raises :class:`FusionError`
    when rows of an output read after the group are never computed."""
    L = len(plan.layers)
    S = plan.strips
    cache = plan.halo == "cache"
    needs = [strip_needs(plan, s) for s in range(S)]

    def suffix_hulls(s):
        """Per tensor, per position j: the hull of the rows the steps from j on read."""
        hulls = {t: [None] * (L + 1) for t in plan.tensors}
        for j in reversed(range(L)):
            for t in hulls:
                hulls[t][j] = hulls[t][j + 1]
            for k, t in enumerate(plan.reads[j]):
                hulls[t][j] = _hull(hulls[t][j], needs[s][1][j][k])
        return hulls

    later = [suffix_hulls(s) for s in range(S)]

    def tensor_need(s, t, after=-1):
        """Hull of the rows of ``t`` the steps after ``after`` of strip ``s`` read."""
        return later[s][t][after + 1]

    held: dict = {}
    top_written = {t: 0 for t in plan.written}
    steps = []
    for s in range(S):
        loaded = set()
        for j, l in enumerate(plan.layers):
            loads = []
            for k, t in enumerate(plan.reads[j]):
                if not plan.tensors[t].external or t in loaded or needs[s][1][j][k] is None:
                    continue
                loaded.add(t)
                lo, hi = tensor_need(s, t)
                a, b = held.get(t, (lo, lo))
                new = (max(lo, b), hi)
                if new[0] < new[1]:
                    loads.append((t, new))
                    held[t] = (min(a, new[0]), hi) if b >= lo else new
            comp = needs[s][0][j]
            if comp is not None and l.name in held:
                comp = (max(comp[0], held[l.name][1]), comp[1])
            comp = comp if comp is not None and comp[0] < comp[1] else None
            if comp is not None:
                a, b = held.get(l.name, comp)
                held[l.name] = (min(a, comp[0]), comp[1]) if b >= comp[0] else comp
            write = None
            if comp is not None and l.name in plan.written:
                w0 = top_written[l.name]
                if comp[0] > w0:
                    raise _cannot(l, f"its output rows {w0}..{comp[0] - 1} are read after the "
                                  "group but no strip computes them", "end the group at it")
                if comp[1] > w0:
                    write = (w0, comp[1])
                    top_written[l.name] = comp[1]
            during = tuple(sorted(held.items()))
            for t, (a, b) in list(held.items()):
                keep = tensor_need(s, t, after=j)
                if cache and s + 1 < S:
                    keep = _hull(keep, tensor_need(s + 1, t))
                if keep is None or max(a, keep[0]) >= b:
                    del held[t]
                else:
                    held[t] = (max(a, keep[0]), b)
            steps.append(Step(s, j, tuple(loads), comp, write, during, tuple(sorted(held.items()))))
    for l in plan.layers:
        if l.name in plan.written and top_written[l.name] != l.P:
            raise _cannot(l, f"its output rows {top_written[l.name]}..{l.P - 1} are read after "
                          "the group but no strip computes them", "end the group at it")
    return tuple(steps)


def row_macs(layer) -> int:
    """MACs of one output row of one image."""
    if isinstance(layer, MacLayer):
        return layer.K * layer.Q * (layer.C // layer.groups) * layer.R * layer.S
    return 0


def fused_costs(model, group: FusedGroup, act_bytes=1, weight_bytes=1) -> FusedCosts:
    """The exact costs of running ``group`` of ``model`` (a Model, or a sequence of layers)
    depth-first (module docstring for the schedule and the counting rules)."""
    plan = resolve(model, group)
    steps = schedule(plan)
    T = plan.tensors
    N = plan.batch
    row_elems = {t: T[t].row_elems for t in T}
    reads = sum((hi - lo) * row_elems[t] for st in steps for t, (lo, hi) in st.loads)
    writes = sum((st.write[1] - st.write[0]) * row_elems[plan.layers[st.layer].name]
                 for st in steps if st.write)
    macs = sum((st.compute[1] - st.compute[0]) * row_macs(plan.layers[st.layer])
               for st in steps if st.compute)
    wel = plan.weight_elems
    peak = max(nbytes(sum((hi - lo) * row_elems[t] for t, (lo, hi) in st.held) * act_bytes
                      + wel * weight_bytes, 1) for st in steps)
    return FusedCosts(strips=plan.strips, act_read_bytes=nbytes(reads * N, act_bytes),
                      weight_read_bytes=nbytes(wel, weight_bytes),
                      write_bytes=nbytes(writes * N, act_bytes), peak_onchip_bytes=peak,
                      macs=macs * N, layer_macs=sum(l.macs for l in plan.layers))
