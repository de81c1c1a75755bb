"""The JSON Schema of architecture files (``tilesim schema``), for editors and CI checks.

One document covers both kinds of file: a file with ``kind: gpu`` is checked against the
GPU preset schema (:mod:`arch.gpu_schema`), any other against the accelerator schema
(:mod:`arch.schema`). Built from the pydantic models, so it cannot drift from them:
unknown keys are refused (``additionalProperties: false``), required keys, enums
(dataflows, precisions, memory kinds) and ``version: 1`` come from the fields, and every
unit-string field (clock, size, bandwidth, energy, power, latency) is a string with a
pattern (:data:`arch.units.JSON_UNITS`), never a bare number. Cross-field checks that a
schema cannot say (memory[0] is the only DRAM, every operand has an on-chip home, unique
level names) are left to the loader, except: an on-chip level needs a ``size`` and the
DRAM level a ``bandwidth``.
"""
from __future__ import annotations

from pydantic.json_schema import models_json_schema

from .gpu_schema import GpuSpec
from .schema import Architecture

#: draft-07: what editors' YAML support (yaml-language-server) implements; the document
#: uses nothing newer
DIALECT = "http://json-schema.org/draft-07/schema#"


def json_schema() -> dict:
    """The JSON Schema (draft-07) of an accelerator or GPU architecture file."""
    _, top = models_json_schema([(Architecture, "validation"), (GpuSpec, "validation")],
                                ref_template="#/definitions/{model}")
    defs = top["$defs"]
    defs["MemoryLevel"].update({
        "if": {"properties": {"kind": {"const": "dram"}}, "required": ["kind"]},
        "then": {"required": ["bandwidth"]},
        "else": {"required": ["size"]}})
    return {
        "$schema": DIALECT,
        "title": "tilesim architecture",
        "description": "A tilesim architecture file: an accelerator (arch/presets/*.yaml) or, "
                       "with kind: gpu, a GPU preset (arch/gpus/*.yaml). Sizes, bandwidths, "
                       "clocks, energies and powers are strings with a unit (\"24 MiB\", "
                       "\"34 GB/s\", \"700 MHz\", \"3 pJ\", \"3 mW\").",
        "type": "object",
        "if": {"properties": {"kind": {"const": "gpu"}}, "required": ["kind"]},
        "then": {"$ref": "#/definitions/GpuSpec"},
        "else": {"$ref": "#/definitions/Architecture"},
        "definitions": defs,
    }
