"""tilesim: map, simulate and report CNNs on YAML-described systolic accelerators.

The public Python API (mirrors the CLI)::

    import tilesim
    result = tilesim.simulate("tpu_v1", "resnet50", batch=1)
    print(result.latency_s, result.utilization)
    df = tilesim.layers_frame(result)

The API's names are looked up on first use (PEP 562), so that ``import tilesim`` and the
start of the ``tilesim`` command load no package they do not need.
"""
import os as _os

from ._version import __version__

# Installed, arch/, workloads/, ... are subpackages inside this folder. In a source
# checkout they sit beside it, and an editable install maps them; `python -c ...` run from
# the checkout's root finds this folder first (the current directory leads sys.path),
# so its subpackages are looked for beside it as well.
_root = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if (_os.path.isfile(_os.path.join(_root, "pyproject.toml"))
        and _os.path.isfile(_os.path.join(_root, "arch", "__init__.py"))):
    __path__.append(_root)

#: the public API, from tilesim.api
__all__ = ["INPUT_ERRORS", "__version__", "layers_frame", "load_arch", "load_model", "model_frame",
           "simulate", "tensors_frame", "verify", "write_outputs",
           "baseline", "compare", "simulate_gpu",   # GPU baselines
           "sweep", "pareto", "report",             # sweeps and reports
           "codesign"]                              # accelerator x network co-design


def __getattr__(name):
    if name in __all__:
        from . import api
        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
