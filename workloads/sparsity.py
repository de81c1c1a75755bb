"""Sparsity of a MAC layer's operands: densities and N:M structure (DESIGN.md §2).

A :class:`Sparsity` says how many of an operand's values are non-zero:

* ``weight``: the density of non-zero weights (unstructured), in (0, 1];
* ``nm``: an N:M structure of the weights instead: in every block of M consecutive
  values along the reduction (one filter's ``C/groups x R x S`` values, flattened with
  ``c`` outermost and ``s`` innermost, blocked from the first), at most N are non-zero;
  a last block of ``L < M`` values keeps ``min(N, L)``. The weight density is then the
  kept share, :func:`nm_kept` / (C/groups x R x S);
* ``input``, ``output``: the densities of the activations the layer reads and writes
  (ReLU zeros), given by the user or measured on real inputs;
* ``counted``: the weight density was counted from real values (an ONNX initializer, a
  PyTorch module's parameters, or a MatMul's second activation met on an input sample),
  not assumed.

What a density changes is the hardware's to say (``arch`` YAML: a memory level's
``format``, an array's ``zeros``): on hardware that declares neither, nothing. Zoo models
are dense unless a sparsity is applied (:func:`apply`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

from .errors import WorkloadError

#: largest M of an N:M structure (a block's offsets take ceil(log2 M) bits)
NM_MAX = 256


def _density(v, what: str, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise WorkloadError(f"{where}: {what} = {v!r} is not a number",
                            fix=f"give {what} as a number in (0, 1], e.g. 0.5")
    v = float(v)
    if not (0.0 < v <= 1.0):   # NaN fails both comparisons
        raise WorkloadError(f"{where}: {what} = {v!r} is outside (0, 1]",
                            fix=f"give {what} as the share of non-zero values, in (0, 1] "
                                "(1 is dense)")
    return v


def parse_nm(v, where: str = "sparsity") -> tuple[int, int]:
    """``"2:4"`` (or ``(2, 4)``) as (N, M), checked: 1 <= N <= M <= NM_MAX."""
    if isinstance(v, str):
        m = re.fullmatch(r"\s*(\d{1,4})\s*:\s*(\d{1,4})\s*", v)
        if not m:
            raise WorkloadError(f"{where}: N:M structure {v!r} is not of the form N:M",
                                fix="write it as two whole numbers, e.g. 2:4")
        n, mm = int(m.group(1)), int(m.group(2))
    elif isinstance(v, (tuple, list)) and len(v) == 2 and all(
            type(x) is int for x in v):
        n, mm = v
    else:
        raise WorkloadError(f"{where}: N:M structure {v!r} is not of the form N:M",
                            fix="write it as two whole numbers, e.g. 2:4")
    if not (1 <= mm <= NM_MAX):
        raise WorkloadError(f"{where}: M = {mm} in {n}:{mm} is outside 1..{NM_MAX}",
                            fix=f"use a block size M from 1 to {NM_MAX}")
    if not (1 <= n <= mm):
        raise WorkloadError(f"{where}: N = {n} in {n}:{mm} must be from 1 to M = {mm}",
                            fix="keep at most M values of every block of M (N <= M)")
    return n, mm


def nm_kept(reduction: int, n: int, m: int) -> int:
    """Values one filter keeps under N:M over a reduction of ``reduction`` values:
    ``(reduction // M) * N + min(N, reduction % M)`` (SCALE-Sim v3's compressed filter
    rows, its ``operand_matrix`` with its trailing zero rows trimmed)."""
    return (reduction // m) * n + min(n, reduction % m)


@dataclass(frozen=True)
class Sparsity:
    """Non-zero shares of a MAC layer's operands (module doc)."""
    weight: float = 1.0
    nm: tuple | None = None
    input: float = 1.0
    output: float = 1.0
    counted: bool = False

    def __post_init__(self):
        for f in ("weight", "input", "output"):
            object.__setattr__(self, f, _density(getattr(self, f), f, "sparsity"))
        if self.nm is not None:
            object.__setattr__(self, "nm", parse_nm(self.nm))
            if self.weight != 1.0:
                raise WorkloadError(
                    f"sparsity: both a weight density ({self.weight:g}) and an N:M "
                    f"structure ({self.nm[0]}:{self.nm[1]}) given",
                    fix="give one: an N:M structure sets the weight density to N/M")

    @property
    def dense(self) -> bool:
        """No operand has a zero to exploit (every density 1, no structure with N < M)."""
        return (self.weight == self.input == self.output == 1.0
                and (self.nm is None or self.nm[0] == self.nm[1]))

    def weight_density(self, reduction: int) -> float:
        """Share of a filter's ``reduction`` values that are non-zero (kept)."""
        if self.nm is not None:
            return nm_kept(reduction, *self.nm) / reduction
        return self.weight

    def text(self) -> str:
        """A short description: ``w 2:4, in 0.5`` (empty when dense)."""
        parts = []
        if self.nm is not None and self.nm[0] != self.nm[1]:
            parts.append(f"w {self.nm[0]}:{self.nm[1]}")
        elif self.weight != 1.0:
            parts.append(f"w {self.weight:g}" + (" counted" if self.counted else ""))
        if self.input != 1.0:
            parts.append(f"in {self.input:g}")
        if self.output != 1.0:
            parts.append(f"out {self.output:g}")
        return ", ".join(parts)


DENSE = Sparsity()


