"""Sparsity end to end (issue 20): densities and N:M in the workload, formats and zero
handling in the hardware, in the cost model and the discrete-event engine.

Hand-derived numbers (mapper/sparse.py's format table): a 1x1 GEMM layer of 16 filters
x 32 channels (512 int8 weights) at weight density 0.5 (256 non-zeros) moves, from a
DRAM that stores the weights in

* dense: 512 B;
* bitmask: 256 x 8 + 512 presence bits = 2,560 bits = 320 B;
* rle: (256 + ~6e-8 extra entries) x (8 + 5) bits = 3,328 bits = 416 B;
* csr: rows of 32: 256 x (8 + 5) + 16 rows x ceil(log2 33) = 3,328 + 96 bits = 428 B;
* nm, 2:4 weights: 16 x 16 kept values x (8 + 2) bits = 2,560 bits = 320 B.
"""
from __future__ import annotations

from dataclasses import replace

import pytest

import tilesim.api as api
from tilesim import arch
from tilesim.cli import main
from tilesim.sim.results import layers_frame
from tilesim.workloads import Model, WorkloadError
from tilesim.workloads.ir import gemm
from tilesim.workloads.sparsity import Sparsity, apply, nm_kept, parse_nm
from conftest import preset_analytic, preset_des

OLD_PRESETS = ["tpu_v1", "edge_tpu_like", "eyeriss_like", "nvdla_large", "nvdla_small",
               "scalesim_eyeriss", "scalesim_google"]

TABLE = """name: tiny
layers:
  - {name: c1, type: conv, C: 8, H: 12, W: 12, K: 16, R: 3, padding: 1, activation: relu}
  - {name: c2, type: conv, C: 16, H: 12, W: 12, K: 16, R: 3, padding: 1}
  - {name: pool, type: maxpool, C: 16, H: 12, W: 12, R: 2}
  - {name: fc, type: fc, C: 576, K: 10}
"""


def small(fmt=None, zeros=None, df="ws", rows=8, cols=8):
    """One 64 MiB buffer, unlimited DRAM bandwidth: every operand read once."""
    a = {"rows": rows, "cols": cols, "dataflow": df}
    if zeros:
        a["zeros"] = zeros
    dram = {"name": "dram", "kind": "dram", "holds": ["input", "weight", "output"],
            "bandwidth": "unlimited"}
    if fmt:
        dram["format"] = fmt
    return arch.Architecture.from_dict({
        "version": 1, "name": "small", "clock": "1 GHz", "technology": "28 nm",
        "precision": {"input": "int8", "weight": "int8", "accumulator": "int32"},
        "compute": {"arrays": [a], "vector": {"lanes": 8}},
        "memory": [dram, {"name": "buf", "kind": "sram",
                          "holds": ["input", "weight", "output"], "size": "64 MiB"}]})


def one(layer, a, fidelity="analytic"):
    m = Model(name="m", layers=(layer,))
    if fidelity == "des":
        return api.simulate_des(a, m).result.layers[0]
    return api.simulate(a, m).layers[0]


@pytest.mark.parametrize("fmt, sp, want", [
    ("dense", Sparsity(weight=0.5), 512),
    ("bitmask", Sparsity(weight=0.5), 320),
    ("rle", Sparsity(weight=0.5), 416),
    ("csr", Sparsity(weight=0.5), 428),
    ("nm", Sparsity(nm="2:4"), 320),
    ("nm", Sparsity(weight=0.5), 512),      # not N:M: nm stores it dense
    ("bitmask", None, 512 + 64),             # a dense layer pays the presence bits
])
@pytest.mark.parametrize("fidelity", ["analytic", "des"])
def test_weight_bytes_follow_the_format(fmt, sp, want, fidelity):
    layer = replace(gemm("g", 8, 16, 32), sparsity=sp)
    r = one(layer, small({"weight": fmt}), fidelity)
    assert r.dram_read_weight_bytes == want
    assert r.dram_read_input_bytes == 8 * 32   # inputs stay dense


def test_bitmask_inputs_and_outputs_hand_counts():
    """Inputs at density 0.25 in bitmask: 256 values -> 64 x 8 + 256 bits = 96 B; the
    outputs (8 x 16 final values at density 0.5): 64 x 8 + 128 bits = 80 B."""
    layer = replace(gemm("g", 8, 16, 32), sparsity=Sparsity(input=0.25, output=0.5))
    r = one(layer, small("bitmask"))
    assert (r.dram_read_input_bytes, r.dram_write_bytes) == (96, 80)
    assert r.dram_read_weight_bytes == 512 + 64


