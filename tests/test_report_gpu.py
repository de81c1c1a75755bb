"""Reports of GPU runs and of `tilesim compare`: the GPU's roofline, energy source and tables."""
from __future__ import annotations

from tilesim.cli import main
from tilesim.reports.units import fmt


def test_gpu_run_report_has_gpu_roofline_and_energy_source(tmp_path, capsys):
    """`run --arch a100 --report` (and `report DIR` on its --out) use the GPU's peak at the
    modelled precision and say the energy is TDP x time."""
    out, html = tmp_path / "run", tmp_path / "gpu.md"
    assert main(["run", "--arch", "a100", "--model", "resnet18", "--precision", "int8",
                 "--quiet", "--out", str(out), "--report", str(html)]) == 0
    text = html.read_text()
    assert "Peak 624 TOPS" in text and "TDP" in text and "fidelity**: gpu-model" in text
    again = tmp_path / "again.md"
    assert main(["report", str(out), "-o", str(again)]) == 0
    assert "Peak 624 TOPS" in again.read_text()


def test_compare_report_without_out(tmp_path, capsys):
    """`compare --report` alone writes the accelerator-vs-GPU report (no --out needed)."""
    md = tmp_path / "cmp.md"
    assert main(["compare", "--arch", "tpu_v1", "--arch", "eyeriss_like", "--gpu", "t4",
                 "--model", "resnet18", "--quiet", "--report", str(md)]) == 0
    text = md.read_text()
    assert "## Accelerator vs GPU" in text
    for name in ("tpu_v1", "eyeriss_like", "t4"):
        assert f"| {name} |" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cmp.md"]


def test_compare_report_totals_are_the_summary_s(tmp_path):
    """With compare_summary.json, the totals table is its per-design totals: a measurement's
    whole-model time (not the sum of its layers), throughput, and each energy's source."""
    import json
    from pathlib import Path

    import pandas as pd

    import tilesim
    tiny = str(Path(__file__).parents[1] / "examples" / "tiny_net.yaml")
    r = tilesim.api.simulate_gpu("t4", tiny, precision="fp16")
    rows = [{"scope": "layer", "layer": l.layer, "kind": l.kind, "macs": l.macs,
             "latency_ms": 0.5, "precision_measured": "fp16", "device": "cuda", "batch": 1,
             "model": "tiny_net", "device_name": "test GPU"} for l in r.layers]
    rows.append({**rows[0], "scope": "model", "layer": "(model)", "latency_ms": 7.25})
    meas = tmp_path / "m.csv"
    pd.DataFrame(rows).to_csv(meas, index=False)
    out, md = tmp_path / "cmp", tmp_path / "c.md"
    assert main(["compare", "--arch", "tpu_v1", "--gpu", "t4", "--gpu-measured", str(meas),
                 "--model", tiny, "--quiet", "--out", str(out), "--report", str(md)]) == 0
    text = md.read_text()
    s = json.loads((out / "compare_summary.json").read_text())
    assert "| t4 (measured) | gpu-measured | 7.25 ms | whole model | 138 samples/s | - | " \
        "not measured |" in text                    # not 0.5 x layers
    tpu = next(d for d in s["designs"] if d["design"] == "tpu_v1")
    assert f"| {fmt(tpu['throughput_samples_per_s'], 'samples/s')} |" in text
    assert "| GPU TDP x modelled time" in text and "| access counts x technology" in text
    assert '"design"' not in text                    # no JSON dump of the designs
