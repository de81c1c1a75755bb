"""Mapping layers onto the hardware (imports arch and workloads only)."""
from .dataflow import DATAFLOWS, Dataflow
from .errors import MappingError
from .mapper import Mapper, map_layer
from .mapping import Mapping, Tiling, Traffic

__all__ = ["DATAFLOWS", "Dataflow", "Mapper", "Mapping", "MappingError", "Tiling", "Traffic",
           "map_layer"]
