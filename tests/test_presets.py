"""Every shipped preset loads, and simulates every zoo model with sane invariants."""
from __future__ import annotations

import pytest

from tilesim import arch
import tilesim
from tilesim import workloads


@pytest.mark.parametrize("preset", arch.presets())
def test_preset_loads_and_round_trips(preset):
    """A preset loads, is described, and its resolved YAML loads back to the same object."""
    a = arch.load(preset)
    assert a.description and a.clock > 0
    assert arch.from_yaml(arch.dump_yaml(a)) == a


def test_required_presets_exist():
    """The presets the foundation issue names are all shipped."""
    assert {"tpu_v1", "eyeriss_like", "nvdla_small", "nvdla_large", "edge_tpu_like",
            "scalesim_google", "scalesim_eyeriss"} <= set(arch.presets())


def test_tpu_v1_numbers():
    """tpu_v1: 256x256 int8 ws at 700 MHz, 24 MiB UB, 4 MiB accumulators, 34 GB/s."""
    a = arch.load("tpu_v1")
    assert (a.array.rows, a.array.cols, a.array.dataflow, a.clock) == (256, 256, "ws", 700e6)
    sizes = {m.name: m.size for m in a.onchip}
    assert sizes["unified_buffer"] == 24 * 2**20 and sizes["accumulators"] == 4 * 2**20
    assert a.bytes_per_cycle(a.dram) == pytest.approx(34e9 / 700e6)


@pytest.mark.parametrize("preset", arch.presets())
@pytest.mark.parametrize("model", [m if m == "resnet18" else pytest.param(m, marks=pytest.mark.slow)
                                   for m in workloads.zoo_names()])  # quick loop: resnet18 only
def test_every_preset_runs_every_zoo_model(preset, model):
    """MACs conserved, 0 <= utilisation <= 1, total = compute + stall >= memory-bound time."""
    m = workloads.load(model)
    r = tilesim.simulate(preset, m)
    assert r.macs == m.macs
    assert 0 < r.utilization <= 1
    for lr in r.layers:
        assert 0 <= lr.utilization <= 1
        assert lr.stall_cycles >= 0
        assert lr.total_cycles == lr.compute_cycles + lr.stall_cycles
        assert lr.total_cycles + 1 >= lr.memory_cycles
    assert r.total_cycles == sum(lr.total_cycles + 1 for lr in r.layers)
