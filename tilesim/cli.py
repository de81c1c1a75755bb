"""The ``tilesim`` command. Exit codes: 0 ok, 1 failure of the tool, 2 bad input, 141 cut pipe.

141 (128 + SIGPIPE): the reader of the output left early, as in ``tilesim verify ... | head``."""
from __future__ import annotations

import argparse
import os
import shlex
import sys
from contextlib import contextmanager

from tilesim.arch import ArchError
from tilesim.mapper import DEPRECATED_OBJECTIVES, OBJECTIVES, MappingError

from . import api

GPU_PRECISIONS = ("fp32", "tf32", "fp16", "bf16", "int8")
OBJECTIVE_CHOICES = (*OBJECTIVES, *DEPRECATED_OBJECTIVES)


LAYER_SPEC = [
    ("layer", "layer", ""), ("kind", "kind", ""),
    ("macs", "MACs (M)", lambda v: f"{v / 1e6:,.2f}"),
    ("compute_cycles", "compute (cyc)", ",d"), ("stall_cycles", "stall (cyc)", ",d"),
    ("total_cycles", "total (cyc)", ",d"), ("latency_ms", "latency (ms)", ".4f"),
    ("utilization", "util (%)", lambda v: f"{100 * v:.1f}"),
    ("dram_read_bytes", "DRAM rd (MB)", lambda v: f"{v / 1e6:,.3f}"),
    ("dram_write_bytes", "DRAM wr (MB)", lambda v: f"{v / 1e6:,.3f}"),
    ("bound", "bound", ""),
]


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


def cmd_run(args) -> int:
    from tilesim.reports import format_table, markdown_table
    if args.trace_limit is None:
        from tilesim.sim.des import DEFAULT_LIMIT
        args.trace_limit = DEFAULT_LIMIT
    arch = api.load_arch(args.arch)
    model = _load_model(args)
    from tilesim.arch import GpuSpec
    if isinstance(arch, GpuSpec) or args.precision is not None:  # a GPU preset
        return _run_gpu(args, arch, model)
    budget = _budget(args)
    run = None
    with _naming_arch_file(args.arch):
        if args.fidelity == "des":
            import time
            t0 = time.perf_counter()
            run = api.simulate_des(arch, model, trace_limit=args.trace_limit if args.trace else None,
                                   objective=args.objective, strategy=args.strategy,
                                   budget=budget)
            des_s = time.perf_counter() - t0
            result = run.result
        else:
            result = api.simulate(arch, model, objective=args.objective, strategy=args.strategy,
                                  budget=budget)
    s = result.summary()
    df = api.layers_frame(result)
    total = {"layer": "TOTAL", "macs": s["macs"], "compute_cycles": s["compute_cycles"],
             "stall_cycles": s["stall_cycles"], "total_cycles": s["total_cycles"],
             "latency_ms": s["latency_ms"], "utilization": s["utilization"],
             "dram_read_bytes": s["dram_read_bytes"], "dram_write_bytes": s["dram_write_bytes"]}
    if not args.quiet:
        table = markdown_table if args.format == "markdown" else format_table
        print(f"# {model.name} (batch {model.batch}, {len(model.layers)} layers) on {arch.name}: "
              f"{arch.array.rows}x{arch.array.cols}x{arch.array.count} {arch.array.dataflow}, "
              f"{arch.clock / 1e6:g} MHz")
        spec = LAYER_SPEC
        if "energy_uj" in s:   # energy per layer, before the bound column
            spec = LAYER_SPEC[:-1] + [("energy_pj", "energy (uJ)",
                                       lambda v: f"{v / 1e6:,.2f}")] + LAYER_SPEC[-1:]
            total["energy_pj"] = s["energy_uj"] * 1e6
        print(table(df, spec, total))
        print("layer cycles are last-cycle indices (SCALE-Sim convention); the total counts "
              "cycles (sum of layer total + 1)")
    print(f"total: {s['total_cycles']:,} cycles = {s['latency_ms']:.4f} ms at "
          f"{arch.clock / 1e6:g} MHz | {s['macs'] / 1e9:.4f} GMACs | "
          f"utilization {100 * s['utilization']:.2f} % | "
          f"throughput {s['throughput_samples_per_s']:.2f} samples/s | DRAM read "
          f"{s['dram_read_bytes'] / 1e6:.3f} MB, write {s['dram_write_bytes'] / 1e6:.3f} MB")
    if "energy_uj" in s:
        print(f"energy: {s['energy_uj']:,.1f} uJ ({s['tops_per_w']:.3f} TOPS/W, average "
              f"{s['avg_power_w']:.3f} W) | area ~{s['area_sq_mm']:.2f} mm^2 | mappings searched "
              f"for {s['mapping_objective']} | energy and area sources: arch/technology.py")
        tables = dict.fromkeys(part for src in s["energy_sources"].values()
                               for part in src.split(" + "))
        print(f"energy source tables: {'; '.join(tables)} (per column: summary.json "
              "energy_sources)")
    if run is not None:
        st = {c: sum(getattr(l, f"stall_{c}_cycles") for l in result.layers)
              for c in ("input", "weight", "psum", "writeback", "contention", "other")}
        print("des stalls (cycles): " + ", ".join(f"{c} {v:,}" for c, v in st.items())
              + f" | {run.events:,} events in {des_s:.2f} s, mapping included "
              f"({run.events / max(des_s, 1e-9):,.0f} events/s)")
    if run is not None and run.trace is not None:
        from tilesim.reports import write_json
        write_json(run.trace.to_chrome(), args.trace)
        tr = run.trace
        note = (f"; truncated at the limit of {tr.limit:,} events, {tr.dropped:,} more dropped "
                "(raise --trace-limit)" if tr.truncated else "")
        print(f"trace: wrote {len(tr.events):,} events to {args.trace} (Chrome trace format, "
              f"opens in Perfetto){note}")
    if args.out:
        paths = api.write_outputs(args.out, result, arch, model, command=args.command_line)
        if run is not None and run.trace is not None:   # the report's DES timeline
            from pathlib import Path

            from tilesim.reports import write_json
            paths["trace"] = str(write_json(run.trace.to_chrome(), Path(args.out) / "trace.json"))
        print(f"wrote {', '.join(paths.values())}")
    if args.report:
        from tilesim.explore.reporting import run_report
        trace = run.trace.to_chrome() if run is not None and run.trace is not None else None
        print(f"report: {run_report(result, arch, args.report, trace, args.command_line)}")
    return 0


