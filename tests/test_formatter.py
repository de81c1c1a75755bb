"""The one number formatter (reports/units.py) and terminal tables that fit $COLUMNS."""
from __future__ import annotations

import math
import re

import pandas as pd
import pytest

from tilesim.cli import main
from tilesim.reports.units import cell, fmt, unit_of

NAN = float("nan")


@pytest.mark.parametrize("value,unit,text", [
    # energy: the prefix keeps the mantissa in [1, 1000) after rounding to 3 digits
    (2.7e12, "pJ", "2.70 J"), (999.4e6, "pJ", "999 µJ"), (999.9e6, "pJ", "1.00 mJ"),
    (1e9, "pJ", "1.00 mJ"), (450.69e6, "pJ", "451 µJ"), (693.0, "pJ", "693 pJ"),
    (0.5, "pJ", "0.500 pJ"), (0, "pJ", "0 pJ"), (-5e6, "pJ", "-5.00 µJ"),
    (22840.22, "uJ", "22.8 mJ"),
    # bytes: SI prefixes, 1 MB = 1e6 B
    (48_333_000, "B", "48.3 MB"), (999, "B", "999 B"), (1000, "B", "1.00 kB"),
    (2**20, "B", "1.05 MB"),
    # counts: plain below a million, then M/G
    (999_999, "cycles", "999,999"), (1_385_149, "cycles", "1.39 M"), (0, "MACs", "0"),
    (4.0892e9, "MACs", "4.09 G"), (12.5, "count", "12.5"),
    # time, given in s or (latency_ms) in ms
    (0.0304, "ms", "30.4 µs"), (1.9788, "ms", "1.98 ms"), (2500, "ms", "2.50 s"),
    (3e-9, "s", "3.00 ns"),
    # utilisation: a 0-1 fraction as %, never "0.00" for a small one
    (0.0431, "fraction", "4.31 %"), (0.000725, "fraction", "0.0725 %"), (0, "fraction", "0 %"),
    (1.0, "fraction", "100 %"), (0.9996, "fraction", "100 %"),
    # rates and the rest
    (0.358, "TOPS/W", "0.358 TOPS/W"), (11.543, "W", "11.5 W"), (55.98, "mm2", "56.0 mm²"),
    (700e6, "Hz", "700 MHz"), (92e12, "ops/s", "92.0 TOPS"), (34e9, "B/s", "34.0 GB/s"),
    (9.996, "x", "10.0x"), (505.36, "samples/s", "505 samples/s"),
])
def test_fmt_hand_cases(value, unit, text):
    """Each unit scales to the prefix a person reads, with three significant digits."""
    assert fmt(value, unit) == text


@pytest.mark.parametrize("missing", [None, NAN, math.inf, -math.inf, "n/a"])
@pytest.mark.parametrize("unit", ["pJ", "B", "cycles", "fraction", "ms", "TOPS/W"])
def test_missing_reads_dash(missing, unit):
    """A missing or non-finite value reads "-", never nan or inf."""
    assert fmt(missing, unit) == "-"


def test_exact_counts_and_unknown_unit():
    assert fmt(1_385_149, "cycles", exact=True) == "1,385,149"
    with pytest.raises(ValueError, match="unknown unit"):
        fmt(1, "furlongs")


def test_units_of_result_columns():
    """Result-table columns get their unit from their name (docs/outputs.md)."""
    assert [unit_of(c) for c in ("energy_pj", "dram_read_bytes", "total_cycles", "latency_ms",
                                 "utilization", "macs", "energy_uj", "busy_array0", "layer")] \
        == ["pJ", "B", "cycles", "ms", "fraction", "MACs", "uJ", "fraction", None]
    assert cell(4.507e8, "energy_pj") == "451 µJ" and cell("conv1", "layer") == "conv1"
    assert cell(NAN, "layer") == "-"


def _run(capsys, monkeypatch, columns, *args):
    monkeypatch.setenv("COLUMNS", str(columns))
    rc = main(list(args))
    return rc, capsys.readouterr()


def _longest(text: str) -> int:
    return max(len(line) for line in text.splitlines())


def test_run_fits_80_columns(capsys, monkeypatch):
    """`COLUMNS=80 tilesim run --arch tpu_v1 --model resnet50`: no line over 80 characters,
    long layer names cut with an ellipsis, the totals wrapped."""
    rc, got = _run(capsys, monkeypatch, 80, "run", "--arch", "tpu_v1", "--model", "resnet50")
    assert rc == 0 and _longest(got.out) <= 80
    assert re.search(r"layer1\.\S*…\S*ample\.0", got.out) and "energy source tables:" in got.out
    assert "nan" not in got.out and re.search(r" \d\.\d\d %", got.out)  # util, 3 digits
    rc, wide = _run(capsys, monkeypatch, 200, "run", "--arch", "tpu_v1", "--model", "resnet50")
    assert "layer1.0.downsample.0" in wide.out and _longest(wide.out) <= 200


def test_verify_and_map_fit_80_columns(capsys, monkeypatch):
    rc, got = _run(capsys, monkeypatch, 80, "verify", "--arch", "tpu_v1", "--model",
                   "resnet50", "--layers", "2")
    assert rc == 0 and _longest(got.out) <= 80 and "verify: 2/2 layers pass" in got.out
    rc, got = _run(capsys, monkeypatch, 80, "map", "--arch", "tpu_v1", "--model", "resnet18",
                   "--layer", "layer2.0.conv1", "--top", "3")
    assert rc == 0 and _longest(got.out) <= 80 and "runner-ups" in got.out


