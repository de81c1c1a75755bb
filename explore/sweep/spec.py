"""Sweep specs (YAML): a base architecture, parameters varied by key path, models, settings.

Example (``examples/sweep_resnet18.yaml``)::

    version: 1
    name: resnet18_arrays
    base: tpu_v1                       # preset name or architecture YAML (relative to the spec)
    models: [resnet18]                 # zoo names or files; or {model: NAME, batch: N},
                                       # optionally with weight_sparsity: '2:4' (or
                                       # weight_density: 0.5) and input_density: 0.6
    batch: [1]                         # batch sizes for the plain model names
    vary:                              # key path into the architecture's YAML form: values
      compute.arrays[0].rows: [16, 32, 64, 128, 256]
      memory[1].size: [256 KiB, 1 MiB, 4 MiB]
    tie:                               # target key path: source key path (same value)
      compute.arrays[0].cols: compute.arrays[0].rows
    sampling: {method: grid}           # or {method: random, points: 200, seed: 1}
    objective: edp                     # mapping search objective: edp | latency | energy | traffic
    fidelity: analytic                 # analytic | des
    fusion: residency                  # optional: none | residency | depth-first for every design point
    search: {strategy: heuristic, candidates: 2000}

Parse, then validate, then build (STYLE): every key path and every value is checked
against the architecture schema here, before any work starts; only combinations that
are individually valid but jointly unsound (or unmappable) become *infeasible* points.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

import tilesim.arch as _arch
import tilesim.workloads as _wl
from tilesim.arch.schema import Architecture, Fusion, semantic_problems
from tilesim.arch.validate import settable
from tilesim.mapper import DEPRECATED_OBJECTIVES, OBJECTIVES, resolve_objective

from tilesim._input import INT_MAX
from tilesim.arch import keypath
from .errors import SweepError



class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sampling(_Strict):
    method: Literal["grid", "random"] = "grid"
    points: int | None = Field(default=None, gt=0, le=INT_MAX)   # random: how many points
    seed: int = Field(default=0, ge=0, le=INT_MAX)   # numpy takes no negative seed


class Search(_Strict):
    strategy: Literal["heuristic", "exhaustive"] = "heuristic"
    candidates: int | None = Field(default=None, gt=0, le=INT_MAX)   # per layer (mapper.Budget)
    seconds: float | None = Field(default=None, gt=0, allow_inf_nan=False)   # per layer


class ModelEntry(_Strict):
    model: str
    batch: int = Field(default=1, gt=0, le=INT_MAX)
    # every MAC layer's sparsity (workloads.sparsity.apply; as run's --weight-sparsity,
    # --weight-density, --input-density): the row's model label names it
    weight_sparsity: str | None = None
    weight_density: float | None = None
    input_density: float | None = None

    def label(self) -> str:
        """The row's ``model``: the name, and its sparsity in brackets when given."""
        extra = [f"w {self.weight_sparsity}" if self.weight_sparsity else "",
                 f"w {self.weight_density:g}" if self.weight_density is not None else "",
                 f"in {self.input_density:g}" if self.input_density is not None else ""]
        extra = [e for e in extra if e]
        return self.model + (f" [{', '.join(extra)}]" if extra else "")


class SweepSpec(_Strict):
    version: Literal[1]
    name: str
    base: str
    models: list[str | ModelEntry] = Field(min_length=1)
    batch: list[Annotated[int, Field(gt=0, le=INT_MAX)]] = Field(default=[1], min_length=1)
    vary: dict[str, list[Any]] = Field(default_factory=dict)
    tie: dict[str, str] = Field(default_factory=dict)
    sampling: Sampling = Sampling()
    objective: Literal[(*OBJECTIVES, *DEPRECATED_OBJECTIVES)] = "edp"   # mapper.OBJECTIVES
    fidelity: Literal["analytic", "des"] = "analytic"
    # the network schedule of every design point (sim/planner.py), as `tilesim run
    # --fusion`; None: each design's own, its architecture's `fusion` key (which `vary`
    # may vary like any key path)
    fusion: Fusion | None = None
    search: Search = Search()


@dataclass(frozen=True)
class Job:
    """One (design point, model) pair: its store key and workload."""
    key: str
    model_label: str
    batch: int
    model: Any          # workloads.Model


@dataclass(frozen=True)
class Design:
    """One design point: its index, the varied values, and the architecture dict (or why
    it is infeasible before any mapping)."""
    index: int
    params: tuple       # ((key path string, value), ...) vary then tie
    arch: dict          # resolved YAML form when feasible, else the edited dict
    infeasible: str     # "" when the architecture is sound
    jobs: tuple         # Job per model


