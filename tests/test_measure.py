"""Activation densities measured by running the model's own weights on the user's input
with tilesim's reference kernels (sim.kernels.graphrun, --input-sample), ONNX and PyTorch."""
import io
import warnings

import numpy as np
import pytest

from tilesim import api
from tilesim.cli import main
from tilesim.sim.kernels.graphrun import measure, run
from tilesim.workloads import MacLayer, WorkloadError, load

torch = pytest.importorskip("torch")
nn = torch.nn


class Net(nn.Module):
    """conv+bn+relu, a residual add, a depthwise conv, maxpool, and two heads: gap ->
    linear, and a 1x1 conv flattened into two linear layers (MAC -> MAC links through a
    view and directly)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.pool = nn.MaxPool2d(2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)
        self.head = nn.Conv2d(8, 4, 1)
        self.fc1 = nn.Linear(64, 6)
        self.fc2 = nn.Linear(6, 5)

    def forward(self, x):
        h = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.conv2(h)) + h
        y = self.pool(torch.relu(self.dw(y)))
        a = self.fc(torch.flatten(self.gap(y), 1))
        z = torch.flatten(torch.relu(self.head(y)), 1)
        return a + self.fc2(torch.relu(self.fc1(z)))


def _integer_net(seed=1):
    """Net in eval mode with small integer weights and an exact BatchNorm (variance 1,
    eps 0): every fp32 sum is an exact integer (or a sixteenth, gap's mean over 4 x 4),
    so any summation order gives the same value, zeros included."""
    net = Net().eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randint(-2, 3, p.shape, generator=g).float())
        net.bn1.running_mean.copy_(torch.randint(-2, 3, (8,), generator=g).float())
        net.bn1.running_var.fill_(1.0)
    net.bn1.eps = 0.0
    x = torch.randint(-2, 3, (2, 3, 8, 8), generator=g).float()
    return net, x


def _hook_densities(net, x) -> dict:
    """{module name: non-zeros / elements of its input}, counted by forward hooks on every
    conv and linear while torch runs the net (the oracle)."""
    seen, hooks = {}, []
    for name, m in net.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            hooks.append(m.register_forward_hook(
                lambda _m, args, _o, name=name: seen.__setitem__(
                    name, int(torch.count_nonzero(args[0])) / args[0].numel())))
    with torch.no_grad():
        net(x)
    for h in hooks:
        h.remove()
    return seen


@pytest.fixture(scope="module")
def traced():
    net, x = _integer_net()
    return net, x, load(net, input_shape="1x3x8x8", graph=True)


@pytest.fixture(scope="module")
def exported(traced):
    pytest.importorskip("onnx")
    net, x, _ = traced
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x[:1],), buf, dynamo=False, opset_version=17)
    return buf.getvalue()


def _onnx_graph(data):
    import onnx
    return load(onnx.load_model_from_string(data), graph=True)


def _graph_of(net, x, which: str, input_shape: str):
    """``net``'s graph through the PyTorch importer (``which="torch"``) or through its
    ONNX export on ``x`` (opset 17)."""
    if which == "torch":
        return load(net, input_shape=input_shape, graph=True)
    pytest.importorskip("onnx")
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x,), buf, dynamo=False, opset_version=17)
    return _onnx_graph(buf.getvalue())


def _densities(model) -> dict:
    return {l.name: (l.sparsity.input if l.sparsity else 1.0,
                     l.sparsity.output if l.sparsity else 1.0) for l in model.mac_layers}


def test_the_interpreter_computes_what_torch_computes(traced):
    """The graph run on the reference kernels gives torch's output bit for bit on exact
    (integer) arithmetic, and within fp32 rounding on random float weights and input."""
    net, x, g = traced
    out = run(g, x.numpy()).values[g.outputs[0]]
    with torch.no_grad():
        ref = net(x).numpy()
    assert np.array_equal(out, ref) and np.abs(ref).max() > 0
    torch.manual_seed(0)
    fnet = Net().eval()
    with torch.no_grad():
        fnet.bn1.running_mean.normal_()
        fnet.bn1.running_var.uniform_(0.5, 2)
    fx = torch.randn(3, 3, 8, 8)
    fg = load(fnet, input_shape="1x3x8x8", graph=True)
    out = run(fg, fx.numpy()).values[fg.outputs[0]]
    with torch.no_grad():
        ref = fnet(fx).numpy()
    assert out.shape == ref.shape == (3, 5)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)


def test_input_densities_equal_those_torch_hooks_count(traced):
    """Every conv / linear's measured input density is exactly the share of non-zeros a
    forward hook counts in torch (exact arithmetic: the same zeros)."""
    net, x, g = traced
    m = measure(g, x.numpy())
    hooks = _hook_densities(net, x)
    got = _densities(m)
    assert set(got) == set(hooks) == {"conv1", "conv2", "dw", "fc", "head", "fc1", "fc2"}
    for name, d in hooks.items():
        assert got[name][0] == d, name
    assert min(d for d, _ in got.values()) < 1   # ReLU zeros were met
    # the input sample is conv1's input; the ReLU'd head is fc1's (through a flatten)
    assert got["conv1"][0] == np.count_nonzero(x.numpy()) / x.numel()


def test_onnx_export_of_the_same_network_gives_the_same_densities(traced, exported):
    """The network exported by torch.onnx (BatchNorm folded into conv1 by the exporter)
    and measured through the ONNX importer: every MAC layer's input and output density is
    the PyTorch path's, layer by layer in order."""
    net, x, g = traced
    from_torch = list(_densities(measure(g, x.numpy())).values())
    go = _onnx_graph(exported)
    out = run(go, x.numpy()).values[go.outputs[0]]
    with torch.no_grad():
        assert np.array_equal(out, net(x).numpy())
    from_onnx = list(_densities(measure(go, x.numpy())).values())
    assert from_onnx == from_torch and len(from_onnx) == 7


@pytest.mark.parametrize("which", ["torch", "onnx"])
def test_a_producers_output_density_is_its_consumers_input_density(traced, request, which):
    """Wherever a MAC layer's input (its first source) is another MAC layer's output,
    directly or through a view, the two measured densities are one number; outputs are
    measured after the fused BatchNorm, bias and ReLU (conv1's output is h)."""
    net, x, g = traced
    g = g if which == "torch" else _onnx_graph(request.getfixturevalue("exported"))
    m = measure(g, x.numpy())
    by = {l.name: l for l in m.layers}
    links = 0
    for l in m.mac_layers:
        src = by.get(l.sources[0]) if l.sources else None
        if isinstance(src, MacLayer):
            assert l.sparsity.input == src.sparsity.output, (src.name, l.name)
            links += 1
    assert links == 3   # conv1 -> conv2, head -> fc1 (a flatten between), fc1 -> fc2
    if which == "torch":
        with torch.no_grad():
            h = torch.relu(net.bn1(net.conv1(x)))
        assert by["conv1"].sparsity.output == int(torch.count_nonzero(h)) / h.numel() < 1


def test_load_model_and_the_cli_measure_onnx_and_pytorch(traced, exported, tmp_path, capsys):
    """API load_model(..., input_sample=) on an ONNX file and an nn.Module give the same
    densities; without a sample every layer is as before (no activation density, the same
    Model as the one kept in the graph); the CLI runs an ONNX file with --input-sample."""
    net, x, _ = traced
    onnx_path, npy = tmp_path / "net.onnx", tmp_path / "x.npy"
    onnx_path.write_bytes(exported)
    np.save(npy, x.numpy())
    a = api.load_model(str(onnx_path), input_sample=str(npy))
    b = api.load_model(net, input_shape="1x3x8x8", input_sample=x.numpy())
    assert list(_densities(a).values()) == list(_densities(b).values())
    plain = api.load_model(str(onnx_path))
    assert load(str(onnx_path), graph=True).model == plain   # keeping the graph changes nothing
    assert load(net, input_shape="1x3x8x8", graph=True).model == load(net, input_shape="1x3x8x8")
    assert all(l.sparsity is None or (l.sparsity.input, l.sparsity.output) == (1.0, 1.0)
               for l in plain.mac_layers)
    assert [l.name for l in plain.layers] == [l.name for l in a.layers]
    assert main(["run", "--arch", "tpu_v1", "--model", str(onnx_path), "--input-sample",
                 str(npy), "--quiet"]) == 0


def test_an_explicit_pad_folded_into_a_conv_is_not_counted_in_its_input():
    """A ZeroPad2d read only by a conv folds into its padding: the layer's input is the
    unpadded tensor, so its density is the sample's 48 / 64, not the padded one's 48 /
    100; the conv runs on the padded tensor (torch's output)."""
    net = nn.Sequential(nn.ZeroPad2d(1), nn.Conv2d(1, 2, 3)).eval()
    x = np.ones((1, 1, 8, 8), np.float32)
    x[:, :, :2] = 0
    g = load(net, input_shape="1x1x8x8", graph=True)
    (conv,) = g.model.layers
    assert conv.padding == (1, 1) and g.layers[conv.name][0] == (g.inputs[0][0],)
    assert measure(g, x).layers[0].sparsity.input == 48 / 64
    with torch.no_grad():
        np.testing.assert_allclose(run(g, x).values[g.outputs[0]],
                                   net(torch.as_tensor(x)).numpy(), rtol=1e-6, atol=1e-6)


class Ops(nn.Module):
    """The vector ops and views of the neutral graph around convs, linears and MatMuls:
    hardswish, both average-pool divisors, nearest upsampling, concat, an SE gate
    (gap, relu6, sigmoid, mul), leaky ReLU, a scalar subtraction, flatten / transpose
    to tokens, GELU (torch only: the ONNX importer has no Erf), LayerNorm, attention
    (MatMul of two activations, a scalar division, softmax), ELU, SiLU, tanh."""

    def __init__(self, gelu):
        super().__init__()
        self.gelu = gelu
        self.c1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.hs = nn.Hardswish()
        self.ap = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.ap2 = nn.AvgPool2d(3, stride=1, padding=1)
        self.se1, self.se2 = nn.Conv2d(16, 4, 1), nn.Conv2d(4, 16, 1)
        self.ln = nn.LayerNorm(16)
        self.q, self.k, self.v = nn.Linear(16, 16), nn.Linear(16, 16), nn.Linear(16, 16)
        self.out = nn.Linear(1024, 3)
        self.act, self.elu = nn.LeakyReLU(0.1), nn.ELU()

    def forward(self, x):
        a = self.hs(self.c1(x))
        b = nn.functional.interpolate(self.ap(a), scale_factor=2, mode="nearest")
        y = torch.cat([a, self.ap2(b)], 1)
        w = torch.sigmoid(self.se2(nn.functional.relu6(self.se1(
            nn.functional.adaptive_avg_pool2d(y, 1)))))
        t = (self.act(y * w) - 0.25).flatten(2).transpose(1, 2)
        t = self.ln(nn.functional.gelu(t) if self.gelu else t)
        att = torch.softmax(self.q(t) @ self.k(t).transpose(-2, -1) / 4.0, dim=-1)
        t = self.elu(att @ self.v(t)) + nn.functional.silu(t)
        return self.out(t.flatten(1)), torch.tanh(t)


@pytest.mark.parametrize("which", ["torch", "onnx"])
def test_every_vector_op_runs_as_torch_computes(which):
    """Ops on random float weights and input: both outputs within fp32 rounding of
    torch's, through the PyTorch importer and through the ONNX export."""
    torch.manual_seed(0)
    net = Ops(gelu=which == "torch").eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        refs = [r.numpy() for r in net(x)]
    g = _graph_of(net, x[:1], which, "1x3x16x16")
    values = run(g, x.numpy()).values
    assert len(g.outputs) == 2
    for t, ref in zip(g.outputs, refs):
        assert values[t].shape == ref.shape
        np.testing.assert_allclose(values[t], ref, rtol=1e-5, atol=1e-5)
    m = measure(g, x.numpy())
    se1, se2 = (l for l in m.mac_layers if l.name.split("/")[1 if which == "onnx" else 0]
                in ("se1", "se2"))
    assert se1.sparsity.output == se2.sparsity.input < 1   # relu6's zeros, linked


def test_an_onnx_file_with_external_data_is_measured_from_its_data_file(traced, exported,
                                                                       tmp_path):
    """Weights saved as an external data file next to the .onnx: measured as embedded
    ones; without the data file, one line naming the node and the weight."""
    import onnx
    net, x, _ = traced
    path = tmp_path / "ext.onnx"
    onnx.save_model(onnx.load_model_from_string(exported), str(path),
                    save_as_external_data=True, all_tensors_to_one_file=True,
                    location="ext.data", size_threshold=0)
    assert (tmp_path / "ext.data").stat().st_size > 0
    embedded = api.load_model(net, input_shape="1x3x8x8", input_sample=x.numpy())
    got = api.load_model(str(path), input_sample=x.numpy())
    assert list(_densities(got).values()) == list(_densities(embedded).values())
    (tmp_path / "ext.data").unlink()
    with pytest.raises(WorkloadError, match=r"node '/conv1/Conv' \(conv\).* has no value"):
        api.load_model(str(path), input_sample=x.numpy())


def _one_line(capsys, argv, *words):
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Fix:" in err[0] and "Traceback" not in err[0], err
    for w in words:
        assert w in err[0], (w, err[0])


def test_bad_samples_and_models_are_one_line_naming_the_file(exported, tmp_path, capsys):
    """A sample of the wrong shape, with NaN (or beyond fp32), not an .npy file, or
    missing; a zoo or YAML model (no weights); a sample and an input density both: exit 2
    and one line naming the file (or the two options) and the fix."""
    onnx_path = tmp_path / "net.onnx"
    onnx_path.write_bytes(exported)
    run_ = ["run", "--arch", "tpu_v1", "--model", str(onnx_path), "--quiet", "--input-sample"]
    x = np.ones((1, 3, 8, 8), np.float32)
    cases = [(x[:, :2], "does not match"), (np.full_like(x, np.nan), "finite"),
             (np.full_like(x, 1e39, dtype=np.float64), "finite")]
    for i, (arr, words) in enumerate(cases):
        bad = tmp_path / f"bad{i}.npy"
        np.save(bad, arr)
        _one_line(capsys, run_ + [str(bad)], str(bad), words)
    text = tmp_path / "text.npy"
    text.write_text("not numpy")
    _one_line(capsys, run_ + [str(text)], str(text), "not a readable .npy")
    _one_line(capsys, run_ + [str(tmp_path / "missing.npy")], "missing.npy")
    good = tmp_path / "x.npy"
    np.save(good, x)
    table = tmp_path / "t.yaml"
    table.write_text("layers:\n  - {name: c, type: conv, C: 3, K: 4, H: 8, W: 8, R: 3, S: 3}\n")
    for model in ("resnet18", str(table)):
        _one_line(capsys, ["run", "--arch", "tpu_v1", "--model", model, "--quiet",
                           "--input-sample", str(good)], "no weights", "--input-density")
    _one_line(capsys, run_ + [str(good), "--input-density", "0.5"], "both --input-sample "
              "and --input-density")


def test_ops_the_interpreter_cannot_run_are_one_line_naming_node_and_op(tmp_path):
    """A slice of the batch axis (the sample's batch is not the model's), an op passed
    through unsupported and a shape-only ONNX weight: a WorkloadError naming the node and
    what it cannot run."""
    class Sliced(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)

        def forward(self, x):
            return self.conv(x[:1])

    x = np.ones((1, 3, 8, 8), np.float32)
    with pytest.raises(WorkloadError) as e:
        api.load_model(Sliced(), input_shape="1x3x8x8", input_sample=x)
    msg = str(e.value)
    assert "'getitem'" in msg and "node 'getitem' (free)" in msg and "\n" not in msg
    onnx = pytest.importorskip("onnx")
    h = onnx.helper
    f = onnx.TensorProto.FLOAT
    graph = h.make_graph(
        [h.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1, 1, 1, 1])], "g",
        [h.make_tensor_value_info("x", f, [1, 3, 8, 8]),
         h.make_tensor_value_info("w", f, [4, 3, 3, 3])],   # a weight declared, no data
        [h.make_tensor_value_info("y", f, [1, 4, 8, 8])])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    with pytest.raises(WorkloadError) as e:
        api.load_model(model, input_sample=x)
    assert "node 'conv' (conv)" in str(e.value) and "'w' has no value" in str(e.value)
    graph = h.make_graph(
        [h.make_node("Conv", ["x", "w"], ["c"], name="conv"),
         h.make_node("Erf", ["c"], ["y"], name="erf")], "g",
        [h.make_tensor_value_info("x", f, [1, 3, 8, 8])],
        [h.make_tensor_value_info("y", f, [1, 4, 8, 8])],
        [onnx.numpy_helper.from_array(np.ones((4, 3, 1, 1), np.float32), "w")])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    with pytest.warns(UserWarning, match="pass-through"), pytest.raises(WorkloadError) as e:
        api.load_model(model, input_sample=x, allow_unsupported=True)
    assert "node 'erf' (pass)" in str(e.value) and "'Erf'" in str(e.value)


