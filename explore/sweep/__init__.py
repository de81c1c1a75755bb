"""Design sweeps: specs, design-point expansion, executors and a resumable store."""
from .errors import SweepError
from .executors import DaskExecutor, LocalExecutor, default_workers
from tilesim.explore.progress import Progress
from .run import frame, run_plan, tasks_of
from .spec import Plan, SweepSpec, load_spec, plan
from .store import Store
from .worker import Task, evaluate

__all__ = ["DaskExecutor", "LocalExecutor", "Plan", "Progress", "Store", "SweepError",
           "SweepSpec", "Task", "default_workers", "evaluate", "frame", "load_spec", "plan",
           "run_plan", "tasks_of"]
