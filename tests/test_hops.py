"""PE-to-PE hops per dataflow: the array's hop energy prices what each dataflow moves
between neighbouring PEs (``Fold.hops``), not a constant two per MAC."""
from __future__ import annotations

import pytest

from tilesim.mapper import DATAFLOWS, points_of
from tilesim.mapper.dataflow import layer_dims
from tilesim.sim import CostModel
from tilesim.workloads.ir import conv
from conftest import make_arch


@pytest.mark.parametrize("df", ["os", "ws", "is", "kc", "kcr"])
def test_gemm_dataflows_move_two_operands_per_mac(df):
    """os: a right and b down; ws/is/kc/kcr: the stream right and the partial sum down."""
    layer = conv("c", 1, 6, 9, 9, 5, 3, pad=1)
    assert DATAFLOWS[df].plan(layer_dims(layer), 4, 3).hops == 2 * layer.macs


def test_dw_moves_only_its_partial_sums():
    """dw's columns are fed their own channel: only partial sums go PE to PE."""
    layer = conv("d", 1, 8, 9, 9, 8, 3, pad=1, groups=8)
    assert DATAFLOWS["dw"].plan(layer_dims(layer), 9, 4).hops == layer.macs


def test_rs_hops_by_hand():
    """One 3 x 4 set (R = 3 filter rows x P = 4 output rows), one pass, no scratchpads
    (p = q = 1): every column passes its Q = 5 partial sums up two PEs: 4 x 2 x 5 = 40.
    Filter and input rows come on buses (buffer reads), not PE to PE."""
    layer = conv("r", 1, 1, 6, 7, 1, 3)           # P = 4, Q = 5
    assert (layer.P, layer.Q) == (4, 5)
    fold = DATAFLOWS["rs"].plan(layer_dims(layer), 3, 4)
    assert fold.folds == 1 and fold.hops == 40


@pytest.mark.parametrize("df", ["ws", "dw"])
def test_array_energy_is_hops_times_hop_energy(df):
    a = make_arch(rows=9, cols=4, dataflow="ws", dataflows=["dw"])
    layer = conv("d", 1, 8, 9, 9, 8, 3, pad=1, groups=8)
    from tilesim.mapper import Mapspace
    space = Mapspace(layer, a)
    m = space.mapping(space.seed(df))
    c = CostModel(a)
    hops = int(points_of(m, a).hops[0])
    assert hops == (1 if df == "dw" else 2) * layer.macs
    assert c.mac_result(m).energy_breakdown["array_energy_pj"] == pytest.approx(
        hops * c.tab.hop.value)
