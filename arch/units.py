"""Unit strings: sizes ("24 MiB"), bandwidths ("34 GB/s", "10 B/cycle"), clocks ("700 MHz").

Sizes accept B, kB (1000), KiB, MiB, GiB (1024-based) and MB, GB, TB only in the
SI sense when written in a bandwidth. "KB", "MB" and "GB" as *sizes* are rejected as
ambiguous (1000- or 1024-based?); write KiB/MiB/GiB or kB. A size, clock or bandwidth
needs its unit: a plain number (``clock: 800``) is an error that suggests one.

Every value is checked by the one number checker (``tilesim._input.check_number``):
finite, and within the limits below (named in the message when exceeded).
"""
from __future__ import annotations

import math
import re

from tilesim._input import check_number

#: limits of the quantities an architecture may hold
SIZE_MAX = 2 ** 50                  # 1 PiB
CLOCK_MIN, CLOCK_MAX = 1e3, 100e9   # 1 kHz .. 100 GHz
RATE_MIN, RATE_MAX = 1e3, 1e15      # 1 kB/s .. 1 PB/s
BPC_MIN, BPC_MAX = 0.01, 2.0 ** 20  # bytes per cycle (given, or resolved with the clock);
# with at most 2**50 MACs and elements in a model (workloads.ir.COUNT_MAX), its bytes
# over BPC_MIN stay well inside int64 cycles
NODE_MIN, NODE_MAX = 1.0, 1000.0    # nm
ENERGY_MAX = 1e6                    # pJ per access or operation (1 uJ)
POWER_MAX = 1e4                     # W
LATENCY_MAX = 1e9                   # cycles or ns


def value_error(message: str, fix: str) -> ValueError:
    """A ValueError as the schema's validators raise it ("problem; fix")."""
    return ValueError(f"{message}; {fix}")

_NUM = r"\s*([+-]?[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)\s*"
SIZE_UNITS = {"": 1, "B": 1, "byte": 1, "bytes": 1, "KiB": 1024, "MiB": 1024 ** 2,
              "GiB": 1024 ** 3, "TiB": 1024 ** 4, "kB": 1000}
_PREFIX_EXP = {"k": 1, "m": 2, "g": 3, "t": 4}
RATE_UNITS = {"b/s": 1.0, "kb/s": 1e3, "mb/s": 1e6, "gb/s": 1e9, "tb/s": 1e12,
              "kib/s": 1024.0, "mib/s": 1024.0 ** 2, "gib/s": 1024.0 ** 3}
FREQ_UNITS = {"hz": 1.0, "khz": 1e3, "mhz": 1e6, "ghz": 1e9}


def _split(text) -> tuple[float, str]:
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a quantity")
    if isinstance(text, (int, float)):
        if isinstance(text, int) and abs(text) > 2 ** 63:
            return check_number(text, "value", value_error, integer=True), ""
        return check_number(float(text), "value", value_error), ""
    m = re.fullmatch(_NUM + r"([A-Za-z/ ]*)\s*", str(text))
    if not m:
        raise ValueError(f"cannot read {text!r} as a number with a unit")
    return check_number(float(m.group(1)), f"{text!r}", value_error), m.group(2).strip()


def _no_unit(what: str, text, suggestion: str) -> ValueError:
    return ValueError(f"{what} {text!r} has no unit; write it with one, e.g. {suggestion!r}")


