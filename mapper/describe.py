"""A Mapping as readable nested loops (what ``tilesim map`` prints)."""
from __future__ import annotations

from tilesim.arch import Architecture

from .dataflow import KCO, KCR, K, M, RowStationary, channel_tiles
from .mapping import Mapping

_DIM_WORDS = {"G": "groups", "M": "output pixels (N*P*Q)", "N": "filters (K/groups)",
              "K": "reduction (C/groups*R*S)", "C": "input channels (C/groups)",
              "B": "images", "P": "output rows", "Q": "output columns",
              "R": "filter rows", "S": "filter columns"}


def _dims(m: Mapping, dims: tuple) -> str:
    """``dims`` in words with their extent, e.g. ``G groups x N filters (K/groups) = 32``."""
    names = ("K",) if dims == K else ("M",) if dims == M else dims
    return f"{' x '.join(f'{d} {_DIM_WORDS[d]}' for d in names)} = {m.dim(dims)}"


def tiling_summary(m: Mapping) -> str:
    """One line: dataflow, tile sizes and loop order."""
    t, l = m.tiling, m.layer
    r = (f"{t.images} img" if t.rows == l.P else f"{t.rows} rows" if t.cols == l.Q
         else f"1 row x {t.cols} cols")
    return (f"{m.dataflow.name}: r={r} k={t.k_tile} c={t.c_tile} "
            f"order {'>'.join(t.order)} ({t.n_tiles} tiles)")


def _acc(access: dict | None, name: str) -> str:
    """`` reads input 1,024 B, ...; writes ...`` of level ``name`` (empty without counts)."""
    if not access:
        return ""
    ops = [(op, r, w) for (lv, op), (r, w) in access.items() if lv == name]
    rd = ", ".join(f"{op} {int(r):,} B" for op, r, _ in ops)
    wr = ", ".join(f"{op} {int(w):,} B" for op, _, w in ops)
    return f"; reads {rd}; writes {wr}" if ops else ""


def loop_nest(m: Mapping, arch: Architecture, access: dict | None = None) -> list[str]:
    """The mapping as nested loops, outermost first, with tile sizes per level: every
    on-chip level's occupancy (bytes of its size) and, given ``access`` ((level,
    operand) -> (read, write) bytes: ``sim.CostModel.access`` of the mapping), its reads
    and writes per operand (DRAM's too)."""
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
    if access:
        lines.append(f"  {arch.dram.name}: " + _acc(access, arch.dram.name)[2:])
    ind = ""
    for lp in t.order:
        lines.append(f"{ind}for {lp} in range({trips[lp]}):".ljust(36) + f"# {what[lp]}")
        ind += "  "
    tb = t.tile_bytes
    lines.append(f"{ind}load tile: input {tb['input']:,} B, weight {tb['weight']:,} B; "
                 f"output {tb['output']:,} B (accumulator precision)")
    levels = t.levels(len(arch.onchip))
    for lvl, lt in zip(arch.onchip, levels):
        db = ", double-buffered" if lvl.double_buffered else ""
        tile = (f"tile {lt.images} img x {lt.rows} rows x {lt.cols} cols x {lt.k_tile} out ch "
                f"x {lt.c_tile} in ch")
        lines.append(f"{ind}  {lvl.name} [{', '.join(lvl.holds)}]: "
                     f"{t.level_bytes[lvl.name]:,} B of {lvl.size:,} B{db}; {tile}"
                     + _acc(access, lvl.name))
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
    pre = f", {m.preload} preload" if df.preload else ""
    lines.append(f"{ind}on the array ({a}, dataflow {df.name}, {df.stationary} stationary{pre}):")
    fold = m.plan
    rs = dict(fold.detail) if isinstance(df, RowStationary) else {}
    taps = dict(fold.detail).get("taps per fold") if isinstance(df, KCR) else None
    pb = arch.precision.bytes
    for lvl in arch.pe_levels:
        from tilesim.arch.schema import pe_level_need
        db = ", double-buffered" if lvl.double_buffered else ""
        need = pe_level_need(arch, lvl)
        if rs:   # rs: S*q inputs (a window), S*p*q weights, p partial sums
            S, p, q = l.S, rs["p"], rs["q"]
            vals = {"input": S * q, "weight": S * p * q, "output": p}
            need = int(sum(vals[op] * pb["accumulator" if op == "output" else op]
                           for op in lvl.holds) * (2 if lvl.double_buffered else 1))
        elif taps and "weight" in lvl.holds:   # kcr: t taps' weights
            need += int((taps - 1) * pb["weight"] * (2 if lvl.double_buffered else 1))
        lines.append(f"{ind}  {lvl.name} [{', '.join(lvl.holds)}] in every PE: "
                     f"{need:,} B of {lvl.size:,} B{db}" + _acc(access, lvl.name))
    if rs:
        lines += _rs_lines(m, fold, rs, ind)
        return lines
    if isinstance(df, KCO):
        lines += _kco_lines(m, fold, ind, [lt.c_tile for lt in levels])
        return lines
    outer = "".join(f"{_DIM_WORDS[d]} {m.dim(d)} x " for d in df.outer)
    if taps:
        outer += f"tap chunks {dict(fold.detail)['tap chunks']} x "
    lines.append(f"{ind}  for fold in range({m.folds}):".ljust(36) +
                 f"# {outer}row folds {m.row_folds} x col folds {m.col_folds}")
    stream = (f"{_dims(m, M)} x {taps} taps = {fold.stream}" if taps
              else _dims(m, df.stream))
    lines.append(f"{ind}    rows <- {_dims(m, df.rows)}, cols <- {_dims(m, df.cols)}, "
                 f"stream {stream} cycles")
    if taps:
        lines.append(f"{ind}    # each PE holds {taps} tap(s) of its filter (shifted in over "
                     f"{taps} x {m.array_rows} cycles); a pixel's sum stays in its column's "
                     "output register over the taps")
    fold = m.plan
    fc, fi = fold.fold_cycles, df.interval(fold, m.array_rows, m.preload)
    lines.append(f"{ind}    # a fold takes {fc:,} cycles; "
                 + (f"the next starts {fi:,} cycles after it (max(stream, rows): overlapped "
                    "preload)" if fi != fc else "folds run one after another")
                 + f": {int(df.chain(fold, m.folds_per_array, m.array_rows, m.preload)):,} "
                   "cycles on the busiest array")
    return lines


