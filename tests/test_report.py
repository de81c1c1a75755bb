"""Reports: one self-contained HTML file (inline SVG, nothing fetched) or Markdown, with
the sections the data allows; numbers equal the tables they come from; deterministic."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

import tilesim
from tilesim.cli import main
from tilesim.reports import seal_folder
from tilesim.reports.units import fmt

ROOT = Path(__file__).parents[1]
TINY = str(ROOT / "examples" / "tiny_net.yaml")


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    t = tmp_path_factory.mktemp("rep")
    des, ana = t / "des", t / "ana"
    assert main(["run", "--arch", "eyeriss_like", "--model", TINY, "--fidelity", "des",
                 "--trace", str(t / "tr.json"), "--out", str(des), "--quiet",
                 "--report", str(t / "run.html")]) == 0
    assert main(["run", "--arch", "nvdla_small", "--model", TINY, "--out", str(ana),
                 "--quiet"]) == 0
    # a hand-made compare.csv (the long format `tilesim compare` writes)
    layers = pd.read_csv(ana / "layers.csv")
    rows = []
    for _, r in layers.iterrows():
        for src, f in (("accelerator", 1.0), ("gpu-model", 0.25), ("gpu-measured", 0.5)):
            rows.append({"layer": r["layer"], "design": "nvdla_small", "source": src,
                         "latency_ms": r["latency_ms"] * f, "energy_uj": r["energy_pj"] * 1e-6 * f})
    cmp_dir = t / "cmp"
    cmp_dir.mkdir()
    pd.DataFrame(rows).to_csv(cmp_dir / "compare.csv", index=False)
    (cmp_dir / "compare_summary.json").write_text(json.dumps(
        {"gpu": "h100_like", "speedup": {"gpu-model": 4.0}}))
    seal_folder(cmp_dir, [cmp_dir / "compare.csv", cmp_dir / "compare_summary.json"])
    sweep = t / "sweep"
    tilesim.sweep({"version": 1, "name": "rep", "base": "eyeriss_like", "models": [TINY],
                   "vary": {"compute.arrays[0].rows": [4, 8, 12, 16],
                            "compute.arrays[0].dataflow": ["os", "ws", "is"],
                            "memory[1].size": ["64 B", "108 KiB"]},
                   "search": {"candidates": 2000}}, out=sweep, workers=2)
    return {"t": t, "des": des, "ana": ana, "cmp": cmp_dir, "sweep": sweep}


def self_contained(html: str) -> None:
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html, re.I)
    assert "<script" not in html.lower() and "<link" not in html.lower()
    assert "@import" not in html and not re.search(r"url\((?!#)", html)   # url(#clip) only
    # no URL at all but the SVG namespace names (identifiers, never fetched)
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", html))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls


def test_run_report_has_every_section(dirs):
    """run --fidelity des --trace --out --report: cards, breakdowns, roofline, timeline."""
    html = (dirs["t"] / "run.html").read_text()
    self_contained(html)
    for title in ("Per-layer latency and energy", "Utilisation per layer", "Roofline",
                  "DES timeline", "Layers", "Energy per layer, by level", "Stalls by cause"):
        assert title in html, title
    assert html.count("<svg") == 6
    s = json.loads((dirs["des"] / "summary.json").read_text())
    assert fmt(s["latency_ms"], "ms") in html   # the one formatter
    # every energy level of layers.csv is in the stacked plot's legend
    cols = pd.read_csv(dirs["des"] / "layers.csv").columns
    for lvl in ("mac", "array", "dram", "global_buffer", "leakage"):
        assert any(c.startswith(lvl + "_") and c.endswith("_energy_pj") for c in cols)
        assert f">{lvl}<" in html, lvl
    assert (dirs["des"] / "trace.json").is_file()


@pytest.mark.slow  # writes and compares several full reports
def test_report_of_dirs_is_deterministic_and_compares(dirs, tmp_path):
    """Two run folders: a side-by-side comparison; the same report twice is identical."""
    a, b = tmp_path / "a.html", tmp_path / "b.html"
    for f in (a, b):
        assert main(["report", str(dirs["des"]), str(dirs["ana"]), "-o", str(f)]) == 0
    html = a.read_text()
    assert html.replace("a.html", "") == b.read_text().replace("b.html", "")
    self_contained(html)
    assert "Design comparison" in html and html.count("<h2>DES timeline: des</h2>") == 1
    # overlaid, not repeated: one set of shared plots, each run a series in it
    assert html.count("<h2>Per-layer comparison (one series per run)</h2>") == 1
    assert "Utilisation per layer</h2>" not in html
    assert "nvdla_small" in html and "eyeriss_like" in html


def test_compare_tables_from_long_format(dirs, tmp_path):
    """compare.csv: totals per design and source equal the sums of the layer rows."""
    md = tmp_path / "c.md"
    assert main(["report", str(dirs["cmp"]), "-o", str(md)]) == 0
    text = md.read_text()
    assert "## Accelerator vs GPU" in text
    df = pd.read_csv(dirs["cmp"] / "compare.csv")
    tot = df.groupby("source")["latency_ms"].sum()
    for src, v in tot.items():
        assert re.search(rf"\| nvdla_small \| {src} \| {re.escape(fmt(v, 'ms'))} \|", text), src
    assert "| speedup.gpu-model | 4 |" in text
    html = tmp_path / "c.html"
    assert main(["report", str(dirs["cmp"]), "-o", str(html)]) == 0
    assert html.read_text().count("<svg") == 2


def test_sweep_report_pareto_front(dirs, tmp_path):
    """The front table lists exactly the designs tilesim.pareto finds; infeasible points
    are summarised by reason; colouring by a varied key path works."""
    df = pd.read_csv(dirs["sweep"] / "results.csv")
    front = tilesim.pareto(df)
    assert 0 < len(front) < (df["status"] == "ok").sum()
    md = tmp_path / "s.md"
    assert main(["report", str(dirs["sweep"]), "-o", str(md)]) == 0
    text = md.read_text()
    assert f"{len(front)} designs on the front" in text
    sec = text.split("designs on the front")[1].split("## ")[0]
    listed = [int(l.split("|")[1]) for l in sec.splitlines() if re.match(r"\| \d+ \|", l)]
    assert sorted(listed) == sorted(front["design"])
    assert "## Infeasible design points" in text and "global_buffer" in text
    h = tmp_path / "s.html"
    assert main(["report", str(dirs["sweep"]), "-o", str(h), "--color",
                 "compute.arrays[0].dataflow"]) == 0
    html = h.read_text()
    self_contained(html)
    assert "compute.arrays[0].dataflow=ws" in html
    # a text column with missing values (reason is empty on feasible rows): every point
    # is drawn, the missing ones as "(none)"
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")       # matplotlib: "No artists with labels ..."
        assert main(["report", str(dirs["sweep"]), "-o", str(h), "--color", "reason"]) == 0
    assert "reason=(none)" in h.read_text()
    assert main(["report", str(dirs["sweep"]), "-o", str(h), "--color", "nope"]) == 2
    # a three-objective front: area joins latency and energy
    front3 = tilesim.pareto(df, ("latency_ms", "energy_uj", "area_sq_mm"))
    assert len(front3) > len(front)
    assert main(["report", str(dirs["sweep"]), "-o", str(md), "--objectives",
                 "latency_ms,energy_uj,area_sq_mm"]) == 0
    assert f"{len(front3)} designs on the front" in md.read_text()
    assert main(["report", str(dirs["sweep"]), "-o", str(md), "--objectives", "x"]) == 2
    assert main(["report", str(dirs["sweep"]), "-o", str(md), "--objectives",
                 "latency_ms,latency_ms"]) == 2


def test_report_of_a_folder_without_results_is_an_error(tmp_path, capsys):
    assert main(["report", str(tmp_path), "-o", str(tmp_path / "r.html")]) == 2
    assert "layers.csv" in capsys.readouterr().err


def test_outputs_follow_the_umask(tmp_path):
    """Reports and tables are written atomically, yet with the permissions the umask gives
    (not the 0600 of a temporary file), so colleagues can read a shared report."""
    import os
    import stat

    from tilesim.reports import write_text
    old = os.umask(0o022)
    try:
        p = write_text(tmp_path / "r.html", "x")
        assert stat.S_IMODE(p.stat().st_mode) == 0o644
        os.umask(0o077)
        assert stat.S_IMODE(write_text(tmp_path / "s.md", "x").stat().st_mode) == 0o600
    finally:
        os.umask(old)
    assert sorted(f.name for f in tmp_path.iterdir()) == ["r.html", "s.md"]


def test_bad_report_input_is_one_clear_line(dirs, tmp_path, capsys):
    """A report name that is neither .html nor .md is refused before any work; a damaged
    summary.json or layers.csv is named, exit 2, no traceback, no report."""
    import shutil
    for argv in (["report", str(dirs["ana"]), "-o", str(tmp_path / "r.pdf")],
                 ["run", "--arch", "eyeriss_like", "--model", TINY, "--quiet",
                  "--report", str(tmp_path / "r.png")]):
        with pytest.raises(SystemExit) as e:   # argparse: usage and one error line
            main(argv)
        assert e.value.code == 2 and "FILE.html or FILE.md" in capsys.readouterr().err
    for name, junk in (("summary.json", "{not json"), ("layers.csv", b"\xff\xfe\x00")):
        bad = tmp_path / ("bad_" + name.split(".")[0])
        shutil.copytree(dirs["ana"], bad)
        (bad / name).write_bytes(junk if isinstance(junk, bytes) else junk.encode())
        assert main(["report", str(bad), "-o", str(tmp_path / "r.html")]) == 2
        err = capsys.readouterr().err
        assert str(bad / name) in err and "Fix:" in err and len(err.splitlines()) == 1, err
    assert not list(tmp_path.glob("r.*"))
