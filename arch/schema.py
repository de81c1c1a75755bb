"""The accelerator schema: typed, frozen pydantic models that reject unknown keys.

YAML (all sizes, bandwidths and clocks as unit strings)::

    version: 1
    name: tpu_v1
    clock: 700 MHz
    technology: 28 nm
    precision: {input: int8, weight: int8, accumulator: int32, output: int8}
    compute:
      arrays:
        - {name: mxu, rows: 256, cols: 256, dataflow: ws, count: 1, preload: overlapped}
      vector: {lanes: 256}
    memory:                        # ordered: DRAM first, then on-chip buffers
      - {name: dram, kind: dram, holds: [input, weight, output], bandwidth: 34 GB/s}
      - {name: unified_buffer, kind: sram, holds: [input, output], size: 24 MiB,
         double_buffered: true}
"""
from __future__ import annotations

import math
from functools import cached_property
from typing import Annotated, Literal, get_args

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, ValidationInfo,
                      WithJsonSchema, model_validator)

from . import units, validate

OPERANDS = ("input", "weight", "output")
PRECISION_BYTES = {"int4": 0.5, "int8": 1, "uint8": 1, "int16": 2, "fp16": 2, "bf16": 2,
                   "int32": 4, "fp32": 4, "tf32": 4}


def _rate(v):
    if isinstance(v, Rate):
        return v
    if isinstance(v, dict):
        return Rate(**v)
    val, per = units.parse_rate(v)
    return Rate(value=val, per=per)


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class Rate(_Frozen):
    """A bandwidth, either per second or per cycle."""
    value: float
    per: Literal["B/s", "B/cycle"]

    def bytes_per_cycle(self, clock_hz: float) -> float:
        return self.value if self.per == "B/cycle" else self.value / clock_hz


class Latency(_Frozen):
    """An access latency, in cycles or in ns (converted with the clock)."""
    value: float
    per: Literal["cycles", "ns"]

    def cycles(self, clock_hz: float) -> int:
        return int(self.value) if self.per == "cycles" else math.ceil(self.value * clock_hz / 1e9)


def _latency(v):
    if isinstance(v, Latency):
        return v
    if isinstance(v, dict):
        return Latency(**v)
    val, per = units.parse_latency(v)
    return Latency(value=val, per=per)


def _json(kind: str) -> WithJsonSchema:
    """How a unit-string field appears in the JSON Schema (``tilesim schema``)."""
    return WithJsonSchema(units.json_schema_of(kind))


Size = Annotated[int, BeforeValidator(units.parse_size), PlainSerializer(units.fmt_size),
                 _json("size")]
Clock = Annotated[float, BeforeValidator(units.parse_freq), PlainSerializer(units.fmt_freq),
                  _json("clock")]
Node = Annotated[float, BeforeValidator(units.parse_node), PlainSerializer(lambda v: f"{v:g} nm"),
                 _json("node")]
Bandwidth = Annotated[Rate, BeforeValidator(_rate),
                      PlainSerializer(lambda r: units.fmt_rate(r.value, r.per)), _json("bandwidth")]
#: a count in an architecture (rows, cols, lanes, banks, ...): a whole number, 1 .. 65,536
COUNT_MAX = 65_536
PositiveInt = Annotated[int, Field(gt=0, le=COUNT_MAX, strict=True)]
Energy = Annotated[float, BeforeValidator(units.parse_energy), PlainSerializer(units.fmt_energy),
                   _json("energy")]
Power = Annotated[float, BeforeValidator(units.parse_power), PlainSerializer(units.fmt_power),
                  _json("power")]
LatencyT = Annotated[Latency, BeforeValidator(_latency),
                     PlainSerializer(lambda l: units.fmt_latency(l.value, l.per)), _json("latency")]
