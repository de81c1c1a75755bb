"""Overlapped stationary preload (``preload: overlapped``): the register-level PE model,
which schedules folds from its shadow registers alone, takes exactly the cost model's
compute cycles and computes the reference outputs; its hazard checks bite; serial stays
SCALE-Sim's meaning."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conftest import layer_result, make_arch, seed_mapping
from tilesim import arch
from tilesim.arch import ArchError
from tilesim.mapper import DATAFLOWS
from tilesim.sim.kernels import conv2d_layer, gemm_numpy
from tilesim.sim.pe import simulate_gemm, simulate_mapping
from tilesim.sim.pe.systolic import _chain_stationary
from tilesim.workloads.ir import conv, gemm

FAST = settings(max_examples=40, deadline=None)


def ints(shape, seed):
    return np.random.default_rng(seed).integers(-128, 128, shape).astype(np.int8)


@pytest.mark.parametrize("df, rows, cols, m, k, n, overlapped, serial, why", [
    # ws: rows = K, cols = N, stream M. K = 4 on 2 rows: 2 folds of T = M.
    ("ws", 2, 1, 3, 4, 1, 8, 11,
     "T=3 > Ra=2: load 0 in cycles 0-1, fold 0 enters row 0 at 2; load 1 from 2 (when PE(0,0) "
     "switches) to 3; fold 1 enters at max(2+3, 2+2) = 5; its last element (m=2) reaches row "
     "1 at 5+2+1 = 8 and leaves. Serial: 2 folds x (3+4+1-2) - 1 = 11"),
    ("ws", 2, 1, 1, 4, 1, 5, 7,
     "T=1 < Ra=2: fold 1 waits for its shadow load (2-3): enters at 4, leaves row 1 at 5. "
     "Serial: 2 x (1+4+1-2) - 1 = 7"),
    ("ws", 2, 2, 2, 4, 2, 7, 11,
     "T=Ra=2, 2 columns: fold 1 enters at 4, its m=1 reaches PE(1,1) at 4+1+1+1 = 7. "
     "Serial: 2 x (2+4+2-2) - 1 = 11"),
    ("is", 2, 1, 1, 4, 3, 8, 11,
     "is: rows = K = 4 on 2 rows, cols = M = 1, stream N = 3: the first case's schedule"),
])
def test_hand_derived_timelines(df, rows, cols, m, k, n, overlapped, serial, why):
    """Overlapped and serial timelines derived by hand from the register moves (last-cycle
    index)."""
    a, b = ints((m, k), 1), ints((k, n), 2)
    r = simulate_gemm(a, b, df, rows, cols, preload="overlapped")
    s = simulate_gemm(a, b, df, rows, cols, preload="serial")
    assert np.array_equal(r.output[0], gemm_numpy(a, b))
    assert (r.last_cycle, s.last_cycle) == (overlapped, serial), why


@st.composite
def chains(draw):
    """A ws or is GEMM on an Ra x Ca array whose stream T is shorter than, equal to or
    longer than Ra, with several folds, on 1-3 arrays."""
    df = draw(st.sampled_from(["ws", "is"]))
    ra, ca = draw(st.integers(1, 7)), draw(st.integers(1, 5))
    rel = draw(st.sampled_from(["<", "==", ">"]))
    t = {"<": draw(st.integers(1, max(1, ra - 1))), "==": ra,
         ">": ra + draw(st.integers(1, 6))}[rel]
    k = draw(st.integers(1, 3 * ra))                        # rows: K, ceil(K / Ra) row folds
    other = draw(st.integers(1, 3 * ca))                    # cols: N (ws) or M (is)
    m, n = (t, other) if df == "ws" else (other, t)
    return df, ra, ca, m, k, n, draw(st.integers(1, 3)), draw(st.integers(0, 2 ** 31))


@FAST
@given(chains())
def test_pe_equals_cost_model_every_stream_length(case):
    """PE model cycles == the cost model's compute cycles with overlapped preload (T < Ra,
    T == Ra, T > Ra; several folds and arrays); outputs bit-exact with the reference."""
    df, ra, ca, m, k, n, count, seed = case
    a = make_arch(rows=ra, cols=ca, dataflow=df, count=count, preload="overlapped")
    layer = gemm("g", m, n, k)
    mp = seed_mapping(layer, a)
    assert mp.preload == "overlapped"
    x = ints((layer.N, layer.C, layer.H, layer.W), seed)
    w = ints((layer.K, layer.C, 1, 1), seed + 1)
    out, r = simulate_mapping(mp, x, w)
    assert np.array_equal(out, conv2d_layer(layer, x, w))
    assert r.last_cycle == layer_result(mp, a).compute_cycles
    serial = simulate_gemm(x.reshape(m, k), w.reshape(n, k).T, df, ra, ca, count)
    assert r.last_cycle <= serial.last_cycle          # hiding the preload never costs
    if r.folds <= count:                               # one fold per array: nothing to hide
        assert r.last_cycle == serial.last_cycle


@st.composite
def convs(draw):
    g = draw(st.sampled_from([1, 1, 2, 3]))
    r = draw(st.integers(1, 3))
    h = draw(st.integers(r, 6))
    return conv("c", draw(st.integers(1, 2)), g * draw(st.integers(1, 4)), h, h,
                g * draw(st.integers(1, 5)), r, stride=draw(st.integers(1, 2)),
                pad=draw(st.integers(0, 1)), groups=g)


@settings(max_examples=25, deadline=None)
@given(convs(), st.sampled_from(["os", "ws", "is"]), st.integers(1, 6), st.integers(1, 6),
       st.integers(1, 3), st.integers(0, 2 ** 31))
def test_pe_equals_cost_model_on_convs(layer, df, rows, cols, count, seed):
    """Grouped and strided convs (folds of several groups chained): the same equality; os
    is unaffected by the preload mode."""
    a = make_arch(rows=rows, cols=cols, dataflow=df, count=count, preload="overlapped")
    m = seed_mapping(layer, a)
    x = ints((layer.N, layer.C, layer.H, layer.W), seed)
    w = ints((layer.K, layer.C // layer.groups, layer.R, layer.S), seed + 1)
    out, r = simulate_mapping(m, x, w)
    assert np.array_equal(out, conv2d_layer(layer, x, w))
    assert r.last_cycle == layer_result(m, a).compute_cycles
    if df == "os":
        s = make_arch(rows=rows, cols=cols, dataflow=df, count=count)
        assert r.last_cycle == layer_result(seed_mapping(layer, s), s).compute_cycles


@pytest.mark.parametrize("variant, why", [
    (1, "lockstep columns: column 1's shadow load starts when PE(0, 0) switches, "
        "overwriting PE(0, 1)'s value one cycle before it is taken"),
    (2, "whole-chain shift: a load moves row 0's unconsumed value into row 1"),
])
def test_hazard_checks_bite(variant, why):
    """The broken micro-architectures fail the run (-1); the design passes."""
    rng = np.random.default_rng(0)
    ra, ca, f, t = 3, 2, 3, 4
    S = rng.integers(-9, 9, (f, ra, ca)).astype(np.int32)
    X = rng.integers(-9, 9, (f, t, ra)).astype(np.int32)
    O = np.zeros((f, t, ca), np.int32)
    assert _chain_stationary(S, X, ra, ca, O, 0) > 0
    assert np.array_equal(O, X @ S)
    assert _chain_stationary(S, X, ra, ca, np.zeros_like(O), variant) == -1, why


def test_tpu_v1_like_short_stream_hand_derived():
    """256 x 256 ws, overlapped, a ResNet-50 stage-5-like 1x1 conv as a GEMM: M = 49
    pixels, K = 2048, N = 512: 8 row folds x 2 col folds = 16 folds of T = 49 < 256.
    Overlapped: a fold every max(49, 256) = 256 cycles after the first preload:
    15 x 256 + (49 + 512 + 256 - 2) = 4,655 cycles; serial 16 x 815 = 13,040."""
    layer = gemm("g", 49, 512, 2048)
    for preload, cycles in (("overlapped", 4655), ("serial", 13040)):
        a = make_arch(rows=256, cols=256, preload=preload)
        assert layer_result(seed_mapping(layer, a), a).compute_cycles == cycles - 1


def test_formula_cases_and_interval():
    """Dataflow.compute_cycles: one fold is fold_cycles; every further fold adds
    max(T, Ra) (overlapped ws/is) or fold_cycles (serial, os); vectorised."""
    ws, os_ = DATAFLOWS["ws"], DATAFLOWS["os"]
    for t in (3, 8, 20):   # T < Ra, T == Ra, T > Ra on 8 x 5
        one = ws.fold_cycles(8, 5, t)
        assert ws.compute_cycles(1, 8, 5, t, "overlapped") == one
        assert ws.compute_cycles(4, 8, 5, t, "overlapped") == one + 3 * max(t, 8)
        assert ws.compute_cycles(4, 8, 5, t, "serial") == 4 * one
        assert os_.compute_cycles(4, 8, 5, t, "overlapped") == 4 * os_.fold_cycles(8, 5, t)
    got = ws.compute_cycles(np.array([1, 2]), 8, 5, np.array([3, 20]), "overlapped")
    assert got.tolist() == [3 + 16 + 3, 20 + 20 + 16 + 3]
    with pytest.raises(ValueError, match="preload 'double'"):
        ws.compute_cycles(2, 8, 5, 3, "double")


def test_des_equals_cost_model_with_overlapped_preload():
    """Unlimited bandwidth: the discrete-event engine takes the cost model's cycles."""
    from tilesim.sim.des import simulate_mac as des_mac
    a = make_arch(rows=4, cols=3, dataflow="ws", count=2, preload="overlapped")
    for layer in (conv("c", 2, 6, 7, 7, 10, 3, pad=1), gemm("g", 3, 11, 13)):
        m = seed_mapping(layer, a)
        x, y = layer_result(m, a), des_mac(m, a)
        assert (y.compute_cycles, y.total_cycles) == (x.compute_cycles, x.total_cycles)


