"""Shared test helpers: small architectures built in code."""
from __future__ import annotations

import pytest
from hypothesis import settings

from tilesim import arch

# property tests draw the same examples on every run and machine (determinism), and never
# fail on timing (numba compiles inside the first examples)
settings.register_profile("tilesim", derandomize=True, deadline=None)
settings.load_profile("tilesim")


def make_arch(rows=4, cols=4, dataflow="ws", count=1, bandwidth="unlimited", size="64 MiB",
              double_buffered=True, precision=("int8", "int8", "int32"), buf_bandwidth=None,
              dataflows=None, preload="serial", weight_rf=None):
    """A one-buffer accelerator (all operands in one SRAM) for hand-derived cases;
    ``dataflows`` lists further dataflows the array offers (e.g. ["dw"]); ``weight_rf``
    (a size such as "9 B") adds a ``scope: pe`` register file holding weights."""
    i, w, acc = precision
    extra = {"dataflows": list(dict.fromkeys([dataflow] + dataflows))} if dataflows else {}
    return arch.from_dict({
        "version": 1, "name": "test", "clock": "1 GHz", "technology": "28 nm",
        "precision": {"input": i, "weight": w, "accumulator": acc},
        "compute": {"arrays": [{"rows": rows, "cols": cols, "dataflow": dataflow,
                                "count": count, "preload": preload, **extra}],
                    "vector": {"lanes": 4}},
        "memory": [
            {"name": "dram", "kind": "dram", "holds": ["input", "weight", "output"],
             "bandwidth": bandwidth},
            {"name": "buf", "kind": "sram", "holds": ["input", "weight", "output"],
             "size": size, "double_buffered": double_buffered,
             **({"bandwidth": buf_bandwidth} if buf_bandwidth else {})},
        ] + ([{"name": "w_rf", "kind": "regfile", "scope": "pe", "holds": ["weight"],
               "size": weight_rf}] if weight_rf else [])})


@pytest.fixture
def small_arch():
    return make_arch


def seed_mapping(layer, arch, dataflow=None):
    """The least-DRAM-traffic mapping on the coarse grid (``Mapspace.seed``) under
    ``dataflow`` (default the array's own): the point every mapping search scores
    first, with no search."""
    from tilesim.mapper import Mapspace
    space = Mapspace(layer, arch)
    return space.mapping(space.seed(dataflow))


def layer_result(m, arch):
    """The cost model's LayerResult (timing, traffic, energy) of Mapping ``m`` on ``arch``."""
    from tilesim.sim import CostModel
    return CostModel(arch).mac_result(m)


# The zoo's scaled repeats: resnet34 (resnet18's basic blocks), resnet101 and resnet152
# (resnet50's bottlenecks), efficientnet_b1-b3 (b0's MBConv blocks at other widths, depths
# and resolutions). They reach no line or branch of the simulator that the other zoo
# models do not (coverage.py, branch mode: over test_presets's every-preset test on every
# preset, the 48 cases reached only their six one-line builders in workloads/zoo.py,
# which test_zoo builds and counts; likewise over test_search's zoo search). Left out of
# those two tests; a new zoo model is in by default.
SCALED_REPEATS = {"resnet34", "resnet101", "resnet152",
                  "efficientnet_b1", "efficientnet_b2", "efficientnet_b3"}


# ---- shared searches (a test session maps each preset's layers once) ------------------------
_MAPPERS: dict = {}
_ANALYTIC: dict = {}
_DES: dict = {}


def preset_mapper(preset: str, objective: str = "edp"):
    """One Mapper of the preset as shipped per (preset, objective) for the whole session,
    as ``tilesim.simulate`` / ``tilesim run`` build it (``make_mapper``, heuristic search,
    default budget). Its cache is keyed by layer shape, residency, objective and
    architecture hash, so a layer shape searched by one test is not searched again by the
    next: the mappings are the ones a fresh mapper finds (the search is deterministic)."""
    key = (preset, objective)
    if key not in _MAPPERS:
        from tilesim.sim import make_mapper
        _MAPPERS[key] = make_mapper(arch.load(preset), objective)
    return _MAPPERS[key]


def preset_analytic(preset: str, model: str, objective: str = "edp"):
    """(Model, ModelResult) of zoo ``model`` on ``preset`` as shipped, analytic, its schedule
    the preset's default (``tilesim.simulate(preset, model, objective=objective)``),
    computed once per session. Callers must not mutate it."""
    key = (preset, model, objective)
    if key not in _ANALYTIC:
        from tilesim import workloads
        from tilesim.sim import simulate_model
        mapper = preset_mapper(preset, objective)
        m = workloads.load(model)
        _ANALYTIC[key] = (m, simulate_model(m, mapper.arch, mapper))
    return _ANALYTIC[key]


def preset_des(preset: str, model: str, objective: str = "edp"):
    """The DES run (``sim.des.DesRun``) of zoo ``model`` on ``preset`` as shipped, with the
    session's mapper and model (preset_mapper, preset_analytic: the mappings its analytic
    run used), as ``tilesim.simulate_des(preset, model, objective=objective)`` runs it,
    computed once per session. Callers must not mutate it."""
    key = (preset, model, objective)
    if key not in _DES:
        from tilesim.sim.des import simulate_model as des_model
        mapper = preset_mapper(preset, objective)
        m, _ = preset_analytic(preset, model, objective)
        _DES[key] = des_model(m, mapper.arch, mapper)
    return _DES[key]
