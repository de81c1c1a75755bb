"""Networks: the layer IR, the model zoo and importers (imports nothing else of tilesim)."""
from __future__ import annotations

import difflib
from pathlib import Path

from .errors import WorkloadError
from .ir import MacLayer, Model, OpLayer, conv, fc, gemm

__all__ = ["MacLayer", "Model", "OpLayer", "WorkloadError", "conv", "fc", "gemm", "load",
           "zoo_names"]


def zoo_names() -> list[str]:
    from .zoo import ZOO
    return sorted(ZOO)


def load(spec: str | Path, batch: int = 1) -> Model:
    """A Model from a zoo name, a SCALE-Sim topology ``.csv`` or a YAML layer table."""
    if not isinstance(batch, int) or isinstance(batch, bool) or batch <= 0:
        raise WorkloadError(f"batch = {batch!r} must be a positive integer", fix="use --batch 1 or more")
    s = str(spec)
    path = Path(s)
    if path.suffix == ".csv":
        from .scalesim_csv import read_scalesim_csv
        return read_scalesim_csv(path, batch)
    if path.suffix in (".yaml", ".yml"):
        from .yaml_table import read_yaml_table
        return read_yaml_table(path, batch)
    from .zoo import ZOO
    if s in ZOO:
        return ZOO[s](batch)
    if path.suffix:
        raise WorkloadError(f"unsupported model file type {path.suffix!r}", source=s,
                            fix="give a zoo name, a SCALE-Sim topology .csv or a YAML layer table")
    close = difflib.get_close_matches(s, list(ZOO), n=1)
    raise WorkloadError(f"unknown model {s!r}",
                        fix=(f"did you mean {close[0]!r}? " if close else "") +
                        "zoo models: " + ", ".join(sorted(ZOO)))