def test_schema_default_presets_and_errors(tmp_path):
    """Default serial (every existing file keeps its meaning); tpu_v1 overlapped;
    SCALE-Sim presets serial; a bad value names the key path and the choices."""
    assert make_arch().array.preload == "serial"
    assert arch.load("tpu_v1").array.preload == "overlapped"
    for name in ("scalesim_google", "scalesim_eyeriss"):
        assert arch.load(name).array.preload == "serial"
    assert "preload: overlapped" in arch.dump_yaml(arch.load("tpu_v1"))
    d = make_arch().to_yaml_dict()
    d["compute"]["arrays"][0]["preload"] = "double"
    with pytest.raises(ArchError, match=r"compute\.arrays\[0\]\.preload.*serial.*overlapped"):
        arch.from_dict(d)
    s = arch.json_schema()["definitions"]["SystolicArray"]["properties"]["preload"]
    assert set(s["enum"]) == {"serial", "overlapped"} and s["default"] == "serial"


def test_map_and_headers_show_the_preload():
    """``tilesim map``'s loop nest and the run/verify headers name the preload; the nest
    gives the fold interval: ws 4 x 3, M = T = 10, K = 8, N = 5: 2 x 2 = 4 folds of
    10 + 8 + 3 - 2 = 19 cycles, one every max(10, 4) = 10: 3 x 10 + 19 = 49 cycles."""
    from tilesim.cli import _array
    from tilesim.mapper.describe import loop_nest
    from tilesim.reports.terminal import run_header
    a = make_arch(rows=4, cols=3, preload="overlapped")
    nest = "\n".join(loop_nest(seed_mapping(gemm("g", 10, 5, 8), a), a))
    assert "weight stationary, overlapped preload" in nest
    assert "a fold takes 19 cycles; the next starts 10 cycles after it" in nest
    assert "49 cycles on the busiest array" in nest
    s = {"model": "m", "batch": 1, "layers": 1, "arch": "a", "clock_hz": 1e9}
    assert "4x3x1 ws (overlapped preload)" in run_header(s, "", _array(a))
    assert "(serial preload)" in run_header(s, "", _array(make_arch()))
    assert "preload" not in run_header(s, "", _array(make_arch(dataflow="os")))


@pytest.mark.slow  # fp32 register-level runs: seconds each
@pytest.mark.parametrize("df", ["ws", "is"])
def test_fp32_overlapped_adds_in_the_serial_order(df):
    """fp32: overlapped folds add their partial sums in the same order as serial ones, so
    the outputs are identical, and within rounding of float64."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((20, 30)).astype(np.float32)
    b = rng.standard_normal((30, 10)).astype(np.float32)
    r = simulate_gemm(a, b, df, 4, 4, 2, preload="overlapped")
    assert r.output.dtype == np.float32
    assert np.array_equal(r.output, simulate_gemm(a, b, df, 4, 4, 2).output)
    np.testing.assert_allclose(r.output[0], a.astype(np.float64) @ b, rtol=1e-5, atol=1e-5)