def _parse(text: str) -> pd.DataFrame:
    """A fixed-width table back into cells, by the spans of its dashed rule."""
    lines = text.splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith("---"))
    spans, pos = [], 0
    for dashes in lines[i].split("  "):
        spans.append((pos, pos + len(dashes)))
        pos += len(dashes) + 2
    head = [lines[i - 1][a:b].strip() for a, b in spans]
    rows = []
    for line in lines[i + 1:]:
        if line.startswith("---"):
            break
        rows.append([line[a:b].strip() for a, b in spans])
    return pd.DataFrame(rows, columns=head)


def test_wide_table_is_layers_csv_formatted(tmp_path, capsys, monkeypatch):
    """Every cell of `run --wide` is the one formatter applied to the layers.csv value,
    so the terminal cannot drift from the CSV."""
    from tilesim.reports.terminal import HEADERS, WIDE_COLUMNS
    out = tmp_path / "o"
    rc, got = _run(capsys, monkeypatch, 80, "run", "--arch", "tpu_v1", "--model", "resnet50",
                   "--wide", "--out", str(out))
    assert rc == 0
    table = _parse(got.out)
    csv = pd.read_csv(out / "layers.csv")
    assert list(table.columns) == [HEADERS[c] for c in WIDE_COLUMNS] and len(table) == len(csv)
    for c in WIDE_COLUMNS:
        assert list(table[HEADERS[c]]) == [cell(v, c) for v in csv[c]], c
    assert _longest(got.out.split("\nTOTAL")[0]) > 80   # --wide is not fitted


def test_quiet_prints_one_line(capsys, monkeypatch):
    rc, got = _run(capsys, monkeypatch, 80, "run", "--arch", "tpu_v1", "--model", "alexnet",
                   "--quiet")
    assert rc == 0 and len(got.out.splitlines()) == 1 and got.out.startswith("total: ")
    assert " MACs" in got.out and "energy " in got.out and "%" in got.out


def test_columns_chosen_and_unknown(capsys, monkeypatch):
    """--columns picks layers.csv columns; an unknown name is exit 2 naming the valid ones."""
    rc, got = _run(capsys, monkeypatch, 80, "run", "--arch", "tpu_v1", "--model", "alexnet",
                   "--columns", "layer,total_cycles,unified_buffer_read_bytes")
    assert rc == 0
    table = _parse(got.out)
    assert list(table.columns) == ["layer", "cycles", "unified_buffer_read_bytes"]
    rc, got = _run(capsys, monkeypatch, 80, "run", "--arch", "tpu_v1", "--model", "alexnet",
                   "--columns", "layer,nope")
    assert rc == 2 and "'nope'" in got.err and "energy_pj" in got.err
    assert len(got.err.strip().splitlines()) == 1


def test_narrow_terminal_leaves_trailing_columns_out(capsys, monkeypatch):
    """When even truncated names do not fit, trailing columns are left out and one line
    says which."""
    rc, got = _run(capsys, monkeypatch, 50, "run", "--arch", "tpu_v1", "--model", "alexnet")
    assert rc == 0 and _longest(got.out) <= 50
    assert "left out to fit 50 characters: " in got.out.replace("\n", " ").replace("   ", " ")


def test_markdown_uses_the_formatter(capsys, monkeypatch):
    rc, got = _run(capsys, monkeypatch, 80, "run", "--arch", "tpu_v1", "--model", "alexnet",
                   "--format", "markdown")
    assert rc == 0 and "| layer | kind | MACs |" in got.out and " µJ |" in got.out


def test_markdown_report_sections_have_tables(tmp_path, capsys):
    """The Markdown report's Utilisation and Roofline sections hold tables (not only plots,
    which Markdown leaves out), numbers through the one formatter."""
    md = tmp_path / "r.md"
    assert main(["run", "--arch", "tpu_v1", "--model", "resnet18", "--quiet",
                 "--report", str(md)]) == 0
    text = md.read_text(encoding="utf-8")
    sections = {s.split("\n", 1)[0]: s for s in text.split("\n## ")[1:]}
    util, roof = sections["Utilisation per layer"], sections["Roofline"]
    assert "| MAC-weighted mean |" in util and " % |" in util
    assert "| peak compute |" in roof and "TOPS |" in roof and "GB/s |" in roof
    assert "| layer | intensity | attainable | achieved | of attainable |" in roof
    assert "| conv1 |" in roof and "ops/B |" in roof
    assert "e+" not in text and "nan" not in text   # no 4.507e+08 pJ


def test_ascii_stdout_does_not_fail(tmp_path):
    """A stdout that cannot encode µ (PYTHONIOENCODING=ascii) gets "?" instead of an error."""
    import os
    import subprocess
    import sys
    env = {**os.environ, "PYTHONIOENCODING": "ascii", "COLUMNS": "80"}
    proc = subprocess.run([sys.executable, "-m", "tilesim.cli", "run", "--arch", "tpu_v1",
                           "--model", "alexnet"], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120, encoding="ascii", errors="strict")
    assert proc.returncode == 0, proc.stderr
    assert "?s" in proc.stdout and "TOTAL" in proc.stdout
