"""Network-level memory in the outputs and the report: `run --out` writes tensors.csv (every
documented column); the report's Memory section plots on-chip occupancy per level, tensor by
tensor, with each level's capacity, and the DRAM traffic saved, when some tensor is on chip,
and says in one sentence that every activation goes through DRAM otherwise."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tilesim.cli import main
from tilesim.reports import check_folder, plots
from tilesim.reports.report import RunData, build, memory_section, to_html, to_markdown
from tilesim.reports.units import fmt

ROOT = Path(__file__).parents[1]
TINY = str(ROOT / "examples" / "tiny_net.yaml")
COLUMNS = ["tensor", "bytes", "placed", "first", "last", "readers", "reason"]


# ---- a synthetic network: 5 layers, two on-chip levels ----------------------------------
def synthetic_tensors() -> pd.DataFrame:
    """input (100 B) and a's output (200 B) in ubuf, b's (50 B) in DRAM, c's (120 B) in
    spad, d's (30 B) in ubuf, e's the network output."""
    rows = [("input", 100, "ubuf", -1, 0, 1, "staged"),
            ("a", 200, "ubuf", 0, 2, 2, "fits"),
            ("b", 50, "dram", 1, 2, 1, "capacity"),
            ("c", 120, "spad", 2, 3, 1, "fits"),
            ("d", 30, "ubuf", 3, 4, 1, "fits"),
            ("e", 10, "dram", 4, 4, 0, "network output: leaves in DRAM")]
    return pd.DataFrame(rows, columns=COLUMNS)


def synthetic_layers() -> pd.DataFrame:
    n = 5
    return pd.DataFrame({
        "layer": list("abcde"), "kind": ["conv"] * n, "macs": [10] * n,
        "compute_cycles": [9] * n, "stall_cycles": [0] * n, "total_cycles": [9] * n,
        "latency_ms": [1e-5] * n, "utilization": [0.5] * n,
        "dram_read_bytes": [40, 0, 50, 0, 0], "dram_write_bytes": [0, 50, 0, 0, 10],
        "onchip_read_bytes": [100, 200, 200, 120, 30],
        "onchip_write_bytes": [200, 0, 120, 30, 0]})


def synthetic_run(tensors, fusion="residency") -> RunData:
    L = synthetic_layers()
    saved = int(L["onchip_read_bytes"].sum() + L["onchip_write_bytes"].sum())
    return RunData("syn", {"model": "syn", "arch": "x", "batch": 1, "fusion": fusion,
                           "dram_saved_bytes": saved}, L, tensors=tensors,
                   capacities={"ubuf": 400, "spad": 200})


def capture(monkeypatch) -> list:
    figures, render = [], plots.to_svg

    def keep(fig):
        figures.append(fig)
        return render(fig)
    monkeypatch.setattr(plots, "to_svg", keep)
    return figures


def test_occupancy_stacks_each_tensor_over_its_life():
    """Each on-chip tensor occupies its level from its producer (the input: layer 0) to
    its last reader, both included; DRAM tensors occupy nothing."""
    occ = plots.occupancy(synthetic_tensors(), 5)
    assert list(occ) == ["ubuf", "spad"]
    names, m = occ["ubuf"]
    assert names == ["input", "a", "d"]
    assert m.sum(axis=0).tolist() == [300, 200, 200, 30, 30]
    assert occ["spad"][1].sum(axis=0).tolist() == [0, 0, 120, 120, 0]


def test_memory_plot_has_a_panel_and_a_capacity_line_per_level(monkeypatch):
    """One panel per level holding a resident tensor, one band per tensor, the level's
    capacity as a dashed line at its size (in the panel's unit)."""
    figures = capture(monkeypatch)
    svg = plots.memory_occupancy(list("abcde"), synthetic_tensors(), {"ubuf": 400, "spad": 200})
    assert svg.startswith("<svg")
    for li, n in ((0, 3), (1, 1)):
        assert f'id="capacity-{li}"' in svg
        assert all(f'id="tensor-{li}-{i}"' in svg for i in range(n))
        assert f'id="tensor-{li}-{n}"' not in svg
    (fig,) = figures
    assert len(fig.axes) == 2
    for ax, lvl, cap, peak in zip(fig.axes, ("ubuf", "spad"), (400, 200), (300, 120)):
        assert ax.get_title().startswith(f"On-chip occupancy, {lvl}:")
        assert f"peak {fmt(peak, 'B')}" in ax.get_title()
        dashed = [l for l in ax.get_lines() if l.get_linestyle() == "--"]
        assert len(dashed) == 1 and dashed[0].get_ydata()[0] == cap   # bytes: factor 1
        assert ax.get_ylim()[1] >= cap                                 # on the axis
        # each band's area is its tensor's bytes x the layers it lives (one unit wide each)
        names, m = plots.occupancy(synthetic_tensors(), 5)[lvl]
        assert [area(p.get_xy()) for p in ax.patches] == m.sum(axis=1).tolist()


def area(xy) -> float:
    """Shoelace area of a closed polygon."""
    x, y = np.asarray(xy, dtype=float).T
    return abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))) / 2


