"""The ZigZag transcriptions (examples/zigzag/*.yaml) load and carry ZigZag's numbers.

The record is docs/validation/data/zigzag_hardware.json, written from the zigzag-dse 3.9.1
wheel by docs/validation/zigzag_compare.py --zigzag; nothing is read from ZigZag here.
ZigZag's units: sizes in bits, port bandwidths in bits per cycle, r_cost/w_cost in pJ per
access of the port's bandwidth_max bits.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import tilesim.api
from tilesim import arch

ROOT = Path(__file__).resolve().parent.parent
RECORD = json.loads((ROOT / "docs/validation/data/zigzag_hardware.json").read_text())
HARDWARE = ("tpu_like", "eyeriss_like", "edge_tpu_like")
# the K x C dataflow each transcription runs (examples/zigzag/*.yaml say why)
KXC = {"tpu_like": "kcr", "eyeriss_like": "kcr", "edge_tpu_like": "kco"}
# ZigZag's memory operands under the wheel's mappings (memory_operand_links W: I2, I: I1)
OPERAND = {"I1": "input", "I2": "weight", "O": "output"}


def _yaml(hw: str) -> Path:
    return ROOT / "examples" / "zigzag" / f"{hw}.yaml"


def _shared(zz: dict, mem: dict) -> bool:
    """A memory served by every array dimension: one instance for the whole array."""
    return set(mem["served_dimensions"]) == set(zz["dimensions"])


def _instances(zz: dict, mem: dict) -> int:
    """How many copies ZigZag makes of a memory: one per point of the dims it does not serve."""
    return math.prod(s for d, s in zip(zz["dimensions"], zz["sizes"])
                     if d not in mem["served_dimensions"])


def _access_bits(mem: dict) -> int:
    return max(p["bandwidth_max_bits"] for p in mem["ports"])


def _bytes_per_cycle(mem: dict) -> float:
    return sum(p["bandwidth_max_bits"] for p in mem["ports"]) / 8


def test_record_is_zigzag_391_and_complete():
    """The record is of zigzag-dse 3.9.1 and has the three hardware descriptions."""
    assert RECORD["zigzag_version"] == "3.9.1"
    assert set(RECORD["hardware"]) == set(HARDWARE)


@pytest.mark.parametrize("hw", HARDWARE)
def test_array_is_zigzags(hw):
    """rows = D2 (C), cols = D1 (K), and rows x cols x count = ZigZag's MAC count; the
    array runs one K x C dataflow alone (ZigZag's mapping unrolls K x C with the filter
    window in time); the MAC energy is ZigZag's unit_energy; no hop energy (ZigZag models
    none)."""
    zz = RECORD["hardware"][hw]
    a = arch.load(_yaml(hw))
    arr = a.array
    assert (arr.cols, arr.rows) == tuple(zz["sizes"][:2])
    assert arr.rows * arr.cols * arr.count == math.prod(zz["sizes"])
    assert arr.mac_energy == zz["unit_energy_pj"] and arr.hop_energy == 0
    assert a.peak_macs_per_cycle == math.prod(zz["sizes"])
    assert arr.dataflow == KXC[hw] and arr.dataflows is None


@pytest.mark.parametrize("hw", HARDWARE)
def test_taps_inside_the_fold_where_the_weight_registers_hold_them(hw):
    """kcr (taps in time inside the fold, the partial sum in the column's output register,
    as ZigZag's temporal mappings keep it in rf_2B / rf_16B over FX, FY) where a PE's
    weight registers hold a 7 x 7 filter (ResNet-18's conv1, the largest of both
    networks): one fold's worth of taps, no tap chunks; kco where they hold one weight
    (edge_tpu_like's rf_1B: kcr would be kc, one tap a fold; kco re-reads the weights at
    every use instead, as ZigZag does)."""
    from tilesim.mapper.dataflow import kcr_taps
    from tilesim.mapper.space import pe_entries
    from tilesim.workloads.ir import conv
    a = arch.load(_yaml(hw))
    e = pe_entries(conv("conv1", 1, 3, 224, 224, 64, 7, stride=2, pad=3), a)
    assert kcr_taps(49, e) == ((49, 1) if KXC[hw] == "kcr" else (1, 49))


def test_edge_tpu_like_lanes_are_zigzags_pixel_unrolling():
    """edge_tpu_like's rf_1B (weights) is served by D3 and D4 (OX 4 x OY 4 in the wheel's
    mapping): one weight register, so one weight read, for the 16 pixel PEs of a (K, C)
    position. The transcription's 16 arrays are kco's pixel lanes: each weight read from
    sram_32KB feeds all of them, ceil(M / 16) reads per weight."""
    from tilesim.mapper import DATAFLOWS
    from tilesim.mapper.dataflow import layer_dims
    from tilesim.workloads.ir import conv
    zz = RECORD["hardware"]["edge_tpu_like"]
    rf = zz["memories"]["rf_1B"]
    shared_by = math.prod(s for d, s in zip(zz["dimensions"], zz["sizes"])
                          if d in rf["served_dimensions"])
    a = arch.load(_yaml("edge_tpu_like"))
    assert a.array.count == shared_by == 16
    layer = conv("c", 1, 64, 56, 56, 64, 3, pad=1)
    p = DATAFLOWS["kco"].plan(layer_dims(layer), a.array.rows, a.array.cols, None,
                              a.array.count)
    assert p.reads["weight"] == 56 * 56 // 16


@pytest.mark.parametrize("hw", HARDWARE)
def test_shared_memories_are_zigzags(hw):
    """Every memory ZigZag shares across the whole array is a tilesim level of the same
    name with its size (bits / 8), operands, pJ per access of bandwidth_max bits and
    total port bandwidth; no leakage (ZigZag models none)."""
    zz = RECORD["hardware"][hw]
    a = arch.load(_yaml(hw))
    levels = {m.name: m for m in a.memory}
    shared = {n: m for n, m in zz["memories"].items() if _shared(zz, m)}
    assert {n for n in shared if n != "dram"} == {m.name for m in a.onchip if m.kind == "sram"}
    for name, mem in shared.items():
        lvl = levels[name]
        assert sorted(lvl.holds) == sorted(OPERAND[o] for o in mem["operands"]), name
        assert (lvl.read_energy, lvl.write_energy) == (mem["r_cost_pj"], mem["w_cost_pj"]), name
        assert lvl.access_bits == _access_bits(mem), name
        assert lvl.bandwidth.per == "B/cycle" and lvl.bandwidth.value == _bytes_per_cycle(mem), name
        if name == "dram":
            assert lvl.kind == "dram"
        else:
            assert lvl.size * 8 == mem["size_bits"] and lvl.leakage == 0, name


@pytest.mark.parametrize("hw", HARDWARE)
def test_register_files_are_scope_pe_levels(hw):
    """Every memory ZigZag replicates over the PEs is a scope: pe register level of the
    same name with its size per instance (bits / 8), operands, pJ per access of
    bandwidth_max bits and port bandwidth per instance; there is no other scope: pe level."""
    zz = RECORD["hardware"][hw]
    a = arch.load(_yaml(hw))
    pe = {m.name: m for m in a.pe_levels}
    private = {n: m for n, m in zz["memories"].items() if not _shared(zz, m)}
    assert set(private) == set(pe)
    for name, mem in private.items():
        lvl = pe[name]
        assert lvl.scope == "pe" and lvl.kind == "regfile", name
        assert lvl.size * 8 == mem["size_bits"], name
        assert lvl.holds == [OPERAND[o] for o in mem["operands"]], name
        assert (lvl.read_energy, lvl.write_energy) == (mem["r_cost_pj"], mem["w_cost_pj"]), name
        assert lvl.access_bits == _access_bits(mem) and lvl.leakage == 0, name
        assert lvl.bandwidth.per == "B/cycle" and lvl.bandwidth.value == _bytes_per_cycle(mem), name


def test_tpu_like_weight_rf_is_the_per_pe_registers_capacity():
    """tpu_like's weights live only in the per-PE rf_128B; the schema needs a shared level
    for them too, so weight_rf is the 1,024 x 128 B registers' capacity and port width at
    no access energy (the per-PE rf_128B level is priced)."""
    zz = RECORD["hardware"]["tpu_like"]
    rf = zz["memories"]["rf_128B"]
    a = arch.load(_yaml("tpu_like"))
    lvl = {m.name: m for m in a.memory}["weight_rf"]
    assert lvl.scope == "shared" and lvl.holds == ["weight"]
    assert lvl.size == _instances(zz, rf) * rf["size_bits"] // 8 == 128 * 1024
    assert (lvl.read_energy, lvl.write_energy, lvl.leakage) == (0, 0, 0)
    assert lvl.bandwidth.value == _instances(zz, rf) * _bytes_per_cycle(rf)
    assert _instances(zz, rf) == a.pes


@pytest.mark.parametrize("hw", HARDWARE)
def test_register_energy_is_per_mac(hw):
    """On a 3x3 conv every MAC reads its weight and reads and writes its 16-bit partial
    sum in the PE's registers: the output register's energy is MACs x (read + write) x
    16 / access_bits, the weight register's reads MACs x 8 / access_bits x read energy
    (its writes come on top)."""
    from tilesim.workloads import Model
    from tilesim.workloads.ir import conv
    a = arch.load(_yaml(hw))
    layer = conv("c", 1, 32, 14, 14, 32, 3, pad=1)
    r = tilesim.api.simulate(a, Model("one", (layer,), 1, "test")).layers[0]
    pe = {op: m for m in a.pe_levels for op in m.holds}
    out, w = pe["output"], pe["weight"]
    assert r.energy_breakdown[f"{out.name}_output_energy_pj"] == pytest.approx(
        layer.macs * (out.read_energy + out.write_energy) * 16 / out.access_bits)
    assert r.energy_breakdown[f"{w.name}_weight_energy_pj"] > layer.macs * w.read_energy * 8 / w.access_bits


def _compare_script():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "zigzag_compare", ROOT / "docs/validation/zigzag_compare.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("hw", HARDWARE)
@pytest.mark.parametrize("net", ("resnet18", "mobilenetv2"))
def test_zoo_layers_match_zigzags_one_to_one(hw, net):
    """Every layer in ZigZag's committed results has a tilesim zoo layer of the same shape
    and MAC count (and every zoo MAC layer one ZigZag layer): the comparison compares like
    with like."""
    z = _compare_script()
    _, rows = z.read_zigzag(hw, net)
    matched, by_name = z.match_layers(rows, tilesim.api.load_model(z.ZOO[net]))
    assert [l.macs for l in matched] == [int(r["macs"]) for r in rows]
    assert len({l.name for l in matched}) == len(rows) and by_name == len(rows)
