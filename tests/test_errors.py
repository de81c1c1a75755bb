"""Bad input gives one clear message (file, key path or CSV line, and a fix) and exit code 2.

Every case writes a small bad input into ``tmp_path``, runs the CLI in-process and checks
that ``main`` returns 2 (argparse errors: exits 2), that stderr holds a single
``tilesim: error:`` line naming the file, the key path or ``file:LINE`` and the word
``Fix`` (with the specific hint where one exists), and that no traceback escapes.
Architecture inputs start from the text of ``arch/presets/nvdla_small.yaml``, whose lines
are::

    4 version   5 name   6 description   7 clock   8 technology   9 precision
    10 compute   11 arrays   12 - cmac   13 vector   14 memory
    15 - dram (memory[0])   16 - cbuf (memory[1])   17 - accu_buffer (memory[2])
    18-35 comments (no apostrophe: an unclosed quote must run to the end of the file)
    36 - weight_regs (memory[3])   37 - data_reg (memory[4])
"""
from __future__ import annotations

import traceback

import pytest

from tilesim import arch
from tilesim.cli import main

BASE = (arch.loader.PRESET_DIR / "nvdla_small.yaml").read_text()
DRAM_LINE = "  - {name: dram, kind: dram, holds: [input, weight, output], bandwidth: 8 GB/s}\n"

# one 3x3 conv: small enough to run in milliseconds, big enough to overflow a tiny buffer
ONE_CONV = ("name: one\nlayers:\n"
            "  - {name: conv1, type: conv, C: 16, H: 32, W: 32, K: 32, R: 3, padding: 1}\n")
CONV_HEADER = ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
               "Num Filter, Strides,\n")
CONV_ROW = "Conv1, 32, 32, 3, 3, 16, 32, 1,\n"
SCALE_CFG = """\
[general]
run_name = test_cfg

[architecture_presets]
ArrayHeight:    32
ArrayWidth:     32
IfmapSramSzkB:    64
FilterSramSzkB:   64
OfmapSramSzkB:    64
IfmapOffset:    0
FilterOffset:   10000000
OfmapOffset:    20000000
Dataflow : ws
Bandwidth : 10
"""


# ---- helpers ----------------------------------------------------------------------------
def mutate(text: str, old: str, new: str) -> str:
    """``text`` with ``old`` replaced; fails loudly if ``old`` is not there (so a case can
    never silently turn into a valid input)."""
    assert old in text, f"test setup: {old!r} not found"
    return text.replace(old, new)


def write(tmp_path, name: str, content: str | bytes):
    p = tmp_path / name
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content)
    return p


def run_cli(capsys, *argv) -> tuple[object, str]:
    """(return code, stderr) of ``tilesim ARGV``; an escaping exception becomes rc None and
    its traceback the stderr, so that the assertions below report it."""
    try:
        rc = main([str(a) for a in argv])
    except SystemExit:
        raise
    except BaseException:  # noqa: BLE001 - any escape is the bug under test
        rc = None
        capsys.readouterr()
        return rc, traceback.format_exc()
    return rc, capsys.readouterr().err


def run_arch(tmp_path, capsys, text: str | bytes, name: str = "accel.yaml", model: str = ONE_CONV):
    a = write(tmp_path, name, text)
    m = write(tmp_path, "net.yaml", model)
    return run_cli(capsys, "run", "--arch", a, "--model", m, "--quiet")


def run_model(tmp_path, capsys, text: str | bytes, name: str, arch_spec: str = "tpu_v1"):
    m = write(tmp_path, name, text)
    return run_cli(capsys, "run", "--arch", arch_spec, "--model", m, "--quiet")


def assert_input_error(rc, err: str, *needles: str) -> None:
    """Exit code 2, one ``tilesim: error:`` line, no traceback, and every needle present."""
    assert "Traceback" not in err, err
    assert rc == 2, err
    assert err.startswith("tilesim: error: "), err
    assert err.strip().count("\n") == 0, f"expected one message line, got:\n{err}"
    for n in needles:
        assert n in err, f"{n!r} not in {err!r}"


