"""Pareto fronts of result tables (pure pandas/numpy; no tilesim imports)."""
from __future__ import annotations

import numpy as np


def pareto_mask(values, maximize=None) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``values`` (n x k), all minimised
    unless ``maximize[j]``. Row a dominates row b when a is no worse in every column and
    better in at least one; rows tied on every column do not dominate each other, so ties
    are all kept. Rows with NaN are never on the front and dominate nothing."""
    v = np.asarray(values, dtype=float)
    if v.ndim != 2:
        raise ValueError("values must be a 2-D table (rows x objectives)")
    if maximize is not None:
        v = np.where(np.asarray(maximize, dtype=bool)[None, :], -v, v)
    ok = ~np.isnan(v).any(axis=1)
    w = v[ok]
    keep = np.ones(len(w), dtype=bool)
    for s in range(0, len(w), 256):
        c = w[s:s + 256, None, :]                     # candidates x 1 x k
        le = (w[None, :, :] <= c).all(axis=2)         # others no worse than the candidate
        lt = (w[None, :, :] < c).any(axis=2)          # ... and better somewhere
        keep[s:s + 256] = ~(le & lt).any(axis=1)
    out = np.zeros(len(v), dtype=bool)
    out[np.flatnonzero(ok)] = keep
    return out


def pareto(df, objectives=("latency_ms", "energy_uj"), maximize=(), by=None,
           feasible_only: bool = True):
    """The rows of ``df`` on the Pareto front of ``objectives`` (minimised; columns named in
    ``maximize`` are maximised), per group of ``by`` (a column or list, e.g. "model").
    With ``feasible_only`` rows whose ``status`` is not "ok" are left out first. Keeps the
    input order."""
    objectives = list(objectives)
    missing = [c for c in objectives + list(maximize) if c not in df.columns]
    if missing:
        raise ValueError(f"no column {missing[0]!r} in the table; columns: "
                         + ", ".join(map(str, df.columns)))
    if feasible_only and "status" in df.columns:
        df = df[df["status"] == "ok"]
    flags = [c in maximize for c in objectives]
    if by is None:
        return df[pareto_mask(df[objectives].to_numpy(dtype=float), flags)]
    mask = np.zeros(len(df), dtype=bool)
    pos = np.arange(len(df))
    for _, idx in df.groupby(by, sort=False).indices.items():
        idx = pos[idx]
        mask[idx] = pareto_mask(df.iloc[idx][objectives].to_numpy(dtype=float), flags)
    return df[mask]


def hypervolume(values, ref, maximize=None) -> float:
    """The exact hypervolume dominated by the rows of ``values`` (n x k) and bounded by the
    reference point ``ref`` (k), all columns minimised unless ``maximize[j]`` (then a row
    counts where it is above ``ref[j]``). Rows not better than ``ref`` in every column add
    nothing; rows with NaN are ignored. Dimension sweep over the last column, recursing
    on the others (exact; fine for fronts of a few hundred points in up to 5 objectives)."""
    v = np.asarray(values, dtype=float).reshape(-1, len(ref))
    r = np.asarray(ref, dtype=float)
    if maximize is not None:
        flip = np.asarray(maximize, dtype=bool)
        v = np.where(flip[None, :], -v, v)
        r = np.where(flip, -r, r)
    v = v[~np.isnan(v).any(axis=1)]
    v = v[(v < r[None, :]).all(axis=1)]
    return _hv(v, r)


def _hv(v: np.ndarray, r: np.ndarray) -> float:
    if len(v) == 0:
        return 0.0
    if v.shape[1] == 1:
        return float(r[0] - v[:, 0].min())
    v = v[pareto_mask(v)]
    if v.shape[1] == 2:
        # a staircase: sorted by x, each point's strip runs to the next point's x
        o = v[np.lexsort((v[:, 1], v[:, 0]))]
        xs = np.append(o[1:, 0], r[0])
        ys = np.minimum.accumulate(o[:, 1])
        return float(((xs - o[:, 0]) * (r[1] - ys)).sum())
    o = v[np.argsort(v[:, -1], kind="stable")]
    total = 0.0
    for i in range(len(o)):
        top = o[i + 1, -1] if i + 1 < len(o) else r[-1]
        h = top - o[i, -1]
        if h > 0:
            total += h * _hv(o[:i + 1, :-1], r[:-1])
    return total
