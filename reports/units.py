"""One formatter for every number shown to a person: terminal, Markdown and HTML.

Inside tilesim and in its files (CSV, JSON) numbers stay in base units (DESIGN §4):
cycles, bytes, pJ, a 0-1 utilisation fraction, ms for ``latency_ms``. :func:`fmt` scales
one such value and labels it at the edge::

    fmt(2.7e12, "pJ")   -> "2.70 J"       fmt(0.0431, "fraction") -> "4.31 %"
    fmt(48_333_000, "B") -> "48.3 MB"     fmt(1_385_149, "cycles") -> "1.39 M"
    fmt(0.0304, "ms")   -> "30.4 µs"      fmt(None, "pJ") / fmt(nan, "pJ") -> "-"

Three significant digits, the prefix chosen so that the mantissa is in [1, 1000) after
rounding (999.9 µJ reads "1.00 mJ"). Bytes use SI prefixes (1 kB = 1000 B, 1 MB = 1e6 B),
as the terminal always did; binary sizes (KiB) belong to the architecture YAML. Counts
(cycles, MACs, ops) are plain with thousands separators below one million, then M/G/T
scaled ("1.39 M"), or always plain with ``exact=True``; the noun is in the column header.
A value that is missing or not finite (None, NaN, inf) reads "-", never "nan".

Imports nothing (no numpy, no pandas): numpy scalars are read through ``float()``.
"""
from __future__ import annotations

import math

#: unit name -> (factor to the base unit, [(scale, label), ...] smallest first); a value in
#: the base unit is divided by the largest scale that keeps it >= 1
_SCALED = {
    "pJ": (1.0, [(1.0, "pJ"), (1e3, "nJ"), (1e6, "µJ"), (1e9, "mJ"), (1e12, "J")]),
    "uJ": (1e6, None),     # energy given in µJ (summary.json's energy_uj): to pJ
    "J": (1e12, None),
    "B": (1.0, [(1.0, "B"), (1e3, "kB"), (1e6, "MB"), (1e9, "GB"), (1e12, "TB")]),
    "s": (1.0, [(1e-12, "ps"), (1e-9, "ns"), (1e-6, "µs"), (1e-3, "ms"), (1.0, "s")]),
    "ms": (1e-3, None),    # latency_ms: to s
    "B/s": (1.0, [(1.0, "B/s"), (1e3, "kB/s"), (1e6, "MB/s"), (1e9, "GB/s"),
                  (1e12, "TB/s")]),
    "ops/s": (1.0, [(1.0, "op/s"), (1e3, "kOPS"), (1e6, "MOPS"), (1e9, "GOPS"),
                    (1e12, "TOPS"), (1e15, "POPS")]),
    "Hz": (1.0, [(1.0, "Hz"), (1e3, "kHz"), (1e6, "MHz"), (1e9, "GHz")]),
    "W": (1.0, [(1e-6, "µW"), (1e-3, "mW"), (1.0, "W"), (1e3, "kW")]),
}
_BASE = {"uJ": "pJ", "J": "pJ", "ms": "s"}
#: counts: no unit label in the cell (the header names the noun)
COUNTS = ("count", "cycles", "MACs", "ops", "events", "tiles", "samples")
_COUNT_SCALES = [(1e6, "M"), (1e9, "G"), (1e12, "T"), (1e15, "P")]   # below 1e6: plain
#: plain numbers with a fixed label after them
_LABELLED = {"TOPS/W": " TOPS/W", "mm2": " mm²", "x": "x", "samples/s": " samples/s",
             "ops/B": " ops/B", "number": ""}
UNITS = (*_SCALED, *COUNTS, "fraction", "%", *_LABELLED)
MISSING = "-"


def _real(value) -> float | None:
    """``value`` as a finite float, or None when it is missing (None, NaN, inf, not a number)."""
    if value is None or isinstance(value, (str, bytes)):
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def sig(v: float, digits: int = 3) -> str:
    """``v`` with ``digits`` significant digits, fixed-point, thousands separators, no
    exponent (1234.5 -> "1,235", 0.0431 -> "0.0431", 12.0 -> "12.0")."""
    if v == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(v))))
    s = f"{v:,.{decimals}f}"
    # rounding may add a digit (9.996 -> "10.00"): keep ``digits`` significant ones
    if decimals and len(s.replace(",", "").replace("-", "").replace(".", "").lstrip("0")) > digits:
        s = f"{v:,.{decimals - 1}f}"
    return s