# ---- baselines: the unmutated inputs are valid -----------------------------------------
def test_valid_inputs_run(tmp_path, capsys):
    """The unmutated arch YAML, layer table, SCALE-Sim CSV and .cfg used below all run (rc 0)."""
    rc, err = run_arch(tmp_path, capsys, BASE)
    assert rc == 0, err
    rc, err = run_model(tmp_path, capsys, CONV_HEADER + CONV_ROW, "topo.csv")
    assert rc == 0, err
    cfg = write(tmp_path, "scale.cfg", SCALE_CFG)
    rc, err = run_cli(capsys, "run", "--arch", cfg, "--model", tmp_path / "net.yaml", "--quiet")
    assert rc == 0, err


# ---- architecture YAML ------------------------------------------------------------------
# (id, old, new, where: file/line/key-path needles, fix: needles after "Fix:")
ARCH_CASES = [
    ("yaml-syntax", "clock: 1 GHz", "clock: 1 GHz: 2",
     ["accel.yaml:7:", "not valid YAML"], ["check indentation"]),
    ("yaml-tab", "technology: 16 nm", "technology: 16 nm\n\tfoo: 1",
     ["accel.yaml:9:", "not valid YAML"], ["check indentation"]),
    ("yaml-unclosed-quote", "clock: 1 GHz", "clock: '1 GHz",
     ["accel.yaml:7:", "not valid YAML"], ["check indentation"]),
    ("unknown-key-typo", "size: 128 KiB", "sise: 128 KiB",
     ["accel.yaml:16:", "memory[1].sise", "unknown key"], ["did you mean 'size'?"]),
    ("unknown-key-typo-optional", "16 KiB, double_buffered", "16 KiB, double_bufered",
     ["accel.yaml:17:", "memory[2].double_bufered", "unknown key"],
     ["did you mean 'double_buffered'?"]),
    ("unknown-key-typo-required-top", "clock: 1 GHz", "clok: 1 GHz",
     ["accel.yaml:7:", "clok", "unknown key"], ["did you mean 'clock'?"]),
    ("unknown-key-typo-required-nested", "dataflow: ws", "dataflw: ws",
     ["accel.yaml:12:", "compute.arrays[0].dataflw", "unknown key"], ["did you mean 'dataflow'?"]),
    ("unknown-key-no-match", "technology: 16 nm", "technology: 16 nm\nfrobnicate: 3",
     ["accel.yaml:9:", "frobnicate", "unknown key"], ["allowed keys here: version, name"]),
    ("duplicate-key-top", "technology: 16 nm", "technology: 16 nm\nclock: 2 GHz",
     ["accel.yaml:9:", "duplicate key 'clock'", "first at line 7"], ["keep one"]),
    ("duplicate-key-nested", "  vector: {lanes: 8}", "  vector: {lanes: 8}\n  arrays: []",
     ["accel.yaml:14:", "duplicate key 'compute.arrays'"], ["keep one"]),
    ("duplicate-key-nested-first-line", "  vector: {lanes: 8}",
     "  vector: {lanes: 8}\n  arrays: []",
     ["accel.yaml:14:", "first at line 11"], ["keep one"]),
    ("negative-size", "size: 16 KiB", "size: -16 KiB",
     ["accel.yaml:17:", "memory[2].size", "positive"], ["Fix:"]),
    ("zero-size", "size: 16 KiB", "size: 0 KiB",
     ["accel.yaml:17:", "memory[2].size", "positive"], ["Fix:"]),
    ("zero-size-plain-number", "size: 16 KiB", "size: 0",
     ["accel.yaml:17:", "memory[2].size", "positive"], ["Fix:"]),
    ("ambiguous-unit-KB", "size: 128 KiB", "size: 128 KB",
     ["accel.yaml:16:", "memory[1].size", "ambiguous"], ["Fix:", "128 KiB"]),
    ("missing-operand", "holds: [input, weight], size", "holds: [input], size",
     ["accel.yaml", "'weight'", "memory[1].holds"], ["Fix:", "add 'weight'"]),
    ("dram-not-first", DRAM_LINE, "",
     ["accel.yaml", "memory[0]", "DRAM"], ["Fix:"]),
    ("onchip-without-size", ", size: 16 KiB", "",
     ["accel.yaml:17:", "memory[2]", "has no size"], ["Fix:", "size: 256 KiB"]),
    ("bandwidth-in-bits", "8 GB/s", "64 Gbit/s",
     ["accel.yaml:15:", "memory[0].bandwidth", "bits"], ["Fix:", "GB/s"]),
    ("negative-rows", "rows: 8", "rows: -8",
     ["accel.yaml:12:", "compute.arrays[0].rows"], ["positive whole number"]),
    ("unknown-dataflow", "dataflow: ws", "dataflow: xs",
     ["accel.yaml:12:", "compute.arrays[0].dataflow", "'os', 'ws', 'is', 'kc', 'kcr', 'kco' or 'rs'"],
     ["use one of the listed values"]),
    ("unknown-clock-unit", "clock: 1 GHz", "clock: 1 GHzz",
     ["accel.yaml:7:", "clock", "unknown clock unit"], ["Fix:", "MHz"]),
]


