"""tilesim: map, simulate and report CNNs on YAML-described systolic accelerators.

The public Python API (mirrors the CLI)::

    import tilesim
    result = tilesim.simulate("tpu_v1", "resnet50", batch=1)
    print(result.latency_s, result.utilization)
    df = tilesim.layers_frame(result)

The API's names are looked up on first use (PEP 562), so that ``import tilesim`` and the
start of the ``tilesim`` command load no package they do not need.
"""
from ._version import __version__

#: the public API, from tilesim.api
__all__ = ["INPUT_ERRORS", "__version__", "layers_frame", "load_arch", "load_model", "model_frame",
           "simulate", "verify", "write_outputs",
           "baseline", "compare", "simulate_gpu",   # GPU baselines
           "sweep", "pareto", "report"]             # sweeps and reports


def __getattr__(name):
    if name in __all__:
        from . import api
        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