def _kco_lines(m: Mapping, fold, ind: str, c_tiles: list) -> list[str]:
    """kco's folding (:class:`mapper.dataflow.KCO`) in words: pixel lanes, the stream,
    where the partial sums stay and the passes over the levels' channel tiles
    ``c_tiles``."""
    d = dict(fold.detail)
    lanes, mp, cb = d["pixel lanes"], d["pixels per lane"], d["channel blocks"]
    l = m.layer
    per = fold.folds // lanes
    return [
        f"{ind}  for fold in range({per}):".ljust(36) +
        f"# groups {m.groups} x col folds {m.col_folds}; each on all {lanes} array(s) at "
        f"once ({fold.folds} array folds)",
        f"{ind}    rows <- C input channels (C/groups), cols <- N filters (K/groups), "
        f"{lanes} pixel lane(s) <- M output pixels (N*P*Q) = {m.M}",
        f"{ind}    stream {mp} pixels per lane x {cb} channel block(s) x {l.R * l.S} taps "
        f"= {fold.stream} cycles",
        f"{ind}    # weights read from the buffer at every use, one read for all lanes; "
        f"a pixel's sum stays in its column's output register over the channel blocks and "
        f"taps of the array's channel tile",
        f"{ind}    # a fold takes {fold.fold_cycles:,} cycles; folds run one after another: "
        f"{int(m.dataflow.chain(fold, m.folds_per_array, m.array_rows, m.preload)):,} "
        "cycles on every array"] + _kco_passes(m, ind, c_tiles)


def _kco_passes(m: Mapping, ind: str, c_tiles: list) -> list[str]:
    """The passes of kco's folds over the channel tiles the buffer feeds the array, when
    its tiles split a group's channels (:meth:`mapper.Dataflow.tile_cycles`)."""
    C = m.dim("C")
    n, blocks = channel_tiles(C, c_tiles, m.array_rows)
    if n == 1:
        return []
    fc = int(m.dataflow.tile_cycles(m.dims, m.array_rows, m.array_cols, m.array_count,
                                    *c_tiles))
    return [f"{ind}    # but the buffer feeds the array {n} channel tiles of the {C} "
            f"channels ({blocks} channel block(s) in all): each is a pass of these folds "
            f"with its own fill and drain, its sums leaving the column registers "
            f"({n} partial-sum writes per output); a column fold's passes take {fc:,} "
            f"cycles: {fc * m.folds_per_array:,} cycles on every array"]


def _rs_lines(m: Mapping, fold, rs: dict, ind: str) -> list[str]:
    """Row stationary's folding (:class:`mapper.dataflow.RowStationary`) in words."""
    l = m.layer
    (rh, e), tv, th, p, q = rs["set"], rs["stacked"], rs["side"], rs["p"], rs["q"]
    nk, nc = rs["filter chunks"], rs["channel chunks"]
    kp, cp = -(-nk // th), -(-nc // tv)
    return [
        f"{ind}  logical set: R={l.R} filter rows x P={l.P} output rows; on the array: "
        f"{rh} filter rows x {e} output rows per set",
        f"{ind}  per PE: p={p} filters x q={q} channels (filter spad {l.S * p * q}, "
        f"ifmap spad {l.S * q}, psum spad {p} values)",
        f"{ind}  sets: {tv} stacked (channel chunks; one psum chain of {rs['chain']} rows) "
        f"x {th} side by side (filter chunks; inputs multicast) = {tv * rh} x {th * e} "
        f"of {m.array_rows} x {m.array_cols} PEs",
        f"{ind}  for pass in range({m.folds}):".ljust(36) +
        f"# groups {m.groups} x images {l.N} x strips {fold.col_folds} x filter-row folds "
        f"{fold.row_folds} x filter passes {kp} ({nk} chunks of {p}) x channel passes "
        f"{cp} ({nc} chunks of {q})",
        f"{ind}    {fold.fold_cycles:,} cycles = S*p*q*(Q+1) + chain - 1 = "
        f"{l.S}*{p}*{q}*{l.Q + 1} + {rs['chain']} - 1",
        f"{ind}  buffer reads per element: input {fold.reads['input']} (of the input tensor), "
        f"weight {fold.reads['weight']}; psum writes per output {fold.reads['output']}"]