def _arch_text(old, new):
    text = mutate(BASE, old, new)
    if old == DRAM_LINE:  # move DRAM to the end of the memory list rather than dropping it
        head, sep, tail = text.partition("# fusion:")   # the list ends where the key begins
        text = head + DRAM_LINE + sep + tail
    return text


@pytest.mark.parametrize(
    "old,new,where",
    [pytest.param(o, n, w, id=i) for i, o, n, w, _ in ARCH_CASES])
def test_arch_yaml_error_names_file_and_key(tmp_path, capsys, old, new, where):
    """A bad architecture YAML exits 2 with one message naming file:line and the key path."""
    rc, err = run_arch(tmp_path, capsys, _arch_text(old, new))
    assert_input_error(rc, err, *where)


@pytest.mark.parametrize(
    "old,new,fix",
    [pytest.param(o, n, f, id=i) for i, o, n, _, f in ARCH_CASES])
def test_arch_yaml_error_says_how_to_fix(tmp_path, capsys, old, new, fix):
    """A bad architecture YAML's message ends in 'Fix: ...' with the specific hint."""
    rc, err = run_arch(tmp_path, capsys, _arch_text(old, new))
    assert_input_error(rc, err, "Fix: ")
    tail = err.split("Fix: ", 1)[1]
    for f in fix:
        assert f in tail or f in err, f"{f!r} not in {err!r}"


@pytest.mark.parametrize("content", ["", "- 1\n- 2\n"], ids=["empty", "top-level-list"])
def test_arch_yaml_not_a_mapping(tmp_path, capsys, content):
    """An empty architecture file or a top-level list is a clear error naming the file."""
    rc, err = run_arch(tmp_path, capsys, content)
    assert_input_error(rc, err, "accel.yaml", "Fix: ")


# ---- buffer too small for one tile -------------------------------------------------------
@pytest.mark.parametrize("old,new,level,idx", [
    ("size: 128 KiB", "size: 64 B", "cbuf", 1),
    ("size: 16 KiB", "size: 16 B", "accu_buffer", 2),
], ids=["cbuf", "accu_buffer"])
def test_buffer_too_small_names_level_and_fix(tmp_path, capsys, old, new, level, idx):
    """A buffer too small for one tile names the level, its key path and the size needed."""
    rc, err = run_arch(tmp_path, capsys, mutate(BASE, old, new))
    assert_input_error(rc, err, "layer 'conv1'", f"buffer {level!r}", f"memory[{idx}]",
                       f"Fix: raise memory[{idx}].size to at least")


def test_buffer_too_small_names_arch_file(tmp_path, capsys):
    """A buffer too small for one tile names the architecture file it was declared in."""
    rc, err = run_arch(tmp_path, capsys, mutate(BASE, "size: 128 KiB", "size: 64 B"))
    assert_input_error(rc, err, "accel.yaml", "memory[1].size")


