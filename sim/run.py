"""Simulate a whole model: map each MAC layer, time every layer, collect the results."""
from __future__ import annotations

from dataclasses import replace

from tilesim.arch import Architecture, technology
from tilesim._input import COUNT_MAX
from tilesim.mapper import Budget, Mapper, Mapping
from tilesim.workloads import MacLayer, Model

from .cost import CostModel, mapping_compute_cycles, op_chunks, transfer_cycles
from .energy import energy_sources
from .planner import LayerPlan, Plan, plan, working_set
from .results import LayerResult, ModelResult


def make_mapper(arch: Architecture, objective: str = "edp", strategy: str = "heuristic",
                budget: Budget | int | None = None, cost: CostModel | None = None) -> Mapper:
    """The mapper wired to the cost model (``objective``: one of
    :data:`mapper.OBJECTIVES`; ``budget`` a :class:`mapper.Budget` or a number of
    candidates per layer; ``cost`` the CostModel of ``arch`` when one exists already)."""
    return Mapper(arch, cost or CostModel(arch), objective=objective, strategy=strategy,
                  budget=budget)


def cost_of(mapper, arch: Architecture) -> CostModel:
    """The CostModel ``mapper`` searches with when it is ``arch``'s (its energy table is
    then built once per run), else a new one."""
    cost = getattr(mapper, "cost", None)
    return cost if isinstance(cost, CostModel) and cost.arch == arch else CostModel(arch)


def simulate_model(model: Model, arch: Architecture, mapper: Mapper | None = None,
                   progress=None, objective: str = "edp", strategy: str = "heuristic",
                   budget: Budget | int | None = None, fusion: str | None = None,
                   steady_state: bool = False) -> ModelResult:
    """Closed-form simulation of ``model`` on ``arch``; ``progress(i, n, name)`` if given.

    Without ``mapper``, each MAC layer's mapping is searched for ``objective`` (see
    :func:`make_mapper`). Every layer gets its energy (:mod:`sim.energy`). ``fusion``:
    the network schedule (:mod:`sim.planner`; None: the architecture's ``fusion``);
    ``steady_state``: weights that fit stay on chip across inferences."""
    cost = cost_of(mapper, arch)
    mapper = mapper or make_mapper(arch, objective, strategy, budget, cost)
    p = network_plan(model, arch, fusion, steady_state, mapper, cost)
    return model_result(model, arch, mapper, results(model, arch, mapper, cost, p, progress),
                        cost, p)


def results(model: Model, arch: Architecture, mapper, cost: CostModel, p: Plan,
            progress=None) -> list:
    """Every layer's analytic LayerResult under plan ``p``; a MAC layer whose operands
    the model carries (``Model.data``) is priced on them (:mod:`mapper.actual`; a
    depth-first group's layers keep the densities)."""
    out = []
    maps, early = mappings(model, arch, mapper, cost, p, progress)
    fused = group_layers(model, arch, mapper, cost, p)
    for i, (layer, lp, m, tail) in enumerate(zip(model.layers, p.layers, maps, early)):
        if i in fused:
            out.append(fused[i])
        elif m is not None:
            if tail:
                m = replace(m, residency=replace(m.residency, tail=tail))
            # counted on the layer's operands when the model carries them (Model.data)
            out.append(cost.mac_result(m, (model.data or {}).get(layer.name)))
        else:
            out.append(cost.op_result(layer, lp.op_read, lp.op_write, tail))
        if lp.stage:
            out[-1] = cost.staged(out[-1], lp.stage, arch.memory[p.level].name)
    return out


def mappings(model: Model, arch: Architecture, mapper, cost: CostModel, p: Plan,
             progress=None) -> tuple[list, list]:
    """Every MAC layer's mapping (None for a vector op) with its first weight tile's
    cross-layer prefetch (:func:`prefetch`, sized by the free window of the layer before:
    :func:`free_window` of its result without a prefetch of its own), and per layer the
    bytes it prefetches for the next (``tail``). Both fidelities use these."""
    maps, window = [], None
    n = len(model.layers)
    inside = {j for g in p.groups for j in range(g.group.first, g.group.last + 1)}
    for i, (layer, lp) in enumerate(zip(model.layers, p.layers)):
        if progress:
            progress(i, n, layer.name)
        if i in inside:   # a depth-first group's layer: timed by its strips, no prefetch
            m, window = None, None
        elif isinstance(layer, MacLayer):
            m = prefetch(mapper.map(layer, lp.res), window, arch, p)
            window = free_window(None, m, arch)
        else:
            m = None
            window = free_window(cost.op_result(layer, lp.op_read, lp.op_write), None, arch,
                                 layer)
        maps.append(m)
    tails = [m.residency.prefetched if m is not None else 0 for m in maps[1:]] + [0]
    return maps, tails


def group_layers(model: Model, arch: Architecture, mapper, cost: CostModel, p: Plan,
                 mac=None, op=None) -> dict:
    """The results of every depth-first group's layers (layer index -> LayerResult),
    their strips timed by ``mac`` / ``op`` (:func:`sim.depthfirst.group_results`)."""
    if not p.groups:
        return {}
    from .depthfirst import group_results
    out = {}
    for g in p.groups:
        rs = group_results(model, arch, mapper, cost, p, g, mac, op)
        out.update(zip(range(g.group.first, g.group.last + 1), rs))
    return out