def parse_size(text) -> int:
    """Bytes from "24 MiB", "128 KiB", "36 kB" or "512 B", at most SIZE_MAX. Units are
    case-sensitive (Kib would be kibibits); KB/MB/GB/TB are refused as ambiguous; a plain
    number is refused (say the unit)."""
    v, unit = _split(text)
    if unit == "" and v > 0:
        raise _no_unit("size", text, fmt_size(int(v)) if v > 0 and v == int(v) and v <= SIZE_MAX
                       else f"{v:g} B")
    if unit in SIZE_UNITS:
        mult = SIZE_UNITS[unit]
    elif unit[:1].lower() in _PREFIX_EXP and unit[1:].lower() in ("", "b"):
        n = _PREFIX_EXP[unit[0].lower()]
        raise ValueError(
            f"size {text!r} is ambiguous (1000- or 1024-based?); write "
            f"{v:g} {'KMGT'[n - 1]}iB (1024-based) or {v * 1000 ** n:.0f} B (1000-based)")
    else:
        raise ValueError(f"unknown size unit in {text!r}; use B, KiB, MiB, GiB or kB")
    b = v * mult
    if b <= 0:
        raise ValueError(f"size {text!r} must be positive; give a size like 256 KiB")
    if b != int(b):
        raise ValueError(f"size {text!r} is not a whole number of bytes; round it to whole bytes")
    return check_number(int(b), f"size {text!r}", value_error, hi=SIZE_MAX, unit="B")


def parse_rate(text) -> tuple[float, str]:
    """(value, 'B/s' | 'B/cycle') from "34 GB/s", "10 B/cycle" or "unlimited" (an ideal
    memory that never stalls: infinite bytes per cycle); a plain number is refused."""
    if isinstance(text, str) and text.strip().lower() == "unlimited":
        return math.inf, "B/cycle"
    v, unit = _split(text)
    raw = unit.replace(" ", "")
    u = raw.lower()
    if "bit" in u or u.endswith("bps") or re.fullmatch(r"[kKMGT]?b/s", raw):
        raise ValueError(f"bandwidth {text!r} is in bits; write it in bytes, e.g. GB/s "
                         "(1 Gbit/s = 0.125 GB/s)")
    if u == "":
        if v > 0:
            raise _no_unit("bandwidth", text, f"{v:g} B/cycle")
        raise ValueError(f"bandwidth {text!r} must be positive; give one like 34 GB/s")
    if u in ("b/cycle", "bytes/cycle", "byte/cycle"):
        val, per = v, "B/cycle"
    elif u in RATE_UNITS:
        val, per = v * RATE_UNITS[u], "B/s"
    else:
        raise ValueError(f"unknown bandwidth unit in {text!r}; use GB/s, MB/s, GiB/s or B/cycle")
    if val <= 0:
        raise ValueError(f"bandwidth {text!r} must be positive; give one like 34 GB/s")
    lo, hi = (BPC_MIN, BPC_MAX) if per == "B/cycle" else (RATE_MIN, RATE_MAX)
    return check_number(val, f"bandwidth {text!r}", value_error, lo=lo, hi=hi, unit=per), per


def parse_freq(text) -> float:
    """Hz from "700 MHz", "1.4 GHz" or "5 kHz", within CLOCK_MIN .. CLOCK_MAX; a plain
    number is refused."""
    v, unit = _split(text)
    u = unit.lower()
    if u == "":
        if v > 0:
            raise _no_unit("clock", text, fmt_freq(v) if v >= CLOCK_MIN else f"{v:g} MHz")
        raise ValueError(f"clock {text!r} must be positive; give one like 700 MHz")
    if u not in FREQ_UNITS:
        raise ValueError(f"unknown clock unit in {text!r}; use Hz, kHz, MHz or GHz")
    hz = v * FREQ_UNITS[u]
    if hz <= 0:
        raise ValueError(f"clock {text!r} must be positive; give one like 700 MHz")
    return check_number(hz, f"clock {text!r}", value_error, lo=CLOCK_MIN, hi=CLOCK_MAX, unit="Hz")


def parse_node(text) -> float:
    """Technology node in nm from "28 nm" or a number."""
    v, unit = _split(text)
    if unit.lower() not in ("", "nm"):
        raise ValueError(f"technology {text!r}: write the node in nm, e.g. 28 nm")
    if v <= 0:
        raise ValueError(f"technology {text!r} must be positive")
    return check_number(v, f"technology {text!r}", value_error, lo=NODE_MIN, hi=NODE_MAX, unit="nm")