@dataclass(frozen=True)
class Plan:
    """A parsed, validated and expanded spec: what to run."""
    spec: SweepSpec
    source: str
    base_name: str
    settings: dict
    designs: tuple
    param_names: tuple

    @property
    def keys(self) -> list[str]:
        return [j.key for d in self.designs for j in d.jobs]

    @property
    def fingerprint(self) -> str:
        return _digest(self.keys)

    @property
    def rows(self) -> int:
        return sum(len(d.jobs) for d in self.designs)


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def load_spec(spec, source: str | None = None) -> tuple[SweepSpec, str, Path]:
    """(SweepSpec, source name, folder relative paths start from) from a path, dict or spec."""
    return read_spec(spec, SweepSpec, source, what="sweep", keyed=("vary", "tie"),
                     example="examples/sweep_resnet18.yaml",
                     top="version, name, base, models, vary, ...")


def read_spec(spec, model: type[BaseModel], source: str | None, *, what: str, keyed: tuple,
              example: str, top: str) -> tuple:
    """(``model`` instance, source name, folder relative paths start from) of a spec given
    as a path, a dict or a ``model`` instance: the one reader of sweep and co-design specs.
    Problems are SweepErrors naming the file, line, key path and the fix; ``keyed`` names
    the sections whose keys are key paths (kept whole in messages)."""
    if isinstance(spec, model):
        return spec, source or "<spec>", Path.cwd()
    if isinstance(spec, dict):
        data, src, base_dir, lines = spec, source or "<dict>", Path.cwd(), {}
    else:
        path = Path(spec)
        src = str(path)
        if not path.is_file():
            raise SweepError(f"no such {what} spec file", source=src,
                             fix=f"check the path; see {example}")
        from tilesim.arch.yamlio import read_yaml
        try:
            data, lines = read_yaml(path.read_text(encoding="utf-8"), src)
        except _arch.ArchError as e:
            raise SweepError(e.bare, source=e.source, fix=e.fix) from None
        base_dir = path.parent
        if not isinstance(data, dict):
            raise SweepError(f"the top level must be a mapping ({top})", source=src,
                             fix=f"see {example}")
    try:
        return model.model_validate(data), src, base_dir
    except ValidationError as e:
        err = e.errors()[0]
        # drop pydantic's type tags ("function-after[...]", "list[...]") but never a key
        # path of a keyed section (compute.arrays[0].rows has brackets too)
        loc = tuple(x for j, x in enumerate(err["loc"])
                    if (j == 1 and err["loc"][0] in keyed)
                    or not (isinstance(x, str) and ("[" in x or x.startswith("function"))))
        line = lines.get(loc[:2]) or lines.get(loc[:1])
        where = f"{src}:{line}" if line else src
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        fix = {"extra_forbidden": "allowed keys: " + ", ".join(_fields_at(model, loc)),
               "missing": f"add {loc[-1]!r}" if loc else "add it"}.get(
            err["type"], f"see the spec format in {example}")
        raise SweepError(f"{keypath.fmt(loc) or '(top level)'}: {msg}", source=where,
                         fix=fix) from None


def _fields_at(model: type[BaseModel], loc) -> list[str]:
    cls = model
    for k in loc[:-1]:
        f = cls.model_fields.get(k) if isinstance(k, str) else None
        ann = getattr(f, "annotation", None)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            cls = ann
    return list(cls.model_fields)


def _resolve(name: str, base_dir: Path) -> str:
    p = base_dir / name
    return str(p) if not Path(name).is_absolute() and p.is_file() else name


def _finite(v) -> bool:
    """False when ``v`` is, or holds, a float that is NaN or infinite (YAML .nan, .inf)."""
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, dict):
        return all(_finite(x) for x in v.values())
    if isinstance(v, (list, tuple)):
        return all(_finite(x) for x in v)
    return True


#: what building one design point may raise besides a ValidationError: a value the schema
#: accepts but cannot represent (an integer past int64, a size past a float); the point is
#: then infeasible with this reason instead of ending the sweep
UNREPRESENTABLE = (ArithmeticError, ValueError, _arch.ArchError)


def _type_problem(data: dict) -> str | None:
    """The first schema (type) problem of ``data``, or None (semantic checks deferred)."""
    try:
        Architecture.model_validate(data, context={"defer_semantic_checks": True})
    except ValidationError as e:
        err = e.errors()[0]
        loc = tuple(x for x in err["loc"] if not (isinstance(x, str) and
                                                  ("[" in x or x.startswith("function"))))
        return f"{keypath.fmt(loc)}: {err['msg'].removeprefix('Value error, ')}"
    except UNREPRESENTABLE as e:
        return f"{type(e).__name__}: {e}"
    return None