def network_plan(model: Model, arch: Architecture, fusion: str | None = None,
                 steady_state: bool = False, mapper=None, cost: CostModel | None = None) -> Plan:
    """The planner's :class:`sim.planner.Plan` of ``model`` under ``fusion`` (None: the
    architecture's default schedule, its YAML's ``fusion``). ArchError when
    ``steady_state`` is asked of schedule ``none`` (nothing would stay on chip).
    ``depth-first`` keeps the groups :func:`sim.depthfirst.choose` proposes that beat the
    residency schedule of their layers on the mapper's objective
    (:func:`sim.depthfirst.judge`; ``mapper`` and ``cost``: the run's)."""
    fusion = fusion or arch.fusion
    if steady_state and fusion == "none":
        from tilesim.arch import ArchError
        raise ArchError(f"steady state keeps weights on chip across inferences, but the "
                        f"schedule of {arch.name!r} is 'none' (every tensor through DRAM)",
                        fix="add --fusion residency (API: fusion='residency'), or set "
                            "'fusion: residency' in the architecture's YAML")
    if fusion != "depth-first":
        return plan(model, arch, fusion, steady_state=steady_state)
    from .depthfirst import choose, judge
    rp = plan(model, arch, "residency", steady_state=steady_state)
    groups = choose(model, arch, rp, working_set)
    p = plan(model, arch, fusion, steady_state=steady_state, groups=groups)
    if p.groups:
        cost = cost or cost_of(mapper, arch)
        mapper = mapper or make_mapper(arch, cost=cost)
        keep = judge(model, arch, mapper, cost, p, results(model, arch, mapper, cost, rp))
        if keep != p.groups:
            p = plan(model, arch, fusion, steady_state=steady_state, groups=keep)
    return p


def free_window(r: LayerResult | None, m: Mapping | None, arch: Architecture,
                r_layer=None) -> int:
    """Bytes DRAM can move at the end of a layer for the next one (cross-layer
    prefetch): in a MAC layer's last level-1 step (its share of ``compute_cycles + 1`` by
    MACs, as the discrete-event engine deals it: the last tile holds the last block of
    every dim; every read of the layer has landed, its last store waits for that
    compute), in a vector op's last chunk (its share of the vector cycles,
    :func:`sim.cost.op_chunks`: its input has landed, its store waits for it). ``r`` is
    the analytic result of a vector op (both fidelities take the same window)."""
    if m is not None:
        layer, t = m.layer, m.tiling
        ext = (layer.N, layer.P, layer.Q, layer.K, layer.C // layer.groups)
        size = (t.images, t.rows, t.cols, t.k_tile, t.c_tile)
        whole = last = 1
        for e, s in zip(ext, size):
            s = min(s, e)
            whole *= e
            last *= e - (-(-e // s) - 1) * s
        total = mapping_compute_cycles(m, arch) + 1
        cyc = total - total * (whole - last) // whole
    else:
        vec = r.compute_cycles + 1
        n = op_chunks(r_layer, arch)
        cyc = vec - vec * (n - 1) // n
    bpc = arch.dram_bpc
    return COUNT_MAX if bpc == float("inf") else int(bpc * cyc)


def prefetch(m: Mapping, window: int | None, arch: Architecture, p: Plan) -> Mapping:
    """``m`` with the bytes of its first weight tile loaded in the previous layer's free
    window (``window``, :func:`free_window`; None: no layer before): none under schedule
    ``none``, without a free weight slot (weights not double-buffered), for weights that
    are resident or are an activation (a MatMul's second operand)."""
    if (window is None or p.fusion == "none" or not arch.hidden["weight"]
            or m.residency.weight or m.layer.weights_are_activations):
        return m
    early = min(int(m.tiling.tile_bytes.get("weight", 0)), window)
    if early <= 0:
        return m
    return replace(m, residency=replace(m.residency, prefetched=early))


def placed(r: LayerResult, lp: LayerPlan) -> LayerResult:
    """``r`` with where its activations live (the plan's part for its layer)."""
    return replace(r, input_from=lp.input_from, output_to=lp.output_to,
                   onchip_read_bytes=lp.onchip_read, onchip_write_bytes=lp.onchip_write,
                   resident_bytes=dict(lp.resident))


def model_result(model: Model, arch: Architecture, mapper, layers,
                 cost: CostModel, p: Plan | None = None) -> ModelResult:
    """The ModelResult of ``layers`` (finished LayerResults), with area and energy
    sources, the plan's placement (``p``; None: every activation through DRAM) and each
    layer's place on the timeline (back to back: layer i starts the cycle after layer
    i - 1's last)."""
    if p is not None:
        layers = [placed(r, lp) for r, lp in zip(layers, p.layers)]
    start, timed = 0, []
    for r in layers:
        timed.append(replace(r, start_cycle=start, end_cycle=start + r.total_cycles))
        start += r.cycles
    layers = timed
    figs = technology.area_mm2(arch)
    area = sum(f.value for f in figs.values())
    breakdown = {k: (f.value, " + ".join(technology.SOURCES.get(x, x) for x in f.source.split("+")))
                 for k, f in figs.items()}
    return ModelResult(arch=arch.name, model=model.name, batch=model.batch, clock_hz=arch.clock,
                       peak_macs_per_cycle=arch.peak_macs_per_cycle, layers=tuple(layers),
                       area_mm2=area, area_breakdown=breakdown,
                       energy_sources=energy_sources(arch, cost.tab),
                       mapping_objective=getattr(mapper, "objective", ""),
                       fusion=p.fusion if p is not None else "none",
                       tensors=p.tensors if p is not None else (),
                       steady_state=bool(p and p.weight_level),
                       cold_cycles=int(transfer_cycles(p.resident_weights, arch.dram_bpc))
                       if p is not None else 0)
