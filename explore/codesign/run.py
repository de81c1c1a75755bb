"""Run a co-design search: space -> generations of proposals -> executor -> the sweep
store -> results, the Pareto front, the single-sided optima and the answers
(``tilesim codesign``, ``tilesim.codesign``).

Three searches share one store (rows keyed by architecture, network and settings, as a
sweep's): the joint search over architecture knobs x networks, and, unless turned off,
the two single-sided ones: the best network for the default hardware (the base
architecture) and the best hardware for the default network. ``--fix-arch`` runs the
network search on one architecture, ``--fix-network`` the hardware search for one network.
"""
from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tilesim import _version

from ..sweep.errors import SweepError
from .search import Outcome, method_for, run_search
from .spec import OBJECTIVE_COLUMNS, UNITS, Space, build

#: the searches of a run, as the ``search`` column names them
JOINT, NETWORK_ONLY, HARDWARE_ONLY = "joint", "network_only", "hardware_only"


@dataclass
class CodesignResult:
    """``frame``: every evaluated point of every search (one row each); ``front``: the
    joint search's Pareto front (feasible points only); ``meta``: what codesign.json
    holds (the spec, counts, the single-sided comparison, the answer). Unpacks as
    ``frame, front``."""
    frame: object
    front: object
    meta: dict = field(default_factory=dict)

    def __iter__(self):
        return iter((self.frame, self.front))


def _row_values(space: Space, net, row: dict) -> dict:
    """The columns a constraint or objective may name, from a stored row."""
    v = net.variant
    return {"top1": v.top1, "latency_ms": row.get("latency_ms"),
            "energy_uj": row.get("energy_uj"), "area_sq_mm": row.get("area_sq_mm"),
            "edp": row.get("edp_uj_ms"), "power_w": row.get("avg_power_w"),
            "throughput_samples_per_s": row.get("throughput_samples_per_s"),
            "utilization": row.get("utilization")}


def outcome_of(space: Space, net, row: dict) -> Outcome:
    if row.get("status") != "ok":
        return Outcome(None, ())
    vals = _row_values(space, net, row)
    return Outcome(tuple(float(vals[o]) for o in space.objectives),
                   tuple(c.excess(float(vals[c.column])) for c in space.constraints))


class Evaluator:
    """Evaluates points of one search through the executor into the store, and reads
    back each point's row (stored rows are reused, never recomputed)."""

    def __init__(self, space: Space, store, executor, rows: dict):
        self.space, self.store, self.executor, self.rows = space, store, executor, rows
        self.bar = None
        self.computed = 0

    def point(self, search: str, p: tuple) -> tuple:
        """(design index, arch combo or None, net index) of a point of ``search``."""
        s = self.space
        n_net = len(s.nets)
        if search == JOINT:
            combo, net = (p[:-1] if s.fixed_arch is None else None), p[-1]
        elif search == NETWORK_ONLY:
            combo, net = None, p[0]
        else:
            combo, net = p, s.default_net
        a = s.arch_index(combo) if combo is not None and s.fixed_arch is None else s.n_arch
        return a * n_net + net, combo, net

    def __call__(self, search: str, points) -> list[Outcome]:
        from ..sweep.worker import Task
        s = self.space
        jobs, tasks = [], []
        for p in points:
            design, combo, net = self.point(search, p)
            arch, reason = s.arch_dict(combo)
            job = s.job(arch, net)
            jobs.append((job.key, net))
            if job.key not in self.rows and all(job.key != t.jobs[0].key for t in tasks):
                params = (*s.arch_params(combo), ("network", s.nets[net].label))
                tasks.append(Task(design, params, arch, reason, (job,), s.settings))
        if tasks:
            def on_rows(rows):
                self.store.put(rows)
                for key, *_, row in rows:
                    self.rows[key] = row
                self.computed += len(rows)
            self.executor.run(tasks, on_rows)
        return [outcome_of(s, s.nets[net], self.rows[key]) for key, net in jobs]


def _front_note(space: Space, known: dict) -> str:
    from tilesim.reports.pareto import pareto_mask
    pts = [o.values for o in known.values() if o.feasible]
    if not pts:
        return "front: none feasible yet"
    import numpy as np
    v = np.array(pts, dtype=float)
    flags = [OBJECTIVE_COLUMNS[o][1] for o in space.objectives]
    f = v[pareto_mask(v, flags)]
    parts = [f"{o} {f[:, j].min():.3g}-{f[:, j].max():.3g} {UNITS[o]}"
             for j, o in enumerate(space.objectives)]
    return f"front {len(f)}: " + ", ".join(parts)


