"""Co-design specs (YAML): architecture knobs by key path (as a sweep's ``vary``), network
families and their knobs (variants with published accuracy only), objectives,
constraints and the search.

Example (``examples/codesign_edge.yaml``)::

    version: 1
    name: edge_codesign
    base: edge_tpu_like                  # preset or architecture YAML (the default hardware)
    arch:                                # key path: values, as a sweep's vary
      compute.arrays[0].rows: [8, 16, 32]
    tie: {compute.arrays[0].cols: compute.arrays[0].rows}
    networks:                            # a family and its knobs (a value or a list)
      - {family: mobilenet_v2, width: [0.5, 1.0], resolution: [160, 224]}
      - {family: resnet, depth: [18, 50]}
      - {family: mobilenet_v3}           # a knob left out: every published value
    default_network: {family: mobilenet_v2, width: 1.0, resolution: 224}
    objectives: [top1, latency_ms, energy_uj, area_sq_mm]
    constraints: ["area_sq_mm <= 50", "top1 >= 60"]
    search: {method: auto, evaluations: 60, population: 12, seed: 0}
    mapping: {objective: edp, candidates: 2000}

Parse, then validate, then build: every key path and value, every family, knob and knob
value (a value without a published accuracy is an error), every objective and constraint
column is checked here, before any work; so is a constraint set no network or no
architecture of the space can meet (top-1 and area are known before simulating).
"""
from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

import tilesim.arch as _arch
from tilesim.arch import keypath
from tilesim.mapper import DEPRECATED_OBJECTIVES, OBJECTIVES, resolve_objective
from tilesim.workloads import WorkloadError
from tilesim.workloads import families as _fam

from ..sweep.errors import SweepError
from ..sweep.spec import Job, _digest, parse_knobs, read_spec, resolve_base, resolve_design

#: objective columns: name -> (results column, maximised)
OBJECTIVE_COLUMNS = {"top1": ("top1", True), "latency_ms": ("latency_ms", False),
                     "energy_uj": ("energy_uj", False), "area_sq_mm": ("area_sq_mm", False),
                     "edp": ("edp", False), "power_w": ("power_w", False)}
#: constraint columns (objectives plus a few results columns)
CONSTRAINT_COLUMNS = ("top1", "latency_ms", "energy_uj", "area_sq_mm", "edp", "power_w",
                      "throughput_samples_per_s", "utilization")
UNITS = {"top1": "%", "latency_ms": "ms", "energy_uj": "µJ", "area_sq_mm": "mm²",
         "edp": "µJ·ms", "power_w": "W", "throughput_samples_per_s": "samples/s",
         "utilization": "(0-1)"}