# ---- unknown preset / model --------------------------------------------------------------
@pytest.mark.parametrize("name,close", [
    ("nvdla_smal", "nvdla_small"), ("tpu_v2", "tpu_v1"), ("tpuv1", "tpu_v1"), ("zzz", None)])
def test_unknown_preset(capsys, name, close):
    """An unknown preset name exits 2, suggests the closest preset and lists them all."""
    rc, err = run_cli(capsys, "run", "--arch", name, "--model", "alexnet", "--quiet")
    assert_input_error(rc, err, f"unknown architecture {name!r}", "Fix: ", "presets: ",
                       *arch.presets())
    if close:
        assert f"did you mean {close!r}?" in err
    else:
        assert "did you mean" not in err


@pytest.mark.parametrize("name,close", [
    ("resnet19", "resnet18"), ("mobilenetv2", "mobilenet_v2"), ("vgg61", "vgg16"),
    ("nosuchnet", None)])
def test_unknown_model(capsys, name, close):
    """An unknown zoo model exits 2, suggests the closest zoo name and lists them all."""
    from tilesim import workloads
    rc, err = run_cli(capsys, "run", "--arch", "tpu_v1", "--model", name, "--quiet")
    assert_input_error(rc, err, f"unknown model {name!r}", "Fix: ", "zoo models: ",
                       *workloads.zoo_names())
    if close:
        assert f"did you mean {close!r}?" in err
    else:
        assert "did you mean" not in err


# ---- SCALE-Sim topology CSV --------------------------------------------------------------
CSV_CASES = [
    ("non-integer", CONV_HEADER + CONV_ROW + "Conv2, 32, x32, 3, 3, 16, 32, 1,\n",
     ["topo.csv:3:", "IFMAP Width = 'x32' is not an integer", "Fix: give a whole number"]),
    ("fractional", CONV_HEADER + CONV_ROW + "Conv2, 32, 32.5, 3, 3, 16, 32, 1,\n",
     ["topo.csv:3:", "IFMAP Width = '32.5' is not an integer", "Fix: "]),
    ("too-few-fields", CONV_HEADER + CONV_ROW + "Conv2, 32, 32, 3, 3,\n",
     ["topo.csv:3:", "row has 5 fields", "needs 8", "Fix: write Layer name, IFMAP Height"]),
    ("zero-value", CONV_HEADER + CONV_ROW + "Conv2, 32, 32, 3, 3, 0, 32, 1,\n",
     ["topo.csv:3:", "Channels = 0 must be positive", "Fix: give a number >= 1"]),
    ("negative-value", CONV_HEADER + CONV_ROW + "Conv2, 32, 32, 3, 3, -4, 32, 1,\n",
     ["topo.csv:3:", "Channels = -4 must be positive", "Fix: "]),
    ("zero-stride", CONV_HEADER + "Conv1, 32, 32, 3, 3, 16, 32, 0,\n",
     ["topo.csv:2:", "Strides = 0 must be positive", "Fix: "]),
    ("line-counts-blank-lines", CONV_HEADER + "\n" + "Conv2, 32, 32, 3, 3, 0, 32, 1,\n",
     ["topo.csv:3:", "Channels = 0", "Fix: "]),
    ("filter-larger-than-ifmap", CONV_HEADER + "Conv1, 3, 3, 5, 5, 4, 32, 1,\n",
     ["topo.csv:2:", "'Conv1'", "larger than", "Fix: "]),
    ("bad-header", "foo, bar\n" + CONV_ROW,
     ["topo.csv:1:", "unrecognised header", "Fix: use SCALE-Sim's conv header"]),
    ("gemm-zero", "Layer, M, N, K,\nmm, 64, 0, 32,\n", ["topo.csv:2:", "N = 0", "Fix: "]),
    ("gemm-too-few", "Layer, M, N, K,\nmm, 64, 32\n",
     ["topo.csv:2:", "row has 3 fields", "needs 4", "Fix: "]),
    ("empty-file", "", ["topo.csv", "empty", "Fix: "]),
]


