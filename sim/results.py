"""Result objects shared by every fidelity: frozen, plain numbers, units in the names.

Cycle convention (SCALE-Sim's): a layer's ``compute_cycles`` and ``total_cycles`` are the
index of its last cycle, counting its first cycle as 0, so the layer occupies
``total_cycles + 1`` cycles. This is what SCALE-Sim v3 reports as "Total Cycles", which
keeps tilesim cycle-exact with it. Model totals count cycles: the layers run back to
back, so the model's ``total_cycles`` is the sum over layers of ``total_cycles + 1``.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class LayerResult:
    layer: str
    kind: str
    macs: int                 # multiply-accumulates (MAC layers only)
    vector_ops: int           # elementary ops on the vector unit (pooling, add, fused activation)
    compute_cycles: int       # array (or vector unit) busy, last-cycle index
    stall_cycles: int         # cycles added by memory beyond compute
    total_cycles: int         # compute_cycles + stall_cycles, last-cycle index
    memory_cycles: int        # cycles DRAM needs for this layer's traffic at its bandwidth
    utilization: float        # macs / (PEs x (total_cycles + 1))
    dram_read_bytes: int
    dram_write_bytes: int
    dram_read_input_bytes: int = 0
    dram_read_weight_bytes: int = 0
    dram_read_psum_bytes: int = 0
    bound: str = "compute"    # what sets total_cycles: compute | memory | vector | <level> bandwidth
    folds: int = 0            # array folds of the whole layer (all groups)
    row_folds: int = 0
    col_folds: int = 0
    tiling: str = ""          # buffer tiling, e.g. "r:1x7 k:64 c:64 order r>k>c"
    buffer_bytes: dict = field(default_factory=dict)  # level -> {"read": B, "write": B}
    fidelity: str = "analytic"
    energy_pj: float = 0.0    # total energy (sim/energy.py); 0.0 when not computed
    dataflow: str = ""        # dataflow of the mapping (MAC layers)
    energy_breakdown: dict = field(default_factory=dict)  # column (*_energy_pj) -> pJ
    # discrete-event engine only (None from the analytic model): stall cycles by cause,
    # summing to stall_cycles, busy fraction of each resource, events simulated
    stall_input_cycles: int | None = None       # waiting for an input tile
    stall_weight_cycles: int | None = None      # waiting for a weight tile
    stall_psum_cycles: int | None = None        # waiting for partial sums read back
    stall_writeback_cycles: int | None = None   # waiting for an output slot / the last store
    stall_contention_cycles: int | None = None  # awaited transfer queued behind other streams
    stall_other_cycles: int | None = None       # vector unit or on-chip bandwidth bound
    busy: dict = field(default_factory=dict)    # resource -> busy fraction 0-1
    events: int | None = None                   # SimPy events processed for the layer
    # network-level memory (sim/planner.py): where the layer's activations come from and
    # go ("dram" or an on-chip level's name; inputs joined by "+"), the activation bytes
    # it reads from and writes to on-chip residency instead of DRAM, the bytes of
    # resident tensors each level holds while it runs (level -> bytes), and its place on
    # the network's timeline (first and last cycle, counting the network's first as 0)
    input_from: str = "dram"
    output_to: str = "dram"
    onchip_read_bytes: int = 0
    onchip_write_bytes: int = 0
    resident_bytes: dict = field(default_factory=dict)
    start_cycle: int = 0
    end_cycle: int = 0
    # sparsity (mapper/sparse.py): MACs the array computes (fewer than ``macs`` where it
    # skips N:M weight zeros), and the layer's densities ("" when dense)
    performed_macs: int = 0
    sparsity: str = ""

    def __post_init__(self):
        if self.performed_macs == 0 and self.macs:   # not given: every MAC performed
            object.__setattr__(self, "performed_macs", self.macs)

    @property
    def cycles(self) -> int:
        """Number of cycles the layer occupies (total_cycles + 1)."""
        return self.total_cycles + 1

    def row(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__
             if k not in ("buffer_bytes", "energy_breakdown", "busy", "resident_bytes")
             and getattr(self, k) is not None}
        d.update(self.energy_breakdown)
        for lvl, rw in self.buffer_bytes.items():
            d[f"{lvl}_read_bytes"] = rw["read"]
            d[f"{lvl}_write_bytes"] = rw["write"]
        for lvl, b in self.resident_bytes.items():
            d[f"{lvl}_resident_bytes"] = b
        for res, frac in self.busy.items():
            d[f"busy_{res}"] = frac
        return d


@dataclass(frozen=True)
class ModelResult:
    arch: str
    model: str
    batch: int
    clock_hz: float
    peak_macs_per_cycle: int
    layers: tuple[LayerResult, ...]
    area_mm2: float = 0.0          # first-order die area (arch/technology.py); 0.0: not computed
    energy_sources: dict = field(default_factory=dict)  # energy column -> source table
    area_breakdown: dict = field(default_factory=dict)  # component -> (mm^2, source table)
    mapping_objective: str = ""    # objective of the mapping search (mapper.OBJECTIVES)
    # network-level memory (sim/planner.py): the schedule ("none": every activation to
    # and from DRAM; "residency": tensors that fit stay on chip; "depth-first": residency,
    # and stacks of layers run strip by strip where it spills), and one dict per tensor
    # (the network input and every layer's output): tensor (producer layer; "input" for
    # the network input), bytes, placed ("dram" or the on-chip level holding it), first
    # and last (layer indices of its producer, -1 for the network input, and of its last
    # reader), readers (how many layers read it), reason (why it is where it is)
    fusion: str = "none"
    tensors: tuple = ()
    # steady state (weights resident across inferences): the first inference's extra
    # cycles, loading every resident weight once from DRAM (0 otherwise)
    steady_state: bool = False
    cold_cycles: int = 0

    @property
    def total_cycles(self) -> int:
        return sum(l.cycles for l in self.layers)

    @property
    def latency_s(self) -> float:
        return self.total_cycles / self.clock_hz

    @property
    def macs(self) -> int:
        return sum(l.macs for l in self.layers)

    @property
    def vector_ops(self) -> int:
        return sum(l.vector_ops for l in self.layers)

    @property
    def performed_macs(self) -> int:
        """MACs the arrays computed (fewer than ``macs`` where they skip N:M zeros)."""
        return sum(l.performed_macs for l in self.layers)

    @property
    def utilization(self) -> float:
        """Busy share of the PEs: performed MACs / (PEs x cycles)."""
        return self.performed_macs / (self.peak_macs_per_cycle * self.total_cycles)

    @property
    def throughput_samples_per_s(self) -> float:
        return self.batch / self.latency_s

    @property
    def fidelity(self) -> str:
        """The timing model of the layers: "analytic" or "des"."""
        return self.layers[0].fidelity if self.layers else "analytic"

    def summary(self) -> dict:
        """Totals with units in the key names (what summary.json holds)."""
        ls = self.layers
        return {
            "arch": self.arch, "model": self.model, "batch": self.batch,
            "layers": len(ls),
            "total_cycles": self.total_cycles,
            "compute_cycles": sum(l.compute_cycles + 1 for l in ls),
            "stall_cycles": sum(l.stall_cycles for l in ls),
            "clock_hz": self.clock_hz,
            "latency_s": self.latency_s,
            "latency_ms": self.latency_s * 1e3,
            # the first inference's latency: with steady_state, latency_ms is a later
            # inference's (resident weights loaded); without, the two are equal
            "latency_cold_ms": (self.total_cycles + self.cold_cycles) / self.clock_hz * 1e3,
            "steady_state": self.steady_state,
            "throughput_samples_per_s": self.throughput_samples_per_s,
            "macs": self.macs,
            "performed_macs": self.performed_macs,
            # MAC layers with a sparsity (densities or N:M, asked or counted)
            "sparse_layers": sum(1 for l in ls if l.sparsity),
            "vector_ops": self.vector_ops,
            "utilization": self.utilization,
            "dram_read_bytes": sum(l.dram_read_bytes for l in ls),
            "dram_write_bytes": sum(l.dram_write_bytes for l in ls),
            "peak_macs_per_cycle": self.peak_macs_per_cycle,
            "fusion": self.fusion,
            # activation bytes read from and written to on-chip residency instead of DRAM
            "dram_saved_bytes": sum(l.onchip_read_bytes + l.onchip_write_bytes for l in ls),
            **self._energy_summary(),
            **self._des_summary(),
        }

    #: stall causes the discrete-event engine reports per layer (LayerResult.stall_*_cycles)
    DES_STALLS = ("input", "weight", "psum", "writeback", "contention", "other")

    def _des_summary(self) -> dict:
        """DES results only: stall cycles by cause and SimPy events, summed over layers."""
        if self.fidelity != "des":
            return {}
        d = {f"stall_{c}_cycles": sum(getattr(l, f"stall_{c}_cycles") for l in self.layers)
             for c in self.DES_STALLS}
        d["des_events"] = sum(l.events for l in self.layers)
        return d

    def _energy_summary(self) -> dict:
        e_pj = sum(l.energy_pj for l in self.layers)
        if not e_pj:
            return {}
        return {"energy_uj": e_pj * 1e-6,
                "tops_per_w": 2 * self.macs / (e_pj * 1e-12) / 1e12,
                "avg_power_w": e_pj * 1e-12 / self.latency_s,
                "area_sq_mm": self.area_mm2,
                "area_breakdown_sq_mm": {k: v for k, (v, _) in self.area_breakdown.items()},
                "area_sources": {k: src for k, (_, src) in self.area_breakdown.items()},
                "mapping_objective": self.mapping_objective,
                "energy_sources": dict(self.energy_sources)}


def layers_frame(result: ModelResult):
    """One row per layer (pandas DataFrame); columns documented in docs/outputs.md."""
    import pandas as pd
    rows = []
    for l in result.layers:
        r = l.row()
        r["latency_ms"] = l.cycles / result.clock_hz * 1e3
        rows.append(r)
    df = pd.DataFrame(rows)
    lead = ["layer", "kind", "macs", "vector_ops", "compute_cycles", "stall_cycles",
            "total_cycles", "latency_ms", "utilization", "dram_read_bytes", "dram_write_bytes"]
    return df[lead + [c for c in df.columns if c not in lead]]


#: columns of :func:`tensors_frame`, in order
TENSOR_COLUMNS = ("tensor", "bytes", "placed", "first", "last", "readers", "reason")


def tensors_frame(result: ModelResult):
    """One row per activation tensor of the network and where the planner put it (pandas
    DataFrame; columns :data:`TENSOR_COLUMNS`, documented in docs/outputs.md)."""
    import pandas as pd
    return pd.DataFrame([dict(t) for t in result.tensors], columns=list(TENSOR_COLUMNS))

