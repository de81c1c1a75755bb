"""``tilesim run --input-sample x.npy --actual-data``: the model runs once on the user's
input with its own weights (sim.kernels.graphrun), every conv's and linear's operands are
kept (Model.data: non-zero masks in the IR's layouts), and the analytic run prices
compressed formats and gated MACs on them (mapper/actual.py)."""
from __future__ import annotations

import numpy as np
import pytest

from test_executor_formats import fmt_arch
from test_measure import _hook_densities, _integer_net
from tilesim import api
from tilesim.cli import main
from tilesim.mapper.actual import Tensors
from tilesim.sim import make_mapper
from tilesim.sim.kernels.executor import execute
from tilesim.workloads import WorkloadError

torch = pytest.importorskip("torch")
nn = torch.nn

MACS = {"conv1", "conv2", "dw", "fc", "head", "fc1", "fc2"}


@pytest.fixture(scope="module")
def kept():
    net, x = _integer_net()
    m = api.load_model(net, batch=2, input_shape="1x3x8x8", input_sample=x.numpy(),
                       actual_data=True)
    return net, x, m


def test_every_conv_and_linear_keeps_its_operands(kept):
    """The masks are the IR's shapes; the inputs' non-zeros are the ones torch's forward
    hooks count, the weights' the module's own, and each mask's share is the density
    the layer was given."""
    net, x, m = kept
    assert set(m.data) == MACS
    hooks = _hook_densities(net, x)
    mods = dict(net.named_modules())
    for l in m.mac_layers:
        t = m.data[l.name]
        assert isinstance(t, Tensors) and t.check(l) is t
        assert t.input.dtype == bool
        assert t.input.mean() == hooks[l.name] == l.sparsity.input
        assert t.output.mean() == l.sparsity.output
        w = mods[l.name].weight.detach().numpy() != 0
        assert np.array_equal(t.weight.reshape(w.shape), w)


def test_the_run_moves_the_executors_bytes_on_the_samples_tensors(kept):
    """DRAM holds inputs bitmask and outputs rle. Every layer's DRAM input bytes in the
    run equal what the functional executor moves for the same mapping on the same
    zeros (the masks as int8 operands); at the densities some differ."""
    _, _, m = kept
    a = fmt_arch({"input": "bitmask", "output": "rle"}, size="2 KiB")
    res = api.simulate(a, m, fusion="none", objective="traffic")
    dense = api.simulate(a, _measured(m), fusion="none", objective="traffic")
    mapper = make_mapper(a, "traffic")
    rows = {r.layer: r for r in res.layers}
    moved = 0
    for l in m.mac_layers:
        t = m.data[l.name]
        ex = execute(mapper.map(l), t.input.astype(np.int8), t.weight.astype(np.int8), arch=a)
        assert rows[l.name].dram_read_input_bytes == ex.dram_bits["input"][0] // 8, l.name
        assert rows[l.name].sparsity.endswith("on data")
        moved += rows[l.name].dram_read_input_bytes != {
            r.layer: r for r in dense.layers}[l.name].dram_read_input_bytes
    assert moved > 0


def _measured(m):
    """``m`` without its data (the densities only)."""
    from dataclasses import replace
    return replace(m, data=None)


def test_cli_counts_on_the_sample(tmp_path, capsys):
    net, x = _integer_net()
    np.save(tmp_path / "x.npy", x.numpy())
    f = tmp_path / "net.py"
    f.write_text("import torch\nfrom test_measure import _integer_net\n"
                 "def make():\n    return _integer_net()[0]\n")
    import sys
    sys.path.insert(0, str(tmp_path))
    try:
        rc = main(["run", "--arch", "edge_tpu_like", "--model", f"{f}:make", "--input-shape",
                   "2x3x8x8", "--batch", "2", "--input-sample", str(tmp_path / "x.npy"),
                   "--actual-data", "--columns", "layer,sparsity", "--wide"])
    finally:
        sys.path.remove(str(tmp_path))
    out = capsys.readouterr().out
    assert rc == 0 and out.count("on data") == len(MACS)


def test_cli_refuses_actual_data_without_a_sample(capsys):
    with pytest.raises(SystemExit) as e:
        main(["run", "--arch", "edge_tpu_like", "--model", "resnet18", "--actual-data"])
    assert e.value.code == 2 and "--actual-data needs --input-sample" in capsys.readouterr().err


def test_the_engine_moves_the_tiles_counted_on_the_sample(kept):
    """--fidelity des: every tile moves its bytes counted on the kept tensors, so each
    layer's DRAM input bytes are the executor's (to the rounding of the engine's whole
    bytes), and the access counts the energy prices are the cost model's on the same
    data (the analytic run's DRAM totals)."""
    _, _, m = kept
    a = fmt_arch({"input": "bitmask", "output": "rle"}, size="2 KiB")
    des = api.simulate_des(a, m, fusion="none", objective="traffic").result
    ana = api.simulate(a, m, fusion="none", objective="traffic")
    mapper = make_mapper(a, "traffic")
    rows, arows = {r.layer: r for r in des.layers}, {r.layer: r for r in ana.layers}
    for l in m.mac_layers:
        t = m.data[l.name]
        ex = execute(mapper.map(l), t.input.astype(np.int8), t.weight.astype(np.int8), arch=a)
        r = rows[l.name]
        assert abs(r.dram_read_input_bytes - ex.dram_bits["input"][0] / 8) <= 0.5, l.name
        assert r.sparsity.endswith("on data")
        assert abs(r.dram_write_bytes - arows[l.name].dram_write_bytes) <= 1, l.name


def test_api_refuses_a_sample_of_another_batch_and_asked_weight_sparsity():
    net, x = _integer_net()
    with pytest.raises(WorkloadError, match=r"batch \(2\) is not the model's \(1\).*--batch 2"):
        api.load_model(net, batch=1, input_shape="1x3x8x8", input_sample=x.numpy(),
                       actual_data=True)
    with pytest.raises(WorkloadError, match="counts the model's own weights"):
        api.load_model(net, batch=2, input_shape="1x3x8x8", input_sample=x.numpy(),
                       actual_data=True, weight_sparsity="2:4")
    with pytest.raises(WorkloadError, match="needs an input sample"):
        api.load_model("resnet18", actual_data=True)
    kept = api.load_model(net, batch=2, input_shape="1x3x8x8", input_sample=x.numpy(),
                          actual_data=True)
    assert api.load_model(kept, batch=2) is kept
    with pytest.raises(WorkloadError, match="carries the tensors its layers met at batch 2"):
        api.load_model(kept, batch=4)
