"""Reports under hostile input: layer names matplotlib would read as math text are drawn
as written; a hand-edited run folder (a missing column, NaN, text in a number column, a
negative count, a changed byte) is refused naming the file and the column; a huge network
is binned and cut, saying so."""
from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from clean_outputs import assert_clean_outputs, one_error

from tilesim.cli import main
from tilesim.reports import seal_folder
from tilesim.reports.report import binned, slowest

MATH_NAMES = ["$\\foo$", "$x^", "a_b$", "$\\sqrt{", "50$ and 60$", "\\frac{1}{2}"]


def math_net(tmp_path) -> Path:
    rows = [f"  - {{name: {json.dumps(n)}, type: conv, C: 8, H: 8, W: 8, K: 8, R: 3, "
            "padding: 1}" for n in MATH_NAMES]
    p = tmp_path / "math.yaml"
    p.write_text("name: \"$net^\"\nlayers:\n" + "\n".join(rows) + "\n")
    return p


def test_math_text_layer_names_are_drawn_as_written(tmp_path):
    """Layer and model names with $, ^, _ and backslashes: `run --report` (DES timeline
    too), `report` of the folder and of two folders overlaid all exit 0, and each name
    is in the HTML as written (escaped), in the plots' text as well."""
    net = math_net(tmp_path)
    for fid in ("analytic", "des"):
        assert main(["run", "--arch", "eyeriss_like", "--model", str(net), "--quiet",
                     "--fidelity", fid, "--out", str(tmp_path / fid),
                     "--report", str(tmp_path / f"{fid}.html")]) == 0
    assert main(["report", str(tmp_path / "analytic"), str(tmp_path / "des"),
                 "-o", str(tmp_path / "both.html")]) == 0
    for f in ("analytic.html", "des.html", "both.html"):
        text = (tmp_path / f).read_text()
        for n in MATH_NAMES:
            assert html.escape(n, quote=False) in text, (f, n)
        svg_text = " ".join(__import__("re").findall(r"<text[^>]*>([^<]*)</text>", text))
        assert html.escape("$\\foo$", quote=False) in svg_text   # drawn literally in a plot
    assert_clean_outputs(tmp_path)


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    d = tmp_path_factory.mktemp("good") / "run"
    tiny = str(Path(__file__).parents[1] / "examples" / "tiny_net.yaml")
    assert main(["run", "--arch", "eyeriss_like", "--model", tiny, "--quiet",
                 "--out", str(d)]) == 0
    return d


def _edit_csv(d: Path, fn) -> None:
    df = pd.read_csv(d / "layers.csv")
    fn(df)
    df.to_csv(d / "layers.csv", index=False)


@pytest.mark.parametrize("edit, needles", [
    (lambda df: df.pop("total_cycles"), ["'total_cycles'"]),
    (lambda df: df.pop("layer"), ["'layer'"]),
    (lambda df: df.__setitem__("latency_ms", df["latency_ms"].where(df.index != 2)),
     ["'latency_ms'", "row 4", "NaN"]),
    (lambda df: df.__setitem__("macs", df["macs"].astype(object).where(df.index != 1, "lots")),
     ["'macs'", "row 3", "'lots'", "not a number"]),
    (lambda df: df.__setitem__("energy_pj", df["energy_pj"].where(df.index != 0, -5.0)),
     ["'energy_pj'", "row 2", "negative"]),
    (lambda df: df.__setitem__("dram_read_bytes",
                               df["dram_read_bytes"].astype(float).where(df.index != 3,
                                                                         float("inf"))),
     ["'dram_read_bytes'", "row 5", "not finite"]),
])
def test_a_hand_edited_table_is_refused_with_file_and_column(good, tmp_path, capsys, edit,
                                                             needles):
    """Each edit (re-sealed, so that only the content is wrong): exit 2, one line naming
    layers.csv, the column, the row (CSV line) and the fix; no report written."""
    d = tmp_path / "edited"
    shutil.copytree(good, d)
    _edit_csv(d, edit)
    seal_folder(d, [d / n for n in ("layers.csv", "model.csv", "arch.yaml", "summary.json")])
    one_error(["report", str(d), "-o", str(tmp_path / "r.html")], capsys,
              d / "layers.csv", "Fix:", *needles)
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("key, value", [("latency_ms", "fast"), ("energy_uj", -1.0),
                                        ("dram_read_bytes", None), ("batch", True)])
