"""The ``tilesim`` command. Exit codes: 0 ok, 1 failure of the tool, 2 bad input, 141 cut pipe.

141 = 128 + SIGPIPE: the reader left early, as in ``tilesim verify ... | head``; 130: interrupted.

An argument layer (DESIGN §1): it parses, loads each input once, calls :mod:`tilesim.api`
and prints what :mod:`tilesim.reports.terminal` writes. Heavy packages are imported only by
the code paths that need them (``--help``, ``list``, ``run --quiet``: no pandas).
"""
from __future__ import annotations

import argparse
import gc
import os
import shlex
import sys
import time
import warnings
from contextlib import contextmanager

# The command validates only its own inputs with pydantic; pydantic's discovery of
# third-party plugins (observability hooks, found by scanning every installed
# distribution's entry points) costs 10-15 ms of every start, so this process skips it.
# Set PYDANTIC_DISABLE_PLUGINS="" to have plugins loaded anyway.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

# Importing pydantic, numpy and our packages allocates some 10^5 long-lived objects; the
# cyclic garbage collector would scan them again and again while they load. It pauses for
# these imports and, after them, those objects are moved out of its way (gc.freeze).
gc.disable()
try:
    from tilesim.arch import ArchError
    from tilesim.mapper import (DEPRECATED_OBJECTIVES, OBJECTIVES, MappingError,
                                resolve_objective)
    from tilesim.reports import terminal as term

    from . import api
    from ._input import INT_MAX, parse_int_text
finally:
    gc.freeze()
    gc.enable()

GPU_PRECISIONS = ("fp32", "tf32", "fp16", "bf16", "int8")
OBJECTIVE_CHOICES = (*OBJECTIVES, *DEPRECATED_OBJECTIVES)


@contextmanager
def _naming_arch_file(arch_spec):
    """Errors raised while mapping or costing (a tile that fits no buffer, an energy figure
    that cannot be derived) name the architecture file they came from."""
    try:
        yield
    except MappingError as e:
        raise MappingError(e.bare, source=arch_spec, fix=e.fix) from None
    except ArchError as e:
        if e.source:
            raise
        raise ArchError(e.bare, source=arch_spec, fix=e.fix) from None


def _load_model(args, with_batch: bool = True):
    """The model (loaded once), with import warnings (ops passed through) printed as one
    line each; ``with_batch`` False leaves the batch to the command (compare)."""
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = api.load_model(args.model, args.batch if with_batch else None,
                               input_shape=args.input_shape,
                               allow_unsupported=args.passthrough_unsupported,
                               weight_sparsity=args.weight_sparsity,
                               weight_density=args.weight_density,
                               input_density=args.input_density,
                               input_sample=args.input_sample,
                               actual_data=getattr(args, "actual_data", False))
    for w in caught:
        print(f"tilesim: warning: {w.message}", file=sys.stderr)
    return model


def _search(args) -> dict:
    """The mapping search's arguments (``objective``, ``strategy``, ``budget``)."""
    from tilesim.mapper import Budget
    if args.search_seconds is not None and not args.search_seconds > 0:
        raise MappingError(f"--search-seconds {args.search_seconds:g} must be positive",
                           fix="give a number of seconds like 5")
    d = Budget()
    return {"objective": args.objective, "strategy": args.strategy,
            "budget": Budget(candidates=args.search_budget or d.candidates,
                             seconds=args.search_seconds or d.seconds)}


def _array(arch):
    """(rows, cols, count, dataflow, preload) of an accelerator's array (preload None when
    it runs os only); None for a GPU preset."""
    a = getattr(arch, "array", None)
    if a is None:
        return None
    stationary = {a.dataflow, *(a.dataflows or ())} & {"ws", "is"}
    return (a.rows, a.cols, a.count, a.dataflow, a.preload if stationary else None)


