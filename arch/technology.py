"""Technology tables: energy per operation and per access, area, node scaling, with
their sources. Every figure tilesim uses for energy or area comes from here or from an
explicit override in the architecture YAML; a figure that cannot be derived is an
:class:`ArchError` naming the key path, never a silent default.

Sources (each figure below is tagged with one of these keys):

* ``horowitz2014``: M. Horowitz, "Computing's Energy Problem (and what we can do about
  it)", ISSCC 2014, 45 nm, 0.9 V. Energy: 8-bit add 0.03 pJ, 32-bit add 0.1 pJ, 8-bit
  mult 0.2 pJ, 32-bit mult 3.1 pJ, fp16 add 0.4 / mult 1.1 pJ, fp32 add 0.9 / mult
  3.7 pJ; SRAM 64-bit read 10 pJ (8 KB), 20 pJ (32 KB), 100 pJ (1 MB); DRAM 1.3-2.6 nJ
  per 64-bit access. Area (um^2): 8-bit add 36, mult 282; 32-bit add 137, mult 3495;
  fp16 add 1360, mult 1640; fp32 add 4184, mult 7700.
* ``horowitz2014-derived``: widths Horowitz does not list, interpolated from his figures
  (integer multiply ~ bits^2 between 8 and 32 bits, add ~ bits; bf16 as fp16, tf32 as
  fp32; 4-bit as a quarter / half of 8-bit).
* ``cacti-sqrt``: SRAM energy per access between and beyond Horowitz's three sizes:
  piecewise log-log interpolation through them; outside [8 KB, 1 MB] it follows
  sqrt(capacity), the CACTI-like first-order law (bit-line and word-line lengths of a
  square array grow with sqrt(capacity); Horowitz's 8 KB -> 32 KB step is exactly 2x).
  A banked level is costed per bank (capacity / banks). Writes cost as much as reads.
* ``stillmaker2017``: node scaling, A. Stillmaker and B. Baas, "Scaling equations for the
  accurate prediction of CMOS device performance from 180 nm to 7 nm", Integration 58
  (2017). We use the first-order form energy ~ C V^2 with C ~ node and their nominal
  supply voltages per node (PTM/ITRS): factor = (node / 45) (V(node) / V(45))^2;
  area ~ (node / 45)^2. Their fitted polynomials differ from this by tens of percent
  below 22 nm; this is a first-order estimate.
* ``eyeriss2016``: Y.-H. Chen, J. Emer, V. Sze, "Eyeriss: A Spatial Architecture for
  Energy-Efficient Dataflow for CNNs", ISCA 2016, Fig. / Table of normalised energy per
  16-bit access: MAC 1x, register file 1x, inter-PE (array) 2x, global buffer 6x,
  DRAM 200x. Used for array-internal movement: one operand hop between neighbouring
  PEs costs 2x a MAC.
* ``mistry2007``: K. Mistry et al., "A 45nm Logic Technology ...", IEDM 2007: 6T SRAM
  cell 0.346 um^2; with an assumed 70 % array efficiency (periphery) -> area per bit.
* ``assumption``: SRAM leakage, 1.0 uW per KiB at 45 nm (an order-of-magnitude figure
  for low-leakage SRAM); scaled like area. Override with ``memory[i].leakage``.
* ``yaml``: an explicit override in the architecture file.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import ArchError
from .schema import Architecture, MemoryLevel

SOURCES = {
    "horowitz2014": "Horowitz, ISSCC 2014, 45 nm",
    "horowitz2014-derived": "interpolated from Horowitz, ISSCC 2014, 45 nm",
    "cacti-sqrt": "Horowitz ISSCC 2014 SRAM points, log-log interpolated, sqrt(capacity) beyond",
    "stillmaker2017": "Stillmaker & Baas 2017 nominal voltages, C*V^2 node scaling",
    "eyeriss2016": "Chen, Emer, Sze, ISCA 2016 normalised energy (inter-PE 2x MAC)",
    "mistry2007": "Mistry et al., IEDM 2007, 45 nm 6T cell 0.346 um^2, 70 % efficiency",
    "assumption": "assumption: SRAM leakage 1.0 uW/KiB at 45 nm",
    "yaml": "explicit override in the architecture YAML",
    "area-node": "area scaled by (node / 45 nm)^2",
}

# ---- Horowitz ISSCC 2014, 45 nm ---------------------------------------------------------
ADD_PJ = {"int8": (0.03, "horowitz2014"), "int32": (0.1, "horowitz2014"),
          "fp16": (0.4, "horowitz2014"), "fp32": (0.9, "horowitz2014"),
          "int4": (0.015, "horowitz2014-derived"), "uint8": (0.03, "horowitz2014"),
          "int16": (0.05, "horowitz2014-derived"), "bf16": (0.4, "horowitz2014-derived"),
          "tf32": (0.9, "horowitz2014-derived")}
MULT_PJ = {"int8": (0.2, "horowitz2014"), "int32": (3.1, "horowitz2014"),
           "fp16": (1.1, "horowitz2014"), "fp32": (3.7, "horowitz2014"),
           "int4": (0.05, "horowitz2014-derived"), "uint8": (0.2, "horowitz2014"),
           "int16": (0.8, "horowitz2014-derived"), "bf16": (1.1, "horowitz2014-derived"),
           "tf32": (3.7, "horowitz2014-derived")}
ADD_UM2 = {"int4": 18, "int8": 36, "uint8": 36, "int16": 68, "int32": 137, "fp16": 1360,
           "bf16": 1360, "fp32": 4184, "tf32": 4184}
MULT_UM2 = {"int4": 71, "int8": 282, "uint8": 282, "int16": 1128, "int32": 3495, "fp16": 1640,
            "bf16": 1640, "fp32": 7700, "tf32": 7700}
SRAM_64BIT_PJ = ((8 * 1024, 10.0), (32 * 1024, 20.0), (1024 * 1024, 100.0))  # bytes, pJ
DRAM_64BIT_PJ = (1300.0 + 2600.0) / 2   # midpoint of Horowitz's 1.3-2.6 nJ; not node-scaled
SRAM_CELL_UM2 = 0.346                   # Mistry 2007, 45 nm
SRAM_EFFICIENCY = 0.7
SRAM_LEAK_W_PER_KIB = 1.0e-6            # assumption, 45 nm
HOP_X_MAC = 2.0                         # Eyeriss 2016: inter-PE move = 2x MAC

# nominal supply voltage per node (Stillmaker & Baas 2017, PTM / ITRS)
VDD = {180: 1.8, 130: 1.3, 90: 1.2, 65: 1.1, 45: 1.0, 32: 0.9, 22: 0.8, 16: 0.7, 14: 0.7,
       10: 0.75, 7: 0.7}


@dataclass(frozen=True)
class Figure:
    """One technology figure: a value, its unit and the key of its source."""
    value: float
    unit: str
    source: str


def _vdd(node: float) -> float:
    nodes = sorted(VDD)
    if not nodes[0] <= node <= nodes[-1]:
        raise ArchError(f"technology: {node:g} nm is outside the node-scaling table "
                        f"({nodes[0]}-{nodes[-1]} nm)",
                        fix="give a node between 7 nm and 180 nm, or override every energy "
                            "(mac_energy, hop_energy, read_energy/write_energy, leakage)")
    for lo, hi in zip(nodes, nodes[1:]):
        if lo <= node <= hi:  # linear in node between table points
            return VDD[lo] + (VDD[hi] - VDD[lo]) * (node - lo) / (hi - lo)
    return VDD[nodes[-1]]


def energy_scale(node: float) -> float:
    """Energy factor from 45 nm to ``node`` (Stillmaker & Baas voltages, C V^2)."""
    return (node / 45.0) * (_vdd(node) / VDD[45]) ** 2


def area_scale(node: float) -> float:
    return (node / 45.0) ** 2


def sram_access_pj_45nm(capacity_bytes: float) -> float:
    """pJ per 64-bit access of an SRAM of ``capacity_bytes`` at 45 nm (``cacti-sqrt``)."""
    pts = SRAM_64BIT_PJ
    for size, pj in pts:
        if capacity_bytes == size:
            return pj
    if capacity_bytes <= pts[0][0]:
        return pts[0][1] * math.sqrt(capacity_bytes / pts[0][0])
    if capacity_bytes >= pts[-1][0]:
        return pts[-1][1] * math.sqrt(capacity_bytes / pts[-1][0])
    for (s0, e0), (s1, e1) in zip(pts, pts[1:]):
        if s0 <= capacity_bytes <= s1:
            x = math.log(capacity_bytes / s0) / math.log(s1 / s0)
            return math.exp(math.log(e0) + x * math.log(e1 / e0))
    raise AssertionError("unreachable")


def _prec_figure(table: dict, prec: str, what: str, path: str) -> tuple[float, str]:
    if prec not in table:
        raise ArchError(f"{path}: no {what} energy for precision {prec!r} in the technology "
                        "table", fix=f"give {path} explicitly in pJ")
    return table[prec]


def mac_energy(arch: Architecture) -> Figure:
    """pJ per MAC: multiply at the input x weight precision plus accumulate."""
    a = arch.array
    if a.mac_energy is not None:
        return Figure(a.mac_energy, "pJ/MAC", "yaml")
    p = arch.precision
    wide = max((p.input, p.weight), key=lambda q: MULT_PJ.get(q, (0, ""))[0])
    m, s1 = _prec_figure(MULT_PJ, wide, "multiply", "compute.arrays[0].mac_energy")
    ad, s2 = _prec_figure(ADD_PJ, p.accumulator, "add", "compute.arrays[0].mac_energy")
    src = "horowitz2014" if s1 == s2 == "horowitz2014" else "horowitz2014-derived"
    return Figure((m + ad) * energy_scale(arch.technology), "pJ/MAC", f"{src}+stillmaker2017")


def hop_energy(arch: Architecture) -> Figure:
    """pJ for one operand moving between neighbouring PEs."""
    a = arch.array
    if a.hop_energy is not None:
        return Figure(a.hop_energy, "pJ/hop", "yaml")
    return Figure(HOP_X_MAC * mac_energy(arch).value, "pJ/hop", "eyeriss2016")


def vector_op_energy(arch: Architecture) -> Figure:
    """pJ per vector-unit op (an add at the output precision)."""
    p = arch.precision
    out = p.output or p.input
    ad, src = _prec_figure(ADD_PJ, out, "add", "precision.output")
    return Figure(ad * energy_scale(arch.technology), "pJ/op", f"{src}+stillmaker2017")


def level_energy(arch: Architecture, index: int) -> tuple[Figure, Figure]:
    """(read, write) pJ per byte of memory level ``index``."""
    lvl: MemoryLevel = arch.memory[index]
    path = f"memory[{index}]"
    bits = lvl.access_bits or 64
    if lvl.read_energy is not None or lvl.write_energy is not None:
        r = lvl.read_energy if lvl.read_energy is not None else lvl.write_energy
        w = lvl.write_energy if lvl.write_energy is not None else lvl.read_energy
        return (Figure(r * 8 / bits, "pJ/B", "yaml"), Figure(w * 8 / bits, "pJ/B", "yaml"))
    if lvl.access_bits is not None:
        raise ArchError(f"{path}.access_bits is given without read_energy/write_energy",
                        fix=f"add {path}.read_energy (pJ per access)")
    if lvl.kind == "dram":
        e = DRAM_64BIT_PJ / 8
        return Figure(e, "pJ/B", "horowitz2014"), Figure(e, "pJ/B", "horowitz2014")
    per_bank = lvl.size / lvl.banks
    e = sram_access_pj_45nm(per_bank) * energy_scale(arch.technology) / 8
    f = Figure(e, "pJ/B", "cacti-sqrt+stillmaker2017")
    return f, f


def level_leakage_w(arch: Architecture, index: int) -> Figure:
    """Static power of on-chip level ``index`` in W (DRAM: 0, not modelled)."""
    lvl = arch.memory[index]
    if lvl.leakage is not None:
        return Figure(lvl.leakage, "W", "yaml")
    if lvl.kind == "dram":
        return Figure(0.0, "W", "not modelled (off-chip)")
    copies = arch.pes if lvl.scope == "pe" else 1   # a scope: pe level's size is per PE
    return Figure(copies * lvl.size / 1024 * SRAM_LEAK_W_PER_KIB * area_scale(arch.technology),
                  "W", "assumption+stillmaker2017")


def area_mm2(arch: Architecture) -> dict[str, Figure]:
    """First-order die area by component (mm^2): PE arrays (multiplier + adder per PE,
    Horowitz 45 nm areas), vector unit (one adder per lane), SRAM (cell area / 70 %),
    all scaled by (node / 45)^2. Excludes control, NoC wires, I/O and DRAM."""
    p = arch.precision
    s = area_scale(arch.technology)
    a = arch.array
    wide = max((p.input, p.weight), key=lambda q: MULT_UM2.get(q, 0))
    pe_um2 = MULT_UM2[wide] + ADD_UM2[p.accumulator]
    out = {"array": Figure(a.rows * a.cols * a.count * pe_um2 * s / 1e6, "mm2",
                           "horowitz2014+area-node"),
           "vector": Figure(arch.compute.vector.lanes * ADD_UM2[p.output or p.input] * s / 1e6,
                            "mm2", "horowitz2014+area-node")}
    for lvl in arch.memory[1:]:
        bits = lvl.size * 8 * (arch.pes if lvl.scope == "pe" else 1)
        out[lvl.name] = Figure(bits * SRAM_CELL_UM2 / SRAM_EFFICIENCY * s / 1e6, "mm2",
                               "mistry2007+area-node")
    return out
