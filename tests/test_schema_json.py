"""`tilesim schema` prints a JSON Schema that every shipped preset (accelerator and GPU)
satisfies and that refuses unknown keys, bad unit strings and bare numbers."""
from __future__ import annotations

import json
import re

import pytest
import yaml

from tilesim import arch
from tilesim.arch import units
from tilesim.cli import main

jsonschema = pytest.importorskip("jsonschema")


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    out = tmp_path_factory.mktemp("schema") / "arch.schema.json"
    assert main(["schema", "--out", str(out)]) == 0
    s = json.loads(out.read_text())
    jsonschema.Draft7Validator.check_schema(s)
    assert s["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert "$defs" not in json.dumps(s)   # draft-07 only: what editors implement
    return s


def _errors(schema, data) -> list[str]:
    return [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(data)]


def _preset(name: str) -> dict:
    folder = arch.loader.PRESET_DIR if name in arch.presets() else arch.loader.GPU_DIR
    return yaml.safe_load((folder / f"{name}.yaml").read_text())


def test_schema_prints_to_stdout(capsys, schema):
    """Without --out the schema goes to stdout, the same document."""
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == schema


@pytest.mark.parametrize("name", arch.presets() + arch.gpu_presets())
def test_every_preset_validates(schema, name):
    """Each preset file, and its resolved form (dump_yaml), satisfies the schema."""
    assert _errors(schema, _preset(name)) == []
    assert _errors(schema, yaml.safe_load(arch.dump_yaml(arch.load(name)))) == []


def test_schema_describes_keys_enums_and_units(schema):
    """version, required keys, enums and closed objects come from the models; unit fields
    are strings with a pattern, never the internal objects."""
    d = schema["definitions"]
    a, m, sa = d["Architecture"], d["MemoryLevel"], d["SystolicArray"]
    assert a["properties"]["version"]["const"] == 1
    assert {"version", "name", "clock", "memory"} <= set(a["required"])
    assert all(x.get("additionalProperties") is False for k, x in d.items())
    assert set(sa["properties"]["dataflow"]["enum"]) == {"os", "ws", "is", "kc", "kcr", "kco", "rs"}
    assert "fp16" in d["Precision"]["properties"]["input"]["enum"]
    for field in (a["properties"]["clock"], a["properties"]["technology"],
                  m["properties"]["bandwidth"]["anyOf"][0], m["properties"]["size"]["anyOf"][0],
                  m["properties"]["leakage"]["anyOf"][0],
                  m["properties"]["latency"]["anyOf"][0],
                  sa["properties"]["mac_energy"]["anyOf"][0],
                  d["GpuSpec"]["properties"]["l2_size"], d["Peaks"]["properties"]["fp32"]):
        assert field["type"] == "string" and field["pattern"].startswith("^"), field
    assert "Rate" not in d and "Latency" not in d


@pytest.mark.parametrize("edit, why", [
    (lambda d: d.update(clok="1 GHz"), "unknown top-level key"),
    (lambda d: d["memory"][1].update(sise="1 MiB"), "unknown key in a level"),
    # the loader still reads a bare number as Hz; the schema asks for the unit (DESIGN §4)
    (lambda d: d.update(clock=700000000), "bare number for a clock"),
    (lambda d: d.update(clock="700 furlongs"), "bad clock unit"),
    (lambda d: d["memory"][1].update(size="24 MB"), "ambiguous size unit"),
    (lambda d: d["memory"][0].update(bandwidth="34 Gb/s"), "bandwidth in bits"),
    (lambda d: d["memory"][1].update(read_energy=3), "energy without a unit"),
    (lambda d: d["memory"][1].pop("size"), "on-chip level without a size"),
    (lambda d: d["memory"][0].pop("bandwidth"), "DRAM without a bandwidth"),
    (lambda d: d["compute"]["arrays"][0].update(dataflow="xs"), "unknown dataflow"),
    (lambda d: d["precision"].update(input="int7"), "unknown precision"),
    (lambda d: d.update(version=2), "another version"),
    (lambda d: d.pop("clock"), "a required key missing"),
])
def test_invalid_files_fail(schema, edit, why):
    """Files the loader refuses fail the schema too (and a bare-number clock, which the
    loader still reads as Hz)."""
    d = _preset("tpu_v1")
    edit(d)
    assert _errors(schema, d), why
    if why != "bare number for a clock":
        with pytest.raises(arch.ArchError):
            arch.load(d)


def test_invalid_gpu_file_fails(schema):
    d = _preset("a100")
    d["peak"]["fp16"] = "312 TFLOPZ"
    assert _errors(schema, d)
    d = _preset("a100")
    d["memory_bandwidth"] = "16 B/cycle"   # a GPU's bandwidth is per second
    assert _errors(schema, d)


@pytest.mark.parametrize("kind", sorted(units.JSON_UNITS))
def test_unit_patterns_accept_only_what_parses(kind):
    """Every example of a unit pattern matches it and parses; typical mistakes do not match."""
    pattern, _, examples = units.JSON_UNITS[kind]
    parse = {"size": units.parse_size, "clock": units.parse_freq, "node": units.parse_node,
             "bandwidth": units.parse_rate, "bandwidth_per_s": units.parse_rate,
             "energy": units.parse_energy, "power": units.parse_power,
             "latency": units.parse_latency}[kind]
    lower = kind in ("clock", "node", "energy", "power", "latency")   # case-blind units
    for ok in examples + [e.lower() for e in examples if lower]:
        assert re.search(pattern, ok), ok
        parse(ok)
    for bad in ("12", "", "12 parsecs", "-3 " + examples[0].split()[-1]):
        assert not re.search(pattern, bad), bad
