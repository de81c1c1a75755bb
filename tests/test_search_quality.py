"""The search stays bounded (issue 14): on a reduced sample of
``benchmarks/bench_search_quality.py`` (a depthwise layer, the two-group AlexNet conv2,
ResNet-50's fc, on the two-level presets) the heuristic's edp is within 2 % of the
exhaustive best over the whole mapspace (each space is under the 10^7 cap)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_search_quality import GOAL, compare  # noqa: E402


@pytest.mark.slow
@pytest.mark.parametrize("arch_name,spec", [
    ("nvdla_small", ("mobilenet_v2", "features.1.conv.0.0", None)),
    ("nvdla_small", ("resnet50", "fc", None)),
    ("edge_tpu_like", ("alexnet", "features.3", 2)),
])
def test_heuristic_within_two_percent_of_exhaustive(arch_name, spec):
    r = compare(arch_name, spec, cap=10 ** 7)
    assert not r["capped"] and r["scored"] == r["size"]
    assert r["gap"] <= GOAL, r