#: stationary preload of a ws/is array (:mod:`mapper.dataflow`): ``serial`` shifts the
#: stationary operand in before each fold (SCALE-Sim); ``overlapped`` shifts the next
#: fold's into shadow registers while the current fold streams (TPU v1)
Preload = Literal["serial", "overlapped"]
#: network schedules (sim/planner.py): every activation through DRAM, or kept on chip
Fusion = Literal["none", "residency", "depth-first"]
PRELOADS = get_args(Preload)
#: storage formats of a memory level (sim/sparse.py has each one's bytes and metadata)
Format = Literal["dense", "bitmask", "rle", "csr", "nm"]
FORMATS = get_args(Format)
#: what an array does with zero operands: ``none`` computes them, ``gate`` skips the
#: MAC's energy (not its cycle), ``skip`` skips the cycle too where the zeros are
#: structured (N:M weights under os/ws/is; unstructured zeros are gated)
Zeros = Literal["none", "gate", "skip"]
PrecisionName = Literal["int4", "int8", "uint8", "int16", "fp16", "bf16", "int32", "fp32", "tf32"]


class Precision(_Frozen):
    """Operand precisions. ``output`` is what a layer writes back (the next layer's input)."""
    input: PrecisionName
    weight: PrecisionName
    accumulator: PrecisionName
    output: PrecisionName | None = None

    @property
    def bytes(self) -> dict[str, float]:
        return {"input": PRECISION_BYTES[self.input], "weight": PRECISION_BYTES[self.weight],
                "accumulator": PRECISION_BYTES[self.accumulator],
                "output": PRECISION_BYTES[self.output or self.input]}


class SystolicArray(_Frozen):
    """An R x C systolic array. ``count`` identical arrays share the memory hierarchy."""
    name: str = "array"
    rows: PositiveInt
    cols: PositiveInt
    dataflow: Literal["os", "ws", "is", "kc", "kcr", "kco", "rs"]
    count: PositiveInt = 1
    # how a ws/is fold's stationary operand is loaded (mapper/dataflow.py): serial (before
    # each fold, SCALE-Sim's convention) or overlapped (double-buffered: the next fold's
    # loads while the current one streams); no effect on os
    preload: Preload = "serial"
    # optional (energy/mapspace): a configurable array lists every dataflow it supports
    # (mapper/dataflow.py: os, ws, is; dw, channel-parallel depthwise, which applies to
    # layers with one filter per group only; kc, K x C with the filter window in time;
    # kcr, K x C with the R*S taps of each PE in its weight register file, in the fold;
    # kco, K x C with the weights read from the buffer at every use, one read shared by
    # the `count` arrays as pixel lanes, each partial sum kept in the column's output
    # register over the whole reduction);
    # the mapper picks one per layer. Energy overrides in pJ replace the technology
    # table's figures (arch/technology.py).
    dataflows: list[Literal["os", "ws", "is", "dw", "kc", "kcr", "kco", "rs"]] | None = None
    mac_energy: Energy | None = None   # one MAC at the array's precision
    hop_energy: Energy | None = None   # one operand moving one PE to the next
    # zero operands (sim/sparse.py): none (computed), gate (no MAC energy), skip (N:M
    # weight zeros take no cycle under os/ws/is; other zeros gated); unset: none
    zeros: Zeros | None = None

    @model_validator(mode="after")
    def _check_dataflows(self):
        if self.dataflows is not None and self.dataflow not in self.dataflows:
            raise ValueError(f"dataflows {self.dataflows} does not include dataflow "
                             f"{self.dataflow!r}; add it to the list")
        return self


class VectorUnit(_Frozen):
    """Runs pooling, activation and elementwise ops: ``lanes`` elementary ops per cycle."""
    lanes: PositiveInt


class Compute(_Frozen):
    arrays: Annotated[list[SystolicArray], Field(min_length=1)]
    vector: VectorUnit


