"""Helpers of the hostile-input tests: one clean error line, and outputs free of NaN,
Infinity and negative counts."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd

from tilesim.cli import main
from tilesim.reports.units import unit_of

#: units of columns and keys that count things (never negative)
COUNT_UNITS = ("cycles", "MACs", "ops", "events", "count", "tiles", "B", "pJ", "uJ", "ms",
               "s", "fraction", "mm2", "W", "Hz", "samples/s", "TOPS/W")


def one_error(argv, capsys, *needles) -> str:
    """Run ``tilesim argv`` in-process; assert exit 2 with one ``tilesim: error:`` line on
    stderr (argparse: its usage first), no traceback, every needle in it; return the line."""
    try:
        code = main(argv)
    except SystemExit as e:   # argparse
        code = e.code
    err = capsys.readouterr().err
    lines = [l for l in err.splitlines() if l.startswith("tilesim: error:")
             or l.startswith("tilesim") and "error:" in l]
    assert code == 2, (code, err)
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    for n in needles:
        assert str(n) in lines[0], (n, lines[0])
    return lines[0]


_BAD_WORD = re.compile(r"(?<![A-Za-z])(nan|-?inf|-?infinity)(?![A-Za-z])", re.I)


def _check_number(v, where: str, counts: bool) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return
    assert math.isfinite(v), f"{where}: {v!r} is not finite"
    if counts:
        assert v >= 0, f"{where}: {v!r} is negative"


def _walk_json(obj, where: str) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            _walk_json(v, f"{where}.{k}") if isinstance(v, (dict, list)) else _check_number(
                v, f"{where}.{k}", unit_of(str(k)) in COUNT_UNITS)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _walk_json(v, f"{where}[{i}]") if isinstance(v, (dict, list)) else _check_number(
                v, f"{where}[{i}]", False)


def assert_clean_outputs(folder) -> int:
    """Every CSV, JSON, Markdown and HTML file under ``folder``: no NaN or Infinity (JSON
    strict), no negative count, cycle, byte or energy; returns how many files were read."""
    n = 0
    for p in sorted(Path(folder).rglob("*")):
        if p.suffix == ".json":
            text = p.read_text(encoding="utf-8")

            def refuse(c, p=p):
                raise AssertionError(f"{p}: {c} is not JSON")
            _walk_json(json.loads(text, parse_constant=refuse), str(p))
        elif p.suffix == ".csv":
            df = pd.read_csv(p, keep_default_na=False, dtype=str)
            for c in df.columns:
                for i, cellv in enumerate(df[c]):
                    assert not _BAD_WORD.fullmatch(cellv.strip()), f"{p}: {c} row {i}: {cellv}"
                if unit_of(str(c)) in COUNT_UNITS:
                    num = pd.to_numeric(df[c], errors="coerce")
                    assert not (num < 0).any(), f"{p}: column {c} has a negative value"
        elif p.suffix in (".md", ".html"):
            text = p.read_text(encoding="utf-8")
            text = re.sub(r"<svg.*?</svg>", "", text, flags=re.S)   # path data, ids
            text = re.sub(r"<[^>]*>", " ", text)
            bad = _BAD_WORD.search(text)
            assert bad is None, (p, text[max(0, bad.start() - 60):bad.end() + 20])
        else:
            continue
        n += 1
    return n
