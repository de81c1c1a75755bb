"""Time one layer (and a whole model) with the discrete-event engine.

The engine (:mod:`sim.des.engine`) replays the layer's tile program
(:mod:`sim.des.program`) against DMA engines, DRAM channels and buffer slots. Two
throughput limits are not simulated event by event but applied as floors, exactly as
the analytic model applies them: the vector unit's cycles for a fused activation and
each on-chip level's bytes / bandwidth (none of the presets gives an on-chip
bandwidth). Time they add beyond the simulated timeline is ``stall_other_cycles``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from tilesim.arch import Architecture
from tilesim.mapper import Mapper, Mapping, MappingError, points_of, sparse
from tilesim.mapper.actual import actual_nonzero_products, sparsity_label
from tilesim.workloads import MacLayer, Model, OpLayer

from ..cost import CostModel, dram_reads, op_level_bytes, transfer_cycles
from ..energy import energy_terms, with_energy
from ..results import LayerResult, ModelResult
from .engine import CAUSES, Hardware, Outcome, run
from .program import mac_program, op_program
from .trace import DEFAULT_LIMIT, Trace


def hardware(arch: Architecture, arrays: int | None = None) -> Hardware:
    return Hardware(bytes_per_cycle=arch.dram_bpc,
                    channels=arch.dram_channels, dma_engines=arch.dma_engines,
                    latency=arch.dram_latency_cycles,
                    arrays=arch.array.count if arrays is None else arrays)


def check_fits(m: Mapping, arch: Architecture) -> None:
    """MappingError unless every on-chip level holds its tiles (two of each when it is
    double-buffered): a mapping made for another architecture must not run."""
    usage = points_of(m, arch).tiles.usage
    for i, lvl in enumerate(arch.memory[1:], 1):
        if lvl.scope == "pe":   # one value per PE: checked when the architecture loads
            continue
        need = math.ceil(usage[lvl.name][0])
        if need > lvl.size:
            db = " (double-buffered: two tiles)" if lvl.double_buffered else ""
            raise MappingError(
                f"layer {m.layer.name!r}: the mapping's tiles need {need} B in buffer "
                f"{lvl.name!r} (memory[{i}]), which holds {lvl.size} B{db}",
                source=arch.name,
                fix=f"map the layer for this architecture (smaller tiles), or raise "
                    f"memory[{i}].size to at least {need} B")


def _shares(folds: int, count: int) -> tuple:
    """Array a's work relative to array 0's when ``folds`` are dealt round-robin."""
    per = [folds // count + (a < folds % count) for a in range(count)]
    return tuple((p, per[0]) for p in per)


def _busy(o: Outcome, occupied: int, names: list, vector_cycles: int) -> dict:
    b = {f"array{a}": o.array_busy[a] / occupied for a in range(len(o.array_busy))} \
        if names is None else {names[a]: o.array_busy[a] / occupied
                               for a in range(len(o.array_busy))}
    b.update({f"dram_ch{c}": v / occupied for c, v in enumerate(o.channel_busy)})
    b.update({f"dma{e}": v / occupied for e, v in enumerate(o.dma_busy)})
    if vector_cycles:
        b["vector"] = vector_cycles / occupied
    return b


def _stall_fields(o: Outcome, other: int) -> dict:
    d = {f"stall_{c}_cycles": int(o.stalls[c]) for c in CAUSES}
    d["stall_other_cycles"] = other
    return d


def _run(prog, hw, shares, trace: Trace | None, memo: dict | None, key) -> Outcome:
    """The engine's outcome, reused from ``memo`` for a layer of the same shape and
    tiling (same program and hardware: the engine is deterministic) unless tracing.
    ``memo["events"]`` counts the events actually simulated. A full trace still records
    spans (they are only counted as dropped), so its ``dropped`` count is exact."""
    tracing = trace is not None
    if memo is not None and not tracing and key in memo:
        return memo[key]
    o = run(prog, hw, shares, trace=tracing)
    if memo is not None:
        memo["events"] = memo.get("events", 0) + o.events
        if not tracing:
            memo[key] = o
    return o


def simulate_mac(m: Mapping, arch: Architecture, trace: Trace | None = None,
                 offset: int = 0, program=None, memo: dict | None = None,
                 cost: CostModel | None = None, tail: int = 0, data=None) -> LayerResult:
    """A MAC layer through the engine; ``trace`` records its spans from cycle ``offset``.
    Its access counts, the vector-unit and on-chip-bandwidth floors and its energy terms
    are the cost model's (``cost``, :class:`sim.cost.CostModel`), priced at the engine's
    time. ``tail``: bytes of the next layer's first weight tile it prefetches in its last
    step (the next layer's DRAM reads, not its own). ``data``
    (:class:`mapper.actual.Tensors`): tiles move, and the cost model counts, on the
    operands' values (:mod:`mapper.actual`)."""
    check_fits(m, arch)
    layer = m.layer
    cost = cost or CostModel(arch)
    c = cost.point(m, data)
    prog = program or mac_program(m, arch, data=data)
    tail = tail or m.residency.tail
    if tail:
        prog = replace(prog, tail_read=tail, tail_at=prog.last_step)
    o = _run(prog, hardware(arch), _shares(m.folds, m.array_count), trace, memo,
             (_key(m), tail, sum(prog.in_bytes), layer.name if data is not None else None))
    comp = int(c.compute[0])
    act_ops = layer.output_elems if layer.activation else 0
    floors = {k: int(v[0]) for k, v in c.bounds.items() if k not in ("compute", "memory")}
    vec = floors["vector"]
    top = max(floors, key=lambda k: floors[k])
    occupied = max(o.end, floors[top])
    total = occupied - 1
    bound = top if floors[top] > o.end else ("compute" if o.end == comp + 1 else "memory")
    if trace is not None:
        trace.add(o.spans, offset)
        trace.add([("layers", layer.name, 0, occupied)], offset)
    done = sparse.performed_macs(layer, arch, m.skip or None)
    r = LayerResult(
        layer=layer.name, kind=layer.kind, macs=layer.macs, vector_ops=act_ops,
        compute_cycles=comp, stall_cycles=total - comp, total_cycles=total,
        memory_cycles=int(c.memory[0]),
        utilization=done / (arch.peak_macs_per_cycle * occupied), performed_macs=done,
        sparsity=sparsity_label(layer, data),
        dram_read_bytes=round(o.read_bytes) - tail + prog.prefetched,
        dram_write_bytes=round(o.write_bytes),
        **dict(zip(("dram_read_input_bytes", "dram_read_weight_bytes"),
                   dram_reads(layer, round(sum(prog.in_bytes)),
                              round(sum(prog.w_bytes)) + prog.prefetched))),
        dram_read_psum_bytes=round(sum(prog.psum_bytes)), bound=bound, folds=m.folds,
        row_folds=m.row_folds, col_folds=m.col_folds, tiling=m.tiling.label(layer),
        buffer_bytes=c.level_bytes(arch, 0), fidelity="des", dataflow=m.dataflow.name,
        **_stall_fields(o, occupied - o.end), busy=_busy(o, occupied, None, vec),
        events=o.events)
    access = {k: (int(rd[0]), int(wr[0])) for k, (rd, wr) in c.access.items()}
    emacs = sparse.energy_macs(layer, arch, m.skip or None)
    if data is not None and (arch.array.zeros or "none") != "none":
        emacs = actual_nonzero_products(layer, data)
    return with_energy(r, energy_terms(arch, cost.tab, emacs, act_ops, occupied, access,
                                       hops=int(points_of(m, arch).hops[0])))


def simulate_op(layer: OpLayer, arch: Architecture, trace: Trace | None = None,
                offset: int = 0, memo: dict | None = None,
                cost: CostModel | None = None, rd: int | None = None,
                wr: int | None = None, tail: int = 0) -> LayerResult:
    """A vector-unit op streamed through the engine in chunks (see ``op_program``),
    priced by the cost model's energy terms at the engine's time; ``rd`` / ``wr`` its
    DRAM bytes when the network planner keeps some of its tensors on chip; ``tail`` the
    next layer's first weight bytes it prefetches in its last chunk (not its own reads)."""
    prog = op_program(layer, arch, rd, wr)
    if tail:
        prog = replace(prog, tail_read=tail, tail_at=prog.last_step)
    o = _run(prog, hardware(arch, 1), ((1, 1),), trace, memo,
             (replace(layer, name=""), rd, wr, tail))
    if trace is not None:
        trace.add([(("vector" if tr == "array 0" else tr), nm, s, d) for tr, nm, s, d in o.spans],
                  offset)
        trace.add([("layers", layer.name, 0, o.end)], offset)
    vec = sum(prog.compute)
    rd, wr = round(o.read_bytes) - tail, round(o.write_bytes)
    mem = int(transfer_cycles(rd + wr + tail, arch.dram_bpc))
    occupied = o.end
    return (cost or CostModel(arch)).op_energy(LayerResult(
        layer=layer.name, kind=layer.kind, macs=0, vector_ops=layer.ops,
        compute_cycles=vec - 1, stall_cycles=occupied - vec, total_cycles=occupied - 1,
        memory_cycles=mem, utilization=0.0, dram_read_bytes=rd, dram_write_bytes=wr,
        dram_read_input_bytes=rd, bound="vector" if occupied == vec else "memory",
        buffer_bytes=op_level_bytes(arch, rd, wr),
        fidelity="des", **_stall_fields(o, 0), busy=_busy(o, occupied, ["vector"], 0),
        events=o.events))


def _key(m: Mapping):
    """Layers with this key have the same tile program."""
    t = m.tiling
    return (replace(m.layer, name="", activation=None, bias=False, batchnorm=False),
            m.dataflow.name, t.images, t.rows, t.cols, t.k_tile, t.c_tile, t.order, t.inner,
            m.residency)


@dataclass(frozen=True)
class DesRun:
    """A model's DES result and, when asked for, its timeline. ``events`` counts the
    SimPy events processed in this run: a layer of the same shape and tiling as an
    earlier one reuses that layer's outcome (unless traced), so it can be below the sum
    of the layers' ``events``."""
    result: ModelResult
    trace: Trace | None
    events: int


def simulate_model(model: Model, arch: Architecture, mapper: Mapper | None = None,
                   progress=None, trace_limit: int | None = None,
                   fusion: str | None = None, steady_state: bool = False) -> DesRun:
    """DES of every layer of ``model`` back to back; ``trace_limit`` > 0 records a
    timeline of at most that many events (None or 0: no trace). Without ``mapper`` the
    mappings are searched as the analytic model's are (:func:`sim.run.make_mapper`), and
    every layer gets its energy from the cost model's access counts priced at its DES
    time (:mod:`sim.energy`)."""
    from ..run import cost_of, group_layers, make_mapper, mappings, model_result, network_plan
    cost = cost_of(mapper, arch)
    mapper = mapper or make_mapper(arch, cost=cost)
    p = network_plan(model, arch, fusion, steady_state, mapper, cost)
    trace = Trace(limit=trace_limit, clock_hz=arch.clock) if trace_limit else None
    # the mappings and prefetches first (as the analytic run takes them), so that each
    # layer loads its successor's prefetched bytes in its own timeline
    maps, early = mappings(model, arch, mapper, cost, p)
    programs: dict = {}
    memo: dict = {}
    # depth-first groups: each distinct strip through the engine once (no trace)
    fused = group_layers(model, arch, mapper, cost, p,
                         mac=lambda m: simulate_mac(m, arch, None, 0, None, memo, cost),
                         op=lambda l, rd, wr: simulate_op(l, arch, None, 0, memo, cost, rd, wr))
    out, offset = [], 0
    n = len(model.layers)
    for i, (layer, lp) in enumerate(zip(model.layers, p.layers)):
        if progress:
            progress(i, n, layer.name)
        if i in fused:
            r = fused[i]
            if trace is not None:
                trace.add([("layers", layer.name, 0, r.cycles)], offset)
        elif isinstance(layer, MacLayer):
            m = maps[i]
            if early[i]:   # the cost model's mapping of the same layer: the same key
                m = replace(m, residency=replace(m.residency, tail=early[i]))
            data = (model.data or {}).get(layer.name)   # its operands' values, if kept
            key = (_key(m), lp.stage, layer.name if data is not None else None)
            if key not in programs:
                programs[key] = mac_program(m, arch, lp.stage, data)
            r = simulate_mac(m, arch, trace, offset, programs[key], memo, cost, early[i],
                             data)
        else:
            r = simulate_op(layer, arch, trace, offset, memo, cost, lp.op_read, lp.op_write,
                            early[i])
        if lp.stage:   # a MAC layer's program moved the staged input; an op: its closed form
            r = cost.staged(r, lp.stage, arch.memory[p.level].name,
                            timed=not isinstance(layer, MacLayer) or i in fused)
        out.append(r)
        offset += r.cycles
    events = memo.get("events", 0)
    res = model_result(model, arch, mapper, out, cost, p)
    return DesRun(result=res, trace=trace, events=events)


__all__ = ["DEFAULT_LIMIT", "DesRun", "Trace", "check_fits", "hardware", "simulate_mac",
           "simulate_model", "simulate_op"]
