"""Accelerator descriptions: schema, presets, loading (imports nothing else of tilesim)."""
from .errors import ArchError
from .gpu_schema import GpuSpec
from .loader import dump_yaml, from_dict, from_yaml, gpu_presets, load, presets
from .schema import OPERANDS, Architecture, MemoryLevel, Precision, SystolicArray

__all__ = ["ArchError", "Architecture", "MemoryLevel", "OPERANDS", "Precision", "SystolicArray",
           "dump_yaml", "from_dict", "from_yaml", "load", "presets", "GpuSpec", "gpu_presets"]