def test_a_capacity_far_above_the_tensors_scales_the_axis_and_says_so(monkeypatch):
    """Peak under a quarter of the capacity: the axis is scaled to the data, the title and
    the capacity's legend entry say so."""
    figures = capture(monkeypatch)
    plots.memory_occupancy(list("abcde"), synthetic_tensors(), {"ubuf": 10**6})
    ax = figures[0].axes[0]
    assert ax.get_ylim()[1] < 1000 and "(axis scaled to the data)" in ax.get_title()
    assert any("above the axis" in t.get_text() for t in ax.get_legend().get_texts())
    # a level without a known capacity: no line, the title says so
    assert "capacity unknown" in figures[0].axes[1].get_title()


def test_memory_section_when_tensors_are_on_chip():
    """Two plots (occupancy, DRAM saved per layer), the total saved through the one
    formatter, a row per level, every tensor listed."""
    run = synthetic_run(synthetic_tensors())
    sec = memory_section(run)
    kinds = [k for k, _ in sec.items]
    assert sec.title == "Memory" and kinds.count("svg") == 2
    text = sec.items[0][1]
    assert "4 of 6 activation tensors" in text and fmt(1000, "B") in text
    levels, tensors = [p for k, p in sec.items if k == "table"]
    assert [r[0] for r in levels["rows"]] == ["ubuf", "spad"]
    assert levels["rows"][0] == ["ubuf", fmt(400, "B"), "3", fmt(330, "B"), fmt(300, "B"),
                                 "a", fmt(0.75, "fraction")]
    assert [r[0] for r in tensors["rows"]] == list(synthetic_tensors()["tensor"])
    assert tensors["rows"][0][3] == "(before the first layer)"
    html = to_html(build("t", [run]), "t")
    assert "<h2>Memory</h2>" in html and 'id="capacity-1"' in html
    assert "DRAM traffic saved" in html
    md = to_markdown(build("t", [run]), "t")
    assert "## Memory" in md and "<svg" not in md


def test_fused_tensors_are_rows_not_a_level():
    """Depth-first groups' tensors (placed fused) are not drawn as a level (no capacity, no
    whole tensor held): the section says how many and their bytes."""
    t = synthetic_tensors()
    t.loc[t["tensor"] == "c", "placed"] = "fused"
    sec = memory_section(synthetic_run(t, fusion="depth-first"))
    levels = [p for k, p in sec.items if k == "table"][0]
    assert [r[0] for r in levels["rows"]] == ["ubuf"]
    assert "3 of 6 activation tensors" in sec.items[0][1]
    assert f"1 more ({fmt(120, 'B')}) never leaves the chip" in sec.items[0][1]
    t["placed"] = ["dram", "dram", "dram", "fused", "dram", "dram"]
    sec = memory_section(synthetic_run(t, fusion="depth-first"))
    assert len(sec.items) == 1 and "no activation tensor stays on chip whole" in sec.items[0][1]


def test_memory_section_is_one_sentence_when_every_activation_is_in_dram():
    """No tensor on chip: no plot, one sentence; no tensors table at all: no section."""
    t = synthetic_tensors().assign(placed="dram")
    sec = memory_section(synthetic_run(t, fusion="none"))
    assert sec.items == [("text", "Every activation goes through DRAM (fusion none).")]
    sec = memory_section(synthetic_run(t, fusion="residency"))
    assert len(sec.items) == 1 and sec.items[0][0] == "text"
    assert sec.items[0][1].startswith("Every activation goes through DRAM (fusion residency")
    assert memory_section(synthetic_run(None)) is None
    assert memory_section(synthetic_run(t.iloc[:0])) is None
    html = to_html(build("t", [synthetic_run(t, fusion="none")]), "t")
    assert "<h2>Memory</h2>" in html
    assert 'id="capacity-' not in html and 'id="tensor-' not in html


