"""The report cases the report checks share, each built once per test session: ResNet-50 on
tpu_v1 (analytic, and DES with its trace), a 3-run comparison, and the example sweep
(a 16-point subset of examples/sweep_resnet18.yaml; for slow runs its full 540 points
on examples/tiny_net.yaml).
Each case is its output folders, the HTML report ``tilesim report`` writes of them, and
every matplotlib figure that report built (captured where plots.to_svg renders it)."""
from __future__ import annotations

from pathlib import Path

import yaml

import tilesim
from tilesim.cli import main
from tilesim.reports import plots

ROOT = Path(__file__).parents[1]
SWEEP = ROOT / "examples" / "sweep_resnet18.yaml"
NAMES = ("resnet50_analytic", "resnet50_des", "three_runs", "sweep_subset")
_BUILT: dict = {}


def _run(out: Path, *args) -> Path:
    if not out.is_dir():
        assert main(["run", "--model", "resnet50", "--out", str(out), "--quiet", *args]) == 0
    return out


def _sweep(out: Path, subset: bool) -> Path:
    if not out.is_dir():
        spec = yaml.safe_load(SWEEP.read_text())
        if subset:   # 2 x 2 x 2 x 1 x 2 = 16 points, feasible and infeasible ones
            spec["vary"] = {"compute.arrays[0].rows": [32, 256],
                            "compute.arrays[0].dataflow": ["os", "ws"],
                            "memory[0].bandwidth": ["8 GB/s", "128 GB/s"],
                            "memory[1].size": ["2 MiB"],
                            "memory[2].size": ["32 KiB", "1 MiB"]}
        else:        # all 540 design points; the layout depends on the points and the
            # columns, not on the network they ran: examples/tiny_net.yaml (6 layers)
            # instead of ResNet-18 (31), 20 candidates a layer
            spec["models"] = [str(ROOT / "examples" / "tiny_net.yaml")]
            spec["search"] = {"strategy": "heuristic", "candidates": 20}
        tilesim.sweep(spec, out=out, workers=2)
    return out


def case(tmp_path_factory, name: str) -> dict:
    """{"dirs", "html", "figures"} of one case (built on first use)."""
    if name in _BUILT:
        return _BUILT[name]
    t = tmp_path_factory.getbasetemp() / "report_cases"
    t.mkdir(exist_ok=True)
    if name == "resnet50_analytic":
        dirs = [_run(t / "ana", "--arch", "tpu_v1")]
    elif name == "resnet50_des":
        dirs = [_run(t / "des", "--arch", "tpu_v1", "--fidelity", "des",
                     "--trace", str(t / "des_trace.json"))]
    elif name == "three_runs":
        dirs = [_run(t / "des", "--arch", "tpu_v1", "--fidelity", "des",
                     "--trace", str(t / "des_trace.json")),
                _run(t / "ana", "--arch", "tpu_v1"), _run(t / "nvdla", "--arch", "nvdla_small")]
    elif name in ("sweep_subset", "sweep_full"):
        dirs = [_sweep(t / name, name == "sweep_subset")]
    else:
        raise KeyError(name)
    figures = []
    render = plots.to_svg

    def capture(fig):
        figures.append(fig)
        return render(fig)
    plots.to_svg = capture          # every figure of the report passes through here
    try:
        html = t / f"{name}.html"
        assert main(["report", *map(str, dirs), "-o", str(html)]) == 0
    finally:
        plots.to_svg = render
    _BUILT[name] = {"dirs": dirs, "html": html, "figures": figures}
    return _BUILT[name]