def cmd_sweep(args) -> int:
    from tilesim.explore.sweep.driver import sweep
    objectives = _objectives(args)

    def start(plan, executor):
        if args.report:   # a report's columns are known now: check them before any work
            from tilesim.explore.sweep import SweepError
            from tilesim.explore.sweep.worker import ROW_COLUMNS
            cols = set(ROW_COLUMNS) | set(plan.param_names)
            for c in (*objectives, *([args.color] if args.color else [])):
                if c not in cols:
                    raise SweepError(f"--objectives / --color: {c!r} is not a results column",
                                     fix="use one of: " + ", ".join(sorted(cols)))
        print(f"# sweep {plan.spec.name}: {len(plan.designs):,} design points x "
              f"{len(plan.designs[0].jobs) if plan.designs else 0} model(s) = {plan.rows:,} rows "
              f"on {executor.describe()}; store {args.out}/results.sqlite", file=sys.stderr)
    import time
    t0 = time.perf_counter()
    try:
        df = sweep(args.spec, out=args.out, workers=args.workers, dask=args.dask,
                   dask_timeout=args.dask_timeout,
                   resume=args.resume, progress=not args.quiet,
                   recompute_stale=args.recompute_stale,
                   command=args.command_line, on_start=start)
    except KeyboardInterrupt:
        print(f"tilesim: interrupted; finished design points are saved in {args.out}/"
              "results.sqlite: rerun with --resume to finish", file=sys.stderr)
        return 130
    el = time.perf_counter() - t0
    m = df.attrs["sweep"]
    ok = int((df["status"] == "ok").sum()) if len(df) else 0
    print(f"sweep {m['name']}: {m['rows']:,} rows ({m['designs']:,} design points), "
          f"{ok:,} feasible, {m['rows'] - ok:,} infeasible; computed {m['computed']:,}, "
          f"resumed {m['resumed']:,} from the store, in {el:.1f} s "
          f"({m['computed'] / max(el, 1e-9):.2f} rows/s)")
    print(f"wrote {args.out}/results.csv, {args.out}/sweep.json, {args.out}/base_arch.yaml "
          f"(store {args.out}/results.sqlite)")
    if args.report:
        from tilesim.explore.reporting import sweep_report
        try:
            path = sweep_report(df, m, args.report, args.color, args.command_line, objectives)
        except ValueError as e:   # e.g. --color names no column; the results are kept
            print(f"tilesim: error: report: {e}", file=sys.stderr)
            return 2
        print(f"report: {path}")
    return 0


