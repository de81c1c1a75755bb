"""Storage formats for real: encode a tensor of values into a format's payload (the
values it keeps and their metadata arrays), count its exact size in bits, and decode it
back, bit for bit. The layouts are the ones :mod:`mapper.sparse` prices
(:func:`mapper.sparse.format_bits`); here each is spelled out to the bit.

A tensor is encoded as the flat sequence of its values in C order (the caller chooses
the layout: the executor uses (n, c, h, w) for inputs, (k, c, r, s) for weights,
(n, k, p, q) for outputs). ``E`` values of ``b`` bits (``bits``; by default the dtype's
width), ``Z`` of them non-zero. The shape is part of the descriptor, not of the payload
(the reader of a tile knows its extents from the mapping), so it costs no bits.
``ceil(log2 n)`` below is ``(n - 1).bit_length()``: 0 for n = 1.

==========  ===========================================================================
dense       ``values``: all ``E``. Bits ``E b``.
bitmask     ``mask``: one bit per value, 1 where it is non-zero; ``values``: the
            non-zeros in order. Bits ``Z b + E``.
rle         ``values``, ``runs`` (5 bits): entries; an entry ``(v, r)`` stands for ``r``
            zeros then ``v``. A non-zero preceded by ``z`` zeros (since the previous
            non-zero, or the start) is written as ``z // 32`` entries ``(0, 31)`` (each
            31 zeros and a zero value: 32 zeros) then ``(v, z % 32)``. Zeros after the
            last non-zero are not written (the length is known). Bits ``(Z + X)(b + 5)``,
            ``X = sum z // 32`` over the non-zeros.
csr         rows of ``row = L`` consecutive values (``E`` a multiple of ``L``); per row
            ``counts`` (``ceil(log2(L + 1))`` bits: its non-zeros), and per non-zero
            ``cols`` (``ceil(log2 L)`` bits: its position in the row) and ``values``.
            Bits ``Z (b + ceil(log2 L)) + (E / L) ceil(log2(L + 1))``.
nm          rows of ``row = L`` values (one filter's reduction, or a block-aligned part
            of it), cut into blocks of ``M`` from the row's first value; the last block
            of ``L' = L % M`` values, if any, keeps ``min(N, L')`` entries, every other
            block ``N``. A block's entries are its non-zeros and, when it has fewer, the
            zeros at its lowest free offsets (a kept zero), in offset order: ``values``
            and ``offsets`` (``ceil(log2 M)`` bits, within the block). A block with
            more than ``N`` non-zeros is not N:M: :class:`FormatError`. Bits
            ``E' (b + ceil(log2 M))``, ``E' = (E / L) nm_kept(L, N, M)``.
==========  ===========================================================================
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FORMATS = ("dense", "bitmask", "rle", "csr", "nm")
#: rle's zero-run field (mapper.sparse.RLE_RUN_BITS; Eyeriss v1's 5-bit runs)
RUN_BITS = 5
RUN_MAX = (1 << RUN_BITS) - 1


class FormatError(ValueError):
    """Values that the format cannot hold (an N:M block with more than N non-zeros, a
    csr or nm row that does not divide the tensor)."""


def clog2(n: int) -> int:
    """``ceil(log2 n)`` in integers (0 for n = 1)."""
    return (int(n) - 1).bit_length()


@dataclass(frozen=True, eq=False)
class Encoded:
    """A tensor in a format: ``values`` (the values stored), ``meta`` (name -> array of
    metadata fields) and ``widths`` (name -> bits of one field, ``values`` included);
    ``shape``, ``dtype``, ``row``, ``nm``: the descriptor the reader knows."""
    fmt: str
    shape: tuple
    dtype: np.dtype
    values: np.ndarray
    meta: dict = field(default_factory=dict)
    widths: dict = field(default_factory=dict)
    row: int = 1
    nm: tuple | None = None

    @property
    def bits(self) -> int:
        """Exact size of the payload in bits: every stored field at its width."""
        return (self.values.size * self.widths["values"]
                + sum(a.size * self.widths[k] for k, a in self.meta.items()))

    @property
    def size(self) -> int:
        """Values the tensor has (``E``)."""
        return int(np.prod(self.shape, dtype=np.int64))


def _rows(flat: np.ndarray, row: int, fmt: str) -> np.ndarray:
    if row < 1 or flat.size % row:
        raise FormatError(f"{fmt}: {flat.size} values do not split into rows of {row}")
    return flat.reshape(-1, row)


def encode(fmt: str, values: np.ndarray, row: int | None = None, nm: tuple | None = None,
           bits: int | None = None) -> Encoded:
    """``values`` in format ``fmt`` (module doc). ``row``: csr's and nm's row length
    (default: the last axis); ``nm``: (N, M) for nm; ``bits``: width of a value (default
    the dtype's)."""
    a = np.asarray(values)
    flat = a.reshape(-1)
    b = int(bits) if bits is not None else a.dtype.itemsize * 8
    row = int(row) if row is not None else (a.shape[-1] if a.ndim else 1)
    if not flat.size:
        row = max(row, 1)
    base = dict(fmt=fmt, shape=a.shape, dtype=a.dtype, row=row)
    if fmt == "dense":
        return Encoded(values=flat.copy(), widths={"values": b}, **base)
    nz = flat != 0
    if fmt == "bitmask":
        return Encoded(values=flat[nz], meta={"mask": nz.copy()},
                       widths={"values": b, "mask": 1}, **base)
    if fmt == "rle":
        idx = np.flatnonzero(nz)
        z = np.diff(idx, prepend=-1) - 1               # zeros before each non-zero
        per = z // (RUN_MAX + 1) + 1                    # entries per non-zero
        last = np.cumsum(per) - 1                       # the non-zero's own entry
        n = int(per.sum())
        vals = np.zeros(n, dtype=a.dtype)
        runs = np.full(n, RUN_MAX, dtype=np.uint8)
        vals[last] = flat[idx]
        runs[last] = z % (RUN_MAX + 1)
        return Encoded(values=vals, meta={"runs": runs},
                       widths={"values": b, "runs": RUN_BITS}, **base)
    if fmt == "csr":
        rows = _rows(flat, row, fmt)
        m = rows != 0
        r_, c_ = np.nonzero(m)                          # row-major: rows in order
        return Encoded(values=rows[r_, c_], meta={"counts": m.sum(axis=1),
                                                  "cols": c_.astype(np.int64)},
                       widths={"values": b, "counts": clog2(row + 1), "cols": clog2(row)},
                       **base)
    if fmt == "nm":
        if nm is None:
            raise FormatError("nm: no N:M structure given")
        n_, m_ = (int(v) for v in nm)
        rows = _rows(flat, row, fmt)
        nb = -(-row // m_)
        pad = np.zeros((rows.shape[0], nb * m_), dtype=a.dtype)
        pad[:, :row] = rows
        blk = pad.reshape(rows.shape[0], nb, m_)
        valid = (np.arange(nb * m_) < row).reshape(nb, m_)
        bnz = blk != 0
        over = bnz.sum(axis=2) > n_
        if over.any():
            r, j = np.argwhere(over)[0]
            raise FormatError(f"nm: block {j} of row {r} has {int(bnz[r, j].sum())} "
                              f"non-zeros, more than N = {n_} of {n_}:{m_}")
        prio = np.where(bnz, 0, np.where(valid, 1, 2)) * m_ + np.arange(m_)
        pick = np.sort(np.argsort(prio, axis=2, kind="stable")[:, :, :n_], axis=2)
        lens = np.minimum(m_, row - np.arange(nb) * m_)          # values per block
        keep = np.arange(pick.shape[2]) < np.minimum(n_, lens)[:, None]   # (nb, <=N)
        keep = np.broadcast_to(keep, pick.shape)
        vals = np.take_along_axis(blk, pick, axis=2)[keep]
        return Encoded(values=vals, meta={"offsets": pick[keep].astype(np.int64)},
                       widths={"values": b, "offsets": clog2(m_)}, nm=(n_, m_), **base)
    raise FormatError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def decode(e: Encoded) -> np.ndarray:
    """The values ``e`` holds, in its shape and dtype (bit-exact with what was encoded)."""
    E = e.size
    out = np.zeros(E, dtype=e.dtype)
    if e.fmt == "dense":
        out[:] = e.values
    elif e.fmt == "bitmask":
        out[e.meta["mask"]] = e.values
    elif e.fmt == "rle":
        pos = np.cumsum(e.meta["runs"].astype(np.int64) + 1) - 1
        out[pos] = e.values
    elif e.fmt == "csr":
        counts = e.meta["counts"]
        starts = np.repeat(np.arange(counts.size, dtype=np.int64) * e.row, counts)
        out[starts + e.meta["cols"]] = e.values
    elif e.fmt == "nm":
        n_, m_ = e.nm
        nb = -(-e.row // m_)
        lens = np.minimum(m_, e.row - np.arange(nb) * m_)
        per_row = np.minimum(n_, lens)                           # entries per block
        block0 = np.repeat(np.arange(nb, dtype=np.int64) * m_, per_row)
        rows = E // e.row if e.row else 0
        starts = (np.arange(rows, dtype=np.int64)[:, None] * e.row + block0).reshape(-1)
        out[starts + e.meta["offsets"]] = e.values
    else:
        raise FormatError(f"unknown format {e.fmt!r}")
    return out.reshape(e.shape)


def rle_extra(values: np.ndarray) -> int:
    """``X``: the extra rle entries of ``values`` (runs of 32 zeros; module doc)."""
    idx = np.flatnonzero(np.asarray(values).reshape(-1))
    return int(((np.diff(idx, prepend=-1) - 1) // (RUN_MAX + 1)).sum())
