"""Evaluate one design point over its models (runs in a worker process or Dask task).

One mapper per design, shared by the design's models, so a layer shape that repeats
(ResNet blocks, or the same layer in two models) is searched once per design.
Rows hold only deterministic numbers (no wall-clock times), so a resumed sweep's rows
equal an uninterrupted one's.
"""
from __future__ import annotations

from dataclasses import dataclass

ROW_METRICS = ("latency_ms", "total_cycles", "energy_uj", "edp_uj_ms", "area_sq_mm",
               "utilization", "throughput_samples_per_s", "tops_per_w", "avg_power_w",
               "macs", "performed_macs", "dram_read_bytes", "dram_write_bytes", "dram_saved_bytes", "mac_layers",
               "mapped_shapes")


#: columns every row may have besides the varied key paths (what evaluate writes)
ROW_COLUMNS = ("design", "model", "batch", "status", "reason", "fidelity", "objective",
               "fusion", "arch", "pes", "dataflow", "clock_mhz", "onchip_bytes",
               "dram_gb_per_s", *ROW_METRICS)


#: what evaluating one design point may raise when a value is past what the model can
#: represent (an integer past int64, a float overflow): the point is recorded infeasible
#: with the reason, the sweep goes on (and a resume does not meet it again)
UNREPRESENTABLE = (ArithmeticError, ValueError)


@dataclass(frozen=True)
class Task:
    """What a worker needs: the design and the jobs of it not yet in the store."""
    design: int
    params: tuple
    arch: dict
    infeasible: str
    jobs: tuple          # spec.Job
    settings: dict


def _describe(a) -> dict:
    """Resolved numbers of a design, handy for colouring plots."""
    arr = a.array
    dram = a.dram
    bw = dram.bandwidth
    return {"arch": a.name, "pes": arr.rows * arr.cols * arr.count, "dataflow": arr.dataflow,
            "clock_mhz": a.clock / 1e6,
            "onchip_bytes": sum((m.size or 0) * (a.pes if m.scope == "pe" else 1)
                                for m in a.memory[1:]),
            "dram_gb_per_s": (a.dram_bpc * a.clock / 1e9) if bw else None}


def evaluate(task: Task) -> list[tuple[str, int, str, int, str, dict]]:
    """Rows (key, design, model, batch, status, row dict) for every job of ``task``."""
    import tilesim.arch as _arch
    from tilesim.mapper import Budget, MappingError
    from tilesim.workloads import WorkloadError

    from tilesim.sim import make_mapper, simulate_model
    base = {"design": task.design, **dict(task.params)}
    st = task.settings
    # the spec's schedule for every design (None: the design's own, its architecture's)
    fusion = st.get("fusion")
    ran = {"fusion": fusion}    # the schedule a row ran: known once the design is built

    def out(job, status, reason, extra):
        row = {**base, "model": job.model_label, "batch": job.batch, "status": status,
               "reason": reason, "fidelity": st["fidelity"], "objective": st["objective"],
               "fusion": ran["fusion"], **extra}
        return (job.key, task.design, job.model_label, job.batch, status, row)

    if task.infeasible:
        return [out(j, "infeasible", task.infeasible, {}) for j in task.jobs]
    try:
        a = _arch.from_dict(task.arch, source=f"design {task.design}")
        desc = _describe(a)
        ran["fusion"] = fusion or a.fusion
        d = Budget()
        budget = Budget(candidates=st["candidates"] or d.candidates,
                        seconds=st["seconds"] or d.seconds)
        mapper = make_mapper(a, st["objective"], st["strategy"], budget)
    except _arch.ArchError as e:
        return [out(j, "infeasible", str(e), {}) for j in task.jobs]
    except UNREPRESENTABLE as e:   # a value past what the model represents: this point only
        return [out(j, "infeasible", f"not representable: {type(e).__name__}: {e}", {})
                for j in task.jobs]
    rows = []
    for job in task.jobs:
        before = mapper.mapped_shapes
        try:
            if st["fidelity"] == "des":
                from tilesim.sim.des import simulate_model as des_model
                r = des_model(job.model, a, mapper, fusion=fusion).result
            else:
                r = simulate_model(job.model, a, mapper=mapper, fusion=fusion)
        except MappingError as e:
            rows.append(out(job, "infeasible", e.bare + (f" ({e.fix})" if e.fix else ""), desc))
            continue
        except (_arch.ArchError, WorkloadError) as e:   # e.g. a layer that fits nothing
            rows.append(out(job, "infeasible", str(e), desc))
            continue
        except UNREPRESENTABLE as e:   # arithmetic past int64 or float: this point only
            rows.append(out(job, "infeasible",
                            f"not representable: {type(e).__name__}: {e}", desc))
            continue
        s = r.summary()
        extra = {**desc, **{k: s.get(k) for k in ROW_METRICS if k in s}}
        extra["fusion"] = s.get("fusion", ran["fusion"])   # the schedule that ran
        extra["edp_uj_ms"] = s.get("energy_uj", 0.0) * s["latency_ms"]
        extra["mac_layers"] = sum(1 for l in r.layers if l.macs)
        extra["mapped_shapes"] = mapper.mapped_shapes - before
        rows.append(out(job, "ok", "", extra))
    return rows