def cmd_run(args) -> int:
    arch = api.target(args.arch, args.fidelity, args.precision)   # GPU or accelerator
    model = _load_model(args)
    run, search = None, _search(args)
    with _naming_arch_file(args.arch), _progress(args, args.fidelity) as progress:
        if args.fidelity == "des":
            from tilesim.sim.des import DEFAULT_LIMIT
            t0 = time.perf_counter()
            run = api.simulate_des(arch, model, trace_limit=(args.trace_limit or DEFAULT_LIMIT)
                                   if args.trace else None, progress=progress,
                                   fusion=args.fusion, steady_state=args.steady_state,
                                   **search)
            des_s = time.perf_counter() - t0
            result = run.result
        else:
            result = api.simulate(arch, model, precision=args.precision, progress=progress,
                                  **({"fusion": args.fusion} if args.fusion else {}),
                                  **({"steady_state": True} if args.steady_state else {}),
                                  **search)
    s = result.summary()
    if args.quiet:   # one line; no table is built (run --quiet imports no pandas)
        print(term.quiet_line(s))
    else:
        df, width = api.layers_frame(result), term.terminal_width()
        columns = None
        if args.columns:
            columns = [c.strip() for c in args.columns.split(",") if c.strip()]
            bad = term.unknown_columns(columns, list(df.columns))
            if bad:
                print(f"tilesim: error: {bad}", file=sys.stderr)
                return 2
        print(term.run_header(s, arch.description, _array(arch), width))
        print(term.layer_table(df, s, args.format == "markdown", columns, width, args.wide))
        print(term.run_totals(s, width))
    trace = run.trace if run is not None else None
    chrome = trace.to_chrome() if trace is not None else None
    if run is not None and not args.quiet:
        print(term.des_line(s, run.events, des_s, term.terminal_width()))
    if trace is not None:
        from tilesim.reports import write_json
        write_json(chrome, args.trace, compact=True)
        line = term.trace_line(len(trace.events), args.trace, trace.limit, trace.dropped,
                               trace.truncated, None if args.quiet else term.terminal_width())
        if not args.quiet:
            print(line)
        elif trace.truncated:   # with --quiet a truncated trace is still said, on stderr
            print(f"tilesim: warning: {line}", file=sys.stderr)
    if args.out:
        paths = api.write_outputs(args.out, result, arch, model, command=args.command_line,
                                  trace=chrome)
        if not args.quiet:
            print(f"wrote {', '.join(paths.values())}")
    if args.report:
        from tilesim.explore.reporting import run_report
        path = run_report(result, arch, args.report, chrome, args.command_line,
                          s.get("gpu_precision"))
        if not args.quiet:
            print(f"report: {path}")
    return 0


def cmd_sweep(args) -> int:
    from tilesim.explore.sweep.driver import CONFIRM_ROWS, check_columns, estimate, sweep
    from tilesim.explore.sweep.spec import size
    objectives = _objectives(args)
    designs, rows = size(args.spec)   # from the spec alone: a big sweep is refused at once
    ask = rows > CONFIRM_ROWS and not args.yes
    if ask and not (sys.stdin is not None and sys.stdin.isatty()):
        print(f"tilesim: error: this sweep is {rows:,} rows ({designs:,} design points), over "
              f"{CONFIRM_ROWS:,}, and stdin is not a terminal to confirm it: add --yes to run "
              "it (or shrink the vary lists / use sampling: random)", file=sys.stderr)
        return 2

    def start(plan, executor):
        if args.report:   # a report's columns are known now: check them before any work
            check_columns(plan, (*objectives, *([args.color] if args.color else [])))
        if ask:
            _confirm(plan, executor, estimate)
        print(term.sweep_start_line(plan.spec.name, len(plan.designs),
                                    len(plan.designs[0].jobs) if plan.designs else 0,
                                    plan.rows, executor.describe(), args.out), file=sys.stderr)
    t0 = time.perf_counter()
    try:
        df = sweep(args.spec, out=args.out, workers=args.workers, dask=args.dask,
                   dask_timeout=args.dask_timeout,
                   resume=args.resume, progress=not args.quiet,
                   recompute_stale=args.recompute_stale,
                   command=args.command_line, on_start=start)
    except _Declined:
        print("tilesim: sweep not started", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"tilesim: interrupted; finished design points are saved in {args.out}/"
              "results.sqlite: rerun with --resume to finish", file=sys.stderr)
        return 130
    m = df.attrs["sweep"]
    print(term.sweep_done_text(df, m, time.perf_counter() - t0, args.out))
    if args.report:
        from tilesim.explore.reporting import sweep_report
        try:
            path = sweep_report(df, m, args.report, args.color, args.command_line, objectives)
        except ValueError as e:   # e.g. --color names no column; the results are kept
            print(f"tilesim: error: report: {e}", file=sys.stderr)
            return 2
        print(f"report: {path}")
    return 0


