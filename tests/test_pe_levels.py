"""Per-PE memory levels (``scope: pe``): validation, hand-derived access counts, and the
invariant that adding them changes no cycle, no DRAM byte and no shared-level access."""
from __future__ import annotations

import math

import pytest

from tilesim import arch
from tilesim.arch import ArchError
from tilesim.arch import technology as tech
from tilesim.arch.schema import pe_level_need
from tilesim.sim import CostModel
from tilesim.sim.des import simulate_mac
from tilesim.workloads.ir import conv
from conftest import seed_mapping

LAYER = conv("c", 1, 6, 9, 9, 5, 3, pad=1)


def _arch(dataflow="ws", pe=(), bandwidth="unlimited", extra=()):
    mem = [{"name": "dram", "kind": "dram", "holds": ["input", "weight", "output"],
            "bandwidth": bandwidth},
           {"name": "buf", "kind": "sram", "holds": ["input", "weight", "output"],
            "size": "64 KiB", "double_buffered": True},
           *extra, *pe]
    return arch.from_dict({
        "version": 1, "name": "t", "clock": "1 GHz", "technology": "28 nm",
        "precision": {"input": "int8", "weight": "int8", "accumulator": "int32"},
        "compute": {"arrays": [{"rows": 4, "cols": 3, "dataflow": dataflow}],
                    "vector": {"lanes": 4}},
        "memory": mem})


SPADS = ({"name": "in_reg", "kind": "regfile", "scope": "pe", "holds": ["input"],
          "size": "4 B", "read_energy": "0.5 pJ", "access_bits": 8},
         {"name": "w_reg", "kind": "regfile", "scope": "pe", "holds": ["weight"],
          "size": "2 B", "double_buffered": True},
         {"name": "acc_reg", "kind": "regfile", "scope": "pe", "holds": ["output"],
          "size": "4 B"})


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_pe_levels_change_no_cycle_dram_byte_or_shared_access(dataflow):
    plain, deep = _arch(dataflow), _arch(dataflow, SPADS)
    m = seed_mapping(LAYER, plain)
    assert seed_mapping(LAYER, deep).tiling == m.tiling
    a, b = CostModel(plain).point(m), CostModel(deep).point(m)
    assert (a.cycles == b.cycles).all() and (a.compute == b.compute).all()
    for key, rw in a.access.items():
        assert [int(x[0]) for x in rw] == [int(x[0]) for x in b.access[key]], key
    extra = {k: v for k, v in b.energy.items() if k not in a.energy}
    assert set(extra) == {"in_reg_input_energy_pj", "w_reg_weight_energy_pj",
                          "acc_reg_output_energy_pj"}
    for k, v in a.energy.items():
        if k != "leakage_energy_pj":
            assert float(v if not hasattr(v, "__len__") else v[0]) == pytest.approx(
                float(b.energy[k] if not hasattr(b.energy[k], "__len__") else b.energy[k][0]))


@pytest.mark.parametrize("dataflow,stationary", [("os", "output"), ("ws", "weight"),
                                                 ("is", "input")])
def test_pe_level_access_counts_by_hand(dataflow, stationary):
    """Every MAC reads its operands from the PE registers and reads + writes one partial
    sum at accumulator precision (4 B); a moving operand is written once per MAC; the
    stationary one shifts down the 4 rows from the top at every fold, the value for row
    i latched by the i + 1 registers it passes: the reduction K = 6*3*3 = 54 on the rows
    makes 13 folds of 4 rows (1+2+3+4 = 10 latches per column) and one of 2 (1+2 = 3),
    133 per column, over N = 5 filters (ws) or M = 81 pixels (is) on the columns."""
    a = _arch(dataflow, SPADS)
    m = seed_mapping(LAYER, a)
    acc = CostModel(a).point(m).access
    macs = LAYER.macs                                   # 5 * 6 * 9 * 3*3 * 9
    assert macs == 5 * 6 * 9 * 9 * 9
    for lvl, op in (("in_reg", "input"), ("w_reg", "weight")):
        r, w = (int(x[0]) for x in acc[(lvl, op)])
        assert r == macs                                # int8: one byte per MAC
        if op == stationary:
            assert w == (13 * 10 + 3) * {"ws": 5, "is": 81}[dataflow]
        else:
            assert w == macs
    r, w = (int(x[0]) for x in acc[("acc_reg", "output")])
    assert (r, w) == (4 * macs, 4 * macs)