def _objectives(args) -> tuple:
    obj = tuple(o.strip() for o in args.objectives.split(",") if o.strip())
    if len(obj) < 2:
        from tilesim.explore.sweep import SweepError
        raise SweepError(f"--objectives {args.objectives!r}: fewer than two columns",
                         fix="give two or more, e.g. latency_ms,energy_uj,area_sq_mm")
    if len(set(obj)) < len(obj):
        from tilesim.explore.sweep import SweepError
        raise SweepError(f"--objectives {args.objectives!r}: a column is repeated",
                         fix="name each column once, e.g. latency_ms,energy_uj")
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


GPU_LAYER_SPEC = [
    ("layer", "layer", ""), ("kind", "kind", ""),
    ("macs", "MACs (M)", lambda v: f"{v / 1e6:,.2f}"),
    ("latency_ms", "latency (ms)", ".4f"),
    ("utilization", "util (%)", lambda v: f"{100 * v:.1f}"),
    ("dram_read_bytes", "DRAM rd (MB)", lambda v: f"{v / 1e6:,.3f}"),
    ("dram_write_bytes", "DRAM wr (MB)", lambda v: f"{v / 1e6:,.3f}"),
    ("energy_pj", "energy (uJ)", lambda v: f"{v / 1e6:,.2f}"),
    ("bound", "bound", ""),
]


def _run_gpu(args, gpu, model) -> int:
    """``tilesim run`` on a GPU preset: the GPU latency model (sim/gpu/model.py)."""
    from tilesim.reports import format_table, markdown_table
    if args.fidelity == "des":
        api._accelerator(gpu, "the discrete-event engine (--fidelity des)")
    result = api.simulate(gpu, model, precision=args.precision)
    s = result.summary()
    if not args.quiet:
        table = markdown_table if args.format == "markdown" else format_table
        print(f"# {model.name} (batch {model.batch}, {len(model.layers)} layers) on {gpu.name}: "
              f"{gpu.description}; GPU model at {s['gpu_precision']}")
        total = {"layer": "TOTAL", "macs": s["macs"], "latency_ms": s["latency_ms"],
                 "utilization": s["utilization"], "dram_read_bytes": s["dram_read_bytes"],
                 "dram_write_bytes": s["dram_write_bytes"], "energy_pj": s["energy_uj"] * 1e6}
        print(table(api.layers_frame(result), GPU_LAYER_SPEC, total))
    print(f"total: {s['latency_ms']:.4f} ms modelled on {gpu.name} at {s['gpu_precision']} | "
          f"{s['macs'] / 1e9:.4f} GMACs | utilization {100 * s['utilization']:.2f} % of the "
          f"dense {s['gpu_precision']} peak | throughput {s['throughput_samples_per_s']:,.1f} "
          f"samples/s")
    print(f"energy: {s['energy_uj']:,.1f} uJ, source: {s['energy_source']}")
    if args.out:
        paths = api.write_outputs(args.out, result, gpu, model, command=args.command_line)
        print(f"wrote {', '.join(paths.values())}")
    if args.report:
        from tilesim.explore.reporting import run_report
        print(f"report: {run_report(result, gpu, args.report, None, args.command_line, s['gpu_precision'])}")
    return 0


VERIFY_SPEC = [
    ("layer", "layer", ""), ("dataflow", "dataflow", ""), ("exec_shape", "executor on", ""),
    ("tiles", "tiles", ",d"),
    ("exec_max_err", "exec max |err|", lambda v: f"{v:.3g}"),
    ("tiles_fit", "tiles fit", lambda v: "yes" if v else "NO"),
    ("pe_shape", "PE model on", ""),
    ("pe_max_err", "PE max |err|", lambda v: "-" if v is None or v != v else f"{v:.3g}"),
    ("pe_cycles", "PE cycles (last idx)", lambda v: "-" if v is None or v != v else f"{int(v):,d}"),
    ("analytic_cycles", "analytic (last idx)", lambda v: "-" if v is None or v != v else f"{int(v):,d}"),
    ("status", "status", ""),
]


