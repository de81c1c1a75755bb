"""The discrete-event engine moves exactly the mapping's DRAM bytes, per operand, on every
tiling (grouped and depthwise layers included), and at unlimited bandwidth takes exactly
the cost model's cycles."""
from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given, settings, strategies as st

from tilesim import arch
from tilesim.mapper import Mapspace
from tilesim.mapper.mapping import LOOPS, ORDERS
from tilesim.sim.des import simulate_mac as des_mac
from tilesim.workloads.ir import conv, fc, gemm
from conftest import layer_result, make_arch


@st.composite
def small_layers(draw):
    """Small conv (plain, grouped, depthwise), fully connected and gemm layers."""
    kind = draw(st.sampled_from(["conv", "grouped", "depthwise", "fc", "gemm"]))
    if kind == "gemm":
        return gemm("gemm", draw(st.integers(1, 24)), draw(st.integers(1, 12)),
                    draw(st.integers(1, 12)))
    if kind == "fc":
        return fc("fc", draw(st.integers(1, 4)), draw(st.integers(1, 24)), draw(st.integers(1, 12)))
    n, h, w = draw(st.integers(1, 2)), draw(st.integers(3, 7)), draw(st.integers(3, 7))
    r, stride = draw(st.sampled_from([1, 3])), draw(st.sampled_from([1, 2]))
    if kind == "depthwise":
        c = draw(st.integers(1, 10))
        return conv("dw", n, c, h, w, c, r, stride=stride, pad=r // 2, groups=c)
    g = draw(st.integers(2, 4)) if kind == "grouped" else 1
    return conv(kind, n, g * draw(st.integers(1, 5)), h, w, g * draw(st.integers(1, 5)), r,
                stride=stride, pad=r // 2, groups=g)


def hand_mapping(layer, a, data):
    """A level-1 tiling drawn from the mapspace's grid: output block, k tile, c tile, order."""
    space = Mapspace(layer, a)
    nb, pt, qt = (int(x) for x in data.draw(st.sampled_from(list(space.rsel)), "block"))
    want = SimpleNamespace(images=nb, rows=pt, cols=qt,
                           k_tile=int(data.draw(st.sampled_from(list(space.kts)), "k_tile")),
                           c_tile=int(data.draw(st.sampled_from(list(space.cts)), "c_tile")),
                           order=data.draw(st.sampled_from(["".join(LOOPS[i] for i in o)
                                                            for o in ORDERS]), "order"))
    return space.mapping(space.index_of(a.array.dataflow, want))


def moved(r):
    return (r.dram_read_input_bytes, r.dram_read_weight_bytes, r.dram_read_psum_bytes,
            r.dram_write_bytes)


def mapped(m):
    t = m.traffic
    return (t.read_input, t.read_weight, t.read_psum, t.write_output)


def test_grouped_input_tile_holds_its_c_tile_of_each_group():
    """12 -> 6 channels in 3 groups (4 input channels, 2 filters a group), 5 x 5 input,
    k tile 1, c tile 1: an input tile is one channel of one group, 25 B. Order k>r>c
    refetches it for each of the 2 filters of its group: 2 x 12 x 25 = 600 B (the engine
    once loaded all 4 channels of the group once per group: 300 B); order c>r>k keeps it
    over both filters, 12 x 25 = 300 B (it loaded the group's 4 channels for each c
    block: 1,200 B)."""
    layer = conv("grouped", 1, 12, 5, 5, 6, 3, pad=1, groups=3)
    a = make_arch(rows=4, cols=3, dataflow="ws", size="2 KiB", bandwidth="3 B/cycle")
    for order, want in (("krc", 600), ("crk", 300)):
        space = Mapspace(layer, a)
        m = space.mapping(space.index_of("ws", SimpleNamespace(
            images=1, rows=5, cols=5, k_tile=1, c_tile=1, order=order)))
        assert m.traffic.read_input == want
        assert des_mac(m, a).dram_read_input_bytes == want


@settings(max_examples=150)
@given(layer=small_layers(), df=st.sampled_from(["ws", "os", "is"]),
       count=st.integers(1, 2), data=st.data())
def test_engine_moves_the_mappings_bytes_on_every_tiling(layer, df, count, data):
    """Per operand, the engine's DRAM bytes are the mapping's traffic (the cost model's
    reads and writes) on a hand-drawn tiling and loop order; at unlimited bandwidth its
    cycles are the cost model's."""
    a = make_arch(rows=4, cols=3, dataflow=df, count=count, bandwidth="3 B/cycle")
    m = hand_mapping(layer, a, data)
    r = des_mac(m, a)
    c = layer_result(m, a)
    assert moved(r) == mapped(m) == moved(c)
    u = make_arch(rows=4, cols=3, dataflow=df, count=count)
    assert des_mac(m, u).total_cycles == layer_result(m, u).total_cycles


def two_levels(bw: int, holds: list, db: bool, db1: bool = True, df: str = "ws"):
    """A global buffer holding every operand and a smaller one below it holding ``holds``
    (``db1``, ``db``: whether each is double-buffered)."""
    return arch.from_dict({
        "version": 1, "name": "two", "clock": "1 GHz", "technology": "28 nm",
        "precision": {"input": "int8", "weight": "int8", "accumulator": "int32"},
        "compute": {"arrays": [{"rows": 4, "cols": 4, "dataflow": df}],
                    "vector": {"lanes": 4}},
        "memory": [
            {"name": "dram", "kind": "dram", "holds": ["input", "weight", "output"],
             "bandwidth": f"{bw} B/cycle"},
            {"name": "glb", "kind": "sram", "holds": ["input", "weight", "output"],
             "size": "64 KiB", "double_buffered": db1},
            {"name": "lb", "kind": "sram", "holds": holds, "size": "256 B",
             "double_buffered": db}]})


@settings(max_examples=80)
@given(layer=small_layers(), holds=st.sampled_from([["input"], ["weight"], ["output"],
                                                     ["input", "weight", "output"]]),
       db=st.booleans(), db1=st.booleans(), bw=st.integers(1, 3),
       df=st.sampled_from(["ws", "os", "is"]), data=st.data())
def test_engine_moves_the_mappings_bytes_with_an_inner_level(layer, holds, db, db1, bw, df,
                                                            data):
    """With a second on-chip level (tiles of its own inside level 1's, drawn from the
    whole mapspace; single- or double-buffered; 1-3 B/cycle, where transfers preempt
    each other on the channel), the engine runs to the end and moves exactly the
    mapping's bytes per operand."""
    a = two_levels(bw, holds, db, db1, df)
    space = Mapspace(layer, a)
    idx = data.draw(st.lists(st.integers(0, space.size - 1), min_size=16, max_size=16))
    legal = [i for i, ok in zip(idx, space.points(idx).legal) if ok] or [space.seed()]
    m = space.mapping(legal[0])
    assert moved(des_mac(m, a)) == mapped(m)


def test_transfer_granted_and_preempted_in_the_same_cycle_queues_again():
    """A 1 x 1 conv, 1 -> 8 channels on 3 x 3 pixels, tiles of 2 rows (6 B of input, the
    last 3 B) x 1 filter in order k>r>c, inputs held in a single-buffered inner level, at
    3 B/cycle: a load's channel request is granted and preempted by one needed earlier
    in the same cycle, before the load resumes. The engine raised ``simpy.Interrupt``
    out of the run there; the load queues again and the layer moves all of its bytes:
    inputs 8 k blocks x 9 B, weights 8 B, outputs 72 B."""
    layer = conv("c", 1, 1, 3, 3, 8, 1)
    a = two_levels(3, ["input"], False, True, "is")
    space = Mapspace(layer, a)
    m = space.mapping(space.index_of("is", SimpleNamespace(
        images=1, rows=2, cols=3, k_tile=1, c_tile=1, order="krc")))
    r = des_mac(m, a)
    assert moved(r) == mapped(m) == (72, 8, 0, 72)
    assert r.cycles >= (72 + 8 + 72) // 3 and r.cycles >= r.compute_cycles + 1