class MemoryLevel(_Frozen):
    """One level of the hierarchy: DRAM (unbounded unless ``size``) or an on-chip buffer.

    ``bandwidth`` is the level's total read + write bandwidth; an on-chip level without
    one is assumed to feed the array at its full rate. ``double_buffered`` halves the
    usable capacity per tile and lets the next tile's load overlap the current compute.

    DRAM only (read by the discrete-event engine, :mod:`sim.des`; optional):
    ``channels`` splits ``bandwidth`` (the total) evenly over that many channels,
    transfers dealt to them round-robin, one tile transfer per channel (default 1); ``latency`` is the access latency
    paid once per transfer before its data moves, in cycles or ns (default 0);
    ``dma_engines`` is how many transfers may be in flight at once (default 2, so a
    write-back need not queue behind a prefetch's latency).

    ``scope``: ``shared`` (the default: one buffer that the whole array reads) or ``pe``
    (one instance inside every PE: a register file or scratchpad; ``size`` is per PE).
    A ``pe`` level sits below the array's spatial unrolling, so it is listed after every
    shared level; each operand may have at most one; it holds the operand values the
    PE's MACs read (and, for outputs, the partial sums they write) and is filled from
    the innermost shared level holding that operand (see :mod:`sim.cost`).
    """
    name: str
    kind: Literal["dram", "sram", "regfile"]
    scope: Literal["shared", "pe"] = "shared"
    holds: Annotated[list[Literal["input", "weight", "output"]], Field(min_length=1)]
    size: Size | None = None
    bandwidth: Bandwidth | None = None
    banks: PositiveInt = 1
    double_buffered: bool = False
    # optional energy overrides: pJ per access of ``access_bits`` bits (default 64), and
    # static (leakage) power; absent ones are derived from arch/technology.py, except that
    # a level given only one of read_energy / write_energy uses it for both
    read_energy: Energy | None = None
    write_energy: Energy | None = None
    access_bits: PositiveInt | None = None
    leakage: Power | None = None
    channels: PositiveInt | None = None
    latency: LatencyT | None = None
    dma_engines: PositiveInt | None = None
    # storage format (sim/sparse.py): one for every operand it holds, or a map operand ->
    # format; unset: dense. ``nm`` holds N:M-structured weights only
    format: Format | dict[Literal["input", "weight", "output"], Format] | None = None

    def format_of(self, op: str) -> str:
        """The format ``op`` is stored in at this level (``dense`` when none is given)."""
        f = self.format
        if f is None:
            return "dense"
        return f if isinstance(f, str) else f.get(op, "dense")

    @model_validator(mode="after")
    def _check(self):
        if len(set(self.holds)) != len(self.holds):
            raise ValueError(f"holds lists an operand twice: {self.holds}; list each operand once")
        if self.kind != "dram" and self.size is None:
            raise ValueError(f"on-chip level {self.name!r} has no size; add e.g. size: 256 KiB")
        if self.kind == "dram" and self.bandwidth is None:
            raise ValueError(f"DRAM level {self.name!r} has no bandwidth; add e.g. "
                             "bandwidth: 34 GB/s (or unlimited)")
        return self