def from_dict(d, where: str) -> Sparsity:
    """A ``sparsity:`` block of a YAML layer table: keys ``weight`` (a density or
    ``"N:M"``), ``input``, ``output`` (densities)."""
    if not isinstance(d, dict):
        raise WorkloadError(f"{where}: sparsity must be a mapping, got {type(d).__name__}",
                            fix="write e.g. sparsity: {weight: '2:4', input: 0.5}")
    unknown = set(d) - {"weight", "input", "output"}
    if unknown:
        raise WorkloadError(f"{where}: unknown sparsity key {sorted(unknown)[0]!r}",
                            fix="use weight (a density or 'N:M'), input, output")
    w = d.get("weight", 1.0)
    kw = {k: d[k] for k in ("input", "output") if k in d}
    try:
        if isinstance(w, str):
            return Sparsity(nm=parse_nm(w, f"{where}.weight"), **kw)
        return Sparsity(weight=w, **kw)
    except WorkloadError as e:
        msg = e.bare
        if msg.startswith("sparsity: "):   # name the key path
            msg = msg[len("sparsity: "):]
        raise WorkloadError(f"{where}: {msg}" if not msg.startswith(where) else msg,
                            fix=e.fix) from None


def apply(model, weight_nm=None, weight_density=None, input_density=None):
    """``model`` with every MAC layer's sparsity set: weights N:M (``"2:4"``) or of
    density ``weight_density``, inputs of density ``input_density``. A layer whose w
    operand is an activation (attention's MatMul) keeps its weight sparsity. With
    ``input_density``, a MAC layer whose output a MAC layer reads gets it as its output
    density (:func:`_link_outputs`). Returns the model unchanged when nothing is
    given."""
    if weight_nm is not None and weight_density is not None:
        raise WorkloadError("both --weight-sparsity and --weight-density given",
                            fix="give one: N:M structure sets the weight density to N/M")
    if weight_nm is None and weight_density is None and input_density is None:
        return model
    nm = parse_nm(weight_nm, "--weight-sparsity") if weight_nm is not None else None
    wd = _density(weight_density, "weight density", "--weight-density") \
        if weight_density is not None else None
    idn = _density(input_density, "input density", "--input-density") \
        if input_density is not None else None
    layers = []
    for l in model.layers:
        if hasattr(l, "weights_are_activations"):   # a MacLayer (ir imports this module)
            s = l.sparsity or DENSE
            if not l.weights_are_activations and (nm is not None or wd is not None):
                s = replace(s, nm=nm, weight=wd if wd is not None else 1.0, counted=False)
            if idn is not None:
                s = replace(s, input=idn)
            l = replace(l, sparsity=None if s.dense and s.nm is None else s)
        layers.append(l)
    if idn is not None:
        layers = _link_outputs(model, layers, idn)
    return replace(model, layers=tuple(layers))


def _link_outputs(model, layers: list, idn: float) -> list:
    """A MAC layer's output is the very tensor its MAC consumers read as their input (its
    folded activation included): when some MAC layer reads it first (``sources``), its
    output density is that input density ``idn``; an output read by vector ops only stays
    as it was (nothing says its density)."""
    read, prev = set(), None   # the first tensor each MAC layer reads (ir.layer_sources)
    for l in model.layers:
        if hasattr(l, "weights_are_activations"):
            read.add(l.sources[0] if l.sources else prev)
        prev = l.name
    out = []
    for l in layers:
        if hasattr(l, "weights_are_activations") and l.name in read:
            l = replace(l, sparsity=replace(l.sparsity or DENSE, output=idn))
            l = replace(l, sparsity=None if l.sparsity.dense and l.sparsity.nm is None
                        else l.sparsity)
        out.append(l)
    return out


#: block sizes :func:`counted` tries for an N:M structure, smallest first
NM_BLOCKS = (2, 4, 8, 16)
#: share of an N:M structure's kept values that must be non-zero for counted weights to
#: be taken as N:M (:func:`counted`): pruned N:M weights fill their N (a few kept values
#: may quantize to zero); random zeros fill far less of the structure their densest
#: block implies
NM_FILL = 0.9


def counted(weights) -> Sparsity | None:
    """The sparsity of real weights (a numpy array, filters first: (K, C/groups, R, S),
    (K, C/groups, S) or (K, C)), counted: None when every weight is non-zero; an N:M
    structure when every block of M along each filter's flattened reduction (c
    outermost, the blocks of :mod:`workloads.sparsity`) holds at most N < M non-zeros
    (the smallest N/M of :data:`NM_BLOCKS`, the smaller M on a tie) whose kept values
    are at least :data:`NM_FILL` non-zero; else the share of non-zeros as an
    unstructured density. ``counted`` is set on it. All-zero weights
    are taken as a placeholder (what exporters write for a shape-only model): None."""
    import numpy as np
    w = np.asarray(weights)
    if w.size == 0:
        return None
    flat = w.reshape(w.shape[0], -1) != 0
    nnz = int(flat.sum())
    if nnz == w.size:
        return None
    if nnz == 0:   # all zero: a placeholder (exporters write them for shape-only models)
        return None
    best = None
    red = flat.shape[1]
    for m in NM_BLOCKS:
        if m > red:
            break
        pad = -red % m
        blocks = np.pad(flat, ((0, 0), (0, pad))).reshape(flat.shape[0], -1, m)
        n = int(blocks.sum(axis=2).max())
        if n < m and (best is None or n / m < best[0] / best[1]):
            best = (n, m)
    # a structure, not chance: its kept values are (nearly) all non-zero; random zeros
    # leave some block of M with many non-zeros, which would claim a structure holding
    # far more than the weights' non-zeros (30 % random weights: 10:16)
    if best is not None and nnz >= NM_FILL * flat.shape[0] * nm_kept(red, *best):
        return Sparsity(nm=best, counted=True)
    return Sparsity(weight=nnz / w.size, counted=True)