class Views(nn.Module):
    """Views that select elements: YOLOv5's Focus (strided slices of H and W), a channel
    split by ``chunk`` (ShuffleNet's) or by slices, ``narrow``, ``select`` or an integer
    index, and a channel slice."""

    def __init__(self, chunk):
        super().__init__()
        self.chunk = chunk
        self.c1 = nn.Conv2d(12, 8, 3, padding=1)
        self.c2 = nn.Conv2d(4, 4, 1)
        self.c3 = nn.Conv2d(2, 4, 1)

    def forward(self, x):
        f = torch.cat([x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2],
                       x[..., 1::2, 1::2]], 1)
        y = torch.relu(self.c1(f))
        a, b = y.chunk(2, dim=1) if self.chunk else (y[:, :4], y[:, 4:])
        z = torch.relu(self.c2(a)) + b.narrow(1, 0, 4)
        s = z.select(2, 0).unsqueeze(2) if self.chunk else z[:, :, 0:1]
        return self.c3(s[:, 1:3]), z[:, 2]


@pytest.mark.parametrize("which, chunk", [("torch", True), ("torch", False), ("onnx", False),
                                         ("onnx", True)])
def test_views_that_select_elements_run_as_torch_computes(which, chunk):
    """Slices, chunk / narrow / select / integer indexes (PyTorch) and Slice / Gather
    (their ONNX export; ``chunk`` exports as Slices whose ends the exporter computes from
    the shape, folded by the importer) run: the outputs are torch's, and each conv's
    measured input density is the share torch's forward hooks count (on a batch of 2,
    the model imported at batch 1)."""
    torch.manual_seed(0)
    net = Views(chunk).eval()
    x = torch.randn(2, 3, 8, 8)
    g = _graph_of(net, x[:1], which, "1x3x8x8")
    values = run(g, x.numpy()).values
    with torch.no_grad():
        refs = net(x)
    for t, ref in zip(g.outputs, refs):
        np.testing.assert_allclose(values[t], ref.numpy(), rtol=1e-5, atol=1e-5)
    hooks = _hook_densities(net, x)
    got = {l.name.split("/")[1] if which == "onnx" else l.name:
           (l.sparsity.input if l.sparsity else 1.0) for l in measure(g, x.numpy()).mac_layers}
    assert got == pytest.approx(hooks, abs=1e-12) and min(got.values()) < 1


