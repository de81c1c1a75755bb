"""Run a sweep Plan through an executor into a Store; resumable."""
from __future__ import annotations

import json

from .spec import Plan
from .store import Store
from .worker import Task


def tasks_of(plan: Plan, done: set[str]) -> list[Task]:
    """A Task per design with jobs not yet in ``done``."""
    out = []
    for d in plan.designs:
        jobs = tuple(j for j in d.jobs if j.key not in done)
        if jobs:
            out.append(Task(d.index, d.params, d.arch, d.infeasible, jobs, plan.settings))
    return out


def run_plan(plan: Plan, store: Store, executor, resume: bool = False, progress=None,
             recompute_stale: bool = False) -> dict:
    """Evaluate every missing row of ``plan`` and store it. Returns counts
    (``rows``, ``skipped`` already stored, ``computed``, ``stale`` rows of another tilesim
    version deleted to be recomputed: only with ``recompute_stale``, see :class:`Store`)."""
    stale = store.begin(plan.fingerprint, plan.spec.model_dump_json(), resume, recompute_stale)
    done = store.keys()
    todo = tasks_of(plan, done)
    skipped = plan.rows - sum(len(t.jobs) for t in todo)
    if progress is not None:
        progress.start_at(skipped)

    def on_rows(rows):
        store.put(rows)
        if progress is not None:
            progress.update(len(rows))
    if todo:
        executor.run(todo, on_rows)
    if progress is not None:
        progress.close()
    return {"rows": plan.rows, "skipped": skipped, "computed": plan.rows - skipped,
            "stale": stale}


def frame(plan: Plan, store: Store):
    """The plan's rows as a DataFrame: design order, then the spec's model order; the
    varied parameters come first after ``design``."""
    import pandas as pd
    rows = store.rows(plan.keys)
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    lead = ["design", *plan.param_names, "model", "batch", "status", "reason"]
    from .worker import ROW_METRICS
    lead += ["arch", "pes", "dataflow", "clock_mhz", "onchip_bytes", "dram_gb_per_s",
             *ROW_METRICS]
    lead = list(dict.fromkeys(c for c in lead if c in df.columns))
    for c in plan.param_names:   # mixed types (e.g. 256 and "1 MiB") read back as text
        if df[c].map(type).nunique() > 1:
            df[c] = df[c].map(lambda v: v if isinstance(v, str) else json.dumps(v))
    return df[lead + [c for c in df.columns if c not in lead]]