def test_a_bad_summary_number_is_refused(good, tmp_path, capsys, key, value):
    d = tmp_path / "s"
    shutil.copytree(good, d)
    s = json.loads((d / "summary.json").read_text())
    s[key] = value
    (d / "summary.json").write_text(json.dumps(s))
    seal_folder(d, [d / n for n in ("layers.csv", "model.csv", "arch.yaml", "summary.json")])
    one_error(["report", str(d), "-o", str(tmp_path / "r.md")], capsys,
              d / "summary.json", repr(key))


def test_a_changed_byte_or_a_missing_file_is_refused(good, tmp_path, capsys):
    """Edits that leave the tables valid are still caught by the manifest: a changed
    arch.yaml, a summary with one more space, a listed file deleted; a garbled manifest."""
    cases = {"arch.yaml": lambda p: p.write_text(p.read_text() + "# edited\n"),
             "summary.json": lambda p: p.write_text(p.read_text() + " "),
             "model.csv": lambda p: p.unlink(),
             "manifest.json": lambda p: p.write_text('{"files": 3}')}
    for name, edit in cases.items():
        d = tmp_path / name.replace(".", "_")
        shutil.copytree(good, d)
        edit(d / name)
        line = one_error(["report", str(d), "-o", str(tmp_path / "r.md")], capsys,
                         d / name, "Fix:")
        assert ("missing" in line) == (name == "model.csv")


def test_binned_keeps_totals_and_the_cycle_convention():
    """Five layers in bins of at most 2 rows (3 + 2 layers): times, bytes and energy
    summed; cycles in the last-index convention (sum of (t + 1), minus 1); utilisation
    weighted by each layer's cycles; names say how many layers a bin holds."""
    L = pd.DataFrame({"layer": list("abcde"), "kind": ["conv"] * 5,
                      "total_cycles": [9, 19, 29, 39, 49], "compute_cycles": [4, 9, 14, 19, 24],
                      "stall_cycles": [5, 10, 15, 20, 25], "latency_ms": [1.0, 2, 3, 4, 5],
                      "utilization": [1.0, 0.5, 0.0, 0.25, 0.75],
                      "energy_pj": [1.0, 2, 3, 4, 5], "macs": [10, 20, 30, 40, 50]})
    b = binned(L, most=2)
    assert list(b["layer"]) == ["a +2", "d +1"]
    assert list(b["total_cycles"]) == [10 + 20 + 30 - 1, 40 + 50 - 1]
    assert list(b["compute_cycles"]) == [5 + 10 + 15 - 1, 20 + 25 - 1]
    assert list(b["stall_cycles"]) == [30, 45]      # total - compute, as for one layer
    assert list(b["latency_ms"]) == [6, 9] and list(b["macs"]) == [60, 90]
    assert b["utilization"].tolist() == pytest.approx([(10 + 10) / 60, (10 + 37.5) / 90])
    assert binned(L, most=5) is L
    assert list(slowest(L, 2)["layer"]) == ["d", "e"]


@pytest.mark.slow
def test_a_huge_network_report_is_binned_and_says_so(tmp_path):
    """A 1,000-layer chain: the report says it bins the plots and cuts the tables, lists
    200 layer rows, and every number it prints is clean."""
    rows = ["Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
            "Num Filter, Strides,"] + [f"c{i}, 8, 8, 3, 3, 4, 4, 1," for i in range(1000)]
    (tmp_path / "chain.csv").write_text("\n".join(rows) + "\n")
    assert main(["run", "--arch", "eyeriss_like", "--model", str(tmp_path / "chain.csv"),
                 "--quiet", "--out", str(tmp_path / "run")]) == 0
    assert main(["report", str(tmp_path / "run"), "-o", str(tmp_path / "r.md")]) == 0
    md = (tmp_path / "r.md").read_text()
    assert "This network has 1,000 layers" in md and "200 bins of 5 consecutive" in md
    assert "The 200 slowest of 1,000 layers" in md
    layers_table = md.split("## Layers")[1]
    assert sum(1 for l in layers_table.splitlines() if l.startswith("| c")) == 200
    assert_clean_outputs(tmp_path)