def test_a_long_network_is_binned_at_each_bins_peak(monkeypatch):
    """More than ``most`` layers: one column per bin of consecutive layers, drawn at the
    bin's layer of peak occupancy."""
    n = 10
    t = pd.DataFrame([(f"t{i}", 10 * (i + 1), "ubuf", i, i, 1, "") for i in range(n)],
                     columns=COLUMNS)
    figures = capture(monkeypatch)
    plots.memory_occupancy([f"l{i}" for i in range(n)], t, {"ubuf": 100}, most=4)
    ax = figures[0].axes[0]
    assert [x.get_text() for x in ax.get_xticklabels()] == ["l0 +2", "l3 +2", "l6 +2", "l9"]
    assert ax.get_title().endswith(f"peak {fmt(100, 'B')}, 100 % of capacity")


# ---- from a real run --------------------------------------------------------------------
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    t = tmp_path_factory.mktemp("mem")
    for name, extra in (("res", []), ("none", ["--fusion", "none"])):
        assert main(["run", "--arch", "tpu_v1", "--model", TINY, "--out", str(t / name),
                     "--quiet", *extra]) == 0
    return t


def test_run_out_writes_tensors_csv(runs):
    """tensors.csv: the documented columns in order, the network input then one row per
    layer, listed in the manifest; its on-chip tensors add up to each layer's
    <level>_resident_bytes, and the layers' on-chip bytes to dram_saved_bytes."""
    d = runs / "res"
    assert "tensors.csv" in check_folder(d)
    T = pd.read_csv(d / "tensors.csv")
    L = pd.read_csv(d / "layers.csv")
    s = json.loads((d / "summary.json").read_text())
    assert list(T.columns) == COLUMNS
    assert list(T["tensor"]) == ["input", *L["layer"]]
    assert s["fusion"] == "residency" and (T["placed"] == "unified_buffer").sum() >= 1
    (names, m), = plots.occupancy(T, len(L)).values()
    assert m.sum(axis=0).tolist() == L["unified_buffer_resident_bytes"].tolist()
    assert s["dram_saved_bytes"] == (L["onchip_read_bytes"] + L["onchip_write_bytes"]).sum() > 0
    none = pd.read_csv(runs / "none" / "tensors.csv")
    assert list(none.columns) == COLUMNS and (none["placed"] == "dram").all()


def test_report_of_run_folders_has_the_memory_section(runs, tmp_path):
    """Residency: the occupancy plot with the unified buffer's capacity from arch.yaml
    (24 MiB, far above the tiny net's tensors: the axis scaled to the data); none: the
    sentence. `run --report` gives the same section as `report DIR`."""
    html = tmp_path / "r.html"
    assert main(["report", str(runs / "res"), "-o", str(html)]) == 0
    text = html.read_text()
    sec = text[text.index("<h2>Memory</h2>"):text.index("<h2>Layers</h2>")]
    assert sec.count("<svg") == 2 and 'id="capacity-0"' in sec
    assert "unified_buffer capacity (25.2 MB): above the axis" in sec
    s = json.loads((runs / "res" / "summary.json").read_text())
    assert f"DRAM traffic saved: {fmt(s['dram_saved_bytes'], 'B')}" in sec
    assert main(["report", str(runs / "none"), "-o", str(html)]) == 0
    text = html.read_text()
    sec = text[text.index("<h2>Memory</h2>"):text.index("<h2>Layers</h2>")]
    assert "<svg" not in sec and "Every activation goes through DRAM (fusion none)." in sec
    direct = tmp_path / "d.html"
    assert main(["run", "--arch", "tpu_v1", "--model", TINY, "--quiet",
                 "--report", str(direct)]) == 0
    assert main(["report", str(runs / "res"), "-o", str(html)]) == 0

    def memory(p):
        return re.search(r"<h2>Memory</h2>.*?</section>", p.read_text(), re.S).group(0)
    assert memory(direct) == memory(html)


@pytest.mark.parametrize("edit, needle", [
    (lambda T: T.assign(first=T["last"] + 1), "is after last"),
    (lambda T: T.assign(bytes=-T["bytes"]), "column 'bytes', row 2"),
    (lambda T: T.drop(columns=["placed"]), "no column 'placed'"),
])
def test_a_bad_tensors_csv_is_refused_with_file_and_column(runs, tmp_path, capsys, edit,
                                                           needle):
    """A tensors.csv edited by hand (and resealed): exit 2, one line naming the file."""
    import shutil

    from tilesim.reports import seal_folder
    d = tmp_path / "bad"
    shutil.copytree(runs / "res", d)
    edit(pd.read_csv(d / "tensors.csv")).to_csv(d / "tensors.csv", index=False)
    seal_folder(d, [d / n for n in ("layers.csv", "tensors.csv", "model.csv", "arch.yaml",
                                    "summary.json")])
    capsys.readouterr()
    assert main(["report", str(d), "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "tensors.csv" in err and needle in err, err
    assert "Traceback" not in err and "Fix:" in err