@pytest.mark.parametrize("content,needles", [pytest.param(c, n, id=i) for i, c, n in CSV_CASES])
def test_malformed_scalesim_csv(tmp_path, capsys, content, needles):
    """A malformed SCALE-Sim CSV row exits 2 naming topo.csv:LINE, the column and a fix."""
    rc, err = run_model(tmp_path, capsys, content, "topo.csv")
    assert_input_error(rc, err, *needles)


@pytest.mark.parametrize("content,needles", [
    pytest.param(CONV_HEADER, ["topo.csv", "no layers", "Fix: "], id="header-only"),
    pytest.param(CONV_HEADER + CONV_ROW + CONV_ROW, ["topo.csv:3:", "'Conv1'", "Fix: "],
                 id="duplicate-layer-name"),
])
def test_scalesim_csv_model_level_errors(tmp_path, capsys, content, needles):
    """Header-only and duplicate-name CSVs name the file (and line) like row errors do."""
    rc, err = run_model(tmp_path, capsys, content, "topo.csv")
    assert_input_error(rc, err, *needles)


# ---- YAML layer table --------------------------------------------------------------------
L = "name: t\nlayers:\n"
CONV = "  - {name: c, type: conv, C: 16, H: 32, W: 32, K: 32, R: 3%s}\n"
TABLE_CASES = [
    ("unknown-key", L + CONV % ", paddng: 1",
     ["net.yaml:3:", "layers[0] (c)", "unknown key(s) ['paddng']", "Fix: ", "'padding'"]),
    ("missing-key", L + "  - {name: c, type: conv, C: 16, H: 32, W: 32, R: 3}\n",
     ["net.yaml:3:", "layers[0] (c)", "missing key(s) ['K']", "Fix: a conv layer takes"]),
    ("unknown-type", L + "  - {name: c, type: convv, C: 16, H: 32, W: 32, K: 32, R: 3}\n",
     ["net.yaml:3:", "unknown type 'convv'", "Fix: use one of conv, fc"]),
    ("missing-name", L + "  - {type: conv, C: 16, H: 32, W: 32, K: 32, R: 3}\n",
     ["net.yaml:3:", "layers[0]", "'name'", "Fix: "]),
    ("second-layer", L + CONV % "" + "  - {name: d, type: fc, C: 16}\n",
     ["net.yaml:4:", "layers[1] (d)", "missing key(s) ['K']", "Fix: "]),
    ("zero-value", L + CONV.replace("C: 16", "C: 0") % "",
     ["net.yaml:3:", "layers[0]", "C = 0", "Fix: give C a value >= 1"]),
    ("string-value", L + CONV.replace("C: 16", "C: abc") % "",
     ["net.yaml:3:", "layers[0]", "C = 'abc'", "Fix: "]),
    ("groups-not-dividing", L + CONV % ", groups: 3",
     ["net.yaml:3:", "groups = 3", "Fix: "]),
    ("filter-too-big", L + CONV.replace("H: 32, W: 32", "H: 2, W: 2") % "",
     ["net.yaml:3:", "does not fit", "Fix: "]),
    ("duplicate-key", L + "  - name: c\n    type: conv\n    C: 16\n    C: 8\n"
                          "    H: 32\n    W: 32\n    K: 32\n    R: 3\n",
     ["net.yaml:6:", "duplicate key 'layers[0].C'", "first at line 5", "Fix: keep one"]),
    ("yaml-syntax", L + CONV.rstrip("}\n") % "" + "\n",
     ["net.yaml:3:", "not valid YAML", "Fix: "]),  # the line where the '{' opens
    ("unknown-top-level-key", "nam: t\nlayers:\n" + CONV % "",
     ["net.yaml", "'nam'", "Fix: allowed: name, description, layers"]),
    ("no-layers", "name: t\n", ["net.yaml", "'layers'", "Fix: "]),
    ("layers-not-a-list", "name: t\nlayers: 5\n", ["net.yaml:2:", "'layers'", "Fix: "]),
    ("layer-not-a-mapping", L + "  - 5\n", ["net.yaml", "layers[0]", "Fix: "]),
    ("empty-file", "", ["net.yaml", "Fix: "]),
]