def _check_path(base: dict, path: str, src: str, where: str) -> tuple:
    try:
        keys = keypath.parse(path)
    except ValueError as e:
        raise SweepError(f"{where}: {e}", source=src,
                         fix="write a key path like compute.arrays[0].rows or memory[1].size")
    # a value of the base, or a schema field left out of its dict form (an unset optional)
    problem = settable(base, keys, Architecture)
    if problem is not None:
        raise SweepError(f"{where}: unknown key path {path!r} in the base architecture",
                         source=src, fix=problem)
    return keys


def size(spec, source: str | None = None) -> tuple[int, int]:
    """(design points, rows) of ``spec`` from the spec alone: no architecture or model is
    loaded, so a sweep's size is known (and a big one refused) at once, before planning."""
    s, _, _ = load_spec(spec, source)
    total = 1
    for values in s.vary.values():
        total *= len(values)
    designs = total if s.sampling.method == "grid" else min(total, s.sampling.points or total)
    models = sum(1 if isinstance(m, ModelEntry) else len(s.batch) for m in s.models)
    return designs, designs * models


def plan(spec, source: str | None = None, version: str = "", progress=None) -> Plan:
    """Parse, validate and expand ``spec`` (path, dict or SweepSpec) into a Plan;
    ``progress(i, n)`` is called as design point ``i`` of ``n`` is built (a 10^5-point
    plan takes tens of seconds).

    Raises SweepError (bad spec, unknown key path, wrong value type, empty grid) or
    ArchError / WorkloadError (base architecture or model) before any work starts."""
    s, src, base_dir = load_spec(spec, source)
    base, base_dict = resolve_base(s.base, base_dir, src, "a sweep varies")
    vary, ties = parse_knobs(base_dict, s.vary, s.tie, src, "vary")
    if s.sampling.method == "random" and s.sampling.points is None:
        raise SweepError("sampling.points: random sampling needs a number of points",
                         source=src, fix="add points: N (and a seed) under sampling")

    jobs_spec = []   # (label, batch, models index, the entry)
    for j, m in enumerate(s.models):
        if isinstance(m, ModelEntry):
            jobs_spec.append((m.label(), m.batch, j, m))
        else:
            jobs_spec.extend((m, b, j, None) for b in s.batch)
    models = []
    for label, b, where, entry in jobs_spec:
        try:
            model = _wl.load(_resolve(entry.model if entry else label, base_dir), batch=b)
            if entry is not None:
                from tilesim.workloads import sparsity
                model = sparsity.apply(model, weight_nm=entry.weight_sparsity,
                                       weight_density=entry.weight_density,
                                       input_density=entry.input_density)
        except _wl.WorkloadError as e:
            raise SweepError(f"models[{where}]: {e.bare}" + (f" (in {e.source})" if e.source
                                                              else ""),
                             source=src, fix=e.fix) from None
        models.append((label, b, model, hashlib.sha256(repr(model.layers).encode()).hexdigest()))

    fixed = [p for p, _, _ in vary] + [t for t, _, _ in ties]
    if s.fusion is not None and "fusion" in fixed:
        raise SweepError("fusion: the spec sets the schedule of every design point and also "
                         "varies the key path 'fusion'", source=src,
                         fix="keep one: remove 'fusion:' or the 'fusion' entry of vary / tie")
    # a run option, like objective and fidelity; in the settings (and so in each row's
    # key) only when the spec sets it, so the keys of a spec without it stay as they were
    settings = {"objective": resolve_objective(s.objective), "fidelity": s.fidelity,
                **({"fusion": s.fusion} if s.fusion is not None else {}),
                "strategy": s.search.strategy, "candidates": s.search.candidates,
                "seconds": s.search.seconds, "tilesim": version}
    # a row's key is the question (architecture, workload, settings), not who answered it:
    # the store records each row's tilesim version beside it, so that a resume under
    # another version finds the same keys and can refuse (or recompute) those rows
    asked = {k: v for k, v in settings.items() if k != "tilesim"}
    designs = []
    n_points = size(s)[0]
    for index, combo in enumerate(_points(vary, s.sampling)):
        if progress is not None:
            progress(index, n_points)
        params = [(p, v) for (p, _, _), v in zip(vary, combo)]
        by_path = dict(params)
        params += [(t, by_path[f]) for t, _, f in ties]
        edits = [(k, v) for (_, k, _), v in zip(vary, combo)]
        edits += [(k, by_path[f]) for _, k, f in ties]
        d, reason = resolve_design(base_dict, edits)
        jobs = tuple(Job(_digest({"arch": d, "model": h, "batch": b, "settings": asked}),
                         label, b, model) for label, b, model, h in models)
        designs.append(Design(index, tuple(params), d, reason, jobs))
    if progress is not None:
        progress(len(designs), n_points)
    names = tuple(p for p, _, _ in vary) + tuple(t for t, _, _ in ties)
    keys = [j.key for dd in designs for j in dd.jobs]
    if len(set(keys)) != len(keys):
        raise SweepError("two design points resolve to the same architecture and model",
                         source=src, fix="remove repeated values from the vary lists")
    return Plan(s, src, base.name, settings, tuple(designs), names)


