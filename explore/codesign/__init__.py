"""Co-design: search the accelerator and the network together (with published accuracy)
to one Pareto front, through the sweep's executors and resumable store."""
from .run import CodesignResult, codesign, compare_fronts
from .search import Outcome, run_search
from .spec import CodesignSpec, Space, build, load_spec

__all__ = ["CodesignResult", "CodesignSpec", "Outcome", "Space", "build", "codesign",
           "compare_fronts", "load_spec", "run_search"]