@pytest.mark.parametrize("content,needles", [pytest.param(c, n, id=i) for i, c, n in TABLE_CASES])
def test_bad_yaml_layer_table(tmp_path, capsys, content, needles):
    """A bad YAML layer table exits 2 naming net.yaml:LINE, layers[i] and a fix."""
    rc, err = run_model(tmp_path, capsys, content, "net.yaml")
    assert_input_error(rc, err, *needles)


def test_yaml_layer_table_duplicate_layer_name(tmp_path, capsys):
    """Two layers with one name name the file and the second layer's line."""
    rc, err = run_model(tmp_path, capsys, L + CONV % "" + CONV % "", "net.yaml")
    assert_input_error(rc, err, "net.yaml:4:", "'c'", "Fix: ")


# ---- inputs that currently escape as a traceback ----------------------------------------
NONUTF8 = b"# \xff\xfe not UTF-8\n"


@pytest.mark.parametrize("kind,name,content,needles", [
    pytest.param("arch", "accel.yaml", BASE + "? [a, b]\n: 1\n", ["accel.yaml"],
                 id="arch-yaml-list-as-key"),
    pytest.param("arch", "accel.yaml", BASE.encode() + NONUTF8, ["accel.yaml"],
                 id="arch-yaml-not-utf8"),
    pytest.param("arch", "accel.yaml",
                 mutate(BASE, "vector: {lanes: 8}", "vector: {<<: {lanes: 8}}"), [],
                 id="arch-yaml-merge-key"),
    pytest.param("arch", "scale.cfg", SCALE_CFG.encode() + NONUTF8, ["scale.cfg"],
                 id="cfg-not-utf8"),
    pytest.param("model", "topo.csv", (CONV_HEADER + CONV_ROW).encode() + NONUTF8,
                 ["topo.csv"], id="csv-not-utf8"),
    pytest.param("model", "net.yaml", (L + CONV % "").encode() + NONUTF8, ["net.yaml"],
                 id="layer-table-not-utf8"),
    pytest.param("model", "net.yaml", L + CONV % ", stride: 0", ["net.yaml:3:", "stride"],
                 id="layer-table-conv-stride-0"),
    pytest.param("model", "net.yaml",
                 L + "  - {name: p, type: maxpool, C: 16, H: 32, W: 32, R: 2, stride: 0}\n",
                 ["net.yaml:3:", "stride"], id="layer-table-pool-stride-0"),
    pytest.param("model", "net.yaml", L + "  - {name: c, type: [conv], C: 16, H: 32, W: 32, "
                                          "K: 32, R: 3}\n", ["net.yaml:3:", "type"],
                 id="layer-table-type-is-a-list"),
    pytest.param("model", "net.yaml", L + CONV % ", [a]: 1", ["net.yaml:3:"],
                 id="layer-table-list-as-key"),
])
def test_never_a_traceback(tmp_path, capsys, kind, name, content, needles):
    """Odd-but-possible inputs give a clean exit-2 message, not a Python traceback."""
    if kind == "arch":
        rc, err = run_arch(tmp_path, capsys, content, name=name)
    else:
        rc, err = run_model(tmp_path, capsys, content, name)
    if rc == 0 and not needles:  # a merge key may also simply be supported
        return
    assert_input_error(rc, err, *needles, "Fix: ")


# ---- missing files -----------------------------------------------------------------------
@pytest.mark.parametrize("opt,name,needles", [
    ("--arch", "nope.yaml", ["nope.yaml", "no such file", "Fix: check the path"]),
    ("--arch", "nope.cfg", ["nope.cfg", "no such file", "Fix: check the path"]),
    ("--model", "nope.yaml", ["nope.yaml", "No such file", "Fix: check the path"]),
    ("--model", "nope.csv", ["nope.csv", "No such file", "Fix: check the path"]),
    ("--model", "nope.txt", ["nope.txt", "unsupported model file type '.txt'", "Fix: "]),
])
def test_missing_file(tmp_path, capsys, opt, name, needles):
    """A path that does not exist exits 2 naming the path and what to check."""
    other = ("--model", "alexnet") if opt == "--arch" else ("--arch", "tpu_v1")
    rc, err = run_cli(capsys, "run", opt, tmp_path / name, *other, "--quiet")
    assert_input_error(rc, err, *needles)