def resolve_base(name: str, base_dir: Path, src: str, verb: str):
    """(Architecture, its YAML dict) of a spec's ``base`` (a preset or a path relative to
    the spec); SweepErrors name the spec and the fix."""
    try:
        base = _arch.load(_resolve(name, base_dir))
    except _arch.ArchError as e:
        raise SweepError(f"base: {e.bare}" + (f" (in {e.source})" if e.source else ""),
                         source=src, fix=e.fix) from None
    if isinstance(base, _arch.GpuSpec):
        raise SweepError(f"base: {name!r} is a GPU preset; {verb} an accelerator "
                         "architecture", source=src,
                         fix="give an accelerator preset or YAML: " + ", ".join(_arch.presets()))
    return base, base.to_yaml_dict()


def parse_knobs(base_dict: dict, items: dict, tie: dict, src: str, section: str):
    """(knobs [(path, keys, values)], ties [(target, keys, source path)]) of a spec's
    key-path section (``vary`` of a sweep, ``arch`` of a co-design spec) and its ``tie``:
    every path exists in the base, every value is finite and of the schema's type, ties
    point at knobs. A SweepError naming ``section.path[i]`` and the fix otherwise."""
    knobs = []
    for path, values in items.items():
        keys = _check_path(base_dict, path, src, f"{section}.{path}")
        if not values:
            raise SweepError(f"{section}.{path}: the list of values is empty, so there is no "
                             "design point", source=src, fix="give at least one value")
        for i, v in enumerate(values):
            if not _finite(v):
                raise SweepError(f"{section}.{path}[{i}]: value {v!r} is not a finite number",
                                 source=src, fix="give finite values (no .nan, .inf)")
            bad = _type_problem(keypath.set_(base_dict, keys, v))
            if bad is not None:
                raise SweepError(f"{section}.{path}[{i}]: value {v!r} is not valid for the "
                                 f"architecture ({bad})", source=src,
                                 fix="give a value of the type the schema expects (see "
                                     "arch/schema.py or a preset from `tilesim list`)")
        knobs.append((path, keys, list(values)))
    ties = []
    paths = {p for p, _, _ in knobs}
    for target, from_path in tie.items():
        tkeys = _check_path(base_dict, target, src, f"tie.{target}")
        if target in paths:
            raise SweepError(f"tie.{target}: the key path is also in {section}", source=src,
                             fix=f"put it in {section} or tie it, not both")
        if from_path not in paths:
            raise SweepError(f"tie.{target}: source {from_path!r} is not a {section} key path",
                             source=src, fix="tie to one of: " + ", ".join(sorted(paths)))
        ties.append((target, tkeys, from_path))
    return knobs, ties


def resolve_design(base_dict: dict, edits) -> tuple[dict, str]:
    """(architecture dict, why it is infeasible or "") of ``base_dict`` with the key-path
    ``edits`` [(keys, value)] applied: the resolved YAML form when sound, else the edited
    dict and the first problems (jointly unsound values, found by the schema's semantic
    checks)."""
    d = keypath.set_many(base_dict, edits)
    try:
        a = Architecture.model_validate(d, context={"defer_semantic_checks": True})
        problems = semantic_problems(a)
        if problems:
            return d, "; ".join(f"{p}: {m}" for p, m, _ in problems)
        return a.to_yaml_dict(), ""
    except ValidationError as e:
        return d, str(e.errors()[0]["msg"])
    except UNREPRESENTABLE as e:   # a value past what the model represents: this point only
        return d, f"not representable: {type(e).__name__}: {e}"


def _points(vary, sampling: Sampling):
    sizes = [len(v) for _, _, v in vary]
    total = 1
    for n in sizes:
        total *= n
    if sampling.method == "grid" or sampling.points >= total:
        yield from itertools.product(*[v for _, _, v in vary])
        return
    import numpy as np
    rng = np.random.default_rng(sampling.seed)
    if total <= 10_000_000:
        picks = sorted(int(i) for i in rng.choice(total, size=sampling.points, replace=False))
    else:
        seen: set[int] = set()
        while len(seen) < sampling.points:
            seen.add(int(rng.integers(total)))
        picks = sorted(seen)
    for flat in picks:
        combo = []
        for n, (_, _, values) in zip(reversed(sizes), reversed(vary)):
            combo.append(values[flat % n])
            flat //= n
        yield tuple(reversed(combo))