def cmd_verify(args) -> int:
    from tilesim.reports import format_table, markdown_table
    arch = api.load_arch(args.arch)
    model = _load_model(args)
    budget = _budget(args)
    with _naming_arch_file(args.arch):
        res = api.verify(arch, model, layers=args.layers, seed=args.seed,
                         objective=args.objective, strategy=args.strategy, budget=budget)
    a = arch.array
    print(f"# verify {model.name} (batch {model.batch}) on {arch.name}: {a.rows}x{a.cols}x{a.count} "
          f"{a.dataflow}, {res.precision}, seed {res.seed}, mappings: {res.mapper}: "
          f"{len(res.checks)} MAC layers ({res.skipped_ops} vector-unit layers not verified)")
    table = markdown_table if args.format == "markdown" else format_table
    print(table(res.frame(), VERIFY_SPEC))
    print("errors are in output units (integer: LSBs, must be 0); cycles are last-cycle indices "
          "(SCALE-Sim convention); 'NxCxHxW->K' = run on a shrunk copy (see docs/outputs.md)")
    n_ok = sum(c.ok for c in res.checks)
    print(f"verify: {n_ok}/{len(res.checks)} layers pass"
          + ("" if res.ok else " - MISMATCH"))
    torch_ok = True
    if args.torch_device:
        tc = api.verify_torch(arch, model, device=args.torch_device, layers=args.layers,
                              seed=args.seed)
        torch_ok = all(c.torch_ok for c in tc)
        from tilesim.explore.torch_check import frame
        print(table(frame(tc), TORCH_SPEC))
        print(f"torch ({tc[0].torch_device if tc else args.torch_device}): "
              f"{sum(c.torch_ok for c in tc)}/{len(tc)} layers agree with the reference "
              "kernels" + ("" if torch_ok else " - MISMATCH"))
    return 0 if res.ok and torch_ok else 1


TORCH_SPEC = [
    ("layer", "layer", ""), ("torch_shape", "torch on", ""), ("torch_dtype", "torch dtype", ""),
    ("torch_max_err", "torch max |err|", lambda v: "-" if v != v else f"{v:.3g}"),
    ("torch_ok", "torch", lambda v: "pass" if v else "FAIL"),
]


def _load_model(args):
    """The model, with import warnings (ops passed through) printed as one line each."""
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = api.load_model(args.model, args.batch, input_shape=args.input_shape,
                               allow_unsupported=args.passthrough_unsupported)
    for w in caught:
        print(f"tilesim: warning: {w.message}", file=sys.stderr)
    return model


def cmd_map(args) -> int:
    from tilesim.mapper.describe import loop_nest, tiling_summary
    budget = _budget(args)
    with _naming_arch_file(args.arch):
        got = api.map(args.arch, _load_model(args), args.layer, batch=args.batch,
                      objective=args.objective, strategy=args.strategy, budget=budget,
                      top=args.top)
    m, r, a = got["mapping"], got["result"], got["arch"]
    l = m.layer
    print(f"# layer {l.name} ({l.kind}: N={l.N} C={l.C} H={l.H} W={l.W} K={l.K} R={l.R} S={l.S} "
          f"P={l.P} Q={l.Q}, stride {l.stride[0]}, groups {l.groups}) of {got['model'].name} on "
          f"{a.name}")
    sr = m.search
    print(f"# searched for {sr.objective} ({sr.strategy}): {sr.evaluated:,} of "
          f"{sr.space_size:,} candidate mappings scored in {sr.seconds * 1e3:.1f} ms"
          + ("" if sr.complete else " (budget reached)"))
    print("\n".join(loop_nest(m, a)))
    ebd = sorted(r.energy_breakdown.items(), key=lambda kv: -kv[1])
    print(f"cost: {r.cycles:,} cycles ({r.cycles / a.clock * 1e3:.4f} ms, {r.bound}-bound, "
          f"compute {r.compute_cycles + 1:,}), energy {r.energy_pj / 1e6:,.3f} uJ, DRAM read "
          f"{r.dram_read_bytes:,} B, write {r.dram_write_bytes:,} B")
    from tilesim.sim.energy import energy_sources
    src = energy_sources(a)
    print("energy by term:")
    for k, v in ebd:
        if v:
            print(f"  {k[:-len('_energy_pj')]:34s} {v / 1e6:>12,.3f} uJ  [{src.get(k, '')}]")
    if got["runner_ups"]:
        print(f"runner-ups (next best under {sr.objective}):")
        print(f"  {'#':>2}  {'mapping':58s} {'cycles':>12} {'energy (uJ)':>12} {'vs best':>8}")
        key = {"latency": lambda x: x.cycles, "energy": lambda x: x.energy_pj,
               "edp": lambda x: x.cycles * x.energy_pj,
               "traffic": lambda x: x.dram_read_bytes + x.dram_write_bytes}[sr.objective]
        for i, (mm, rr) in enumerate(got["runner_ups"], 2):
            d = key(rr) / key(r) - 1
            print(f"  {i:>2}  {tiling_summary(mm):58s} {rr.cycles:>12,} "
                  f"{rr.energy_pj / 1e6:>12,.3f} {100 * d:>+7.2f}%")
    return 0


