"""Every shipped preset loads, and simulates every zoo model (scaled repeats aside) with
sane invariants."""
from __future__ import annotations

import pytest

from tilesim import arch
import tilesim
from tilesim import workloads
from conftest import SCALED_REPEATS, preset_analytic


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
                                   for m in workloads.zoo_names()
                                   if m not in SCALED_REPEATS])  # quick loop: resnet18 only
def test_every_preset_runs_every_zoo_model(preset, model):
    """Every zoo model but the scaled repeats (SCALED_REPEATS), on every preset:
    MACs conserved, 0 <= utilisation <= 1, total = compute + stall >= memory-bound time.
    The run is ``tilesim.simulate(preset, model)``'s, searched with one mapper per preset
    for the session (conftest.preset_analytic: a layer shape that several models share is
    searched once; test_des's agreement checks reuse these results); for resnet18 it is
    checked equal to a fresh ``tilesim.simulate``."""
    m, r = preset_analytic(preset, model)
    if model == "resnet18":
        assert tilesim.simulate(preset, model) == r
    assert r.macs == m.macs
    assert 0 < r.utilization <= 1
    for lr in r.layers:
        assert 0 <= lr.utilization <= 1
        assert lr.stall_cycles >= 0
        assert lr.total_cycles == lr.compute_cycles + lr.stall_cycles
        assert lr.total_cycles + 1 >= lr.memory_cycles
    assert r.total_cycles == sum(lr.total_cycles + 1 for lr in r.layers)



@pytest.mark.parametrize("preset,rows,cols,overlapped,serial", [
    # a 1x1 conv of C = 2 x rows channels, K = cols filters on 4x4 pixels: F = 2 row folds
    # of T = 16 streamed pixels; overlapped Ra + (F-1) max(T, Ra) + T + Ra + Ca - 2, serial
    # F (T + 2 Ra + Ca - 2) (mapper/dataflow.py); the last-cycle index is one less
    ("nvdla_small", 8, 8, 8 + 16 + 16 + 8 + 8 - 2 - 1, 2 * (16 + 2 * 8 + 8 - 2) - 1),
    ("nvdla_large", 64, 32, 64 + 64 + 16 + 64 + 32 - 2 - 1, 2 * (16 + 2 * 64 + 32 - 2) - 1)])
def test_nvdla_presets_hold_the_cmac_registers(preset, rows, cols, overlapped, serial):
    """nvdla_small / nvdla_large: every int8 MAC holds an active and a shadow weight
    register (2 B, double-buffered) and a data register (1 B), as the NVDLA CMAC does, and
    no output register; the shadow lets the next fold's weights load while the current
    one streams (preload: overlapped). Register bytes and cycles of one 1x1 conv by hand,
    overlapped and serial."""
    from tilesim.arch import technology as tech
    from tilesim.workloads import Model
    from tilesim.workloads.ir import conv
    a = arch.load(preset)
    assert (a.array.rows, a.array.cols, a.array.preload) == (rows, cols, "overlapped")
    assert [(l.name, l.holds, l.size, l.double_buffered) for l in a.pe_levels] == [
        ("weight_regs", ["weight"], 2, True), ("data_reg", ["input"], 1, False)]
    # energies are the technology table's (not in the NVDLA documents): sqrt(capacity)
    # below Horowitz's smallest SRAM, so the 2 B registers cost sqrt(2) x the 1 B one
    w, d = (tech.level_energy(a, [m.name for m in a.memory].index(n))[0]
            for n in ("weight_regs", "data_reg"))
    assert w.source == d.source == "cacti-sqrt+stillmaker2017"
    assert w.value / d.value == pytest.approx(2 ** 0.5)
    layer = conv("c", 1, 2 * rows, 4, 4, cols, 1)
    macs = 2 * rows * cols * 16
    chain = rows * (rows + 1) // 2
    for x, cycles in ((a, overlapped), (a.replace("compute.arrays[0].preload", "serial"), serial)):
        lr = tilesim.simulate(x, Model("m", (layer,))).layers[0]
        assert (lr.dataflow, lr.row_folds, lr.col_folds) == ("ws", 2, 1)
        assert lr.compute_cycles == cycles
        # every MAC reads its weight and its input from the registers; each weight shifts
        # down its column at preload, the value for row i latched by the i + 1 registers
        # it passes (1 + 2 + ... + rows per column and row fold; int8; the shadow chain
        # when overlapped), each input latched once per MAC
        assert lr.buffer_bytes["weight_regs"] == {"read": macs, "write": 2 * cols * chain}
        assert lr.buffer_bytes["data_reg"] == {"read": macs, "write": macs}
