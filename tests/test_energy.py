"""Energy and area: technology figures reproduce their sources, each term moves only with
its own inputs, totals add up, and an energy that cannot be derived is an error."""
from __future__ import annotations

import math
from dataclasses import replace

import pytest

from tilesim import arch
from tilesim.arch import ArchError
from tilesim.arch import technology as tech
from tilesim.sim import simulate_model
from tilesim.sim import CostModel
from tilesim.sim.energy import energy_table, energy_terms
from tilesim.workloads import load
from tilesim.workloads.ir import conv
from conftest import layer_result, make_arch, seed_mapping


def _arch(**buf):
    d = make_arch(rows=4, cols=4, size="8 KiB", bandwidth="8 B/cycle").to_yaml_dict()
    d["memory"][1].update(buf)
    return arch.from_dict(d)


LAYER = conv("c", 1, 16, 12, 12, 24, 3, pad=1, activation="relu")


def _terms(a, m=None):
    m = m or seed_mapping(LAYER, a)
    return layer_result(m, a).energy_breakdown


def test_horowitz_figures_at_45nm():
    """At 45 nm the tables give Horowitz's numbers: int8 MAC = 0.2 + 0.1 pJ (int32 add),
    SRAM 64-bit read 10 / 20 / 100 pJ at 8 KB / 32 KB / 1 MB, sqrt(capacity) beyond."""
    assert tech.energy_scale(45) == 1.0
    a = arch.from_dict({**make_arch().to_yaml_dict(), "technology": "45 nm"})
    assert math.isclose(tech.mac_energy(a).value, 0.3)
    assert [tech.sram_access_pj_45nm(s) for s, _ in tech.SRAM_64BIT_PJ] == [10.0, 20.0, 100.0]
    assert math.isclose(tech.sram_access_pj_45nm(4 * 1024 ** 2), 200.0)
    assert math.isclose(tech.sram_access_pj_45nm(2 * 1024), 5.0)
    assert tech.energy_scale(28) < tech.energy_scale(45) < tech.energy_scale(65)


def test_doubling_one_buffer_access_energy_changes_only_its_terms():
    base = _arch(read_energy="10 pJ", write_energy="12 pJ")
    dbl = _arch(read_energy="20 pJ", write_energy="24 pJ")
    m = seed_mapping(LAYER, base)
    t0, t1 = _terms(base, m), _terms(dbl, m)
    assert t0.keys() == t1.keys()
    for col in t0:
        if col.startswith("buf_"):
            assert t0[col] > 0 and math.isclose(t1[col], 2 * t0[col]), col
        else:
            assert t1[col] == t0[col], col


def test_energy_is_monotone_in_dram_traffic():
    """More DRAM bytes of any operand (same mapping otherwise) cost strictly more, and the
    DRAM terms are bytes x 243.75 pJ/B (Horowitz's 1.3-2.6 nJ per 64 bits, midpoint)."""
    a = _arch()
    m = seed_mapping(LAYER, a)
    t = _terms(a, m)
    tr = m.traffic
    assert math.isclose(t["dram_input_energy_pj"], tr.read_input * 243.75)
    assert math.isclose(t["dram_output_energy_pj"], (tr.read_psum + tr.write_output) * 243.75)
    cost = CostModel(a)
    c = cost.point(m)
    access = {k: (int(r[0]), int(w[0])) for k, (r, w) in c.access.items()}
    cycles = int(c.cycles[0])
    prev = sum(energy_terms(a, cost.tab, LAYER.macs, LAYER.output_elems, cycles, access).values())
    assert math.isclose(prev, sum(t.values()))
    for key, side in (("input", 0), ("weight", 0), ("output", 0), ("output", 1)):
        rw = list(access[("dram", key)])
        rw[side] += 4096
        access[("dram", key)] = tuple(rw)
        e = sum(energy_terms(a, cost.tab, LAYER.macs, LAYER.output_elems, cycles,
                             access).values())
        assert e > prev, (key, side)
        prev = e


def test_eyeriss_preset_follows_the_published_200_6_1_normalisation():
    """Per 16-bit access: DRAM : global buffer : MAC = 200 : 6 : 1 (Chen et al. 2016)."""
    a = arch.load("eyeriss_like")
    tab = energy_table(a)
    mac = tab.mac.value
    dram = tab.read["dram"].value * 2          # pJ/B x 2 B per 16-bit access
    buf = tab.read["global_buffer"].value * 2
    assert (dram / mac, buf / mac) == (200.0, 6.0)
    assert tab.write["global_buffer"].value == tab.read["global_buffer"].value
    assert {tab.mac.source, tab.read["dram"].source} == {"yaml"}


