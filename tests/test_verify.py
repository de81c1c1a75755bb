"""`tilesim verify`: passes on real models, shrinks large layers as documented, and exits 1
when the mapped computation or the cycles disagree."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from tilesim import arch
import tilesim
from tilesim.sim import make_mapper
from tilesim.sim import verify as V
from tilesim.sim.pe import work
from tilesim.cli import main
from tilesim.workloads.ir import conv, fc


def test_cli_verify_passes(capsys):
    """Two AlexNet layers on the SCALE-Sim Eyeriss preset: executor and PE pass, cycles agree."""
    assert main(["verify", "--arch", "scalesim_eyeriss", "--model", "alexnet",
                 "--layers", "2"]) == 0
    out = capsys.readouterr().out
    assert "features.0" in out and "features.3" in out and "features.6" not in out
    assert "verify: 2/2 layers pass" in out and "FAIL" not in out
    assert "last-cycle" in out and "LSB" in out


def test_api_verify_frame_and_determinism():
    a = tilesim.verify("edge_tpu_like", "resnet18", layers=3, seed=7)
    b = tilesim.verify("edge_tpu_like", "resnet18", layers=3, seed=7)
    assert a.ok and a.frame().equals(b.frame())
    df = a.frame()
    assert (df["exec_max_err"] == 0).all() and (df["pe_max_err"] == 0).all()
    assert (df["pe_cycles"] == df["analytic_cycles"]).all() and df["cycles_match"].all()


@pytest.mark.parametrize("prec", ["fp32", "bf16"])
def test_float_architecture_verifies_within_rounding(prec):
    base = arch.load("edge_tpu_like")
    a = base.model_copy(update={"precision": base.precision.model_copy(
        update={"input": prec, "weight": prec, "accumulator": "fp32"})})
    r = V.verify_model(tilesim.load_model("resnet18"), a, layers=2)
    assert r.ok and r.precision == f"{prec} x {prec} -> fp32"
    assert all(c.pe_ok and c.pe_cycles == c.analytic_cycles for c in r.checks)


def test_seed_picks_the_operands():
    """The same seed reproduces every error figure; another seed draws other operands
    (fp32 errors are rounding noise, so they differ), i.e. --seed really reaches them."""
    base = arch.load("edge_tpu_like")
    a = base.model_copy(update={"precision": base.precision.model_copy(
        update={"input": "fp32", "weight": "fp32", "accumulator": "fp32"})})
    m = tilesim.load_model("resnet18")
    errs = [[(c.exec_max_err, c.pe_max_err) for c in V.verify_model(m, a, layers=1,
                                                                      seed=s).checks]
            for s in (1, 1, 2)]
    assert errs[0] == errs[1] and errs[0] != errs[2]
    assert all(e > 0 for row in errs for pair in row for e in pair)


def test_negative_seed_is_bad_input(capsys):
    """numpy refuses negative seeds: the CLI says so in one line (exit 2), no traceback."""
    with pytest.raises(SystemExit) as e:
        main(["verify", "--arch", "scalesim_eyeriss", "--model", "alexnet", "--seed", "-3"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "--seed: -3 must be >= 0" in err and "Traceback" not in err


def test_pe_skipped_over_budget_does_not_fail():
    r = V.verify_model(tilesim.load_model("resnet18"), arch.load("tpu_v1"), layers=1, pe_budget=0)
    c = r.checks[0]
    assert r.ok and c.pe_shape.startswith("skipped") and c.pe_ok is None and c.exec_ok


def test_mismatch_exits_1(monkeypatch, capsys):
    """A mapping that drops a tile makes verify fail with exit code 1 (the check can fail)."""
    real = V.execute

    def drop_last_tile(m, x, w, tiles=None, arch=None):
        from tilesim.mapper.tiling import iter_tiles
        return real(m, x, w, tiles=list(iter_tiles(m.layer, m.tiling))[:-1])
    monkeypatch.setattr(V, "execute", drop_last_tile)
    assert main(["verify", "--arch", "scalesim_eyeriss", "--model", "alexnet",
                 "--layers", "1"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "MISMATCH" in out


def test_cycle_mismatch_fails(monkeypatch):
    """An analytic formula off by one cycle (a skew term dropped or doubled) is caught by
    the PE model."""
    real = V.mapping_compute_cycles
    for off in (-1, 1):
        monkeypatch.setattr(V, "mapping_compute_cycles", lambda m, a: real(m, a) + off)
        r = V.verify_model(tilesim.load_model("alexnet"), arch.load("scalesim_eyeriss"),
                           layers=1)
        c = r.checks[0]
        assert not r.ok and c.exec_ok and c.pe_ok is False and c.pe_max_err == 0
        assert c.analytic_cycles - c.pe_cycles == off


def test_verify_columns_are_documented():
    """Every column of VerifyResult.frame() (and so of the CLI table) has a row in the
    `tilesim verify` section of docs/outputs.md."""
    import re

    from tilesim.reports.terminal import VERIFY_SPEC
    doc = (Path(__file__).resolve().parent.parent / "docs" / "outputs.md").read_text()
    section = doc.split("## `tilesim verify`", 1)[1].split("\n## ", 1)[0]
    rows = set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.M))
    cols = list(V.verify_model(tilesim.load_model("alexnet"), arch.load("scalesim_eyeriss"),
                               layers=1, pe_budget=0).frame().columns)
    assert len(cols) >= 13 and [c for c in cols if c not in rows] == []
    assert {key for key, _, _ in VERIFY_SPEC} <= set(cols)


@pytest.mark.parametrize("operand", ["input", "weight", "output"])
def test_tile_larger_than_its_buffer_charge_fails(operand):
    """A mapping that charges its buffers less than the tiles it moves (a halo or the
    accumulator width forgotten) fails verify though its numbers are right."""
    from dataclasses import replace
    a = arch.load("scalesim_eyeriss")
    real = make_mapper(a, "traffic")

    class Undercharging:
        def map(self, layer):
            m = real.map(layer)
            tb = dict(m.tiling.tile_bytes, **{operand: m.tiling.tile_bytes[operand] - 1})
            return replace(m, tiling=replace(m.tiling, tile_bytes=tb))

    layer = conv("c", 1, 8, 9, 9, 6, 3, pad=1)
    ok = V.verify_layer(layer, a, real, np.random.default_rng(0))
    assert ok.exec_ok and ok.tiles_fit and ok.exec_max_err == 0
    c = V.verify_layer(layer, a, Undercharging(), np.random.default_rng(0))
    assert c.exec_max_err == 0 and not c.tiles_fit and not c.exec_ok and not c.ok


def test_closed_pipe_is_quiet():
    """`tilesim verify ... | head -1`: when the reader leaves, the command stops without an
    error line or traceback and exits 141 (128 + SIGPIPE), not 1 (a mismatch) or 2."""
    import os
    import subprocess
    import sys
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=str(root))
    p = subprocess.Popen([sys.executable, "-m", "tilesim.cli", "list"], cwd=root, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()  # before the child writes a byte
    err = p.stderr.read().decode()
    assert p.wait(timeout=60) == 141 and err == ""


def test_bad_arch_exits_2(capsys):
    assert main(["verify", "--arch", "nope", "--model", "alexnet"]) == 2
    assert "nope" in capsys.readouterr().err


@pytest.mark.parametrize("layer", [
    conv("c", 4, 64, 56, 56, 128, 3, stride=2, pad=1),
    conv("d", 1, 96, 112, 112, 96, 3, pad=1, groups=96),
    conv("a", 1, 3, 224, 224, 64, 11, stride=4, pad=2, dilation=1),
    conv("x", 1, 32, 40, 40, 32, 3, pad=2, dilation=2),
    fc("f", 1, 9216, 4096),
])
def test_shrink_keeps_structure_within_budget(layer):
    """The shrunk copy fits the budget and keeps kind, filter, stride, padding, dilation."""
    mapper = make_mapper(arch.load("scalesim_eyeriss"), "traffic")
    budget = 1e7
    s = V.shrink(layer, lambda l: work(mapper.map(l)), budget)
    assert work(mapper.map(s)) <= budget
    assert (s.kind, s.R, s.S, s.stride, s.padding, s.dilation) == (
        layer.kind, layer.R, layer.S, layer.stride, layer.padding, layer.dilation)
    assert s.N == 1 and s.C <= layer.C and s.K <= layer.K and s.P <= layer.P
    assert s.P == (s.H + 2 * s.padding[0] - s.dilation[0] * (s.R - 1) - 1) // s.stride[0] + 1
    assert V.shrink(s, lambda l: work(mapper.map(l)), budget) is s


def test_random_operands_follow_precision():
    rng = np.random.default_rng(0)
    layer = conv("c", 1, 4, 5, 5, 4, 3)
    a = arch.load("eyeriss_like")  # int16 operands
    x, w = V.random_operands(layer, a, rng)
    assert x.dtype == np.int16 and x.min() < -128 and x.max() > 127
    assert V._round_float(np.float32([1 + 2 ** -9, 1 + 3 * 2 ** -8]), "bf16").tolist() == \
        [1.0, 1 + 4 * 2 ** -8]


def test_searched_dataflows_on_configurable_arrays(tmp_path):
    """On a configurable two-array machine the search picks os / ws / is per layer; the
    searched mappings execute exactly and the PE model takes their analytic cycles."""
    from tilesim.workloads import Model
    src = (Path(arch.__file__).parent / "presets" / "scalesim_eyeriss.yaml").read_text()
    conf = tmp_path / "conf.yaml"
    conf.write_text(src.replace("dataflow: ws, count: 1}",
                                "dataflow: ws, count: 2, dataflows: [os, ws, is]}"))
    r18 = tilesim.load_model("resnet18")
    pick = ("layer1.0.conv1", "layer3.0.conv1", "layer3.0.downsample.0", "fc")
    sub = Model("sub", tuple(dataclasses.replace(l, sources=()) for l in r18.layers if l.name in pick))
    r = tilesim.verify(conf, sub, objective="latency")
    assert r.ok and r.mapper == "searched (latency, heuristic)"
    assert {c.dataflow for c in r.checks} == {"os", "ws", "is"}
    assert all(c.pe_cycles == c.analytic_cycles for c in r.checks)
