"""Read a SCALE-Sim ``.cfg`` file as an Architecture.

Mapping (SCALE-Sim v2/v3 semantics): ArrayHeight -> rows, ArrayWidth -> cols,
Dataflow -> dataflow, {Ifmap,Filter,Ofmap}SramSzkB -> three double-buffered SRAMs
(SCALE-Sim's kB is 1024 bytes), Bandwidth -> DRAM words per cycle with 1-byte words
(int8). SCALE-Sim has no clock, technology or vector unit: 1 GHz, 28 nm and a vector
unit as wide as the array are filled in and recorded in the resolved YAML.
"""
from __future__ import annotations

import configparser
import functools
from pathlib import Path

from tilesim._input import parse_int_text, parse_real_text

from .errors import ArchError
from .schema import COUNT_MAX
from .units import BPC_MAX, BPC_MIN, SIZE_MAX

REQUIRED = ("ArrayHeight", "ArrayWidth", "IfmapSramSzkB", "FilterSramSzkB", "OfmapSramSzkB",
            "Dataflow")


def cfg_dict(path: Path, text: str) -> dict:
    """The architecture dict (our YAML form) of the SCALE-Sim config ``text`` read from
    ``path``; :func:`arch.loader.load` validates it (this module does not import the
    loader: no import circle)."""
    src = str(path)
    text = text.removeprefix("\ufeff")   # a UTF-8 byte-order mark (Windows editors)
    # no interpolation: a '%' in a value is text, not a reference to another key
    cp = configparser.ConfigParser(strict=True, interpolation=None)
    cp.optionxform = str  # keep key case
    try:
        cp.read_string(text, source=src)
    except configparser.Error as e:
        raise ArchError(f"not a valid SCALE-Sim config: {e.message.splitlines()[0]}", source=src,
                        fix="compare with SCALE-Sim's configs/scale.cfg") from None
    sec = "architecture_presets"
    if not cp.has_section(sec):
        raise ArchError(f"missing section [{sec}]", source=src,
                        fix="a SCALE-Sim config needs [architecture_presets] with ArrayHeight, ...")
    p = cp[sec]
    vals = {}
    for key in REQUIRED + ("Bandwidth",):
        if key not in p:
            if key == "Bandwidth":
                continue
            raise ArchError(f"[{sec}] {key}: required key is missing", source=src,
                            fix=f"add a line '{key}: ...'")
        vals[key] = p[key].strip()
    fail = functools.partial(ArchError, source=src)
    ints = {key: parse_int_text(vals[key], f"[{sec}] {key}", fail, lo=1,
                                hi=COUNT_MAX if key.startswith("Array") else SIZE_MAX // 1024)
            for key in ("ArrayHeight", "ArrayWidth", "IfmapSramSzkB", "FilterSramSzkB",
                        "OfmapSramSzkB")}
    df = vals["Dataflow"].lower()
    if df not in ("os", "ws", "is"):
        raise ArchError(f"[{sec}] Dataflow: {vals['Dataflow']!r} is not os, ws or is", source=src,
                        fix="use Dataflow: os, ws or is")
    bw = 10.0
    if "Bandwidth" in vals:
        bw = parse_real_text(vals["Bandwidth"], f"[{sec}] Bandwidth (words per cycle)", fail,
                             lo=BPC_MIN, hi=BPC_MAX)
    name = cp.get("general", "run_name", fallback=path.stem).strip()
    data = {
        "version": 1, "name": name,
        "description": f"read from SCALE-Sim config {path.name}; clock 1 GHz, 28 nm and vector "
                       "unit width filled in (SCALE-Sim has none)",
        "clock": "1 GHz", "technology": "28 nm",
        "precision": {"input": "int8", "weight": "int8", "accumulator": "int32", "output": "int8"},
        "compute": {"arrays": [{"name": "array", "rows": ints["ArrayHeight"],
                                "cols": ints["ArrayWidth"], "dataflow": df, "count": 1}],
                    "vector": {"lanes": ints["ArrayWidth"]}},
        "memory": [
            {"name": "dram", "kind": "dram", "holds": ["input", "weight", "output"],
             "bandwidth": f"{bw} B/cycle"},
            {"name": "ifmap_sram", "kind": "sram", "holds": ["input"],
             "size": f"{ints['IfmapSramSzkB']} KiB", "double_buffered": True},
            {"name": "filter_sram", "kind": "sram", "holds": ["weight"],
             "size": f"{ints['FilterSramSzkB']} KiB", "double_buffered": True},
            {"name": "ofmap_sram", "kind": "sram", "holds": ["output"],
             "size": f"{ints['OfmapSramSzkB']} KiB", "double_buffered": True},
        ],
    }
    return data