def _scaled(v: float, scales, digits: int) -> str:
    a = abs(v)
    i = 0
    for j, (k, _) in enumerate(scales):
        if a >= k:
            i = j
    # rounding to ``digits`` may reach 1000 of this prefix: then the next one
    if i + 1 < len(scales) and \
            float(f"{a / scales[i][0]:.{digits}g}") >= scales[i + 1][0] / scales[i][0]:
        i += 1
    k, label = scales[i]
    return f"{sig(v / k, digits)} {label}"


def fmt(value, unit: str, digits: int = 3, exact: bool = False) -> str:
    """``value`` (in ``unit``, a base unit or one of :data:`UNITS`) scaled and labelled.

    - energy ``pJ`` (``uJ``, ``J`` accepted) -> pJ/nJ/µJ/mJ/J; bytes ``B`` -> B/kB/MB/GB (SI);
      time ``s`` (``ms`` accepted) -> ps/ns/µs/ms/s; ``B/s``, ``ops/s`` (-> GOPS/TOPS),
      ``Hz``, ``W`` likewise;
    - counts (``cycles``, ``MACs``, ``ops``, ``count``, ...): "123,456" below 1e6, else M/G/T:
      "1.39 M" (``exact``: always every digit);
    - ``fraction`` (0-1) -> "4.31 %"; ``%`` (already percent) -> "4.31 %";
    - ``TOPS/W``, ``mm2``, ``x`` (a ratio), ``samples/s``, ``ops/B``, ``number``: the value
      with ``digits`` significant digits and its label.

    Missing or non-finite values read "-". An unknown unit is a ValueError.
    """
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r}; one of {', '.join(UNITS)}")
    v = _real(value)
    if v is None:
        return MISSING
    if unit in _SCALED:
        factor, scales = _SCALED[unit]
        if scales is None:
            scales = _SCALED[_BASE[unit]][1]
        return "0 " + scales[[k for k, _ in scales].index(1.0)][1] if v == 0 else \
            _scaled(v * factor, scales, digits)
    if unit in COUNTS:
        if exact or abs(v) < 1e6:
            if v == int(v):
                return f"{int(v):,}"
            return f"{v:,.0f}" if abs(v) >= 1e3 else sig(v, digits)
        return _scaled(v, _COUNT_SCALES, digits)
    if unit in ("fraction", "%"):
        p = 100 * v if unit == "fraction" else v
        return f"{sig(p, digits)} %"
    return sig(v, digits) + _LABELLED[unit]


def unit_of(column: str) -> str | None:
    """The unit of a result-table column by its name (the conventions of docs/outputs.md):
    ``*_pj`` pJ, ``*_uj`` µJ, ``*_bytes`` B, ``*_cycles`` cycles, ``macs``, ``*_ms`` ms,
    ``*_s`` s, ``utilization`` and ``busy_*`` fractions, ...; None: shown as it is."""
    c = column.lower()
    exact = {"macs": "MACs", "vector_ops": "ops", "utilization": "fraction", "events": "events",
             "des_events": "events", "tops_per_w": "TOPS/W", "avg_power_w": "W", "tdp_w": "W",
             "area_sq_mm": "mm2", "clock_hz": "Hz", "throughput_samples_per_s": "samples/s",
             "folds": "count", "row_folds": "count", "col_folds": "count", "tiles": "tiles",
             "params": "count", "peak_macs_per_cycle": "number", "batch": "count",
             "layers": "count", "edp_uj_ms": "number", "onchip_bytes": "B", "pes": "count",
             "dram_gb_per_s": "number", "clock_mhz": "number", "top1": "%",
             "edp": "number", "power_w": "W"}
    if c in exact:
        return exact[c]
    for suffix, unit in (("_energy_pj", "pJ"), ("_pj", "pJ"), ("_uj", "uJ"), ("_bytes", "B"),
                         ("_cycles", "cycles"), ("_ms", "ms"), ("_s", "s"), ("_w", "W"),
                         ("_sq_mm", "mm2"), ("_pct", "%")):
        if c.endswith(suffix):
            return unit
    if c.startswith("busy_"):
        return "fraction"
    return None


def cell(value, column: str) -> str:
    """A table cell of ``column`` (a result-table column name): :func:`fmt` with the
    column's unit (:func:`unit_of`); text as it is; a missing value "-"."""
    unit = unit_of(column)
    if unit is not None and not isinstance(value, (str, bool)):
        return fmt(value, unit)
    if value is None or (isinstance(value, float) and value != value):
        return MISSING
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return str(bool(value))
    if isinstance(value, float) or type(value).__name__.startswith("float"):
        s = fmt(value, "number", digits=4)   # a number of no known unit: "4", "0.5"
        return s.rstrip("0").rstrip(".") if "." in s else s
    if isinstance(value, int) or type(value).__name__.startswith("int"):
        return fmt(value, "count", exact=True)
    return str(value)
