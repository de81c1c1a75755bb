"""The sweep's progress bar: :class:`tilesim.explore.progress.Progress` (one helper for
sweeps, sweep planning and per-layer progress)."""
from tilesim.explore.progress import Progress

__all__ = ["Progress"]
