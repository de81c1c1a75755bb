"""Energy of a layer: access counts x energy per access + MACs x MAC energy + array-
internal movement + leakage x time, broken down by level and operand, every term
tagged with the technology table it comes from (:mod:`arch.technology`).

Terms (pJ) and the columns they become in ``layers.csv``:

* ``mac_energy_pj``: MACs x energy per MAC (multiply at the operand precision + add at
  the accumulator precision);
* ``array_energy_pj``: operands moving between neighbouring PEs, each hop costing
  ``hop_energy``; the dataflow's plan counts the hops (:attr:`mapper.dataflow.Fold.hops`):
  one per MAC along each axis that passes data (os, ws, is, kc, kcr, kco: two, the streamed
  operand and the moving partial sum / second operand; dw: one, the partial sum), rs
  only its partial sums up the chain (its filter and input rows arrive on buses);
* ``vector_energy_pj``: vector-unit ops (fused activations, pooling, adds);
* ``<level>_<operand>_energy_pj``: bytes read and written at memory level ``<level>``
  for ``<operand>`` (input, weight, output; output includes partial sums) x that level's
  read / write energy per byte; for ``dram`` the bytes are the DRAM traffic;
* ``leakage_energy_pj``: static power of the on-chip levels x the layer's time.

Access counts are the cost model's (:meth:`sim.cost.CostModel.access`,
:func:`sim.cost.op_access`); every fidelity prices them here.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from tilesim.arch import Architecture
from tilesim.arch import technology as tech

from .results import LayerResult

OPERANDS = ("input", "weight", "output")
HOPS_PER_MAC = 2


@dataclass(frozen=True)
class EnergyTable:
    """Per-architecture figures: pJ per MAC, hop, vector op; pJ per byte read / written
    at each level; leakage W per level. Each a :class:`arch.technology.Figure`."""
    mac: tech.Figure
    hop: tech.Figure
    vector_op: tech.Figure
    read: dict
    write: dict
    leakage: dict
    clock_hz: float

    @property
    def leakage_w(self) -> float:
        return sum(f.value for f in self.leakage.values())


#: energy sources of sparsity (mapper/sparse.py): a MAC with a zero operand costs nothing
#: under zeros: gate or skip, and skipped N:M MACs are not performed
GATING = ("MAC energy only for MACs with both operands non-zero (zeros: gate or skip; "
          "gating as in Wu et al., Sparseloop, MICRO 2022; the zero detector not charged)")
#: a compressed level's bytes: values and metadata at the level's access energy
FORMAT_BYTES = ("bytes in the level's format, metadata included (mapper/sparse.py); "
                "encoder and decoder logic not charged")


def energy_table(arch: Architecture) -> EnergyTable:
    rd, wr, lk = {}, {}, {}
    for i, lvl in enumerate(arch.memory):
        rd[lvl.name], wr[lvl.name] = tech.level_energy(arch, i)
        lk[lvl.name] = tech.level_leakage_w(arch, i)
    return EnergyTable(mac=tech.mac_energy(arch), hop=tech.hop_energy(arch),
                       vector_op=tech.vector_op_energy(arch), read=rd, write=wr, leakage=lk,
                       clock_hz=arch.clock)


def _terms(arch: Architecture, tab: EnergyTable, macs, vector_ops, cycles, access,
           hops=None) -> list:
    """[(column, pJ, source key)]: the one list of energy terms. ``access`` maps (level,
    operand) -> (read bytes, write bytes); ``hops`` counts operand moves between PEs
    (default ``HOPS_PER_MAC`` per MAC); the numbers may be numpy arrays (a batch)."""
    hops = HOPS_PER_MAC * macs if hops is None else hops
    mac_src = tab.mac.source
    if (arch.array.zeros or "none") != "none":
        mac_src += "+" + GATING
    terms = [("mac_energy_pj", macs * tab.mac.value, mac_src),
             ("array_energy_pj", hops * tab.hop.value, tab.hop.source),
             ("vector_energy_pj", vector_ops * tab.vector_op.value, tab.vector_op.source)]
    for l in arch.memory:
        for op in l.holds:
            rb, wb = access[(l.name, op)]
            terms.append((f"{l.name}_{op}_energy_pj",
                          rb * tab.read[l.name].value + wb * tab.write[l.name].value,
                          tab.read[l.name].source + ("" if l.format_of(op) == "dense" else
                                                     "+" + FORMAT_BYTES)))
    srcs = sorted({f.source for f in tab.leakage.values() if f.value})
    terms.append(("leakage_energy_pj", tab.leakage_w * cycles / tab.clock_hz * 1e12,
                  "+".join(srcs) or "none"))
    return terms


def energy_terms(arch: Architecture, tab: EnergyTable, macs, vector_ops, cycles,
                 access: dict, hops=None) -> dict:
    """Energy column -> pJ of a layer (or a batch of candidate mappings, as arrays) that
    performs ``macs`` MACs and ``vector_ops`` vector ops in ``cycles`` cycles with the
    (level, operand) -> (read, write) byte counts ``access``."""
    return {col: pj for col, pj, _ in _terms(arch, tab, macs, vector_ops, cycles, access,
                                             hops)}


def with_energy(r: LayerResult, terms: dict) -> LayerResult:
    """``r`` with ``energy_pj`` and its breakdown columns (``terms``: column -> pJ)."""
    return replace(r, energy_pj=sum(terms.values()), energy_breakdown=dict(terms))


def energy_sources(arch: Architecture, tab: EnergyTable | None = None) -> dict:
    """{column: source description} for every energy column of ``arch``."""
    tab = tab or energy_table(arch)
    zero = {(l.name, op): (0, 0) for l in arch.memory for op in l.holds}
    return {col: " + ".join(tech.SOURCES.get(s, s) for s in src.split("+"))
            for col, _, src in _terms(arch, tab, 0, 0, 0, zero)}
