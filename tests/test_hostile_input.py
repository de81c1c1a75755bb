"""Hostile input (issue 17, part A): every reader refuses what it cannot read honestly with
exit 2 and one line naming the file, the key path or line and the fix, never a traceback:
bounded YAML (alias bombs, deep nesting, foreign tags), numbers (int64, finite, in range,
with units), counts that would leave int64, and strict layer-table fields. The property
tests draw inputs for every reader and run them through the CLI in-process (``main``)."""
from __future__ import annotations

import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tilesim import _input, arch, workloads
from tilesim.cli import main
from tilesim.workloads import ir

NVDLA = (arch.loader.PRESET_DIR / "nvdla_small.yaml").read_text()
TINY = "name: tiny\nlayers:\n  - {name: c1, type: conv, C: 3, H: 8, W: 8, K: 4, R: 3, padding: 1}\n"
CSV_HEADER = ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
              "Num Filter, Strides,\n")
CFG = ("[general]\nrun_name = t\n\n[architecture_presets]\nArrayHeight: 8\nArrayWidth: 8\n"
       "IfmapSramSzkB: 64\nFilterSramSzkB: 64\nOfmapSramSzkB: 64\nDataflow: ws\nBandwidth: 10\n")
SPEC = ("version: 1\nname: t\nbase: nvdla_small\nmodels: [tiny.yaml]\n"
        "vary:\n  compute.arrays[0].rows: [8]\nsearch: {candidates: 10}\n")
#: 254 bytes that expand to 9**7 (4.8e6) strings; one level more is 4.3e7
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{b}: &{b} [{', '.join(['*' + a] * 9)}]\n" for a, b in zip("abcdef", "bcdefg"))


def cli(argv, capsys):
    """(exit code, stdout, stderr) of ``tilesim ARGV`` run in this process."""
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as e:   # argparse
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def refused(rc, err, *needles):
    """Exit 2, no traceback, one error line holding every needle."""
    assert rc == 2, err
    assert "Traceback" not in err, err
    errors = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(errors) == 1, err
    for n in needles:
        assert n in errors[0], f"{n!r} not in {errors[0]!r}"
    return errors[0]


def loads_or_refused(rc, err):
    """The property every drawn input must have: it ran (0) or was refused cleanly (2)."""
    assert "Traceback" not in err, err
    assert rc in (0, 2), (rc, err)
    if rc == 2:
        assert len([ln for ln in err.splitlines() if "error:" in ln]) == 1, err


