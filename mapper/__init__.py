"""Mapping layers onto the hardware: one mapspace, one search (imports arch and workloads
only; the cost model is handed in by sim)."""
from .dataflow import DATAFLOWS, Dataflow
from .errors import MappingError
from .mapper import Mapper, arch_hash
from .mapping import NO_RESIDENCY, LevelTile, Mapping, Residency, Scored, SearchResult, Tiling, Traffic
from .search import DEPRECATED_OBJECTIVES, OBJECTIVES, STRATEGIES, Budget, resolve_objective, run_search
from .space import Mapspace, Points, points_of

__all__ = ["DATAFLOWS", "DEPRECATED_OBJECTIVES", "Dataflow", "Mapper", "Mapping", "MappingError",
           "OBJECTIVES", "STRATEGIES", "Budget", "Mapspace", "Points", "Scored", "SearchResult",
           "LevelTile", "NO_RESIDENCY", "Residency", "Tiling", "Traffic", "arch_hash", "points_of", "resolve_objective", "run_search"]
