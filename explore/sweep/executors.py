"""Where design points run: local worker processes, or a Dask distributed cluster.

Both call :func:`tilesim.explore.sweep.worker.evaluate` on each Task and hand the rows to
``on_rows`` in the parent, which alone writes the store.
"""
from __future__ import annotations

import os

from .errors import SweepError
from .worker import evaluate

POOL_RESTARTS = 3


def _ignore_sigint(parent: int | None = None) -> None:
    """Worker initializer: Ctrl-C at a terminal signals the whole process group; only the
    parent handles it (and stops the workers), so workers print no tracebacks. On Linux a
    worker also dies with its parent (a SIGKILLed sweep leaves no orphaned workers)."""
    import signal
    import sys
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if parent is not None and sys.platform.startswith("linux"):
        try:
            import ctypes
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            return
        if os.getppid() != parent:   # the parent died before prctl took effect
            os._exit(1)


def _stop_workers(pool) -> None:
    """Terminate a pool's worker processes now (not after their current design): without
    this an interrupted sweep's parent could wait on its workers at exit."""
    stop = getattr(pool, "terminate_workers", None)   # Python >= 3.14
    if stop is not None:
        stop()
        return
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        try:
            proc.terminate()
        except (OSError, ValueError):
            pass


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


class LocalExecutor:
    """``workers`` processes (concurrent.futures). A worker that dies (killed, crashed)
    breaks the pool: it is rebuilt and the unfinished designs resubmitted, at most
    POOL_RESTARTS times; finished designs are already in the store."""

    def __init__(self, workers: int | None = None):
        self.workers = workers or default_workers()
        self._pool = None
        if self.workers < 1:
            raise SweepError(f"--workers {self.workers} must be >= 1", fix="give --workers 1 or more",
                             py_message=f"workers={self.workers} must be >= 1",
                             py_fix="give workers=1 or more, or None for all cores")

    def describe(self) -> str:
        return f"{self.workers} local worker process{'es' if self.workers > 1 else ''}"

    def _new_pool(self):
        import multiprocessing as mp
        import threading
        from concurrent.futures import ProcessPoolExecutor
        # fork is fastest (workers inherit imported modules and numba's compiled code) but
        # unsafe in a process with threads (a Dask client, a notebook): then forkserver
        methods = mp.get_all_start_methods()
        ctx = mp.get_context("fork" if "fork" in methods and threading.active_count() == 1
                             else "forkserver" if "forkserver" in methods else "spawn")
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx,
                                   initializer=_ignore_sigint,
                                   initargs=(os.getpid() if ctx.get_start_method() == "fork"
                                             else None,))

    def run(self, tasks, on_rows) -> None:
        """Evaluate ``tasks``, handing each one's rows to ``on_rows`` as it finishes. The
        worker processes stay up between calls (a co-design search calls once per
        generation) until :meth:`close`."""
        from concurrent.futures import as_completed
        from concurrent.futures.process import BrokenProcessPool
        # pending by position, and as_completed (waiters installed once): wait() on every
        # completion, and list.remove, cost O(designs) each, so O(designs^2) in all: at
        # 10^5 design points the parent, not the workers, set the pace
        pending = dict(enumerate(tasks))
        restarts = 0
        while pending:
            if getattr(self, "_pool", None) is None:
                self._pool = self._new_pool()
            pool = self._pool
            try:
                futs = {pool.submit(evaluate, t): i for i, t in pending.items()}
                for f in as_completed(futs):
                    on_rows(f.result())
                    del pending[futs[f]]
            except BrokenProcessPool:
                self._discard()
                restarts += 1
                if restarts > POOL_RESTARTS:
                    raise SweepError(f"worker processes died {restarts} times (killed, or out "
                                     "of memory)", fix="finished design points are saved; rerun "
                                     "with --resume, perhaps with fewer --workers",
                                     py_fix="finished design points are saved in out; rerun "
                                     "with resume=True, perhaps with fewer workers") from None
                continue
            except BaseException:   # Ctrl-C, or an error in the parent: stop the workers
                _stop_workers(pool)
                self._discard()
                raise

    def _discard(self) -> None:
        pool, self._pool = getattr(self, "_pool", None), None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the worker processes."""
        self._discard()


class DaskExecutor:
    """The same tasks on a Dask cluster: ``address`` of a running scheduler, or
    ``"local"`` for a LocalCluster of ``workers`` processes on 127.0.0.1. The scheduler
    is contacted when the executor is made, before any work. ``processes=False`` runs a
    LocalCluster's workers as threads of this process (tests)."""

    def __init__(self, address: str, workers: int | None = None, timeout: float = 10.0,
                 processes: bool = True):
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise SweepError("--dask needs the dask extra (dask.distributed is not installed)",
                             fix="pip install 'tilesim[dask]'",
                             py_message="dask= needs the dask extra (dask.distributed is not "
                                        "installed)") from None
        self.address, self.cluster = address, None
        self.workers = workers or default_workers()
        if address == "local":
            where = {"host": "127.0.0.1"} if processes else {}   # threads: in-process comms
            self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1,
                                        processes=processes, **where,
                                        dashboard_address=None)
            self.client = Client(self.cluster)
        else:
            try:
                self.client = Client(address, timeout=timeout)
            except (OSError, TimeoutError, ValueError) as e:
                raise SweepError(f"cannot reach the Dask scheduler at {address!r} ({e})",
                                 fix="start one (`dask scheduler`), check the address "
                                     "(tcp://HOST:8786), or use --dask local or --workers N",
                                 py_fix="start one (`dask scheduler`), check the address "
                                        "(tcp://HOST:8786), or use dask='local' or workers=N"
                                 ) from None

    def describe(self) -> str:
        n = len(self.client.scheduler_info().get("workers", {}))
        where = "a local Dask cluster on 127.0.0.1" if self.cluster else f"Dask at {self.address}"
        return f"{where} ({n} workers)"

    def run(self, tasks, on_rows) -> None:
        from dask.distributed import as_completed
        futs = [self.client.submit(evaluate, t, pure=False) for t in tasks]
        try:
            for f in as_completed(futs):
                on_rows(f.result())
        finally:
            for f in futs:
                f.cancel()

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()
