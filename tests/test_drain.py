"""Late steps gate the end of a layer: the steps from a late one to the end compute only
after the loads of the steps up to it (and the stores that free its output slot) have
moved, and the last output leaves after them. Hand-derived figures of the discrete-event
engine, and the cost model (its last-block, drain and slot bounds, :mod:`sim.cost`)
within 2 % of each."""
from __future__ import annotations

from types import SimpleNamespace

from tilesim import arch, workloads
from tilesim.mapper import NO_RESIDENCY, Mapspace, Residency
from tilesim.sim import CostModel
from tilesim.sim.des import mac_program, simulate_mac as des_mac
from tilesim.workloads.ir import gemm
from conftest import layer_result, make_arch


def with_tiling(layer, a, k_tile, c_tile, order, images=None, rows=None, cols=None,
                res=NO_RESIDENCY):
    """The mapping of ``layer`` on ``a`` with a level-1 tiling chosen by hand (``res``:
    where its activations live and what the layer before prefetched)."""
    space = Mapspace(layer, a, res=res)
    want = SimpleNamespace(images=images or layer.N, rows=rows or layer.P, cols=cols or layer.Q,
                           k_tile=k_tile, c_tile=c_tile, order=tuple(order))
    return space.mapping(space.index_of(a.array.dataflow, want))


def near(m, a, cycles) -> bool:
    """The cost model's cycles for ``m`` within 2 % of ``cycles``."""
    return abs(layer_result(m, a).cycles - cycles) <= 0.02 * cycles


# gemm M=8 images, N=32 filters, K=16 on a 4x4 ws array: 4 row folds x 8 col folds of
# 8 + 2*4 + 4 - 2 = 18 cycles = 576. Tiles of 1 image x 16 filters x 16 channels, order
# k>r>c: 2 weight tiles of 256 B (one per k block, each kept over its 8 one-image steps),
# 16 steps of 36 cycles, each loading a 16 B input tile and storing a 16 B output tile.
LATE = gemm("late", 8, 32, 16)


def test_second_weight_tile_gates_the_steps_after_it():
    """At 1 B/cycle, step 8 (the second k block's first) starts only after both weight
    tiles (512 B), the input tiles of steps 0-8 (144 B) and the stores of 7 output tiles
    (its output tile is the 9th opened; two slots: 9 - 2 stores must have left, 112 B)
    have moved: 768 cycles; then the 8 steps of the second k block compute (288 cycles)
    and the last output leaves (16): 1,072 cycles, what the engine takes. The last-step
    candidate gives 768 + 224 + 36 + 16 = 1,044; a tile's compute after every read (the
    old drain): 768 + 36 + 16 = 820; all traffic: 1,024."""
    a = make_arch(rows=4, cols=4, dataflow="ws", bandwidth="1 B/cycle")
    m = with_tiling(LATE, a, k_tile=16, c_tile=16, order="krc", images=1)
    p = mac_program(m, a)
    assert p.w_bytes == (256,) + (0,) * 7 + (256,) + (0,) * 7
    assert p.compute == (36,) * 16 and p.store_bytes == (16,) * 16
    c = CostModel(a).point(m)
    assert int(c.memory[0]) == 512 + 256 + 256
    r = des_mac(m, a)
    assert r.cycles == (512 + 9 * 16 + 7 * 16) + 8 * 36 + 16 == 1072
    assert near(m, a, 1072) and layer_result(m, a).bound == "memory"


def test_last_step_waits_for_the_stores_of_all_but_two_output_tiles():
    """GEMV 1 x 64 x 64 in 16 tiles of 4 filters (order r>k>c, c whole) at 1 B/cycle:
    every read (64 + 4096 B), and 14 of the 16 stores of 4 B (the last tile takes the
    second of two output slots), then the last step (176 cycles) and its store (4):
    4,396 cycles, in the engine too (the old drain left out the stores: 4,340)."""
    layer = gemm("gemv", 1, 64, 64)
    a = make_arch(rows=4, cols=4, dataflow="ws", bandwidth="1 B/cycle")
    m = with_tiling(layer, a, k_tile=4, c_tile=64, order="rkc")
    assert des_mac(m, a).cycles == (64 + 4096) + 14 * 4 + 176 + 4 == 4396
    assert near(m, a, 4396)


