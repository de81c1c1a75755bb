"""The user's input sample (``--input-sample x.npy``), read and checked against a graph.

The sample is one real input of the network (any batch): a numpy array, or an ``.npy``
file of one. Every error names the file and the fix.
"""
from __future__ import annotations

from pathlib import Path

from .errors import WorkloadError, regular_file


def read_sample(sample, graph):
    """The sample as a float32 array of the graph's (single) input shape, its batch free:
    a WorkloadError naming the file when it cannot be read, is not finite numbers, or
    does not match the graph input (``graph``: :class:`workloads.graph.Graph`)."""
    import numpy as np
    where = str(sample) if isinstance(sample, (str, Path)) else "the input sample"
    if isinstance(sample, (str, Path)):
        regular_file(Path(sample), "give an .npy file of the input")
        try:
            sample = np.load(sample, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise WorkloadError(f"not a readable .npy array ({e})", source=where,
                                fix="save the input with numpy.save") from None
    try:
        x = np.asarray(sample)
    except (TypeError, ValueError) as e:
        raise WorkloadError(f"not an array ({e})", source=where,
                            fix="give a numpy array or an .npy file") from None
    if x.dtype.kind not in "fiub" or not np.isfinite(x.astype(np.float32)).all():
        raise WorkloadError("the input sample must hold finite numbers", source=where,
                            fix="give a real input tensor (float32 range, no NaN or "
                            "infinity)")
    if len(graph.inputs) != 1:
        names = ", ".join(t for t, _ in graph.inputs)
        raise WorkloadError(f"the model has {len(graph.inputs)} inputs ({names}); one input "
                            "sample cannot feed them", source=where,
                            fix="measure a model of one input, or give the densities "
                            "(--input-density)")
    want = tuple(graph.inputs[0][1])
    if x.ndim != len(want) or x.shape[1:] != want[1:] or x.shape[0] < 1:
        raise WorkloadError(f"the input sample's shape {'x'.join(map(str, x.shape))} does "
                            f"not match the input shape {'x'.join(map(str, want))}",
                            source=where, fix="give a sample of the model's input shape "
                            "(any batch)")
    return np.ascontiguousarray(x, dtype=np.float32)
