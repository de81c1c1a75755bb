"""Unit strings (arch/units.py): sizes, bandwidths, clocks, nodes; and preset round trips."""
from __future__ import annotations

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tilesim import arch
from tilesim.arch import units
from tilesim.arch.schema import Rate

KiB, MiB, GiB = 1024, 1024 ** 2, 1024 ** 3




# ---- sizes -------------------------------------------------------------------------------
@pytest.mark.parametrize("text,expected", [
    ("24 MiB", 24 * MiB), ("128 KiB", 128 * KiB), ("1 GiB", GiB), ("0.5 KiB", 512),
    ("36 kB", 36_000), ("2 kB", 2000), ("16 B", 16), ("16 bytes", 16), ("1 byte", 1),
    ("1e3 B", 1000), ("6144 KiB", 6 * MiB), ("  24MiB  ", 24 * MiB),
])
def test_parse_size(text, expected):
    """Sizes in B, kB (1000) and KiB/MiB/GiB (1024) parse to bytes."""
    assert units.parse_size(text) == expected
    assert isinstance(units.parse_size(text), int)


@pytest.mark.parametrize("text", ["128 KB", "1 MB", "2 GB", "1 TB", "128 kb", "10 mb", "2 Kb",
                                  "128 K", "4 M", "1 G"])
def test_ambiguous_size_units_rejected(text):
    """KB, MB, GB (and bare K/M/G) as sizes are rejected as ambiguous 1000/1024."""
    with pytest.raises(ValueError, match="ambiguous"):
        units.parse_size(text)


@pytest.mark.parametrize("text,n", [
    ("128 KB", 1),
    pytest.param("3 MB", 2),
    pytest.param("2 GB", 3),
    pytest.param("1 TB", 4),
])
def test_ambiguous_size_hint_is_correct(text, n):
    """The ambiguity message suggests two spellings that parse, to v*1024**n and v*1000**n."""
    v = float(text.split()[0])
    with pytest.raises(ValueError) as exc:
        units.parse_size(text)
    msg = str(exc.value)
    binary = re.search(r"write ([^()]+?) \(1024-based\)", msg).group(1)
    decimal = re.search(r"or ([^()]+?) \(1000-based\)", msg).group(1)
    assert units.parse_size(binary) == v * 1024 ** n
    assert units.parse_size(decimal) == v * 1000 ** n


@pytest.mark.parametrize("text", ["-1 KiB", "-16 B", "-0.5 MiB", -5])
def test_negative_size_rejected(text):
    """A negative size is rejected."""
    with pytest.raises(ValueError):
        units.parse_size(text)


@pytest.mark.parametrize("text", [
    pytest.param("-1 KiB"), pytest.param("-16 B"),
    pytest.param(-5, id="int-minus-5"), "0 KiB", "0 B",
    pytest.param(0, id="int-0"), pytest.param("0", id="str-0")])
def test_nonpositive_size_message(text):
    """A zero or negative size says it must be positive (not 'cannot read' / 'unknown unit')."""
    with pytest.raises(ValueError, match="must be positive"):
        units.parse_size(text)


@pytest.mark.parametrize("text,match", [
    ("1.5 B", "whole number"), ("0.3 KiB", "whole number"),
    ("1 bit", "unknown size unit"), ("12 furlongs", "unknown size unit"),
    ("1 GB/s", "unknown size unit"), ("KiB", "cannot read"), ("", "cannot read"),
    ("lots", "cannot read"), (True, "not a quantity"), (None, "cannot read"),
])
def test_bad_size_rejected(text, match):
    """Fractional bytes, unknown units, bandwidths and non-quantities are not sizes."""
    with pytest.raises(ValueError, match=match):
        units.parse_size(text)


@pytest.mark.parametrize("b", [1, 1023, 1024, 1536, 3 * MiB, 24 * MiB, 6144 * KiB, 108 * KiB,
                               GiB, 5 * GiB, 36_000])
def test_fmt_size_round_trips(b):
    """fmt_size writes the largest exact binary unit, and parse_size reads it back."""
    s = units.fmt_size(b)
    assert units.parse_size(s) == b
    assert re.fullmatch(r"\d+ (B|KiB|MiB|GiB)", s), s


@given(st.integers(min_value=1, max_value=2 ** 50))
def test_fmt_size_round_trips_any(b):
    """Any positive byte count survives fmt_size -> parse_size."""
    assert units.parse_size(units.fmt_size(b)) == b


