"""The public Python API: wires arch -> workloads -> mapper -> sim -> reports.

No modelling logic lives here (DESIGN §1).
"""
from __future__ import annotations

import sys
from pathlib import Path

import arch as _arch
import workloads as _wl
from mapper import MappingError
from sim.sweep.errors import SweepError
from sim import ModelResult, layers_frame, simulate_model  # noqa: F401 (re-exported)

#: errors caused by the user's input (the CLI turns them into exit code 2)
INPUT_ERRORS = (_arch.ArchError, _wl.WorkloadError, MappingError, SweepError)


def load_arch(spec) -> _arch.Architecture:
    """An Architecture from a preset name, YAML path, SCALE-Sim .cfg path, or itself."""
    return spec if isinstance(spec, _arch.Architecture) else _arch.load(spec)


def load_model(spec, batch: int | None = None, input_shape=None,
               allow_unsupported: bool = False) -> _wl.Model:
    """A Model from a zoo name, SCALE-Sim topology CSV, YAML layer table, ONNX file,
    ``file.py:factory``, onnx.ModelProto, torch.nn.Module, or itself.

    ``batch`` None keeps a Model's own batch (and means 1 for a name or file);
    ``input_shape`` and ``allow_unsupported`` are for ONNX and PyTorch models
    (see :func:`workloads.load`)."""
    if isinstance(spec, _wl.Model):
        return spec if batch is None or spec.batch == batch else _wl.Model(
            spec.name, tuple(l.with_batch(batch) for l in spec.layers), batch, spec.source)
    return _wl.load(spec, batch=1 if batch is None else batch, input_shape=input_shape,
                    allow_unsupported=allow_unsupported)


FIDELITIES = ("analytic", "des")


def simulate(arch, model, batch: int | None = None, progress=None, objective: str = "edp",
             strategy: str = "heuristic", budget=None, input_shape=None,
             fidelity: str = "analytic") -> ModelResult:
    """Map and time every layer of ``model`` on ``arch`` with the analytic model
    (``fidelity="des"``: the discrete-event engine, see :func:`simulate_des`).

    ``model`` is a zoo name, a file path, a Model, an onnx.ModelProto or a
    torch.nn.Module (give ``input_shape``, e.g. ``(1, 3, 224, 224)``); ``batch`` None
    keeps the Model's batch (1 for a name or file). Each MAC layer's mapping is searched for ``objective``
    (``edp`` by default, ``latency``, ``energy``; ``default`` = least DRAM traffic, no
    search) with
    ``strategy`` (``heuristic`` or ``exhaustive``) within ``budget`` (a number of candidates
    per layer or a :class:`mapper.Budget` of candidates and seconds)."""
    if fidelity not in FIDELITIES:
        raise ValueError(f"unknown fidelity {fidelity!r}; use one of {', '.join(FIDELITIES)}")
    model = load_model(model, batch, input_shape=input_shape)
    if fidelity == "des":
        return simulate_des(arch, model, progress=progress, objective=objective,
                            strategy=strategy, budget=budget).result
    return simulate_model(model, load_arch(arch), progress=progress,
                          objective=objective, strategy=strategy, budget=budget)


