"""Orchestration (DESIGN §1): sweeps (:mod:`.sweep`: specs, design points, executors, the
resumable store), accelerator-vs-GPU comparisons (:mod:`.compare`), the PyTorch measurement
harness (:mod:`.harness`) and kernel check (:mod:`.torch_check`), and report gathering
(:mod:`.reporting`). May import arch, workloads, mapper, sim and reports; none of those
imports it, nor does it import the façade (``tilesim/__init__.py``, ``api.py``, ``cli.py``).
Submodules are imported on demand (torch, pandas, dask load only where used)."""