class Architecture(_Frozen):
    """A validated accelerator. Sizes in bytes, clock in Hz; see :mod:`arch.schema`."""
    version: Literal[1]
    name: str
    description: str = ""
    clock: Clock
    technology: Node
    precision: Precision
    compute: Compute
    memory: Annotated[list[MemoryLevel], Field(min_length=2)]
    # the network schedule by default (``--fusion`` overrides; sim/planner.py): "residency"
    # keeps activations on chip where they fit, "none" sends every one through DRAM,
    # "depth-first" runs stacks of layers strip by strip where residency spills
    fusion: Fusion = "residency"

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo):
        # arch.loader defers these checks to name the key path and line of each problem
        if not (info.context or {}).get("defer_semantic_checks"):
            for path, msg, fix in semantic_problems(self):
                raise ValueError(f"{path}: {msg}; {fix}")
        return self

    # ---- conveniences ---------------------------------------------------------------
    @property
    def array(self) -> SystolicArray:
        return self.compute.arrays[0]

    @property
    def dram(self) -> MemoryLevel:
        return self.memory[0]

    @property
    def onchip(self) -> list[MemoryLevel]:
        """The shared on-chip levels (``scope: shared``), outermost first: the levels
        that hold tiles."""
        return [m for m in self.memory[1:] if m.scope == "shared"]

    @property
    def pe_levels(self) -> list[MemoryLevel]:
        """The per-PE levels (``scope: pe``): one instance in every PE."""
        return [m for m in self.memory[1:] if m.scope == "pe"]

    @property
    def pes(self) -> int:
        """PEs of all arrays: the instance count of a ``scope: pe`` level."""
        a = self.array
        return a.rows * a.cols * a.count

    @cached_property
    def level_bpc(self) -> tuple[float, ...]:
        """Bandwidth of every memory level in bytes per cycle, resolved once at the
        clock; ``inf`` for an unlimited or unspecified (on-chip) bandwidth."""
        return tuple(math.inf if m.bandwidth is None else m.bandwidth.bytes_per_cycle(self.clock)
                     for m in self.memory)

    @property
    def dram_bpc(self) -> float:
        """DRAM bandwidth in bytes per cycle (``inf``: unlimited)."""
        return self.level_bpc[0]

    def bytes_per_cycle(self, level: MemoryLevel) -> float:
        """Bandwidth of ``level`` (one of ``memory``) in bytes per cycle (``inf``: unlimited)."""
        return self.level_bpc[self.memory.index(level)]

    @cached_property
    def hidden(self) -> dict:
        """operand -> True when every on-chip level holding it is double-buffered, so its
        DRAM transfers can overlap compute (all but the first / last tile)."""
        return {op: all(m.double_buffered for m in self.onchip if op in m.holds)
                for op in OPERANDS}

    @property
    def dram_channels(self) -> int:
        """DRAM channels (``memory[0].channels``, default 1)."""
        return self.dram.channels or 1

    @property
    def dma_engines(self) -> int:
        """Concurrent DRAM transfers (``memory[0].dma_engines``, default 2)."""
        return self.dram.dma_engines or 2

    @property
    def dram_latency_cycles(self) -> int:
        """DRAM access latency in cycles (``memory[0].latency``, default 0)."""
        return 0 if self.dram.latency is None else self.dram.latency.cycles(self.clock)

    @property
    def peak_macs_per_cycle(self) -> int:
        a = self.array
        return a.rows * a.cols * a.count

    def to_yaml_dict(self) -> dict:
        """A plain dict with unit strings, loadable again by :func:`arch.load`."""
        d = self.model_dump(mode="json", exclude_none=True)
        for m in d["memory"]:   # the default scope is left implicit, as files write it
            if m.get("scope") == "shared":
                del m["scope"]
        return d

    # ---- building in code -------------------------------------------------------------
    @classmethod
    def from_dict(cls, data, source: str = "<dict>", lines: dict | None = None) -> Architecture:
        """Validate a dict of the YAML form (unit strings: ``"700 MHz"``, ``"24 MiB"``) as
        a file is validated; errors name ``source``, the key path and a fix."""
        return validate.build(cls, data, source, lines, semantic_problems)

    def replace(self, changes, value=validate.UNSET, /) -> Architecture:
        """A new, validated Architecture with values changed by key path::

            a.replace("memory[1].size", "2 MiB")
            a.replace({"memory[1].size": "2 MiB", "clock": "1 GHz",
                       "compute.arrays[0].rows": 128})

        Values are written as in the YAML (unit strings); ``None`` removes an optional key.
        A path names a value of :meth:`to_yaml_dict` or an optional key left unset. Errors
        (an unknown key, an index out of range, a bad value) are ArchErrors that name the
        key path and the fix; ``self`` is never changed."""
        return validate.replace(self, changes, value, rebuild=Architecture.from_dict)


def pe_level_need(a: Architecture, m: MemoryLevel) -> int:
    """Bytes per PE a ``scope: pe`` level needs: one value of every operand it holds (at
    the operand's precision; outputs at the accumulator's), two when double-buffered."""
    pb = a.precision.bytes
    need = sum(pb["accumulator" if op == "output" else op] for op in m.holds)
    return math.ceil(need * (2 if m.double_buffered else 1))