def test_nm_skip_takes_the_compressed_cycles_and_gate_the_dense_ones():
    """ws on 8 x 8, serial preload, 16 pixels x 8 filters x reduction 32: dense 4 row
    folds of T + Ra + (Ra - 1) + (Ca - 1) = 16 + 8 + 7 + 7 = 38 cycles: last cycle 151.
    2:4 keeps 16 of 32: 2 folds, last cycle 75, with `zeros: skip`; `gate` keeps 151
    and halves the MAC energy, as skip does (2,048 of 4,096 MACs performed)."""
    layer = gemm("g", 16, 8, 32)
    sp = replace(layer, sparsity=Sparsity(nm="2:4"))
    dense = one(layer, small())
    assert dense.compute_cycles == 151
    for fid in ("analytic", "des"):
        skip = one(sp, small(zeros="skip"), fid)
        gate = one(sp, small(zeros="gate"), fid)
        assert skip.compute_cycles == 75 and skip.performed_macs == 2048
        assert gate.compute_cycles == 151 and gate.performed_macs == 4096
        for r in (skip, gate):
            assert r.macs == 4096
            assert r.energy_breakdown["mac_energy_pj"] == \
                dense.energy_breakdown["mac_energy_pj"] / 2
    # unstructured zeros are gated, never skipped
    un = one(replace(layer, sparsity=Sparsity(weight=0.5, input=0.5)), small(zeros="skip"))
    assert un.compute_cycles == 151
    assert un.energy_breakdown["mac_energy_pj"] == dense.energy_breakdown["mac_energy_pj"] / 4


@pytest.mark.parametrize("fidelity", ["analytic", "des"])
def test_density_one_with_dense_formats_is_the_dense_model(fidelity):
    """Every layer given an explicit Sparsity of density 1 (not None), on a preset with
    every level declaring `format: dense` and the array `zeros: none`: every number of
    every layer is the dense run's."""
    a = arch.load("edge_tpu_like")
    ad = a.replace({**{f"memory[{i}].format": "dense" for i in range(len(a.memory))},
                    "compute.arrays[0].zeros": "none"})
    m = api.load_model("mobilenet_v2")
    ones = replace(m, layers=tuple(replace(l, sparsity=Sparsity()) if hasattr(l, "groups")
                                   else l for l in m.layers))
    if fidelity == "des":   # the dense run as shipped: the session's (conftest.preset_des)
        base = preset_des("edge_tpu_like", "mobilenet_v2").result
        got = api.simulate_des(ad, ones).result
    else:
        base = preset_analytic("edge_tpu_like", "mobilenet_v2")[1]
        got = api.simulate(ad, ones)
    assert layers_frame(base).equals(layers_frame(got))


def test_sparsity_on_undeclaring_presets_changes_nothing_and_warns_once(tmp_path, capsys):
    """`--weight-sparsity 2:4` on a preset with no format and no zeros key: every number
    of layers.csv is the dense run's (its `sparsity` column records the 2:4), and stderr
    has one warning naming both keys."""
    t = tmp_path / "tiny.yaml"
    t.write_text(TABLE)
    for p in OLD_PRESETS:
        assert main(["run", "--arch", p, "--model", str(t), "--out", str(tmp_path / "d"),
                     "--quiet"]) == 0
        capsys.readouterr()
        assert main(["run", "--arch", p, "--model", str(t), "--out", str(tmp_path / "s"),
                     "--quiet", "--weight-sparsity", "2:4"]) == 0
        err = capsys.readouterr().err
        warns = [l for l in err.splitlines() if "warning: sparsity" in l]
        assert len(warns) == 1, err
        assert "memory[i].format" in warns[0] and "compute.arrays[0].zeros" in warns[0]
        import pandas as pd
        d = pd.read_csv(tmp_path / "d" / "layers.csv", keep_default_na=False)
        s = pd.read_csv(tmp_path / "s" / "layers.csv", keep_default_na=False)
        # the layers' sparsity is recorded; no number moves
        assert set(s["sparsity"]) == {"w 2:4", ""} and set(d["sparsity"]) == {""}
        assert d.drop(columns="sparsity").equals(s.drop(columns="sparsity")), p