def cmd_codesign(args) -> int:
    from tilesim.explore.codesign import codesign

    def start(space, executor):
        s = space.spec.search
        from tilesim.explore.codesign.search import method_for
        print(term.codesign_start_line(space.spec.name, space.size, space.n_arch,
                                       len(space.nets),
                                       method_for(s.method, space.choices(), s.evaluations),
                                       s.evaluations, executor.describe(), args.out),
              file=sys.stderr)
    t0 = time.perf_counter()
    try:
        r = codesign(args.spec, out=args.out, workers=args.workers, dask=args.dask,
                     dask_timeout=args.dask_timeout, resume=args.resume,
                     progress=not args.quiet, fix_arch=args.fix_arch,
                     fix_network=args.fix_network, budgets=[_budget(b) for b in args.budget],
                     recompute_stale=args.recompute_stale, command=args.command_line,
                     on_start=start)
    except KeyboardInterrupt:
        print(f"tilesim: interrupted; finished evaluations are saved in {args.out}/"
              "results.sqlite: rerun with --resume to continue", file=sys.stderr)
        return 130
    knobs = [c for c in r.frame.columns if c in r.meta["spec_dict"]["arch"]]
    print(term.codesign_text(r.front, r.meta, knobs, time.perf_counter() - t0, args.out,
                             term.terminal_width()))
    if args.report:
        from tilesim.explore.reporting import codesign_report
        path = codesign_report(r.frame, r.meta, args.report, args.command_line)
        print(f"report: {path}")
    return 0


def _budget(text: str) -> str:
    """``--budget latency_ms=2`` as a constraint: ``top1=74`` is ``top1 >= 74`` (top-1 is
    maximised), any other column ``COLUMN <= VALUE``; ``<=`` / ``>=`` may be written."""
    if "<=" in text or ">=" in text:
        return text
    col, eq, val = text.partition("=")
    if not eq:
        from tilesim.explore.sweep import SweepError
        raise SweepError(f"--budget {text!r} is not COLUMN=VALUE",
                         fix="write e.g. --budget latency_ms=2 (or 'power_w<=2')")
    return f"{col.strip()} {'>=' if col.strip() == 'top1' else '<='} {val.strip()}"


class _Declined(Exception):
    """The user answered no to a big sweep."""


def _confirm(plan, executor, estimate) -> None:
    """Say a big sweep's size and estimated time (design points timed in this process) on
    stderr and ask on the terminal; _Declined unless the answer is yes."""
    from tilesim.explore.progress import clock
    print(f"tilesim: sweep {plan.spec.name}: {plan.rows:,} rows ({len(plan.designs):,} design "
          "points); timing design points to estimate its time...", file=sys.stderr)
    per, total = estimate(plan, executor)
    print(f"tilesim: a design point took {per:.2f} s here: about {clock(total)} (h:mm:ss) "
          f"on {executor.describe()}", file=sys.stderr)
    print("Run it? [y/N] ", end="", file=sys.stderr, flush=True)   # stdout stays the results'
    answer = sys.stdin.readline()
    if answer.strip().lower() not in ("y", "yes"):
        raise _Declined


def _progress(args, what: str):
    """Per-layer progress on stderr (a ``progress(i, n, name)`` callback, or None): on a
    terminal, or always with --progress; never with --quiet."""
    from tilesim.explore.progress import layer_progress, wanted
    return layer_progress(wanted(getattr(args, "quiet", False), args.progress), what)


def _objectives(args) -> tuple:
    obj = tuple(o.strip() for o in args.objectives.split(",") if o.strip())
    for bad, why, fix in ((len(obj) < 2, "fewer than two columns",
                           "give two or more, e.g. latency_ms,energy_uj,area_sq_mm"),
                          (len(set(obj)) < len(obj), "a column is repeated",
                           "name each column once, e.g. latency_ms,energy_uj")):
        if bad:
            from tilesim.explore.sweep import SweepError
            raise SweepError(f"--objectives {args.objectives!r}: {why}", fix=fix)
    return obj


def cmd_report(args) -> int:
    from tilesim.explore.reporting import report
    try:
        path = report(args.dirs, args.output, color=args.color, title=args.title,
                      command=args.command_line, objectives=_objectives(args))
    except ValueError as e:
        print(f"tilesim: error: {e}", file=sys.stderr)
        return 2
    print(f"report: {path}")
    return 0


def cmd_verify(args) -> int:
    arch, model, search = api.load_arch(args.arch), _load_model(args), _search(args)
    with _naming_arch_file(args.arch), _progress(args, "verify") as progress:
        res = api.verify(arch, model, layers=args.layers, seed=args.seed, progress=progress,
                         **search)
    md, width = args.format == "markdown", term.terminal_width()
    print(term.verify_header(model.name, model.batch, arch.name, _array(arch), res.precision,
                             res.seed, res.mapper, len(res.checks), res.skipped_ops, width))
    print(term.verify_table(res.frame(), md, width, args.wide))
    torch_ok = True
    if args.torch_device:
        from tilesim.explore.torch_check import frame
        tc = api.verify_torch(arch, model, device=args.torch_device, layers=args.layers,
                              seed=args.seed)
        torch_ok = all(c.torch_ok for c in tc)
        print(term.torch_table(frame(tc), tc[0].torch_device if tc else args.torch_device, md,
                               None if args.wide else width))
    return 0 if res.ok and torch_ok else 1


