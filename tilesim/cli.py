"""The ``tilesim`` command. Exit codes: 0 ok, 1 failure of the tool, 2 bad input."""
from __future__ import annotations

import argparse
import shlex
import sys

from mapper import MappingError

from . import api


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


def cmd_run(args) -> int:
    from reports import format_table, markdown_table
    arch = api.load_arch(args.arch)
    model = api.load_model(args.model, args.batch)
    try:
        result = api.simulate(arch, model)
    except MappingError as e:  # name the file the architecture came from
        raise MappingError(e.bare, source=args.arch, fix=e.fix) from None
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
        print(table(df, LAYER_SPEC, total))
        print("layer cycles are last-cycle indices (SCALE-Sim convention); the total counts "
              "cycles (sum of layer total + 1)")
    print(f"total: {s['total_cycles']:,} cycles = {s['latency_ms']:.4f} ms at "
          f"{arch.clock / 1e6:g} MHz | {s['macs'] / 1e9:.4f} GMACs | "
          f"utilization {100 * s['utilization']:.2f} % | "
          f"throughput {s['throughput_samples_per_s']:.2f} samples/s | DRAM read "
          f"{s['dram_read_bytes'] / 1e6:.3f} MB, write {s['dram_write_bytes'] / 1e6:.3f} MB")
    if args.out:
        paths = api.write_outputs(args.out, result, arch, model, command=args.command_line)
        print(f"wrote {', '.join(paths.values())}")
    return 0


VERIFY_SPEC = [
    ("layer", "layer", ""), ("exec_shape", "executor on", ""), ("tiles", "tiles", ",d"),
    ("exec_max_err", "exec max |err|", lambda v: f"{v:.3g}"),
    ("tiles_fit", "tiles fit", lambda v: "yes" if v else "NO"),
    ("pe_shape", "PE model on", ""),
    ("pe_max_err", "PE max |err|", lambda v: "-" if v is None or v != v else f"{v:.3g}"),
    ("pe_cycles", "PE cycles (last idx)", lambda v: "-" if v is None or v != v else f"{int(v):,d}"),
    ("analytic_cycles", "analytic (last idx)", lambda v: "-" if v is None or v != v else f"{int(v):,d}"),
    ("status", "status", ""),
]


def cmd_verify(args) -> int:
    from reports import format_table, markdown_table
    arch = api.load_arch(args.arch)
    model = api.load_model(args.model, args.batch)
    try:
        res = api.verify(arch, model, layers=args.layers, seed=args.seed)
    except MappingError as e:
        raise MappingError(e.bare, source=args.arch, fix=e.fix) from None
    a = arch.array
    print(f"# verify {model.name} (batch {model.batch}) on {arch.name}: {a.rows}x{a.cols}x{a.count} "
          f"{a.dataflow}, {res.precision}, seed {res.seed}: {len(res.checks)} MAC layers "
          f"({res.skipped_ops} vector-unit layers not verified)")
    table = markdown_table if args.format == "markdown" else format_table
    print(table(res.frame(), VERIFY_SPEC))
    print("errors are in output units (integer: LSBs, must be 0); cycles are last-cycle indices "
          "(SCALE-Sim convention); 'NxCxHxW->K' = run on a shrunk copy (see docs/outputs.md)")
    n_ok = sum(c.ok for c in res.checks)
    print(f"verify: {n_ok}/{len(res.checks)} layers pass"
          + ("" if res.ok else " - MISMATCH"))
    return 0 if res.ok else 1


def cmd_list(args) -> int:
    import arch
    import workloads
    print("architectures (presets):")
    for name in arch.presets():
        a = arch.load(name)
        print(f"  {name:18s} {a.description}")
    print("models (zoo):")
    for name in workloads.zoo_names():
        m = workloads.load(name)
        print(f"  {name:18s} {len(m.layers):4d} layers, {m.macs / 1e9:8.3f} GMACs, "
              f"{m.params / 1e6:8.3f} M params (batch 1)")
    print("also: --arch PATH.yaml | PATH.cfg (SCALE-Sim), --model PATH.csv (SCALE-Sim topology) "
          "| PATH.yaml (layer table)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    p = argparse.ArgumentParser(prog="tilesim", description=__doc__.splitlines()[0] if __doc__ else "")
    p.add_argument("--version", action="version", version=f"tilesim {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="map and time a model on an accelerator")
    r.add_argument("--arch", required=True, help="preset name, architecture YAML or SCALE-Sim .cfg")
    r.add_argument("--model", required=True, help="zoo name, SCALE-Sim topology .csv or YAML layer table")
    r.add_argument("--batch", type=_positive, default=1, help="batch size (default 1)")
    r.add_argument("--out", help="write layers.csv, summary.json, arch.yaml, model.csv here")
    r.add_argument("--format", choices=("table", "markdown"), default="table",
                   help="per-layer table style on the terminal")
    r.add_argument("--quiet", action="store_true", help="print only the total line")
    r.set_defaults(fn=cmd_run)
    v = sub.add_parser("verify", help="check mapped tiles and PE-model cycles against "
                       "reference kernels and the analytic model (exit 1 on a mismatch)")
    v.add_argument("--arch", required=True, help="preset name, architecture YAML or SCALE-Sim .cfg")
    v.add_argument("--model", required=True, help="zoo name, SCALE-Sim topology .csv or YAML layer table")
    v.add_argument("--layers", type=_positive, help="verify only the first N MAC layers")
    v.add_argument("--seed", type=int, default=0, help="seed of the random operands (default 0)")
    v.add_argument("--batch", type=_positive, default=1, help="batch size (default 1)")
    v.add_argument("--format", choices=("table", "markdown"), default="table",
                   help="table style on the terminal")
    v.set_defaults(fn=cmd_verify)
    ls = sub.add_parser("list", help="list architecture presets and zoo models")
    ls.set_defaults(fn=cmd_list)
    return p


def _positive(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not an integer") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{v} must be >= 1")
    return v


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.command_line = "tilesim " + shlex.join(argv)
    try:
        return args.fn(args)
    except api.INPUT_ERRORS as e:
        print(f"tilesim: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"tilesim: error: {e.filename or ''}: {e.strerror}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tilesim: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
