"""A tensor has one density: with --input-density, a MAC layer whose output a MAC layer
reads writes it at that density (workloads.sparsity.apply); an output only vector ops
read keeps its own."""
from __future__ import annotations

from tilesim import api, arch
from tilesim.workloads.ir import layer_sources

SPEC = {"version": 1, "name": "bm", "clock": "1 GHz", "technology": "28 nm",
        "precision": {"input": "int8", "weight": "int8", "accumulator": "int32"},
        "compute": {"arrays": [{"rows": 8, "cols": 8, "dataflow": "ws"}],
                    "vector": {"lanes": 8}},
        "memory": [{"name": "dram", "kind": "dram", "holds": ["input", "weight", "output"],
                    "bandwidth": "16 GB/s", "format": {"input": "bitmask", "output": "bitmask"}},
                   {"name": "buf", "kind": "sram", "holds": ["input", "weight", "output"],
                    "size": "1 MiB", "double_buffered": True}]}


def _read_by_mac(m) -> set:
    macs = {l.name for l in m.mac_layers}
    return {src[0] for l, src in zip(m.layers, layer_sources(m)) if l.name in macs}


def test_input_density_links_producer_outputs():
    m = api.load_model("resnet18", input_density=0.4)
    read = _read_by_mac(m)
    linked = [l for l in m.mac_layers if l.name in read]
    alone = [l for l in m.mac_layers if l.name not in read]
    assert linked and alone   # conv -> conv inside a block; convs before adds, the fc
    assert all(l.sparsity.output == 0.4 for l in linked)
    assert all(l.sparsity.output == 1.0 for l in alone)
    assert all(l.sparsity.input == 0.4 for l in m.mac_layers)


def test_linked_output_density_shrinks_the_writes_a_format_stores():
    """With DRAM storing activations as bitmask, a linked producer writes its output at
    the density its consumer reads (0.7.0 wrote it dense); an unlinked one as before
    (every layer on its own, fusion none: each output goes to DRAM)."""
    a = arch.from_dict(SPEC)
    dense = api.load_model("resnet18")
    m = api.load_model("resnet18", input_density=0.25)
    read = _read_by_mac(m)
    d = {r.layer: r for r in api.simulate(a, dense, fusion="none").layers}
    s = {r.layer: r for r in api.simulate(a, m, fusion="none").layers}
    for l in m.mac_layers:
        if l.name in read:
            assert s[l.name].dram_write_bytes < d[l.name].dram_write_bytes, l.name
        else:
            assert s[l.name].dram_write_bytes == d[l.name].dram_write_bytes, l.name