def test_a_small_last_block_leaves_the_second_to_last_step_binding():
    """gemm 4 x 4 x 36 in c blocks of 16, 16 and 4 (order r>k>c, 4x4 ws: 9 row folds of
    4 + 8 + 4 - 2 = 14 cycles = 126, dealt 56, 56, 14) at 1 B/cycle: steps 0 and 1 load
    64 + 64 B each, the last 16 + 16 B; one 16 B output tile at the end. The
    second-to-last step starts after 256 B (256 cycles), then 56 + 14 cycles of compute
    and the store (16): 342, the engine's figure. The last step after every read: 288 +
    14 + 16 = 318; all traffic: 304; the old drain charged an average tile (126 // 3 =
    42) after every read: 346, more than the engine takes."""
    layer = gemm("small_last", 4, 4, 36)
    a = make_arch(rows=4, cols=4, dataflow="ws", bandwidth="1 B/cycle")
    m = with_tiling(layer, a, k_tile=4, c_tile=16, order="rkc")
    p = mac_program(m, a)
    assert (p.in_bytes, p.w_bytes, p.compute, p.store_bytes) == \
        ((64, 64, 16), (64, 64, 16), (56, 56, 14), (0, 0, 16))
    assert des_mac(m, a).cycles == 256 + 56 + 14 + 16 == 342
    assert near(m, a, 342)


def test_nvdla_large_downsample_with_overlapped_preload():
    """nvdla_large with overlapped preload, resnet18 layer4.0.downsample.0 (1x1, 256 ->
    512 channels, 7x7 outputs, stride 2) in the tiling the issue names (k outer: 2 weight
    tiles of 64 KiB over 49 one-pixel steps each; 25.6 B/cycle): the drain is the second
    weight tile's step: both weight tiles, 50 input pixels of 256 B and 48 stores of
    256 B (156,160 B: 6,100 cycles), then 49 of the 98 steps (half of 4,239 compute
    cycles: 2,120), then the last 256 B (10): 8,230 cycles, the engine's figure (the old
    drain: 7,080, all traffic)."""
    a = arch.load("nvdla_large").replace("compute.arrays[0].preload", "overlapped")
    layer = next(l for l in workloads.load("resnet18").layers
                 if l.name == "layer4.0.downsample.0")
    m = with_tiling(layer, a, k_tile=256, c_tile=256, order="krc", images=1, rows=1, cols=1)
    assert m.tiling.trips == (49, 2, 1) and layer_result(m, a).compute_cycles + 1 == 4239
    assert des_mac(m, a).cycles == 6100 + 2120 + 10 == 8230
    assert near(m, a, 8230)