def run_arch(tmp_path, capsys, text, model=TINY):
    (tmp_path / "a.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "m.yaml").write_text(model, encoding="utf-8")
    return cli(["run", "--arch", tmp_path / "a.yaml", "--model", tmp_path / "m.yaml",
                "--quiet", "--search-budget", "5"], capsys)


def run_model(tmp_path, capsys, name, text, *extra):
    p = tmp_path / name
    p.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return cli(["run", "--arch", "nvdla_small", "--model", p, "--quiet", "--search-budget",
                "5", *extra], capsys)


def run_sweep(tmp_path, capsys, spec):
    (tmp_path / "tiny.yaml").write_text(TINY)
    (tmp_path / "s.yaml").write_text(spec, encoding="utf-8")
    return cli(["sweep", tmp_path / "s.yaml", "--out", tmp_path / "out", "--workers", "1",
                "--quiet", "--yes"], capsys)


# ---- resource exhaustion ------------------------------------------------------------------
@pytest.mark.parametrize("where", ["arch", "sweep"])
@pytest.mark.parametrize("levels", [7, 8])
def test_alias_bomb_refused_in_bounded_memory(tmp_path, capsys, where, levels):
    """A 'billion laughs' of under 300 bytes is refused before it is expanded: the whole
    command peaks under 50 MB of Python allocations (it took 1.25 GB and 8.5 s before)."""
    text = BOMB if levels == 7 else BOMB + "h: &h [" + ", ".join(["*g"] * 9) + "]\n"
    assert len(BOMB) < 300
    tracemalloc.start()
    try:
        rc, _, err = (run_arch(tmp_path, capsys, text) if where == "arch"
                      else run_sweep(tmp_path, capsys, text))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    refused(rc, err, "aliases expand", f"{_input.ALIAS_BUDGET:,}", "Fix:")
    assert peak < 50e6, f"peak {peak / 1e6:.0f} MB"


def test_alias_bomb_in_layer_table_refused_at_the_first_alias(tmp_path, capsys):
    """A layer table is plain data: its first alias is refused, naming the line."""
    text = "name: t\nx: &a [1, 2]\nlayers:\n  - *a\n"
    refused(*run_model(tmp_path, capsys, "t.yaml", text)[::2], "t.yaml:2:", "anchor &a")
    refused(*run_model(tmp_path, capsys, "t.yaml", TINY + BOMB)[::2], "anchor &a")


@pytest.mark.parametrize("nest", [lambda n: "[" * n + "]" * n,
                                  lambda n: "{a: " * n + "1" + "}" * n,
                                  lambda n: "".join(f"{' ' * i}- \n" for i in range(n))])
@pytest.mark.parametrize("depth", [_input.MAX_DEPTH + 1, 5000])
def test_deep_nesting_refused(tmp_path, capsys, nest, depth):
    """Nesting beyond MAX_DEPTH is refused (5,000 levels gave a RecursionError), in an
    architecture, a layer table and a sweep spec."""
    text = "x: " + nest(depth) if nest(1).startswith(("[", "{")) else nest(depth)
    refused(*run_arch(tmp_path, capsys, text)[::2], "a.yaml:", f"deeper than {_input.MAX_DEPTH}")
    refused(*run_model(tmp_path, capsys, "t.yaml", text)[::2], "t.yaml:", "deeper than")
    refused(*run_sweep(tmp_path, capsys, text)[::2], "s.yaml:", "deeper than")


def test_nesting_at_the_limit_is_read():
    """MAX_DEPTH levels are fine (the limit refuses only what is deeper)."""
    n = _input.MAX_DEPTH
    data, _ = _input.read_yaml("[" * n + "]" * n, "<t>", arch.ArchError)
    for _ in range(n - 1):
        data = data[0]
    assert data == []


def test_recursive_alias_refused():
    with pytest.raises(arch.ArchError, match="contains it"):
        _input.read_yaml("a: &a [1, *a]\n", "<t>", arch.ArchError)


# ---- tags, merge keys, YAML 1.1 surprises --------------------------------------------------
TAGGED = ["!!python/name:os.system", "!!python/object/apply:os.system ['true']",
          "!!binary aGVsbG8=", "!!set {a, b}", "!!omap [a: 1]", "!foo bar"]


@pytest.mark.parametrize("value", TAGGED)
def test_foreign_tags_refused(tmp_path, capsys, value):
    """Tags other than YAML's core ones are refused with the key path (they were a
    traceback, or arbitrary objects)."""
    refused(*run_arch(tmp_path, capsys, NVDLA.replace("name: nvdla_small",
                                                     f"name: {value}"))[::2],
            "a.yaml:5:", "name: tag", "Fix: remove the tag")
    table = TINY.replace("name: tiny", f"name: {value}")
    refused(*run_model(tmp_path, capsys, "t.yaml", table)[::2], "t.yaml:1:", "tag")
    refused(*run_sweep(tmp_path, capsys, SPEC.replace("name: t", f"name: {value}"))[::2],
            "s.yaml:2:", "tag")


@pytest.mark.parametrize("table,needle", [
    ("name: t\nbase: &b {type: fc, C: 4, K: 2}\nlayers:\n  - {name: f, <<: *b}\n", "anchor &b"),
    ("name: t\nlayers:\n  - {name: f, type: fc, C: 4, K: 2, <<: {bias: true}}\n",
     "a key must be a plain name"),
    ("name: t\nlayers:\n  - &l {name: f, type: fc, C: 4, K: 2}\n  - *l\n", "anchor &l"),
])
def test_layer_table_is_plain_data(tmp_path, capsys, table, needle):
    """Anchors, aliases and merge keys in a layer table are refused (they were tracebacks)."""
    refused(*run_model(tmp_path, capsys, "t.yaml", table)[::2], "t.yaml:", needle, "Fix:")


@pytest.mark.parametrize("value,needle", [
    ("1:00", "base-60"), ("2_24", "'_' separators"), ("010", "octal"), ("0x10", "decimal"),
    (".inf", "finite"), ("-.inf", "finite"), (".nan", "finite"), ("1.0e+400", "finite"),
    ("1_000.5", "plain decimal"), ("9223372036854775808", "2**63 - 1"),
    ("-9223372036854775809", "2**63 - 1"), ("99999999999999999999999999", "2**63 - 1"),
])
def test_surprising_yaml_numbers_refused(tmp_path, capsys, value, needle):
    """YAML 1.1 numbers that read as something else (1:00 as 60, 2_24 as 224, 010 as 8),
    non-finite ones and integers beyond int64 are refused with the key path."""
    text = NVDLA.replace("rows: 8", f"rows: {value}")
    assert text != NVDLA
    refused(*run_arch(tmp_path, capsys, text)[::2], "a.yaml:", "compute.arrays[0].rows",
            needle)
    table = TINY.replace("C: 3", f"C: {value}")
    refused(*run_model(tmp_path, capsys, "t.yaml", table)[::2], "t.yaml:3:",
            "layers[0].C", needle)


@pytest.mark.parametrize("value", ["yes", "no", "on", "off", "y", "N"])
def test_yaml11_booleans_refused(tmp_path, capsys, value):
    """'yes', 'no', 'on', 'off' (booleans in YAML 1.1 only) are refused: write true/false."""
    table = TINY.replace("padding: 1", f"padding: 1, bias: {value}")
    refused(*run_model(tmp_path, capsys, "t.yaml", table)[::2], "t.yaml:3:", "layers[0]",
            "bias", "true or false")


# ---- numbers and units in an architecture -------------------------------------------------
@pytest.mark.parametrize("old,new,needles", [
    ("clock: 1 GHz", "clock: 800", ["clock", "has no unit", "'800 MHz'"]),
    ("bandwidth: 8 GB/s", "bandwidth: 25.6", ["memory[0].bandwidth", "no unit", "B/cycle"]),
    ("size: 128 KiB", "size: 131072", ["memory[1].size", "no unit", "'128 KiB'"]),
    ("size: 128 KiB", "size: 1e30 B", ["memory[1].size", "2**50"]),
    ("clock: 1 GHz", "clock: 1e-9 Hz", ["clock", "1000 Hz"]),
    ("clock: 1 GHz", "clock: 1e400 Hz", ["clock", "finite"]),
    ("bandwidth: 8 GB/s", "bandwidth: 1e-3 kB/s", ["memory[0].bandwidth", "1000 B/s"]),
    ("bandwidth: 8 GB/s", "bandwidth: 2 MB/s", ["memory[0].bandwidth", "0.01 B/cycle"]),
    ("rows: 8", "rows: 1000000000", ["compute.arrays[0].rows", "65536"]),
    ("rows: 8", "rows: 9223372036854775807", ["compute.arrays[0].rows", "65536"]),
])
def test_arch_numbers_checked(tmp_path, capsys, old, new, needles):
    """Sizes, clocks and bandwidths need units; absurd or unrepresentable values are
    refused naming the key path and the limit."""
    assert old in NVDLA
    refused(*run_arch(tmp_path, capsys, NVDLA.replace(old, new, 1))[::2], "a.yaml:", *needles)


@pytest.mark.parametrize("argv,needle", [
    (["--batch", "9223372036854775808"], "2**63 - 1"), (["--batch", "0"], "must be >= 1"),
    (["--batch", "1_0"], "'_'"), (["--batch", "2000000000000"], "2**50"),
    (["--search-budget", "99999999999999999999"], "2**63 - 1"),
])
def test_cli_integers_checked(tmp_path, capsys, argv, needle):
    """Command-line integers go through the same checker (no OverflowError)."""
    rc, _, err = run_model(tmp_path, capsys, "t.yaml", TINY, *argv)
    refused(rc, err, needle)


# ---- counts that would leave int64 ---------------------------------------------------------
@pytest.mark.parametrize("table,needle", [
    ("{name: big, type: gemm, M: 2097152, N: 2097152, K: 2097152}", "MACs = 9.22e+18"),
    ("{name: big, type: conv, C: 65536, H: 65536, W: 65536, K: 65536, R: 1}", "MACs"),
    ("{name: big, type: fc, C: 4294967296, K: 4294967296}", "MACs = 1.84e+19"),
    ("{name: big, type: add, C: 1048576, H: 1048576, W: 1048576}", "elements"),
])
def test_layer_counts_beyond_the_limit_refused(tmp_path, capsys, table, needle):
    """A layer whose MACs, elements or weights exceed 2**50 is refused naming the layer (a
    ~1e19-MAC layer wrapped into negative bytes and cycles with exit 0)."""
    text = "name: t\nlayers:\n  - " + table + "\n"
    refused(*run_model(tmp_path, capsys, "t.yaml", text)[::2], "t.yaml:3:", "'big'", needle,
            "2**50")


def test_batch_that_pushes_a_count_over_the_limit_is_refused(tmp_path, capsys):
    """A batch is a multiplier: 2**30 samples of a 2**21-MAC layer is refused."""
    text = "name: t\nlayers:\n  - {name: f, type: fc, C: 2048, K: 1024}\n"
    rc, _, err = run_model(tmp_path, capsys, "t.yaml", text, "--batch", str(2 ** 30))
    refused(rc, err, "'f'", "MACs", "2**50")


def test_a_layer_at_the_limit_is_accepted():
    """The limit is inclusive: 2**50 MACs exactly is a valid layer (counts exact)."""
    layer = ir.gemm("g", 2 ** 20, 2 ** 15, 2 ** 15)
    assert layer.macs == _input.COUNT_MAX
    with pytest.raises(workloads.WorkloadError, match="MACs"):
        ir.gemm("g", 2 ** 20 + 1, 2 ** 15, 2 ** 15)


def test_a_network_beyond_the_limit_in_all_is_refused(tmp_path, capsys):
    """Layers within the limit that add up beyond it are refused (totals and bytes at the
    slowest bandwidth would leave int64); exactly at the limit is fine."""
    half = ir.gemm("a", 2 ** 19, 2 ** 15, 2 ** 15)
    assert half.macs == _input.COUNT_MAX // 2
    assert workloads.Model("m", (half, ir.gemm("b", 2 ** 19, 2 ** 15, 2 ** 15))).macs == \
        _input.COUNT_MAX
    text = "name: t\nlayers:\n" + "".join(
        f"  - {{name: g{i}, type: gemm, M: 524288, N: 32768, K: 32768}}\n" for i in range(3))
    refused(*run_model(tmp_path, capsys, "t.yaml", text)[::2], "model 't'", "1.69e+15",
            "2**50", "smaller batch")


# ---- strict layer-table fields -------------------------------------------------------------
@pytest.mark.parametrize("old,new,needles", [
    ("padding: 1", "padding: 1, stride: 1.9", ["stride = 1.9", "whole number"]),
    ("padding: 1", "padding: 1, stride: [1, 1.5]", ["stride = 1.5", "whole number"]),
    ("padding: 1", "padding: 1.0", ["padding = 1.0", "whole number"]),
    ("padding: 1", 'padding: 1, bias: "no"', ["bias = 'no'", "true or false"]),
    ("padding: 1", "padding: 1, bias: 0", ["bias = 0", "true or false"]),
    ("padding: 1", "padding: 1, activation: bogus", ["unknown activation 'bogus'", "relu"]),
    ("padding: 1", "padding: 1, activation: 3", ["unknown activation 3"]),
    ("name: c1", "name: ''", ["name is empty"]),
    ("name: c1", "name: '  '", ["name is empty"]),
    ("C: 3", 'C: "3"', ["C = '3'", "whole number"]),
])
def test_strict_layer_table_fields(tmp_path, capsys, old, new, needles):
    """Layer-table values are taken as written or refused: no truncated stride, no
    truthy 'no', no unknown activation, no empty name, no number given as text."""
    refused(*run_model(tmp_path, capsys, "t.yaml", TINY.replace(old, new))[::2], "t.yaml:3:",
            "layers[0]", *needles, "Fix:")


def test_strict_fields_still_read_what_is_right(tmp_path, capsys):
    """A pair stride, bias true and a known activation load as written."""
    text = TINY.replace("padding: 1", "padding: [1, 1], stride: [1, 2], bias: true, "
                        "activation: relu6")
    (tmp_path / "t.yaml").write_text(text)
    layer = workloads.load(tmp_path / "t.yaml").layers[0]
    assert (layer.stride, layer.padding, layer.bias, layer.activation) == \
        ((1, 2), (1, 1), True, "relu6")


@pytest.mark.parametrize("row,needles", [
    ("Conv1, 2_24, 32, 3, 3, 16, 32, 1,", ["topo.csv:2:", "IFMAP Height = '2_24'", "'_'"]),
    ("Conv1, 32, 0x20, 3, 3, 16, 32, 1,", ["IFMAP Width = '0x20'", "not an integer"]),
    ("Conv1, 32, 32, 3, 3, 16, 32, 1e0,", ["Strides = '1e0'", "not an integer"]),
    ("Conv1, 32, 32, 3, 3, ١٦, 32, 1,", ["Channels", "not an integer"]),
    ("Conv1, 32, 32, 3, 3, 16, 9223372036854775808, 1,", ["Num Filter", "2**50"]),
    (", 32, 32, 3, 3, 16, 32, 1,", ["topo.csv:2:", "name", "empty"]),
    ("Conv1, 32, 32, 3, 3, 16, 32, 1, " + "x" * 140_000, ["topo.csv:2:", "field larger"]),
    ("Conv1, 32, 32, 3\x00, 3, 16, 32, 1,", ["topo.csv:2:", "not an integer"]),
])
def test_scalesim_csv_cells_strict(tmp_path, capsys, row, needles):
    """CSV cells are plain decimal integers within the limits ('2_24' was 224, Arabic-
    Indic digits were numbers); a field over csv's 128 KiB limit or a NUL byte is a clean
    error (it was a traceback)."""
    rc, _, err = run_model(tmp_path, capsys, "topo.csv", CSV_HEADER + row + "\n")
    refused(rc, err, *needles, "Fix:")


def run_cfg(tmp_path, capsys, text):
    (tmp_path / "m.yaml").write_text(TINY)
    p = tmp_path / "s.cfg"
    p.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return cli(["run", "--arch", p, "--model", tmp_path / "m.yaml", "--quiet",
                "--search-budget", "5"], capsys)


def test_scalesim_cfg_bom_and_percent_accepted(tmp_path):
    """A UTF-8 BOM is skipped and '%' is plain text (both were tracebacks): the config
    loads to the same architecture as the plain one, the name holding its '%'."""
    plain = tmp_path / "plain.cfg"
    plain.write_text(CFG)
    bom = tmp_path / "bom.cfg"
    bom.write_bytes(b"\xef\xbb\xbf" + CFG.replace("run_name = t", "run_name = 100%_util")
                    .encode())
    a, b = arch.load(plain), arch.load(bom)
    assert b.name == "100%_util"
    assert b.model_copy(update={"name": "t", "description": a.description}) == a


@pytest.mark.parametrize("old,new,needles", [
    ("ArrayHeight: 8", "ArrayHeight: 8%", ["ArrayHeight = '8%'", "not an integer"]),
    ("ArrayHeight: 8", "ArrayHeight: 1_6", ["ArrayHeight = '1_6'", "'_'"]),
    ("ArrayHeight: 8", "ArrayHeight: 9223372036854775808", ["ArrayHeight", "2**63 - 1"]),
    ("ArrayHeight: 8", "ArrayHeight: 1000000", ["ArrayHeight", "65,536"]),
    ("IfmapSramSzkB: 64", "IfmapSramSzkB: 1000000000000000", ["IfmapSramSzkB", "1.1e+12"]),
    ("Bandwidth: 10", "Bandwidth: inf", ["Bandwidth", "not a number"]),
    ("Bandwidth: 10", "Bandwidth: 1e400", ["Bandwidth", "finite"]),
    ("Bandwidth: 10", "Bandwidth: 0.00001", ["Bandwidth", "0.01"]),
])
def test_scalesim_cfg_numbers_checked(tmp_path, capsys, old, new, needles):
    """SCALE-Sim cfg numbers keep their own units but pass the same checks."""
    refused(*run_cfg(tmp_path, capsys, CFG.replace(old, new))[::2], "s.cfg", *needles)


def test_onnx_auto_pad_must_be_an_onnx_value(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    import numpy as np
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3],
                           np.zeros(4 * 3 * 3 * 3, np.float32))
    g = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="c1", kernel_shape=[3, 3],
                          auto_pad="BOGUS")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=[w])
    p = tmp_path / "m.onnx"
    onnx.save(helper.make_model(g), p)
    with pytest.raises(workloads.WorkloadError, match="auto_pad = 'BOGUS'.*SAME_UPPER"):
        workloads.load(p)