ENERGY_UNITS = {"fj": 1e-3, "pj": 1.0, "nj": 1e3, "uj": 1e6, "µj": 1e6}
POWER_UNITS = {"nw": 1e-9, "uw": 1e-6, "µw": 1e-6, "mw": 1e-3, "w": 1.0}


def _parse_scaled(text, units: dict, what: str, example: str, hi: float, base: str) -> float:
    """A non-negative number with one of ``units`` (name -> scale), at most ``hi`` in
    the ``base`` unit; a plain number is refused (say the unit)."""
    v, unit = _split_any(text)
    u = unit.lower()
    if u not in units:
        raise ValueError(f"{what} {text!r} needs a unit; write it like {example}")
    if v < 0:
        raise ValueError(f"{what} {text!r} must not be negative")
    return check_number(v * units[u], f"{what} {text!r}", value_error, hi=hi, unit=base)


def parse_energy(text) -> float:
    """pJ from "1.2 pJ", "2 nJ", "500 fJ"."""
    return _parse_scaled(text, ENERGY_UNITS, "energy", "1.2 pJ (fJ, pJ, nJ, uJ)", ENERGY_MAX,
                         "pJ")


def parse_power(text) -> float:
    """Watts from "30 mW", "1.5 W", "20 uW"."""
    return _parse_scaled(text, POWER_UNITS, "power", "30 mW (nW, uW, mW, W)", POWER_MAX, "W")


def _split_any(text) -> tuple[float, str]:
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return _split(text)
    m = re.fullmatch(_NUM + r"([A-Za-zµ]*)\s*", str(text))
    if not m:
        raise ValueError(f"cannot read {text!r} as a number with a unit")
    return check_number(float(m.group(1)), f"{text!r}", value_error), m.group(2)


def fmt_energy(pj: float) -> str:
    return f"{pj:.15g} pJ"


def fmt_power(w: float) -> str:
    return f"{w * 1e3:.15g} mW"


def parse_latency(text) -> tuple[float, str]:
    """(value, 'cycles' | 'ns') from "100 ns", "0.1 us", "40 cycles" or a plain number
    (cycles). Zero is allowed (an ideal memory); negative values are refused."""
    v, unit = _split(text)
    u = unit.lower()
    if u in ("", "cycle", "cycles", "cyc"):
        val, per = v, "cycles"
    elif u in ("ns", "us", "ps"):
        val, per = v * {"ns": 1.0, "us": 1e3, "ps": 1e-3}[u], "ns"
    else:
        raise ValueError(f"unknown latency unit in {text!r}; use ns, us or cycles")
    if val < 0:
        raise ValueError(f"latency {text!r} is negative; give zero or more, e.g. 100 ns "
                         "or 40 cycles")
    if per == "cycles" and val != int(val):
        raise ValueError(f"latency {text!r} is not a whole number of cycles; round it, "
                         "or give it in ns")
    return check_number(val, f"latency {text!r}", value_error, hi=LATENCY_MAX, unit=per), per


def fmt_latency(value: float, per: str) -> str:
    return f"{value:.15g} {'cycles' if per == 'cycles' else 'ns'}"


def fmt_size(b: int) -> str:
    for unit, mult in (("GiB", 1024 ** 3), ("MiB", 1024 ** 2), ("KiB", 1024)):
        if b % mult == 0:
            return f"{b // mult} {unit}"
    return f"{b} B"


def fmt_freq(hz: float) -> str:
    for unit, mult in (("GHz", 1e9), ("MHz", 1e6), ("kHz", 1e3)):
        if hz >= mult:
            return f"{hz / mult:.15g} {unit}"
    return f"{hz:g} Hz"