def cmd_map(args) -> int:
    from dataclasses import asdict

    from tilesim.mapper.describe import loop_nest, tiling_summary
    from tilesim.mapper.space import points_of
    from tilesim.sim import CostModel
    from tilesim.sim.energy import energy_sources
    arch, model, search = api.load_arch(args.arch), _load_model(args), _search(args)
    with _naming_arch_file(args.arch):
        got = api.map(arch, model, args.layer, top=args.top, **search)
    m, r, a, sr = got["mapping"], got["result"], got["arch"], got["mapping"].search
    search = {k: getattr(sr, k) for k in ("objective", "strategy", "evaluated", "space_size",
                                          "seconds", "complete")}
    access = {k: (int(r[0]), int(w[0])) for k, (r, w) in
              CostModel(a).access(m.layer, points_of(m, a)).items()}
    print(term.map_text(dict(asdict(m.layer), kind=m.layer.kind), model.name, a.name, a.clock,
                        search, loop_nest(m, a, access), dict(r.row(), cycles=r.cycles),
                        r.energy_breakdown, energy_sources(a),
                        [(tiling_summary(mm), rr.cycles, rr.energy_pj,
                          rr.dram_read_bytes + rr.dram_write_bytes)
                         for mm, rr in got["runner_ups"]], term.terminal_width()))
    return 0


def cmd_baseline(args) -> int:
    model = _load_model(args)
    with _progress(args, "baseline") as progress:
        m = api.baseline(model, device=args.device, precision=args.precision,
                         repeats=args.repeats, warmup=args.warmup, out=args.out,
                         progress=progress)
    print(term.baseline_text(m.frame(), {
        "model": m.model, "batch": m.batch, "torch_version": m.env["torch_version"],
        "device_name": m.env["device_name"], "precision": m.precision, "timer": m.env["timer"],
        "repeats": args.repeats, "warmup": args.warmup, "device": args.device}))
    print(f"wrote {args.out}")
    return 0


def cmd_compare(args) -> int:
    got = api.compare(args.arch, args.gpu, _load_model(args, with_batch=False), batch=args.batch,
                      precision=args.precision, measured=args.gpu_measured,
                      objective=args.objective, input_shape=args.input_shape)
    print(term.compare_text(got["frame"], got["summary"], got["gpu"].name,
                            api.ACCELERATOR_ENERGY_SOURCE, args.quiet, term.terminal_width()))
    if args.out:
        paths = api.write_compare(args.out, got, command=args.command_line)
        print(f"wrote {', '.join(paths.values())}")
    if args.report:
        import tempfile

        from tilesim.explore.reporting import report
        with tempfile.TemporaryDirectory() as tmp:
            d = args.out or tmp
            if not args.out:
                api.write_compare(d, got, command=args.command_line)
            print(f"report: {report([d], args.report)}")
    return 0


def cmd_list(args) -> int:
    from tilesim import arch, workloads
    gpus = {n: arch.load(n) for n in arch.gpu_presets()}
    models = {n: workloads.load(n) for n in workloads.zoo_names()}
    print(term.list_text([(n, arch.load(n).description) for n in arch.presets()],
                         [(n, g.description, g.precisions) for n, g in gpus.items()],
                         [(n, len(m.layers), m.macs, m.params) for n, m in models.items()]))
    return 0


def cmd_schema(args) -> int:
    import json

    from tilesim.arch import json_schema
    text = json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
    if args.out:
        from tilesim.reports import write_text
        print(f"wrote {write_text(args.out, text)}")
    else:
        sys.stdout.write(text)
    return 0


ARCH_HELP = "preset name, architecture YAML or SCALE-Sim .cfg"
REPORT_HELP = "also write a report: self-contained HTML, or Markdown when FILE ends in .md"
PARETO_HELP = ("columns the Pareto front minimises (default latency_ms,energy_uj; e.g. add "
               "area_sq_mm); the plot shows the first two")


