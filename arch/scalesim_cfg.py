"""Read a SCALE-Sim ``.cfg`` file as an Architecture.

Every key SCALE-Sim v2/v3 defines is either honoured or named in one warning:

========================================  ==============================================
key                                       tilesim
========================================  ==============================================
[general] run_name                        the architecture's name
[architecture_presets] ArrayHeight,       array rows, cols, dataflow
ArrayWidth, Dataflow
{Ifmap,Filter,Ofmap}SramSzkB              three double-buffered SRAMs holding inputs,
                                          weights, outputs (SCALE-Sim's kB is 1024 bytes)
Bandwidth                                 DRAM words per cycle, 1-byte words (int8), when
                                          [run_presets] InterfaceBandwidth is USER (or
                                          absent); 10 when absent
[run_presets] InterfaceBandwidth          USER: the Bandwidth above; CALC: SCALE-Sim runs
                                          stall-free and reports the bandwidth it needed,
                                          which is tilesim's ``unlimited`` DRAM bandwidth
                                          (Bandwidth is then ignored)
{Ifmap,Filter,Ofmap}Offset                ignored: trace addresses, no effect on timing
ReadRequestBuffer, WriteRequestBuffer,    ignored: the Ramulator memory back end and SRAM
MemoryBanks, UseRamulatorTrace            banking are not modelled
[layout] (custom layouts, SRAM banks)     ignored: on-chip layouts and bank conflicts are
                                          not modelled
[sparsity] SparsitySupport               true: the array skips N:M weight zeros
                                          (``zeros: skip``); the N:M structure itself is
                                          the topology's column (workloads.scalesim_csv)
SparseRep                                 the weights' format in DRAM and the filter SRAM:
                                          ellpack_block -> nm, csr / csc -> csr
OptimizedMapping, BlockSize,              true: ignored with a warning (SCALE-Sim then
RandomNumberGeneratorSeed                 draws each filter's N at random; tilesim keeps
                                          the topology's N:M); false: honoured
any other key                             ignored, named as unknown to SCALE-Sim
========================================  ==============================================

SCALE-Sim has no clock, technology, precision or vector unit; the values filled in (1 GHz,
28 nm, int8 operands and outputs with int32 accumulators, a vector unit as wide as the
array) are announced in a second warning and written into the architecture's
``description``, so the run's ``arch.yaml`` records them with the values.
"""
from __future__ import annotations

import configparser
import functools
import warnings
from pathlib import Path

from tilesim._input import parse_int_text, parse_real_text

from .errors import ArchError
from .schema import COUNT_MAX
from .units import BPC_MAX, BPC_MIN, SIZE_MAX

REQUIRED = ("ArrayHeight", "ArrayWidth", "IfmapSramSzkB", "FilterSramSzkB", "OfmapSramSzkB",
            "Dataflow")
#: keys read, per section
HONOURED = {"general": {"run_name"},
            "architecture_presets": set(REQUIRED) | {"Bandwidth"},
            "run_presets": {"InterfaceBandwidth"},
            "sparsity": {"SparsitySupport", "SparseRep", "OptimizedMapping"}}
#: SCALE-Sim's SparseRep -> tilesim's weight format (arch.schema.FORMATS)
SPARSE_REP = {"ellpack_block": "nm", "csr": "csr", "csc": "csr"}
#: keys SCALE-Sim defines that tilesim does not model, with the reason
NOT_MODELLED = {
    "IfmapOffset": "trace addresses", "FilterOffset": "trace addresses",
    "OfmapOffset": "trace addresses", "ReadRequestBuffer": "Ramulator request queues",
    "WriteRequestBuffer": "Ramulator request queues", "MemoryBanks": "SRAM banking",
    "UseRamulatorTrace": "Ramulator back end", "IfmapCustomLayout": "on-chip layout",
    "FilterCustomLayout": "on-chip layout", "IfmapSRAMBankBandwidth": "SRAM banking",
    "IfmapSRAMBankNum": "SRAM banking", "IfmapSRAMBankPort": "SRAM banking",
    "FilterSRAMBankBandwidth": "SRAM banking", "FilterSRAMBankNum": "SRAM banking",
    "FilterSRAMBankPort": "SRAM banking",
    "BlockSize": "only with OptimizedMapping: the topology's N:M is kept",
    "RandomNumberGeneratorSeed": "only with OptimizedMapping: the topology's N:M is kept"}
ASSUMED = ("clock 1 GHz, technology 28 nm, int8 inputs, weights and outputs (SCALE-Sim's "
           "1-byte words) with int32 accumulators, a vector unit of {lanes} lanes (the array "
           "width)")