def cmd_baseline(args) -> int:
    from tilesim.reports import format_table
    m = api.baseline(_load_model(args), device=args.device, precision=args.precision,
                     repeats=args.repeats, warmup=args.warmup, out=args.out)
    df = m.frame()
    print(f"# {m.model} (batch {m.batch}) measured with PyTorch {m.env['torch_version']} on "
          f"{m.env['device_name']}, requested {m.precision}, timer {m.env['timer']}, median "
          f"of {args.repeats} runs after {args.warmup} warm-up")
    if args.device == "cpu":
        print("# this is a CPU measurement, not a GPU one")
    spec = [("layer", "layer", ""), ("kind", "kind", ""), ("latency_ms", "median (ms)", ".4f"),
            ("latency_ms_min", "min (ms)", ".4f"), ("precision_measured", "measured at", ""),
            ("note", "note", "")]
    print(format_table(df, spec))
    print(f"wrote {args.out}")
    return 0


def cmd_compare(args) -> int:
    from tilesim.reports import format_table
    got = api.compare(args.arch, args.gpu, _load_model_spec(args), batch=args.batch,
                      precision=args.precision, measured=args.gpu_measured,
                      objective=args.objective, input_shape=args.input_shape)
    s, df = got["summary"], got["frame"]
    print(f"# {s['model']} (batch {s['batch']}): {len(s['designs'])} designs; GPU model of "
          f"{s['gpu']} at {s['gpu_precision']}, fusion: {s['gpu_model_fusion']}")
    if not args.quiet:
        wide = df.pivot_table(index="layer", columns="design", values="latency_ms",
                              sort=False).reset_index()
        spec = [("layer", "layer", "")] + [(d["design"], f"{d['design']} (ms)",
                                            lambda v: "-" if v != v else f"{v:.4f}")
                                           for d in s["designs"]]   # "-": not measured
        print(format_table(wide, spec))
    import pandas as pd
    tot = pd.DataFrame(s["designs"]).fillna({"energy_uj": float("nan")})
    spec = [("design", "design", ""), ("source", "source", ""),
            ("latency_ms", "latency (ms)", ".4f"),
            ("throughput_samples_per_s", "throughput (samples/s)", ",.1f"),
            ("energy_uj", "energy (uJ)", lambda v: "-" if v != v else f"{v:,.1f}"),
            ("speedup_vs_gpu_model", "speed vs GPU model (x)", ".3f"),
            ("energy_ratio_vs_gpu_model", "energy vs GPU model (x)",
             lambda v: "-" if v is None or v != v else f"{v:.3f}")]
    print(format_table(tot, spec))
    print(f"energy sources: accelerators {api.ACCELERATOR_ENERGY_SOURCE}; GPU model "
          f"{got['gpu'].name}: TDP x modelled time (an upper bound)"
          + ("; measurement: not measured" if s["gpu_model_error"] is not None else ""))
    e = s["gpu_model_error"]
    if e is not None:
        if e["mape_pct"] is None:
            print("GPU model vs measurement: no layer in common")
        else:
            r2 = "n/a" if e["r2"] is None else f"{e['r2']:.3f}"
            print(f"GPU model vs measurement ({e['measured_device_name']}, measured at "
                  f"{e['measured_precision']}): per-layer MAPE {e['mape_pct']:.1f} % over "
                  f"{e['layers_compared']} layers (worst {e['worst_layer']}), R^2 {r2}; whole "
                  f"model {e['model_latency_error_pct']:+.1f} %")
        if e["measured_device"] != "cuda":
            print("note: the measurement is of a CPU, not of the GPU modelled; its error "
                  "figures say nothing about the GPU model's accuracy")
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


