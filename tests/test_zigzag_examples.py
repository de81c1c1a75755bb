"""The ZigZag transcriptions (examples/zigzag/*.yaml) load and carry ZigZag's numbers.

The record is docs/validation/data/zigzag_hardware.json, written from the zigzag-dse 3.9.1
wheel by docs/validation/zigzag_compare.py --zigzag; nothing is read from ZigZag here.
ZigZag's units: sizes in bits, port bandwidths in bits per cycle, r_cost/w_cost in pJ per
access of the port's bandwidth_max bits.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import yaml

import tilesim.api
from tilesim import arch

ROOT = Path(__file__).resolve().parent.parent
RECORD = json.loads((ROOT / "docs/validation/data/zigzag_hardware.json").read_text())
HARDWARE = ("tpu_like", "eyeriss_like", "edge_tpu_like")
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


def _pe_block(hw: str) -> dict:
    """The levels written in the commented '# with scope: pe (issue 14)' block, by name."""
    lines = _yaml(hw).read_text().splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("# with scope: pe (issue 14)"))
    text = "\n".join(re.sub(r"^#", "", l) for l in lines[start + 1:] if l.startswith("#  "))
    return {m["name"]: m for m in yaml.safe_load(text)}


def _pj(text) -> float:
    v, unit = str(text).split()
    assert unit == "pJ"
    return float(v)


def test_record_is_zigzag_391_and_complete():
    """The record is of zigzag-dse 3.9.1 and has the three hardware descriptions."""
    assert RECORD["zigzag_version"] == "3.9.1"
    assert set(RECORD["hardware"]) == set(HARDWARE)


@pytest.mark.parametrize("hw", HARDWARE)
def test_array_is_zigzags(hw):
    """rows = D2 (C), cols = D1 (K), and rows x cols x count = ZigZag's MAC count; the MAC
    energy is ZigZag's unit_energy; no hop energy (ZigZag models none)."""
    zz = RECORD["hardware"][hw]
    a = arch.load(_yaml(hw))
    arr = a.array
    assert (arr.cols, arr.rows) == tuple(zz["sizes"][:2])
    assert arr.rows * arr.cols * arr.count == math.prod(zz["sizes"])
    assert arr.mac_energy == zz["unit_energy_pj"] and arr.hop_energy == 0
    assert a.peak_macs_per_cycle == math.prod(zz["sizes"])


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
def test_register_files_are_in_the_scope_pe_block(hw):
    """Every memory ZigZag replicates over the PEs appears in the commented scope: pe block
    with its size per instance (bits / 8), operands and pJ per access, ready to enable."""
    zz = RECORD["hardware"][hw]
    block = _pe_block(hw)
    private = {n: m for n, m in zz["memories"].items() if not _shared(zz, m)}
    assert set(private) == set(block)
    for name, mem in private.items():
        lvl = block[name]
        assert lvl["scope"] == "pe" and lvl["kind"] == "regfile"
        assert lvl["size"] == f"{mem['size_bits'] // 8} B"
        assert lvl["holds"] == [OPERAND[o] for o in mem["operands"]]
        assert (_pj(lvl["read_energy"]), _pj(lvl["write_energy"])) == (mem["r_cost_pj"], mem["w_cost_pj"])
        assert lvl["access_bits"] == _access_bits(mem)


def test_tpu_like_weight_rf_is_the_per_pe_registers_summed():
    """tpu_like's weights live only in the per-PE rf_128B: today one shared level of
    1,024 x 128 B at the register's energy."""
    zz = RECORD["hardware"]["tpu_like"]
    rf = zz["memories"]["rf_128B"]
    lvl = {m.name: m for m in arch.load(_yaml("tpu_like")).memory}["weight_rf"]
    assert lvl.size == _instances(zz, rf) * rf["size_bits"] // 8 == 128 * 1024
    assert lvl.holds == ["weight"] and (lvl.read_energy, lvl.write_energy) == (0.095, 0.095)
    assert lvl.bandwidth.value == _instances(zz, rf) * _bytes_per_cycle(rf)


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