def map(arch, model, layer: str, batch: int | None = None, objective: str = "edp",
        strategy: str = "heuristic", budget=None, top: int = 5, input_shape=None) -> dict:
    """Search the mapping of one MAC layer; returns ``mapping`` (the best), ``result``
    (its LayerResult, energy included) and ``runner_ups``: [(Mapping, LayerResult)]."""
    from sim import make_mapper, simulate_mac
    from sim.energy import energy_table, mac_energy_terms, with_energy
    a, m = load_arch(arch), load_model(model, batch, input_shape=input_shape)
    found = [l for l in m.layers if l.name == layer]
    if not found:
        raise _wl.WorkloadError(f"model {m.name!r} has no layer {layer!r}",
                                fix=f"use one of: {', '.join(l.name for l in m.layers[:12])}"
                                    + (", ..." if len(m.layers) > 12 else ""))
    if not isinstance(found[0], _wl.MacLayer):
        raise _wl.WorkloadError(f"layer {layer!r} is a {found[0].kind} (vector unit), not a MAC "
                                "layer; it has no mapping", fix="pick a conv, fc or gemm layer")
    mapper = make_mapper(a, objective, strategy, budget)
    best = mapper.map(found[0])
    tab = energy_table(a)

    def timed(mp):
        r = simulate_mac(mp, a)
        return with_energy(r, mac_energy_terms(mp, a, r, tab))
    ups = []
    if best.search is not None:
        space = mapper.space(found[0])
        ups = [(mp, timed(mp)) for mp in (space.mapping(s.index)
                                          for s in best.search.runner_ups[:top])]
    return {"mapping": best, "result": timed(best), "runner_ups": ups, "arch": a, "model": m}


def simulate_des(arch, model, batch: int | None = None, progress=None,
                 trace_limit: int | None = None, objective: str = "edp",
                 strategy: str = "heuristic", budget=None):
    """Time every layer with the SimPy discrete-event engine (:mod:`sim.des`).

    Returns a ``sim.des.DesRun``: ``.result`` (a ModelResult with fidelity "des"),
    ``.trace`` (a bounded timeline when ``trace_limit`` > 0, else None) and ``.events``.
    Mappings are searched exactly as in :func:`simulate` (``objective``, ``strategy``,
    ``budget``), so both fidelities time the same mappings."""
    from sim import make_mapper
    from sim.des import simulate_model as des_model
    a = load_arch(arch)
    return des_model(load_model(model, batch), a, make_mapper(a, objective, strategy, budget),
                     progress=progress, trace_limit=trace_limit)


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
    fidelity = result.layers[0].fidelity if result.layers else "analytic"
    if fidelity == "des":
        for k in ("stall_input_cycles", "stall_weight_cycles", "stall_psum_cycles",
                  "stall_writeback_cycles", "stall_contention_cycles", "stall_other_cycles",
                  "events"):
            summary[k if k != "events" else "des_events"] = sum(getattr(l, k) for l in
                                                                 result.layers)
    summary.update({"tilesim_version": __version__, "fidelity": fidelity,
                    "model_source": model.source, "params": model.params,
                    "command": command if command is not None else " ".join(sys.argv)})
    paths = {
        "layers": write_csv(layers_frame(result), out / "layers.csv"),
        "model": write_csv(model_frame(model), out / "model.csv"),
        "arch": write_text(out / "arch.yaml", _arch.dump_yaml(arch)),
        "summary": write_json(summary, out / "summary.json"),
    }
    return {k: str(v) for k, v in paths.items()}


def sweep(spec, out=None, workers: int | None = None, dask: str | None = None,
          resume: bool = False, progress: bool = False):
    """Run a design sweep (YAML spec path, dict or SweepSpec) -> DataFrame; see
    :func:`tilesim.sweeping.sweep` and ``examples/sweep_resnet18.yaml``."""
    from .sweeping import sweep as _sweep
    return _sweep(spec, out=out, workers=workers, dask=dask, resume=resume, progress=progress)


def pareto(df, objectives=("latency_ms", "energy_uj"), maximize=(), by=None,
           feasible_only: bool = True):
    """The Pareto-front rows of a results table (see :func:`reports.pareto`)."""
    from reports import pareto as _pareto
    return _pareto(df, objectives=objectives, maximize=maximize, by=by,
                   feasible_only=feasible_only)


def report(dirs, out, color: str | None = None, title: str | None = None):
    """Write a report (HTML, or Markdown for ``*.md``) of output folders; see
    :func:`tilesim.reporting.report`."""
    from .reporting import report as _report
    return _report(dirs, out, color=color, title=title)
