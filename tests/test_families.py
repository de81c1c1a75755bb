"""Network families with published accuracy: every variant cites its source, and its
Model (built by our zoo) has the published parameter and MAC counts."""
from __future__ import annotations

import pytest
import yaml

from tilesim.workloads import families as F
from tilesim.workloads.errors import WorkloadError

VARIANTS = [v for f in F.families().values() for v in f.variants]


def test_every_accuracy_has_a_citation():
    """Each variant in the data file names a listed source and its row; none is missing."""
    raw = yaml.safe_load(F.DATA.read_text())
    assert set(raw["families"]) >= {"mobilenet_v2", "resnet", "efficientnet", "mobilenet_v3"}
    for name, fam in raw["families"].items():
        for i, v in enumerate(fam["variants"]):
            where = f"families.{name}.variants[{i}]"
            assert isinstance(v.get("top1"), (int, float)), where
            assert v.get("source") in raw["sources"], where
            assert str(v.get("row", "")).strip(), where
            assert raw["sources"][v["source"]]["title"].strip(), where
    for v in VARIANTS:
        assert v.row in v.top1_source and v.precision == "fp32"


@pytest.mark.parametrize("v", VARIANTS, ids=lambda v: v.label)
def test_params_and_macs_match_published(v):
    """Built by our own code, each variant reproduces the published parameter and MAC
    counts within the source's rounding (1001 classes for TF-slim MobileNetV2)."""
    m = v.build(1)
    assert v.params.allows(v.counted_params(m)), (v.counted_params(m), v.params.text)
    assert v.macs.allows(m.macs), (m.macs, v.macs.text)


def test_published_rounding():
    """'6.06 M' allows [6.055, 6.065] M to the nearest; '582 M' cut allows [582, 583) M."""
    p = F.Published.parse("6.06 M", "nearest")
    assert p.allows(6_055_000) and p.allows(6_065_000) and not p.allows(6_066_000)
    f = F.Published.parse("582 M", "floor")
    assert f.allows(582_000_000) and f.allows(582_999_999) and not f.allows(581_999_999)
    assert F.Published.parse(11689512, "nearest").step == 1


def test_the_tfslim_table_is_1001_classes_and_torchvision_1000():
    assert F.variant("mobilenet_v2", width=1.0, resolution=224).build().layers[-1].K == 1001
    assert F.variant("resnet", depth=50).build().layers[-1].K == 1000


def test_a_knob_value_without_published_accuracy_is_an_error():
    with pytest.raises(WorkloadError, match="no published accuracy.*224"):
        F.variant("mobilenet_v2", width=1.3, resolution=160)
    with pytest.raises(WorkloadError, match="published width values"):
        F.variant("mobilenet_v2", width=0.6, resolution=224)
    with pytest.raises(WorkloadError, match="unknown network family"):
        F.family("vgg")
    assert F.variant("resnet", depth=18).top1 == 69.758
