"""tilesim: map, simulate and report CNNs on YAML-described systolic accelerators.

The public Python API (mirrors the CLI)::

    import tilesim
    result = tilesim.simulate("tpu_v1", "resnet50", batch=1)
    print(result.latency_s, result.utilization)
    df = tilesim.layers_frame(result)
"""
from ._version import __version__

from .api import (INPUT_ERRORS, layers_frame, load_arch, load_model, model_frame,  # noqa: E402
                  simulate, verify, write_outputs)

__all__ = ["INPUT_ERRORS", "__version__", "layers_frame", "load_arch", "load_model", "model_frame",
           "simulate", "verify", "write_outputs"]

from .api import baseline, compare, simulate_gpu  # noqa: E402  (GPU baselines)

__all__ += ["baseline", "compare", "simulate_gpu"]

from .api import pareto, report, sweep  # noqa: E402  (sweeps and reports)

__all__ += ["sweep", "pareto", "report"]