@pytest.mark.parametrize("old,new,needles", [
    ("search: {candidates: 10}", "sampling: {method: random, points: 1, seed: -1}",
     ["sampling.seed", "greater than or equal to 0"]),
    ("search: {candidates: 10}", "search: {candidates: 99999999999999999999}",
     ["2**63 - 1"]),
    ("search: {candidates: 10}", "search: {seconds: .inf}", ["search.seconds", "finite"]),
    ("[8]", "[.nan]", ["vary", "finite"]),
    ("[8]", "[8.5]", ["vary.compute.arrays[0].rows[0]"]),
    ("[8]", "[9223372036854775807]", ["vary.compute.arrays[0].rows[0]", "65536"]),
    ("models: [tiny.yaml]", "models: [{model: tiny.yaml, batch: 0}]", ["models"]),
])
def test_sweep_numbers_checked(tmp_path, capsys, old, new, needles):
    """Sweep specs: a negative seed, unrepresentable, non-finite or out-of-range values are
    refused before any work, naming the key."""
    assert old in SPEC
    refused(*run_sweep(tmp_path, capsys, SPEC.replace(old, new))[::2], "s.yaml", *needles)
    assert not (tmp_path / "out" / "results.sqlite").exists()


@pytest.mark.parametrize("seed,needle", [(-1, "below the smallest allowed, 0"),
                                         (1.5, "not a whole number"),
                                         (2 ** 64, "2**63 - 1"), ("1", "not a number")])
