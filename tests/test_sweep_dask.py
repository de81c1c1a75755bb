"""The same small sweep through local workers and a Dask LocalCluster (127.0.0.1) gives
identical stores."""
from __future__ import annotations

import pytest

import tilesim
from tilesim.explore.sweep import Store

pytest.importorskip("dask.distributed")

SPEC = {"version": 1, "name": "dask", "base": "eyeriss_like", "models": ["resnet18"],
        "tie": {"compute.arrays[0].cols": "compute.arrays[0].rows"},
        "search": {"candidates": 2000}}


@pytest.mark.slow  # starts a Dask LocalCluster
def test_dask_local_cluster_equals_local_workers(tmp_path):
    spec = {**SPEC, "vary": {"compute.arrays[0].rows": [8, 16],
                             "compute.arrays[0].dataflow": ["os", "ws"]}}
    a = tilesim.sweep(spec, out=tmp_path / "local", workers=2)
    b = tilesim.sweep(spec, out=tmp_path / "dask", workers=2, dask="local")
    assert a.equals(b) and len(a) == 4
    dumps = []
    for d in ("local", "dask"):
        s = Store(tmp_path / d / "results.sqlite")
        dumps.append(s.dump())
        s.close()
    assert dumps[0] == dumps[1]
    assert (tmp_path / "local" / "results.csv").read_bytes() == \
        (tmp_path / "dask" / "results.csv").read_bytes()
