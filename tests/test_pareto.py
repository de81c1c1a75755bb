"""Pareto fronts on a hand-made table: dominated rows out, ties kept, NaN and infeasible
rows never on the front, groups separate, maximised columns."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import tilesim
from tilesim.reports import pareto_mask


def table():
    #      a: front   b: dominated by a   c: front   d: tie of c   e: front   f: dominated
    return pd.DataFrame({
        "name": ["a", "b", "c", "d", "e", "f", "g", "h"],
        "latency_ms": [1.0, 2.0, 2.0, 2.0, 4.0, 4.0, np.nan, 0.5],
        "energy_uj": [9.0, 9.0, 5.0, 5.0, 1.0, 5.0, 0.1, 0.1],
        "status": ["ok"] * 7 + ["infeasible"],
        "model": ["m"] * 8})


def test_dominated_excluded_ties_kept():
    f = tilesim.pareto(table())
    assert list(f["name"]) == ["a", "c", "d", "e"]


def test_equal_in_one_objective_is_dominated():
    """b equals a's energy but is slower: dominated; f equals c's energy, slower: dominated."""
    m = pareto_mask([[1, 9], [2, 9], [2, 5], [4, 5]])
    assert m.tolist() == [True, False, True, False]


def test_infeasible_rows_only_when_asked():
    f = tilesim.pareto(table(), feasible_only=False)
    assert list(f["name"]) == ["h"]     # h dominates everything once allowed


def test_groups_and_maximize():
    t = pd.concat([table().assign(model="m"), table().assign(model="n")], ignore_index=True)
    f = tilesim.pareto(t, by="model")
    assert list(f["name"]) == ["a", "c", "d", "e"] * 2
    u = pd.DataFrame({"tops": [1.0, 2.0, 2.0, 0.5], "energy_uj": [1.0, 1.0, 3.0, 0.5]})
    f = tilesim.pareto(u, objectives=("tops", "energy_uj"), maximize=("tops",))
    assert f.index.tolist() == [1, 3]


def test_brute_force_agreement():
    """Random tables: the mask equals a direct pairwise check."""
    rng = np.random.default_rng(3)
    for _ in range(20):
        v = rng.integers(0, 6, size=(300, 3)).astype(float)
        m = pareto_mask(v)
        for i in range(len(v)):
            dom = ((v <= v[i]).all(axis=1) & (v < v[i]).any(axis=1)).any()
            assert m[i] == (not dom)


def test_unknown_column_is_an_error():
    with pytest.raises(ValueError, match="no column 'cycles'"):
        tilesim.pareto(table(), objectives=("cycles", "energy_uj"))


def test_hypervolume_by_hand():
    """Boxes to the reference point: one point, a staircase of two (0.5 + 0.5 - 0.25),
    a cube, a maximised column, and points beyond the reference add nothing."""
    from tilesim.reports.pareto import hypervolume
    assert hypervolume([[0, 0]], [1, 1]) == 1.0
    assert hypervolume([[0.5, 0], [0, 0.5]], [1, 1]) == 0.75
    assert hypervolume([[0.5, 0.5, 0.5]], [1, 1, 1]) == 0.125
    assert hypervolume([[3.0, 0.0]], [1.0, 1.0], maximize=[True, False]) == 2.0
    assert hypervolume([[2, 0], [0.5, 0.5]], [1, 1]) == 0.25
    assert hypervolume([[0.5, 0.5], [0.5, 0.5], [0.6, 0.6]], [1, 1]) == 0.25


def test_hypervolume_matches_inclusion_exclusion():
    """Three random 3-D points: the exact union of their boxes by inclusion-exclusion."""
    import itertools

    import numpy as np

    from tilesim.reports.pareto import hypervolume
    rng = np.random.default_rng(7)
    p = rng.random((3, 3))
    ref = np.ones(3)
    total = 0.0
    for k in (1, 2, 3):
        for sub in itertools.combinations(range(3), k):
            corner = p[list(sub)].max(axis=0)
            total += (-1) ** (k + 1) * np.prod(ref - corner)
    assert hypervolume(p, ref) == pytest.approx(total, rel=1e-12)