def test_model_energy_adds_up_and_summary_reports_it():
    a = arch.load("nvdla_small")
    r = simulate_model(load("resnet18"), a)
    for l in r.layers:
        assert l.energy_pj > 0 and math.isclose(l.energy_pj, sum(l.energy_breakdown.values()))
        assert all(v >= 0 for v in l.energy_breakdown.values())
    s = r.summary()
    e = sum(l.energy_pj for l in r.layers)
    assert math.isclose(s["energy_uj"], e * 1e-6)
    assert math.isclose(s["tops_per_w"], 2 * r.macs / (e * 1e-12) / 1e12)
    assert s["area_sq_mm"] == pytest.approx(sum(f.value for f in tech.area_mm2(a).values()))
    assert set(s["energy_sources"]) == set(r.layers[0].energy_breakdown)


def test_area_grows_with_sram_and_shrinks_with_node():
    small, big = _arch(), _arch(size="64 KiB")
    assert tech.area_mm2(big)["buf"].value == 8 * tech.area_mm2(small)["buf"].value
    assert tech.area_mm2(small)["array"].value == 16 * (282 + 137) * (28 / 45) ** 2 / 1e6
    d = small.to_yaml_dict()
    d["technology"] = "16 nm"
    assert tech.area_mm2(arch.from_dict(d))["buf"].value < tech.area_mm2(small)["buf"].value


def test_banks_lower_the_per_access_energy():
    one, four = _arch(size="16 MiB"), _arch(size="16 MiB", banks=4)
    assert energy_table(four).read["buf"].value == pytest.approx(
        energy_table(one).read["buf"].value / 2)   # sqrt(1/4)


def test_energy_that_cannot_be_derived_is_an_error():
    d = make_arch().to_yaml_dict()
    d["technology"] = "3 nm"
    with pytest.raises(ArchError, match="technology: 3 nm.*Fix"):
        energy_table(arch.from_dict(d))
    with pytest.raises(ArchError, match=r"memory\[1\]\.access_bits.*read_energy"):
        energy_table(_arch(access_bits=32))


def test_energy_units_are_required():
    with pytest.raises(ArchError, match="read_energy.*unit"):
        _arch(read_energy=12)
    assert _arch(read_energy="0.5 nJ", leakage="3 mW").memory[1].read_energy == 500.0


@pytest.mark.parametrize("cmd", [["run", "--quiet"], ["run", "--fidelity", "des", "--quiet"],
                                 ["map", "--layer", "conv1"]])
def test_underivable_energy_names_the_architecture_file(tmp_path, capsys, cmd):
    """A node outside the scaling table, reached only when energy is computed, is one line
    naming the YAML file and the key once (was: 'technology: technology: 3 nm', no file)."""
    from pathlib import Path

    from tilesim.cli import main
    d = make_arch().to_yaml_dict()
    d["technology"] = "3 nm"
    y = tmp_path / "a.yaml"
    y.write_text(arch.dump_yaml(arch.from_dict(d)))
    tiny = str(Path(__file__).parents[1] / "examples" / "tiny_net.yaml")
    assert main([cmd[0], "--arch", str(y), "--model", tiny, *cmd[1:]]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"tilesim: error: {y}: technology: 3 nm")
    assert err.count("technology:") == 1 and "Fix: give a node between 7 nm and 180 nm" in err


def test_one_sided_energy_override_is_used_for_both_directions():
    """As documented (README, arch/schema.py): a level given only read_energy (or only
    write_energy) uses it for both; per byte = pJ per access x 8 / access_bits."""
    r = energy_table(_arch(read_energy="16 pJ"))
    w = energy_table(_arch(write_energy="16 pJ", access_bits=32))
    assert (r.read["buf"].value, r.write["buf"].value) == (2.0, 2.0)
    assert (w.read["buf"].value, w.write["buf"].value) == (4.0, 4.0)
    assert {r.read["buf"].source, w.write["buf"].source} == {"yaml"}


def test_area_breakdown_sums_and_names_its_sources():
    """summary.json's area is the sum of its components, each naming its source table."""
    a = arch.load("tpu_v1")
    s = simulate_model(load("resnet18"), a).summary()
    parts = s["area_breakdown_sq_mm"]
    assert set(parts) == {"array", "vector", *(l.name for l in a.onchip)}
    assert sum(parts.values()) == pytest.approx(s["area_sq_mm"], rel=1e-12)
    assert "Mistry" in s["area_sources"]["unified_buffer"]
    assert "Horowitz" in s["area_sources"]["array"]
    assert all("(node / 45 nm)^2" in v for v in s["area_sources"].values())
