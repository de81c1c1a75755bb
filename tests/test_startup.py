"""The command starts without the heavy packages it does not need (timings: benchmarks/bench_start.py)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

TINY = str(Path(__file__).resolve().parents[1] / "examples" / "tiny_net.yaml")

# Runs the command in a fresh interpreter, then prints which of the named modules it loaded.
PROBE = """
import contextlib, io, json, sys
from tilesim.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        rc = main(json.loads(sys.argv[1]))
    except SystemExit as e:   # --help exits through argparse
        rc = e.code
print(json.dumps({"rc": rc, "loaded": sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)}))
"""
HEAVY = ["pandas", "matplotlib", "numba", "simpy", "torch", "onnx", "dask"]


def loaded(argv):
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argv), json.dumps(HEAVY)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [["--help"], ["list"], ["run", "--help"],
                                  ["run", "--arch", "tpu_v1", "--model", "alexnet", "--quiet"]])
def test_start_loads_no_heavy_package(argv):
    """--help, list and run --quiet import none of pandas, matplotlib, numba, simpy, torch,
    onnx, dask (run --quiet builds no table)."""
    got = loaded(argv)
    assert got["rc"] == 0 and got["loaded"] == [], got


def test_the_probe_sees_what_a_table_loads():
    """The same probe on a run that prints its table does see pandas (the check can fail)."""
    got = loaded(["run", "--arch", "tpu_v1", "--model", "alexnet"])
    assert got["rc"] == 0 and "pandas" in got["loaded"], got


def test_des_run_loads_simpy_only_when_asked():
    """The discrete-event engine (SimPy) loads for --fidelity des, and pandas still not."""
    got = loaded(["run", "--arch", "eyeriss_like", "--model", TINY,
                  "--fidelity", "des", "--quiet"])
    assert got["rc"] == 0 and got["loaded"] == ["simpy"], got