def test_arch_path_is_a_directory(tmp_path, capsys):
    """A directory given as --arch is a clean exit-2 error naming it."""
    rc, err = run_cli(capsys, "run", "--arch", tmp_path, "--model", "alexnet", "--quiet")
    assert_input_error(rc, err, str(tmp_path), "Fix: ")


# ---- SCALE-Sim .cfg ----------------------------------------------------------------------
CFG_CASES = [
    ("missing-ArrayHeight", "ArrayHeight:    32\n", "",
     ["scale.cfg", "[architecture_presets] ArrayHeight", "required key is missing",
      "Fix: add a line 'ArrayHeight: ...'"]),
    ("non-integer", "ArrayWidth:     32", "ArrayWidth:     3x2",
     ["scale.cfg", "ArrayWidth", "'3x2' is not an integer", "Fix: give a whole number"]),
    ("zero", "ArrayWidth:     32", "ArrayWidth:     0",
     ["scale.cfg", "ArrayWidth", "must be positive", "Fix: "]),
    ("bad-Dataflow", "Dataflow : ws", "Dataflow : rs",
     ["scale.cfg", "Dataflow", "'rs' is not os, ws or is", "Fix: use Dataflow: os, ws or is"]),
    ("bad-Bandwidth", "Bandwidth : 10", "Bandwidth : ten",
     ["scale.cfg", "Bandwidth", "'ten' is not a number", "Fix: "]),
    ("missing-section", "[architecture_presets]", "[arch]",
     ["scale.cfg", "missing section [architecture_presets]", "Fix: "]),
    ("duplicate-key", "Dataflow : ws", "Dataflow : ws\nDataflow : os",
     ["scale.cfg", "line 14", "'Dataflow'", "already exists", "Fix: "]),
    ("not-an-ini-file", SCALE_CFG, "this is not a config\n",
     ["scale.cfg", "not a valid SCALE-Sim config", "Fix: "]),
]


@pytest.mark.parametrize("old,new,needles",
                         [pytest.param(o, n, w, id=i) for i, o, n, w in CFG_CASES])
def test_malformed_scalesim_cfg(tmp_path, capsys, old, new, needles):
    """A malformed SCALE-Sim .cfg exits 2 naming the file, the [section] key and a fix."""
    rc, err = run_arch(tmp_path, capsys, mutate(SCALE_CFG, old, new), name="scale.cfg")
    assert_input_error(rc, err, *needles)


@pytest.mark.parametrize("value", ["0", "-5"])
def test_scalesim_cfg_nonpositive_bandwidth(tmp_path, capsys, value):
    """A zero or negative SCALE-Sim Bandwidth names the cfg key Bandwidth and a fix."""
    rc, err = run_arch(tmp_path, capsys,
                       mutate(SCALE_CFG, "Bandwidth : 10", f"Bandwidth : {value}"),
                       name="scale.cfg")
    assert_input_error(rc, err, "scale.cfg", "[architecture_presets] Bandwidth", "Fix: ")


# ---- --batch -----------------------------------------------------------------------------
@pytest.mark.parametrize("batch,msg", [("0", "0 must be >= 1"), ("-3", "-3 must be >= 1"),
                                       ("two", "'two' is not an integer")])
def test_bad_batch_exits_2(capsys, batch, msg):
    """--batch 0 (or negative, or not a number) is an argparse usage error: exit status 2."""
    with pytest.raises(SystemExit) as exc:
        main(["run", "--arch", "tpu_v1", "--model", "alexnet", "--batch", batch])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "argument --batch" in err and msg in err


def test_bad_batch_in_api():
    """The library rejects batch 0 with a WorkloadError saying how to fix it."""
    from tilesim import workloads
    with pytest.raises(workloads.WorkloadError, match=r"batch = 0 .*Fix: use --batch 1"):
        workloads.load("alexnet", batch=0)
