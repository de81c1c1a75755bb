"""The co-design search: proposals generation by generation, results told back in
proposal order.

A point is a tuple of choice indices (one per architecture knob, then the network). The
search asks for a generation of points, the caller evaluates them (in any order, on any
executor) and tells the outcomes back in the order they were proposed, so that the run
depends on the seed alone. ``exhaustive`` proposes every point in order; ``nsga2`` is
optuna's NSGAIISampler (the ``codesign`` extra) over one categorical per coordinate,
constraints handled by the sampler (constrained domination). A proposal already
evaluated is told its stored outcome and costs nothing; the run ends after
``evaluations`` distinct points (or when the space is exhausted, or after
``STALL_GENERATIONS`` generations without a new point).
"""
from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass

from ..sweep.errors import SweepError

STALL_GENERATIONS = 50


@dataclass(frozen=True)
class Outcome:
    """A point's objective values (None: it could not be evaluated, e.g. unmappable) and
    its constraint excesses (each <= 0 when met)."""
    values: tuple | None
    excess: tuple = ()

    @property
    def feasible(self) -> bool:
        return self.values is not None and all(e <= 0 for e in self.excess)


def space_size(choices) -> int:
    return math.prod(choices)


def method_for(method: str, choices, evaluations: int) -> str:
    """``auto``: exhaustive when the whole space fits in the evaluation budget."""
    if method == "auto":
        return "exhaustive" if space_size(choices) <= evaluations else "nsga2"
    return method


class Exhaustive:
    """Every point in order (the last coordinate fastest), ``population`` at a time."""

    def __init__(self, choices, population: int):
        self.it = itertools.product(*(range(n) for n in choices))
        self.population = population

    def ask(self) -> list[tuple]:
        return list(itertools.islice(self.it, self.population))

    def tell(self, points, outcomes) -> None:
        pass


class NSGA2:
    """optuna's NSGAIISampler through its ask/tell interface."""

    def __init__(self, choices, directions, population: int, seed: int, n_constraints: int):
        try:
            import optuna
        except ImportError:
            raise SweepError("the nsga2 search needs optuna (the codesign extra)",
                             fix="pip install 'tilesim[codesign]', or use search.method: "
                                 "exhaustive") from None
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optuna = optuna
        cons = (lambda t: t.user_attrs["excess"]) if n_constraints else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # ExperimentalWarning (constraints_func)
            sampler = optuna.samplers.NSGAIISampler(population_size=population, seed=seed,
                                                    constraints_func=cons)
            self.study = optuna.create_study(
                directions=["maximize" if m else "minimize" for m in directions],
                sampler=sampler)
        self.dists = {f"x{i}": optuna.distributions.CategoricalDistribution(list(range(n)))
                      for i, n in enumerate(choices)}
        self.population = population
        self.n_constraints = n_constraints
        self._trials = []

    def ask(self) -> list[tuple]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._trials = [self.study.ask(self.dists) for _ in range(self.population)]
        return [tuple(int(t.params[k]) for k in self.dists) for t in self._trials]

    def tell(self, points, outcomes) -> None:
        from optuna.trial import TrialState
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for t, o in zip(self._trials, outcomes):
                if self.n_constraints:
                    t.set_user_attr("excess", [float(e) for e in o.excess]
                                    if o.excess else [math.inf] * self.n_constraints)
                if o.values is None:
                    self.study.tell(t, state=TrialState.FAIL)
                else:
                    self.study.tell(t, [float(v) for v in o.values])


def run_search(choices, directions, evaluate, evaluations: int, population: int = 16,
               seed: int = 0, method: str = "auto", n_constraints: int = 0,
               on_generation=None) -> list[tuple]:
    """Search the space of ``choices`` (values per coordinate) for the objectives
    (``directions[j]`` True: maximised). ``evaluate(points)`` -> [Outcome] for a list of
    new points (any order of work inside; the list comes back in the order asked).
    Returns the distinct points evaluated, in the order first proposed (at most
    ``evaluations``). ``on_generation(gen, new_points, seen)`` after each generation."""
    method = method_for(method, choices, evaluations)
    opt = (Exhaustive(choices, population) if method == "exhaustive" else
           NSGA2(choices, directions, population, seed, n_constraints))
    known: dict[tuple, Outcome] = {}
    order: list[tuple] = []
    gen = stall = 0
    total = space_size(choices)
    while len(order) < min(evaluations, total) and stall < STALL_GENERATIONS:
        points = opt.ask()
        if not points:
            break
        new = []
        for p in points:
            if p not in known and p not in new and len(order) + len(new) < evaluations:
                new.append(p)
        got = evaluate(new) if new else []
        for p, o in zip(new, got):
            known[p] = o
            order.append(p)
        # a proposal beyond the budget is told as failed (never evaluated)
        opt.tell(points, [known.get(p, Outcome(None)) for p in points])
        stall = 0 if new else stall + 1
        gen += 1
        if on_generation is not None:
            on_generation(gen, new, order, known)
    return order