def test_pe_levels_validated_with_key_path_and_fix():
    bad_order = (SPADS[0], {"name": "late", "kind": "sram", "holds": ["weight"],
                            "size": "1 KiB"})
    with pytest.raises(ArchError, match=r"memory\[3\]\.scope.*list scope: pe levels last"):
        _arch(pe=bad_order)
    small = dict(SPADS[1], size="1 B")   # double-buffered int8 weight: 2 B per PE
    with pytest.raises(ArchError, match=r"memory\[2\]\.size.*at least 2 B"):
        _arch(pe=(small,))
    twice = (SPADS[0], dict(SPADS[0], name="in_reg2"))
    with pytest.raises(ArchError, match="more than one scope: pe level"):
        _arch(pe=twice)
    only_pe = {"version": 1, "name": "t", "clock": "1 GHz", "technology": "28 nm",
               "precision": {"input": "int8", "weight": "int8", "accumulator": "int32"},
               "compute": {"arrays": [{"rows": 4, "cols": 3, "dataflow": "ws"}],
                           "vector": {"lanes": 4}},
               "memory": [{"name": "dram", "kind": "dram", "holds": ["input", "weight", "output"],
                           "bandwidth": "unlimited"},
                          {"name": "buf", "kind": "sram", "holds": ["input", "output"],
                           "size": "64 KiB"}, SPADS[1]]}
    with pytest.raises(ArchError, match="no shared on-chip level holds 'weight'"):
        arch.from_dict(only_pe)
    d = _arch().to_yaml_dict()
    d["memory"][0]["scope"] = "pe"
    with pytest.raises(ArchError, match=r"memory\[0\]\.scope: the DRAM level cannot be per PE"):
        arch.from_dict(d)


def test_pe_level_need_and_copies():
    a = _arch(pe=SPADS)
    assert [pe_level_need(a, l) for l in a.pe_levels] == [1, 2, 4]
    assert a.pes == 12 and [l.name for l in a.onchip] == ["buf"]
    area = tech.area_mm2(a)
    one = tech.area_mm2(_arch(pe=(dict(SPADS[2], size="1 KiB"),)))["acc_reg"].value
    assert one == pytest.approx(256 * tech.area_mm2(a)["acc_reg"].value)  # 1 KiB vs 4 B
    assert area["acc_reg"].value == pytest.approx(
        12 * 4 * 8 * tech.SRAM_CELL_UM2 / tech.SRAM_EFFICIENCY * tech.area_scale(28) / 1e6)
    i = [l.name for l in a.memory].index("acc_reg")
    assert tech.level_leakage_w(a, i).value == pytest.approx(
        12 * 4 / 1024 * tech.SRAM_LEAK_W_PER_KIB * tech.area_scale(28))


def test_pe_levels_round_trip_through_yaml_dict():
    a = _arch(pe=SPADS)
    d = a.to_yaml_dict()
    assert [m.get("scope") for m in d["memory"]] == [None, None, "pe", "pe", "pe"]
    assert arch.from_dict(d) == a


def test_des_agrees_with_cost_model_with_pe_levels():
    a = _arch("ws", SPADS)
    m = seed_mapping(LAYER, a)
    r = CostModel(a).mac_result(m)
    d = simulate_mac(m, a)
    assert d.total_cycles == r.total_cycles
    assert d.buffer_bytes == r.buffer_bytes
    assert math.isclose(d.energy_pj, r.energy_pj, rel_tol=1e-12)


def test_eyeriss_normalised_energy_comes_out_of_the_counts():
    """Chen, Emer, Sze (ISCA 2016): per 16-bit access, register file 1x, inter-PE 2x,
    global buffer 6x, DRAM 200x a MAC. Energy / accesses of a simulated layer, per
    column, gives those ratios."""
    from tilesim.mapper import points_of
    from tilesim.sim import make_mapper
    from tilesim.workloads import load
    a = arch.load("eyeriss_like")
    layer = next(x for x in load("resnet18").layers if x.macs and x.kind == "conv")
    m = make_mapper(a, "edp").map(layer)
    l = CostModel(a).mac_result(m)
    e = l.energy_breakdown
    mac = e["mac_energy_pj"] / l.macs
    hops = int(points_of(m, a).hops[0])    # rs: partial sums up the chain only
    assert 0 < hops < l.macs
    hop = e["array_energy_pj"] / hops
    per16 = {}
    for lvl in ("global_buffer", "ifmap_spad", "filter_spad", "psum_spad"):
        rw = l.buffer_bytes[lvl]
        pj = sum(v for k, v in e.items() if k.startswith(lvl + "_"))
        per16[lvl] = pj / ((rw["read"] + rw["write"]) / 2)
    dram = (e["dram_input_energy_pj"] + e["dram_weight_energy_pj"] + e["dram_output_energy_pj"]) \
        / ((l.dram_read_bytes + l.dram_write_bytes) / 2)
    ratios = [round(x / mac, 9) for x in (per16["ifmap_spad"], per16["filter_spad"],
                                           per16["psum_spad"], hop, per16["global_buffer"], dram)]
    assert ratios == [1, 1, 1, 2, 6, 200]
    # and the registers take the largest share of the energy, as on the chip
    rf = sum(v for k, v in e.items() if "_spad_" in k)
    assert rf > e["global_buffer_input_energy_pj"] + e["global_buffer_weight_energy_pj"]