def fmt_rate(value: float, per: str) -> str:
    if math.isinf(value):
        return "unlimited"
    if per == "B/cycle":
        return f"{value:.15g} B/cycle"
    for unit, mult in (("TB/s", 1e12), ("GB/s", 1e9), ("MB/s", 1e6), ("kB/s", 1e3)):
        if value >= mult:
            return f"{value / mult:.15g} {unit}"
    return f"{value:.15g} B/s"


# ---- JSON Schema: the unit strings an architecture file may hold -------------------------
# Each pattern accepts a number and a unit its parser reads (never a bare number, which
# DESIGN §4 asks to write with its unit); value checks (a zero size, a fraction of a
# byte) are left to the loader.
JSON_NUMBER = r"\s*\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?\s*"


def _ci(word: str) -> str:
    """``word`` as a case-insensitive regex (JSON Schema patterns have no flags)."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isascii() and c.isalpha()
                   else re.escape(c) for c in word)


def _alt(words) -> str:
    return "(" + "|".join(words) + ")"


JSON_UNITS = {
    "size": (f"^{JSON_NUMBER}{_alt(['B', 'bytes?', 'kB', 'KiB', 'MiB', 'GiB', 'TiB'])}\\s*$",
             "a size: number and unit B, kB (1000), KiB, MiB, GiB (1024); KB/MB are refused "
             "as ambiguous", ["24 MiB", "256 KiB", "512 B"]),
    "clock": (f"^{JSON_NUMBER}{_alt(_ci(u) for u in ('Hz', 'kHz', 'MHz', 'GHz'))}\\s*$",
              "a clock frequency: number and unit Hz, kHz, MHz or GHz", ["700 MHz", "1.4 GHz"]),
    "node": (f"^{JSON_NUMBER}{_ci('nm')}\\s*$", "a technology node in nm", ["28 nm"]),
    "bandwidth": ("^\\s*(" + _ci("unlimited") + "|" + JSON_NUMBER
                  + _alt(["[kKmMgGtT]?B/s", "[kKmMgG][iI]B/s", "(B|[bB]ytes?) ?/ ?cycle"])
                  + ")\\s*$",
                  "a bandwidth in bytes: number and unit GB/s, MB/s, kB/s, GiB/s, B/cycle, or "
                  "'unlimited' (never stalls)", ["34 GB/s", "16 B/cycle", "unlimited"]),
    "bandwidth_per_s": (f"^{JSON_NUMBER}" + _alt(["[kKmMgGtT]?B/s", "[kKmMgG][iI]B/s"]) + "\\s*$",
                        "a bandwidth in bytes per second: number and unit GB/s, MB/s, GiB/s",
                        ["2039 GB/s"]),
    "energy": (f"^{JSON_NUMBER}{_alt(_ci(u) for u in ('fJ', 'pJ', 'nJ', 'uJ', 'µJ'))}$",
               "an energy: number and unit fJ, pJ, nJ or uJ", ["3 pJ", "0.5 pJ"]),
    "power": (f"^{JSON_NUMBER}{_alt(_ci(u) for u in ('nW', 'uW', 'µW', 'mW', 'W'))}$",
              "a power: number and unit nW, uW, mW or W", ["3 mW", "400 W"]),
    "latency": ("^" + _alt([f"\\s*\\+?[0-9]+\\s*{_alt(_ci(u) for u in ('cycles', 'cycle', 'cyc'))}",
                            f"{JSON_NUMBER}{_alt(_ci(u) for u in ('ns', 'us', 'ps'))}"]) + "\\s*$",
                "an access latency: whole cycles, or ns / us / ps", ["100 ns", "40 cycles"]),
}


def json_schema_of(kind: str) -> dict:
    """The JSON Schema of a unit-string value of ``kind`` (a key of JSON_UNITS)."""
    pattern, description, examples = JSON_UNITS[kind]
    return {"type": "string", "pattern": pattern, "description": description,
            "examples": examples}
