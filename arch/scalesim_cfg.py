"""Read a SCALE-Sim ``.cfg`` file as an Architecture.

Mapping (SCALE-Sim v2/v3 semantics): ArrayHeight -> rows, ArrayWidth -> cols,
Dataflow -> dataflow, {Ifmap,Filter,Ofmap}SramSzkB -> three double-buffered SRAMs
(SCALE-Sim's kB is 1024 bytes), Bandwidth -> DRAM words per cycle with 1-byte words
(int8). SCALE-Sim has no clock, technology or vector unit: 1 GHz, 28 nm and a vector
unit as wide as the array are filled in and recorded in the resolved YAML.
"""
from __future__ import annotations

import configparser
from pathlib import Path

from .errors import ArchError

REQUIRED = ("ArrayHeight", "ArrayWidth", "IfmapSramSzkB", "FilterSramSzkB", "OfmapSramSzkB",
            "Dataflow")


def cfg_dict(path: Path, text: str) -> dict:
    """The architecture dict (our YAML form) of the SCALE-Sim config ``text`` read from
    ``path``; :func:`arch.loader.load` validates it (this module does not import the
    loader: no import circle)."""
    src = str(path)
    cp = configparser.ConfigParser(strict=True)
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
    ints = {}
    for key in ("ArrayHeight", "ArrayWidth", "IfmapSramSzkB", "FilterSramSzkB", "OfmapSramSzkB"):
        try:
            ints[key] = int(vals[key])
        except ValueError:
            raise ArchError(f"[{sec}] {key}: {vals[key]!r} is not an integer", source=src,
                            fix="give a whole number") from None
        if ints[key] <= 0:
            raise ArchError(f"[{sec}] {key}: {ints[key]} must be positive", source=src,
                            fix="give a number >= 1")
    df = vals["Dataflow"].lower()
    if df not in ("os", "ws", "is"):
        raise ArchError(f"[{sec}] Dataflow: {vals['Dataflow']!r} is not os, ws or is", source=src,
                        fix="use Dataflow: os, ws or is")
    bw = 10.0
    if "Bandwidth" in vals:
        try:
            bw = float(vals["Bandwidth"])
        except ValueError:
            raise ArchError(f"[{sec}] Bandwidth: {vals['Bandwidth']!r} is not a number",
                            source=src, fix="give words per cycle, e.g. Bandwidth: 10") from None
        if not bw > 0:
            raise ArchError(f"[{sec}] Bandwidth: {bw:g} must be positive", source=src,
                            fix="give words per cycle, e.g. Bandwidth: 10")
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
