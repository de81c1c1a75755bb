"""Mapping layers onto the hardware (imports arch and workloads only)."""
from .dataflow import DATAFLOWS, Dataflow
from .errors import MappingError
from .mapper import Mapper, SearchMapper, arch_hash, map_layer
from .mapping import Mapping, Tiling, Traffic
from .search import OBJECTIVES, STRATEGIES, Budget, SearchResult, run_search
from .space import Mapspace, Points

__all__ = ["DATAFLOWS", "Dataflow", "Mapper", "Mapping", "MappingError", "Tiling", "Traffic",
           "map_layer", "OBJECTIVES", "STRATEGIES", "Budget", "SearchResult", "run_search",
           "Mapspace", "Points", "SearchMapper", "arch_hash"]