_CONSTRAINT = re.compile(r"^\s*([a-z_0-9]+)\s*(<=|>=)\s*([-+0-9.eE]+)\s*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Search(_Strict):
    method: Literal["auto", "nsga2", "exhaustive"] = "auto"   # auto: exhaustive when it fits
    evaluations: int = Field(default=100, gt=0)   # distinct (architecture, network) points
    population: int = Field(default=16, ge=2)     # proposals per generation
    seed: int = 0


class Mapping(_Strict):
    objective: Literal[(*OBJECTIVES, *DEPRECATED_OBJECTIVES)] = "edp"
    strategy: Literal["heuristic", "exhaustive"] = "heuristic"
    candidates: int | None = Field(default=None, gt=0)
    seconds: float | None = Field(default=None, gt=0)


class CodesignSpec(_Strict):
    version: Literal[1]
    name: str
    base: str
    arch: dict[str, list[Any]] = Field(default_factory=dict)
    tie: dict[str, str] = Field(default_factory=dict)
    networks: list[dict[str, Any]] = Field(min_length=1)
    default_network: dict[str, Any] | None = None
    objectives: list[str] = Field(default=["top1", "latency_ms", "energy_uj", "area_sq_mm"],
                                  min_length=2)
    constraints: list[str] = Field(default_factory=list)
    batch: int = Field(default=1, gt=0)
    search: Search = Search()
    mapping: Mapping = Mapping()
    single_sided: bool = True   # also search each side alone (default hardware / network)


@dataclass(frozen=True)
class Constraint:
    column: str
    op: str        # "<=" or ">="
    bound: float

    def excess(self, value: float) -> float:
        """How far ``value`` is outside the bound (<= 0: met)."""
        return value - self.bound if self.op == "<=" else self.bound - value

    def __str__(self) -> str:
        return f"{self.column} {self.op} {self.bound:g}"


@dataclass(frozen=True)
class Net:
    """One network of the space: its family variant, Model and content hash."""
    variant: Any     # workloads.families.Variant
    model: Any       # workloads.Model
    digest: str

    @property
    def label(self) -> str:
        return self.variant.label


@dataclass(frozen=True)
class Space:
    """A validated co-design space: what to search and how to judge it."""
    spec: CodesignSpec
    source: str
    base_name: str
    base_dict: dict
    knobs: tuple          # ((key path, keys, values), ...)
    ties: tuple           # ((target path, keys, source path), ...)
    nets: tuple           # Net per network, in spec order
    default_net: int      # index into nets
    objectives: tuple     # objective names
    constraints: tuple    # Constraint
    settings: dict        # mapping settings (as a sweep's) + tilesim version
    fixed_arch: dict | None = None   # --fix-arch: the one architecture searched

    @property
    def arch_choices(self) -> tuple:
        """Number of values of each architecture knob (empty with a fixed architecture)."""
        return () if self.fixed_arch is not None else tuple(len(v) for _, _, v in self.knobs)

    @property
    def n_arch(self) -> int:
        n = 1
        for c in self.arch_choices:
            n *= c
        return n

    @property
    def size(self) -> int:
        return self.n_arch * len(self.nets)

    def choices(self, nets=None) -> tuple:
        """Choices per coordinate of a point: the architecture knobs, then the network."""
        return (*self.arch_choices, len(self.nets) if nets is None else nets)

    def arch_index(self, combo) -> int:
        i = 0
        for c, n in zip(combo, self.arch_choices):
            i = i * n + c
        return i

    def arch_params(self, combo) -> list:
        """[(key path, value)] of an architecture point (ties included)."""
        if combo is None:   # the base architecture: its own values at the knobs' paths
            base = self.fixed_arch or self.base_dict
            return [(p, _get(base, k)) for p, k, _ in self.knobs] + \
                [(t, _get(base, k)) for t, k, _ in self.ties]
        params = [(p, v[c]) for (p, _, v), c in zip(self.knobs, combo)]
        by = dict(params)
        return params + [(t, by[f]) for t, _, f in self.ties]

    def arch_dict(self, combo) -> tuple[dict, str]:
        """(architecture dict, infeasible reason) of an architecture point; ``None``: the
        base architecture (the default hardware) or the fixed one."""
        if self.fixed_arch is not None:
            return self.fixed_arch, ""
        if combo is None:
            return self.base_dict, ""
        edits = [(k, v[c]) for (_, k, v), c in zip(self.knobs, combo)]
        by = {p: v[c] for (p, _, v), c in zip(self.knobs, combo)}
        edits += [(k, by[f]) for _, k, f in self.ties]
        return resolve_design(self.base_dict, edits)

    def job(self, arch: dict, net: int) -> Job:
        n = self.nets[net]
        asked = {k: v for k, v in self.settings.items() if k != "tilesim"}
        key = _digest({"arch": arch, "model": n.digest, "batch": self.spec.batch,
                       "settings": asked})
        return Job(key, n.label, self.spec.batch, n.model)

    @property
    def fingerprint(self) -> str:
        return _digest({"spec": self.spec.model_dump(mode="json"), "base": self.base_dict,
                        "nets": [n.digest for n in self.nets], "fixed": self.fixed_arch})


def _get(d: dict, keys: tuple):
    try:
        return keypath.get(d, keys)
    except (KeyError, IndexError, TypeError):
        return None


def load_spec(spec, source: str | None = None) -> tuple[CodesignSpec, str, Path]:
    """(CodesignSpec, source name, folder for relative paths) from a path, dict or spec."""
    return read_spec(spec, CodesignSpec, source, what="co-design", keyed=("arch", "tie"),
                     example="examples/codesign_edge.yaml",
                     top="version, name, base, arch, networks, ...")


def parse_constraint(text: str, where: str, src: str) -> Constraint:
    m = _CONSTRAINT.match(str(text))
    if not m:
        raise SweepError(f"{where}: {text!r} is not a constraint like 'area_sq_mm <= 50'",
                         source=src, fix="write COLUMN <= NUMBER or COLUMN >= NUMBER")
    col, op, num = m.groups()
    if col not in CONSTRAINT_COLUMNS:
        raise SweepError(f"{where}: {col!r} is not a column a constraint can bound",
                         source=src, fix="use one of: " + ", ".join(CONSTRAINT_COLUMNS))
    try:
        bound = float(num)
    except ValueError:
        raise SweepError(f"{where}: {num!r} is not a number", source=src,
                         fix="write COLUMN <= NUMBER, e.g. 'latency_ms <= 2'") from None
    return Constraint(col, op, bound)


def _as_list(v) -> list:
    return list(v) if isinstance(v, (list, tuple)) else [v]


def _networks(entries, src: str, where: str) -> list:
    """The family variants an entry list names, in order, without repeats."""
    out = []
    for i, e in enumerate(entries):
        w = f"{where}[{i}]"
        if "family" not in e:
            raise SweepError(f"{w}: no 'family'", source=src,
                             fix="name one: " + ", ".join(_fam.families()))
        name = e["family"]
        try:
            fam = _fam.family(name)
        except WorkloadError as err:
            raise SweepError(f"{w}.family: {err.bare}", source=src, fix=err.fix) from None
        given = {k: _as_list(v) for k, v in e.items() if k != "family"}
        for k in given:
            if k not in fam.knobs:
                raise SweepError(f"{w}.{k}: family {name!r} has no knob {k!r}", source=src,
                                 fix="its knobs: " + ", ".join(fam.knobs))
            if not given[k]:
                raise SweepError(f"{w}.{k}: the list of values is empty", source=src,
                                 fix="give at least one value, or leave the knob out for "
                                     "every published value")
        free = [k for k in fam.knobs if k not in given]
        for combo in itertools.product(*(given[k] for k in fam.knobs if k in given)):
            fixed = dict(zip([k for k in fam.knobs if k in given], combo))
            if free:
                vs = [v for v in fam.variants
                      if all(_fam._same(dict(v.knobs)[k], x) for k, x in fixed.items())]
                if not vs:
                    try:
                        _fam.variant(name, **fixed, **{k: fam.values(k)[0] for k in free})
                    except WorkloadError as err:
                        raise SweepError(f"{w}: {err.bare}", source=src, fix=err.fix) from None
            else:
                try:
                    vs = [_fam.variant(name, **fixed)]
                except WorkloadError as err:
                    raise SweepError(f"{w}: {err.bare}", source=src, fix=err.fix) from None
            for v in vs:
                if v not in out:
                    out.append(v)
    return out


def build(spec, source: str | None = None, version: str = "", fix_arch=None,
          fix_network: dict | None = None, budgets=()) -> Space:
    """Parse, validate and expand ``spec`` into a Space; ``fix_arch`` (a preset, path or
    Architecture) replaces the architecture knobs by one architecture, ``fix_network``
    ({family, knobs...}) the networks by one, and ``budgets`` ("latency_ms <= 2", ...)
    are added to the constraints. Every problem is a SweepError before any work."""
    s, src, base_dir = load_spec(spec, source)
    base, base_dict = resolve_base(s.base, base_dir, src, "co-design varies")
    knobs, ties = parse_knobs(base_dict, s.arch, s.tie, src, "arch")
    variants = _networks(s.networks, src, "networks")
    if s.default_network is not None:
        got = _networks([s.default_network], src, "default_network")
        if len(got) != 1:
            raise SweepError("default_network: names more than one network", source=src,
                             fix="give one value for every knob of the family")
        dv = got[0]
        if dv not in variants:   # the joint space holds the default network
            variants.append(dv)
    else:
        dv = variants[0]
    if fix_network == "default":
        fix_network = s.default_network or dict(family=dv.family, **dict(dv.knobs))
    if fix_network is not None:
        got = _networks([fix_network], "--fix-network", "network")
        if len(got) != 1:
            raise SweepError("--fix-network names more than one network",
                             fix="give one value for every knob, e.g. "
                                 "mobilenet_v2:width=1.0,resolution=224")
        variants, dv = got, got[0]
    nets = []
    for v in variants:
        m = v.build(s.batch)
        nets.append(Net(v, m, hashlib.sha256(repr(m.layers).encode()).hexdigest()))

    objectives = []
    for i, o in enumerate(s.objectives):
        if o not in OBJECTIVE_COLUMNS:
            raise SweepError(f"objectives[{i}]: {o!r} is not an objective column", source=src,
                             fix="use some of: " + ", ".join(OBJECTIVE_COLUMNS))
        if o in objectives:
            raise SweepError(f"objectives[{i}]: {o!r} is listed twice", source=src,
                             fix="list each objective once")
        objectives.append(o)
    cons = [parse_constraint(c, f"constraints[{i}]", src) for i, c in enumerate(s.constraints)]
    cons += [parse_constraint(b, "--budget", "the command line") for b in budgets]

    fixed = None
    if fix_arch is not None:
        try:
            fa = fix_arch if isinstance(fix_arch, _arch.Architecture) else _arch.load(fix_arch)
        except _arch.ArchError as e:
            raise SweepError(f"--fix-arch: {e.bare}", source=e.source, fix=e.fix) from None
        if isinstance(fa, _arch.GpuSpec):
            raise SweepError(f"--fix-arch: {fa.name!r} is a GPU preset",
                             fix="give an accelerator preset or YAML")
        fixed = fa.to_yaml_dict()
        knobs, ties = [], []
    settings = {"objective": resolve_objective(s.mapping.objective), "fidelity": "analytic",
                "strategy": s.mapping.strategy, "candidates": s.mapping.candidates,
                "seconds": s.mapping.seconds, "tilesim": version}
    space = Space(s, src, base.name, base_dict, tuple(knobs), tuple(ties), tuple(nets),
                  nets.index(next(n for n in nets if n.variant == dv)), tuple(objectives),
                  tuple(cons), settings, fixed)
    _check_feasible(space, src)
    return space


def _check_feasible(space: Space, src: str) -> None:
    """SweepError when the constraints exclude every network (top-1 is published) or
    every architecture (area is known before simulating), or contradict each other."""
    cons = space.constraints
    for col in {c.column for c in cons}:
        lo = max((c.bound for c in cons if c.column == col and c.op == ">="), default=None)
        hi = min((c.bound for c in cons if c.column == col and c.op == "<="), default=None)
        if lo is not None and hi is not None and lo > hi:
            raise SweepError(f"constraints: {col} >= {lo:g} and {col} <= {hi:g} cannot both "
                             "hold", source=src, fix="loosen one of them")
    top = [c for c in cons if c.column == "top1"]
    if top and not any(all(c.excess(n.variant.top1) <= 0 for c in top) for n in space.nets):
        best = max(n.variant.top1 for n in space.nets)
        raise SweepError("constraints: no network of the space meets "
                         + " and ".join(map(str, top)) + f" (the best published top-1 is "
                         f"{best:g} %)", source=src,
                         fix="loosen the top-1 constraint or add networks")
    area = [c for c in cons if c.column == "area_sq_mm"]
    if area:
        from tilesim.arch import technology
        best = None
        for combo in (itertools.product(*(range(n) for n in space.arch_choices))
                      if space.fixed_arch is None else [None]):
            d, reason = space.arch_dict(combo)
            if reason:
                continue
            a = sum(f.value for f in technology.area_mm2(_arch.from_dict(d)).values())
            best = a if best is None else min(best, a)
            if all(c.excess(a) <= 0 for c in area):
                return
        raise SweepError("constraints: no architecture of the space meets "
                         + " and ".join(map(str, area))
                         + (f" (the smallest is {best:.3g} mm²)" if best is not None else ""),
                         source=src, fix="loosen the area constraint or add smaller designs")


def parse_network(text: str) -> dict:
    """``family:knob=value,knob=value`` (--fix-network) as a networks entry."""
    fam, _, rest = str(text).partition(":")
    out: dict = {"family": fam.strip()}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        k, eq, v = part.partition("=")
        if not eq:
            raise SweepError(f"--fix-network: {part!r} is not knob=value",
                             fix="write FAMILY:knob=value,..., e.g. "
                                 "mobilenet_v2:width=1.0,resolution=224")
        try:
            val = json.loads(v)
        except ValueError:
            val = v.strip()
        out[k.strip()] = val
    return out
