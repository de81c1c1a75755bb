"""``tilesim verify`` shows what the executor moved between levels next to the cost
model's transfers for the same mapping (exec_bytes, model_bytes, bytes_diff_pct):
equal for dense layers, halos and padding included (neither fetches padding), and for
N:M weights stored nm."""
from __future__ import annotations

from tilesim import api
from tilesim.workloads.ir import Model, conv


def _model(*layers):
    return Model(name="m", layers=tuple(layers))


def test_bytes_equal_with_halos_and_padding():
    """A 1x1 layer, a 3x3 one whose windows overlap, and a padded 3x3 one whose row
    tiles' windows reach into the padding at the top and bottom edges."""
    m = _model(conv("pw", 1, 16, 14, 14, 32, 1, 1),
               conv("c3", 1, 32, 14, 14, 32, 3, 3),
               conv("c3p", 1, 64, 56, 56, 64, 3, 3, pad=1))
    res = api.verify("sta_dbb_like", m)
    f = res.frame().set_index("layer")
    assert res.ok
    assert (f["exec_bytes"] > 0).all()
    assert (f["exec_bytes"] == f["model_bytes"]).all() and (f["bytes_diff_pct"] == 0).all()
    assert f.loc["c3p", "tiles"] > 1   # row tiles: the padding case is exercised


def test_nm_weights_move_the_cost_models_bytes():
    """2:4 weights stored nm in DRAM and the weight buffer (sta_dbb_like): the executor
    encodes every weight tile at every level and moves exactly the cost model's bytes."""
    m = api.load_model(_model(conv("c3", 1, 32, 10, 10, 16, 3, 3),
                              conv("pw", 1, 16, 8, 8, 32, 1, 1)), weight_sparsity="2:4")
    f = api.verify("sta_dbb_like", m).frame()
    assert (f["status"] == "pass").all()
    assert (f["exec_bytes"] == f["model_bytes"]).all() and (f["exec_bytes"] > 0).all()


def test_compressed_activations_with_halos_are_exact_on_the_data():
    """bitmask inputs and rle outputs in DRAM, csr inputs in the buffer, activations at
    density 0.3: the executor's random zeros fall unevenly into the overlapping windows
    of the 3x3 layers, so the densities' expectation (density_bytes) is off, while the
    cost model counted on the same operands moves exactly the executor's bytes
    (model_bytes; bytes_ok, part of status)."""
    from test_executor_levels import level_arch
    a = level_arch([("input", "weight", "output")],
                   [{"input": "csr", "output": "bitmask"}],
                   {"input": "bitmask", "output": "rle"})
    m = api.load_model(_model(conv("c3", 1, 8, 12, 12, 8, 3, 3, pad=1),
                              conv("c3s2", 1, 8, 12, 12, 8, 3, 3, stride=2, pad=1)),
                       input_density=0.3)
    res = api.verify(a, m, objective="traffic")
    f = res.frame().set_index("layer")
    assert res.ok and f["bytes_ok"].all()
    assert (f["exec_bytes"] == f["model_bytes"]).all() and (f["bytes_diff_pct"] == 0).all()
    assert (f["density_diff_pct"] != 0).any()


def test_a_byte_mismatch_fails_the_layer():
    """status needs exec_bytes == model_bytes (the same operands): a check whose outputs
    and cycles pass but whose bytes differ by one is a FAIL, and says by how much."""
    from dataclasses import replace
    from tilesim.sim.verify import VerifyResult
    m = _model(conv("pw", 1, 8, 6, 6, 8, 1, 1))
    res = api.verify("sta_dbb_like", m)
    (c,) = res.checks
    assert c.ok and c.bytes_ok
    bad = replace(c, model_bytes=c.exec_bytes - 1)
    assert not bad.ok and not bad.bytes_ok
    f = VerifyResult(**{**{k: getattr(res, k) for k in res.__dataclass_fields__},
                        "checks": (bad,)}).frame()
    assert f.loc[0, "status"] == "FAIL" and f.loc[0, "bytes_diff_pct"] > 0