def test_verify_seed_checked_where_it_enters(seed, needle):
    """The API's verify seed is checked (numpy raised on a negative one)."""
    import tilesim
    with pytest.raises(ValueError, match=needle.replace("*", "\\*")):
        tilesim.verify("nvdla_small", "resnet18", seed=seed, layers=1)


# ---- property tests: every reader, drawn inputs --------------------------------------------
TOKENS = ["0", "-1", "1.9", "2_24", "1:00", "010", "0x1F", ".inf", "-.inf", ".nan", "1e400",
          "9223372036854775808", "99999999999999999999999", "yes", "no", "~", "''", '"no"',
          "!!python/name:os.system", "!!binary aGk=", "*nope", "&a 3", "[1, 2]", "{a: 1}",
          "<<", "1e30 B", "1e-9 Hz", "800", "25.6", "1 MB", "%(x)s", "\ufeff", "bogus",
          "$\\foo$", "[[[[[[", "2 GiB", "700 MHz", "34 GB/s", "unlimited", "relu", "true",
          "4", "16", "ws"]
VALUE = st.one_of(st.sampled_from(TOKENS), st.integers(-2 ** 70, 2 ** 70).map(str),
                  st.floats().map(repr), st.text(max_size=6))
SLOW_PROPERTY = settings(max_examples=40, deadline=None)


