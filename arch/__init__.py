"""Accelerator descriptions: schema, presets, loading (imports nothing else of tilesim)."""
from .errors import ArchError
from .loader import dump_yaml, from_dict, from_yaml, gpu_presets, is_gpu, load, presets
from .schema import OPERANDS, Architecture, MemoryLevel, Precision, SystolicArray

__all__ = ["ArchError", "Architecture", "MemoryLevel", "OPERANDS", "Precision", "SystolicArray",
           "dump_yaml", "from_dict", "from_yaml", "load", "presets", "GpuSpec", "gpu_presets",
           "is_gpu", "json_schema"]


def __getattr__(name):
    # the GPU schema is built on first use: an accelerator run never needs it
    if name == "GpuSpec":
        from .gpu_schema import GpuSpec
        return GpuSpec
    if name == "json_schema":   # builds both schemas: only `tilesim schema` needs it
        from .schema_json import json_schema
        return json_schema
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