def _search(space: Space, ev: Evaluator, search: str, show: bool) -> list[tuple]:
    from tilesim.explore.progress import Progress
    s = space.spec.search
    if search == JOINT:
        choices = space.choices()
    elif search == NETWORK_ONLY:
        choices = (len(space.nets),)
    else:
        choices = space.arch_choices
    total = 1
    for c in choices:
        total *= c
    budget = min(s.evaluations, total)
    bar = Progress(budget, label="evaluations", prefix=f"tilesim: codesign {search}: ") \
        if show else None

    room = None
    if bar is not None and bar.tty:   # one redrawn line: the note fits the terminal
        import shutil
        room = max(20, shutil.get_terminal_size((80, 24)).columns - 80)

    def on_generation(gen, new, order, known):
        if bar is not None:
            note = f"gen {gen} | " + _front_note(space, known)
            if room is not None and len(note) > room:
                note = note[:room - 1] + "…"
            bar.set(len(order), note)

    directions = [OBJECTIVE_COLUMNS[o][1] for o in space.objectives]
    order = run_search(choices, directions, lambda pts: ev(search, pts), s.evaluations,
                       s.population, s.seed, s.method, len(space.constraints), on_generation)
    if bar is not None:
        bar.close()
    return order


def frame_of(space: Space, ev: Evaluator, search: str, order) -> list[dict]:
    """One dict per evaluated point of ``search``, in proposal order."""
    out = []
    for i, p in enumerate(order):
        design, combo, net = ev.point(search, p)
        arch, _ = space.arch_dict(combo)
        row = dict(ev.rows[space.job(arch, net).key])
        n = space.nets[net]
        v = n.variant
        o = outcome_of(space, n, row)
        vals = _row_values(space, n, row)
        rec = {"search": search, "order": i, "design": design, "network": v.label,
               "net": f"{v.family} " + "/".join(str(x) for _, x in v.knobs),
               "family": v.family, **{f"net.{k}": x for k, x in v.knobs},
               **dict(space.arch_params(combo)),
               "default_hardware": combo is None and space.fixed_arch is None,
               "default_network": net == space.default_net,
               "top1": v.top1, "top1_precision": v.precision, "top1_source": v.top1_source,
               "edp": vals["edp"], "power_w": vals["power_w"], "feasible": o.feasible,
               "violates": "; ".join(str(c) for c, e in zip(space.constraints, o.excess)
                                     if e > 0)}
        for k in ("design", "network", "model"):
            row.pop(k, None)
        # a fixed column order, whether the row was just computed or read from the store
        from ..sweep.worker import ROW_COLUMNS
        rank = {c: i for i, c in enumerate(ROW_COLUMNS)}
        rec.update({k: row[k] for k in sorted(row, key=lambda k: (rank.get(k, len(rank)), k))
                    if k not in rec})
        out.append(rec)
    return out


def _front(space: Space, df):
    from tilesim.reports import pareto
    obj = [OBJECTIVE_COLUMNS[o][0] for o in space.objectives]
    mx = [OBJECTIVE_COLUMNS[o][0] for o in space.objectives if OBJECTIVE_COLUMNS[o][1]]
    ok = df[(df["status"] == "ok") & df["feasible"].astype(bool)]
    return pareto(ok, objectives=obj, maximize=mx, feasible_only=False)


