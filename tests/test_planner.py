"""Network-level memory (sim/planner.py): where activation tensors live, and what it does
to every layer's traffic and time (issue 15)."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

import tilesim
from tilesim.arch import ArchError, load
from tilesim.mapper import NO_RESIDENCY, points_of
from tilesim.sim import CostModel, make_mapper
from tilesim.sim.planner import activation_level, plan, working_set
from tilesim.workloads import MacLayer, layer_sources

SKIP = {"start_cycle", "end_cycle", "input_from", "output_to", "onchip_read_bytes",
        "onchip_write_bytes", "resident_bytes"}


def variant(name: str, sizes: dict | None = None, **top) -> "tilesim.arch.Architecture":
    """Preset ``name`` with some levels resized (level name -> size text) and top-level keys."""
    d = json.loads(load(name).model_dump_json())
    d = {k: v for k, v in d.items() if v is not None}
    d["memory"] = [{k: v for k, v in m.items() if v is not None} for m in d["memory"]]
    for m in d["memory"]:
        if m["name"] in (sizes or {}):
            m["size"] = sizes[m["name"]]
    d.update(top)
    return load(d)


def traffic(r) -> int:
    return sum(l.dram_read_bytes + l.dram_write_bytes for l in r.layers)


def rows(r) -> list:
    return [{k: v for k, v in l.row().items() if k not in SKIP and not k.endswith("_resident_bytes")}
            for l in r.layers]


# ---- defaults, declared ------------------------------------------------------------------
@pytest.mark.parametrize("preset,want", [
    ("tpu_v1", "residency"), ("edge_tpu_like", "residency"), ("eyeriss_like", "none"),
    ("nvdla_small", "none"), ("nvdla_large", "none"), ("scalesim_google", "none"),
    ("scalesim_eyeriss", "none")])
def test_presets_declare_their_schedule(preset, want):
    from pathlib import Path
    a = load(preset)
    assert a.fusion == want
    text = (Path(tilesim.arch.__file__).parent / "presets" / f"{preset}.yaml").read_text()
    assert f"\nfusion: {want}\n" in text and f"# fusion: {want} --" in text   # with its source


def test_user_yaml_without_the_key_gets_residency(tmp_path):
    d = json.loads(load("tpu_v1").model_dump_json())
    d.pop("fusion")
    assert variant("tpu_v1").fusion == "residency"
    assert load({k: v for k, v in d.items()} | {"memory": [
        {k: v for k, v in m.items() if v is not None} for m in d["memory"]]}).fusion == "residency"


def test_scalesim_cfg_defaults_to_none(tmp_path):
    cfg = tmp_path / "g.cfg"
    cfg.write_text("[general]\nrun_name = g\n[architecture_presets]\nArrayHeight: 8\n"
                   "ArrayWidth: 8\nIfmapSramSzkB: 64\nFilterSramSzkB: 64\nOfmapSramSzkB: 64\n"
                   "IfmapOffset: 0\nFilterOffset: 10000000\nOfmapOffset: 20000000\n"
                   "Dataflow: ws\nBandwidth: 10\n")
    with pytest.warns(UserWarning):
        assert load(cfg).fusion == "none"


def test_bad_fusion_key_is_a_clear_error(tmp_path):
    with pytest.raises(ArchError, match="fusion"):
        variant("tpu_v1", fusion="everything")
    with pytest.raises(ValueError, match="unknown fusion"):
        tilesim.simulate("tpu_v1", "alexnet", fusion="everything")


# ---- none: the per-layer model, number for number ------------------------------------------
@pytest.mark.parametrize("preset", ["tpu_v1", "edge_tpu_like"])
def test_none_is_the_per_layer_model(preset):
    a = load(preset)
    model = tilesim.load_model("resnet18")
    r = tilesim.simulate(a, model, fusion="none")
    cost = CostModel(a)
    mapper = make_mapper(a, cost=cost)
    want = [cost.mac_result(mapper.map(l)) if isinstance(l, MacLayer) else cost.op_result(l)
            for l in model.layers]
    assert rows(r) == [{k: v for k, v in w.row().items() if k not in SKIP} for w in want]
    assert all(set(l.input_from.split("+")) == {"dram"} and l.output_to == "dram" and not l.onchip_read_bytes
               and not l.onchip_write_bytes for l in r.layers)
    assert r.fusion == "none" and all(t["placed"] == "dram" for t in r.tensors)


def test_timeline_is_back_to_back():
    r = tilesim.simulate("edge_tpu_like", "mobilenet_v2")
    start = 0
    for l in r.layers:
        assert l.start_cycle == start and l.end_cycle == start + l.total_cycles
        start = l.end_cycle + 1
    assert start == r.total_cycles   # the makespan


# ---- capacity: nothing fits -> none; everything fits -> weights + input + output --------
def test_no_room_gives_the_traffic_of_none():
    # resnet18 at batch 8: its smallest activation is 4,096 B (the pooled 512 x 8 vector);
    # a 4,000 B unified buffer still holds every layer's smallest working set
    tiny = variant("tpu_v1", {"unified_buffer": "4000 B"})
    model = tilesim.load_model("resnet18", 8)
    assert min(t["bytes"] for t in plan(model, tiny, "residency").tensors) > 4000
    r = tilesim.simulate(tiny, model, fusion="residency")
    none = tilesim.simulate(tiny, model, fusion="none")
    assert all(t["placed"] == "dram" for t in r.tensors)
    assert traffic(r) == traffic(none) > 0
    # the same bytes everywhere; only the time can differ (cross-layer weight prefetch)
    timing = {"stall_cycles", "total_cycles", "latency_ms", "utilization", "bound",
              "leakage_energy_pj", "energy_pj", "memory_cycles"}
    strip = lambda rs: [{k: v for k, v in x.items() if k not in timing} for x in rs]  # noqa
    assert strip(rows(r)) == strip(rows(none))
    assert r.total_cycles <= none.total_cycles
    # the rule itself: a working set that takes the whole level leaves no tensor that a MAC
    # layer produces or reads on chip
    a = load("tpu_v1")
    size = a.memory[activation_level(a)].size
    p = plan(model, a, "residency", working=lambda l, arch, lvl: (size, size))
    assert all(lp.res == NO_RESIDENCY for lp, l in zip(p.layers, model.layers)
               if isinstance(l, MacLayer))


def _exact(model_name, batch, a):
    model = tilesim.load_model(model_name, batch)
    r = tilesim.simulate(a, model, fusion="residency")
    pb = a.precision.bytes
    weights = sum(l.weight_elems for l in model.layers if isinstance(l, MacLayer)) * pb["weight"]
    srcs = layer_sources(model)
    read = {s for ss in srcs for s in ss}
    outputs = [l for l in model.layers if l.name not in read]
    out_b = sum((l.output_elems if isinstance(l, MacLayer) else l.out_elems) for l in outputs)
    first = model.layers[0]
    return r, traffic(r), weights + first.input_elems * pb["input"] + out_b * pb["output"]


@pytest.mark.parametrize("model", ["alexnet", "resnet18", "mobilenet_v2"])
@pytest.mark.parametrize("batch", [1, 8])
def test_room_for_everything_moves_weights_input_output(model, batch):
    big = variant("tpu_v1", {"unified_buffer": "1 GiB", "weight_fifo": "1 GiB",
                             "accumulators": "1 GiB"})
    r, got, want = _exact(model, batch, big)
    assert got == want, [(l.layer, l.dram_read_bytes, l.dram_write_bytes) for l in r.layers
                         if l.dram_read_bytes - l.dram_read_weight_bytes or l.dram_write_bytes][:8]
    assert all(t["placed"] != "dram" or t["readers"] == 0 for t in r.tensors)


def test_room_for_everything_edge_tpu():
    big = variant("edge_tpu_like", {"activation_buffer": "1 GiB", "weight_buffer": "1 GiB"})
    _, got, want = _exact("resnet18", 8, big)
    assert got == want


# ---- the capacity rule ----------------------------------------------------------------------
@pytest.mark.parametrize("preset,model,batch", [("tpu_v1", "resnet50", 8),
                                                ("edge_tpu_like", "mobilenet_v2", 1)])
def test_resident_bytes_and_working_sets_fit(preset, model, batch):
    a = load(preset)
    m = tilesim.load_model(model, batch)
    p = plan(m, a, "residency")
    L = p.level
    lvl = a.memory[L]
    live = [0] * len(m.layers)
    for t in p.tensors:
        if t["placed"] == lvl.name:
            for j in range(max(t["first"], 0), t["last"] + 1):
                live[j] += t["bytes"]
    assert any(live)
    cost = CostModel(a)
    mapper = make_mapper(a, cost=cost)
    for j, (l, lp) in enumerate(zip(m.layers, p.layers)):
        assert lp.resident == {lvl.name: live[j]}
        if isinstance(l, MacLayer):
            w, u = working_set(l, a, L)
            assert live[j] + w <= lvl.size
            mp = mapper.map(l, lp.res)
            used = points_of(mp, a).tiles.usage[lvl.name][0]
            assert used + live[j] <= lvl.size     # its tiles fit beside the resident tensors
            assert mp.residency.input == (lp.input_from.split("+")[0] != "dram")
            assert mp.residency.output == (lp.output_to != "dram")


def test_resident_operands_leave_dram_alone():
    a = load("tpu_v1")
    r = tilesim.simulate(a, "resnet50", batch=8)
    none = tilesim.simulate(a, "resnet50", batch=8, fusion="none")
    assert r.macs == none.macs and len(r.layers) == len(none.layers)
    staged = r.tensors[0]["bytes"]     # the network input, staged once before conv1
    assert r.tensors[0]["placed"] == "unified_buffer"
    assert r.layers[0].dram_read_input_bytes == staged == 8 * 3 * 224 * 224
    for l in r.layers[1:]:
        if l.kind in ("conv", "pointwise") and l.input_from == "unified_buffer":
            assert l.dram_read_input_bytes == 0 and l.onchip_read_bytes > 0
        if l.kind in ("conv", "pointwise") and l.output_to == "unified_buffer":
            assert l.dram_write_bytes == 0 and l.onchip_write_bytes > 0
    s = r.summary()
    assert s["dram_saved_bytes"] == sum(l.onchip_read_bytes + l.onchip_write_bytes for l in r.layers)
    assert traffic(r) < traffic(none) / 3          # 337.7 MB -> 71.7 MB when measured
    assert r.total_cycles < none.total_cycles


# ---- latency never increases as the activation buffer grows ---------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("preset,level", [("tpu_v1", "unified_buffer"),
                                          ("edge_tpu_like", "activation_buffer")])
def test_latency_never_increases_with_the_activation_buffer(preset, level):
    for model in ("resnet18", "mobilenet_v2"):
        cycles = [tilesim.simulate(variant(preset, {level: f"{kib} KiB"}), model,
                                   objective="latency").total_cycles
                  for kib in (256, 512, 1024, 2048, 4096, 8192)]
        assert all(a >= b for a, b in zip(cycles, cycles[1:])), (model, cycles)
        assert cycles[0] > cycles[-1]


# ---- the DES on the same plan ---------------------------------------------------------------
@pytest.mark.parametrize("preset", ["tpu_v1", "edge_tpu_like"])
def test_des_equals_the_cost_model_at_unlimited_bandwidth(preset):
    d = json.loads(load(preset).model_dump_json())
    d = {k: v for k, v in d.items() if v is not None}
    d["memory"] = [{k: v for k, v in m.items() if v is not None} for m in d["memory"]]
    d["memory"][0]["bandwidth"] = "unlimited"
    a = load(d)
    an = tilesim.simulate(a, "resnet18")
    de = tilesim.simulate(a, "resnet18", fidelity="des")
    assert any(t["placed"] != "dram" for t in an.tensors)
    assert [l.total_cycles for l in de.layers] == [l.total_cycles for l in an.layers]
    assert [l.dram_read_bytes for l in de.layers] == [l.dram_read_bytes for l in an.layers]
    assert [l.dram_write_bytes for l in de.layers] == [l.dram_write_bytes for l in an.layers]


def test_des_moves_the_plans_bytes():
    a = load("edge_tpu_like")
    an = tilesim.simulate(a, "resnet18", batch=2)
    de = tilesim.simulate(a, "resnet18", batch=2, fidelity="des")
    assert [(l.dram_read_bytes, l.dram_write_bytes) for l in de.layers] == \
        [(l.dram_read_bytes, l.dram_write_bytes) for l in an.layers]
    rel = np.array([d.cycles / x.cycles - 1 for x, d in zip(an.layers, de.layers)])
    assert np.abs(rel).max() < 0.10


def test_plan_is_deterministic():
    a = load("tpu_v1")
    m = tilesim.load_model("mobilenet_v2", 4)
    assert plan(m, a) == plan(m, a)
    assert replace(m.layers[1], sources=("x",)) == m.layers[1]   # sources outside equality


# ---- steady state and cross-layer prefetch ---------------------------------------------------
def test_steady_state_keeps_weights_that_fit():
    a = load("edge_tpu_like")
    model = tilesim.load_model("mobilenet_v2")
    cold = tilesim.simulate(a, model)
    warm = tilesim.simulate(a, model, steady_state=True)
    s, c = warm.summary(), cold.summary()
    wbytes = sum(l.weight_elems for l in model.layers if isinstance(l, MacLayer))
    # MobileNetV2's 3.47 MB of weights fit the 4 MiB weight buffer: no weight from DRAM
    assert wbytes < a.memory[2].size
    assert sum(l.dram_read_weight_bytes for l in warm.layers) == 0
    assert s["steady_state"] and not c["steady_state"]
    assert c["latency_cold_ms"] == c["latency_ms"]
    # the first inference loads every resident weight once, at the DRAM bandwidth
    load_cycles = -(-wbytes // 1) / a.dram_bpc
    assert warm.cold_cycles == int(np.ceil(wbytes / a.dram_bpc))
    assert s["latency_cold_ms"] == pytest.approx(s["latency_ms"] + load_cycles / a.clock * 1e3,
                                                 rel=1e-9, abs=1e-6)
    assert s["latency_ms"] < c["latency_ms"]
    assert all(r["weight_buffer_resident_bytes"] == wbytes for r in
               (l.row() for l in warm.layers))


def test_steady_state_needs_a_schedule(capsys):
    from tilesim.cli import main
    with pytest.raises(ArchError, match="steady state"):
        tilesim.simulate("scalesim_google", "alexnet", steady_state=True)
    assert main(["run", "--arch", "scalesim_google", "--model", "alexnet", "--steady-state",
                 "--quiet"]) == 2
    assert "fusion residency" in capsys.readouterr().err


def test_prefetch_takes_only_time():
    a = load("tpu_v1")
    import tilesim.sim.run as run
    from tilesim.sim.cost import transfer_cycles
    model = tilesim.load_model("resnet18")
    with_pf = tilesim.simulate(a, model)
    cost = CostModel(a)
    maps, tails = run.mappings(model, a, make_mapper(a, cost=cost), cost,
                               run.network_plan(model, a))
    assert any(tails) and all(m is None or m.residency.prefetched == t0
                              for m, t0 in zip(maps[1:], tails))
    orig = run.prefetch
    try:
        run.prefetch = lambda m, w, arch, p: m
        without = tilesim.simulate(a, model)
    finally:
        run.prefetch = orig
    # the same bytes and energy of accesses; a layer is slower by at most the DRAM time of
    # the bytes it prefetches for the next one, and the network is faster
    for x, y, tail in zip(without.layers, with_pf.layers, tails):
        assert (x.dram_read_bytes, x.dram_write_bytes, x.buffer_bytes) == \
            (y.dram_read_bytes, y.dram_write_bytes, y.buffer_bytes)
        assert y.total_cycles <= x.total_cycles + int(transfer_cycles(tail, a.dram_bpc))
    assert with_pf.total_cycles < without.total_cycles
