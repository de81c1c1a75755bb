"""``tilesim verify`` shows what the executor moved between levels next to the cost
model's transfers for the same mapping (exec_bytes, model_bytes, bytes_diff_pct):
equal for layers whose halo windows never reach into padding, the executor below where
the cost model charges padding rows as fetched."""
from __future__ import annotations

from tilesim import api
from tilesim.workloads.ir import Model, conv


def _model(*layers):
    return Model(name="m", layers=tuple(layers))


def test_bytes_equal_without_padding_and_below_with_it():
    m = _model(conv("pw", 1, 16, 14, 14, 32, 1, 1),
               conv("c3", 1, 32, 14, 14, 32, 3, 3),          # no padding: halo rows only
               conv("c3p", 1, 64, 56, 56, 64, 3, 3, pad=1))  # padding, row tiles
    res = api.verify("sta_dbb_like", m)
    f = res.frame().set_index("layer")
    assert res.ok
    assert (f["exec_bytes"] > 0).all()
    for name in ("pw", "c3"):
        assert f.loc[name, "exec_bytes"] == f.loc[name, "model_bytes"], name
        assert f.loc[name, "bytes_diff_pct"] == 0
    c = f.loc["c3p"]
    assert c["exec_bytes"] < c["model_bytes"]   # row tiles reach into the padding
    assert c["bytes_diff_pct"] == 100 * (c["exec_bytes"] - c["model_bytes"]) / c["model_bytes"]


def test_nm_weights_move_the_cost_models_bytes():
    """2:4 weights stored nm in DRAM and the weight buffer (sta_dbb_like): the executor
    encodes every weight tile at every level and moves exactly the cost model's bytes."""
    m = api.load_model(_model(conv("c3", 1, 32, 10, 10, 16, 3, 3),
                              conv("pw", 1, 16, 8, 8, 32, 1, 1)), weight_sparsity="2:4")
    f = api.verify("sta_dbb_like", m).frame()
    assert (f["status"] == "pass").all()
    assert (f["exec_bytes"] == f["model_bytes"]).all() and (f["exec_bytes"] > 0).all()