def test_an_onnx_split_runs_each_part():
    """An ONNX Split of an activation (two outputs) is one view a part: each conv reads its
    own half of the ReLU'd channels, computed and measured as numpy does."""
    onnx = pytest.importorskip("onnx")
    h, nh = onnx.helper, onnx.numpy_helper
    f = onnx.TensorProto.FLOAT
    rng = np.random.default_rng(0)
    w1, w2 = (rng.standard_normal((4, 4, 1, 1)).astype(np.float32) for _ in range(2))
    graph = h.make_graph(
        [h.make_node("Relu", ["x"], ["r"], name="relu"),
         h.make_node("Split", ["r", "sp"], ["a", "b"], name="split", axis=1),
         h.make_node("Conv", ["a", "w1"], ["ca"], name="ca"),
         h.make_node("Conv", ["b", "w2"], ["cb"], name="cb"),
         h.make_node("Add", ["ca", "cb"], ["y"], name="add")], "g",
        [h.make_tensor_value_info("x", f, [1, 8, 4, 4])],
        [h.make_tensor_value_info("y", f, [1, 4, 4, 4])],
        [nh.from_array(w1, "w1"), nh.from_array(w2, "w2"),
         nh.from_array(np.array([4, 4], np.int64), "sp")])
    g = load(h.make_model(graph, opset_imports=[h.make_opsetid("", 17)]), graph=True)
    x = rng.standard_normal((2, 8, 4, 4)).astype(np.float32)
    r = np.maximum(x, 0)
    ref = (np.einsum("nchw,kc->nkhw", r[:, :4], w1[:, :, 0, 0])
           + np.einsum("nchw,kc->nkhw", r[:, 4:], w2[:, :, 0, 0]))
    np.testing.assert_allclose(run(g, x).values[g.outputs[0]], ref, rtol=1e-5, atol=1e-5)
    got = {l.name: l.sparsity.input for l in measure(g, x).mac_layers}
    assert got == {"ca": (r[:, :4] != 0).mean(), "cb": (r[:, 4:] != 0).mean()}


class Attn(nn.Module):
    """Tokens through ReLU'd query and key projections: the MatMul q @ k^T reads two
    activations with zeros, the second through a transpose."""

    def __init__(self):
        super().__init__()
        self.q, self.k = nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, t):
        return torch.relu(self.q(t)) @ torch.relu(self.k(t)).transpose(-2, -1)


@pytest.mark.parametrize("which", ["torch", "onnx"])
def test_a_matmuls_second_operand_is_measured(which):
    """A MatMul of two activations gets both operands' densities: its input the first's,
    its weight density the second's (the share torch counts in relu(k(t))), marked
    counted (met on the sample, not asked: no sparsity warning)."""
    torch.manual_seed(3)
    net = Attn().eval()
    t = torch.randn(1, 6, 8)
    m = measure(_graph_of(net, t, which, "1x6x8"), t.numpy())
    (mm,) = [l for l in m.mac_layers if l.weights_are_activations]
    with torch.no_grad():
        q, k = torch.relu(net.q(t)), torch.relu(net.k(t))
    assert mm.sparsity.input == int(torch.count_nonzero(q)) / q.numel() < 1
    assert mm.sparsity.weight == int(torch.count_nonzero(k)) / k.numel() < 1
    assert mm.sparsity.counted
