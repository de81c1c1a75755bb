"""The public Python API: wires arch -> workloads -> mapper -> sim -> reports.

No modelling logic lives here (DESIGN §1).
"""
from __future__ import annotations

import sys
from pathlib import Path

import tilesim.arch as _arch
import tilesim.workloads as _wl
from tilesim.mapper import MappingError
from tilesim.sim import ModelResult, layers_frame, simulate_model, tensors_frame  # noqa: F401

from ._version import __version__


def __getattr__(name):
    """``INPUT_ERRORS`` and explore's constants, on first use: they live in packages that a
    run does not otherwise import (the sweep package, the measurement harness; a fast start)."""
    if name == "INPUT_ERRORS":
        from tilesim.explore.harness import BaselineError
        from tilesim.explore.sweep.errors import SweepError
        #: errors caused by the user's input (the CLI turns them into exit code 2)
        return (_arch.ArchError, _wl.WorkloadError, MappingError, BaselineError, SweepError)
    if name in ("ACCELERATOR_ENERGY_SOURCE", "GPU_DEFAULT_PRECISION"):
        from tilesim.explore import compare
        return getattr(compare, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_arch(spec) -> _arch.Architecture:
    """An Architecture from a preset name, YAML path, SCALE-Sim .cfg path, or itself;
    a GPU preset name or ``kind: gpu`` YAML gives an ``arch.GpuSpec``."""
    return spec if isinstance(spec, _arch.Architecture) or _arch.is_gpu(spec) else _arch.load(spec)


def _accelerator(a, what: str) -> _arch.Architecture:
    """``a`` if it is an accelerator, else an ArchError saying ``what`` needs one."""
    if _arch.is_gpu(a):
        raise _arch.ArchError(f"{a.name!r} is a GPU preset; {what} needs an accelerator "
                              "(a systolic-array architecture)",
                              fix="give an accelerator preset or YAML, or use `tilesim run "
                                  "--arch GPU` (analytic) / `tilesim compare --gpu GPU` "
                                  "(API: tilesim.simulate(GPU, model) / "
                                  "tilesim.compare(archs, GPU, model))")
    return a


def target(arch, fidelity: str = "analytic", precision: str | None = None):
    """The architecture (loaded if given by name or path) checked against what is asked of
    it, the one place that decides: a GPU preset runs the GPU latency model (analytic, at
    ``precision``); an accelerator runs the cost model or the discrete-event engine
    (``fidelity="des"``) at the precision of its YAML, so ``precision`` must be None."""
    a = load_arch(arch)
    if _arch.is_gpu(a):
        if fidelity == "des":
            _accelerator(a, "the discrete-event engine (--fidelity des)")
    elif precision is not None:
        raise _arch.ArchError(f"a precision ({precision}) is only chosen for a GPU preset; "
                              f"{a.name!r} is an accelerator",
                              fix="set the accelerator's precision in its YAML (precision: "
                                  "{input: ..., weight: ...}) and drop --precision "
                                  "(API: precision=None)")
    return a


def simulate_gpu(gpu, model, batch: int | None = None, precision: str | None = None,
                 input_shape=None, params=None):
    """Model every layer of ``model`` on a GPU preset (``sim.gpu.simulate_gpu``): a
    ``sim.gpu.GpuModelResult`` (a ModelResult whose cycles are at the GPU's clock and
    whose energy is TDP x time). ``precision`` None means fp16; ``params`` a
    ``sim.gpu.GpuModelParams`` (None: the defaults)."""
    from tilesim.explore.compare import GPU_DEFAULT_PRECISION
    from tilesim.sim.gpu import simulate_gpu as _gpu_model
    g = load_arch(gpu)
    if not _arch.is_gpu(g):
        raise _arch.ArchError(f"{g.name!r} is an accelerator, not a GPU preset",
                              fix="give a GPU preset: " + ", ".join(_arch.gpu_presets()))
    return _gpu_model(load_model(model, batch, input_shape=input_shape), g,
                      precision or GPU_DEFAULT_PRECISION, params)


def load_model(spec, batch: int | None = None, input_shape=None,
               allow_unsupported: bool = False, weight_sparsity: str | None = None,
               weight_density: float | None = None,
               input_density: float | None = None, input_sample=None,
               actual_data: bool = False) -> _wl.Model:
    """A Model from a zoo name, SCALE-Sim topology CSV, YAML layer table, ONNX file,
    ``file.py:factory``, onnx.ModelProto, torch.nn.Module, or itself.

    ``batch`` None keeps a Model's own batch (and means 1 for a name or file);
    ``input_shape`` and ``allow_unsupported`` are for ONNX and PyTorch models
    (see :func:`workloads.load`). ``weight_sparsity`` (``"2:4"``: N:M) or
    ``weight_density`` (unstructured, in (0, 1]) and ``input_density`` set every MAC
    layer's sparsity (:func:`workloads.sparsity.apply`; what it changes is the
    architecture's to say: :func:`sparsity_warning`). ``input_sample`` (an ONNX model or a
    PyTorch module or factory: a numpy array or ``.npy`` path of a real input) measures
    every MAC layer's input and output densities on it, with the model's own weights
    (``sim.kernels.graphrun``, on the reference kernels); ``actual_data`` also keeps the
    non-zero masks of every conv's and linear's operands (``Model.data``), on which
    :func:`simulate` then counts compressed formats and gated MACs (mapper/actual.py;
    the sample's batch must be the model's)."""
    if actual_data and input_sample is None:
        raise _wl.WorkloadError("actual data needs an input sample: the tensors are the "
                                "ones the model meets on it",
                                fix="give --input-sample x.npy with --actual-data (API: "
                                "input_sample=)")
    if actual_data and (weight_sparsity is not None or weight_density is not None):
        raise _wl.WorkloadError("actual data counts the model's own weights; a weight "
                                "sparsity asked on top of them would not be in the data",
                                fix="leave out --weight-sparsity / --weight-density with "
                                "--actual-data (prune the model's weights instead)")
    if isinstance(spec, _wl.Model):
        if input_sample is not None:
            raise _wl.WorkloadError("an input sample runs an ONNX or PyTorch model on its "
                                    "own weights; a Model has none",
                                    fix="pass the onnx.ModelProto or torch.nn.Module itself")
        if spec.data and batch is not None and spec.batch != batch:
            raise _wl.WorkloadError(f"model {spec.name!r} carries the tensors its layers met "
                                    f"at batch {spec.batch}; at batch {batch} they would "
                                    "be other tensors",
                                    fix=f"load it again with batch={batch} and an input "
                                    f"sample of that batch, or keep batch {spec.batch}")
        m = spec if batch is None or spec.batch == batch else _wl.Model(
            spec.name, tuple(l.with_batch(batch) for l in spec.layers), batch, spec.source)
    elif input_sample is not None:
        if input_density is not None:
            raise _wl.WorkloadError("both --input-sample and --input-density given",
                                    fix="give one: the sample measures every layer's input "
                                    "density (API: input_sample= or input_density=)")
        from tilesim.sim.kernels.graphrun import measure
        from tilesim.workloads.sample import read_sample
        g = _wl.load(spec, batch=1 if batch is None else batch, input_shape=input_shape,
                     allow_unsupported=allow_unsupported, graph=True)
        if actual_data:
            from tilesim.sim.kernels.graphrun import layer_data
            m, left = layer_data(g, read_sample(input_sample, g))
            if left:
                import warnings
                warnings.warn(f"{len(left)} of {len(m.mac_layers)} MAC layers keep their "
                              f"densities, their tensors not being the layer's shape "
                              f"(e.g. {left[0]!r}: a linear over tokens or a MatMul of two "
                              "activations)", stacklevel=2)
        else:
            m = measure(g, read_sample(input_sample, g))
    else:
        m = _wl.load(spec, batch=1 if batch is None else batch, input_shape=input_shape,
                     allow_unsupported=allow_unsupported)
    from tilesim.workloads import sparsity
    return sparsity.apply(m, weight_nm=weight_sparsity, weight_density=weight_density,
                          input_density=input_density)


def sparsity_warning(arch, model) -> str | None:
    """One line when ``model`` has layers made sparse by request (not the zeros counted
    in an imported file's weights) but ``arch`` declares neither a
    compressed ``format`` on a memory level nor ``zeros`` on its array, so sparsity
    changes no number (:mod:`mapper.sparse`); None otherwise."""
    from tilesim.mapper import sparse
    asked = [l for l in model.layers if getattr(l, "sparsity", None) is not None
             and not l.sparsity.dense   # a density-1 sparsity has no zero to exploit
             and not l.sparsity.counted]   # zeros counted in a file's weights: no warning
    if _arch.is_gpu(arch) or not asked:
        return None
    if sparse.declares(arch):
        return None
    return (f"sparsity changes no number on {arch.name!r}: it declares no compressed "
            "`format` on any memory level (memory[i].format) and no `zeros` on its array "
            "(compute.arrays[0].zeros); add e.g. `format: bitmask` to a level and `zeros: "
            "gate` or `skip` to the array (docs/sparsity.md)")


def _warn_sparsity(arch, model) -> None:
    w = sparsity_warning(arch, model)
    if w:
        import warnings
        warnings.warn(w, stacklevel=3)


FIDELITIES = ("analytic", "des")


def baseline(model, device: str = "cpu", precision: str = "fp32", batch: int | None = None,
             repeats: int = 50, warmup: int = 5, input_shape=None, out=None, progress=None):
    """Measure every layer of ``model`` (and the whole model) with PyTorch on ``device``
    (``cuda`` or ``cpu``; the ``torch`` extra): a ``tilesim.explore.harness.Measurement``. With
    ``out``, its table is written there as CSV (atomically); ``progress(i, n, name)`` is
    called as each layer starts."""
    from tilesim.explore.harness import measure
    m = measure(load_model(model, batch, input_shape=input_shape), device=device,
                precision=precision, repeats=repeats, warmup=warmup, progress=progress)
    if out is not None:
        from tilesim.reports import write_csv
        write_csv(m.frame(), out)
    return m


def simulate(arch, model, batch: int | None = None, progress=None, objective: str = "edp",
             strategy: str = "heuristic", budget=None, input_shape=None,
             fidelity: str = "analytic", precision: str | None = None,
             fusion: str | None = None, steady_state: bool = False) -> ModelResult:
    """Map and time every layer of ``model`` on ``arch`` with the analytic model
    (``fidelity="des"``: the discrete-event engine, see :func:`simulate_des`).
    ``fusion`` is the network schedule (``none``: every activation to and from DRAM;
    ``residency``: activations stay on chip where they fit; None: the architecture's
    default, its YAML's ``fusion``; ``sim.planner``). ``steady_state``: weights that fit
    stay on chip across inferences (``latency_ms`` a later inference's,
    ``latency_cold_ms`` the first's).

    ``model`` is a zoo name, a file path, a Model, an onnx.ModelProto or a
    torch.nn.Module (give ``input_shape``, e.g. ``(1, 3, 224, 224)``); ``batch`` None
    keeps the Model's batch (1 for a name or file). Each MAC layer's mapping is searched for ``objective``
    (``edp`` by default, ``latency``, ``energy``, ``traffic``: the least DRAM traffic;
    ``default`` is a deprecated name of ``traffic``) with
    ``strategy`` (``heuristic`` or ``exhaustive``) within ``budget`` (a number of candidates
    per layer or a :class:`mapper.Budget` of candidates and seconds).

    A GPU preset for ``arch`` gives the GPU model's result (:func:`simulate_gpu`) at
    ``precision`` (fp32, tf32, fp16, bf16, int8; default fp16); an accelerator's
    precision is in its YAML, so ``precision`` must then be None."""
    if fidelity not in FIDELITIES:
        raise ValueError(f"unknown fidelity {fidelity!r}; use one of {', '.join(FIDELITIES)}")
    model = load_model(model, batch, input_shape=input_shape)
    arch = target(arch, fidelity, precision)
    if _arch.is_gpu(arch):
        return simulate_gpu(arch, model, precision=precision)
    _warn_sparsity(arch, model)
    if fidelity == "des":
        import warnings
        with warnings.catch_warnings():   # warned once, above
            warnings.simplefilter("ignore")
            return simulate_des(arch, model, progress=progress, objective=objective,
                                strategy=strategy, budget=budget, fusion=fusion,
                                steady_state=steady_state).result
    return simulate_model(model, arch, progress=progress,
                          objective=objective, strategy=strategy, budget=budget,
                          fusion=_fusion(fusion), steady_state=steady_state)


def map(arch, model, layer: str, batch: int | None = None, objective: str = "edp",
        strategy: str = "heuristic", budget=None, top: int = 5, input_shape=None) -> dict:
    """Search the mapping of one MAC layer; returns ``mapping`` (the best), ``result``
    (its LayerResult, energy included) and ``runner_ups``: [(Mapping, LayerResult)]."""
    from tilesim.sim import make_mapper
    a, m = load_arch(arch), load_model(model, batch, input_shape=input_shape)
    _accelerator(a, "a mapping")
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
    space = mapper.space(found[0])
    ups = [(mp, mapper.cost.mac_result(mp)) for mp in (space.mapping(s.index)
                                                       for s in best.search.runner_ups[:top])]
    return {"mapping": best, "result": mapper.cost.mac_result(best), "runner_ups": ups,
            "arch": a, "model": m}


def simulate_des(arch, model, batch: int | None = None, progress=None,
                 trace_limit: int | None = None, objective: str = "edp",
                 strategy: str = "heuristic", budget=None, fusion: str | None = None,
                 steady_state: bool = False):
    """Time every layer with the SimPy discrete-event engine (:mod:`sim.des`).

    Returns a ``sim.des.DesRun``: ``.result`` (a ModelResult with fidelity "des"),
    ``.trace`` (a bounded timeline when ``trace_limit`` > 0, else None) and ``.events``.
    Mappings are searched exactly as in :func:`simulate` (``objective``, ``strategy``,
    ``budget``), so both fidelities time the same mappings."""
    from tilesim.sim import make_mapper
    from tilesim.sim.des import simulate_model as des_model
    a = target(arch, "des")
    model = load_model(model, batch)
    _warn_sparsity(a, model)
    return des_model(model, a, make_mapper(a, objective, strategy, budget),
                     progress=progress, trace_limit=trace_limit, fusion=_fusion(fusion),
                     steady_state=steady_state)


def _fusion(fusion: str | None) -> str | None:
    """``fusion`` checked: None (the architecture's default) or one of the schedules."""
    from tilesim.sim.planner import FUSIONS
    if fusion is not None and fusion not in FUSIONS:
        raise ValueError(f"unknown fusion {fusion!r}; use one of {', '.join(FUSIONS)}")
    return fusion


def model_frame(model: _wl.Model):
    """The model's layers as a table (what ``model.csv`` holds): ``Model.frame()``."""
    return model.frame()


def write_outputs(out_dir, result: ModelResult, arch: _arch.Architecture, model: _wl.Model,
                  command: str | None = None, trace: dict | None = None) -> dict:
    """Write layers.csv, tensors.csv, summary.json, arch.yaml and model.csv into
    ``out_dir``, and trace.json when given a DES ``trace`` (Chrome trace format:
    ``DesRun.trace.to_chrome()``); then, last, manifest.json (every file's size and sha256:
    the folder is complete)."""
    from tilesim.reports import open_folder, seal_folder, write_csv, write_json, write_text

    out = open_folder(out_dir)   # an old manifest goes first: incomplete until sealed
    summary = result.summary()
    summary.update({"tilesim_version": __version__, "fidelity": result.fidelity,
                    "model_source": model.source, "params": model.params,
                    "command": command if command is not None else " ".join(sys.argv)})
    paths = {
        "layers": write_csv(layers_frame(result), out / "layers.csv"),
        "tensors": write_csv(tensors_frame(result), out / "tensors.csv"),
        "model": write_csv(model.frame(), out / "model.csv"),
        "arch": write_text(out / "arch.yaml", _arch.dump_yaml(arch)),
        "summary": write_json(summary, out / "summary.json"),
    }
    if trace is not None:   # the report's DES timeline
        paths["trace"] = write_json(trace, out / "trace.json", compact=True)
    paths["manifest"] = seal_folder(out, paths.values(), f"tilesim {__version__}")
    return {k: str(v) for k, v in paths.items()}


def compare(archs, gpu, model, batch: int | None = None, precision: str | None = None,
            measured=None, objective: str = "edp", input_shape=None) -> dict:
    """Each design in ``archs`` next to the GPU model of ``gpu`` (and a ``tilesim
    baseline`` CSV ``measured``): returns ``frame`` (compare.csv's long table: one row
    per layer x design) and ``summary`` (compare_summary.json: totals per design and the
    GPU model's MAPE and R^2 against the measurement). See docs/outputs.md and
    :func:`tilesim.explore.compare.compare_designs`.

    Without ``batch`` a measurement's batch is used (else 1); without ``precision`` the
    GPU model runs at the precision the measurement's MAC layers ran at (else fp16).
    With a measurement the GPU model runs one kernel per layer as eager PyTorch does
    (no residual-add fusion), so that every measured layer has a modelled one."""
    from tilesim.explore.compare import compare_designs, measured_batch, read_measured
    meas = read_measured(measured) if measured is not None else None
    m = load_model(model, measured_batch(meas, batch, measured), input_shape=input_shape)
    g = load_arch(gpu)
    return compare_designs([load_arch(a) for a in archs], g, m, precision, meas, measured,
                           objective)


def write_compare(out_dir, got: dict, command: str | None = None) -> dict:
    """Write compare.csv and compare_summary.json (with version and command) into ``out_dir``,
    then manifest.json (the folder is complete)."""
    from tilesim.reports import open_folder, seal_folder, write_csv, write_json

    out = open_folder(out_dir)   # an old manifest goes first: incomplete until sealed
    summary = dict(got["summary"], tilesim_version=__version__,
                   command=command if command is not None else " ".join(sys.argv))
    paths = {"compare": write_csv(got["frame"], out / "compare.csv"),
             "summary": write_json(summary, out / "compare_summary.json")}
    paths["manifest"] = seal_folder(out, paths.values(), f"tilesim {__version__}")
    return {k: str(v) for k, v in paths.items()}


def verify(arch, model, layers: int | None = None, seed: int = 0, batch: int | None = None,
           progress=None, objective: str = "edp", strategy: str = "heuristic", budget=None,
           input_shape=None):
    """Run the functional executor and the PE model on ``model``'s MAC layers (the first
    ``layers`` if given) and compare with the reference kernels and the analytic cycles;
    returns a :class:`sim.verify.VerifyResult` (``.ok``, ``.checks``, ``.frame()``).
    Layers are mapped as :func:`simulate` maps them (``objective``, ``strategy``,
    ``budget``; ``objective="traffic"``: the least DRAM traffic)."""
    from tilesim.sim import make_mapper
    from tilesim.sim.verify import verify_model
    a = _accelerator(load_arch(arch), "verify")
    return verify_model(load_model(model, batch, input_shape=input_shape), a, layers=layers,
                        seed=seed, progress=progress,
                        mapper=make_mapper(a, objective, strategy, budget))


def verify_torch(arch, model, device: str = "cpu", layers: int | None = None, seed: int = 0,
                 batch: int | None = None, input_shape=None):
    """Compare the reference kernels with PyTorch's conv2d on ``device`` (``cpu`` or
    ``cuda``; the ``torch`` extra) for ``model``'s MAC layers (the first ``layers``), with
    random operands at ``arch``'s precisions: a tuple of ``tilesim.explore.torch_check.TorchCheck``."""
    from tilesim.explore.torch_check import torch_check
    a = _accelerator(load_arch(arch), "verify")
    return torch_check(load_model(model, batch, input_shape=input_shape), a, device=device,
                       layers=layers, seed=seed)


def sweep(spec, out=None, workers: int | None = None, dask: str | None = None,
          resume: bool = False, progress: bool | None = None, recompute_stale: bool = False):
    """Run a design sweep (YAML spec path, dict or SweepSpec) -> DataFrame; see
    :func:`tilesim.explore.sweep.driver.sweep` and ``examples/sweep_resnet18.yaml``.
    ``resume`` refuses stored rows of another tilesim version unless ``recompute_stale``.
    ``progress`` on stderr: None (default) when stderr is a terminal, True always, False
    never. No confirmation is asked, whatever the size (the CLI asks above 10^4 rows)."""
    from tilesim.explore.sweep.driver import sweep as _sweep
    from tilesim.explore.sweep.errors import SweepError
    try:
        return _sweep(spec, out=out, workers=workers, dask=dask, resume=resume,
                      progress=progress, recompute_stale=recompute_stale)
    except SweepError as e:   # advice in keyword arguments (resume=True), not CLI flags
        raise e.for_python() from None


def codesign(spec, out=None, workers: int | None = None, dask: str | None = None,
             resume: bool = False, progress: bool | None = None, fix_arch=None,
             fix_network=None, budget=(), recompute_stale: bool = False, executor=None):
    """Search the accelerator and the network together (a co-design spec: YAML path or
    dict; see ``examples/codesign_edge.yaml`` and docs/codesign.md). Returns a
    :class:`tilesim.explore.codesign.CodesignResult`: ``result.frame`` (a DataFrame, one
    row per evaluated point with ``top1`` and ``top1_source``), ``result.front`` (the
    joint Pareto front) and ``result.meta``; ``frame, front = tilesim.codesign(...)``.

    ``fix_arch`` (a preset, path or Architecture): the best network for that accelerator;
    ``fix_network`` (``"mobilenet_v2:width=1.0,resolution=224"`` or a dict with
    ``family``): the smallest accelerator for that network; ``budget``: constraints
    added to the spec's (``["latency_ms <= 2"]``); the answer is ``result.meta["answer"]``.
    ``out`` keeps the resumable store and writes results.csv, front.csv, codesign.json;
    ``workers`` / ``dask`` / ``resume`` / ``progress`` as :func:`sweep`; ``executor``
    an executor object (e.g. a ``DaskExecutor`` on your own cluster)."""
    from tilesim.explore.codesign import codesign as _codesign
    from tilesim.explore.sweep.errors import SweepError
    budgets = [budget] if isinstance(budget, str) else list(budget)
    try:
        return _codesign(spec, out=out, workers=workers, dask=dask, resume=resume,
                         progress=progress, fix_arch=fix_arch, fix_network=fix_network,
                         budgets=budgets, recompute_stale=recompute_stale, executor=executor)
    except SweepError as e:
        raise e.for_python() from None


def pareto(df, objectives=("latency_ms", "energy_uj"), maximize=(), by=None,
           feasible_only: bool = True):
    """The Pareto-front rows of a results table (see :func:`reports.pareto`)."""
    from tilesim.reports import pareto as _pareto
    return _pareto(df, objectives=objectives, maximize=maximize, by=by,
                   feasible_only=feasible_only)


def report(dirs, out, color: str | None = None, title: str | None = None):
    """Write a report (HTML, or Markdown for ``*.md``) of output folders; see
    :func:`tilesim.explore.reporting.report`."""
    from tilesim.explore.reporting import report as _report
    return _report(dirs, out, color=color, title=title)
