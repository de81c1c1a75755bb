"""A Mapping as readable nested loops (what ``tilesim map`` prints)."""
from __future__ import annotations

from tilesim.arch import Architecture

from .mapping import Mapping

_DIM_WORDS = {"M": "output pixels (N*P*Q)", "N": "filters (K/groups)",
              "K": "reduction (C/groups*R*S)"}


def tiling_summary(m: Mapping) -> str:
    """One line: dataflow, tile sizes and loop order."""
    t, l = m.tiling, m.layer
    r = (f"{t.images} img" if t.rows == l.P else f"{t.rows} rows" if t.cols == l.Q
         else f"1 row x {t.cols} cols")
    return (f"{m.dataflow.name}: r={r} k={t.k_tile} c={t.c_tile} "
            f"order {'>'.join(t.order)} ({t.n_tiles} tiles)")


def loop_nest(m: Mapping, arch: Architecture) -> list[str]:
    """The mapping as nested loops, outermost first, with tile sizes per level."""
    l, t = m.layer, m.tiling
    df = m.dataflow
    cg = l.C // l.groups
    trips = dict(zip(("r", "k", "c"), t.trips))
    blk = (f"{t.images} image(s) x {t.rows} output rows x {t.cols} output cols"
           if t.images > 1 or t.rows == l.P else
           f"{t.rows} output rows x {t.cols} output cols of 1 image")
    what = {"r": (f"output block: {blk} (of N={l.N} P={l.P} Q={l.Q})"),
            "k": f"{t.k_tile} output channels (of K={l.K})",
            "c": f"{t.c_tile} input channels (of C/groups={cg})"}
    lines = [f"DRAM -> on-chip buffers, loop order {' > '.join(t.order)}:"]
    ind = ""
    for lp in t.order:
        lines.append(f"{ind}for {lp} in range({trips[lp]}):".ljust(36) + f"# {what[lp]}")
        ind += "  "
    tb = t.tile_bytes
    lines.append(f"{ind}load tile: input {tb['input']:,} B, weight {tb['weight']:,} B; "
                 f"output {tb['output']:,} B (accumulator precision)")
    for lvl in arch.onchip:
        db = ", double-buffered" if lvl.double_buffered else ""
        lines.append(f"{ind}  {lvl.name} [{', '.join(lvl.holds)}]: {t.level_bytes[lvl.name]:,} B "
                     f"of {lvl.size:,} B{db}")
    levels = t.levels(len(arch.onchip))
    for lvl, par, lt in zip(arch.onchip[1:], levels, levels[1:]):
        if lt.sizes == par.sizes:
            continue
        cd = lambda a, b: -(-a // b)  # noqa: E731
        tr = {"r": cd(par.images, lt.images) * cd(par.rows, lt.rows) * cd(par.cols, lt.cols),
              "k": cd(par.k_tile, lt.k_tile), "c": cd(par.c_tile, lt.c_tile)}
        lines.append(f"{ind}{lvl.name} sub-tiles ({lt.images} image(s) x {lt.rows} rows x "
                     f"{lt.cols} cols, {lt.k_tile} output ch, {lt.c_tile} input ch), "
                     f"loop order {' > '.join(lt.order)}:")
        for lp in lt.order:
            if tr[lp] > 1:
                lines.append(f"{ind}for {lp} in range({tr[lp]}):")
                ind += "  "
    a = f"{m.array_rows}x{m.array_cols}" + (f" x{m.array_count}" if m.array_count > 1 else "")
    lines.append(f"{ind}on the array ({a}, dataflow {df.name}, {df.stationary} stationary):")
    lines.append(f"{ind}  for fold in range({m.folds}):".ljust(36) +
                 f"# groups {m.groups} x row folds {m.row_folds} x col folds {m.col_folds}")
    lines.append(f"{ind}    rows <- {df.rows} {_DIM_WORDS[df.rows]} = {m.rows_dim}, "
                 f"cols <- {df.cols} {_DIM_WORDS[df.cols]} = {m.cols_dim}, "
                 f"stream {df.stream} {_DIM_WORDS[df.stream]} = {m.stream_len} cycles")
    return lines