def _replace_value(text: str, line: int, value: str) -> str:
    lines = text.splitlines(keepends=True)
    i = line % len(lines)
    key, sep, _ = lines[i].partition(": ")
    if sep:
        lines[i] = f"{key}: {value}\n"
    return "".join(lines)


@SLOW_PROPERTY
@given(edits=st.lists(st.tuples(st.integers(0, 100), VALUE), max_size=3))
def test_any_arch_yaml_loads_or_is_refused(tmp_path_factory, edits):
    """An architecture with any values put in place of its own runs or exits 2 cleanly."""
    text = NVDLA
    for line, value in edits:
        text = _replace_value(text, line, value)
    d = tmp_path_factory.mktemp("a")
    (d / "a.yaml").write_text(text, encoding="utf-8")
    (d / "m.yaml").write_text(TINY)
    loads_or_refused(*_main_quiet(["run", "--arch", d / "a.yaml", "--model", d / "m.yaml",
                                   "--quiet", "--search-budget", "5"]))


#: the most Python memory one drawn input may take (tracemalloc peak)
PEAK_LIMIT = 200e6


def _main_quiet(argv):
    """(exit code, stderr) of ``tilesim ARGV`` in this process, its Python allocations
    bounded by PEAK_LIMIT."""
    import contextlib
    import io
    err = io.StringIO()
    tracemalloc.start()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                rc = main([str(a) for a in argv])
            except SystemExit as e:
                rc = e.code
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < PEAK_LIMIT, f"{argv}: peak {peak / 1e6:.0f} MB"
    return rc, err.getvalue()