def test_sparse_preset_gains_only_what_it_declares():
    """sta_dbb_like (nm weights, zeros: skip): a dense model runs as on edge_tpu_like
    (the same array, buffers and DRAM); 4:8 weights take fewer cycles, move fewer weight
    bytes and perform half the MACs of the dense model."""
    m = api.load_model("resnet18")
    dense = api.simulate("sta_dbb_like", m)
    edge = api.simulate(arch.load("edge_tpu_like").replace("compute.arrays[0].dataflows", None), m)
    assert dense.total_cycles == edge.total_cycles
    assert [l.energy_pj for l in dense.layers] == [l.energy_pj for l in edge.layers]
    sp = api.simulate("sta_dbb_like", apply(m, weight_nm="4:8"))
    assert sp.total_cycles < dense.total_cycles
    assert sum(l.dram_read_weight_bytes for l in sp.layers) < \
        sum(l.dram_read_weight_bytes for l in dense.layers)
    red = {l.name: (l.C // l.groups) * l.R * l.S for l in m.mac_layers}
    assert sp.performed_macs == sum(l.macs // red[l.name] * nm_kept(red[l.name], 4, 8)
                                    for l in m.mac_layers)


def test_planner_holds_compressed_tensors():
    """A resident activation held in a bitmask activation buffer takes its compressed
    bytes: the tensors table lists them (density 0.5: 0.5 x b + 1/8 per value)."""
    a = arch.load("edge_tpu_like").replace("memory[1].format", "bitmask")
    m = api.load_model("resnet18")
    m = replace(m, layers=tuple(replace(l, sparsity=Sparsity(output=0.5))
                                if hasattr(l, "groups") else l for l in m.layers))
    r = api.simulate(a, m)
    t = {x["tensor"]: x["bytes"] for x in r.tensors}
    l0 = m.layers[0]
    assert t[l0.name] == int(l0.output_elems * (0.5 + 1 / 8))


@pytest.mark.parametrize("args, words", [
    (["--weight-sparsity", "5:4"], "N = 5"),
    (["--weight-sparsity", "2-4"], "N:M"),
    (["--weight-sparsity", "0:4"], "N = 0"),
    (["--weight-density", "0"], "outside (0, 1]"),
    (["--weight-density", "1.5"], "outside (0, 1]"),
    (["--weight-density", "inf"], "outside (0, 1]"),
    (["--input-density", "-0.1"], "outside (0, 1]"),
    (["--weight-density", "0.5", "--weight-sparsity", "2:4"], "both"),
])
def test_bad_sparsity_is_one_line_and_exit_2(args, words, capsys):
    assert main(["run", "--arch", "tpu_v1", "--model", "resnet18", "--quiet", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0] and "Fix:" in err[0]


@pytest.mark.parametrize("change, words", [
    ({"memory[1].format": "nm"}, "for N:M-structured weights only"),
    ({"memory[1].format": "zip"}, "format"),
    ({"memory[1].format": {"weight": "bitmask"}}, "does not hold 'weight'"),
    ({"compute.arrays[0].zeros": "drop"}, "zeros"),
])
def test_a_format_a_level_cannot_hold_is_one_line(tmp_path, capsys, change, words):
    a = arch.load("tpu_v1")
    import yaml
    d = a.to_yaml_dict()
    for k, v in change.items():   # written as a user would, into the file
        if k.startswith("memory"):
            d["memory"][int(k[7])]["format"] = v
        else:
            d["compute"]["arrays"][0]["zeros"] = v
    p = tmp_path / "a.yaml"
    p.write_text(yaml.safe_dump(d))
    assert main(["run", "--arch", str(p), "--model", "resnet18", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0] and str(p) in err[0]


def test_pe_level_format_is_refused():
    a = arch.load("eyeriss_like")
    i = next(i for i, m in enumerate(a.memory) if m.scope == "pe")
    with pytest.raises(arch.ArchError, match="a PE register is dense"):
        a.replace(f"memory[{i}].format", "bitmask")


def test_workload_sparsity_values_are_checked():
    assert parse_nm("2:4") == (2, 4) and parse_nm((1, 1)) == (1, 1)
    for bad in ("4:2", "2:300", "a:b", "2:4:8", (2.0, 4), True):
        with pytest.raises(WorkloadError):
            parse_nm(bad)
    for kw in ({"weight": float("nan")}, {"input": 0.0}, {"output": 2},
               {"weight": 0.5, "nm": "2:4"}, {"weight": "half"}):
        with pytest.raises(WorkloadError):
            Sparsity(**kw)
    assert nm_kept(30, 2, 4) == 16 and nm_kept(27, 2, 4) == 14 and nm_kept(1, 2, 4) == 1
    assert Sparsity(nm=(4, 4)).dense and not Sparsity(nm="2:4").dense
    assert Sparsity(nm="2:4", input=0.5).text() == "w 2:4, in 0.5"


def test_counted_zeros_of_real_weights():
    """Weights' zeros counted: dense -> None; every block of 4 along a filter's (c, r, s)
    with at most 2 non-zeros -> 2:4; scattered zeros -> their share; all zeros -> None (a
    placeholder)."""
    import numpy as np
    from tilesim.workloads.sparsity import counted
    rng = np.random.default_rng(0)
    w = rng.integers(1, 100, (8, 4, 3, 3))
    assert counted(w) is None and counted(np.zeros((4, 4))) is None
    flat = w.reshape(8, -1).copy()
    for f in range(8):
        for b in range(0, 36, 4):
            flat[f, b + rng.choice(4, 2, replace=False)] = 0
    s = counted(flat.reshape(w.shape))
    assert s.nm == (2, 4) and s.counted
    w2 = w.copy()
    w2[0, 0, 0, :] = 0          # 3 zeros in 288: no block of 2, 4, 8 or 16 is short of M
    s = counted(w2)
    assert s.nm is None and s.weight == 1 - 3 / 288 and s.counted


def test_torch_module_weights_are_counted(capsys):
    """A PyTorch conv pruned to 2:4 imports with its 2:4 counted; a dense one with none;
    counted zeros alone print no warning on a preset without format / zeros."""
    torch = pytest.importorskip("torch")
    import numpy as np
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 3, padding=1),
                              torch.nn.Conv2d(16, 16, 3, padding=1))
    with torch.no_grad():
        w = net[1].weight.reshape(16, -1)
        mask = torch.zeros_like(w, dtype=torch.bool)
        for b in range(0, w.shape[1], 4):
            mask[:, b:b + 2] = True
        w[~mask] = 0
    m = api.load_model(net, input_shape=(1, 8, 8, 8))
    a, b = m.mac_layers
    assert a.sparsity is None and b.sparsity.nm == (2, 4) and b.sparsity.counted
    assert api.sparsity_warning(arch.load("tpu_v1"), m) is None
    r = api.simulate("sta_dbb_like", m)
    assert r.layers[1].performed_macs == b.macs // 2
    assert np.isclose(r.layers[0].performed_macs, a.macs)


def test_input_densities_measured_on_a_real_input(tmp_path, capsys):
    """A PyTorch factory run once on the user's input (--input-sample): each conv's input
    density is the share of non-zeros it met. conv1 reads the sample itself (a quarter of
    it zeroed: 0.75); conv2 reads ReLU(conv1(x)), counted here with torch directly."""
    torch = pytest.importorskip("torch")
    import numpy as np
    src = tmp_path / "net.py"
    src.write_text("import torch\n\ndef build():\n    torch.manual_seed(0)\n"
                   "    return torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3, padding=1), "
                   "torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3, padding=1))\n")
    x = np.random.default_rng(1).standard_normal((1, 4, 8, 8)).astype(np.float32)
    x[:, :, :4, :4] = 0   # 16 of 64 positions in each channel
    npy = tmp_path / "x.npy"
    np.save(npy, x)
    m = api.load_model(f"{src}:build", input_shape="1x4x8x8", input_sample=str(npy))
    c1, c2 = m.mac_layers
    assert c1.sparsity.input == 0.75
    import importlib.util
    spec = importlib.util.spec_from_file_location("net", src)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    net = mod.build()
    with torch.no_grad():
        h = net[1](net[0](torch.as_tensor(x)))
    assert c2.sparsity.input == int(torch.count_nonzero(h)) / h.numel() < 1
    # the CLI; a sample for a zoo model, a wrong shape and NaN are one line each
    assert main(["run", "--arch", "tpu_v1", "--model", f"{src}:build", "--input-shape",
                 "1x4x8x8", "--input-sample", str(npy), "--quiet"]) == 0
    bad = tmp_path / "bad.npy"
    for arr, model, words in ((x, "resnet18", "PyTorch model"),
                              (x[:, :3], f"{src}:build", "does not match"),
                              (np.full_like(x, np.nan), f"{src}:build", "finite")):
        np.save(bad, arr)
        capsys.readouterr()
        assert main(["run", "--arch", "tpu_v1", "--model", model, "--input-shape", "1x4x8x8",
                     "--input-sample", str(bad), "--quiet"]
                    if model != "resnet18" else
                    ["run", "--arch", "tpu_v1", "--model", model, "--input-sample", str(bad),
                     "--quiet"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0] and "Fix:" in err[0], err
        if model != "resnet18":   # the sample's file is named
            assert str(bad) in err[0], err


@pytest.mark.parametrize("weights, change", [
    ({"weight_nm": "4:8"}, {}),                                   # nm weights, skipped
    ({"weight_density": 0.5}, {"memory[0].format": "bitmask"}),    # compressed tiles
])
def test_des_agrees_with_the_cost_model_on_sparse_layers(weights, change):
    """sta_dbb_like (as shipped, or with bitmask DRAM): every layer of ResNet-18 with
    sparse weights takes, in the discrete-event engine moving the compressed tiles,
    within 10 % of the analytic cycles (the bound every preset meets dense)."""
    a = arch.load("sta_dbb_like")
    if change:
        a = a.replace(change)
    m = apply(api.load_model("resnet18"), **weights)
    ana = api.simulate(a, m)
    des = api.simulate_des(a, m).result
    for x, y in zip(ana.layers, des.layers, strict=True):
        assert abs(y.cycles - x.cycles) <= 0.10 * x.cycles, (x.layer, x.cycles, y.cycles)
        assert (x.performed_macs, x.dram_read_weight_bytes) == \
            (y.performed_macs, y.dram_read_weight_bytes)
