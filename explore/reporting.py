"""Reports of runs, sweeps and comparisons: gathers the tables of output folders (or of an
in-memory run) and the architecture's roofline numbers and on-chip capacities, then hands
plain DataFrames and dicts to :mod:`tilesim.reports.report` (which imports nothing of
ours)."""
from __future__ import annotations

import sys
from pathlib import Path

from tilesim import _version


def roof_of(arch, precision: str | None = None) -> dict:
    """Peak ops/s (2 per MAC) and DRAM bytes/s (None when unlimited) of an Architecture,
    or of a GPU preset at ``precision``."""
    if getattr(arch, "kind", None) == "gpu":
        return {"peak_ops_per_s": arch.peak_ops(precision),
                "dram_bytes_per_s": arch.memory_bandwidth}
    bpc = arch.dram_bpc
    bw = None if bpc == float("inf") else bpc * arch.clock
    return {"peak_ops_per_s": 2.0 * arch.peak_macs_per_cycle * arch.clock, "dram_bytes_per_s": bw}


def capacities_of(arch) -> dict:
    """{on-chip level: size in bytes} of an Architecture's shared on-chip levels (the
    memory plot's capacity lines); {} for a GPU preset."""
    if getattr(arch, "kind", None) == "gpu":
        return {}
    return {m.name: int(m.size) for m in arch.onchip if m.size}


def _arch_numbers(d: Path) -> tuple[dict, dict]:
    """(roof, capacities) of a run folder's ``arch.yaml`` ({} and {} without one)."""
    import tilesim.arch as _arch
    import json
    p = d / "arch.yaml"
    if not p.is_file():
        return {}, {}
    summ = d / "summary.json"
    prec = json.loads(summ.read_text()).get("gpu_precision") if summ.is_file() else None
    a = _arch.load(str(p))
    return roof_of(a, prec), capacities_of(a)


def write_report(sections, out, title: str, command: str | None = None) -> Path:
    from tilesim.reports import write_text
    from tilesim.reports.report import to_html, to_markdown

    meta = (f"tilesim {_version.__version__}; "
            f"{'command: ' + command if command else ' '.join(sys.argv)}")
    out = Path(out)
    md = out.suffix.lower() in (".md", ".markdown")
    return write_text(out, (to_markdown if md else to_html)(sections, title, meta))


def report(dirs, out, color: str | None = None, title: str | None = None,
           command: str | None = None, objectives=("latency_ms", "energy_uj")) -> Path:
    """A report of output folders (``tilesim run --out``, ``sweep --out``, a compare
    folder) written to ``out``: self-contained HTML, or Markdown when ``out`` ends in
    ``.md``. Several run folders are also compared side by side."""
    from tilesim.reports.report import build, load_dir
    if isinstance(dirs, (str, Path)):
        dirs = [dirs]
    runs, sweeps, compares, codesigns = [], [], [], []
    for d in dirs:
        got = load_dir(d)
        if "run" in got:
            got["run"].roof, got["run"].capacities = _arch_numbers(Path(d))
            runs.append(got["run"])
        if "sweep" in got:
            sweeps.append(got["sweep"])
        if "compare" in got:
            compares.append(got["compare"])
        if "codesign" in got:
            codesigns.append(got["codesign"])
    title = title or "tilesim report: " + ", ".join(Path(d).name for d in dirs)
    return write_report(build(title, runs, sweeps, compares, color, objectives, codesigns),
                        out, title, command)


def run_report(result, arch, out, trace=None, command: str | None = None,
               precision: str | None = None) -> Path:
    """The report of one in-memory run (``tilesim run --report``); ``precision`` for a GPU."""
    from tilesim.reports.report import RunData, build

    from tilesim.sim import layers_frame, tensors_frame
    s = result.summary()
    s["fidelity"] = result.layers[0].fidelity if result.layers else "analytic"
    rd = RunData(result.model, s, layers_frame(result), trace, roof_of(arch, precision),
                 tensors_frame(result), capacities_of(arch))
    title = f"tilesim report: {result.model} on {result.arch}"
    return write_report(build(title, [rd]), out, title, command)


def sweep_report(df, meta: dict, out, color: str | None = None,
                 command: str | None = None, objectives=("latency_ms", "energy_uj")) -> Path:
    from tilesim.reports.report import build
    title = f"tilesim sweep report: {meta.get('name', '')}"
    return write_report(build(title, sweeps=[(df, meta)], color=color, objectives=objectives),
                        out, title, command)


def codesign_report(df, meta: dict, out, command: str | None = None) -> Path:
    """The report of a co-design run (``tilesim codesign --report``)."""
    from tilesim.reports.report import build
    title = f"tilesim co-design report: {meta.get('name', '')}"
    return write_report(build(title, codesigns=[(df, meta)]), out, title, command)