LAYER_KEYS = ["name", "type", "C", "H", "W", "K", "R", "S", "M", "N", "stride", "padding",
              "dilation", "groups", "bias", "activation", "inputs", "<<", "bogus"]
#: a valid layer of each type, which the drawn values then override
GOOD_LAYERS = {"conv": {"C": 4, "H": 8, "W": 8, "K": 4, "R": 3, "padding": 1},
               "fc": {"C": 16, "K": 8}, "gemm": {"M": 4, "N": 8, "K": 16},
               "maxpool": {"C": 4, "H": 8, "W": 8, "R": 2}, "gap": {"C": 4, "H": 8, "W": 8},
               "add": {"C": 4, "H": 8, "W": 8}}


@SLOW_PROPERTY
@given(layers=st.lists(st.tuples(st.sampled_from(sorted(GOOD_LAYERS)),
                                 st.dictionaries(st.sampled_from(LAYER_KEYS), VALUE,
                                                 max_size=2)), min_size=1, max_size=3))
def test_any_layer_table_loads_or_is_refused(tmp_path_factory, layers):
    """A layer table whose valid layers get any values for any keys runs or exits 2."""
    d = tmp_path_factory.mktemp("t")
    body = ""
    for i, (typ, override) in enumerate(layers):
        fields = {"name": f"l{i}", "type": typ, **GOOD_LAYERS[typ], **override}
        body += "  - " + "\n    ".join(f"{k}: {v}" for k, v in fields.items()) + "\n"
    (d / "t.yaml").write_text("name: t\nlayers:\n" + body, encoding="utf-8")
    loads_or_refused(*_main_quiet(["run", "--arch", "nvdla_small", "--model", d / "t.yaml",
                                   "--quiet", "--search-budget", "5"]))


