"""Simulate a whole model: map each MAC layer, time every layer, collect the results."""
from __future__ import annotations

from dataclasses import replace

from tilesim.arch import Architecture
from tilesim.arch import technology
from tilesim.mapper import Budget, Mapper, Mapping, SearchMapper
from tilesim.workloads import MacLayer, Model, OpLayer

from .analytic import simulate_mac, simulate_op
from .energy import energy_sources, energy_table, mac_energy_terms, op_energy_terms, with_energy
from .results import LayerResult, ModelResult
from .vcost import VectorCost


def make_mapper(arch: Architecture, objective: str = "edp", strategy: str = "heuristic",
                budget: Budget | int | None = None):
    """The searching mapper wired to the vectorised analytic cost (``objective`` latency,
    energy or edp; ``budget`` a :class:`mapper.Budget` or a number of candidates per layer).
    ``objective="default"`` gives the foundation's least-traffic mapper (no search)."""
    if objective == "default":
        return Mapper(arch)
    if isinstance(budget, int):
        budget = Budget(candidates=budget)
    return SearchMapper(arch, VectorCost(arch), objective=objective, strategy=strategy,
                        budget=budget)


def simulate_model(model: Model, arch: Architecture, mapper: Mapper | None = None,
                   progress=None, objective: str = "edp", strategy: str = "heuristic",
                   budget: Budget | int | None = None) -> ModelResult:
    """Analytic simulation of ``model`` on ``arch``; ``progress(i, n, name)`` if given.

    Without ``mapper``, each MAC layer's mapping is searched for ``objective`` (see
    :func:`make_mapper`). Every layer gets its energy (:mod:`sim.energy`)."""
    mapper = mapper or make_mapper(arch, objective, strategy, budget)
    tab = energy_table(arch)
    out = []
    n = len(model.layers)
    for i, layer in enumerate(model.layers):
        if progress:
            progress(i, n, layer.name)
        if isinstance(layer, MacLayer):
            m = mapper.map(layer)
            out.append(finish_mac(simulate_mac(m, arch), m, arch, tab))
        else:
            out.append(finish_op(simulate_op(layer, arch), layer, arch, tab))
    return model_result(model, arch, mapper, out, tab)


def finish_mac(r: LayerResult, m: Mapping, arch: Architecture, tab) -> LayerResult:
    """A MAC layer's timing result (any fidelity) completed with its dataflow and energy."""
    r = replace(r, dataflow=m.dataflow.name)
    return with_energy(r, mac_energy_terms(m, arch, r, tab))


def finish_op(r: LayerResult, layer: OpLayer, arch: Architecture, tab) -> LayerResult:
    """A vector-unit op's timing result (any fidelity) completed with its energy."""
    return with_energy(r, op_energy_terms(layer, arch, r, tab))


def model_result(model: Model, arch: Architecture, mapper, layers, tab) -> ModelResult:
    """The ModelResult of ``layers`` (finished LayerResults), with area and energy sources."""
    figs = technology.area_mm2(arch)
    area = sum(f.value for f in figs.values())
    breakdown = {k: (f.value, " + ".join(technology.SOURCES.get(x, x) for x in f.source.split("+")))
                 for k, f in figs.items()}
    obj = getattr(mapper, "objective", "default")
    return ModelResult(arch=arch.name, model=model.name, batch=model.batch, clock_hz=arch.clock,
                       peak_macs_per_cycle=arch.peak_macs_per_cycle, layers=tuple(layers),
                       area_mm2=area, area_breakdown=breakdown,
                       energy_sources=energy_sources(arch, tab),
                       mapping_objective=obj)