def _load_model_spec(args):
    """The model as given (warnings printed), batch left to api.compare."""
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = api.load_model(args.model, None, input_shape=args.input_shape,
                               allow_unsupported=args.passthrough_unsupported)
    for w in caught:
        print(f"tilesim: warning: {w.message}", file=sys.stderr)
    return model


def cmd_list(args) -> int:
    from tilesim import arch
    from tilesim import workloads
    print("architectures (presets):")
    for name in arch.presets():
        a = arch.load(name)
        print(f"  {name:18s} {a.description}")
    print("GPU presets (tilesim run --arch GPU --precision P; tilesim compare --gpu GPU):")
    for name in arch.gpu_presets():
        g = arch.load(name)
        print(f"  {name:18s} {g.description}; precisions {', '.join(g.precisions)}")
    print("models (zoo):")
    for name in workloads.zoo_names():
        m = workloads.load(name)
        print(f"  {name:18s} {len(m.layers):4d} layers, {m.macs / 1e9:8.3f} GMACs, "
              f"{m.params / 1e6:8.3f} M params (batch 1)")
    print("also: --arch PATH.yaml | PATH.cfg (SCALE-Sim), --model PATH.csv (SCALE-Sim topology) "
          "| PATH.yaml (layer table) | PATH.onnx | PATH.py:FACTORY (PyTorch, with --input-shape)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    p = argparse.ArgumentParser(prog="tilesim", description=__doc__.splitlines()[0] if __doc__ else "")
    p.add_argument("--version", action="version", version=f"tilesim {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="map and time a model on an accelerator")
    r.add_argument("--arch", required=True, help="preset name, architecture YAML or SCALE-Sim .cfg")
    r.add_argument("--model", required=True, help="zoo name, SCALE-Sim topology .csv, YAML layer "
                   "table, .onnx file or PyTorch factory file.py:function")
    _import_args(r)
    r.add_argument("--batch", type=_positive, default=1, help="batch size (default 1)")
    r.add_argument("--out", help="write layers.csv, summary.json, arch.yaml, model.csv here")
    r.add_argument("--format", choices=("table", "markdown"), default="table",
                   help="per-layer table style on the terminal")
    r.add_argument("--quiet", action="store_true", help="print only the total line")
    _search_args(r)
    r.add_argument("--fidelity", choices=("analytic", "des"), default="analytic",
                   help="timing model: analytic (closed form, default) or des (SimPy "
                        "discrete-event engine)")
    r.add_argument("--precision", choices=GPU_PRECISIONS, default=None,
                   help="GPU presets only: precision the GPU model runs at (default fp16); "
                        "an accelerator's precision is in its YAML")
    r.add_argument("--trace", metavar="FILE", help="with --fidelity des: write a Chrome "
                   "trace-format JSON timeline (opens in Perfetto)")
    r.add_argument("--trace-limit", type=_positive, default=None, metavar="N",
                   help="most events the trace keeps (default 100,000); beyond it the trace "
                        "is truncated and says so")
    r.add_argument("--report", metavar="FILE", type=_report_file, help="also write a report: self-contained "
                   "HTML, or Markdown when FILE ends in .md")
    r.set_defaults(fn=cmd_run)
    v = sub.add_parser("verify", help="check mapped tiles and PE-model cycles against "
                       "reference kernels and the analytic model (exit 1 on a mismatch)")
    v.add_argument("--arch", required=True, help="preset name, architecture YAML or SCALE-Sim .cfg")
    v.add_argument("--model", required=True, help="zoo name, SCALE-Sim topology .csv, YAML layer "
                   "table, .onnx file or PyTorch factory file.py:function")
    _import_args(v)
    v.add_argument("--layers", type=_positive, help="verify only the first N MAC layers")
    v.add_argument("--seed", type=_nonnegative, default=0, help="seed of the random operands (default 0)")
    v.add_argument("--batch", type=_positive, default=1, help="batch size (default 1)")
    v.add_argument("--format", choices=("table", "markdown"), default="table",
                   help="table style on the terminal")
    v.add_argument("--torch-device", choices=("cpu", "cuda"), default=None,
                   help="also compare the reference kernels with PyTorch's conv2d on this "
                        "device (torch extra)")
    _search_args(v)
    v.set_defaults(fn=cmd_verify)
    mp = sub.add_parser("map", help="show one layer's searched mapping as nested loops")
    mp.add_argument("--arch", required=True, help="preset name, architecture YAML or SCALE-Sim .cfg")
    mp.add_argument("--model", required=True, help="zoo name, SCALE-Sim topology .csv, YAML layer "
                    "table, .onnx file or PyTorch factory file.py:function")
    _import_args(mp)
    mp.add_argument("--layer", required=True, help="name of a MAC layer of the model")
    mp.add_argument("--batch", type=_positive, default=1, help="batch size (default 1)")
    mp.add_argument("--top", type=_nonnegative, default=5,
                    help="runner-up mappings to list (default 5)")
    _search_args(mp)
    mp.set_defaults(fn=cmd_map)
    b = sub.add_parser("baseline", help="measure per-layer latency with PyTorch (torch extra) "
                       "on a GPU (cuda) or the CPU")
    b.add_argument("--model", required=True, help="zoo name, SCALE-Sim topology .csv, YAML layer "
                   "table, .onnx file or PyTorch factory file.py:function")
    _import_args(b)
    b.add_argument("--device", choices=("cuda", "cpu"), required=True,
                   help="cuda (CUDA events) or cpu (wall clock; says so in the CSV)")
    b.add_argument("--precision", choices=GPU_PRECISIONS, default="fp32",
                   help="precision to run at (default fp32); the CSV says what was measured "
                        "(int8 falls back where PyTorch has no int8 kernel)")
    b.add_argument("--batch", type=_positive, default=1, help="batch size (default 1)")
    b.add_argument("--repeats", type=_positive, default=50, help="timed runs per layer, the "
                   "median is reported (default 50)")
    b.add_argument("--warmup", type=int, default=5, help="untimed runs first (default 5)")
    b.add_argument("--out", required=True, metavar="FILE.csv", help="CSV to write")
    b.set_defaults(fn=cmd_baseline)
    c = sub.add_parser("compare", help="accelerator designs next to a GPU (model, and a "
                       "measurement from `tilesim baseline`)")
    c.add_argument("--arch", action="append", required=True, help="a design: preset name, "
                   "architecture YAML or SCALE-Sim .cfg (repeat for several)")
    c.add_argument("--gpu", required=True, help="GPU preset (or kind: gpu YAML) to model")
    c.add_argument("--gpu-measured", metavar="FILE.csv", help="a `tilesim baseline` CSV of "
                   "the same model: adds it and the GPU model's MAPE and R^2 against it")
    c.add_argument("--model", required=True, help="zoo name, SCALE-Sim topology .csv, YAML "
                   "layer table, .onnx file or PyTorch factory file.py:function")
    _import_args(c)
    c.add_argument("--batch", type=_positive, default=None,
                   help="batch size (default: the measurement's, else 1)")
    c.add_argument("--precision", choices=GPU_PRECISIONS, default=None,
                   help="GPU model precision (default: what the measurement ran at, else fp16)")
    c.add_argument("--objective", choices=OBJECTIVE_CHOICES,
                   default="edp", help="mapping search objective of the designs (default edp)")
    c.add_argument("--out", metavar="DIR", help="write compare.csv and compare_summary.json")
    c.add_argument("--report", metavar="FILE", type=_report_file, help="also write a report: self-contained "
                   "HTML, or Markdown when FILE ends in .md")
    c.add_argument("--quiet", action="store_true", help="totals only, no per-layer table")
    c.set_defaults(fn=cmd_compare)
    sw = sub.add_parser("sweep", help="sweep design points over models (resumable store)")
    sw.add_argument("spec", help="sweep spec YAML (see examples/sweep_resnet18.yaml)")
    sw.add_argument("--out", required=True, help="folder for results.sqlite (the store), "
                    "results.csv, sweep.json, base_arch.yaml")
    sw.add_argument("--workers", type=_positive, default=None, metavar="N",
                    help="local worker processes (default: all cores)")
    sw.add_argument("--dask", metavar="ADDRESS", help="run on a Dask cluster: a scheduler "
                    "address (tcp://host:8786) or 'local' (a LocalCluster of --workers "
                    "processes on 127.0.0.1); needs the dask extra")
    sw.add_argument("--dask-timeout", type=float, default=10.0, metavar="S",
                    help="seconds to wait for the Dask scheduler (default 10)")
    sw.add_argument("--resume", action="store_true", help="finish a killed sweep in --out: "
                    "stored rows are not recomputed")
    sw.add_argument("--recompute-stale", action="store_true", help="with --resume: recompute "
                    "the stored rows another tilesim version computed (else refused)")
    sw.add_argument("--report", metavar="FILE", type=_report_file, help="also write a report (HTML, or Markdown "
                    "for .md) with the Pareto front")
    sw.add_argument("--objectives", default="latency_ms,energy_uj", metavar="A,B[,C]",
                    help="columns the Pareto front minimises (default latency_ms,energy_uj; "
                    "e.g. add area_sq_mm); the plot shows the first two")
    sw.add_argument("--color", metavar="COLUMN", help="colour the Pareto plot by this column "
                    "(default area_sq_mm; e.g. a varied key path)")
    sw.add_argument("--quiet", action="store_true", help="no progress bar")
    sw.set_defaults(fn=cmd_sweep)
    rp = sub.add_parser("report", help="HTML or Markdown report of output folders")
    rp.add_argument("dirs", nargs="+", metavar="DIR", help="folders written by tilesim run "
                    "--out, sweep --out or compare (several runs are compared side by side)")
    rp.add_argument("-o", "--output", required=True, metavar="FILE", type=_report_file,
                    help="report file: .html (self-contained) or .md (Markdown)")
    rp.add_argument("--objectives", default="latency_ms,energy_uj", metavar="A,B[,C]",
                    help="columns the Pareto front minimises (default latency_ms,energy_uj; "
                    "e.g. add area_sq_mm); the plot shows the first two")
    rp.add_argument("--color", metavar="COLUMN", help="sweeps: colour the Pareto plot by "
                    "this column (default area_sq_mm)")
    rp.add_argument("--title", help="report title")
    rp.set_defaults(fn=cmd_report)
    ls = sub.add_parser("list", help="list architecture presets and zoo models")
    ls.set_defaults(fn=cmd_list)
    return p


def _import_args(p) -> None:
    p.add_argument("--input-shape", metavar="NxCxHxW",
                   help="input shape of an ONNX model with dynamic dimensions or of a PyTorch "
                   "model, e.g. 1x3x224x224 (the leading batch entry is set by --batch)")
    p.add_argument("--passthrough-unsupported", action="store_true",
                   help="treat ONNX / PyTorch ops tilesim cannot model as free ops (warns) "
                   "instead of failing")


def _search_args(p) -> None:
    p.add_argument("--objective", choices=OBJECTIVE_CHOICES,
                   default="edp", help="what each layer's mapping search minimises "
                   "(default edp: cycles x energy; traffic: least DRAM traffic; 'default' is "
                   "a deprecated name of traffic)")
    p.add_argument("--search-budget", type=_positive, default=None, metavar="N",
                   help="at most N candidate mappings scored per layer (default 100000)")
    p.add_argument("--search-seconds", type=float, default=None, metavar="S",
                   help="at most S seconds of search per layer (default 10)")
    p.add_argument("--strategy", choices=("heuristic", "exhaustive"), default="heuristic",
                   help="search strategy (default heuristic)")


def _budget(args):
    from tilesim.mapper import Budget
    if args.search_seconds is not None and not args.search_seconds > 0:
        raise MappingError(f"--search-seconds {args.search_seconds:g} must be positive",
                           fix="give a number of seconds like 5")
    d = Budget()
    return Budget(candidates=args.search_budget or d.candidates,
                  seconds=args.search_seconds or d.seconds)


def _positive(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not an integer") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{v} must be >= 1")
    return v


def _nonnegative(s: str) -> int:
    """A non-negative integer (``--top``; ``--seed``: numpy refuses negative seeds)."""
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not an integer") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"{v} must be >= 0")
    return v


def _report_file(s: str) -> str:
    """A report path: .html / .htm (self-contained HTML) or .md / .markdown, checked
    before any work."""
    from pathlib import Path
    if Path(s).suffix.lower() not in (".html", ".htm", ".md", ".markdown"):
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
    args.command_line = "tilesim " + shlex.join(argv)
    if getattr(args, "objective", None) in DEPRECATED_OBJECTIVES:
        new = DEPRECATED_OBJECTIVES[args.objective]
        print(f"tilesim: warning: --objective {args.objective} is deprecated; it means "
              f"--objective {new} (the least DRAM traffic tiling)", file=sys.stderr)
        args.objective = new
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
