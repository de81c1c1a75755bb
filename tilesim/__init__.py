"""tilesim: map, simulate and report CNNs on YAML-described systolic accelerators.

The public Python API (mirrors the CLI)::

    import tilesim
    result = tilesim.simulate("tpu_v1", "resnet50", batch=1)
    print(result.latency_s, result.utilization)
    df = tilesim.layers_frame(result)

Names are looked up on first use (PEP 562), so that ``import tilesim`` and the start of the
``tilesim`` command load no package, nor the installed version's metadata, they do not need.
"""
#: the public API, from tilesim.api
__all__ = ["INPUT_ERRORS", "__version__", "layers_frame", "load_arch", "load_model", "model_frame",
           "simulate", "verify", "write_outputs",
           "baseline", "compare", "simulate_gpu",   # GPU baselines
           "sweep", "pareto", "report"]             # sweeps and reports


def __getattr__(name):
    if name == "__version__":   # read once from the installed metadata
        from importlib.metadata import PackageNotFoundError, version
        try:
            v = version("tilesim")
        except PackageNotFoundError:  # running from a source tree that is not installed
            v = "0+unknown"
        globals()["__version__"] = v
        return v
    if name in __all__:
        from . import api
        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
