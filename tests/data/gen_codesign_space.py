"""Regenerate tests/data/codesign_space.csv: every point of the joint space of
tests/data/codesign_space.yaml evaluated by `tilesim.codesign` (exhaustive search), one
row per point with its choice indices (x0..x2 the architecture knobs in spec order, x3
the network) and the four objectives. tests/test_codesign_search.py replays the
optimiser on this table, so the search-quality test runs in seconds and needs no
simulation. The numbers are the cost model's at the tilesim version in the file's first
line; a model change need not regenerate it (the test checks the optimiser, not the
model).

    python tests/data/gen_codesign_space.py [--workers N]
"""
from __future__ import annotations

import argparse
import itertools
from pathlib import Path

HERE = Path(__file__).parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()
    import tilesim
    from tilesim.explore.codesign.spec import build
    spec = HERE / "codesign_space.yaml"
    space = build(spec)
    df, _ = tilesim.codesign(spec, workers=args.workers, progress=True)
    points = list(itertools.product(*(range(n) for n in space.choices())))
    assert len(df) == len(points) == space.size
    lines = [f"# tilesim {tilesim.__version__}: tests/data/gen_codesign_space.py over "
             "tests/data/codesign_space.yaml",
             "x0,x1,x2,x3,network,top1,latency_ms,energy_uj,area_sq_mm"]
    for p, (_, r) in zip(points, df.iterrows()):   # exhaustive: rows in point order
        assert r["network"] == space.nets[p[-1]].label
        lines.append(",".join(map(str, p)) + f",\"{r['network']}\",{r['top1']!r},"
                     f"{r['latency_ms']!r},{r['energy_uj']!r},{r['area_sq_mm']!r}")
    (HERE / "codesign_space.csv").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