# ---- bandwidths --------------------------------------------------------------------------
@pytest.mark.parametrize("text,expected", [
    ("34 GB/s", (34e9, "B/s")), ("12.8 GB/s", (12.8e9, "B/s")), ("3.2 GB/s", (3.2e9, "B/s")),
    ("1 TB/s", (1e12, "B/s")), ("500 MB/s", (500e6, "B/s")), ("1 kB/s", (1e3, "B/s")),
    ("1 GiB/s", (float(GiB), "B/s")), ("100 MiB/s", (100.0 * MiB, "B/s")),
    ("10 B/cycle", (10.0, "B/cycle")), ("10 bytes/cycle", (10.0, "B/cycle")),
    ("10 B / cycle", (10.0, "B/cycle")), ("2.5 B/cycle", (2.5, "B/cycle")),
])
def test_parse_rate(text, expected):
    """GB/s-style bandwidths are SI bytes per second; B/cycle is per cycle."""
    val, per = units.parse_rate(text)
    assert per == expected[1]
    assert val == pytest.approx(expected[0], rel=1e-12)


@pytest.mark.parametrize("text", [
    "1 Gbps", "8 Gbit/s", "100 Mbps", "100 Mbit/s",
    pytest.param("1 Gb/s"),
    pytest.param("100 Mb/s"),
    pytest.param("5 b/s"),
    pytest.param("1 Tbit/s"),
    pytest.param("10 kbps"),
])
def test_bits_per_second_rejected(text):
    """A bandwidth in bits per second is rejected with a message saying it is in bits."""
    with pytest.raises(ValueError, match="in bits"):
        units.parse_rate(text)


@pytest.mark.parametrize("text,match", [
    ("0 GB/s", "must be positive"), ("0 B/cycle", "must be positive"), (0, "must be positive"),
    pytest.param("-1 GB/s", "must be positive"),
    ("5 furlongs/s", "unknown bandwidth unit"), ("34 GB", "unknown bandwidth unit"),
    ("fast", "cannot read"),
])
def test_bad_rate_rejected(text, match):
    """Zero, negative and unit-less-nonsense bandwidths are rejected."""
    with pytest.raises(ValueError, match=match):
        units.parse_rate(text)


@pytest.mark.parametrize("value,per", [(34e9, "B/s"), (12.8e9, "B/s"), (3.2e9, "B/s"),
                                       (1e12, "B/s"), (250e3, "B/s"), (7e3, "B/s"),
                                       (10.0, "B/cycle"), (2.5, "B/cycle")])
def test_fmt_rate_round_trips(value, per):
    """fmt_rate -> parse_rate gives back the same value and basis."""
    v, p = units.parse_rate(units.fmt_rate(value, per))
    assert p == per and v == pytest.approx(value, rel=1e-12)


def test_rate_bytes_per_cycle():
    """A per-second Rate divides by the clock; a per-cycle Rate ignores it."""
    assert Rate(value=34e9, per="B/s").bytes_per_cycle(700e6) == pytest.approx(34e9 / 700e6)
    assert Rate(value=10, per="B/cycle").bytes_per_cycle(700e6) == 10


def test_tpu_v1_dram_bytes_per_cycle():
    """tpu_v1: 34 GB/s DRAM at 700 MHz is 34e9 / 700e6 (about 48.57) bytes per cycle."""
    a = arch.load("tpu_v1")
    assert a.clock == 700e6
    assert a.dram.bandwidth.per == "B/s" and a.dram.bandwidth.value == 34e9
    assert a.bytes_per_cycle(a.dram) == pytest.approx(34e9 / 700e6, rel=1e-12)
    assert a.bytes_per_cycle(a.onchip[0]) == math.inf  # no bandwidth given: full rate
    assert a.level_bpc == (a.dram_bpc, math.inf, math.inf, math.inf)  # resolved once


def test_per_cycle_preset_bandwidth():
    """scalesim_google's DRAM is 10 B/cycle whatever the clock."""
    a = arch.load("scalesim_google")
    assert a.dram.bandwidth.per == "B/cycle"
    assert a.bytes_per_cycle(a.dram) == 10


# ---- clocks and technology nodes ---------------------------------------------------------
@pytest.mark.parametrize("text,hz", [
    ("700 MHz", 700e6), ("1 GHz", 1e9), ("1.4 GHz", 1.4e9), ("100 kHz", 100e3),
    ("5000 Hz", 5e3), ("700 mhz", 700e6), ("1 kHz", 1e3), ("100 GHz", 100e9),
])
def test_parse_freq(text, hz):
    """Clocks in Hz/kHz/MHz/GHz parse to Hz."""
    assert units.parse_freq(text) == pytest.approx(hz, rel=1e-15)


@pytest.mark.parametrize("text,match", [
    ("0 MHz", "must be positive"), (0, "must be positive"),
    pytest.param("-1 MHz", "must be positive"),
    ("1 THz", "unknown clock unit"), ("1 GHzz", "unknown clock unit"),
    ("1 ns", "unknown clock unit"),
    ("quick", "cannot read"),
])
def test_bad_freq_rejected(text, match):
    """Zero, negative or unknown-unit clocks are rejected."""
    with pytest.raises(ValueError, match=match):
        units.parse_freq(text)


@pytest.mark.parametrize("hz", [700e6, 1e9, 1.4e9, 480e6, 200e6, 1234.5, 1e3, 2.5e3])
def test_fmt_freq_round_trips(hz):
    """fmt_freq -> parse_freq gives back the same frequency."""
    assert units.parse_freq(units.fmt_freq(hz)) == pytest.approx(hz, rel=1e-15)


