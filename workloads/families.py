"""Network families with published ImageNet top-1 accuracy (``data/families.yaml``).

A family is a zoo builder and the knobs it is varied by (MobileNetV2: width multiplier and
resolution; ResNet: depth; EfficientNet: B0..B3; MobileNetV3: large or small). Only the
variants of the data file exist: each has a published top-1 accuracy (at the precision
its source states), the source and row it was copied from, and the published parameter
and MAC counts that its built Model must reproduce (tests/test_families.py). A knob value
without a published accuracy is an error, never an estimate.

    >>> from tilesim.workloads import families
    >>> v = families.variant("mobilenet_v2", width=1.4, resolution=224)
    >>> v.top1, v.label
    (75.0, 'mobilenet_v2(width=1.4,resolution=224)')
    >>> model = v.build(batch=1)
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .errors import WorkloadError

DATA = Path(__file__).with_name("data") / "families.yaml"
_UNITS = {"": 1, "k": 1e3, "M": 1e6, "G": 1e9}


@dataclass(frozen=True)
class Published:
    """A published count as printed (``"6.06 M"``, ``11689512``) and what exact counts it
    allows under its rounding (``nearest``: within half its last digit; ``floor``: the
    exact count cut to its last digit)."""
    text: str
    value: float
    step: float          # one unit of the last printed digit
    rounding: str

    def allows(self, exact: int) -> bool:
        if self.rounding == "floor":
            return self.value - 1e-9 * self.step <= exact < self.value + self.step
        return abs(exact - self.value) <= self.step / 2 + 1e-9 * self.step

    @classmethod
    def parse(cls, raw, rounding: str) -> Published:
        m = re.fullmatch(r"\s*(\d+)(?:\.(\d+))?\s*([kMG]?)\s*", str(raw))
        if not m:
            raise ValueError(f"{raw!r} is not a count like 6.06 M or 11689512")
        unit = _UNITS[m.group(3)]
        decimals = len(m.group(2) or "")
        value = float(f"{m.group(1)}.{m.group(2) or 0}") * unit
        return cls(str(raw), value, unit / 10 ** decimals, rounding)


@dataclass(frozen=True)
class Variant:
    """One network of a family with its published accuracy."""
    family: str
    knobs: tuple          # ((knob, value), ...) in the family's knob order
    top1: float           # % ImageNet-1k top-1, as published
    source: str           # id in the data file's sources
    row: str              # the row (checkpoint, weights name) of the source
    top1_source: str      # the full citation: source title, row
    precision: str        # the arithmetic the accuracy was measured in (fp32)
    params: Published
    macs: Published
    params_count: str     # "all" or "no_batchnorm" (what the source counts)
    builder: str
    fixed: tuple          # builder arguments every variant shares ((name, value), ...)

    @property
    def label(self) -> str:
        return f"{self.family}(" + ",".join(f"{k}={_fmt(v)}" for k, v in self.knobs) + ")"

    def build(self, batch: int = 1):
        """The Model (our own zoo builder, at this variant's knobs)."""
        from .zoo import FAMILY_BUILDERS
        return FAMILY_BUILDERS[self.builder](batch, **dict(self.fixed), **dict(self.knobs))

    def counted_params(self, model) -> int:
        """``model``'s parameters counted as the source counts them."""
        if self.params_count == "no_batchnorm":
            return sum(l.params - (2 * l.K if l.batchnorm else 0) for l in model.mac_layers)
        return model.params


@dataclass(frozen=True)
class Family:
    name: str
    knobs: tuple
    variants: tuple

    def values(self, knob: str) -> list:
        return sorted({dict(v.knobs)[knob] for v in self.variants}, key=_order)


def _fmt(v) -> str:
    return str(v)


def _order(v):
    return (isinstance(v, str), v if not isinstance(v, str) else 0, str(v))


@lru_cache(maxsize=None)
def families() -> dict[str, Family]:
    """Every family of the data file, by name."""
    import yaml
    data = yaml.safe_load(DATA.read_text(encoding="utf-8"))
    sources = data["sources"]
    out = {}
    for name, f in data["families"].items():
        knobs = tuple(f["knobs"])
        vs = []
        for i, v in enumerate(f["variants"]):
            src = v["source"]
            if src not in sources:
                raise ValueError(f"{DATA}: families.{name}.variants[{i}].source {src!r} is "
                                 "not in sources")
            vs.append(Variant(
                family=name, knobs=tuple((k, v[k]) for k in knobs), top1=float(v["top1"]),
                source=src, row=str(v["row"]),
                top1_source=f"{sources[src]['title']}; row {v['row']}",
                precision=f["precision"],
                params=Published.parse(v["params"], f["params_rounding"]),
                macs=Published.parse(v["macs"], f["macs_rounding"]),
                params_count=f["params_count"], builder=f["builder"],
                fixed=tuple(sorted((f.get("fixed") or {}).items()))))
        out[name] = Family(name, knobs, tuple(vs))
    return out


def family(name: str) -> Family:
    fams = families()
    if name not in fams:
        raise WorkloadError(f"unknown network family {name!r}",
                            fix="use one of: " + ", ".join(fams))
    return fams[name]


def _same(a, b) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return str(a) == str(b)
    return math.isclose(float(a), float(b), rel_tol=0, abs_tol=1e-9)


def variant(name: str, **knobs) -> Variant:
    """The variant of family ``name`` at ``knobs`` (every knob of the family given); a
    WorkloadError naming the published values when there is none."""
    f = family(name)
    unknown = [k for k in knobs if k not in f.knobs]
    if unknown:
        raise WorkloadError(f"family {name!r} has no knob {unknown[0]!r}",
                            fix="its knobs: " + ", ".join(f.knobs))
    missing = [k for k in f.knobs if k not in knobs]
    if missing:
        raise WorkloadError(f"family {name!r} needs a value for {missing[0]!r}",
                            fix=f"published values: {', '.join(map(_fmt, f.values(missing[0])))}")
    for v in f.variants:
        if all(_same(dict(v.knobs)[k], knobs[k]) for k in f.knobs):
            return v
    bad = next((k for k in f.knobs
                if not any(_same(x, knobs[k]) for x in f.values(k))), None)
    want = ", ".join(f"{k}={_fmt(knobs[k])}" for k in f.knobs)
    if bad is not None:
        fix = f"published {bad} values: {', '.join(map(_fmt, f.values(bad)))}"
    else:
        k0 = f.knobs[0]
        others = [", ".join(f"{k}={_fmt(x)}" for k, x in v.knobs[1:]) for v in f.variants
                  if _same(dict(v.knobs)[k0], knobs[k0])]
        fix = f"{k0}={_fmt(knobs[k0])} is published with: " + "; ".join(others)
    raise WorkloadError(f"{name}({want}) has no published accuracy", fix=fix)


__all__ = ["DATA", "Family", "Published", "Variant", "families", "family", "variant"]