def _inputs(p, arch: str | None = "one", batch: int | None = 1) -> None:
    """The inputs of every command that runs a model, declared here once: ``--arch``
    (``arch="many"``: repeatable, one design each; None: none), ``--model`` with the
    ONNX / PyTorch import flags, and ``--batch`` (``batch``: its default)."""
    if arch:
        p.add_argument("--arch", required=True, action="append" if arch == "many" else None,
                       help=f"a design: {ARCH_HELP} (repeat for several)" if arch == "many"
                       else ARCH_HELP)
    p.add_argument("--model", required=True, help="zoo name, SCALE-Sim topology .csv, YAML "
                   "layer table, .onnx file or PyTorch factory file.py:function")
    p.add_argument("--input-shape", metavar="NxCxHxW", help="input shape of an ONNX model with "
                   "dynamic dimensions or of a PyTorch model, e.g. 1x3x224x224 (the leading "
                   "batch entry is set by --batch)")
    p.add_argument("--passthrough-unsupported", action="store_true", help="treat ONNX / "
                   "PyTorch ops tilesim cannot model as free ops (warns) instead of failing")
    p.add_argument("--batch", type=_int(1), default=batch, help="batch size (default 1)"
                   if batch else "batch size (default: the measurement's, else 1)")
    p.add_argument("--weight-sparsity", metavar="N:M", help="every MAC layer's weights "
                   "N:M-structured, e.g. 2:4 (at most N non-zero in each block of M along "
                   "the reduction; docs/sparsity.md); counts only where the architecture "
                   "declares a memory format or array zeros")
    p.add_argument("--weight-density", type=float, metavar="D", help="every MAC layer's "
                   "weights unstructured-sparse with this share of non-zeros, in (0, 1]")
    p.add_argument("--input-density", type=float, metavar="D", help="every MAC layer's input "
                   "activations with this share of non-zeros, in (0, 1] (ReLU zeros); a MAC "
                   "layer whose output a MAC layer reads writes it at this density too")
    p.add_argument("--input-sample", metavar="FILE.npy", help="an ONNX or PyTorch model: "
                   "run it once, with its own weights, on this real input (numpy .npy of the "
                   "input shape, any batch) on tilesim's reference kernels, and take each "
                   "MAC layer's input and output densities from the zeros met")


def _progress_args(p, quiet: bool = True) -> None:
    """--progress (and --quiet where the command has none): per-layer progress on stderr
    is shown on a terminal, always with --progress, never with --quiet."""
    p.add_argument("--progress", action="store_true", help="show per-layer progress on "
                   "stderr even when it is not a terminal (default: only on a terminal)")
    if quiet:
        p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def _search_args(p, objective_only: bool = False) -> None:
    """The mapping search's flags (compare: the objective only)."""
    p.add_argument("--objective", choices=OBJECTIVE_CHOICES, default="edp",
                   help="mapping search objective of the designs (default edp)"
                   if objective_only else "what each layer's mapping search minimises "
                   "(default edp: cycles x energy; traffic: least DRAM traffic; 'default' is "
                   "a deprecated name of traffic)")
    if objective_only:
        return
    p.add_argument("--search-budget", type=_int(1), default=None, metavar="N",
                   help="at most N candidate mappings scored per layer (default 100000)")
    p.add_argument("--search-seconds", type=float, default=None, metavar="S",
                   help="at most S seconds of search per layer (default 10)")
    p.add_argument("--strategy", choices=("heuristic", "exhaustive"), default="heuristic",
                   help="search strategy (default heuristic)")


def _executor_args(p) -> None:
    """--workers, --dask and --dask-timeout: where a sweep's or a co-design search's
    design points run (the same executors, explore/sweep/executors.py)."""
    p.add_argument("--workers", type=_int(1), default=None, metavar="N",
                   help="local worker processes (default: all cores)")
    p.add_argument("--dask", metavar="ADDRESS", help="run on a Dask cluster: a scheduler "
                   "address (tcp://host:8786) or 'local' (a LocalCluster of --workers "
                   "processes on 127.0.0.1); needs the dask extra")
    p.add_argument("--dask-timeout", type=float, default=10.0, metavar="S",
                   help="seconds to wait for the Dask scheduler (default 10)")


