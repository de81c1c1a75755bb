"""SCALE-Sim .cfg files: every key honoured where modelled, every ignored key named in one
warning, the assumed values announced and recorded in arch.yaml."""
from __future__ import annotations

import math
import warnings

import pytest

from tilesim import arch
from tilesim.cli import main

# every section and key of SCALE-Sim v3's configs (values made up for the test)
CFG = """\
[general]
run_name = cfg_test_16x8

[architecture_presets]
ArrayHeight:    16
ArrayWidth:     8
IfmapSramSzkB:    32
FilterSramSzkB:   48
OfmapSramSzkB:    16
IfmapOffset:    0
FilterOffset:   10000000
OfmapOffset:    20000000
Dataflow : is
Bandwidth : 20
MemoryBanks:   1
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth: USER
UseRamulatorTrace: False
"""
IGNORED = ["IfmapOffset=0", "FilterOffset=10000000", "OfmapOffset=20000000", "MemoryBanks=1",
           "ReadRequestBuffer=32", "WriteRequestBuffer=32", "IfmapCustomLayout=False",
           "IfmapSRAMBankBandwidth=10", "IfmapSRAMBankNum=10", "IfmapSRAMBankPort=2",
           "FilterCustomLayout=False", "FilterSRAMBankBandwidth=10", "FilterSRAMBankNum=10",
           "FilterSRAMBankPort=2", "BlockSize=8", "RandomNumberGeneratorSeed=40",
           "UseRamulatorTrace=False"]


def load(tmp_path, text):
    p = tmp_path / "t.cfg"
    p.write_text(text)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a = arch.load(p)
    return a, [str(w.message) for w in caught]


def test_honoured_keys():
    """Name, array, dataflow, the three SRAMs (kB = 1024 B) and USER bandwidth (1-byte
    words) are read."""
    import pathlib
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        a, _ = load(pathlib.Path(d), CFG)
    assert (a.name, a.array.rows, a.array.cols, a.array.dataflow) == ("cfg_test_16x8", 16, 8, "is")
    assert [m.size for m in a.onchip] == [32 * 1024, 48 * 1024, 16 * 1024]
    assert a.dram_bpc == 20.0


def test_one_warning_names_every_ignored_key_and_one_says_the_assumptions(tmp_path):
    """Exactly two warnings: one naming every key not modelled (with its value), one with
    the assumed clock, node, precisions and vector unit; none of the honoured keys is
    called ignored."""
    a, msgs = load(tmp_path, CFG)
    ignored = [m for m in msgs if "ignored" in m]
    assumed = [m for m in msgs if "assumed" in m]
    assert len(msgs) == 2 and len(ignored) == len(assumed) == 1
    for kv in IGNORED:
        assert kv in ignored[0], kv
    for key in ("ArrayHeight=", "ArrayWidth=", "Dataflow=", " Bandwidth=", "SramSzkB=",
                "InterfaceBandwidth=", "run_name=", "SparsitySupport=", "SparseRep=",
                "OptimizedMapping="):
        assert key not in ignored[0], key
    for word in ("clock 1 GHz", "technology 28 nm", "int8", "int32", "8 lanes"):
        assert word in assumed[0]
    assert (a.clock, a.compute.vector.lanes) == (1e9, 8)


def test_calc_bandwidth_is_unlimited_and_names_bandwidth(tmp_path):
    """InterfaceBandwidth CALC (SCALE-Sim runs stall-free and reports the bandwidth it
    needed) is unlimited DRAM bandwidth; the Bandwidth key is then named as ignored."""
    a, msgs = load(tmp_path, CFG.replace("InterfaceBandwidth: USER", "InterfaceBandwidth: CALC"))
    assert math.isinf(a.dram_bpc)
    (ignored,) = [m for m in msgs if "ignored" in m]
    assert "Bandwidth=20 (InterfaceBandwidth is CALC: unlimited)" in ignored


def test_unknown_key_is_named(tmp_path):
    """A key SCALE-Sim does not define (a typo) is named, not silently dropped."""
    _, msgs = load(tmp_path, CFG.replace("MemoryBanks:   1", "MemoryBanks:   1\nArrayHieght: 4"))
    assert "ArrayHieght=4 (unknown to SCALE-Sim)" in next(m for m in msgs if "ignored" in m)