CELL = st.one_of(st.sampled_from(["1", "3", "8", "32", "0", "-2", "2_24", "1e3", " 7 ", "",
                                  "9223372036854775808", "\"8\"", "x" * 200, "a,b", "\"",
                                  "\n"]),
                 st.integers(-5, 2 ** 64).map(str), st.text(max_size=5))


@SLOW_PROPERTY
@given(rows=st.lists(st.lists(st.tuples(st.integers(0, 9), CELL), max_size=2), min_size=1,
                     max_size=3), gemm=st.booleans())
def test_any_scalesim_csv_loads_or_is_refused(tmp_path_factory, rows, gemm):
    """A topology CSV whose valid rows get any cells anywhere runs or exits 2."""
    d = tmp_path_factory.mktemp("c")
    head, good = (("Layer, M, N, K,\n", ["g", "4", "8", "16"]) if gemm else
                  (CSV_HEADER, ["c", "8", "8", "3", "3", "4", "4", "1"]))
    text = head
    for i, edits in enumerate(rows):
        cells = [f"{good[0]}{i}", *good[1:]]
        for col, value in edits:
            cells[col % len(cells)] = value
        text += ", ".join(cells) + ",\n"
    (d / "t.csv").write_text(text, encoding="utf-8")
    loads_or_refused(*_main_quiet(["run", "--arch", "nvdla_small", "--model", d / "t.csv",
                                   "--quiet", "--search-budget", "5"]))