def compare_fronts(space: Space, df) -> dict:
    """How far the single-sided optima are from the joint front: every front's
    hypervolume with the objectives min-max normalised over all feasible evaluations of the
    three searches (top-1 flipped so that every objective is minimised), reference point
    1.1 in each; and how many points of each single-sided front the joint front weakly
    dominates (no worse in every objective)."""
    import numpy as np

    from tilesim.reports.pareto import hypervolume
    cols = [OBJECTIVE_COLUMNS[o][0] for o in space.objectives]
    flip = np.array([OBJECTIVE_COLUMNS[o][1] for o in space.objectives])
    ok = df[(df["status"] == "ok") & df["feasible"].astype(bool)]
    allv = ok[cols].to_numpy(dtype=float)
    allv = np.where(flip[None, :], -allv, allv)
    lo, hi = allv.min(axis=0), allv.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)

    def norm(sub):
        v = sub[cols].to_numpy(dtype=float)
        return (np.where(flip[None, :], -v, v) - lo) / span

    fronts = {}
    for name in (JOINT, NETWORK_ONLY, HARDWARE_ONLY):
        f = _front(space, df[df["search"] == name])
        fronts[name] = f
    joint = norm(fronts[JOINT])
    out = {"reference_point": 1.1, "objectives": list(space.objectives),
           "normalised_over": int(len(ok))}
    for name, f in fronts.items():
        v = norm(f)
        hv = hypervolume(v, [1.1] * len(cols)) if len(v) else 0.0
        entry = {"points": int(len(v)), "hypervolume": float(hv)}
        if name != JOINT:
            dom = sum(bool(((joint <= x[None, :] + 1e-12).all(axis=1)).any()) for x in v)
            entry["weakly_dominated_by_joint"] = int(dom)
        out[name] = entry
    out["joint_dominates_both"] = all(out[n]["weakly_dominated_by_joint"] == out[n]["points"]
                                      for n in (NETWORK_ONLY, HARDWARE_ONLY))
    return out


def answer(space: Space, df, mode: str) -> dict | None:
    """``fix_arch``: the most accurate feasible network (then the fastest);
    ``fix_network``: the smallest feasible accelerator (then the fastest)."""
    ok = df[(df["status"] == "ok") & df["feasible"].astype(bool) & (df["search"] == JOINT)]
    if mode == "fix_arch":
        what = "the most accurate network meeting " + (" and ".join(map(str, space.constraints))
                                                       or "no constraint")
        ok = ok.sort_values(["top1", "latency_ms"], ascending=[False, True], kind="stable")
    else:
        what = "the smallest accelerator meeting " + (" and ".join(map(str, space.constraints))
                                                      or "no constraint")
        ok = ok.sort_values(["area_sq_mm", "latency_ms"], kind="stable")
    if ok.empty:
        return {"question": what, "found": False}
    best = ok.iloc[0]
    params = {c: _plain(best[c]) for c, _, _ in space.knobs} | {t: _plain(best[t])
                                                                 for t, _, _ in space.ties}
    return {"question": what, "found": True, "design": int(best["design"]),
            "network": best["network"], "arch": params,
            **{k: _plain(best[k]) for k in ("top1", "latency_ms", "energy_uj", "area_sq_mm",
                                            "power_w", "top1_source")}}


def _plain(v):
    return v.item() if hasattr(v, "item") else v