def cfg_dict(path: Path, text: str) -> dict:
    """The architecture dict (our YAML form) of the SCALE-Sim config ``text`` read from
    ``path``; :func:`arch.loader.load` validates it (this module does not import the
    loader: no import circle)."""
    src = str(path)
    text = text.removeprefix("\ufeff")   # a UTF-8 byte-order mark (Windows editors)
    # no interpolation: a '%' in a value is text, not a reference to another key
    cp = configparser.ConfigParser(strict=True, interpolation=None)
    cp.optionxform = str  # keep key case
    try:
        cp.read_string(text, source=src)
    except configparser.Error as e:
        raise ArchError(f"not a valid SCALE-Sim config: {e.message.splitlines()[0]}", source=src,
                        fix="compare with SCALE-Sim's configs/scale.cfg") from None
    sec = "architecture_presets"
    if not cp.has_section(sec):
        raise ArchError(f"missing section [{sec}]", source=src,
                        fix="a SCALE-Sim config needs [architecture_presets] with ArrayHeight, ...")
    p = cp[sec]
    vals = {}
    for key in REQUIRED + ("Bandwidth",):
        if key not in p:
            if key == "Bandwidth":
                continue
            raise ArchError(f"[{sec}] {key}: required key is missing", source=src,
                            fix=f"add a line '{key}: ...'")
        vals[key] = p[key].strip()
    fail = functools.partial(ArchError, source=src)
    ints = {key: parse_int_text(vals[key], f"[{sec}] {key}", fail, lo=1,
                                hi=COUNT_MAX if key.startswith("Array") else SIZE_MAX // 1024)
            for key in ("ArrayHeight", "ArrayWidth", "IfmapSramSzkB", "FilterSramSzkB",
                        "OfmapSramSzkB")}
    df = vals["Dataflow"].lower()
    if df not in ("os", "ws", "is"):
        raise ArchError(f"[{sec}] Dataflow: {vals['Dataflow']!r} is not os, ws or is", source=src,
                        fix="use Dataflow: os, ws or is")
    mode = "USER"
    if cp.has_option("run_presets", "InterfaceBandwidth"):
        mode = cp.get("run_presets", "InterfaceBandwidth").strip().upper()
        if mode not in ("USER", "CALC"):
            raise ArchError(f"[run_presets] InterfaceBandwidth: {mode!r} is not USER or CALC",
                            source=src, fix="use InterfaceBandwidth: USER (the Bandwidth "
                            "key) or CALC (stall-free: unlimited DRAM bandwidth)")
    bw, assumed = 10.0, []
    if "Bandwidth" not in vals and mode == "USER":
        assumed.append("Bandwidth 10 words per cycle (SCALE-Sim's default)")
    if "Bandwidth" in vals:
        bw = parse_real_text(vals["Bandwidth"], f"[{sec}] Bandwidth (words per cycle)", fail,
                             lo=BPC_MIN, hi=BPC_MAX)
    sparse, rep = False, None
    if cp.has_section("sparsity"):
        sp = cp["sparsity"]
        flag = sp.get("SparsitySupport", "false").strip().lower()
        if flag not in ("true", "false"):
            raise ArchError(f"[sparsity] SparsitySupport: {sp['SparsitySupport']!r} is not "
                            "true or false", source=src, fix="write SparsitySupport: true or false")
        sparse = flag == "true"
        if sparse and "SparseRep" in sp:
            rep = sp["SparseRep"].strip().lower()
            if rep not in SPARSE_REP:
                raise ArchError(f"[sparsity] SparseRep: {sp['SparseRep']!r} is not one of "
                                f"{', '.join(SPARSE_REP)}", source=src,
                                fix="use SparseRep: ellpack_block, csr or csc")
        if sparse and sp.get("OptimizedMapping", "false").strip().lower() == "true":
            assumed.append("[sparsity] OptimizedMapping true read as false: SCALE-Sim draws "
                           "each filter's N at random; tilesim keeps the topology's N:M")
    name = cp.get("general", "run_name", fallback=path.stem).strip()
    groups: dict = {}  # (section, reason) -> ["key=value", ...], in file order
    for section in cp.sections():
        for key, value in cp.items(section, raw=True):
            if key in HONOURED.get(section, ()):
                if key == "Bandwidth" and mode == "CALC":
                    why = "InterfaceBandwidth is CALC: unlimited"
                else:
                    continue
            else:
                why = NOT_MODELLED.get(key, "unknown to SCALE-Sim")
            groups.setdefault((section, why), []).append(f"{key}={value.strip()}")
    ignored = [f"[{sec}] {', '.join(kv)} ({why})" for (sec, why), kv in groups.items()]
    if ignored:
        warnings.warn(f"{src}: SCALE-Sim keys not modelled, ignored: " + "; ".join(ignored),
                      UserWarning, stacklevel=2)
    assumed.insert(0, ASSUMED.format(lanes=ints["ArrayWidth"]))
    assumption = "; ".join(assumed)
    warnings.warn(f"{src}: assumed (SCALE-Sim does not say): {assumption}; recorded in the "
                  "architecture's description (arch.yaml)", UserWarning, stacklevel=2)
    data = {
        "version": 1, "name": name,
        "description": f"read from SCALE-Sim config {path.name}; assumed (SCALE-Sim does not "
                       f"say): {assumption}" + (f"; ignored: {'; '.join(ignored)}"
                                               if ignored else ""),
        "clock": "1 GHz", "technology": "28 nm",
        # SCALE-Sim runs each layer on its own: every ifmap read and ofmap written via DRAM
        "fusion": "none",
        "precision": {"input": "int8", "weight": "int8", "accumulator": "int32", "output": "int8"},
        "compute": {"arrays": [{"name": "array", "rows": ints["ArrayHeight"],
                                "cols": ints["ArrayWidth"], "dataflow": df, "count": 1}],
                    "vector": {"lanes": ints["ArrayWidth"]}},
        "memory": [
            {"name": "dram", "kind": "dram", "holds": ["input", "weight", "output"],
             "bandwidth": "unlimited" if mode == "CALC" else f"{bw} B/cycle"},
            {"name": "ifmap_sram", "kind": "sram", "holds": ["input"],
             "size": f"{ints['IfmapSramSzkB']} KiB", "double_buffered": True},
            {"name": "filter_sram", "kind": "sram", "holds": ["weight"],
             "size": f"{ints['FilterSramSzkB']} KiB", "double_buffered": True},
            {"name": "ofmap_sram", "kind": "sram", "holds": ["output"],
             "size": f"{ints['OfmapSramSzkB']} KiB", "double_buffered": True},
        ],
    }
    if sparse:
        data["compute"]["arrays"][0]["zeros"] = "skip"
        if rep is not None:
            data["memory"][0]["format"] = {"weight": SPARSE_REP[rep]}
            data["memory"][2]["format"] = SPARSE_REP[rep]
    return data
