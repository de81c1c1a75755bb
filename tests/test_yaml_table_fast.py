"""The YAML layer table's fast path reads exactly what the YAML loader reads, or declines
(the loader then reads the file with its checks and messages)."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tilesim._input import read_yaml
from tilesim.workloads import WorkloadError, load
from tilesim.workloads.yaml_table import _plain_table

ROOT = Path(__file__).parents[1]
HEAD = "# a table\nname: net\nlayers:\n"


def _loader(text: str):
    """What the safe reader gives: (data, the lines read_yaml_table uses)."""
    data, lines = read_yaml(text, "t.yaml", WorkloadError, aliases=False)
    n = len(data.get("layers") or []) if isinstance(data, dict) else 0
    keys = [("layers",), ("name",), ("description",)] + [("layers", i) for i in range(n)]
    return data, {k: lines[k] for k in keys if k in lines}


def _fast(text: str):
    got = _plain_table(text)
    if got is None:
        return None
    data, lines = got
    return data, {k: v for k, v in lines.items()}


def both(text: str):
    return _fast(text), _loader(text)


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.yaml")))
def test_the_examples_read_the_same(path):
    text = path.read_text()
    fast, slow = both(text)
    if fast is not None:
        assert fast == slow


@pytest.mark.parametrize("row", [
    "{name: c1, type: conv, C: 010, H: 8, W: 8, K: 8, R: 3}",     # YAML 1.1 octal: 8
    "{name: c1, type: conv, C: 1_0, H: 8, W: 8, K: 8, R: 3}",     # 10
    "{name: c1, type: conv, C: 1:00, H: 8, W: 8, K: 8, R: 3}",    # sexagesimal: 60
    "{name: c1, type: fc, C: 8, K: 8, bias: yes}",                # a boolean
    "{name: c1, type: fc, C: 8, K: 8, bias: Off}",
    "{name: null, type: fc, C: 8, K: 8}",
    "{name: c1, type: conv, stride: 1.9, C: 8, H: 8, W: 8, K: 8, R: 3}",
    "{name: c1, type: fc, C: .inf, K: 8}",
    "{name: &a c1, type: fc, C: 8, K: 8}",
    "{name: 'c1', type: fc, C: 8, K: 8}",
    "{name: c1, type: fc, C: 8, K: 8, C: 9}",                     # a repeated key
    "{name: c1, type: fc, C: 8, K: 8}  # a comment",
    "{name: c1, type: fc, C: +8, K: 8}",
    "{name: c1, type: fc, C: 8, K: 8, }",
    "{name: c1, type: fc, C: {a: 1}, K: 8}",
    "{<<: {a: 1}, name: c1}",
])
def test_the_fast_path_declines_what_it_might_misread(row):
    """Octal, underscores, sexagesimal, booleans, null, floats, anchors, quotes, repeated
    keys, comments, signs, trailing commas, nesting, merge keys: the loader reads them."""
    assert _plain_table(HEAD + "  - " + row + "\n") is None


def test_a_plain_table_reads_the_same_and_keeps_lines(tmp_path):
    text = HEAD + ("  - {name: c1, type: conv, C: 3, H: 8, W: 8, K: 4, R: 3, padding: 1, "
                   "activation: relu}\n\n  - {name: mm, type: gemm, M: 4, N: 0, K: -2}\n")
    fast, slow = both(text)
    assert fast == slow and fast[1][("layers", 1)] == 6 and fast[1][("name",)] == 2
    p = tmp_path / "t.yaml"
    p.write_text(text.replace("N: 0, K: -2", "N: 2, K: 2"))
    assert [l.name for l in load(str(p)).layers] == ["c1", "mm"]


TOKENS = ["0", "7", "010", "16", "-3", "1_0", "1.5", "yes", "No", "on", "null", "~", "relu",
          "c1", "a-b", "a.b", "N", "y", ".inf", "'q'", "&x", "*x", "!!int", "a:b", "1:00",
          "0x1f", "2e3", "=", "<<", "\t4", ""]
KEYS = ["name", "type", "C", "N", "on", "<<", "K", "bias", "a b"]


@given(st.lists(st.lists(st.tuples(st.sampled_from(KEYS), st.sampled_from(TOKENS)),
                         min_size=1, max_size=5), min_size=1, max_size=4),
       st.sampled_from(["  ", "", "    "]), st.sampled_from([", ", ",", " , "]))
def test_the_fast_path_agrees_with_the_loader_or_declines(rows, indent, sep):
    """Any table of tricky keys and values: the fast path's result equals the YAML
    loader's, or it declines; it never reads a table the loader refuses."""
    text = HEAD + "".join(indent + "- {" + sep.join(f"{k}: {v}" for k, v in r) + "}\n"
                          for r in rows)
    fast = _fast(text)
    if fast is None:
        return
    assert fast == _loader(text)
