"""Read a SCALE-Sim topology CSV exactly as SCALE-Sim reads it.

Conv form (header ``Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width,
Channels, Num Filter, Strides``): each row is one dense layer (groups = 1, a depthwise
row written as one filter stays one filter), no padding, and SCALE-Sim's output-size
rule P = ceil((H - R + stride) / stride) (likewise Q), which can read past the input
edge when (H - R) is not a multiple of the stride.

GEMM form (header ``Layer, M, N, K``): SCALE-Sim turns a row into a conv with an
M x K ifmap, a 1 x K filter, one channel and N filters, i.e. M output pixels, N
filters and a reduction of K: the layer below is built the same way.

SCALE-Sim v3's optional N:M column (after ``Strides``, or after ``K``; e.g. ``2:4``, and
``1:1`` or absent for dense) becomes the layer's weight structure
(:mod:`workloads.sparsity`): in every block of M values of a filter's reduction at most N
are non-zero. What it changes is the architecture's to say (its array's ``zeros``; the
cfg's ``[sparsity]`` section, :mod:`arch.scalesim_cfg`).
"""
from __future__ import annotations

import csv
import functools
import io
from pathlib import Path

from tilesim._input import COUNT_MAX, parse_int_text

from .errors import WorkloadError, read_text
from .ir import MacLayer, Model
from .sparsity import Sparsity, parse_nm


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def read_scalesim_csv(path: str | Path, batch: int = 1) -> Model:
    path = Path(path)
    src = str(path)
    text = read_text(path)
    reader = csv.reader(io.StringIO(text))
    rows = []
    try:
        for r in reader:
            rows.append((reader.line_num, r))
    except csv.Error as e:   # a field over csv's 128 KiB limit, a NUL byte, ...
        raise WorkloadError(f"not a readable CSV row: {e}", source=f"{src}:{reader.line_num}",
                            fix="write plain comma-separated fields (names and whole "
                                "numbers)") from None
    rows = [(ln, [c.strip() for c in r]) for ln, r in rows if any(c.strip() for c in r)]
    if not rows:
        raise WorkloadError("the file is empty", source=src, fix="write a header and one row per layer")
    header_line, header = rows[0]
    header = [h for h in header if h]
    hl = [h.lower() for h in header]
    if hl[:4] == ["layer", "m", "n", "k"] or hl[1:4] == ["m", "n", "k"]:
        form, want = "gemm", 4
    elif len(hl) >= 8 and "ifmap height" in hl[1]:
        form, want = "conv", 8
    else:
        raise WorkloadError(
            f"unrecognised header {', '.join(header)!r}", source=f"{src}:{header_line}",
            fix="use SCALE-Sim's conv header 'Layer name, IFMAP Height, IFMAP Width, Filter "
                "Height, Filter Width, Channels, Num Filter, Strides' or GEMM header 'Layer, M, N, K'")
    if len(rows) == 1:
        raise WorkloadError("no layers: the file has a header but no layer rows", source=src,
                            fix="add one row per layer below the header")
    layers, seen = [], {}
    for ln, r in rows[1:]:
        cells = list(r)
        while cells and cells[-1] == "":
            cells.pop()
        where = f"{src}:{ln}"
        if len(cells) < want:
            raise WorkloadError(f"row has {len(cells)} fields, a {form}-form row needs {want}",
                                source=where, fix=f"write {', '.join(header[:want])}")
        name = cells[0]
        if not name:
            raise WorkloadError("the layer name (first field) is empty", source=where,
                                fix="give every layer a name")
        if name in seen:
            raise WorkloadError(f"layer name {name!r} is used again (first on line {seen[name]})",
                                source=where, fix="give every layer a unique name")
        seen[name] = ln
        fail = functools.partial(WorkloadError, source=where)
        nums = [parse_int_text(c, col, fail, lo=1, hi=COUNT_MAX)
                for col, c in zip(header[1:want], cells[1:want])]
        if form == "gemm":
            m, n, k = nums
            h, w, r_, s_, c_, kf, st = m, k, 1, k, 1, n, 1
        else:
            h, w, r_, s_, c_, kf, st = nums
        if r_ > h or s_ > w:
            raise WorkloadError(f"layer {name!r}: the {r_}x{s_} filter is larger than the "
                                f"{h}x{w} ifmap", source=where, fix="check the row's sizes")
        p, q = _ceil_div(h - r_ + st, st), _ceil_div(w - s_ + st, st)
        sp = None
        if len(cells) > want and cells[want]:   # SCALE-Sim v3's N:M column ("1:1": dense)
            try:
                nm = parse_nm(cells[want], "N:M column")
            except WorkloadError as e:
                raise WorkloadError(e.bare, source=where, fix=e.fix) from None
            sp = Sparsity(nm=nm) if nm[0] != nm[1] else None
        if len(cells) > want + 1:
            raise WorkloadError(f"row has {len(cells)} fields; a {form}-form row has {want} "
                                "and an optional N:M column", source=where,
                                fix="remove the extra fields")
        try:
            layers.append(MacLayer(name=name, N=batch, K=kf, C=c_, H=h, W=w, R=r_, S=s_, P=p,
                                   Q=q, stride=(st, st), origin="gemm" if form == "gemm" else "conv",
                                   sparsity=sp))
        except WorkloadError as e:
            raise WorkloadError(e.bare, source=where, fix=e.fix) from None
    return Model(name=path.stem, layers=tuple(layers), batch=batch, source=f"scalesim-csv:{src}")