@SLOW_PROPERTY
@given(edits=st.lists(st.tuples(st.integers(0, 20), st.one_of(VALUE, CELL)), min_size=1,
                      max_size=3), bom=st.booleans())
def test_any_scalesim_cfg_loads_or_is_refused(tmp_path_factory, edits, bom):
    """A SCALE-Sim config with any values (and perhaps a BOM) runs or exits 2."""
    d = tmp_path_factory.mktemp("g")
    lines = CFG.splitlines(keepends=True)
    for line, value in edits:
        i = line % len(lines)
        key, sep, _ = lines[i].partition(":" if ":" in lines[i] else "=")
        if sep:
            lines[i] = f"{key}{sep} {value}\n"
    (d / "s.cfg").write_bytes((b"\xef\xbb\xbf" if bom else b"") + "".join(lines).encode())
    (d / "m.yaml").write_text(TINY)
    loads_or_refused(*_main_quiet(["run", "--arch", d / "s.cfg", "--model", d / "m.yaml",
                                   "--quiet", "--search-budget", "5"]))


@settings(max_examples=25, deadline=None)
@given(edits=st.lists(st.tuples(st.integers(0, 20), VALUE), max_size=2))
def test_any_sweep_spec_plans_or_is_refused(tmp_path_factory, edits):
    """A sweep spec with any values put in place of its own runs or exits 2."""
    d = tmp_path_factory.mktemp("s")
    text = SPEC + "sampling: {method: grid, seed: 0}\nbatch: [1]\n"
    for line, value in edits:
        text = _replace_value(text, line, value)
    (d / "tiny.yaml").write_text(TINY)
    (d / "s.yaml").write_text(text, encoding="utf-8")
    loads_or_refused(*_main_quiet(["sweep", d / "s.yaml", "--out", d / "out", "--workers", "1",
                                   "--quiet", "--yes"]))


CODESIGN = ("version: 1\nname: t\nbase: nvdla_small\n"
            "arch:\n  compute.arrays[0].rows: [8]\n"
            "networks:\n  - {family: mobilenet_v3, size: small}\n"
            "default_network: {family: mobilenet_v3, size: small}\n"
            "objectives: [top1, latency_ms]\n"
            "constraints: ['power_w <= 100']\n"
            "search: {method: exhaustive, evaluations: 1, seed: 0}\n"
            "mapping: {objective: edp, candidates: 5}\n")


def test_the_codesign_property_base_spec_runs(tmp_path, capsys):
    """The spec the property below edits runs as written (so its edits test the reader)."""
    (tmp_path / "c.yaml").write_text(CODESIGN)
    rc, _, err = cli(["codesign", tmp_path / "c.yaml", "--out", tmp_path / "out",
                      "--workers", "1", "--quiet"], capsys)
    assert rc == 0, err


@pytest.mark.slow   # a drawn spec that stays valid runs a (one-point) co-design search
@settings(max_examples=25, deadline=None)
@given(edits=st.lists(st.tuples(st.integers(0, 20), VALUE), min_size=1, max_size=2))
def test_any_codesign_spec_runs_or_is_refused(tmp_path_factory, edits):
    """A co-design spec with any values put in place of its own runs or exits 2 with one
    line (no traceback), its allocations bounded."""
    d = tmp_path_factory.mktemp("cd")
    text = CODESIGN
    for line, value in edits:
        text = _replace_value(text, line, value)
    (d / "c.yaml").write_text(text, encoding="utf-8")
    loads_or_refused(*_main_quiet(["codesign", d / "c.yaml", "--out", d / "out",
                                   "--workers", "1", "--quiet"]))