def semantic_problems(a: Architecture) -> list[tuple[str, str, str]]:
    """Cross-field problems as (key path, problem, fix); empty when the design is sound."""
    out = []
    if a.memory[0].kind != "dram":
        out.append(("memory[0].kind", f"the first memory level ({a.memory[0].name!r}) is not "
                    "DRAM", "list levels from DRAM inwards: memory[0] must have kind: dram"))
    names: set = set()
    for i, n in enumerate(m.name for m in a.memory):
        if n in names or names.add(n):
            out.append((f"memory[{i}].name", f"level name {n!r} is used twice",
                        "give every memory level a unique name"))
    for i, m in enumerate(a.memory[1:], 1):
        if m.kind == "dram":
            out.append((f"memory[{i}].kind", f"{m.name!r} is a second DRAM level",
                        "only memory[0] may be kind: dram; make this one sram or regfile"))
    for op in OPERANDS:
        if op not in a.memory[0].holds:
            out.append(("memory[0].holds", f"the DRAM level does not hold {op!r}",
                        f"add {op!r} to memory[0].holds"))
        if not any(op in m.holds for m in a.memory[1:] if m.scope == "shared"):
            out.append(("memory[1].holds", f"no shared on-chip level holds {op!r}",
                        f"add {op!r} to the holds list of a buffer, e.g. memory[1].holds "
                        "(a scope: pe level is filled from a shared one)"))
        pe_holders = [i for i, m in enumerate(a.memory) if m.scope == "pe" and op in m.holds]
        for i in pe_holders[1:]:
            out.append((f"memory[{i}].holds", f"{op!r} is held by more than one scope: pe "
                        f"level ({', '.join(a.memory[j].name for j in pe_holders)})",
                        f"keep {op!r} in one scope: pe level"))
    if a.memory[0].scope == "pe":
        out.append(("memory[0].scope", "the DRAM level cannot be per PE",
                    "remove scope from memory[0] (DRAM is shared)"))
    seen_pe = None
    for i, m in enumerate(a.memory[1:], 1):
        if m.scope == "pe":
            seen_pe = seen_pe or m.name
            need = pe_level_need(a, m)
            if m.size is not None and m.size < need:
                ops = ", ".join(m.holds)
                db = ", two of each as it is double-buffered" if m.double_buffered else ""
                out.append((f"memory[{i}].size", f"scope: pe level {m.name!r} holds one "
                            f"value of {ops} per PE{db}: it needs at least {need} B per PE, "
                            f"has {m.size} B", f"raise memory[{i}].size to at least {need} B"))
        elif seen_pe:
            out.append((f"memory[{i}].scope", f"shared level {m.name!r} is listed after the "
                        f"scope: pe level {seen_pe!r}", "list scope: pe levels last "
                        "(innermost: they sit inside the PEs)"))
    for i, m in enumerate(a.memory):
        if m.format is None:
            continue
        if isinstance(m.format, dict):
            for op in m.format:
                if op not in m.holds:
                    out.append((f"memory[{i}].format.{op}", f"{m.name!r} does not hold "
                                f"{op!r}", f"remove {op!r} from the format map, or add it "
                                f"to memory[{i}].holds"))
        for op in m.holds:
            f = m.format_of(op)
            if f == "nm" and op != "weight":
                out.append((f"memory[{i}].format", f"{m.name!r} stores {op!r} as nm, a "
                            "format for N:M-structured weights only",
                            f"give a map, e.g. format: {{weight: nm, {op}: bitmask}}"))
            if f != "dense" and m.scope == "pe":
                out.append((f"memory[{i}].format", f"scope: pe level {m.name!r} holds one "
                            f"value of each operand per PE; {f} needs a buffer of many",
                            f"remove memory[{i}].format (a PE register is dense)"))
    for i, m in enumerate(a.memory[1:], 1):
        for key in ("channels", "latency", "dma_engines"):
            if getattr(m, key) is not None:
                out.append((f"memory[{i}].{key}", f"{key} is a DRAM property but "
                            f"{m.name!r} is on-chip", f"move {key} to memory[0] (the DRAM)"))
    for i, bpc in enumerate(a.level_bpc):
        if bpc < units.BPC_MIN:
            out.append((f"memory[{i}].bandwidth", f"{units.fmt_rate(a.memory[i].bandwidth.value, 'B/s')}"
                        f" at {units.fmt_freq(a.clock)} is {bpc:.3g} B/cycle, below the smallest "
                        f"allowed, {units.BPC_MIN:g} B/cycle", "give a larger bandwidth or a "
                        "slower clock"))
    if len(a.compute.arrays) != 1:
        out.append(("compute.arrays", f"{len(a.compute.arrays)} array types given; this version "
                    "maps layers onto one", "give one entry (use count: N for N identical arrays)"))
    return out