def test_nvdla_large_second_weight_tile_gates_every_later_block():
    """nvdla_large (overlapped preload), efficientnet_b1 features.8.0 (1x1, 320 -> 1280
    channels, 8x8 outputs) in the tiling the agreement check found (k blocks of 512,
    512 and 256 filters, order r>k>c; outputs dealt over 1x1x1 x 32-filter tiles of
    the accumulator buffer: 161, 161 and 81 sub-steps; 25.6 B/cycle). The second k
    block starts after the input (20,480 B), both full weight tiles (2 x 163,840 B) and
    the stores of the first 160 of its sub-steps (32,564 B; its first sub-step takes
    the slot of the 160th's): 380,724 B, 14,873 cycles; then the second and third
    blocks compute (5,183 + 2,592 of 12,958 cycles) and the last 203 B leave (8):
    22,656 cycles, the engine's figure (the other memory bounds: 20,000; the cost model
    before: 20,160, the engine +12 %)."""
    from dataclasses import replace
    from tilesim.mapper.tiling import LevelTile
    a = arch.load("nvdla_large")
    assert a.array.preload == "overlapped"
    layer = next(l for l in workloads.load("efficientnet_b1").layers if l.name == "features.8.0")
    m = with_tiling(layer, a, k_tile=512, c_tile=320, order="rkc")
    space = Mapspace(layer, a)
    t = replace(m.tiling, inner=(LevelTile(images=1, rows=1, cols=1, k_tile=32, c_tile=320,
                                           order=("r", "k", "c")),))
    m = space.mapping(space.index_of("ws", t))
    assert m.tiling.trips == (1, 3, 1) and m.tiling.inner == t.inner
    p = mac_program(m, a)
    assert p.steps == 161 + 161 + 81
    assert [j for j, b in enumerate(p.w_bytes) if b] == [0, 161, 322]
    assert (sum(p.compute[:161]), sum(p.compute[161:322]), sum(p.compute[322:])) == \
        (5183, 5183, 2592)
    assert sum(p.store_bytes[:160]) == 32564 and p.store_bytes[-1] == 203
    start = -(-(20480 + 2 * 163840 + 32564) * 10 // 256)     # ceil(bytes / 25.6)
    assert start == 14873
    assert des_mac(m, a).cycles == start + 5183 + 2592 + 8 == 22656
    assert near(m, a, 22656) and layer_result(m, a).bound == "memory"


def test_nvdla_large_slot_chain_starts_after_the_weight_tile():
    """nvdla_large, mobilenet_v3_large features.9.block.2.0 (1x1, 184 -> 80 channels,
    14x14 outputs) in one-row tiles of 4 columns (4 + 4 + 4 + 2 per row: 56 steps, one
    14,720 B weight tile; a 4-column step loads 736 B of inputs, stores 320 B and
    computes 39 or 40 cycles). The steps at even positions (0 and 2 of each row) chain
    through their slots: step j + 2 starts after step j ends and j's store and j + 2's
    load (1,056 B, 42 cycles) have moved. So the engine's figure is the first tiles
    (15,456 B: 604 cycles), the 28 even steps (1,096 of 1,922 cycles as dealt) and their
    27 links (1,134), then the last step (20) and its 160 B store (7): 2,861 cycles. The
    slot chain without the weight tile (2,253) left the cost model at 2,597 (all
    traffic), the engine +10.2 %."""
    a = arch.load("nvdla_large")
    layer = next(l for l in workloads.load("mobilenet_v3_large").layers
                 if l.name == "features.9.block.2.0")
    m = with_tiling(layer, a, k_tile=80, c_tile=184, order="rkc", rows=1, cols=4)
    assert m.tiling.trips == (56, 1, 1) and not m.tiling.inner
    p = mac_program(m, a)
    assert p.in_bytes[:4] == (736, 736, 736, 368) and p.store_bytes[:4] == (320, 320, 320, 160)
    assert p.w_bytes == (14720,) + (0,) * 55
    assert sum(p.compute[0:55:2]) == 1096 and p.compute[55] == 20
    assert des_mac(m, a).cycles == 604 + 1096 + 27 * 42 + 20 + 7 == 2861
    assert near(m, a, 2861)


def test_odd_block_count_chains_the_partial_block():
    """gemm M=16, N=64 filters, K=144 channels on a 4x4 ws array at 0.77 B/cycle, tiles of
    32 filters x 64, 64, 16 channels (order r>k>c: B = 3 c blocks, the last partial). A
    full step computes 16 x 8 folds of 26 cycles = 3,328, a partial one 832; a full weight
    tile (2,048 B) takes 2,660 cycles to load, and its slot frees only when the step two
    before it ends, so the second k block's first tile, after the partial step, is not
    hidden: the engine's array waits 2,660 cycles for weights. The odd two-slot chain
    (CostModel.odd_chain) follows that wait: the cost model within 10 % of the engine
    (without it 12.4 % below)."""
    a = make_arch(rows=4, cols=4, dataflow="ws", bandwidth="0.77 B/cycle")
    m = with_tiling(gemm("odd", 16, 64, 144), a, k_tile=32, c_tile=64, order="rkc")
    p = mac_program(m, a)
    assert p.w_bytes == (2048, 2048, 512) * 2 and p.compute == (3328, 3328, 832) * 2
    r = des_mac(m, a)
    assert r.stall_weight_cycles == 2660
    assert abs(layer_result(m, a).cycles - r.cycles) <= 0.10 * r.cycles


def test_odd_chain_leaves_out_the_prefetched_first_tile():
    """gemm M=4, N=72 filters, K=16 channels on a 4x4 ws array at 1.25 B/cycle, input and
    output resident, weights streamed in k blocks of 16, 16, 16, 16 and 8 filters (B = 5,
    order r>k>c), the first 256 B tile prefetched by the layer before. 4 row x 18 col
    folds of 2*4 + 4 + 4 - 2 = 14 cycles = 1,008, dealt 224 per full step, 112 to the last.
    A full tile loads in 205 cycles, under a step's 224: step 1's into the second slot
    from cycle 0, step j + 2's while step j + 1 computes, so the engine never waits:
    1,008 cycles. The odd chain with each step's share of the weights by extent and the
    first step's prefetched tile left out is the same 1,008; spreading the reads without
    the prefetched bytes (896 B) over every step, the first included, charged 159 cycles
    of load before step 0 and gave 1,167 (the engine -13.6 %; tpu_v1's efficientnet_b2 SE
    fc2 convs in k blocks of 256 filters, 2,008 against the engine's 1,791)."""
    a = make_arch(rows=4, cols=4, dataflow="ws", bandwidth="1.25 B/cycle")
    res = Residency(input=True, output=True, level=1, prefetched=256)
    m = with_tiling(gemm("pre", 4, 72, 16), a, k_tile=16, c_tile=16, order="rkc", res=res)
    p = mac_program(m, a)
    assert p.w_bytes == (0, 256, 256, 256, 128) and p.prefetched == 256
    assert p.compute == (224, 224, 224, 224, 112) and not any(p.in_bytes + p.store_bytes)
    r = des_mac(m, a)
    assert r.cycles == 1008 and r.stall_cycles == 0
    assert int(CostModel(a).point(m).bounds["memory"][0]) <= 1008
    assert layer_result(m, a).cycles == 1008
