"""Reports of GPU runs and of `tilesim compare`: the GPU's roofline, energy source and tables."""
from __future__ import annotations

from tilesim.cli import main


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
