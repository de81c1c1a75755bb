"""The GPU preset schema: typed, frozen pydantic models that reject unknown keys.

A GPU is described by what a roofline-style latency model needs, every figure a
published datasheet number (sources in each preset's comments)::

    version: 1
    kind: gpu                      # tells arch.load this is a GPU, not an accelerator
    name: a100
    description: NVIDIA A100 SXM4 80 GB
    sms: 108                       # streaming multiprocessors
    clock: 1410 MHz                # boost clock the peaks are quoted at
    peak:                          # dense (no sparsity) peak per precision
      fp32: 19.5 TFLOPS            # CUDA cores
      tf32: 156 TFLOPS             # tensor cores from here on
      fp16: 312 TFLOPS
      bf16: 312 TFLOPS
      int8: 624 TOPS
    memory_bandwidth: 2039 GB/s
    l2_size: 40 MiB
    tdp: 400 W

A precision missing from ``peak`` is one the GPU cannot run on its tensor cores (or
at all, e.g. tf32 before Ampere): asking for it is an error, not a silent fallback.
"""
from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer,
                      WithJsonSchema, model_validator)

from tilesim._input import check_number

from . import units, validate

GPU_PRECISIONS = ("fp32", "tf32", "fp16", "bf16", "int8")
#: bytes per element a kernel reads and writes at each precision (tf32 is stored as fp32)
GPU_PRECISION_BYTES = {"fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2, "int8": 1}
#: the largest peak throughput a GPU file may give (1e18 ops/s: 1,000 POPS)
OPS_MAX = 1e18
_OPS_UNITS = {"tflops": 1e12, "tops": 1e12, "gflops": 1e9, "gops": 1e9, "pflops": 1e15,
              "pops": 1e15}


def parse_ops(text) -> float:
    """Operations per second from "312 TFLOPS", "624 TOPS" (a plain number is refused)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        raise ValueError(f"peak {text!r} needs a unit; write it like 312 TFLOPS or 624 TOPS")
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-z/]+)\s*", str(text))
    unit = m.group(2).lower().replace("/s", "s").replace("flopss", "flops") if m else ""
    if not m or unit not in _OPS_UNITS:
        raise ValueError(f"cannot read peak {text!r}; write it like 312 TFLOPS or 624 TOPS "
                         "(GFLOPS, TFLOPS, PFLOPS, GOPS, TOPS, POPS)")
    v = float(m.group(1)) * _OPS_UNITS[unit]
    if v <= 0:
        raise ValueError(f"peak {text!r} must be positive")
    return check_number(v, f"peak {text!r}", units.value_error, hi=OPS_MAX, unit="ops/s")


def _fmt_ops(v: float) -> str:
    return f"{v / 1e12:.15g} TOPS"


def _bandwidth(text) -> float:
    val, per = units.parse_rate(text)
    if per != "B/s":
        raise ValueError(f"memory_bandwidth {text!r} must be per second; write it like 2039 GB/s")
    return val


def _power(text) -> float:
    w = units.parse_power(text)
    if w <= 0:
        raise ValueError(f"tdp {text!r} must be positive; write it like 400 W")
    return w


_OPS_JSON = {"type": "string", "description": "a peak throughput: number and unit GFLOPS, "
             "TFLOPS, PFLOPS, GOPS, TOPS or POPS (2 ops per MAC)", "examples": ["312 TFLOPS"],
             "pattern": f"^{units.JSON_NUMBER}[gGtTpP]([fF][lL])?[oO][pP]([sS]|/[sS])\\s*$"}
Ops = Annotated[float, BeforeValidator(parse_ops), PlainSerializer(_fmt_ops),
                WithJsonSchema(_OPS_JSON)]
Clock = Annotated[float, BeforeValidator(units.parse_freq), PlainSerializer(units.fmt_freq),
                  WithJsonSchema(units.json_schema_of("clock"))]
Bytes = Annotated[int, BeforeValidator(units.parse_size), PlainSerializer(units.fmt_size),
                  WithJsonSchema(units.json_schema_of("size"))]
BytesPerS = Annotated[float, BeforeValidator(_bandwidth),
                      PlainSerializer(lambda v: f"{v / 1e9:.15g} GB/s"),
                      WithJsonSchema(units.json_schema_of("bandwidth_per_s"))]
Watts = Annotated[float, BeforeValidator(_power), PlainSerializer(lambda w: f"{w:.15g} W"),
                  WithJsonSchema(units.json_schema_of("power"))]


class _Frozen(BaseModel):
    # defer_build: the validators are built on the first GPU preset loaded, not at import
    # (a run on an accelerator never builds them; a fast start)
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True,
                              defer_build=True)


class Peaks(_Frozen):
    """Dense peak throughput per precision, operations per second (2 per MAC)."""
    fp32: Ops
    tf32: Ops | None = None
    fp16: Ops | None = None
    bf16: Ops | None = None
    int8: Ops | None = None


class GpuSpec(_Frozen):
    """A validated GPU preset. Clock in Hz, peaks in ops/s, bandwidth in B/s, TDP in W."""
    version: Literal[1]
    kind: Literal["gpu"]
    name: str
    description: str = ""
    sms: Annotated[int, Field(gt=0, strict=True)]
    clock: Clock
    peak: Peaks
    memory_bandwidth: BytesPerS
    l2_size: Bytes
    tdp: Watts
    memory_size: Bytes | None = None

    @model_validator(mode="after")
    def _check(self):
        if self.memory_bandwidth <= 0:
            raise ValueError("memory_bandwidth must be positive; write it like 2039 GB/s")
        return self

    @property
    def precisions(self) -> tuple[str, ...]:
        """The precisions this GPU has a peak for."""
        return tuple(p for p in GPU_PRECISIONS if getattr(self.peak, p) is not None)

    def peak_ops(self, precision: str) -> float:
        """Dense peak ops/s at ``precision`` (a KeyError-free lookup: check
        :attr:`precisions` first)."""
        v = getattr(self.peak, precision, None)
        if v is None:
            raise KeyError(precision)
        return v

    def to_yaml_dict(self) -> dict:
        """A plain dict with unit strings, loadable again by :func:`arch.load`."""
        return self.model_dump(mode="json", exclude_none=True)

    def replace(self, changes, value=validate.UNSET, /) -> GpuSpec:
        """A new, validated GpuSpec with values changed by key path, as
        :meth:`arch.schema.Architecture.replace` (``g.replace("tdp", "300 W")``)."""
        return validate.replace(self, changes, value,
                                rebuild=lambda d, source: validate.build(GpuSpec, d, source))
