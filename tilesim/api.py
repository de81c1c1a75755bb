"""The public Python API: wires arch -> workloads -> mapper -> sim -> reports.

No modelling logic lives here (DESIGN §1).
"""
from __future__ import annotations

import sys
from pathlib import Path

import arch as _arch
import workloads as _wl
from mapper import MappingError
from sim import ModelResult, layers_frame, simulate_model  # noqa: F401 (re-exported)

#: errors caused by the user's input (the CLI turns them into exit code 2)
INPUT_ERRORS = (_arch.ArchError, _wl.WorkloadError, MappingError)


def load_arch(spec) -> _arch.Architecture:
    """An Architecture from a preset name, YAML path, SCALE-Sim .cfg path, or itself."""
    return spec if isinstance(spec, _arch.Architecture) else _arch.load(spec)


def load_model(spec, batch: int | None = None) -> _wl.Model:
    """A Model from a zoo name, SCALE-Sim topology CSV, YAML layer table, or itself.

    ``batch`` None keeps a Model's own batch (and means 1 for a name or file)."""
    if isinstance(spec, _wl.Model):
        return spec if batch is None or spec.batch == batch else _wl.Model(
            spec.name, tuple(l.with_batch(batch) for l in spec.layers), batch, spec.source)
    return _wl.load(spec, batch=1 if batch is None else batch)


def simulate(arch, model, batch: int | None = None, progress=None) -> ModelResult:
    """Map and time every layer of ``model`` on ``arch`` with the analytic model.

    ``model`` is a zoo name, a file path or a Model; ``batch`` None keeps the Model's
    batch (1 for a name or file)."""
    return simulate_model(load_model(model, batch), load_arch(arch), progress=progress)


def model_frame(model: _wl.Model):
    """The model's layers as a table (what ``model.csv`` holds)."""
    import pandas as pd
    rows = []
    for l in model.layers:
        rows.append({"layer": l.name, "kind": l.kind, "N": l.N, "C": l.C, "H": l.H, "W": l.W,
                     "K": l.K, "R": l.R, "S": l.S, "P": l.P, "Q": l.Q,
                     "stride_h": l.stride[0], "stride_w": l.stride[1],
                     "pad_h": l.padding[0], "pad_w": l.padding[1],
                     "dilation_h": getattr(l, "dilation", (1, 1))[0],
                     "dilation_w": getattr(l, "dilation", (1, 1))[1],
                     "groups": getattr(l, "groups", 1), "macs": l.macs, "params": l.params})
    return pd.DataFrame(rows)


def write_outputs(out_dir, result: ModelResult, arch: _arch.Architecture, model: _wl.Model,
                  command: str | None = None) -> dict:
    """Write layers.csv, summary.json, arch.yaml and model.csv into ``out_dir``."""
    from reports import write_csv, write_json, write_text

    from . import __version__
    out = Path(out_dir)
    summary = result.summary()
    summary.update({"tilesim_version": __version__, "fidelity": "analytic",
                    "model_source": model.source, "params": model.params,
                    "command": command if command is not None else " ".join(sys.argv)})
    paths = {
        "layers": write_csv(layers_frame(result), out / "layers.csv"),
        "model": write_csv(model_frame(model), out / "model.csv"),
        "arch": write_text(out / "arch.yaml", _arch.dump_yaml(arch)),
        "summary": write_json(summary, out / "summary.json"),
    }
    return {k: str(v) for k, v in paths.items()}


def verify(arch, model, layers: int | None = None, seed: int = 0, batch: int | None = None,
           progress=None):
    """Run the functional executor and the PE model on ``model``'s MAC layers (the first
    ``layers`` if given) and compare with the reference kernels and the analytic cycles;
    returns a :class:`sim.verify.VerifyResult` (``.ok``, ``.checks``, ``.frame()``)."""
    from sim.verify import verify_model
    return verify_model(load_model(model, batch), load_arch(arch), layers=layers, seed=seed,
                        progress=progress)
