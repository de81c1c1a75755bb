"""Building and modifying an Architecture in Python: a dict loads as a file does, `replace`
derives a validated copy by key path, and dict -> Architecture -> YAML -> Architecture is
lossless for every preset."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import tilesim
from tilesim import arch

ROOT = Path(__file__).parents[1]
BASE = (arch.loader.PRESET_DIR / "nvdla_small.yaml").read_text()

#: (edit of the preset's YAML text, the key path its error names)
BAD_EDITS = [
    (("clock: ", "clok: "), "clok"),
    (("clock: 1 GHz", "clock: 7 furlongs"), "clock"),
    (("rows: 8", "rows: 0"), "compute.arrays[0].rows"),
    (("dataflow: ws", "dataflow: xs"), "compute.arrays[0].dataflow"),
    (("size: 128 KiB", "size: 128 KB"), "memory[1].size"),
    (("kind: dram", "kind: sram"), "memory[0]"),
    (("name: accu_buffer", "name: cbuf"), "memory[2].name"),
]


@pytest.mark.parametrize("preset", arch.presets() + arch.gpu_presets())
def test_round_trip_dict_yaml_dict(preset):
    """dict -> Architecture -> dump_yaml -> Architecture is equal, for every preset."""
    d = yaml.safe_load((arch.loader.PRESET_DIR / f"{preset}.yaml").read_text()
                       if preset in arch.presets() else
                       (arch.loader.GPU_DIR / f"{preset}.yaml").read_text())
    a = tilesim.load_arch(d)
    assert a == arch.load(preset)
    again = arch.from_yaml(arch.dump_yaml(a))
    assert again == a and again.to_yaml_dict() == a.to_yaml_dict()
    assert tilesim.load_arch(a.to_yaml_dict()) == a


@pytest.mark.parametrize("preset", arch.presets())
def test_replace_and_back(preset):
    """Replacing a value and then putting the old one back gives an equal Architecture;
    the original is untouched and only the named value changed."""
    a = arch.load(preset)
    old = a.to_yaml_dict()["memory"][1]["size"]
    b = a.replace("memory[1].size", "3 MiB")
    assert b.memory[1].size == 3 * 2**20 and a.to_yaml_dict()["memory"][1]["size"] == old
    assert b != a and b.replace("memory[1].size", old) == a
    changed = {k for k in a.to_yaml_dict() if a.to_yaml_dict()[k] != b.to_yaml_dict()[k]}
    assert changed == {"memory"}
    c = a.replace({"clock": "1.25 GHz", "compute.arrays[0].rows": 8})
    assert (c.clock, c.array.rows) == (1.25e9, 8)
    assert c.replace({"clock": a.to_yaml_dict()["clock"], "compute.arrays[0].rows":
                      a.array.rows}) == a


def test_gpu_replace():
    """A GPU preset is derived the same way."""
    g = arch.load("a100")
    h = g.replace({"tdp": "300 W", "peak.int8": "500 TOPS"})
    assert (h.tdp, h.peak.int8, g.tdp) == (300.0, 500e12, 400.0)
    assert h.replace({"tdp": "400 W", "peak.int8": "624 TOPS"}) == g
    with pytest.raises(arch.ArchError, match="did you mean 'tdp'"):
        g.replace("tpd", "300 W")


def test_replace_sets_and_removes_optional_keys():
    """An optional key left unset can be set by its path; None removes it again."""
    a = arch.load("tpu_v1")
    assert "read_energy" not in a.to_yaml_dict()["memory"][1]
    b = a.replace("memory[1].read_energy", "3 pJ")
    assert b.memory[1].read_energy == 3.0
    assert b.replace("memory[1].read_energy", None) == a


@pytest.mark.parametrize("path, value, says, fix", [
    ("memory[1].sise", "1 MiB", "memory[1].sise: no such key path", "did you mean 'size'?"),
    ("clok", "1 GHz", "clok: no such key path", "did you mean 'clock'?"),
    ("memory[9].size", "1 MiB", "memory[9].size: no such key path",
     "memory has 4 entries; use an index below 4"),
    ("compute.arrays.rows", 8, "compute.arrays.rows: no such key path",
     "compute.arrays is a list"),
    ("memory[1].size", "2 MB", "memory[1].size: size '2 MB' is ambiguous", "write 2 MiB"),
    ("clock", 0, "clock: clock 0 must be positive", "give one like 700 MHz"),
    ("compute.arrays[0].dataflow", "xs", "compute.arrays[0].dataflow", "one of the listed"),
    ("memory[0].kind", "sram", "memory[0]", "size"),
    ("memory[1.size", "1 MiB", "cannot read 'memory[1.size'", "write a key path like"),
])
def test_replace_errors_name_the_path_and_fix(path, value, says, fix):
    """A bad path or value is an ArchError naming the key path and the fix."""
    a = arch.load("tpu_v1")
    with pytest.raises(arch.ArchError) as e:
        a.replace(path, value)
    assert e.value.source == "<replace>" and says in e.value.bare and fix in e.value.fix, \
        str(e.value)


def test_replace_argument_forms():
    """replace(path, value) or replace({path: value}); anything else is a TypeError."""
    a = arch.load("tpu_v1")
    for bad in (("clock",), ({"clock": "1 GHz"}, "1 GHz"), (["clock"],)):
        with pytest.raises(TypeError, match=r"replace\(path, value\)"):
            a.replace(*bad)


@pytest.mark.parametrize("edit, path", BAD_EDITS)
def test_bad_dict_errors_like_yaml(tmp_path, edit, path):
    """A bad dict gives the YAML file's error (same key path, message and fix), its source
    named <dict> instead of file:line."""
    text = BASE.replace(*edit)
    assert text != BASE
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(arch.ArchError) as from_file:
        arch.load(f)
    with pytest.raises(arch.ArchError) as from_dict:
        tilesim.load_arch(yaml.safe_load(text))
    assert from_dict.value.bare == from_file.value.bare and from_dict.value.fix == \
        from_file.value.fix
    assert from_dict.value.bare.startswith(path) and from_dict.value.source == "<dict>"
    assert re.fullmatch(rf"{re.escape(str(f))}:\d+", from_file.value.source)


def test_load_arch_inputs(tmp_path):
    """load_arch takes a Path; YAML text or another type is an error with the fix."""
    p = tmp_path / "a.yaml"
    p.write_text(BASE)
    assert tilesim.load_arch(p) == arch.load("nvdla_small")
    with pytest.raises(arch.ArchError, match="neither a preset name nor a file.*from_yaml"):
        tilesim.load_arch(BASE)
    with pytest.raises(arch.ArchError, match="no such file"):
        tilesim.load_arch(tmp_path / "missing")
    with pytest.raises(arch.ArchError, match="value of type int.*a dict"):
        tilesim.load_arch(3)
    with pytest.raises(arch.ArchError, match="top level must be a mapping"):
        arch.from_dict(["version", 1])


def test_readme_builder_example_runs():
    """The README's "Build or modify an architecture in Python" example runs as written."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Build or modify an architecture in Python\n.*?```python\n(.*?)```",
                      readme, re.S).group(1)
    env: dict = {}
    exec(block, env)
    a, b = env["mine"], env["bigger"]
    assert isinstance(a, arch.Architecture) and b.memory[1].size == 4 * 2**20
    assert arch.from_yaml(env["text"]) == b