def test_minimal_cfg_assumes_the_default_bandwidth(tmp_path):
    """Without Bandwidth nor [run_presets], SCALE-Sim's 10 words per cycle is used and
    announced; with nothing ignored there is no ignored-keys warning."""
    text = "\n".join(l for l in CFG.split("[layout]")[0].splitlines()
                     if not l.startswith(("Bandwidth", "IfmapOffset", "FilterOffset", "OfmapOffset",
                                          "MemoryBanks", "ReadRequest", "WriteRequest")))
    a, msgs = load(tmp_path, text)
    assert a.dram_bpc == 10.0
    assert len(msgs) == 1 and "Bandwidth 10 words per cycle" in msgs[0]


def test_bad_interface_bandwidth_is_an_input_error(tmp_path, capsys):
    """InterfaceBandwidth other than USER / CALC exits 2 naming the file, key and fix."""
    p = tmp_path / "t.cfg"
    p.write_text(CFG.replace("InterfaceBandwidth: USER", "InterfaceBandwidth: FAST"))
    assert main(["run", "--arch", str(p), "--model", "resnet18", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "t.cfg" in err and "InterfaceBandwidth" in err and "Fix: " in err
    assert "Traceback" not in err


def test_cli_prints_the_warnings_and_arch_yaml_records_the_assumptions(tmp_path, capsys):
    """`tilesim run --arch x.cfg` prints the two warnings as one line each and writes the
    assumed values (and what was ignored) into the output's arch.yaml."""
    p = tmp_path / "t.cfg"
    p.write_text(CFG)
    topo = tmp_path / "t.csv"
    topo.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, "
                    "Channels, Num Filter, Strides,\nc1, 10, 10, 3, 3, 4, 8, 1,\n")
    out = tmp_path / "o"
    assert main(["run", "--arch", str(p), "--model", str(topo), "--out", str(out), "--quiet"]) == 0
    err = [l for l in capsys.readouterr().err.splitlines() if l.startswith("tilesim: warning:")]
    assert sum("ignored" in l for l in err) == 1 and sum("assumed" in l for l in err) == 1
    text = (out / "arch.yaml").read_text()
    assert "clock: 1 GHz" in text and "assumed (SCALE-Sim does not say)" in text
    assert "RandomNumberGeneratorSeed=40" in text
    assert arch.from_yaml(text).dram_bpc == 20.0


@pytest.mark.parametrize("name", ["google.cfg", "scale.cfg"])
def test_reference_configs(name):
    """SCALE-Sim's own configs (shared/reference) load: google.cfg with USER 10 words per
    cycle, scale.cfg with CALC (unlimited), each with its two warnings."""
    import pathlib
    path = pathlib.Path("/work/shared/reference/scalesim/configs") / name
    if not path.exists():
        pytest.skip("reference configs not present")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a = arch.load(path)
    assert len(caught) == 2
    assert a.dram_bpc == 10.0 if name == "google.cfg" else math.isinf(a.dram_bpc)


def test_sparsity_section_sets_skipping_and_the_weight_format(tmp_path):
    """[sparsity] SparsitySupport true: the array skips N:M weight zeros and SparseRep is
    the weights' format in DRAM and the filter SRAM (ellpack_block -> nm, csr -> csr);
    false (CFG's): neither; OptimizedMapping true is named in the assumptions; a bad
    SparsitySupport or SparseRep is one error naming the key."""
    a, _ = load(tmp_path, CFG)
    assert a.array.zeros is None and all(m.format is None for m in a.memory)
    on = CFG.replace("SparsitySupport : false", "SparsitySupport : true")
    assert on != CFG
    a, _ = load(tmp_path, on)
    assert a.array.zeros == "skip"
    assert a.dram.format_of("weight") == "nm" and a.dram.format_of("input") == "dense"
    assert [m.format_of("weight") for m in a.memory if "weight" in m.holds] == ["nm", "nm"]
    a, _ = load(tmp_path, on.replace("SparseRep : ellpack_block", "SparseRep : csr"))
    assert a.dram.format_of("weight") == "csr"
    _, msgs = load(tmp_path, on.replace("OptimizedMapping : false", "OptimizedMapping : true"))
    assert any("OptimizedMapping true read as false" in m for m in msgs)
    for bad, key in ((on.replace("SparsitySupport : true", "SparsitySupport : maybe"),
                      "SparsitySupport"),
                     (on.replace("SparseRep : ellpack_block", "SparseRep : coo"), "SparseRep")):
        p = tmp_path / "bad.cfg"
        p.write_text(bad)
        with pytest.raises(arch.ArchError, match=key):
            arch.load(p)