def codesign(spec, out=None, workers: int | None = None, dask: str | None = None,
             resume: bool = False, progress: bool | None = None, fix_arch=None,
             fix_network=None, budgets=(), command: str | None = None,
             recompute_stale: bool = False, executor=None, dask_timeout: float = 10.0,
             on_start=None) -> CodesignResult:
    """Run a co-design spec (YAML path, dict or CodesignSpec). See the module docstring."""
    from tilesim.explore.progress import wanted

    from ..sweep.driver import make_executor
    from ..sweep.store import Store
    from .spec import parse_network
    if isinstance(fix_network, str) and fix_network != "default":
        fix_network = parse_network(fix_network)
    space = build(spec, version=_version.__version__, fix_arch=fix_arch,
                  fix_network=fix_network, budgets=tuple(budgets))
    s = space.spec.search
    if method_for(s.method, space.choices(), s.evaluations) == "nsga2":
        try:   # a missing optuna is an input error before any work
            import optuna  # noqa: F401
        except ImportError:
            raise SweepError("the nsga2 search needs optuna (the codesign extra)",
                             fix="pip install 'tilesim[codesign]', or set search.method: "
                                 "exhaustive with search.evaluations >= the space's "
                                 f"{space.size} points") from None
    show = wanted(force=bool(progress)) if progress is not False else False
    own = executor is None
    if own:
        executor = make_executor(workers, dask, dask_timeout)
    tmp = None
    try:
        if on_start is not None:
            on_start(space, executor)
        if out is None:
            tmp = tempfile.TemporaryDirectory(prefix="tilesim-codesign-")
            out_dir = Path(tmp.name)
        else:
            out_dir = Path(out)
        store = Store(out_dir / "results.sqlite", version=space.settings["tilesim"])
        try:
            store.begin(space.fingerprint, json.dumps(
                {"spec": space.spec.model_dump(mode="json"), "fixed_arch": space.fixed_arch,
                 "nets": [n.label for n in space.nets],
                 "budgets": list(map(str, space.constraints))}, sort_keys=True),
                resume, recompute_stale)
            rows = store.row_map()
            ev = Evaluator(space, store, executor, rows)
            searches = [JOINT]
            single = (space.spec.single_sided and space.fixed_arch is None
                      and fix_network is None)
            if single:
                searches += [NETWORK_ONLY, HARDWARE_ONLY] if space.arch_choices else \
                    [NETWORK_ONLY]
            recs = []
            for name in searches:
                recs += frame_of(space, ev, name, _search(space, ev, name, show))
        finally:
            store.close()
    finally:
        if own:
            close = getattr(executor, "close", None)
            if close:
                close()
    import pandas as pd
    df = pd.DataFrame(recs)
    for c in [c for c, _, _ in space.knobs] + [t for t, _, _ in space.ties]:
        if c in df.columns and df[c].map(type).nunique() > 1:
            df[c] = df[c].map(lambda v: v if isinstance(v, str) else json.dumps(v))
    for c in [c for c in df.columns if str(c).startswith("net.")]:
        vals = [r.get(c) for r in recs if r.get(c) is not None]
        if vals and all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
            df[c] = df[c].astype("Int64")   # knob values stay integers beside missing ones
    joint = df[df["search"] == JOINT]
    front = _front(space, joint)
    df["on_front"] = False
    df.loc[front.index, "on_front"] = True
    front = df.loc[front.index]
    mode = "fix_arch" if space.fixed_arch is not None else \
        "fix_network" if fix_network is not None else "joint"
    meta = {"name": space.spec.name, "spec": space.source, "base": space.base_name,
            "mode": mode, "objectives": list(space.objectives),
            "constraints": [str(c) for c in space.constraints],
            "space": {"architectures": space.n_arch, "networks": len(space.nets),
                      "points": space.size},
            "search": space.spec.search.model_dump(),
            "method": method_for(s.method, space.choices(), s.evaluations),
            "evaluated": {n: int((df["search"] == n).sum()) for n in searches},
            "computed": ev.computed, "front_points": int(len(front)),
            "default_network": space.nets[space.default_net].label,
            "default_hardware": space.base_name,
            "settings": space.settings, "tilesim_version": _version.__version__,
            "command": command if command is not None else " ".join(sys.argv),
            "spec_dict": space.spec.model_dump(mode="json"),
            "precision": _precision(space),
            "accuracy_note": _accuracy_note(space)}
    if single and len(searches) == 3:
        meta["single_sided"] = compare_fronts(space, df)
    if mode != "joint":
        meta["answer"] = answer(space, df, mode)
    if out is not None:
        write_outputs(out_dir, space, df, front, meta)
    if tmp is not None:
        tmp.cleanup()
    df.attrs["codesign"] = meta
    return CodesignResult(df, front, meta)


def _precision(space: Space) -> dict:
    d = space.fixed_arch or space.base_dict
    return dict(d.get("precision") or {})


def _accuracy_note(space: Space) -> str:
    p = _precision(space)
    prec = {p.get("input"), p.get("weight")} - {None}
    srcs = sorted({n.variant.precision for n in space.nets})
    arith = "/".join(sorted(prec)) or "its precision"
    if prec and prec <= set(srcs):
        return f"top-1 is the published accuracy at {'/'.join(srcs)}, the precision computed"
    return (f"the accelerator computes in {arith}; top-1 is the source's published "
            f"accuracy at {'/'.join(srcs)}, not measured at {arith}")


def write_outputs(out_dir: Path, space: Space, df, front, meta: dict) -> dict:
    import tilesim.arch as _arch
    from tilesim.reports import open_folder, write_csv, write_json, write_text
    open_folder(out_dir)   # an old manifest goes first: incomplete until sealed
    paths = {"csv": write_csv(df, out_dir / "results.csv"),
             "front": write_csv(front, out_dir / "front.csv"),
             "meta": write_json(meta, out_dir / "codesign.json"),
             "arch": write_text(out_dir / "base_arch.yaml",
                                _arch.dump_yaml(_arch.from_dict(space.fixed_arch
                                                                or space.base_dict)))}
    from tilesim._version import __version__
    from tilesim.reports import seal_folder
    paths["manifest"] = seal_folder(out_dir, list(paths.values()), f"tilesim {__version__}")
    return {k: str(v) for k, v in paths.items()}