@pytest.mark.parametrize("text,nm", [("28 nm", 28.0), (28, 28.0), ("16nm", 16.0), ("6.5 nm", 6.5)])
def test_parse_node(text, nm):
    """Technology nodes are in nm (unit optional)."""
    assert units.parse_node(text) == nm


@pytest.mark.parametrize("text", ["0 nm", "28 um", "28 mm"])
def test_bad_node_rejected(text):
    """A zero node or a unit other than nm is rejected."""
    with pytest.raises(ValueError):
        units.parse_node(text)


# ---- units inside an architecture --------------------------------------------------------
def test_ambiguous_size_in_arch_names_key_path():
    """'128 KB' in an architecture is an ArchError naming memory[1].size."""
    text = arch.dump_yaml(arch.load("nvdla_small")).replace("size: 128 KiB", "size: 128 KB")
    with pytest.raises(arch.ArchError, match=r"memory\[1\]\.size: .*ambiguous"):
        arch.from_yaml(text, source="x.yaml")


@pytest.mark.parametrize("old,new,hint", [
    ("size: 128 KiB", "size: 65536", "'64 KiB'"),
    ("size: 128 KiB", "size: 1000", "'1000 B'"),
    ("clock: 1 GHz", "clock: 800", "'800 MHz'"),
    ("clock: 1 GHz", "clock: 700000000", "'700 MHz'"),
    ("bandwidth: 8 GB/s", "bandwidth: 25.6", "'25.6 B/cycle'"),
])
def test_plain_number_in_arch_is_refused(old, new, hint):
    """A size, clock or bandwidth without a unit is an error naming the key and a spelling
    with the unit (it was read as bytes, Hz or bytes per cycle before 0.3)."""
    text = arch.dump_yaml(arch.load("nvdla_small"))
    assert old in text
    key = new.split(":")[0]
    with pytest.raises(arch.ArchError, match=f"{key}.*has no unit") as e:
        arch.from_yaml(text.replace(old, new, 1))
    assert hint in e.value.fix


@pytest.mark.parametrize("text,parse,limit", [
    ("2048 TiB", units.parse_size, "2\\*\\*50"), ("1e30 B", units.parse_size, "2\\*\\*50"),
    ("1e-9 Hz", units.parse_freq, "1000 Hz"), ("500 Hz", units.parse_freq, "1000 Hz"),
    ("200 GHz", units.parse_freq, "1e\\+11 Hz"), ("1e400 MHz", units.parse_freq, "finite"),
    ("1e20 GB/s", units.parse_rate, "1e\\+15 B/s"), ("1 B/s", units.parse_rate, "1000 B/s"),
    ("0.001 B/cycle", units.parse_rate, "0.01 B/cycle"),
    ("1e9 pJ", units.parse_energy, "1e\\+06 pJ"), ("1e400 pJ", units.parse_energy, "finite"),
    ("1e6 W", units.parse_power, "10000 W"), ("1e12 ns", units.parse_latency, "1e\\+09 ns"),
    ("5000 nm", units.parse_node, "1000 nm"), ("0.1 nm", units.parse_node, "1 nm"),
])
def test_absurd_quantities_refused_with_the_limit(text, parse, limit):
    """Values beyond the limits of arch.units (or not finite) are refused, naming the limit."""
    with pytest.raises(ValueError, match=limit):
        parse(text)


def test_kB_size_in_arch_is_1000_based():
    """'100 kB' in an architecture is 100000 bytes and dumps as '100000 B'."""
    text = arch.dump_yaml(arch.load("nvdla_small")).replace("size: 128 KiB", "size: 100 kB")
    a = arch.from_yaml(text)
    assert a.memory[1].size == 100_000
    assert arch.from_yaml(arch.dump_yaml(a)) == a


# ---- every preset round-trips ------------------------------------------------------------
@pytest.mark.parametrize("preset", arch.presets())
def test_preset_round_trips(preset):
    """from_yaml(dump_yaml(a)) == a for every preset, and dumping is stable."""
    a = arch.load(preset)
    text = arch.dump_yaml(a)
    b = arch.from_yaml(text)
    assert b == a
    assert arch.dump_yaml(b) == text
    assert a.name == preset


def test_scalesim_cfg_round_trips(tmp_path):
    """An Architecture read from a SCALE-Sim .cfg also round-trips through YAML (KiB sizes)."""
    cfg = tmp_path / "g.cfg"
    cfg.write_text("[architecture_presets]\nArrayHeight: 8\nArrayWidth: 16\nIfmapSramSzkB: 36\n"
                   "FilterSramSzkB: 36\nOfmapSramSzkB: 36\nDataflow: os\nBandwidth: 10\n")
    a = arch.load(cfg)
    assert a.memory[1].size == 36 * KiB
    assert arch.from_yaml(arch.dump_yaml(a)) == a
