"""Energy of a layer: access counts x energy per access + MACs x MAC energy + array-
internal movement + leakage x time, broken down by level and operand, every term
tagged with the technology table it comes from (:mod:`arch.technology`).

Terms (pJ) and the columns they become in ``layers.csv``:

* ``mac_energy_pj``: MACs x energy per MAC (multiply at the operand precision + add at
  the accumulator precision);
* ``array_energy_pj``: operands moving between neighbouring PEs: each MAC moves two
  operands one hop (the streamed operand and the moving partial sum / second operand
  of the dataflow), each hop costing ``hop_energy``;
* ``vector_energy_pj``: vector-unit ops (fused activations, pooling, adds);
* ``<level>_<operand>_energy_pj``: bytes read and written at memory level ``<level>``
  for ``<operand>`` (input, weight, output; output includes partial sums) x that level's
  read / write energy per byte; for ``dram`` the bytes are the DRAM traffic;
* ``leakage_energy_pj``: static power of the on-chip levels x the layer's time.

Access counts are the analytic model's (:func:`sim.analytic.buffer_bytes` split by
operand; a test checks the split sums back to it).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from tilesim.arch import Architecture
from tilesim.arch import technology as tech
from tilesim.mapper import Mapping
from tilesim.workloads import OpLayer

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


def energy_table(arch: Architecture) -> EnergyTable:
    rd, wr, lk = {}, {}, {}
    for i, lvl in enumerate(arch.memory):
        rd[lvl.name], wr[lvl.name] = tech.level_energy(arch, i)
        lk[lvl.name] = tech.level_leakage_w(arch, i)
    return EnergyTable(mac=tech.mac_energy(arch), hop=tech.hop_energy(arch),
                       vector_op=tech.vector_op_energy(arch), read=rd, write=wr, leakage=lk,
                       clock_hz=arch.clock)


@dataclass(frozen=True)
class EnergyTerm:
    column: str        # e.g. dram_input_energy_pj
    pj: float
    source: str        # the technology table key(s), see arch.technology.SOURCES


def level_operand_bytes(m: Mapping, arch: Architecture) -> dict:
    """{(level, operand): [read_bytes, write_bytes]} for a MAC layer, DRAM included.

    On chip this is :func:`sim.analytic.buffer_bytes` split by operand."""
    pb = arch.precision.bytes
    g = m.groups
    elems = {"input": g * m.M * m.K, "weight": g * m.N * m.K, "output": g * m.M * m.N}
    t = m.traffic
    out = {(l.name, op): [0, 0] for l in arch.memory for op in l.holds}
    out[(arch.dram.name, "input")][0] += t.read_input
    out[(arch.dram.name, "weight")][0] += t.read_weight
    out[(arch.dram.name, "output")][0] += t.read_psum
    out[(arch.dram.name, "output")][1] += t.write_output
    fills = {"input": t.read_input, "weight": t.read_weight, "output": t.read_psum}
    for op in OPERANDS:
        holders = [l for l in arch.onchip if op in l.holds]
        inner = holders[-1].name
        f = m.dataflow.reads_per_element(op, m.row_folds, m.col_folds)
        if op == "output":
            out[(inner, op)][1] += int(elems[op] * f * pb["accumulator"])
            out[(inner, op)][0] += int(elems[op] * (f - 1) * pb["accumulator"])
        else:
            out[(inner, op)][0] += int(elems[op] * f * pb[op])
        for l in holders:
            out[(l.name, op)][1] += fills[op]
            if op == "output":
                out[(l.name, op)][0] += t.write_output
    return out


def op_level_operand_bytes(r: LayerResult, arch: Architecture) -> dict:
    """The same split for a vector-unit op (see :func:`sim.analytic.simulate_op`)."""
    rd, wr = r.dram_read_bytes, r.dram_write_bytes
    out = {(l.name, op): [0, 0] for l in arch.memory for op in l.holds}
    out[(arch.dram.name, "input")][0] += rd
    out[(arch.dram.name, "output")][1] += wr
    for l in arch.onchip:
        if "input" in l.holds:
            out[(l.name, "input")] = [rd, rd]
        if "output" in l.holds:
            out[(l.name, "output")] = [wr, wr]
    return out


def _terms(arch: Architecture, tab: EnergyTable, macs: int, vector_ops: int, cycles: int,
           lob: dict) -> tuple[EnergyTerm, ...]:
    terms = [EnergyTerm("mac_energy_pj", macs * tab.mac.value, tab.mac.source),
             EnergyTerm("array_energy_pj", HOPS_PER_MAC * macs * tab.hop.value, tab.hop.source),
             EnergyTerm("vector_energy_pj", vector_ops * tab.vector_op.value,
                        tab.vector_op.source)]
    for l in arch.memory:
        for op in l.holds:
            rb, wb = lob[(l.name, op)]
            terms.append(EnergyTerm(f"{l.name}_{op}_energy_pj",
                                    rb * tab.read[l.name].value + wb * tab.write[l.name].value,
                                    tab.read[l.name].source))
    srcs = sorted({f.source for f in tab.leakage.values() if f.value})
    terms.append(EnergyTerm("leakage_energy_pj", tab.leakage_w * cycles / tab.clock_hz * 1e12,
                            "+".join(srcs) or "none"))
    return tuple(terms)


def mac_energy_terms(m: Mapping, arch: Architecture, r: LayerResult,
                     tab: EnergyTable | None = None) -> tuple[EnergyTerm, ...]:
    tab = tab or energy_table(arch)
    return _terms(arch, tab, r.macs, r.vector_ops, r.cycles, level_operand_bytes(m, arch))


def op_energy_terms(layer: OpLayer, arch: Architecture, r: LayerResult,
                    tab: EnergyTable | None = None) -> tuple[EnergyTerm, ...]:
    tab = tab or energy_table(arch)
    return _terms(arch, tab, 0, r.vector_ops, r.cycles, op_level_operand_bytes(r, arch))


def with_energy(r: LayerResult, terms: tuple[EnergyTerm, ...]) -> LayerResult:
    """``r`` with ``energy_pj`` and its breakdown columns filled in."""
    bd = {t.column: t.pj for t in terms}
    return replace(r, energy_pj=sum(bd.values()), energy_breakdown=bd)


def energy_sources(arch: Architecture, tab: EnergyTable | None = None) -> dict:
    """{column: source description} for every energy column of ``arch``."""
    tab = tab or energy_table(arch)
    dummy = {(l.name, op): [0, 0] for l in arch.memory for op in l.holds}
    out = {}
    for t in _terms(arch, tab, 0, 0, 0, dummy):
        out[t.column] = " + ".join(tech.SOURCES.get(s, s) for s in t.source.split("+"))
    return out
