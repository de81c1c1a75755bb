"""``tilesim map``'s loop nest: every on-chip level (and ``scope: pe`` level) shows its
tile, its occupancy (bytes of its size) and its accesses (read and write bytes per
operand, the cost model's access counts)."""
from __future__ import annotations

from conftest import make_arch, seed_mapping
from tilesim.mapper.describe import loop_nest
from tilesim.mapper.space import points_of
from tilesim.sim import CostModel
from tilesim.workloads.ir import gemm


def _access(m, a):
    return {k: (int(r[0]), int(w[0])) for k, (r, w) in
            CostModel(a).access(m.layer, points_of(m, a)).items()}


def test_nest_shows_occupancy_and_accesses_hand_derived():
    """GEMM M=10, N=5, K=8, int8 in/out, int32 accumulators, on ws 4 x 3 with one
    double-buffered buffer: the seed tiles M into 10 blocks of 1 (input 8 B, weight
    40 B, output 5 x 4 = 20 B): 2 x 68 = 136 B. DRAM reads input 80 B and weight 40 B
    once and receives the 50 output bytes. The buffer is written by those fills (80 B,
    40 B); the array reads the weights once (40 B) and the streamed inputs once per
    column fold (2 x 80 = 160 B); K = 8 over 4 rows: 2 row folds, so 2 x 50 partial sums
    written at 4 B (400 B), 50 read back (200 B) plus the 50 final bytes drained: 250 B."""
    a = make_arch(rows=4, cols=3)
    m = seed_mapping(gemm("g", 10, 5, 8), a)
    nest = "\n".join(loop_nest(m, a, _access(m, a)))
    assert "load tile: input 8 B, weight 40 B; output 20 B" in nest
    assert ("buf [input, weight, output]: 136 B of 67,108,864 B, double-buffered; tile 1 img "
            "x 1 rows x 1 cols x 5 out ch x 8 in ch; reads "
            "input 160 B, weight 40 B, output 250 B; writes input 80 B, weight 40 B, "
            "output 400 B") in nest
    assert ("dram: reads input 80 B, weight 40 B, output 0 B; writes input 0 B, weight 0 B, "
            "output 50 B") in nest
    # without counts the nest is as before (no accesses)
    assert "reads" not in "\n".join(loop_nest(m, a))


def test_cli_map_shows_every_level(capsys):
    """On eyeriss_like (a shared buffer and three ``scope: pe`` scratchpads) every level
    line carries its occupancy and accesses."""
    from tilesim import arch
    from tilesim.cli import main
    assert main(["map", "--arch", "eyeriss_like", "--model", "resnet18", "--layer",
                 "layer1.0.conv2", "--top", "1"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for lvl in arch.load("eyeriss_like").memory[1:]:
        assert f"{lvl.name} [" in out
        i = out.index(f"{lvl.name} [")
        line = out[i: out.index("writes", i)]
        assert " B of " in line and "reads " in line, line
        if lvl.scope == "shared":
            assert "tile " in line, line


def test_nest_shows_each_levels_own_tile():
    """Two shared levels, the inner one holding a sub-tile: each level's line names its
    own tile. GEMM M=16, N=4, K=4 (int8, int32 accumulators) on ws 4 x 4; level 1 the
    whole layer, level 2 ("inner", outputs) 4 of the 16 rows: 4 x 4 x 4 B = 64 B, x2
    double-buffered = 128 B."""
    import numpy as np
    from conftest import make_arch
    from tilesim import arch as arch_mod
    from tilesim.mapper import Mapspace
    a = make_arch(rows=4, cols=4)
    d = a.model_dump(mode="json", exclude_none=True)
    d["memory"].append({"name": "inner", "kind": "sram", "holds": ["output"], "size": "1 KiB",
                        "double_buffered": True})
    a = arch_mod.from_dict(d)
    sp = Mapspace(gemm("g", 16, 4, 4), a)
    r = int(np.flatnonzero((sp.rsel == (16, 1, 1)).all(axis=1))[0])
    k, c = int(np.searchsorted(sp.kts, 4)), int(np.searchsorted(sp.cts, 4))
    ri = int(np.flatnonzero((sp.inner_axes[0][0] == (4, 1, 1)).all(axis=1))[0])
    m = sp.mapping(int(sp.encode(0, r, k, c, 0, ri, 0, 0, 0)))
    nest = " ".join("\n".join(loop_nest(m, a, _access(m, a))).split())
    assert "double-buffered; tile 16 img x 1 rows x 1 cols x 4 out ch x 4 in ch;" in nest
    assert ("inner [output]: 128 B of 1,024 B, double-buffered; tile 4 img x 1 rows x 1 cols "
            "x 4 out ch x 4 in ch;") in nest