def build_parser() -> argparse.ArgumentParser:
    from ._version import __version__
    p = argparse.ArgumentParser(prog="tilesim", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"tilesim {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)
    formats = {"choices": ("table", "markdown"), "default": "table"}
    r = sub.add_parser("run", help="map and time a model on an accelerator")
    _inputs(r)
    r.add_argument("--actual-data", action="store_true", help="with --input-sample: also "
                   "keep the tensors the sample meets, and count every compressed format's "
                   "bytes and the gated MACs of each conv and linear layer on them, tile by "
                   "tile, instead of at the densities (both fidelities; docs/sparsity.md, "
                   "Actual data)")
    r.add_argument("--out", help="write layers.csv, summary.json, arch.yaml, model.csv here")
    r.add_argument("--format", **formats, help="per-layer table style on the terminal")
    r.add_argument("--quiet", action="store_true", help="print one line: the totals (no "
                   "table, no file list; a truncated trace is still said on stderr)")
    r.add_argument("--columns", metavar="A,B,...", help="per-layer table columns, by their "
                   "layers.csv names (default: " + ",".join(term.DEFAULT_COLUMNS) + ")")
    r.add_argument("--wide", action="store_true", help="all the usual per-layer columns "
                   "(cycles, DRAM write too), not fitted to the terminal's width")
    _search_args(r)
    r.add_argument("--fidelity", choices=api.FIDELITIES, default="analytic", help="timing "
                   "model: analytic (closed form, default) or des (SimPy discrete-event engine)")
    r.add_argument("--fusion", choices=("none", "residency", "depth-first"), default=None,
                   help="network schedule: none (every activation to and from DRAM, as "
                   "SCALE-Sim), residency (activations stay in the activation buffer where "
                   "they fit) or depth-first (residency, and where it spills, stacks of "
                   "layers run strip by strip so the tensors between them stay on chip: "
                   "docs/fusion.md); "
                   "default: the architecture's (its YAML's fusion key: residency unless it "
                   "says otherwise; SCALE-Sim .cfg files: none)")
    r.add_argument("--steady-state", action="store_true", help="weights that fit in the "
                   "weight buffer stay on chip across inferences (Edge-TPU-like parameter "
                   "caching): latency_ms is then a later inference's, latency_cold_ms the "
                   "first's (with the one-time weight load); needs a schedule other than none")
    r.add_argument("--precision", choices=GPU_PRECISIONS, default=None, help="GPU presets "
                   "only: precision the GPU model runs at (default fp16); an accelerator's "
                   "precision is in its YAML")
    r.add_argument("--trace", metavar="FILE", help="with --fidelity des: write a Chrome "
                   "trace-format JSON timeline (opens in Perfetto)")
    r.add_argument("--trace-limit", type=_int(1), default=None, metavar="N", help="most events "
                   "the trace keeps (default 250,000: all of ResNet-50 at batch 1); beyond it "
                   "the trace is truncated and says so")
    r.add_argument("--report", metavar="FILE", type=_report_file, help=REPORT_HELP)
    _progress_args(r, quiet=False)
    v = sub.add_parser("verify", help="check mapped tiles and PE-model cycles against "
                       "reference kernels and the analytic model (exit 1 on a mismatch)")
    _inputs(v)
    v.add_argument("--layers", type=_int(1), help="verify only the first N MAC layers")
    v.add_argument("--seed", type=_int(0), default=0, help="seed of the random operands "
                   "(default 0)")   # >= 0: numpy refuses negative seeds
    v.add_argument("--format", **formats, help="table style on the terminal")
    v.add_argument("--wide", action="store_true", help="every column (dataflow, the shapes "
                   "run), not fitted to the terminal's width")
    v.add_argument("--torch-device", choices=("cpu", "cuda"), default=None, help="also compare "
                   "the reference kernels with PyTorch's conv2d on this device (torch extra)")
    _search_args(v)
    _progress_args(v)
    mp = sub.add_parser("map", help="show one layer's searched mapping as nested loops")
    _inputs(mp)
    mp.add_argument("--layer", required=True, help="name of a MAC layer of the model")
    mp.add_argument("--top", type=_int(0), default=5, help="runner-up mappings to list "
                    "(default 5)")
    _search_args(mp)
    b = sub.add_parser("baseline", help="measure per-layer latency with PyTorch (torch extra) "
                       "on a GPU (cuda) or the CPU")
    _inputs(b, arch=None)
    b.add_argument("--device", choices=("cuda", "cpu"), required=True,
                   help="cuda (CUDA events) or cpu (wall clock; says so in the CSV)")
    b.add_argument("--precision", choices=GPU_PRECISIONS, default="fp32", help="precision to "
                   "run at (default fp32); the CSV says what was measured (int8 falls back "
                   "where PyTorch has no int8 kernel)")
    b.add_argument("--repeats", type=_int(1), default=50, help="timed runs per layer, the "
                   "median is reported (default 50)")
    b.add_argument("--warmup", type=int, default=5, help="untimed runs first (default 5)")
    b.add_argument("--out", required=True, metavar="FILE.csv", help="CSV to write")
    _progress_args(b)
    c = sub.add_parser("compare", help="accelerator designs next to a GPU (model, and a "
                       "measurement from `tilesim baseline`)")
    _inputs(c, arch="many", batch=None)
    c.add_argument("--gpu", required=True, help="GPU preset (or kind: gpu YAML) to model")
    c.add_argument("--gpu-measured", metavar="FILE.csv", help="a `tilesim baseline` CSV of "
                   "the same model: adds it and the GPU model's MAPE and R^2 against it")
    c.add_argument("--precision", choices=GPU_PRECISIONS, default=None, help="GPU model "
                   "precision (default: what the measurement ran at, else fp16)")
    _search_args(c, objective_only=True)
    c.add_argument("--out", metavar="DIR", help="write compare.csv and compare_summary.json")
    c.add_argument("--report", metavar="FILE", type=_report_file, help=REPORT_HELP)
    c.add_argument("--quiet", action="store_true", help="totals only, no per-layer table")
    sw = sub.add_parser("sweep", help="sweep design points over models (resumable store)")
    sw.add_argument("spec", help="sweep spec YAML (see examples/sweep_resnet18.yaml)")
    sw.add_argument("--out", required=True, help="folder for results.sqlite (the store), "
                    "results.csv, sweep.json, base_arch.yaml")
    _executor_args(sw)
    sw.add_argument("--resume", action="store_true", help="finish a killed sweep in --out: "
                    "stored rows are not recomputed")
    sw.add_argument("--recompute-stale", action="store_true", help="with --resume: recompute "
                    "the stored rows another tilesim version computed (else refused)")
    sw.add_argument("--report", metavar="FILE", type=_report_file, help="also write a report "
                    "(HTML, or Markdown for .md) with the Pareto front")
    sw.add_argument("--objectives", default="latency_ms,energy_uj", metavar="A,B[,C]",
                    help=PARETO_HELP)
    sw.add_argument("--color", metavar="COLUMN", help="colour the Pareto plot by this column "
                    "(default area_sq_mm; e.g. a varied key path)")
    sw.add_argument("--quiet", action="store_true", help="no progress bar")
    sw.add_argument("--yes", action="store_true", help="run a sweep of over 10,000 rows "
                    "without asking (without a terminal, such a sweep needs --yes)")
    cd = sub.add_parser("codesign", help="search the accelerator and the network together "
                        "(published accuracy) to one Pareto front")
    cd.add_argument("spec", help="co-design spec YAML (see examples/codesign_edge.yaml)")
    cd.add_argument("--out", required=True, help="folder for results.sqlite (the store), "
                    "results.csv, front.csv, codesign.json, base_arch.yaml")
    cd.add_argument("--fix-arch", metavar="ARCH", help="one accelerator (preset or YAML): "
                    "find the best network for it (with --budget)")
    cd.add_argument("--fix-network", metavar="FAMILY:K=V,...", help="one network, e.g. "
                    "mobilenet_v2:width=1.0,resolution=224, or 'default' (the spec's "
                    "default_network): find the smallest accelerator for it (with --budget)")
    cd.add_argument("--budget", action="append", default=[], metavar="COLUMN=VALUE",
                    help="a constraint added to the spec's: latency_ms=2 means latency_ms <= "
                    "2, top1=74 means top1 >= 74 (repeatable)")
    _executor_args(cd)
    cd.add_argument("--resume", action="store_true", help="continue a killed run in --out "
                    "(the search replays the store; nothing stored is recomputed)")
    cd.add_argument("--recompute-stale", action="store_true", help="with --resume: recompute "
                    "the stored rows another tilesim version computed (else refused)")
    cd.add_argument("--report", metavar="FILE", type=_report_file, help="also write a report "
                    "(HTML, or Markdown for .md): the front, each point's hardware and "
                    "network, the single-sided optima")
    cd.add_argument("--quiet", action="store_true", help="no progress line")
    rp = sub.add_parser("report", help="HTML or Markdown report of output folders")
    rp.add_argument("dirs", nargs="+", metavar="DIR", help="folders written by tilesim run "
                    "--out, sweep --out or compare (several runs are compared side by side)")
    rp.add_argument("-o", "--output", required=True, metavar="FILE", type=_report_file,
                    help="report file: .html (self-contained) or .md (Markdown)")
    rp.add_argument("--objectives", default="latency_ms,energy_uj", metavar="A,B[,C]",
                    help=PARETO_HELP)
    rp.add_argument("--color", metavar="COLUMN", help="sweeps: colour the Pareto plot by "
                    "this column (default area_sq_mm)")
    rp.add_argument("--title", help="report title")
    sub.add_parser("list", help="list architecture presets and zoo models")
    sc = sub.add_parser("schema", help="print the JSON Schema of architecture files (for "
                        "editors: see docs/schema.md)")
    sc.add_argument("--out", metavar="FILE", help="write it to FILE instead")
    for name, sp in sub.choices.items():
        sp.set_defaults(fn=globals()[f"cmd_{name}"])
    return p


def _int(lo: int):
    """An argparse type: a decimal integer >= ``lo`` within int64 (the one number checker)."""
    def parse(s: str) -> int:
        def fail(message, fix):
            return argparse.ArgumentTypeError(f"{message}; {fix}")
        v = parse_int_text(s, "value", fail, lo=-INT_MAX - 1, hi=INT_MAX)
        if v < lo:
            raise argparse.ArgumentTypeError(f"{v} must be >= {lo}")
        return v
    return parse


def _report_file(s: str) -> str:
    """A report path: .html / .htm (self-contained HTML) or .md / .markdown, checked
    before any work."""
    if os.path.splitext(s)[1].lower() not in (".html", ".htm", ".md", ".markdown"):
        raise argparse.ArgumentTypeError(f"{s!r}: a report is HTML or Markdown; name it "
                                         "FILE.html or FILE.md")
    return s


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.cmd == "run" and (args.trace or args.trace_limit) and args.fidelity != "des":
        parser.error("--trace and --trace-limit need --fidelity des (the analytic model "
                     "has no timeline)")
    if args.cmd == "run" and args.trace_limit and not args.trace:
        parser.error("--trace-limit needs --trace FILE (without it no timeline is written)")
    if args.cmd == "run" and args.actual_data and not args.input_sample:
        parser.error("--actual-data needs --input-sample FILE.npy (the tensors counted on "
                     "are the ones the model meets on it)")
    args.command_line = "tilesim " + shlex.join(argv)
    _printable_units()
    try:
        _check_outputs(args)
    except OSError as e:
        print(f"tilesim: error: {e.filename or ''}: {e.strerror}", file=sys.stderr)
        return 2
    with warnings.catch_warnings():   # every warning (a deprecated name, ...) is one line
        warnings.showwarning = _warning_line
        if getattr(args, "objective", None) in DEPRECATED_OBJECTIVES:
            args.objective = resolve_objective(args.objective)   # warns once, here
        return _dispatch(args)


#: (command, option) -> what it names: a folder to write into, or a file
_OUTPUTS = {("run", "out"): "dir", ("compare", "out"): "dir", ("sweep", "out"): "dir",
            ("run", "trace"): "file", ("run", "report"): "file", ("compare", "report"): "file",
            ("sweep", "report"): "file", ("report", "output"): "file",
            ("baseline", "out"): "file", ("schema", "out"): "file",
            ("codesign", "out"): "dir", ("codesign", "report"): "file"}


def _check_outputs(args) -> None:
    """Every output path checked before any work: an empty one, a folder option naming a
    file, a file option naming a folder or a special file (a FIFO, /dev/null) is refused."""
    from tilesim.reports.io import check_dir_target, check_file_target
    for (cmd, opt), kind in _OUTPUTS.items():
        v = getattr(args, opt, None) if args.cmd == cmd else None
        if v is not None:
            (check_dir_target if kind == "dir" else check_file_target)(v)


def _printable_units() -> None:
    """Numbers are labelled µJ, µs, mm²: a stdout that cannot encode them (an ASCII
    locale, PYTHONIOENCODING=ascii) shows "?" for them rather than failing."""
    try:
        "µ²…".encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        if hasattr(sys.stdout, "reconfigure"):
            sys.stdout.reconfigure(errors="replace")


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"tilesim: warning: {message}", file=sys.stderr)


def _dispatch(args) -> int:
    """Run the command; bad input is exit 2 with one line, a cut pipe 141, Ctrl-C 130."""
    try:
        return args.fn(args)
    except api.INPUT_ERRORS as e:
        print(f"tilesim: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `tilesim verify ... | head`: the reader left; stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # nothing left to flush at exit
        return 141  # 128 + SIGPIPE, as a shell reports a process killed by it
    except OSError as e:
        print(f"tilesim: error: {e.filename or ''}: {e.strerror}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tilesim: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
