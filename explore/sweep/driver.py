"""Run a sweep: spec -> plan -> executor -> store -> exported tables (``tilesim sweep``,
``tilesim.sweep``)."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tilesim import _version


def make_executor(workers: int | None = None, dask: str | None = None,
                  dask_timeout: float = 10.0):
    from .executors import DaskExecutor, LocalExecutor
    return DaskExecutor(dask, workers, dask_timeout) if dask else LocalExecutor(workers)


#: ``tilesim sweep`` asks (or, without a terminal, wants --yes) above this many rows
CONFIRM_ROWS = 10_000


def sweep(spec, out=None, workers: int | None = None, dask: str | None = None,
          resume: bool = False, progress: bool | None = None, command: str | None = None,
          on_start=None, dask_timeout: float = 10.0, recompute_stale: bool = False):
    """Run a sweep spec (YAML path, dict or SweepSpec); returns its results DataFrame (one
    row per design point and model, parameters and results as columns).

    ``out`` keeps the store (``out/results.sqlite``) and writes ``results.csv`` (and
    ``results.parquet`` when pyarrow is installed), ``sweep.json`` and ``base_arch.yaml``;
    without it the store is temporary. ``workers`` local processes (default: all
    cores) or ``dask`` ("local" or a scheduler address). ``resume`` finishes a killed
    sweep in ``out``: stored rows are not recomputed. The store records the tilesim version
    of every row; resuming into rows of another version is a SweepError unless
    ``recompute_stale``, which recomputes them. All input is checked, and the executor
    reached, before any work starts.

    ``progress`` (on stderr: the planning of a big sweep, then a bar of rows with rate and
    ETA): None (the default) shows it when stderr is a terminal, True always, False never.
    The Python API never asks for confirmation, however big the sweep (``tilesim sweep``
    does above ``CONFIRM_ROWS`` rows); :func:`tilesim.explore.sweep.spec.size` gives a
    spec's size without planning it, :func:`estimate` a planned one's time."""
    from tilesim.explore.progress import wanted

    from tilesim.explore.progress import Progress
    from .run import frame, run_plan
    from .spec import plan
    from .store import Store
    show = wanted(force=bool(progress)) if progress is not False else False
    p = plan(spec, version=_version.__version__, progress=_planning() if show else None)
    executor = make_executor(workers, dask, dask_timeout)
    tmp = None
    try:
        if on_start is not None:   # may check, ask and refuse: before the store is made
            on_start(p, executor)
        if out is None:
            tmp = tempfile.TemporaryDirectory(prefix="tilesim-sweep-")
            out_dir = Path(tmp.name)
        else:
            out_dir = Path(out)
        store = Store(out_dir / "results.sqlite", version=p.settings["tilesim"])
        try:
            bar = Progress(p.rows, label="rows") if show else None
            counts = run_plan(p, store, executor, resume=resume, progress=bar,
                              recompute_stale=recompute_stale)
            df = frame(p, store)
        finally:
            store.close()
    finally:
        close = getattr(executor, "close", None)
        if close:
            close()
    if out is not None:
        write_sweep_outputs(out_dir, p, df, counts, command)
    if tmp is not None:
        tmp.cleanup()
    df.attrs["sweep"] = sweep_meta(p, counts, command)
    return df


def _planning():
    """A ``progress(i, n)`` for :func:`spec.plan`: a bar of design points planned, drawn
    on a terminal after a second (a small plan shows nothing) and erased when done;
    elsewhere (a log) only for plans of ``CONFIRM_ROWS`` design points or more."""
    from tilesim.explore.progress import Progress, wanted
    bar = None

    def cb(i: int, n: int) -> None:
        nonlocal bar
        if bar is None:
            bar = (Progress(n, label="design points", prefix="tilesim: planning: ", delay=1.0,
                            clear=True) if n >= CONFIRM_ROWS or wanted() else False)
        if bar is False:
            return
        bar.set(i)
        if i >= n:
            bar.close()
    return cb


def estimate(p, executor, samples: int = 2) -> tuple[float, float]:
    """(seconds one design point took here, estimated seconds for the plan ``p`` on
    ``executor``): the first ``samples`` feasible design points are evaluated in this
    process (nothing is stored) and the fastest taken, the first paying for warm-up;
    infeasible points are counted as free."""
    import time

    from .worker import Task, evaluate
    feasible = [d for d in p.designs if not d.infeasible]
    times = []
    for d in feasible[:samples]:
        t0 = time.perf_counter()
        evaluate(Task(d.index, d.params, d.arch, d.infeasible, d.jobs, p.settings))
        times.append(time.perf_counter() - t0)
    per = min(times) if times else 0.0
    return per, per * len(feasible) / max(1, getattr(executor, "workers", 1) or 1)


def check_columns(p, columns, what: str = "--objectives / --color") -> None:
    """SweepError unless every name in ``columns`` is a column of the plan ``p``'s results
    (a report's objectives and colour, checked before any work)."""
    from .errors import SweepError
    from .worker import ROW_COLUMNS
    cols = set(ROW_COLUMNS) | set(p.param_names)
    for c in columns:
        if c not in cols:
            raise SweepError(f"{what}: {c!r} is not a results column",
                             fix="use one of: " + ", ".join(sorted(cols)))


def sweep_meta(p, counts: dict, command: str | None) -> dict:
    return {"name": p.spec.name, "spec": p.source, "base": p.base_name,
            "params": list(p.param_names), "designs": len(p.designs), "rows": counts["rows"],
            "computed": counts["computed"], "resumed": counts["skipped"],
            "settings": p.settings, "tilesim_version": _version.__version__,
            "command": command if command is not None else " ".join(sys.argv),
            "spec_dict": p.spec.model_dump(mode="json")}


def write_sweep_outputs(out_dir: Path, p, df, counts: dict, command: str | None) -> dict:
    import importlib.util

    import tilesim.arch as _arch
    from tilesim.reports import open_folder, seal_folder, write_csv, write_json, write_text
    open_folder(out_dir)   # an old manifest goes first: incomplete until sealed
    paths = {"csv": write_csv(df, out_dir / "results.csv"),
             "meta": write_json(sweep_meta(p, counts, command), out_dir / "sweep.json"),
             "arch": write_text(out_dir / "base_arch.yaml",
                                _arch.dump_yaml(_arch.load(_base_path(p))))}
    if importlib.util.find_spec("pyarrow") is not None:
        tmp = out_dir / ".results.parquet.tmp"
        df.to_parquet(tmp, index=False)
        tmp.replace(out_dir / "results.parquet")
        paths["parquet"] = out_dir / "results.parquet"
    paths["manifest"] = seal_folder(out_dir, paths.values(), f"tilesim {_version.__version__}")
    return {k: str(v) for k, v in paths.items()}


def _base_path(p) -> str:
    base = p.spec.base
    cand = Path(p.source).parent / base
    return str(cand) if not Path(base).is_absolute() and cand.is_file() else base
