"""Networks: the layer IR, the model zoo and importers (imports nothing else of tilesim)."""
from __future__ import annotations

import difflib
from pathlib import Path

from .errors import WorkloadError
from .ir import NETWORK_INPUT, MacLayer, Model, OpLayer, conv, fc, gemm, layer_sources

__all__ = ["MacLayer", "Model", "OpLayer", "WorkloadError", "conv", "fc", "gemm", "load",
           "zoo_names"]


def zoo_names() -> list[str]:
    from .zoo import ZOO
    return sorted(ZOO)


def load(spec, batch: int = 1, input_shape=None,
         allow_unsupported: bool = False, graph: bool = False) -> Model:
    """A Model from a zoo name, a SCALE-Sim topology ``.csv``, a YAML layer table, an ONNX
    file (``.onnx``, the ``onnx`` extra) or a PyTorch factory ``file.py:function`` (the
    ``torch`` extra; it returns an ``nn.Module``), or an in-memory ``onnx.ModelProto`` or
    ``torch.nn.Module``.

    ``input_shape`` (e.g. ``"1x3x224x224"``) fixes the input of an ONNX model with dynamic
    dimensions and is required for a PyTorch factory; ``allow_unsupported`` passes ops
    tilesim cannot model through as free ops, with a warning, instead of failing.
    ``graph`` (ONNX and PyTorch models only, the models that carry weights): return a
    :class:`graph.Graph`, the Model with the graph and the user's weights, which
    ``sim.kernels.graphrun`` runs on a real input to measure activation densities."""
    if not isinstance(batch, int) or isinstance(batch, bool) or batch <= 0:
        raise WorkloadError(f"batch = {batch!r} must be a positive integer",
                            fix="use --batch 1 or more (API: batch=1 or more)")
    if not isinstance(spec, (str, Path)):  # an in-memory network
        if callable(getattr(spec, "named_modules", None)):
            if input_shape is None:
                raise WorkloadError("a PyTorch module needs an input shape",
                                    fix="pass input_shape=(1, 3, 224, 224)")
            from .torch_import import read_torch
            return read_torch(spec, input_shape, batch=batch, allow_unsupported=allow_unsupported,
                              graph=graph)
        if type(spec).__name__ == "ModelProto":
            from .onnx_import import read_onnx
            return read_onnx(spec, batch, input_shape=input_shape,
                             allow_unsupported=allow_unsupported, graph=graph)
        raise WorkloadError(f"cannot read a model from a {type(spec).__name__}",
                            fix="give a zoo name, a file path, an onnx.ModelProto or an nn.Module")
    s = str(spec)
    path = Path(s)
    torch_factory = ":" in s and s.rsplit(":", 1)[0].endswith(".py")
    suffix = path.suffix.lower()  # MODEL.ONNX, TOPO.CSV as well
    if graph and not torch_factory and suffix != ".onnx":
        raise WorkloadError(f"an input sample runs an ONNX or PyTorch model on its own "
                            f"weights; {s!r} has no weights",
                            fix="give --model file.onnx or file.py:function (or drop "
                            "--input-sample and give --input-density)")
    if suffix == ".onnx":
        from .onnx_import import read_onnx
        return read_onnx(path, batch, input_shape=input_shape, allow_unsupported=allow_unsupported,
                         graph=graph)
    if torch_factory:
        from .torch_import import load_factory
        return load_factory(s, batch, input_shape=input_shape,
                            allow_unsupported=allow_unsupported, graph=graph)
    if input_shape is not None:
        raise WorkloadError(f"an input shape is only for ONNX and PyTorch models, not {s!r}",
                            fix="drop --input-shape (API: input_shape=); zoo models, CSV and "
                            "YAML tables fix their own shapes")
    if suffix == ".csv":
        from .scalesim_csv import read_scalesim_csv
        return read_scalesim_csv(path, batch)
    if suffix in (".yaml", ".yml"):
        from .yaml_table import read_yaml_table
        return read_yaml_table(path, batch)
    from .zoo import ZOO
    if s in ZOO:
        return ZOO[s](batch)
    if path.suffix:
        raise WorkloadError(f"unsupported model file type {path.suffix!r}", source=s,
                            fix="give a zoo name, a SCALE-Sim topology .csv, a YAML layer table, "
                            "an .onnx file or a PyTorch factory file.py:function")
    close = difflib.get_close_matches(s, list(ZOO), n=1)
    raise WorkloadError(f"unknown model {s!r}",
                        fix=(f"did you mean {close[0]!r}? " if close else "") +
                        "zoo models: " + ", ".join(sorted(ZOO)))
